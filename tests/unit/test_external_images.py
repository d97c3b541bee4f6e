from airstack.external_images import EXTERNAL_IMAGES, image


def test_defaults_and_overrides():
    assert image("postgres", {}) == "postgres:15"
    assert image("postgres", {"AIRSTACK_POSTGRES_IMAGE": "local/postgres:15"}) == "local/postgres:15"
    assert image("python", {"AIRSTACK_PYTHON_IMAGE": ""}) == EXTERNAL_IMAGES["python"].default


def test_every_image_is_documented_with_its_variable():
    readme = (__import__("airstack.paths").paths.repo_root() / "README.md").read_text()
    for external in EXTERNAL_IMAGES.values():
        assert external.env in readme, f"README.md does not mention {external.env}"
