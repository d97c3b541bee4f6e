"""Building blocks for the settings tests: a scratch repository with real age keys and real sops."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from airstack import paths
from airstack.settings import sops
from airstack.settings.keys import AgeKeyPair, generate_age_key, new_fernet_key, new_secret
from airstack.settings.sops_config import add_recipient

DAG = '''
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
q = SQLExecuteQueryOperator(task_id="q", conn_id="warehouse_db", sql="select {{ var.value.threshold }}")
'''


def document(password: str = "s3cret-pw", **variables: str) -> dict:
    return {"airflow": {
        "keys": {"fernet_key": new_fernet_key(), "api_secret_key": new_secret(), "jwt_secret": new_secret()},
        "connections": [{"id": "warehouse_db", "type": "postgres", "host": "db.internal", "port": 5432,
                         "login": "etl", "password": password, "schema": "warehouse", "extra": {"sslmode": "require"}}],
        "variables": {"threshold": "10", **variables},
        "pools": [{"name": "warehouse", "slots": 4, "description": "queries"}],
    }}


@dataclass
class Repo:
    root: Path
    local: AgeKeyPair
    integration: AgeKeyPair

    def path(self, env: str = "local") -> Path:
        return self.root / "settings" / env / "secret.yaml"

    def write(self, doc: dict, env: str = "local") -> None:
        self.path(env).parent.mkdir(parents=True, exist_ok=True)
        sops.write_atomically(self.path(env), sops.encrypt(doc, self.path(env), env=env, key_env={}, root=self.root))


def make_repo(base: Path) -> Repo:
    root = base / "repo"
    (root / "settings" / "local").mkdir(parents=True)
    (root / "dags").mkdir()
    (root / "dags" / "q.py").write_text(DAG)
    (root / "images").mkdir()
    shutil.copy(paths.repo_root() / "pyproject.toml", root / "pyproject.toml")
    (root / "noxfile.py").write_text("")
    repo = Repo(root, generate_age_key(), generate_age_key())
    add_recipient(root / ".sops.yaml", "local", repo.local.recipient)
    add_recipient(root / ".sops.yaml", "integration", repo.integration.recipient)
    (root / "settings" / "local" / "age.key").write_text(repo.local.identity + "\n")
    repo.write(document(), "local")
    repo.write(document(), "integration")
    return repo
