"""The docker runtime: the local environment as containers, through the Docker SDK.

A "pod", as on Kubernetes: the Postgres container owns one network namespace and the
Airflow containers (api-server, scheduler, dag-processor, triggerer, from the runtime image
of ``images/airflow``) join it. Inside, Postgres and the api-server listen on the same ports
as the native runtime, so ``settings/local`` (``warehouse_db`` at 127.0.0.1:5433) is the same
for both; the ports are published on 127.0.0.1 only. ``dags/`` and ``plugins/`` are mounted,
data and logs live in named volumes, everything carries the label ``io.airstack.env``.

Secrets never go into container configuration (dockerd stores it on disk): they are streamed
through ``exec`` stdin into a tmpfs (``/run/airstack``) and read by Airflow's ``*_CMD``
options and Postgres' ``POSTGRES_PASSWORD_FILE``. The database password is derived from
settings/local's JWT secret, so it is never stored and never changes between runs.

KubernetesPodOperator tasks run as sibling containers: the scheduler (LocalExecutor: tasks
run there) gets the daemon's socket, the data folder at its host path, settings/local's
``projects`` as a file in its tmpfs, and the pod runner (this ``airstack`` package, mounted
read-only: the runtime image does not ship the tooling); the pods join the env's network namespace.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import airstack
from airstack.docker_client import ContainerState, Docker
from airstack.errors import LocalEnvError
from airstack.external_images import image
from airstack.localenv.config import SERVICES, LocalConfig
from airstack.localenv.ports import port_free, taken

SECRETS_DIR = "/run/airstack"
PROJECTS_FILE = "projects.json"
# Only the service that runs tasks (LocalExecutor: the scheduler) talks to the daemon.
RUNS_PODS = "scheduler"
# Where that service finds the pod runner (airstack.localenv.pods) and the docker_client it uses.
POD_RUNNER_PATH = "/opt/airstack"
LOCAL_SETTINGS = "airstack/localenv/local_settings"  # under POD_RUNNER_PATH: airflow_local_settings.py
AIRFLOW_UID = 50000
# The DAG processor's file list, as the processor makes it (.airflowignore and safe mode), relative.
LIST_DAG_FILES = ("import json, os, sys; from airflow.configuration import conf; "
                  "from airflow.utils.file import list_py_file_paths; d = sys.argv[1]; "
                  "print('DAG_FILES=' + json.dumps(sorted(os.path.relpath(p, d) for p in list_py_file_paths("
                  "d, safe_mode=conf.getboolean('core', 'dag_discovery_safe_mode', fallback=True)))))")
WAIT_FOR = 'while [ ! -f {dir}/ready ]; do sleep 0.1; done; exec "$0" "$@"'
SECRET_OPTIONS = {"sql_alchemy_conn": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                  "fernet_key": "AIRFLOW__CORE__FERNET_KEY", "api_secret_key": "AIRFLOW__API__SECRET_KEY",
                  "jwt_secret": "AIRFLOW__API_AUTH__JWT_SECRET"}


def database_password(jwt_secret: str) -> str:
    return hmac.new(jwt_secret.encode(), b"airstack-local-postgres", hashlib.sha256).hexdigest()[:32]


def _secrets_tar(files: dict[str, str], uid: int, mode: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in [*files.items(), ("ready", "")]:  # `ready` last: the wrapper waits for it
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, uid, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class DockerRuntime:
    """The :class:`~airstack.localenv.runtime.Runtime` of containers (the runtime image, a Postgres image)."""

    name = "docker"
    airflow = "airflow"  # the CLI on the runtime image's PATH

    def __init__(self, config: LocalConfig, docker: Docker) -> None:
        self.config, self.docker = config, docker
        self.env_id = config.env_id
        self.password: str | None = None
        self.image: str | None = None

    # ------------------------------------------------------------------------ names --
    def container_name(self, service: str) -> str:
        return f"airstack-{self.env_id}-{service}"

    @property
    def labels(self) -> dict[str, str]:
        return {"io.airstack.env": self.env_id, "io.airstack.root": str(self.config.root)}

    @property
    def metadata_dsn(self) -> str:
        """The metadata DB as this (host) process reaches it: the published port, the derived password."""
        return f"postgresql+psycopg2://airflow:{self.password}@127.0.0.1:{self.config.postgres_port}/airflow"

    def prepare(self, settings, build: bool = True) -> None:
        """The database password (derived from settings/local) and the runtime image (built if missing)."""
        self.password = database_password(settings.airflow.keys.jwt_secret)
        if build:
            self.image = self.runtime_image()

    def pods_env(self, projects: dict) -> dict[str, str]:
        """Pod tasks join the env's network namespace: 127.0.0.1 is the same for them as for Airflow."""
        return self.config.pods_env(projects, network=f"container:{self.container_name('postgres')}")

    def _docker_socket(self) -> str | None:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return host.removeprefix("unix://") if host.startswith("unix://") else None

    def _pod_runner_options(self) -> dict:
        """The scheduler's extras: the daemon's socket (and its group), the data folder at its host path, and
        the pod runner (this ``airstack`` package, read-only: the runtime image does not ship the tooling) with
        the local settings that use it (``pod_policy``) on ``PYTHONPATH``."""
        socket_path = self._docker_socket()
        data = str(self.config.data_dir)
        tooling = str(Path(airstack.__file__).parent)
        options: dict = {"volumes": {data: {"bind": data, "mode": "rw"},
                                     tooling: {"bind": f"{POD_RUNNER_PATH}/airstack", "mode": "ro"}},
                         "environment": {"PYTHONPATH": f"{POD_RUNNER_PATH}/{LOCAL_SETTINGS}:{POD_RUNNER_PATH}"}}
        if socket_path and os.path.exists(socket_path):
            options["volumes"][socket_path] = {"bind": "/var/run/docker.sock", "mode": "rw"}
            options["group_add"] = [str(os.stat(socket_path).st_gid)]
            options["environment"]["DOCKER_HOST"] = "unix:///var/run/docker.sock"
        return options

    def _container(self, service: str) -> ContainerState | None:
        return self.docker.find_container(self.container_name(service))

    def _running(self, service: str) -> bool:
        container = self._container(service)
        return container is not None and container.running

    # ---------------------------------------------------------------------- secrets --
    def _deliver(self, container: str, files: dict[str, str], uid: int, mode: int) -> None:
        """Stream files into the container's tmpfs through exec stdin (memory only)."""
        code = self.docker.exec_with_stdin(container, ["tar", "-x", "-C", SECRETS_DIR], _secrets_tar(files, uid, mode),
                                           user="0")
        if code != 0:
            raise LocalEnvError(f"could not hand the keys to {container} (tar exit {code})")

    # --------------------------------------------------------------------- postgres --
    def preflight(self) -> None:
        if not self._running("postgres"):
            for port, variable in ((self.config.postgres_port, "AIRSTACK_LOCAL_POSTGRES_PORT"),
                                   (self.config.api_port, "AIRSTACK_LOCAL_API_PORT")):
                if not port_free(port):
                    raise LocalEnvError(taken(self.config, port, "the local environment", variable))

    def postgres_running(self) -> bool:
        return self._running("postgres")

    def start_postgres(self) -> None:
        from airstack.postgres.sql import wait_ready

        if not self._running("postgres"):
            self._remove("postgres")
            network = self._network()
            pg_image = image("postgres")
            self._require_image(pg_image, "AIRSTACK_POSTGRES_IMAGE")
            port, api = self.config.postgres_port, self.config.api_port
            config = self.docker.inspect_image(pg_image)["Config"]
            self.docker.run_container(
                pg_image, name=self.container_name("postgres"), labels=self.labels,
                entrypoint=["sh", "-c", WAIT_FOR.format(dir=SECRETS_DIR)],
                command=[*(config.get("Entrypoint") or []), *(config.get("Cmd") or ["postgres"]), "-p", str(port)],
                environment={"POSTGRES_USER": "airflow", "POSTGRES_DB": "airflow",
                             "POSTGRES_PASSWORD_FILE": f"{SECRETS_DIR}/pg_password"},
                tmpfs={SECRETS_DIR: "mode=0755"}, network=network,
                volumes={f"airstack-{self.env_id}-pgdata": {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
                ports={f"{port}/tcp": ("127.0.0.1", port), f"{api}/tcp": ("127.0.0.1", api)},
            )
            self._deliver(self.container_name("postgres"), {"pg_password": self.password}, uid=0, mode=0o444)
        try:
            wait_ready(self.metadata_dsn, timeout=60)
        except Exception:  # noqa: BLE001 - any failure: report the container's log
            raise LocalEnvError(f"Postgres did not become ready; last lines of its log:\n{self._tail('postgres')}") \
                from None

    def stop_postgres(self) -> None:
        self._stop("postgres")

    # ---------------------------------------------------------------------- airflow --
    def runtime_image(self) -> str:
        from airstack.docker_client import connect
        from airstack.images.builder import Builder
        from airstack.images.spec import load_spec

        builder = Builder(connect(timeout=900), self.config.root, self.config.logs / "images")
        (item,) = builder.plan([load_spec(self.config.root / "images" / "airflow")])
        if item.needs_build:
            builder.build(item)
        return item.ref

    @property
    def postgres_source(self) -> str:
        return f"the {image('postgres')} container"

    def pid(self, service: str) -> int | str | None:
        container = self._container(service)
        return container.short_id if container is not None and container.running else None

    def start_service(self, service: str, env: dict[str, str], argv: list[str] | None = None) -> None:
        """An Airflow service's container. The options' servers (``argv``) run in the native runtime only."""
        if argv is not None:
            raise LocalEnvError(f"{service}: the options' servers run in the native runtime (`nox -s down`, then "
                                "`nox -s up -- --runtime native`)")
        if self._running(service):
            return
        self._remove(service)
        plain = {k: v for k, v in env.items() if k not in SECRET_OPTIONS.values() and k != "AIRSTACK_LOCAL_PROJECTS"}
        plain.update({f"{option}_CMD": f"cat {SECRETS_DIR}/{name}" for name, option in SECRET_OPTIONS.items()})
        extra = self._pod_runner_options() if service == RUNS_PODS else {"volumes": {}, "environment": {}}
        plain.update(extra.pop("environment"))
        if service == RUNS_PODS and "AIRSTACK_LOCAL_PROJECTS" in env:
            plain["AIRSTACK_LOCAL_PROJECTS_FILE"] = f"{SECRETS_DIR}/{PROJECTS_FILE}"
        plain.update({"AIRFLOW_HOME": "/opt/airflow", "AIRFLOW__CORE__DAGS_FOLDER": "/opt/airflow/dags",
                      "AIRFLOW__CORE__PLUGINS_FOLDER": "/opt/airflow/plugins", "AIRFLOW_COMPONENT": service,
                      "AIRFLOW_API_PORT": str(self.config.api_port)})
        argv = self.config.service_argv(self.airflow, service)[1:]
        if service == "api-server":  # inside the pod; the host sees it on 127.0.0.1 only
            argv = ["api-server", "--host", "0.0.0.0", "--port", str(self.config.api_port)]
        root = self.config.root
        self.docker.run_container(
            self.image, name=self.container_name(service), labels=self.labels,
            entrypoint=["sh", "-c", WAIT_FOR.format(dir=SECRETS_DIR), "airflow"], command=argv,
            environment=plain, tmpfs={SECRETS_DIR: "mode=0755"},
            network_mode=f"container:{self.container_name('postgres')}",
            volumes={str(root / "dags"): {"bind": "/opt/airflow/dags", "mode": "rw"},
                     str(root / "plugins"): {"bind": "/opt/airflow/plugins", "mode": "ro"},
                     f"airstack-{self.env_id}-logs": {"bind": "/opt/airflow/logs", "mode": "rw"},
                     **extra.pop("volumes")},
            **extra,
        )
        inside = f"postgresql+psycopg2://airflow:{self.password}@127.0.0.1:{self.config.postgres_port}/airflow"
        secrets = {"sql_alchemy_conn": inside} | {name: env[option] for name, option in SECRET_OPTIONS.items()
                                                  if name != "sql_alchemy_conn"}
        if service == RUNS_PODS and "AIRSTACK_LOCAL_PROJECTS" in env:
            secrets[PROJECTS_FILE] = env["AIRSTACK_LOCAL_PROJECTS"]
        self._deliver(self.container_name(service), secrets, uid=AIRFLOW_UID, mode=0o400)

    # Services start from their own image here: nothing to warm, and the DAG processor's view comes from
    # inside its container.
    def begin(self, env: dict[str, str]) -> None:
        if "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST" in env:  # the host's bare repository: not in here
            raise LocalEnvError("settings/local/deploy.yaml: airflow.dag_bundle.kind: git runs in the native "
                                "runtime: `nox -s down`, then `nox -s up -- --runtime native`")

    def end(self) -> None:
        pass

    stop_seconds: dict[str, float] = {}  # not measured per container

    def import_seconds(self) -> dict[str, float | None]:
        return {}

    def started_at(self, service: str) -> datetime:
        container = self._container(service)
        stamp = container.started if container else ""
        return datetime.fromisoformat(stamp[:26]).replace(tzinfo=timezone.utc) if stamp else datetime.now(timezone.utc)

    def parsing_idle(self) -> bool | None:
        """Whether the DAG processor's container runs nothing but the processor (it forks one process per file)."""
        processes = self.docker.process_count(self.container_name("dag-processor"))
        return processes is not None and processes <= 1

    def dag_files(self) -> list[str] | None:
        """The files Airflow's DAG processor parses, listed by Airflow inside its container."""
        code, out, err = self.docker.exec_run(self.container_name("dag-processor"),
                                              ["python", "-c", LIST_DAG_FILES, "/opt/airflow/dags"])
        listed = [line for line in out.decode(errors="replace").splitlines() if line.startswith("DAG_FILES=")]
        if code != 0 or not listed:  # Airflow may log on stdout too: the answer is the marked line
            raise LocalEnvError(f"could not list the DAG files in the dag-processor container: "
                                f"{err.decode(errors='replace').strip()[-500:]}")
        return json.loads(listed[-1].removeprefix("DAG_FILES="))

    def parse_dag_files(self, files: list[str]) -> dict[str, dict]:
        """Each file parsed once by Airflow, filecheck.py's source run in the scheduler's container: the runtime
        image and configuration the DAG processor has, and this package (read-only, on its PYTHONPATH), whose
        Airflow seam (airstack.airflow_compat) filecheck parses with."""
        from airstack.localenv import filecheck

        code, out, err = self.docker.exec_run(self.container_name(RUNS_PODS),
                                              ["python", "-c", Path(filecheck.__file__).read_text(),
                                               "/opt/airflow/dags", *files])
        found = filecheck.answer(out.decode(errors="replace"))
        if found is None:
            raise LocalEnvError(f"could not parse {', '.join(files)} in the {RUNS_PODS} container (exit {code}): "
                                f"{err.decode(errors='replace').strip()[-500:]}")
        return found

    def check_alive(self, services: Iterable[str] = SERVICES) -> None:
        for service in (*services, "postgres"):
            if not self._running(service):
                raise LocalEnvError(f"{service} exited; last lines of its log:\n{self._tail(service)}")

    def stop_services(self, timeout: float = 20.0, notify: Callable[[str], object] | None = None) -> list[str]:
        return [s for s in SERVICES if self._stop(s, timeout)]

    def log_tail(self, service: str, lines: int) -> str:
        return self._tail(service, lines)

    def remove_all(self) -> None:
        for service in (*SERVICES, "postgres"):
            self._remove(service)
        # pod tasks kept for inspection (on_finish_action), volumes, the network
        self.docker.remove_labelled(f"io.airstack.env={self.env_id}")

    # ---------------------------------------------------------------------- helpers --
    def _network(self) -> str:
        name = f"airstack-{self.env_id}"
        self.docker.ensure_network(name, self.labels)
        for volume in ("pgdata", "logs"):
            self.docker.ensure_volume(f"airstack-{self.env_id}-{volume}", self.labels)
        return name

    def _require_image(self, ref: str, variable: str) -> None:
        self.docker.ensure_image(ref, f"set {variable} to one this daemon has or can pull")

    def _stop(self, service: str, timeout: float = 20.0) -> bool:
        return self.docker.stop_container(self.container_name(service), timeout)

    def _remove(self, service: str) -> None:
        self.docker.remove_container(self.container_name(service))

    def _tail(self, service: str, lines: int = 15) -> str:
        logs = self.docker.logs_tail(self.container_name(service), lines)
        if logs is None:
            return "    (no container)"
        text = logs.rstrip().splitlines()
        return "\n".join(f"    {line}" for line in text)
