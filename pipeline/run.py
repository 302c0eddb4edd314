"""One incremental run, as composable stages (the CLI runs them in one process, the DAG as tasks).

    plan_feed_batches -> fetch_feeds -> select_pages -> fetch_pages -> commit_run

Stages know nothing about Airflow. Between tasks they hand over small staging files under
`_staging/<run_id>/` (paths and counts go through XCom, never data). `commit_run` is the only writer of
the datasets: it cleans, deduplicates, writes Parquet, the new state, and the manifest entry last.
"""

from __future__ import annotations

import array
import asyncio
import bisect
import contextlib
import functools
import json
import logging
import os
import pickle
import secrets
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import _malloc
from pipeline.columns import EPOCH, HexColumn, StringColumn, U64Table, hex_bytes, hex_u64, utc_us
from pipeline.metering import StageMeter
from pipeline.records import Article, Extracted, FeedItem, FetchResult, pickled_by_fields
from pipeline.warehouse import RunEntry, Warehouse, atomic_write_json, crash_point, write_parquet_atomic

if TYPE_CHECKING:
    from concurrent.futures import Executor

    # (types only: the pool's workers import this module, and need no pydantic; they are given the dedup
    # settings as a plain dataclass, `dedup.plain_settings`)
    from pipeline.settings import Config, FeedConfig

log = logging.getLogger("newsingest.run")

# Page fetch outcomes after which we never try again (the item is stored with feed title and summary).
PERMANENT_OUTCOMES = frozenset({"invalid_url", "blocked", "robots_disallowed", "bad_content", "too_large"})
PERMANENT_STATUSES = frozenset({410, 401, 403, 451})  # Gone, and refusals: retrying will not help


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def sanitize_run_id(raw: str) -> str:
    """A run id usable in file names, derived deterministically (Airflow run ids contain ':' and '+')."""
    out = "".join(c if c.isalnum() or c in "._" else "_" for c in raw)
    return out.strip("_")[:120] or "run"


def _ts(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _record_to_dict(obj: Any) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.isoformat() if isinstance(v, datetime) else v
    return out


def _record_from_dict(cls: type, d: dict[str, Any]) -> Any:
    kwargs = {}
    for f in fields(cls):
        if f.name in d:
            v = d[f.name]
            if isinstance(v, str) and f.name.endswith("_at"):
                v = datetime.fromisoformat(v)
            kwargs[f.name] = v
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------------- feeds


@dataclass(slots=True)
class FeedOutcome:
    name: str
    url: str
    outcome: str
    items: list[FeedItem] = field(default_factory=list)
    format: str | None = None
    error: str | None = None
    http_status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    duplicates: int = 0
    ttl_s: float | None = None
    over_limit: int = 0  # items beyond the feed's max_items, not taken (the oldest)
    polled_at: datetime | None = None  # when the request started (the polling schedule counts from it)
    max_age_s: float | None = None  # Cache-Control max-age of the response
    retry_after_s: float | None = None
    new_items: int | None = None  # items never seen before, when the caller knows better than the commit
    # Set by `digest_items` (then `items` is empty): what the commit reads of the items besides the pages
    item_count: int | None = None
    # their publication times, microseconds since the epoch (a datetime object each outlived the items)
    item_times: array.array | None = None

    @property
    def n_items(self) -> int:
        return self.item_count if self.item_count is not None else len(self.items)

    def published_times(self) -> tuple[datetime, ...]:
        if self.item_times is not None:
            return tuple(EPOCH + timedelta(microseconds=us) for us in self.item_times)
        return tuple(i.published_at for i in self.items if i.published_at)

    def digest_items(self, seen: np.ndarray, pending: dict[str, Any]) -> None:
        """Keep only what the feed's state needs of its items (their number, how many are new, their
        publication times) and drop them: once a run has taken its tasks from them, ~1.8 KB an item."""
        if self.new_items is None:
            self.new_items = count_new_items(self.items, seen, pending)
        self.item_times = array.array("q", (utc_us(t) for t in self.published_times()))
        self.item_count = self.n_items
        self.items = []


def plan_feed_batches(config: Config, max_batches: int = 64, names: Iterable[str] | None = None) -> list[list[str]]:
    """Feeds (all active ones, or those `names`) grouped by host into at most `max_batches` batches (one
    mapped task each), so one host's feeds stay in one task and its politeness limits hold."""
    from pipeline.fetch.client import host_key

    wanted = set(names) if names is not None else None
    by_host: dict[str, list[str]] = defaultdict(list)
    for feed in config.active_feeds:
        if wanted is not None and feed.name not in wanted:
            continue
        by_host[host_key(feed.url)].append(feed.name)
    batches: list[list[str]] = [[] for _ in range(min(max_batches, max(1, len(by_host))))]
    for host_feeds in sorted(by_host.values(), key=len, reverse=True):
        min(batches, key=len).extend(host_feeds)
    return [b for b in batches if b]


class ParseQueue:
    """The feed documents downloaded and waiting to be parsed: at most `slots` parse at once, and past
    `in_memory` waiting documents the others wait on disk (an unnamed temporary file each). Downloads
    outpace the parsing (a run over 130 feeds of 800 items held ~100 MB of documents waiting), and a run
    over thousands of feeds must not hold them all."""

    def __init__(self, slots: int, in_memory: int) -> None:
        self.slot = asyncio.Semaphore(slots)
        self.in_memory = in_memory
        self.waiting = 0
        self.spooled = 0  # documents that waited on disk (counted for tests and logs)

    @contextlib.asynccontextmanager
    async def turn(self, res: FetchResult) -> Any:
        """Wait for a parse slot with the body of `res` (taken from it: the caller keeps no reference to a
        body that waits on disk); yields the body to parse."""
        body, res.body = res.body or b"", None
        spool = None
        if self.waiting >= self.in_memory and self.slot.locked():
            spool = tempfile.TemporaryFile()
            spool.write(body)
            body = b""
            self.spooled += 1
        self.waiting += 1
        parsing = False
        try:
            async with self.slot:
                parsing = True
                self.waiting -= 1
                if spool is not None:
                    spool.seek(0)
                    body = spool.read()
                    spool.close()
                    spool = None
                yield body
        finally:
            if not parsing:  # cancelled while waiting
                self.waiting -= 1
            if spool is not None:
                spool.close()


async def poll_feed(fetcher: Any, feed: FeedConfig, prev: dict[str, Any], sink: _LogSink,
                    parse_queue: ParseQueue | None = None, pool: Executor | None = None) -> FeedOutcome:
    """One conditional GET of a feed (validators from its state `prev`), parsed into a FeedOutcome.

    Parsing is CPU work (feedparser takes seconds on a 20,000-item feed, 0.1 s on one of 125 items): it runs
    in the process `pool` when there is one (the run's feeds parse on every core), else in a worker thread so
    the event loop keeps serving other downloads; `parse_queue` bounds the documents being parsed at once,
    and those waiting in memory."""
    same_url = prev.get("url") == feed.url
    res = await fetcher.fetch(feed.url, "feed", etag=prev.get("etag") if same_url else None,
                              last_modified=prev.get("last_modified") if same_url else None)
    out = FeedOutcome(feed.name, feed.url, res.outcome, http_status=res.http_status, error=res.error,
                      etag=res.etag or prev.get("etag"), last_modified=res.last_modified or prev.get("last_modified"),
                      polled_at=res.started_at, max_age_s=res.cache_max_age_s, retry_after_s=res.retry_after_s)
    if res.outcome == "ok" and res.body is not None:
        from pipeline.sources import parse_feed  # not needed by a 304

        async with (parse_queue or ParseQueue(1, in_memory=1)).turn(res) as body:
            parse = functools.partial(parse_feed, body, res.final_url or feed.url, feed.name,
                                      content_type=res.content_type, kind=feed.kind, max_items=feed.max_items)
            del body
            if pool is not None:
                parsed = await asyncio.get_running_loop().run_in_executor(pool, parse)
            else:
                parsed = await asyncio.to_thread(parse)
            del parse
        # The slot is free: the next waiting document is sent to be parsed before this feed's items are taken
        # (the caller's `on_outcome`, ~4.5 ms of this process a feed of 125 items), not after: the workers
        # parsed half the time, waiting for the next document the rest
        await asyncio.sleep(0)
        out.format, out.items, out.duplicates, out.ttl_s = parsed.format, parsed.items, parsed.duplicates, parsed.ttl_s
        out.over_limit = parsed.over_limit
        if not parsed.is_feed:
            out.outcome, out.error = "bad_content", parsed.error or "not a feed"
            sink.amend(feed.url, "bad_content", out.error)
        else:
            notes = []
            if parsed.error:
                notes.append(f"{parsed.error} (items kept)")  # ill-formed but usable
            if parsed.over_limit:
                notes.append(f"{parsed.over_limit} older items beyond max_items={feed.max_items} not taken")
            if notes:
                out.error = "; ".join(notes)
                sink.amend(feed.url, "ok", out.error)  # the outcome stays ok; the note says what we skipped
    return out


async def _fetch_feeds_async(config: Config, feeds: Sequence[FeedConfig], feed_state: dict[str, Any],
                             log_rows: list[dict[str, Any]], progress: Callable[[int], None] | None,
                             fetch_env: dict[str, Any], pool: Executor | None = None,
                             on_outcome: Callable[[int, FeedOutcome], None] | None = None) -> list[FeedOutcome]:
    from pipeline.fetch.client import Fetcher

    source_of = {f.url: f.name for f in feeds}
    sink = _LogSink(log_rows, source_of)
    # Parsing is CPU work (feedparser takes seconds on a 20,000-item feed): in the process pool, one document
    # per worker; without one, a worker thread keeps the event loop serving the other downloads, and one parse
    # at a time keeps memory to one big document.
    slots = _pool_workers(config) if pool is not None else 1
    parse_queue = ParseQueue(slots, in_memory=2 * slots)
    async with Fetcher(config.fetch, on_result=sink, host_delays=_host_delays(config), **fetch_env) as fetcher:

        async def one(rank: int, feed: FeedConfig) -> FeedOutcome:
            out = await poll_feed(fetcher, feed, feed_state.get(feed.name, {}), sink, parse_queue, pool)
            if on_outcome is not None:
                on_outcome(rank, out)
            if progress:
                progress(1)
            return out

        return list(await asyncio.gather(*(one(k, f) for k, f in enumerate(feeds))))


def fetch_feeds(config: Config, feed_names: Iterable[str] | None, feed_state: dict[str, Any], run_id: str,
                progress: Callable[[int], None] | None = None, *, cache_dir: Path | None = None,
                now: datetime | None = None, pool: Executor | None = None,
                on_outcome: Callable[[int, FeedOutcome], None] | None = None,
                ) -> tuple[list[FeedOutcome], list[dict[str, Any]]]:
    """Poll the feeds `feed_names` (every active feed when None). `pool`: a process pool to parse them in
    (the caller's, left running); without one, feeds parse in a thread, one at a time. `on_outcome(rank,
    outcome)` is called as each feed is done (`rank`: its position among the feeds polled), so a caller
    can take what it needs of the feed's items and drop them (see PageSelector)."""
    names = set(feed_names) if feed_names is not None else None
    feeds = [f for f in config.active_feeds if names is None or f.name in names]
    log_rows: list[dict[str, Any]] = []
    outcomes = asyncio.run(_fetch_feeds_async(config, feeds, feed_state, log_rows, progress,
                                              _fetch_env(cache_dir, now), pool, on_outcome))
    for row in log_rows:
        row["run_id"] = run_id
    return outcomes, log_rows


def _fetch_env(cache_dir: Path | None, now: datetime | None) -> dict[str, Any]:
    """Host store (robots.txt cache, host deferrals: `<warehouse>/_cache/hosts`) and the clock they use.
    A run given an explicit `now` (a replay, a test of "a later run") sees that time there too."""
    from pipeline.fetch.hoststate import HostStore

    env: dict[str, Any] = {}
    if cache_dir is not None:
        env["host_store"] = HostStore(Path(cache_dir) / "hosts")
    if now is not None:
        offset = now.timestamp() - time.time()
        env["clock"] = lambda: time.time() + offset
    return env


def _host_delays(config: Config) -> dict[str, float]:
    from pipeline.fetch.client import host_key

    return {host_key(f.url): f.min_delay_s for f in config.feeds if f.min_delay_s is not None}


class _LogSink:
    """Collects one fetch-log row per fetch (robots.txt fetches included).

    With `compact_at`, every `compact_at` rows go from `rows` into `tables` (FETCH_LOG_SCHEMA tables, ~150
    bytes a row where a dict costs ~800): a run of 100,000 pages held 80 MB of row dicts until its commit.
    With `spill_to` too, they go to an Arrow file there instead, which `log` maps: its pages are read when
    the commit writes the log, not held through the fetch and the dedup pass (15 MB at 100,000 pages).
    `amend` finds only rows not yet compacted: it is for the feeds' sink, which does not compact."""

    def __init__(self, rows: list[dict[str, Any]], source_of: Any, *, run_id: str = "",
                 compact_at: int = 0, spill_to: Path | None = None) -> None:
        self.rows = rows
        self.source_of = source_of
        self.run_id = run_id
        self.compact_at = compact_at
        self.tables: list[Any] = []
        self.spill_to = spill_to
        self._writer: Any = None

    def __call__(self, r: FetchResult) -> None:
        self.rows.append({
            "run_id": self.run_id, "url": r.url, "final_url": r.final_url, "kind": r.kind, "source": self.source_of.get(r.url),
            "host": r.host, "outcome": r.outcome, "http_status": r.http_status, "error": r.error,
            # int8 columns: requests per URL are (redirects + 1) x (retries + 1), unbounded by the settings
            "elapsed_ms": r.elapsed_ms, "attempts": min(r.attempts, 127), "redirects": min(r.redirects, 127),
            "bytes": len(r.body) if r.body is not None else None, "content_type": r.content_type,
            "charset": r.charset, "charset_mismatch": r.charset_mismatch, "started_at": r.started_at,
        })
        if self.compact_at and len(self.rows) >= self.compact_at:
            table = fetch_log_table([self.rows])
            self.rows.clear()
            if self.spill_to is None:
                self.tables.append(table)
                return
            if self._writer is None:
                import pyarrow as pa

                self.spill_to.parent.mkdir(parents=True, exist_ok=True)
                self._writer = pa.ipc.new_file(str(self.spill_to), table.schema)
            self._writer.write_table(table)

    def log(self) -> list[dict[str, Any]] | Any:
        """Every row so far: the row dicts, or one table when some were compacted (the spilled ones mapped
        from their file). Ends the sink's spilling: call it once, at the end."""
        if self._writer is not None:
            import pyarrow as pa

            self._writer.close()
            self._writer = None
            self.tables.append(pa.ipc.open_file(pa.memory_map(str(self.spill_to))).read_all())
        return fetch_log_table([*self.tables, self.rows]) if self.tables else self.rows

    def amend(self, url: str, outcome: str, error: str | None) -> None:
        for row in reversed(self.rows):
            if row["url"] == url:
                row["outcome"], row["error"] = outcome, error
                return


def fetch_log_table(parts: Iterable[list[dict[str, Any]] | Any]) -> Any:
    """One FETCH_LOG_SCHEMA table of fetch-log rows given as lists of row dicts or as tables (a big run's rows
    as a table: ~150 bytes a row, where a dict costs ~800)."""
    import pyarrow as pa

    from pipeline.schema import FETCH_LOG_SCHEMA

    tables = [p if isinstance(p, pa.Table) else pa.Table.from_pylist(list(p), schema=FETCH_LOG_SCHEMA) for p in parts]
    return pa.concat_tables(tables) if tables else FETCH_LOG_SCHEMA.empty_table()


def linkless_log_rows(linkless: Sequence[PageTask], run_id: str, now: datetime) -> list[dict[str, Any]]:
    """A fetch-log row (outcome `invalid_url`, no request sent) for each item whose link was rejected, so
    every link a feed gave us has an outcome."""
    rows = []
    for task in linkless:
        item = task.item
        rows.append({
            "run_id": run_id, "url": item.link or "", "final_url": None, "kind": "page", "source": item.source,
            "host": None, "outcome": "invalid_url", "http_status": None,
            "error": f"{item.link_error or 'no usable link'} (item {item.guid or item.title or '?'} of {item.feed_url}; "
                     "not requested)",
            "elapsed_ms": 0, "attempts": 0, "redirects": 0, "bytes": None, "content_type": None, "charset": None,
            "charset_mismatch": False, "started_at": now,
        })
    return rows


# ---------------------------------------------------------------------------------------------------- selection


@pickled_by_fields
@dataclass(slots=True)
class PageTask:
    article_id: str
    item: FeedItem
    attempts: int = 0  # earlier failed attempts (from the pending state)
    first_seen_at: datetime | None = None
    # The item URL's canonical spelling (the article id is its hash), where the selection computed it:
    # `task_canonical_url` computes it otherwise (~50 us a URL, which a run asked for four times)
    canonical_url: str | None = None


def task_canonical_url(task: PageTask) -> str | None:
    """The canonical spelling of the task's item URL (None for an item without a usable link)."""
    return task.canonical_url if task.canonical_url is not None else item_article_id(task.item)[1]


def item_article_id(item: FeedItem) -> tuple[str, str | None]:
    """(article_id, canonical URL). Items without a usable link get an id from feed URL and guid/title."""
    from pipeline.urls import article_id_for, canonicalize_url

    if item.url:
        canonical = canonicalize_url(item.url)
        return article_id_for(canonical), canonical
    key = f"{item.feed_url}#{item.guid or item.title or item.summary or ''}"
    return article_id_for(key), None


def id_to_u64(article_id: str) -> int:
    return int(article_id, 16)


def select_pages(items: Iterable[FeedItem], seen: np.ndarray, pending: dict[str, Any], now: datetime,
                 ) -> tuple[list[PageTask], list[PageTask], dict[str, int]]:
    """New items to fetch (and items without a usable link, stored as such), plus due retries.

    Returns (fetch tasks, link-less tasks, counts)."""
    selector = PageSelector(seen, pending, now)
    selector.add(items)
    fetch, linkless, counts = selector.finish()
    assert isinstance(fetch, list)
    return fetch, linkless, counts


class PageSelector:
    """`select_pages` a feed at a time, the feeds in any order: each feed's items are selected as it
    arrives, so a run need not hold every feed's items at once (`TaskSpool` keeps the tasks on disk).

    An article in several feeds is taken from the feed of the lowest `rank` (its position in the run's
    list of feeds), whichever arrives first: the same tasks as `select_pages` over the feeds in rank order."""

    def __init__(self, seen: np.ndarray, pending: dict[str, Any], now: datetime,
                 tasks: list[PageTask] | TaskSpool | None = None) -> None:
        self.seen, self.pending, self.now = seen, pending, now
        self.fetch: list[PageTask] | TaskSpool = tasks if tasks is not None else []
        self.linkless: list[PageTask] = []
        self.counts = {"items": 0, "already_seen": 0, "pending_not_due": 0, "same_in_run": 0}
        # article id -> (rank of the feed it was taken from, where its task is: i in `fetch`, -1 - i in
        # `linkless`, None for a retry not yet due)
        self._taken = _TakenIds()

    def add(self, items: Iterable[FeedItem], rank: int = 0, first_seen_at: datetime | None = None) -> None:
        """The items of one feed. `first_seen_at`: its poll time, for the tasks of new items."""
        for item in items:
            self.counts["items"] += 1
            aid, canonical = item_article_id(item)
            held = self._taken.get(aid)
            if held is not None:
                self.counts["same_in_run"] += 1
                if held[0] > rank and held[1] is not None:  # a feed ranked before the one it came from
                    self._taken.set(aid, rank, held[1])
                    task = self._task(aid, item, first_seen_at, canonical)
                    if held[1] >= 0:
                        self.fetch[held[1]] = task
                    else:
                        self.linkless[-1 - held[1]] = task
                continue
            if _in_sorted(self.seen, id_to_u64(aid)):
                self.counts["already_seen"] += 1
                continue
            p = self.pending.get(aid)
            if p is not None and _dt(p.get("next_attempt_at")) and _dt(p["next_attempt_at"]) > self.now:
                self.counts["pending_not_due"] += 1
                self._taken.set(aid, rank, None)
                continue
            task = self._task(aid, item, first_seen_at, canonical)
            if item.url:
                self._taken.set(aid, rank, len(self.fetch))
                self.fetch.append(task)
            else:
                self._taken.set(aid, rank, -1 - len(self.linkless))
                self.linkless.append(task)
        self._taken.settle()

    def _task(self, aid: str, item: FeedItem, first_seen_at: datetime | None, canonical: str | None) -> PageTask:
        p = self.pending.get(aid)
        if p is not None:
            return PageTask(aid, item, attempts=p.get("attempts", 0), first_seen_at=_dt(p.get("first_seen_at")),
                            canonical_url=canonical)
        return PageTask(aid, item, first_seen_at=first_seen_at, canonical_url=canonical)

    def finish(self, polled_at: dict[str, datetime] | None = None,
               ) -> tuple[list[PageTask] | TaskSpool, list[PageTask], dict[str, int]]:
        """(fetch tasks, link-less tasks, counts), with the due retries whose items have left their feed
        since (nothing is lost just because a feed moved on). `polled_at`: feed name -> poll time, the
        first-seen time of a retry that has none."""
        for aid, p in self.pending.items():
            if aid in self._taken:
                continue
            due = _dt(p.get("next_attempt_at"))
            if due is None or due <= self.now:
                item = _record_from_dict(FeedItem, p["item"])
                first_seen = _dt(p.get("first_seen_at")) or (polled_at or {}).get(item.source)
                self.fetch.append(PageTask(aid, item, attempts=p.get("attempts", 0), first_seen_at=first_seen))
                self._taken.set(aid, -1, None)
        self._taken = _TakenIds()  # done
        self.counts["to_fetch"] = len(self.fetch)
        fetch, self.fetch = self.fetch, []  # the caller's now: a run frees a spool once done with it
        return fetch, self.linkless, self.counts


_NO_TASK = np.iinfo(np.int64).min  # `where` of a taken id with no task (a retry not yet due)


class _TakenIds:
    """PageSelector's article id -> (rank, where), in a U64Table (24 bytes an id) whose additions `settle`
    merges once a feed: a dict of every article of a run, ~100 bytes an article as objects, outlived the
    feed items they were made among (see pipeline.columns)."""

    def __init__(self) -> None:
        self._table = U64Table(width=2)
        self._other: dict[str, tuple[int, int]] = {}  # ids that are no 16-hex-digit number

    def get(self, article_id: str) -> tuple[int, int | None] | None:
        number = hex_u64(article_id)
        held = self._other.get(article_id) if number is None else self._table.find(number)
        if held is None:
            return None
        return held[0], None if held[1] == _NO_TASK else held[1]

    def __contains__(self, article_id: str) -> bool:
        return self.get(article_id) is not None

    def set(self, article_id: str, rank: int, where: int | None) -> None:
        value = (rank, _NO_TASK if where is None else where)
        number = hex_u64(article_id)
        if number is None:
            self._other[article_id] = value
        else:
            self._table.put(number, value)

    def settle(self) -> None:
        """Merge the additions into the sorted columns (once a feed: a copy of the columns each time)."""
        self._table.merge()


class TaskSpool(Sequence[PageTask]):
    """Page tasks pickled to an unnamed temporary file in `directory`, each read back when asked for, with
    what the fetch needs of every task at once kept in memory: its URL and source. A big run's feed items
    cost ~1.8 KB each as objects (title, summary, links, tags); here ~100 bytes (the URL's, in a
    StringColumn, and a pointer to its source's one string)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._pickles: Any = None  # dedup.ArrayStore, made at the first task (a run of 304s imports no dedup)
        self._at = array.array("q")  # the pickle of each task (a replaced task's is a new one)
        self.urls = StringColumn()  # see pipeline.columns
        self.sources: list[str] = []
        self._names: dict[str, str] = {}  # one string per source

    def __len__(self) -> int:
        return len(self._at)

    def _put(self, task: PageTask) -> int:
        if self._pickles is None:
            from pipeline.dedup import ArrayStore

            self._pickles = ArrayStore(np.uint8, self._directory)
        self._pickles.append(np.frombuffer(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8))
        return len(self._pickles) - 1

    def append(self, task: PageTask) -> None:
        self._at.append(self._put(task))
        self.urls.append(task.item.url)
        self.sources.append(self._names.setdefault(task.item.source, task.item.source))

    def __setitem__(self, i: int, task: PageTask) -> None:
        self._at[i] = self._put(task)
        self.urls[i] = task.item.url
        self.sources[i] = self._names.setdefault(task.item.source, task.item.source)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        return pickle.loads(self._pickles[self._at[i]])

    def close(self) -> None:
        if self._pickles is not None:
            self._pickles.close()


class _SourceOfUrl:
    """`source_of` of a TaskSpool's tasks for the fetch log (`.get(url)`), without a dict of every URL: the
    URLs' hashes sorted, each with its task, whose URL is compared (a hash shared by chance finds the right one)."""

    def __init__(self, tasks: TaskSpool) -> None:
        hashes = np.fromiter((hash(u) if u else 0 for u in tasks.urls), dtype=np.int64, count=len(tasks))
        self._order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[self._order]
        self._tasks = tasks

    def get(self, url: str | None) -> str | None:
        if not url:
            return None
        h = hash(url)
        lo = int(np.searchsorted(self._hashes, h, side="left"))
        for k in range(lo, int(np.searchsorted(self._hashes, h, side="right"))):
            i = int(self._order[k])
            if self._tasks.urls[i] == url:
                return self._tasks.sources[i]
        return None


def _task_urls(tasks: Sequence[PageTask]) -> Sequence[str | None]:
    return tasks.urls if isinstance(tasks, TaskSpool) else [t.item.url for t in tasks]


def _task_sources(tasks: Sequence[PageTask]) -> list[str]:
    return tasks.sources if isinstance(tasks, TaskSpool) else [t.item.source for t in tasks]


def add_ids(seen: np.ndarray, new_ids: np.ndarray) -> np.ndarray:
    """The stored-id set `seen` (sorted, unique uint64) with `new_ids` added: what np.union1d returns, in
    time linear in len(seen) (a binary search per new id, one copy) where union1d sorts the whole set
    again (0.6 s for a million ids, at every commit)."""
    new = np.unique(np.asarray(new_ids, dtype=np.uint64))
    if not len(new):
        return seen
    pos = np.searchsorted(seen, new)
    known = pos < len(seen)
    known[known] = seen[pos[known]] == new[known]
    if known.all():
        return seen  # nothing new: the same array (the caller may then reuse the file it came from)
    return np.insert(seen, pos[~known], new[~known])


def _in_sorted(arr: np.ndarray, value: int) -> bool:
    if not len(arr):
        return False
    i = int(np.searchsorted(arr, np.uint64(value)))
    return i < len(arr) and int(arr[i]) == value


def plan_page_batches(tasks: Sequence[PageTask], max_batches: int = 64) -> list[list[PageTask]]:
    """Pages grouped by host (politeness is per host, so a host's pages stay in one batch)."""
    from pipeline.fetch.client import host_key

    by_host: dict[str, list[PageTask]] = defaultdict(list)
    for t in tasks:
        by_host[host_key(t.item.url or "")].append(t)
    batches: list[list[PageTask]] = [[] for _ in range(min(max_batches, max(1, len(by_host))))]
    for host_tasks in sorted(by_host.values(), key=len, reverse=True):
        min(batches, key=len).extend(host_tasks)
    return [b for b in batches if b]


# ---------------------------------------------------------------------------------------------------- pages


@pickled_by_fields
@dataclass(slots=True)
class Precleaned:
    """A page's text cleaned where it was extracted, before its site's template is known (`preclean_text`),
    and the fingerprint of the cleaned text. The commit's pass 2 takes it as the cleaning unless the
    template it learned marks one of the text's lines (`SiteTemplate.marks_any`): then it cleans the
    text again, with the template. So a commit's CPU work is in the fetch's workers, and its rows are
    the same."""

    cleaned: Any  # clean.CleanResult (`removed` left empty)
    probe: Any  # clean.TemplateProbe
    fingerprint: Any = None  # dedup.Fingerprint of the cleaned text; None when it makes no article text


@pickled_by_fields
@dataclass(slots=True)
class PageOutcome:
    task: PageTask
    fetch: FetchResult  # body and text dropped after extraction
    extracted: Extracted | None
    fetched_at: datetime
    # The staging file (TextSpool) holding the extracted text when it was spooled during the fetch;
    # `extracted.text` is then None. None: the text, if any, is `extracted.text` (watch, reextract, tests).
    text_file: Path | None = None
    precleaned: Precleaned | None = None  # the text cleaned where it was extracted (the commit checks it)

    @property
    def has_text(self) -> bool:
        return self.text_file is not None or bool(self.extracted is not None and self.extracted.text)


class PageSpool:
    """Page outcomes in order of arrival: pickled to an unnamed temporary file in `directory` (or held in
    memory, with None), with what the commit reads of every page kept in memory: its article id, site,
    text spool and whether it has a text; a precleaned page's template probe is spilled beside it. A big
    run's pages cost ~2 KB each as objects (fetch result, extraction metadata), which the commit reads
    back a chunk at a time (see PageList), each page once."""

    def __init__(self, directory: Path | None = None) -> None:
        self._objects: list[PageOutcome] | None = None
        self._pickles: Any = None  # dedup.ArrayStore: the pickled pages, as byte arrays in an unnamed file
        if directory is None:
            self._objects = []  # (a commit of 304s wraps its empty page list: no dedup import for it)
        else:
            from pipeline.dedup import ArrayStore

            self._pickles = ArrayStore(np.uint8, directory)
        self.article_ids = HexColumn(8)
        self.sites: list[str] = []
        self.text_files: list[Path | None] = []
        self.precleaned = bytearray()  # 1: the page has a Precleaned
        # 1: fetched, extracted and with a text, so the commit's triage need not read it back
        self.with_text = bytearray()
        # The template probes of precleaned pages, spilled beside the pages: the commit's pass 1 reads
        # only these (a probe is ~300 bytes; unpickling its page cost 45 us)
        self._probes: Any = None
        self._names: dict[str, str] = {}  # one string per site
        # A fingerprinted precleaned page's pass 3 keys (its row in `_keys`, else -1) and its fingerprint's
        # arrays spilled beside it: the commit's pool dedup pass starts from these, reading no page
        self._key_row = array.array("q")
        self._keys: _DedupKeys | None = None
        self._fingerprints: Any = None

    def __len__(self) -> int:
        return len(self.article_ids)

    def append(self, po: PageOutcome) -> int:
        site = _page_site(po)
        self.article_ids.append(po.task.article_id)
        self.sites.append(self._names.setdefault(site, site))
        self.text_files.append(po.text_file)
        self.precleaned.append(po.precleaned is not None)
        self.with_text.append(po.extracted is not None and po.extracted.status == "ok" and po.has_text)
        if self._objects is not None:
            self._objects.append(po)
        elif self._pickles is not None:
            if self._probes is None:
                from pipeline.dedup import ArrayStore

                self._probes = ArrayStore(np.uint64, self._pickles.spill_to)
            self._probes.append(_pack_probe(po.precleaned.probe) if po.precleaned is not None else _NO_PROBE)
            self._key_row.append(self._add_keys(po))
            # its text spool is in `text_files`: a Path costs more to unpickle than the rest of the page
            data = pickle.dumps(replace(po, text_file=None) if po.text_file is not None else po,
                                protocol=pickle.HIGHEST_PROTOCOL)
            self._pickles.append(np.frombuffer(data, dtype=np.uint8))
        else:
            raise ValueError("the page spool was released")
        return len(self.article_ids) - 1

    def _add_keys(self, po: PageOutcome) -> int:
        """Keep the pass 3 keys of a precleaned page (`_start_dedup`'s of an unmarked page); its row, else -1."""
        pre = po.precleaned
        if pre is None or po.extracted is None:
            return -1
        if pre.fingerprint is None:
            return -2  # no article text: nothing for pass 3
        if self._keys is None:
            from pipeline.dedup import ArrayStore

            self._keys = _DedupKeys(seen_may_be_none=True)
            self._fingerprints = ArrayStore(np.uint64, self._pickles.spill_to)
        self._keys.add_page(po, pre.cleaned, pre.fingerprint, po.task.first_seen_at)
        self._fingerprints.append(_pack_fingerprint(pre.fingerprint))
        return len(self._keys) - 1

    def keys_of(self, i: int, into: _DedupKeys, now: datetime) -> Any:
        """Add page `i`'s pass 3 keys (first seen `now` where its task has no time) to `into` and give its
        fingerprint's arrays (MinHash values, sampled keys), as `_start_dedup` would from the page; None
        (nothing added) where they were not kept, NO_FINGERPRINT where the page has none."""
        row = self._key_row[i] if i < len(self._key_row) else -1
        if row == -2:
            return NO_FINGERPRINT
        if row < 0:
            return None
        assert self._keys is not None and self._fingerprints is not None
        into.copy_row(self._keys, row, now)
        return _unpack_fingerprint(self._fingerprints[row])

    def release_keys(self) -> None:
        """Free the kept pass 3 keys (read once, by `_start_dedup`): `keys_of` then reads nothing."""
        if self._fingerprints is not None:
            self._fingerprints.close()
        self._keys = self._fingerprints = None
        self._key_row = array.array("q")

    def get(self, i: int) -> PageOutcome:
        if self._objects is not None:
            return self._objects[i]
        if self._pickles is None:
            raise ValueError("the page spool was released")
        po = pickle.loads(self._pickles[i])
        po.text_file = self.text_files[i]
        return po

    def probe(self, i: int) -> Any:
        """The clean.TemplateProbe of page `i`, which has a Precleaned, without reading the page."""
        if self._objects is not None:
            return self._objects[i].precleaned.probe
        if self._probes is None:
            raise ValueError("the page spool was released")
        return _unpack_probe(self._probes[i])

    def release(self) -> None:
        """Free the pages (the ids, sites and text spools stay)."""
        self._objects = None
        for store in (self._pickles, self._probes):
            if store is not None:
                store.close()
        self._pickles = self._probes = None
        self.release_keys()


_NO_PROBE = np.zeros(0, dtype=np.uint64)
NO_FINGERPRINT = object()  # PageSpool.keys_of of a precleaned page without an article text


def _pack_fingerprint(fp: Any) -> np.ndarray:
    """A fingerprint's arrays as one uint64 array: the MinHash values' count, the values (uint32, two to a
    word, the count rounded up), then the sampled keys."""
    minhash = np.ascontiguousarray(fp.minhash, dtype=np.uint32)
    if minhash.size % 2:
        minhash = np.append(minhash, np.uint32(0))
    return np.concatenate([np.array([fp.minhash.size], dtype=np.uint64), minhash.view(np.uint64),
                           np.ascontiguousarray(fp.sample, dtype=np.uint64)])


def _unpack_fingerprint(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_pack_fingerprint`'s (MinHash values, sampled keys): views of `packed`."""
    n = int(packed[0])
    words = (n + 1) // 2
    return packed[1:1 + words].view(np.uint32)[:n], packed[1 + words:]


def _pack_probe(probe: Any) -> np.ndarray:
    """A TemplateProbe as one uint64 array: the sizes of `keys`, `long_keys` and `tested`, then the four
    arrays (`tested_long` as 0 and 1; it is as long as `tested`)."""
    sizes = np.array([probe.keys.size, probe.long_keys.size, probe.tested.size], dtype=np.uint64)
    return np.concatenate([sizes, probe.keys, probe.long_keys, probe.tested, probe.tested_long.astype(np.uint64)])


def _unpack_probe(packed: np.ndarray) -> Any:
    from pipeline.clean import TemplateProbe

    n_keys, n_long, n_tested = packed[:3].tolist()
    a = 3 + n_keys
    b = a + n_long
    c = b + n_tested
    return TemplateProbe(packed[3:a], packed[a:b], packed[b:c], packed[c:c + n_tested].astype(bool))


class PageList(Sequence[PageOutcome]):
    """Some pages of a PageSpool in a given order: each page is read when it is asked for; its article id,
    site and text spool without reading it."""

    def __init__(self, spool: PageSpool, index: Sequence[int] | np.ndarray) -> None:
        self.spool = spool
        # 8 bytes a page, not an int object each
        self.index = (array.array("q", np.ascontiguousarray(index, dtype=np.int64).tobytes())
                      if isinstance(index, np.ndarray) else array.array("q", index))

    @classmethod
    def of(cls, pages: Sequence[PageOutcome]) -> PageList:
        """`pages` as a PageList (a list of pages is wrapped, not copied)."""
        if isinstance(pages, PageList):
            return pages
        spool = PageSpool()
        for po in pages:
            spool.append(po)
        return cls(spool, range(len(spool)))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return PageList(self.spool, self.index[k])
        return self.spool.get(self.index[k])

    def __iter__(self) -> Iterator[PageOutcome]:
        return (self.spool.get(i) for i in self.index)

    def article_id(self, k: int) -> str:
        return self.spool.article_ids[self.index[k]]

    def site(self, k: int) -> str:
        return self.spool.sites[self.index[k]]

    def text_file(self, k: int) -> Path | None:
        return self.spool.text_files[self.index[k]]

    def precleaned(self, k: int) -> bool:
        return bool(self.spool.precleaned[self.index[k]])

    def with_text(self, k: int) -> bool:
        return bool(self.spool.with_text[self.index[k]])

    def probe(self, k: int) -> Any:
        return self.spool.probe(self.index[k])

    def keys_of(self, k: int, into: _DedupKeys, now: datetime) -> Any:
        return self.spool.keys_of(self.index[k], into, now)

    def subset(self, ks: Iterable[int]) -> PageList:
        """The pages at positions `ks` of this list, in that order."""
        return PageList(self.spool, [self.index[k] for k in ks])


def _extract_worker(html: str, url: str | None, min_words: int, feed_published_at: datetime | None) -> Extracted:
    from pipeline.extract import extract_page

    try:
        return extract_page(html, url, min_words=min_words, feed_published_at=feed_published_at)
    except Exception as exc:  # an extractor bug on one page must not stop the run
        return Extracted(status="error", error=f"{type(exc).__name__}: {exc}")


def _extract_precleaned_many(args: list[tuple[Any, ...]], min_words: int, dedup: Any | None
                             ) -> list[tuple[Extracted, Precleaned | None]]:
    """Extract pages (`_extract_worker`'s arguments and the feed item's title) and `_preclean` them: pass
    2's cleaning and fingerprints, done with the extraction (see Precleaned); not with `dedup` None."""
    extracted = [(_extract_worker(html, url, words, published), title) for html, url, words, published, title in args]
    if dedup is None:
        return [(ex, None) for ex, _ in extracted]
    return list(zip((ex for ex, _ in extracted), _preclean(extracted, min_words, dedup), strict=True))


def _preclean(pages: Sequence[tuple[Extracted, str | None]], min_words: int, dedup: Any) -> list[Precleaned | None]:
    """The Precleaned of each (extraction, feed item title) with an article text, else None (also where the
    precleaning fails: the commit cleans that page)."""
    from pipeline.clean import preclean_text
    from pipeline.dedup import fingerprints

    out: list[Precleaned | None] = []
    for ex, item_title in pages:
        pre = None
        if ex.status == "ok" and ex.text:
            try:
                pre = Precleaned(*preclean_text(ex.text, title=ex.title or item_title, site_name=ex.site_name))
            except Exception as exc:  # noqa: BLE001 - the commit's own cleaning reports it
                log.debug("precleaning failed: %s: %s", type(exc).__name__, exc)
        out.append(pre)
    articles = [pre for pre in out if pre is not None and _has_text(pre.cleaned, min_words)]
    for pre, fp in zip(articles, fingerprints([pre.cleaned.text for pre in articles], dedup), strict=True):
        pre.fingerprint = fp
    return out


_EXTRACT_BATCH = 8  # pages per pool task
_EXTRACT_WAIT_S = 0.005  # a batch that is not full leaves after this long


class _ExtractBatches:
    """Pages to extract (`_extract_precleaned_many`), sent to the process pool `size` at a time: each pool task
    costs both processes pickling, a pipe round trip and wake-ups (about a tenth of a page's extraction); a
    batch that is not full leaves after `wait_s`, so the last pages of a run do not wait for company.
    `min_words`, `dedup`: `_extract_precleaned_many`'s (`dedup` None: no precleaning)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Executor, min_words: int, dedup: Any | None,
                 size: int = _EXTRACT_BATCH, wait_s: float = _EXTRACT_WAIT_S) -> None:
        self.loop, self.pool, self.size, self.wait_s = loop, pool, size, wait_s
        self.preclean = (min_words, dedup)
        self.waiting: list[tuple[tuple[Any, ...], asyncio.Future[tuple[Extracted, Precleaned | None]]]] = []
        self.timer: asyncio.TimerHandle | None = None

    def extract(self, *args: Any) -> asyncio.Future[tuple[Extracted, Precleaned | None]]:
        future: asyncio.Future[tuple[Extracted, Precleaned | None]] = self.loop.create_future()
        self.waiting.append((args, future))
        if len(self.waiting) >= self.size:
            self.send()
        elif self.timer is None:
            self.timer = self.loop.call_later(self.wait_s, self.send)
        return future

    def send(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.waiting = self.waiting, []
        if not batch:
            return
        try:
            done = asyncio.wrap_future(self.pool.submit(_extract_precleaned_many, [a for a, _ in batch],
                                                        *self.preclean), loop=self.loop)
        except Exception as exc:  # noqa: BLE001 - a pool shut down or broken: each page's caller sees it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return

        def deliver(result: asyncio.Future[list[tuple[Extracted, Precleaned | None]]]) -> None:
            if result.cancelled():
                for _, future in batch:
                    future.cancel()
            elif result.exception() is not None:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(result.exception())
            else:
                for (_, future), extracted in zip(batch, result.result(), strict=True):
                    if not future.done():
                        future.set_result(extracted)

        done.add_done_callback(deliver)


# Staging files this process writes and reads back itself, then deletes (the texts, the article rows): LZ4
# writes and reads 5,000 articles' rows in half zstd's time (51 / 18 against 107 / 34 ms; the commit reads
# them back on its single-core end), in files 1.5 times the size. Files that are committed as they are
# (raw pages, the dedup index's entries) stay zstd.
_SCRATCH_COMPRESSION = "lz4"


class _StagingParquet:
    """A staging Parquet file written in row groups as rows arrive (memory stays flat). Always a new file,
    never a rewrite in place: a committed file may be a hard link of this path (Warehouse.put_file) when a
    task of an already committed run is re-run."""

    def __init__(self, path: Path, compression: str = "zstd") -> None:
        self.path = path
        self.compression = compression
        self._writer: Any = None
        self.count = 0

    def _write(self, table: Any, row_group_size: int | None = None) -> None:
        if self._writer is None:
            import pyarrow.parquet as pq

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.unlink(missing_ok=True)
            from pipeline.schema import dictionary_columns

            self._writer = pq.ParquetWriter(self.path, table.schema, compression=self.compression,
                                            use_dictionary=dictionary_columns(table.schema))
        self._writer.write_table(table, row_group_size=row_group_size)
        self.count += table.num_rows

    def flush(self) -> None:
        """Write what a subclass buffers (the base class buffers nothing: `_write` writes at once)."""

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RawPageWriter(_StagingParquet):
    """Streams fetched page bytes to a staging Parquet file in bounded batches."""

    # RAW_PAGE_SCHEMA's columns but run_id, which is the writer's
    _COLUMNS = ("article_id", "url", "final_url", "source", "fetched_at", "http_status", "content_type", "charset",
                "body")

    def __init__(self, path: Path, run_id: str, flush_rows: int = 256) -> None:
        super().__init__(path)
        self.run_id = run_id
        self.flush_rows = flush_rows
        self._rows: list[tuple[Any, ...]] = []
        self._bodies = bytearray()  # the body column's bytes, reused from one flush to the next (see _body_column)

    def add(self, task: PageTask, res: FetchResult, fetched_at: datetime) -> None:
        crash_point("fetch")  # test hook: NEWSINGEST_CRASH_AT=fetch@N kills the run at its N-th page
        self._rows.append((task.article_id, res.url, res.final_url, task.item.source, fetched_at, res.http_status,
                           res.content_type, res.charset, res.body))
        if len(self._rows) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        import pyarrow as pa

        from pipeline.schema import RAW_PAGE_SCHEMA

        # column by column: a table from a list of dicts looked up each key of each row (54 us a page, now 30)
        columns = dict(zip(self._COLUMNS, zip(*self._rows, strict=True), strict=True))
        columns["run_id"] = (self.run_id,) * len(self._rows)
        self._write(pa.Table.from_arrays([self._body_column(columns["body"]) if f.name == "body"
                                          else pa.array(columns[f.name], f.type) for f in RAW_PAGE_SCHEMA],
                                         schema=RAW_PAGE_SCHEMA))
        self._rows = []

    def _body_column(self, bodies: Sequence[bytes | None]) -> Any:
        """The bodies as a large_binary array over a buffer this writer keeps (the table is written before
        the next flush fills it again). `pa.array` took a new buffer each flush, ~10 MB: above the run's
        mmap threshold (see _malloc.return_freed_memory), so a fresh mapping, every page of it faulted in
        from the kernel again (0.05 ms a 40 KB page, as much as writing it). Past `_REUSED_BODY_BYTES` a
        flush's bodies take a buffer of their own, freed after it."""
        import pyarrow as pa

        sizes = np.fromiter((len(b) if b is not None else 0 for b in bodies), dtype=np.int64, count=len(bodies))
        offsets = np.zeros(len(bodies) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        total = int(offsets[-1])
        if total > _REUSED_BODY_BYTES:
            return pa.array(bodies, pa.large_binary())
        if total > len(self._bodies):
            # a new one (the last table may still hold the old), room to grow without one each flush
            self._bodies = bytearray(min(max(total, 2 * len(self._bodies)), _REUSED_BODY_BYTES))
        view = memoryview(self._bodies)
        for body, start, size in zip(bodies, offsets[:-1].tolist(), sizes.tolist(), strict=True):
            if size:
                view[start:start + size] = body
        valid = None
        if any(b is None for b in bodies):
            valid = pa.py_buffer(np.packbits(np.fromiter((b is not None for b in bodies), dtype=bool,
                                                         count=len(bodies)), bitorder="little"))
        return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(bodies),
                                                [valid, pa.py_buffer(offsets), pa.py_buffer(view[:total])])


_REUSED_BODY_BYTES = 64 << 20  # a raw page writer keeps a body buffer of at most this size between flushes


TEXT_SPOOL_COLUMNS = ("article_id", "text")


class TextSpool(_StagingParquet):
    """Streams extracted texts (article id, text) to a staging Parquet file in bounded batches, so a run
    keeps only small page stubs in memory while it fetches; the commit reads the texts back in chunks."""

    def __init__(self, path: Path, flush_rows: int = 256) -> None:
        super().__init__(path, _SCRATCH_COMPRESSION)
        self.flush_rows = flush_rows
        self._ids: list[str] = []
        self._texts: list[str] = []

    @staticmethod
    def schema() -> Any:
        import pyarrow as pa

        return pa.schema([pa.field("article_id", pa.string(), nullable=False),
                          pa.field("text", pa.large_string(), nullable=False)])

    def add(self, article_id: str, text: str) -> None:
        self._ids.append(article_id)
        self._texts.append(text)
        if len(self._ids) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self._ids:
            return
        import pyarrow as pa

        self._write(pa.Table.from_arrays([pa.array(self._ids, pa.string()), pa.array(self._texts, pa.large_string())],
                                         schema=self.schema()))
        self._ids, self._texts = [], []


def _pool_workers(config: Config) -> int:
    return config.extract.workers or (os.cpu_count() or 1)


def _make_pool(config: Config, n_tasks: int) -> Executor | None:
    """A process pool for `n_tasks` pieces of CPU work (pages to extract, feeds to parse), or None where
    in-process work is better. Its processes start at the first task given to it, not before: a run whose
    feeds all answer 304 starts none."""
    import multiprocessing

    workers = _pool_workers(config)
    # A daemonic process may not start children: a task of a Celery prefork worker (and its Airflow task
    # process, forked from it) extracts in-process instead of failing.
    if workers <= 1 or n_tasks < 16 or multiprocessing.current_process().daemon:
        return None
    from concurrent.futures import ProcessPoolExecutor  # not imported by a run that needs no pool

    _malloc.single_threaded_blas()  # the workers' numpy
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_lower_priority, initargs=(config.extract.worker_nice,))


def _lower_priority(increment: int) -> None:
    """A pool worker's start: its CPU priority below the run's (see ExtractSettings.worker_nice)."""
    if increment and hasattr(os, "nice"):
        try:
            os.nice(increment)
        except OSError:  # a priority is an optimisation, never a failure
            log.debug("could not lower the worker's priority", exc_info=True)


def _pages_in_flight(config: Config) -> int:
    return max(64, 4 * config.fetch.concurrency)


def _interleave_hosts(tasks: Sequence[PageTask]) -> np.ndarray:
    """Indices of `tasks`, one host after the other in turn (round robin, hosts in order of first
    appearance, each host's pages in their order)."""
    from pipeline.fetch.client import host_key

    host_order: dict[str, int] = {}
    taken: dict[str, int] = defaultdict(int)
    turn = np.empty(len(tasks), dtype=np.int64)  # the task's rank among its host's
    host = np.empty(len(tasks), dtype=np.int64)
    for i, url in enumerate(_task_urls(tasks)):
        key = host_key(url or "")
        turn[i], host[i] = taken[key], host_order.setdefault(key, len(host_order))
        taken[key] += 1
    return np.lexsort((host, turn))  # by turn, then host; ties (none) in task order


async def _fetch_pages_async(config: Config, tasks: Sequence[PageTask], raw: RawPageWriter,
                             sink: _LogSink, progress: Callable[[int], None] | None,
                             fetch_env: dict[str, Any], texts: TextSpool | None = None,
                             given_pool: Executor | None = None, spool: PageSpool | None = None,
                             precleaned: bool = True) -> PageList:
    from pipeline.fetch.client import Fetcher

    loop = asyncio.get_running_loop()
    pool = given_pool or _make_pool(config, len(tasks))
    local_extract = asyncio.Semaphore(1)
    from pipeline.dedup import plain_settings

    preclean = (config.extract.min_words, plain_settings(config.dedup) if precleaned else None)
    batches = _ExtractBatches(loop, pool, *preclean) if pool is not None else None
    try:
        async with Fetcher(config.fetch, on_result=sink, host_delays=_host_delays(config), **fetch_env) as fetcher:

            async def one(task: PageTask) -> PageOutcome:
                assert task.item.url is not None
                res = await fetcher.fetch(task.item.url, "page")
                fetched_at = datetime.now(UTC)
                extracted = pre = None
                if res.outcome == "ok" and res.text is not None:
                    raw.add(task, res, fetched_at)
                    args = (res.text, res.final_url or res.url, config.extract.min_words, task.item.published_at,
                            task.item.title)
                    if batches is not None:
                        extracted, pre = await batches.extract(*args)
                    else:  # in a thread, one at a time: the event loop keeps every request's deadline
                        async with local_extract:
                            [(extracted, pre)] = await asyncio.to_thread(_extract_precleaned_many, [args], *preclean)
                elif res.outcome == "bad_content":  # an empty 200 is no article; a PDF or an image is not HTML
                    extracted = Extracted(status="no_article" if res.error == "empty body" else "not_html",
                                          error=res.error)
                res.body = res.text = None  # the bytes are in the raw-pages file now
                text_file = None
                if texts is not None and extracted is not None and extracted.text:
                    texts.add(task.article_id, extracted.text)  # the text waits for the commit on disk
                    extracted.text, text_file = None, texts.path
                if progress:
                    progress(1)
                return PageOutcome(task, res, extracted, fetched_at, text_file, pre)

            # A bounded number of pages in flight (fetched, queued for or in extraction), taken from the hosts
            # in turn: memory stays flat however many pages a run has, and no host waits behind another's
            # queue (each host's own slots and delay are still the Fetcher's).
            pages = spool if spool is not None else PageSpool()
            at = array.array("q", [-1]) * len(tasks)  # where each task's page is in the spool
            order = iter(_interleave_hosts(tasks))  # numpy's: no int object per task held meanwhile

            async def runner() -> None:
                for i in order:  # one iterator shared by every runner: each page is taken once
                    at[i] = pages.append(await one(tasks[i]))

            await asyncio.gather(*(runner() for _ in range(min(len(tasks), _pages_in_flight(config)))))
            done = np.frombuffer(at, dtype=np.int64)
            return PageList(pages, done[done >= 0])
    finally:
        if pool is not None and pool is not given_pool:
            pool.shutdown(wait=True, cancel_futures=True)


_LOG_COMPACT_ROWS = 4096  # a page fetch's log rows are held as a table this many at a time


def fetch_pages(config: Config, tasks: Sequence[PageTask], staging: Path, batch_key: str, run_id: str,
                progress: Callable[[int], None] | None = None, *, cache_dir: Path | None = None,
                now: datetime | None = None, pool: Executor | None = None, precleaned: bool = True,
                ) -> tuple[Sequence[PageOutcome], list[dict[str, Any]] | Any, Path | None]:
    """Fetch and extract the pages of `tasks`, in their order (a PageList: the pages wait in `staging` on disk,
    read back when asked for), with their fetch-log rows (dicts, or a FETCH_LOG_SCHEMA table past
    `_LOG_COMPACT_ROWS` fetches: see _LogSink) and the raw-page file. `pool`: the process pool to extract
    in (the caller's, left running); without one, a pool of the run's own when there are enough pages,
    else in-process. `precleaned`: each text is also precleaned (see Precleaned), for the commit (in this
    process, or a commit task: `save_page_stage`)."""
    if not tasks:  # nothing new (every feed 304): no HTTP client, no extraction pool, no staging file
        return [], [], None
    if cache_dir is None and staging.parent.name == "_staging":  # <warehouse>/_staging/<run_id>: its _cache
        cache_dir = staging.parent.parent / "_cache"
    raw = RawPageWriter(staging / f"raw-{batch_key}.parquet", run_id)
    texts = TextSpool(staging / f"texts-{batch_key}.parquet")
    source_of: Any = (_SourceOfUrl(tasks) if isinstance(tasks, TaskSpool) else
                      {u: s for u, s in zip(_task_urls(tasks), _task_sources(tasks), strict=True) if u})
    sink = _LogSink([], source_of, run_id=run_id, compact_at=_LOG_COMPACT_ROWS,
                    spill_to=staging / f"fetch-log-{batch_key}.arrow")
    try:
        outcomes = asyncio.run(_fetch_pages_async(config, tasks, raw, sink, progress, _fetch_env(cache_dir, now),
                                                  texts, pool, PageSpool(staging), precleaned))
    finally:
        raw.close()
        texts.close()
    return outcomes, sink.log(), raw.path if raw.count else None


# ---------------------------------------------------------------------------------------------------- staging


def save_feed_stage(path: Path, outcomes: list[FeedOutcome], log_rows: list[dict[str, Any]]) -> None:
    atomic_write_json(path, {
        "feeds": [{**{k: v for k, v in asdict(o).items() if k not in ("items", "item_times")},
                   "items": [_record_to_dict(i) for i in o.items],
                   "item_times": None if o.item_times is None else [t.isoformat() for t in o.published_times()]}
                  for o in outcomes],
        "log": log_rows,
    })


def load_feed_stage(path: Path) -> tuple[list[FeedOutcome], list[dict[str, Any]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    outcomes = []
    for d in data["feeds"]:
        items = [_record_from_dict(FeedItem, i) for i in d.pop("items")]
        d["polled_at"] = _dt(d.get("polled_at"))
        if d.get("item_times") is not None:
            d["item_times"] = array.array("q", (utc_us(_dt(t)) for t in d["item_times"]))
        outcomes.append(FeedOutcome(**d, items=items))
    for row in data["log"]:
        row["started_at"] = _dt(row.get("started_at"))
    return outcomes, data["log"]


def save_page_tasks(path: Path, tasks: Sequence[PageTask]) -> None:
    atomic_write_json(path, [{"article_id": t.article_id, "attempts": t.attempts, "first_seen_at": _ts(t.first_seen_at),
                              "item": _record_to_dict(t.item)} for t in tasks])


def load_page_tasks(path: Path) -> list[PageTask]:
    return [PageTask(d["article_id"], _record_from_dict(FeedItem, d["item"]), d["attempts"], _dt(d["first_seen_at"]))
            for d in json.loads(path.read_text(encoding="utf-8"))]


def precleaned_stamp(config: Config) -> str:
    """What a precleaning depends on besides the page (see Precleaned): the code, the words an article needs,
    the dedup settings of its fingerprint. A commit whose own stamp differs (a config or a release changed
    between the fetch task and the commit task) cleans those texts again."""
    from pipeline import __version__

    return json.dumps({"format": _PRECLEANED_FORMAT, "newsingest": __version__, "min_words": config.extract.min_words,
                       "dedup": config.dedup.model_dump(mode="json")}, sort_keys=True)


_PRECLEANED_FORMAT = 1
_PRECLEANED_META = b"newsingest.precleaned"


def _precleaned_schema() -> Any:
    import pyarrow as pa

    binary = pa.large_binary()
    return pa.schema([
        pa.field("article_id", pa.string(), nullable=False), pa.field("text", pa.large_string(), nullable=False),
        pa.field("title", pa.string()), pa.field("authors", pa.list_(pa.string())),
        pa.field("published_at", pa.string()),  # ISO 8601: naive (the outlet's local time) or with its offset
        pa.field("published_source", pa.string()), pa.field("syndicated_from", pa.string()),
        pa.field("probe_keys", binary), pa.field("probe_long_keys", binary), pa.field("probe_tested", binary),
        pa.field("probe_tested_long", binary),
        pa.field("content_hash", pa.string()),  # null: no fingerprint (the text makes no article)
        pa.field("n_tokens", pa.int64()), pa.field("minhash", binary), pa.field("sample", binary),
    ])


def _little_endian_bytes(a: np.ndarray, dtype: str) -> bytes:
    return np.asarray(a).astype(dtype, copy=False).tobytes()


def precleaned_table(outcomes: Iterable[PageOutcome], stamp: str) -> Any:
    """The Precleaned of `outcomes` (those that have one) as an Arrow table, arrays as little-endian bytes."""
    import pyarrow as pa

    cols: dict[str, list[Any]] = {f.name: [] for f in _precleaned_schema()}
    for po in outcomes:
        pre = po.precleaned
        if pre is None:
            continue
        c, probe, fp = pre.cleaned, pre.probe, pre.fingerprint
        cols["article_id"].append(po.task.article_id)
        cols["text"].append(c.text)
        cols["title"].append(c.title)
        cols["authors"].append(list(c.authors))
        cols["published_at"].append(c.published_at.isoformat() if c.published_at else None)
        cols["published_source"].append(c.published_source)
        cols["syndicated_from"].append(c.syndicated_from)
        cols["probe_keys"].append(_little_endian_bytes(probe.keys, "<u8"))
        cols["probe_long_keys"].append(_little_endian_bytes(probe.long_keys, "<u8"))
        cols["probe_tested"].append(_little_endian_bytes(probe.tested, "<u8"))
        cols["probe_tested_long"].append(_little_endian_bytes(probe.tested_long, "?"))
        cols["content_hash"].append(fp.content_hash if fp is not None else None)
        cols["n_tokens"].append(int(fp.n_tokens) if fp is not None else None)
        cols["minhash"].append(_little_endian_bytes(fp.minhash, "<u4") if fp is not None else None)
        cols["sample"].append(_little_endian_bytes(fp.sample, "<u8") if fp is not None else None)
    schema = _precleaned_schema().with_metadata({_PRECLEANED_META: stamp.encode()})
    return pa.Table.from_pydict(cols, schema=schema)


def precleaned_from_table(table: Any) -> dict[str, Precleaned]:
    """`precleaned_table`'s Precleaned by article id."""
    from pipeline.clean import CleanResult, TemplateProbe
    from pipeline.dedup import Fingerprint

    def arr(b: bytes, dtype: str, native: Any) -> np.ndarray:
        return np.frombuffer(b, dtype=dtype).astype(native)  # a copy: writable, in native byte order

    out: dict[str, Precleaned] = {}
    for r in table.to_pylist():
        cleaned = CleanResult(r["text"], r["title"], list(r["authors"] or []),
                              datetime.fromisoformat(r["published_at"]) if r["published_at"] else None,
                              r["published_source"], r["syndicated_from"])
        probe = TemplateProbe(arr(r["probe_keys"], "<u8", np.uint64), arr(r["probe_long_keys"], "<u8", np.uint64),
                              arr(r["probe_tested"], "<u8", np.uint64), arr(r["probe_tested_long"], "?", np.bool_))
        fp = None
        if r["content_hash"] is not None:
            fp = Fingerprint(r["content_hash"], int(r["n_tokens"]), arr(r["minhash"], "<u4", np.uint32),
                             arr(r["sample"], "<u8", np.uint64))
        out[r["article_id"]] = Precleaned(cleaned, probe, fp)
    return out


def _save_precleaned(path: Path, outcomes: Sequence[PageOutcome], stamp: str) -> bool:
    """The precleaned texts of a page stage, beside it (written before the stage that names it)."""
    table = precleaned_table(outcomes, stamp)
    if not table.num_rows:
        return False
    write_parquet_atomic(path, table)
    return True


def _load_precleaned(path: Path, stamp: str | None) -> dict[str, Precleaned]:
    """The precleaned texts saved beside a page stage, or none (then the commit cleans those texts: the same
    rows) when they were made under another stamp or cannot be read: never an error of the commit."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        made_under = (table.schema.metadata or {}).get(_PRECLEANED_META, b"").decode()
        if made_under != stamp:
            log.info("precleaned texts in %s were made under other settings or code; the commit cleans them", path)
            return {}
        if not table.schema.remove_metadata().equals(_precleaned_schema()):
            raise ValueError(f"unexpected columns {table.schema.names}")
        return precleaned_from_table(table)
    except Exception as exc:  # noqa: BLE001 - an optimisation: the texts are cleaned instead
        log.warning("precleaned texts in %s not used (%s: %s); the commit cleans them", path, type(exc).__name__, exc)
        return {}


def save_page_stage(path: Path, outcomes: list[PageOutcome], log_rows: list[dict[str, Any]] | Any, raw_path: Path | None,
                    *, precleaned_stamp: str | None = None) -> None:
    """The page stage of one fetch task: page stubs and fetch-log rows as JSON. Extracted texts stay in
    the task's text spool (a staging file beside this one, named here); a text still in memory (a caller
    that did not spool) is embedded. With `precleaned_stamp`, the pages' precleaned texts (see Precleaned)
    go to a Parquet file beside it, for the commit task."""
    spools = {o.text_file for o in outcomes if o.text_file is not None}
    if len(spools) > 1 or any(p.parent != path.parent for p in spools):
        raise ValueError(f"page stage {path}: the text spool must be one file beside it, not {sorted(spools)}")
    pre_path = path.with_name(f"{path.stem}.precleaned.parquet")
    has_pre = precleaned_stamp is not None and _save_precleaned(pre_path, outcomes, precleaned_stamp)
    atomic_write_json(path, {
        "pages": [{"task": {"article_id": o.task.article_id, "attempts": o.task.attempts,
                            "first_seen_at": _ts(o.task.first_seen_at), "item": _record_to_dict(o.task.item)},
                   "fetch": _record_to_dict(o.fetch),
                   "extracted": _record_to_dict(o.extracted) if o.extracted else None,
                   "spooled": o.text_file is not None,
                   "fetched_at": _ts(o.fetched_at)} for o in outcomes],
        "log": log_rows if isinstance(log_rows, list) else log_rows.to_pylist(),  # fetch_pages' table
        "raw": raw_path.name if raw_path else None,
        "texts": spools.pop().name if spools else None,
        "precleaned": pre_path.name if has_pre else None,
    })


def load_page_stage(path: Path, *, precleaned_stamp: str | None = None,
                    ) -> tuple[list[PageOutcome], list[dict[str, Any]], Path | None]:
    """`save_page_stage`'s pages, log rows and raw-page file. With `precleaned_stamp`, the pages get their
    precleaned texts when the stage has them and they were made under that stamp."""
    data = json.loads(path.read_text(encoding="utf-8"))
    texts = (path.parent / data["texts"]) if data.get("texts") else None
    pre: dict[str, Precleaned] = {}
    if precleaned_stamp is not None and data.get("precleaned"):
        pre = _load_precleaned(path.parent / data["precleaned"], precleaned_stamp)
    outcomes = []
    for d in data["pages"]:
        t = d["task"]
        task = PageTask(t["article_id"], _record_from_dict(FeedItem, t["item"]), t["attempts"], _dt(t["first_seen_at"]))
        outcomes.append(PageOutcome(task, _record_from_dict(FetchResult, d["fetch"]),
                                    _record_from_dict(Extracted, d["extracted"]) if d["extracted"] else None,
                                    _dt(d["fetched_at"]), texts if d.get("spooled") else None,
                                    pre.get(task.article_id)))
    for row in data["log"]:
        row["started_at"] = _dt(row.get("started_at"))
    return outcomes, data["log"], (path.parent / data["raw"]) if data.get("raw") else None


# ---------------------------------------------------------------------------------------------------- commit


@dataclass
class RunSummary:
    run_id: str
    committed: bool = False
    already_committed: bool = False
    feeds: int = 0
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    feeds_deferred: int = 0  # not polled: the host asked us to wait (Retry-After); not a failure
    feeds_not_due: int = 0  # skipped: their adaptive polling interval had not elapsed
    items: int = 0
    new_items: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    retries_pending: int = 0
    articles_written: int = 0
    articles_ok: int = 0
    duplicates: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    not_article: int = 0
    given_up: int = 0
    elapsed_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # each stage's wall and CPU seconds (this process's, its workers') and peak memory (pipeline.metering)
    stages: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int) and not isinstance(v, bool)}


def _page_retry_delay(config: Config, attempts: int) -> float:
    s = config.fetch
    return min(s.page_retry_max_s, s.page_retry_base_s * (2 ** max(0, attempts - 1)))


def _is_permanent(res: FetchResult) -> bool:
    if res.outcome in PERMANENT_OUTCOMES:
        return True
    return res.outcome == "http_error" and res.http_status in PERMANENT_STATUSES


def _base_row(task: PageTask, status: str, fetched: PageOutcome | None, run_id: str, now: datetime) -> Article:
    from pipeline.urls import host_of

    item = task.item
    canonical = task_canonical_url(task)
    first_seen = task.first_seen_at or now
    return Article(
        article_id=task.article_id, url=item.url, canonical_url=canonical, source=item.source,
        site=host_of(canonical) if canonical else None, first_seen_at=first_seen, run_id=run_id,
        extraction_status=status, title=item.title, summary=item.summary, authors=list(item.authors),
        tags=list(item.tags), published_at=item.published_at, published_source="feed" if item.published_at else None,
        feed_guid=item.guid, feed_url=item.feed_url,
        http_status=fetched.fetch.http_status if fetched else None,
        fetched_at=fetched.fetched_at if fetched else None,
    )


def _triage_pages(config: Config, page_outcomes: Sequence[PageOutcome], linkless: Sequence[PageTask],
                  state: dict[str, Any], run_id: str, now: datetime, summary: RunSummary,
                  ) -> tuple[list[Article], list[int]]:
    """The rows of pages without an article text (link-less items, given-up fetches, pages that are no
    article), updating pending retries in `state`; and where the pages with a text to clean are in
    `page_outcomes`, in page order. Only the pages without a text are read back from a spool."""
    pending: dict[str, Any] = state["pending"]
    rows: list[Article] = []
    ok_pages: list[int] = []
    pages = PageList.of(page_outcomes)

    for task in linkless:
        summary.not_article += 1
        rows.append(_base_row(task, "invalid_url", None, run_id, now))

    for k in range(len(pages)):
        if pages.with_text(k):
            pending.pop(pages.article_id(k), None)
            summary.pages_fetched += 1
            ok_pages.append(k)
            continue
        po = pages[k]
        task, res = po.task, po.fetch
        if po.extracted is None:  # the fetch failed
            if res.outcome == "deferred":
                attempts = task.attempts  # not our failure: the host asked us to wait
            else:
                attempts = task.attempts + 1
                summary.pages_failed += 1
                summary.failures.append(f"{task.item.url}: {res.outcome}: {res.error}")
            if _is_permanent(res) or attempts >= config.fetch.page_max_attempts:
                pending.pop(task.article_id, None)
                summary.given_up += 1
                rows.append(_base_row(task, "fetch_failed", po, run_id, now))
                continue
            delay = max(_page_retry_delay(config, attempts), res.retry_after_s or 0)
            pending[task.article_id] = {
                "item": _record_to_dict(task.item), "attempts": attempts,
                "first_seen_at": _ts(task.first_seen_at or now),
                "next_attempt_at": _ts(now + timedelta(seconds=delay)),
                "last_outcome": res.outcome, "last_error": res.error, "last_status": res.http_status,
            }
            continue
        pending.pop(task.article_id, None)
        summary.pages_fetched += 1
        ex = po.extracted
        if ex.status != "ok" or not po.has_text:
            summary.not_article += 1
            row = _base_row(task, ex.status if ex.status != "ok" else "no_article", po, run_id, now)
            row.title = row.title or ex.title
            row.language, row.site_name, row.description = ex.language, ex.site_name, ex.description
            rows.append(row)
            continue
        ok_pages.append(k)
    return rows, ok_pages


def _page_site(po: PageOutcome) -> str:
    """The site whose template cleans a page: the host of its canonical URL (the page's, else the item's)."""
    from pipeline.urls import canonicalize_url, host_of

    ex = po.extracted
    if ex and ex.canonical_url and ex.canonical_url != po.task.item.url:
        canonical = canonicalize_url(ex.canonical_url)
    else:  # (the page's canonical link is most often the item's URL)
        canonical = task_canonical_url(po.task)
    return host_of(canonical or po.task.item.url or "")


def _sites_in_order(sites: Sequence[str]) -> dict[str, list[int]]:
    """Indices of pages by site (`sites`: each page's `_page_site`): sites in order of first appearance, each
    site's pages in page order (the order in which templates learn and articles are cleaned)."""
    by_site: dict[str, list[int]] = defaultdict(list)
    for i, site in enumerate(sites):
        by_site[site].append(i)
    return by_site


def _clean_row(config: Config, po: PageOutcome, text: str, template: Any, site: str, run_id: str, now: datetime,
               summary: RunSummary, cleaned: Any = None) -> Article:
    """The article row of one page with a text: cleaned with its site's template (or `cleaned`, what
    `_clean_args` gave to `clean_text`, when the caller cleaned it already), metadata merged."""
    from pipeline.urls import canonicalize_url, host_of

    ex = po.extracted
    assert ex is not None
    if cleaned is None:
        from pipeline.clean import clean_text

        cleaned = clean_text(text, **_clean_args(po, template))
    row = _base_row(po.task, "ok", po, run_id, now)
    item_canonical = row.canonical_url  # the item's canonical URL (`_base_row`)
    row.canonical_url = canonicalize_url(ex.canonical_url) if ex.canonical_url else item_canonical
    row.site = host_of(row.canonical_url) if row.canonical_url else site
    row.title = ex.title or cleaned.title or row.title
    row.text = cleaned.text
    row.word_count = len(cleaned.text.split())
    row.authors = ex.authors or cleaned.authors or row.authors
    row.language, row.site_name, row.description = ex.language, ex.site_name, ex.description
    row.tags = ex.tags or row.tags
    row.syndicated_from = cleaned.syndicated_from or ex.syndicated_from
    row.published_at, row.published_source = _publication_time(ex, cleaned.published_at)
    if row.word_count < config.extract.min_words:
        row.extraction_status, row.text = "too_short", None
        summary.not_article += 1
    else:
        summary.articles_ok += 1
    return row


def _clean_args(po: PageOutcome, template: Any) -> dict[str, Any]:
    """The keyword arguments of `clean_text` for a page's text."""
    ex = po.extracted
    assert ex is not None
    return {"title": ex.title or po.task.item.title, "template": template, "site_name": ex.site_name}


def _has_text(cleaned: Any, min_words: int) -> bool:
    """Whether a cleaned text makes an article with a text (`_clean_row`: `ok`, not `too_short`)."""
    return bool(cleaned.text) and len(cleaned.text.split()) >= min_words


def _clean_slice(texts: list[str], kwargs: list[dict[str, Any]], min_words: int, dedup: Any) -> tuple[list[Any], list[Any]]:
    """Pass 2's CPU work on some pages (here or in a pool worker): their `clean_text` results, and the fingerprints
    of the cleaned texts that make articles with a text, in order."""
    from pipeline.clean import clean_text
    from pipeline.dedup import fingerprints

    cleaned = [clean_text(text, **kw) for text, kw in zip(texts, kwargs, strict=True)]
    return cleaned, fingerprints([c.text for c in cleaned if _has_text(c, min_words)], dedup)


_CLEAN_SLICE = 250  # pages per task of pass 2 in a pool


def _cleaned(config: Config, pool: Executor | None, pages: Sequence[PageOutcome], texts: Sequence[str],
             templates: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    """(clean_text result, fingerprint or None) of each page, in order: `_clean_slice` on every page here,
    or over the pool, a few slices per worker so that every worker is busy while this process builds the
    rows of the first ones."""
    from pipeline.dedup import plain_settings

    def slice_args(i: int, j: int) -> tuple[Any, ...]:
        kwargs = [_clean_args(po, t) for po, t in zip(pages[i:j], templates[i:j], strict=True)]
        return list(texts[i:j]), kwargs, config.extract.min_words, plain_settings(config.dedup)

    if pool is None:
        results: Iterable[tuple[list[Any], list[Any]]] = [_clean_slice(*slice_args(0, len(texts)))]
        futures = []
    else:
        per = max(1, min(_CLEAN_SLICE, -(-len(texts) // (2 * _pool_workers(config)))))
        futures = [pool.submit(_clean_slice, *slice_args(i, i + per)) for i in range(0, len(texts), per)]
        results = (future.result() for future in futures)
    try:
        for cleaned, fps in results:
            found = iter(fps)
            for c in cleaned:
                yield c, (next(found) if _has_text(c, config.extract.min_words) else None)
    finally:
        for future in futures:
            future.cancel()


def build_articles(config: Config, page_outcomes: Sequence[PageOutcome], linkless: Sequence[PageTask],
                   state: dict[str, Any], run_id: str, now: datetime, summary: RunSummary) -> list[Article]:
    """Turn fetched pages into article rows (clean + metadata merge), updating pending retries in `state`.

    Every text in memory (`extracted.text`): for a bounded number of pages (reextract). `commit_run`
    streams instead (`_stream_articles`), with the same rows."""
    rows, ok = _triage_pages(config, page_outcomes, linkless, state, run_id, now, summary)
    if not ok:
        return rows  # nothing to clean (a run of 304s never loads the cleaner)
    ok_pages = [page_outcomes[k] for k in ok]
    from pipeline.clean import SiteTemplate

    # Clean with per-site templates: observe every new article of a site first, then clean each one, so the
    # first article of a batch already benefits from what the others teach.
    templates: dict[str, Any] = state["templates"]
    for site, idx in _sites_in_order([_page_site(po) for po in ok_pages]).items():
        template = SiteTemplate.from_dict(templates[site]) if site in templates else SiteTemplate()
        for i in idx:
            template.observe(ok_pages[i].task.article_id, _text_of(ok_pages[i]))
        templates[site] = template.to_dict()
        for i in idx:
            rows.append(_clean_row(config, ok_pages[i], _text_of(ok_pages[i]), template, site, run_id, now, summary))
    return rows


def _text_of(po: PageOutcome) -> str:
    if po.extracted is None or not po.extracted.text:
        raise ValueError(f"page {po.task.article_id}: its text is in {po.text_file}, not in memory")
    return po.extracted.text


def _publication_time(ex: Extracted, text_time: datetime | None) -> tuple[datetime | None, str | None]:
    """(published_at in UTC, source): the page's machine-readable date (JSON-LD, meta, <time>), then a date
    the article text states with its zone, then the feed's, then a date the text states without a zone
    (taken as UTC: the only guess left), then the URL's."""
    if ex.published_at and ex.published_source in ("jsonld", "meta", "time"):
        return ex.published_at, ex.published_source
    if text_time is not None and text_time.tzinfo is not None:
        return text_time.astimezone(UTC), "text"
    if ex.published_at and ex.published_source == "feed":
        return ex.published_at, "feed"
    if text_time is not None:
        return text_time.replace(tzinfo=UTC), "text"
    return ex.published_at, ex.published_source if ex.published_at else None


def assign_clusters(config: Config, wh: Warehouse, rows: list[Article], run_id: str, now: datetime,
                    summary: RunSummary) -> Any:
    """Near-duplicate detection against the rolling index; returns this run's index entries (Arrow).

    Every row in memory; `commit_run` streams instead (`_stream_articles`), with the same clusters."""
    for row in rows:
        if row.extraction_status != "ok" or not row.text:
            row.cluster_id = row.article_id  # no text, nothing to compare: a cluster of its own
    texts = [row for row in rows if row.extraction_status == "ok" and row.text]
    if not texts:
        return None  # a run without new text (all feeds 304, only failures) never loads the window
    from pipeline.dedup import DedupIndex, content_hash, fingerprints

    window_start = now - timedelta(days=config.dedup.window_days)
    index = DedupIndex.from_arrow(_load_index(wh, window_start), config.dedup, since=window_start)
    new_ids: list[str] = []
    ordered = sorted(texts, key=lambda r: (r.published_at or r.first_seen_at, r.article_id))
    # one vectorised pass over every new text, then the documents join the index one after the other
    for row, fp in zip(ordered, fingerprints([r.text for r in ordered], config.dedup), strict=True):
        row.content_hash = content_hash(row.text)
        match = index.add_fingerprint(row.article_id, fp._replace(content_hash=row.content_hash),
                                      source=row.source, seen_at=row.first_seen_at)
        new_ids.append(row.article_id)
        row.cluster_id = match.cluster_id
        row.duplicate_of = match.duplicate_of
        row.dup_method = match.method
        row.similarity = match.similarity
        _count_match(summary, match)
    if not new_ids:
        return None
    return index.to_arrow(new_ids)


def _load_index(wh: Warehouse, window_start: datetime, snap: Any = None) -> Any:
    """Index entries of committed runs inside the window only, as one table (None: none)."""
    import pyarrow as pa

    tables = list(_index_tables(wh, window_start, snap))
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def _index_tables(wh: Warehouse, window_start: datetime, snap: Any = None) -> Iterator[Any]:
    """Index entries of committed runs inside the window only, a file's at a time (read when asked for: the
    commit's index loads one at a time): cost follows the window, not the history."""
    import pyarrow as pa
    import pyarrow.compute as pc

    snap = snap or wh.snapshot()
    cutoff = window_start.isoformat()
    run_seqs = [r["seq"] for r in snap.runs]  # in commit order: a bisection per file, not a scan of the history
    # A compacted file (entries of several commits) mixes old and recent entries: its row groups older
    # than the window are skipped by their statistics. One run's file is read whole (less overhead).
    recent = pc.field("seen_at") >= pa.scalar(window_start, pa.timestamp("us", tz="UTC"))
    for f in snap.live("dedup_index"):
        k = bisect.bisect_right(run_seqs, f["max_seq"])
        committed = snap.runs[k - 1]["committed_at"] if k else None
        if committed is None or committed < cutoff:
            continue  # every entry of this file is older than the window
        merged = f.get("min_seq") != f.get("max_seq")
        yield wh.read_table(f["path"], filters=recent if merged else None)


def _articles_table(rows: Sequence[Article]) -> Any:
    import pyarrow as pa

    from pipeline.schema import ARTICLE_SCHEMA, SCHEMA_VERSION

    cols: dict[str, list[Any]] = {f.name: [] for f in ARTICLE_SCHEMA}
    for r in rows:
        d = {f.name: getattr(r, f.name) for f in fields(r)}
        d["schema_version"] = SCHEMA_VERSION
        for name in cols:
            cols[name].append(d.get(name))
    return pa.Table.from_pydict(cols, schema=ARTICLE_SCHEMA)


def partition_date(row: Article) -> str:
    return _partition_day(row.published_at, row.first_seen_at)


def _partition_day(published_at: datetime | None, first_seen_at: datetime) -> str:
    """The `published_date` partition of an article: its publication day (UTC), else the day it was first seen."""
    return (published_at or first_seen_at).astimezone(UTC).date().isoformat()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _rows_by_day(table: Any) -> Iterator[tuple[str, np.ndarray]]:
    """The rows of an ARTICLE_SCHEMA table by `_partition_day`: (day, its rows in table order), the days in
    order of their first row. In columns: a row at a time, the day of 5,000 rows took ~35 ms of the commit's
    single-core end (two datetimes made for each), 3-6 ms so."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # UTC timestamps: their date32 is the UTC day
    days = pc.cast(pc.coalesce(table["published_at"], table["first_seen_at"]), pa.date32())
    if days.null_count:
        raise ValueError("article rows without first_seen_at")
    uniq, first, inverse = np.unique(days.to_numpy().astype("datetime64[D]").astype(np.int64), return_index=True,
                                     return_inverse=True)
    rows = np.argsort(inverse, kind="stable")  # each day's rows in table order, one day after the other
    ends = np.cumsum(np.bincount(inverse, minlength=len(uniq)))
    for u in np.argsort(first):
        yield (date.fromordinal(_EPOCH_ORDINAL + int(uniq[u])).isoformat(),
               rows[(ends[u - 1] if u else 0):ends[u]])


# ---------------------------------------------------------------------------------------------------- streaming commit
# A run's new articles pass through the commit in chunks of `commit.chunk_rows`: texts stream from the text
# spools of the fetch (or from memory) through a bucket sort into the order templates learn in, article rows
# go to a staging file, and only small per-article keys (sort key, fingerprint number, cluster) stay in memory.


class _TextOrder(_StagingParquet):
    """Texts read back in a given order (ordinals 0..n-1) with at most about `chunk` texts in memory: a
    bucket sort through a staging Parquet file (bucket b holds the ordinals [b * chunk, (b + 1) * chunk))."""

    def __init__(self, path: Path, n: int, chunk: int) -> None:
        super().__init__(path, _SCRATCH_COMPRESSION)
        self.n, self.chunk = n, chunk
        self._buckets: dict[int, tuple[list[int], list[str]]] = {}
        self._buffered = 0
        self._groups: dict[int, list[int]] = defaultdict(list)  # bucket -> its row groups in the file
        self._n_groups = 0
        self._filled = np.zeros(n, dtype=bool)

    def add(self, ordinal: int, text: str) -> None:
        if self._filled[ordinal]:
            return  # the same article twice (a text spooled by two attempts): the first counts
        self._filled[ordinal] = True
        ords, texts = self._buckets.setdefault(ordinal // self.chunk, ([], []))
        ords.append(ordinal)
        texts.append(text)
        self._buffered += 1
        if self._buffered >= self.chunk:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        schema = pa.schema([("ord", pa.int64()), ("text", pa.large_string())])
        for b, (ords, texts) in sorted(self._buckets.items()):
            table = pa.Table.from_arrays([pa.array(ords, pa.int64()), pa.array(texts, pa.large_string())],
                                         schema=schema)
            self._write(table, row_group_size=len(ords))  # one row group
            self._groups[b].append(self._n_groups)
            self._n_groups += 1
        self._buckets, self._buffered = {}, 0

    def finish(self) -> None:
        missing = int((~self._filled).sum())
        if missing:
            first = int(np.flatnonzero(~self._filled)[0])
            raise RuntimeError(f"{missing} extracted texts are missing from the text spools (ordinal {first} first); "
                               "the fetch tasks' staging files were removed or rewritten")
        if self._writer is not None:  # else every text is still in memory: chunks() reads them there
            self.close()

    def chunks(self) -> Iterator[tuple[list[int], list[str]]]:
        """(ordinals, texts) in ordinal order, a bucket at a time; can be iterated again. Before the next
        bucket, the free memory goes back (pyarrow's pool keeps each chunk's freed buffers, read here or
        written by the caller: ~100 MB over a big run)."""
        if not self._groups:  # everything fitted in memory
            for _b, (ords, texts) in sorted(self._buckets.items()):
                order = sorted(range(len(ords)), key=ords.__getitem__)
                yield [ords[i] for i in order], [texts[i] for i in order]
                _malloc.trim()
            return
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.path)
        for b in sorted(self._groups):
            table = pf.read_row_groups(self._groups[b])
            table = table.take(pc.sort_indices(table["ord"]))
            yield table["ord"].to_pylist(), table["text"].to_pylist()
            del table
            _malloc.trim()


def _spooled_texts(ok_pages: PageList, chunk: int) -> Iterator[tuple[str, str]]:
    """(article id, text) of the rows of the text spools of `ok_pages` (every row, a batch at a time)."""
    files = dict.fromkeys(f for f in map(ok_pages.text_file, range(len(ok_pages))) if f is not None)
    for path in files:
        if not path.exists():
            raise RuntimeError(f"text spool {path} is missing: the fetch task's staging files were removed")
        for batch in _staging_batches(path, chunk, columns=list(TEXT_SPOOL_COLUMNS)):
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)


def _staging_batches(path: Path, size: int, columns: list[str] | None = None) -> Iterator[Any]:
    """A local Parquet file's record batches of `size` rows, holding one row group's data at a time.
    `ParquetFile.iter_batches` pre-buffers by default, and its cache keeps every row group read until the
    iteration ends: over a 100,000-article commit, 200 MB of the staged articles (the peak of its main
    process). Pre-buffering pays on object storage; these are local staging files."""
    import pyarrow.parquet as pq

    yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=size, columns=columns)


def _text_order(pages: PageList, ks: Sequence[int], path: Path, chunk: int) -> _TextOrder:
    """The texts of `pages` at positions `ks` (ascending), from memory or their text spools, sorted into that
    order (`_texts` reads them), with about `chunk` of them in memory at a time."""
    texts = _TextOrder(path, len(ks), chunk)
    ordinal: dict[str, list[int]] = defaultdict(list)  # spooled pages (an id is on one page in a run)
    for n, k in enumerate(ks):
        if pages.text_file(k) is None:
            texts.add(n, _text_of(pages[k]))
        else:
            ordinal[pages.article_id(k)].append(n)
    if ordinal:
        for aid, text in _spooled_texts(pages.subset(ks), chunk):
            for n in ordinal.get(aid, ()):  # a spooled page filtered out (stored meanwhile) has none
                texts.add(n, text)
    del ordinal
    texts.finish()
    return texts


def _texts(order: _TextOrder) -> Iterator[str]:
    for _ords, chunk_texts in order.chunks():
        yield from chunk_texts


def _recleaned(config: Config, pool: Executor | None, pages: PageList, ks: Sequence[int], texts: _TextOrder,
               sites: Sequence[str], templates: dict[str, Any], chunk: int,
               ) -> Iterator[tuple[int, PageOutcome, tuple[Any, Any]]]:
    """(k, page, (clean_text result, fingerprint or None)) of the pages at positions `ks` (ascending; `texts`:
    theirs, `_text_order`), cleaned with their sites' `templates`, `chunk` at a time."""
    text_of = _texts(texts)
    for start in range(0, len(ks), chunk):
        part = ks[start:start + chunk]
        chunk_texts = [next(text_of) for _ in part]
        chunk_pages = [pages[k] for k in part]
        done = _cleaned(config, pool, chunk_pages, chunk_texts, [templates[sites[k]] for k in part])
        yield from zip(part, chunk_pages, done, strict=True)


@dataclass
class StreamedArticles:
    """A run's article rows in a staging file (in the order `build_articles` returns them), with what the
    dedup pass found; written into the warehouse by `_write_article_files`."""

    path: Path | None  # ARTICLE_SCHEMA rows, each in a cluster of its own until `clusters` says otherwise
    rows: int
    ids: np.ndarray  # uint64 ids of every row
    # article id -> cluster fields, where they differ from the staged ones (a cluster of the row's own)
    clusters: dict[str, tuple[str, str | None, str | None, float | None]]
    index_delta: Path | None  # this run's dedup index entries (a staging Parquet file), None when none


def _stream_articles(config: Config, wh: Warehouse, pages: PageList,
                     linkless: Sequence[PageTask], state: dict[str, Any], run_id: str, now: datetime,
                     summary: RunSummary, work: Path, chunk: int, pool: Executor | None = None,
                     release_pool: bool = False, release_pages: bool = False) -> StreamedArticles:
    """`build_articles` then `assign_clusters`, with the same rows, templates and clusters, in bounded memory.

    Pass 1 learns the site templates in their order (site by site, pages in page order), from the probes of
    precleaned pages (see Precleaned) and the texts of the others; pass 2 builds the article rows chunk by
    chunk (to a staging file), taking each precleaned text unless its site's template marks one of its
    lines, and cleaning and fingerprinting those and the texts never precleaned; pass 3 adds the
    fingerprints to the dedup index in the global order of `assign_clusters`.
    `pool`: a process pool for pass 2's cleaning and fingerprints, shut down after it with `release_pool`.
    `release_pages`: the pages' spool is released after pass 2, before the dedup index grows (the caller
    hands them over). Passes 1-2 are the summary's stage "commit/rows", pass 3 its "commit/dedup"."""
    meter = StageMeter(summary.stages)
    rows_out = _StagingParquet(work / "articles.parquet", _SCRATCH_COMPRESSION)  # ARTICLE_SCHEMA rows, in build_articles' order
    ids = array.array("Q")

    def put(rows: list[Article]) -> None:
        if not rows:
            return
        for row in rows:
            # A cluster of its own: a row with no text (nothing to compare), and what pass 3 finds for most
            # rows with one (`clusters` holds only the others)
            row.cluster_id = row.article_id
            ids.append(id_to_u64(row.article_id))
        rows_out._write(_articles_table(rows))

    with meter.stage("commit/rows"):  # passes 1 and 2
        try:
            if pool is not None:  # the workers idle while this process runs pass 1: one of them runs pass 3 next
                _warm_workers(pool, _pool_workers(config), _warm_pass3_worker)
            rows, ok = _triage_pages(config, pages, linkless, state, run_id, now, summary)
            for k in range(0, len(rows), chunk):
                put(rows[k:k + chunk])
            del rows
            ok_pages = pages.subset(ok)
            del ok
            # Pass 3's keys, in columns; the fingerprints' arrays wait for pass 3 on disk (~2.5 KB an article)
            keys = _DedupKeys()
            fp_minhash = fp_sample = None
            job: _DedupJob | None = None
            if ok_pages:
                from pipeline.clean import SiteTemplate
                from pipeline.dedup import ArrayStore

                # The order of `build_articles`: sites in order of first appearance, each site's pages in order.
                page_sites = [ok_pages.site(k) for k in range(len(ok_pages))]
                order = [i for idx in _sites_in_order(page_sites).values() for i in idx]
                ok_pages = ok_pages.subset(order)
                sites = [page_sites[i] for i in order]
                del order, page_sites
                # Pass 1: templates learn from every new article of their site, in order (of a precleaned page,
                # from the keys its worker computed; else from its text).
                templates: dict[str, Any] = state["templates"]
                live: dict[str, Any] = {}
                plain = [k for k in range(len(ok_pages)) if not ok_pages.precleaned(k)]
                plain_order = _text_order(ok_pages, plain, work / "texts-plain.parquet", chunk)
                plain_texts = _texts(plain_order)
                # the keys of the lines a template would test, for the check below (on disk, as the fingerprints)
                tested, tested_long = ArrayStore(np.uint64, work), ArrayStore(np.bool_, work)
                for k in range(len(ok_pages)):
                    site = sites[k]
                    template = live.get(site)
                    if template is None:
                        template = live[site] = (SiteTemplate.from_dict(templates[site]) if site in templates
                                                 else SiteTemplate())
                    if ok_pages.precleaned(k):
                        probe = ok_pages.probe(k)
                        template.observe_keys(ok_pages.article_id(k), probe.keys, probe.long_keys)
                        tested.append(probe.tested)
                        tested_long.append(probe.tested_long)
                    else:
                        template.observe(ok_pages.article_id(k), next(plain_texts))
                        tested.append(np.zeros(0, dtype=np.uint64))
                        tested_long.append(np.zeros(0, dtype=np.bool_))
                del plain_texts
                for site, template in live.items():
                    templates[site] = template.to_dict()
                # Pass 2: clean, fingerprint, spool the rows. A precleaned text stands unless its site's template
                # marks a line of it; the others are cleaned here (in the pool when there is one: the same
                # functions on the same texts and templates, so the same rows).
                marked = [k for k in range(len(ok_pages))
                          if ok_pages.precleaned(k) and live[sites[k]].marks_any_key(tested[k], tested_long[k])]
                tested.close()
                tested_long.close()
                del tested, tested_long
                stale = set(plain).union(marked)
                to_clean = sorted(stale)
                if marked:  # their texts too (else the texts of pass 1 are all that is cleaned here)
                    plain_order = _text_order(ok_pages, to_clean, work / "texts-recleaned.parquet", chunk)
                recleaned = _recleaned(config, pool, ok_pages, to_clean, plain_order, sites, live, chunk)
                del marked, plain_order, to_clean
                if pool is not None:
                    # Pass 3 runs in the pool while this process builds the rows: the keys and fingerprints
                    # first (the marked pages cleaned in the pool meanwhile, kept on disk for the rows)
                    job = _start_dedup(config, wh, pool, ok_pages, stale, recleaned, now, work, chunk)
                    if release_pool:  # the idle workers exit now, the dedup pass's once it is done
                        pool.shutdown(wait=False)  # (the caller's shutdown joins them)
                    # the article files' split by day needs it: imported while pass 3 runs (which takes longer
                    # than the rows), not after it on the commit's single-core end (~25 ms; +9 MB)
                    import pyarrow.compute  # noqa: F401
                    for start in range(0, len(ok_pages), chunk):
                        out = []
                        for k in range(start, min(start + chunk, len(ok_pages))):
                            po = ok_pages[k]
                            c, fp = job.cleaned(k) if k in stale else (po.precleaned.cleaned, po.precleaned.fingerprint)
                            row = _clean_row(config, po, "", live[sites[k]], sites[k], run_id, now, summary,
                                             cleaned=c)
                            if fp is not None:
                                row.content_hash = fp.content_hash
                            out.append(row)
                        put(out)
                    job.stash.close()
                else:
                    fp_minhash, fp_sample = ArrayStore(np.uint32, work), ArrayStore(np.uint64, work)
                    for start in range(0, len(ok_pages), chunk):
                        out = []
                        with_text = []
                        for k in range(start, min(start + chunk, len(ok_pages))):
                            if k in stale:
                                at, po, (c, fp) = next(recleaned)  # the page as it was read to be cleaned
                                assert at == k
                            else:
                                po = ok_pages[k]
                                c, fp = po.precleaned.cleaned, po.precleaned.fingerprint
                            row = _clean_row(config, po, "", live[sites[k]], sites[k], run_id, now, summary,
                                             cleaned=c)
                            out.append(row)
                            if fp is not None:
                                with_text.append((row, fp))
                        for row, fp in with_text:
                            row.content_hash = fp.content_hash  # content_hash(row.text), computed with the fingerprint
                            keys.append(row, fp)
                            fp_minhash.append(fp.minhash)
                            fp_sample.append(fp.sample)
                        put(out)
                    del with_text
                del recleaned
                del live, out, sites, stale  # pass 3 needs only the fingerprints
            del ok_pages
            if release_pages:
                pages.spool.release()  # ~2 KB a page in memory (fetch result, extraction metadata)
        finally:
            rows_out.close()
    # Pass 3: the dedup index, documents in the order of `assign_clusters`.
    clusters: dict[str, tuple[str, str | None, str | None, float | None]] = {}
    index_delta = None
    with meter.stage("commit/dedup"):  # pass 3 (with a pool: what is left of it once the rows are built)
        found: tuple[Any, tuple[int, int, int], Path | None] | None = None
        if job is not None:
            if job.future is not None and not job.future.done():
                # the views' (the commit's last step, on one core): imported while this process waits for
                # the pool's pass 3 (~55 ms; +16 MB, which the views take anyway)
                import duckdb  # noqa: F401
            found = job.result()
        elif keys:
            from pipeline.dedup import Fingerprint

            assert fp_minhash is not None and fp_sample is not None
            try:
                docs = ((aid, Fingerprint(content, n_tokens, fp_minhash[i], fp_sample[i]), source, seen_at)
                        for i, aid, content, n_tokens, source, seen_at in keys.in_order())
                window_start = now - timedelta(days=config.dedup.window_days)
                found = _dedup_pass(_index_tables(wh, window_start), config.dedup, window_start, docs, work, chunk)
            finally:
                fp_minhash.close()
                fp_sample.close()
            del keys
        if found is not None:
            clusters, (dups, exact, near), index_delta = found
            summary.duplicates += dups
            summary.exact_duplicates += exact
            summary.near_duplicates += near
    return StreamedArticles(rows_out.path if rows_out.count else None, rows_out.count,
                            np.frombuffer(ids, dtype=np.uint64) if ids else np.zeros(0, np.uint64), clusters,
                            index_delta)


def _dedup_pass(tables: Iterable[Any], settings: Any, window_start: datetime,
                docs: Iterable[tuple[str, Any, str, datetime]], work: Path, chunk: int,
                ) -> tuple[dict[str, tuple[str, str | None, str | None, float | None]], tuple[int, int, int], Path | None]:
    """Pass 3: the window's index (`tables`, `_index_tables`) and then `docs` (article id, fingerprint, source,
    first seen; in the order of `assign_clusters`) added to it. Returns the clusters that differ from a row's
    own (article id -> cluster id, duplicate of, method, similarity), the (duplicates, exact, near) counts and
    the staging file of the new index entries (None: none). In the commit's process, or in a pool worker
    (`_dedup_pass_from_file`)."""
    from pipeline.dedup import DedupIndex

    index = DedupIndex.from_arrow(tables, settings, since=window_start, spill_to=work)
    clusters: dict[str, tuple[str, str | None, str | None, float | None]] = {}
    counted = RunSummary("")  # only its match counts (`_count_match`), returned: a pool worker has no summary
    new_ids = HexColumn(8)  # 8 bytes an article, where a list of the id strings cost ~80
    try:
        for aid, match in index.add_fingerprints(docs):
            new_ids.append(aid)
            if len(new_ids) % _TRIM_EVERY_DOCS == 0:
                _malloc.trim()
            found = (match.cluster_id, match.duplicate_of, match.method, match.similarity)
            if found != (aid, None, None, None):  # the row's staged fields otherwise (see put)
                clusters[aid] = found
            _count_match(counted, match)
        # The entries go to a staging file `chunk` at a time: a table of them all would copy every new
        # fingerprint while the index still holds them (the commit's peak memory).
        delta = _StagingParquet(work / "dedup-index.parquet")
        try:
            for k in range(0, len(new_ids), chunk):
                delta._write(index.to_arrow(new_ids[k:k + chunk]))
        finally:
            delta.close()
    finally:
        index.close()
    return (clusters, (counted.duplicates, counted.exact_duplicates, counted.near_duplicates),
            delta.path if delta.count else None)


def _warm_workers(pool: Executor, workers: int, warm: Callable[[], None]) -> None:
    """`warm` submitted once per worker of `pool`: an optimisation, never a failure (a pool shut down or
    broken by a killed worker is the next real task's error, if there is one)."""
    try:
        for _ in range(workers):
            pool.submit(warm)
    except Exception:  # noqa: BLE001
        log.debug("could not warm the pool's workers", exc_info=True)


def _warm_pass3_worker() -> None:
    """What `_dedup_pass_from_file` imports that extraction did not (~70 ms: the index's tables and its
    staging file), imported by a pool worker while the commit's pass 1 keeps it idle, not on the commit's
    critical path once pass 3 starts there."""
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def _dedup_pass_from_file(location: str, settings: Any, window_start: datetime,
                          docs: list[tuple[str, str, int, str, datetime, int, int]], fingerprints: Path, work: Path,
                          chunk: int) -> Any:
    """`_dedup_pass` in a pool worker: the warehouse at `location` (under the commit's lock), and `docs` (article
    id, content hash, tokens, source, first seen, MinHash values, sampled keys), whose arrays follow one
    another in the file `fingerprints`."""
    from pipeline.dedup import Fingerprint

    # The worker's heap still holds what its extractions freed: back to the system before the index grows,
    # and the index's big arrays given back when freed, as in the commit's process
    _malloc.return_freed_memory()
    _malloc.trim()
    wh = Warehouse(location, create=False)
    # buffered reads: np.fromfile on the file made two reads of the disk a document (60 ms for 5,000)
    with open(fingerprints, "rb", buffering=1 << 20) as f:
        def read() -> Iterator[tuple[str, Any, str, datetime]]:
            for aid, content, n_tokens, source, seen_at, n_minhash, n_sample in docs:
                minhash = np.frombuffer(f.read(4 * n_minhash), dtype=np.uint32)
                sample = np.frombuffer(f.read(8 * n_sample), dtype=np.uint64)
                yield aid, Fingerprint(content, n_tokens, minhash, sample), source, seen_at

        # The pass's temporaries (a few MB a batch of texts) from the heap, each freed block reused by the next:
        # mapped afresh each time, they cost 65,000-110,000 page faults over 5,000 texts (11,000 so), 117-130
        # -> 94 us a text; this worker gives its memory back when the pass is done (and exits after the commit)
        with _malloc.keep_freed_memory():
            return _dedup_pass(_index_tables(wh, window_start), settings, window_start, read(), work, chunk)


class _DedupJob:
    """Pass 3 in a pool worker (`_start_dedup`); `cleaned(k)`: the cleaning of marked page `k`, which the
    keys' pass kept on disk for the rows (in page order: asked for in that order)."""

    def __init__(self, future: Any, stash: Any, marked: list[int]) -> None:
        self.future, self.stash = future, stash
        self._at = {k: n for n, k in enumerate(marked)}

    def cleaned(self, k: int) -> tuple[Any, Any]:
        return pickle.loads(self.stash[self._at[k]].tobytes())

    def result(self) -> Any:
        return self.future.result() if self.future is not None else None


def _start_dedup(config: Config, wh: Warehouse, pool: Executor, pages: PageList, stale: set[int],
                 recleaned: Iterator[tuple[int, PageOutcome, tuple[Any, Any]]], now: datetime, work: Path,
                 chunk: int) -> _DedupJob:
    """Pass 3's keys and fingerprints, without the rows: each page's cleaning (its precleaning, or for the
    `stale` pages `recleaned`'s, spilled to disk for the rows), then pass 3 submitted to `pool` with them in
    the order of `assign_clusters` (the fingerprints in a staging file). The keys are those `_clean_row`'s
    row gives (`_DedupKeys.append`)."""
    from pipeline.dedup import ArrayStore, plain_settings

    keys = _DedupKeys()
    fp_minhash, fp_sample = ArrayStore(np.uint32, work), ArrayStore(np.uint64, work)
    stash = ArrayStore(np.uint8, work)
    marked: list[int] = []
    try:
        for k in range(len(pages)):
            if k in stale:
                at, po, (c, fp) = next(recleaned)
                assert at == k
                stash.append(np.frombuffer(pickle.dumps((c, fp), protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8))
                marked.append(k)
            else:
                kept = pages.keys_of(k, keys, now)  # kept by the spool: the page is not read
                if kept is NO_FINGERPRINT:
                    continue
                if kept is not None:
                    fp_minhash.append(kept[0])
                    fp_sample.append(kept[1])
                    continue
                po = pages[k]
                c, fp = po.precleaned.cleaned, po.precleaned.fingerprint
            if fp is None:
                continue
            assert po.extracted is not None
            keys.add_page(po, c, fp, po.task.first_seen_at or now)
            fp_minhash.append(fp.minhash)
            fp_sample.append(fp.sample)
        docs = []
        path = work / "dedup-fingerprints.bin"
        with open(path, "wb") as f:
            for i, aid, content, n_tokens, source, seen_at in keys.in_order():
                minhash, sample = fp_minhash[i], fp_sample[i]
                f.write(np.ascontiguousarray(minhash, dtype=np.uint32).tobytes())
                f.write(np.ascontiguousarray(sample, dtype=np.uint64).tobytes())
                docs.append((aid, content, n_tokens, source, seen_at, minhash.size, sample.size))
    finally:
        fp_minhash.close()
        fp_sample.close()
        pages.spool.release_keys()  # copied into `keys`: not needed twice while the rows are built
    window_start = now - timedelta(days=config.dedup.window_days)
    future = (pool.submit(_dedup_pass_from_file, wh.location, plain_settings(config.dedup), window_start, docs, path,
                          work, chunk)
              if docs else None)  # no text to compare: the window's index is not even read
    return _DedupJob(future, stash, marked)


# Pass 3 gives the heap's free pages back every this many documents. The index's small temporaries (a few
# per document) land anywhere in the heap the fetch grew, faulting back in pages an earlier trim had
# returned: over 20,000 documents the heap held 19 MB in use and 96 MB free, and the process's memory grew
# by 121 MB where it grows by 70 with this (a trim costs a few milliseconds).
_TRIM_EVERY_DOCS = 2000


class _DedupKeys:
    """What pass 3 needs of each fingerprinted row besides its arrays, in columns: ~60 bytes a row where a
    tuple of datetimes and strings cost ~400 (a 100,000-article commit holds them all from pass 2 on). Row
    `i` of these is fingerprint `i` of the run's ArrayStores."""

    _NO_TIME = -(1 << 63)  # first seen unknown (`seen_may_be_none`): the commit's time, given when copied

    def __init__(self, seen_may_be_none: bool = False) -> None:
        self.seen_may_be_none = seen_may_be_none
        self._time = array.array("q")  # publication time, else first seen: microseconds since the epoch (UTC)
        self._id = array.array("Q")  # the article id's 64 bits (16 hex digits)
        self._hash = bytearray()  # the content hash's 16 bytes (32 hex digits)
        self._ntok = array.array("q")
        self._source = array.array("i")  # into `_sources`
        self._seen = array.array("q")  # first seen, microseconds
        self._sources: dict[str, int] = {}
        self._names: list[str] = []  # the sources in order of their numbers

    def __len__(self) -> int:
        return len(self._id)

    def append(self, row: Article, fp: Any) -> None:
        self.add(row.article_id, row.published_at, row.first_seen_at, row.source, fp)

    def add(self, article_id: str, published_at: datetime | None, first_seen_at: datetime | None, source: str,
            fp: Any) -> None:
        """The keys of a row with these fields (`append` of the row). `first_seen_at` None: only where
        `seen_may_be_none` (its time is given when the row is copied, `copy_row`)."""
        digest = hex_bytes(fp.content_hash, 16)
        if digest is None:
            raise ValueError(f"not a content hash: {fp.content_hash!r}")
        number = hex_u64(article_id)
        if number is None:  # in_order gives the id back from its number
            raise ValueError(f"not an article id: {article_id!r}")
        if first_seen_at is None and not self.seen_may_be_none:
            raise ValueError("a row's keys need its first-seen time")
        seen = self._NO_TIME if first_seen_at is None else utc_us(first_seen_at)
        self._time.append(utc_us(published_at) if published_at is not None else seen)
        self._id.append(number)
        self._hash += digest
        self._ntok.append(int(fp.n_tokens))
        self._source.append(self._source_number(source))
        self._seen.append(seen)

    def add_page(self, po: PageOutcome, cleaned: Any, fp: Any, first_seen_at: datetime | None) -> None:
        """The keys `_clean_row`'s row of page `po`, cleaned as `cleaned`, gives (`first_seen_at`: its task's,
        or the commit's time)."""
        self.add(po.task.article_id, _publication_time(po.extracted, cleaned.published_at)[0], first_seen_at,
                 po.task.item.source, fp)

    def _source_number(self, source: str) -> int:
        number = self._sources.get(source)
        if number is None:
            number = self._sources[source] = len(self._names)
            self._names.append(source)
        return number

    def copy_row(self, other: _DedupKeys, row: int, now: datetime) -> None:
        """Append `other`'s row `row`, its unknown first-seen time (and publication time) taken as `now`."""
        seen, when = other._seen[row], other._time[row]
        if seen == self._NO_TIME:
            seen = utc_us(now)
            when = seen if when == self._NO_TIME else when
        self._time.append(when)
        self._id.append(other._id[row])
        self._hash += other._hash[16 * row:16 * row + 16]
        self._ntok.append(other._ntok[row])
        self._source.append(self._source_number(other._names[other._source[row]]))
        self._seen.append(seen)

    def in_order(self) -> Iterator[tuple[int, str, str, int, str, datetime]]:
        """(fingerprint number, article id, content hash, tokens, source, first seen), by time then article id
        (the order of `assign_clusters`: a 16-hex-digit id sorts as its number)."""
        names = self._names
        order = np.lexsort((np.frombuffer(self._id, dtype=np.uint64), np.frombuffer(self._time, dtype=np.int64)))
        for i in order.tolist():
            yield (i, f"{self._id[i]:016x}", self._hash[16 * i:16 * i + 16].hex(), self._ntok[i],
                   names[self._source[i]], EPOCH + timedelta(microseconds=self._seen[i]))


def _count_match(summary: RunSummary, match: Any) -> None:
    if match.duplicate_of:
        summary.duplicates += 1
        if match.method == "exact":
            summary.exact_duplicates += 1
        else:
            summary.near_duplicates += 1


def _write_article_files(wh: Warehouse, arts: StreamedArticles, run_id: str, chunk: int,
                         max_open: int = 32) -> list[dict[str, Any]]:
    """The staged article rows, with their cluster fields, into `articles/published_date=<day>/` files:
    rows of a day in staging order, written a row group at a time (at most `chunk` rows buffered over all
    days, at most `max_open` files open; a day whose file was closed continues in `part-<run>-<n+1>`)."""
    if arts.path is None:
        return []
    import pyarrow as pa

    from pipeline.schema import ARTICLE_SCHEMA

    names = ARTICLE_SCHEMA.names
    cols = {name: names.index(name) for name in ("cluster_id", "duplicate_of", "dup_method", "similarity")}
    from concurrent.futures import Future, ThreadPoolExecutor

    open_files: dict[str, Any] = {}  # day -> TableWriter, least recently used first
    parts: dict[str, int] = defaultdict(int)
    buffers: dict[str, list[Any]] = defaultdict(list)
    buffered: dict[str, int] = defaultdict(int)
    entries: list[tuple[str, int, dict[str, Any]]] = []
    # A chunk is encoded and compressed by a writer thread (Arrow lets go of the GIL) while this one reads and
    # splits the next: one write in flight at a time, so at most two chunks in memory
    writer = ThreadPoolExecutor(1, thread_name_prefix="article-files")
    in_flight: list[Future] = []

    def written() -> None:
        while in_flight:
            in_flight.pop().result()

    def close(day: str) -> None:
        written()  # (the write in flight may be this day's)
        w = open_files.pop(day)
        entries.append((day, parts[day], w.close()))
        parts[day] += 1

    def flush(day: str) -> None:
        table = pa.concat_tables(buffers.pop(day))
        buffered.pop(day)
        w = open_files.pop(day, None)
        if w is None:
            while len(open_files) >= max_open:
                close(next(iter(open_files)))
            w = wh.open_table(f"articles/published_date={day}/part-{run_id}-{parts[day]}.parquet", ARTICLE_SCHEMA)
        open_files[day] = w  # most recently used last
        written()
        in_flight.append(writer.submit(w.write, table))

    try:
        for batch in _staging_batches(arts.path, chunk):
            table = pa.Table.from_batches([batch], schema=ARTICLE_SCHEMA)
            found = [arts.clusters.get(a) for a in table["article_id"].to_pylist()] if arts.clusters else []
            if any(found):
                for j, (name, i) in enumerate(cols.items()):
                    old = table.column(i).to_pylist()
                    new = [f[j] if f is not None else o for f, o in zip(found, old, strict=True)]
                    table = table.set_column(i, ARTICLE_SCHEMA.field(name), pa.array(new, ARTICLE_SCHEMA.field(name).type))
            for day, idx in _rows_by_day(table):
                buffers[day].append(table.take(pa.array(idx, pa.int64())) if len(idx) < table.num_rows else table)
                buffered[day] += len(idx)
            del table, batch
            while sum(buffered.values()) >= chunk:
                flush(max(buffered, key=buffered.__getitem__))
            _malloc.trim()  # the freed batches of pyarrow's pool go back (it kept ~150 MB over 20,000 rows)
        for day in sorted(buffers):
            flush(day)
        for day in sorted(open_files):
            close(day)
    except BaseException:
        with contextlib.suppress(BaseException):  # the write in flight ends (or fails) before its file goes
            written()
        for w in open_files.values():
            w.abort()
        raise
    finally:
        writer.shutdown(wait=True)
    return [e for _, _, e in sorted(entries, key=lambda e: (e[0], e[1]))]


def commit_run(config: Config, wh: Warehouse, run_id: str, *, feed_outcomes: Sequence[FeedOutcome],
               page_outcomes: Sequence[PageOutcome], linkless: Sequence[PageTask], log_rows: list[dict[str, Any]] | Any,
               raw_files: Sequence[Path], started_at: datetime, trigger: str = "cli",
               summary: RunSummary | None = None, now: datetime | None = None,
               chunk_rows: int | None = None, pool: Executor | None = None, release_pool: bool = False,
               release_pages: bool = False) -> RunSummary:
    """Write everything of one run and commit it. Call under the warehouse lock. Idempotent per run id.

    Data files first (each atomic), then the new state, then the log entry that lists them (the commit
    point, see pipeline.warehouse). A crash anywhere before the entry leaves nothing visible, and the
    next writer removes the leftovers.

    The texts never need to fit in memory at once: texts (spooled by the fetch, see TextSpool, or in memory)
    are cleaned, fingerprinted and written `chunk_rows` (default `commit.chunk_rows`) at a time through
    staging files under `_staging/<run_id>/commit/` (removed at the end); what grows with the run is the
    dedup index's postings and per-article keys (about 2 KB an article in all; its sampled keys and MinHash
    values are spilled to staging, see `ArrayStore`). `pool`: a process pool that cleans and fingerprints the
    texts that were not precleaned, or whose site template marks a line of them, while this process builds
    the rows (the rows are the same without one); the caller's, left
    running, unless `release_pool` (then shut down once the cleaning is done). `release_pages`: the caller
    hands `page_outcomes` over (a list is emptied): they are freed as soon as the rows are built; and the
    feed outcomes' items, emptied once the feed state is updated."""
    from pipeline.views import refresh_database_file

    summary = summary or RunSummary(run_id)
    t0 = time.monotonic()
    base = wh.snapshot()
    if base.run(run_id) is not None:
        summary.already_committed = summary.committed = True
        return summary
    now = now or datetime.now(UTC)
    wh.recover(current_txn=run_id)  # leftovers of crashed writers
    state = wh.load_state(base)
    seen = wh.load_seen(base)
    # Pages selected against an older id set (another run committed in between) must not be stored twice.
    pages = PageList.of(page_outcomes)  # pages spooled by the fetch stay on disk
    if release_pages and isinstance(page_outcomes, list):
        page_outcomes.clear()
    pages = pages.subset(k for k in range(len(pages)) if not _in_sorted(seen, id_to_u64(pages.article_id(k))))
    linkless = [t for t in linkless if not _in_sorted(seen, id_to_u64(t.article_id))]

    # Feed validators, health and polling schedule.
    for fo in feed_outcomes:
        update_feed_state(config, state["feeds"].setdefault(fo.name, {}), fo, seen, state["pending"], now)
        if release_pages:
            fo.items = []  # read for the last time (the pages hold their own items): ~1 KB an item

    chunk = chunk_rows or config.commit.chunk_rows
    work = wh.staging_dir(run_id) / "commit"
    _malloc.return_freed_memory()  # the dedup index's big temporary arrays must not stay in the process
    meter = StageMeter(summary.stages)
    try:
        arts = _stream_articles(config, wh, pages, linkless, state, run_id, now, summary, work, chunk, pool,
                                release_pool, release_pages)
        _malloc.trim()  # the index is gone: its pages go back before the article files are written
        with meter.stage("commit/files"):
            log_rows = fetch_log_table([log_rows, linkless_log_rows(linkless, run_id, now)])
            _commit_files(config, wh, run_id, base, arts, state, seen, log_rows, raw_files, started_at, trigger,
                          summary, now, t0, chunk)
    finally:
        _remove_tree(work)
        _malloc.trim()
    with meter.stage("commit/views"):
        wh.prune_state(wh.last_snapshot)
        write_polling_snapshot(wh, state)
        warning = refresh_database_file(wh, wh.last_snapshot)  # the snapshot this commit made: no re-read
    if warning:
        summary.warnings.append(warning)
    return summary


def _commit_files(config: Config, wh: Warehouse, run_id: str, base: Any, arts: StreamedArticles,
                  state: dict[str, Any], seen: np.ndarray, log_rows: Any, raw_files: Sequence[Path],
                  started_at: datetime, trigger: str, summary: RunSummary, now: datetime, t0: float,
                  chunk: int) -> None:
    """The data files, the new state and the log entry of one run (the commit point), in that order.
    `log_rows`: the fetch-log rows, a FETCH_LOG_SCHEMA table (`fetch_log_table`)."""
    index_delta = arts.index_delta
    with wh.transaction(run_id, f"run {run_id}"):
        files: list[dict[str, Any]] = _write_article_files(wh, arts, run_id, chunk)
        if log_rows.num_rows:
            files.append(wh.write_table(f"fetch_log/run_date={now.date().isoformat()}/part-{run_id}-0.parquet",
                                        log_rows))
        for n, raw in enumerate(sorted(raw_files)):
            if raw.exists():
                rel = f"raw_pages/fetch_date={now.date().isoformat()}/part-{run_id}-{n}.parquet"
                files.append(wh.put_file(raw, rel))
        if index_delta is not None:
            files.append(wh.put_file(index_delta, f"dedup_index/part-{run_id}-0.parquet", with_schema=True))

        loaded, seen = seen, add_ids(seen, arts.ids)
        summary.retries_pending = len(state["pending"])
        summary.articles_written = arts.rows
        summary.elapsed_s = round(summary.elapsed_s + time.monotonic() - t0, 3)
        last = wh.last_run(base)
        unchanged = seen is loaded and last is not None and last.get("seen_file")
        state_rel, seen_rel = wh.write_state(run_id, state, seen, same_seen_as=last["seen_file"] if unchanged else None)
        crash_point("before_commit")
        wh.commit(RunEntry(
            run_id=run_id, started_at=started_at.isoformat(), committed_at=datetime.now(UTC).isoformat(),
            counts=summary.counts(), files=files, state_file=state_rel, seen_file=seen_rel,
            config_feeds=len(config.active_feeds), trigger=trigger,
        ), base=base)
        summary.committed = True
        crash_point("after_commit")


# ---------------------------------------------------------------------------------------------------- polling


def due_feed_names(config: Config, state: dict[str, Any], now: datetime) -> list[str]:
    """Names of the feeds a scheduled run polls now: those due before the next run (`polling.schedule_s`)."""
    from pipeline.polling import due_feeds

    return [f.name for f in due_feeds(config, state["feeds"], now, horizon_s=config.polling.schedule_s)]


def stamp_first_seen(tasks: Iterable[PageTask], feed_outcomes: Sequence[FeedOutcome]) -> None:
    """A new item is first seen when its feed was polled (not when the run commits): freshness counts
    from there."""
    polled = {fo.name: fo.polled_at for fo in feed_outcomes if fo.polled_at}
    for t in tasks:
        if t.first_seen_at is None:
            t.first_seen_at = polled.get(t.item.source)


def write_polling_snapshot(wh: Warehouse, state: dict[str, Any]) -> None:
    """Each feed's polling schedule as JSON lines for the `feed_polling` view (derived data, rewritten at
    every commit; the committed state stays the truth)."""
    from pipeline.polling import poll_state
    from pipeline.views import POLLING_FILE

    lines = []
    for name, st in sorted(state["feeds"].items()):
        ps = poll_state(st)
        rate = ps.rate_per_s
        lines.append(json.dumps({
            "source": name, "url": st.get("url"), "interval_s": ps.interval_s, "next_poll_at": _ts(ps.next_poll_at),
            "last_poll_at": _ts(ps.last_poll_at), "rate_per_h": rate * 3600 if rate is not None else None,
            "polls": ps.polls, "new_items": ps.new_items, "failures": ps.failures, "reason": ps.reason,
        }))
    wh.storage.write_bytes(POLLING_FILE, ("\n".join(lines) + "\n").encode("utf-8") if lines else b"")


def count_new_items(items: Iterable[FeedItem], seen: np.ndarray, pending: dict[str, Any]) -> int:
    """Items neither stored nor waiting for a retry (each id once)."""
    new: set[str] = set()
    for item in items:
        aid, _ = item_article_id(item)
        if aid not in new and aid not in pending and not _in_sorted(seen, id_to_u64(aid)):
            new.add(aid)
    return len(new)


def update_feed_state(config: Config, st: dict[str, Any], fo: FeedOutcome, seen: np.ndarray,
                      pending: dict[str, Any], now: datetime) -> None:
    """One feed's state entry after a poll: validators, health, and when to poll next."""
    record_poll(config, st, fo, seen, pending, now)  # before the validators are replaced
    st["url"] = fo.url
    st["last_attempt_at"] = now.isoformat()
    st["last_outcome"] = fo.outcome
    st["last_error"] = fo.error
    if fo.outcome in ("ok", "not_modified"):
        st["etag"], st["last_modified"] = fo.etag, fo.last_modified
        st["last_success_at"] = now.isoformat()
        st["consecutive_failures"] = 0
        if fo.ttl_s:
            st["ttl_s"] = fo.ttl_s
    elif fo.outcome == "deferred":
        pass  # not polled: its host asked us to wait; neither a success nor the feed's failure
    else:
        st["consecutive_failures"] = st.get("consecutive_failures", 0) + 1


def record_poll(config: Config, st: dict[str, Any], fo: FeedOutcome, seen: np.ndarray, pending: dict[str, Any],
                now: datetime) -> None:
    """Update one feed's polling schedule (`st["poll"]`) from what this poll showed."""
    from pipeline.polling import PollObservation, PollState, poll_state, update

    same_feed = st.get("url") == fo.url
    prev = poll_state(st) if same_feed else PollState()
    changed = None
    if fo.outcome == "ok" and same_feed and (fo.etag or fo.last_modified):
        changed = (fo.etag, fo.last_modified) != (st.get("etag"), st.get("last_modified"))
    new_items = fo.new_items if fo.new_items is not None else count_new_items(fo.items, seen, pending)
    obs = PollObservation(
        polled_at=fo.polled_at or now, outcome=fo.outcome, new_items=new_items, items=fo.n_items,
        changed=changed, item_times=fo.published_times(),
        ttl_s=fo.ttl_s, max_age_s=fo.max_age_s, retry_after_s=fo.retry_after_s,
    )
    st["poll"] = update(prev, obs, config.polling, key=fo.name).to_dict()


# ---------------------------------------------------------------------------------------------------- one run


def summarize_feeds(summary: RunSummary, outcomes: Sequence[FeedOutcome]) -> None:
    summary.feeds = len(outcomes)
    for fo in outcomes:
        summary.items += fo.n_items
        if fo.outcome == "ok":
            summary.feeds_ok += 1
        elif fo.outcome == "not_modified":
            summary.feeds_not_modified += 1
        elif fo.outcome == "deferred":
            summary.feeds_deferred += 1
            summary.warnings.append(f"feed {fo.name} not polled: {fo.error}")
        else:
            summary.feeds_failed += 1
            summary.failures.append(f"feed {fo.name} ({fo.url}): {fo.outcome}: {fo.error}")
        if fo.over_limit:
            summary.warnings.append(f"feed {fo.name}: {fo.over_limit} older items beyond max_items not taken")


def run_once(config: Config, warehouse: str | os.PathLike[str], *, run_id: str | None = None, trigger: str = "cli",
             progress: bool = False, lock_wait_s: float = 0.0, now: datetime | None = None,
             all_feeds: bool = False) -> RunSummary:
    """One incremental run in this process: every stage, then the commit.

    Polls the feeds that are due (their adaptive interval ends before the next scheduled run, see
    `pipeline.polling`), or every active feed with `all_feeds`."""
    from pipeline.progress import Progress

    _malloc.return_freed_memory()  # the fetch's freed buffers too (see use_system_arrow_pool)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    run_id = run_id or new_run_id(started)
    wh = Warehouse(warehouse)
    summary = RunSummary(run_id)
    meter = StageMeter(summary.stages)
    with wh.lock(f"run {run_id}", wait_s=lock_wait_s):
        snap = wh.snapshot()  # one read of the log for the three questions below
        if snap.run(run_id) is not None:
            summary.already_committed = summary.committed = True
            return summary
        state = wh.load_state(snap)
        seen = wh.load_seen(snap)
        names = None if all_feeds else due_feed_names(config, state, now or datetime.now(UTC))
        n_feeds = len(config.active_feeds) if names is None else len(names)
        # One process pool for the feeds' parsing, the pages' extraction and the commit's cleaning: every
        # stage's CPU work runs on every core, and the workers start once.
        pool = _make_pool(config, n_feeds)
        try:
            staging = wh.staging_dir(run_id)
            # Each feed's items become page tasks (on disk) as the feed arrives; the feed keeps their counts.
            spool = TaskSpool(staging)
            selector = PageSelector(seen, state["pending"], now or datetime.now(UTC), spool)

            def take_items(rank: int, fo: FeedOutcome) -> None:
                selector.add(fo.items, rank, fo.polled_at)
                fo.digest_items(seen, state["pending"])

            with meter.stage("feeds"), Progress("feeds", n_feeds, enabled=progress) as bar:
                feed_outcomes, log_rows = fetch_feeds(config, names, state["feeds"], run_id, progress=bar.update,
                                                      cache_dir=wh.local_cache_dir(), now=now, pool=pool,
                                                      on_outcome=take_items)
            summarize_feeds(summary, feed_outcomes)
            summary.feeds_not_due = len(config.active_feeds) - len(feed_outcomes)
            tasks, linkless, counts = selector.finish({fo.name: fo.polled_at for fo in feed_outcomes if fo.polled_at})
            summary.new_items = len(tasks) + len(linkless)
            if pool is None:
                pool = _make_pool(config, len(tasks))
            with meter.stage("pages"), Progress("pages", len(tasks), enabled=progress) as bar:
                pages, page_log, raw = fetch_pages(config, tasks, staging, "all", run_id, progress=bar.update,
                                                   cache_dir=wh.local_cache_dir(), now=now, pool=pool)
            summary.elapsed_s = time.monotonic() - t0
            log = fetch_log_table([log_rows, page_log])  # a dict per fetch would wait for the commit
            spool.close()
            del log_rows, page_log, tasks, spool
            with meter.stage("commit"):
                commit_run(config, wh, run_id, feed_outcomes=feed_outcomes, page_outcomes=pages, linkless=linkless,
                           log_rows=log, raw_files=[raw] if raw else [], started_at=started,
                           trigger=trigger, summary=summary, now=now, pool=pool, release_pool=True,
                           release_pages=True)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        _remove_tree(staging)
    return summary


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
