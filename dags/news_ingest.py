"""Scheduled news ingestion (Airflow 3).

    plan_feeds -> fetch_feeds (mapped over host batches) -> plan_pages -> fetch_pages (mapped)
               -> commit (one task: it owns the dedup index; emits the articles Asset) -> verify

Thin by design: all logic lives in `pipeline.orchestration`; tasks exchange paths and counts through XCom,
never article data. Nothing heavy is imported at module level (the dag-processor re-parses this file often).

Retries are safe: every task is keyed by the DAG run (its run id names the staging directory and the
committed run; its `run_after` is the clock the plans use), so a retried task instance redoes the same
work, and a commit retried after it succeeded (or after a crash past its commit point) changes nothing.

Settings (environment of the Airflow components):
  NEWSINGEST_CONFIG     path of the YAML config (or set the Airflow Variable `newsingest_config` to the YAML)
  NEWSINGEST_WAREHOUSE  warehouse directory (default ./warehouse of the worker)
  NEWSINGEST_SCHEDULE   cron expression (default every 15 minutes)
  NEWSINGEST_POOL       Airflow pool that caps concurrent fetch tasks (default news_fetch)
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

from pipeline.orchestration import ASSET_NAME, articles_asset_uri  # light: no pyarrow/duckdb at parse time
from pipeline.settings import default_warehouse

WAREHOUSE = default_warehouse()
# Consumers schedule on this Asset (same name and URI): dags/news_consumer_example.py.
ARTICLES = Asset(uri=articles_asset_uri(WAREHOUSE), name=ASSET_NAME)
FETCH_POOL = os.environ.get("NEWSINGEST_POOL", "news_fetch")


def _config():
    from airflow.sdk import Variable

    from pipeline.orchestration import resolve_config

    return resolve_config(Variable.get("newsingest_config", default=None))


def _run_id() -> str:
    # The run's identity, not the wall clock: a retried task of the same DAG run reuses its staging and
    # its commit is a no-op once done.
    from airflow.sdk import get_current_context

    from pipeline.run import sanitize_run_id

    ctx = get_current_context()
    return sanitize_run_id(f"af_{ctx['dag'].dag_id}_{ctx['dag_run'].run_id}")


def _run_clock():
    # Plans use the time the run was due, not the wall clock: a retry plans the same feeds and pages.
    from airflow.sdk import get_current_context

    from pipeline.orchestration import run_clock

    dag_run = get_current_context()["dag_run"]
    return run_clock(dag_run.run_after, dag_run.logical_date)


@dag(
    dag_id="news_ingest",
    schedule=os.environ.get("NEWSINGEST_SCHEDULE", "*/15 * * * *"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one commit at a time; the warehouse lock also guards against others
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    tags=["newsingest"],
    doc_md=__doc__,
)
def news_ingest():
    @task
    def plan_feeds() -> list[list[str]]:
        from pipeline.orchestration import plan_feeds as plan

        return plan(_config(), warehouse=WAREHOUSE, now=_run_clock())

    @task(pool=FETCH_POOL)
    def fetch_feeds(feed_names: list[str]) -> dict:
        from airflow.sdk import get_current_context

        from pipeline.orchestration import fetch_feed_batch

        index = get_current_context()["ti"].map_index
        return fetch_feed_batch(_config(), WAREHOUSE, _run_id(), max(index, 0), feed_names)

    @task
    def plan_pages(feed_results: list[dict]) -> list[dict]:
        from pipeline.orchestration import plan_pages as plan

        return plan(_config(), WAREHOUSE, _run_id(), list(feed_results), now=_run_clock())

    @task(pool=FETCH_POOL)
    def fetch_pages(plan: dict) -> dict:
        from pipeline.orchestration import fetch_page_batch

        return fetch_page_batch(_config(), WAREHOUSE, _run_id(), plan)

    @task(outlets=[ARTICLES], trigger_rule="none_failed")
    def commit(feed_results: list[dict], page_results: list[dict] | None) -> dict:
        from pipeline.orchestration import commit as do_commit

        return do_commit(_config(), WAREHOUSE, _run_id(), list(feed_results), list(page_results or []))

    @task(retries=0)  # a check of what the commit recorded: a retry cannot change the answer
    def verify(counts: dict) -> dict:
        from pipeline.orchestration import verify as check

        return check(counts)

    feed_results = fetch_feeds.expand(feed_names=plan_feeds())
    page_plans = plan_pages(feed_results)
    page_results = fetch_pages.expand(plan=page_plans)
    verify(commit(feed_results, page_results))


news_ingest()
