"""`newsingest watch`: continuous ingestion in micro-batches.

One process, one asyncio loop:

* **Polls** each feed when it is due (`pipeline.polling`: an interval adapted to the feed), with one
  long-lived HTTP client, so per-host politeness and robots.txt hold across polls.
* A poll and the pages of its new items form a **unit**: the feed is fetched, its new items selected
  (against the committed seen set, the pending retries and whatever is in flight), their pages fetched and
  extracted (in worker processes). Only a finished unit joins the open batch, so a feed's new validators
  (ETag, Last-Modified) are never committed without its new items: a crash can make us re-poll a feed,
  never skip items.
* The open batch is **committed** through `run.commit_run` (the same commit protocol as `run`: Parquet
  under temporary names, state, manifest entry last) `commit_interval_s` after its first article, as soon
  as it holds `commit_max_articles`, or every `idle_commit_s` when it holds only polls. The warehouse lock
  is held per commit, not for the process lifetime: `run`, the DAG or maintenance can commit in between;
  at each commit, articles another writer stored meanwhile are dropped from the batch (no duplicates). A
  second watcher on the same warehouse is refused (`_watch.lock`).
* **SIGINT/SIGTERM**: stop polling, let units in flight finish for up to `drain_s`, commit what finished,
  exit 0; units still unfinished are discarded (their feeds are simply polled again next time). A second
  signal skips the drain. **SIGKILL** at any point loses nothing and duplicates nothing: uncommitted files
  are invisible and removed at the next commit, and items whose pages were fetched but not committed are
  not in the committed seen set, so the restarted watcher fetches them again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("newsingest.watch")

ROBOTS_REFRESH_S = 3600.0  # re-read robots.txt this often
TICK_S = 0.25  # the scheduler's resolution


def new_watch_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}Z-watch{secrets.token_hex(3)}"


@dataclass
class Unit:
    """One poll of a feed and the pages of its new items (or a sweep of due page retries: feed None)."""

    feed: Any | None  # run.FeedOutcome
    pages: list[Any] = field(default_factory=list)  # run.PageOutcome
    linkless: list[Any] = field(default_factory=list)  # run.PageTask
    raw: list[tuple[Any, Any, datetime]] = field(default_factory=list)  # (PageTask, FetchResult with body, fetched_at)
    ids: set[str] = field(default_factory=set)  # article ids claimed by this unit

    @property
    def articles(self) -> int:
        return len(self.pages) + len(self.linkless)


@dataclass
class Batch:
    units: list[Unit] = field(default_factory=list)
    opened_at: float = field(default_factory=time.monotonic)
    first_article_at: float | None = None

    def add(self, unit: Unit) -> None:
        self.units.append(unit)
        if unit.articles and self.first_article_at is None:
            self.first_article_at = time.monotonic()

    @property
    def articles(self) -> int:
        return sum(u.articles for u in self.units)

    def __bool__(self) -> bool:
        return bool(self.units)


@dataclass
class WatchStats:
    commits: int = 0
    polls: int = 0
    articles: int = 0
    dropped_as_committed_elsewhere: int = 0
    discarded_units: int = 0
    commit_errors: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def should_commit(batch: Batch, now: float, last_commit: float, commit_interval_s: float, max_articles: int,
                  idle_commit_s: float) -> bool:
    """Whether the open batch is due: N seconds after its first article, M articles, or idle polls."""
    if not batch:
        return False
    n = batch.articles
    if n >= max_articles:
        return True
    if n and batch.first_article_at is not None and now - batch.first_article_at >= commit_interval_s:
        return True
    return now - last_commit >= idle_commit_s


class WatchLocked(RuntimeError):
    pass


@contextlib.contextmanager
def watch_lock(root: Path):
    """One watcher per warehouse (two would poll every feed twice)."""
    path = root / "_watch.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise WatchLocked(f"another watcher runs on {root}: {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}".encode(), 0)
        yield
    finally:
        os.close(fd)


def _start_worker(nice: int) -> None:
    """An extraction worker's start: the parent decides when to stop, and the parent's polls come first."""
    from pipeline.run import _lower_priority

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _lower_priority(nice)


class Watcher:
    """Polls due feeds continuously and commits micro-batches. `await Watcher(...).run(stop)`."""

    def __init__(self, config: Any, warehouse: str | os.PathLike[str], *, workers: int | None = None,
                 on_commit: Callable[[Any], None] | None = None) -> None:
        from pipeline.warehouse import Warehouse

        self.config = config
        self.wh = Warehouse(warehouse)
        self.settings = config.watch
        self.workers = workers if workers is not None else (config.extract.workers or min(2, os.cpu_count() or 1))
        self.on_commit = on_commit
        self.stats = WatchStats()
        self.open = Batch()
        self.log_rows: list[dict[str, Any]] = []
        self.known: set[str] = set()  # ids in flight, in the open batch, or being committed
        self.inflight: dict[str, asyncio.Task[None]] = {}  # feed name (or "retries") -> unit task
        self.committing: asyncio.Task[None] | None = None
        self.last_commit = time.monotonic()
        self._commit_backoff_until = 0.0
        self.sink = _WatchLogSink(self)
        self.pool: Any = None
        self._load_committed()

    # ------------------------------------------------------------------ state

    def _load_committed(self) -> None:
        state = self.wh.load_state()
        self.feed_state: dict[str, dict[str, Any]] = state["feeds"]  # in memory: schedule and validators
        self.pending: dict[str, Any] = state["pending"]
        self.seen = self.wh.load_seen()
        self._next_at: dict[str, datetime | None] = {}
        from pipeline.polling import scheduled_at

        for f in self.config.active_feeds:
            self._next_at[f.name] = scheduled_at(f, self.feed_state.get(f.name))

    def due(self, now: datetime) -> list[Any]:
        out = []
        for f in self.config.active_feeds:
            if f.name in self.inflight:
                continue
            nxt = self._next_at.get(f.name)
            if nxt is None or nxt <= now:
                out.append(f)
        return out

    # ------------------------------------------------------------------ units

    def _is_known(self, aid: str) -> bool:
        from pipeline.run import _in_sorted, id_to_u64

        return aid in self.known or _in_sorted(self.seen, id_to_u64(aid))

    def select(self, fo: Any, now: datetime) -> tuple[list[Any], list[Any], int]:
        """(page tasks, link-less tasks, new-item count) for one poll's items; claims their ids."""
        from pipeline.run import PageTask, _dt, item_article_id

        fetch, linkless, new = [], [], 0
        for item in fo.items:
            aid, _ = item_article_id(item)
            if self._is_known(aid):
                continue
            p = self.pending.get(aid)
            if p is not None:
                due = _dt(p.get("next_attempt_at"))
                if due is not None and due > now:
                    continue
                task = PageTask(aid, item, attempts=p.get("attempts", 0), first_seen_at=_dt(p.get("first_seen_at")))
            else:
                new += 1
                task = PageTask(aid, item, first_seen_at=fo.polled_at or now)
            self.known.add(aid)
            (fetch if item.url else linkless).append(task)
        return fetch, linkless, new

    def due_retries(self, now: datetime) -> list[Any]:
        """Pending page retries that are due and no poll has picked up (their items left the feed)."""
        from pipeline.run import FeedItem, PageTask, _dt, _record_from_dict

        out = []
        for aid, p in self.pending.items():
            if aid in self.known:
                continue
            due = _dt(p.get("next_attempt_at"))
            if due is None or due <= now:
                out.append(PageTask(aid, _record_from_dict(FeedItem, p["item"]), attempts=p.get("attempts", 0),
                                    first_seen_at=_dt(p.get("first_seen_at"))))
                self.known.add(aid)
        return out

    async def _fetch_page(self, fetcher: Any, task: Any, unit: Unit) -> None:
        from concurrent.futures.process import BrokenProcessPool

        from pipeline.records import Extracted
        from pipeline.run import PageOutcome, _extract_worker

        self.sink.sources[task.item.url] = task.item.source
        try:
            res = await fetcher.fetch(task.item.url, "page")
        finally:
            self.sink.sources.pop(task.item.url, None)
        fetched_at = datetime.now(UTC)
        extracted = None
        if res.outcome == "ok" and res.text is not None:
            args = (res.text, res.final_url or res.url, self.config.extract.min_words, task.item.published_at)
            pool = self.pool
            try:
                extracted = await asyncio.get_running_loop().run_in_executor(pool, _extract_worker, *args)
            except BrokenProcessPool:  # a worker died (the extractor crashed hard): new workers, unit redone
                if self.pool is pool:
                    log.error("extraction workers died; starting new ones")
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = self._new_pool()
                raise
            unit.raw.append((task, res, fetched_at))
        elif res.outcome == "bad_content":
            extracted = Extracted(status="not_html", error=res.error)
        res.text = None
        unit.pages.append(PageOutcome(task, res, extracted, fetched_at))

    async def _poll_unit(self, fetcher: Any, feed: Any) -> None:
        import copy

        from pipeline.run import poll_feed, update_feed_state

        unit = Unit(None)
        st = self.feed_state.setdefault(feed.name, {})
        before = copy.deepcopy(st)
        try:
            fo = await poll_feed(fetcher, feed, st, self.sink)
            now = datetime.now(UTC)
            tasks, linkless, new = self.select(fo, now)
            fo.new_items = new
            unit.feed, unit.linkless = fo, linkless
            unit.ids = {t.article_id for t in tasks + linkless}
            # The schedule moves on now (the committed state gets the same update at commit).
            update_feed_state(self.config, st, fo, self.seen, self.pending, now)
            from pipeline.polling import poll_state

            self._next_at[feed.name] = poll_state(st).next_poll_at
            self.stats.polls += 1
            await asyncio.gather(*(self._fetch_page(fetcher, t, unit) for t in tasks))
        except asyncio.CancelledError:
            self.known -= unit.ids
            self.stats.discarded_units += 1
            raise
        except Exception:
            # The unit is dropped; so is what this poll taught us (validators included), or the next
            # conditional GET would answer 304 and its items would never be seen again.
            log.exception("poll of %s failed; it is polled again later", feed.name)
            self.known -= unit.ids
            self.feed_state[feed.name] = before
            self._next_at[feed.name] = datetime.now(UTC) + timedelta(seconds=self.config.polling.min_interval_s)
            self.stats.discarded_units += 1
            return
        self.open.add(unit)

    async def _retry_unit(self, fetcher: Any, tasks: list[Any]) -> None:
        unit = Unit(None, ids={t.article_id for t in tasks})
        try:
            await asyncio.gather(*(self._fetch_page(fetcher, t, unit) for t in tasks))
        except Exception:
            log.exception("page retries failed; they are tried again later")
            self.known -= unit.ids
            return
        except asyncio.CancelledError:
            self.known -= unit.ids
            raise
        self.open.add(unit)

    # ------------------------------------------------------------------ commits

    def _commit_sync(self, batch: Batch, run_id: str, log_rows: list[dict[str, Any]]) -> tuple[Any, dict, Any, int]:
        """Commit one batch under the warehouse lock (runs in a thread)."""
        import shutil

        from pipeline.run import RawPageWriter, RunSummary, _in_sorted, commit_run, id_to_u64, summarize_feeds

        wh = self.wh
        with wh.lock(f"watch {run_id}", wait_s=self.settings.lock_wait_s):
            seen = wh.load_seen()  # another writer may have stored some of these articles meanwhile
            fresh = lambda aid: not _in_sorted(seen, id_to_u64(aid))  # noqa: E731
            feeds = [u.feed for u in batch.units if u.feed is not None]
            pages = [p for u in batch.units for p in u.pages if fresh(p.task.article_id)]
            linkless = [t for u in batch.units for t in u.linkless if fresh(t.article_id)]
            dropped = sum(u.articles for u in batch.units) - len(pages) - len(linkless)
            staging = wh.staging_dir(run_id)
            try:
                raw = RawPageWriter(staging / "raw-watch.parquet", run_id)
                for u in batch.units:
                    for task, res, fetched_at in u.raw:
                        if fresh(task.article_id):
                            raw.add(task, res, fetched_at)
                raw.close()
                summary = RunSummary(run_id)
                summarize_feeds(summary, feeds)
                summary.new_items = len(pages) + len(linkless)
                started = min((f.polled_at for f in feeds if f.polled_at), default=datetime.now(UTC))
                commit_run(self.config, wh, run_id, feed_outcomes=feeds, page_outcomes=pages, linkless=linkless,
                           log_rows=log_rows, raw_files=[raw.path] if raw.count else [], started_at=started,
                           trigger="watch", summary=summary)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            state = wh.load_state()
            return summary, state["pending"], wh.load_seen(), dropped

    async def _commit(self, batch: Batch) -> None:
        from pipeline.warehouse import WarehouseLocked

        run_id = new_watch_run_id()
        log_rows, self.log_rows = self.log_rows, []
        for row in log_rows:
            row["run_id"] = run_id
        try:
            summary, pending, seen, dropped = await asyncio.to_thread(self._commit_sync, batch, run_id, log_rows)
        except Exception as exc:  # locked, disk full...: keep everything, try again shortly
            self.stats.commit_errors += 1
            level = logging.WARNING if isinstance(exc, WarehouseLocked) else logging.ERROR
            log.log(level, "commit failed (%s: %s); the batch stays open and is committed later",
                    type(exc).__name__, exc, exc_info=level == logging.ERROR)
            self.log_rows = log_rows + self.log_rows
            batch.units.extend(self.open.units)  # the failed batch goes first: poll order per feed holds
            if self.open.first_article_at is not None and batch.first_article_at is None:
                batch.first_article_at = self.open.first_article_at
            self.open = batch
            self._commit_backoff_until = time.monotonic() + min(30.0, 2.0 * self.stats.commit_errors)
            return
        self.pending, self.seen = pending, seen
        for u in batch.units:
            self.known -= u.ids
        self.last_commit = time.monotonic()
        self.stats.commits += 1
        self.stats.articles += summary.articles_written
        self.stats.dropped_as_committed_elsewhere += dropped
        log.info("committed %s: %d feeds polled, %d articles (%d with text), %d pages failed%s", run_id,
                 summary.feeds, summary.articles_written, summary.articles_ok, summary.pages_failed,
                 f", {dropped} already stored by another writer" if dropped else "")
        if self.on_commit:
            self.on_commit(summary)

    def _maybe_commit(self, force: bool = False) -> None:
        if self.committing is not None and not self.committing.done():
            return
        now = time.monotonic()
        if now < self._commit_backoff_until and not force:
            return
        s = self.settings
        if force and self.open or should_commit(self.open, now, self.last_commit, s.commit_interval_s,
                                                s.commit_max_articles, s.idle_commit_s):
            batch, self.open = self.open, Batch()
            self.committing = asyncio.create_task(self._commit(batch))

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event, *, hard_stop: asyncio.Event | None = None,
                  duration_s: float | None = None) -> WatchStats:
        """Poll and commit until `stop` is set (or `duration_s` passed); then drain and commit."""
        from pipeline.fetch.client import Fetcher
        from pipeline.run import _host_delays

        hard_stop = hard_stop or asyncio.Event()
        self.pool = self._new_pool()
        deadline = time.monotonic() + duration_s if duration_s else None
        robots_at = time.monotonic()
        try:
            async with Fetcher(self.config.fetch, on_result=self.sink, host_delays=_host_delays(self.config)) as fetcher:
                while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                    now = datetime.now(UTC)
                    for feed in self.due(now):
                        self.inflight[feed.name] = asyncio.create_task(
                            self._poll_unit(fetcher, feed), name=f"poll {feed.name}")
                    if "retries" not in self.inflight:
                        retries = self.due_retries(now)
                        if retries:
                            self.inflight["retries"] = asyncio.create_task(self._retry_unit(fetcher, retries))
                    for name, t in list(self.inflight.items()):
                        if t.done():
                            del self.inflight[name]
                    self._maybe_commit()
                    if time.monotonic() - robots_at > ROBOTS_REFRESH_S:
                        fetcher.forget_robots()
                        robots_at = time.monotonic()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), TICK_S)
                await self._drain(hard_stop)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return self.stats

    def _new_pool(self) -> Any:
        import concurrent.futures
        import multiprocessing

        # A daemonic process (a Celery prefork worker's task) may not start children: extract in a thread.
        if self.workers > 1 and not multiprocessing.current_process().daemon:
            from pipeline import _malloc

            _malloc.single_threaded_blas()  # the workers' numpy
            return concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                initargs=(self.config.extract.worker_nice,))
        return concurrent.futures.ThreadPoolExecutor(max_workers=1)

    async def _drain(self, hard_stop: asyncio.Event) -> None:
        """Stop: let units in flight finish (up to drain_s), commit what finished, discard the rest."""
        pending = [t for t in self.inflight.values() if not t.done()]
        if pending and not hard_stop.is_set():
            log.info("stopping: waiting up to %.0f s for %d polls in flight", self.settings.drain_s, len(pending))
            waiter = asyncio.ensure_future(asyncio.wait(pending, timeout=self.settings.drain_s))
            hard = asyncio.ensure_future(hard_stop.wait())
            await asyncio.wait([waiter, hard], return_when=asyncio.FIRST_COMPLETED)
            hard.cancel()
        for t in self.inflight.values():
            if not t.done():
                t.cancel()
        await asyncio.gather(*self.inflight.values(), return_exceptions=True)
        if self.committing is not None:
            await asyncio.gather(self.committing, return_exceptions=True)
        if hard_stop.is_set():
            if self.open:
                log.info("stopping now: the open batch (%d articles) is discarded; its feeds are polled again "
                         "next time", self.open.articles)
            return
        for _attempt in range(3):
            if not self.open:
                break
            self._maybe_commit(force=True)
            if self.committing is not None:
                await asyncio.gather(self.committing, return_exceptions=True)


class _WatchLogSink:
    """The fetch log of the watcher: each row goes to the buffer current at the time of the fetch (the
    buffer is handed to each commit and replaced)."""

    def __init__(self, watcher: Watcher) -> None:
        from pipeline.run import _LogSink

        self.watcher = watcher
        self.sources = {f.url: f.name for f in watcher.config.feeds}  # feed URLs, and pages being fetched
        self._row = _LogSink([], self.sources)

    def __call__(self, result: Any) -> None:
        self._row.rows = self.watcher.log_rows
        self._row(result)

    def amend(self, url: str, outcome: str, error: str | None) -> None:
        for row in reversed(self.watcher.log_rows):
            if row["url"] == url:
                row["outcome"], row["error"] = outcome, error
                return


# ---------------------------------------------------------------------------------------------------- CLI


def cmd_watch(args: argparse.Namespace) -> int:
    from pipeline.cli import _die
    from pipeline.settings import ConfigError, load_config
    from pipeline.warehouse import WarehouseError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _die(str(exc))
    if not config.active_feeds:
        return _die(f"{args.config}: the feed list is empty (add feeds under 'feeds:'); nothing to watch")
    overrides = {k: v for k, v in (("commit_interval_s", args.commit_every), ("commit_max_articles", args.commit_articles))
                 if v is not None}
    if overrides:
        config = config.model_copy(update={"watch": config.watch.model_copy(update=overrides)})
    try:
        watcher = Watcher(config, args.warehouse, workers=args.workers)
    except WarehouseError as exc:
        return _die(str(exc))
    try:
        with watch_lock(watcher.wh.root):
            _clean_stale_staging(watcher.wh.root)
            stats = asyncio.run(_main(watcher, args.duration))
    except WatchLocked as exc:
        return _die(str(exc))
    print(f"watch stopped: {stats.polls} polls, {stats.commits} commits, {stats.articles} articles written"
          + (f", {stats.commit_errors} commit attempts failed (retried)" if stats.commit_errors else ""), flush=True)
    return 0


def _clean_stale_staging(root: Path) -> None:
    """Staging of watch commits that a crash interrupted (we hold the watch lock: no other watcher)."""
    import shutil

    staging = root / "_staging"
    if staging.is_dir():
        for d in staging.glob("*-watch*"):
            shutil.rmtree(d, ignore_errors=True)


async def _main(watcher: Watcher, duration_s: float | None) -> WatchStats:
    loop = asyncio.get_running_loop()
    stop, hard_stop = asyncio.Event(), asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.info("second %s: stopping without waiting", signal.Signals(signum).name)
            hard_stop.set()
        else:
            log.info("%s: finishing the open batch, then stopping", signal.Signals(signum).name)
            stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    log.info("watching %d feeds into %s", len(watcher.config.active_feeds), watcher.wh.root)
    return await watcher.run(stop, hard_stop=hard_stop, duration_s=duration_s)


def register(subparsers: Any) -> None:
    from pipeline.settings import default_warehouse

    sp = subparsers.add_parser(
        "watch", help="streaming mode: poll each feed when due, commit micro-batches until stopped",
        description="Poll feeds continuously (each at its adaptive interval) and commit new articles in "
                    "micro-batches. SIGINT/SIGTERM commits the open batch and exits 0; a second signal exits at once.")
    sp.add_argument("--config", required=True, help="YAML config with feeds: (and optionally polling:, watch:)")
    sp.add_argument("--warehouse", default=default_warehouse(),
                    help="warehouse directory (default: $NEWSINGEST_WAREHOUSE or ./warehouse)")
    sp.add_argument("--commit-every", type=float, metavar="S", help="commit new articles within S seconds "
                    "(overrides watch.commit_interval_s)")
    sp.add_argument("--commit-articles", type=int, metavar="M", help="commit as soon as M articles wait "
                    "(overrides watch.commit_max_articles)")
    sp.add_argument("--duration", type=float, metavar="S", help="stop cleanly after S seconds (e.g. one Airflow "
                    "task per schedule interval)")
    sp.add_argument("--workers", type=int, help="extraction processes (default: extract.workers, else 2)")
    sp.set_defaults(func=cmd_watch)
