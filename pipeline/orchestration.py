"""Task bodies for orchestrators (Airflow today): each takes and returns small JSON-able values (paths,
counts), reads and writes staging files under `_staging/<run_id>/`, and is idempotent for a run id, so a
retried task instance rewrites the same files and the commit happens at most once.

Nothing here imports Airflow (and nothing heavy at module level: the DAG files import this module at parse
time for the Asset); dags/ only wires these functions into tasks.

The run clock: a task plans with the DAG run's time (`run_clock`), not the wall clock, so a retried task
instance plans the same feeds and pages as the attempt it replaces.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipeline.settings import Config, ConfigError, default_warehouse, load_config, parse_config

ASSET_NAME = "newsingest_articles"
log = logging.getLogger(__name__)


def _arrow_pool() -> None:
    """A task that reads or writes Parquet: pyarrow's buffers from the system allocator (see
    `_malloc.use_system_arrow_pool`), chosen before pyarrow is imported in the task's process."""
    from pipeline import _malloc

    _malloc.use_system_arrow_pool()


def articles_asset_uri(warehouse: str | None = None) -> str:
    """The URI of the Asset the ingest DAG's commit task emits (name `ASSET_NAME`); consumers schedule on
    the same name and URI."""
    location = warehouse or default_warehouse()
    if "://" in location:  # s3://bucket/prefix
        return f"{location.rstrip('/')}/articles"
    return f"file://{Path(location).absolute()}/articles"


def run_clock(run_after: datetime | None, logical_date: datetime | None = None) -> datetime:
    """The time a DAG run plans with: when it was due to run (`run_after`; a manual run has no logical
    date). Plain UTC datetime, whatever datetime subclass the orchestrator hands over."""
    when = run_after or logical_date
    if when is None:
        raise ValueError("a DAG run without run_after or logical_date: cannot pin the run clock")
    if when.tzinfo is None:
        raise ValueError(f"naive run time {when!r}: the orchestrator must give an aware datetime")
    return datetime.fromtimestamp(when.timestamp(), UTC)


def resolve_config(variable_text: str | None = None) -> Config:
    """Config from an Airflow Variable's YAML text, else from the file named by $NEWSINGEST_CONFIG."""
    if variable_text:
        return parse_config(variable_text, origin="Airflow Variable newsingest_config")
    path = os.environ.get("NEWSINGEST_CONFIG")
    if not path:
        raise ConfigError("no config: set the Airflow Variable 'newsingest_config' (YAML) or $NEWSINGEST_CONFIG (a path)")
    return load_config(path)


def plan_feeds(config: Config, max_batches: int = 64, warehouse: str | None = None, *,
               now: datetime | None = None) -> list[list[str]]:
    """Batches of the feeds that are due at `now` (the run clock; see pipeline.polling); one empty batch
    when none is, so the run still retries due pages and commits."""
    from pipeline.run import due_feed_names, plan_feed_batches
    from pipeline.warehouse import Warehouse

    if not config.active_feeds:
        raise ConfigError("the config lists no active feeds; nothing to ingest")
    state = Warehouse(warehouse or default_warehouse()).load_state()
    due = due_feed_names(config, state, now or datetime.now(UTC))
    return plan_feed_batches(config, max_batches=max_batches, names=due) or [[]]


def fetch_feed_batch(config: Config, warehouse: str, run_id: str, batch_index: int, feed_names: list[str]) -> dict[str, Any]:
    _arrow_pool()
    from pipeline.run import fetch_feeds, save_feed_stage
    from pipeline.warehouse import Warehouse

    wh = Warehouse(warehouse)
    stages: list[dict[str, Any]] = []
    with _metered(stages, "feeds"):
        state = wh.load_state()
        # The host store (robots.txt, deferrals) is shared with CLI runs: the same politeness either way.
        outcomes, log_rows = fetch_feeds(config, feed_names, state["feeds"], run_id, cache_dir=wh.local_cache_dir())
        path = wh.staging_dir(run_id) / f"feeds-{batch_index:04d}.json"
        save_feed_stage(path, outcomes, log_rows)
    return {
        "path": str(path),
        "feeds": len(outcomes),
        "failed": sum(1 for o in outcomes if o.outcome not in ("ok", "not_modified")),
        "items": sum(len(o.items) for o in outcomes),
        "stages": stages,
    }


@contextmanager
def _metered(stages: list[dict[str, Any]], name: str) -> Iterator[None]:
    """A task's work as stage `name` of `stages` (see pipeline.metering), logged when it ends: each mapped
    fetch task's time, CPU (its extraction workers' too) and peak memory, in its log and its XCom."""
    from pipeline.metering import StageMeter, format_stages

    try:
        with StageMeter(stages).stage(name):
            yield
    finally:
        log.info("stages    %s", format_stages(stages))


def plan_pages(config: Config, warehouse: str, run_id: str, feed_results: list[dict[str, Any]],
               max_batches: int = 64, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Page batches: new items and the pending retries due at `now` (the run clock)."""
    from pipeline.run import PageSelector, load_feed_stage, plan_page_batches, save_page_tasks
    from pipeline.run import stamp_first_seen as stamp
    from pipeline.warehouse import Warehouse

    wh = Warehouse(warehouse)
    state = wh.load_state()
    # A feed's items at a time (as a CLI run): the task holds the new items' tasks, not every item of the run
    selector = PageSelector(wh.load_seen(), state["pending"], now or datetime.now(UTC))
    all_outcomes = []
    for r in feed_results:
        outcomes, _ = load_feed_stage(Path(r["path"]))
        for o in outcomes:
            selector.add(o.items, rank=len(all_outcomes))  # an item in several feeds: the first feed's
            o.items = []
            all_outcomes.append(o)
    tasks, linkless, _counts = selector.finish()
    assert isinstance(tasks, list)
    stamp(tasks + linkless, all_outcomes)
    staging = wh.staging_dir(run_id)
    save_page_tasks(staging / "linkless.json", linkless)
    plans = []
    for k, batch in enumerate(plan_page_batches(tasks, max_batches=max_batches)):
        path = staging / f"pages-plan-{k:04d}.json"
        save_page_tasks(path, batch)
        plans.append({"path": str(path), "pages": len(batch), "batch": k})
    return plans


def fetch_page_batch(config: Config, warehouse: str, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
    _arrow_pool()
    from pipeline.run import fetch_pages, load_page_tasks, precleaned_stamp, save_page_stage
    from pipeline.warehouse import Warehouse

    wh = Warehouse(warehouse)
    tasks = load_page_tasks(Path(plan["path"]))
    staging = wh.staging_dir(run_id)
    key = f"{plan['batch']:04d}"
    # The texts are precleaned here, where the fetch tasks run side by side, and staged for the commit: the
    # single commit task then cleans only the texts its site templates mark (see run.Precleaned).
    stages: list[dict[str, Any]] = []
    with _metered(stages, "pages"):
        outcomes, log_rows, raw = fetch_pages(config, tasks, staging, key, run_id, cache_dir=wh.local_cache_dir())
        path = staging / f"pages-{key}.json"
        save_page_stage(path, outcomes, log_rows, raw, precleaned_stamp=precleaned_stamp(config))
    return {"path": str(path), "pages": len(outcomes),
            "failed": sum(1 for o in outcomes if o.extracted is None), "stages": stages}


class AllFeedsFailed(RuntimeError):
    pass


def verify(counts: dict[str, Any]) -> dict[str, Any]:
    """Fail loudly when no feed could be fetched (single feed failures are recorded, not fatal)."""
    if counts.get("feeds", 0) and counts.get("feeds_failed", 0) == counts["feeds"]:
        raise AllFeedsFailed(
            f"all {counts['feeds']} feeds failed in run {counts.get('run_id')}: see the fetch_log view "
            "(SELECT url, outcome, error FROM fetch_log WHERE kind = 'feed' ORDER BY started_at DESC)"
        )
    return counts


def commit(config: Config, warehouse: str, run_id: str, feed_results: list[dict[str, Any]],
           page_results: list[dict[str, Any]], *, trigger: str = "airflow", lock_wait_s: float = 300.0,
           now: datetime | None = None) -> dict[str, Any]:
    """The single writer: dedup and commit what the fetch tasks staged. Re-running it for a committed run
    id does nothing, so a retried commit task never duplicates rows. `now`: the commit's clock (tests)."""
    import shutil

    _arrow_pool()
    from pipeline.metering import StageMeter
    from pipeline.run import (
        PageList,
        PageSpool,
        RunSummary,
        commit_run,
        load_feed_stage,
        load_page_stage,
        load_page_tasks,
        precleaned_stamp,
        summarize_feeds,
    )
    from pipeline.warehouse import Warehouse

    wh = Warehouse(warehouse)
    summary = RunSummary(run_id)
    staging = wh.staging_dir(run_id)
    with wh.lock(f"airflow commit {run_id}", wait_s=lock_wait_s):
        if wh.is_committed(run_id):  # a retried task instance: the first attempt committed
            wh.recover()  # its crash marker, if it died past its commit point
            shutil.rmtree(staging, ignore_errors=True)
            entry = next(r for r in wh.committed_runs() if r["run_id"] == run_id)
            return {"run_id": run_id, **entry.get("counts", {}), "already_committed": True}
        feed_outcomes, log_rows = [], []
        for r in feed_results:
            outcomes, rows = load_feed_stage(Path(r["path"]))
            feed_outcomes.extend(outcomes)
            log_rows.extend(rows)
        summarize_feeds(summary, feed_outcomes)
        # The stages' pages wait on disk (a page with its precleaned text is ~10 KB): the commit reads them
        # back a chunk at a time, as a CLI run's, so its memory does not grow with the run.
        spool, raws = PageSpool(staging), []
        stamp = precleaned_stamp(config)
        for r in page_results:
            outcomes, rows, raw = load_page_stage(Path(r["path"]), precleaned_stamp=stamp)
            for po in outcomes:
                spool.append(po)
            del outcomes
            log_rows.extend(rows)
            if raw is not None:
                raws.append(raw)
        pages = PageList(spool, range(len(spool)))
        linkless_path = staging / "linkless.json"
        linkless = load_page_tasks(linkless_path) if linkless_path.exists() else []
        summary.new_items = len(pages) + len(linkless)
        started = min((r["started_at"] for r in log_rows if r.get("started_at")), default=datetime.now(UTC))
        with StageMeter(summary.stages).stage("commit"):
            commit_run(config, wh, run_id, feed_outcomes=feed_outcomes, page_outcomes=pages, linkless=linkless,
                       log_rows=log_rows, raw_files=raws, started_at=started, trigger=trigger, summary=summary,
                       now=now, release_pages=True)
        shutil.rmtree(staging, ignore_errors=True)
    # the commit's passes, timed and with this task's peak memory (see pipeline.metering)
    return {"run_id": run_id, **summary.counts(), "stages": summary.stages}


# ---------------------------------------------------------------------------------------------------- maintenance
# The daily news_maintenance DAG: retain -> compact -> vacuum -> report (compact and vacuum are plain calls
# of pipeline.maintenance; what needs deciding lives here).

DEFAULT_RETAIN_DAYS = 30
RETAIN_OFF = ("off", "none", "never")


def retain_days(value: str | None) -> int | None:
    """Days of raw pages to keep, from a setting's text (the Variable `newsingest_retain_days` or
    $NEWSINGEST_RETAIN_DAYS): empty = 30, "off" = keep everything (None)."""
    text = (value or "").strip()
    if not text:
        return DEFAULT_RETAIN_DAYS
    if text.lower() in RETAIN_OFF:
        return None
    try:
        days = int(text)
    except ValueError:
        raise ConfigError(f"retention days {text!r} is not a whole number of days (or 'off')") from None
    if days < 0:
        raise ConfigError(f"retention days must be 0 or more, not {days}")
    return days


def report_path(warehouse: str, day: date, template: str | None = None) -> Path | None:
    """Where a run's health report goes: `template` ($NEWSINGEST_REPORT_PATH; `{date}` becomes the run's
    date), else <warehouse>/_reports/report-<date>.html. None for an object-storage warehouse without a
    template (the report needs a local path)."""
    if template:
        return Path(template.replace("{date}", day.isoformat())).absolute()
    if "://" in warehouse:
        return None
    return Path(warehouse).absolute() / "_reports" / f"report-{day.isoformat()}.html"


def maintenance_retain(warehouse: str, days: int | None, now: datetime, *, lock_wait_s: float) -> dict[str, Any]:
    """Retire raw-page partitions older than `days` before `now` (the run clock: a retry retires the same
    partitions). The files go at the vacuum task, after the grace period."""
    from pipeline.maintenance import retain

    if days is None:
        return {"skipped": "retention is off (newsingest_retain_days / NEWSINGEST_RETAIN_DAYS = off)"}
    return retain(warehouse, days, now=now, lock_wait_s=lock_wait_s, vacuum=False)


def maintenance_report(warehouse: str, now: datetime, template: str | None = None) -> dict[str, Any]:
    """Write the HTML health report (pipeline.report) as of `now`; return its counts."""
    from pipeline.report import write_report

    out = report_path(warehouse, now.date(), template)
    if out is None:
        return {"skipped": f"{warehouse} is on object storage: set NEWSINGEST_REPORT_PATH to a local file "
                           "(e.g. /reports/report-{date}.html) to get the report"}
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_report(warehouse, out, now=now)
