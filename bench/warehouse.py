"""Warehouse benchmark: typical queries over 1M synthetic article rows, in many small files (as incremental
runs leave them) and after `newsingest compact`, with the ratios measured in the same run.

    .venv/bin/python bench/warehouse.py                  # 200k rows in 2,000 runs over 30 days (make bench)
    .venv/bin/python bench/warehouse.py --rows 1000000   # the 1M-row warehouse (several minutes more)
    .venv/bin/python bench/warehouse.py --quick          # smoke run: 20k rows in 200 runs (NEWSINGEST_BENCH_QUICK=1)

The rows are generated here (made-up outlets, titles and paragraphs drawn from word pools) and committed
through the real warehouse code (`Warehouse.write_table` + a log entry per run), one run every ~20 minutes
of simulated time, each holding the articles published since the previous run plus a few late ones: so each
run writes one to three small files, as the 15-minute ingest does. Queries run through `pipeline.views`
(DuckDB over the live files). Results go to stdout and bench/results/warehouse.json.

Default size: 200,000 rows in 2,000 runs, chosen so that `make bench` fits its 20 minutes (run_all gives
this script 180 s): the run count, which makes the small files (~5,100 of them at 200k rows), is the issue's; 1M rows
took several minutes, most of it generating and committing rows, not querying.

Figures (FIGURE lines, see bench/run_all.py), medians of --repeat runs, in milliseconds:
  wh_<query>_small_files_ms / wh_<query>_compacted_ms for the three typical queries (articles per source per
  day over 30 days, top clusters by copies, ILIKE over the text of one month). Goals, ours, stated here:
  compacted, an aggregate answers within 1,000 ms and the month-long ILIKE within 10,000 ms (an analyst
  waiting at a prompt); in small files (compaction not run yet) within 10x that: slow, still usable.
  wh_compaction_file_ratio: files after / files before compaction, goal <= 0.05 (at least 20x fewer files).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.schema import ARTICLE_SCHEMA, SCHEMA_VERSION  # noqa: E402
from pipeline.warehouse import RunEntry, Warehouse  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)

_WORDS = (
    "council harbour strike budget river bridge school hospital market rates drought storm festival museum "
    "railway election debate court trial ferry mayor minister union farmers prices energy grid wind solar "
    "housing rents teachers nurses police fire coast valley mountain airport port shipping exports inflation "
    "wages tourism museum library stadium coach season league cup final record rainfall harvest grain wheat "
    "fishing fleet quota report study university research hospital ward vaccine flu clinic budget tax levy"
).split()


def _pools(rng: np.random.Generator, n_titles: int = 4000, n_paras: int = 3000) -> tuple[pa.Array, pa.Array]:
    words = np.array(_WORDS)

    def sentence(k: int) -> str:
        s = " ".join(rng.choice(words, size=k))
        return s[0].upper() + s[1:] + "."

    titles = pa.array([sentence(int(rng.integers(6, 11)))[:-1].title() for _ in range(n_titles)])
    paras = pa.array([" ".join(sentence(int(rng.integers(10, 22))) for _ in range(4)) for _ in range(n_paras)])
    return titles, paras


def synthetic_table(rng: np.random.Generator, pools: tuple[pa.Array, pa.Array], run_id: str, n: int,
                    published: np.ndarray, first_seen: datetime, sources: list[str]) -> pa.Table:
    """`n` article rows of one run (ARTICLE_SCHEMA); about a third are syndicated copies of the others."""
    titles, paras = pools
    ids = [f"{x:016x}" for x in rng.integers(0, 2**63, size=n, dtype=np.int64)]
    src_idx = rng.integers(0, len(sources), size=n)
    source = [sources[i] for i in src_idx]
    site = [f"www.{s}.example" for s in source]
    url = [f"https://{h}/news/{i}.html" for h, i in zip(site, ids, strict=True)]
    is_copy = rng.random(n) < 0.35
    originals = np.flatnonzero(~is_copy)
    if not len(originals):
        originals = np.array([0])
        is_copy[0] = False
    of = originals[rng.integers(0, len(originals), size=n)]
    cluster = [ids[of[i]] if is_copy[i] else ids[i] for i in range(n)]
    story = np.where(is_copy, of, np.arange(n))
    t_idx = pa.array(rng.integers(0, len(titles), size=n))
    p_idx = [pa.array((rng.integers(0, len(paras), size=n) + story * 7 * k) % len(paras)) for k in (1, 2, 3)]
    text = pc.binary_join_element_wise(*(pc.take(paras, i) for i in p_idx), "\n\n")
    ts = pa.timestamp("us", tz="UTC")
    cols = {
        "article_id": ids, "url": url, "canonical_url": url, "source": source, "site": site,
        "site_name": [s.replace("-", " ").title() for s in source],
        "title": pc.take(titles, t_idx), "text": text, "summary": None, "description": None,
        "authors": [[f"Reporter {int(x)}"] for x in rng.integers(0, 300, size=n)], "tags": [[] for _ in range(n)],
        "published_at": pa.array(published, type=ts), "published_source": ["jsonld"] * n,
        "first_seen_at": pa.array([first_seen] * n, type=ts), "language": ["en"] * n,
        "word_count": pc.cast(pc.divide(pc.utf8_length(text), 6), pa.int32()), "content_hash": None,
        "cluster_id": cluster, "duplicate_of": [c if d else None for c, d in zip(cluster, is_copy, strict=True)],
        "dup_method": ["near" if d else None for d in is_copy],
        "similarity": pa.array([0.9 if d else None for d in is_copy], pa.float32()),
        "syndicated_from": None, "feed_guid": None, "feed_url": None,
        "http_status": pa.array([200] * n, pa.int16()), "fetched_at": pa.array([first_seen] * n, type=ts),
        "extraction_status": ["ok"] * n, "run_id": [run_id] * n, "schema_version": [SCHEMA_VERSION] * n,
    }
    arrays = []
    for f in ARTICLE_SCHEMA:
        v = cols[f.name]
        arrays.append(pa.nulls(n, f.type) if v is None else pa.array(v, f.type) if not isinstance(
            v, pa.Array | pa.ChunkedArray) else v.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=ARTICLE_SCHEMA)


def ingest_synthetic(wh: Warehouse, rows: int, runs: int, *, days: int = 30, n_sources: int = 20, seed: int = 7,
                     start: datetime = START, progress: bool = False) -> list[str]:
    """Commit `rows` synthetic articles as `runs` ingest runs spread over `days` days. Returns the run ids."""
    rng = np.random.default_rng(seed)
    pools = _pools(rng)
    sources = [f"outlet-{k:02d}" for k in range(n_sources)]
    step = timedelta(days=days) / runs
    per_run = np.full(runs, rows // runs)
    per_run[: rows % runs] += 1
    run_ids = []
    snap = wh.snapshot()
    with wh.lock("bench ingest"):
        for k in range(runs):
            now = start + step * (k + 1)
            run_id = f"{now:%Y%m%dT%H%M%SZ}-syn{k:05d}"
            n = int(per_run[k])
            # Published since the previous run; 3% are late (up to three days old).
            offsets = rng.uniform(0, step.total_seconds(), size=n)
            late = rng.random(n) < 0.03
            offsets[late] = rng.uniform(0, 3 * 86400, size=int(late.sum()))
            published = np.array([now - timedelta(seconds=float(s)) for s in offsets])
            published = np.maximum(published, start)
            table = synthetic_table(rng, pools, run_id, n, published, now, sources)
            days_of = pc.strftime(table["published_at"], format="%Y-%m-%d").to_pylist()
            by_day: dict[str, list[int]] = defaultdict(list)
            for i, d in enumerate(days_of):
                by_day[d].append(i)
            files = [wh.write_table(f"articles/published_date={d}/part-{run_id}-0.parquet", table.take(idx))
                     for d, idx in sorted(by_day.items())]
            wh.commit(RunEntry(run_id=run_id, started_at=now.isoformat(), committed_at=now.isoformat(),
                               counts={"articles_written": n}, files=files, state_file=None, seen_file=None,
                               trigger="bench"), base=snap)
            snap = wh.last_snapshot
            run_ids.append(run_id)
            if progress and (k + 1) % max(1, runs // 10) == 0:
                print(f"  {k + 1}/{runs} runs committed", file=sys.stderr)
    return run_ids


def queries(start: datetime = START, days: int = 30) -> dict[str, str]:
    first, last = start.date().isoformat(), (start + timedelta(days=days - 1)).date().isoformat()
    return {
        "per_source_per_day": (f"SELECT source, published_date, count(*) AS n FROM articles WHERE published_date "
                               f"BETWEEN DATE '{first}' AND DATE '{last}' GROUP BY ALL ORDER BY ALL"),
        "top_clusters_by_copies": ("SELECT cluster_id, count(*) AS copies, count(DISTINCT source) AS outlets "
                                   "FROM articles GROUP BY cluster_id ORDER BY copies DESC, cluster_id LIMIT 20"),
        "text_ilike_one_month": (f"SELECT count(*) FROM articles WHERE published_date BETWEEN DATE '{first}' "
                                 f"AND DATE '{last}' AND text ILIKE '%harbour strike%'"),
    }


def time_queries(wh: Warehouse, sqls: dict[str, str], repeat: int) -> tuple[dict[str, float], float, dict]:
    from pipeline.views import connect

    opens = []
    for _ in range(repeat):
        t = time.perf_counter()
        con = connect(wh)
        opens.append(time.perf_counter() - t)
    out, answers = {}, {}
    for name, sql in sqls.items():
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            answers[name] = con.sql(sql).fetchall()
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
    return out, statistics.median(opens), answers


QUERY_GOAL_MS = {"per_source_per_day": 1000, "top_clusters_by_copies": 1000, "text_ilike_one_month": 10_000}
FILE_RATIO_GOAL = 0.05


def figures(before: dict[str, float], after: dict[str, float], files_before: int, files_after: int) -> list[str]:
    """FIGURE lines: each query's milliseconds before and after compaction, and the file-count ratio."""
    out = []
    for name, goal in QUERY_GOAL_MS.items():
        for tag, secs, g in (("small_files", before[name], 10 * goal), ("compacted", after[name], goal)):
            ms = secs * 1000
            out.append(f"FIGURE name=wh_{name}_{tag}_ms value={ms:.1f} goal={g} {'PASS' if ms <= g else 'FAIL'}")
    ratio = files_after / max(files_before, 1)
    out.append(f"FIGURE name=wh_compaction_file_ratio value={ratio:.4f} goal={FILE_RATIO_GOAL} "
               f"{'PASS' if ratio <= FILE_RATIO_GOAL else 'FAIL'}")
    return out


def main(argv: list[str] | None = None) -> int:
    from pipeline.maintenance import compact

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = os.environ.get("NEWSINGEST_BENCH_QUICK") == "1" or "--quick" in (argv if argv is not None else sys.argv)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20k rows in 200 runs")
    ap.add_argument("--rows", type=int, default=20_000 if quick else 200_000)
    ap.add_argument("--runs", type=int, default=200 if quick else 2000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", help="build the warehouse here (default: a temporary directory, removed)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "warehouse.json"))
    args = ap.parse_args(argv)

    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="newsingest-bench-"))
    try:
        wh = Warehouse(tmp / "warehouse")
        t = time.perf_counter()
        ingest_synthetic(wh, args.rows, args.runs, days=args.days, progress=True)
        ingest_s = time.perf_counter() - t
        sqls = queries(days=args.days)
        before_q, before_open, before_ans = time_queries(wh, sqls, args.repeat)
        t = time.perf_counter()
        result = compact(wh, datasets=("articles",))
        compact_s = time.perf_counter() - t
        after_q, after_open, after_ans = time_queries(wh, sqls, args.repeat)
        if before_ans != after_ans:
            print("ERROR: answers differ before and after compaction", file=sys.stderr)
            return 1
        b, a = result["before"]["articles"], result["after"]["articles"]
        report = {
            "rows": a["rows"], "runs": args.runs, "days": args.days, "ingest_s": round(ingest_s, 2),
            "compact_s": round(compact_s, 2),
            "files_before": b["files"], "bytes_before": b["bytes"], "files_after": a["files"], "bytes_after": a["bytes"],
            "open_s_before": round(before_open, 4), "open_s_after": round(after_open, 4),
            "queries": {k: {"small_files_s": round(before_q[k], 4), "compacted_s": round(after_q[k], 4),
                            "speedup": round(before_q[k] / after_q[k], 2)} for k in sqls},
        }
        print(f"\nwarehouse benchmark: {a['rows']:,} article rows, {args.runs} runs over {args.days} days "
              f"(ingest {ingest_s:.1f} s, compaction {compact_s:.1f} s)\n")
        print(f"  {'':<26}{'files':>8}{'MB':>10}{'mean file KB':>14}")
        print(f"  {'before compaction':<26}{b['files']:>8}{b['bytes'] / 1e6:>10.1f}{b['bytes'] / b['files'] / 1e3:>14.1f}")
        print(f"  {'after compaction':<26}{a['files']:>8}{a['bytes'] / 1e6:>10.1f}{a['bytes'] / a['files'] / 1e3:>14.1f}")
        print(f"\n  {'query (median of ' + str(args.repeat) + ')':<26}{'small files s':>15}{'compacted s':>13}"
              f"{'speedup':>9}")
        print(f"  {'open (views)':<26}{before_open:>15.3f}{after_open:>13.3f}{before_open / after_open:>8.1f}x")
        for k in sqls:
            print(f"  {k:<26}{before_q[k]:>15.3f}{after_q[k]:>13.3f}{before_q[k] / after_q[k]:>8.1f}x")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"\n  results: {args.out}")
        fig_lines = figures(before_q, after_q, b["files"], a["files"])
        if args.quick:
            print("  (--quick: a smoke run, not the issue's warehouse size)")
        print("\n".join(fig_lines))
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
