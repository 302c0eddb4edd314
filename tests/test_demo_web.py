"""The bundled demo web: deterministic generation, ground truth, and the loopback server."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest
import trafilatura

from pipeline.demo import DemoServer, DemoWeb, default_now
from pipeline.demo.web import TRACKING_QUERY
from pipeline.settings import parse_config

NOW = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
SEED = 7
UA = "newsingest-test/0.1 (+demo)"

# urllib must not route loopback requests through a proxy from the environment
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"User-Agent": UA, **(headers or {})}, method=method)
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:  # 304 and 404 land here
        return exc.code, dict(exc.headers), exc.read()


def shingles(text: str, k: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + k]) for i in range(max(0, len(words) - k + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


@pytest.fixture(scope="module")
def web() -> DemoWeb:
    return DemoWeb(seed=SEED, now=NOW)


@pytest.fixture(scope="module")
def server(web: DemoWeb):
    with DemoServer(web) as srv:
        yield srv


# ---- generation and ground truth ------------------------------------------------------------------


def test_generation_is_deterministic(web: DemoWeb) -> None:
    again = DemoWeb(seed=SEED, now=NOW)
    assert again.pages == web.pages
    assert again.stories == web.stories
    assert again.feeds == web.feeds
    base = "http://127.0.0.1:8000"
    site_a, site_b = web.build_site(base), again.build_site(base)
    assert site_a.keys() == site_b.keys()
    assert all(site_a[p].body == site_b[p].body for p in site_a)
    other = DemoWeb(seed=SEED + 1, now=NOW)
    assert [p.paragraphs for p in other.pages] != [p.paragraphs for p in web.pages]


def test_runs_in_a_fresh_interpreter_give_the_same_web(web: DemoWeb) -> None:
    """No dependence on hash randomisation (PYTHONHASHSEED) or on the clock."""
    code = (
        "import hashlib, json; from datetime import datetime, UTC; from pipeline.demo import DemoWeb; "
        f"w = DemoWeb(seed={SEED}, now=datetime(2024, 6, 3, 12, tzinfo=UTC)); "
        "s = w.build_site('http://127.0.0.1:8000'); "
        "print(hashlib.sha256(b''.join(k.encode() + s[k].body for k in sorted(s))).hexdigest())"
    )
    digests = set()
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_default_now_is_the_current_hour() -> None:
    now = default_now()
    assert now.tzinfo is not None and now.minute == 0 and now.second == 0 and now.microsecond == 0
    assert timedelta(0) <= datetime.now(UTC) - now < timedelta(hours=1)
    assert DemoWeb(seed=SEED).now <= datetime.now(UTC)


def test_counts_and_truth_fields(web: DemoWeb) -> None:
    ok = web.ok_pages
    assert len(ok) >= 40
    assert len(web.copies) >= 10
    assert len({o.slug for o in web.outlets}) >= 5
    assert {f.format for f in web.feeds} >= {"rss", "atom", "jsonfeed"}
    assert len(web.stories) >= 25
    assert len({p.path for p in web.pages}) == len(web.pages)
    for name, path, fmt in web.feeds:  # (name, path, format) tuples
        assert path.startswith("/") and fmt in ("rss", "atom", "jsonfeed") and name
    for story in web.stories.values():
        assert 5 <= len(story.paragraphs) <= 10
    for p in ok:
        assert p.paragraphs and p.title and p.outlet in {o.slug for o in web.outlets}
        assert p.story_id in web.stories
        assert NOW - timedelta(days=5) < p.published_at < NOW
        assert p.feeds, f"{p.path} is in no feed"
    for p in web.copies:
        original = web.stories[p.story_id]
        assert p.outlet != original.outlet and p.syndicated_from
        assert p.published_at > original.published_at
        assert p.truncated == (len(p.paragraphs) < len(original.paragraphs))
    assert any(p.truncated for p in web.copies)
    assert any(p.headline_edited and p.title != web.stories[p.story_id].title for p in web.copies)
    assert any(p.dateline_dropped for p in web.copies)
    assert any(p.has_typos for p in web.copies)
    assert any(p.outlet == "newsflow-markets" for p in web.copies)
    # one page that 404s, one page without an article
    assert sorted(p.status for p in web.pages if p.status != "ok") == ["fetch_failed", "no_article"]
    # a follow-up story, and two different stories about one press conference
    assert any(s.follow_up_of in web.stories for s in web.stories.values())
    by_event: dict[str, set[str]] = {}
    for s in web.stories.values():
        by_event.setdefault(s.event_id, set()).add(s.story_id)
    assert any(len(ids) >= 2 and len({web.stories[i].outlet for i in ids}) >= 2 for ids in by_event.values())
    # JSON-LD on most pages, some without; a render date at the top of some pages
    with_ld = sum(p.has_jsonld for p in ok)
    assert len(ok) / 2 < with_ld < len(ok)
    assert any(p.shows_render_date for p in ok)


def test_config_yaml_is_a_valid_newsingest_config(web: DemoWeb) -> None:
    text = web.config_yaml("http://127.0.0.1:4321")
    cfg = parse_config(text)
    assert [f.name for f in cfg.feeds] == [f.name for f in web.feeds]
    assert [f.url for f in cfg.feeds] == [f"http://127.0.0.1:4321{f.path}" for f in web.feeds]
    assert cfg.fetch.allow_private == ["127.0.0.1"]
    assert cfg.fetch.min_delay_s == 0 and cfg.fetch.per_host_concurrency == 8


def test_distinct_stories_share_little_text_and_copies_share_most(web: DemoWeb) -> None:
    ok = web.ok_pages
    sh = {p.path: shingles(p.text) for p in ok}
    for a, b in itertools.combinations(ok, 2):
        j = jaccard(sh[a.path], sh[b.path])
        if a.story_id != b.story_id:
            assert j < 0.1, (a.story_id, b.story_id, j)
        else:
            shorter, longer = sorted((sh[a.path], sh[b.path]), key=len)
            assert len(shorter & longer) / len(shorter) >= 0.8, (a.path, b.path)
            assert j >= 0.4, (a.path, b.path, j)


def test_same_event_stories_are_different_texts(web: DemoWeb) -> None:
    pair = [s for s in web.stories.values() if s.event_id == "drought-presser"]
    assert len(pair) == 2
    a, b = (shingles("\n".join(s.paragraphs)) for s in pair)
    assert jaccard(a, b) < 0.05


# ---- the rendered pages -----------------------------------------------------------------------------


def _ld(html: str) -> dict | None:
    m = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    return json.loads(m.group(1)) if m else None


def test_page_metadata(web: DemoWeb) -> None:
    base = "http://127.0.0.1:8000"
    site = web.build_site(base)
    render_dates: dict[str, set[str]] = {}
    for p in web.ok_pages:
        html = site[p.path].body.decode("utf-8")
        assert f'<link rel="canonical" href="{base}{p.path}">' in html
        assert 'property="og:title"' in html and "<title>" in html
        m = re.search(r'<time class="published" datetime="([^"]+)"', html)
        assert m and datetime.fromisoformat(m.group(1)) == p.published_at
        ld = _ld(html)
        assert (ld is not None) == p.has_jsonld
        if ld:
            assert ld["@type"] == "NewsArticle"
            assert ld["headline"] == p.title
            assert datetime.fromisoformat(ld["datePublished"]) == p.published_at
            assert ld["author"]
        m = re.search(r'<span class="today">([^<]+)</span>', html)
        assert bool(m) == p.shows_render_date
        if m:  # the render date is "now" on every page of the outlet, whatever the publication date
            render_dates.setdefault(p.outlet, set()).add(m.group(1))
    assert render_dates and all(len(v) == 1 for v in render_dates.values())
    assert all(NOW.strftime("%Y") in next(iter(v)) for v in render_dates.values())


def test_pages_carry_realistic_boilerplate(web: DemoWeb) -> None:
    site = web.build_site("http://127.0.0.1:8000")
    courier = next(p for p in web.ok_pages if p.outlet == "daily-courier" and not p.is_copy)
    html = site[courier.path].body.decode()
    for needle in (
        "Advertisement", "Share", "Tweet", "Copy link", "Follow us on", "become a patron", "Last update:",
        "min read", "Views", "Tags:", "Read also:", "RECENT NEWS", "Related", "cookie", "&copy;",
        'class="breadcrumbs"', "hreflang=", "Photo:", "Author:",
    ):  # fmt: skip
        assert needle in html, needle
    agg = next(
        p for p in web.copies if p.outlet == "newsflow-markets" and "Wire" in (p.syndicated_from or "")
    )
    html = site[agg.path].body.decode()
    assert f"<p>(NFMN- Continental Press Wire) {agg.paragraphs[0][:40]}" in html
    assert re.search(r"<p>NFMN\d{8}\d{12}ID\d{10}</p>", html)
    assert "Legal Disclaimer:" in html


def test_trafilatura_finds_the_article_body(web: DemoWeb) -> None:
    site = web.build_site("http://127.0.0.1:8000")
    for p in web.ok_pages:
        text = trafilatura.extract(site[p.path].body.decode("utf-8")) or ""
        assert p.paragraphs[0] in text, p.path
        assert p.paragraphs[-1] in text, p.path
    video = next(p for p in web.pages if p.status == "no_article")
    text = trafilatura.extract(site[video.path].body.decode("utf-8")) or ""
    assert len(text.split()) < 40


# ---- the server ---------------------------------------------------------------------------------------


def test_server_binds_loopback_and_rejects_other_hosts(server: DemoServer, web: DemoWeb) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.base_url)
    assert server.port > 0
    with pytest.raises(ValueError):
        DemoServer(web, host="0.0.0.0")


def test_feeds_parse_and_every_item_resolves(server: DemoServer, web: DemoWeb) -> None:
    for name, path, fmt in web.feeds:
        feed_url = server.url(path)
        status, headers, body = get(feed_url)
        assert status == 200, path
        assert "charset=utf-8" in headers["Content-Type"]
        if fmt == "jsonfeed":
            assert headers["Content-Type"].startswith("application/feed+json")
            doc = json.loads(body)
            assert doc["version"] == "https://jsonfeed.org/version/1.1"
            assert doc["feed_url"] == feed_url
            items = [(it["url"], it["title"], it["date_published"]) for it in doc["items"]]
            assert all(it.get("content_text") or it.get("content_html") for it in doc["items"])
        else:
            parsed = feedparser.parse(body)
            assert not parsed.bozo, (path, parsed.get("bozo_exception"))
            assert parsed.version == ("atom10" if fmt == "atom" else "rss20")
            items = [(e.link, e.title, e.get("published")) for e in parsed.entries]
        assert items, name
        listed = []
        for link, title, published in items:
            url = urljoin(feed_url, link)
            assert url.startswith(server.base_url + "/")
            truth = web.page(urlsplit(url).path)
            listed.append(truth.path)
            assert title == truth.title
            assert published
            status, headers, page = get(url)
            if truth.status == "fetch_failed":
                assert status == 404
            else:
                assert status == 200, url
                assert headers["Content-Type"] == "text/html; charset=utf-8"
                assert page.startswith(b"<!DOCTYPE html>")
        assert sorted(listed) == sorted(p.path for p in web.pages if name in p.feeds)


def test_feed_link_styles(server: DemoServer, web: DemoWeb) -> None:
    ledger = get(server.url(web.feed("metro-ledger").path))[2].decode()
    links = re.findall(r"<link>([^<]+)</link>", ledger)[1:]  # [0] is the channel link
    assert links and all(not link.startswith("http") for link in links)
    assert any(link.startswith("/") for link in links) and any(not link.startswith("/") for link in links)
    courier = get(server.url(web.feed("daily-courier").path))[2].decode()
    assert '<guid isPermaLink="false">' in courier
    top = feedparser.parse(get(server.url(web.feed("metro-ledger-top").path))[2])
    assert all(e.link.endswith("?" + TRACKING_QUERY) for e in top.entries)


def test_url_twin_serves_the_same_page(server: DemoServer, web: DemoWeb) -> None:
    twins = [p for p in web.copies if p.aliases and len(p.feeds) >= 2]
    assert twins
    p = twins[0]
    assert p.aliases[0] == f"{p.path}?{TRACKING_QUERY}"
    plain, tracked = get(server.url(p.path)), get(server.url(p.aliases[0]))
    assert plain[0] == tracked[0] == 200 and plain[2] == tracked[2]
    assert web.page(p.aliases[0]) == p


def test_conditional_get(server: DemoServer, web: DemoWeb) -> None:
    url = server.url(web.feeds[0].path)
    status, headers, body = get(url)
    etag, last_modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert parsedate_to_datetime(last_modified) <= NOW
    server.clear_requests()
    status, headers, body = get(url, {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["ETag"] == etag
    status, _, body = get(url, {"If-None-Match": '"stale"'})
    assert status == 200 and body
    status, _, _ = get(url, {"If-Modified-Since": last_modified})
    assert status == 304
    older = format_datetime(parsedate_to_datetime(last_modified) - timedelta(hours=1), usegmt=True)
    assert get(url, {"If-Modified-Since": older})[0] == 200
    reqs = server.requests_for(web.feeds[0].path)
    assert [r.status for r in reqs] == [304, 200, 304, 200]
    assert reqs[0].if_none_match == etag and reqs[0].user_agent == UA
    assert reqs[2].if_modified_since == last_modified and reqs[2].method == "GET"


def test_unknown_paths_robots_and_head(server: DemoServer) -> None:
    status, headers, _ = get(server.url("/no/such/page.html"))
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    status, headers, body = get(server.url("/robots.txt"))
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Disallow: /private/" in body.decode() and "Crawl-delay" not in body.decode()
    status, headers, body = get(server.url("/robots.txt"), method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert get(server.url("/"))[0] == 200


def test_server_is_quiet(web: DemoWeb, capfd: pytest.CaptureFixture[str]) -> None:
    with DemoServer(web) as srv:
        get(srv.url("/robots.txt"))
        get(srv.url("/missing"))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_serve_forever_until_sigterm(tmp_path: Path) -> None:
    cfg_path = tmp_path / "demo.yaml"
    code = f"from pipeline.demo.server import serve_forever; raise SystemExit(serve_forever(0, {str(cfg_path)!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (cfg_path.exists() and cfg_path.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        cfg = parse_config(cfg_path.read_text())
        status, _, body = get(cfg.feeds[0].url)
        assert status == 200 and body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "http://127.0.0.1:" in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
