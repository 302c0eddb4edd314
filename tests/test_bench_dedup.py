"""bench/dedup.py's driver: repeated runs in fresh workers, the median reported, FIGURE lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
BENCH = SHARED / "dedup-benchmark"


def test_median_run_is_the_middle_wall_time() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from dedup import _median_run

    runs = [{"seconds": w, "cpu_seconds": 4.0 - w, "docs_per_s": 100 / w, "ARI": 0.9} for w in (3.0, 1.0, 2.0)]
    got = _median_run(runs)
    assert got["seconds"] == 2.0 and got["runs_docs_per_s"] == [33, 100, 50]
    assert _median_run(runs[:2])["seconds"] == 1.0  # of two, the lower middle one


@pytest.mark.skipif(not (BENCH / "dev.jsonl").exists(), reason=f"dedup benchmark not found at {BENCH}")
def test_dev_set_runs_each_system_in_turns(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dedup.py"), "--data", str(BENCH), "--sizes", "", "--repeats", "2",
         "--systems", "newsingest batch,datasketch LSH", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("median of 2 runs") == 2
    assert "FIGURE name=dedup_ari_dev value=0.995" in proc.stdout
    import json

    res = json.loads(out.read_text())["dev"]
    for system in ("newsingest batch", "datasketch LSH"):
        assert len(res[system]["runs_docs_per_s"]) == 2
