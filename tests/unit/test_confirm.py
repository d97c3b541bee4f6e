"""One question before a change (airstack.cli.confirm), keyed on `protected` and --yes/CI."""

from __future__ import annotations

import pytest

from airstack.cli import confirm
from airstack.errors import ConfirmationNeededError
from airstack.settings.main import confirm_apply


def _never(question: str) -> bool:
    raise AssertionError(f"asked {question!r}")


def test_yes_or_unprotected_goes_on_without_asking():
    assert confirm("apply?", yes=True, protected=True, ask=_never, stdin_isatty=lambda: True, environ={})
    assert confirm("apply?", yes=False, protected=False, ask=_never, stdin_isatty=lambda: False, environ={"CI": "1"})


@pytest.mark.parametrize("answer", [True, False])
def test_protected_asks_on_a_terminal(answer):
    asked = []
    assert confirm("apply X?", yes=False, protected=True, ask=lambda q: asked.append(q) or answer,
                   stdin_isatty=lambda: True, environ={}) is answer
    assert asked == ["apply X?"]


@pytest.mark.parametrize("isatty, environ", [(False, {}), (True, {"CI": "true"})], ids=["no-terminal", "ci"])
def test_protected_where_nobody_can_answer_is_refused(isatty, environ):
    with pytest.raises(ConfirmationNeededError,
                       match=r"^apply X: not interactive \(no terminal or CI is set\): run it with --yes$"):
        confirm("apply X?", yes=False, protected=True, hint="run it with --yes", ask=_never,
                stdin_isatty=lambda: isatty, environ=environ)


def _env(root, name: str, protected: bool) -> None:
    folder = root / "settings" / name
    folder.mkdir(parents=True)
    (folder / "deploy.yaml").write_text(f"images: {{registry: 127.0.0.1:5000}}\nprotected: {str(protected).lower()}\n")


def test_settings_apply_asks_by_protected_not_by_name(tmp_path):
    """The bug: settings-apply asked only for an environment named "production". It asks for a protected one."""
    _env(tmp_path, "staging", protected=True)
    _env(tmp_path, "production", protected=False)
    asked = []
    how = {"ask": lambda q: asked.append(q) or False, "stdin_isatty": lambda: True, "environ": {}}
    assert confirm_apply(tmp_path, "staging", yes=False, **how) is False
    assert asked == ["Apply settings/staging to the staging database?"]
    assert confirm_apply(tmp_path, "production", yes=False, **how) is True  # not protected here: not asked
    assert confirm_apply(tmp_path, "other", yes=False, **how) is True  # no deploy.yaml: not protected
    assert len(asked) == 1
    with pytest.raises(ConfirmationNeededError, match="not interactive"):  # in CI, a protected one needs --yes
        confirm_apply(tmp_path, "staging", yes=False, ask=_never, stdin_isatty=lambda: True, environ={"CI": "1"})
