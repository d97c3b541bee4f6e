"""A preview's own database (names, password, URL) and the parts its teardown removes: the pure functions.

The side effects (psycopg on a real Postgres, git on a scratch remote, S3 on the moto server) are tested in
tests/deploy/test_preview_db.py and tests/deploy/test_preview_teardown.py.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import pytest

from airstack.deploy import config, preview_db, teardown
from airstack.deploy import target
from airstack.errors import ConfigError
from airstack.settings.deploy_file import AirflowOptions

FILE = "settings/integration/secret.yaml"
ADMIN = "postgresql+psycopg2://integ_owner:s3cr%40t-pw@db.internal:6543/integ_meta?sslmode=require"


@pytest.mark.parametrize("branch", ["feature/S3-logs", "x" * 200, "Ünïcode/branch", "a"])
def test_names_are_postgres_identifiers_of_at_most_63_bytes(branch):
    preview = config.preview_name(branch)
    database, role = preview_db.names(preview)
    assert database == role and re.fullmatch(r"preview_[a-z0-9_]+", database), database
    assert len(database.encode()) <= 63


def test_names_differ_per_preview_and_refuse_what_is_no_identifier():
    names = {preview_db.names(config.preview_name(b))[0] for b in ("feature/a", "feature/b", "Feature/A")}
    assert len(names) == 3
    with pytest.raises(ConfigError, match="no Postgres identifier"):
        preview_db.names("airflow-" + "x" * 60)
    with pytest.raises(ConfigError, match="no Postgres identifier"):
        preview_db.names('airflow-"; drop role x')


def test_the_password_is_derived_per_preview_and_per_secret():
    one = preview_db.password("secret-a", "airflow-x")
    assert one == preview_db.password("secret-a", "airflow-x"), "a redeploy renders the same values"
    assert len({one, preview_db.password("secret-a", "airflow-y"), preview_db.password("secret-b", "airflow-x")}) == 3
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", one) and "secret-a" not in one


def test_the_preview_url_shares_only_host_port_and_options():
    db = preview_db.plan(ADMIN, "airflow-feature-x", FILE)
    parts, admin = urlsplit(db.url), urlsplit(ADMIN)
    assert (parts.scheme, parts.hostname, parts.port, parts.query) == (admin.scheme, "db.internal", 6543,
                                                                       "sslmode=require")
    assert parts.username == db.role == "preview_airflow_feature_x" and parts.path == "/preview_airflow_feature_x"
    assert unquote(parts.password) == preview_db.password("s3cr@t-pw", "airflow-feature-x")
    for value in ("integ_owner", "s3cr@t-pw", "s3cr%40t-pw", "integ_meta"):
        assert value not in db.url
    assert "s3cr" not in repr(db) and db.where == "db.internal:6543"
    assert urlsplit(preview_db.plan("postgresql://u:p@[::1]/d", "airflow-x", FILE).url).hostname == "::1"


@pytest.mark.parametrize(("url", "message"), [
    (None, f"{FILE}: airflow.metadata_connection: not set: a preview's database is made on integration's"),
    ("mysql://u:p@db/airflow", f"{FILE}: airflow.metadata_connection: previews need a PostgreSQL URL"),
    ("postgresql+psycopg2://airflow@db/airflow", f"{FILE}: airflow.metadata_connection: has no password"),
])
def test_a_url_previews_cannot_use_is_one_line_naming_file_and_field(url, message):
    with pytest.raises(ConfigError) as caught:
        preview_db.plan(url, "airflow-x", FILE)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert "p@" not in str(caught.value)


def test_isolated_settings_replace_only_the_metadata_url():
    from airstack.settings.schema import parse_settings

    settings = parse_settings({"airflow": {"metadata_connection": ADMIN, "variables": {"a": "1"}}}, FILE)
    db = preview_db.plan(ADMIN, "airflow-x", FILE)
    mine = preview_db.isolated(settings, db.url)
    assert mine.airflow.metadata_connection == db.url and mine.airflow.variables == {"a": "1"}
    assert settings.airflow.metadata_connection == ADMIN, "the original is left as it was"


def test_teardown_prefixes_are_the_previews_own_in_each_bucket_once():
    tgt = target.target(config.load(config_root(), "integration").spec.helm, "airflow-x")
    shared = AirflowOptions(remote_logging={"base": "s3://bkt-one/logs"}, storage={"base": "s3://bkt-one/data"})
    assert teardown.prefixes(shared, tgt) == [("bkt-one", "previews/airflow-x/")]
    two = AirflowOptions(remote_logging={"base": "s3://bkt-one/logs"}, storage={"base": "s3://bkt-two"})
    assert teardown.prefixes(two, tgt) == [("bkt-one", "previews/airflow-x/"), ("bkt-two", "previews/airflow-x/")]
    assert teardown.prefixes(AirflowOptions(), tgt) == []
    # What the preview's pods were given lies under the prefix removed.
    assert target.store_base("s3://bkt-one/logs", tgt).startswith("s3://bkt-one/previews/airflow-x/")


def test_an_outcome_is_one_line():
    assert teardown.Outcome("namespace airflow-x", teardown.ABSENT).line("airflow-x") == \
        "airflow-x: namespace airflow-x: already absent"
    failed = teardown.Outcome("deploy ref r", teardown.FAILED, "git push failed").line("airflow-x")
    assert failed == "airflow-x: deploy ref r: [red]failed[/]: git push failed"


def config_root():
    from airstack import paths

    return paths.repo_root()
