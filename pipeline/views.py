"""DuckDB views over the warehouse. Every view reads committed runs only.

`connect(root)` opens an in-memory DuckDB with the views (never locks the database file, so any number
of readers can query while a run writes); `refresh_database_file(root)` (re)creates the same views in
`newsingest.duckdb` for users of the DuckDB CLI.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pipeline.schema import ARTICLE_SCHEMA, FETCH_LOG_SCHEMA
from pipeline.warehouse import DB_FILE

POLLING_FILE = "_polling.jsonl"  # written at each commit (run.write_polling_snapshot)
_POLLING_COLUMNS = {
    "source": "VARCHAR", "url": "VARCHAR", "interval_s": "DOUBLE", "next_poll_at": "TIMESTAMPTZ",
    "last_poll_at": "TIMESTAMPTZ", "rate_per_h": "DOUBLE", "polls": "BIGINT", "new_items": "BIGINT",
    "failures": "BIGINT", "reason": "VARCHAR",
}

_DUCK_TYPES = {
    "string": "VARCHAR",
    "large_string": "VARCHAR",
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "date32[day]": "DATE",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
    "list<item: string>": "VARCHAR[]",
    "large_binary": "BLOB",
}


def _empty_select(schema, extra: dict[str, str] | None = None) -> str:
    cols = [f"CAST(NULL AS {_DUCK_TYPES[str(f.type)]}) AS {f.name}" for f in schema]
    cols += [f"CAST(NULL AS {t}) AS {n}" for n, t in (extra or {}).items()]
    return f"SELECT {', '.join(cols)} WHERE false"


def _q(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def view_sql(root: str | Path) -> list[str]:
    root = Path(root).absolute()
    runs_glob = root / "_runs" / "*.json"
    has_runs = any((root / "_runs").glob("*.json")) if (root / "_runs").is_dir() else False
    stmts = []
    if has_runs:
        stmts.append(
            "CREATE OR REPLACE VIEW runs AS SELECT run_id, CAST(started_at AS TIMESTAMPTZ) AS started_at, "
            "CAST(committed_at AS TIMESTAMPTZ) AS committed_at, trigger, feeds, counts, files "
            f"FROM read_json({_q(runs_glob)}, format='auto', union_by_name=true, "
            "columns={run_id: 'VARCHAR', started_at: 'VARCHAR', committed_at: 'VARCHAR', trigger: 'VARCHAR', "
            "feeds: 'INTEGER', counts: 'MAP(VARCHAR, BIGINT)', files: 'VARCHAR[]', state_file: 'VARCHAR', "
            "seen_file: 'VARCHAR'})"
        )
    else:
        stmts.append(
            "CREATE OR REPLACE VIEW runs AS SELECT CAST(NULL AS VARCHAR) AS run_id, "
            "CAST(NULL AS TIMESTAMPTZ) AS started_at, CAST(NULL AS TIMESTAMPTZ) AS committed_at, "
            "CAST(NULL AS VARCHAR) AS trigger, CAST(NULL AS INTEGER) AS feeds, "
            "CAST(NULL AS MAP(VARCHAR, BIGINT)) AS counts, CAST(NULL AS VARCHAR[]) AS files WHERE false"
        )

    def dataset(name: str, partition: str, schema) -> str:
        files = list((root / name).glob("*/*.parquet")) if (root / name).is_dir() else []
        if not files:
            return _empty_select(schema, {partition: "DATE"})
        return (
            f"SELECT * FROM read_parquet({_q(root / name / '*' / '*.parquet')}, hive_partitioning=true, "
            f"hive_types={{'{partition}': DATE}}, union_by_name=true) "
            "WHERE run_id IN (SELECT run_id FROM runs)"
        )

    stmts.append(f"CREATE OR REPLACE VIEW articles AS {dataset('articles', 'published_date', ARTICLE_SCHEMA)}")
    stmts.append(f"CREATE OR REPLACE VIEW fetch_log AS {dataset('fetch_log', 'run_date', FETCH_LOG_SCHEMA)}")
    # One row per story: the copy that was published first, preferring the outlet a copy names as its
    # origin (syndicated_from), then the first seen.
    stmts.append(
        "CREATE OR REPLACE VIEW articles_unique AS SELECT a.* EXCLUDE (origin_rank) FROM ("
        "  SELECT *, CASE WHEN EXISTS (SELECT 1 FROM articles b WHERE b.cluster_id = articles.cluster_id "
        "    AND b.syndicated_from IS NOT NULL AND (lower(b.syndicated_from) = lower(articles.source) "
        "    OR lower(b.syndicated_from) = lower(coalesce(articles.site_name, ''))) ) THEN 0 ELSE 1 END AS origin_rank "
        "  FROM articles) a "
        "QUALIFY row_number() OVER (PARTITION BY coalesce(cluster_id, article_id) "
        "  ORDER BY origin_rank, published_at NULLS LAST, first_seen_at, article_id) = 1"
    )
    stmts.append(
        "CREATE OR REPLACE VIEW clusters AS SELECT coalesce(cluster_id, article_id) AS cluster_id, "
        "count(*) AS copies, count(DISTINCT source) AS sources, min(published_at) AS first_published_at, "
        "min(first_seen_at) AS first_seen_at, max(first_seen_at) AS last_seen_at, "
        "arg_min(title, first_seen_at) AS title, list(DISTINCT source ORDER BY source) AS outlets "
        "FROM articles GROUP BY ALL"
    )
    # Each feed's adaptive polling schedule, as of the last commit (pipeline.polling).
    polling_file = root / POLLING_FILE
    if polling_file.exists():
        stmts.append(
            f"CREATE OR REPLACE VIEW feed_polling AS SELECT * FROM read_json({_q(polling_file)}, format='newline_delimited', "
            f"columns={{{', '.join(f'{n}: {chr(39)}{t}{chr(39)}' for n, t in _POLLING_COLUMNS.items())}}})"
        )
    else:
        stmts.append("CREATE OR REPLACE VIEW feed_polling AS SELECT "
                     + ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in _POLLING_COLUMNS.items()) + " WHERE false")
    # Freshness per source, over articles published after we started watching the feed (the backlog a
    # first poll finds says nothing about freshness) and first seen in the last 7 days: discovery lag
    # (first_seen_at - published_at: how long the item sat in the feed before a poll saw it) and
    # feed-to-queryable latency (commit of its run - published_at).
    stmts.append(
        "CREATE OR REPLACE VIEW source_freshness AS "
        "WITH watched AS (SELECT source, min(first_seen_at) AS watched_since FROM articles GROUP BY source), "
        "lags AS (SELECT a.source, "
        "  greatest(0, date_diff('millisecond', a.published_at, a.first_seen_at) / 1000.0) AS discovery_s, "
        "  greatest(0, date_diff('millisecond', a.published_at, r.committed_at) / 1000.0) AS queryable_s "
        "  FROM articles a JOIN runs r USING (run_id) JOIN watched w USING (source) "
        "  WHERE a.published_at IS NOT NULL AND a.published_at >= w.watched_since "
        "  AND a.first_seen_at >= now() - INTERVAL 7 DAY) "
        "SELECT source, count(*) AS fresh_articles, "
        "quantile_cont(discovery_s, 0.5) AS discovery_p50_s, quantile_cont(discovery_s, 0.95) AS discovery_p95_s, "
        "quantile_cont(queryable_s, 0.5) AS queryable_p50_s, quantile_cont(queryable_s, 0.95) AS queryable_p95_s "
        "FROM lags GROUP BY source"
    )
    stmts.append(
        "CREATE OR REPLACE VIEW source_health AS "
        "WITH feeds AS (SELECT source, started_at, outcome, error, run_id FROM fetch_log WHERE kind = 'feed'), "
        "last_ok AS (SELECT source, max(started_at) AS last_success FROM feeds "
        "  WHERE outcome IN ('ok', 'not_modified') GROUP BY source), "
        "last_any AS (SELECT source, max(started_at) AS last_attempt, arg_max(outcome, started_at) AS last_outcome, "
        "  arg_max(error, started_at) AS last_error FROM feeds GROUP BY source), "
        "fails AS (SELECT f.source, count(*) AS consecutive_failures FROM feeds f LEFT JOIN last_ok o USING (source) "
        "  WHERE f.outcome NOT IN ('ok', 'not_modified') AND (o.last_success IS NULL OR f.started_at > o.last_success) "
        "  GROUP BY f.source), "
        "arts AS (SELECT source, count(*) AS articles, count(*) FILTER (WHERE extraction_status = 'ok') AS articles_ok, "
        "  count(*) FILTER (WHERE duplicate_of IS NOT NULL) AS duplicates, "
        "  count(*) FILTER (WHERE first_seen_at >= now() - INTERVAL 1 DAY) AS articles_last_day, "
        "  count(*) / greatest(1, date_diff('day', min(first_seen_at), now()) + 1) AS articles_per_day "
        "  FROM articles GROUP BY source) "
        "SELECT a.source, o.last_success, a.last_attempt, a.last_outcome, a.last_error, "
        "coalesce(f.consecutive_failures, 0) AS consecutive_failures, coalesce(t.articles, 0) AS articles, "
        "coalesce(t.articles_ok, 0) AS articles_ok, coalesce(t.duplicates, 0) AS duplicates, "
        "coalesce(t.articles_last_day, 0) AS articles_last_day, coalesce(t.articles_per_day, 0) AS articles_per_day, "
        "fr.discovery_p50_s, fr.discovery_p95_s, fr.queryable_p50_s, fr.queryable_p95_s, "
        "p.interval_s AS poll_interval_s, p.next_poll_at, p.rate_per_h AS new_items_per_h "
        "FROM last_any a LEFT JOIN last_ok o USING (source) LEFT JOIN fails f USING (source) "
        "LEFT JOIN arts t USING (source) LEFT JOIN source_freshness fr USING (source) "
        "LEFT JOIN feed_polling p USING (source) ORDER BY a.source"
    )
    return stmts


def connect(root: str | Path, *, threads: int | None = None):
    """An in-memory DuckDB connection with the warehouse views (temporary, so no file is locked)."""
    import duckdb

    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for stmt in view_sql(root):
        con.execute(stmt)
    return con


def refresh_database_file(root: str | Path) -> str | None:
    """Recreate the views in newsingest.duckdb. Returns a warning instead of failing when the file is
    held open by another process (a user's DuckDB shell): the data is committed either way."""
    import duckdb

    path = Path(root).absolute() / DB_FILE
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        return f"views in {path} not refreshed (file in use: {str(exc).splitlines()[0]})"
    try:
        for stmt in view_sql(root):
            con.execute(stmt)
    finally:
        with contextlib.suppress(Exception):
            con.close()
    return None
