"""Example for the consumer guide: a DAG of *another* Airflow project that runs whenever newsingest commits.

It schedules on the `newsingest_articles` Asset that the ingest DAG's commit task emits, and copies the
articles of every run committed since its own watermark to Parquet. It needs only DuckDB (not newsingest):
it reads the Parquet files and the run manifest directly, keeping committed runs only.

Environment: NEWSINGEST_WAREHOUSE (the warehouse both projects see, same path), CONSUMER_OUT (where this
project keeps its copies and its watermark).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Asset, dag, task

WAREHOUSE = os.path.abspath(os.environ.get("NEWSINGEST_WAREHOUSE", "/data/newsingest"))
# Name and URI as the producer declares them (dags/news_ingest.py): the Asset is identified by both.
ARTICLES = Asset(uri=f"file://{WAREHOUSE}/articles", name="newsingest_articles")
OUT = os.environ.get("CONSUMER_OUT", "/data/consumer")
EPOCH = "1970-01-01T00:00:00+00:00"


def new_articles_sql(warehouse: str) -> str:
    """Articles of runs committed after `?` (a watermark), with each run's commit time."""
    return f"""
        WITH runs AS (
            SELECT run_id, CAST(committed_at AS TIMESTAMPTZ) AS committed_at
            FROM read_json('{warehouse}/_runs/*.json', columns = {{run_id: 'VARCHAR', committed_at: 'VARCHAR'}}))
        SELECT a.*, r.committed_at
        FROM read_parquet('{warehouse}/articles/*/*.parquet', hive_partitioning = true, union_by_name = true) a
        JOIN runs r USING (run_id)
        WHERE r.committed_at > CAST(? AS TIMESTAMPTZ)
        ORDER BY r.committed_at, a.article_id"""


def copy_since(warehouse: str, out_dir: str, since: str) -> dict:
    """Write the articles committed after `since` to one Parquet file; return the new watermark and counts."""
    import duckdb

    con = duckdb.connect()
    table = con.sql(new_articles_sql(warehouse), params=[since]).to_arrow_table()
    if table.num_rows == 0:
        return {"rows": 0, "watermark": since, "file": None}
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    watermark = pc.max(table["committed_at"]).as_py().isoformat()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"articles-until-{watermark.replace(':', '')}.parquet")
    pq.write_table(table, path)
    return {"rows": table.num_rows, "watermark": watermark, "file": path}


@dag(schedule=[ARTICLES], start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     tags=["newsingest-consumer"])
def newsingest_consumer():
    @task
    def copy_new_articles() -> dict:
        import json

        mark = os.path.join(OUT, "_watermark.json")
        since = json.load(open(mark))["watermark"] if os.path.exists(mark) else EPOCH
        result = copy_since(WAREHOUSE, OUT, since)
        os.makedirs(OUT, exist_ok=True)
        with open(mark + ".tmp", "w") as f:  # the watermark moves only after the copy is written
            json.dump({"watermark": result["watermark"]}, f)
        os.replace(mark + ".tmp", mark)
        return result

    copy_new_articles()


newsingest_consumer()
