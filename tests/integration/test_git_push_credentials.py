"""The deploy pushes the DAG bundle's ref over HTTP(S) with CI's token (airstack.git_auth), through real git.

The remote is git's own smart-HTTP server (``git http-backend``, as a CGI behind a small HTTP server on
127.0.0.1) that demands Basic authentication, as GitHub does over HTTPS. It runs over plain HTTP: git asks
its credential helpers the same way for both schemes, and TLS is not what is tested here. The token is
checked to reach the server, and to appear in no argv the deploy logs, no log line and no file.
"""

from __future__ import annotations

import base64
import logging
import secrets
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from airstack import git_bundle
from airstack import git_auth

USER = "x-access-token"


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


class GitServer:
    """``git http-backend`` for the bare repositories under ``root``; every request needs USER:token."""

    def __init__(self, root: Path, token: str) -> None:
        self.root, self.token, self.seen = root, token, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.serve()

            def do_POST(self) -> None:
                self.serve()

            def serve(self) -> None:
                auth = self.headers.get("Authorization", "")
                server.seen.append(auth)
                wanted = "Basic " + base64.b64encode(f"{USER}:{server.token}".encode()).decode()
                if auth != wanted:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {"GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                       "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": USER,
                       "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)),
                       "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                       "PATH": "/usr/bin:/bin"}
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                                     check=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
                status = next((v.strip() for k, v in headers if k.lower() == "status"), "200 OK")
                self.send_response(int(status.split()[0]))
                for key, value in headers:
                    if key.lower() != "status":
                        self.send_header(key, value.strip())
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/dags.git"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> GitServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    """A checkout with one commit, a bare remote behind the server, and a HOME whose git config would store
    credentials (``credential.helper store``), as a developer's might."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG_COUNT", git_auth.USER_ENV):
        monkeypatch.delenv(name, raising=False)
    git("config", "--global", "credential.helper", "store")
    remote = tmp_path / "srv"
    remote.mkdir()
    git("init", "--quiet", "--bare", str(remote / "dags.git"))
    root = tmp_path / "checkout"
    git("init", "--quiet", "-b", "main", str(root))
    (root / "dags").mkdir()
    (root / "dags" / "a.py").write_text("x = 1\n")
    git("add", "-A", cwd=root)
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-m", "c1", cwd=root)
    token = "github_pat_" + secrets.token_hex(20)
    return root, remote, home, token


def test_the_deploy_ref_is_pushed_with_the_token_and_the_token_goes_nowhere_else(setup, monkeypatch, caplog):
    root, remote, home, token = setup
    monkeypatch.setenv(git_auth.TOKEN_ENV, token)
    commit = git("rev-parse", "HEAD", cwd=root)
    ref = git_bundle.deploy_ref("integration")
    with caplog.at_level(logging.DEBUG, logger="airstack.proc"), GitServer(remote, token) as server:
        assert git_bundle.remote_version(root, server.url, ref) is None
        git_bundle.push(root, server.url, commit, ref)
        assert git_bundle.remote_version(root, server.url, ref) == commit
    assert git("--git-dir", str(remote / "dags.git"), "rev-parse", f"refs/heads/{ref}") == commit
    assert any(seen.startswith("Basic ") for seen in server.seen), "the server was asked with the token"
    logged = caplog.text
    assert "run: " in logged and "git push" in logged, "the commands were logged (debug), so the check means something"
    assert token not in logged
    on_disk = [p for p in (home, root / ".git", remote) for p in p.rglob("*") if p.is_file()
               and token.encode() in p.read_bytes()]
    assert on_disk == [], "the token was written to disk"
    assert not (home / ".git-credentials").exists(), "the user's `store` helper got the token"


def test_a_refused_token_fails_in_one_line_without_prompting(setup, monkeypatch):
    root, remote, _, token = setup
    monkeypatch.setenv(git_auth.TOKEN_ENV, "wrong-" + token)
    commit = git("rev-parse", "HEAD", cwd=root)
    with GitServer(remote, token) as server, pytest.raises(git_bundle.BundleError) as raised:
        git_bundle.push(root, server.url, commit, git_bundle.deploy_ref("integration"))
    message = str(raised.value)
    assert "\n" not in message and "wrong-" not in message and token not in message
    assert "Authentication failed" in message or "401" in message, message


def test_without_a_token_git_is_left_as_it_is():
    assert git_auth.env({}) == {}
    added = git_auth.env({git_auth.TOKEN_ENV: "secret-value"})
    assert "secret-value" not in "".join(f"{k}={v}" for k, v in added.items())
    assert added["GIT_TERMINAL_PROMPT"] == "0"
