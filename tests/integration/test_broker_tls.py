"""The Celery broker over TLS with an AUTH token: a real redis-server (Debian's) with TLS on and a password,
and Celery (kombu's Redis transport) connecting through the URL settings carry (airstack/settings/broker_url.py).

ElastiCache cannot run here; Redis 6+'s own TLS and ``requirepass`` are what its in-transit encryption and AUTH
token are. The CA and the server's certificate are trustme's throwaway ones; the token is made per test and
reaches redis-server on its standard input (never argv, never a file).
"""

from __future__ import annotations

import secrets
import shutil
import socket
import time
from urllib.parse import quote

import pytest

from airstack import proc
from airstack.settings import broker_url

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (apt-get install redis-server)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """(port, token, CA file) of a redis-server on 127.0.0.1 that speaks TLS only and asks for the token."""
    trustme = pytest.importorskip("trustme")
    folder = tmp_path_factory.mktemp("redis-tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    port, token = free_port(), secrets.token_urlsafe(32)
    config = "\n".join([
        "bind 127.0.0.1", "port 0", f"tls-port {port}", f"tls-cert-file {folder / 'server.pem'}",
        f"tls-key-file {folder / 'server.key'}", f"tls-ca-cert-file {folder / 'ca.pem'}", "tls-auth-clients no",
        f"requirepass {token}", "save ''", "appendonly no", f"dir {folder}", ""])
    process = proc.start([REDIS, "-"], log_file=folder / "redis.log", talk=True, die_with_parent=True)
    process.stdin.write(config)
    process.stdin.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.stop(process)
        pytest.fail(f"redis-server did not listen on {port}: {(folder / 'redis.log').read_text()[-500:]}")
    yield port, token, folder / "ca.pem"
    proc.stop(process)


def url(port: int, token: str | None, ca, scheme: str = "rediss") -> str:
    auth = f":{quote(token, safe='')}@" if token else ""
    return f"{scheme}://{auth}127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={quote(str(ca))}"


def celery_app(broker: str):
    from celery import Celery

    return Celery("broker-tls", broker=broker, broker_connection_retry_on_startup=False)


def test_celery_sends_and_receives_through_tls_with_the_token(tls_redis):
    port, token, ca = tls_redis
    broker = url(port, token, ca)
    assert broker_url.problems(broker) == []
    app = celery_app(broker)
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        assert connection.transport_cls == "rediss"
        queue = connection.SimpleQueue("airstack-broker-tls")
        queue.put({"task": "ping"})
        message = queue.get(timeout=5)
        assert message.payload == {"task": "ping"}
        message.ack()
        queue.close()


@pytest.mark.parametrize("case", ["wrong token", "no token", "plaintext"])
def test_the_broker_refuses_what_settings_refuse(tls_redis, case):
    """A wrong or missing token is refused by the server; plain redis:// cannot talk to its TLS port."""
    port, token, ca = tls_redis
    broker = {"wrong token": url(port, secrets.token_urlsafe(32), ca), "no token": url(port, None, ca),
              "plaintext": url(port, token, ca, scheme="redis").split("?")[0]}[case]
    assert (broker_url.problems(broker) == []) is (case == "wrong token")
    app = celery_app(broker)
    with app.connection_for_write() as connection:
        with pytest.raises(Exception) as caught:
            connection.ensure_connection(max_retries=1, timeout=5)
            queue = connection.SimpleQueue("airstack-broker-tls")
            queue.put({"task": "ping"})
        assert token not in str(caught.value)
    expected = {"wrong token": "invalid username-password", "no token": "Authentication required",
                "plaintext": "Connection reset"}[case]
    assert expected in str(caught.value)
