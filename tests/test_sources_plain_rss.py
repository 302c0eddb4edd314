"""The plain RSS 2.0 reader (pipeline.sources.plain_rss) against feedparser: on every feed we have, a
document it takes must give the same ParsedFeed as feedparser's reading of it, and the documents it must
take (plain feeds, with the quirks feedparser normalises) are taken."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import shared_path

import pipeline.sources as sources
from pipeline.demo import DemoWeb

URL = "https://news.example/feeds/main.xml"


def both(body: bytes, content_type: str | None = None) -> tuple[sources.ParsedFeed, sources.ParsedFeed, bool]:
    """(our reading, feedparser's, whether plain_rss took the document)."""
    taken = False
    real = sources.plain_rss

    def spy(doc: bytes) -> dict | None:
        nonlocal taken
        out = real(doc)
        taken = taken or out is not None
        return out

    sources.plain_rss = spy
    try:
        ours = sources.parse_feed(body, URL, "src", content_type=content_type)
        sources.plain_rss = lambda doc: None
        theirs = sources.parse_feed(body, URL, "src", content_type=content_type)
    finally:
        sources.plain_rss = real
    return ours, theirs, taken


def rss(items: str, channel: str = "<title>Main</title>", head: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            f'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
            f'xmlns:media="http://search.yahoo.com/mrss/" {head}>\n<channel>{channel}\n{items}\n</channel></rss>\n'
            ).encode()


ITEM = ("<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        "<pubDate>Mon, 07 Dec 2026 06:59:27 +0000</pubDate><description>{desc}</description></item>")

# Documents plain_rss must take, each with a quirk feedparser normalises (its reading is the reference).
TAKEN = {
    "plain": rss(ITEM.format(title="Storm hits the coast", link="https://news.example/a/1", desc="Teaser.")),
    "entities and CDATA": rss(ITEM.format(title="Rates &amp; bonds: &lt;b&gt;up&lt;/b&gt; &#233;t&#xE9;",
                                          link="https://news.example/a?x=1&amp;y=2",
                                          desc="<![CDATA[<p>Some <b>bold</b> &amp; text</p><br/>]]>")),
    "whitespace": rss(ITEM.format(title="\n   Spaced   title \t\n", link="\n  https://news.example/a/2  \n",
                                  desc="  line one\n\n  line two  ")),
    "relative and odd links": rss(
        ITEM.format(title="A", link="/a/3", desc="x")
        + ITEM.format(title="B", link="http:///news.example/a/4", desc="x")
        + ITEM.format(title="C", link="javascript:alert(1)", desc="x")
        + ITEM.format(title="D", link="https://news.example/a?q=1&amp;amp;r=2&amp;copy;", desc="x")),
    "guids": rss(
        "<item><title>permalink only</title><guid>https://news.example/a/5</guid></item>"
        '<item><title>not a permalink</title><guid isPermaLink="false">tag:news.example,2026:6</guid></item>'
        '<item><title>guid before link</title><guid isPermaLink="true">https://news.example/a/7</guid>'
        "<link>https://news.example/a/7?ref=rss</link></item>"
        '<item><title>relative permalink</title><guid>/a/8</guid></item>'
        '<item><title>not a permalink, no link</title><guid isPermaLink="false">https://news.example/a/9</guid>'
        "</item>"),
    "content and description": rss(
        "<item><title>content first</title><link>https://news.example/b/1</link>"
        "<content:encoded><![CDATA[<p>Full text</p>]]></content:encoded><description>Desc</description></item>"
        "<item><title>content only</title><link>https://news.example/b/2</link>"
        "<content:encoded><![CDATA[<p>Only the full text</p>]]></content:encoded></item>"
        "<item><title>empty description</title><link>https://news.example/b/3</link><description></description>"
        "<content:encoded>Body</content:encoded></item>"),
    "authors and categories": rss(
        "<item><title>a</title><link>https://news.example/c/1</link><dc:creator>Jane Doe</dc:creator>"
        "<category>Politics</category><category> Politics </category><category>World</category>"
        "<category></category></item>"
        "<item><title>b</title><link>https://news.example/c/2</link><author>Staff (Wire)</author></item>"
        "<item><title>c</title><link>https://news.example/c/3</link><dc:creator>  </dc:creator></item>"),
    "dates": rss("".join(
        f"<item><title>d{i}</title><link>https://news.example/d/{i}</link><pubDate>{d}</pubDate></item>"
        for i, d in enumerate(["Mon, 07 Dec 2026 06:59:27 GMT", "7 Dec 2026 06:59 EST", "2026-12-07T06:59:27Z",
                               "Tue, 31 Feb 2026 10:00:00 +0000", "not a date", "", "Mon, 07 Dec 26 06:59:27 +0530",
                               "Monday, December 7, 2026 6:59 AM"]))),
    "mojibake and windows-1252": rss(
        ITEM.format(title="Café à la carte".encode().decode("latin-1"), link="https://news.example/e/1",
                    desc="été".encode().decode("latin-1"))
        + ITEM.format(title="\x85 \x93quoted\x94", link="https://news.example/e/2", desc="\x80 5")),
    "channel fields": rss(
        ITEM.format(title="t", link="https://news.example/f/1", desc="d"),
        channel="<title>The &lt;Daily&gt; Bugle</title><link>https://news.example/</link>"
                "<description>News</description><language>en</language><ttl> 30 </ttl>"
                '<atom:link href="https://news.example/feeds/main.xml" rel="self"/>'
                "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>"
                "<image><url>https://news.example/logo.png</url><title>Logo</title></image>"),
    "skipped item elements": rss(
        "<item><title>t</title><link>https://news.example/g/1</link><comments>https://news.example/g/1#c</comments>"
        '<enclosure url="https://news.example/g/1.mp3" length="1" type="audio/mpeg"/>'
        '<media:content url="https://news.example/g/1.jpg"/><media:thumbnail url="https://news.example/g/t.jpg"/>'
        "</item>"),
    "no items": rss(""),
    "undeclared charset": rss(ITEM.format(title="Ünïcödé", link="https://news.example/h/1", desc="ß")),
}

# Documents plain_rss must leave to feedparser: what it would read differently or cannot read.
LEFT = {
    "media title": rss("<item><media:title>Media</media:title><title>t</title>"
                       "<link>https://news.example/x/1</link></item>"),
    "two titles": rss("<item><title>one</title><title>two</title><link>https://news.example/x/2</link></item>"),
    "author with e-mail": rss("<item><title>t</title><link>https://news.example/x/3</link>"
                              "<author>jane@news.example (Jane)</author></item>"),
    "nested markup": rss("<item><title>t <b>bold</b></title><link>https://news.example/x/4</link></item>"),
    "comment": rss("<item><title>t</title><!-- c --><link>https://news.example/x/5</link></item>"),
    "xml:base": rss("<item><title>t</title><link>a/6</link></item>", head='xml:base="https://other.example/"'),
    "category domain": rss('<item><title>t</title><link>https://news.example/x/7</link>'
                           '<category domain="https://news.example/tags">Tag</category></item>'),
    "unknown element": rss("<item><title>t</title><link>https://news.example/x/8</link><foo>bar</foo></item>"),
    "rss 0.91": rss("").replace(b'version="2.0"', b'version="0.91"'),
    "ill-formed": rss("<item><title>t &nbsp;</title><link>https://news.example/x/9</link></item>"),
    "empty link": rss("<item><title>t</title><link></link><guid>https://news.example/x/10</guid></item>"),
    "atom": b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>',
}


def assert_same(ours: sources.ParsedFeed, theirs: sources.ParsedFeed) -> None:
    assert (ours.format, ours.title, ours.error, ours.ttl_s, ours.duplicates, ours.over_limit) == (
        theirs.format, theirs.title, theirs.error, theirs.ttl_s, theirs.duplicates, theirs.over_limit)
    assert ours.items == theirs.items


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_plain_feeds_are_read_by_lxml_as_feedparser_reads_them(name):
    ours, theirs, taken = both(TAKEN[name])
    assert taken, f"{name}: plain_rss left the document to feedparser"
    assert_same(ours, theirs)


@pytest.mark.parametrize("name", sorted(LEFT))
def test_feeds_plain_rss_cannot_read_exactly_go_to_feedparser(name):
    ours, theirs, taken = both(LEFT[name])
    assert not taken, f"{name}: plain_rss took a document it should leave to feedparser"
    assert_same(ours, theirs)


def test_the_differences_the_readers_settle_are_real():
    """The quirks above are not no-ops: feedparser's reading of them differs from the raw text."""
    plain = sources.parse_feed(TAKEN["plain"], URL, "src")
    assert [(i.title, i.url, i.summary) for i in plain.items] == [
        ("Storm hits the coast", "https://news.example/a/1", "Teaser.")]
    assert plain.items[0].published_at == datetime(2026, 12, 7, 6, 59, 27, tzinfo=UTC)
    odd = sources.parse_feed(TAKEN["relative and odd links"], URL, "src")
    assert [i.url for i in odd.items] == ["https://news.example/a/3", "http://news.example/a/4", None,
                                          "https://news.example/a?q=1&r=2&copy"]
    assert odd.items[2].link_error is not None
    mojibake = sources.parse_feed(TAKEN["mojibake and windows-1252"], URL, "src")
    assert [(i.title, i.summary) for i in mojibake.items] == [("Café à la carte", "été"),
                                                              ("\u201cquoted\u201d", "\u20ac 5")]  # \x85: a space to str.strip
    channel = sources.parse_feed(TAKEN["channel fields"], URL, "src")
    assert (channel.title, channel.ttl_s) == ("The Bugle", 900.0)  # a tag dropped; sy:updatePeriod over ttl


def test_generated_feeds_of_the_demo_and_the_benchmark_web_are_read_the_same():
    import sys
    from pathlib import Path

    web = DemoWeb()
    site = web.build_site("http://127.0.0.1:4321")
    rss_feeds = [path for _, path, fmt in web.feeds if fmt == "rss"]
    assert rss_feeds
    for path in rss_feeds:
        res = site[path]
        ours, theirs, taken = both(res.body, res.content_type)
        assert taken, path
        assert_same(ours, theirs)
        assert ours.items

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import loopweb
    finally:
        sys.path.pop(0)
    outlets = loopweb.make_outlets(2)
    refs = loopweb.page_refs(outlets, 40, datetime(2026, 12, 7, tzinfo=UTC), seed=3)
    body = loopweb.rss(outlets[0], "http://127.0.0.1:1", "f0", [r for r in refs if r.host == 0]).encode()
    ours, theirs, taken = both(body)
    assert taken and ours.items
    assert_same(ours, theirs)


def test_every_shared_feed_reads_the_same_with_or_without_plain_rss():
    """../shared/feeds: real and ill-formed feeds in many encodings."""
    root = shared_path("feeds")
    taken_any = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix in (".py", ".md", ".csv", ".json"):
            continue
        ours, theirs, taken = both(path.read_bytes())
        taken_any += taken
        assert_same(ours, theirs)
    assert taken_any >= 5  # the real RSS 2.0 feeds without extensions
