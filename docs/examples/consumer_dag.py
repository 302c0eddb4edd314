"""Example for the consumer guide: a DAG of *another* Airflow project that runs whenever newsingest commits.

It schedules on the `newsingest_articles` Asset that the ingest DAG's commit task emits, and copies the
articles of every run committed since its own watermark to Parquet with `pipeline.maintenance.export`
(install newsingest in the consumer's environment: `pip install newsingest`). The watermark is a run id:
it survives compaction, and a retried task writes the same rows again rather than skipping any.

Environment: NEWSINGEST_WAREHOUSE (the warehouse both projects see, same path or s3:// URL), CONSUMER_OUT
(where this project keeps its copies and its watermark).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Asset, dag, task

WAREHOUSE = os.path.abspath(os.environ.get("NEWSINGEST_WAREHOUSE", "/data/newsingest"))
# Name and URI as the producer declares them (dags/news_ingest.py): the Asset is identified by both.
ARTICLES = Asset(uri=f"file://{WAREHOUSE}/articles", name="newsingest_articles")
OUT = os.environ.get("CONSUMER_OUT", "/data/consumer")


def copy_since(warehouse: str, out_dir: str, since: str | None) -> dict:
    """Write the articles committed after `since` (a run id; None for everything) to one Parquet file;
    return {"rows", "watermark", "file", ...}."""
    from pipeline.maintenance import export

    return export(warehouse, out_dir, since=since, fmt="parquet")


@dag(schedule=[ARTICLES], start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     tags=["newsingest-consumer"])
def newsingest_consumer():
    @task
    def copy_new_articles() -> dict:
        import json

        mark = os.path.join(OUT, "_watermark.json")
        since = json.load(open(mark))["watermark"] if os.path.exists(mark) else None
        result = copy_since(WAREHOUSE, OUT, since)
        os.makedirs(OUT, exist_ok=True)
        with open(mark + ".tmp", "w") as f:  # the watermark moves only after the copy is written
            json.dump({"watermark": result["watermark"]}, f)
        os.replace(mark + ".tmp", mark)
        return result

    copy_new_articles()


newsingest_consumer()
