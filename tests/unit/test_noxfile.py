"""The noxfile stays thin and documented: every session has a one-line docstring and passes posargs on."""

import ast

from airstack import paths


def _sessions():
    tree = ast.parse((paths.repo_root() / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            "session" in ast.unparse(d) for d in node.decorator_list
        ):
            yield node


def test_every_session_has_a_one_line_docstring():
    sessions = list(_sessions())
    assert {s.name for s in sessions} >= {"lint", "test", "bench"}
    for session in sessions:
        doc = ast.get_docstring(session)
        assert doc and "\n" not in doc.strip(), f"{session.name}: needs a one-line docstring"


def test_sessions_are_thin():
    for session in _sessions():
        body = [n for n in session.body if not isinstance(n, ast.Expr)]  # minus the docstring
        assert len(body) <= 10, f"{session.name} has {len(body)} statements: move logic into airstack/"
