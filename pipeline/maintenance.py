"""Warehouse maintenance and the consumer interface: compact, retain, vacuum, export, reextract.

Each is a plain function taking the warehouse (a path, an ``s3://`` URL or a `Warehouse`) and returning a
small JSON-able dict, so a DAG task can call it and pass the result through XCom; `register(subparsers)`
adds the matching `newsingest` commands.

- `compact(warehouse, target_mb=128)`: per dataset and partition, merges the live files smaller than half
  the target into files of about the target size, and commits one log entry that adds the merged files and
  retires the small ones (readers see the partition before or after, never twice, never missing). Rows keep
  their `run_id`, so export watermarks are unaffected. Then runs `vacuum`.
- `retain(warehouse, days, dataset="raw_pages")`: retires raw-page (or fetch-log) partitions older than
  `days`; the files go at the next vacuum after the grace period. Articles are never subject to retention.
- `vacuum(warehouse, grace_s=3600)`: deletes retired files older than the grace period, files of crashed
  writers, stale staging, and log entries already folded into a checkpoint.
- `export(warehouse, out_dir, since=WATERMARK, fmt="parquet"|"jsonl")`: writes the article rows committed
  after the watermark (a run id, or an ISO time: rows of runs committed after it) and returns the new
  watermark (the last committed run id). Consecutive exports, each from the previous watermark, partition
  the rows committed so far: none twice, none missing. Rows that a `reextract` replaced come again, under
  the reextract's run id: consumers upsert by `article_id`.
- `reextract(warehouse, since)`: re-runs extraction and cleaning over the kept raw pages fetched on or after
  `since` (no fetching), and commits a run whose rows replace the earlier version of each article (the
  files holding them are rewritten without them, in the same commit). Cluster ids stay as they were.

All writers take the warehouse lock (`lock_wait_s` to wait for it); readers (export) never do.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import secrets
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.warehouse import DEFAULT_GRACE_S, Warehouse, WarehouseError

COMPACT_DATASETS = ("articles", "fetch_log", "raw_pages", "dedup_index")
RETAIN_DATASETS = ("raw_pages", "fetch_log")
EXPORT_FORMATS = ("parquet", "jsonl")
ROW_GROUP = 32 * 1024  # rows per row group of a compacted file


def _open(warehouse: Warehouse | str | os.PathLike[str]) -> Warehouse:
    return warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse, create=False)


def _declared_schema(dataset: str) -> Any:
    from pipeline.schema import ARTICLE_SCHEMA, FETCH_LOG_SCHEMA, RAW_PAGE_SCHEMA

    return {"articles": ARTICLE_SCHEMA, "fetch_log": FETCH_LOG_SCHEMA, "raw_pages": RAW_PAGE_SCHEMA}.get(dataset)


def conform(table: Any, schema: Any) -> Any:
    """`table` with exactly `schema`'s columns: a column an older minor version lacked becomes nulls."""
    import pyarrow as pa

    if table.schema.equals(schema, check_metadata=False):
        return table.replace_schema_metadata(schema.metadata)
    extra = set(table.column_names) - set(schema.names)
    if extra:
        raise WarehouseError(f"a file has columns the declared schema lacks ({sorted(extra)}): a major schema "
                             "change needs its migration before compaction")
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table[f.name].cast(f.type))
        elif f.nullable:
            cols.append(pa.nulls(table.num_rows, f.type))
        else:
            raise WarehouseError(f"a file lacks the required column {f.name!r}")
    return pa.Table.from_arrays(cols, schema=schema)


# ---------------------------------------------------------------------------------------------------- compact


def plan_compaction(files: list[dict[str, Any]], target_bytes: int, small_bytes: int,
                    min_files: int = 2) -> list[list[dict[str, Any]]]:
    """Groups of one partition's small files to merge, each about `target_bytes` (pure: tested alone).
    A partition with fewer than `min_files` small files is left alone."""
    small = sorted((f for f in files if (f.get("bytes") or 0) < small_bytes),
                   key=lambda f: (f.get("min_seq") or 0, f["path"]))
    if len(small) < min_files:
        return []
    bins: list[list[dict[str, Any]]] = [[]]
    size = 0
    for f in small:
        if bins[-1] and size + (f.get("bytes") or 0) > target_bytes:
            bins.append([])
            size = 0
        bins[-1].append(f)
        size += f.get("bytes") or 0
    if len(bins) > 1 and len(bins[-1]) == 1:  # a lone leftover joins the previous group
        bins[-2].extend(bins.pop())
    return [b for b in bins if len(b) >= min(2, min_files)]  # min_files=1 rewrites lone files too


def compact(warehouse: Warehouse | str | os.PathLike[str], *, target_mb: float = 128.0,
            small_mb: float | None = None, min_files: int = 2, datasets: tuple[str, ...] = COMPACT_DATASETS,
            grace_s: float = DEFAULT_GRACE_S, lock_wait_s: float = 0.0, vacuum: bool = True) -> dict[str, Any]:
    """Merge small files per partition into files of about `target_mb`, in one commit. See the module doc."""
    import pyarrow as pa

    from pipeline.views import refresh_database_file
    from pipeline.warehouse import crash_point

    wh = _open(warehouse)
    target = int(target_mb * 1024 * 1024)
    small = int((small_mb if small_mb is not None else target_mb / 2) * 1024 * 1024)
    unknown = set(datasets) - set(COMPACT_DATASETS)
    if unknown:
        raise WarehouseError(f"cannot compact {sorted(unknown)}: datasets are {', '.join(COMPACT_DATASETS)}")
    t0 = time.monotonic()
    with wh.lock("compact", wait_s=lock_wait_s):
        base = wh.snapshot()
        txn = f"compact-{base.seq + 1:012d}-{secrets.token_hex(3)}"
        wh.recover(current_txn=txn)
        base = wh.snapshot()
        before = _file_stats(base, datasets)
        adds: list[dict[str, Any]] = []
        removes: list[str] = []
        partitions = 0
        with wh.transaction(txn, "compact"):
            for dataset in datasets:
                by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for f in base.live(dataset):
                    by_partition[f.get("partition", "")].append(f)
                for partition, files in sorted(by_partition.items()):
                    groups = plan_compaction(files, target, small, min_files)
                    if groups:
                        partitions += 1
                    for n, group in enumerate(groups):
                        rel = "/".join(p for p in (dataset, partition, f"part-c{txn[8:]}-{n}.parquet") if p)
                        schema = _declared_schema(dataset)
                        if schema is None:  # dedup_index: the writer's own schema, unified
                            schema = pa.unify_schemas([wh.storage.read_schema(f["path"]) for f in group])
                        rows_in = sum(f.get("rows") or 0 for f in group)
                        rows_out = 0
                        with wh.storage.parquet_writer(rel, schema) as writer:
                            # Row groups of ROW_GROUP rows, not one per small input file: scans of the
                            # merged file parallelise and prune by statistics.
                            pending: list[Any] = []
                            for f in group:
                                table = conform(wh.read_table(f["path"]), schema)
                                pending.append(table)
                                rows_out += table.num_rows
                                if sum(t.num_rows for t in pending) >= ROW_GROUP:
                                    _write_groups(writer, pending, final=False)
                            _write_groups(writer, pending, final=True)
                        if rows_in and rows_out != rows_in:
                            wh.storage.delete(rel)
                            raise WarehouseError(f"compaction of {dataset}/{partition} read {rows_out} rows where "
                                                 f"the log lists {rows_in}; nothing was committed")
                        crash_point("compact.write")
                        entry = wh._describe(rel, rows=rows_out, schema=schema)
                        entry["min_seq"] = min(f.get("min_seq") or 0 for f in group)
                        entry["max_seq"] = max(f.get("max_seq") or 0 for f in group)
                        adds.append(entry)
                        removes.extend(f["path"] for f in group)
            seq = None
            if adds:
                crash_point("compact.before_commit")
                seq = wh.commit_entry(base, "compact", add=adds, remove=removes,
                                      info={"target_mb": target_mb, "partitions": partitions})
                crash_point("compact.after_commit")
        after_snap = wh.snapshot()
        if adds:
            refresh_database_file(wh)
        vac = wh.vacuum(grace_s=grace_s) if vacuum else None
    return {
        "seq": seq, "partitions": partitions, "files_merged": len(removes), "files_written": len(adds),
        "before": before, "after": _file_stats(after_snap, datasets), "vacuum": vac,
        "elapsed_s": round(time.monotonic() - t0, 3),
    }


def _write_groups(writer: Any, pending: list[Any], *, final: bool) -> None:
    """Write whole row groups of ROW_GROUP rows from `pending` (all of it when `final`); keep the rest."""
    import pyarrow as pa

    if not pending:
        return
    table = pa.concat_tables(pending).combine_chunks()
    pending.clear()
    whole = table.num_rows if final else table.num_rows - table.num_rows % ROW_GROUP
    if whole:
        writer.write_table(table.slice(0, whole), row_group_size=ROW_GROUP)
    if whole < table.num_rows:
        pending.append(table.slice(whole))


def _file_stats(snap: Any, datasets: tuple[str, ...]) -> dict[str, dict[str, int]]:
    out = {}
    for d in datasets:
        files = snap.live(d)
        out[d] = {"files": len(files), "bytes": sum(f.get("bytes") or 0 for f in files),
                  "rows": sum(f.get("rows") or 0 for f in files)}
    return out


# ---------------------------------------------------------------------------------------------------- retain / vacuum


def _partition_date(partition: str) -> date | None:
    _, _, value = partition.partition("=")
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def retain(warehouse: Warehouse | str | os.PathLike[str], days: int, *, dataset: str = "raw_pages",
           now: datetime | None = None, grace_s: float = DEFAULT_GRACE_S, lock_wait_s: float = 0.0,
           vacuum: bool = True) -> dict[str, Any]:
    """Retire the partitions of `dataset` older than `days` days (by partition date, UTC)."""
    if dataset not in RETAIN_DATASETS:
        raise WarehouseError(f"retention applies to {', '.join(RETAIN_DATASETS)}, not {dataset!r} "
                             "(articles are the product and are kept)")
    if days < 0:
        raise WarehouseError("--days must be 0 or more")
    wh = _open(warehouse)
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=days)).date()
    with wh.lock(f"retain {dataset}", wait_s=lock_wait_s):
        base = wh.snapshot()
        old = [f for f in base.live(dataset) if (d := _partition_date(f.get("partition", ""))) and d < cutoff]
        seq = None
        if old:
            seq = wh.commit_entry(base, "retain", remove=[f["path"] for f in old],
                                  info={"dataset": dataset, "before": cutoff.isoformat()})
        vac = wh.vacuum(grace_s=grace_s, now=now) if vacuum else None
    return {"seq": seq, "dataset": dataset, "before": cutoff.isoformat(), "files_retired": len(old),
            "rows_retired": sum(f.get("rows") or 0 for f in old),
            "bytes_retired": sum(f.get("bytes") or 0 for f in old), "vacuum": vac}


def vacuum(warehouse: Warehouse | str | os.PathLike[str], *, grace_s: float = DEFAULT_GRACE_S,
           lock_wait_s: float = 0.0, now: datetime | None = None) -> dict[str, Any]:
    wh = _open(warehouse)
    with wh.lock("vacuum", wait_s=lock_wait_s):
        return wh.vacuum(grace_s=grace_s, now=now)


# ---------------------------------------------------------------------------------------------------- export


def resolve_watermark(snap: Any, since: str | None) -> int:
    """The log sequence number a watermark stands for: rows of runs with a larger one are 'after' it."""
    if not since:
        return 0
    run = snap.run(since)
    if run is not None:
        return int(run["seq"])
    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise WarehouseError(f"watermark {since!r} is neither a committed run id nor an ISO time "
                             "(e.g. 2026-11-20T09:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seq = 0
    for r in snap.runs:
        if datetime.fromisoformat(r["committed_at"]) <= when:
            seq = int(r["seq"])
    return seq


def export(warehouse: Warehouse | str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
           since: str | None = None, fmt: str = "parquet") -> dict[str, Any]:
    """Write the article rows committed after `since`; return the new watermark. See the module doc."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.schema import ARTICLE_PARTITION, ARTICLE_SCHEMA, dictionary_columns

    if fmt not in EXPORT_FORMATS:
        raise WarehouseError(f"unknown export format {fmt!r} (use {' or '.join(EXPORT_FORMATS)})")
    wh = _open(warehouse)
    snap = wh.snapshot()  # a reader: no lock, one consistent snapshot
    since_seq = resolve_watermark(snap, since)
    new_runs = [r for r in snap.runs if r["seq"] > since_seq]
    watermark = snap.runs[-1]["run_id"] if snap.runs else (since or "")
    result = {"since": since or "", "watermark": watermark, "runs": len(new_runs), "rows": 0, "file": None}
    if not new_runs:
        return result
    run_ids = pa.array(sorted(r["run_id"] for r in new_runs), type=pa.string())
    out_schema = pa.schema(list(ARTICLE_SCHEMA) + [ARTICLE_PARTITION], metadata=ARTICLE_SCHEMA.metadata)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"articles-{since_seq + 1:012d}-{new_runs[-1]['seq']:012d}.{fmt}"
    tmp = out / f".{name}.tmp-{os.getpid()}"
    files = [f for f in snap.live("articles") if (f.get("max_seq") or 0) > since_seq]
    rows = 0
    writer = None
    try:
        with open(tmp, "wb") as sink:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                writer = pq.ParquetWriter(sink, out_schema, compression="zstd",
                                          use_dictionary=dictionary_columns(out_schema))
            wanted = pc.field("run_id").isin(run_ids)  # compacted files keep commit order: row groups prune
            for f in files:
                table = conform(wh.read_table(f["path"], filters=wanted), ARTICLE_SCHEMA)
                if not table.num_rows:
                    continue
                day = date.fromisoformat(f["partition"].partition("=")[2])
                table = table.append_column(ARTICLE_PARTITION, pa.array([day] * table.num_rows, pa.date32()))
                rows += table.num_rows
                if writer is not None:
                    writer.write_table(table.cast(out_schema))
                else:
                    for row in table.to_pylist():
                        sink.write(json.dumps(row, ensure_ascii=False, default=_iso).encode("utf-8") + b"\n")
            if writer is not None:
                writer.close()
                writer = None
            sink.flush()
            os.fsync(sink.fileno())
        if rows:
            os.replace(tmp, out / name)
            result["file"] = str(out / name)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    result["rows"] = rows
    return result


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------------------------------------------- reextract


def _since_datetime(since: str) -> datetime:
    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise WarehouseError(f"--since {since!r} is not an ISO date or time (e.g. 2026-11-20)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def reextract(warehouse: Warehouse | str | os.PathLike[str], since: str, *, config: Any = None,
              run_id: str | None = None, lock_wait_s: float = 0.0, now: datetime | None = None) -> dict[str, Any]:
    """Rebuild text and metadata from the kept raw pages fetched since `since`. See the module doc."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.dedup import content_hash
    from pipeline.fetch.decode import decode_body
    from pipeline.records import FeedItem, FetchResult
    from pipeline.run import (
        PageOutcome,
        PageTask,
        RunSummary,
        _articles_table,
        _extract_worker,
        build_articles,
        new_run_id,
        partition_date,
    )
    from pipeline.settings import Config
    from pipeline.views import refresh_database_file
    from pipeline.warehouse import crash_point

    config = config or Config()
    since_dt = _since_datetime(since)
    wh = _open(warehouse)
    started = datetime.now(UTC)
    now = now or started
    run_id = run_id or f"rx{new_run_id(started)}"
    t0 = time.monotonic()
    with wh.lock(f"reextract {run_id}", wait_s=lock_wait_s):
        base = wh.snapshot()
        if base.run(run_id) is not None:
            return {"run_id": run_id, "already_committed": True}
        wh.recover(current_txn=run_id)
        base = wh.snapshot()
        # The newest kept page of each article fetched since `since`.
        pages: dict[str, dict[str, Any]] = {}
        for f in base.live("raw_pages"):
            day = _partition_date(f.get("partition", ""))
            if day is not None and day < since_dt.date():
                continue
            for row in wh.read_table(f["path"]).to_pylist():
                if row["fetched_at"] < since_dt or row["body"] is None:
                    continue
                prev = pages.get(row["article_id"])
                if prev is None or row["fetched_at"] > prev["fetched_at"]:
                    pages[row["article_id"]] = row
        # The article files holding those articles now.
        wanted = pa.array(sorted(pages), type=pa.string())
        affected: list[dict[str, Any]] = []
        old_rows: dict[str, dict[str, Any]] = {}
        if pages:
            for f in base.live("articles"):
                ids = wh.read_table(f["path"], columns=["article_id"])["article_id"]
                if pc.any(pc.is_in(ids, value_set=wanted)).as_py():
                    affected.append(f)
                    table = wh.read_table(f["path"])
                    for row in table.filter(pc.is_in(table["article_id"], value_set=wanted)).to_pylist():
                        old_rows[row["article_id"]] = row
        outcomes = []
        for aid, page in sorted(pages.items()):
            old = old_rows.get(aid)
            if old is None:
                continue  # kept page of an article never stored (cannot happen unless files were lost)
            item = FeedItem(source=old["source"], feed_url=old["feed_url"] or "", url=old["url"],
                            guid=old["feed_guid"], title=old["title"], summary=old["summary"],
                            published_at=old["published_at"] if old["published_source"] == "feed" else None,
                            authors=list(old["authors"] or []), tags=list(old["tags"] or []))
            task = PageTask(aid, item, first_seen_at=old["first_seen_at"])
            text = decode_body(page["body"], page["content_type"]).text
            url = page["final_url"] or page["url"]
            extracted = _extract_worker(text, url, config.extract.min_words, item.published_at)
            fetch = FetchResult(url=page["url"], kind="page", outcome="ok", final_url=page["final_url"],
                                http_status=page["http_status"], content_type=page["content_type"],
                                charset=page["charset"])
            outcomes.append(PageOutcome(task, fetch, extracted, page["fetched_at"]))
        summary = RunSummary(run_id)
        state = copy.deepcopy(wh.load_state(base))  # site templates as learned; not committed back
        rows = build_articles(config, outcomes, [], state, run_id, now, summary)
        changed = 0
        for row in rows:
            old = old_rows[row.article_id]
            # Cluster membership is a fact about the story, not about this extraction: it stays.
            row.cluster_id, row.duplicate_of = old["cluster_id"], old["duplicate_of"]
            row.dup_method, row.similarity = old["dup_method"], old["similarity"]
            row.content_hash = content_hash(row.text) if row.text else None
            changed += (row.text != old["text"]) or (row.title != old["title"])
        counts = {"pages": len(pages), "articles_written": len(rows), "changed": int(changed),
                  "articles_ok": summary.articles_ok, "not_article": summary.not_article}
        if not rows:
            return {"run_id": run_id, "seq": None, **counts, "files_rewritten": 0,
                    "elapsed_s": round(time.monotonic() - t0, 3)}
        replaced = pa.array(sorted(r.article_id for r in rows), type=pa.string())
        files: list[dict[str, Any]] = []
        new_files: list[str] = []
        removes: list[str] = []
        with wh.transaction(run_id, f"reextract {run_id}"):
            # The files that held the old versions are rewritten without them (same rows otherwise, same
            # commit range), and retired in the same commit that adds the new versions.
            for n, f in enumerate(affected):
                table = wh.read_table(f["path"])
                keep = table.filter(pc.invert(pc.is_in(table["article_id"], value_set=replaced)))
                removes.append(f["path"])
                if keep.num_rows:
                    entry = wh.write_table(f"articles/{f['partition']}/part-{run_id}-k{n}.parquet", keep)
                    entry["min_seq"], entry["max_seq"] = f.get("min_seq"), f.get("max_seq")
                    files.append(entry)
            by_date: dict[str, list[Any]] = defaultdict(list)
            for row in rows:
                by_date[partition_date(row)].append(row)
            for day, day_rows in sorted(by_date.items()):
                entry = wh.write_table(f"articles/published_date={day}/part-{run_id}-0.parquet",
                                       _articles_table(day_rows))
                files.append(entry)
                new_files.append(entry["path"])
            crash_point("reextract.before_commit")
            seq = wh.commit_entry(base, "reextract", add=files, remove=removes, run={
                "run_id": run_id, "started_at": started.isoformat(), "trigger": "reextract", "feeds": 0,
                "counts": counts, "files": new_files, "state_file": None, "seen_file": None,
            })
        refresh_database_file(wh)
    return {"run_id": run_id, "seq": seq, **counts, "files_rewritten": len(removes),
            "elapsed_s": round(time.monotonic() - t0, 3)}


# ---------------------------------------------------------------------------------------------------- CLI


def _warehouse_arg(sp: argparse.ArgumentParser) -> None:
    from pipeline.settings import default_warehouse

    sp.add_argument("--warehouse", default=default_warehouse(),
                    help="warehouse directory or s3://bucket/prefix (default: $NEWSINGEST_WAREHOUSE or ./warehouse)")


def _lock_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for the warehouse lock")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")


def _fail(message: str) -> int:
    from pipeline.cli import _die

    return _die(message)


def _fail_warehouse(exc: Exception, args: argparse.Namespace) -> int:
    from pipeline.cli import warehouse_error

    return warehouse_error(exc, waited=getattr(args, "wait", 0.0) or 0.0)


def _report(result: dict[str, Any], as_json: bool, lines: list[str]) -> int:
    if as_json:
        print(json.dumps(result, default=str))
    else:
        print("\n".join(lines))
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    try:
        r = compact(args.warehouse, target_mb=args.target_mb, lock_wait_s=args.wait, grace_s=args.grace,
                    datasets=tuple(args.dataset or COMPACT_DATASETS))
    except WarehouseError as exc:
        return _fail_warehouse(exc, args)
    lines = [f"compacted {r['files_merged']} files into {r['files_written']} in {r['partitions']} partitions "
             f"({r['elapsed_s']:.1f} s)"]
    for d, b in r["before"].items():
        a = r["after"][d]
        lines.append(f"  {d:<12} {b['files']:>6} files {b['bytes'] / 1e6:>9.1f} MB  ->  {a['files']:>6} files "
                     f"{a['bytes'] / 1e6:>9.1f} MB  ({a['rows']} rows)")
    return _report(r, args.json, lines)


def cmd_retain(args: argparse.Namespace) -> int:
    try:
        r = retain(args.warehouse, args.days, dataset=args.dataset, lock_wait_s=args.wait, grace_s=args.grace)
    except WarehouseError as exc:
        return _fail_warehouse(exc, args)
    return _report(r, args.json, [f"retired {r['files_retired']} {r['dataset']} files ({r['rows_retired']} rows, "
                                  f"{r['bytes_retired'] / 1e6:.1f} MB) of partitions before {r['before']}; "
                                  f"deleted after the grace period"])


def cmd_vacuum(args: argparse.Namespace) -> int:
    try:
        r = vacuum(args.warehouse, grace_s=args.grace, lock_wait_s=args.wait)
    except WarehouseError as exc:
        return _fail_warehouse(exc, args)
    return _report(r, args.json, [f"deleted {r['purged_files']} retired files ({r['purged_bytes'] / 1e6:.1f} MB), "
                                  f"{r['orphans_removed']} orphans, {r['log_files_removed']} old log files"])


def cmd_export(args: argparse.Namespace) -> int:
    try:
        r = export(args.warehouse, args.out, since=args.since, fmt=args.format)
    except WarehouseError as exc:
        return _fail_warehouse(exc, args)
    where = f" to {r['file']}" if r["file"] else ""
    print(f"exported {r['rows']} rows of {r['runs']} runs{where}", file=sys.stderr)
    print(r["watermark"])  # stdout: only the new watermark, for `W=$(newsingest export ...)`
    return 0


def cmd_reextract(args: argparse.Namespace) -> int:
    config = None
    if args.config:
        from pipeline.settings import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            return _fail(str(exc))
    try:
        r = reextract(args.warehouse, args.since, config=config, lock_wait_s=args.wait)
    except WarehouseError as exc:
        return _fail_warehouse(exc, args)
    return _report(r, args.json, [f"reextract run {r['run_id']}: {r.get('pages', 0)} kept pages, "
                                  f"{r.get('articles_written', 0)} articles rewritten ({r.get('changed', 0)} changed), "
                                  f"{r.get('files_rewritten', 0)} files replaced"])


def register(subparsers: Any) -> None:
    sp = subparsers.add_parser("compact", help="merge small Parquet files per partition (atomic for readers)")
    _warehouse_arg(sp)
    sp.add_argument("--target-mb", type=float, default=128.0, help="size of the merged files (default 128)")
    sp.add_argument("--dataset", action="append", choices=COMPACT_DATASETS, help="only this dataset (repeatable)")
    sp.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="S",
                    help="keep retired files S seconds for readers in flight (default 3600)")
    _lock_args(sp)
    sp.set_defaults(func=cmd_compact)

    sp = subparsers.add_parser("retain", help="drop raw pages (or fetch-log rows) older than N days")
    _warehouse_arg(sp)
    sp.add_argument("--days", type=int, required=True)
    sp.add_argument("--dataset", choices=RETAIN_DATASETS, default="raw_pages")
    sp.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="S")
    _lock_args(sp)
    sp.set_defaults(func=cmd_retain)

    sp = subparsers.add_parser("vacuum", help="delete retired files after the grace period, and crash leftovers")
    _warehouse_arg(sp)
    sp.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="S")
    _lock_args(sp)
    sp.set_defaults(func=cmd_vacuum)

    sp = subparsers.add_parser("export", help="write the articles committed after a watermark; print the new one")
    _warehouse_arg(sp)
    sp.add_argument("--since", default="", metavar="WATERMARK",
                    help="a run id (as printed by the previous export) or an ISO time; empty = everything")
    sp.add_argument("--format", choices=EXPORT_FORMATS, default="parquet")
    sp.add_argument("--out", required=True, metavar="DIR")
    sp.set_defaults(func=cmd_export)

    sp = subparsers.add_parser("reextract", help="rebuild text from the kept raw pages (no fetching)")
    _warehouse_arg(sp)
    sp.add_argument("--since", required=True, help="pages fetched on or after this date/time (ISO)")
    sp.add_argument("--config", help="take extract settings from this config")
    _lock_args(sp)
    sp.set_defaults(func=cmd_reextract)
