"""What the local-environment benchmarks share: ``up``/``down``/``restart`` timed in a scratch copy on free
ports, each ``up``'s phases, the environment's memory (PSS of its process tree), a wait for health."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from airstack import paths, proc


def _pss_bytes(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _process_tree(roots: set[int]) -> set[int]:
    """``roots``, their process groups and every descendant."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)], groups[int(entry.name)] = int(fields[1]), int(fields[2])
    found = {p for p in parents if p in roots or groups[p] in roots}
    changed = True
    while changed:
        more = {p for p, parent in parents.items() if parent in found} - found
        found |= more
        changed = bool(more)
    return found


def wait_healthy(url: str, timeout: float = 300) -> None:
    from airstack.localenv.health import health

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s == "healthy" for s in health(url).values()):
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become healthy within {timeout:g} s")


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc.run(argv, env=env, timeout=900)
    return time.perf_counter() - started


def _up_phases(config, name: str = "up-phases") -> dict:
    path = config.log_file(name).with_suffix(".json")
    return json.loads(path.read_text()) if path.is_file() else {}


def local_env_runs(runtime: str, folders: tuple[str, ...], extra_env: dict[str, str] | None = None,
                   after_up: Callable[[Path, dict[str, str]], dict] | None = None) -> dict:
    """In a scratch copy, on free ports: a cold `up` (fresh database), then twice `down` + warm `up`, then a
    `restart`; each `up`'s phases (up-phases.json), the env's PSS; ``after_up`` measures more while it is up."""
    from airstack.localenv.config import LocalConfig
    from airstack.postgres.embedded import free_port

    with tempfile.TemporaryDirectory(prefix=f"airstack-bench-{runtime}-") as tmp:
        root = paths.scratch_copy(Path(tmp) / "repo", folders, ("pyproject.toml", ".sops.yaml"))
        env = {"AIRSTACK_ROOT": str(root), "AIRSTACK_LOCAL_API_PORT": str(free_port()),
               "AIRSTACK_LOCAL_POSTGRES_PORT": str(free_port()), "XDG_STATE_HOME": tmp, **(extra_env or {})}
        command = [sys.executable, "-m", "airstack.localenv"]
        config = LocalConfig.from_env(root, env)
        out: dict = {}
        try:
            out["cold_seconds"] = round(_timed([*command, "up", "--runtime", runtime], env), 3)
            out["cold_phases"] = _up_phases(config)
            warm, downs = [], []
            for _ in range(2):
                downs.append(round(_timed([*command, "down"], env), 3))
                out.setdefault("down_phases", []).append(_up_phases(config, "down-phases"))
                warm.append({"seconds": round(_timed([*command, "up", "--runtime", runtime], env), 3),
                             "phases": _up_phases(config)})
            out["warm"], out["down_seconds"] = warm, downs
            if runtime == "native":
                pids = {int(p.read_text()) for p in config.run.glob("*.pid")}
                pids.add(int((config.pgdata / "data" / "postmaster.pid").read_text().split()[0]))
                out["pss_mib"] = round(_pss_bytes(_process_tree(pids)) / 2**20, 1)
            if after_up:
                out |= after_up(root, env)
            out["restart_seconds"] = round(_timed([*command, "restart"], env), 3)
        finally:
            proc.run([*command, "clean", "--yes"], env=env, timeout=300, check=False)
    return out
