from airstack.external_images import EXTERNAL_IMAGES, image

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("README.md", "docs/images.md")  # where each image is documented


def test_defaults_and_overrides():
    assert image("postgres", {}) == "postgres:15"
    assert image("postgres", {"AIRSTACK_POSTGRES_IMAGE": "local/postgres:15"}) == "local/postgres:15"
    assert image("python", {"AIRSTACK_PYTHON_IMAGE": ""}) == EXTERNAL_IMAGES["python"].default


def test_every_image_is_documented_with_its_variable():
    page = (__import__("airstack.paths").paths.repo_root() / "docs" / "images.md").read_text()
    for external in EXTERNAL_IMAGES.values():
        assert external.env in page, f"docs/images.md does not mention {external.env}"


def test_what_cannot_be_had_is_said_in_one_line():
    from airstack.external_images import Unobtainable, describe

    python = Unobtainable("python:3.11-slim-bookworm", "AIRSTACK_PYTHON_IMAGE", "failed: no such host")
    postgres = Unobtainable("postgres:15", "AIRSTACK_POSTGRES_IMAGE", "failed: no such host")
    assert str(postgres) == ("image postgres:15 is not on this Docker daemon, and pulling it failed: no such host; "
                             "set AIRSTACK_POSTGRES_IMAGE to a mirror or a local image to use Docker")
    assert describe([python, postgres]) == (
        "images python:3.11-slim-bookworm and postgres:15 are not on this Docker daemon, and pulling them failed: "
        "no such host; set AIRSTACK_PYTHON_IMAGE and AIRSTACK_POSTGRES_IMAGE to a mirror or local images to use Docker")
