"""``nox -s dag-diff -- [REF] [--json] [--output FILE]``: what a change does to the DAGs, for a reviewer.

The DAG folder at REF (default: the merge base of HEAD with main, else with origin/main) and
the working tree's are each copied to a temporary folder (``git archive``; the checkout is
never touched) and parsed by this environment's Airflow in a process of its own
(:mod:`airstack.dagtools.snapshot`). Two snapshots are compared here:

- :func:`diff` and :func:`render_markdown` are pure (unit-tested on hand-made snapshots);
- :func:`resolve_ref`, :func:`export_ref`, :func:`take_snapshot` and :func:`main` do the I/O.

A task of REF is *renamed* to a task of the working tree when, in the same DAG, the first
was removed and the second added, and they have the same operator class, retries, pool,
queue, images, connections, variables and argument digest (templated fields with the
task id and its DNS form masked, and the Python callable's code), and the same upstream and downstream task
ids, every rename applied (a neighbour that is itself renamed counts under its new id).
Candidates are paired only one-to-one: a removed task with exactly one added task of the same
arguments, which no other removed task matches; pairs whose neighbours then differ are dropped
until none does. Anything else stays "removed" and "added".
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from airstack import paths, proc
from airstack.dagtools import snapshot
from airstack.airflow_env import base_env
from airstack.cli import run_main
from airstack.errors import AirstackError, ConfigError

DAG_FIELDS = ("schedule", "catchup", "owners", "retries", "file")
TASK_FIELDS = ("operator", "retries", "pool", "queue", "images", "connections", "variables")
USES = ("images", "connections", "variables")
RENAME_KEYS = ("operator", "retries", "pool", "queue", "images", "connections", "variables", "args")


# ------------------------------------------------------------------------------ pure --
def _edges(dag: dict, rename: dict[str, str] | None = None) -> set[tuple[str, str]]:
    rename = rename or {}
    return {(rename.get(t, t), rename.get(d, d)) for t, task in dag["tasks"].items() for d in task["downstream"]}


def find_renames(before: dict, after: dict) -> dict[str, str]:
    """``{old task id: new task id}`` for one DAG's two snapshots (see the module's docstring)."""
    removed = sorted(set(before["tasks"]) - set(after["tasks"]))
    added = sorted(set(after["tasks"]) - set(before["tasks"]))

    def same_args(old: dict, new: dict) -> bool:
        return all(old.get(k) == new.get(k) for k in RENAME_KEYS)

    candidates = {r: [a for a in added if same_args(before["tasks"][r], after["tasks"][a])] for r in removed}
    chosen = {r: c[0] for r, c in candidates.items()
              if len(c) == 1 and sum(c[0] in other for other in candidates.values()) == 1}
    renames = dict(chosen)
    while True:  # drop pairs whose neighbours differ (with the other renames applied) until none does
        wrong = [old for old, new in renames.items()
                 if not _same_neighbours(before["tasks"][old], after["tasks"][new], renames)]
        if not wrong:
            break
        for old in wrong:
            del renames[old]
    return renames


def _same_neighbours(old: dict, new: dict, renames: dict[str, str]) -> bool:
    def mapped(ids):
        return sorted(renames.get(i, i) for i in ids)

    return mapped(old["upstream"]) == sorted(new["upstream"]) and mapped(old["downstream"]) == sorted(new["downstream"])


def _changes(before: dict, after: dict, fields: tuple[str, ...]) -> list[dict]:
    return [{"field": f, "before": before.get(f), "after": after.get(f)}
            for f in fields if before.get(f) != after.get(f)]


def diff_dag(before: dict, after: dict) -> dict:
    """One DAG's changes (empty lists everywhere: unchanged)."""
    renames = find_renames(before, after)
    removed = sorted(set(before["tasks"]) - set(after["tasks"]) - set(renames))
    added = sorted(set(after["tasks"]) - set(before["tasks"]) - set(renames.values()))
    old_edges, new_edges = _edges(before, renames), _edges(after)
    task_changes = []
    for old_id, old in sorted(before["tasks"].items()):
        new_id = renames.get(old_id, old_id)
        if new_id in after["tasks"]:
            task_changes += [{"task_id": new_id, **c} for c in _changes(old, after["tasks"][new_id], TASK_FIELDS)]
    return {
        "dag_id": after["dag_id"],
        "file": after["file"],
        "changes": _changes(before, after, DAG_FIELDS),
        "tasks_added": [_task_summary(after["tasks"][t]) for t in added],
        "tasks_removed": removed,
        "tasks_renamed": [{"before": o, "after": n} for o, n in sorted(renames.items())],
        "edges_added": sorted(map(list, new_edges - old_edges)),
        "edges_removed": sorted(map(list, old_edges - new_edges)),
        "task_changes": task_changes,
        "uses": {t: {k: task[k] for k in USES} for t, task in sorted(after["tasks"].items()) if _uses(task)},
    }


def _task_summary(task: dict) -> dict:
    return {k: task[k] for k in ("task_id", "operator", "upstream", "downstream", "retries", "pool", "queue",
                                 "images", "connections", "variables")}


def _dag_summary(dag: dict) -> dict:
    return {"dag_id": dag["dag_id"], "file": dag["file"], "schedule": dag["schedule"], "catchup": dag["catchup"],
            "owners": dag["owners"], "retries": dag["retries"],
            "tasks": [_task_summary(t) for _, t in sorted(dag["tasks"].items())]}


def _is_changed(d: dict) -> bool:
    return any(d[k] for k in ("changes", "tasks_added", "tasks_removed", "tasks_renamed", "edges_added",
                              "edges_removed", "task_changes"))


def diff(base: dict, head: dict) -> dict:
    """Compare two snapshots (``{"dags": ..., "errors": ...}``, REF's and the working tree's).

    A DAG whose file fails to parse on one side is not reported added or removed: it is
    listed under ``not_compared`` with the parse error.
    """
    old, new = base["dags"], head["dags"]
    failed_head, failed_base = set(head["errors"]), set(base["errors"])
    not_compared = sorted([d for d in set(old) - set(new) if old[d]["file"] in failed_head]
                          + [d for d in set(new) - set(old) if new[d]["file"] in failed_base])
    added, removed = set(new) - set(old) - set(not_compared), set(old) - set(new) - set(not_compared)
    return {
        "dags_added": [_dag_summary(new[d]) for d in sorted(added)],
        "dags_removed": [{"dag_id": d, "file": old[d]["file"]} for d in sorted(removed)],
        "dags_changed": [c for d in sorted(set(old) & set(new)) if _is_changed(c := diff_dag(old[d], new[d]))],
        "not_compared": not_compared,
        "parse_errors": {
            "base": [{"file": f, "error": e} for f, e in sorted(base["errors"].items())],
            "head": [{"file": f, "error": e} for f, e in sorted(head["errors"].items())],
        },
    }


def has_changes(result: dict) -> bool:
    return any(result[k] for k in ("dags_added", "dags_removed", "dags_changed", "not_compared"))


def _code(value) -> str:
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value) if value else "none"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _uses(task: dict) -> str:
    parts = [f"{k}: {_code(task[k])}" for k in USES if task[k]]
    return "; ".join(parts)


def render_markdown(result: dict, base_label: str, head_label: str = "working tree") -> str:
    """A pull-request comment: one heading per DAG added, removed or changed."""
    lines = [f"## DAG changes: {base_label} → {head_label}", ""]
    errors = [(side, e) for side in ("base", "head") for e in result["parse_errors"][side]]
    if errors:
        lines += ["**Parse errors**", "", "| side | file | error |", "| --- | --- | --- |"]
        labels = {"base": base_label, "head": head_label}
        lines += [f"| {_cell(labels[side])} | `{e['file']}` | {_cell(e['error'])} |" for side, e in errors]
        lines.append("")
    if result["not_compared"]:
        lines += [f"Not compared (their file does not parse on one side): {_code(result['not_compared'])}", ""]
    if not has_changes(result):
        lines += ["No DAG changes.", ""]
        return "\n".join(lines)
    for dag in result["dags_added"]:
        lines += [f"### `{dag['dag_id']}`: added (`{dag['file']}`)", "",
                  f"- schedule {_code(dag['schedule'])}, catchup {_code(dag['catchup'])}, "
                  f"owners {_code(dag['owners'])}, retries {_code(dag['retries'])}", "",
                  "| task | operator | upstream | uses |", "| --- | --- | --- | --- |"]
        lines += [f"| `{t['task_id']}` | `{t['operator']}` | {_code(t['upstream'])} | {_cell(_uses(t)) or '-'} |"
                  for t in dag["tasks"]]
        lines.append("")
    for dag in result["dags_removed"]:
        lines += [f"### `{dag['dag_id']}`: removed (`{dag['file']}`)", ""]
    for dag in result["dags_changed"]:
        lines += [f"### `{dag['dag_id']}`: changed (`{dag['file']}`)", ""]
        lines += [f"- {c['field']}: {_code(c['before'])} → {_code(c['after'])}" for c in dag["changes"]]
        lines += [f"- task added: `{t['task_id']}` (`{t['operator']}`)" + (f"; {_uses(t)}" if _uses(t) else "")
                  for t in dag["tasks_added"]]
        lines += [f"- task removed: `{t}`" for t in dag["tasks_removed"]]
        lines += [f"- task renamed: `{r['before']}` → `{r['after']}`" for r in dag["tasks_renamed"]]
        lines += [f"- edge added: `{u} >> {d}`" for u, d in dag["edges_added"]]
        lines += [f"- edge removed: `{u} >> {d}`" for u, d in dag["edges_removed"]]
        if dag["task_changes"]:
            lines += ([""] if lines[-1] else []) + ["| task | field | before | after |", "| --- | --- | --- | --- |"]
            lines += [f"| `{c['task_id']}` | {c['field']} | {_cell(_code(c['before']))} | {_cell(_code(c['after']))} |"
                      for c in dag["task_changes"]]
        if dag["uses"]:
            lines += ([""] if lines[-1] else []) + ["<details><summary>What its tasks use</summary>", "",
                                                    "| task | uses |", "| --- | --- |"]
            lines += [f"| `{t}` | {_cell(_uses(u))} |" for t, u in dag["uses"].items()]
            lines += ["", "</details>"]
        lines.append("")
    return "\n".join(lines)


# -------------------------------------------------------------------------------- I/O --
class DagDiffError(AirstackError):
    """dag-diff cannot run: a bad REF, no git, a parse process that died."""


def _git(root: Path, *args: str, check: bool = False) -> proc.Result:
    return proc.run(["git", *args], cwd=root, check=check, what=f"git {args[0]}")


def resolve_ref(root: Path, ref: str | None) -> tuple[str, str]:
    """(label, commit) for REF; without REF, the merge base of HEAD with main (else origin/main)."""
    if ref is None:
        for branch in ("main", "origin/main"):
            found = _git(root, "merge-base", "HEAD", branch)
            if found.returncode == 0:
                commit = found.stdout.strip()
                return f"merge base with {branch} ({commit[:10]})", commit
        raise DagDiffError("no REF given and no merge base of HEAD with main or origin/main: "
                           "pass one, e.g. `nox -s dag-diff -- origin/main`")
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise DagDiffError(f"REF {ref!r} is not a commit in {root}: give a branch, tag or commit")
    commit = found.stdout.strip()
    return f"{ref} ({commit[:10]})", commit


def export_ref(root: Path, commit: str, folder: str, dest: Path) -> Path:
    """``folder`` (e.g. ``dags``) as it is at ``commit``, written under ``dest`` (empty if absent there)."""
    listed = _git(root, "ls-tree", "--name-only", commit, folder)
    out = dest / folder
    out.mkdir(parents=True)
    if not listed.stdout.strip():
        return out
    archive = dest / "ref.tar"
    proc.run(["git", "archive", "--format=tar", "-o", str(archive), commit, folder], cwd=root, what="git archive")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    return out


def export_worktree(source: Path, dest: Path) -> Path:
    """The working tree's DAG folder, uncommitted changes included (caches and images.json left out)."""
    out = dest / source.name
    if source.is_dir():
        shutil.copytree(source, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "images.json"))
    else:
        out.mkdir(parents=True)
    return out


def take_snapshot(folder: Path, plugins: Path, home: Path) -> dict:
    """Parse ``folder`` in a fresh interpreter of this environment (:mod:`airstack.dagtools.snapshot`)."""
    output = home / "snapshot.json"
    env = {**base_env(home, folder, plugins), "AIRSTACK_IMAGES": "", "AIRSTACK_IMAGE_REGISTRY": "",
           "PYTHONDONTWRITEBYTECODE": "1"}  # no caches written into the exported trees
    proc.run([sys.executable, "-m", snapshot.__name__, str(folder), str(output)], env=env, cwd=home,
             what="parsing the DAGs", timeout=900)
    return json.loads(output.read_text())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nox -s dag-diff --", description=__doc__.split("\n\n")[0])
    parser.add_argument("ref", nargs="?", help="the commit to compare with (default: merge base with main)")
    parser.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    parser.add_argument("--output", type=Path, help="write the report here instead of stdout")
    args = parser.parse_args(argv)

    root = paths.repo_root()
    dags = paths.dags_folder()
    try:
        folder = dags.relative_to(root).as_posix()
    except ValueError:
        raise ConfigError(f"the DAG folder {dags} is not inside the repository {root}") from None
    if _git(root, "rev-parse", "--is-inside-work-tree").returncode != 0:
        raise DagDiffError(f"{root} is not a git checkout")
    label, commit = resolve_ref(root, args.ref)
    plugins = root / "plugins"
    with tempfile.TemporaryDirectory(prefix="airstack-dagdiff-") as tmp:
        tmp = Path(tmp)
        sides = {}
        for side in ("base", "head"):
            (tmp / side / "home").mkdir(parents=True)
            exported = export_ref(root, commit, folder, tmp / side / "tree") if side == "base" \
                else export_worktree(dags, tmp / side / "tree")
            empty_plugins = tmp / side / "plugins"
            empty_plugins.mkdir()
            sides[side] = take_snapshot(exported, plugins if plugins.is_dir() else empty_plugins, tmp / side / "home")
    result = diff(sides["base"], sides["head"])
    if args.json:
        text = json.dumps({"base": {"label": label, "commit": commit}, "head": "working tree", **result}, indent=2)
    else:
        text = render_markdown(result, label)
    if args.output:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text + "\n")
        except OSError as exc:
            raise DagDiffError(f"--output {args.output}: cannot write it ({exc.strerror})") from None
        print(f"dag-diff: report written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
