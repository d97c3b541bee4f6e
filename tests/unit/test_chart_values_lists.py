"""The deploy's payload keeps what the values files put in the lists it also fills (env vars, init containers):
Helm replaces a list given again, so without it a team's `apiServer.env` in values-production.yaml would be
dropped without a word once the payload sets one (the ingress's FORWARDED_ALLOW_IPS, OIDC's settings)."""

from __future__ import annotations

from airstack.deploy import chart_values
from airstack.deploy.chart_values import merge_values

AFFECTED_BY = ("charts/",)


def test_a_values_files_env_survives_the_payloads_env():
    files = [{"apiServer": {"env": [{"name": "TEAM", "value": "a"}, {"name": "SHARED", "value": "file"}]}},
             {"env": [{"name": "GLOBAL", "value": "g"}]}]
    proxies = {"name": "FORWARDED_ALLOW_IPS", "value": "10.0.0.0/8"}
    payload = {"apiServer": {"env": [{"name": "SHARED", "value": "payload"}, proxies]},
               "env": [{"name": "AIRSTACK_IMAGES", "value": "{}"}]}
    kept = chart_values.keeping_listed(payload, files)
    merged = merge_values({}, *files, kept)  # what Helm makes of the files, then the payload on stdin
    assert merged["apiServer"]["env"] == [{"name": "TEAM", "value": "a"}, {"name": "SHARED", "value": "payload"},
                                          {"name": "FORWARDED_ALLOW_IPS", "value": "10.0.0.0/8"}]
    assert [e["name"] for e in merged["env"]] == ["GLOBAL", "AIRSTACK_IMAGES"]
    assert payload["apiServer"]["env"][0]["value"] == "payload" and len(payload["env"]) == 1  # nothing changed


def test_lists_the_payload_does_not_fill_stay_the_files():
    files = [{"scheduler": {"extraInitContainers": [{"name": "team-init"}]}, "workers": {"extraVolumes": [{}]}}]
    kept = chart_values.keeping_listed({"apiServer": {"extraInitContainers": [{"name": "wait"}]}}, files)
    assert kept == {"apiServer": {"extraInitContainers": [{"name": "wait"}]}}
    assert merge_values({}, *files, kept)["scheduler"]["extraInitContainers"] == [{"name": "team-init"}]
