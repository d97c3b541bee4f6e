"""The charts' fixtures (defined in render.py, where the other chart tests import them from)."""

from tests.deploy.charts.render import official_chart_release, platform_chart

__all__ = ["official_chart_release", "platform_chart"]
