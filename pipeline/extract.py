"""The `extract` stage: main text and metadata of one HTML page.

`extract_page` turns one fetched page into an `Extracted` record:

* the page is decoded (bytes: BOM, valid UTF-8, meta charset, charset-normalizer) and parsed ONCE
  with lxml; metadata is read from that tree, a pruned copy of it goes to trafilatura;
* the main text comes from trafilatura in precision mode (comments off, tables on, no cross-document
  dedup: trafilatura's dedup cache is process-global and would blank repeated pages), after our own
  pre-pruning of share bars, related lists, newsletter/promo boxes, consent banners and the like, and
  after merging article bodies split into sibling chunks (ad slots between them); when the precision
  pass finds little, a balanced pass is tried and kept if it finds clearly more;
* metadata is parsed here, not by trafilatura's guessers: JSON-LD (including @graph and @id
  references), meta tags, `<time datetime>` inside the article, a /yyyy/mm/dd/ URL, then the feed date,
  in that order; a render date in a page header or footer is never taken;
* every page gets a status from `EXTRACTION_STATUSES`; only `ok` carries text.

Nothing here keeps state between calls except read-only caches (compiled patterns, the language
model), so it is safe in worker processes; a call never raises (failures become status `error`).
"""

from __future__ import annotations

import codecs
import copy
import json
import logging
import os
import re
import shutil
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import lxml.html
import numpy as np
import trafilatura
from lxml import etree
from trafilatura.utils import RE_FILTER, remove_control_characters

from pipeline.clean import byline_credit, single_spaced
from pipeline.records import Extracted

__all__ = [
    "benchmark_text",
    "decode_html",
    "extract_jsonl",
    "extract_page",
    "extracted_to_dict",
]

LOGGER = logging.getLogger(__name__)

# libxml2 stops building the tree at 256 levels and silently drops the rest of the document:
# such documents are flattened to this depth and parsed again
_FLATTEN_DEPTH = 120  # what a too-deep document is flattened to before re-parsing
_MAX_TAGS_SCANNED = 400_000


# -------------------------------------------------------------------------------------------------
# input: decoding and "is this HTML at all"

_MAGIC = (
    (b"%PDF-", "PDF"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"PK\x03\x04", "ZIP"),
    (b"PK\x05\x06", "ZIP"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE document"),
    (b"{\\rtf", "RTF"),
    (b"wOFF", "font"),
    (b"wOF2", "font"),
    (b"OggS", "Ogg"),
    (b"ID3", "MP3"),
    (b"fLaC", "FLAC"),
    (b"\x00\x00\x01\x00", "ICO"),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET_RE = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([a-zA-Z0-9_.:-]+)""",
    re.I,
)
# WHATWG: these labels mean windows-1252 in HTML
_LATIN1_LABELS = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii", "cp819"}
_NOT_HTML_ROOTS = {"rss", "feed", "rdf:rdf", "rdf", "urlset", "sitemapindex", "opml", "svg", "kml", "gpx"}
_HTML_TAG_RE = re.compile(
    r"<(?:!doctype\s+html|html|head|body|div|p|article|main|title|meta|span|section|h[1-6]|table|a|br|ul|ol|li|img|nav|header|footer|script|link|style|form|td|center|font|b|i|strong)\b",
    re.I,
)
_FIRST_ELEMENT_RE = re.compile(r"<([A-Za-z][\w:.-]*)")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_INVALID_XML_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# the control characters of _INVALID_XML_CHARS_RE, as the bytes UTF-8 encodes them to (and no other
# character's encoding holds a byte below 0x80)
_INVALID_XML_CONTROL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_INVALID_XML_CONTROL_CHARS = tuple(chr(b) for b in _INVALID_XML_CONTROL_BYTES)
_INVALID_XML_CONTROL_BYTE_STRINGS = tuple(bytes([b]) for b in _INVALID_XML_CONTROL_BYTES)


def _sniff_binary(data: bytes) -> str | None:
    """The kind of a binary (non-text) payload from its magic bytes, or None."""
    head = data[:16]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"RIFF") and data[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return data[8:12].decode().strip()
    if data[4:8] == b"ftyp":
        return "MP4/HEIF"
    return None


def decode_html(data: bytes) -> str:
    """Decode page bytes: BOM, then valid UTF-8, then the declared (meta) charset, then detection.

    Valid UTF-8 wins over a declared single-byte charset: non-ASCII text in a legacy encoding is
    almost never valid UTF-8 by accident, while pages declaring ISO-8859-1 but serving UTF-8 are common.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    match = _META_CHARSET_RE.search(data[:8192])
    if match:
        label = (match.group(1) or match.group(2)).decode("ascii", "ignore").lower()
        if label in _LATIN1_LABELS:
            label = "cp1252"
        try:
            encoding = codecs.lookup(label).name
        except LookupError:
            encoding = None
        if encoding and not encoding.startswith(("utf-16", "utf-32")):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                pass
    try:
        best = charset_normalizer.from_bytes(data[:200_000]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace")
    except Exception:  # noqa: BLE001 - detection is best effort
        LOGGER.debug("charset detection failed", exc_info=True)
    return data.decode("cp1252", errors="replace")


def _not_html_reason(text: str) -> str | None:
    """Why a decoded document is not an HTML page (feed, JSON, binary, plain text), or None."""
    head = text[:4096]
    stripped = head.lstrip("\ufeff \t\r\n")
    if not stripped:
        return "empty document"
    if stripped.startswith("%PDF-"):
        return "PDF document"
    if head and len(_CONTROL_RE.findall(head)) > 0.1 * len(head):
        return "binary content"
    if stripped[0] in "{[":
        return "JSON document"
    if stripped.startswith("<"):
        # first element after the XML prolog, comments and doctype
        body = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", stripped[:4096], flags=re.S | re.I)
        first = _FIRST_ELEMENT_RE.search(body)
        if first:
            name = first.group(1).lower()
            if name in _NOT_HTML_ROOTS:
                return f"XML document ({name})"
            if stripped[:5].lower() == "<?xml" and name != "html" and not _HTML_TAG_RE.search(text[:65536]):
                return f"XML document ({name})"
    if not _HTML_TAG_RE.search(text[:65536]):
        return "no HTML markup"
    return None


# -------------------------------------------------------------------------------------------------
# parsing, with a guard against pathological nesting

_TAG_TOKEN_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_RAW_TEXT_ELEMENTS = {"script", "style", "textarea", "title", "xmp", "noscript", "template"}
_VOID_ELEMENTS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen", "command", "basefont", "frame", "isindex", "spacer",
}  # fmt: skip
# elements whose start implicitly closes an open one of the same kind
_SELF_CLOSING_SIBLINGS = {"p", "li", "dt", "dd", "option", "tr", "td", "th"}


def _flatten_nesting(html: str, limit: int = _FLATTEN_DEPTH) -> str:
    """Drop start/end tags nested deeper than `limit` (their text stays), in one regex pass.

    libxml2 silently truncates a document at 256 levels; a page of 50,000 nested divs would lose
    everything after the 256th. Lenient like a browser: implicit closes and stray end tags are tolerated.
    """
    out: list[str] = []
    stack: list[tuple[str, bool]] = []  # (tag name, kept)
    kept_depth = 0
    pos = 0
    raw_until: str | None = None
    for count, m in enumerate(_TAG_TOKEN_RE.finditer(html)):
        if count > _MAX_TAGS_SCANNED:
            break
        closing, name, rest = m.group(1), m.group(2).lower(), m.group(3)
        if raw_until is not None:  # inside <script> etc.: only its end tag counts
            if closing and name == raw_until:
                raw_until = None
            else:
                continue
        keep = True
        if closing:
            for i in range(len(stack) - 1, max(-1, len(stack) - 64), -1):
                if stack[i][0] == name:
                    for _, was_kept in stack[i + 1 :]:
                        kept_depth -= was_kept
                    keep = stack[i][1]
                    kept_depth -= keep
                    del stack[i:]
                    break
        elif name not in _VOID_ELEMENTS and not rest.rstrip().endswith("/"):
            if name in _SELF_CLOSING_SIBLINGS and stack and stack[-1][0] == name:
                kept_depth -= stack.pop()[1]
            keep = kept_depth < limit
            stack.append((name, keep))
            kept_depth += keep
            if name in _RAW_TEXT_ELEMENTS:
                raw_until = name
        if not keep:
            out.append(html[pos : m.start()])
            pos = m.end()
    out.append(html[pos:])
    return "".join(out)


def _html_class_lookup() -> etree.ElementNamespaceClassLookup:
    """lxml.html's element classes (FormElement for <form>, ..., HtmlElement otherwise), chosen in C.

    lxml.html's own lookup is a Python method called for every element proxy lxml creates (each element of
    our tree and of trafilatura's copies of it): a measurable share of a page's CPU. The HTML parser
    lower-cases tag names, so a table of the lower-case names gives the same classes."""
    fallback = etree.ElementDefaultClassLookup(
        element=lxml.html.HtmlElement,
        comment=lxml.html.HtmlComment,
        pi=lxml.html.HtmlProcessingInstruction,
        entity=lxml.html.HtmlEntity,
    )
    lookup = etree.ElementNamespaceClassLookup(fallback)
    classes = lookup.get_namespace(None)
    for name, element_class in lxml.html.HtmlElementClassLookup._default_element_classes.items():
        classes[name] = element_class
    return lookup


_HTML_CLASS_LOOKUP = _html_class_lookup()


def _has_invalid_xml_chars(text: str) -> bool:
    """Whether `_INVALID_XML_CHARS_RE` finds anything in `text`: each character looked for with `in` (a
    vectorised byte search: 29 of them over a page's UTF-8 took 7 us, deleting them to compare lengths 18,
    the regex ~100, which tests each character against its class)."""
    if text.isascii():  # (an O(1) flag) no U+FFFE/U+FFFF, and the string is its bytes
        return any(c in text for c in _INVALID_XML_CONTROL_CHARS)
    data = text.encode("utf-8", "surrogatepass")
    return any(b in data for b in _INVALID_XML_CONTROL_BYTE_STRINGS) or "\ufffe" in text or "\uffff" in text


def _parse(text: str) -> tuple[lxml.html.HtmlElement, bool]:
    """Parse HTML text to an lxml tree rooted at <html>, and whether libxml2 hit its depth limit
    (and so dropped the rest of the document). Raises ValueError when nothing parses."""
    text = _XML_DECL_RE.sub("", text, count=1)  # lxml refuses str input with an encoding declaration
    if _has_invalid_xml_chars(text):
        text = _INVALID_XML_CHARS_RE.sub("", text)
    # a parser per call: its error log is ours alone (worker threads)
    parser = etree.HTMLParser(collect_ids=False, default_doctype=False, remove_comments=True, remove_pis=True)
    parser.set_element_class_lookup(_HTML_CLASS_LOOKUP)
    try:
        root = lxml.html.document_fromstring(text, parser=parser)
    except (etree.ParserError, ValueError) as err:
        raise ValueError(f"HTML parsing failed: {err}") from err
    if root is None:
        raise ValueError("HTML parsing failed: empty tree")
    too_deep = any("depth" in (e.message or "").lower() for e in parser.error_log)
    return root, too_deep


# -------------------------------------------------------------------------------------------------
# small text helpers

_WORD_RE = re.compile(r"\w+")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _norm_space(value: str | None) -> str:
    return single_spaced(value) if value else ""


# ASCII bytes: word characters (what \w matches among them) to b"a", the others to b" "
_ASCII_WORD_BYTES = bytes(0x61 if (chr(b).isalnum() or b == 0x5F) else 0x20 for b in range(128)) + b" " * 128


def _count_words(text: str) -> int:
    """Words in a text; CJK ideographs and kana (written without spaces) count two characters a word."""
    if text.isascii():  # O(1); the words are the runs of word characters, counted without a list of them
        marks = text.encode("ascii").translate(_ASCII_WORD_BYTES)
        return marks.count(b" a") + marks.startswith(b"a")
    cjk = len(_CJK_RE.findall(text))
    if not cjk:
        return len(_WORD_RE.findall(text))
    return len(_WORD_RE.findall(_CJK_RE.sub(" ", text))) + (cjk + 1) // 2


def _raw_text(el: etree._Element) -> str:
    try:
        return el.text_content()
    except (ValueError, AttributeError):
        return "".join(el.itertext())


def _elem_text(el: etree._Element) -> str:
    return _norm_space(_raw_text(el))


def _clean_title_key(value: str) -> str:
    return " ".join(_WORD_RE.findall(value.lower()))


# -------------------------------------------------------------------------------------------------
# metadata: meta tags and JSON-LD


def _meta_index(root: lxml.html.HtmlElement) -> dict[str, list[str]]:
    """All <meta> values by lower-cased property / name / itemprop / http-equiv, in document order."""
    metas: dict[str, list[str]] = {}
    for el in root.iter("meta"):
        content = el.get("content")
        if content is None:
            continue
        content = _norm_space(unescape(content)) if "&" in content else _norm_space(content)
        if not content:
            continue
        for attr in ("property", "name", "itemprop", "http-equiv"):
            key = el.get(attr)
            if key:
                for k in key.lower().split():
                    metas.setdefault(k, []).append(content)
    return metas


def _first_meta(metas: dict[str, list[str]], *keys: str) -> str | None:
    for key in keys:
        for value in metas.get(key, ()):
            if value:
                return value
    return None


_ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle", "opinionnewsarticle",
    "backgroundnewsarticle", "reviewnewsarticle", "askpublicnewsarticle", "blogposting", "liveblogposting",
    "report", "scholarlyarticle", "techarticle", "satiricalarticle", "socialmediaposting",
    "discussionforumposting", "posting", "medicalscholarlyarticle", "advertisercontentarticle",
}  # fmt: skip
_PAGE_TYPES = {"webpage", "itempage", "collectionpage", "aboutpage", "profilepage", "qapage", "faqpage"}


def _types(obj: dict) -> set[str]:
    value = obj.get("@type")
    values = value if isinstance(value, list) else [value]
    return {v.rsplit("/", 1)[-1].lower() for v in values if isinstance(v, str)}


class _JsonLd:
    """The JSON-LD objects of a page: the article object (if any), the page object, an @id index."""

    __slots__ = ("article", "by_id", "objects", "page")

    def __init__(self, root: lxml.html.HtmlElement) -> None:
        self.objects: list[dict] = []
        self.by_id: dict[str, dict] = {}
        for script in root.iter("script"):
            if (script.get("type") or "").strip().lower() != "application/ld+json":
                continue
            data = _load_json(script.text or "")
            if data is not None:
                self._collect(data, 0)
        for obj in self.objects:
            oid = obj.get("@id")
            if isinstance(oid, str) and oid not in self.by_id:
                self.by_id[oid] = obj
        self.article = next((o for o in self.objects if _types(o) & _ARTICLE_TYPES), None)
        # pages, reviews and anything with a headline (MedicalWebPage, ClaimReview, ...)
        self.page = next(
            (
                o
                for o in self.objects
                if o is not self.article
                and (
                    _types(o) & _PAGE_TYPES
                    or any(t.endswith(("page", "review")) for t in _types(o))
                    or "headline" in o
                )
            ),
            None,
        )
        if self.article is None and self.page is not None:
            main = self.resolve(self.page.get("mainEntity"))
            if isinstance(main, dict) and _types(main) & _ARTICLE_TYPES:
                self.article = main

    @property
    def main(self) -> dict | None:
        """The article object, else the page object."""
        return self.article if self.article is not None else self.page

    def _collect(self, data: Any, level: int) -> None:
        if level > 4:
            return
        if isinstance(data, list):
            for item in data:
                self._collect(item, level + 1)
        elif isinstance(data, dict):
            if "@type" in data:
                self.objects.append(data)
            graph = data.get("@graph")
            if graph is not None:
                self._collect(graph, level + 1)
            main = data.get("mainEntity")
            if isinstance(main, dict) and "@type" in main:
                self._collect(main, level + 1)

    def resolve(self, value: Any) -> Any:
        """Follow an {"@id": ...} reference to the full object, when the page defines it."""
        if isinstance(value, dict) and "@id" in value and len(value) <= 2:
            return self.by_id.get(value["@id"], value)
        return value


def _load_json(raw: str) -> Any:
    raw = raw.strip()
    if not raw:
        return None
    if raw.startswith("<!--") or raw.startswith("<![CDATA["):
        raw = re.sub(r"^\s*(?:<!--|<!\[CDATA\[)|(?:-->|\]\]>)\s*$", "", raw)
    try:
        return json.loads(raw, strict=False)
    except ValueError:
        pass
    # common breakage: trailing commas, raw newlines in strings
    fixed = re.sub(r",\s*([}\]])", r"\1", raw.replace("\n", " "))
    try:
        return json.loads(fixed, strict=False)
    except ValueError:
        return None


def _ld_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str | dict)), None)
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value")
    if isinstance(value, str):
        value = _norm_space(unescape(value))
        return value or None
    return None


# -------------------------------------------------------------------------------------------------
# dates

_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december",
)  # fmt: skip
_TZ_ABBREV = {
    "utc": 0, "gmt": 0, "z": 0, "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6,
    "pst": -8, "pdt": -7, "bst": 1, "cet": 1, "cest": 2, "eet": 2, "eest": 3, "jst": 9, "kst": 9,
    "aest": 10, "aedt": 11, "msk": 3, "wib": 7, "ist": 5.5,
}  # fmt: skip
_ISO_RE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)?",
    re.I,
)
_SLASH_RE = re.compile(r"\b(\d{4})/(\d{1,2})/(\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_TEXT_DATE_RE = re.compile(
    r"(?:(?P<d1>\d{1,2})(?:st|nd|rd|th)?\.?\s+(?P<m1>[a-z]{3,9})\.?,?\s+(?P<y1>\d{4})"
    r"|(?P<m2>[a-z]{3,9})\.?\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y2>\d{4}))"
    r"(?:[,\s]+(?:at\s+)?(?P<h>\d{1,2})[:.](?P<mi>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ap>[ap]\.?m\.?)?)?"
    r"\s*(?P<tz>[a-z]{1,5}|[+-]\d{2}:?\d{2})?\b",
    re.I,
)
_URL_DATE_RES = (
    re.compile(r"/((?:19|20)\d{2})/(\d{1,2})/(\d{1,2})(?:/|$|[-_.])"),
    re.compile(r"/((?:19|20)\d{2})-(\d{2})-(\d{2})(?:/|$|[-_.])"),
    re.compile(r"[/_-]((?:19|20)\d{2})(\d{2})(\d{2})(?:/|$|[-_.])"),
)
_MIN_YEAR = 1990


def _mk_datetime(
    y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, tz: Any = None
) -> datetime | None:
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=tz or UTC)
    except ValueError:
        return None


def _tz_from(token: str | None) -> timezone | None:
    if not token:
        return None
    token = token.strip()
    if token[0] in "+-":
        digits = token[1:].replace(":", "")
        if len(digits) == 2:
            digits += "00"
        if len(digits) != 4 or not digits.isdigit():
            return None
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return timezone(-offset if token[0] == "-" else offset)
    hours = _TZ_ABBREV.get(token.lower())
    return timezone(timedelta(hours=hours)) if hours is not None else None


def _plausible(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    if dt.year < _MIN_YEAR or dt > datetime.now(UTC) + timedelta(days=2):
        return None
    return dt


def parse_date(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from a date string as found in pages (ISO 8601, RFC 2822,
    epoch seconds/milliseconds, "May 17, 2024 10:30 AM EDT"); naive times are taken as UTC."""
    if isinstance(value, datetime):
        return _plausible(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value))
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not s or len(s) > 200:
        return None
    if s.isdigit():
        if len(s) in (10, 13):
            try:
                return _plausible(datetime.fromtimestamp(int(s) / (1000 if len(s) == 13 else 1), UTC))
            except (OverflowError, OSError, ValueError):
                return None
        if len(s) == 8:  # 20240517
            return _plausible(_mk_datetime(int(s[:4]), int(s[4:6]), int(s[6:])))
        return None
    try:
        return _plausible(datetime.fromisoformat(s))
    except ValueError:
        pass
    m = _ISO_RE.search(s)
    if m:
        y, mo, d, h, mi, sec, tz = m.groups()
        tzinfo = _tz_from(tz) if tz and tz.lower() not in ("utc", "gmt") else UTC
        return _plausible(
            _mk_datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0), tzinfo)
        )
    m = _TEXT_DATE_RE.search(s)
    if m:
        word = (m.group("m1") or m.group("m2") or "").lower().rstrip(".")
        month = next((i for i, name in enumerate(_MONTH_NAMES, 1) if name.startswith(word)), None)
        if month:
            year = int(m.group("y1") or m.group("y2"))
            day = int(m.group("d1") or m.group("d2"))
            hour = int(m.group("h") or 0)
            ap = (m.group("ap") or "").replace(".", "").lower()
            if ap == "pm" and hour < 12:
                hour += 12
            elif ap == "am" and hour == 12:
                hour = 0
            tzinfo = _tz_from(m.group("tz")) if m.group("h") else None
            return _plausible(
                _mk_datetime(year, month, day, hour, int(m.group("mi") or 0), int(m.group("s") or 0), tzinfo)
            )
    try:
        return _plausible(parsedate_to_datetime(s))
    except (TypeError, ValueError, IndexError):
        pass
    m = _SLASH_RE.search(s)
    if m:
        y, mo, d, h, mi, sec = m.groups()
        return _plausible(_mk_datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0)))
    return None


_DATE_META_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "article:published",
    "published_time",
    "datepublished",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date.created",
    "dcterms.created",
    "dc.date",
    "dcterms.date",
    "citation_publication_date",
    "citation_date",
    "article.published",
    "article_date_original",
    "original-publish-date",
    "publish-date",
    "publish_date",
    "publishdate",
    "publication_date",
    "pubdate",
    "cxenseparse:recs:publishtime",
    "date",
)
# ancestors that make a <time> a page-chrome date (render date, "today is", widgets), not the article's
_CHROME_TAGS = {"header", "footer", "nav", "aside", "menu"}
_CHROME_CLASS_RE = re.compile(
    r"(?:^|[\s_-])(?:header|masthead|topbar|top-bar|navbar|nav|menu|footer|sidebar|widget|today|current-date|"
    r"clock|weather|ticker|related|recommended|popular|trending|comments?|teaser|promo|breaking)(?:$|[\s_-])",
    re.I,
)
_IN_ARTICLE_CHROME_RE = re.compile(
    r"(?:^|[\s_-])(?:related|recommended|popular|trending|comments?|teaser|promo|sidebar|widget|aside|more-stories)(?:$|[\s_-])",
    re.I,
)
_UPDATED_HINT_RE = re.compile(r"updat|modif|edit|revis|aktualisiert", re.I)
_PUBLISHED_HINT_RE = re.compile(
    r"publish|pubdate|posted|created|date-?line|entry-date|article-date|byline", re.I
)


def _in_chrome(el: etree._Element, article: etree._Element | None) -> bool:
    """Whether a <time> sits in page chrome (header, footer, navigation, widgets, teasers).

    Inside the article (up to its <article> element) only teaser/related/comment blocks count:
    an article's own <header> holds its dateline."""
    for anc in el.iterancestors():
        if anc is article:
            return False
        marker = f"{anc.get('class') or ''} {anc.get('id') or ''} {anc.get('role') or ''}"
        if article is not None:
            if anc.tag in ("aside", "nav", "footer") or (
                marker.strip() and _IN_ARTICLE_CHROME_RE.search(marker)
            ):
                return True
        elif anc.tag in _CHROME_TAGS or (marker.strip() and _CHROME_CLASS_RE.search(marker)):
            return True
    return False


def _is_inside(el: etree._Element, container: etree._Element) -> bool:
    return any(anc is container for anc in el.iterancestors())


def _time_date(root: lxml.html.HtmlElement) -> tuple[datetime | None, bool]:
    """The publication date from a <time datetime> of the article (never one in page chrome), and
    whether it is only an "updated" time."""
    times = [t for t in root.iter("time") if t.get("datetime")]
    if not times:
        return None, False
    first_article = next(root.iter("article"), None)
    best: tuple[int, datetime] | None = None
    for order, el in enumerate(times):
        container = next(el.iterancestors("article"), None)
        if first_article is not None and container is None:
            continue  # the page has an <article>: a <time> outside it is chrome
        if _in_chrome(el, container):
            continue
        dt = parse_date(el.get("datetime"))
        if dt is None:
            continue
        parent = el.getparent()
        hints = " ".join(
            filter(
                None,
                [
                    el.get("class"),
                    el.get("itemprop"),
                    el.get("id"),
                    parent.get("class") if parent is not None else None,
                ],
            )
        )
        if el.get("pubdate") is not None or (el.get("itemprop") or "").lower() == "datepublished":
            rank = 0
        elif hints and _PUBLISHED_HINT_RE.search(hints):
            rank = 1
        elif hints and _UPDATED_HINT_RE.search(hints):
            rank = 3
        else:
            rank = 2
        if container is not None and container is not first_article:
            rank += 4  # a second <article> is usually a teaser or a related story
        key = rank * 10_000 + order
        if best is None or key < best[0]:
            best = (key, dt)
    if best is None:
        return None, False
    return best[1], best[0] // 10_000 % 4 == 3


def _url_date(url: str | None) -> datetime | None:
    if not url:
        return None
    path = urlsplit(url).path
    for pattern in _URL_DATE_RES:
        m = pattern.search(path)
        if m:
            y, mo, d = (int(x) for x in m.groups())
            dt = _plausible(_mk_datetime(y, mo, d))
            if dt is not None:
                return dt
    return None


def _published(
    root: lxml.html.HtmlElement,
    metas: dict[str, list[str]],
    ld: _JsonLd,
    url: str | None,
    feed_published_at: datetime | None,
) -> tuple[datetime | None, str | None]:
    for obj in (ld.article, ld.page):
        if obj is not None:
            for key in ("datePublished", "dateCreated"):
                dt = parse_date(_ld_text(obj.get(key)) if not isinstance(obj.get(key), str) else obj.get(key))
                if dt is not None:
                    return dt, "jsonld"
    for key in _DATE_META_KEYS:
        for value in metas.get(key, ()):
            dt = parse_date(value)
            if dt is not None:
                return dt, "meta"
    for el in root.xpath("//*[@itemprop='datePublished'][@content or @datetime]"):
        dt = parse_date(el.get("content") or el.get("datetime"))
        if dt is not None:
            return dt, "meta"
    parsely = _first_meta(metas, "parsely-page")
    if parsely:
        data = _load_json(parsely)
        if isinstance(data, dict):
            dt = parse_date(data.get("pub_date"))
            if dt is not None:
                return dt, "meta"
    time_dt, only_updated = _time_date(root)
    url_dt = _url_date(url)
    if time_dt is not None and not (only_updated and url_dt is not None):
        return time_dt, "time"
    if url_dt is not None:
        return url_dt, "url"
    if feed_published_at is not None:
        dt = (
            _plausible(feed_published_at)
            if isinstance(feed_published_at, datetime)
            else parse_date(feed_published_at)
        )
        if dt is not None:
            return dt, "feed"
    return None, None


# -------------------------------------------------------------------------------------------------
# authors, title, site name, tags, language

_BYLINE_PREFIX_RE = re.compile(
    r"^(?:(?:written|posted|reported|words|story|text|photos?|compiled|edited)\s+)?"
    r"(?:by|from|von|par|por|door|av|af)\s*[:\-]?\s+|^(?:author|autor|auteur|byline)\s*:\s*",
    re.I,
)
_AUTHOR_SPLIT_RE = re.compile(r"\s*(?:,|;|\||/|\s&\s|\s+and\s+|\s+und\s+|\s+et\s+|\s+y\s+|\s+e\s+)\s*", re.I)
_EMAIL_RE = re.compile(r"\S+@\S+\.\w+")
_HANDLE_RE = re.compile(r"(?:^|\s)@\w+")
_URL_RE = re.compile(r"https?://\S+|www\.\S+", re.I)
_NOT_A_NAME = {
    "staff", "admin", "administrator", "editor", "editors", "reporter", "reporters", "correspondent",
    "contributor", "contributors", "guest", "anonymous", "unknown", "news", "desk", "news desk", "newsroom",
    "team", "staff writer", "staff reporter", "web desk", "online", "redaktion", "the editors", "editorial",
    "editorial staff", "webmaster", "null", "none", "by",
}  # fmt: skip


_DATE_WORDS = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
    "march", "april", "june", "july", "august", "september", "october", "november", "december", "updated",
    "published", "posted", "am", "pm",
}  # fmt: skip
_DOMAIN_RE = re.compile(r"^[\w-]+(?:\.[\w-]+)*\.[a-z]{2,6}$", re.I)
_AFFILIATION_RE = re.compile(
    r"\b(?:news|press|media|agency|staff|writer|correspondent|editor|reporter|bureau|desk|contributor|columnist|"
    r"newspaper|magazine|times|post|daily|tribune|herald|network|wire|service|associated)\b",
    re.I,
)


def _normalise_author(raw: str) -> list[str]:
    """Names from one author string: "By JANE DOE and John Smith, Staff" -> ["Jane Doe", "John Smith"].

    Splits on commas, "and"/"&" (and their German/French/Spanish forms), ";", "|" and "/"; strips
    "By"-style prefixes, e-mails, handles, URLs, domains, dates; title-cases names in capitals.
    Affiliations ("Reuters", "AP National Writer") are dropped when a person's name is also there.
    """
    text = _norm_space(unescape(raw))
    text = _URL_RE.sub(" ", _EMAIL_RE.sub(" ", text))
    text = _BYLINE_PREFIX_RE.sub("", text)
    names: list[str] = []
    affiliations: list[str] = []
    for part in _AUTHOR_SPLIT_RE.split(text):
        part = _HANDLE_RE.sub(" ", part)
        part = _BYLINE_PREFIX_RE.sub("", part.strip())
        part = _norm_space(part).strip(" .:-–—·•()[]\"'")
        if not part or any(ch.isdigit() for ch in part) or "@" in part or _DOMAIN_RE.match(part):
            continue
        words = [w for w in part.split() if w.lower().strip(".,") not in _DATE_WORDS]
        part = " ".join(words)
        if not words or len(words) > 5 or len(part) > 60 or part.lower() in _NOT_A_NAME:
            continue
        if not any(ch.isalpha() for ch in part):
            continue
        if part.isupper() and len(part) > 5:
            part = " ".join(w.title() if len(w) > 1 else w for w in words)
        if (part.isupper() and len(part) <= 5) or _AFFILIATION_RE.search(part):
            affiliations.append(part)  # "CNN", "AP", "Associated Press", "Staff Writer"
        else:
            names.append(part)
    if any(" " in n for n in names):
        # "Anna Berg, Reuters": a one-word part next to full names is an outlet, not a person
        names = [n for n in names if " " in n]
    return names or affiliations[:1]


def _dedup(values: Iterable[str], limit: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        key = value.casefold()
        if key not in seen:
            seen.add(key)
            out.append(value)
            if len(out) >= limit:
                break
    return out


_AUTHOR_META_KEYS = (
    "author", "article:author", "og:article:author", "parsely-author", "sailthru.author", "dc.creator",
    "dcterms.creator", "byl", "citation_author", "cxenseparse:author", "twitter:creator",
)  # fmt: skip
# a cheap substring test in XPath, then the exact class tokens in Python (concat/normalize-space per
# element made this the slowest step of metadata extraction); the test runs on the attributes and returns
# their elements (in document order), half the work of testing four attributes on every element
_AUTHOR_CANDIDATES_XPATH = etree.XPath(
    "//@class[contains(., 'byline') or contains(., 'author')]/.. | //@rel[. = 'author']/.. | //@itemprop[. = 'author']/.."
)
_AUTHOR_CLASSES = frozenset(("byline", "author-name", "author"))


def _author_elements(root: lxml.html.HtmlElement) -> list[etree._Element]:
    """Elements with rel="author", itemprop="author", or a class token byline / author-name / author."""
    return [
        el
        for el in _AUTHOR_CANDIDATES_XPATH(root)
        if el.get("rel") == "author"
        or el.get("itemprop") == "author"
        or not _AUTHOR_CLASSES.isdisjoint((el.get("class") or "").split())
    ]


def _drop_affiliations(names: list[str], publisher_names: set[str]) -> list[str]:
    """Without outlet names and roles ("Business Insider", "CNN", "Staff Writer") when a person is named."""
    people = [
        n
        for n in names
        if not (n.isupper() and len(n) <= 5)
        and not _AFFILIATION_RE.search(n)
        and not any(n.casefold() in p for p in publisher_names)
    ]
    return people or names


def _authors(
    root: lxml.html.HtmlElement,
    metas: dict[str, list[str]],
    ld: _JsonLd,
    site_name: str | None,
    author_els: list[etree._Element],
) -> list[str]:
    publisher_names = {n.casefold() for n in (site_name,) if n}
    return _drop_affiliations(_author_candidates(root, metas, ld, publisher_names, author_els), publisher_names)


def _author_candidates(
    root: lxml.html.HtmlElement,
    metas: dict[str, list[str]],
    ld: _JsonLd,
    publisher_names: set[str],
    author_els: list[etree._Element],
) -> list[str]:
    """Author names: JSON-LD (people first; organisations other than the publisher only when no
    person is named), then author meta tags, then byline elements of the article."""
    for obj in (ld.article, ld.page):
        if obj is None:
            continue
        publisher = ld.resolve(obj.get("publisher"))
        if isinstance(publisher, dict) and _ld_text(publisher.get("name")):
            publisher_names.add(_ld_text(publisher.get("name")).casefold())
        raw = obj.get("author") or obj.get("creator")
        if not raw:
            continue
        people: list[str] = []
        orgs: list[str] = []
        for item in raw if isinstance(raw, list) else [raw]:
            item = ld.resolve(item)
            if isinstance(item, str):
                people.extend(_normalise_author(item))
            elif isinstance(item, dict):
                name = _ld_text(item.get("name"))
                if not name:
                    given, family = _ld_text(item.get("givenName")), _ld_text(item.get("familyName"))
                    name = " ".join(filter(None, [given, family])) or None
                if name:
                    target = (
                        orgs
                        if _types(item) & {"organization", "newsmediaorganization", "corporation"}
                        else people
                    )
                    target.extend(_normalise_author(name))
        people = _dedup(people, 10)
        if people:
            return people
        orgs = [o for o in _dedup(orgs, 10) if o.casefold() not in publisher_names]
        if orgs:
            return orgs
    for key in _AUTHOR_META_KEYS:
        values = [v for v in metas.get(key, ()) if not v.lower().startswith(("http://", "https://", "www."))]
        names = _dedup((n for v in values for n in _normalise_author(v)), 10)
        if names:
            return names
    names = []
    first_article = next(root.iter("article"), None)
    for el in author_els:
        if el.tag in ("meta", "link", "script", "style"):
            continue
        container = next(el.iterancestors("article"), None)
        if (first_article is not None and container is not first_article) or _in_chrome(el, container):
            continue  # teasers, comments, widgets
        inner = el.xpath(".//*[@itemprop='name']")
        text = (
            (inner[0].get("content") or _elem_text(inner[0]))
            if inner
            else _norm_space(" ".join(el.itertext()))
        )
        if text and len(text) <= 120:
            names.extend(_normalise_author(text))
        if len(names) >= 10:
            break
    return _dedup(names, 10)


def _syndicated_from(
    root: lxml.html.HtmlElement, ld: _JsonLd, site_name: str | None, author_els: list[etree._Element]
) -> str | None:
    """The agency or outlet the article's byline credits ("By <a>Jane Roe</a> | Continental Press Wire"),
    unless it is the publishing outlet itself. Only a credit next to the author's name counts: a dateline
    tag such as "(CPW)" is too ambiguous to name an outlet."""
    own = {n.casefold().removeprefix("the ") for n in (site_name,) if n}
    for obj in (ld.article, ld.page):
        publisher = ld.resolve(obj.get("publisher")) if obj is not None else None
        name = _ld_text(publisher.get("name")) if isinstance(publisher, dict) else None
        if name:
            own.add(name.casefold().removeprefix("the "))
    first_article = next(root.iter("article"), None)
    found: list[tuple[bool, str]] = []  # (outside the page's first <article>, credit)
    for el in author_els:
        if el.tag in ("meta", "link", "script", "style"):
            continue
        container = next(el.iterancestors("article"), None)
        if (container is not None and container is not first_article) or _in_chrome(el, container):
            continue  # a teaser's byline, or one in a widget
        text = _norm_space(" ".join(el.itertext()))
        if not text or len(text) > 120:
            continue
        credit = byline_credit(text)
        if credit and credit.casefold().removeprefix("the ") not in own:
            found.append((container is None and first_article is not None, credit))
    return min(found, key=lambda f: f[0])[1] if found else None


def _strip_site_from_title(title: str, site_name: str | None) -> str:
    """ "Headline | Site" -> "Headline" (also "Site - Headline"), when the site name is known."""
    if not site_name:
        return title
    site = re.escape(site_name.strip())
    stripped = re.sub(rf"\s+[|\-–—•·:»]+\s*{site}\s*$", "", title, flags=re.I)
    stripped = re.sub(rf"^\s*{site}\s*[|\-–—•·:»]+\s+", "", stripped, flags=re.I)
    return stripped.strip() or title


def _title(
    root: lxml.html.HtmlElement, metas: dict[str, list[str]], ld: _JsonLd, site_name: str | None
) -> tuple[str | None, str | None]:
    """(title, first h1 text) of the page."""
    h1_text = None
    for h1 in root.iter("h1"):
        text = _elem_text(h1)
        if text and len(text) < 400:
            h1_text = text
            break
    candidates = [
        _ld_text(ld.main.get("headline")) if ld.main is not None else None,
        _first_meta(metas, "og:title", "twitter:title", "dc.title", "parsely-title", "sailthru.title"),
        h1_text,
    ]
    title_el = root.find(".//title")
    html_title = _elem_text(title_el) if title_el is not None else None
    for candidate in candidates:
        if candidate and not candidate.endswith(("...", "…")):
            return _strip_site_from_title(candidate, site_name), h1_text
    if html_title:
        stripped = _strip_site_from_title(html_title, site_name)
        if stripped == html_title and h1_text and h1_text in html_title:
            stripped = h1_text
        return stripped, h1_text
    fallback = next((c for c in candidates if c), None)
    return fallback, h1_text


_LANG_ALIASES = {
    "iw": "he", "in": "id", "ji": "yi", "jw": "jv", "nb": "no", "ary": "ar", "arz": "ar", "gug": "gn",
    "uzs": "uz", "yue": "zh", "wuu": "zh", "fuv": "ff", "sdh": "ku", "hbo": "he", "srl": "sr",
}  # fmt: skip


def _iso639_1(code: str | None) -> str | None:
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    primary = _LANG_ALIASES.get(primary, primary)
    return primary if len(primary) == 2 and primary.isalpha() else None


# py3langid finds its features (byte n-grams) with a DFA that forgets what it read more than this many
# bytes ago: from any state, the same 6 bytes lead to the same state (tests/test_extract.py proves it for
# the packaged model). So the state at every byte is a walk from the start state over its last 6 bytes,
# which numpy does for all bytes at once, instead of py3langid's Python loop over each byte.
_LANGID_DFA_MEMORY = 6


def _dfa_states(nextmove: np.ndarray, rowbase: np.ndarray, data: bytes) -> np.ndarray:
    """The DFA's state after each byte of `data`, starting from state 0 (nextmove[rowbase[state] + byte])."""
    letters = np.frombuffer(data, dtype=np.uint8)
    size = len(letters)
    states = np.zeros(size, dtype=np.int64)
    for back in range(min(_LANGID_DFA_MEMORY, size) - 1, -1, -1):
        # every position reads the byte `back` before it (positions nearer the start join later, from 0)
        states[back:] = nextmove[rowbase[states[back:]] + letters[: size - back]]
    return states


def _dfa_feature_counts(
    nextmove: np.ndarray, rowbase: np.ndarray, output: np.ndarray, data: bytes
) -> tuple[np.ndarray, np.ndarray] | None:
    """py3langid's `visit_counts` as arrays: (features, times seen), in order of first sight (the order
    its scoring sums in), or None when there is no feature."""
    features = output[_dfa_states(nextmove, rowbase, data)]
    features = features[features >= 0]
    if not len(features):
        return None
    keys, first, counts = np.unique(features, return_index=True, return_counts=True)
    order = np.argsort(first)
    return keys[order], counts[order]


def _language_identifier_class() -> type:
    from py3langid.langid import LanguageIdentifier

    class VectorisedLanguageIdentifier(LanguageIdentifier):
        """py3langid's identifier with the DFA walk done by `_dfa_feature_counts` (same scores)."""

        __slots__ = ("_np_nextmove", "_np_output", "_np_rowbase")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._np_nextmove = np.frombuffer(self.tk_nextmove, dtype=f"u{self.tk_nextmove.itemsize}")
            self._np_rowbase = np.asarray(self._rowbase, dtype=np.int64)
            self._np_output = np.asarray(self.tk_output, dtype=np.int64)

        def _raw_score(self, text: bytes) -> np.ndarray:
            visits = _dfa_feature_counts(self._np_nextmove, self._np_rowbase, self._np_output, text)
            if visits is None:
                return super()._raw_score(text)  # no feature: py3langid's own fill value
            # `_sparse_score` of the same operands in the same order (its dict of them cost a fifth of this)
            features, counts = visits
            return np.log1p(counts.astype(np.float32)) @ self.nb_ptc[features] + self.nb_pc

    return VectorisedLanguageIdentifier


@lru_cache(maxsize=1)
def _language_identifier() -> Any:
    from py3langid.langid import MODEL_FILE

    identifier_class = _language_identifier_class()
    cached = _cached_language_model()
    if cached is not None:
        ptc, pc, classes, nextmove, row, output = cached
        return identifier_class(ptc, pc, classes, nextmove, output, norm_probs=True, tk_row=row)
    return identifier_class.from_model_file(MODEL_FILE, norm_probs=True)


def _cache_dir() -> Path:
    explicit = os.environ.get("NEWSINGEST_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsingest"


def _cached_language_model() -> tuple | None:
    """py3langid's model, read from an uncompressed copy in the user's cache (written on first use).

    The packaged model is LZMA-compressed: unpacking it costs ~0.4 s of CPU in every process that
    identifies a language (each extraction worker of each run); the unpacked copy (~70 MB) loads in
    ~0.07 s. Any problem (read-only home, a damaged copy) falls back to the packaged file."""
    try:
        import lzma

        from py3langid import modelio
        from py3langid.langid import MODEL_DIR, MODEL_FILE

        packaged = Path(MODEL_FILE) if Path(MODEL_FILE).is_absolute() else Path(MODEL_DIR) / MODEL_FILE
        st = packaged.stat()
        copy = _cache_dir() / f"py3langid-{st.st_size}-{int(st.st_mtime)}.npz"
        if not copy.exists():
            copy.parent.mkdir(parents=True, exist_ok=True)
            tmp = copy.with_name(f"{copy.name}.{os.getpid()}.tmp")
            try:
                with lzma.open(packaged) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
                os.replace(tmp, copy)  # atomic: a concurrent worker reads a whole copy or writes its own
            finally:
                tmp.unlink(missing_ok=True)
        with np.load(copy, allow_pickle=False) as data:
            return (_float32_weights(copy, data), data["pc"], data["classes"].tolist(),
                    _mapped_array(copy, "nextmove", lambda: data["nextmove"]), modelio._to_array(data["nextmove_row"]),
                    data["out_feat"].tolist())
    except Exception:  # noqa: BLE001 - a cache is an optimisation, never a failure
        LOGGER.debug("no cached language model", exc_info=True)
        return None


def _mapped_array(copy: Path, name: str, values: Callable[[], np.ndarray]) -> np.ndarray:
    """The array `values()` gives, from a file beside the unpacked model (written on first use), memory-mapped
    as a plain array: the DFA's transition table (39 MB) was read out of the model's archive, checksummed and
    copied in each worker (~30 ms of its start, and 39 MB of its memory each, which the page cache now shares)."""
    path = copy.with_name(f"{copy.stem}-{name}.npy")
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as out:
                np.save(out, np.ascontiguousarray(values()))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return np.asarray(np.load(path, mmap_mode="r"))  # a plain array over the map: np.memmap's indexing is slow


def _float32_weights(copy: Path, data: Any) -> np.ndarray:
    """The model's feature weights (`ptc`, float16 in the package) as float32, memory-mapped from a file
    beside the unpacked copy (written on first use).

    Scoring multiplies a page's ~300 rows of them by its feature counts in float32: numpy converted the
    float16 rows first, 60-80 us of a page's ~100 us of scoring. The float32 file is read where the rows are
    used, from the page cache every worker shares. The same products to the bit: numpy converts float16 to
    float32 exactly (tests/test_extract.py compares the scores with the packaged model's)."""
    return _mapped_array(copy, "ptc-f32", lambda: np.asarray(data["ptc"], dtype=np.float32))


_MIN_LANGUAGE_LETTERS = 40
# The model reads this much of the text: its time grows with the sample (600 characters: 0.24 ms a page, 1,000:
# 0.35 ms), and on the extraction benchmark's 88 pages with text (en, pt, ko, id, ru, de) the languages found
# from 600 characters are those found from 1,000 and 2,000; from 400, one page has none.
_LANGUAGE_SAMPLE_CHARS = 600


def _language(text: str | None, html_lang: str | None) -> str | None:
    """ISO 639-1 language of the text; the page's declared language when the model agrees it is
    plausible; None when the text is too short to tell or the model is unsure."""
    if not text:
        return None
    sample = text[:_LANGUAGE_SAMPLE_CHARS]
    if sum(map(str.isalpha, sample)) < _MIN_LANGUAGE_LETTERS:
        return None
    try:
        ranked = _language_identifier().rank(sample)[:5]
    except Exception:  # noqa: BLE001 - a missing model must not fail extraction
        LOGGER.debug("language identification failed", exc_info=True)
        return None
    scored: list[tuple[str, float]] = []
    for code, prob in ranked:
        iso = _iso639_1(code)
        if iso and all(iso != c for c, _ in scored):
            scored.append((iso, prob))
    if not scored:
        return None
    declared = _iso639_1(html_lang)
    if declared and any(code == declared and prob >= 0.05 for code, prob in scored):
        return declared
    code, prob = scored[0]
    return code if prob >= 0.5 else None


# -------------------------------------------------------------------------------------------------
# pre-pruning before trafilatura

# class / id / aria-label / data-component words marking boilerplate blocks; matched as whole
# components of a class token ("article-share-bar" and "shareBar" both hold "share")
_BOILERPLATE_WORDS = (
    # share and follow
    "share", "shares", "sharing", "sharebar", "sharetools", "social", "socials", "addthis", "sharethis",
    "shareaholic", "follow-us", "social-links", "share-buttons",
    # related, recirculation
    "related", "recommended", "recommendations", "recommendation", "recirc", "recirculation",
    "more-stories", "more-news", "more-from", "more-articles", "read-next", "readnext", "up-next",
    "also-read", "read-also", "see-also", "you-may-like", "you-might-like", "most-read", "most-popular",
    "mostpopular", "trending", "outbrain", "taboola", "further-reading", "next-article", "post-navigation",
    "also-on",
    # newsletter, subscription and promotion boxes
    "newsletter", "newsletters", "subscribe", "signup", "sign-up", "optin", "opt-in", "email-signup",
    "mailing-list", "promo", "promotion", "cta", "call-to-action", "sponsor", "sponsored", "advert",
    "advertisement", "advertising", "ad", "ads", "adslot", "ad-slot", "adunit", "ad-unit", "dfp",
    "gpt-ad", "native-ad", "notification-bar",
    # consent
    "cookie", "cookies", "consent", "gdpr", "cmp", "onetrust", "didomi", "cookiebar", "privacy-banner",
    # chrome inside the article column
    "breadcrumb", "breadcrumbs", "pagination", "pager", "print-header", "print-footer", "sr-only",
    "screen-reader-text", "visually-hidden", "visuallyhidden", "skip-link", "author-bio", "author-box",
    "about-the-author", "author-info", "toolbar", "tooltip", "popover", "hovercard", "rollover",
)  # fmt: skip
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class _Words:
    """A vocabulary of class/id words, matched as whole dash-separated components of a signature
    ("article-share-bar" holds "share"; "read-next" is matched as a phrase of two components), with one
    regular expression (a set of components per element was the slowest part of the page scan)."""

    __slots__ = ("rx",)

    def __init__(self, words: Iterable[str]) -> None:
        alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
        self.rx = re.compile(rf"(?<![^\s-])(?:{alternatives})(?![^\s-])")

    def search(self, signature: str) -> bool:
        return self.rx.search(signature) is not None


_BOILERPLATE = _Words(_BOILERPLATE_WORDS)
_CONSENT_WORDS = _Words(
    ("cookie", "cookies", "consent", "gdpr", "cmp", "onetrust", "didomi", "cookiebar", "privacy-banner",
     "cookie-wall", "consent-wall")
)  # fmt: skip
_PAYWALL_WORDS = _Words(
    ("paywall", "regwall", "piano", "tp-container", "subscriber-only", "subscribers-only", "premium-wall",
     "article-locked", "content-gate", "meter", "metered", "paid-content", "subscription-wall", "subscribe-wall")
)  # fmt: skip


@lru_cache(maxsize=8192)  # pages repeat the same class strings many times
def _signature_flags(signature: str) -> tuple[bool, bool, bool]:
    """(consent box, paywall box, boilerplate block) for an element's signature."""
    return _CONSENT_WORDS.search(signature), _PAYWALL_WORDS.search(signature), _BOILERPLATE.search(signature)


_METADATA_ITEMPROPS = {"datepublished", "datemodified", "datecreated", "author", "creator", "publisher"}
_PRUNE_ROLES = {"complementary", "dialog", "alertdialog", "search", "menubar", "toolbar", "navigation"}
_NEVER_PRUNED = {"html", "body", "head", "main"}
_BODY_CHUNK_RE = re.compile(
    r"(?:^|\s)[\w-]*(?:article[-_]{0,2}body|articlebody|body[-_]{0,2}container|story[-_]?body|post[-_]?body|"
    r"entry[-_]?content|article[-_]{0,2}content|article[-_]?text|body[-_]?text|text[-_]?copy|rich[-_]?text|"
    r"content[-_]?body)[\w-]*(?:\s|$)",
    re.I,
)
_RELATED_LABEL_RE = re.compile(
    r"^\s*(?:related|read more|read also|also read|see also|more|recommended|watch|listen|also on [\w.]+|"
    r"more on this|more from [\w .]+|lees ook|lesen sie auch|mehr zum thema|lire aussi|à lire aussi|leia também|"
    r"leggi anche|lee también)\s*[:\-–—»]",
    re.I,
)


@lru_cache(maxsize=8192)  # pages repeat the same class strings many times
def _is_body_chunk_class(cls: str) -> bool:
    return _BODY_CHUNK_RE.search(cls) is not None


def _signature(attributes: Any) -> str:
    """class, id, aria-label and data-component/module of an element (its `attrib`, or a dict of its
    attributes): lower case, camelCase and underscores turned into dashes ("shareBar_top" -> "share-bar-top")."""
    parts = [
        v
        for v in (
            attributes.get("class"),
            attributes.get("id"),
            attributes.get("aria-label"),
            attributes.get("data-component"),
            attributes.get("data-module"),
        )
        if v
    ]
    return _normalise_signature(" ".join(parts)) if parts else ""


_NO_VERDICT = (0, False, False)
_CONSENT_BOX, _PAYWALL_BOX = 1, 2


@lru_cache(maxsize=16384)  # a site's pages repeat their elements' tags and attributes
def _attribute_verdict(tag: str, attributes: tuple[tuple[str, str], ...]) -> tuple[int, bool, bool]:
    """What the page scan makes of an element from its tag and its `_SCANNED_ATTRIBUTES` (the only ones it
    reads; others may be given) alone: (_CONSENT_BOX for a consent
    box or a dialog, _PAYWALL_BOX for a pay-wall box, else 0; a prune candidate (hidden, a pruned role,
    boilerplate words); a metadata itemprop, which is a candidate when its text is short)."""
    if tag in _NEVER_PRUNED:
        return _NO_VERDICT
    attrs = dict(attributes)
    if _SCANNED_ATTRIBUTES.isdisjoint(attrs):
        return _NO_VERDICT
    signature = _signature(attrs)
    consent_box, paywall_box, boilerplate = _signature_flags(signature) if signature else (False,) * 3
    role = (attrs.get("role") or "").lower()
    box = _CONSENT_BOX if consent_box or role in ("dialog", "alertdialog") else _PAYWALL_BOX if paywall_box else 0
    if attrs.get("hidden") is not None or role in _PRUNE_ROLES or boilerplate:
        return box, True, False
    itemprop = attrs.get("itemprop")
    return box, False, bool(itemprop and itemprop.lower() in _METADATA_ITEMPROPS and tag not in ("meta", "link"))


@lru_cache(maxsize=8192)  # pages repeat the same class strings many times
def _normalise_signature(signature: str) -> str:
    if not signature.islower():
        signature = _CAMEL_RE.sub("-", signature).lower()
    return signature.replace("_", "-")


def _link_text_share(el: etree._Element, total: int | None = None) -> float:
    """Share of an element's text (`total`: its length, when the caller has it) that is link text."""
    if total is None:
        total = len(_elem_text(el))
    if not total:
        return 0.0
    linked = sum(map(len, map(_elem_text, el.iter("a"))))
    return min(1.0, linked / total)


def _is_blank(text: str | None) -> bool:
    return not text or text.isspace()


def _item_link_share(li: etree._Element) -> float | None:
    """`_link_text_share` of a list item, or None when the item has no link or no text."""
    if len(li) == 1:
        first = li[0]
        if first.tag == "a" and _is_blank(li.text) and _is_blank(first.tail):
            # the common <li><a>...</a></li>: the item's text is the link's, so the share is 1 (no second walk);
            # a link without children has its text as its only text (text_content is an XPath call)
            return None if _is_blank(first.text if not len(first) else _raw_text(first)) else 1.0
    if li.find(".//a") is None:
        return None
    size = len(_elem_text(li))
    return _link_text_share(li, size) if size else None


def _is_link_list(items: list[etree._Element]) -> bool:
    """Whether list items are (nearly) all link text, each with a link: related stories, not a list in
    the article."""
    total = 0.0  # the shares summed in order, as sum() would
    for li in items:
        # `_item_link_share` of the common <li><a>text</a></li>, inline (a menu or a footer has ~40 items)
        if len(li) == 1:
            first = li[0]
            if first.tag == "a":
                text = li.text
                if not text or text.isspace():
                    text = first.tail
                    if not text or text.isspace():
                        text = first.text if not len(first) else _raw_text(first)
                        if not text or text.isspace():
                            return False
                        total += 1.0
                        continue
        share = _item_link_share(li)
        if share is None:
            return False
        total += share
    return total / len(items) >= 0.75


_CARD_CHILD_TAGS = {"span", "div", "img", "picture", "figure", "h2", "h3", "h4", "h5", "strong", "p"}


def _is_link_card(a: etree._Element) -> bool:
    """A link standing alone as a block in a content column, with its own inner structure: a teaser
    card ("Also on example.com: <headline>") dropped into the article body."""
    parent = a.getparent()
    if parent is None or parent.tag not in ("div", "section", "article", "aside"):
        return False
    if not any(isinstance(c.tag, str) and c.tag in _CARD_CHILD_TAGS for c in a):
        return False
    if a.tail and a.tail.strip():
        return False
    previous = a.getprevious()
    before = previous.tail if previous is not None else parent.text
    if before and before.strip():
        return False
    return len(_elem_text(a).split()) >= 4


def _is_prose_chunk(el: etree._Element) -> bool:
    text = _elem_text(el)
    if not text:
        return True  # an empty chunk (ad placeholder) does not speak against merging
    return _link_text_share(el) < 0.3 and any(len(_elem_text(p).split()) >= 15 for p in el.iter("p"))


def _merge_split_bodies(root: lxml.html.HtmlElement) -> None:
    """An article body cut into sibling chunks with the same class (ad slots between them): move the
    chunks' content into the first chunk, so extraction does not stop after the first one."""
    groups: dict[str, list[etree._Element]] = {}
    for el in root.iter("div", "section"):
        cls = el.get("class")
        if cls and _is_body_chunk_class(cls):
            groups.setdefault(cls, []).append(el)
    for chunks in groups.values():
        if len(chunks) < 2 or len(chunks) > 50:
            continue
        first = chunks[0]
        if any(_is_inside(c, first) or _is_inside(first, c) for c in chunks[1:]):
            continue
        # article prose, not a list of teaser cards with the same class
        if not all(_is_prose_chunk(c) for c in chunks):
            continue
        # the chunks must share a close ancestor (the same article column)
        first_ancestors = list(first.iterancestors())[:4]
        if not all(any(a in first_ancestors for a in list(c.iterancestors())[:4]) for c in chunks[1:]):
            continue
        for chunk in chunks[1:]:
            if chunk.text and chunk.text.strip():
                p = etree.SubElement(first, "p")
                p.text = chunk.text
            for child in list(chunk):
                first.append(child)
            chunk.drop_tree()


_INLINE_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em", "font", "i", "img",
    "ins", "kbd", "label", "mark", "nobr", "q", "s", "samp", "small", "span", "strike", "strong", "sub",
    "sup", "time", "tt", "u", "var", "wbr",
}  # fmt: skip
_LOOSE_TEXT_MIN = 40


def _paragraphise(root: lxml.html.HtmlElement) -> None:
    """Wrap text written straight into a <div> (runs between <br>s and blocks) into <p> elements.

    Extractors look for paragraphs; a lead written as `<div class="content">Text <em>x</em>.<br><br><img>`
    is otherwise lost.
    """
    for div in [d for d in root.iter("div", "section", "article", "td")]:
        if not (
            (div.text and len(div.text.strip()) >= _LOOSE_TEXT_MIN)
            or any(c.tail and len(c.tail.strip()) >= _LOOSE_TEXT_MIN for c in div)
        ):
            continue
        if all(isinstance(c.tag, str) and c.tag in _INLINE_TAGS for c in div):
            continue  # a single run of inline content: already a paragraph to extractors
        pieces: list[Any] = []  # the new children of the div, in order
        run: list[Any] = []  # strings and inline elements of the current paragraph

        def flush(run: list[Any] = run, pieces: list[Any] = pieces) -> None:
            if any(isinstance(x, str) and x.strip() for x in run) or any(
                not isinstance(x, str) and _elem_text(x) for x in run
            ):
                p = lxml.html.Element("p")
                last: Any = None
                for x in run:
                    if isinstance(x, str):
                        if last is None:
                            p.text = (p.text or "") + x
                        else:
                            last.tail = (last.tail or "") + x
                    else:
                        p.append(x)
                        last = x
                pieces.append(p)
            else:
                pieces.extend(x for x in run if not isinstance(x, str))
            run.clear()

        if div.text:
            run.append(div.text)
        for child in list(div):
            tail, child.tail = child.tail, None
            if not isinstance(child.tag, str) or child.tag in _INLINE_TAGS:
                run.append(child)
            elif child.tag == "br":
                flush()
            else:
                flush()
                pieces.append(child)
            if tail:
                run.append(tail)
        flush()
        div.text = None
        for child in list(div):
            div.remove(child)
        div.extend(pieces)


_UNSEEN_TEXT_TAGS = ("script", "style", "noscript", "template")


# an element's text nodes (what itertext() gives) as plain strings: a fifth of itertext's time, which makes
# an element proxy for every element it passes
_TEXT_NODES = etree.XPath("descendant-or-self::text()", smart_strings=False)


def _stripped_len(el: etree._Element) -> int:
    """Characters of an element's text nodes, each stripped (map, not a generator: this runs over every
    text node of the page)."""
    return sum(map(len, map(str.strip, _TEXT_NODES(el))))


def _visible_text_len(body: etree._Element) -> int:
    """Characters of text the page shows (text nodes stripped, script/style/noscript/template left out):
    all text minus the unseen elements' own text, which is much cheaper than testing each text node's
    ancestors."""
    total = _stripped_len(body)
    for el in body.iter(*_UNSEEN_TEXT_TAGS):
        if not any(anc.tag in _UNSEEN_TEXT_TAGS for anc in el.iterancestors()):
            total -= _stripped_len(el)  # its tail is shown text: not subtracted
    return total


# the attributes the page scan reads; elements with none of them are skipped
_SCANNED_ATTRIBUTES = frozenset(
    ("class", "id", "role", "aria-label", "hidden", "itemprop", "data-component", "data-module")
)
# elements with any attribute, filtered in Python: an XPath testing the eight attributes took twice as long
_DESCENDANTS_WITH_ATTRIBUTES = etree.XPath("descendant::*[@*]")


_TAGGED_LINKS = etree.XPath("descendant::a[@rel]")
# what _is_link_card can accept: a link with an element inside, straight in a content block
_CARD_LIKE_LINKS = etree.XPath("descendant::a[*][parent::div or parent::section or parent::article or parent::aside]")
_PARAGRAPHS_WITH_LINKS = etree.XPath("descendant::p[descendant::a]")
_LISTS = etree.XPath("descendant::ul | descendant::ol")


class _PageScan:
    """One pass over the intact page: what to prune before extraction, and what the page says about
    consent and pay walls and its links (the status heuristics need them after pruning)."""

    __slots__ = ("_anchor_texts", "body_len", "consent_text", "paywall_text", "prune", "root")

    def __init__(self, root: lxml.html.HtmlElement) -> None:
        self.root = root
        self._anchor_texts: set[str] | None = None
        self.prune: list[etree._Element] = []
        consent: list[str] = []
        paywall: list[str] = []
        body = root.find("body")
        self.body_len = 1
        if body is None:
            self.consent_text = self.paywall_text = ""
            return
        candidates: list[etree._Element] = []
        no_scanned_attribute = _SCANNED_ATTRIBUTES.isdisjoint
        for el in _DESCENDANTS_WITH_ATTRIBUTES(body):
            if no_scanned_attribute(el.keys()):  # most: a link's href, an image's src (names only: no values made)
                continue
            scanned = tuple(kv for kv in el.items() if kv[0] in _SCANNED_ATTRIBUTES)  # not hrefs: a small key
            box, prune, metadata = _attribute_verdict(el.tag, scanned)
            if box == _CONSENT_BOX:
                text = _elem_text(el)
                if text and _has_consent_text(text) and not any(text in c for c in consent):
                    consent.append(text)
            elif box == _PAYWALL_BOX:
                text = _elem_text(el)
                if text:
                    paywall.append(text)
            if prune:
                candidates.append(el)
            elif metadata and len(_elem_text(el)) < 150:  # a dateline or byline, which are fields of their own
                candidates.append(el)
        self.body_len = _visible_text_len(body) or 1
        stats = _PageStats(body, self.body_len)
        accepted = {el for el in candidates if not _holds_the_article(el, stats)}
        # (each XPath picks the elements a test can accept, so most links are never looked at from Python;
        # the order of the candidates does not matter: the pruned tree is the same). An element inside an
        # accepted candidate goes with it whatever its own test says, so it is not tested: most link lists
        # are in a menu, a footer or a related box the attributes found (a fifth of a page's scan)
        def outside(el: etree._Element) -> bool:
            return not any(anc in accepted for anc in el.iterancestors())

        candidates = []
        for el in _TAGGED_LINKS(body):
            if not outside(el):
                continue
            if "tag" in el.get("rel").lower().split():  # tag/category link rows
                parent = el.getparent()
                if (
                    parent is not None
                    and parent.tag in ("p", "div", "span", "strong", "b", "em", "li", "ul")
                    and len(_elem_text(parent)) < 400
                    and _link_text_share(parent) >= 0.6
                ):
                    candidates.append(parent)
                else:
                    candidates.append(el)
            elif _is_link_card(el):
                candidates.append(el)
        for el in _CARD_LIKE_LINKS(body):
            if el.get("rel") is None and outside(el) and _is_link_card(el):
                candidates.append(el)
        for el in _PARAGRAPHS_WITH_LINKS(body):
            if not outside(el):
                continue
            text = _elem_text(el)
            if len(text) < 300 and _RELATED_LABEL_RE.match(text) and _link_text_share(el) > 0.5:
                candidates.append(el)
        for el in _LISTS(body):
            # a list of links (related stories), possibly with a few words around some of them
            items = [li for li in el if li.tag == "li"]
            if len(items) >= 2 and outside(el) and _is_link_list(items):
                candidates.append(el)
        accepted.update(el for el in candidates if not _holds_the_article(el, stats))
        self.prune = [el for el in accepted if not any(anc in accepted for anc in el.iterancestors())]
        self.consent_text = " ".join(consent)
        self.paywall_text = " ".join(paywall)


class _PageStats:
    """Sizes of the intact page, to keep pruning away from the article itself."""

    __slots__ = ("_body", "_p_total", "body_len", "h1")

    def __init__(self, body: etree._Element, body_len: int) -> None:
        self._body = body
        self.body_len = body_len
        self._p_total: int | None = None
        self.h1 = next(body.iter("h1"), None)

    @property
    def p_total(self) -> int:
        """Characters in the page's paragraphs: counted when a candidate first needs them (read before any
        pruning: the scan's candidates are all judged before the tree changes), most pages never do."""
        if self._p_total is None:
            self._p_total = sum(len(p.text_content()) for p in self._body.iter("p")) or 1
        return self._p_total


def _holds_the_article(el: etree._Element, stats: _PageStats) -> bool:
    """Whether a prune candidate is (or wraps) the article: much of the page's text or paragraphs,
    or the headline with text around it. (WordPress puts `tag-social-media category-newsletters`
    on the <article> itself.)"""
    size = len(el.text_content())
    if size <= 200:
        return False
    if size > 500 and size > 0.35 * stats.body_len:
        return True
    if stats.h1 is not None and (el is stats.h1 or any(anc is el for anc in stats.h1.iterancestors())):
        return True
    p_len = sum(len(p.text_content()) for p in el.iter("p"))
    return p_len > 300 and p_len > 0.4 * stats.p_total


def _anchor_texts(scan: _PageScan) -> set[str]:
    """Texts of the page's links, lower-cased (computed on first use, before pruning changes them)."""
    if scan._anchor_texts is None:
        scan._anchor_texts = {
            t for t in (_norm_space(a.text_content()).lower() for a in scan.root.iter("a")) if t
        }
    return scan._anchor_texts


def _prune(scan: _PageScan) -> None:
    """Remove what the scan found: share bars, related lists, newsletter/promo boxes, consent
    banners, datelines and bylines, tag rows, teaser cards."""
    for el in scan.prune:
        if el.getparent() is not None:
            el.drop_tree()


# -------------------------------------------------------------------------------------------------
# text extraction

_FALLBACK_BELOW_CHARS = 1000  # a precision result shorter than this gets a balanced second opinion
_FALLBACK_RATIO = 2.0  # ... which wins when it is this much longer
_TABLE_RULE_RE = re.compile(r"^[\s|:\-+=]*$")


@lru_cache(maxsize=4)
def _trafilatura_options(precision: bool, fast: bool) -> Any:
    """trafilatura's options for our calls, built once: building them reads its config file's values
    through configparser, a tenth of a millisecond per page."""
    from trafilatura.settings import Extractor

    return Extractor(output_format="python", fast=fast, precision=precision, comments=False, links=False,
                     images=False, tables=True, dedup=False, with_metadata=False)


def _trafilatura_text(tree: lxml.html.HtmlElement, url: str | None, precision: bool, fast: bool = True) -> str:
    """trafilatura's text of `tree`. `fast` skips its comparison with readability and jusText, a third of
    its time, which the pre-pruning makes up for except on layout tables (see _is_layout_table_text)."""
    options = copy.copy(_trafilatura_options(precision, fast))  # the page's URL is the copy's own
    options.url = options.source = url
    try:
        document = trafilatura.bare_extraction(tree, url=url, options=options)
    except (ValueError, TypeError, AssertionError) as err:
        LOGGER.debug("trafilatura failed on %s: %s", url, err)
        return ""
    text = getattr(document, "text", None) if document is not None else None
    return text or ""


# -------------------------------------------------------------------------------------------------
# plain article bodies: the text without trafilatura
#
# After the pre-pruning, many article bodies are one column of plain paragraphs (and subheadings): there
# trafilatura's answer is those paragraphs' text, and it costs 1-3 ms a page to get (its XPath passes over
# the tree cost the same whatever they find). `_plain_body_text` gives that text directly, and declines
# (trafilatura then reads the page) every shape where a rule of trafilatura (2.3.1, pinned) is known to
# answer otherwise: lists, tables, quotes, line breaks, links, elements its rules delete, longer paragraphs
# outside the column... One thing is not emulated: which container trafilatura picks (its BODY_XPATH).
# Where it would pick a part of the column, or an ancestor holding short text beside the column that its
# rules keep, the texts differ; tests/test_extract_plain.py holds them equal on every page of the test
# fixtures, the demo web and the benchmark web, and on ../shared's real pages where present.

_PLAIN_HEADINGS = frozenset(("h2", "h3", "h4", "h5", "h6"))
_PLAIN_WRAPPERS = frozenset(("div", "section", "article", "main"))
# whole elements trafilatura's cleaning deletes (their tails stay): skipped, when their tail is blank
# (not <form>: trafilatura keeps a form that holds most of the page's text, as ASP.NET pages have)
_PLAIN_DROPPED = frozenset((
    "figure", "picture", "img", "script", "style", "noscript", "template", "iframe", "svg", "video", "audio",
    "aside", "button", "embed", "object", "canvas",
))  # fmt: skip
# inline elements a plain paragraph may hold: trafilatura keeps their text in place (not <q>, a quote to it,
# nor <del>/<s>/<strike>, which it marks)
_PLAIN_INLINE = frozenset((
    "a", "b", "strong", "i", "em", "u", "span", "sup", "sub", "small", "mark", "abbr", "cite", "font", "ins",
    "big", "tt", "var", "kbd", "samp", "dfn",
))  # fmt: skip
# inline elements that trafilatura deletes when empty, with their tail in precision mode (CUT_EMPTY_ELEMS)
_PLAIN_CUT_WHEN_EMPTY = frozenset(("b", "em", "i", "span", "strong"))
# where a page keeps paragraphs that are not the article's (trafilatura drops these elements whole)
_PLAIN_OUTSIDE_OK = frozenset(("header", "footer", "nav", "aside", "figure", "head", "noscript", "template"))
_PLAIN_MIN_PARAGRAPH = 40  # characters of a paragraph that counts towards a column's text
_TRAFILATURA_REPEAT_CHARS = 50  # its MIN_DUPLICATE_LENGTH


class _Discards:
    """trafilatura's rules that delete elements of an article (precision mode), as tests of one element:
    its class/id/role/style rules (its XPaths, each turned from "every descendant such that" into "this
    element is such that"), the tags it deletes whole, and the attributes those rules read (an element
    with none of them and no such tag cannot match)."""

    __slots__ = ("attributes", "tags", "tests")

    def __init__(self) -> None:
        from trafilatura.settings import MANUALLY_CLEANED
        from trafilatura.xpaths import (
            OVERALL_DISCARD_XPATH,
            PRECISION_DISCARD_XPATH,
            REGEXP_NS,
            TEASER_DISCARD_XPATH,
        )

        self.tests: list[etree.XPath] = []
        self.tags = set(MANUALLY_CLEANED)
        attributes: set[str] = set()
        for xpath in (*OVERALL_DISCARD_XPATH, *TEASER_DISCARD_XPATH, *PRECISION_DISCARD_XPATH):
            path = xpath.path.strip()
            if re.fullmatch(r"\.//[a-z]+", path):
                self.tags.add(path[3:])
            elif path.startswith(".//*["):
                self.tests.append(etree.XPath("self::*" + path[4:], namespaces={"re": REGEXP_NS}))
                attributes.update(re.findall(r"@([\w-]+)", path))
            else:  # a rule of a shape this does not know: no plain path (tests/test_extract_plain.py fails)
                raise ValueError(f"unknown trafilatura discard rule: {path[:60]!r}")
        self.attributes = frozenset(attributes)

    def deletes(self, el: etree._Element) -> bool:
        """Whether trafilatura would delete `el` (with what it holds)."""
        tag = el.tag
        if tag in self.tags:
            return True
        if self.attributes.isdisjoint(el.keys()):
            return False
        return self._deletes(tag, tuple((k, v) for k, v in el.items() if k in self.attributes))

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance for the process; a site's pages repeat their classes
    def _deletes(self, tag: str, attributes: tuple[tuple[str, str], ...]) -> bool:
        """The rules read only an element's tag and these attributes: tested on a bare element with them."""
        try:
            el = etree.Element(tag, dict(attributes))
        except ValueError:  # a tag HTML allows and XML does not ("o:p"): none of the rules names such a tag
            el = etree.Element("unnamed", dict(attributes))
        return any(test(el) for test in self.tests)


@lru_cache(maxsize=1)
def _trafilatura_discards() -> _Discards | None:
    try:
        return _Discards()
    except (ImportError, ValueError, etree.XPathError):
        LOGGER.warning("trafilatura's discard rules are not as expected: every page goes to trafilatura",
                       exc_info=True)
        return None


def _plain_paragraph(p: etree._Element) -> str | None:
    """A paragraph's text as trafilatura gives it, or None where its rules might differ (line breaks,
    non-inline children, an empty inline element, links that its link-density test could delete, a
    share-label line)."""
    has_link = False
    for el in p.iterdescendants():
        tag = el.tag
        if not isinstance(tag, str):
            continue  # a comment: trafilatura drops it and keeps its tail, as text_content does
        if tag not in _PLAIN_INLINE or (tag in _PLAIN_CUT_WHEN_EMPTY and el.text is None and not len(el)):
            return None
        has_link = has_link or tag == "a"
    text = single_spaced(remove_control_characters(p.text_content()))  # soft hyphens, zero-width spaces
    if not text or RE_FILTER.match(text):  # a share-button label ("Facebook", "Print")
        return None
    if has_link and (len(text) < 100 or _link_text_share(p, len(text)) > 0.5):
        return None
    return text


def _plain_column(body: etree._Element) -> etree._Element | None:
    """The innermost element holding every paragraph of 40 characters or more of the page, leaving out
    those in elements trafilatura drops whole (header, footer, aside, figure...)."""
    column = None
    for p in body.iter("p"):
        text = p.text_content() if len(p) else p.text  # text_content is an XPath call
        if not text or len(text.strip()) < _PLAIN_MIN_PARAGRAPH:
            continue
        if column is not None and _is_inside(p, column):
            continue
        ancestors = list(p.iterancestors())
        if any(a.tag in _PLAIN_OUTSIDE_OK for a in ancestors):
            continue
        if column is None:
            column = ancestors[0] if ancestors else None
        while column is not None and column not in ancestors:
            column = column.getparent()
        if column is None or column is body:
            return None
    return column


def _plain_body_text(root: lxml.html.HtmlElement) -> str | None:
    """The article text of a pruned page whose body is a plain column of paragraphs and subheadings (in
    trafilatura's output format), or None where trafilatura is needed (see the section's comment)."""
    body = root.find("body")
    if body is None:
        return None
    column = _plain_column(body)
    if column is None or column.tag not in _PLAIN_WRAPPERS:
        return None
    discards = _trafilatura_discards()
    if discards is None:
        return None
    # trafilatura may take an element above the column for the article, and deletes what its rules say
    # wherever it is: the column, its ancestors and everything in it must be safe from them
    if any(discards.deletes(el) for el in _kept_elements(column)) or any(
        discards.deletes(el) for el in column.iterancestors() if el is not body and el.tag != "html"
    ):
        return None
    lines: list[str] = []
    last_is_heading = False
    for el in _plain_blocks(column):
        if el is None:
            return None
        text = _plain_paragraph(el) if el.tag == "p" else _plain_heading(el)
        if text is None or (lines and text == lines[-1] and len(text) > _TRAFILATURA_REPEAT_CHARS):
            return None  # trafilatura deletes a long block that repeats the one before it
        lines.append(text)
        last_is_heading = el.tag != "p"
    if last_is_heading:
        return None  # trafilatura drops a trailing heading
    text = "\n".join(lines)
    return text if len(text) >= _FALLBACK_BELOW_CHARS else None


def _plain_text_or_none(root: lxml.html.HtmlElement, url: str | None) -> str | None:
    """`_plain_body_text`, and None should it fail: it only saves time, trafilatura then reads the page."""
    try:
        return _plain_body_text(root)
    except Exception as err:  # noqa: BLE001 - a shortcut's failure must not fail the page
        LOGGER.warning("plain-body extraction failed on %s (trafilatura reads it): %s: %s", url,
                       type(err).__name__, err)
        return None


def _kept_elements(el: etree._Element) -> Iterator[etree._Element]:
    """`el` and its descendants, less the elements the plain path skips with what they hold (figures,
    scripts...: trafilatura deletes those too)."""
    yield el
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _PLAIN_DROPPED:
            yield from _kept_elements(child)


def _plain_blocks(wrapper: etree._Element) -> Iterator[etree._Element | None]:
    """The paragraphs and subheadings under `wrapper` in document order (through nested wrappers), then
    None where anything else holds text (the caller gives up there)."""
    if not _is_blank(wrapper.text):
        yield None
        return
    for child in wrapper:
        tag = child.tag
        if not _is_blank(child.tail):
            yield None
            return
        if not isinstance(tag, str) or tag in _PLAIN_DROPPED:
            continue
        if tag == "p" or tag in _PLAIN_HEADINGS:
            yield child
        elif tag in _PLAIN_WRAPPERS:
            yield from _plain_blocks(child)
        else:
            yield None
            return


def _plain_heading(h: etree._Element) -> str | None:
    """A subheading's text, or None where trafilatura might drop or reshape it (links, other children)."""
    if len(h) and any(isinstance(el.tag, str) and (el.tag == "a" or el.tag not in _PLAIN_INLINE)
                      for el in h.iterdescendants()):
        return None
    text = single_spaced(remove_control_characters(h.text_content()))
    return text or None


def _trafilatura_main_text(root: lxml.html.HtmlElement, url: str | None) -> str:
    """trafilatura's text of the pruned tree: precision mode, its comparison with readability on a layout
    table, and a balanced second opinion on a short result."""
    raw = _trafilatura_text(root, url, precision=True)
    if _is_layout_table_text(raw):
        raw = _trafilatura_text(root, url, precision=True, fast=False)
    if len(raw) < _FALLBACK_BELOW_CHARS:
        balanced = _trafilatura_text(root, url, precision=False)
        if len(balanced) > _FALLBACK_RATIO * len(raw):
            raw = balanced
    return raw


def _is_layout_table_text(raw: str) -> bool:
    """trafilatura took a table cell for the article: an old page laid out in a table, where the cell also
    holds the site's headline lists. Its comparison with readability separates those."""
    return raw.lstrip().startswith("|")


def _tidy_text(text: str, title: str | None, h1: str | None) -> str:
    lines = []
    for line in text.replace("\r", "\n").split("\n"):
        line = _norm_space(line)
        if line and not _TABLE_RULE_RE.match(line):
            lines.append(line)
    # the headline is its own field: drop it from the body's first line
    if lines:
        first = _clean_title_key(lines[0])
        if first and any(first == _clean_title_key(t) for t in (title, h1) if t):
            lines = lines[1:]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------
# status heuristics

_CONSENT_TEXT_RE = re.compile(
    r"\bcookies?\b|\bconsent\b|\bgdpr\b|privacy (?:policy|settings|preferences|choices)|personali[sz]ed (?:ads|advertising|content)|"
    r"we and our (?:\d+ )?partners|accept all|reject all|accept cookies|manage (?:options|preferences|settings|cookies)|"
    r"\bdatenschutz|einwilligung|zustimmen|alle akzeptieren|nous et nos partenaires|consentement|tout accepter|"
    r"consentimiento|aceptar todo|consenso|accetta tutto|toestemming|legitimate interest",
    re.I,
)
_PAYWALL_TEXT_RE = re.compile(
    r"(?:subscribe|subscription|sign in|log in|login|register|become a (?:member|subscriber)|join now|start your trial)"
    r"[^.\n]{0,80}(?:to (?:continue|keep) reading|to read (?:the|this|more|on)|for full access|to unlock|to access this|to see the rest)"
    r"|(?:continue|keep) reading[^.\n]{0,60}(?:subscri|\$|€|£|membership|sign in|log in)"
    r"|this (?:article|story|content|post) is (?:only )?(?:available|reserved|exclusive) (?:to|for) (?:subscribers|members|premium)"
    r"|already a (?:subscriber|member)\?"
    r"|(?:exclusive|only) for (?:subscribers|members)|subscribers? only|subscriber-only"
    r"|to read the (?:full|rest of this|entire) (?:article|story)|the rest of this (?:article|story) is"
    r"|you(?:'|’)ve (?:reached|used) (?:your|all of your) (?:limit|free articles)"
    r"|weiterlesen mit|nur für abonnenten|réservé aux abonnés|exclusivo para (?:assinantes|suscriptores)",
    re.I,
)
_SENTENCE_END_RE = re.compile(r"[.!?。！？…»\"”)]\s*$|[.!?。！？]\s")

# Every match of _CONSENT_TEXT_RE / _PAYWALL_TEXT_RE contains one of these phrases (after _ascii_casefold):
# testing for them first gives the same answer, much cheaper on texts without a match (under re.I, sre
# tries every alternative at every position). tests/test_extract.py checks them against the regexes.
_CONSENT_PHRASES = (
    "cookie", "consent", "gdpr", "privacy policy", "privacy settings", "privacy preferences", "privacy choices",
    "personalised ad", "personalized ad", "personalised content", "personalized content", "partners",
    "accept all", "reject all", "manage options", "manage preferences", "manage settings", "datenschutz",
    "einwilligung", "zustimmen", "alle akzeptieren", "partenaires", "tout accepter", "aceptar todo", "consenso",
    "accetta tutto", "toestemming", "legitimate interest",
)  # fmt: skip
_PAYWALL_PHRASES = (
    "continue reading", "keep reading", "to read ", "for full access", "to unlock", "to access this",
    "to see the rest", "to subscribers", "for subscribers", "to members", "for members", "to premium",
    "for premium", "already a subscriber?", "already a member?", "subscriber only", "subscribers only",
    "subscriber-only", "the rest of this", "ve reached ", "ve used ", "weiterlesen mit", "abonnenten",
    "aux abonn", "exclusivo para ",
)  # fmt: skip
# the non-ASCII letters that re.IGNORECASE matches to ASCII letters (documented in the `re` module)
_IGNORECASE_TO_ASCII = str.maketrans({"İ": "i", "ı": "i", "ſ": "s", "K": "k"})


def _ascii_casefold(text: str) -> str:
    """Lower case, and the letters re.IGNORECASE takes for an ASCII one turned into it."""
    return text.lower() if text.isascii() else text.translate(_IGNORECASE_TO_ASCII).lower()


def _has_consent_text(text: str) -> bool:
    folded = _ascii_casefold(text)
    return any(p in folded for p in _CONSENT_PHRASES) and _CONSENT_TEXT_RE.search(text) is not None


def _has_paywall_text(text: str) -> bool:
    folded = _ascii_casefold(text)
    return any(p in folded for p in _PAYWALL_PHRASES) and _PAYWALL_TEXT_RE.search(text) is not None
_PAYWALL_SHORT_WORDS = 200  # a "not free" article shorter than this is a teaser
_LONG_ARTICLE_WORDS = 1000  # ... and one this long is complete whatever prompt follows it


def _is_free(ld: _JsonLd) -> bool | None:
    for obj in (ld.article, ld.page):
        if obj is None:
            continue
        candidates = [obj.get("isAccessibleForFree")]
        parts = obj.get("hasPart")
        for part in parts if isinstance(parts, list) else [parts]:
            if isinstance(part, dict):
                candidates.append(part.get("isAccessibleForFree"))
        for value in candidates:
            if isinstance(value, bool):
                if not value:
                    return False
            elif isinstance(value, str) and value.strip().lower() in ("false", "no", "0"):
                return False
        if any(
            v is True or (isinstance(v, str) and v.strip().lower() in ("true", "yes")) for v in candidates
        ):
            return True
    return None


# a substring of every alternative of _CONSENT_TEXT_RE: a cheap test before the slow case-insensitive regex
_CONSENT_HINTS = (
    "cookie", "consent", "gdpr", "privacy", "personali", "partners", "accept", "reject", "manage", "datenschutz",
    "einwilligung", "zustimmen", "akzeptieren", "partenaires", "aceptar", "consenso", "accetta", "toestemming",
    "legitimate interest",
)  # fmt: skip


def _may_mention_consent(text: str, hints: tuple[str, ...] = _CONSENT_HINTS) -> bool:
    low = text.lower()
    return any(hint in low for hint in hints)


def _hints_in(text: str) -> tuple[str, ...]:
    """The consent hints `text` holds: a line of it holds none but these (a line's lower case is the text's
    but for a final sigma, which no hint has), so its lines are screened for these alone."""
    low = text.lower()
    return tuple(hint for hint in _CONSENT_HINTS if hint in low)


def _consent_only(text: str, text_words: int, scan: _PageScan, min_words: int) -> bool:
    """True when what the page offers is a cookie/consent notice and no article: the extracted
    text (of `text_words` words, which the caller counts anyway) is mostly consent language, or a
    consent box makes up much of the page. (A cookie banner on a page of navigation and teasers is a
    `no_article` page, not a wall.)"""
    if not scan.consent_text and not _may_mention_consent(text):
        return False
    # The cheap tests first: a banner on the page is common, and the case-insensitive regex is slow on
    # long texts (each line is screened by its hint words before the regex runs on it).
    if not scan.consent_text and not _has_consent_text(text):
        return False
    hints = _hints_in(text)
    if text_words >= min_words and not hints:
        return False  # no line mentions consent (one pass over the text instead of one per line)
    lines = [line for line in text.split("\n") if line.strip()]
    consent_words = sum(_count_words(line) for line in lines
                        if _may_mention_consent(line, hints) and _has_consent_text(line))
    other_words = text_words - consent_words
    if other_words >= min_words:
        return False
    if consent_words and consent_words >= other_words:
        return True
    banner_hits = len({m.group(0).lower() for m in _CONSENT_TEXT_RE.finditer(scan.consent_text)})
    return banner_hits >= 2 and len(scan.consent_text) >= 0.4 * scan.body_len


def _paywall_prompt_at_end(text: str) -> bool:
    tail = text.split("\n")[-3:]
    return any(_has_paywall_text(line) for line in tail)


def _status(body: str, free: bool | None, scan: _PageScan, min_words: int) -> tuple[str, str]:
    """The extraction status of a page from its main text, and the text (a subscription prompt
    trailing a complete article is cut off)."""
    dom_prompt = bool(scan.paywall_text) and _has_paywall_text(scan.paywall_text)
    if not body:
        if _consent_only("", 0, scan, min_words):
            return "consent_wall", body
        if free is False or dom_prompt:
            return "paywalled", body
        return "no_article", body
    words = _count_words(body)
    if _consent_only(body, words, scan, min_words):
        return "consent_wall", body
    if _paywall_prompt_at_end(body):
        if words < _LONG_ARTICLE_WORDS or free is False:
            return "paywalled", body
        # a complete article followed by a leaked subscription box
        lines = body.split("\n")
        while lines and _has_paywall_text(lines[-1]):
            lines.pop()
        body = "\n".join(lines)
        words = _count_words(body)
    if free is False and (words < _PAYWALL_SHORT_WORDS or (dom_prompt and words < _LONG_ARTICLE_WORDS)):
        return "paywalled", body
    if _looks_like_boilerplate(body, scan):
        return "no_article", body
    if words < min_words:
        return "too_short", body
    return "ok", body


def _looks_like_boilerplate(text: str, scan: _PageScan) -> bool:
    """Text made of link labels and fragments (navigation, footer, teaser lists): not an article."""
    lines = [(line, _count_words(line)) for line in text.split("\n") if line.strip()]
    if not lines:
        return True
    total = sum(words for _, words in lines) or 1
    prose = [
        (line, words)
        for line, words in lines
        if words >= 25 or (words >= 10 and _SENTENCE_END_RE.search(line))
    ]
    prose_words = sum(words for _, words in prose)
    if len(prose) >= 2 and prose_words >= 0.5 * total:
        return False  # mostly sentences: an article (the link test below is not needed)
    anchors = _anchor_texts(scan)
    # a table (results, schedule, figures) is content too, unless its cells are links
    table = [(line, words) for line, words in lines if line.startswith("|") and line.count("|") >= 3]
    if len(table) >= 3:
        linked_cells = sum(
            1
            for line, _ in table
            for cell in line.strip("| ").split(" | ")
            if cell.strip().lower() in anchors
        )
        cells = sum(len(line.strip("| ").split(" | ")) for line, _ in table)
        table_words = sum(words for _, words in table)
        if linked_cells < 0.5 * cells and prose_words + table_words >= 0.5 * total:
            return False
    linked = sum(words for line, words in lines if line.lstrip("-•*· ").strip().lower() in anchors)
    if linked >= 0.6 * total:
        return True
    prose_words = sum(words for line, words in prose if line.lstrip("-•*· ").strip().lower() not in anchors)
    if len(prose) >= 2 or prose_words >= 0.3 * total:
        return False
    # no sentences: boilerplate when it is partly links or made of labels (a list of dates or
    # figures with a few words a line is content)
    return linked >= 0.3 * total or total / len(lines) < 4


# -------------------------------------------------------------------------------------------------
# public API


def _fail(status: str, error: str | None = None, **fields: Any) -> tuple[Extracted, str]:
    return Extracted(status=status, error=error, **fields), ""


def _canonical(root: lxml.html.HtmlElement, metas: dict[str, list[str]], url: str | None) -> str | None:
    candidates = []
    for link in root.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        if "canonical" in rel and link.get("href"):
            candidates.append(link.get("href").strip())
            break
    og = _first_meta(metas, "og:url")
    if og:
        candidates.append(og)
    for href in candidates:
        resolved = urljoin(url, href) if url else href
        parts = urlsplit(resolved)
        if parts.scheme in ("http", "https") and parts.netloc:
            return resolved
    return None


def _tags(metas: dict[str, list[str]], ld: _JsonLd) -> list[str]:
    values: list[str] = list(metas.get("article:tag", ()))
    for key in ("news_keywords", "keywords", "parsely-tags", "sailthru.tags"):
        for value in metas.get(key, ()):
            values.extend(re.split(r"\s*[,;]\s*", value))
    if ld.main is not None:
        keywords = ld.main.get("keywords")
        if isinstance(keywords, str):
            values.extend(re.split(r"\s*[,;]\s*", keywords))
        elif isinstance(keywords, list):
            values.extend(t for k in keywords if isinstance(k, str) for t in re.split(r"\s*[,;]\s*", k))
    tags = []
    for value in values:
        value = _norm_space(unescape(value)).strip(" ,;#")
        if ":" in value and value.split(":", 1)[0].lower() in (
            "tag",
            "tags",
            "topic",
            "topics",
            "section",
            "category",
        ):
            value = value.split(":", 1)[1].strip()
        if value and len(value) <= 80:
            tags.append(value)
    return _dedup(tags, 50)


def _site_name(metas: dict[str, list[str]], ld: _JsonLd) -> str | None:
    name = _first_meta(metas, "og:site_name")
    if name:
        return name
    for obj in (ld.article, ld.page):
        if obj is not None:
            publisher = ld.resolve(obj.get("publisher"))
            name = _ld_text(publisher.get("name")) if isinstance(publisher, dict) else _ld_text(publisher)
            if name:
                return name
    for obj in ld.objects:
        if _types(obj) & {"website"}:
            name = _ld_text(obj.get("name"))
            if name:
                return name
    name = _first_meta(metas, "application-name")
    return name if name and not name.startswith("@") else None


def _description(metas: dict[str, list[str]], ld: _JsonLd) -> str | None:
    value = _first_meta(metas, "og:description", "description", "twitter:description", "dc.description")
    if not value and ld.main is not None:
        value = _ld_text(ld.main.get("description"))
    return value or None


def _extract(
    html: str | bytes,
    url: str | None,
    min_words: int,
    feed_published_at: datetime | None,
) -> tuple[Extracted, str]:
    """Extraction proper: (record, text found on the page whatever the status)."""
    if isinstance(html, bytes | bytearray | memoryview):
        data = bytes(html)
        kind = _sniff_binary(data)
        if kind:
            return _fail("not_html", f"not HTML: {kind} content")
        text = decode_html(data)
    elif isinstance(html, str):
        text = html
    else:
        return _fail("error", f"unsupported input type {type(html).__name__}")
    reason = _not_html_reason(text)
    if reason:
        return _fail("not_html", f"not HTML: {reason}")
    if "\x00" in text:
        text = text.replace("\x00", "")

    try:
        root, too_deep = _parse(text)
        if too_deep:
            root, too_deep = _parse(_flatten_nesting(text))
    except ValueError as err:
        return _fail("error", str(err))
    if too_deep:
        return _fail("error", "nesting too deep")

    # Element proxies stay alive while the page is processed: lxml.html otherwise runs a Python class
    # lookup each time a pass over the tree meets an element again.
    _proxies = list(root.iter())
    # metadata from the intact tree
    author_els = _author_elements(root)
    metas = _meta_index(root)
    ld = _JsonLd(root)
    site_name = _site_name(metas, ld)
    title, h1 = _title(root, metas, ld, site_name)
    published_at, published_source = _published(root, metas, ld, url, feed_published_at)
    html_lang = (
        root.get("lang")
        or root.get("{http://www.w3.org/XML/1998/namespace}lang")
        or _first_meta(metas, "content-language", "og:locale", "language", "dc.language")
    )
    record = Extracted(
        status="ok",
        title=title,
        authors=_authors(root, metas, ld, site_name, author_els),
        syndicated_from=_syndicated_from(root, ld, site_name, author_els),
        published_at=published_at,
        published_source=published_source,
        canonical_url=_canonical(root, metas, url),
        site_name=site_name,
        description=_description(metas, ld),
        tags=_tags(metas, ld),
    )
    signals = _PageScan(root)

    # main text from a pruned tree (trafilatura works on its own copy of it)
    _merge_split_bodies(root)
    _prune(signals)
    _paragraphise(root)
    raw = _plain_text_or_none(root, url) or _trafilatura_main_text(root, url)
    body = _tidy_text(unicodedata.normalize("NFC", raw), title, h1)
    record.language = _language(body or record.description or title, html_lang)

    record.status, body = _status(body, _is_free(ld), signals, min_words)
    if record.status == "ok":
        record.text = body
    return record, body


def extract_page(
    html: str | bytes,
    url: str | None = None,
    *,
    min_words: int = 40,
    feed_published_at: datetime | None = None,
) -> Extracted:
    """Main text and metadata of one page. Never raises: failures are status `error`.

    `text` is set only when the status is `ok`; other statuses may still carry the title and the
    other metadata (for the record). `feed_published_at` is the fallback publication time.
    """
    try:
        record, _ = _extract(html, url, min_words, feed_published_at)
    except RecursionError:
        return Extracted(status="error", error="nesting too deep")
    except Exception as err:  # noqa: BLE001 - one bad page must not stop a batch
        LOGGER.warning("extraction failed for %s: %s: %s", url, type(err).__name__, err)
        return Extracted(status="error", error=f"{type(err).__name__}: {err}"[:500])
    return record


def benchmark_text(html: str, url: str | None = None) -> str:
    """The main text as extraction finds it, whatever the status (for the extraction benchmark)."""
    try:
        _, text = _extract(html, url, 40, None)
    except Exception:  # noqa: BLE001
        return ""
    return text


def extracted_to_dict(e: Extracted) -> dict[str, Any]:
    """The JSON form of an extraction (the `newsingest extract` output, minus the `id`)."""
    return {
        "title": e.title,
        "text": e.text,
        "published_at": e.published_at.isoformat() if e.published_at else None,
        "published_source": e.published_source,
        "authors": list(e.authors),
        "language": e.language,
        "status": e.status,
        "canonical_url": e.canonical_url,
        "site_name": e.site_name,
        "description": e.description,
        "tags": list(e.tags),
        "syndicated_from": e.syndicated_from,
        "error": e.error,
    }


def extract_jsonl(lines: Iterable[dict]) -> Iterator[dict]:
    """`newsingest extract --jsonl`: `{"id", "html", "url"?}` in, one result dict per input out.

    A malformed line gives status `error` for its id (never an exception); the output order is the
    input order.
    """
    for line in lines:
        if not isinstance(line, dict):
            yield {
                "id": None,
                **extracted_to_dict(Extracted(status="error", error="input line is not an object")),
            }
            continue
        html = line.get("html")
        url = line.get("url") if isinstance(line.get("url"), str) else None
        if not isinstance(html, str | bytes):
            record = Extracted(status="error", error="missing or non-string 'html'")
        else:
            record = extract_page(html, url)
        yield {"id": line.get("id"), **extracted_to_dict(record)}
