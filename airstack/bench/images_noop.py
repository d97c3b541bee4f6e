"""``images-noop``: with every image built, ``build-images`` (nothing to do) against a ``docker build`` of the
same contexts with a full layer cache, in the same run. Docker is reached through airstack.docker_client."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from airstack import paths, proc
from airstack.bench.common import write_result


def _buildable_images(docker, specs) -> list:
    """The images whose base image this daemon has (the conda base is not available offline)."""
    from airstack.external_images import image

    usable = []
    for spec in specs:
        if docker.image_exists(image(spec.base)):
            usable.append(spec)
        else:
            print(f"  {spec.name}: skipped, base image {image(spec.base)} is not available here")
    return usable


def _docker_build_cached(planned) -> None:
    """`docker build` of each context (the CLI, classic builder, context as a tar on stdin)."""
    from airstack.images.context import tar_context

    for item in planned:
        args = [a for key, value in item.buildargs.items() for a in ("--build-arg", f"{key}={value}")]
        proc.run(["docker", "build", "--quiet", *args, "--tag", f"{item.spec.name}:bench", "-"],
                 input=tar_context(item.entries), env={"DOCKER_BUILDKIT": "0"}, timeout=1800)


def _best_of(count: int, body: Callable[[], object]) -> list[float]:
    runs = []
    for _ in range(count):
        started = time.perf_counter()
        body()
        runs.append(time.perf_counter() - started)
    return runs


def run(args: argparse.Namespace) -> None:
    from airstack.docker_client import connect
    from airstack.images.builder import Builder
    from airstack.images.spec import discover

    root = paths.repo_root()
    docker = connect(timeout=900)
    specs = _buildable_images(docker, discover(root / "images"))
    command = [sys.executable, "-m", "airstack.images", "build", *[s.name for s in specs]]
    proc.run(command, cwd=root, timeout=3600)  # everything built (a no-op when it already is)

    def ours() -> None:
        out = proc.run(command, cwd=root, timeout=600).stdout
        if "nothing to build" not in out:
            raise SystemExit(f"build-images rebuilt something on a no-op run:\n{out}")

    builder = Builder(docker, root, root / ".airstack" / "logs" / "images")
    planned = builder.plan(specs)
    _docker_build_cached(planned)  # warm-up: the layer cache is full from here on
    ours_runs = _best_of(3, ours)
    plan_runs = _best_of(3, lambda: builder.plan(specs))
    docker_runs = _best_of(3, lambda: _docker_build_cached(planned))
    ours_s, docker_s = min(ours_runs), min(docker_runs)
    ratio = docker_s / ours_s
    write_result(
        "images-noop", ours_s, "s",
        f"build-images with nothing to do: {ours_s:.2f} s as a command ({min(plan_runs) * 1000:.0f} ms of it "
        f"deciding) vs `docker build` of the same {len(specs)} contexts with a full layer cache: {docker_s:.2f} s; "
        f"ratio {ratio:.2f}x (goal <= 1 s: {'met' if ours_s <= 1 else 'missed'}; >= 5x: "
        f"{'met' if ratio >= 5 else 'missed'})",
        images=[s.name for s in specs], ours_runs=[round(r, 3) for r in ours_runs],
        ours_plan_only_runs=[round(r, 4) for r in plan_runs],
        docker_build_cached_runs=[round(r, 3) for r in docker_runs],
        ratio=round(ratio, 2), goal="<= 1 s and >= 5x faster than a cached docker build",
    )
