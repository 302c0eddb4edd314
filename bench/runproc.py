"""Run `newsingest` as a child process for the speed benchmarks: wall time, CPU time of the whole process
tree, peak RSS (the largest sum over the tree, sampled from /proc every 20 ms, and ru_maxrss), and the
share of time the tree kept both cores busy. Linux only (reads /proc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.metering import cpu_of, rss_mb
from pipeline.testing.harness import descendant_pids

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Proc:
    rc: int
    wall_s: float
    cpu_s: float  # user + system of the child and its waited-for descendants (the extraction workers)
    max_rss_mb: float  # ru_maxrss: the largest single process
    tree_peak_mb: float  # the largest sum of RSS over the child and its descendants
    main_peak_mb: float = 0.0  # the largest RSS of the child itself (the main process), sampled
    main_cpu_s: float = 0.0  # CPU of the child itself (the rest of cpu_s is its workers'), sampled
    cores_busy: list[float] = field(default_factory=list)  # cores used by the tree, per 0.5 s interval
    output: str = ""
    summary: dict[str, Any] | None = None


def _rss_and_cpu(pid: int) -> tuple[float, float]:
    """(resident MB, CPU seconds) of a process, (0.0, 0.0) where it is gone."""
    return rss_mb(pid) or 0.0, cpu_of(pid) or 0.0


def run_newsingest(args: list[str], log_path: Path, *, timeout_s: float = 900) -> Proc:
    """`python -m pipeline.cli ARGS` with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NEWSINGEST_LOG_FORMAT="json")
    peak = [0.0]  # MB
    main_peak = [0.0]
    main_cpu = [0.0]
    busy: list[float] = []
    done = threading.Event()
    t0 = time.monotonic()
    with open(log_path, "wb") as out, open(log_path.with_suffix(".stderr"), "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], stdout=out, stderr=err,
                                env=env, cwd=ROOT)

        def sample() -> None:
            last_t, last_cpu, seen = time.monotonic(), 0.0, {}
            while not done.is_set():
                rss_sum = 0.0
                for p in descendant_pids(proc.pid):
                    rss, cpu = _rss_and_cpu(p)
                    rss_sum += rss
                    if p == proc.pid:
                        main_peak[0] = max(main_peak[0], rss)
                        main_cpu[0] = max(main_cpu[0], cpu)
                    seen[p] = max(seen.get(p, 0.0), cpu)  # the CPU of exited workers stays counted
                peak[0] = max(peak[0], rss_sum)
                now = time.monotonic()
                if now - last_t >= 0.5:
                    total = sum(seen.values())
                    busy.append((total - last_cpu) / (now - last_t))
                    last_t, last_cpu = now, total
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() - t0 > timeout_s:
                    proc.kill()
                    raise TimeoutError(f"newsingest {args[0]} did not finish within {timeout_s} s")
                time.sleep(0.01)
        finally:
            done.set()
            sampler.join()
            proc.returncode = os.waitstatus_to_exitcode(status) if pid else -9
    wall = time.monotonic() - t0
    text = log_path.read_text(encoding="utf-8", errors="replace")
    summary = None
    for line in text.splitlines():
        if line.startswith("{") and '"run_id"' in line:
            try:
                summary = json.loads(line)
            except ValueError:
                pass
    return Proc(rc=os.waitstatus_to_exitcode(status), wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime,
                max_rss_mb=usage.ru_maxrss / 1024, tree_peak_mb=peak[0],
                main_peak_mb=main_peak[0], main_cpu_s=main_cpu[0], cores_busy=busy, output=text,
                summary=summary)


def stage_table(columns: dict[str, list[dict[str, Any]]]) -> str:
    """The run summaries' stages (pipeline.metering) as a table: wall s, CPU s of the main process and of its
    workers, and the main process's peak MB, per stage, one column group per run (`columns`: heading -> that
    run's `stages`)."""
    names = list(dict.fromkeys(s["stage"] for stages in columns.values() for s in stages))
    width = 36
    head = "".join(f"{h:>{width}}" for h in columns)
    sub = "".join(f"{'wall s':>9}{'CPU s':>9}{'workers':>9}{'peak MB':>9}" for _ in columns)
    lines = [f"  {'stage (main process)':<20}{head}", f"  {'':<20}{sub}"]
    for name in names:
        cells = ""
        for stages in columns.values():
            s = next((s for s in stages if s["stage"] == name), None)
            if s is None:
                cells += " " * width
                continue
            workers, peak = s.get("children_cpu_s"), s.get("peak_rss_mb")
            cells += (f"{s['elapsed_s']:>9.2f}{s['cpu_s']:>9.2f}{'' if workers is None else f'{workers:.2f}':>9}"
                      f"{'' if peak is None else f'{peak:.0f}':>9}")
        lines.append(f"  {('  ' if '/' in name else '') + name:<20}{cells}")
    return "\n".join(lines)


def figure(name: str, value: float, goal: float, higher_is_better: bool) -> str:
    """The line bench/run_all.py reads."""
    ok = value >= goal if higher_is_better else value < goal
    return f"FIGURE name={name} value={value:.4g} goal={goal:g} {'PASS' if ok else 'FAIL'}"
