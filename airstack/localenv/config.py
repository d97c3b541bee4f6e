"""What the local environment is made of: paths, ports, services, environment (pure)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from airstack.airflow_env import SIMPLE_AUTH_MANAGER, base_env

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
API_PORT_ENV = "AIRSTACK_LOCAL_API_PORT"
PG_PORT_ENV = "AIRSTACK_LOCAL_POSTGRES_PORT"
# Health components of /api/v2/monitor/health that must all be "healthy".
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


@dataclass(frozen=True)
class LocalConfig:
    root: Path
    api_port: int = 8080
    postgres_port: int = 5433

    @classmethod
    def from_env(cls, root: Path, environ: dict[str, str] | None = None) -> LocalConfig:
        environ = os.environ if environ is None else environ
        return cls(root, int(environ.get(API_PORT_ENV, 8080)), int(environ.get(PG_PORT_ENV, 5433)))

    # ------------------------------------------------------------------------- paths --
    @property
    def state(self) -> Path:
        return self.root / ".airstack" / "local" / "native"

    @property
    def pgdata(self) -> Path:
        """Postgres' folder: in the checkout, unless the user Postgres runs as cannot reach it (root-only
        parents while running as root); then a per-checkout folder under /var/tmp."""
        inside = self.state / "postgres"
        from airstack.postgres.embedded import run_as_user

        user = run_as_user()
        if user is None or _reachable(inside.parent, user.pw_uid, user.pw_gid):
            return inside
        return Path("/var/tmp") / f"airstack-{self._digest}" / "postgres"

    @property
    def _digest(self) -> str:
        return hashlib.sha256(str(self.state).encode()).hexdigest()[:10]

    @property
    def env_id(self) -> str:
        """Names and labels this checkout's env on the Docker daemon (containers, volumes, pods)."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:10]

    @property
    def data_dir(self) -> Path:
        """The ``airflow-data`` claim of KubernetesPodOperator tasks (``/data/<project>`` in their pods)."""
        return self.state.parent / "data"

    @property
    def socket_dir(self) -> Path:
        """Postgres' unix socket: short (the 107-byte limit), private, one per checkout."""
        return Path(tempfile.gettempdir()) / f"airstack-pg-{self._digest}"

    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow-home"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def lock_file(self) -> Path:
        return self.root / ".airstack" / "local" / "lock"

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    # ---------------------------------------------------------------------- airflow --
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def metadata_dsn(self) -> str:
        """The metadata DB over the private unix socket (trusted there; no password exists to leak)."""
        return f"postgresql+psycopg2://airflow@/airflow?host={self.socket_dir}&port={self.postgres_port}"

    def airflow_env(self, keys_env: dict[str, str]) -> dict[str, str]:
        """Every Airflow service's environment. ``keys_env`` holds the keys from settings/local."""
        env = base_env(self.airflow_home, self.root / "dags", self.root / "plugins")
        env.update({
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_dsn,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            # Local only: every request is an admin, so there is no password to print or store.
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Edits show up within seconds: the DAG folder is listed every 2 s for new files (an edited
            # file is re-parsed at the processor's next loop: parsing order is by modification time).
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
        })
        env.update(keys_env)
        return env

    def pods_env(self, projects: dict, network: str) -> dict[str, str]:
        """What makes KubernetesPodOperator tasks run as local containers (airstack/localenv/pods.py).

        ``projects`` (settings/local's ``projects``, secrets included) is handed over as
        ``AIRSTACK_LOCAL_PROJECTS``; a runtime that must keep it out of configuration moves it.
        """
        return {
            "AIRSTACK_LOCAL_PODS": "docker",
            "AIRSTACK_LOCAL_VOLUMES": json.dumps({"airflow-data": str(self.data_dir)}),
            "AIRSTACK_LOCAL_POD_NETWORK": network,
            "AIRSTACK_LOCAL_POD_LABELS": json.dumps({"io.airstack.env": self.env_id, "io.airstack.pod": "true"}),
            "AIRSTACK_LOCAL_PROJECTS": json.dumps({name: p.model_dump() for name, p in projects.items()}),
        }

    def service_argv(self, airflow: str, service: str) -> list[str]:
        """The command line of each service; nothing listens beyond 127.0.0.1 (no log servers: the
        api-server reads task logs from the shared folder)."""
        if service == "api-server":
            return [airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)]
        if service in ("scheduler", "triggerer"):
            return [airflow, service, "--skip-serve-logs"]
        return [airflow, service]


def _reachable(path: Path, uid: int, gid: int) -> bool:
    """Whether user ``uid`` can traverse every existing folder from / down to ``path``."""
    for folder in [*reversed(path.parents), path]:
        try:
            st = folder.stat()
        except FileNotFoundError:
            break
        bit = 0o100 if st.st_uid == uid else 0o010 if st.st_gid == gid else 0o001
        if not st.st_mode & bit:
            return False
    return True


def keys_environment(keys) -> dict[str, str]:
    """The Airflow keys from settings/local (a ``schema.Keys``) as configuration variables."""
    from airstack.errors import ConfigError

    missing = [name for name in ("fernet_key", "api_secret_key", "jwt_secret") if getattr(keys, name) is None]
    if missing:
        raise ConfigError(f"settings/local/secret.yaml: airflow.keys: missing {', '.join(missing)}; "
                          "run `nox -s settings-keys -- local`")
    return {"AIRFLOW__CORE__FERNET_KEY": keys.airflow_fernet_key(), "AIRFLOW__API__SECRET_KEY": keys.api_secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": keys.jwt_secret}
