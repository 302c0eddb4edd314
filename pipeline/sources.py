"""Feed sources: RSS 0.9x/1.0/2.0 and Atom (feedparser, on bytes we fetched), JSON Feed 1.0/1.1 and
news sitemaps (our own small parsers).

Every entry becomes a `FeedItem`. Links are resolved against the feed URL; links that are not http(s)
are rejected *and recorded* on the item (`link_error`), never silently dropped. Items of a `bozo`
(ill-formed) feed are kept: most broken feeds still carry good entries.
"""

from __future__ import annotations

import calendar
import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from pipeline.records import FeedItem

_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")
_SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
_NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"


@dataclass(slots=True)
class ParsedFeed:
    format: str  # rss | atom | rdf | jsonfeed | sitemap | sitemapindex | unknown
    items: list[FeedItem] = field(default_factory=list)
    title: str | None = None
    error: str | None = None  # why the document is ill-formed (items may still be present)
    duplicates: int = 0  # entries dropped because an earlier entry had the same guid or link
    over_limit: int = 0  # entries beyond max_items (the oldest), not taken by design
    ttl_s: float | None = None  # <ttl> / sy:updatePeriod hint for polling
    child_sitemaps: list[str] = field(default_factory=list)

    @property
    def is_feed(self) -> bool:
        return self.format != "unknown"


def html_to_text(value: str | None, limit: int = 2000) -> str | None:
    if not value:
        return None
    text = _WS.sub(" ", html.unescape(_TAG.sub(" ", value))).strip()
    return text[:limit] or None


def resolve_link(link: str | None, base: str) -> tuple[str | None, str | None]:
    """(absolute http(s) URL, None) or (None, reason it was rejected)."""
    if link is None or not link.strip():
        return None, "item has no link"
    link = link.strip()
    try:
        absolute = urljoin(base, link)
        parts = urlsplit(absolute)
    except ValueError as exc:
        return None, f"malformed link {link[:80]!r}: {exc}"
    if parts.scheme not in ("http", "https"):
        return None, f"link scheme {parts.scheme or '(none)'!r} rejected: {link[:80]!r}"
    if not parts.hostname:
        return None, f"link without a host: {link[:80]!r}"
    return absolute, None


def _raw_link(link: str | None, link_error: str | None) -> str | None:
    """The link as written, kept only when it was rejected (capped: a data: URL can be megabytes)."""
    if link_error is None or link is None:
        return None
    return link.strip()[:2000] or None


def _from_struct(t: object) -> datetime | None:
    if not t:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(t), tz=UTC)  # type: ignore[arg-type]
    except (OverflowError, ValueError, TypeError):
        return None


def _parse_iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    v = value.strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        import email.utils

        try:
            dt = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def sniff_format(body: bytes) -> str:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return "json"
    low = body[:4096].lower()
    if b"<urlset" in low or b"<sitemapindex" in low:
        return "sitemap"
    return "xml"


def parse_feed(body: bytes, feed_url: str, source: str, *, content_type: str | None = None,
               kind: str = "auto", max_items: int = 500) -> ParsedFeed:
    """Parse one fetched feed document. Never raises on bad input: errors are returned in `error`."""
    fmt = kind if kind != "auto" else sniff_format(body)
    try:
        if fmt in ("json", "jsonfeed"):
            parsed = _parse_jsonfeed(body, feed_url, source)
        elif fmt == "sitemap":
            parsed = _parse_sitemap(body, feed_url, source)
        else:
            parsed = _parse_xml_feed(body, feed_url, source, content_type, max_items)
    except Exception as exc:  # a parser crash is a property of the document, not of the run
        return ParsedFeed("unknown", error=f"cannot parse feed: {type(exc).__name__}: {exc}")
    items = _dedupe(parsed, parsed.items)
    if len(items) > max_items:
        parsed.over_limit += len(items) - max_items
        items = newest(items, max_items)
    parsed.items = items
    return parsed


def newest(items: list[FeedItem], n: int) -> list[FeedItem]:
    """The n most recently published items, in document order; undated items rank after dated ones,
    earlier in the document first (feeds list their newest entries first)."""
    order = sorted(range(len(items)), key=lambda i: (items[i].published_at is None,
                                                     -(items[i].published_at.timestamp() if items[i].published_at else 0), i))
    return [items[i] for i in sorted(order[:n])]


def _dedupe(parsed: ParsedFeed, items: list[FeedItem]) -> list[FeedItem]:
    seen: set[str] = set()
    out: list[FeedItem] = []
    for item in items:
        keys = {k for k in (item.guid and f"g:{item.guid}", item.url and f"u:{item.url}") if k}
        if keys & seen:
            parsed.duplicates += 1
            continue
        seen |= keys
        out.append(item)
    return out


_XML_ENCODING = re.compile(rb"""^(\s*<\?xml[^>]*?encoding\s*=\s*)["']([A-Za-z0-9_\-.:]+)["']""")
_XML_AUTODETECT = (  # XML 1.0 appendix F: a BOM-less document starts with "<?xml" in its encoding
    (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"), (b"<\x00?\x00", "utf-16-le"),
)


def xml_to_utf8(body: bytes, content_type: str | None = None, max_bytes: int = 64 * 1024 * 1024) -> tuple[bytes, str]:
    """Re-encode a feed document as UTF-8 (declaration rewritten) and say which charset it was in.

    feedparser falls back to windows-1252 when a document declares nothing, which turns KOI8-R or
    Shift_JIS feeds into mojibake; here the declaration is trusted only if the bytes decode with it,
    then UTF-8 is tried, then detection.
    """
    import codecs
    import zlib

    from pipeline.fetch.decode import charset_from_content_type, decode_body

    if body[:2] == b"\x1f\x8b":  # a gzip file served as-is (not as Content-Encoding)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        body = inflater.decompress(body, max_bytes)
        if inflater.unconsumed_tail:
            raise ValueError(f"gzipped feed inflates beyond {max_bytes} bytes")
    for prefix, name in _XML_AUTODETECT:
        if body.startswith(prefix):
            text = body.decode(name, "replace")
            return _declare_utf8(text.encode("utf-8")), name
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                      (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return _declare_utf8(body.decode(name, "replace").lstrip("\ufeff").encode("utf-8")), name
    m = _XML_ENCODING.match(body[:512])
    declared = m.group(2).decode("ascii") if m else None
    header = charset_from_content_type(content_type)
    if header in (None, "utf-8") and (declared is None or declared.lower().replace("_", "-") in ("utf-8", "utf8")):
        try:
            body.decode("utf-8")  # the common case, checked without copying the document three times
        except UnicodeDecodeError:
            pass
        else:
            return _declare_utf8(body), "utf-8"
    ctype = content_type
    if declared and not charset_from_content_type(content_type):
        ctype = f"application/xml; charset={declared}"
    decoded = decode_body(body, ctype)
    return _declare_utf8(decoded.text.encode("utf-8")), decoded.charset


def _declare_utf8(body: bytes) -> bytes:
    m = _XML_ENCODING.match(body[:512])
    if m:
        return body[: m.start(2) - 1] + b'"utf-8"' + body[m.end(2) + 1:]
    return body


_ATOM_NS = "http://www.w3.org/2005/Atom"
_RSS1_NS = "http://purl.org/rss/1.0/"
_DC_NS = "http://purl.org/dc/elements/1.1/"
_ENTRY_TAGS = ("item", f"{{{_RSS1_NS}}}item", f"{{{_ATOM_NS}}}entry")
_DATE_TAGS = ("pubDate", f"{{{_DC_NS}}}date", f"{{{_ATOM_NS}}}published", f"{{{_ATOM_NS}}}updated")


def keep_newest_entries(body: bytes, max_items: int) -> tuple[bytes, int]:
    """Cut a well-formed feed with far more entries than we take down to its newest `max_items`, before
    feedparser sees it: feedparser spends ~0.5 ms per entry in Python (10 s for a 20,000-item feed); two
    streaming lxml passes (dates, then the cut) take a fraction of that in flat memory. Returns
    (document, entries removed). Ill-formed documents are returned unchanged: feedparser's lenient
    parser is what they need."""
    if max_items <= 0 or body.count(b"<item") + body.count(b"<entry") <= 2 * max_items + 10:
        return body, 0
    import io

    from lxml import etree

    def entries():
        return etree.iterparse(io.BytesIO(body), events=("end",), tag=_ENTRY_TAGS, resolve_entities=False,
                               no_network=True, huge_tree=False, recover=False)

    stamps: list[float | None] = []
    try:
        for _, el in entries():
            stamps.append(_entry_stamp(el))
            el.clear(keep_tail=True)
            while el.getprevious() is not None:  # pass 1 keeps nothing: memory stays flat
                del el.getparent()[0]
    except etree.XMLSyntaxError:
        return body, 0
    if len(stamps) <= max_items:
        return body, 0
    order = sorted(range(len(stamps)), key=lambda i: (stamps[i] is None, -(stamps[i] or 0), i))
    keep = set(order[:max_items])
    context = entries()
    dropped = None
    for i, (_, el) in enumerate(context):
        if dropped is not None:  # removing the previous entry, never the current one, is safe mid-parse
            dropped.getparent().remove(dropped)
            dropped = None
        if i not in keep:
            el.clear(keep_tail=False)
            dropped = el
    if dropped is not None:
        dropped.getparent().remove(dropped)
    return etree.tostring(context.root, xml_declaration=True, encoding="utf-8"), len(stamps) - len(keep)


def _entry_stamp(el) -> float | None:
    for child in el:
        if child.tag in _DATE_TAGS and child.text:
            when = _parse_iso(child.text)
            if when is not None:
                return when.timestamp()
    return None


def _parse_xml_feed(body: bytes, feed_url: str, source: str, content_type: str | None,
                    max_items: int = 0) -> ParsedFeed:
    import feedparser

    body, _charset = xml_to_utf8(body, content_type)
    body, removed = keep_newest_entries(body, max_items)
    d = plain_rss(body)
    if d is None:
        d = feedparser.parse(body, response_headers={"content-type": "application/xml; charset=utf-8"},
                             sanitize_html=False, resolve_relative_uris=False)
    version = d.get("version") or ""
    fmt = "atom" if version.startswith("atom") else "rdf" if version.startswith("rss09") and "rdf" in version else (
        "rss" if version.startswith("rss") else "unknown")
    error = None
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        error = f"ill-formed feed: {type(exc).__name__}: {exc}" if exc else "ill-formed feed"
    if not version and not d.entries:
        why = "not a feed (no RSS, Atom or RDF root element)"
        return ParsedFeed("unknown", error=f"{why}; {error}" if error else why)
    feed = d.get("feed", {})
    base = feed_url
    out = ParsedFeed(fmt if fmt != "unknown" else "rss", title=html_to_text(feed.get("title"), 300), error=error,
                     over_limit=removed)
    ttl = feed.get("ttl")
    if ttl and str(ttl).strip().isdigit():
        out.ttl_s = int(str(ttl).strip()) * 60.0
    period = (feed.get("sy_updateperiod") or "").strip().lower()
    if period:
        seconds = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000, "yearly": 31536000}.get(period)
        freq = feed.get("sy_updatefrequency")
        if seconds:
            try:
                out.ttl_s = seconds / max(1, int(str(freq).strip())) if freq else float(seconds)
            except ValueError:
                out.ttl_s = float(seconds)
    for entry in d["entries"]:
        guid = (entry.get("id") or entry.get("guid") or "").strip() or None
        link = entry.get("link")
        if not link:
            for alt in entry.get("links", []):
                if alt.get("rel", "alternate") == "alternate" and alt.get("href"):
                    link = alt["href"]
                    break
        if not link and guid and entry.get("guidislink") is not False and guid.startswith(("http://", "https://")):
            link = guid
        url, link_error = resolve_link(link, base)
        authors = [a.get("name", "").strip() for a in entry.get("authors", []) if a.get("name")]
        if not authors and entry.get("author"):
            authors = [entry["author"].strip()]
        summary = entry.get("summary") or ""
        if not summary and entry.get("content"):
            summary = entry["content"][0].get("value", "")
        out.items.append(FeedItem(
            source=source,
            feed_url=feed_url,
            url=url,
            guid=guid,
            title=html_to_text(entry.get("title"), 500),
            summary=html_to_text(summary),
            # dict.get: FeedParserDict.get("published_parsed") silently falls back to updated_parsed, with a warning
            published_at=_from_struct(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
            authors=[a for a in authors if a],
            tags=[t.get("term", "").strip() for t in entry.get("tags", []) if t.get("term")],
            link_error=link_error,
            link=_raw_link(link, link_error),
        ))
    return out


_CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
_SY_NS = "http://purl.org/rss/1.0/modules/syndication/"
_MEDIA_NS = "http://search.yahoo.com/mrss/"
# A plain RSS 2.0 channel's elements that feedparser reads into nothing we use (or only into the channel's
# own fields): skipped. Any other element sends the whole document to feedparser.
_RSS_CHANNEL_SKIPPED = frozenset(("link", "description", "language", "copyright", "managingEditor", "webMaster",
                                  "pubDate", "lastBuildDate", "category", "generator", "docs", "image",
                                  f"{{{_ATOM_NS}}}link", f"{{{_SY_NS}}}updateBase"))
_RSS_CHANNEL_KEYS = {"ttl": "ttl", f"{{{_SY_NS}}}updatePeriod": "sy_updateperiod",
                     f"{{{_SY_NS}}}updateFrequency": "sy_updatefrequency"}
_AMP_REF = re.compile("&([A-Za-z0-9_]+);")  # feedparser's repair of "&amp;b=2" read as a reference
_RSS_ITEM_SKIPPED = frozenset(("comments", "enclosure", f"{{{_MEDIA_NS}}}content", f"{{{_MEDIA_NS}}}thumbnail"))
_RSS_ITEM_ONCE = frozenset(("title", "link", "guid", "description", "pubDate", f"{{{_CONTENT_NS}}}encoded",
                            "author", f"{{{_DC_NS}}}creator"))


def plain_rss(body: bytes) -> dict | None:
    """A plain RSS 2.0 document read with lxml into what `_parse_xml_feed` takes from feedparser's result
    (the same keys and values), or None for anything else: feedparser then reads it.

    feedparser spends ~20 ms of Python on a feed of 125 items (0.15 ms an item, most of a run's feed
    stage); read this way, the whole `parse_feed` of one takes 6-7 ms. "Plain" is what most news feeds are: a well-formed document without a
    DOCTYPE or xml:base, an <rss version="2.0"> root with one <channel>, its items made only of the text
    elements below (each at most once, without child elements or unexpected attributes: no <media:title>,
    whose text feedparser would take as the title), and authors without an e-mail address (feedparser
    splits those). tests/test_sources_plain_rss.py holds both readers to the same items on every feed we have."""
    if b"<!DOCTYPE" in body or b"<!doctype" in body or b"xml:base" in body:
        return None
    from lxml import etree

    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))
    except etree.XMLSyntaxError:
        return None
    if root.tag != "rss" or root.get("version") != "2.0" or len(root) != 1 or root[0].tag != "channel":
        return None
    feed: dict[str, str] = {}
    entries: list[dict] = []
    for el in root[0]:
        tag = el.tag
        if tag == "item":
            entry = _plain_rss_item(el)
            if entry is None:
                return None
            entries.append(entry)
        elif tag == "title" or tag in _RSS_CHANNEL_KEYS:
            key = _RSS_CHANNEL_KEYS.get(tag, "title")
            if key in feed or len(el) or el.attrib:
                return None
            feed[key] = _feedparser_text(el.text)
        elif tag not in _RSS_CHANNEL_SKIPPED:  # a comment, processing instruction or other element too
            return None
    return {"version": "rss20", "bozo": False, "feed": feed, "entries": entries}


def _plain_rss_item(item: object) -> dict | None:
    """One <item> of `plain_rss` as feedparser's entry (only the keys `_parse_xml_feed` reads), or None."""
    from feedparser.urls import _urljoin

    entry: dict = {}
    seen: set[str] = set()
    tags: list[str] = []
    guid_is_link = False
    for el in item:  # type: ignore[attr-defined]
        tag = el.tag
        if not isinstance(tag, str) or len(el):
            return None
        if tag in _RSS_ITEM_SKIPPED:
            continue
        attrs = el.attrib
        if tag in _RSS_ITEM_ONCE:
            if tag in seen:
                return None
            seen.add(tag)
        if attrs and not (tag == "guid" and len(attrs) == 1 and attrs.get("isPermaLink") in ("true", "false")):
            return None
        raw = (el.text or "").strip()
        if tag == "title":
            entry["title"] = _feedparser_text(raw)
        elif tag == "link":
            if not raw:
                return None
            # feedparser resolves it (against no base: only its fix of "scheme:///"), then undoes entities
            link = _feedparser_text(_urljoin("", raw) if ":///" in raw else raw)
            if "&" in link:
                link = _AMP_REF.sub(r"&\g<1>", link.replace("&amp;", "&"))
            entry["link"] = link
        elif tag == "guid":
            if not raw:
                return None
            guid_is_link = attrs.get("isPermaLink", "true") == "true"
            entry["id"] = _feedparser_text(_urljoin("", raw) if guid_is_link and ":///" in raw else raw)
            entry["guidislink"] = guid_is_link and "link" not in entry  # as feedparser says it
        elif tag == "description":
            entry["summary"] = _feedparser_text(raw)
        elif tag == f"{{{_CONTENT_NS}}}encoded":
            entry["content"] = [{"value": _feedparser_text(raw)}]
        elif tag == "pubDate":
            from feedparser.datetimes import _parse_date

            entry["published_parsed"] = _parse_date(_feedparser_text(raw))
        elif tag == "category":
            term = _feedparser_text(raw)
            if term and term not in tags:  # feedparser keeps a tag once
                tags.append(term)
        elif tag in ("author", f"{{{_DC_NS}}}creator"):
            if len(seen & {"author", f"{{{_DC_NS}}}creator"}) > 1 or "@" in raw:
                return None
            name = _feedparser_text(raw)
            if name:
                entry["authors"] = [{"name": name}]
        else:
            return None
    if "content" in entry and "summary" not in entry:
        entry["summary"] = entry["content"][0]["value"]  # as feedparser copies it
    if "link" not in entry and guid_is_link:
        entry["link"] = entry["id"]
    entry["tags"] = [{"term": t} for t in tags]
    return entry


def _feedparser_text(raw: str | None) -> str:
    """An element's text as feedparser's strict parser stores it (for a UTF-8 document): stripped, UTF-8
    that was read as Latin-1 repaired, windows-1252's C1 controls mapped to their characters."""
    from feedparser.html import _cp1252

    text = (raw or "").strip()
    if text.isascii():  # both steps leave ASCII as it is
        return text
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return text.translate(_cp1252)


def _parse_jsonfeed(body: bytes, feed_url: str, source: str) -> ParsedFeed:
    try:
        doc = json.loads(body.decode("utf-8-sig", "replace"))
    except json.JSONDecodeError as exc:
        return ParsedFeed("unknown", error=f"not a feed: invalid JSON ({exc.msg} at line {exc.lineno})")
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        return ParsedFeed("unknown", error="not a feed: JSON without a jsonfeed.org version")
    base = feed_url  # relative item URLs resolve against the feed document itself
    out = ParsedFeed("jsonfeed", title=html_to_text(doc.get("title"), 300))
    items = doc.get("items")
    if not isinstance(items, list):
        out.error = "JSON Feed without an items list"
        return out
    feed_authors = _json_authors(doc)
    for entry in items:
        if not isinstance(entry, dict):
            out.error = "JSON Feed item that is not an object (skipped)"
            continue
        guid = str(entry["id"]).strip() if entry.get("id") is not None else None
        link = entry.get("url") or entry.get("external_url")
        url, link_error = resolve_link(link if isinstance(link, str) else None, base)
        summary = entry.get("summary") or entry.get("content_text") or entry.get("content_html")
        tags = entry.get("tags") if isinstance(entry.get("tags"), list) else []
        out.items.append(FeedItem(
            source=source,
            feed_url=feed_url,
            url=url,
            guid=guid,
            title=html_to_text(entry.get("title") if isinstance(entry.get("title"), str) else None, 500),
            summary=html_to_text(summary if isinstance(summary, str) else None),
            published_at=_parse_iso(entry.get("date_published") or entry.get("date_modified")),
            authors=_json_authors(entry) or feed_authors,
            tags=[str(t) for t in tags if isinstance(t, str | int)],
            link_error=link_error,
            link=_raw_link(link if isinstance(link, str) else None, link_error),
        ))
    return out


def _json_authors(obj: dict) -> list[str]:
    authors = obj.get("authors")
    if not isinstance(authors, list):
        single = obj.get("author")  # JSON Feed 1.0
        authors = [single] if isinstance(single, dict) else []
    return [a["name"].strip() for a in authors if isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"].strip()]


def _parse_sitemap(body: bytes, feed_url: str, source: str) -> ParsedFeed:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
    root = etree.fromstring(body, parser)
    if root is None:
        return ParsedFeed("unknown", error="not a sitemap: empty or unparseable XML")
    tag = etree.QName(root).localname
    if tag == "sitemapindex":
        out = ParsedFeed("sitemapindex")
        for loc in root.iter(f"{{{_SITEMAP_NS}}}loc", "loc"):
            url, _ = resolve_link(loc.text, feed_url)
            if url:
                out.child_sitemaps.append(url)
        return out
    if tag != "urlset":
        return ParsedFeed("unknown", error=f"not a sitemap: root element <{tag}>")
    out = ParsedFeed("sitemap")
    for node in root:
        if not isinstance(node.tag, str) or etree.QName(node).localname != "url":
            continue
        loc = _child_text(node, _SITEMAP_NS, "loc")
        url, link_error = resolve_link(loc, feed_url)
        news = node.find(f"{{{_NEWS_NS}}}news")
        title = published = None
        tags: list[str] = []
        if news is not None:
            title = _child_text(news, _NEWS_NS, "title")
            published = _parse_iso(_child_text(news, _NEWS_NS, "publication_date"))
            keywords = _child_text(news, _NEWS_NS, "keywords")
            tags = [k.strip() for k in (keywords or "").split(",") if k.strip()]
        else:
            published = _parse_iso(_child_text(node, _SITEMAP_NS, "lastmod"))
        out.items.append(FeedItem(source=source, feed_url=feed_url, url=url, guid=loc.strip() if loc else None,
                                  title=html_to_text(title, 500), published_at=published, tags=tags,
                                  link_error=link_error, link=_raw_link(loc, link_error)))
    return out


def _child_text(node, ns: str, name: str) -> str | None:
    child = node.find(f"{{{ns}}}{name}")
    if child is None:
        child = node.find(name)
    return child.text.strip() if child is not None and child.text else None
