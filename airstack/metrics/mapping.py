"""StatsD names -> Prometheus names and labels, as prom/statsd-exporter maps them (pure).

:data:`AIRFLOW_MAPPINGS` restates the official apache-airflow chart's ``files/statsd-mappings.yml``;
:class:`Mapper` matches the exporter's way (globs first, in order, then regexes), otherwise the
exporter's default escape: every character outside ``[a-zA-Z0-9_]`` becomes ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MappingRule:
    """One mapping: a glob (``*`` is one whole dot-separated field) or, with ``regex``, an unanchored regex."""

    match: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    regex: bool = False


# The official chart's statsd-exporter mapping (apache/airflow chart/files/statsd-mappings.yml, the version
# with the ti.* and dag_processor_heartbeat rules), restated as data. Order matters: the first match wins.
AIRFLOW_MAPPINGS: tuple[MappingRule, ...] = (
    MappingRule("airflow.dagrun.dependency-check.*.*", "airflow_dagrun_dependency_check", {"dag_id": "$1"}),
    MappingRule("airflow.operator_successes_(.*)", "airflow_operator_successes", {"operator": "$1"}, regex=True),
    MappingRule("airflow.operator_failures_(.*)", "airflow_operator_failures", {"operator": "$1"}, regex=True),
    MappingRule("airflow.scheduler_heartbeat", "airflow_scheduler_heartbeat", {"type": "counter"}, regex=True),
    MappingRule("airflow.dag_processor_heartbeat", "airflow_dag_processor_heartbeat", {"type": "counter"},
                regex=True),
    MappingRule("airflow.dag.*.*.duration", "airflow_task_duration", {"dag_id": "$1", "task_id": "$2"}),
    MappingRule("airflow.dagrun.duration.success.*", "airflow_dagrun_duration", {"dag_id": "$1"}),
    MappingRule("airflow.dagrun.duration.failed.*", "airflow_dagrun_failed", {"dag_id": "$1"}),
    MappingRule("airflow.dagrun.schedule_delay.*", "airflow_dagrun_schedule_delay", {"dag_id": "$1"}),
    MappingRule("airflow.dag_processing.last_runtime.*", "airflow_dag_processing_last_runtime", {"dag_file": "$1"}),
    MappingRule("airflow.dag_processing.last_run.seconds_ago.*", "airflow_dag_processing_last_run_seconds_ago",
                {"dag_file": "$1"}),
    *(MappingRule(f"airflow.pool.{stat}.*", f"airflow_pool_{stat}", {"pool": "$1"})
      for stat in ("open_slots", "used_slots", "starving_tasks")),
    *(MappingRule(f"airflow.executor.{stat}.*", f"airflow_executor_{stat}", {"executor": "$1"})
      for stat in ("open_slots", "queued_tasks", "running_tasks")),
    *(MappingRule(f"airflow.ti.{state}.*.*.*", f"airflow_ti_{state}", {"queue": "$1", "dag_id": "$2", "task_id": "$3"})
      for state in ("running", "queued", "scheduled", "deferred")),
)


# --- names -------------------------------------------------------------------------------

def escape_metric_name(name: str) -> str:
    """The exporter's default name: characters outside ``[a-zA-Z0-9_]`` become ``_``.

    As in the exporter, a leading digit gets a ``_`` in front and the second ``-`` of ``--`` is dropped.
    """
    out = ["_"] if name[:1].isdigit() and name[:1].isascii() else []
    previous = ""
    for char in name:
        if char.isascii() and (char.isalnum() or char == "_"):
            out.append(char)
        elif not (char == "-" and previous == "-"):
            out.append("_")
        previous = char
    return "".join(out)


_TEMPLATE = re.compile(r"\$(?:\{(\d+)\}|(\d+))")


def _expand(template: str, groups: tuple[str | None, ...]) -> str:
    """``$1`` / ``${1}`` -> the n-th capture (empty when there is none)."""
    def group(match: re.Match) -> str:
        index = int(match.group(1) or match.group(2))
        return (groups[index - 1] or "") if 0 < index <= len(groups) else ""

    return _TEMPLATE.sub(group, template)


def _glob_regex(glob: str) -> re.Pattern:
    fields = ("([^.]*)" if part == "*" else re.escape(part) for part in glob.split("."))
    return re.compile("^" + r"\.".join(fields) + "$")


class Mapper:
    """Maps StatsD names with ``rules``: the first glob that matches, else the first regex, else the default."""

    _CACHE_LIMIT = 10_000

    def __init__(self, rules: Iterable[MappingRule] = AIRFLOW_MAPPINGS) -> None:
        rules = tuple(rules)
        compiled = [(rule, re.compile(rule.match) if rule.regex else _glob_regex(rule.match)) for rule in rules]
        self._globs = [(rule, pattern) for rule, pattern in compiled if not rule.regex]
        self._regexes = [(rule, pattern) for rule, pattern in compiled if rule.regex]
        self._cache: dict[str, tuple[str, dict[str, str], bool]] = {}

    def map(self, statsd_name: str) -> tuple[str, dict[str, str], bool]:
        """(Prometheus name, labels from the rule, whether a rule matched)."""
        cached = self._cache.get(statsd_name)
        if cached is None:
            cached = self._map(statsd_name)
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            self._cache[statsd_name] = cached
        name, labels, matched = cached
        return name, dict(labels), matched

    def _map(self, statsd_name: str) -> tuple[str, dict[str, str], bool]:
        for rules, find in ((self._globs, re.Pattern.match), (self._regexes, re.Pattern.search)):
            for rule, pattern in rules:
                found = find(pattern, statsd_name)
                if found:
                    groups = found.groups()
                    labels = {key: _expand(value, groups) for key, value in rule.labels.items()}
                    return escape_metric_name(_expand(rule.name, groups)), labels, True
        return escape_metric_name(statsd_name), {}, False


_DEFAULT_MAPPER = Mapper()


def map_name(statsd_name: str) -> tuple[str, dict[str, str]]:
    """The Prometheus name and labels the official chart's statsd-exporter gives ``statsd_name``."""
    name, labels, _ = _DEFAULT_MAPPER.map(statsd_name)
    return name, labels
