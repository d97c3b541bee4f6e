"""The settings-apply-large benchmark's files: the sizes it claims, and valid settings (pure)."""

from airstack.bench.settings_apply_large import LARGE_VALUE, settings_apply_data
from airstack.settings.keys import new_fernet_key, new_secret
from airstack.settings.schema import parse_settings


def test_large_case_has_100_items_ten_of_them_1_mib():
    data = settings_apply_data(100, 10, new_fernet_key(), new_secret())
    settings = parse_settings(data, "bench").airflow
    values = [c.password for c in settings.connections] + list(settings.variables.values())
    assert len(settings.connections) + len(settings.variables) + len(settings.pools) == 100
    assert sum(len(v) >= LARGE_VALUE for v in values) == 10


def test_ordinary_cases_scale_the_item_count_only():
    for items in (250, 1000):
        settings = parse_settings(settings_apply_data(items, 0, new_fernet_key(), new_secret()), "bench").airflow
        assert len(settings.connections) + len(settings.variables) + len(settings.pools) == items
        assert max(len(v) for v in settings.variables.values()) < 100
