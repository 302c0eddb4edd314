"""DuckDB views over the warehouse. Every view reads exactly the files that are live in one snapshot of
the commit log (see pipeline.warehouse), so a query sees each committed row once and nothing uncommitted,
even while a run or a compaction commits.

Views: `articles` (committed rows, one per article_id: a `reextract` run replaces a row, it never adds a
second one), `articles_unique` (one row per story), `clusters`, `fetch_log`, `source_health`; tables
`runs` (one row per ingest or reextract run, in commit order `seq`) and `live_files` (the data files of
the snapshot).

`connect(target)` opens an in-memory DuckDB with the views (it never locks the database file, so any
number of readers can query while a run writes); `refresh_database_file(target)` (re)creates them in
`newsingest.duckdb` for users of the DuckDB CLI (local warehouses only: the file lists the live files of
the latest commit, and is refreshed by every commit; a view is created again only when its files or the
columns it reads changed, which the file's `_newsingest_views` table keeps track of). On object storage the datasets are pyarrow datasets
registered in the connection (no DuckDB extension needed).
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from typing import Any

from pipeline.schema import ARTICLE_SCHEMA, FETCH_LOG_SCHEMA
from pipeline.warehouse import DB_FILE, PARTITION_KEYS, Snapshot, Warehouse, open_warehouse

POLLING_FILE = "_polling.jsonl"  # written at each commit (run.write_polling_snapshot)
_POLLING_COLUMNS = {
    "source": "VARCHAR", "url": "VARCHAR", "interval_s": "DOUBLE", "next_poll_at": "TIMESTAMPTZ",
    "last_poll_at": "TIMESTAMPTZ", "rate_per_h": "DOUBLE", "polls": "BIGINT", "new_items": "BIGINT",
    "failures": "BIGINT", "reason": "VARCHAR",
}

def polling_table(wh: Warehouse) -> Any:
    """Each feed's adaptive polling schedule as of the last commit (see run.write_polling_snapshot)."""
    import json

    import pyarrow as pa

    types = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BIGINT": pa.int64(),
             "TIMESTAMPTZ": pa.timestamp("us", tz="UTC")}
    schema = pa.schema([pa.field(n, types[t]) for n, t in _POLLING_COLUMNS.items()])
    raw = wh.storage.read_bytes(POLLING_FILE) or b""
    rows = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    for row in rows:
        for key in ("next_poll_at", "last_poll_at"):
            if row.get(key):
                row[key] = datetime.fromisoformat(row[key])
    return pa.Table.from_pylist([{n: r.get(n) for n in _POLLING_COLUMNS} for r in rows], schema=schema)


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

VIEW_DATASETS = {"articles": ARTICLE_SCHEMA, "fetch_log": FETCH_LOG_SCHEMA}


def _empty_select(schema, extra: dict[str, str] | None = None) -> str:
    cols = [f"CAST(NULL AS {_DUCK_TYPES[str(f.type)]}) AS {f.name}" for f in schema]
    cols += [f"CAST(NULL AS {t}) AS {n}" for n, t in (extra or {}).items()]
    return f"SELECT {', '.join(cols)} WHERE false"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def runs_table(snap: Snapshot) -> Any:
    """The `runs` table of a snapshot, as Arrow."""
    import pyarrow as pa

    def _dt(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    rows = [{
        "run_id": r["run_id"], "seq": r["seq"], "kind": r.get("kind", "ingest"),
        "started_at": _dt(r.get("started_at")), "committed_at": _dt(r.get("committed_at")),
        "trigger": r.get("trigger"), "feeds": r.get("feeds"),
        "counts": list((r.get("counts") or {}).items()), "files": list(r.get("files") or []),
    } for r in snap.runs]
    ts = pa.timestamp("us", tz="UTC")
    schema = pa.schema([("run_id", pa.string()), ("seq", pa.int64()), ("kind", pa.string()), ("started_at", ts),
                        ("committed_at", ts), ("trigger", pa.string()), ("feeds", pa.int32()),
                        ("counts", pa.map_(pa.string(), pa.int64())), ("files", pa.list_(pa.string()))])
    return pa.Table.from_pylist(rows, schema=schema)


def live_files_table(snap: Snapshot) -> Any:
    import pyarrow as pa

    schema = pa.schema([("path", pa.string()), ("dataset", pa.string()), ("partition", pa.string()),
                        ("rows", pa.int64()), ("bytes", pa.int64()), ("min_seq", pa.int64()),
                        ("max_seq", pa.int64())])
    return pa.Table.from_pylist([{k: f.get(k) for k in schema.names} for f in
                                 sorted(snap.files.values(), key=lambda f: f["path"])], schema=schema)


def dataset_source(wh: Warehouse, snap: Snapshot, name: str) -> tuple[str, Any | None]:
    """(SQL for the rows of a dataset's live files, a pyarrow dataset to register as `_ds_<name>` or None)."""
    schema = VIEW_DATASETS[name]
    key = PARTITION_KEYS[name]
    files = snap.live(name)
    if not files:
        return _empty_select(schema, {key: "DATE"}), None
    if wh.is_local:
        paths = ", ".join(_lit(wh.uri(f["path"])) for f in files)
        # Files of one schema are read by position (fast); mixed versions (a new nullable column) by name.
        union = "true" if len({f.get("schema") for f in files}) > 1 or any("schema" not in f for f in files) \
            else "false"
        return (f"SELECT * FROM read_parquet([{paths}], hive_partitioning=true, hive_types={{'{key}': DATE}}, "
                f"union_by_name={union})"), None
    import pyarrow as pa
    import pyarrow.dataset as ds

    fs, base = wh.storage.arrow()
    part = pa.schema([pa.field(key, pa.date32())])
    dataset = ds.dataset([wh.storage.arrow_path(f["path"]) for f in files], filesystem=fs, format="parquet",
                         schema=pa.schema(list(schema) + list(part)),
                         partitioning=ds.partitioning(part, flavor="hive"), partition_base_dir=f"{base}/{name}")
    return f"SELECT * FROM _ds_{name}", dataset


def _install_tables(con: Any, wh: Warehouse, snap: Snapshot) -> None:
    """The small tables of a snapshot (runs, live files, polling schedule), rebuilt whole: they are cheap."""
    for name, table in (("runs", runs_table(snap)), ("live_files", live_files_table(snap)),
                        ("feed_polling", polling_table(wh))):
        con.register(f"_{name}_src", table)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _{name}_src")
        con.unregister(f"_{name}_src")


def install_views(con: Any, target: Warehouse | str | os.PathLike[str], snap: Snapshot | None = None) -> Snapshot:
    """Create the tables and views of one snapshot in a DuckDB connection; returns the snapshot."""
    wh = open_warehouse(target)
    snap = snap or wh.snapshot()
    _install_tables(con, wh, snap)
    for name in VIEW_DATASETS:
        sql, dataset = dataset_source(wh, snap, name)
        if dataset is not None:
            con.register(f"_ds_{name}", dataset)
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    for stmt in derived_view_sql():
        con.execute(stmt)
    return snap


def derived_view_sql() -> list[str]:
    """Views defined over `articles` and `fetch_log`."""
    stmts = []
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
        # A deferred poll (the host asked us to wait) is not a failure of the feed.
        "fails AS (SELECT f.source, count(*) AS consecutive_failures FROM feeds f LEFT JOIN last_ok o USING (source) "
        "  WHERE f.outcome NOT IN ('ok', 'not_modified', 'deferred') "
        "  AND (o.last_success IS NULL OR f.started_at > o.last_success) GROUP BY f.source), "
        "arts AS (SELECT source, count(*) AS articles, count(*) FILTER (WHERE extraction_status = 'ok') AS articles_ok, "
        "  count(*) FILTER (WHERE duplicate_of IS NOT NULL) AS duplicates, "
        "  count(*) FILTER (WHERE first_seen_at >= now() - INTERVAL 1 DAY) AS articles_last_day, "
        "  count(*) / greatest(1, date_diff('day', min(first_seen_at), now()) + 1) AS articles_per_day "
        "  FROM articles GROUP BY source) "
        "SELECT a.source, o.last_success, a.last_attempt, a.last_outcome, a.last_error, "
        "coalesce(f.consecutive_failures, 0) AS consecutive_failures, coalesce(t.articles, 0) AS articles, "
        "coalesce(t.articles_ok, 0) AS articles_ok, coalesce(t.duplicates, 0) AS duplicates, "
        "coalesce(t.articles_last_day, 0) AS articles_last_day, coalesce(t.articles_per_day, 0) AS articles_per_day, "
        # every new feed item becomes one row (failed pages included), so rows per day are items per day
        "coalesce(t.articles_per_day, 0) AS items_per_day, "
        "fr.discovery_p50_s, fr.discovery_p95_s, fr.queryable_p50_s, fr.queryable_p95_s, "
        "p.interval_s AS poll_interval_s, p.next_poll_at, p.rate_per_h AS new_items_per_h "
        "FROM last_any a LEFT JOIN last_ok o USING (source) LEFT JOIN fails f USING (source) "
        "LEFT JOIN arts t USING (source) LEFT JOIN source_freshness fr USING (source) "
        "LEFT JOIN feed_polling p USING (source) ORDER BY a.source"
    )
    return stmts


def connect(target: Warehouse | str | os.PathLike[str], *, threads: int | None = None,
            snapshot: Snapshot | None = None):
    """An in-memory DuckDB connection with the warehouse views (temporary, so no file is locked)."""
    import duckdb

    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    install_views(con, target, snapshot)
    return con


_VIEWS_META = "_newsingest_views"  # in newsingest.duckdb: how each view was last created (see below)
_BASE_COLUMNS = "(base columns)"  # the meta row holding the columns the derived views were bound to


def refresh_database_file(target: Warehouse | str | os.PathLike[str], snap: Snapshot | None = None) -> str | None:
    """Bring the views in newsingest.duckdb up to the latest commit (or `snap`). Returns a warning
    instead of failing when the file is held open by another process (a user's DuckDB shell): the data
    is committed either way."""
    import duckdb

    wh = open_warehouse(target)
    if not wh.is_local:
        return None  # object storage: query through `newsingest query` or `connect()`
    path = wh.root / DB_FILE
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        return f"views in {path} not refreshed (file in use: {str(exc).splitlines()[0]})"
    try:
        _refresh_views(con, wh, snap or wh.snapshot())
    finally:
        with contextlib.suppress(Exception):
            con.close()
    return None


def _refresh_views(con: Any, wh: Warehouse, snap: Snapshot) -> None:
    """`install_views` for the persistent file, recreating only what changed, in one transaction.

    Creating a view binds its query, and a view over `articles` binds `read_parquet` of every live
    articles file (about 0.25 s per reference on a 2,000-file warehouse; the derived views hold five such
    references). A run that adds no articles file leaves the `articles` view as it was, and the derived
    views only need recreating when their own SQL or the columns of what they read changed (DuckDB binds
    a view's query again at every use). The meta table records, per view, the SQL we created it with and
    DuckDB's own text of it, so a view that someone dropped or replaced in the file is recreated too."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {_VIEWS_META} (name VARCHAR PRIMARY KEY, source VARCHAR, "
                    "duck VARCHAR)")
        recorded = {n: (s, d) for n, s, d in con.execute(f"SELECT name, source, duck FROM {_VIEWS_META}").fetchall()}
        current = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal "
                                   "AND schema_name = current_schema()").fetchall())
        created: list[str] = []

        def ensure_view(name: str, source: str, stmt: str, force: bool = False) -> None:
            prev = recorded.get(name)
            if force or prev is None or prev[0] != source or name not in current or current[name] != prev[1]:
                con.execute(stmt)
                created.append(name)
                recorded[name] = (source, "")

        _install_tables(con, wh, snap)
        for name in VIEW_DATASETS:
            sql, dataset = dataset_source(wh, snap, name)
            assert dataset is None  # a local warehouse: the view reads the files by path
            ensure_view(name, sql, f"CREATE OR REPLACE VIEW {name} AS {sql}")
        # What the derived views read: a change of its columns (a new schema version) recreates them.
        bases = ("runs", "live_files", "feed_polling", *VIEW_DATASETS)
        columns = json.dumps(con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE schema_name = current_schema() "
            f"AND table_name IN ({', '.join(_lit(b) for b in bases)}) ORDER BY table_name, column_index").fetchall())
        base_changed = recorded.get(_BASE_COLUMNS, (None, None))[0] != columns
        for stmt in derived_view_sql():
            name = stmt.split(" AS ", 1)[0].split()[-1]
            ensure_view(name, stmt, stmt, force=base_changed)
        if created or base_changed:
            duck = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal "
                                    "AND schema_name = current_schema()").fetchall())
            rows = [(n, recorded[n][0], duck.get(n, "")) for n in created]
            rows.append((_BASE_COLUMNS, columns, ""))
            con.executemany(f"INSERT OR REPLACE INTO {_VIEWS_META} VALUES (?, ?, ?)", rows)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
