"""kill -9 at chosen points: the warehouse stays readable and consistent, and the next run completes the
work with exactly one row per article. Runs are real `newsingest` processes ingesting the demo web on
loopback; `NEWSINGEST_CRASH_AT` makes the process SIGKILL itself at a named point (pipeline.warehouse)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.demo import DemoServer, DemoWeb
from pipeline.views import connect
from pipeline.warehouse import DATASETS, Warehouse

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    web = DemoWeb(seed=11, now=NOW)
    with DemoServer(web) as server:
        cfg = tmp_path_factory.mktemp("crash") / "demo.yaml"
        # One extraction process: a killed run must not leave pool workers behind.
        cfg.write_text(web.config_yaml(server.base_url) + "extract:\n  workers: 1\n", encoding="utf-8")
        yield web, server, cfg


def run_cli(cfg: Path, wh: Path, crash: str | None = None, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEWSINGEST_CRASH_AT": crash or ""}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", str(cfg), "--warehouse", str(wh),
                           "-q", "--json", *extra], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def reference(demo, tmp_path_factory):
    """A run that nobody killed: the article ids every recovered warehouse must end up with."""
    _web, _server, cfg = demo
    wh = tmp_path_factory.mktemp("ref") / "warehouse"
    res = run_cli(cfg, wh)
    assert res.returncode == 0, res.stderr
    ids = {r[0] for r in connect(wh).sql("SELECT article_id FROM articles").fetchall()}
    assert len(ids) >= 40
    return ids


def assert_consistent(wh: Path) -> set[str]:
    """Readable, one row per article, nothing of an uncommitted run, per-run counts that add up."""
    con = connect(wh)
    n, distinct = con.sql("SELECT count(*), count(DISTINCT article_id) FROM articles").fetchall()[0]
    assert n == distinct, "an article is visible twice"
    stray = con.sql("SELECT count(*) FROM articles WHERE run_id NOT IN (SELECT run_id FROM runs)").fetchall()[0][0]
    assert stray == 0, "rows of an uncommitted run are visible"
    stray = con.sql("SELECT count(*) FROM fetch_log WHERE run_id NOT IN (SELECT run_id FROM runs)").fetchall()[0][0]
    assert stray == 0
    per_run = con.sql("SELECT r.run_id, r.counts['articles_written'], count(a.article_id) FROM runs r "
                      "LEFT JOIN articles a USING (run_id) GROUP BY ALL").fetchall()
    assert all(expected == found for _, expected, found in per_run), per_run
    # The DuckDB file's views agree with a fresh connection.
    if (wh / "newsingest.duckdb").exists():
        import duckdb

        db = duckdb.connect(str(wh / "newsingest.duckdb"), read_only=True)
        assert db.sql("SELECT count(*) FROM articles").fetchall()[0][0] == n
        db.close()
    return {r[0] for r in con.sql("SELECT article_id FROM articles").fetchall()}


def assert_no_leftovers(wh: Path) -> None:
    snap = Warehouse(wh).snapshot()
    known = set(snap.files) | set(snap.retired)
    on_disk = {str(p.relative_to(wh)) for d in DATASETS if (wh / d).is_dir() for p in (wh / d).rglob("*") if p.is_file()}
    assert on_disk <= known, f"files no commit lists: {sorted(on_disk - known)[:5]}"
    assert not list((wh / "_txn").glob("*")) if (wh / "_txn").is_dir() else True


# fetch@5: in the middle of fetching pages; write@N: after N data files of the commit; before_commit: all
# files and the state written, the log entry not; after_commit: committed, views not refreshed, staging left.
POINTS = ["fetch@5", "write@3", "before_commit", "after_commit"]


@pytest.mark.parametrize("point", POINTS)
def test_killed_run_leaves_a_consistent_warehouse_and_the_next_run_completes(point, demo, reference, tmp_path):
    _web, _server, cfg = demo
    wh = tmp_path / "warehouse"
    res = run_cli(cfg, wh, crash=point)
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr[-2000:])
    after_crash = assert_consistent(wh)
    assert after_crash == (reference if point == "after_commit" else set()), "half a run is visible"

    res = run_cli(cfg, wh)
    assert res.returncode == 0, res.stderr
    assert assert_consistent(wh) == reference  # every article, each exactly once
    assert_no_leftovers(wh)
    summary = json.loads(res.stdout)
    assert summary["articles_written"] == (0 if point == "after_commit" else len(reference))


def test_killed_twice_then_completed(demo, reference, tmp_path):
    _web, _server, cfg = demo
    wh = tmp_path / "warehouse"
    for point in ("write@2", "before_commit"):
        assert run_cli(cfg, wh, crash=point).returncode == -signal.SIGKILL
        assert assert_consistent(wh) == set()
    assert run_cli(cfg, wh).returncode == 0
    assert assert_consistent(wh) == reference
    assert_no_leftovers(wh)
    assert len(Warehouse(wh).committed_runs()) == 1


def _bench():
    spec = importlib.util.spec_from_file_location("bench_warehouse", ROOT / "bench" / "warehouse.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _digest(wh: Path) -> tuple:
    return connect(wh).sql("SELECT count(*), count(DISTINCT article_id), sum(hash(article_id || run_id || text)) "
                           "FROM articles").fetchall()[0]


@pytest.mark.parametrize("point", ["compact.write@2", "compact.before_commit", "compact.after_commit"])
def test_killed_compaction_changes_nothing_visible(point, tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    _bench().ingest_synthetic(wh, rows=3000, runs=60, days=2)
    digest = _digest(wh.root)
    n_before = len(wh.snapshot().live("articles"))
    days = len({f["partition"] for f in wh.snapshot().live("articles")})
    env = {**os.environ, "NEWSINGEST_CRASH_AT": point}
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "compact", "--warehouse", str(wh.root), "--target-mb", "64"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert _digest(wh.root) == digest
    n_after_crash = len(wh.snapshot().live("articles"))
    assert n_after_crash == (n_before if point != "compact.after_commit" else days)  # one file per day
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "compact", "--warehouse", str(wh.root), "--target-mb", "64"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert _digest(wh.root) == digest and len(wh.snapshot().live("articles")) == days
    assert_no_leftovers(wh.root)


def test_two_runs_started_at_once_never_both_write(demo, reference, tmp_path):
    _web, _server, cfg = demo
    wh = tmp_path / "warehouse"
    # Both wait for the lock: they run one after the other; the second finds everything stored.
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--config", str(cfg), "--warehouse",
                               str(wh), "-q", "--json", "--wait", "120"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    summaries = sorted((json.loads(o) for o, _ in outs), key=lambda s: s["articles_written"])
    assert [s["articles_written"] for s in summaries] == [0, len(reference)]
    # The one that waited read the state the other committed: its feeds answered 304.
    assert summaries[0]["feeds_not_modified"] == summaries[0]["feeds"]
    assert assert_consistent(wh) == reference
    assert len(Warehouse(wh).committed_runs()) == 2


def test_second_run_without_wait_refuses_while_one_runs(demo, tmp_path):
    _web, _server, cfg = demo
    slow = tmp_path / "slow.yaml"  # 0.1 s between pages of the one demo host: the run holds the lock for seconds
    slow.write_text(cfg.read_text().replace("min_delay_s: 0", "min_delay_s: 0.1"), encoding="utf-8")
    wh = tmp_path / "warehouse"
    first = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--config", str(slow), "--warehouse", str(wh),
                              "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (wh / "_lock").exists() or Warehouse(wh).lock_holder() is None:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = run_cli(cfg, wh)
    still_running = first.poll() is None
    first.communicate(timeout=300)
    assert still_running, "the first run finished too early for this test to mean anything"
    assert second.returncode == 1
    assert "is locked by run " in second.stderr and "--wait" in second.stderr
    assert first.returncode == 0 and len(Warehouse(wh).committed_runs()) == 1
