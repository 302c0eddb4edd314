"""End-to-end speed: `newsingest run` over 5,000 article pages served on 127.0.0.1, against the floor of
trafilatura alone extracting the same pages from disk, measured in the same invocation.

    python bench/e2e.py            # 5,000 pages on 10 hosts
    python bench/e2e.py --quick    # 1,000 pages

The web (bench/loopweb.py) is generated first: news pages of about 40 KB with a page template's
boilerplate (menus, cookie banner, ads, share bars, related lists, footer, inline scripts and styles), one
outlet per host (a port of 127.0.0.1: politeness is per host and port), each with RSS feeds listing its pages.

(a) floor: `trafilatura.extract(html)` with default options, one process, every page read from disk; half
    the pages (every other one) before our run and the other half after it, so that a machine whose speed
    drifts during the benchmark (shared machines do, by a factor of two within minutes) weighs on both sides
    alike. Its rate is all the pages over both halves' time. A round is (floor half, our run, floor half);
    the figure is the median of three rounds' ratios (`--rounds`; one with --quick), and the tables show
    that round.
(b) ours: `newsingest run --all` as a subprocess, over the feeds, into a fresh warehouse: feed fetch and
    parse, page fetch (gzip), extraction in worker processes, cleaning, dedup, Parquet, commit, views.
    Wall clock from process start to exit. The static server is another process (its CPU is reported
    apart). Politeness is configured for a loopback server we own (`min_delay_s: 0`,
    `per_host_concurrency: 8`): the default one request per second per host is a throttle by design and
    would be all this measured.

Also printed: the run's stage table (pipeline.metering: wall, CPU, workers' CPU and peak memory of each
stage), our CPU split between the main process (feeds, fetching, the commit) and the extraction workers,
the seconds at the end of the run with one core busy, and our CPU per page against the floor's (at the
goal's ratio, on 2 cores, ours may take at most 2 / 1.5 = 1.33 times the floor's, and that only with both
cores busy throughout).

Figures (bench/run_all.py reads the FIGURE lines):
  e2e_ratio_vs_trafilatura  pages/s ours / pages/s floor, higher is better, goal >= 1.5
  e2e_peak_rss_mb           peak RSS of the run's process tree (sum of VmRSS), lower is better, goal < 1500
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import loopweb  # noqa: E402
from runproc import figure, run_newsingest, stage_table  # noqa: E402

RATIO_GOAL = 1.5
RSS_GOAL_MB = 1500.0


def floor(files: list[Path]) -> tuple[float, float, int]:
    """trafilatura alone: (wall s, CPU s, pages with text), reading each page from disk."""
    import trafilatura

    trafilatura.extract(files[0].read_text(encoding="utf-8"))  # imports and lazy set-up outside the clock
    ok = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for f in files:
        if trafilatura.extract(f.read_text(encoding="utf-8")):
            ok += 1
    return time.perf_counter() - t0, time.process_time() - c0, ok


def count_articles(warehouse: Path) -> dict[str, int]:
    from pipeline.views import connect

    con = connect(warehouse)
    try:
        rows = con.sql("SELECT extraction_status, count(*) FROM articles GROUP BY 1").fetchall()
    finally:
        con.close()
    return {k: int(v) for k, v in rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--feeds-per-host", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="1,000 pages")
    ap.add_argument("--keep", help="work in this directory and keep it (default: a temporary one, removed)")
    ap.add_argument("--json", dest="json_out", default=str(ROOT / "bench" / "results" / "e2e.json"))
    ap.add_argument("--rounds", type=int, default=None,
                    help="paired rounds (floor half, our run, floor half), the figure their median ratio "
                    "(default 3; 1 with --quick)")
    args = ap.parse_args(argv)
    args.quick = args.quick or os.environ.get("NEWSINGEST_BENCH_QUICK") == "1"  # set by run_all.py --quick
    pages = 1000 if args.quick else args.pages
    rounds = args.rounds or (1 if args.quick else 3)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="newsingest-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        web = work / "web"
        shutil.rmtree(web, ignore_errors=True)
        ports = loopweb.free_ports(args.hosts)
        outlets = loopweb.make_outlets(args.hosts)
        now = datetime.now(UTC).replace(microsecond=0)
        t = time.perf_counter()
        refs = loopweb.page_refs(outlets, pages, now, seed=11)
        size = loopweb.write_pages(web, ports, outlets, refs, seed=11)
        feeds = loopweb.write_feeds(web, ports, outlets, refs, args.feeds_per_host)
        gen_s = time.perf_counter() - t
        files = [web / str(ports[r.host]) / r.path.lstrip("/") for r in refs]
        print(f"web: {pages} pages ({size / pages / 1e3:.1f} KB each), {len(feeds)} feeds on {args.hosts} hosts, "
              f"generated in {gen_s:.1f} s", file=sys.stderr)

        config = work / "config.yaml"
        config.write_text(loopweb.config_yaml(feeds), encoding="utf-8")
        warehouse = work / "warehouse"

        def one_round(k: int) -> dict:
            """Floor (half the pages), our run into a fresh warehouse, floor (the other half): one ratio."""
            print(f"round {k + 1}/{rounds}: floor, first half ...", file=sys.stderr, flush=True)
            before = floor(files[0::2])
            shutil.rmtree(warehouse, ignore_errors=True)
            print(f"round {k + 1}/{rounds}: newsingest run ...", file=sys.stderr, flush=True)
            with loopweb.Server(web, ports) as server:
                cpu_server0 = server.cpu_s()
                run = run_newsingest(["run", "--config", str(config), "--warehouse", str(warehouse), "--all",
                                      "--json", "-q"], work / "run.log")
                server_cpu = server.cpu_s() - cpu_server0
            print(f"round {k + 1}/{rounds}: floor, second half ...", file=sys.stderr, flush=True)
            after = floor(files[1::2])
            if run.rc != 0 or run.summary is None:
                print(run.output[-3000:], file=sys.stderr)
                print((work / "run.stderr").read_text()[-3000:], file=sys.stderr)
                raise SystemExit(f"newsingest run failed (exit {run.rc})")
            counts = count_articles(warehouse)
            # A benchmark of a broken run is worthless: every page must be stored, nearly all with text.
            assert sum(counts.values()) == pages, f"the run stored {sum(counts.values())} articles of {pages} pages: {counts}"
            assert counts.get("ok", 0) >= 0.98 * pages, f"only {counts.get('ok', 0)} of {pages} articles have text: {counts}"
            floor_wall = before[0] + after[0]
            return {"before": before, "after": after, "run": run, "server_cpu": server_cpu, "counts": counts,
                    "ratio": (pages / run.wall_s) / (pages / floor_wall)}

        # Each round's ratio compares runs made side by side; the figure is the median round's: this machine's
        # speed drifts by a quarter within minutes, which one round alone reports as a change of the code
        done = [one_round(k) for k in range(rounds)]
        chosen = sorted(done, key=lambda r: r["ratio"])[len(done) // 2]
        before, after, run, server_cpu, counts = (chosen[k] for k in ("before", "after", "run", "server_cpu", "counts"))
        floor_wall, floor_cpu, floor_ok = (a + b for a, b in zip(before, after, strict=True))
        floor_rate = pages / floor_wall
        stored = sum(counts.values())
        with_text = counts.get("ok", 0)
        ours_rate = pages / run.wall_s
        ratio = chosen["ratio"]
        busy = run.cores_busy
        busy_mid = busy[len(busy) // 5: len(busy) * 4 // 5] or busy
        tail_s = 0.5 * next((k for k, b in enumerate(reversed(busy)) if b >= 1.3), len(busy))  # one core at the end
        s = run.summary

        print(f"\nend-to-end: {pages} pages, {args.hosts} hosts, {len(feeds)} feeds (2 cores)\n")
        print(f"  {'':<34}{'wall s':>9}{'CPU s':>9}{'pages/s':>10}")
        print(f"  {'floor: trafilatura.extract, 1 proc':<34}{floor_wall:>9.1f}{floor_cpu:>9.1f}{floor_rate:>10.1f}")
        for name, (w, _, _) in (("before our run", before), ("after our run", after)):
            print(f"  {'  half of the pages, ' + name:<34}{w:>9.1f}{'':>9}{len(files[0::2]) / w:>10.1f}")
        print(f"  {'ours: newsingest run (tree)':<34}{run.wall_s:>9.1f}{run.cpu_s:>9.1f}{ours_rate:>10.1f}")
        print(f"  {'  main process (fetch, commit)':<34}{'':>9}{run.main_cpu_s:>9.1f}")
        print(f"  {'  extraction workers':<34}{'':>9}{run.cpu_s - run.main_cpu_s:>9.1f}")
        print(f"  {'static server (other process)':<34}{'':>9}{server_cpu:>9.1f}")
        each = ", ".join(f"{r['ratio']:.2f}" for r in done)
        print(f"\n  ratio ours/floor          {ratio:.2f}x (goal >= {RATIO_GOAL}): the median of {rounds} paired "
              f"round{'s' if rounds > 1 else ''} ({each}), shown above")
        print(f"  peak RSS, process tree    {run.tree_peak_mb:.0f} MB (largest process {run.max_rss_mb:.0f} MB)")
        print(f"  cores busy (run tree)     mean {statistics.fmean(busy):.2f}, middle 60% of the run "
              f"{statistics.fmean(busy_mid):.2f} of 2" if busy else "")
        print(f"  one core busy at the end  {tail_s:.1f} s (the last extractions, then the commit: it is serial)")
        print(f"  CPU per page              ours {run.cpu_s / pages * 1e3:.2f} ms (main {run.main_cpu_s / pages * 1e3:.2f}), "
              f"floor {floor_cpu / pages * 1e3:.2f} ms: at {RATIO_GOAL}x on 2 cores ours may take at most "
              f"{2 / RATIO_GOAL:.2f}x the floor's, with no single-core time")
        print(f"  stored                    {stored} articles, {with_text} with text, {s.get('duplicates')} duplicates; "
              f"run's own elapsed_s {s.get('elapsed_s')}")
        print(f"  floor pages with text     {floor_ok}")
        if s.get("stages"):
            print("\n" + stage_table({"ours": s["stages"]}))
        result = {"pages": pages, "hosts": args.hosts, "feeds": len(feeds), "page_kb": round(size / pages / 1e3, 1),
                  "floor_wall_s": round(floor_wall, 2), "floor_cpu_s": round(floor_cpu, 2),
                  "floor_pages_per_s": round(floor_rate, 1),
                  "floor_halves_wall_s": [round(before[0], 2), round(after[0], 2)], "run_wall_s": round(run.wall_s, 2),
                  "run_cpu_s": round(run.cpu_s, 2), "run_pages_per_s": round(ours_rate, 1), "ratio": round(ratio, 3),
                  "tree_peak_rss_mb": round(run.tree_peak_mb), "max_rss_mb": round(run.max_rss_mb),
                  "server_cpu_s": round(server_cpu, 2), "main_cpu_s": round(run.main_cpu_s, 2),
                  "single_core_tail_s": tail_s, "cores_busy": [round(b, 2) for b in busy],
                  "stored": counts, "stages": s.get("stages"), "round_ratios": [round(r["ratio"], 3) for r in done]}
        if args.json_out:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print()
        print(figure("e2e_ratio_vs_trafilatura", ratio, RATIO_GOAL, higher_is_better=True))
        print(figure("e2e_peak_rss_mb", run.tree_peak_mb, RSS_GOAL_MB, higher_is_better=False))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
