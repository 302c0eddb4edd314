"""Incremental runs against a long history: does the cost of a run follow what is new, not what is stored?

    python bench/incremental.py            # warehouses of 10,000 and 1,000,000 articles
    python bench/incremental.py --quick    # 10,000 and 100,000

Two warehouses get the same synthetic history profile, committed through the real warehouse code: about
700 articles a day from 20 outlets (a third syndicated copies), so the 10k warehouse holds two weeks and
the 1M one about four years. Both end at the same recent fortnight (the dedup window, 14 days by default,
holds the same ~10,000 documents in both): the comparison is about history, not about the window, whose
size follows the ingest rate. What a run loads is populated as a real history leaves it: the commit log
(older history in larger commits, as the daily `compact` leaves it, the last fortnight in one commit per
run), articles and fetch_log files, dedup index entries (real fingerprints of the stored texts) for the
window, the stored-id set (every article id, plus the ids of the older items still listed in the feeds),
the feed state (validators of every feed), and newsingest.duckdb with the views of the last commit. Every
file has the schema a run writes.

Then, on each warehouse, with the web served on 127.0.0.1 by another process (bench/loopweb.py):
  run 1: `newsingest run --all`: 200 feeds on 10 hosts, each listing 20 items of which 1 is new: 200 new
         articles are fetched, extracted, deduplicated against the window and committed;
  run 2: the same again, feeds unchanged: every feed answers 304 Not Modified.
Wall clock of the `newsingest run` process, start-up included. Politeness is set for a loopback server we
own (no delay between requests to one host): the throttle is not what is measured.

Figures:
  incr_ratio_1m_vs_10k   run-1 time on 1M / on 10k, lower is better, goal < 1.5
  incr_304_run_s         run-2 time on the 1M warehouse (every feed 304), lower is better, goal < 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import loopweb  # noqa: E402
from runproc import figure, run_newsingest  # noqa: E402

RATIO_GOAL = 1.5
NOT_MODIFIED_GOAL_S = 2.0
PER_DAY = 700
WINDOW_ROWS = 10_000  # the last fortnight, at PER_DAY
RECENT_RUNS = 100


def _fetch_log_table(run_id: str, at: datetime, feeds: list[dict[str, str]]) -> object:
    import pyarrow as pa

    from pipeline.schema import FETCH_LOG_SCHEMA

    rows = [{"run_id": run_id, "url": f["url"], "final_url": f["url"], "kind": "feed", "source": f["name"],
             "host": f["url"].split("/")[2], "outcome": "ok", "http_status": 200, "error": None, "elapsed_ms": 3,
             "attempts": 1, "redirects": 0, "bytes": 5000, "content_type": "application/rss+xml", "charset": "utf-8",
             "charset_mismatch": False, "started_at": at} for f in feeds[:5]]
    return pa.Table.from_pylist(rows, schema=FETCH_LOG_SCHEMA)


def build_history(path: Path, total: int, now: datetime, feeds: list[dict[str, str]], old_item_ids: list[int],
                  window: tuple[object, object], seed: int = 7) -> dict[str, float]:
    """Commit `total` synthetic articles ending at `now`; the last WINDOW_ROWS are `window` (their rows and
    dedup index entries, shared by every warehouse built in this invocation)."""
    import pyarrow.compute as pc

    from pipeline.warehouse import RunEntry, Warehouse
    from warehouse import _pools, synthetic_table

    t0 = time.perf_counter()
    wh = Warehouse(path)
    rng = np.random.default_rng(seed)
    pools = _pools(rng)
    sources = [f"outlet-{k:02d}" for k in range(20)]
    old = total - WINDOW_ROWS
    window_rows, window_index = window
    ids: list[np.ndarray] = []
    snap = wh.snapshot()

    def commit(run_id: str, at: datetime, table: object, index: object = None, state: dict | None = None) -> None:
        nonlocal snap
        days = pc.strftime(table["published_at"], format="%Y-%m-%d").to_pylist()
        by_day: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(days):
            by_day[d].append(i)
        files = [wh.write_table(f"articles/published_date={d}/part-{run_id}-0.parquet", table.take(idx))
                 for d, idx in sorted(by_day.items())]
        files.append(wh.write_table(f"fetch_log/run_date={at.date().isoformat()}/part-{run_id}-0.parquet",
                                    _fetch_log_table(run_id, at, feeds)))
        if index is not None:
            files.append(wh.write_table(f"dedup_index/part-{run_id}-0.parquet", index))
        ids.append(np.array([int(a, 16) for a in table["article_id"].to_pylist()], dtype=np.uint64))
        state_rel = seen_rel = None
        if state is not None:
            seen = np.unique(np.concatenate([*ids, np.array(old_item_ids, dtype=np.uint64)]))
            state_rel, seen_rel = wh.write_state(run_id, state, seen)
        wh.commit(RunEntry(run_id=run_id, started_at=at.isoformat(), committed_at=at.isoformat(),
                           counts={"articles_written": table.num_rows}, files=files, state_file=state_rel,
                           seen_file=seen_rel, trigger="bench"), base=snap)
        snap = wh.last_snapshot

    with wh.lock("bench history"):
        # Older history: larger commits (as compaction leaves it), PER_DAY articles a day.
        if old > 0:
            old_runs = max(1, min(200, old // 5000))
            old_start = now - timedelta(days=14 + old / PER_DAY)
            per = np.full(old_runs, old // old_runs)
            per[: old % old_runs] += 1
            at = old_start
            for k in range(old_runs):
                span = timedelta(days=int(per[k]) / PER_DAY)
                published = np.array([at + span * float(x) for x in rng.random(int(per[k]))])
                at = at + span
                run_id = f"{at:%Y%m%dT%H%M%SZ}-old{k:04d}"
                commit(run_id, at, synthetic_table(rng, pools, run_id, int(per[k]), published, at, sources))
        # The last fortnight: one commit per run, with its dedup index entries.
        bounds = np.linspace(0, WINDOW_ROWS, RECENT_RUNS + 1).astype(int)
        start = now - timedelta(days=14)
        for k in range(RECENT_RUNS):
            at = start + timedelta(days=14) * (k + 1) / RECENT_RUNS
            run_id = f"{at:%Y%m%dT%H%M%SZ}-win{k:04d}"
            sl = slice(int(bounds[k]), int(bounds[k + 1]))
            n = sl.stop - sl.start
            rows = window_rows.slice(sl.start, n)
            rows = _set(rows, "run_id", _const(run_id, n))
            index = window_index.slice(sl.start, n)
            state = None
            if k == RECENT_RUNS - 1:
                state = {"feeds": {f["name"]: {"url": f["url"], "etag": '"stale"', "last_modified": None,
                                                "last_success_at": at.isoformat(), "last_attempt_at": at.isoformat(),
                                                "last_outcome": "ok", "last_error": None, "consecutive_failures": 0}
                                   for f in feeds},
                         "pending": {}, "templates": {}}
            commit(run_id, at, rows, index, state)
        # Every real commit also brings newsingest.duckdb up to date: the last one left it at this snapshot.
        from pipeline.views import refresh_database_file

        refresh_database_file(wh, snap)
    return {"build_s": time.perf_counter() - t0, "runs": snap.seq, "files": len(snap.files)}


def _set(table: object, name: str, values: object) -> object:
    """`table` with column `name` replaced, its field (type, nullability) kept: every file then has the
    schema a real run writes (a file of another schema would switch the `articles` view to reading every
    file's footer by name, which a real history of one schema version never does)."""
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), values)


def _const(value: str, n: int) -> object:
    import pyarrow as pa

    return pa.array([value] * n, pa.string())


def window_block(now: datetime, seed: int = 99) -> tuple[object, object]:
    """The last fortnight's rows (ARTICLE_SCHEMA) and their dedup index entries (DedupIndex.to_arrow)."""
    import pyarrow as pa

    from pipeline.dedup import DedupIndex
    from pipeline.settings import DedupSettings
    from warehouse import _pools, synthetic_table

    rng = np.random.default_rng(seed)
    pools = _pools(rng)
    start = now - timedelta(days=14)
    published = np.array([start + timedelta(days=14) * float(x) for x in np.sort(rng.random(WINDOW_ROWS))])
    table = synthetic_table(rng, pools, "window", WINDOW_ROWS, published, now, [f"outlet-{k:02d}" for k in range(20)])
    ts = pa.array(published, pa.timestamp("us", tz="UTC"))
    table = _set(table, "first_seen_at", ts)
    index = DedupIndex(DedupSettings())
    index.add_many({"id": a, "text": t, "source": s, "seen_at": p} for a, t, s, p in zip(
        table["article_id"].to_pylist(), table["text"].to_pylist(), table["source"].to_pylist(), published,
        strict=True))
    return table, index.to_arrow()


def make_web(work: Path, ports: list[int], hosts: int, feeds_per_host: int, now: datetime
             ) -> tuple[list[dict[str, str]], list[int], int]:
    """200 feeds, each with 1 new item and 19 older ones (already stored). Returns (feeds, old ids, new)."""
    from pipeline.records import FeedItem
    from pipeline.run import id_to_u64, item_article_id

    outlets = loopweb.make_outlets(hosts)
    n_feeds = hosts * feeds_per_host
    new = loopweb.page_refs(outlets, n_feeds, now, seed=21, prefix="new", span_s=1800)
    old = loopweb.page_refs(outlets, n_feeds * 19, now - timedelta(hours=2), seed=22, prefix="old", span_s=86400)
    loopweb.write_pages(work, ports, outlets, new, seed=21)
    by_host: dict[int, list] = defaultdict(list)
    for r in old:
        by_host[r.host].append(r)
    feeds = loopweb.write_feeds(work, ports, outlets, new, feeds_per_host, extra=by_host)
    old_ids = []
    for r in old:
        item = FeedItem(source="x", feed_url="x", url=f"http://127.0.0.1:{ports[r.host]}{r.path}", guid=None)
        old_ids.append(id_to_u64(item_article_id(item)[0]))
    return feeds, old_ids, len(new)


def count(warehouse: Path) -> int:
    from pipeline.views import connect

    con = connect(warehouse)
    try:
        return int(con.sql("SELECT count(*) FROM articles").fetchall()[0][0])
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--feeds-per-host", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="100,000 articles for the large warehouse")
    ap.add_argument("--keep", help="work in this directory and keep it (default: a temporary one, removed)")
    ap.add_argument("--json", dest="json_out", default=str(ROOT / "bench" / "results" / "incremental.json"))
    args = ap.parse_args(argv)
    args.quick = args.quick or os.environ.get("NEWSINGEST_BENCH_QUICK") == "1"  # set by run_all.py --quick
    large = 100_000 if args.quick else args.large
    if args.small < WINDOW_ROWS:
        ap.error(f"--small must be at least {WINDOW_ROWS} (the window)")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="newsingest-incr-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
        ports = loopweb.free_ports(args.hosts)
        web = work / "web"
        shutil.rmtree(web, ignore_errors=True)
        feeds, old_ids, n_new = make_web(web, ports, args.hosts, args.feeds_per_host, now)
        config = work / "config.yaml"
        config.write_text(loopweb.config_yaml(feeds), encoding="utf-8")
        t = time.perf_counter()
        window = window_block(now)
        print(f"window block: {WINDOW_ROWS} rows and dedup entries in {time.perf_counter() - t:.1f} s",
              file=sys.stderr, flush=True)
        results = {}
        with loopweb.Server(web, ports):
            for label, total in (("10k", args.small), ("1M", large)):
                wh = work / f"wh-{label}"
                shutil.rmtree(wh, ignore_errors=True)
                built = build_history(wh, total, now, feeds, old_ids, window)
                print(f"{label}: {total} articles, {built['runs']} commits, {built['files']} live files, built in "
                      f"{built['build_s']:.1f} s", file=sys.stderr, flush=True)
                before = count(wh)
                runs = []
                for n in (1, 2):
                    proc = run_newsingest(["run", "--config", str(config), "--warehouse", str(wh), "--all", "--json",
                                           "-q"], work / f"run-{label}-{n}.log")
                    if proc.rc != 0 or proc.summary is None:
                        print(proc.output[-2000:], (work / f"run-{label}-{n}.stderr").read_text()[-3000:],
                              file=sys.stderr)
                        raise SystemExit(f"newsingest run {n} on {label} failed (exit {proc.rc})")
                    runs.append(proc)
                s1, s2 = runs[0].summary, runs[1].summary
                after = count(wh)
                # A benchmark of a broken run is worthless: run 1 stores exactly the new items, run 2 nothing.
                assert s1["articles_written"] == n_new and after == before + n_new, (s1, before, after)
                assert s1["articles_ok"] >= 0.98 * n_new, s1
                assert s2["feeds_not_modified"] == len(feeds) and s2["articles_written"] == 0, s2
                results[label] = {"articles": total, "commits": built["runs"], "live_files": built["files"],
                                  "build_s": round(built["build_s"], 1), "run_s": round(runs[0].wall_s, 2),
                                  "run_cpu_s": round(runs[0].cpu_s, 2), "run_rss_mb": round(runs[0].tree_peak_mb),
                                  "not_modified_s": round(runs[1].wall_s, 2),
                                  "not_modified_cpu_s": round(runs[1].cpu_s, 2),
                                  "summary_elapsed_s": s1.get("elapsed_s")}
                if not args.keep:
                    shutil.rmtree(wh, ignore_errors=True)
        small, big = results["10k"], results["1M"]
        ratio = big["run_s"] / small["run_s"]
        print(f"\nincremental runs: {n_new} new articles from {len(feeds)} feeds on {args.hosts} hosts (2 cores)\n")
        print(f"  {'warehouse':<16}{'commits':>9}{'files':>8}{'run s':>8}{'CPU s':>8}{'RSS MB':>8}{'304 run s':>11}"
              f"{'304 CPU s':>11}")
        for label, r in results.items():
            print(f"  {label + ' (' + format(r['articles'], ',') + ')':<16}" +
                  f"{r['commits']:>9}{r['live_files']:>8}{r['run_s']:>8.2f}{r['run_cpu_s']:>8.2f}{r['run_rss_mb']:>8}"
                  f"{r['not_modified_s']:>11.2f}{r['not_modified_cpu_s']:>11.2f}")
        print(f"\n  run time {large:,} / {args.small:,}: {ratio:.2f}x (goal < {RATIO_GOAL})")
        print(f"  all-304 run on {large:,}: {big['not_modified_s']:.2f} s (goal < {NOT_MODIFIED_GOAL_S} s)")
        if args.json_out:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        print()
        print(figure("incr_ratio_1m_vs_10k", ratio, RATIO_GOAL, higher_is_better=False))
        print(figure("incr_304_run_s", big["not_modified_s"], NOT_MODIFIED_GOAL_S, higher_is_better=False))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
