"""``dag-integrity-scale``: the integrity check over 100, 300 and 1,000 generated DAG files, in a pool of one
worker per core; seconds per file at each size, and whether the cost per file stays the same."""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from airstack import paths
from airstack.airflow_env import base_env, configured
from airstack.bench.common import write_result


_TASKFLOW = '''
@task(retries=2)
def step_{i}(value):
    return (value or 0) + {i}
'''


def generate_dag_file(index: int, rng: random.Random) -> str:
    """A realistic DAG file: TaskFlow tasks and operators in a task group, 5-20 tasks."""
    n_tasks = rng.randint(5, 20)
    n_taskflow = rng.randint(1, n_tasks - 2)
    n_ops = n_tasks - n_taskflow
    lines = [
        f'"""Generated DAG {index} for the integrity benchmark."""',
        "import datetime",
        "",
        "import pendulum",
        "from airflow.providers.standard.operators.bash import BashOperator",
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "from airflow.providers.standard.operators.python import PythonOperator",
        "from airflow.sdk import DAG, TaskGroup, task",
        "",
        "",
        "def _transform(**context):",
        "    return context['ds']",
    ]
    lines += [_TASKFLOW.format(i=i) for i in range(n_taskflow)]
    lines += [
        "",
        f"with DAG(dag_id='generated_{index:04d}', schedule='@daily', catchup=False,",
        f"         start_date=pendulum.datetime(2024, 1, {1 + index % 28}, tz='UTC'),",
        f"         tags=['{rng.choice(['etl', 'reporting', 'ml'])}'],",
        "         default_args={'owner': 'bench', 'retries': 1, 'retry_delay': datetime.timedelta(minutes=5)}):",
        "    start = EmptyOperator(task_id='start')",
        "    with TaskGroup('ops') as ops:",
    ]
    kinds = ["bash", "python", "empty"]
    for i in range(n_ops - 1):
        kind = rng.choice(kinds)
        if kind == "bash":
            lines.append(f"        BashOperator(task_id='bash_{i}', bash_command='echo {{{{ ds }}}} {i}')")
        elif kind == "python":
            lines.append(f"        PythonOperator(task_id='py_{i}', python_callable=_transform)")
        else:
            lines.append(f"        EmptyOperator(task_id='empty_{i}')")
    chain = "None"
    for i in range(n_taskflow):
        chain = f"step_{i}({chain})"
    lines += [f"    result = {chain}", "    start >> ops >> result", ""]
    return "\n".join(lines)


def generate_dag_folder(folder: Path, count: int, seed: int = 42) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(count):
        path = folder / f"generated_{index:04d}.py"
        path.write_text(generate_dag_file(index, rng))
        files.append(path)
    return files


def run(args: argparse.Namespace) -> None:
    from airstack.dagtools.check.parse import check_files
    from airstack.dagtools.check.policy import load_policy

    policy = load_policy(paths.pyproject())
    workers = args.workers or os.cpu_count() or 1
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="airstack-bench-") as tmp, \
            configured(base_env(Path(tmp) / "home", Path(tmp) / "dags", paths.repo_root() / "plugins")):
        all_files = generate_dag_folder(Path(tmp) / "dags", max(args.sizes))
        for size in args.sizes:
            files = all_files[:size]
            started = time.perf_counter()
            reports = check_files(files, Path(tmp) / "dags", policy, workers=workers)
            elapsed = time.perf_counter() - started
            bad = [str(v) for r in reports for v in r.violations]
            if bad:
                raise SystemExit(f"generated DAGs should be clean, got: {bad[:3]}")
            tasks = sum(r.tasks for r in reports)
            sizes[str(size)] = {"seconds": round(elapsed, 3), "seconds_per_file": round(elapsed / size, 4),
                                "tasks": tasks}
            print(f"  {size:5d} files, {tasks:6d} tasks: {elapsed:6.2f} s ({elapsed / size * 1000:.1f} ms/file)")
    largest = str(max(args.sizes))
    # Linear growth: the cost of each extra file stays the same from one size to the next
    # (the fixed part is the workers' start-up, an Airflow import each).
    ordered = sorted((int(k), v["seconds"]) for k, v in sizes.items())
    marginal = [round((t2 - t1) / (n2 - n1), 4) for (n1, t1), (n2, t2) in zip(ordered, ordered[1:])]
    rates = ", ".join(f"{k} files: {v['seconds_per_file'] * 1000:.1f} ms/file" for k, v in sizes.items())
    write_result(
        "dag-integrity-scale", sizes[largest]["seconds"], "s",
        f"{largest} DAG files checked in {sizes[largest]['seconds']:.1f} s with {workers} workers "
        f"({rates}; goal <= 60 s)",
        goal=60.0, workers=workers, sizes=sizes, marginal_seconds_per_file=marginal,
        growth=("linear" if marginal and max(marginal) <= 1.5 * min(marginal)
                else "not linear: the marginal cost per file changes with size"),
    )
