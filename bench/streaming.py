"""Streaming benchmark: `newsingest watch` against the live demo web, on 127.0.0.1.

    .venv/bin/python bench/streaming.py                    # 10 minutes at demo speed 1 (then a settle phase)
    .venv/bin/python bench/streaming.py --minutes 1.5 --speed 6 --kill-every 15

The live demo web (pipeline/demo/live.py) publishes at per-feed rates (busy, steady, bursty, idle, flaky)
and keeps a publication log: when each article appeared in its feed. `newsingest watch` runs as a
subprocess with the polling settings of the web's generated config (production defaults compressed by
`--speed`). A reader thread queries the warehouse through DuckDB every `--reader-interval` seconds and notes
when each article first becomes queryable. After `--minutes` the web stops publishing; the watcher gets a
settle phase (the longest polling interval, plus slack) to pick up the last items, then SIGTERM.

Measured:
* latency: publication in the feed -> first seen by the DuckDB reader (p50/p95/max), and -> commit of its
  run (from the manifest), overall and per feed;
* requests the server received while the web published, against the baseline of polling every feed every
  30 s (demo seconds) over the same window: feed requests, and all requests (the baseline would fetch the
  same article pages and robots.txt);
* the interval each feed settled on (the policy's state, and the last gap observed by the server);
* lost articles (in the publication log, never stored) and duplicated ones (an article id or URL stored
  twice), over the whole run. `--kill-every S` SIGKILLs the watcher every S seconds and restarts it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASELINE_INTERVAL_S = 30.0  # demo seconds: the fixed-interval poller we compare with


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (as DuckDB's quantile_cont)."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class Reader(threading.Thread):
    """Polls the warehouse like a consumer would, noting when each URL first becomes queryable."""

    def __init__(self, warehouse: Path, interval: float) -> None:
        super().__init__(name="duckdb-reader", daemon=True)
        self.warehouse, self.interval = warehouse, interval
        self.first_visible: dict[str, datetime] = {}
        self.queries = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def poll_once(self) -> None:
        from pipeline.views import connect

        if not (self.warehouse / "_log").is_dir():  # nothing committed yet
            return
        at = datetime.now(UTC)
        try:
            con = connect(self.warehouse, threads=1)
            urls = con.sql("SELECT DISTINCT url FROM articles WHERE url IS NOT NULL").fetchall()
            con.close()
        except Exception as exc:  # a reader racing a commit must never fail: note it and retry
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        self.queries += 1
        for (url,) in urls:
            self.first_visible.setdefault(url, at)

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            self.poll_once()
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))


def start_watch(config: Path, warehouse: Path, log_path: Path, workers: int | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipeline.cli", "watch", "--config", str(config), "--warehouse", str(warehouse)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(cmd, stdout=open(log_path, "a"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def measure(minutes: float = 10.0, speed: float = 1.0, seed: int = 20240601, warehouse: Path | None = None,
            reader_interval: float = 0.5, settle_s: float | None = None, kill_every_s: float | None = None,
            workers: int | None = None, boot_s: float = 5.0, quiet: bool = False) -> dict:
    from pipeline.demo import DemoServer, LiveDemoWeb
    from pipeline.settings import parse_config

    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    tmp = None
    if warehouse is None:
        tmp = tempfile.TemporaryDirectory(prefix="newsingest-streaming-")
        warehouse = Path(tmp.name) / "warehouse"
    work = warehouse.parent
    publish_s = minutes * 60.0
    freeze = {"at": math.inf}
    clock = lambda: min(time.time(), freeze["at"])  # noqa: E731 - the web stops publishing at the freeze
    start = datetime.now(UTC) + timedelta(seconds=boot_s)  # the watcher boots before the first publication
    web = LiveDemoWeb(seed=seed, start=start, speed=speed, clock=clock)
    reader = Reader(warehouse, reader_interval)
    kills = 0
    with DemoServer(web) as server:
        config_path = work / "live-config.yaml"
        config_path.write_text(web.config_yaml(server.base_url), encoding="utf-8")
        config = parse_config(config_path.read_text(encoding="utf-8"))
        polling = config.polling
        settle_s = settle_s if settle_s is not None else polling.max_interval_s + 30.0 / speed + 5.0
        log_path = work / "watch.log"
        say(f"live demo web at {server.base_url}, {len(web.feeds)} feeds, speed {speed:g}; warehouse {warehouse}")
        watch = start_watch(config_path, warehouse, log_path, workers)
        reader.start()
        try:
            t_start = time.time()
            window_start = start
            next_kill = t_start + kill_every_s if kill_every_s else math.inf
            end_publish = start.timestamp() + publish_s
            while time.time() < end_publish:
                if watch.poll() is not None:
                    raise RuntimeError(f"watch exited with {watch.returncode}; see {log_path}")
                if time.time() >= next_kill:
                    watch.send_signal(signal.SIGKILL)
                    watch.wait()
                    kills += 1
                    say(f"SIGKILL #{kills} at {time.time() - t_start:.0f} s; restarting")
                    watch = start_watch(config_path, warehouse, log_path, workers)
                    next_kill += kill_every_s
                time.sleep(0.2)
            freeze["at"] = end_publish
            window_end = datetime.fromtimestamp(end_publish, UTC)
            say(f"publishing stopped after {publish_s:.0f} s; settling for {settle_s:.0f} s")
            snapshot_polling = _read_polling(warehouse)  # intervals as the policy set them when publishing ended
            time.sleep(settle_s)
            watch.send_signal(signal.SIGTERM)
            rc = watch.wait(timeout=120)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
            reader.stop.set()
            reader.join(timeout=30)
        reader.poll_once()
        requests = list(server.requests)
    final_polling = _read_polling(warehouse)
    pubs = web.publications(until=window_end, since=window_start)  # the history before the start is backlog
    result = _analyse(web, server.base_url, pubs, requests, reader, warehouse, window_start, window_end, polling,
                      speed, snapshot_polling or final_polling)
    result.update(minutes=minutes, speed=speed, seed=seed, settle_s=settle_s, kills=kills, watch_exit=rc,
                  reader_queries=reader.queries, reader_errors=len(reader.errors), warehouse=str(warehouse))
    if tmp is not None:
        tmp.cleanup()
    return result


def _read_polling(warehouse: Path) -> dict[str, dict]:
    path = warehouse / "_polling.jsonl"
    if not path.exists():
        return {}
    return {d["source"]: d for d in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if d}


def _analyse(web, base_url: str, pubs, requests, reader: Reader, warehouse: Path, window_start: datetime,
             window_end: datetime, polling, speed: float, intervals: dict[str, dict]) -> dict:
    from pipeline.views import connect

    con = connect(warehouse)
    rows = con.sql("SELECT a.url, a.article_id, a.source, r.committed_at FROM articles a JOIN runs r USING (run_id)"
                   ).fetchall()
    dup_ids = con.sql("SELECT count(*) FROM (SELECT article_id FROM articles GROUP BY 1 HAVING count(*) > 1)"
                      ).fetchall()[0][0]
    runs = con.sql("SELECT count(*) FROM runs").fetchall()[0][0]
    committed_at: dict[str, datetime] = {}
    url_count: Counter[str] = Counter()
    for url, _aid, _source, at in rows:
        url_count[url] += 1
        committed_at.setdefault(url, at)
    base = base_url.rstrip("/")
    lat_visible, lat_commit = [], []
    per_feed: dict[str, list[float]] = defaultdict(list)
    lost = []
    for p in pubs:
        url = base + p.path
        if url not in committed_at:
            lost.append(p.to_dict(base))
            continue
        visible = reader.first_visible.get(url)
        if visible is not None:
            lat_visible.append((visible - p.appeared_at).total_seconds())
            per_feed[p.feed].append(lat_visible[-1])
        lat_commit.append((committed_at[url] - p.appeared_at).total_seconds())
    live_urls = {base + p.path for p in pubs}
    duplicated_urls = sorted(u for u, n in url_count.items() if n > 1)

    # Requests while the web published (the watcher's own boot excluded: nothing to poll before it runs).
    feed_paths = {f.path: f.name for f in web.feeds}
    in_window = [r for r in requests if window_start - timedelta(seconds=5) <= r.at <= window_end]
    feed_reqs = [r for r in in_window if r.path.split("?")[0] in feed_paths]
    page_reqs = [r for r in in_window if r.path.split("?")[0] not in feed_paths]
    window_s = (window_end - window_start).total_seconds() + 5
    baseline_interval = BASELINE_INTERVAL_S / speed
    baseline_feed = len(web.feeds) * (math.floor(window_s / baseline_interval) + 1)
    baseline_total = baseline_feed + len(page_reqs)  # the same pages and robots.txt, plus its feed polls
    polls_by_feed: dict[str, list[datetime]] = defaultdict(list)
    for r in sorted(feed_reqs, key=lambda r: r.at):
        polls_by_feed[feed_paths[r.path.split("?")[0]]].append(r.at)
    feeds = []
    patterns = {f.name: f.pattern for f in web.live_feeds}
    for f in web.feeds:
        times = polls_by_feed.get(f.name, [])
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        st = intervals.get(f.name, {})
        lat = per_feed.get(f.name, [])
        feeds.append({
            "feed": f.name, "pattern": patterns.get(f.name), "published": sum(1 for p in pubs if p.feed == f.name),
            "polls": len(times), "baseline_polls": math.floor(window_s / baseline_interval) + 1,
            "settled_interval_s": st.get("interval_s"), "last_gap_s": gaps[-1] if gaps else None,
            "reason": st.get("reason"), "p50_s": percentile(lat, 0.5), "p95_s": percentile(lat, 0.95),
        })
    idle = [f for f in feeds if f["pattern"] == "idle"]
    return {
        "published": len(pubs),
        "stored": sum(1 for u in live_urls if u in committed_at),
        "lost": len(lost), "lost_examples": lost[:5],
        "duplicated_urls": len(duplicated_urls), "duplicated_ids": int(dup_ids), "runs": int(runs),
        "latency_visible": {"n": len(lat_visible), "p50_s": percentile(lat_visible, 0.5),
                            "p95_s": percentile(lat_visible, 0.95), "max_s": max(lat_visible, default=None)},
        "latency_commit": {"n": len(lat_commit), "p50_s": percentile(lat_commit, 0.5),
                           "p95_s": percentile(lat_commit, 0.95), "max_s": max(lat_commit, default=None)},
        "requests": {"feed": len(feed_reqs), "pages_and_robots": len(page_reqs), "total": len(in_window),
                     "baseline_feed": baseline_feed, "baseline_total": baseline_total,
                     "feed_ratio": baseline_feed / max(1, len(feed_reqs)),
                     "total_ratio": baseline_total / max(1, len(in_window)),
                     "baseline_interval_s": baseline_interval, "window_s": window_s},
        "polling": {"min_interval_s": polling.min_interval_s, "max_interval_s": polling.max_interval_s},
        "idle_at_max": all(f["settled_interval_s"] == polling.max_interval_s for f in idle) and bool(idle),
        "feeds": feeds,
    }


def report(r: dict) -> str:
    lv, lc, rq = r["latency_visible"], r["latency_commit"], r["requests"]

    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    lines = [
        f"streaming benchmark: {r['minutes']:g} min of publishing at demo speed {r['speed']:g} (seed {r['seed']}), "
        f"settle {r['settle_s']:.0f} s, {r['kills']} SIGKILL restarts, watch exit {r['watch_exit']}",
        f"  articles    {r['published']} published, {r['stored']} stored, lost {r['lost']}, "
        f"duplicated {r['duplicated_urls']} (URLs) / {r['duplicated_ids']} (ids); {r['runs']} commits",
        f"  latency     feed -> queryable in DuckDB: p50 {s(lv['p50_s'])} s, p95 {s(lv['p95_s'])} s, max {s(lv['max_s'])} s "
        f"(n={lv['n']}, reader every {r.get('reader_interval', 0.5)} s)",
        f"              feed -> commit (manifest):   p50 {s(lc['p50_s'])} s, p95 {s(lc['p95_s'])} s, max {s(lc['max_s'])} s",
        f"  requests    feeds {rq['feed']} vs {rq['baseline_feed']} polling every feed every "
        f"{rq['baseline_interval_s']:g} s: {rq['feed_ratio']:.2f}x fewer",
        f"              all {rq['total']} (feeds + {rq['pages_and_robots']} pages/robots) vs {rq['baseline_total']}: "
        f"{rq['total_ratio']:.2f}x fewer",
        f"  polling     bounds {r['polling']['min_interval_s']:g}..{r['polling']['max_interval_s']:g} s; idle feeds at "
        f"the maximum: {r['idle_at_max']}",
        "",
        f"  {'feed':30s} {'pattern':8s} {'pub':>4s} {'polls':>5s} {'base':>5s} {'interval':>9s} {'last gap':>9s} "
        f"{'p50':>6s} {'p95':>6s}  reason",
    ]
    for f in r["feeds"]:
        lines.append(f"  {f['feed']:30s} {f['pattern'] or '':8s} {f['published']:4d} {f['polls']:5d} "
                     f"{f['baseline_polls']:5d} {s(f['settled_interval_s']):>9s} {s(f['last_gap_s']):>9s} "
                     f"{s(f['p50_s']):>6s} {s(f['p95_s']):>6s}  {f['reason'] or ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long the web publishes (wall-clock minutes)")
    ap.add_argument("--speed", type=float, default=1.0, help="compress the demo's clock (rates and intervals)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--reader-interval", type=float, default=0.5)
    ap.add_argument("--settle", type=float, help="seconds the watcher keeps running after publishing stops")
    ap.add_argument("--kill-every", type=float, metavar="S", help="SIGKILL and restart the watcher every S seconds")
    ap.add_argument("--workers", type=int, help="extraction processes of the watcher")
    ap.add_argument("--warehouse", type=Path, help="keep the warehouse here (default: a temporary directory)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    if args.warehouse:
        args.warehouse.parent.mkdir(parents=True, exist_ok=True)
    r = measure(args.minutes, args.speed, args.seed, args.warehouse, args.reader_interval, args.settle,
                args.kill_every, args.workers)
    r["reader_interval"] = args.reader_interval
    print(report(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
