"""Compaction: 200 small files of one partition become one, with the same rows, while a reader queries
in a loop from another thread; the compaction is a separate `newsingest compact` process."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.maintenance import compact
from pipeline.views import connect
from pipeline.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
DIGEST = "SELECT count(*), count(DISTINCT article_id), sum(hash(article_id || run_id || coalesce(text, ''))) FROM articles"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_warehouse", ROOT / "bench" / "warehouse.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def small_files(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    _bench().ingest_synthetic(wh, rows=6000, runs=200, days=1)  # every run writes one file of one day
    files = wh.snapshot().live("articles")
    assert len(files) == 200 and len({f["partition"] for f in files}) == 1
    return wh


@pytest.mark.slow
def test_compacting_200_small_files_under_a_reader_in_a_loop(small_files):
    wh = small_files
    expected = connect(wh).sql(DIGEST).fetchall()[0]
    assert expected[0] == expected[1] == 6000
    long_lived = connect(wh)  # planned on the old files: they must outlive the compaction (grace period)

    seen: list[tuple[int, tuple]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                snap = wh.snapshot()
                con = connect(wh, snapshot=snap)
                seen.append((len(snap.live("articles")), con.sql(DIGEST).fetchall()[0]))
                con.close()
            except BaseException as exc:  # noqa: BLE001 - any failure of a reader fails the test
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    while len(seen) < 3 and not errors:
        time.sleep(0.02)
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "compact", "--warehouse", str(wh.root), "--json"],
                         capture_output=True, text=True, timeout=300)
    n_during = len(seen)
    deadline = time.monotonic() + 30
    while len(seen) < n_during + 3 and not errors and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(timeout=60)
    assert res.returncode == 0, res.stderr
    assert not errors, f"a reader failed during compaction: {errors[0]!r}"
    assert all(digest == expected for _, digest in seen), "a reader miscounted during compaction"
    file_counts = [n for n, _ in seen]
    assert file_counts[0] == 200 and file_counts[-1] == 1, file_counts  # it saw both sides, nothing else
    assert set(file_counts) == {200, 1}

    result = json.loads(res.stdout)
    assert result["files_merged"] >= 200 and result["after"]["articles"]["files"] == 1
    assert result["after"]["articles"]["rows"] == 6000
    assert long_lived.sql(DIGEST).fetchall()[0] == expected  # the old snapshot still reads
    assert connect(wh).sql(DIGEST).fetchall()[0] == expected
    # Rows keep their run: per-run counts still add up, so export watermarks hold.
    per_run = connect(wh).sql("SELECT count(DISTINCT run_id), min(n), max(n) FROM "
                              "(SELECT run_id, count(*) AS n FROM articles GROUP BY run_id)").fetchall()[0]
    assert per_run == (200, 30, 30)

    # After the grace period the retired files go; the current snapshot does not notice.
    retired = list(wh.snapshot().retired)
    assert len(retired) >= 200 and all((wh.root / p).exists() for p in retired)
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "vacuum", "--warehouse", str(wh.root), "--grace", "0",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["purged_files"] == len(retired)
    assert not any((wh.root / p).exists() for p in retired)
    assert connect(wh).sql(DIGEST).fetchall()[0] == expected
    parquet = list((wh.root / "articles").rglob("*.parquet"))
    assert len(parquet) == 1


def test_compaction_targets_a_size_and_leaves_big_files_alone(small_files):
    wh = small_files
    expected = connect(wh).sql(DIGEST).fetchall()[0]
    total = sum(f["bytes"] for f in wh.snapshot().live("articles"))
    target_mb = total / 4 / 1024 / 1024  # about four output files
    r = compact(wh, target_mb=target_mb, small_mb=target_mb)
    sizes = [f["bytes"] for f in wh.snapshot().live("articles")]
    assert 3 <= len(sizes) <= 5, sizes
    assert connect(wh).sql(DIGEST).fetchall()[0] == expected
    # Files at or above the small-file threshold are never rewritten.
    again = compact(wh, target_mb=target_mb, small_mb=min(sizes) / 1024 / 1024)
    assert again["files_merged"] == 0 and again["seq"] is None and r["seq"] is not None
    assert [f["bytes"] for f in wh.snapshot().live("articles")] == sizes
