"""The images CLI where no Docker daemon answers, and with bad input."""

from airstack.cli import run_main
from airstack.images.main import main

# What runs this module beyond its imports (read by airstack.gate.affected):
AFFECTED_BY = ("images/",)


def test_no_daemon_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert run_main(main, ["list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no Docker daemon answers at unix:///nonexistent/docker.sock") and "\n" == err[-1]
    assert err.count("\n") == 1


def test_unknown_image_and_missing_registry(capsys):
    assert run_main(main, ["build", "no-such-image"]) == 1
    assert "unknown image(s) no-such-image: images/ has airflow, etl-basic, pandas-basic" in capsys.readouterr().err
    assert run_main(main, ["push"]) == 1
    assert "usage: nox -s push-images -- --env ENV" in capsys.readouterr().err
