"""One HTTP client for feeds, pages and robots.txt, built as ordered layers (as in Scrapy's middlewares).

    URL policy -> robots.txt -> per-host throttle -> conditional GET -> retry -> limits -> decode

* URL policy: http(s) only; private/loopback/link-local/metadata addresses refused, checked on the
  resolved address before connecting, on the connected peer, and again after every redirect.
* robots.txt: fetched once per origin through the same layers; Crawl-delay raises the host delay.
* throttle: a minimum delay between requests to one host and a per-host concurrency limit.
* conditional GET: If-None-Match / If-Modified-Since from the caller's stored validators; 304 -> not_modified.
* retry: 429/503 honour Retry-After (seconds or HTTP date) when short, else the host is deferred to a later
  run; other 5xx and connection errors retry with capped exponential backoff and jitter.
* limits: a total deadline per request (a read timeout alone never stops a 1-byte-per-second body), a cap
  on bytes on the wire and on decompressed bytes (gzip/deflate/br decoded here, incrementally), redirects.
* decode: magic-byte sniffing, then charset (see decode.py).

Every fetch produces exactly one `FetchResult`, handed to `on_result` (the fetch log).
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from pipeline.fetch.decode import decode_body, looks_like_html, sniff_binary
from pipeline.fetch.policy import PolicyError, UrlPolicy
from pipeline.fetch.robots import RobotsRules, rules_from_response
from pipeline.records import FetchResult
from pipeline.settings import FetchSettings

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
RETRY_AFTER_CODES = frozenset({429, 503})
TEXT_TYPES = ("text/", "application/xhtml", "application/xml", "application/rss", "application/atom",
              "application/json", "application/feed+json", "application/rdf", "application/x-rss")


class _Abort(Exception):
    """Ends one attempt with a recorded outcome."""

    def __init__(self, outcome: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status


class _Decompressor:
    """Incremental Content-Encoding decoder with a hard cap on output bytes (defeats gzip bombs)."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.produced = 0
        self.codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
        if len(self.codings) > 1:
            raise _Abort("bad_content", f"stacked content encodings {encoding!r} are not supported")
        self.kind = self.codings[0] if self.codings else None
        if self.kind in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.kind == "deflate":
            self._z = zlib.decompressobj()  # zlib-wrapped; raw deflate handled on first error
            self._raw_tried = False
        elif self.kind == "br":
            import brotli

            self._br = brotli.Decompressor()
        elif self.kind is not None:
            raise _Abort("bad_content", f"unsupported content encoding {encoding!r}")

    def feed(self, data: bytes) -> bytes:
        if self.kind is None:
            out = data
        elif self.kind == "br":
            out = self._feed_brotli(data)
        else:
            out = self._feed_zlib(data)
        self.produced += len(out)
        if self.produced > self.limit:
            raise _Abort("too_large", f"decompressed body exceeds {self.limit} bytes (compression bomb?)")
        return out

    def _feed_zlib(self, data: bytes) -> bytes:
        chunks = []
        budget = self.limit - self.produced + 1
        try:
            out = self._z.decompress(data, budget)
        except zlib.error as exc:
            if self.kind == "deflate" and not self._raw_tried and not self.produced:
                self._raw_tried = True
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                return self._feed_zlib(data)
            raise _Abort("bad_content", f"corrupt {self.kind} body: {exc}") from exc
        chunks.append(out)
        # Drain what the output cap left unconsumed, still within the budget.
        while self._z.unconsumed_tail and sum(map(len, chunks)) <= budget:
            chunks.append(self._z.decompress(self._z.unconsumed_tail, budget))
        if self._z.unconsumed_tail:
            raise _Abort("too_large", f"decompressed body exceeds {self.limit} bytes (compression bomb?)")
        return b"".join(chunks)

    def _feed_brotli(self, data: bytes) -> bytes:
        import brotli

        budget = self.limit - self.produced + 1
        try:
            out = self._br.process(data, output_buffer_limit=budget)
            chunks = [out]
            while not self._br.can_accept_more_data() and sum(map(len, chunks)) <= budget:
                chunks.append(self._br.process(b"", output_buffer_limit=budget))
        except brotli.error as exc:
            raise _Abort("bad_content", f"corrupt br body: {exc}") from exc
        return b"".join(chunks)


@dataclass
class _Host:
    """Per-host politeness state, shared by every request to that host in this process."""

    delay: float
    semaphore: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = 0.0
    deferred_until: float = 0.0  # wall-clock (time.time) until which the host asked us to stay away
    deferred_reason: str | None = None
    robots: RobotsRules | None = None
    robots_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def parse_max_age(value: str | None) -> float | None:
    """Seconds of `max-age` in a Cache-Control header (None when absent, or no-cache/no-store)."""
    if not value:
        return None
    directives = [d.strip().lower() for d in value.split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return None
    for d in directives:
        name, _, arg = d.partition("=")
        if name.strip() == "max-age":
            arg = arg.strip().strip('"')
            return float(arg) if arg.isdigit() else None
    return None


def host_key(url: str) -> str:
    parts = urlsplit(url)
    return (parts.netloc or "").lower()


class Fetcher:
    """Async HTTP client with every fetch layer. Use as `async with Fetcher(settings) as f:`."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        on_result: Callable[[FetchResult], None] | None = None,
        host_delays: dict[str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.policy = UrlPolicy(settings.allow_private)
        self.on_result = on_result
        self._host_delays = host_delays or {}
        self._hosts: dict[str, _Host] = {}
        self._global = asyncio.Semaphore(settings.concurrency)
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        self._client = httpx.AsyncClient(
            follow_redirects=False,  # each hop goes back through the URL policy
            timeout=httpx.Timeout(s.read_timeout_s, connect=s.connect_timeout_s),
            headers={"User-Agent": s.user_agent, "Accept-Encoding": "gzip, deflate, br"},
            limits=httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency),
            trust_env=False,  # a proxy from the environment would bypass the address checks
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    # ------------------------------------------------------------------ public

    async def fetch(
        self,
        url: str,
        kind: str = "page",
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        started = datetime.now(UTC)
        t0 = time.monotonic()
        result = FetchResult(url=url, kind=kind, outcome="error", started_at=started, host=host_key(url))
        try:
            await self._fetch_layers(result, etag, last_modified, max_bytes)
        except PolicyError as exc:
            result.outcome, result.error = exc.outcome, str(exc)
        except Exception as exc:  # one bad URL never stops a run: record it
            result.outcome, result.error = "error", f"{type(exc).__name__}: {exc}"
        result.elapsed_ms = int((time.monotonic() - t0) * 1000)
        if result.outcome != "ok":
            result.body = result.text = None
        if self.on_result is not None:
            self.on_result(result)
        return result

    def forget_robots(self) -> None:
        """Drop cached robots.txt rules (a long-running process re-reads them now and then)."""
        for host in self._hosts.values():
            host.robots = None

    # ------------------------------------------------------------------ layers

    async def _fetch_layers(self, result: FetchResult, etag: str | None, last_modified: str | None,
                            max_bytes: int | None) -> None:
        s = self.settings
        self.policy.parse(result.url)  # layer 1 (syntax; addresses are checked per connection)
        host = self._host(result.url)
        if host.deferred_until > time.time():
            result.outcome = "deferred"
            result.retry_after_s = round(host.deferred_until - time.time(), 1)
            result.error = f"host {result.host} asked us to wait ({host.deferred_reason}); deferred to a later run"
            return
        # Layer 2. Feeds are exempt: the user configured each feed URL explicitly, and feeds exist to be
        # polled by machines (as Google's Feedfetcher treats them); article pages are crawled on our initiative.
        if result.kind == "page" and s.obey_robots:
            rules = await self._robots(result.url, host)
            if rules.disallow_all:  # robots.txt unreachable: try again on a later run
                result.outcome, result.error = "deferred", rules.reason
                return
            if not rules.allowed(result.url, s.user_agent):
                result.outcome, result.error = "robots_disallowed", "disallowed by robots.txt"
                return
        headers = {}
        if etag:  # layer 4: conditional GET
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if result.kind == "feed":
            headers["Accept"] = ("application/rss+xml, application/atom+xml, application/feed+json, "
                                 "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
        elif result.kind == "page":
            headers["Accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
        limit = max_bytes or (s.max_feed_bytes if result.kind == "feed" else s.max_body_bytes)

        for attempt in range(s.max_retries + 1):  # layer 5: retry
            result.attempts = attempt + 1
            async with self._global, host.semaphore:
                await self._throttle(host)  # layer 3
                try:
                    async with asyncio.timeout(s.deadline_s):  # layer 6: limits
                        await self._attempt(result, headers, limit)
                except TimeoutError:
                    result.outcome, result.error = "timeout", f"no complete response within {s.deadline_s:g} s"
                    result.body = None
                except _Abort as exc:
                    result.outcome, result.error = exc.outcome, str(exc)
                    if exc.status is not None:
                        result.http_status = exc.status
                    result.body = None
                except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                    result.outcome, result.error = "error", _describe(exc)
                    result.body = None
                except httpx.TimeoutException as exc:
                    result.outcome, result.error = "timeout", _describe(exc)
                    result.body = None
            wait = self._retry_wait(result, host, attempt)
            if wait is None:
                break
            await asyncio.sleep(wait)

        if result.outcome == "ok":
            self._check_content(result)  # layer 7: decode

    def _retry_wait(self, result: FetchResult, host: _Host, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to stop here."""
        s = self.settings
        status = result.http_status or 0
        last = attempt >= s.max_retries
        if result.outcome == "http_error" and status in RETRY_AFTER_CODES and result.retry_after_s is not None:
            if result.retry_after_s > s.max_retry_after_s or last:
                host.deferred_until = time.time() + result.retry_after_s
                host.deferred_reason = f"HTTP {status} with Retry-After {result.retry_after_s:.0f} s"
                return None
            return result.retry_after_s
        retryable = (result.outcome == "http_error" and (status >= 500 or status == 429)) or (
            result.outcome == "error" and result.error is not None and result.error.startswith(("ConnectError", "ReadError"))
        )
        if not retryable or last:
            return None
        backoff = min(s.backoff_max_s, s.backoff_base_s * (2**attempt))
        return backoff * random.uniform(0.5, 1.0)

    async def _attempt(self, result: FetchResult, headers: dict[str, str], limit: int) -> None:
        assert self._client is not None
        s = self.settings
        url = result.url
        for hop in range(s.max_redirects + 1):
            try:
                target = self.policy.parse(url)
                addrs = await self.policy.resolve(target)
            except PolicyError as exc:
                if hop == 0:
                    raise
                raise _Abort("blocked", f"redirect to {url} refused: {exc}") from exc
            request = self._client.build_request("GET", url, headers=headers)
            response = await self._client.send(request, stream=True)
            try:
                self._check_peer(response, addrs, target.host)
                result.http_status = response.status_code
                result.final_url = url
                if response.status_code in REDIRECT_CODES:
                    location = response.headers.get("location")
                    if not location:
                        raise _Abort("http_error", f"HTTP {response.status_code} redirect without a Location")
                    nxt = urljoin(url, location.strip())
                    if hop >= s.max_redirects:
                        raise _Abort("http_error", f"too many redirects (more than {s.max_redirects}); last hop to {nxt}")
                    try:
                        self.policy.parse(nxt)
                    except PolicyError as exc:
                        raise _Abort("blocked", f"redirect to {nxt} refused: {exc}") from exc
                    url = nxt
                    result.redirects = hop + 1
                    continue
                result.content_type = response.headers.get("content-type")
                result.etag = response.headers.get("etag")
                result.last_modified = response.headers.get("last-modified")
                result.cache_max_age_s = parse_max_age(response.headers.get("cache-control"))
                if response.status_code == 304:
                    result.outcome = "not_modified"
                    return
                if response.status_code >= 400:
                    result.retry_after_s = parse_retry_after(response.headers.get("retry-after"))
                    raise _Abort("http_error", f"HTTP {response.status_code} {response.reason_phrase}".strip())
                if response.status_code != 200:
                    raise _Abort("http_error", f"unexpected HTTP {response.status_code} for a GET")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise _Abort("too_large", f"Content-Length {declared} exceeds the {limit}-byte limit")
                result.body = await self._read_body(response, limit)
                if declared and declared.isdigit() and not response.headers.get("content-encoding"):
                    if len(result.body) < int(declared):
                        raise _Abort("error", f"incomplete body: {len(result.body)} of {declared} bytes")
                result.outcome = "ok"
                return
            finally:
                await response.aclose()
        raise _Abort("http_error", "too many redirects")

    async def _read_body(self, response: httpx.Response, limit: int) -> bytes:
        s = self.settings
        decoder = _Decompressor(response.headers.get("content-encoding", ""), min(limit * 4, s.max_decompressed_bytes)
                                if response.headers.get("content-encoding") else limit)
        wire = 0
        parts: list[bytes] = []
        try:
            async for chunk in response.aiter_raw():
                wire += len(chunk)
                if wire > limit:
                    raise _Abort("too_large", f"body exceeds the {limit}-byte limit")
                parts.append(decoder.feed(chunk))
        except httpx.RemoteProtocolError as exc:
            raise _Abort("error", f"incomplete body: {_describe(exc)}") from exc
        return b"".join(parts)

    def _check_peer(self, response: httpx.Response, addrs: list, host: str) -> None:
        """The address we actually connected to must pass the policy too (DNS may change in between)."""
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if not peer:
            return
        addr = ipaddress.ip_address(str(peer[0]).split("%")[0])
        if not self.policy.address_allowed(addr):
            raise _Abort("blocked", f"connected to {addr} for {host}, {self.policy.why_refused(addr)}")

    def _check_content(self, result: FetchResult) -> None:
        body = result.body or b""
        if not body.strip():
            result.outcome, result.error = "bad_content", "empty body"
            return
        binary = sniff_binary(body)
        if binary is not None and not (result.kind == "feed" and binary == "application/gzip"):
            declared = (result.content_type or "").split(";")[0].strip() or "no content type"
            result.outcome = "bad_content"
            result.error = f"body is {binary} (magic bytes), declared {declared}: not a text document"
            return
        ctype = (result.content_type or "").split(";")[0].strip().lower()
        if result.kind == "page" and ctype and not ctype.startswith(TEXT_TYPES) and not looks_like_html(body):
            result.outcome, result.error = "bad_content", f"content type {ctype} is not HTML"
            return
        if result.kind in ("page", "robots"):
            decoded = decode_body(body, result.content_type)
            result.text = decoded.text
            result.charset = decoded.charset
            result.charset_mismatch = decoded.mismatch
        if b"\x00" in body and result.kind == "feed":
            result.body = body.replace(b"\x00", b"")

    async def _throttle(self, host: _Host) -> None:
        async with host.lock:
            now = time.monotonic()
            wait = host.next_at - now
            host.next_at = max(now, host.next_at) + host.delay
        if wait > 0:
            await asyncio.sleep(wait)

    def _host(self, url: str) -> _Host:
        key = host_key(url)
        host = self._hosts.get(key)
        if host is None:
            delay = self._host_delays.get(key, self.settings.min_delay_s)
            host = _Host(delay=delay, semaphore=asyncio.Semaphore(self.settings.per_host_concurrency))
            self._hosts[key] = host
        return host

    async def _robots(self, url: str, host: _Host) -> RobotsRules:
        async with host.robots_lock:
            if host.robots is None:
                parts = urlsplit(url)
                robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
                res = await self.fetch(robots_url, "robots", max_bytes=512 * 1024)
                if res.outcome == "ok":
                    rules = rules_from_response(200, res.text)
                elif res.outcome == "http_error" and res.http_status and res.http_status < 500:
                    rules = rules_from_response(res.http_status, None)
                elif res.outcome in ("blocked", "invalid_url"):
                    rules = RobotsRules(None)  # the page itself will be refused by the policy
                else:
                    rules = rules_from_response(None, None)
                    rules.reason = f"robots.txt unreachable ({res.outcome}: {res.error}); host deferred"
                host.robots = rules
                delay = rules.crawl_delay(self.settings.user_agent)
                if delay:
                    host.delay = max(host.delay, min(delay, self.settings.max_crawl_delay_s))
            return host.robots


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__doc__ or ""
    return f"{type(exc).__name__}: {text.strip().splitlines()[0] if text.strip() else 'no detail'}"
