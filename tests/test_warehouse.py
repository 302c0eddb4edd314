"""The commit log: snapshots, checkpoints, conflicts, crash leftovers, vacuum, the lock, the pre-log layout.

Synthetic rows come from bench/warehouse.py and are committed through the real writer (real Parquet files,
real log entries); queries go through the real DuckDB views."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.maintenance import compact, plan_compaction
from pipeline.views import connect
from pipeline.warehouse import (
    CHECKPOINT_EVERY,
    RunEntry,
    Snapshot,
    Warehouse,
    WarehouseConflict,
    WarehouseLocked,
)

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_warehouse", ROOT / "bench" / "warehouse.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


def _count(wh) -> tuple[int, int]:
    return connect(wh).sql("SELECT count(*), count(DISTINCT article_id) FROM articles").fetchall()[0]


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, **kw)


def test_snapshot_from_checkpoint_equals_full_replay(tmp_path):
    wh = Warehouse(tmp_path / "w")
    runs = bench.ingest_synthetic(wh, rows=900, runs=CHECKPOINT_EVERY + 5, days=3)
    log = wh.root / "_log"
    assert (log / f"{CHECKPOINT_EVERY:012d}.checkpoint.json").exists()
    snap = wh.snapshot()
    replay = Snapshot()
    for seq in range(1, snap.seq + 1):
        replay.apply(json.loads((log / f"{seq:012d}.json").read_text()))
    assert snap.seq == replay.seq == len(runs)
    assert snap.files == replay.files and snap.runs == replay.runs
    assert [r["run_id"] for r in wh.committed_runs()] == runs
    assert _count(wh) == (900, 900)
    con = connect(wh)
    assert con.sql("SELECT count(*), min(seq), max(seq) FROM runs").fetchall()[0] == (len(runs), 1, len(runs))
    assert con.sql("SELECT sum(rows) FROM live_files WHERE dataset = 'articles'").fetchall()[0][0] == 900


def test_a_writer_on_a_stale_snapshot_cannot_commit(tmp_path):
    wh = Warehouse(tmp_path / "w")
    bench.ingest_synthetic(wh, rows=50, runs=1, days=1)
    before = _count(wh)
    stale = wh.snapshot()
    wh.commit_entry(stale, "retain")  # another writer got in first
    rows = bench.synthetic_table(*_one_run_args())
    entry = wh.write_table("articles/published_date=2026-10-01/part-late-0.parquet", rows)
    with pytest.raises(WarehouseConflict, match="another writer committed entry 2"):
        wh.commit(RunEntry("late", "x", "x", {}, [entry], None, None), base=stale)
    assert _count(wh) == before and not wh.is_committed("late")


def _one_run_args():
    import numpy as np

    rng = np.random.default_rng(1)
    published = np.array([datetime(2026, 10, 1, 12, tzinfo=UTC)] * 10)
    return rng, bench._pools(rng, 50, 50), "late", 10, published, datetime(2026, 10, 1, 13, tzinfo=UTC), ["a", "b"]


def test_crashed_writer_leftovers_are_invisible_then_removed(tmp_path):
    wh = Warehouse(tmp_path / "w")
    bench.ingest_synthetic(wh, rows=50, runs=1, days=1)
    before = _count(wh)
    rows = bench.synthetic_table(*_one_run_args())
    with pytest.raises(RuntimeError), wh.transaction("crashed", "a run that dies"):
        wh.write_table("articles/published_date=2026-10-01/part-crashed-0.parquet", rows)
        raise RuntimeError("dies before its log entry")
    leftover = wh.root / "articles/published_date=2026-10-01/part-crashed-0.parquet"
    assert leftover.exists() and (wh.root / "_txn" / "crashed.json").exists()
    assert _count(wh) == before  # written, never committed: nobody sees it
    with wh.lock("test"):
        assert wh.recover() == 1
    assert not leftover.exists() and not list((wh.root / "_txn").iterdir())
    assert _count(wh) == before


def test_pre_log_warehouse_is_read_and_upgraded_on_first_commit(tmp_path):
    """A warehouse written before the commit log (one _runs/<run_id>.json per run) keeps working."""
    wh = Warehouse(tmp_path / "w")
    rows = bench.synthetic_table(*_one_run_args())
    rel = "articles/published_date=2026-10-01/part-old-0.parquet"
    wh.write_table(rel, rows)
    (wh.root / "_runs").mkdir()
    (wh.root / "_runs" / "old.json").write_text(json.dumps({
        "run_id": "old", "started_at": "2026-10-01T13:00:00+00:00", "committed_at": "2026-10-01T13:01:00+00:00",
        "trigger": "cli", "feeds": 2, "counts": {"articles_written": 10}, "files": [rel],
        "state_file": None, "seen_file": None}))
    assert wh.is_committed("old") and _count(wh) == (10, 10)
    bench.ingest_synthetic(wh, rows=20, runs=1, days=1, seed=3)
    assert sorted(p.name for p in (wh.root / "_log").glob("*.json")) == ["000000000001.json", "000000000002.json"]
    assert [r["run_id"] for r in wh.committed_runs()][0] == "old" and _count(wh) == (30, 30)


def test_vacuum_keeps_retired_files_for_the_grace_period(tmp_path):
    wh = Warehouse(tmp_path / "w")
    bench.ingest_synthetic(wh, rows=400, runs=12, days=1)
    before = _count(wh)
    old_files = [wh.root / f["path"] for f in wh.snapshot().live("articles")]
    r = compact(wh, target_mb=64)
    assert r["files_merged"] == len(old_files) and r["vacuum"]["purged_files"] == 0
    assert all(p.exists() for p in old_files), "retired files must outlive a reader's snapshot"
    assert _count(wh) == before
    orphan = wh.root / "articles" / "published_date=2026-10-01" / "part-nobody-0.parquet"
    orphan.write_bytes(b"not even parquet")
    with wh.lock("test"):
        v = wh.vacuum(now=datetime.now(UTC) + timedelta(hours=2), log_keep_s=0)
    assert v["purged_files"] == len(old_files) and v["orphans_removed"] == 1
    assert not any(p.exists() for p in old_files) and not orphan.exists()
    # The log was folded into a checkpoint and pruned: the warehouse opens the same.
    assert not list((wh.root / "_log").glob("0*[0-9].json"))
    assert _count(wh) == before and len(wh.committed_runs()) == 12


def test_plan_compaction_groups_small_files_to_the_target():
    mb = 1024 * 1024
    files = [{"path": f"p{i}", "bytes": mb, "min_seq": i} for i in range(10)]
    files.append({"path": "big", "bytes": 100 * mb, "min_seq": 99})
    groups = plan_compaction(files, target_bytes=4 * mb, small_bytes=2 * mb)
    assert [len(g) for g in groups] == [4, 4, 2] and all("big" not in [f["path"] for f in g] for g in groups)
    assert plan_compaction(files[:1] + files[-1:], 4 * mb, 2 * mb) == []  # one small file: nothing to merge
    # A lone leftover joins the previous group rather than being rewritten alone.
    assert [len(g) for g in plan_compaction(files[:9], 4 * mb, 2 * mb)] == [4, 5]


def test_lock_refuses_with_the_holder_or_waits(tmp_path):
    wh = Warehouse(tmp_path / "w")
    bench.ingest_synthetic(wh, rows=40, runs=4, days=1)
    with wh.lock("test holder"):
        res = _cli("compact", "--warehouse", str(wh.root))
        assert res.returncode == 1
        assert "is locked by test holder" in res.stderr and "--wait" in res.stderr
        with pytest.raises(WarehouseLocked):
            with Warehouse(wh.root).lock("second in this process"):
                pass
    # --wait: a second process blocks until the holder lets go, then does its work.
    holder = wh.lock("slow holder")
    holder.__enter__()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "compact", "--warehouse", str(wh.root),
                             "--wait", "30", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert proc.poll() is None, "the waiting process must not run while the lock is held"
    holder.__exit__(None, None, None)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["files_merged"] == 4


def test_cli_run_refuses_a_locked_warehouse(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("feeds:\n  - {name: x, url: 'http://127.0.0.1:9/feed.xml'}\nfetch:\n  allow_private: ['127.0.0.1']\n")
    wh = Warehouse(tmp_path / "w")
    with wh.lock("an ingest run"):
        res = _cli("run", "--config", str(cfg), "--warehouse", str(wh.root), "-q",
                   env={**os.environ, "NEWSINGEST_CRASH_AT": ""})
    assert res.returncode == 1 and "locked by an ingest run" in res.stderr
    assert wh.snapshot().seq == 0


def test_partition_columns_and_schema_of_view(tmp_path):
    wh = Warehouse(tmp_path / "w")
    bench.ingest_synthetic(wh, rows=300, runs=6, days=2)
    con = connect(wh)
    types = dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE articles)").fetchall())
    assert types["published_date"] == "DATE" and types["published_at"] == "TIMESTAMP WITH TIME ZONE"
    bad = con.sql("SELECT count(*) FROM articles WHERE published_date <> CAST(published_at AS DATE)").fetchall()
    assert bad == [(0,)]
    assert isinstance(connect(wh).sql("SELECT * FROM live_files").to_arrow_table(), pa.Table)
