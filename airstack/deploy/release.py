"""Release records: what a deploy shipped, so production ships exactly what integration ran.

A record names the git commit, each image by content tag and registry digest, the charts'
versions and the settings digest (no secret: a hash). Each deploy of an environment writes
``<records>/<env>.json`` (and ``<records>/<env>/<commit>.json``, the history) to the S3 location
of deploy.yaml's ``release.records``. An environment with ``release.promote_from: integration``
(production) refuses to deploy unless integration's record is of the checked-out commit and its
images are the ones this commit builds; it then copies those images, by digest, from
integration's registry to its own instead of building them. The logic here is pure; S3 goes
through a client from :func:`airstack.deploy.aws.client_factory`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from airstack.errors import AirstackError, ConfigError


class PromotionError(AirstackError):
    pass


class RecordUnreadableError(PromotionError):
    """A release record that cannot be read (S3 unreachable or refusing, or not a record): nothing judged."""


@dataclass(frozen=True)
class Record:
    environment: str
    commit: str
    registry: str
    images: dict[str, dict[str, str]]  # name -> {"tag": content tag, "digest": "sha256:..."}
    charts: dict[str, str]  # release part (platform, airflow) -> chart version
    settings_digest: str
    deployed_at: str = ""
    promoted_from: str = ""
    # The DAG bundle it runs (airstack/git_bundle.py): {"bundle", "kind", "ref", "version": commit}.
    # A DAG-only deploy (`--dags`) changes only this, deployed_at and promoted_from.
    dags: dict[str, str] = field(default_factory=dict)
    # The versions of the packages that carry schema migrations (airstack/deploy/snapshot.py), and the RDS snapshot
    # taken before this deploy ("" where none was: not protected, or nothing to migrate). Older records: {} and "".
    schema: dict[str, str] = field(default_factory=dict)
    db_snapshot: str = ""

    def ref(self, name: str, registry: str | None = None) -> str:
        """``registry/name@sha256:...``: the image exactly as recorded (registry: another one holding it)."""
        return f"{(registry or self.registry).rstrip('/')}/{name}@{self.images[name]['digest']}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Record:
        try:
            data = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: not a release record ({exc.__class__.__name__})") from None


def promotion_problems(source: Record | None, source_env: str, commit: str, tags: dict[str, str],
                       where: str) -> list[str]:
    """Why this commit may not ship ``source``'s release (pure); no lines: promote it.

    ``tags``: each image's content tag as this commit builds it. The source must have run this very
    commit (its full deploy's commit, or its DAG bundle's version: a DAG-only deploy ships only a commit
    that changed nothing but DAGs since the full one), and every image this commit deploys must be in its
    record with the same content tag. The DAGs shipped are the record's bundle version, which must exist.
    """
    if source is None:
        return [f"no release record of {source_env} at {where}: deploy {source_env} from this commit first "
                f"(nox -s deploy-{source_env})"]
    problems = []
    if not source.dags.get("version"):
        problems.append(f"{source_env}'s record names no DAG bundle version: deploy {source_env} from this "
                        "commit first")
    if commit not in (source.commit, source.dags.get("version")):
        problems.append(f"{source_env} runs commit {source.commit[:12]}, this is {commit[:12]}: ship only what "
                        f"{source_env} has run (deploy {source_env} from this commit first)")
    for name, tag in sorted(tags.items()):
        recorded = source.images.get(name)
        if recorded is None:
            problems.append(f"image {name} is not in {source_env}'s record: {source_env} never ran it")
        elif recorded["tag"] != tag:
            problems.append(f"image {name}: this commit builds {tag}, {source_env} ran {recorded['tag']}")
    return problems


def registry_problems(env: str, source_env: str, refs: dict[str, str], ran: dict[str, str],
                      found: dict[str, str | None]) -> list[str]:
    """One line per image whose tag in ``env``'s registry holds other bytes than ``source_env`` ran (pure).

    ``refs``: name -> ``registry/name:tag`` in ``env``'s registry; ``ran``: name -> the digest of
    ``source_env``'s record; ``found``: name -> the digest that tag has now (None: absent, to be copied).
    """
    problems = []
    for name in sorted(refs):
        now = found.get(name)
        if now is not None and now != ran[name]:
            problems.append(f"image {name}: {refs[name]} is {now} in {env}'s registry, but {source_env} ran "
                            f"{ran[name]}: the tag was pushed again since; delete that tag from {env}'s registry "
                            f"(the deploy then copies {source_env}'s image by digest)")
    return problems


def differences(before: Record | None, after: Record) -> list[tuple[str, str, str]]:
    """(what, deployed now, would be deployed) for each field that differs (pure); ``before`` None: all new."""
    def flat(record: Record | None) -> dict[str, str]:
        if record is None:
            return {}
        out = {"commit": record.commit}
        out |= {f"image {name}": f"{image['tag']} ({image['digest'][:19]})" for name, image in record.images.items()}
        out |= {f"chart {part}": version for part, version in record.charts.items()}
        if record.dags:
            out["dags"] = record.dags.get("version", "-")  # the ref is each environment's own
        return out

    old, new = flat(before), flat(after)
    return [(key, old.get(key, "-"), new.get(key, "-")) for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]


def _split(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def record_key(url: str, env: str, commit: str | None = None) -> tuple[str, str]:
    """(bucket, key) of an environment's latest record, or of the one of ``commit``."""
    bucket, prefix = _split(url)
    name = f"{env}/{commit}.json" if commit else f"{env}.json"
    return bucket, f"{prefix}/{name}" if prefix else name


def read(s3, url: str, env: str) -> Record | None:
    """The environment's latest record; None where it has none; :class:`RecordUnreadableError` where it cannot
    be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = record_key(url, env)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise RecordUnreadableError(f"s3://{bucket}/{key}: "
                                    f"{exc.response.get('Error', {}).get('Message', exc)}") from None
    except BotoCoreError as exc:  # no endpoint, no credentials...
        raise RecordUnreadableError(f"s3://{bucket}/{key}: {exc}") from None
    try:
        return Record.from_json(body, f"s3://{bucket}/{key}")
    except ConfigError as exc:
        raise RecordUnreadableError(str(exc)) from None


def write(s3, url: str, record: Record) -> str:
    """The record as the environment's latest and in its history; returns where."""
    from botocore.exceptions import ClientError

    body = record.to_json().encode()
    latest = record_key(url, record.environment)
    try:
        for bucket, key in (record_key(url, record.environment, record.commit), latest):
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except ClientError as exc:
        raise PromotionError(f"writing the release record to {url}: "
                             f"{exc.response.get('Error', {}).get('Message', exc)}") from None
    return f"s3://{latest[0]}/{latest[1]}"
