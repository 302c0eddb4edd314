"""Memory over the size of a run: peak RSS of `newsingest run --all` at two sizes, over the loopback web.

    python bench/memory.py                       # 2,000 and 100,000 pages, as in `make bench` (the issue's
                                                 # 100k-article run: about 4 GB of web on disk, ~6 minutes)
    python bench/memory.py --pages 2000,20000    # a shorter comparison
    python bench/memory.py --quick               # 500 and 2,000 pages

Issue 8 asks for "memory flat over a 100k-article run": a run's memory must not grow with the number of
new articles it stores. Each size gets a fresh web (bench/loopweb.py) and a fresh warehouse; the run is a
subprocess (bench/runproc.py samples /proc every 20 ms): the peak RSS of the main process (which fetches,
cleans, deduplicates and writes) and of the whole process tree (plus the extraction workers). The runs'
stage tables (pipeline.metering), side by side, show which stage's memory grows with the run.

Figures (bench/run_all.py reads the FIGURE lines):
  memory_main_peak_mb_<n>     peak RSS of the main process at the larger size, lower is better
  memory_tree_peak_mb_<n>     peak RSS of the process tree at the larger size, lower is better
  memory_main_growth_ratio    main-process peak at the larger size / at the smaller one, goal < 1.5
                              (flat memory: close to 1 however many times more pages the larger run has)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

GROWTH_GOAL = 1.5
MAIN_GOAL_MB = 600.0
TREE_GOAL_MB = 1500.0
ITEMS_PER_FEED = 800  # the loopweb config takes up to 1,000 items per feed


def one_size(work: Path, pages: int, hosts: int, timeout_s: float, chunk_rows: int | None) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    web = work / "web"
    ports = loopweb.free_ports(hosts)
    outlets = loopweb.make_outlets(hosts)
    now = datetime.now(UTC).replace(microsecond=0)
    t = time.perf_counter()
    refs = loopweb.page_refs(outlets, pages, now, seed=23)
    size = loopweb.write_pages(web, ports, outlets, refs, seed=23)
    feeds_per_host = max(4, -(-pages // (hosts * ITEMS_PER_FEED)))
    feeds = loopweb.write_feeds(web, ports, outlets, refs, feeds_per_host)
    print(f"web: {pages} pages ({size / pages / 1e3:.1f} KB each, {size / 1e9:.2f} GB), {len(feeds)} feeds on "
          f"{hosts} hosts, generated in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    config = work / "config.yaml"
    text = loopweb.config_yaml(feeds)
    if chunk_rows:
        text += f"commit:\n  chunk_rows: {chunk_rows}\n"
    config.write_text(text, encoding="utf-8")
    warehouse = work / "warehouse"
    with loopweb.Server(web, ports):
        run = run_newsingest(["run", "--config", str(config), "--warehouse", str(warehouse), "--all", "--json", "-q"],
                             work / "run.log", timeout_s=timeout_s)
    if run.rc != 0 or run.summary is None:
        print(run.output[-3000:], file=sys.stderr)
        print((work / "run.stderr").read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"newsingest run failed (exit {run.rc})")
    written = run.summary.get("articles_written")
    assert written == pages, f"the run stored {written} articles of {pages} pages"
    out = {"pages": pages, "wall_s": round(run.wall_s, 1), "main_peak_mb": round(run.main_peak_mb, 1),
           "main_maxrss_mb": round(run.max_rss_mb, 1), "tree_peak_mb": round(run.tree_peak_mb, 1),
           "articles_ok": run.summary.get("articles_ok"), "duplicates": run.summary.get("duplicates"),
           "stages": run.summary.get("stages") or []}
    print(f"  {pages:>7} pages: wall {run.wall_s:6.1f} s, main process peak {run.main_peak_mb:6.0f} MB "
          f"(ru_maxrss {run.max_rss_mb:.0f} MB), process tree peak {run.tree_peak_mb:6.0f} MB", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", default="2000,100000", help="two sizes, comma-separated (default 2000,100000)")
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="500 and 2,000 pages")
    ap.add_argument("--chunk-rows", type=int, help="commit.chunk_rows of the runs (default: the setting's default)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--keep", help="work in this directory and keep it (default: a temporary one, removed)")
    ap.add_argument("--json", dest="json_out", default=str(ROOT / "bench" / "results" / "memory.json"))
    args = ap.parse_args(argv)
    quick = args.quick or os.environ.get("NEWSINGEST_BENCH_QUICK") == "1"
    sizes = [500, 2000] if quick else [int(x) for x in args.pages.split(",")]
    if len(sizes) != 2 or sizes[0] >= sizes[1]:
        raise SystemExit("--pages takes two sizes, the smaller first (e.g. 2000,20000)")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="newsingest-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"memory over the size of a run: newsingest run --all at {sizes[0]} and {sizes[1]} pages", flush=True)
        results = [one_size(work / f"p{n}", n, args.hosts, args.timeout, args.chunk_rows) for n in sizes]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    small, big = results
    growth = big["main_peak_mb"] / small["main_peak_mb"]
    tree_growth = big["tree_peak_mb"] / small["tree_peak_mb"]
    per_article_kb = (big["main_peak_mb"] - small["main_peak_mb"]) * 1024 / (big["pages"] - small["pages"])
    if small["stages"] and big["stages"]:  # where the memory grows, stage by stage
        print("\n" + stage_table({f"{r['pages']:,} pages": r["stages"] for r in results}))
    print(f"\n  main process: x{growth:.2f} for x{big['pages'] / small['pages']:.0f} pages "
          f"({per_article_kb:.1f} KB per extra article); process tree: x{tree_growth:.2f}")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps({"runs": results, "main_growth": round(growth, 3),
                                                   "tree_growth": round(tree_growth, 3)}, indent=1) + "\n")
    n = big["pages"]
    print()
    print(figure(f"memory_main_peak_mb_{n}", big["main_peak_mb"], MAIN_GOAL_MB, higher_is_better=False))
    print(figure(f"memory_tree_peak_mb_{n}", big["tree_peak_mb"], TREE_GOAL_MB, higher_is_better=False))
    print(figure("memory_main_growth_ratio", growth, GROWTH_GOAL, higher_is_better=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
