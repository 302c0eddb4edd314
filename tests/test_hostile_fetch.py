"""The real fetch client against the project's hostile loopback server: one outcome per case, politeness
seen from the server's side, and no connection ever opened to a refused address (audit hook)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest

from pipeline.fetch.client import Fetcher, host_key
from pipeline.fetch.hoststate import HostStore
from pipeline.fetch.policy import GuardedConnector, PolicyError, UrlPolicy
from pipeline.records import FetchResult
from pipeline.settings import FetchSettings
from pipeline.sources import parse_feed
from pipeline.testing.connect_audit import ConnectAudit
from pipeline.testing.hostile import FEED_CASES, PAGE_CASES, REFERENCE_FETCH, HostileServer, politeness

REFUSED = ("169.254.169.254", "192.0.2.1", "10.0.0.1", "::1", "2852039166")


def _settings(**over) -> FetchSettings:
    return FetchSettings(**{**REFERENCE_FETCH, **over})


async def _fetch_all(settings: FetchSettings, jobs: list[tuple[str, str]], **kw) -> list[FetchResult]:
    async with Fetcher(settings, **kw) as fetcher:
        return list(await asyncio.gather(*(fetcher.fetch(url, kind) for url, kind in jobs)))


@pytest.fixture(scope="module")
def hostile():
    """Every case fetched once, concurrently, as a run would."""
    with HostileServer() as server, ConnectAudit() as audit:
        server.warm()
        cases = server.cases()
        delays = {host_key(server.base_urls[h]): 1.0 for h in ("limited", "maintenance")}  # as config_yaml does
        t0 = time.monotonic()
        results = asyncio.run(_fetch_all(_settings(), [(url, c.kind) for url, c in cases], host_delays=delays))
        wall = time.monotonic() - t0
        yield {
            "server": server,
            "by_name": {c.name: (url, c, r) for (url, c), r in zip(cases, results, strict=True)},
            "connections": list(audit.connections),
            "wall": wall,
        }


@pytest.mark.parametrize("name", [c.name for c in PAGE_CASES])
def test_page_case_outcome(hostile, name):
    url, case, res = hostile["by_name"][name]
    assert res.outcome == case.outcome, (url, res.error)
    assert res.http_status == case.http_status, (url, res.http_status)
    if case.error:
        assert res.error and re.search(case.error, res.error, re.I), (url, res.error)
    else:
        assert res.error is None
    # A request is bounded by its deadline; elapsed_ms is time on the wire, summed over requests.
    assert res.elapsed_ms <= max(1, res.attempts) * REFERENCE_FETCH["deadline_s"] * 1000 * 2  # 2x: loaded CI
    if case.max_requests is not None:
        seen = hostile["server"].requests_for(case.path, case.host)
        assert len(seen) <= case.max_requests, [r.path for r in seen]
    if res.outcome != "ok":
        assert res.body is None and res.text is None  # nothing partial is handed on


@pytest.mark.parametrize("name", [c.name for c in FEED_CASES])
def test_feed_case_outcome(hostile, name):
    url, case, res = hostile["by_name"][name]
    if case.outcome == "bad_content":  # decided by the parser: the bytes arrived fine
        assert res.outcome == "ok"
        parsed = parse_feed(res.body, url, name, content_type=res.content_type)
        assert not parsed.is_feed and re.search(case.error, parsed.error)
        return
    assert res.outcome == case.outcome, (url, res.error)
    assert res.http_status == case.http_status
    if case.error:
        assert re.search(case.error, res.error, re.I)


def test_no_connection_to_a_refused_address(hostile):
    ports = {int(u.rsplit(":", 1)[1]) for u in hostile["server"].base_urls.values()}
    assert hostile["connections"], "the audit hook saw nothing: it is not installed"
    for host, port in hostile["connections"]:
        assert host == "127.0.0.1" and port in ports, (host, port)


def test_redirect_targets_never_requested_anywhere(hostile):
    # The server saw the redirecting request and nothing for the targets (which live on no server).
    for name in ("redirect-metadata", "redirect-testnet", "redirect-private", "redirect-file"):
        _, case, res = hostile["by_name"][name]
        assert len(hostile["server"].requests_for(case.path)) == 1
        assert res.redirects == 0 and res.final_url == res.url
    paths = {r.path for r in hostile["server"].requests}
    assert not any(p.startswith("/latest/meta-data") or p == "/admin" for p in paths)


def test_every_request_carries_the_configured_user_agent(hostile):
    agents = {r.user_agent for r in hostile["server"].requests}
    assert agents == {REFERENCE_FETCH["user_agent"]}


def test_decoding_and_content_checks(hostile):
    by = hostile["by_name"]
    r = by["cp1251-declared-utf8"][2]
    assert r.charset == "cp1251" and r.charset_mismatch and "Городской совет Северска" in r.text
    r = by["cp1251-undeclared"][2]
    assert r.charset == "cp1251" and not r.charset_mismatch and "Міська рада Березня" in r.text
    r = by["koi8r-meta-only"][2]
    assert r.charset == "koi8-r" and not r.charset_mismatch and "ремонт северного причала" in r.text
    r = by["utf8-declared-cp1251"][2]
    assert r.charset == "utf-8" and r.charset_mismatch and "поромна переправа" in r.text
    r = by["invalid-utf8"][2]
    assert r.charset == "utf-8" and not r.charset_mismatch and "\ufffd" in r.text
    r = by["nul-bytes"][2]
    assert "\x00" not in r.text and "harbour" in r.text
    r = by["html-as-octet-stream"][2]
    assert r.outcome == "ok" and "<article>" in r.text
    r = by["redirect-chain-3"][2]
    assert r.redirects == 3 and r.final_url.endswith("/article/chain-end") and r.attempts == 4


def test_retries_and_deferrals_seen_by_the_server(hostile):
    server = hostile["server"]
    five = server.requests_for("/status/500")
    assert len(five) == 3  # two retries, then the page waits for a later run
    gaps = [b.started - a.started for a, b in zip(five, five[1:], strict=False)]
    assert all(g >= REFERENCE_FETCH["backoff_base_s"] * 0.5 for g in gaps), gaps
    assert len(server.requests_for("/status/429", "limited")) == 1  # Retry-After 120 > max_retry_after_s 5
    assert server.requests_for("/article/limited-victim", "limited") == []
    assert len(server.requests_for("/status/503", "maintenance")) == 1
    assert server.requests_for("/article/maintenance-victim", "maintenance") == []
    victim = hostile["by_name"]["limited-victim"][2]
    assert 100 < victim.retry_after_s <= 120
    victim = hostile["by_name"]["maintenance-victim"][2]
    assert 250 < victim.retry_after_s <= 300
    assert server.requests_for("/private/members-only") == []
    assert len(server.requests_for("/robots.txt", "main")) == 1  # once per Fetcher and host


def test_feeds_parse_within_limits(hostile):
    by = hostile["by_name"]
    url, _, res = by["huge"]
    parsed = parse_feed(res.body, url, "huge", content_type=res.content_type, max_items=20)
    assert len(res.body) > 7_000_000 and len(parsed.items) == 20 and parsed.over_limit == 19_980
    assert [i.guid for i in parsed.items] == [f"bulletin-{k}" for k in range(20)]  # the newest ones
    url, _, res = by["koi8r-undeclared"]
    titles = [i.title for i in parse_feed(res.body, url, "k").items]
    assert titles[0] == "Паром начнёт курсировать весной"
    url, _, res = by["dupes"]
    parsed = parse_feed(res.body, url, "d")
    assert parsed.duplicates == 3 and [i.title for i in parsed.items] == ["Original", "Tracking twin", "A different story"]
    url, _, res = by["bad-links"]
    parsed = parse_feed(res.body, url, "b")
    rejected = [i for i in parsed.items if i.url is None]
    assert len(rejected) == 7 and all(i.link_error for i in rejected)
    assert {i.link for i in rejected if i.link} >= {"mailto:desk@newsroom.invalid", "ftp://127.0.0.1/pub/story.txt"}
    good = {i.guid: i.url for i in parsed.items if i.url}
    base = hostile["server"].base_urls["main"]
    assert good["rel-path"] == f"{base}/feed/article/rel-path"  # relative to the feed URL
    assert good["rel-root"] == f"{base}/article/rel-root" and good["padded"] == f"{base}/article/padded"
    for name, count in (("gzip-encoded", 2), ("nul-feed", 1), ("deep-feed", 1), ("jsonfeed", 2), ("news-sitemap", 2)):
        url, _, res = by[name]
        assert len(parse_feed(res.body, url, name).items) == count, name


# ---------------------------------------------------------------------------------------------- politeness


def test_per_host_delay_and_concurrency_hold_while_hosts_run_in_parallel():
    with HostileServer(("alpha", "beta")) as server:
        settings = _settings(min_delay_s=0.3, per_host_concurrency=2, concurrency=8)
        jobs = [(server.url(f"/delay/700/article/{h}-{k}", h), "page") for k in range(6) for h in ("alpha", "beta")]
        results = asyncio.run(_fetch_all(settings, jobs))
        assert {r.outcome for r in results} == {"ok"}
        report = politeness(server.requests, window_s=0.9)
        for host, row in report.items():
            assert row["requests"] == 7, host  # robots.txt and six pages
            # 0.3 s between arrivals, less the jitter a new TCP connection adds to one of them
            assert row["min_gap_s"] >= 0.3 - 0.1, (host, row)
            assert row["max_in_window"] <= 3, (host, row)  # at most 0.9 / 0.3 arrivals in any 0.9 s
            assert row["max_in_flight"] == 2, (host, row)  # the limit is reached and never exceeded
        alpha = [r for r in server.requests if r.host == "alpha"]
        beta = [r for r in server.requests if r.host == "beta"]
        # The two hosts are served at the same time: their busy periods overlap.
        assert min(r.started for r in alpha) < max(r.finished for r in beta)
        assert min(r.started for r in beta) < max(r.finished for r in alpha)


def test_crawl_delay_raises_the_host_delay_and_is_capped():
    with HostileServer(("main",), crawl_delay_s=0.6) as server:
        jobs = [(server.url(f"/article/crawl-{k}"), "page") for k in range(4)]
        asyncio.run(_fetch_all(_settings(min_delay_s=0.05), jobs))
        starts = [r.started for r in server.requests]  # robots.txt first, then the pages
        assert server.requests[0].path == "/robots.txt"
        gaps = [b - a for a, b in zip(starts[1:], starts[2:], strict=False)]
        assert len(gaps) == 3 and min(gaps) >= 0.6 - 0.03, gaps
    with HostileServer(("main",), crawl_delay_s=30) as server:  # capped by fetch.max_crawl_delay_s
        jobs = [(server.url(f"/article/cap-{k}"), "page") for k in range(3)]
        asyncio.run(_fetch_all(_settings(min_delay_s=0.05, max_crawl_delay_s=0.3), jobs))
        starts = [r.started for r in server.requests][1:]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert min(gaps) >= 0.3 - 0.03 and max(gaps) < 5, gaps  # 0.3 s, not the 30 s asked for


def test_short_retry_after_pauses_the_whole_host():
    with HostileServer(("main",), retry_after_429="1") as server:
        jobs = [(server.url("/status/429"), "page"), (server.url("/article/after-429"), "page")]
        # One request at a time, so "after the 429" is well defined (with two slots the second request may
        # legitimately be on the wire before the 429 arrives).
        results = asyncio.run(_fetch_all(_settings(min_delay_s=0.05, max_retry_after_s=5, per_host_concurrency=1),
                                         jobs))
        assert results[0].outcome == "http_error" and results[0].http_status == 429 and results[0].attempts == 3
        tries = server.requests_for("/status/429")
        gaps = [b.started - a.started for a, b in zip(tries, tries[1:], strict=False)]
        assert len(tries) == 3 and min(gaps) >= 1.0 - 0.03, gaps  # Retry-After: 1 honoured each time
        # After the last 429 the host is deferred for Retry-After; the other page either went before the
        # first 429 or was deferred: never sent inside a Retry-After window.
        other = results[1]
        if other.outcome == "ok":
            sent = server.requests_for("/article/after-429")[0].started
            # the server notes a response's end after its last write: the client may have read it first
            deadline = time.monotonic() + 2
            while any(t.finished is None for t in tries) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not any(t.finished < sent < t.finished + 1.0 - 0.03 for t in tries), (sent, tries)
        else:
            assert other.outcome == "deferred" and server.requests_for("/article/after-429") == []


def test_robots_cached_across_fetchers_for_a_day(tmp_path: Path):
    store = HostStore(tmp_path / "hosts")
    with HostileServer(("main",)) as server:
        jobs = [(server.url("/article/a"), "page"), (server.url("/private/x"), "page")]
        first = asyncio.run(_fetch_all(_settings(), jobs, host_store=store))
        second = asyncio.run(_fetch_all(_settings(), jobs, host_store=store))
        assert [r.outcome for r in first] == [r.outcome for r in second] == ["ok", "robots_disallowed"]
        assert len(server.requests_for("/robots.txt")) == 1  # the second Fetcher used the cache
        later = time.time() + 86400 + 60
        asyncio.run(_fetch_all(_settings(), jobs, host_store=store, clock=lambda: later))
        assert len(server.requests_for("/robots.txt")) == 2  # older than robots_ttl_s: fetched again


def test_host_deferral_outlives_the_fetcher(tmp_path: Path):
    store = HostStore(tmp_path / "hosts")
    with HostileServer(("main",)) as server:
        first = asyncio.run(_fetch_all(_settings(), [(server.url("/status/429"), "page")], host_store=store))
        assert first[0].http_status == 429
        again = asyncio.run(_fetch_all(_settings(), [(server.url("/article/next-run"), "page")], host_store=store))
        assert again[0].outcome == "deferred" and server.requests_for("/article/next-run") == []
        later = time.time() + 121
        after = asyncio.run(_fetch_all(_settings(), [(server.url("/article/next-run"), "page")], host_store=store,
                                       clock=lambda: later))
        assert after[0].outcome == "ok" and len(server.requests_for("/article/next-run")) == 1


def test_guarded_connector_refuses_before_any_socket_exists():
    """The HTTP client's own sessions (Fetcher._new_client), asked directly (no URL policy layer before
    them): a refused name or address raises before any socket exists."""
    import aiohttp

    fetcher = Fetcher(FetchSettings())

    async def get(url: str) -> None:
        async with fetcher._new_client(1) as session, session.get(url, allow_redirects=False):
            pass

    for host in ("169.254.169.254", "localhost", "10.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "2852039166"):
        with ConnectAudit() as audit, pytest.raises((PolicyError, aiohttp.InvalidURL)) as err:
            asyncio.run(get(f"http://{host}:80/"))
        if host != "2852039166":  # aiohttp itself refuses a decimal IPv4 literal, before resolving it
            assert err.value.outcome == "blocked", host
        assert audit.connections == [], host
    assert not fetcher.guard.connected


def test_guarded_connector_counts_what_it_lets_through():
    guard = GuardedConnector(UrlPolicy(["127.0.0.1"]))
    sock = guard.socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 8080)))
    sock.close()
    assert dict(guard.connected) == {("127.0.0.1", 8080): 1}
    with pytest.raises(PolicyError):
        guard.socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 8080)))
    resolved = asyncio.run(guard.resolver.resolve("127.0.0.1", 8080))
    assert [(r["host"], r["port"], r["family"]) for r in resolved] == [("127.0.0.1", 8080, socket.AF_INET)]


def test_a_name_resolving_to_loopback_is_refused_without_allow_list():
    with HostileServer(("main",)) as server, ConnectAudit() as audit:
        url = server.url("/article/by-name").replace("127.0.0.1", "localhost")
        res = asyncio.run(_fetch_all(_settings(allow_private=[]), [(url, "page")]))[0]
        assert res.outcome == "blocked" and "loopback" in res.error
        assert server.requests == [] and audit.connections == []


def test_the_next_fetcher_keeps_its_distance_from_the_last_request(tmp_path: Path):
    """Feed stage, then page stage: two Fetchers, one host store; the delay holds across them."""
    store = HostStore(tmp_path / "hosts")
    with HostileServer(("main",)) as server:
        settings = _settings(min_delay_s=0.8, obey_robots=False)
        asyncio.run(_fetch_all(settings, [(server.url("/feed.xml"), "feed")], host_store=store))
        asyncio.run(_fetch_all(settings, [(server.url("/article/right-after"), "page")], host_store=store))
        first, second = server.requests
        assert second.started - first.started >= 0.8 - 0.1, (first.started, second.started)


def test_robots_allow_under_a_disallowed_root_and_wildcards_over_http():
    """A real robots.txt on a loopback server: the pages its most specific rules allow are fetched, the
    others never requested."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    robots = b"User-agent: *\nDisallow: /\nAllow: /news/\nDisallow: /news/*.pdf$\nAllow: /live$\n"
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            body = robots if self.path == "/robots.txt" else b"<html><body><p>page</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain" if self.path == "/robots.txt" else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        paths = ["/news/storm.html", "/shop/", "/news/report.pdf", "/live", "/live/2"]
        results = asyncio.run(_fetch_all(_settings(), [(base + p, "page") for p in paths]))
    finally:
        server.shutdown()
        server.server_close()
    assert [r.outcome for r in results] == ["ok", "robots_disallowed", "robots_disallowed", "ok", "robots_disallowed"]
    assert sorted(seen) == ["/live", "/news/storm.html", "/robots.txt"]
