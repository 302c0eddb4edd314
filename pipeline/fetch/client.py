"""One HTTP client for feeds, pages and robots.txt, built as ordered layers (as in Scrapy's middlewares).

    URL policy -> robots.txt -> per-host throttle -> conditional GET -> retry -> limits -> decode

* URL policy: http(s) only; private/loopback/link-local/metadata addresses refused, checked where the
  socket is opened (`GuardedConnector`: resolve, check every address, connect only to a checked one), on
  the connected peer, and again for every redirect hop.
* robots.txt: fetched once per origin through the same layers and cached in the host store for
  `robots_ttl_s` (a day); Crawl-delay raises the host delay.
* throttle: a minimum delay between requests to one host and a per-host concurrency limit.
* conditional GET: If-None-Match / If-Modified-Since from the caller's stored validators; 304 -> not_modified.
* retry: 429/503 honour Retry-After (seconds or HTTP date): a short one pauses the whole host, a long one
  defers the host to a later run (remembered in the host store, so the next run stays away too); other
  5xx and connection errors retry with capped exponential backoff and jitter.
* limits: a total deadline per request (a read timeout alone never stops a 1-byte-per-second body), a cap
  on bytes on the wire and on decompressed bytes (gzip/deflate/br decoded here, incrementally), redirects.
* decode: magic-byte sniffing, then charset (see decode.py).

Every fetch produces exactly one `FetchResult`, handed to `on_result` (the fetch log). Its `elapsed_ms`
is time on the wire, summed over attempts (each attempt is bounded by `deadline_s`); waiting for a host
slot, the throttle and backoff sleeps are politeness, not request time, and are left out.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import random
import ssl
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import aiohttp

from pipeline.fetch.decode import charset_from_content_type, decode_body, looks_like_html, sniff_binary
from pipeline.fetch.hoststate import HostStore
from pipeline.fetch.policy import GuardedConnector, PolicyError, Target, UrlPolicy
from pipeline.fetch.robots import RobotsRules, cacheable, rules_from_response
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


# Below these sizes the work is done on the event loop: a thread hand-off per page costs more than a
# small page's inflating or decoding (deflate expands at most ~1032x, so a 16 KB chunk inflates in ~10 ms
# even when it is a bomb; the output cap then stops it).
_INLINE_INFLATE_BYTES = 16 * 1024
_INLINE_DECODE_BYTES = 256 * 1024
_MAX_HEADER_LINE = 64 * 1024  # bytes of one response header line (at most 128 of them: aiohttp's max_headers)
_KEEPALIVE_S = 5.0  # an idle connection is closed after this long (httpx's default, which we used before)


try:  # zlib-ng: CPython's zlib module over zlib-ng, inflating these pages in half the time (0.05 against 0.11 ms)
    from zlib_ng import zlib_ng as _inflating
except ImportError:  # pragma: no cover - a platform without its wheel: the standard library's
    _inflating = zlib
_INFLATE_ERRORS = (zlib.error, _inflating.error)


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
            self._z = _inflating.decompressobj(16 + zlib.MAX_WBITS)
        elif self.kind == "deflate":
            self._z = _inflating.decompressobj()  # zlib-wrapped; raw deflate handled on first error
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
        budget = self.limit - self.produced + 1  # one byte past the limit is enough to know
        try:
            out = self._z.decompress(data, budget)
            chunks, total = [out], len(out)
            # Drain what the output cap left unconsumed, never asking for more than the budget.
            while self._z.unconsumed_tail and total < budget:
                out = self._z.decompress(self._z.unconsumed_tail, budget - total)
                chunks.append(out)
                total += len(out)
        except _INFLATE_ERRORS as exc:
            if self.kind == "deflate" and not self._raw_tried and not self.produced:
                self._raw_tried = True
                self._z = _inflating.decompressobj(-zlib.MAX_WBITS)
                return self._feed_zlib(data)
            raise _Abort("bad_content", f"corrupt {self.kind} body: {exc}") from exc
        if total >= budget or self._z.unconsumed_tail:
            raise _Abort("too_large", f"decompressed body exceeds {self.limit} bytes (compression bomb?)")
        return b"".join(chunks)

    def _feed_brotli(self, data: bytes) -> bytes:
        import brotli

        budget = self.limit - self.produced + 1
        try:
            out = self._br.process(data, output_buffer_limit=budget)
            chunks = [out]
            while not self._br.can_accept_more_data() and sum(map(len, chunks)) < budget:
                chunks.append(self._br.process(b"", output_buffer_limit=budget))
        except brotli.error as exc:
            raise _Abort("bad_content", f"corrupt br body: {exc}") from exc
        return b"".join(chunks)


@dataclass
class _Host:
    """Per-host politeness state, shared by every request to that host in this process."""

    key: str
    delay: float
    semaphore: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_sent: float = -1e9  # monotonic time the last request to this host was let through
    last_sent_wall: float | None = None  # the same, wall clock (saved in the host store)
    paused_until: float = 0.0  # monotonic time before which nothing is sent (short Retry-After, 429 backoff)
    deferred_until: float = 0.0  # clock time until which the host asked us to stay away
    deferred_reason: str | None = None
    robots: dict[str, RobotsRules] = field(default_factory=dict)  # by origin (scheme://netloc)
    robots_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    requests: int = 0  # requests sent (robots.txt included)
    admitted: bool = False  # the host's addresses passed the URL policy once in this process
    refusal: PolicyError | None = None  # ...or were refused: every URL of the host is refused the same way
    client: aiohttp.ClientSession | None = None  # the host's connection pool (Fetcher._client_of)
    in_flight: int = 0  # requests of this host between send and the end of their body


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
    """The politeness key: host and port as written (two ports of one machine are two servers)."""
    parts = urlsplit(url)
    return (parts.netloc or "").lower()


class Fetcher:
    """Async HTTP client with every fetch layer. Use as `async with Fetcher(settings) as f:`.

    `host_store` keeps robots.txt answers (for `robots_ttl_s`) and host deferrals between runs;
    `clock` is the wall clock those are measured with (a run given an explicit `now` shifts it)."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        on_result: Callable[[FetchResult], None] | None = None,
        host_delays: dict[str, float] | None = None,
        host_store: HostStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.policy = UrlPolicy(settings.allow_private)
        self.guard = GuardedConnector(self.policy)
        self.on_result = on_result
        self.store = host_store
        self.clock = clock
        self._host_delays = host_delays or {}
        self._hosts: dict[str, _Host] = {}
        self._global = asyncio.Semaphore(settings.concurrency)
        self._ssl_context: ssl.SSLContext | None = None
        self._pooled: OrderedDict[str, _Host] = OrderedDict()  # hosts with a connection pool, least recent first

    async def __aenter__(self) -> Fetcher:
        return self

    def _new_client(self, max_connections: int) -> aiohttp.ClientSession:
        """An aiohttp session (a sixth of httpx's CPU per request: the fetch loop is the run's serial part)
        whose every connection goes through the URL policy (`GuardedConnector`)."""
        s = self.settings
        if self._ssl_context is None:  # loading the CA bundle takes ~10 ms: once per Fetcher, not per host
            self._ssl_context = _ssl_context()
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            use_dns_cache=False,  # each connection resolves and checks the name again (DNS rebinding)
            resolver=self.guard.resolver,
            socket_factory=self.guard.socket_factory,
            ssl=self._ssl_context,
            keepalive_timeout=_KEEPALIVE_S,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=s.connect_timeout_s, sock_read=s.read_timeout_s),
            headers={"User-Agent": s.user_agent, "Accept-Encoding": "gzip, deflate, br"},
            auto_decompress=False,  # decompressed here, incrementally and capped (_Decompressor)
            trust_env=False,  # a proxy from the environment would bypass the address checks
            # aiohttp refuses a header line over 8 KB; news sites send longer ones (Content-Security-Policy,
            # Link, Set-Cookie). httpx, which we used before, took 100 KB of headers in all.
            max_line_size=_MAX_HEADER_LINE, max_field_size=_MAX_HEADER_LINE,
        )

    def _client_of(self, host: _Host) -> aiohttp.ClientSession:
        """The host's own connection pool, as large as its request slots, so that the pools of the hosts
        used least recently can be closed (`_close_idle_pools`) and one host's idle connections are never
        closed to open another's."""
        if host.client is None:
            host.client = self._new_client(self.settings.per_host_concurrency)
        self._pooled[host.key] = host
        self._pooled.move_to_end(host.key)
        return host.client

    async def _close_idle_pools(self) -> None:
        """Close the pools of the hosts used least recently, with nothing in flight, beyond twice as many
        hosts as requests may be in flight: a run over thousands of hosts keeps a bounded number of sockets
        open (idle keep-alive connections otherwise stay open for seconds after a host's last page)."""
        limit = 2 * self.settings.concurrency
        if len(self._pooled) <= limit:
            return
        for key in [k for k, h in self._pooled.items() if h.in_flight == 0][: len(self._pooled) - limit]:
            host = self._pooled.pop(key)
            client, host.client = host.client, None
            if client is not None:
                await client.close()

    async def __aexit__(self, *exc: object) -> None:
        while self._pooled:
            _, host = self._pooled.popitem()
            client, host.client = host.client, None
            if client is not None:
                await client.close()
        if self.store is not None:  # the next stage (another Fetcher, maybe another process) keeps its distance
            for host in self._hosts.values():
                if host.last_sent_wall is not None:
                    self.store.save_last_request(host.key, host.last_sent_wall)

    def requests_per_host(self) -> dict[str, int]:
        return {k: h.requests for k, h in self._hosts.items()}

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
        result = FetchResult(url=url, kind=kind, outcome="error", started_at=started, host=host_key(url))
        try:
            await self._fetch_layers(result, etag, last_modified, max_bytes)
        except PolicyError as exc:
            result.outcome, result.error = exc.outcome, str(exc)
        except Exception as exc:  # one bad URL never stops a run: record it
            result.outcome, result.error = "error", f"{type(exc).__name__}: {exc}"
        if result.outcome != "ok":
            result.body = result.text = None
        if self.on_result is not None:
            self.on_result(result)
        return result

    def forget_robots(self) -> None:
        """Drop cached robots.txt rules (a long-running process re-reads them now and then)."""
        for host in self._hosts.values():
            host.robots.clear()

    # ------------------------------------------------------------------ layers

    async def _fetch_layers(self, result: FetchResult, etag: str | None, last_modified: str | None,
                            max_bytes: int | None) -> None:
        s = self.settings
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

        # A redirect is a new request (as in Scrapy): every hop goes through every layer again, so the
        # target's address is checked, its robots.txt obeyed, and its host's delay and slots respected.
        url = result.url
        for hop in range(s.max_redirects + 1):
            sent, location = result.attempts, None
            try:
                location = await self._fetch_url(result, url, headers, limit)
            except PolicyError as exc:
                if hop == 0:
                    raise
                result.outcome, result.error = "blocked", f"redirect to {url} refused: {exc}"
            if hop and result.attempts == sent:  # the hop was refused or deferred: not followed
                result.redirects = hop - 1
            if result.outcome == "blocked" or location is None:
                break
            if hop >= s.max_redirects:
                result.outcome = "http_error"
                result.error = f"too many redirects (more than {s.max_redirects}); last hop to {location}"
                return
            try:
                self.policy.parse(location)
            except PolicyError as exc:
                result.outcome, result.error = "blocked", f"redirect to {location} refused: {exc}"
                return
            url = location
            result.redirects = hop + 1
        if result.outcome == "ok":
            # Layer 7: decode. Charset detection is CPU work (the first call alone loads models): off the
            # event loop, so other requests' deadlines and the throttle keep their timing. A small body
            # whose charset is declared takes microseconds: a thread hand-off would cost more than it.
            if len(result.body or b"") <= _INLINE_DECODE_BYTES and charset_from_content_type(result.content_type):
                self._check_content(result)
            else:
                await asyncio.to_thread(self._check_content, result)
        elif url != result.url and result.outcome in ("robots_disallowed", "deferred"):
            result.error = f"redirect to {url}: {result.error}"

    async def _fetch_url(self, result: FetchResult, url: str, headers: dict[str, str], limit: int) -> str | None:
        """One URL through layers 1-6. Returns the Location of a redirect, or None when `result` is final."""
        s = self.settings
        target = self.policy.parse(url)  # layer 1: syntax, then the host's addresses (once per host;
        host = self._host(url)  # every connection is checked again by GuardedConnector)
        await self._admit(host, target)
        if self._deferred(result, host):
            return None
        # Layer 2. Feeds are exempt: the user configured each feed URL explicitly, and feeds exist to be
        # polled by machines (as Google's Feedfetcher treats them); article pages are crawled on our initiative.
        if result.kind == "page" and s.obey_robots:
            rules = await self._robots(url, host)
            if rules.disallow_all:  # robots.txt unreachable: try again on a later run
                result.outcome, result.error = "deferred", rules.reason
                return None
            if not rules.allowed(url, s.user_agent):
                result.outcome, result.error = "robots_disallowed", "disallowed by robots.txt"
                return None

        location = None
        for attempt in range(s.max_retries + 1):  # layer 5: retry
            location = None
            # Host slot first, global slot last: requests queued for a busy host never hold a global slot
            # that another host could use, so different hosts proceed in parallel.
            async with host.semaphore:
                await self._throttle(host)  # layer 3
                if attempt and host.deferred_until > self.clock():
                    return None  # a retry, and the host has since asked us to stay away: keep what we got
                if self._deferred(result, host):  # a 429 arrived while we queued
                    return None
                result.attempts += 1
                async with self._global:
                    host.requests += 1
                    sent_at = time.monotonic()
                    if result.attempts == 1:  # the log's started_at is when the first request left, not when it queued
                        result.started_at = datetime.now(UTC)
                    host.in_flight += 1
                    try:
                        async with asyncio.timeout(s.deadline_s):  # layer 6: limits
                            location = await self._attempt(result, url, headers, limit)
                    except _Abort as exc:
                        result.outcome, result.error = exc.outcome, str(exc)
                        if exc.status is not None:
                            result.http_status = exc.status
                        result.body = None
                    except aiohttp.ServerTimeoutError as exc:  # connect or read timeout (before TimeoutError,
                        result.outcome, result.error = "timeout", _describe(exc)  # which it subclasses)
                        result.body = None
                    except TimeoutError:
                        result.outcome, result.error = "timeout", f"no complete response within {s.deadline_s:g} s"
                        result.body = None
                    except aiohttp.ClientError as exc:  # refused connection, bad HTTP, server hung up
                        result.outcome, result.error = "error", _describe(exc)
                        result.body = None
                    finally:
                        host.in_flight -= 1
                        result.elapsed_ms += int((time.monotonic() - sent_at) * 1000)
                await self._close_idle_pools()
            if location is not None:
                return location
            wait = self._retry_wait(result, host, attempt)
            if wait is None:
                break
            if wait > 0:
                await asyncio.sleep(wait)
        return None

    async def _admit(self, host: _Host, target: Target) -> None:
        """Refuse a host whose name resolves to a refused address before anything (robots.txt included)
        is requested from it."""
        if not host.admitted and host.refusal is None:
            try:
                await self.policy.resolve(target)
                host.admitted = True
            except PolicyError as exc:
                if exc.outcome != "blocked":
                    raise  # DNS trouble: not remembered, the next URL of the host asks again
                host.refusal = exc
        if host.refusal is not None:
            raise PolicyError(host.refusal.outcome, str(host.refusal))

    def _deferred(self, result: FetchResult, host: _Host) -> bool:
        now = self.clock()
        if host.deferred_until <= now:
            return False
        result.outcome = "deferred"
        result.retry_after_s = round(host.deferred_until - now, 1)
        result.error = (f"not requested: host {host.key} asked us to wait ({host.deferred_reason}); "
                        f"retried after {result.retry_after_s:g} s")
        return True

    def _defer_host(self, host: _Host, seconds: float, reason: str) -> None:
        until = self.clock() + seconds
        if until > host.deferred_until:
            host.deferred_until, host.deferred_reason = until, reason
            if self.store is not None:
                self.store.save_deferral(host.key, until, reason)

    def _retry_wait(self, result: FetchResult, host: _Host, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to stop here."""
        s = self.settings
        status = result.http_status or 0
        last = attempt >= s.max_retries
        if result.outcome == "http_error" and status in RETRY_AFTER_CODES and result.retry_after_s is not None:
            reason = f"HTTP {status} with Retry-After {result.retry_after_s:.0f} s"
            if result.retry_after_s > s.max_retry_after_s or last:
                self._defer_host(host, result.retry_after_s, reason)
                return None
            # A short Retry-After pauses the whole host, not only this URL; the throttle does the waiting.
            host.paused_until = max(host.paused_until, time.monotonic() + result.retry_after_s)
            return 0.0
        if result.outcome == "http_error" and status == 429:  # rate limited without saying for how long
            backoff = min(s.backoff_max_s, s.backoff_base_s * (2**attempt))
            if last:
                self._defer_host(host, s.page_retry_base_s, "HTTP 429 without Retry-After")
                return None
            host.paused_until = max(host.paused_until, time.monotonic() + backoff)
            return 0.0
        retryable = (result.outcome == "http_error" and status >= 500) or (
            result.outcome == "error" and result.error is not None and result.error.startswith(("ConnectError", "ReadError"))
        )
        if not retryable or last:
            return None
        backoff = min(s.backoff_max_s, s.backoff_base_s * (2**attempt))
        return backoff * random.uniform(0.5, 1.0)

    async def _attempt(self, result: FetchResult, url: str, headers: dict[str, str], limit: int) -> str | None:
        """One HTTP request. Returns the absolute Location of a redirect; otherwise sets the outcome."""
        target = self.policy.parse(url)
        client = self._client_of(self._host(url))
        # PolicyError: refused before connecting. Redirects are not followed: each hop is a new fetch.
        async with client.get(url, headers=headers, allow_redirects=False) as response:
            self._check_peer(response, target.host)
            status = response.status
            result.http_status = status
            result.final_url = url
            if status in REDIRECT_CODES:
                location = response.headers.get("location")
                if not location or not location.strip():
                    raise _Abort("http_error", f"HTTP {status} redirect without a Location")
                return urljoin(url, location.strip())
            result.content_type = response.headers.get("content-type")
            result.etag = response.headers.get("etag")
            result.last_modified = response.headers.get("last-modified")
            result.cache_max_age_s = parse_max_age(response.headers.get("cache-control"))
            if status == 304:
                result.outcome, result.error = "not_modified", None
                return None
            if status >= 400:
                result.retry_after_s = parse_retry_after(response.headers.get("retry-after"))
                raise _Abort("http_error", f"HTTP {status} {response.reason or ''}".strip())
            if status != 200:
                raise _Abort("http_error", f"unexpected HTTP {status} for a GET")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise _Abort("too_large", f"Content-Length {declared} exceeds the {limit}-byte limit")
            result.body = await self._read_body(response, limit)
            if declared and declared.isdigit() and not response.headers.get("content-encoding"):
                if len(result.body) < int(declared):
                    raise _Abort("error", f"incomplete body: {len(result.body)} of {declared} bytes")
            result.outcome, result.error = "ok", None
            return None

    async def _read_body(self, response: aiohttp.ClientResponse, limit: int) -> bytes:
        s = self.settings
        decoder = _Decompressor(response.headers.get("content-encoding", ""), min(limit * 4, s.max_decompressed_bytes)
                                if response.headers.get("content-encoding") else limit)
        wire = 0
        # One growing buffer, not a list of chunks joined at the end: half the peak, and a large buffer
        # lives in its own mapping that goes back to the OS when freed (64 KB chunks fragment the heap).
        body = bytearray()
        try:
            async for chunk in response.content.iter_any():
                wire += len(chunk)
                if wire > limit:
                    raise _Abort("too_large", f"body exceeds the {limit}-byte limit")
                # Inflating is CPU work (a bomb's first 64 KB is 20 MB of output): zlib and brotli release
                # the GIL, so a worker thread keeps the event loop, and every other deadline, on time.
                if not decoder.kind:
                    body += chunk
                elif len(chunk) <= _INLINE_INFLATE_BYTES:  # at most ~16 MB of output (then the cap): inline
                    body += decoder.feed(chunk)
                else:
                    body += await asyncio.to_thread(decoder.feed, chunk)
        except aiohttp.ClientPayloadError as exc:  # the connection closed early, or a bad chunk
            raise _Abort("error", f"incomplete body: {_describe(exc)}") from exc
        return bytes(body)

    def _check_peer(self, response: aiohttp.ClientResponse, host: str) -> None:
        """Defence in depth: the address we are talking to must pass the policy too."""
        connection = response.connection
        transport = connection.transport if connection is not None else None
        peer = transport.get_extra_info("peername") if transport is not None else None
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
        """Wait until `delay` after the previous request to this host actually left (and past any pause,
        e.g. a short Retry-After). Waiters queue on the host lock, so spacing is measured between real
        sends, not between reservations a busy event loop might honour late."""
        async with host.lock:
            while True:
                now = time.monotonic()
                start = max(host.last_sent + host.delay, host.paused_until)
                if start <= now:
                    break
                await asyncio.sleep(start - now)
            host.last_sent, host.last_sent_wall = time.monotonic(), time.time()

    def _host(self, url: str) -> _Host:
        key = host_key(url)
        host = self._hosts.get(key)
        if host is None:
            delay = self._host_delays.get(key, self.settings.min_delay_s)
            host = _Host(key=key, delay=delay, semaphore=asyncio.Semaphore(self.settings.per_host_concurrency))
            if self.store is not None:  # a deferral from an earlier run still holds
                deferred = self.store.deferred(key, self.clock())
                if deferred is not None:
                    host.deferred_until, host.deferred_reason = deferred
                last = self.store.last_request(key)
                if last is not None:
                    host.last_sent = time.monotonic() - max(0.0, time.time() - last)
            self._hosts[key] = host
        return host

    async def _robots(self, url: str, host: _Host) -> RobotsRules:
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        async with host.robots_lock:
            rules = host.robots.get(origin)
            if rules is None:
                rules = await self._load_robots(origin, host)
                host.robots[origin] = rules
                delay = rules.crawl_delay(self.settings.user_agent)
                if delay:
                    host.delay = max(host.delay, min(delay, self.settings.max_crawl_delay_s))
            return rules

    async def _load_robots(self, origin: str, host: _Host) -> RobotsRules:
        """robots.txt from the host store while fresh (RFC 9309 allows a day), else fetched once."""
        s = self.settings
        if self.store is not None:
            cached = self.store.robots(host.key, origin, self.clock())
            if cached is not None:
                rules = rules_from_response(int(cached["status"]), cached.get("body"))
                rules.source = "cache"
                return rules
        res = await self.fetch(f"{origin}/robots.txt", "robots", max_bytes=512 * 1024)
        status: int | None
        if res.outcome == "ok":
            status, body = 200, res.text
        elif res.outcome == "http_error" and res.http_status and res.http_status < 500:
            status, body = res.http_status, None
        elif res.outcome in ("blocked", "invalid_url", "bad_content"):
            status, body = 404, None  # no usable robots.txt: no rules (the page itself is checked separately)
        else:
            rules = rules_from_response(None, None)
            rules.reason = f"robots.txt unreachable ({res.outcome}: {res.error}); host deferred"
            return rules
        if self.store is not None and cacheable(status):
            self.store.save_robots(host.key, origin, status, body, self.clock(), s.robots_ttl_s)
        return rules_from_response(status, body)


def _ssl_context() -> ssl.SSLContext:
    """Certificates from certifi's bundle, as httpx and requests use: a slim container may have no system
    store."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__doc__ or ""
    return f"{type(exc).__name__}: {text.strip().splitlines()[0] if text.strip() else 'no detail'}"
