"""Daily warehouse maintenance (Airflow 3).

    retain -> compact -> vacuum -> report

- retain: retire raw-page partitions older than N days (the kept raw pages feed `newsingest reextract`;
  articles are never subject to retention). Retiring first spares compacting what is about to go.
- compact: merge each partition's small files (an ingest every 15 minutes writes many) in one commit;
  readers see every partition before or after, never twice.
- vacuum: delete the files retired more than an hour ago, crash leftovers and stale staging.
- report: the HTML health page of `newsingest report`, one per day.

Thin by design: the work is `pipeline.maintenance` and `pipeline.orchestration`; each task returns small
counts (XCom). Every task takes the warehouse lock and waits for it, so maintenance and ingest runs take
turns; each is safe to retry (a retried compaction finds the partitions already merged; retain and the
report use the run's time, not the wall clock).

Settings (environment of the Airflow components, or Airflow Variables where named):
  NEWSINGEST_WAREHOUSE            warehouse directory or s3:// URL (default ./warehouse of the worker)
  NEWSINGEST_RETAIN_DAYS          days of raw pages to keep (default 30; "off" keeps all); the Variable
                                  `newsingest_retain_days` overrides it
  NEWSINGEST_REPORT_PATH          where the report goes; {date} becomes the run's date
                                  (default <warehouse>/_reports/report-{date}.html)
  NEWSINGEST_MAINTENANCE_SCHEDULE cron expression (default 03:00 UTC daily)
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import dag, task

from pipeline.settings import default_warehouse

WAREHOUSE = default_warehouse()
LOCK_WAIT_S = 900.0  # an ingest commit holds the lock for seconds to minutes: wait for it, do not fail


def _run_clock():
    from airflow.sdk import get_current_context

    from pipeline.orchestration import run_clock

    dag_run = get_current_context()["dag_run"]
    return run_clock(dag_run.run_after, dag_run.logical_date)


@dag(
    dag_id="news_maintenance",
    schedule=os.environ.get("NEWSINGEST_MAINTENANCE_SCHEDULE", "0 3 * * *"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["newsingest"],
    doc_md=__doc__,
)
def news_maintenance():
    @task
    def retain() -> dict:
        from airflow.sdk import Variable

        from pipeline.orchestration import maintenance_retain, retain_days

        days = retain_days(Variable.get("newsingest_retain_days", default=os.environ.get("NEWSINGEST_RETAIN_DAYS")))
        return maintenance_retain(WAREHOUSE, days, _run_clock(), lock_wait_s=LOCK_WAIT_S)

    @task
    def compact() -> dict:
        from pipeline.maintenance import compact as merge

        return merge(WAREHOUSE, lock_wait_s=LOCK_WAIT_S, vacuum=False)  # the vacuum task follows

    @task
    def vacuum() -> dict:
        from pipeline.maintenance import vacuum as purge

        return purge(WAREHOUSE, lock_wait_s=LOCK_WAIT_S)

    @task
    def report() -> dict:
        from pipeline.orchestration import maintenance_report

        return maintenance_report(WAREHOUSE, _run_clock(), os.environ.get("NEWSINGEST_REPORT_PATH"))

    retain() >> compact() >> vacuum() >> report()


news_maintenance()
