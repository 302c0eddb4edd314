"""Serve a `DemoWeb` on 127.0.0.1 (standard library only; no network beyond loopback).

    with DemoServer(DemoWeb()) as server:
        print(server.base_url)           # e.g. http://127.0.0.1:54321
        ...
        server.requests                  # every request: method, path, User-Agent, conditional headers, status

Every resource carries a strong ``ETag`` (hash of its bytes) and ``Last-Modified``; a matching
``If-None-Match`` (or, without one, an ``If-Modified-Since`` not older than the resource) gets
``304 Not Modified``. Query strings are ignored when looking a page up, so ``?utm_source=...`` twins
serve the same bytes. Unknown paths get 404. Nothing is logged to stderr.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

from pipeline.demo.web import DemoWeb, Resource

__all__ = ["DemoServer", "RecordedRequest", "serve_forever"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str  # the request target as sent (path and query)
    user_agent: str | None
    if_none_match: str | None
    if_modified_since: str | None
    status: int
    at: datetime


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2), which is what If-None-Match uses."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def _not_modified_since(header: str, last_modified: datetime) -> bool:
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    if since is None:
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= since


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class DemoServer:
    """A loopback HTTP server for a `DemoWeb`, running in a daemon thread. A context manager."""

    def __init__(self, web: DemoWeb | None = None, host: str = "127.0.0.1", port: int = 0,
                 delay: Callable[[str], float] | None = None) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the demo server binds to the loopback interface (127.0.0.1) only")
        self.web = web or DemoWeb()
        self.delay = delay  # seconds to wait before answering a path (a slow publisher)
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), self._handler_class())
        self.host, self.port = self._httpd.server_address[:2]
        self.base_url = f"http://{self.host}:{self.port}"
        self.site: dict[str, Resource] = self.web.build_site(self.base_url)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="demo-web", daemon=True)
        self._thread.start()
        self._stopped = False

    # ---- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # ---- helpers ---------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    def lookup(self, path: str) -> Resource | None:
        """The resource at ``path`` now: a live web (``web.respond``) renders what exists at this moment."""
        respond = getattr(self.web, "respond", None)
        if respond is not None:
            return respond(path, self.base_url)
        return self.site.get(path)

    def request_count(self, since: datetime | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if since is None or r.at >= since)

    def config_yaml(self) -> str:
        return self.web.config_yaml(self.base_url)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """Recorded requests whose target (without query string) is ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "DemoNewsWeb/1.0"
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._respond(head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                self._respond(head=True)

            def _respond(self, head: bool) -> None:
                path = unquote(urlsplit(self.path).path) or "/"
                if server.delay is not None:
                    time.sleep(server.delay(path))
                res = server.lookup(path)
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                if res is None:
                    res = server.web.not_found(server.base_url)
                    status = 404
                elif res.etag and inm is not None:
                    status = 304 if _etag_matches(inm, res.etag) else 200
                elif res.last_modified and ims is not None:
                    status = 304 if _not_modified_since(ims, res.last_modified) else 200
                else:
                    status = res.status
                server._record(
                    RecordedRequest(
                        method=self.command,
                        path=self.path,
                        user_agent=self.headers.get("User-Agent"),
                        if_none_match=inm,
                        if_modified_since=ims,
                        status=status,
                        at=datetime.now(UTC),
                    )
                )
                self.send_response(status)
                if status != 404:
                    if res.etag:
                        self.send_header("ETag", res.etag)
                    if res.last_modified:
                        self.send_header("Last-Modified", format_datetime(res.last_modified, usegmt=True))
                    for name, value in res.headers:
                        self.send_header(name, value)
                    if not any(name.lower() == "cache-control" for name, _ in res.headers):
                        self.send_header("Cache-Control", "max-age=60")
                if status == 304:  # no body, and no Content-Length that would describe one
                    self.end_headers()
                    return
                self.send_header("Content-Type", res.content_type)
                self.send_header("Content-Length", str(len(res.body)))
                self.end_headers()
                if not head:
                    self.wfile.write(res.body)

        return Handler


def serve_forever(port: int, write_config: str | None = None, seed: int | None = None, *, live: bool = False,
                  speed: float = 1.0, publication_log: str | None = None) -> int:
    """Serve the demo web on 127.0.0.1:PORT until SIGINT/SIGTERM (``newsingest demo --serve PORT``).

    Prints the base URL, and the config (or writes it to ``write_config``). Returns an exit code. With
    ``live``, the outlets keep publishing (``LiveDemoWeb``) and ``publication_log`` gets one JSON line per
    publication as it appears.
    """
    if live:
        from pipeline.demo.live import LiveDemoWeb

        web: Any = LiveDemoWeb(speed=speed) if seed is None else LiveDemoWeb(seed=seed, speed=speed)
    else:
        web = DemoWeb() if seed is None else DemoWeb(seed=seed)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    with DemoServer(web, port=port) as server:
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            config = server.config_yaml()
            if write_config:
                Path(write_config).write_text(config, encoding="utf-8")
                print(f"demo web config written to {write_config}", file=sys.stderr)
            else:
                print(config, end="")
            print(f"demo web serving at {server.base_url}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
            sys.stdout.flush()
            logged = 0
            while not stop.wait(0.5):
                if live and publication_log:
                    logged = _append_publications(web, server.base_url, Path(publication_log), logged)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


def _append_publications(web: Any, base_url: str, path: Path, logged: int) -> int:
    """Append the publications not logged yet; returns how many are logged."""
    import json

    pubs = web.publications()
    if len(pubs) > logged:
        with open(path, "a", encoding="utf-8") as f:
            for p in pubs[logged:]:
                f.write(json.dumps(p.to_dict(base_url)) + "\n")
    return len(pubs)
