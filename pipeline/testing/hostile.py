"""A hostile web on loopback: every way a publisher's server can hurt a fetcher, with the outcome we expect.

    with HostileServer() as server:
        server.url("/slow/drip")              # http://127.0.0.1:<port>/slow/drip
        server.config_yaml()                   # a newsingest config whose feeds reach every case
        server.cases()                         # Case rows: URL, expected outcome, status, error, article status
        server.requests                        # every request: host, path, headers, status, start/end, bytes

or as a process (the benchmark and manual runs use this)::

    python -m pipeline.testing.hostile --seconds 600 --log requests.jsonl --write-config hostile.yaml

Standard library only; binds 127.0.0.1 only; never connects anywhere (redirects to 169.254.169.254 or
192.0.2.1 are only *announced* in a Location header). All content is generated here.

Several listeners ("hosts", one port each) share one request log. The politeness key of a fetcher is
host:port, so each listener is a separate host to it: `main` serves most cases, `limited` answers
`429 Retry-After: 120` for one path (and must then see no further request that run), `maintenance`
answers `503` with an HTTP-date Retry-After. Tests of per-host limits start extra listeners.

The expectations in `PAGE_CASES` and `FEED_CASES` hold for the fetch settings that `config_yaml()` writes
(`REFERENCE_FETCH`: 3 s deadline, 10 MB body cap, 20 MB decompressed cap, 5 redirects, 2 retries).
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

__all__ = ["FEED_CASES", "PAGE_CASES", "REFERENCE_FETCH", "Case", "HostileServer", "RequestRecord", "politeness"]

USER_AGENT = "newsingest-hostile-check/1.0 (+https://newsingest.invalid/bot; loopback tests)"

# The fetch settings the expectations below are written for (config_yaml writes them).
REFERENCE_FETCH: dict[str, Any] = {
    "user_agent": USER_AGENT,
    "min_delay_s": 0.05,
    "per_host_concurrency": 2,
    "connect_timeout_s": 2,
    "read_timeout_s": 2,
    "deadline_s": 3,
    "max_body_bytes": 10 * 1024 * 1024,
    "max_decompressed_bytes": 20 * 1024 * 1024,
    "max_feed_bytes": 16 * 1024 * 1024,
    "max_redirects": 5,
    "max_retries": 2,
    "backoff_base_s": 0.1,
    "backoff_max_s": 0.5,
    "max_retry_after_s": 5,
    "allow_private": ["127.0.0.1"],
}

BIG_PAGE_BYTES = 12 * 1024 * 1024
BOMB_INFLATED_BYTES = 256 * 1024 * 1024
DEEP_LEVELS = 50_000
HUGE_FEED_ITEMS = 20_000


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile endpoint and what a good fetcher records for it (under REFERENCE_FETCH)."""

    name: str
    path: str
    kind: str  # page | feed
    group: str  # control | slow | size | redirect | status | content-type | charset | html | robots | feed
    outcome: str  # expected fetch_log outcome
    http_status: int | None = None  # expected fetch_log http_status (None: no response)
    error: str | None = None  # regular expression the fetch_log error must match (case-insensitive)
    article: str | None = None  # expected articles.extraction_status, or "pending" (kept for a retry)
    host: str = "main"  # which listener serves it
    max_requests: int | None = None  # requests the server may see for this path in one run
    note: str = ""


PAGE_CASES: tuple[Case, ...] = (
    Case("good", "/article/harbour-ferry", "page", "control", "ok", 200, None, "ok", max_requests=1,
         note="a plain article: fetched, extracted, stored"),
    Case("tracking-params", "/article/pier-repairs?utm_source=rss&utm_medium=feed", "page", "control", "ok", 200,
         None, "ok", note="stored under its canonical URL (tracking parameters stripped)"),
    Case("slow-drip", "/slow/drip", "page", "slow", "timeout", 200, r"within 3 s", "pending", max_requests=1,
         note="one byte every half second, forever: only a total deadline stops it (a read timeout never fires)"),
    Case("slow-headers", "/slow/headers", "page", "slow", "timeout", None, r"timeout|within", "pending",
         max_requests=1, note="the connection opens but no status line comes for two minutes"),
    Case("endless", "/size/endless", "page", "size", "too_large", 200, r"exceeds the 10485760-byte limit",
         "fetch_failed", max_requests=1, note="a body that never ends, at full speed: cut at the byte cap"),
    Case("big-page", "/size/big-page", "page", "size", "too_large", 200, r"Content-Length \d+ exceeds",
         "fetch_failed", max_requests=1, note="a 12 MB page announced by Content-Length: refused before reading"),
    Case("big-page-unannounced", "/size/big-page-streamed", "page", "size", "too_large", 200,
         r"exceeds the 10485760-byte limit", "fetch_failed", max_requests=1,
         note="the same 12 MB without Content-Length: cut while streaming"),
    Case("gzip-bomb", "/size/gzip-bomb", "page", "size", "too_large", 200, r"decompressed body exceeds",
         "fetch_failed", max_requests=1, note="256 KB of gzip that inflates to 256 MB"),
    Case("deflate-bomb", "/size/deflate-bomb", "page", "size", "too_large", 200, r"decompressed body exceeds",
         "fetch_failed", max_requests=1, note="the same bomb as Content-Encoding: deflate"),
    Case("truncated", "/size/truncated", "page", "size", "error", 200, r"incomplete body", "pending",
         note="Content-Length 100000, then 100 bytes and the connection closes"),
    Case("redirect-loop", "/redirect/loop", "page", "redirect", "http_error", 302, r"too many redirects", "pending",
         max_requests=6, note="A -> B -> A ...: stopped after 5 hops"),
    Case("redirect-chain-20", "/redirect/chain/20", "page", "redirect", "http_error", 302, r"too many redirects",
         "pending", max_requests=6, note="a 20-hop chain: stopped after 5 hops"),
    Case("redirect-chain-3", "/redirect/chain/3", "page", "redirect", "ok", 200, None, "ok", max_requests=4,
         note="a 3-hop chain ends at an article"),
    Case("redirect-relative", "/redirect/relative", "page", "redirect", "ok", 200, None, "ok", max_requests=2,
         note="a relative Location is resolved against the request URL"),
    Case("redirect-metadata", "/redirect/metadata", "page", "redirect", "blocked", 302, r"169\.254\.169\.254",
         "fetch_failed", max_requests=1, note="302 to the cloud metadata address: never followed"),
    Case("redirect-metadata-decimal", "/redirect/metadata-decimal", "page", "redirect", "blocked", 302,
         r"169\.254\.169\.254", "fetch_failed", max_requests=1,
         note="302 to http://2852039166/ (169.254.169.254 as one number): resolved, then refused"),
    Case("redirect-testnet", "/redirect/testnet", "page", "redirect", "blocked", 302, r"192\.0\.2\.1",
         "fetch_failed", max_requests=1, note="302 to 192.0.2.1 (a reserved, non-public address)"),
    Case("redirect-private", "/redirect/private", "page", "redirect", "blocked", 302, r"10\.0\.0\.1",
         "fetch_failed", max_requests=1, note="302 to 10.0.0.1 (an intranet address)"),
    Case("redirect-ipv6-loopback", "/redirect/ipv6-loopback", "page", "redirect", "blocked", 302, r"::1",
         "fetch_failed", max_requests=1, note="302 to [::1] (loopback, not on the allow-list)"),
    Case("redirect-file", "/redirect/file", "page", "redirect", "blocked", 302, r"scheme 'file'",
         "fetch_failed", max_requests=1, note="302 to file:///etc/passwd"),
    Case("status-404", "/status/404", "page", "status", "http_error", 404, r"HTTP 404", "pending", max_requests=1,
         note="kept and retried on a later run, with backoff"),
    Case("status-410", "/status/410", "page", "status", "http_error", 410, r"HTTP 410", "fetch_failed",
         max_requests=1, note="Gone: stored with the feed's title and summary, never requested again"),
    Case("status-500", "/status/500", "page", "status", "http_error", 500, r"HTTP 500", "pending", max_requests=3,
         note="retried twice in the run with backoff, then on a later run"),
    Case("status-429", "/status/429", "page", "status", "http_error", 429, r"HTTP 429", "pending", host="limited",
         max_requests=1, note="Retry-After: 120 defers the whole host to a run at least 120 s later"),
    Case("limited-victim", "/article/limited-victim", "page", "status", "deferred", None, r"asked us to wait",
         "pending", host="limited", max_requests=0, note="same host as the 429: not requested in that run"),
    Case("status-503", "/status/503", "page", "status", "http_error", 503, r"HTTP 503", "pending",
         host="maintenance", max_requests=1, note="Retry-After as an HTTP-date 300 s ahead: host deferred"),
    Case("maintenance-victim", "/article/maintenance-victim", "page", "status", "deferred", None,
         r"asked us to wait", "pending", host="maintenance", max_requests=0,
         note="same host as the 503: not requested in that run"),
    Case("empty-200", "/status/empty-200", "page", "status", "bad_content", 200, r"empty body", "no_article",
         max_requests=1, note="200 with an empty body: recorded, no blank article stored"),
    Case("pdf", "/type/pdf", "page", "content-type", "bad_content", 200, r"application/pdf", "not_html",
         note="a PDF labelled application/pdf"),
    Case("png", "/type/png", "page", "content-type", "bad_content", 200, r"image/png", "not_html",
         note="a PNG labelled image/png"),
    Case("pdf-as-html", "/type/pdf-as-html", "page", "content-type", "bad_content", 200, r"magic bytes.*text/html",
         "not_html", note="PDF bytes labelled text/html: the magic bytes win"),
    Case("html-as-octet-stream", "/type/html-as-octet-stream", "page", "content-type", "ok", 200, None, "ok",
         note="an article labelled application/octet-stream: sniffed as HTML"),
    Case("cp1251-declared-utf8", "/charset/cp1251-declared-utf8", "page", "charset", "ok", 200, None, "ok",
         note="cp1251 bytes, header says UTF-8: decoded as cp1251, charset_mismatch flagged"),
    Case("cp1251-undeclared", "/charset/cp1251-undeclared", "page", "charset", "ok", 200, None, "ok",
         note="cp1251 bytes, no charset anywhere: detected"),
    Case("koi8r-meta-only", "/charset/koi8r-meta-only", "page", "charset", "ok", 200, None, "ok",
         note="KOI8-R declared only in <meta>"),
    Case("utf8-declared-cp1251", "/charset/utf8-declared-cp1251", "page", "charset", "ok", 200, None, "ok",
         note="UTF-8 bytes, header says windows-1251: decoded as UTF-8, charset_mismatch flagged"),
    Case("no-article", "/html/no-article", "page", "html", "ok", 200, None, "no_article",
         note="navigation, a cookie banner and a footer: recorded as no article, no text stored"),
    Case("deep-nest", "/html/deep-nest", "page", "html", "ok", 200, None, "too_short",
         note="50,000 nested <div>: no crash, bounded time; the one sentence at the bottom is too short"),
    Case("nul-bytes", "/html/nul-bytes", "page", "html", "ok", 200, None, "ok",
         note="NUL bytes inside the HTML: stripped before anything else sees them"),
    Case("invalid-utf8", "/html/invalid-utf8", "page", "html", "ok", 200, None, "ok",
         note="declared UTF-8 with broken sequences: decoded with replacement characters"),
    Case("robots-disallowed", "/private/members-only", "page", "robots", "robots_disallowed", None,
         r"robots\.txt", "fetch_failed", max_requests=0, note="disallowed by robots.txt: never requested"),
)

FEED_CASES: tuple[Case, ...] = (
    Case("index", "/feed.xml", "feed", "feed", "ok", 200, note="one item per page case (ETag and Last-Modified)"),
    Case("changing", "/feed/changing.xml", "feed", "feed", "ok", 200,
         note="a new version every period (ETag + Last-Modified), 304 when unchanged; a live item edited in place"),
    Case("volatile", "/feed/volatile.xml", "feed", "feed", "ok", 200,
         note="a new ETag on every request, the same items: nothing new is stored"),
    Case("dupes", "/feed/dupes.xml", "feed", "feed", "ok", 200,
         note="duplicate GUIDs and links in one feed: one item per story, duplicates counted"),
    Case("bad-links", "/feed/bad-links.xml", "feed", "feed", "ok", 200,
         note="missing, relative, protocol-relative, javascript:, file:, data:, mailto:, ftp: and non-public links"),
    Case("html-instead", "/feed/html-instead.xml", "feed", "feed", "bad_content", 200, r"not a feed",
         note="the feed URL answers with an HTML page"),
    Case("huge", "/feed/huge.xml", "feed", "feed", "ok", 200,
         note=f"{HUGE_FEED_ITEMS:,} items (~8 MB): parsed within limits; items beyond max_items not taken"),
    Case("jsonfeed", "/feed/feed.json", "feed", "feed", "ok", 200, note="JSON Feed 1.1"),
    Case("news-sitemap", "/feed/news-sitemap.xml", "feed", "feed", "ok", 200, note="a news sitemap"),
    Case("koi8r-undeclared", "/feed/koi8r.xml", "feed", "feed", "ok", 200,
         note="an RSS feed in KOI8-R with no declaration anywhere"),
    Case("gzip-encoded", "/feed/gzip.xml", "feed", "feed", "ok", 200, note="Content-Encoding: gzip"),
    Case("nul-feed", "/feed/nul.xml", "feed", "feed", "ok", 200, note="NUL bytes inside the XML"),
    Case("deep-feed", "/feed/deep.xml", "feed", "feed", "ok", 200,
         note="50,000-deep nesting inside an item: parsed without a crash"),
    Case("feed-404", "/feed/missing.xml", "feed", "feed", "http_error", 404, r"HTTP 404"),
    Case("feed-slow", "/feed/slow.xml", "feed", "feed", "timeout", 200, r"within 3 s",
         note="a feed that drips one byte at a time"),
    Case("limited-feed", "/feed/limited.xml", "feed", "feed", "ok", 200, host="limited",
         note="the rate-limited host's own feed (politeness override: 1 s between requests)"),
    Case("maintenance-feed", "/feed/maintenance.xml", "feed", "feed", "ok", 200, host="maintenance",
         note="the host in maintenance's own feed (1 s between requests)"),
)

# Links of /feed/bad-links.xml that must never become a request: (link as written, why).
REJECTED_LINKS: tuple[tuple[str | None, str], ...] = (
    (None, "item has no link"),
    ("", "item has no link"),
    ("javascript:void(window.open('/x'))", "javascript"),
    ("file:///etc/shadow", "file"),
    ("data:text/html;base64,PGgxPmhpPC9oMT4=", "data"),
    ("mailto:desk@newsroom.invalid", "mailto"),
    ("ftp://127.0.0.1/pub/story.txt", "ftp"),
)


# ------------------------------------------------------------------------------------------ content

_PLACES = ("Norhavn", "Eastbridge", "Calder Point", "Mirefield", "Saltmoor", "Kestrel Bay", "Ashcombe", "Dunmere")
_SUBJECTS = ("The harbour authority", "The regional transport board", "A spokesperson for the ferry operator",
             "The town council", "Engineers from the port company", "The coastguard", "Local fishermen",
             "The chamber of commerce")
_VERBS = ("confirmed", "announced", "said", "warned", "reported", "estimated")
_DAYS = ("on Monday", "on Tuesday", "on Wednesday", "on Thursday", "late on Friday", "over the weekend")
_CLAUSES = (
    "that the new timetable would add two crossings a day from the spring",
    "that repairs to the northern pier were running ahead of schedule",
    "that the old passenger terminal would close for three months of renovation",
    "that winter storms had damaged two mooring buoys near the breakwater",
    "that freight volumes had grown by a tenth compared with the previous year",
    "that a second vessel would be chartered while the main ferry is in dry dock",
    "that ticket prices for residents would stay unchanged until the end of the year",
    "that dredging of the inner channel was expected to finish before the summer season",
    "that a public consultation on the waterfront plan would open next month",
    "that the night service would be suspended during the inspection of the ramps",
)
_AFTER = ("Residents who rely on the crossing welcomed the news.",
          "Shop owners near the quay said the works had already cost them customers.",
          "The operator apologised for the disruption and promised regular updates.",
          "Officials said the budget for the project had not changed.",
          "Campaigners asked for more cycle parking at the terminal.",
          "The decision follows months of complaints about delays.")


def article_text(slug: str, paragraphs: int = 6) -> list[str]:
    """Deterministic, distinct English paragraphs for an article slug (~250 words)."""
    rng = random.Random(f"newsingest-hostile:{slug}")
    place = rng.choice(_PLACES)
    out = []
    for _ in range(paragraphs):
        sentences = [f"{rng.choice(_SUBJECTS)} in {place} {rng.choice(_VERBS)} {rng.choice(_DAYS)} "
                     f"{rng.choice(_CLAUSES)}." for _ in range(2)]
        sentences.append(rng.choice(_AFTER))
        out.append(" ".join(sentences))
    return out


def html_page(title: str, paragraphs: list[str], *, charset: str | None = "utf-8", lang: str = "en") -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    body = "".join(f"<p>{_esc(p)}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="{lang}"><head>{meta}<title>{_esc(title)}</title></head><body>'
            '<header><nav><a href="/">Front page</a> <a href="/world">World</a></nav></header>'
            f"<main><article><h1>{_esc(title)}</h1>{body}</article></main>"
            "<footer>Coastal Courier, a made-up newspaper for tests</footer></body></html>")


def article_html(slug: str) -> str:
    title = slug.replace("-", " ").strip().capitalize() or "Article"
    return html_page(f"{title}: news from the coast", article_text(slug))


RU_PARAS = ("Городской совет Северска сообщил во вторник, что новый паром начнёт курсировать весной. "
            "Жители прибрежных районов ждали этого решения несколько лет.",
            "По словам инженеров, ремонт северного причала идёт быстрее графика, а старый вокзал закроют "
            "на три месяца. Владельцы магазинов у пристани жалуются на потерю покупателей.",
            "Перевозчик извинился за неудобства и обещал регулярно сообщать о ходе работ. Бюджет проекта, "
            "по данным чиновников, не изменился.")
UK_PARAS = ("Міська рада Березня повідомила у вівторок, що нова поромна переправа запрацює навесні. "
            "Мешканці прибережних кварталів давно чекали на це рішення.",
            "Інженери кажуть, що ремонт північного причалу випереджає графік, а старий вокзал закриють на три "
            "місяці. Власники крамниць біля пристані скаржаться на втрату покупців.",
            "Перевізник перепросив за незручності та пообіцяв регулярно звітувати про хід робіт. Кошторис "
            "проєкту, за словами посадовців, не змінився.")


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def minimal_pdf() -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] >>"]
    out = [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"]
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(sum(map(len, out)))
        out.append(b"%d 0 obj\n" % n + obj + b"\nendobj\n")
    xref = sum(map(len, out))
    out.append(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out += [b"%010d 00000 n \n" % off for off in offsets]
    out.append(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return b"".join(out)


def tiny_png(width: int = 4, height: int = 4) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def rss(title: str, link: str, items: list[dict[str, str | None]], *, encoding: str | None = "utf-8") -> str:
    decl = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else '<?xml version="1.0"?>'
    parts = [f"{decl}\n<rss version=\"2.0\"><channel><title>{_esc(title)}</title><link>{_esc(link)}</link>"
             "<description>hostile test feed</description>"]
    for item in items:
        parts.append("<item>")
        for key in ("title", "link", "guid", "description", "pubDate"):
            value = item.get(key)
            if value is None:
                continue
            attr = ' isPermaLink="false"' if key == "guid" else ""
            parts.append(f"<{key}{attr}>{_esc(value)}</{key}>")
        parts.append(item.get("raw") or "")
        parts.append("</item>")
    parts.append("</channel></rss>\n")
    return "".join(parts)


def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


class _Lazy:
    """Big bodies are built once, on first use, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, bytes] = {}

    def get(self, key: str, build) -> bytes:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]


def bomb(container: str, inflated: int = BOMB_INFLATED_BYTES) -> bytes:
    """A compression bomb (`gzip` or `zlib` container) that inflates to `inflated` bytes of HTML-ish spaces.

    Built in milliseconds: after a full flush, deflate compresses each identical 1 MiB block to identical
    bytes, so one block is compressed and repeated; the checksum is computed incrementally."""
    block = b" " * (1 << 20)
    head = b"<!DOCTYPE html><html><body><p>"
    blocks = max(2, inflated >> 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = co.compress(head + block) + co.flush(zlib.Z_FULL_FLUSH)
    repeat = co.compress(block) + co.flush(zlib.Z_FULL_FLUSH)
    raw = first + repeat * (blocks - 1) + co.flush()
    size = len(head) + blocks * len(block)
    if container == "gzip":
        crc = zlib.crc32(head)
        for _ in range(blocks):
            crc = zlib.crc32(block, crc)
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + struct.pack("<II", crc, size & 0xFFFFFFFF)
    adler = zlib.adler32(head)
    for _ in range(blocks):
        adler = zlib.adler32(block, adler)
    return b"\x78\xda" + raw + struct.pack(">I", adler)


def _big_page() -> bytes:
    para = ("<p>" + " ".join(article_text("big-page", 1)) + "</p>\n").encode()
    return (b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>A very long page</title></head><body><article>'
            + para * (BIG_PAGE_BYTES // len(para) + 1) + b"</article></body></html>")


def _deep_nest() -> bytes:
    return (b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Deep</title></head><body>'
            + b"<div>" * DEEP_LEVELS + b"<p>At the bottom of the well there is one short sentence.</p>"
            + b"</div>" * DEEP_LEVELS + b"</body></html>")


# ------------------------------------------------------------------------------------------ the log


@dataclass(slots=True)
class RequestRecord:
    host: str  # listener label
    port: int
    method: str
    path: str
    user_agent: str | None
    if_none_match: str | None
    if_modified_since: str | None
    accept_encoding: str | None
    started: float  # time.time() when the request line was read
    status: int | None = None
    finished: float | None = None
    bytes_sent: int = 0
    client_gone: bool = False  # the client closed the connection before we finished
    last_alive: float | None = None  # when a waiting handler last saw the client's connection still open

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def politeness(records: list[RequestRecord] | list[dict[str, Any]], window_s: float = 1.0) -> dict[str, dict[str, Any]]:
    """Per host, as the server saw it: requests, requests per second, the smallest gap between two request
    arrivals, the most arrivals within any `window_s` (robust to the jitter a new TCP connection adds to
    one arrival), and the most requests in flight at once. A request the client hung up on counts as in
    flight until the handler last saw the connection open: the server only notices a hang-up at its next
    poll, which a busy machine can delay well past the moment the client left."""
    rows = [r.to_json() if isinstance(r, RequestRecord) else r for r in records]
    out: dict[str, dict[str, Any]] = {}
    by_host: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_host.setdefault(f"{r['host']} (:{r['port']})", []).append(r)
    for host, reqs in sorted(by_host.items()):
        reqs.sort(key=lambda r: r["started"])
        starts = [r["started"] for r in reqs]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
        ends = [(r.get("last_alive") if r.get("client_gone") and r.get("last_alive") else r["finished"])
                or r["started"] for r in reqs]
        events = sorted([(r["started"], 1) for r in reqs] + [(end, -1) for end in ends], key=lambda e: (e[0], e[1]))
        in_flight = peak = 0
        for _, delta in events:
            in_flight += delta
            peak = max(peak, in_flight)
        in_window, j = 0, 0
        for i, t in enumerate(starts):
            while starts[j] <= t - window_s:
                j += 1
            in_window = max(in_window, i - j + 1)
        out[host] = {
            "requests": len(reqs),
            "span_s": round(span, 3),
            "requests_per_s": round((len(reqs) - 1) / span, 2) if span > 0 else None,
            "min_gap_s": round(min(gaps), 3) if gaps else None,
            "max_in_window": in_window,
            "max_in_flight": peak,
            "user_agents": sorted({r["user_agent"] or "" for r in reqs}),
        }
    return out


# ------------------------------------------------------------------------------------------ server


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, owner: HostileServer, label: str, port: int) -> None:
        self.owner = owner
        self.label = label
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up on a hostile endpoint is the expected ending, not a server error.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class HostileServer:
    """Hostile endpoints on one or more loopback ports, in daemon threads. A context manager."""

    def __init__(self, hosts: tuple[str, ...] = ("main", "limited", "maintenance"), *, ports: dict[str, int] | None = None,
                 feed_period_s: float = 0.0, crawl_delay_s: float | None = None, drip_interval_s: float = 0.5,
                 retry_after_429: str = "120", retry_after_503_s: float = 300.0,
                 log: TextIO | None = None) -> None:
        self.feed_period_s = feed_period_s  # 0: /feed/changing.xml changes only on bump_feed()
        self.crawl_delay_s = crawl_delay_s
        self.drip_interval_s = drip_interval_s
        self.retry_after_429 = retry_after_429
        self.retry_after_503_s = retry_after_503_s
        self.requests: list[RequestRecord] = []
        self.started_at = time.time()
        self._log = log
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lazy = _Lazy()
        self._feed_version = 1
        self._feed_changed_at = int(self.started_at)
        self._volatile = 0
        self._listeners: dict[str, _Listener] = {}
        self._threads: list[threading.Thread] = []
        for label in hosts:
            listener = _Listener(self, label, (ports or {}).get(label, 0))
            self._listeners[label] = listener
            thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.1},
                                      name=f"hostile-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.base_urls = {label: f"http://127.0.0.1:{lst.server_address[1]}" for label, lst in self._listeners.items()}
        self._write_log({"event": "start", "hosts": self.base_urls})

    # ---- lifecycle

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()  # wakes slow handlers
        for listener in self._listeners.values():
            listener.shutdown()
            listener.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._write_log({"event": "stop"})

    def warm(self) -> None:
        """Build the big bodies now (a benchmark should not time our gzip)."""
        self._lazy.get("gzip-bomb", lambda: bomb("gzip"))
        self._lazy.get("deflate-bomb", lambda: bomb("zlib"))
        self._lazy.get("big-page", _big_page)
        self._lazy.get("huge-feed", lambda: self._huge_feed(self.base_urls["main"]))

    # ---- helpers for tests

    def url(self, path: str, host: str = "main") -> str:
        return self.base_urls[host] + path

    def cases(self) -> list[tuple[str, Case]]:
        """(URL, case) for every page and feed case this server's listeners can serve."""
        return [(self.url(c.path, c.host), c) for c in PAGE_CASES + FEED_CASES if c.host in self.base_urls]

    def requests_for(self, path: str, host: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.path == path and (host is None or r.host == host)]

    def bump_feed(self) -> int:
        """Publish a new version of /feed/changing.xml."""
        with self._lock:
            self._feed_version += 1
            self._feed_changed_at = max(int(time.time()), self._feed_changed_at + 1)
            return self._feed_version

    def config_yaml(self, *, extra_fetch: dict[str, Any] | None = None, huge_max_items: int = 20) -> str:
        """A newsingest config: every feed case as a feed, REFERENCE_FETCH as the fetch settings."""
        import yaml  # only the config writer needs it (the server itself is standard library)

        feeds = []
        for url, case in self.cases():
            if case.kind != "feed":
                continue
            feed: dict[str, Any] = {"name": f"hostile-{case.name}", "url": url}
            if case.name == "huge":
                feed["max_items"] = huge_max_items
            if case.name in ("limited-feed", "maintenance-feed"):
                feed["min_delay_s"] = 1.0  # per-host override: keeps the deferral case deterministic
            if case.name == "news-sitemap":
                feed["kind"] = "sitemap"
            feeds.append(feed)
        fetch = {**REFERENCE_FETCH, **(extra_fetch or {})}
        return yaml.safe_dump({"feeds": feeds, "fetch": fetch}, sort_keys=False, allow_unicode=True)

    def cases_json(self) -> list[dict[str, Any]]:
        return [{"url": url, **asdict(case)} for url, case in self.cases()]

    # ---- log

    def _record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests.append(rec)
        self._write_log({"event": "request", **rec.to_json()})

    def _finish(self, rec: RequestRecord) -> None:
        self._write_log({"event": "done", **rec.to_json()})

    def _write_log(self, obj: dict[str, Any]) -> None:
        if self._log is None:
            return
        obj.setdefault("t", round(time.time(), 4))
        line = json.dumps(obj, ensure_ascii=False)
        with self._lock:
            self._log.write(line + "\n")
            self._log.flush()

    # ---- feeds

    def _changing(self) -> tuple[int, int]:
        with self._lock:
            now = time.time()
            if self.feed_period_s > 0 and now - self._feed_changed_at >= self.feed_period_s:
                self._feed_version += 1
                self._feed_changed_at = int(now)
            return self._feed_version, self._feed_changed_at

    def _changing_feed(self, base: str, version: int, changed_at: int) -> bytes:
        items = []
        for k in range(version, max(0, version - 8), -1):  # the 8 newest stories, newest first
            items.append({"title": f"Ferry update number {k}", "link": f"{base}/article/changing-{k}",
                          "guid": f"changing-{k}", "description": f"Story {k}, first published in version {k}.",
                          "pubDate": _http_date(self.started_at + k)})
        items.insert(0, {"title": f"Live: storm over the harbour (update {version})", "link": f"{base}/article/live-storm",
                         "guid": "changing-live", "description": f"Edited in version {version}.",
                         "pubDate": _http_date(changed_at)})
        return rss(f"Changing feed, version {version}", base, items).encode()

    def _huge_feed(self, base: str) -> bytes:
        filler = "The harbour master reported calm water and no delays. " * 3
        items = [{"title": f"Routine harbour bulletin {i}", "link": f"{base}/article/bulletin-{i}",
                  "guid": f"bulletin-{i}", "description": filler,
                  "pubDate": _http_date(self.started_at - 60 * i)} for i in range(HUGE_FEED_ITEMS)]
        return rss("Twenty thousand bulletins", base, items).encode()

    def index_items(self) -> list[dict[str, str | None]]:
        return [{"title": f"[{c.group}] {c.name}", "link": self.url(c.path, c.host), "guid": f"case:{c.name}",
                 "description": f"Expected: {c.outcome}. {c.note}", "pubDate": _http_date(self.started_at - 60 * n)}
                for n, c in enumerate(PAGE_CASES) if c.host in self.base_urls]


class _Handler(BaseHTTPRequestHandler):
    server: _Listener
    protocol_version = "HTTP/1.1"
    server_version = "HostileNews/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - our log is the JSONL one
        pass

    # ---- plumbing

    @property
    def owner(self) -> HostileServer:
        return self.server.owner

    def _start(self, status: int | None) -> RequestRecord:
        h = self.headers
        rec = RequestRecord(host=self.server.label, port=self.server.server_address[1], method=self.command,
                            path=self.path, user_agent=h.get("User-Agent"), if_none_match=h.get("If-None-Match"),
                            if_modified_since=h.get("If-Modified-Since"), accept_encoding=h.get("Accept-Encoding"),
                            started=getattr(self, "_arrived", None) or time.time(), status=status)
        self.owner._record(rec)
        return rec

    def _end(self, rec: RequestRecord) -> None:
        rec.finished = time.time()
        self.owner._finish(rec)

    def send(self, status: int, body: bytes = b"", ctype: str | None = "text/html; charset=utf-8",
             headers: dict[str, str] | None = None, rec: RequestRecord | None = None) -> None:
        rec = rec or self._start(status)
        rec.status = status
        try:
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body and status != 304:
                view = memoryview(body)
                for i in range(0, len(body), 1 << 16):
                    if self.owner._stop.is_set():
                        break
                    self.wfile.write(view[i:i + (1 << 16)])
                    rec.bytes_sent += len(view[i:i + (1 << 16)])
        except OSError:
            rec.client_gone = True
            self.close_connection = True
        self._end(rec)

    def stream(self, status: int, chunks, ctype: str = "text/html; charset=utf-8",
               headers: dict[str, str] | None = None, alive: RequestRecord | None = None) -> None:
        """Headers, then chunks until they end, the client leaves or the server stops; then close."""
        rec = self._start(status)
        self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Connection", "close")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            for chunk in chunks:
                if self.owner._stop.is_set():
                    break
                self.wfile.write(chunk)
                self.wfile.flush()
                rec.bytes_sent += len(chunk)
        except OSError:
            rec.client_gone = True
        if alive is not None:
            rec.client_gone = rec.client_gone or not self.owner._stop.is_set()
            rec.last_alive = alive.last_alive
        self._end(rec)

    def _client_gone_within(self, seconds: float, rec: RequestRecord | None = None) -> bool:
        """Wait up to `seconds`; True as soon as the client closes its end (or the server stops)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.owner._stop.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                except OSError:
                    return True
            if rec is not None:
                rec.last_alive = time.time()
        return self.owner._stop.is_set()

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        self._arrived = time.time()  # the request line is in: a slow answer still counts as in flight
        try:
            self.route(urlsplit(self.path).path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- routes

    def route(self, p: str) -> None:  # noqa: C901 - one flat table of endpoints reads best
        o = self.owner
        base = o.base_urls[self.server.label]
        label = self.server.label
        if p == "/robots.txt":
            lines = ["# hostile test server", "User-agent: *", "Disallow: /private/"]
            if o.crawl_delay_s is not None:
                lines.append(f"Crawl-delay: {o.crawl_delay_s:g}")
            return self.send(200, ("\n".join(lines) + "\n").encode(), "text/plain; charset=utf-8")
        if p == "/cases.json":
            return self.send(200, json.dumps(o.cases_json(), indent=1).encode(), "application/json")
        if p == "/feed.xml" and label == "main":
            body = rss("Every hostile case", base, o.index_items()).encode()
            etag = '"index-' + hashlib.sha1(body).hexdigest()[:12] + '"'
            return self._conditional(body, etag, int(o.started_at), "application/rss+xml; charset=utf-8")

        if p == "/feed/select.xml":  # ?case=status-404&case=status-410: a feed of just those page cases
            wanted = set(parse_qs(urlsplit(self.path).query).get("case", []))
            items = [i for i, c in zip(o.index_items(), [c for c in PAGE_CASES if c.host in o.base_urls], strict=True)
                     if c.name in wanted]
            return self.send(200, rss("Selected cases", base, items).encode(), "application/rss+xml")

        m = re.fullmatch(r"/delay/(\d+)(/.*)", p)  # any endpoint, answered after a pause (politeness tests)
        if m:
            o._stop.wait(int(m.group(1)) / 1000)
            return self.route(m.group(2))

        m = re.fullmatch(r"(?:/[\w.-]+)*/article/([\w.-]+)", p)
        if m:
            return self.send(200, article_html(m.group(1)).encode())

        # slow
        if p in ("/slow/drip", "/feed/slow.xml"):
            body = article_html("drip").encode() if p == "/slow/drip" else rss("Slow", base, []).encode()
            alive = RequestRecord(label, 0, "", "", None, None, None, None, 0.0)  # carries last_alive

            def drip():
                i = 0
                while not self._client_gone_within(o.drip_interval_s, alive):
                    yield body[i % len(body):i % len(body) + 1]
                    i += 1
            ctype = "text/html; charset=utf-8" if p == "/slow/drip" else "application/rss+xml"
            return self.stream(200, drip(), ctype, headers={"Content-Length": str(10**6)}, alive=alive)
        if p == "/slow/headers":
            rec = self._start(None)
            rec.client_gone = self._client_gone_within(120.0, rec)
            if not rec.client_gone:
                return self.send(200, article_html("finally").encode(), rec=rec)
            self.close_connection = True
            return self._end(rec)

        # size
        if p == "/size/endless":
            chunk = b"<p>" + b"and on and on " * 4600 + b"</p>\n"

            def forever():
                yield b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Endless</title></head><body>'
                while True:
                    yield chunk
            return self.stream(200, forever())
        if p == "/size/big-page":
            return self.send(200, o._lazy.get("big-page", _big_page))
        if p == "/size/big-page-streamed":
            body = o._lazy.get("big-page", _big_page)
            return self.stream(200, (body[i:i + (1 << 16)] for i in range(0, len(body), 1 << 16)))
        if p == "/size/gzip-bomb":
            return self.send(200, o._lazy.get("gzip-bomb", lambda: bomb("gzip")), headers={"Content-Encoding": "gzip"})
        if p == "/size/deflate-bomb":
            return self.send(200, o._lazy.get("deflate-bomb", lambda: bomb("zlib")), headers={"Content-Encoding": "deflate"})
        if p == "/size/truncated":
            rec = self._start(200)
            self.close_connection = True
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(article_html("truncated").encode()[:100])
                rec.bytes_sent = 100
            except OSError:
                rec.client_gone = True
            return self._end(rec)

        # redirects
        port = self.server.server_address[1]
        redirects = {
            "/redirect/loop": "/redirect/loop-b", "/redirect/loop-b": "/redirect/loop",
            "/redirect/relative": "../article/relative-target",
            "/redirect/metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "/redirect/metadata-decimal": "http://2852039166/latest/meta-data/",
            "/redirect/testnet": "http://192.0.2.1/article/elsewhere",
            "/redirect/private": "http://10.0.0.1/admin",
            "/redirect/ipv6-loopback": f"http://[::1]:{port}/article/harbour-ferry",
            "/redirect/file": "file:///etc/passwd",
        }
        if p in redirects:
            return self.send(302 if p != "/redirect/relative" else 301, b"", None, headers={"Location": redirects[p]})
        m = re.fullmatch(r"/redirect/chain/(\d+)", p)
        if m:
            n = int(m.group(1))
            return self.send(302, b"", None,
                             headers={"Location": f"/redirect/chain/{n - 1}" if n > 1 else "/article/chain-end"})

        # status codes
        m = re.fullmatch(r"/status/(\d{3})", p)
        if m:
            status = int(m.group(1))
            headers = {}
            if status == 429:
                headers["Retry-After"] = o.retry_after_429
            if status == 503:
                headers["Retry-After"] = _http_date(time.time() + o.retry_after_503_s)
            page = html_page(f"Error {status}", ["This is an error page, not an article."])
            return self.send(status if 400 <= status <= 599 else 400, page.encode(), headers=headers)
        if p == "/status/empty-200":
            return self.send(200, b"")

        # content types
        if p == "/type/pdf":
            return self.send(200, minimal_pdf(), "application/pdf")
        if p == "/type/png":
            return self.send(200, tiny_png(), "image/png")
        if p == "/type/pdf-as-html":
            return self.send(200, minimal_pdf(), "text/html; charset=utf-8")
        if p == "/type/html-as-octet-stream":
            return self.send(200, article_html("octet-stream").encode(), "application/octet-stream")

        # charsets
        if p == "/charset/cp1251-declared-utf8":
            page = html_page("Новости побережья", list(RU_PARAS) + list(UK_PARAS), lang="ru")
            return self.send(200, page.encode("cp1251"), "text/html; charset=utf-8")
        if p == "/charset/cp1251-undeclared":
            page = html_page("Новини узбережжя", list(UK_PARAS) * 2, charset=None, lang="uk")
            return self.send(200, page.encode("cp1251"), "text/html")
        if p == "/charset/koi8r-meta-only":
            page = html_page("Новости порта", list(RU_PARAS) * 2, charset="koi8-r", lang="ru")
            return self.send(200, page.encode("koi8-r"), "text/html")
        if p == "/charset/utf8-declared-cp1251":
            page = html_page("Новини порту", list(UK_PARAS) * 2, charset="windows-1251", lang="uk")
            return self.send(200, page.encode("utf-8"), "text/html; charset=windows-1251")

        # html pathologies
        if p == "/html/no-article":
            body = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Subscribe</title></head><body>'
                    '<nav><a href="/">Home</a> | <a href="/w">World</a> | <a href="/s">Sport</a></nav>'
                    '<div class="cookie-banner">We use cookies to improve your experience. <button>Accept</button></div>'
                    "<footer>&copy; Coastal Courier. All rights reserved.</footer></body></html>")
            return self.send(200, body.encode())
        if p == "/html/deep-nest":
            return self.send(200, o._lazy.get("deep", _deep_nest))
        if p == "/html/nul-bytes":
            body = article_html("nul-bytes").encode().replace(b"harbour", b"har\x00bour").replace(b"<p>", b"<p>\x00", 2)
            return self.send(200, b"\x00" + body)
        if p == "/html/invalid-utf8":
            body = article_html("invalid-utf8").encode().replace(b" the ", b" \xff\xfe the \xc0\xaf ", 3)
            return self.send(200, body, "text/html; charset=utf-8")

        # feeds
        if p == "/feed/changing.xml":
            version, changed_at = o._changing()
            return self._conditional(o._changing_feed(base, version, changed_at), f'"v{version}"', changed_at,
                                     "application/rss+xml; charset=utf-8")
        if p == "/feed/volatile.xml":
            with o._lock:
                o._volatile += 1
                n = o._volatile
            items = [{"title": f"Stable story {k}", "link": f"{base}/article/stable-{k}", "guid": f"stable-{k}",
                      "pubDate": _http_date(o.started_at - 600 * k)} for k in range(4)]
            return self.send(200, rss("Volatile ETag", base, items).encode(), "application/rss+xml; charset=utf-8",
                             headers={"ETag": f'"volatile-{n}"', "Last-Modified": _http_date(time.time())})
        if p == "/feed/dupes.xml":
            items = [
                {"title": "Original", "link": f"{base}/article/dupe-1", "guid": "dupe-a"},
                {"title": "Same guid, other link", "link": f"{base}/article/dupe-2", "guid": "dupe-a"},
                {"title": "Other guid, same link", "link": f"{base}/article/dupe-1", "guid": "dupe-b"},
                {"title": "No guid, same link", "link": f"{base}/article/dupe-1"},
                {"title": "Tracking twin", "link": f"{base}/article/dupe-1?utm_source=rss", "guid": "dupe-c"},
                {"title": "A different story", "link": f"{base}/article/dupe-3", "guid": "dupe-d"},
            ]
            return self.send(200, rss("Duplicates", base, items).encode(), "application/rss+xml")
        if p == "/feed/bad-links.xml":
            host = urlsplit(base).netloc
            items: list[dict[str, str | None]] = [
                {"title": f"Rejected link {n}", "link": link, "guid": f"bad-{n}", "description": f"link is {why}"}
                for n, (link, why) in enumerate(REJECTED_LINKS)]
            items += [
                {"title": "Root-relative", "link": "/article/rel-root", "guid": "rel-root"},
                {"title": "Path-relative", "link": "article/rel-path", "guid": "rel-path"},
                {"title": "Protocol-relative", "link": f"//{host}/article/proto-rel", "guid": "proto-rel"},
                {"title": "Padded", "link": f"  \n {base}/article/padded \t", "guid": "padded"},
                {"title": "Non-public address", "link": "http://192.0.2.1/article/elsewhere", "guid": "testnet"},
                {"title": "Metadata address", "link": "http://169.254.169.254/latest/meta-data/", "guid": "metadata"},
            ]
            return self.send(200, rss("Bad links", base, items).encode(), "application/rss+xml")
        if p == "/feed/html-instead.xml":
            page = html_page("Checking your browser", ["Please enable JavaScript to continue."])
            return self.send(200, page.encode(), "text/html; charset=utf-8")
        if p == "/feed/huge.xml":
            return self.send(200, o._lazy.get("huge-feed", lambda: o._huge_feed(base)), "application/rss+xml")
        if p == "/feed/feed.json":
            doc = {"version": "https://jsonfeed.org/version/1.1", "title": "JSON coast", "home_page_url": base,
                   "items": [{"id": f"json-{k}", "url": f"/article/json-{k}", "title": f"JSON story {k}",
                              "content_text": "A story delivered as JSON Feed.",
                              "date_published": f"2026-01-0{k + 1}T08:00:00Z"} for k in range(2)]}
            return self.send(200, json.dumps(doc).encode(), "application/feed+json")
        if p == "/feed/news-sitemap.xml":
            urls = "".join(
                f"<url><loc>{base}/article/sitemap-{k}</loc><news:news><news:publication><news:name>Coastal Courier"
                f"</news:name><news:language>en</news:language></news:publication><news:publication_date>"
                f"2026-01-0{k + 1}T09:00:00Z</news:publication_date><news:title>Sitemap story {k}</news:title>"
                f"</news:news></url>" for k in range(2))
            body = ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
                    f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>')
            return self.send(200, body.encode(), "application/xml")
        if p == "/feed/koi8r.xml":
            items = [{"title": t, "link": f"{base}/article/koi8-{k}", "guid": f"koi8-{k}", "description": RU_PARAS[k]}
                     for k, t in enumerate(("Паром начнёт курсировать весной", "Ремонт причала идёт быстрее графика",
                                            "Старый вокзал закроют на три месяца"))]
            return self.send(200, rss("Новости порта", base, items, encoding=None).encode("koi8-r"), "application/rss+xml")
        if p == "/feed/gzip.xml":
            items = [{"title": f"Compressed story {k}", "link": f"{base}/article/gzip-{k}", "guid": f"gzip-{k}"}
                     for k in range(2)]
            return self.send(200, zlib.compress(rss("Gzip", base, items).encode(), wbits=31),
                             "application/rss+xml; charset=utf-8", headers={"Content-Encoding": "gzip"})
        if p == "/feed/nul.xml":
            body = rss("NUL", base, [{"title": "Story with\x00 a NUL", "link": f"{base}/article/nul-feed-1",
                                      "guid": "nul-1"}]).encode()
            return self.send(200, body.replace(b"<channel>", b"<channel>\x00"), "application/rss+xml")
        if p == "/feed/deep.xml":
            deep = "<x>" * DEEP_LEVELS + "deep" + "</x>" * DEEP_LEVELS
            items = [{"title": "Deeply nested story", "link": f"{base}/article/deep-feed-1", "guid": "deep-1",
                      "raw": f"<extra>{deep}</extra>"}]
            return self.send(200, rss("Deep", base, items).encode(), "application/rss+xml")
        if p == "/feed/limited.xml" and label == "limited":
            items = [{"title": "Rate limited", "link": f"{base}/status/429", "guid": "limited-429"},
                     {"title": "Victim", "link": f"{base}/article/limited-victim", "guid": "limited-victim"}]
            return self.send(200, rss("Limited", base, items).encode(), "application/rss+xml")
        if p == "/feed/maintenance.xml" and label == "maintenance":
            items = [{"title": "In maintenance", "link": f"{base}/status/503", "guid": "maint-503"},
                     {"title": "Victim", "link": f"{base}/article/maintenance-victim", "guid": "maint-victim"}]
            return self.send(200, rss("Maintenance", base, items).encode(), "application/rss+xml")

        return self.send(404, html_page("Not found", ["No such page."]).encode())

    def _conditional(self, body: bytes, etag: str, changed_at: int, ctype: str) -> None:
        """ETag and Last-Modified; 304 for a matching If-None-Match (or, without one, If-Modified-Since)."""
        headers = {"ETag": etag, "Last-Modified": _http_date(changed_at), "Cache-Control": "max-age=60"}
        inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        if inm is not None:
            fresh = inm.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in inm.split(",")]
        elif ims:
            try:
                fresh = email.utils.parsedate_to_datetime(ims).timestamp() >= changed_at
            except (TypeError, ValueError, IndexError):
                fresh = False
        else:
            fresh = False
        if fresh:
            return self.send(304, b"", None, headers=headers)
        return self.send(200, body, ctype, headers=headers)


# ------------------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.testing.hostile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="port of the main host (0: any free port)")
    ap.add_argument("--seconds", type=float, default=600, help="stop by itself after this long")
    ap.add_argument("--log", help="append every request as a JSON line to this file")
    ap.add_argument("--write-config", help="write a newsingest config reaching every case to this file")
    ap.add_argument("--feed-period", type=float, default=5.0, help="seconds between versions of /feed/changing.xml")
    ap.add_argument("--huge-max-items", type=int, default=20, help="max_items of the huge feed in the written config")
    args = ap.parse_args(argv)
    log = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115 - closed below
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = HostileServer(ports={"main": args.port}, feed_period_s=args.feed_period, log=log)
    try:
        server.warm()
        if args.write_config:
            Path(args.write_config).write_text(server.config_yaml(huge_max_items=args.huge_max_items), encoding="utf-8")
        print(json.dumps({"hosts": server.base_urls, "pid": os.getpid()}), flush=True)
        stop.wait(args.seconds)
    finally:
        server.stop()
        if log is not None:
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
