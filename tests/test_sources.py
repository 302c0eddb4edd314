"""Feed parsing: RSS, Atom, RDF, JSON Feed, news sitemaps; links resolved or rejected, never dropped."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest
from conftest import shared_path

from pipeline.sources import parse_feed, resolve_link, xml_to_utf8

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Example</title><ttl>30</ttl>
<item><title>Relative</title><link>/news/1.html</link><guid isPermaLink="false">a1</guid>
  <pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate><description>&lt;p&gt;Sum &amp;amp; mary&lt;/p&gt;</description></item>
<item><title>Protocol relative</title><link>//cdn.example.org/x</link><guid>a2</guid></item>
<item><title>Script</title><link>javascript:alert(1)</link><guid>a3</guid></item>
<item><title>File</title><link>file:///etc/passwd</link><guid>a4</guid></item>
<item><title>No link</title><guid isPermaLink="false">a5</guid></item>
<item><title>Dupe</title><link>/news/1.html</link><guid isPermaLink="false">a1</guid></item>
</channel></rss>"""


def test_rss_links_resolved_and_rejected_links_recorded():
    feed = parse_feed(RSS, "https://example.com/feeds/rss.xml", "ex")
    assert feed.format == "rss"
    assert feed.ttl_s == 1800
    by_title = {i.title: i for i in feed.items}
    assert by_title["Relative"].url == "https://example.com/news/1.html"
    assert by_title["Relative"].summary == "Sum & mary"
    assert by_title["Relative"].published_at.isoformat() == "2026-11-23T10:00:00+00:00"
    assert by_title["Protocol relative"].url == "https://cdn.example.org/x"
    for title, scheme in (("Script", "javascript"), ("File", "file")):
        assert by_title[title].url is None
        assert scheme in by_title[title].link_error
    assert by_title["No link"].url is None and by_title["No link"].link_error == "item has no link"
    assert feed.duplicates == 1 and len(feed.items) == 5  # one per guid, nothing silently lost


def test_atom_and_rdf():
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
      <entry><title>One</title><link rel="alternate" href="entry/1"/><id>urn:1</id>
      <updated>2026-11-20T08:00:00+02:00</updated><author><name>Ann Lee</name></author></entry></feed>"""
    feed = parse_feed(atom, "https://news.example/atom.xml", "a")
    assert feed.format == "atom"
    (item,) = feed.items
    assert item.url == "https://news.example/entry/1"
    assert item.authors == ["Ann Lee"]
    assert item.published_at.isoformat() == "2026-11-20T06:00:00+00:00"
    rdf = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
      xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><title>R</title></channel>
      <item rdf:about="https://r.example/1"><title>Rdf item</title><link>https://r.example/1</link></item></rdf:RDF>"""
    feed = parse_feed(rdf, "https://r.example/rdf", "r")
    assert [i.url for i in feed.items] == ["https://r.example/1"]


def test_json_feed_1_0_and_1_1():
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "authors": [{"name": "Desk"}],
           "items": [{"id": 1, "url": "p/1", "title": "T1", "content_html": "<p>Hi</p>", "date_published": "2026-11-22T12:00:00Z"},
                     {"id": "2", "external_url": "https://other.example/2", "title": "T2", "author": {"name": "x"}},
                     {"id": "3", "url": "mailto:a@b.c", "title": "T3"},
                     "not an object"]}
    feed = parse_feed(json.dumps(doc).encode(), "https://j.example/feed.json", "j")
    assert feed.format == "jsonfeed"
    urls = [i.url for i in feed.items]
    assert urls == ["https://j.example/p/1", "https://other.example/2", None]
    assert feed.items[0].authors == ["Desk"] and feed.items[0].summary == "Hi"
    assert "mailto" in feed.items[2].link_error
    assert feed.error  # the non-object item is reported
    v10 = {"version": "https://jsonfeed.org/version/1", "items": [{"id": "a", "url": "https://x.example/a",
                                                                  "author": {"name": "Solo"}}]}
    assert parse_feed(json.dumps(v10).encode(), "https://x.example/f.json", "x").items[0].authors == ["Solo"]
    bad = parse_feed(b'{"items": []}', "https://x.example/f.json", "x")
    assert not bad.is_feed and "jsonfeed.org" in bad.error


def test_news_sitemap_and_index():
    sm = b"""<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
      <url><loc>https://s.example/a/1</loc><news:news><news:publication><news:name>S</news:name>
      <news:language>en</news:language></news:publication><news:publication_date>2026-11-23T09:00:00Z</news:publication_date>
      <news:title>Sitemap story</news:title><news:keywords>a, b</news:keywords></news:news></url>
      <url><loc>ftp://s.example/x</loc></url></urlset>"""
    feed = parse_feed(sm, "https://s.example/news-sitemap.xml", "s")
    assert feed.format == "sitemap"
    assert feed.items[0].title == "Sitemap story" and feed.items[0].tags == ["a", "b"]
    assert feed.items[0].published_at.isoformat() == "2026-11-23T09:00:00+00:00"
    assert feed.items[1].url is None and "ftp" in feed.items[1].link_error
    idx = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>/s1.xml</loc></sitemap></sitemapindex>"""
    assert parse_feed(idx, "https://s.example/index.xml", "s").child_sitemaps == ["https://s.example/s1.xml"]


def test_html_instead_of_feed_and_garbage_do_not_crash():
    for body in (b"<!DOCTYPE html><html><body><p>Not a feed</p></body></html>", b"", b"\x00\x01\x02", b"{", b"<rss"):
        feed = parse_feed(body, "https://x.example/feed", "x")
        assert feed.items == []


def test_bozo_feed_keeps_items():
    broken = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>
      <item><title>Good</title><link>https://b.example/1</link></item>
      <item><title>Broken &nbsp; entity</title><link>https://b.example/2</link></item>"""
    feed = parse_feed(broken, "https://b.example/rss", "b")
    assert feed.error and "ill-formed" in feed.error
    assert [i.url for i in feed.items][:1] == ["https://b.example/1"]


@pytest.mark.parametrize("encoding", ["koi8-r", "windows-1251", "shift_jis", "iso-8859-7"])
def test_undeclared_legacy_encodings_are_detected(encoding):
    texts = {"koi8-r": "Правительство объявило о ремонте моста через реку", "windows-1251": "Жители города довольны новостью о мосте",
             "shift_jis": "東京都は新しい橋の開通を発表しました", "iso-8859-7": "Η κυβέρνηση ανακοίνωσε την επισκευή της γέφυρας"}
    title = texts[encoding]
    body = f"<rss version='2.0'><channel><title>t</title><item><title>{title}</title><link>https://e.example/1</link>" \
           f"<description>{title} {title}</description></item></channel></rss>".encode(encoding)
    feed = parse_feed(body, "https://e.example/rss", "e")
    assert feed.items[0].title == title


def test_gzipped_feed_file_and_utf16():
    body = gzip.compress(RSS)
    assert len(parse_feed(body, "https://example.com/f.xml", "g").items) == 5
    utf16 = RSS.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16-le")
    converted, charset = xml_to_utf8(utf16)
    assert charset == "utf-16-le" and b'encoding="utf-8"' in converted
    assert len(parse_feed(utf16, "https://example.com/f.xml", "g").items) == 5


def test_resolve_link_cases():
    base = "https://example.com/a/feed.xml"
    assert resolve_link(" b.html ", base) == ("https://example.com/a/b.html", None)
    assert resolve_link("data:text/html,hi", base)[0] is None
    assert resolve_link("http://[::1", base)[0] is None  # malformed, not a crash


def test_every_shared_feed_parses_without_exception():
    """../shared/feeds: real and ill-formed feeds in many encodings."""
    root = shared_path("feeds")
    files = sorted(p for d in ("real", "illformed") for p in (root / d).iterdir())
    assert len(files) > 80
    with_items = 0
    for path in files:
        feed = parse_feed(path.read_bytes(), "https://feeds.example/" + path.name, "shared")
        with_items += bool(feed.items)
        for item in feed.items:
            assert item.url is None or item.url.startswith(("http://", "https://"))
            assert (item.url is None) == (item.link_error is not None)
            for text in (item.title or "", item.summary or ""):
                assert "\ufffd" not in text[:200] or "bozo" in path.name or "invalid" in path.name, path.name
    assert with_items >= 70


def test_shared_legacy_encodings_come_out_as_text():
    root = shared_path("feeds", "real")
    expectations = {
        "chardet__newsru.com.koi8-r.xml": "В Турции",
        "chardet__newsru.com.cp1251.xml": "В Турции",
        "chardet__newsru.com.ibm866.xml": "В Турции",
        "chardet__yasuhisa.com.shift_jis.xml": "ポータル",
        "chardet__naftemporiki.gr.wld.iso-8859-7.xml": "Μεγάλη",
    }
    for name, prefix in expectations.items():
        feed = parse_feed((root / name).read_bytes(), "https://x.example/f", "x")
        assert feed.items[0].title.startswith(prefix), (name, feed.items[0].title)
    ill = shared_path("feeds", "illformed")
    assert parse_feed((ill / "feedparser__chardet_koi8r.xml").read_bytes(), "https://x.example/f", "x").items[0].title \
        == "Как пережить новогоднюю ночь"


def _dated_feed(n: int, atom: bool = False, well_formed: bool = True) -> tuple[bytes, list[str], list[str]]:
    """n entries in shuffled date order (one undated): the document, guids newest first, guids in order."""
    import random
    from email.utils import formatdate

    rng = random.Random(7)
    stamps = [1_700_000_000 + 3600 * k for k in range(n - 1)]
    rng.shuffle(stamps)
    entries, dated = [], []
    for k, ts in enumerate(stamps):
        if atom:
            when = datetime.fromtimestamp(ts, UTC).isoformat()
            entries.append(f"<entry><id>urn:e{k}</id><title>E{k}</title><link href='https://a.example/{k}'/>"
                           f"<updated>{when}</updated></entry>")
        else:
            entries.append(f"<item><guid isPermaLink='false'>e{k}</guid><title>E{k}</title>"
                           f"<link>https://a.example/{k}</link><pubDate>{formatdate(ts, usegmt=True)}</pubDate></item>")
        dated.append((ts, f"urn:e{k}" if atom else f"e{k}"))
    entries.insert(n // 2, "<item><guid isPermaLink='false'>undated</guid><link>https://a.example/u</link></item>"
                   if not atom else "<entry><id>urn:undated</id><link href='https://a.example/u'/></entry>")
    if atom:
        doc = "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>A</title>" + "".join(entries) + "</feed>"
    else:
        doc = "<?xml version='1.0'?><rss version='2.0'><channel><title>R</title>" + "".join(entries)
        doc += "</channel></rss>" if well_formed else "</channel>"
    return doc.encode(), [g for _, g in sorted(dated, reverse=True)], [g for _, g in dated]


@pytest.mark.parametrize("atom", [False, True])
def test_big_feed_cut_keeps_the_newest_items_like_a_full_parse(atom, monkeypatch):
    import pipeline.sources as sources

    body, newest_first, doc_order = _dated_feed(300, atom=atom)
    cut = parse_feed(body, "https://a.example/f", "a", max_items=12)
    assert [i.guid for i in cut.items] == [g for g in doc_order if g in set(newest_first[:12])]
    assert cut.over_limit == 300 - 12 and cut.title in ("R", "A")
    monkeypatch.setattr(sources, "keep_newest_entries", lambda b, m: (b, 0))  # the reference: feedparser on all
    full = parse_feed(body, "https://a.example/f", "a", max_items=12)
    assert [i.guid for i in cut.items] == [i.guid for i in full.items]
    assert full.over_limit == cut.over_limit


def test_ill_formed_big_feed_is_not_cut_but_still_limited():
    from pipeline.sources import keep_newest_entries

    body, _, _ = _dated_feed(100, well_formed=False)
    assert keep_newest_entries(body, 5) == (body, 0)  # left to feedparser's lenient parser
    feed = parse_feed(body, "https://a.example/f", "a", max_items=5)
    assert len(feed.items) == 5 and feed.over_limit == 95 and feed.error


def test_newest_keeps_document_order_and_ranks_undated_last():
    from pipeline.records import FeedItem
    from pipeline.sources import newest

    def item(guid, ts):
        return FeedItem("s", "https://x/f", f"https://x/{guid}", guid,
                        published_at=datetime.fromtimestamp(ts, UTC) if ts else None)

    items = [item("a", 10), item("b", None), item("c", 30), item("d", 20), item("e", None)]
    assert [i.guid for i in newest(items, 3)] == ["a", "c", "d"]
    assert [i.guid for i in newest(items, 4)] == ["a", "b", "c", "d"]


def test_rejected_links_keep_the_link_as_written():
    feed = parse_feed(RSS, "https://example.com/feeds/rss.xml", "ex")
    by_title = {i.title: i for i in feed.items}
    assert by_title["Script"].link == "javascript:alert(1)"
    assert by_title["Relative"].link is None  # kept only when rejected
    assert by_title["No link"].link is None and by_title["No link"].link_error == "item has no link"
