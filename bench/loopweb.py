"""A made-up news web for the speed benchmarks (bench/e2e.py, bench/incremental.py), served on 127.0.0.1.

Pages look like real news pages: a header with a long navigation menu, a cookie banner, ad slots, a share
bar, the article (headline, byline, time, figure, 6-14 paragraphs, an inline "read also"), a related list,
a newsletter box, a long footer, JSON-LD and Open Graph metadata, inline scripts and styles (about 50 KB of
HTML each, in one of several outlet templates). Each outlet is one host (its own port on 127.0.0.1, since
politeness is per host and port) and has RSS feeds listing its pages.

`python bench/loopweb.py serve --root DIR --ports P1,P2,...` serves the pre-generated files of DIR
(`<port>/<path>`; `.gz` variants compressed once at start-up) from one asyncio process: keep-alive,
ETag/If-None-Match (304), gzip when accepted, robots.txt allowing everything. It prints `ready` when it
listens. It is a separate process so that its CPU is not charged to the run under test.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

_WORDS = (
    "council harbour strike budget river bridge school hospital market rates drought storm festival museum "
    "railway election debate court trial ferry mayor minister union farmers prices energy grid wind solar "
    "housing rents teachers nurses police fire coast valley mountain airport port shipping exports inflation "
    "wages tourism library stadium coach season league final record rainfall harvest grain wheat fishing "
    "fleet quota report study university research ward vaccine clinic tax levy officials residents said "
    "would could after before during while because announced expected warned agreed rejected proposal plan "
    "million billion percent weeks months years district province capital northern southern eastern western "
    "government opposition spokesperson statement interview investigation committee hearing evidence lawyers "
    "contract workers company shares investors quarter profit losses growth forecast analysts central bank"
).split()
_SECTIONS = ("World", "Politics", "Business", "Markets", "Science", "Health", "Sport", "Culture", "Opinion",
             "Local", "Weather", "Technology", "Travel", "Education", "Environment", "Podcasts", "Video")


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports on 127.0.0.1 (bound and released: the server binds them right after)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _sentence(rng: random.Random, lo: int = 9, hi: int = 24) -> str:
    words = rng.choices(_WORDS, k=rng.randint(lo, hi))
    if rng.random() < 0.3:
        words.insert(rng.randint(1, len(words) - 1), f"{rng.randint(2, 980)}")
    s = " ".join(words)
    return s[0].upper() + s[1:] + "."


def _title(rng: random.Random) -> str:
    return " ".join(rng.choices(_WORDS, k=rng.randint(6, 11))).capitalize()


@dataclass(slots=True)
class PageRef:
    host: int  # index of the outlet (its port)
    path: str
    title: str
    published_at: datetime
    summary: str


@dataclass(slots=True)
class Outlet:
    index: int
    slug: str
    name: str
    template: int
    nav: list[str]
    footer: list[str]
    script: str
    style: str


def make_outlets(n: int, seed: int = 1) -> list[Outlet]:
    rng = random.Random(f"{seed}:outlets")
    out = []
    for i in range(n):
        slug = f"outlet{i:02d}"
        nav = [rng.choice(_SECTIONS) + (f" {rng.choice(_WORDS).title()}" if rng.random() < 0.5 else "")
               for _ in range(rng.randint(28, 45))]
        footer = [f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)}" for _ in range(rng.randint(40, 70))]
        # Inline scripts and styles as real pages have them (the extractor must skip them).
        script = "\n".join(f"window.__cfg{k}={{id:'{rng.getrandbits(48):x}',slot:'{rng.choice(_WORDS)}',"
                           f"sizes:[[300,250],[728,90]],lazy:{str(rng.random() < 0.5).lower()}}};"
                           for k in range(rng.randint(60, 120)))
        style = "\n".join(f".c{k}-{rng.choice(_WORDS)}{{margin:{rng.randint(0, 40)}px;padding:{rng.randint(0, 20)}px;"
                          f"color:#{rng.getrandbits(24):06x};font-size:{rng.randint(10, 22)}px}}"
                          for k in range(rng.randint(150, 260)))
        out.append(Outlet(i, slug, f"The {rng.choice(_WORDS).title()} {rng.choice(('Times', 'Post', 'Herald', 'Courier', 'Observer', 'Ledger'))}",
                          i % 4, nav, footer, script, style))
    return out


def render_page(outlet: Outlet, ref: PageRef, related: list[PageRef], rng: random.Random) -> str:
    """One article page of `outlet` (template by outlet), about 50 KB."""
    paras = [" ".join(_sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(6, 14))]
    author = f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}son"
    when = ref.published_at.isoformat(timespec="seconds")
    nav = "".join(f'<li class="nav-item"><a href="/section/{escape(s.lower().replace(" ", "-"))}">{escape(s)}</a></li>'
                  for s in outlet.nav)
    footer = "".join(f'<li><a href="/about/{k}">{escape(s)}</a></li>' for k, s in enumerate(outlet.footer))
    rel = "".join(f'<li class="related-item"><a href="{r.path}"><img src="/img/{k}.jpg" alt=""><span>{escape(r.title)}'
                  f'</span></a><time>{r.published_at:%d %b %Y}</time></li>' for k, r in enumerate(related))
    ad = '<div class="ad-slot" data-ad="{k}"><span class="ad-label">Advertisement</span><div id="gpt-{k}"></div></div>'
    body_parts = []
    for k, p in enumerate(paras):
        body_parts.append(f"<p>{escape(p)}</p>")
        if k == 2:
            body_parts.append(ad.format(k=k))
        if k == 4 and related:
            body_parts.append(f'<p class="read-also"><strong>Read also:</strong> <a href="{related[0].path}">'
                              f'{escape(related[0].title)}</a></p>')
    body = "\n".join(body_parts)
    jsonld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": ref.title,
                         "datePublished": when, "author": {"@type": "Person", "name": author},
                         "publisher": {"@type": "Organization", "name": outlet.name}})
    share = ('<div class="share"><a href="#" class="fb">Share on Facebook</a><a href="#" class="x">Share on X</a>'
             '<a href="#" class="mail">Email</a><a href="#" class="print">Print</a></div>')
    article_tag = ("article", "div", "section", "main")[outlet.template]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(ref.title)} | {escape(outlet.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="og:title" content="{escape(ref.title)}"><meta property="og:type" content="article">
<meta property="og:site_name" content="{escape(outlet.name)}">
<meta name="description" content="{escape(ref.summary)}">
<meta property="article:published_time" content="{when}"><meta name="author" content="{escape(author)}">
<link rel="canonical" href="{ref.path}">
<style>{outlet.style}</style>
<script>{outlet.script}</script>
<script type="application/ld+json">{jsonld}</script>
</head><body class="tpl-{outlet.template}">
<div id="cookie-banner" class="consent"><p>We use cookies to remember your settings, measure how our site is
used and show you relevant advertising. You can accept all cookies or choose which ones to allow.</p>
<button>Accept all</button><button>Settings</button></div>
<header class="site-header"><a class="logo" href="/">{escape(outlet.name)}</a>
<nav class="main-nav"><ul>{nav}</ul></nav>
<div class="ticker"><span>Breaking:</span> <a href="{related[-1].path if related else '/'}">{escape(related[-1].title if related else ref.title)}</a></div>
</header>
{ad.format(k="top")}
<{article_tag} class="story" id="story-main">
<div class="breadcrumbs"><a href="/">Home</a> &rsaquo; <a href="/section/news">News</a></div>
<h1 class="headline">{escape(ref.title)}</h1>
<div class="byline">By <a rel="author" href="/authors/{author.lower().replace(' ', '-')}">{escape(author)}</a>
<time datetime="{when}">{ref.published_at:%A %d %B %Y, %H:%M} UTC</time></div>
{share}
<figure><img src="/img/lead.jpg" alt="{escape(ref.title)}"><figcaption>{escape(_sentence(rng, 6, 12))} Photo: Staff</figcaption></figure>
<div class="story-body">
{body}
</div>
{share}
<div class="tags">Topics: <a href="/tag/a">{escape(rng.choice(_SECTIONS))}</a> <a href="/tag/b">{escape(rng.choice(_SECTIONS))}</a></div>
</{article_tag}>
<aside class="newsletter"><h3>Get the morning briefing</h3><p>Sign up for our newsletter and get the day's top
stories in your inbox every morning.</p><form><input type="email" placeholder="Email"><button>Subscribe</button></form></aside>
<aside class="related"><h3>Related stories</h3><ul>{rel}</ul></aside>
<section class="comments"><h3>Comments</h3><p>Comments are closed for this article.</p></section>
{ad.format(k="bottom")}
<footer class="site-footer"><ul>{footer}</ul><p>&copy; 2026 {escape(outlet.name)}. All rights reserved.
Reproduction without permission is prohibited.</p></footer>
<script>document.querySelectorAll('.ad-slot').forEach(function(e){{e.dataset.ready='1'}});</script>
</body></html>
"""


def rss(outlet: Outlet, base: str, feed_name: str, items: list[PageRef]) -> str:
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{escape(outlet.name)} - '
             f"{escape(feed_name)}</title><link>{base}/</link><description>{escape(outlet.name)}</description>"]
    for it in items:
        parts.append(f"<item><title>{escape(it.title)}</title><link>{base}{it.path}</link><guid>{base}{it.path}</guid>"
                     f"<pubDate>{format_datetime(it.published_at)}</pubDate>"
                     f"<description>{escape(it.summary)}</description></item>")
    parts.append("</channel></rss>\n")
    return "".join(parts)


def page_refs(outlets: list[Outlet], n: int, now: datetime, seed: int, prefix: str = "news",
              span_s: float = 86400.0) -> list[PageRef]:
    """`n` pages spread round-robin over the outlets, published in the `span_s` before `now`."""
    rng = random.Random(f"{seed}:{prefix}:refs")
    refs = []
    for k in range(n):
        o = outlets[k % len(outlets)]
        title = _title(rng)
        slug = "-".join(title.lower().split()[:7])
        when = (now - timedelta(seconds=rng.uniform(0, span_s))).replace(microsecond=0)
        refs.append(PageRef(o.index, f"/{prefix}/{when:%Y/%m/%d}/{slug}-{k}.html", title, when,
                            " ".join(_sentence(rng) for _ in range(2))))
    return refs


def write_pages(root: Path, ports: list[int], outlets: list[Outlet], refs: list[PageRef], seed: int) -> int:
    """Render each page to `root/<port>/<path>`. Returns the bytes written."""
    rng = random.Random(f"{seed}:render")
    by_host: dict[int, list[PageRef]] = {}
    for r in refs:
        by_host.setdefault(r.host, []).append(r)
    total = 0
    for r in refs:
        siblings = by_host[r.host]
        related = rng.sample(siblings, min(10, len(siblings)))
        html = render_page(outlets[r.host], r, related, rng).encode("utf-8")
        path = root / str(ports[r.host]) / r.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(html)
        total += len(html)
    return total


def write_feeds(root: Path, ports: list[int], outlets: list[Outlet], refs: list[PageRef], feeds_per_host: int,
                extra: dict[int, list[PageRef]] | None = None) -> list[dict[str, str]]:
    """RSS feeds (newest first) splitting each outlet's pages over `feeds_per_host` feeds; `extra` adds
    older items (already ingested ones) to a host's feeds. Returns [{name, url}]."""
    by_host: dict[int, list[PageRef]] = {}
    for r in refs:
        by_host.setdefault(r.host, []).append(r)
    feeds = []
    for h, items in sorted(by_host.items()):
        base = f"http://127.0.0.1:{ports[h]}"
        old = (extra or {}).get(h, [])
        for f in range(feeds_per_host):
            mine = items[f::feeds_per_host] + old[f::feeds_per_host]
            mine.sort(key=lambda r: r.published_at, reverse=True)
            name = f"{outlets[h].slug}-f{f:02d}"
            path = f"/feeds/{name}.xml"
            (root / str(ports[h]) / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / str(ports[h]) / path.lstrip("/")).write_text(rss(outlets[h], base, name, mine), encoding="utf-8")
            feeds.append({"name": name, "url": base + path})
    return feeds


def config_yaml(feeds: list[dict[str, str]], *, per_host_concurrency: int = 8, workers: int = 0) -> str:
    """A run config over `feeds`. Politeness is set for a loopback server we own: no delay between
    requests to one host and several in flight per host, so the benchmark measures our work, not the
    throttle (the defaults, one request per second per host, would make a 5,000-page run take minutes by design)."""
    lines = ["feeds:"] + [f'  - {{name: {f["name"]}, url: "{f["url"]}", max_items: 1000}}' for f in feeds]
    lines += ["fetch:", '  allow_private: ["127.0.0.1"]', "  min_delay_s: 0",
              f"  per_host_concurrency: {per_host_concurrency}", "  concurrency: 32",
              "extract:", f"  workers: {workers}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- server


class _Site:
    def __init__(self, root: Path) -> None:
        self.files: dict[str, tuple[bytes, bytes, str, str]] = {}  # path -> (body, gzipped, etag, type)
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                p = Path(dirpath) / name
                body = p.read_bytes()
                rel = "/" + str(p.relative_to(root))
                ctype = "application/rss+xml" if name.endswith(".xml") else "text/html; charset=utf-8"
                etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
                self.files[rel] = (body, gzip.compress(body, 6), etag, ctype)
        robots = b"User-agent: *\nAllow: /\n"
        self.files["/robots.txt"] = (robots, gzip.compress(robots), '"robots"', "text/plain")
        self.last_modified = format_datetime(datetime(2026, 1, 1, tzinfo=UTC), usegmt=True)


async def _handle(site: _Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            path = target.split("?", 1)[0]
            f = site.files.get(path)
            if f is None:
                status, extra, body = "404 Not Found", "", b"not found\n"
            elif headers.get("if-none-match") == f[2]:
                status, extra, body = "304 Not Modified", f"ETag: {f[2]}\r\n", b""
            else:
                gz = "gzip" in headers.get("accept-encoding", "")
                body = f[1] if gz else f[0]
                status = "200 OK"
                extra = (f"ETag: {f[2]}\r\nLast-Modified: {site.last_modified}\r\nContent-Type: {f[3]}\r\n"
                         + ("Content-Encoding: gzip\r\n" if gz else ""))
            if method == "HEAD":
                body = b""
            writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def _serve(root: Path, ports: list[int]) -> None:
    servers = []
    for port in ports:
        site = _Site(root / str(port))
        servers.append(await asyncio.start_server(lambda r, w, s=site: _handle(s, r, w), "127.0.0.1", port,
                                                  backlog=512))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


class Server:
    """The static server as a child process (a context manager); `cpu_s()` is its CPU time so far."""

    def __init__(self, root: Path, ports: list[int]) -> None:
        self.root, self.ports = root, ports
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen([sys.executable, __file__, "serve", "--root", str(self.root),
                                      "--ports", ",".join(map(str, self.ports))], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"static server did not start: {line!r}")
        urllib.request.urlopen(f"http://127.0.0.1:{self.ports[0]}/robots.txt", timeout=10).read()  # noqa: S310
        return self

    def cpu_s(self) -> float:
        from pipeline.metering import cpu_of

        assert self.proc is not None
        cpu = cpu_of(self.proc.pid)
        return float("nan") if cpu is None else cpu

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="serve a generated benchmark web on 127.0.0.1")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("--root", required=True)
    sp.add_argument("--ports", required=True)
    args = ap.parse_args(argv)
    try:
        asyncio.run(_serve(Path(args.root), [int(p) for p in args.ports.split(",")]))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
