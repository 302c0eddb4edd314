"""Example consumer (Airflow 3): a DAG that runs whenever newsingest commits, and copies what is new.

Copy this file into the project that uses the articles; docs/consumer-guide.md explains the pattern.

1. Schedule on the `newsingest_articles` Asset. The ingest DAG's commit task emits it at every committed
   run (dags/news_ingest.py); an Asset is identified by name and URI, so both must match the producer's:
   `ASSET_NAME` and `articles_asset_uri(warehouse)` from `pipeline.orchestration` build exactly those.
2. Read only what is new with a watermark: `pipeline.maintenance.export(warehouse, out, since=WATERMARK)`
   writes the article rows of the runs committed after the watermark (committed runs only, each row
   once) and returns the new watermark, a run id. Compaction keeps every row's run id, so the watermark
   survives it.
3. Move the watermark only after the output is safely written. A crash in between repeats the copy
   (the same rows again, deduplicate by `article_id`) rather than skipping rows. The watermark lives in a
   file beside the copies (`_watermark.json` in CONSUMER_OUT): the copies and their watermark stay
   together, and nothing depends on the Airflow database. An Airflow Variable works too (see below).

Needs newsingest installed where the consumer's tasks run (`pip install newsingest`) and read access to
the warehouse. This example is paused when it first appears; unpause it to try it.

Environment: NEWSINGEST_WAREHOUSE (the warehouse the ingest DAG writes: same path or s3:// URL),
CONSUMER_OUT (where this consumer keeps its copies and its watermark; default ./consumer_out).
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.sdk import Asset, dag, task

# Light imports only (no pyarrow/duckdb): the dag-processor parses this file often.
from pipeline.orchestration import ASSET_NAME, articles_asset_uri

WAREHOUSE = os.environ.get("NEWSINGEST_WAREHOUSE") or "warehouse"
OUT = os.path.abspath(os.environ.get("CONSUMER_OUT") or "consumer_out")
ARTICLES = Asset(uri=articles_asset_uri(WAREHOUSE), name=ASSET_NAME)  # the producer's name and URI


def read_watermark(out_dir: str) -> str | None:
    """The last run id this consumer copied; None before the first copy (then everything is new)."""
    path = os.path.join(out_dir, "_watermark.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)["watermark"] or None


def write_watermark(out_dir: str, watermark: str) -> None:
    """Replace the watermark atomically (write a temporary file, then rename): never half a file."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "_watermark.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"watermark": watermark}, f)
    os.replace(path + ".tmp", path)
    # With an Airflow Variable instead: Variable.set("my_consumer_watermark", watermark), and
    # Variable.get("my_consumer_watermark", default=None) in read_watermark.


def copy_since(warehouse: str, out_dir: str, since: str | None) -> dict:
    """Write the articles committed after `since` (a run id; None for everything) to one Parquet file in
    `out_dir`; return {"rows", "runs", "watermark", "file" (None when nothing was new), "since"}."""
    from pipeline.maintenance import export  # heavy (pyarrow): imported when the task runs, not at parse time

    return export(warehouse, out_dir, since=since, fmt="parquet")


@dag(
    dag_id="news_consumer_example",
    schedule=[ARTICLES],  # runs after each commit of the ingest DAG
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # two runs at once would both copy from the same watermark
    is_paused_upon_creation=True,  # an example: nothing runs until someone unpauses it
    tags=["newsingest", "example"],
    doc_md=__doc__,
)
def news_consumer_example():
    @task
    def copy_new_articles() -> dict:
        # Several commits may be collapsed into one consumer run; the watermark picks up all of them.
        since = read_watermark(OUT)
        result = copy_since(WAREHOUSE, OUT, since)
        write_watermark(OUT, result["watermark"])  # only after the copy is written
        return result  # small counts and a path: fine for XCom

    copy_new_articles()


news_consumer_example()
