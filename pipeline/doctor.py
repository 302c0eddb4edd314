"""`newsingest doctor`: what an operator checks first, in one command.

Versions of the parts that matter, the warehouse (path, size, files per dataset, leftovers of crashed
runs), the writer lock and who holds it, the schema version of the code and of the data, the last runs
with their counts, pending page retries, and failing feeds; then a short list of what needs attention.
`--json` prints the same as one JSON object (for monitoring).
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTIONS = ("trafilatura", "feedparser", "pyarrow", "duckdb", "pydantic", "aiohttp", "apache-airflow")
DATASETS = ("articles", "fetch_log", "raw_pages", "dedup_index")


def versions() -> dict[str, str | None]:
    from pipeline import __version__

    out: dict[str, str | None] = {"python": platform.python_version(), "newsingest": __version__}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None  # not installed (Airflow is optional)
    return out


def _dataset_stats(root: Path, name: str, known: set[str]) -> dict[str, Any]:
    """Files on disk per dataset; `uncommitted_files` are those no commit-log entry lists (a crashed
    writer's leftovers, removed by the next writer or `vacuum`)."""
    base = root / name
    files = list(base.rglob("*.parquet")) if base.is_dir() else []
    partitions = {p.parent for p in files if p.parent != base}
    uncommitted = [p for p in files if p.relative_to(root).as_posix() not in known]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files), "partitions": len(partitions),
            "uncommitted_files": len(uncommitted)}


def warehouse_info(root: Path) -> dict[str, Any]:
    from pipeline.warehouse import DB_FILE, Warehouse

    info: dict[str, Any] = {"path": str(root), "exists": root.is_dir()}
    if not root.is_dir():
        return info
    wh = Warehouse(root, create=False)
    snap = wh.snapshot()
    runs = snap.runs
    known = set(snap.files) | set(snap.retired)  # live files, and retired ones awaiting vacuum
    info["datasets"] = {name: _dataset_stats(root, name, known) for name in DATASETS}
    info["size_bytes"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    staging = root / "_staging"
    info["staging_runs"] = sorted(p.name for p in staging.iterdir() if p.is_dir()) if staging.is_dir() else []
    db = root / DB_FILE
    info["views_file"] = str(db) if db.exists() else None
    try:
        info["lock_holder"] = wh.lock_holder()
    except OSError as exc:
        info["lock_holder"] = None
        info["lock_error"] = f"cannot inspect {root / '_lock'}: {exc.strerror}"
    info["runs"] = len(runs)
    return info


def last_runs(root: Path, n: int) -> list[dict[str, Any]]:
    from pipeline.warehouse import Warehouse

    out = []
    for r in reversed(Warehouse(root, create=False).committed_runs()[-n:]):
        c = r.get("counts", {})
        out.append({"run_id": r.get("run_id"), "committed_at": r.get("committed_at"), "trigger": r.get("trigger"),
                    "feeds": c.get("feeds"), "feeds_failed": c.get("feeds_failed"),
                    "articles_written": c.get("articles_written"), "duplicates": c.get("duplicates"),
                    "pages_failed": c.get("pages_failed"), "retries_pending": c.get("retries_pending")})
    return out


def pending_retries(state: dict[str, Any]) -> dict[str, Any]:
    pending = state.get("pending", {})
    by_outcome: dict[str, int] = {}
    due = []
    for p in pending.values():
        by_outcome[p.get("last_outcome") or "unknown"] = by_outcome.get(p.get("last_outcome") or "unknown", 0) + 1
        if p.get("next_attempt_at"):
            due.append(p["next_attempt_at"])
    sample = [{"url": (p.get("item") or {}).get("url"), "attempts": p.get("attempts"), "last_outcome": p.get("last_outcome"),
               "last_error": p.get("last_error"), "next_attempt_at": p.get("next_attempt_at")}
              for p in sorted(pending.values(), key=lambda p: p.get("next_attempt_at") or "")[:5]]
    return {"count": len(pending), "by_last_outcome": by_outcome, "next_due": min(due) if due else None,
            "sample": sample}


def gather(warehouse: str | Path, *, runs: int = 5, now: datetime | None = None,
           config: str | None = None) -> dict[str, Any]:
    """Everything `doctor` shows, as plain JSON-able values, plus `attention`: [(severity, message)]."""
    from pipeline.schema import SCHEMA_VERSION
    from pipeline.warehouse import WarehouseError

    now = now or datetime.now(UTC)
    root = Path(warehouse).expanduser().absolute()
    report: dict[str, Any] = {"versions": versions(), "schema_version": {"code": SCHEMA_VERSION, "data": {}}}
    attention: list[dict[str, str]] = []

    def need(severity: str, message: str) -> None:
        attention.append({"severity": severity, "message": message})

    if config:
        from pipeline.configcheck import check_config_file

        result = check_config_file(config)
        report["config"] = {"path": config, "errors": len(result.errors), "warnings": len(result.warnings),
                            "problems": [p.format(result.origin) for p in result.problems]}
        if result.errors:
            need("error", f"config {config} has {len(result.errors)} error(s): run `newsingest check-config {config}`")

    if root.exists() and not root.is_dir():
        report["warehouse"] = {"path": str(root), "exists": False}
        need("error", f"{root} is a file, not a warehouse directory")
        report["attention"] = attention
        return report
    try:
        info = warehouse_info(root)
    except (OSError, WarehouseError) as exc:
        report["warehouse"] = {"path": str(root), "exists": True, "error": str(exc)}
        need("error", f"cannot read the warehouse {root}: {exc}; check its permissions")
        report["attention"] = attention
        return report
    report["warehouse"] = info
    if not info["exists"]:
        need("warning", f"no warehouse at {root} yet: `newsingest run --config FILE --warehouse {root}` creates it")
        report["attention"] = attention
        return report
    if info.get("lock_error"):
        need("error", info["lock_error"])
    if info.get("lock_holder"):
        need("info", f"a writer holds the lock: {info['lock_holder']}")
    leftovers = sum(d["uncommitted_files"] for d in info["datasets"].values())
    if leftovers and not info.get("lock_holder"):
        need("warning", f"{leftovers} data files belong to runs that never committed (crashed runs); they are "
                        "invisible to readers and the next run deletes them")
    if info["runs"] == 0:
        need("warning", "no committed run yet")

    from pipeline.warehouse import Warehouse

    wh = Warehouse(root, create=False)
    report["runs"] = last_runs(root, runs)
    try:
        state = wh.load_state()
    except WarehouseError as exc:
        state = {"feeds": {}, "pending": {}}
        need("error", str(exc))
    report["pending_retries"] = pending_retries(state)

    failing: list[dict[str, Any]] = []
    if info["runs"]:
        from pipeline.report import failing_feeds
        from pipeline.views import connect

        con = connect(root)
        try:
            for row in con.execute("SELECT schema_version, count(*) FROM articles GROUP BY 1 ORDER BY 1").fetchall():
                report["schema_version"]["data"][row[0]] = row[1]
            failing = failing_feeds(con, now)
        finally:
            con.close()
    major = SCHEMA_VERSION.split(".")[0]
    foreign = [v for v in report["schema_version"]["data"] if v.split(".")[0] != major]
    if foreign:
        need("error", f"articles written with schema {', '.join(foreign)} differ in major version from the code's "
                      f"{SCHEMA_VERSION}: see schemas/CHANGELOG.md for the migration")
    report["failing_feeds"] = [
        {"feed": f["source"], "url": f["url"], "failing_since": f["failing_since"].isoformat(),
         "failing_for_h": round(f["failing_for_s"] / 3600, 1), "failed_attempts": f["failed_attempts"],
         "last_outcome": f["last_outcome"], "last_error": f["last_error"], "over_a_day": f["over_a_day"]}
        for f in failing]
    over = [f for f in report["failing_feeds"] if f["over_a_day"]]
    if over:
        need("warning", f"{len(over)} feed(s) failing for more than a day: "
                        + ", ".join(f"{f['feed']} ({f['last_outcome']})" for f in over)
                        + "; open their URLs, then fix or disable them in the config")
    report["attention"] = attention
    return report


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def format_text(report: dict[str, Any]) -> str:
    lines: list[str] = []
    v = report["versions"]
    lines.append("versions")
    for name, version in v.items():
        lines.append(f"  {name:<16}{version or 'not installed'}")
    if "config" in report:
        c = report["config"]
        lines.append(f"config {c['path']}: {c['errors']} errors, {c['warnings']} warnings")
        lines.extend(f"  {p}" for p in c["problems"])
    wh = report["warehouse"]
    lines.append(f"warehouse {wh['path']}")
    if not wh.get("exists"):
        lines.append("  (does not exist)")
    elif "error" in wh:
        lines.append(f"  unreadable: {wh['error']}")
    else:
        lines.append(f"  size            {_size(wh['size_bytes'])}, {wh['runs']} committed runs")
        for name, d in wh["datasets"].items():
            extra = f", {d['uncommitted_files']} uncommitted" if d["uncommitted_files"] else ""
            lines.append(f"  {name:<16}{d['files']} files in {d['partitions']} partitions, {_size(d['bytes'])}{extra}")
        lines.append(f"  lock            {'held by ' + wh['lock_holder'] if wh.get('lock_holder') else 'free'}")
        if wh.get("staging_runs"):
            lines.append(f"  staging         {', '.join(wh['staging_runs'])}")
        lines.append(f"  views file      {wh.get('views_file') or 'none yet'}")
        sv = report["schema_version"]
        data = ", ".join(f"{k} ({n} rows)" for k, n in sv["data"].items()) or "no articles yet"
        lines.append(f"  schema          code {sv['code']}; data {data}")
    if report.get("runs"):
        lines.append(f"last {len(report['runs'])} runs")
        for r in report["runs"]:
            lines.append(f"  {r['run_id']}  {(r['committed_at'] or '')[:19]}  {r['trigger'] or '':<8} "
                         f"feeds {r['feeds']} ({r['feeds_failed']} failed), articles {r['articles_written']}, "
                         f"duplicates {r['duplicates']}, pages failed {r['pages_failed']}")
    if "pending_retries" in report:
        p = report["pending_retries"]
        outcomes = ", ".join(f"{k} {n}" for k, n in sorted(p["by_last_outcome"].items()))
        lines.append(f"pending page retries: {p['count']}" + (f" ({outcomes}); next due {p['next_due']}" if p["count"] else ""))
        for s in p["sample"]:
            lines.append(f"  {s['url']}  attempt {s['attempts']}, {s['last_outcome']}: {s['last_error']}")
    if "failing_feeds" in report:
        lines.append(f"failing feeds: {len(report['failing_feeds'])}")
        for f in report["failing_feeds"]:
            lines.append(f"  {f['feed']} ({f['url']}): {f['last_outcome']} since {f['failing_since'][:19]} "
                         f"({f['failing_for_h']} h, {f['failed_attempts']} attempts): {f['last_error']}")
    if report["attention"]:
        lines.append("attention")
        lines.extend(f"  [{a['severity']}] {a['message']}" for a in report["attention"])
    else:
        lines.append("attention: nothing")
    return "\n".join(lines) + "\n"


def cmd_doctor(args: argparse.Namespace) -> int:
    report = gather(args.warehouse, runs=args.runs, config=args.config)
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(format_text(report), end="")
    if any(a["severity"] == "error" for a in report["attention"]):
        return 1
    if args.strict and any(a["severity"] == "warning" for a in report["attention"]):
        return 1
    return 0


def register(subparsers: Any) -> None:
    from pipeline.settings import default_warehouse

    sp = subparsers.add_parser("doctor", help="versions, warehouse state, lock, last runs, retries, failing feeds",
                               description="Report versions, warehouse size and files, the lock holder, schema "
                               "versions, the last runs, pending retries and failing feeds. Exit 1 when something is "
                               "broken (unreadable warehouse, invalid --config, foreign schema); with --strict also "
                               "on warnings (feeds failing for more than a day, crashed-run leftovers).")
    sp.add_argument("--warehouse", default=default_warehouse(),
                    help="warehouse directory (default: $NEWSINGEST_WAREHOUSE or ./warehouse)")
    sp.add_argument("--config", help="also validate this config file")
    sp.add_argument("--runs", type=int, default=5, help="how many recent runs to list (default 5)")
    sp.add_argument("--json", action="store_true", help="one JSON object")
    sp.add_argument("--strict", action="store_true", help="exit 1 on warnings too (for monitoring)")
    sp.set_defaults(func=cmd_doctor)
