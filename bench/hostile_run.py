"""Benchmark: `newsingest run` over every hostile case, as a publisher's server and an operator see it.

    python bench/hostile_run.py [--shared /work/shared/feeds/hostile_server.py] [--out DIR]

For the project's hostile server (pipeline/testing/hostile.py, several loopback hosts) and, when present,
the reference server ../shared/feeds/hostile_server.py, this starts the server as its own process, runs
`newsingest run` twice as a child process (a socket-connect audit hook in its environment), and prints:

* wall time, peak RSS of the run (ru_maxrss of the child; and the peak *sum* over the child and its
  extraction workers, sampled from /proc), against a baseline measured in the same invocation: a run
  over benign feeds of the same server, and a naive aiohttp download of the gzip bomb;
* requests per second per host as the server logged them, smallest gap, peak in flight;
* the outcome table (fetch_log) and, for the project server, each case against its expectation;
* the second run: conditional requests sent, 304s received, rows added;
* connections the run opened, and how many went to an address the URL policy refuses (must be 0).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from pipeline.testing.harness import (
    free_port,
    query,
    run_newsingest,
    shared_server_records,
    wait_until_serving,
)
from pipeline.testing.hostile import REFERENCE_FETCH, politeness

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("NEWSINGEST_SHARED") or ROOT.parent / "shared") / "feeds" / "hostile_server.py"


def refused(connections: list[dict]) -> list[dict]:
    from pipeline.fetch.policy import UrlPolicy

    policy = UrlPolicy(REFERENCE_FETCH["allow_private"])
    return [c for c in connections if not policy.address_allowed(ipaddress.ip_address(c["host"]))]


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c) for c in columns}
    print("  " + "  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  " + "  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def print_run(label: str, stats, warehouse: Path) -> None:
    print(f"\n{label}: exit {stats.rc}, wall {stats.wall_s:.1f} s, peak RSS {stats.max_rss_mb:.0f} MB "
          f"(largest process), {stats.tree_peak_mb:.0f} MB (sum over the process tree)")
    s = stats.summary or {}
    print(f"  feeds {s.get('feeds')} ({s.get('feeds_ok')} ok, {s.get('feeds_not_modified')} not modified, "
          f"{s.get('feeds_failed')} failed); pages {s.get('pages_fetched')} fetched, {s.get('pages_failed')} failed; "
          f"rows written {s.get('articles_written')}")
    conns = stats.connections
    by_addr = Counter(f"{c['host']}:{c['port']}" for c in conns)
    print(f"  connections opened: {len(conns)} to {len(by_addr)} addresses; to refused addresses: {len(refused(conns))}")


def politeness_rows(records: list[dict], settings: dict) -> list[dict]:
    rows = []
    for host, row in politeness(records).items():
        rows.append({"host": host, "requests": row["requests"], "span_s": row["span_s"],
                     "req_per_s": row["requests_per_s"], "min_gap_s": row["min_gap_s"],
                     "max_in_1s": row["max_in_window"], "max_in_flight": row["max_in_flight"]})
    return rows


def outcome_summary(warehouse: Path, run_id: str) -> list[dict]:
    return query(warehouse, f"SELECT kind, outcome, count(*) AS n, max(elapsed_ms) AS max_elapsed_ms "
                            f"FROM fetch_log WHERE run_id = '{run_id}' GROUP BY ALL ORDER BY kind, outcome")


def naive_baseline(url: str) -> dict:
    """Peak RSS of a plain aiohttp `get(url)` and `.text()` in a fresh process (what the limits protect us
    from: aiohttp inflates the body whole by default)."""
    code = ("import aiohttp, asyncio, resource, sys\n"
            "async def get(url):\n"
            "    async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(60)) as r:\n"
            "        return len(await r.text())\n"
            "try:\n    n = asyncio.run(get(sys.argv[1]))\nexcept Exception as e:\n    n = repr(e).replace(' ', '_')\n"
            "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=300)
    size, rss = out.stdout.split()[-2:] if out.stdout.strip() else ("?", "?")
    return {"chars": size, "peak_rss_mb": rss, "wall_s": round(time.monotonic() - t0, 1)}


# ------------------------------------------------------------------------------------------ project server


def bench_project(out: Path) -> None:
    print("=" * 100)
    print("Project hostile server (pipeline/testing/hostile.py)")
    log = out / "project-server.jsonl"
    config = out / "project.yaml"
    server = subprocess.Popen([sys.executable, "-m", "pipeline.testing.hostile", "--seconds", "1800", "--log", str(log),
                               "--write-config", str(config), "--feed-period", "5"],
                              stdout=subprocess.PIPE, text=True)
    try:
        hosts = json.loads(server.stdout.readline())["hosts"]
        main = hosts["main"]
        print(f"hosts: {hosts}")
        cases = json.loads(_get(main + "/cases.json"))

        # Baseline, same invocation: benign feeds of the same server (controls, JSON Feed, sitemap).
        benign = yaml.safe_load(config.read_text())
        benign["feeds"] = [f for f in benign["feeds"] if f["name"] in ("hostile-jsonfeed", "hostile-news-sitemap",
                                                                        "hostile-gzip-encoded", "hostile-dupes")]
        benign["feeds"].append({"name": "benign-controls",
                                "url": main + "/feed/select.xml?case=good&case=tracking-params&case=redirect-chain-3"})
        (out / "benign.yaml").write_text(yaml.safe_dump(benign))
        base = run_newsingest(["run", "--all", "--config", str(out / "benign.yaml"), "--warehouse", str(out / "wh-benign"),
                               "--quiet", "--json"], out / "benign")
        print_run("baseline: benign feeds of the same server", base, out / "wh-benign")

        mark = _log_lines(log)
        first = run_newsingest(["run", "--all", "--config", str(config), "--warehouse", str(out / "wh"), "--quiet", "--json"],
                               out / "run1")
        mark2 = _log_lines(log)
        second = run_newsingest(["run", "--all", "--config", str(config), "--warehouse", str(out / "wh"), "--quiet", "--json"],
                                out / "run2")
        records = _project_records(log)  # before the naive baseline below adds its own request
        run1_records, run2_records = records[mark:mark2], records[mark2:]
        print_run("run 1: every hostile case", first, out / "wh")
        print(f"  ratio to baseline: wall x{first.wall_s / base.wall_s:.2f}, peak RSS x{first.max_rss_mb / base.max_rss_mb:.2f}"
              f" (largest process), x{first.tree_peak_mb / base.tree_peak_mb:.2f} (process tree)")
        naive = naive_baseline(main + "/size/gzip-bomb")
        print(f"  naive aiohttp get(/size/gzip-bomb).text() in a fresh process: {naive['chars']} chars, "
              f"peak RSS {naive['peak_rss_mb']} MB, {naive['wall_s']} s (the run above fetched it too)")
        print(f"  load average during the bench: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("\n  requests per host as the server logged them (run 1):")
        print_table(politeness_rows(run1_records, REFERENCE_FETCH),
                    ["host", "requests", "span_s", "req_per_s", "min_gap_s", "max_in_1s", "max_in_flight"])
        agents = Counter(r["user_agent"] for r in run1_records + run2_records)
        print(f"  User-Agent on every request: {dict(agents)}")

        run1 = first.summary["run_id"]
        print("\n  fetch_log outcomes (run 1):")
        print_table(outcome_summary(out / "wh", run1), ["kind", "outcome", "n", "max_elapsed_ms"])
        log_rows = query(out / "wh", f"SELECT * FROM fetch_log WHERE run_id = '{run1}'")
        by_url = {(r["kind"], r["url"]): r for r in log_rows}
        articles = {r["url"]: r for r in query(out / "wh", "SELECT url, extraction_status FROM articles") if r["url"]}
        table, bad = [], 0
        for c in cases:
            row = by_url.get((c["kind"], c["url"]), {})
            ok = (row.get("outcome") == c["outcome"] and row.get("http_status") == c["http_status"]
                  and (not c["error"] or re.search(c["error"], row.get("error") or "", re.I)))
            art = articles.get(c["url"], {}).get("extraction_status", "pending" if c["kind"] == "page" else "")
            ok = ok and (c["kind"] != "page" or art == c["article"])
            bad += not ok
            table.append({"case": c["name"], "kind": c["kind"], "expected": c["outcome"], "outcome": row.get("outcome"),
                          "status": row.get("http_status") or "", "ms": row.get("elapsed_ms"), "article": art,
                          "ok": "yes" if ok else "NO", "error": (row.get("error") or "")[:70]})
        print(f"\n  every case (run 1): {len(cases) - bad}/{len(cases)} as expected")
        print_table(table, ["case", "kind", "expected", "outcome", "status", "ms", "article", "ok", "error"])
        deadline_ms = REFERENCE_FETCH["deadline_s"] * 1000
        worst = max(log_rows, key=lambda r: r["elapsed_ms"] - max(1, r["attempts"]) * deadline_ms)
        print(f"  deadline {deadline_ms} ms per request: the largest elapsed_ms - attempts x deadline is "
              f"{worst['elapsed_ms'] - max(1, worst['attempts']) * deadline_ms} ms ({worst['url']}, "
              f"{worst['attempts']} request(s), {worst['elapsed_ms']} ms)")

        print_run("run 2: the same config again", second, out / "wh")
        conditional = [r for r in run2_records if r.get("if_none_match") or r.get("if_modified_since")]
        print(f"  conditional requests sent: {len(conditional)} "
              f"({', '.join(sorted({r['path'] for r in conditional}))}); "
              f"304 received: {sum(1 for r in run2_records if r.get('status') == 304)}")
        dup = query(out / "wh", "SELECT count(*) - count(DISTINCT article_id) AS d FROM articles")[0]["d"]
        print(f"  article rows added by run 2: {second.summary['articles_written']} (feed changes since run 1: "
              f"/feed/changing.xml publishes every 5 s); duplicate article ids in the warehouse: {dup}")
        print(f"  requests in run 2 per host: {dict(Counter(r['host'] for r in run2_records))}")
        print("\n  fetch_log outcomes (run 2):")
        print_table(outcome_summary(out / "wh", second.summary["run_id"]), ["kind", "outcome", "n", "max_elapsed_ms"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - loopback
        return resp.read()


def _log_lines(log: Path) -> int:
    return len(_project_records(log))


def _project_records(log: Path) -> list[dict]:
    """One record per request from the project server's JSONL log (the `done` event has it complete)."""
    started: dict[tuple, dict] = {}
    order: list[tuple] = []
    for line in log.read_text(encoding="utf-8").splitlines():
        ev = json.loads(line)
        if ev.get("event") not in ("request", "done"):
            continue
        key = (ev["host"], ev["port"], ev["path"], ev["started"])
        if key not in started:
            order.append(key)
        started[key] = ev
    return [started[k] for k in order]


# ------------------------------------------------------------------------------------------ shared server


def bench_shared(path: Path, out: Path) -> None:
    print("\n" + "=" * 100)
    print(f"Reference hostile server ({path})")
    port = free_port()
    log = out / "shared-server.jsonl"
    server = subprocess.Popen([sys.executable, str(path), str(port), "1800", str(log)], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base + "/cases.json")
        t0 = time.monotonic()
        _get_head(base + "/gzip-bomb")  # the server builds its 512 MB bomb once; not our time
        print(f"server ready (bomb built in {time.monotonic() - t0:.1f} s)")
        feeds = [("shared-index", "/feed.xml"), ("shared-changing", "/changing-feed.xml"),
                 ("shared-volatile", "/volatile-feed.xml"), ("shared-dupes", "/dupes-feed.xml"),
                 ("shared-bad-links", "/feed-bad-links.xml"), ("shared-huge", "/huge-feed.xml"),
                 ("shared-html-instead", "/html-instead-of-feed.xml")]
        config = {"feeds": [{"name": n, "url": base + p, **({"max_items": 20} if "huge" in n else {})} for n, p in feeds],
                  "fetch": REFERENCE_FETCH}
        cfg = out / "shared.yaml"
        cfg.write_text(yaml.safe_dump(config))
        first = run_newsingest(["run", "--all", "--config", str(cfg), "--warehouse", str(out / "wh-shared"), "--quiet", "--json"],
                               out / "shared1")
        n1 = len(shared_server_records(log, port))
        second = run_newsingest(["run", "--all", "--config", str(cfg), "--warehouse", str(out / "wh-shared"), "--quiet",
                                 "--json"], out / "shared2")
        records = shared_server_records(log, port)
        print_run("run 1", first, out / "wh-shared")
        print("\n  requests as the server logged them (run 1):")
        print_table(politeness_rows(records[:n1], REFERENCE_FETCH),
                    ["host", "requests", "span_s", "req_per_s", "min_gap_s", "max_in_1s", "max_in_flight"])
        run1 = first.summary["run_id"]
        print("\n  fetch_log outcomes (run 1):")
        print_table(outcome_summary(out / "wh-shared", run1), ["kind", "outcome", "n", "max_elapsed_ms"])
        cases = json.loads(_get(base + "/cases.json"))
        rows = {r["url"]: r for r in query(out / "wh-shared",
                                           f"SELECT * FROM fetch_log WHERE run_id = '{run1}' AND kind = 'page'")}
        table = []
        for c in cases:
            r = rows.get(base + c["path"], {})
            table.append({"path": c["path"], "outcome": r.get("outcome", "(no row)"), "status": r.get("http_status") or "",
                          "ms": r.get("elapsed_ms"), "error": (r.get("error") or "")[:80]})
        print(f"\n  every case of /cases.json (run 1): {sum(1 for t in table if t['outcome'] != '(no row)')}/"
              f"{len(cases)} with an outcome")
        print_table(table, ["path", "outcome", "status", "ms", "error"])
        print("\n  every case through the client directly (the run above defers this one host after its 429;"
              " here /status/429 and /status/503 each get a Fetcher of their own):")
        print_table(_client_cases(base, cases), ["path", "outcome", "status", "ms", "charset", "error"])
        print_run("run 2", second, out / "wh-shared")
        later = records[n1:]
        conditional = [r for r in later if r.get("if_none_match") or r.get("if_modified_since")]
        print(f"  conditional requests sent: {len(conditional)} ({', '.join(sorted({r['path'] for r in conditional}))}); "
              f"304 received: {sum(1 for r in later if r.get('status') == 304)}; rows added: "
              f"{second.summary['articles_written']}")
        print(f"  requests in run 2: {dict(Counter(r['path'] for r in later))} (the host's 429 asked for 120 s)")
        # Conditional GET against this server: its changing feed alone, fresh warehouse, two runs.
        cfg2 = out / "shared-changing.yaml"
        cfg2.write_text(yaml.safe_dump({"feeds": [{"name": "changing", "url": base + "/changing-feed.xml"}],
                                        "fetch": REFERENCE_FETCH}))
        n2 = len(shared_server_records(log, port))
        for k in (1, 2):
            run_newsingest(["run", "--all", "--config", str(cfg2), "--warehouse", str(out / "wh-shared-changing"), "--quiet",
                            "--json"], out / f"shared-changing{k}")
        polls = [r for r in shared_server_records(log, port)[n2:] if r["path"] == "/changing-feed.xml"]
        print("  /changing-feed.xml alone, two runs: " + "; ".join(
            f"poll {k}: If-None-Match {r['if_none_match']!r}, If-Modified-Since {r['if_modified_since']!r} "
            f"-> {r['status']}" for k, r in enumerate(polls, 1)))
        dup = query(out / "wh-shared-changing", "SELECT count(*) AS n, count(DISTINCT article_id) AS d FROM articles")[0]
        print(f"  articles {dup['n']}, distinct {dup['d']}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _client_cases(base: str, cases: list[dict]) -> list[dict]:
    import asyncio

    from pipeline.fetch.client import Fetcher
    from pipeline.settings import FetchSettings

    settings = FetchSettings(**REFERENCE_FETCH)

    async def fetch(paths: list[str]):
        async with Fetcher(settings) as f:
            kinds = ["feed" if p.endswith(".xml") and "huge" not in p else "page" for p in paths]
            return await asyncio.gather(*(f.fetch(base + p, k) for p, k in zip(paths, kinds, strict=True)))

    paths = [c["path"] for c in cases]
    rest = [p for p in paths if p not in ("/status/429", "/status/503")]
    results = dict(zip(rest, asyncio.run(fetch(rest)), strict=True))
    for p in ("/status/429", "/status/503"):
        results[p] = asyncio.run(fetch([p]))[0]
    return [{"path": p, "outcome": results[p].outcome, "status": results[p].http_status or "",
             "ms": results[p].elapsed_ms, "charset": (results[p].charset or "") + (" (mismatch)" if
             results[p].charset_mismatch else ""), "error": (results[p].error or "")[:70]} for p in paths]


def _get_head(url: str) -> None:
    import urllib.request

    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310 - loopback
        resp.read()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="path of the reference hostile_server.py")
    ap.add_argument("--out", type=Path, help="keep warehouses and logs here (default: a temporary directory)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="newsingest-hostile-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {out}")
    bench_project(out)
    if args.shared.exists():
        bench_shared(args.shared, out)
    else:
        print(f"\n(reference server {args.shared} not present: skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
