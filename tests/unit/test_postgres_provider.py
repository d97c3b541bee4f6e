from pathlib import Path

import pytest

from airstack.errors import PostgresUnavailableError
from airstack.postgres import Binaries, find_bin_dir, find_binaries, redact_dsn
from airstack.postgres.embedded import run_as_user
from airstack.postgres.external import normalise_dsn
from airstack.postgres.provider import Probes, Provider, choose_provider

BIN = Path("/usr/lib/postgresql/15/bin")
WHEEL = Path("/venv/lib/python3.11/site-packages/pgserver/pginstall/bin")


@pytest.mark.parametrize(
    ("probes", "expected"),
    [
        (Probes(external_dsn="postgresql://u:p@h/db", docker=True, bin_dir=BIN, pgserver_bin_dir=WHEEL),
         Provider.EXTERNAL),
        (Probes(docker=True, bin_dir=BIN, pgserver_bin_dir=WHEEL), Provider.CONTAINER),
        (Probes(docker=False, bin_dir=BIN, pgserver_bin_dir=WHEEL), Provider.EMBEDDED),
        (Probes(docker=False, bin_dir=None, pgserver_bin_dir=WHEEL), Provider.PGSERVER),
        (Probes(requested="pgserver", docker=True, bin_dir=BIN, pgserver_bin_dir=WHEEL), Provider.PGSERVER),
        (Probes(requested="EMBEDDED", docker=True, bin_dir=BIN), Provider.EMBEDDED),
    ],
    ids=["dsn-wins", "docker", "binaries", "pgserver-fallback", "requested", "requested-case-insensitive"],
)
def test_choice(probes, expected):
    assert choose_provider(probes).provider is expected


def test_reason_says_why():
    assert "initdb and pg_ctl found in /usr/lib/postgresql/15/bin" in choose_provider(Probes(bin_dir=BIN)).reason
    assert f"the pgserver wheel's binaries in {WHEEL}" in choose_provider(Probes(pgserver_bin_dir=WHEEL)).reason


def test_pgserver_requested_without_the_wheel():
    with pytest.raises(PostgresUnavailableError, match="pgserver was requested but the pgserver wheel is not"):
        choose_provider(Probes(requested="pgserver", bin_dir=BIN))


def _fake_install(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (folder / name).write_text("")
    return folder


def test_find_bin_dir_path_first_then_newest_versioned_folder(tmp_path):
    for version in ("9.6", "15", "16"):
        _fake_install(tmp_path / "lib" / version / "bin")
    (tmp_path / "lib" / "17" / "bin").mkdir(parents=True)  # no binaries inside: not a candidate
    versioned = (f"{tmp_path}/lib/*/bin",)
    assert find_bin_dir("/nonexistent", versioned) == tmp_path / "lib" / "16" / "bin"
    on_path = _fake_install(tmp_path / "usr" / "bin")
    for name in ("initdb", "pg_ctl"):
        (on_path / name).chmod(0o755)
    assert find_bin_dir(str(on_path), versioned) == on_path


def test_find_binaries_prefers_the_system(tmp_path):
    system = _fake_install(tmp_path / "lib" / "15" / "bin")
    assert find_binaries("/nonexistent", (f"{tmp_path}/lib/*/bin",)) == Binaries(system, from_wheel=False)
    assert Binaries(system, from_wheel=False).describe() == f"PostgreSQL from {system}"
    assert "pgserver wheel" in Binaries(WHEEL, from_wheel=True).describe()


def test_nothing_available_says_what_to_do():
    with pytest.raises(PostgresUnavailableError, match="start Docker.*pgserver.*AIRSTACK_TEST_POSTGRES_DSN"):
        choose_provider(Probes(docker_reason="no daemon"))


def test_requested_but_unavailable():
    with pytest.raises(PostgresUnavailableError, match="container was requested but no daemon"):
        choose_provider(Probes(requested="container", docker_reason="no daemon", bin_dir=BIN))


def test_requested_unknown():
    with pytest.raises(PostgresUnavailableError, match="'sqlite' is not one of"):
        choose_provider(Probes(requested="sqlite"))


def test_redact_dsn():
    assert redact_dsn("postgresql+psycopg2://airflow:pa%40ss@127.0.0.1:5432/airflow") == \
        "postgresql+psycopg2://airflow:***@127.0.0.1:5432/airflow"
    assert redact_dsn("postgresql://postgres@/db?host=/tmp/x") == "postgresql://postgres@/db?host=/tmp/x"


@pytest.mark.parametrize("dsn", ["postgres://u:p@h:5432/db", "postgresql://u:p@h/db", "postgresql+asyncpg://u@h/db"])
def test_normalise_dsn(dsn):
    assert normalise_dsn(dsn).startswith("postgresql+psycopg2://")


@pytest.mark.parametrize(("dsn", "error"), [("mysql://u@h/db", "scheme 'mysql'"),
                                            ("postgresql://u@h", "name a database")])
def test_normalise_dsn_rejects(dsn, error):
    with pytest.raises(PostgresUnavailableError, match=error):
        normalise_dsn(dsn)


def test_run_as_user():
    assert run_as_user(euid=1000) is None
    assert run_as_user(euid=0, environ={"AIRSTACK_POSTGRES_RUN_AS": "root"}).pw_uid == 0
    with pytest.raises(PostgresUnavailableError, match="AIRSTACK_POSTGRES_RUN_AS"):
        run_as_user(euid=0, environ={"AIRSTACK_POSTGRES_RUN_AS": "no-such-user-here"})


# A Docker daemon that answers but cannot have the image (no registry access, a proxy): issue 23.
NO_PULL = ("image postgres:15 is not on this Docker daemon, and pulling it failed: the Docker daemon refused "
           "(APIError: no such host); set AIRSTACK_POSTGRES_IMAGE to a mirror or a local image to use Docker")


@pytest.mark.parametrize(("probes", "expected"), [
    (Probes(docker=True, image_problem=NO_PULL, bin_dir=BIN, pgserver_bin_dir=WHEEL), Provider.EMBEDDED),
    (Probes(docker=True, image_problem=NO_PULL, bin_dir=None, pgserver_bin_dir=WHEEL), Provider.PGSERVER),
], ids=["next-is-embedded", "then-pgserver"])
def test_an_image_the_daemon_cannot_have_falls_back_saying_why(probes, expected):
    choice = choose_provider(probes)
    assert choice.provider is expected
    assert choice.note == f"not a container: {NO_PULL}"
    line = choice.describe()  # what the pytest header shows: the provider used, why not a container, what to do
    assert line.startswith(f"{expected.value} (") and "image postgres:15" in line and "AIRSTACK_POSTGRES_IMAGE" in line
    assert "\n" not in line


def test_no_note_when_docker_was_not_the_way():
    assert choose_provider(Probes(docker=True, bin_dir=BIN)).note == ""  # the container it is
    assert choose_provider(Probes(docker=False, docker_reason="no daemon", bin_dir=BIN)).note == ""
    with_dsn = Probes(external_dsn="postgresql://u:p@h/db", docker=True, image_problem=NO_PULL, bin_dir=BIN)
    assert choose_provider(with_dsn).note == ""  # the external DSN comes before any container


def test_a_requested_container_whose_image_cannot_be_had_is_an_error():
    probes = Probes(requested="container", docker=True, image_problem=NO_PULL, bin_dir=BIN, pgserver_bin_dir=WHEEL)
    with pytest.raises(PostgresUnavailableError) as raised:
        choose_provider(probes)
    assert str(raised.value) == f"AIRSTACK_TEST_POSTGRES=container was requested but {NO_PULL}"


def test_nothing_at_all_names_the_image_too():
    with pytest.raises(PostgresUnavailableError, match=r"no Postgres for the tests \(.*image postgres:15"):
        choose_provider(Probes(docker=True, image_problem=NO_PULL))
