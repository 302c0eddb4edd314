"""The reference hostile server (../shared/feeds/hostile_server.py): each of its cases through the real
client, and whole `newsingest run`s over its feeds. Skipped, visibly, when ../shared is absent."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request

import pytest
import yaml
from conftest import shared_path

from pipeline.fetch.client import Fetcher
from pipeline.settings import FetchSettings
from pipeline.sources import parse_feed
from pipeline.testing.connect_audit import ConnectAudit
from pipeline.testing.harness import (
    free_port,
    query,
    run_newsingest,
    shared_server_records,
    wait_until_serving,
)
from pipeline.testing.hostile import REFERENCE_FETCH

pytestmark = pytest.mark.slow

# path -> (outcome, http_status, error pattern) under REFERENCE_FETCH (3 s deadline, 10 MB body cap)
EXPECT: dict[str, tuple[str, int | None, str | None]] = {
    "/article/good/1": ("ok", 200, None),
    "/article/good/2?utm_source=rss&utm_medium=feed": ("ok", 200, None),
    "/slow-drip": ("timeout", 200, r"within 3 s"),
    "/slow-headers": ("timeout", None, r"timeout|within"),
    "/endless": ("too_large", 200, r"exceeds the 10485760-byte limit"),
    "/big-page": ("too_large", 200, r"Content-Length \d+ exceeds"),
    "/gzip-bomb": ("too_large", 200, r"decompressed body exceeds"),
    "/truncated": ("error", 200, r"incomplete body"),
    "/huge-feed.xml": ("too_large", 200, r"Content-Length \d+ exceeds"),  # as a page: 12 MB > 10 MB (as a feed: ok)
    "/redirect-loop": ("http_error", 302, r"too many redirects"),
    "/redirect-chain/20": ("http_error", 302, r"too many redirects"),
    "/redirect-external": ("blocked", 302, r"192\.0\.2\.1"),
    "/redirect-metadata": ("blocked", 302, r"169\.254\.169\.254"),
    "/redirect-file": ("blocked", 302, r"scheme 'file'"),
    "/redirect-relative": ("ok", 200, None),
    "/status/404": ("http_error", 404, r"HTTP 404"),
    "/status/410": ("http_error", 410, r"HTTP 410"),
    "/status/429": ("http_error", 429, r"HTTP 429"),
    "/status/500": ("http_error", 500, r"HTTP 500"),
    "/status/503": ("http_error", 503, r"HTTP 503"),
    "/empty-200": ("bad_content", 200, r"empty body"),
    "/wrong-type/pdf": ("bad_content", 200, r"application/pdf"),
    "/wrong-type/image": ("bad_content", 200, r"image/png"),
    "/wrong-type/pdf-as-html": ("bad_content", 200, r"magic bytes.*text/html"),
    "/charset/cp1251-declared-utf8": ("ok", 200, None),
    "/charset/cp1251-undeclared": ("ok", 200, None),
    "/charset/koi8r-meta-only": ("ok", 200, None),
    "/charset/utf8-declared-cp1251": ("ok", 200, None),
    "/no-article": ("ok", 200, None),
    "/deep-nest": ("ok", 200, None),
    "/nul-bytes": ("ok", 200, None),
    "/invalid-utf8": ("ok", 200, None),
}
# That server builds its 12 MB feed for every request before sending a byte (two seconds on a busy
# machine): then the 2 s read timeout answers first.
SLOW_TO_START = {"/huge-feed.xml": "timeout"}
FEEDS = {"/changing-feed.xml": 2, "/volatile-feed.xml": 5, "/dupes-feed.xml": 2, "/feed-bad-links.xml": 11,
         "/html-instead-of-feed.xml": 0}


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    script = shared_path("feeds", "hostile_server.py")
    tmp = tmp_path_factory.mktemp("shared-hostile")
    port = free_port()
    log = tmp / "server.jsonl"
    proc = subprocess.Popen([sys.executable, str(script), str(port), "600", str(log)], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base + "/cases.json")
        head = urllib.request.Request(base + "/gzip-bomb", method="HEAD")  # it builds its bomb once, slowly
        urllib.request.urlopen(head, timeout=300).read()  # noqa: S310 - loopback
        yield {"base": base, "port": port, "log": log, "tmp": tmp,
               "cases": json.loads(urllib.request.urlopen(base + "/cases.json", timeout=30).read())}  # noqa: S310
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_every_reference_case_through_the_client(shared_server):
    base = shared_server["base"]
    paths = [c["path"] for c in shared_server["cases"]]
    assert set(paths) == set(EXPECT) | set(FEEDS), "the reference server's cases changed"
    settings = FetchSettings(**REFERENCE_FETCH)

    async def fetch(jobs):
        async with Fetcher(settings) as f:
            return await asyncio.gather(*(f.fetch(base + p, k) for p, k in jobs))

    pages = [p for p in EXPECT if p not in ("/status/429", "/status/503")]
    jobs = [(p, "page") for p in pages] + [(p, "feed") for p in FEEDS]
    with ConnectAudit() as audit:
        results = dict(zip([p for p, _ in jobs], asyncio.run(fetch(jobs)), strict=True))
        # 429 and 503 defer the whole host (one host here): each gets a Fetcher of its own.
        results["/status/429"] = asyncio.run(fetch([("/status/429", "page")]))[0]
        results["/status/503"] = asyncio.run(fetch([("/status/503", "page")]))[0]
    for path, (outcome, status, error) in EXPECT.items():
        res = results[path]
        if res.outcome == SLOW_TO_START.get(path):
            continue
        assert (res.outcome, res.http_status) == (outcome, status), (path, res.error)
        if error:
            assert re.search(error, res.error or "", re.I), (path, res.error)
    assert "Москва" in results["/charset/cp1251-declared-utf8"].text
    assert results["/charset/cp1251-declared-utf8"].charset_mismatch
    assert "Київ" in results["/charset/utf8-declared-cp1251"].text
    assert "\x00" not in results["/nul-bytes"].text
    assert results["/invalid-utf8"].charset == "utf-8"
    for path, items in FEEDS.items():
        res = results[path]
        assert res.outcome == "ok", path
        parsed = parse_feed(res.body, base + path, "shared")
        if items:
            assert parsed.is_feed and len(parsed.items) >= items - parsed.duplicates - 4, path
        else:
            assert not parsed.is_feed and "not a feed" in parsed.error
    assert {h for h, _ in audit.connections} == {"127.0.0.1"}
    records = shared_server_records(shared_server["log"], shared_server["port"])
    assert {r["user_agent"] for r in records if r["path"] not in ("/cases.json", "/gzip-bomb")} == \
        {REFERENCE_FETCH["user_agent"]}


def test_newsingest_runs_over_the_reference_feeds(shared_server):
    base, tmp = shared_server["base"], shared_server["tmp"]
    feeds = ["/feed.xml", "/changing-feed.xml", "/volatile-feed.xml", "/dupes-feed.xml", "/feed-bad-links.xml",
             "/huge-feed.xml", "/html-instead-of-feed.xml"]
    config = {"feeds": [{"name": f"shared{p.split('.')[0].replace('/', '-')}", "url": base + p,
                         **({"max_items": 20} if "huge" in p else {})} for p in feeds], "fetch": REFERENCE_FETCH}
    cfg = tmp / "shared.yaml"
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    before = len(shared_server_records(shared_server["log"], shared_server["port"]))
    args = ["run", "--all", "--config", str(cfg), "--warehouse", str(tmp / "wh"), "--quiet", "--json"]
    first = run_newsingest(args, tmp / "run1")
    middle = len(shared_server_records(shared_server["log"], shared_server["port"]))
    second = run_newsingest(args, tmp / "run2")
    assert first.rc == 0 and second.rc == 0, first.output[-2000:]
    assert all(c["host"] == "127.0.0.1" and c["port"] == shared_server["port"]
               for c in first.connections + second.connections)
    rows = query(tmp / "wh", f"SELECT * FROM fetch_log WHERE run_id = '{first.summary['run_id']}'")
    page_rows = {r["url"]: r for r in rows if r["kind"] == "page"}
    for c in shared_server["cases"]:  # /feed.xml lists every case: each one has an outcome
        row = page_rows.get(base + c["path"])
        assert row is not None, c["path"]
        if row["outcome"] == "deferred":  # after the 429 this host is left alone (a redirect may have gone first)
            assert "asked us to wait (HTTP 429" in row["error"], row
        else:
            assert row["outcome"] in (EXPECT.get(c["path"], ("ok",))[0], SLOW_TO_START.get(c["path"])), \
                (c["path"], row["error"])
    records = shared_server_records(shared_server["log"], shared_server["port"])
    run1 = records[before:middle]
    assert sum(1 for r in run1 if r["path"] == "/status/429") == 1
    answered = next(r["finished"] or r["started"] for r in run1 if r["path"] == "/status/429")
    # That server logs a request when it starts answering: after building its 12 MB /huge-feed.xml.
    late = [r for r in run1 if r["started"] > answered + 0.5 and r["path"] != "/huge-feed.xml"]
    assert late == [], [r["path"] for r in late]  # a 429 with Retry-After: 120 ends this run's visits
    # The client's own log says the same: no request left after the 429 came back (two may be in flight).
    (row429,) = [r for r in rows if r["url"] == base + "/status/429"]
    back = row429["started_at"].timestamp() + row429["elapsed_ms"] / 1000
    sent_after = [r["url"] for r in rows if r["attempts"] and r["started_at"].timestamp() > back + 0.1]
    assert sent_after == []
    # Second run: the host asked for 120 s (429) and 300 s (503); its feeds wait too, nothing is sent.
    assert records[middle:] == []
    outcomes = {r["outcome"] for r in query(tmp / "wh", f"SELECT outcome FROM fetch_log WHERE run_id = "
                                                         f"'{second.summary['run_id']}'")}
    assert outcomes == {"deferred"}
    counts = query(tmp / "wh", "SELECT count(*) AS n, count(DISTINCT article_id) AS d FROM articles")[0]
    assert counts["n"] == counts["d"]


def test_conditional_get_against_the_reference_changing_feed(shared_server):
    base, tmp = shared_server["base"], shared_server["tmp"]
    cfg = tmp / "changing.yaml"
    cfg.write_text(yaml.safe_dump({"feeds": [{"name": "changing", "url": base + "/changing-feed.xml"}],
                                   "fetch": REFERENCE_FETCH}), encoding="utf-8")
    args = ["run", "--all", "--config", str(cfg), "--warehouse", str(tmp / "wh-changing"), "--quiet", "--json"]
    before = len(shared_server_records(shared_server["log"], shared_server["port"]))
    first = run_newsingest(args, tmp / "changing1", audit=False)
    second = run_newsingest(args, tmp / "changing2", audit=False)
    assert first.rc == second.rc == 0
    feeds = [r for r in shared_server_records(shared_server["log"], shared_server["port"])[before:]
             if r["path"] == "/changing-feed.xml"]
    assert len(feeds) == 2 and not feeds[0]["if_none_match"]
    assert feeds[1]["if_none_match"] and feeds[1]["if_modified_since"]  # the validators of the first answer
    assert feeds[1]["status"] in (200, 304)  # 304 unless a new version came out in between (every 5 s)
    counts = query(tmp / "wh-changing", "SELECT count(*) AS n, count(DISTINCT article_id) AS d FROM articles")[0]
    assert counts["n"] == counts["d"] and counts["n"] >= 2  # it moves one version per poll at most
