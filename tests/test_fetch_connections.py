"""The fetch client keeps connections alive and notices when a server closed an idle one (a real HTTP/1.1
server on loopback)."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.fetch.client import Fetcher
from pipeline.settings import FetchSettings


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the handler drops the connection

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"<html><body><p>" + self.path.encode() + b"</p></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/long-header"):  # as a news site's Content-Security-Policy can be
            self.send_header("Content-Security-Policy", "script-src " + " ".join(f"https://cdn{i}.example" for i in range(1500)))
        self.end_headers()
        self.wfile.write(body)
        # /drop: the server closes the connection after answering without saying so (as a keep-alive
        # timeout does): the client holds an idle connection whose socket now reads as EOF
        self.close_connection = self.path.startswith("/drop")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _settings() -> FetchSettings:
    return FetchSettings(allow_private=["127.0.0.1"], min_delay_s=0, obey_robots=False, per_host_concurrency=1)


def test_connections_are_reused_and_a_server_closed_one_is_replaced(server: str) -> None:
    async def go() -> tuple[list, int, int, object]:
        async with Fetcher(_settings()) as fetcher:
            first = [await fetcher.fetch(f"{server}/keep/{i}") for i in range(5)]
            reused = sum(fetcher.guard.connected.values())
            dropped = await fetcher.fetch(f"{server}/drop")
            time.sleep(0.2)  # the server has closed its end by now
            after = [await fetcher.fetch(f"{server}/keep/after/{i}") for i in range(3)]
            return first + [dropped] + after, reused, sum(fetcher.guard.connected.values()), fetcher

    results, reused, total, _ = asyncio.run(go())
    assert [r.outcome for r in results] == ["ok"] * 9
    assert all(r.attempts == 1 for r in results)  # no request went out on the closed connection
    assert reused == 1  # five requests, one connection
    assert total == 2  # the closed connection was noticed before reuse, and replaced once


@pytest.fixture()
def servers():
    started = []
    for _ in range(4):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in started]
    for srv in started:
        srv.shutdown()
        srv.server_close()


def test_each_host_has_its_own_pool_and_idle_pools_are_closed_beyond_a_bound(servers: list[str]) -> None:
    """Connections are kept per host (a request for one host never closes another's idle connection), and
    a run over many hosts closes the pools of hosts it has not used lately: 2 x concurrency at most."""
    settings = FetchSettings(allow_private=["127.0.0.1"], min_delay_s=0, obey_robots=False, per_host_concurrency=2,
                             concurrency=1)

    async def go() -> tuple[list, int, int, int, int]:
        async with Fetcher(settings) as fetcher:
            # two hosts in turn: both pools stay open, one connection each however often they alternate
            turns = [await fetcher.fetch(f"{servers[i % 2]}/turn/{i}") for i in range(8)]
            alternating = sum(fetcher.guard.connected.values())
            # four hosts: the least recently used idle pools are closed, two stay open
            for base in servers:
                turns.append(await fetcher.fetch(f"{base}/spread"))
            open_pools = len(fetcher._pooled)
            back = await fetcher.fetch(f"{servers[0]}/again")  # its pool was closed: a new connection
            turns.append(back)
            return turns, alternating, open_pools, sum(fetcher.guard.connected.values()), len(fetcher._pooled)

    results, alternating, open_pools, total, after = asyncio.run(go())
    assert [r.outcome for r in results] == ["ok"] * len(results)
    assert alternating == 2
    assert open_pools == 2
    assert total == 2 + 2 + 1  # the third and fourth hosts new, the first one reopened
    assert after == 2


@pytest.fixture()
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for that address (made by openssl)."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the HTTPS server")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{srv.server_address[1]}", cert
    srv.shutdown()
    srv.server_close()


def test_https_verifies_the_certificate(tls_server) -> None:
    """TLS is verified: a certificate nobody vouches for is refused, with the reason; the same server is
    fetched once its certificate is trusted (a real handshake on loopback, the address checked by name)."""
    import ssl

    url, cert = tls_server

    async def go(trusted: bool) -> object:
        async with Fetcher(_settings()) as fetcher:
            if trusted:
                fetcher._ssl_context = ssl.create_default_context(cafile=str(cert))
            return await fetcher.fetch(f"{url}/secure")

    refused = asyncio.run(go(False))
    assert refused.outcome == "error" and "certificate verify failed" in (refused.error or ""), refused.error
    fetched = asyncio.run(go(True))
    assert fetched.outcome == "ok" and "/secure" in (fetched.text or ""), (fetched.outcome, fetched.error)


def test_a_long_response_header_is_accepted(server: str) -> None:
    """A header line of ~30 KB (aiohttp's default limit is 8 KB) does not fail the page."""

    async def go() -> object:
        async with Fetcher(_settings()) as fetcher:
            return await fetcher.fetch(f"{server}/long-header")

    res = asyncio.run(go())
    assert res.outcome == "ok" and "/long-header" in (res.text or ""), (res.outcome, res.error)
