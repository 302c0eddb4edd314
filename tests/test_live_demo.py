"""The live demo web: feeds that publish over time at their own rates, with an exact publication log."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trafilatura

from pipeline.demo import DemoServer, LiveDemoWeb
from pipeline.demo.live import LIVE_FEEDS
from pipeline.settings import parse_config
from pipeline.sources import parse_feed

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Clock:
    """A settable clock: the live web renders what exists at `clock()`."""

    def __init__(self, at: datetime) -> None:
        self.t = at.timestamp()

    def __call__(self) -> float:
        return self.t

    def set(self, at: datetime) -> None:
        self.t = at.timestamp()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


@pytest.fixture
def live():
    clock = Clock(START)
    web = LiveDemoWeb(seed=5, start=START, clock=clock)
    with DemoServer(web) as server:
        yield web, server, clock


def test_schedule_is_deterministic_and_rates_follow_the_patterns():
    a = LiveDemoWeb(seed=5, start=START, clock=lambda: 0.0)
    b = LiveDemoWeb(seed=5, start=START, clock=lambda: 0.0)
    hour = a.publications(until=at(3600), since=START)
    assert hour == b.publications(until=at(3600), since=START)
    assert a.publications(until=at(600), since=START) == [p for p in hour if p.appeared_at <= at(600)]
    assert LiveDemoWeb(seed=6, start=START, clock=lambda: 0.0).publications(until=at(3600), since=START) != hour
    counts = Counter(p.feed for p in hour)
    for f in LIVE_FEEDS:
        if f.pattern in ("busy", "steady"):
            expected = 3600 / f.mean_gap_s
            assert abs(counts[f.name] - expected) < 4 * expected**0.5 + 2, (f.name, counts[f.name], expected)
        elif f.pattern in ("idle", "flaky"):
            assert counts[f.name] == 0, f.name
    bursty = next(f for f in LIVE_FEEDS if f.pattern == "bursty")
    times = [p.appeared_at for p in hour if p.feed == bursty.name]
    gaps = [(y - x).total_seconds() for x, y in zip(times, times[1:], strict=False)]
    assert sum(1 for g in gaps if g >= bursty.burst_off_s * 0.9) >= 10  # quiet stretches between bursts ...
    assert sorted(gaps)[len(gaps) // 2] < bursty.mean_gap_s * 2  # ... and items close together inside them
    assert len({p.path for p in hour}) == len(hour)


def test_speed_compresses_the_schedule():
    slow = LiveDemoWeb(seed=5, start=START, clock=lambda: 0.0)
    fast = LiveDemoWeb(seed=5, start=START, speed=10, clock=lambda: 0.0)
    a = slow.publications(until=at(600), since=START)
    b = fast.publications(until=at(60), since=START)
    assert [(p.feed, p.path) for p in a] == [(p.feed, p.path) for p in b]
    for x, y in zip(a, b, strict=True):
        assert abs((x.appeared_at - START).total_seconds() - 10 * (y.appeared_at - START).total_seconds()) < 1e-3


def test_items_appear_in_their_feed_exactly_at_their_publication_time(live):
    web, server, clock = live
    wire = next(f for f in LIVE_FEEDS if f.name == "continental-wire")
    first = web.publications(until=at(600), since=START)
    pub = next(p for p in first if p.feed == wire.name)
    url = server.url(wire.path)
    clock.set(pub.appeared_at - timedelta(seconds=0.01))
    status, headers, body = get(url)
    assert status == 200 and pub.path.encode() not in body
    etag = headers["ETag"]
    assert get(url, {"If-None-Match": etag})[0] == 304  # nothing new: the validator holds
    assert get(server.url(pub.path))[0] == 404  # the page does not exist yet
    clock.set(pub.appeared_at)
    status, headers, body = get(url, {"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag
    parsed = parse_feed(body, url, wire.name, content_type=headers["Content-Type"])
    assert parsed.items[0].url == server.url(pub.path) and parsed.items[0].title == pub.title
    assert parsed.items[0].published_at == pub.appeared_at.replace(microsecond=0)
    status, headers, page = get(server.url(pub.path))
    assert status == 200 and headers["Cache-Control"] == "max-age=60"


def test_feeds_list_the_newest_items_and_older_ones_scroll_out(live):
    web, server, clock = live
    wire = next(f for f in LIVE_FEEDS if f.name == "continental-wire")
    clock.set(at(3600))
    pubs = [p for p in web.publications(since=START) if p.feed == wire.name]
    status, headers, body = get(server.url(wire.path))
    items = parse_feed(body, server.url(wire.path), wire.name, content_type=headers["Content-Type"]).items
    assert len(items) == web.max_items
    assert [i.url for i in items] == [server.url(p.path) for p in reversed(pubs[-web.max_items:])]
    assert get(server.url(pubs[0].path))[0] == 200  # scrolled out of the feed, still online


def test_idle_feeds_never_change_and_flaky_feed_fails_in_windows(live):
    web, server, clock = live
    idle = next(f for f in LIVE_FEEDS if f.pattern == "idle")
    flaky = next(f for f in LIVE_FEEDS if f.pattern == "flaky")
    bodies, statuses = set(), []
    for k in range(0, 1200, 10):
        clock.set(at(k))
        bodies.add(get(server.url(idle.path))[2])
        status, headers, _ = get(server.url(flaky.path))
        statuses.append(status)
        if status == 500:
            assert headers["Cache-Control"] == "no-store" and "ETag" not in headers
    assert len(bodies) == 1
    down = statuses.count(500) / len(statuses)
    assert set(statuses) == {200, 500}
    assert abs(down - flaky.outage_s / flaky.outage_every_s) < 0.1


def test_hints_in_feeds(live):
    web, server, _clock = live
    hinted = next(f for f in LIVE_FEEDS if f.ttl_minutes)
    _, headers, body = get(server.url(hinted.path))
    assert parse_feed(body, server.url(hinted.path), hinted.name, content_type=headers["Content-Type"]).ttl_s == \
        hinted.ttl_minutes * 60
    plain = next(f for f in LIVE_FEEDS if f.format == "rss" and not f.ttl_minutes)
    assert b"<ttl>" not in get(server.url(plain.path))[2]


def test_live_articles_extract_and_are_distinct_stories(live):
    from pipeline.dedup import dedup_documents

    web, server, clock = live
    clock.set(at(900))
    pubs = web.publications(since=START)
    docs = []
    for p in pubs[:60]:
        status, _, body = get(server.url(p.path))
        assert status == 200
        text = trafilatura.extract(body.decode("utf-8"), url=server.url(p.path)) or ""
        assert len(text.split()) >= 120, p.path
        assert p.title in body.decode("utf-8")
        docs.append({"id": p.path, "text": text, "source": p.feed})
    links = [d for d in dedup_documents(docs) if d["duplicate_of"]]
    assert links == []  # invented stories, not copies of each other: the pipeline must not cluster them


def test_config_is_a_compressed_watch_config(live):
    web, server, _clock = live
    config = parse_config(web.config_yaml(server.base_url))
    assert [f.name for f in config.feeds] == [f.name for f in LIVE_FEEDS]
    assert config.polling.min_interval_s == 60 and config.polling.max_interval_s == 300
    fast = parse_config(LiveDemoWeb(seed=5, speed=6, start=START).config_yaml(server.base_url))
    assert fast.polling.min_interval_s == 10 and fast.polling.max_interval_s == 50
    assert fast.watch.commit_interval_s == 1


def test_serve_live_with_publication_log(tmp_path: Path):
    cfg, log = tmp_path / "live.yaml", tmp_path / "pubs.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "demo", "--serve", "0", "--live", "--speed", "60",
                             "--write-config", str(cfg), "--publication-log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and len(log.read_text().splitlines()) >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.1)
        config = parse_config(cfg.read_text())
        assert config.polling.max_interval_s == 5  # 300 demo seconds at speed 60
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        assert [e["appeared_at"] for e in entries] == sorted(e["appeared_at"] for e in entries)
        status, _, body = get(entries[0]["url"])
        assert status == 200 and entries[0]["title"].encode() in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
