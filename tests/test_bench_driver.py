"""bench/run_all.py, the `make bench` driver, on tiny bench scripts written into a temporary directory:
FIGURE parsing, the final listing and summary, missing scripts, crashes, timeouts and the exit status."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "bench" / "run_all.py"


def _bench(tmp_path: Path, scripts: dict[str, str]) -> Path:
    # run_all starts scripts with cwd = the bench dir's parent, as bench/ sits in the project
    bench = tmp_path / "bench"
    bench.mkdir()
    for name, body in scripts.items():
        (bench / name).write_text(textwrap.dedent(body), encoding="utf-8")
    return bench


def _run(bench: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN_ALL), "--bench-dir", str(bench), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


PASSING = """
    import os
    print("a table row")
    print("quick" if os.environ.get("NEWSINGEST_BENCH_QUICK") == "1" else "full")
    print("FIGURE name=a_ratio value=12.5 goal=10 PASS")
    print("FIGURE name=a_ms value=300 goal=1000 PASS")
"""


def test_all_pass_lists_figures_again_and_exits_zero(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {"one.py": PASSING, "two.py": 'print("FIGURE name=b value=1e3 goal=2000 PASS")\n'})
    proc = _run(bench, "--scripts", "one.py,two.py,absent.py", "--json", str(tmp_path / "out.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "a table row" in out and "full" in out  # streamed output; not a quick run
    tail = out[out.index("===== figures =====") :]
    assert tail.index("FIGURE name=a_ratio value=12.5 goal=10 PASS") < tail.index("FIGURE name=b value=1000 goal=2000 PASS")
    assert "absent.py: skipped" in out and "skipped (missing): absent.py" in tail
    assert "OK: 3/3 figures PASS" in tail
    import json

    data = json.loads((tmp_path / "out.json").read_text())
    assert [r["status"] for r in data] == ["ok", "ok", "skipped"]
    assert data[0]["figures"][0] == {"name": "a_ratio", "value": 12.5, "goal": 10.0, "pass": True}


def test_a_failing_figure_fails_the_run(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {
        "one.py": PASSING,
        "two.py": 'print("FIGURE name=speed value=4.3 goal=10 FAIL")\n',
    })  # fmt: skip
    proc = _run(bench, "--scripts", "one.py,two.py")
    assert proc.returncode == 1
    assert "FAILED: 2/3 figures PASS" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-3].startswith("two.py")  # the summary row counts 1 failed


def test_crash_malformed_and_quick(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {
        "crash.py": 'print("FIGURE name=x value=1 goal=1 PASS")\nraise SystemExit(3)\n',
        "bad.py": 'print("FIGURE name=y value=fast goal=1 PASS")\nprint("FIGURE name=z value=1 goal=1 OK")\n',
        "quick.py": PASSING,
    })  # fmt: skip
    proc = _run(bench, "--scripts", "crash.py,bad.py,quick.py", "--quick")
    assert proc.returncode == 1
    out = proc.stdout
    assert "quick" in out.splitlines()  # NEWSINGEST_BENCH_QUICK=1 reached the script
    assert "exit 3" in out  # the crashed script, its figure still listed
    assert "FIGURE name=x value=1 goal=1 PASS" in out[out.index("===== figures =====") :]
    assert "malformed FIGURE line: 'FIGURE name=y value=fast goal=1 PASS'" in out
    assert "malformed FIGURE line: 'FIGURE name=z value=1 goal=1 OK'" in out
    assert "scripts failed: crash.py, bad.py" in out
    # only the failures of the run make it fail: the same driver on the passing script alone is fine
    assert _run(bench, "--scripts", "crash.py,bad.py,quick.py", "--only", "quick.py").returncode == 0


def test_timeout_kills_the_script(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {
        "slow.py": 'import time\nprint("started", flush=True)\ntime.sleep(60)\nprint("FIGURE name=s value=1 goal=1 PASS")\n',
        "after.py": PASSING,
    })  # fmt: skip
    proc = _run(bench, "--scripts", "slow.py,after.py", "--timeout", "slow.py=1", timeout=30)
    assert proc.returncode == 1
    assert "started" in proc.stdout and "slow.py: killed after its 1 s timeout" in proc.stdout
    assert "FIGURE name=s" not in proc.stdout
    assert "scripts failed: slow.py" in proc.stdout and "FIGURE name=a_ratio value=12.5 goal=10 PASS" in proc.stdout


def test_time_a_script_leaves_goes_to_the_next(tmp_path: Path) -> None:
    # quick.py uses a second of its 20; slow.py's own 2 s would not do, the 19 s it inherits do
    bench = _bench(tmp_path, {
        "quick.py": PASSING,
        "slow.py": 'import time\ntime.sleep(4)\nprint("FIGURE name=s value=1 goal=1 PASS")\n',
        "last.py": 'import time\ntime.sleep(30)\n',
    })  # fmt: skip
    proc = _run(bench, "--scripts", "quick.py,slow.py,last.py", "--timeout", "quick.py=20", "--timeout", "slow.py=2",
                "--timeout", "last.py=1", timeout=60)
    out = proc.stdout
    assert "FIGURE name=s value=1 goal=1 PASS" in out, out
    assert "s left by the scripts before" in out
    # last.py inherits what is left of the 22 s (about 17 s) and no more: it is killed short of its 30 s sleep
    assert "last.py: killed after its" in out and "scripts failed: last.py" in out
    assert proc.returncode == 1


def test_the_scripts_timeouts_fit_the_twenty_minute_budget() -> None:
    """Every script of `make bench` has a timeout, and together they stay under the issue's 20 minutes (time a
    script leaves is only carried to the next one, so the whole run is bounded by the sum)."""
    sys.path.insert(0, str(RUN_ALL.parent))
    try:
        import run_all
    finally:
        sys.path.remove(str(RUN_ALL.parent))
    assert set(run_all.SCRIPTS) == set(run_all.DEFAULT_TIMEOUTS)
    assert sum(run_all.DEFAULT_TIMEOUTS.values()) <= run_all.TIME_BUDGET_S < 20 * 60
