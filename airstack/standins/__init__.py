"""Stand-ins for what cannot run here, started from one place for the tests, ``nox -s ci`` and benchmarks.

Modules:

- ``aws``: :func:`~airstack.standins.aws.moto_server`, the moto server on 127.0.0.1 that stands in for AWS
  (CloudFormation, ECR, S3, KMS, SSM...), and the throwaway-credential environment pointing boto3 at it;
- ``helm``: the recording ``helm`` program (renders local charts with the real Helm 4 engine, records every
  call with stdin digested) and :func:`~airstack.standins.helm.install`, which puts it on PATH.

:func:`aws_and_helm` starts both for a deploy. Nothing here is used by a real deploy or by ``up``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def aws_and_helm(tmp: Path) -> Iterator[dict[str, str]]:
    """A moto server and the helm stand-in (state in ``tmp``); yields the environment that points a deploy at
    them (AWS_* with throwaway credentials, PATH, HELM_STANDIN_STATE)."""
    from airstack.standins import aws, helm

    with aws.moto_server() as endpoint:
        yield {**aws.client_env(endpoint), **helm.install(tmp / "bin", tmp / "helm-state")}
