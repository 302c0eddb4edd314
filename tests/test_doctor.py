"""`newsingest doctor` on the demo warehouse, on a known history, on nothing, and on leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from test_report_synthetic import build_history

from pipeline.doctor import format_text, gather
from pipeline.schema import SCHEMA_VERSION


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "doctor", *args], capture_output=True, text=True,
                          env={**os.environ, "NEWSINGEST_LOG_FORMAT": "text"}, timeout=120)


def test_doctor_on_the_demo_warehouse(demo_warehouse: Path):
    proc = doctor("--warehouse", str(demo_warehouse), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    v = report["versions"]
    assert v["python"] == ".".join(map(str, sys.version_info[:3]))
    assert v["duckdb"] == metadata.version("duckdb") and v["trafilatura"] == metadata.version("trafilatura")
    assert set(v) >= {"newsingest", "feedparser", "pyarrow", "apache-airflow"}
    wh = report["warehouse"]
    assert wh["exists"] and wh["runs"] == 2 and wh["lock_holder"] is None
    articles = wh["datasets"]["articles"]
    assert articles["files"] == len(list((demo_warehouse / "articles").glob("*/*.parquet"))) > 0
    assert articles["uncommitted_files"] == 0 and wh["size_bytes"] > articles["bytes"]
    n = sum(report["schema_version"]["data"].values())
    assert report["schema_version"] == {"code": SCHEMA_VERSION, "data": {SCHEMA_VERSION: n}} and n >= 40
    runs = report["runs"]
    assert [r["trigger"] for r in runs] == ["test", "demo"]  # newest first
    assert runs[0]["feeds_failed"] == 1 and runs[1]["articles_written"] == n
    # The demo's 404 page waits for its retry; the extra feed of the second run fails since minutes.
    assert report["pending_retries"]["count"] == 1
    assert report["pending_retries"]["sample"][0]["last_error"] == "HTTP 404 Not Found"
    (failing,) = report["failing_feeds"]
    assert failing["feed"] == "retired-outlet" and not failing["over_a_day"]
    assert report["attention"] == []


def test_doctor_text_flags_feeds_failing_for_more_than_a_day(tmp_path: Path):
    root = tmp_path / "wh"
    build_history(root, datetime.now(UTC))
    text = format_text(gather(root))
    assert "failing feeds: 3" in text
    assert "[warning] 2 feed(s) failing for more than a day: never-worked (error), broken-long (http_error); " \
           "open their URLs, then fix or disable them in the config" in text
    assert doctor("--warehouse", str(root)).returncode == 0
    assert doctor("--warehouse", str(root), "--strict").returncode == 1  # for monitoring


def test_doctor_without_a_warehouse(tmp_path: Path):
    proc = doctor("--warehouse", str(tmp_path / "none"))
    assert proc.returncode == 0  # versions are still worth printing
    assert "(does not exist)" in proc.stdout and "[warning] no warehouse at" in proc.stdout
    assert doctor("--warehouse", str(tmp_path / "none"), "--strict").returncode == 1


def test_doctor_checks_the_config_too(tmp_path: Path):
    (tmp_path / "feeds.yaml").write_text("feeds:\n  - name: a\n    url: ftp://x\n", encoding="utf-8")
    proc = doctor("--warehouse", str(tmp_path / "none"), "--config", str(tmp_path / "feeds.yaml"))
    assert proc.returncode == 1
    assert f"{tmp_path / 'feeds.yaml'}:3:10: feeds[0].url: feed url 'ftp://x' must be an absolute http(s) URL" in proc.stdout


def test_doctor_reports_leftovers_of_a_crashed_run(tmp_path: Path):
    root = tmp_path / "wh"
    build_history(root, datetime.now(UTC))
    part = next((root / "articles").glob("*/part-r1-0.parquet"))
    (part.parent / "part-crashed123-0.parquet").write_bytes(part.read_bytes())  # a run that never committed
    report = gather(root)
    assert report["warehouse"]["datasets"]["articles"]["uncommitted_files"] == 1
    assert any("1 data files belong to runs that never committed" in a["message"] for a in report["attention"])


def test_doctor_on_a_file_instead_of_a_warehouse(tmp_path: Path):
    (tmp_path / "wh").write_text("x")
    proc = doctor("--warehouse", str(tmp_path / "wh"))
    assert proc.returncode == 1 and "is a file, not a warehouse directory" in proc.stdout
