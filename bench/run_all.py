#!/usr/bin/env python3
"""Run every benchmark of issue 8 and collect their figures: `make bench`.

    python bench/run_all.py [--quick] [--only dedup.py,...] [--timeout dedup.py=600] [--json FILE]

Runs bench/e2e.py, bench/incremental.py, bench/dedup.py, bench/warehouse.py and bench/memory.py, in that
order, each as a
subprocess with its output streamed as it comes (a script that does not exist is skipped with a message).
Each script ends with one line per figure:

    FIGURE name=<name> value=<number> goal=<number> <PASS|FAIL>

At the end every figure is printed again, together, followed by a summary. The exit status is 1 when any
figure is FAIL, any script crashed (non-zero exit), timed out or printed a malformed FIGURE line; else 0.

Time budget: `make bench` must finish in under 20 minutes on 2 cores. Each script has its own timeout
(DEFAULT_TIMEOUTS, seconds; change one with --timeout NAME=SECONDS); their sum is 19.5 minutes, and the time
a script leaves of its timeout is added to the next script's, so the whole run stays under 20 even when
every script runs into its timeout, while a slow machine's long script (dedup.py) can use what the quick
ones left. A timed-out script is killed (its whole process group) and counts as failed.

--quick is a smoke run: it sets NEWSINGEST_BENCH_QUICK=1 in the scripts' environment; the scripts read it
and run small sizes (their figures are then not the issue's figures, and the summary says so).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SCRIPTS = ["e2e.py", "incremental.py", "dedup.py", "warehouse.py", "memory.py"]
# seconds, sum 19.5 min < the 20 min budget. Taken here (stop 31, two runs of `make bench`, 904 and 937 s in
# all): e2e 48-55 s, incremental 43-47 s, dedup 231-240 s, warehouse 40-43 s, memory 534-562 s; in stop 35 (700
# s in all) e2e 89 s (three paired rounds now), incremental 32, dedup 165, warehouse 37, memory 375. dedup.py
# runs three turns of ours and datasketch at 10k and 100k and ours once at 1M (with its corpus); memory.py runs
# 2,000 and 100,000 pages, most of `make bench`'s time, with what the scripts before it left (~4 min here).
DEFAULT_TIMEOUTS = {"e2e.py": 180, "incremental.py": 90, "dedup.py": 330, "warehouse.py": 80, "memory.py": 490}
TIME_BUDGET_S = 19.5 * 60  # the timeouts' sum: `make bench` must finish in under 20 minutes
FALLBACK_TIMEOUT = 300
QUICK_ENV = "NEWSINGEST_BENCH_QUICK"

FIGURE_RE = re.compile(r"^FIGURE name=(\S+) value=(\S+) goal=(\S+) (PASS|FAIL)\s*$")


@dataclass
class Figure:
    script: str
    name: str
    value: float
    goal: float
    passed: bool

    def line(self) -> str:
        return f"FIGURE name={self.name} value={_num(self.value)} goal={_num(self.goal)} {'PASS' if self.passed else 'FAIL'}"


@dataclass
class ScriptResult:
    script: str
    status: str  # ok | crashed | timeout | skipped
    returncode: int | None = None
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("crashed", "timeout") or bool(self.malformed)


def _num(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e15 else f"{x:.6g}"


def parse_figure(script: str, line: str) -> Figure | None | str:
    """A Figure for a well-formed FIGURE line, None for any other line, the line itself when malformed."""
    if not line.startswith("FIGURE "):
        return None
    m = FIGURE_RE.match(line)
    if not m:
        return line
    try:
        value, goal = float(m.group(2)), float(m.group(3))
    except ValueError:
        return line
    if not (math.isfinite(value) and math.isfinite(goal)):
        return line
    return Figure(script, m.group(1), value, goal, m.group(4) == "PASS")


def run_script(path: Path, timeout: float, env: dict[str, str], out=sys.stdout, carried: float = 0.0) -> ScriptResult:
    """Run one bench script, streaming its merged output to `out` and collecting its FIGURE lines.

    `carried`: seconds earlier scripts left of their timeouts, on top of `timeout`."""
    res = ScriptResult(path.name, "ok")
    extra = f": its own {timeout:.0f} s + {carried:.0f} s left by the scripts before" if carried >= 1 else ""
    timeout += carried
    print(f"\n===== {path.name} (timeout {timeout:.0f} s{extra}) =====", file=out, flush=True)
    t0 = time.monotonic()
    # own session: on timeout the whole process group goes (the scripts start workers of their own)
    proc = subprocess.Popen(
        [sys.executable, "-u", str(path)], cwd=path.parent.parent, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", bufsize=1, start_new_session=True,
    )  # fmt: skip

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            print(line, file=out, flush=True)
            got = parse_figure(path.name, line.strip())
            if isinstance(got, Figure):
                res.figures.append(got)
            elif isinstance(got, str):
                res.malformed.append(got)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        res.returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        res.status = "timeout"
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        res.returncode = proc.returncode
    reader.join(timeout=10)
    res.seconds = time.monotonic() - t0
    if res.status == "ok" and res.returncode != 0:
        res.status = "crashed"
    return res


def summary(results: list[ScriptResult], quick: bool) -> tuple[str, bool]:
    """The closing report and whether everything passed."""
    figures = [f for r in results for f in r.figures]
    lines = ["", "===== figures =====", *(f.line() for f in figures)]
    if not figures:
        lines.append("(no figures)")
    lines += ["", "===== summary =====", f"{'script':<18}{'status':<10}{'seconds':>8}{'figures':>9}{'failed':>8}"]
    for r in results:
        failed = sum(not f.passed for f in r.figures)
        status = r.status if r.status != "crashed" else f"exit {r.returncode}"
        lines.append(f"{r.script:<18}{status:<10}{r.seconds:>8.0f}{len(r.figures):>9}{failed:>8}")
        for bad in r.malformed:
            lines.append(f"  malformed FIGURE line: {bad!r}")
        if r.status == "ok" and not r.figures:
            lines.append("  (no FIGURE lines: see the script's output above)")
    n_fail = sum(not f.passed for f in figures)
    broken = [r.script for r in results if r.failed]
    ok = n_fail == 0 and not broken
    verdict = f"{len(figures) - n_fail}/{len(figures)} figures PASS"
    if broken:
        verdict += f"; scripts failed: {', '.join(broken)}"
    skipped = [r.script for r in results if r.status == "skipped"]
    if skipped:
        verdict += f"; skipped (missing): {', '.join(skipped)}"
    lines.append(("OK: " if ok else "FAILED: ") + verdict)
    if quick:
        lines.append(f"(--quick smoke run, {QUICK_ENV}=1: small sizes, not the issue's figures)")
    return "\n".join(lines), ok


def _timeouts(specs: list[str]) -> dict[str, float]:
    out: dict[str, float] = dict(DEFAULT_TIMEOUTS)
    for spec in specs:
        name, sep, secs = spec.partition("=")
        try:
            out[name] = float(secs)
        except ValueError:
            sep = ""
        if not sep or out[name] <= 0:
            raise SystemExit(f"--timeout expects NAME=SECONDS (a positive number), got {spec!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke run: small sizes ({QUICK_ENV}=1)")
    ap.add_argument("--bench-dir", default=str(BENCH_DIR), help="where the scripts live (default: bench/)")
    ap.add_argument("--scripts", default=",".join(SCRIPTS), help="scripts to run, in order (comma-separated)")
    ap.add_argument("--only", help="run only these of --scripts (comma-separated)")
    ap.add_argument("--timeout", action="append", default=[], metavar="NAME=SECONDS",
                    help="per-script timeout (repeatable); defaults: "
                    + ", ".join(f"{k}={v}" for k, v in DEFAULT_TIMEOUTS.items()))
    ap.add_argument("--json", help="also write the figures and statuses to this file")
    args = ap.parse_args(argv)
    timeouts = _timeouts(args.timeout)
    bench_dir = Path(args.bench_dir)
    scripts = [s.strip() for s in args.scripts.split(",") if s.strip()]
    if args.only:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        unknown = only - set(scripts)
        if unknown:
            ap.error(f"--only: unknown scripts {sorted(unknown)}; choose from {scripts}")
        scripts = [s for s in scripts if s in only]
    env = dict(os.environ)
    if args.quick:
        env[QUICK_ENV] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    results: list[ScriptResult] = []
    t0 = time.monotonic()
    spare = 0.0  # seconds the scripts so far left of their timeouts
    for name in scripts:
        path = bench_dir / name
        if not path.is_file():
            print(f"\n===== {name}: skipped, {path} does not exist (yet) =====", flush=True)
            results.append(ScriptResult(name, "skipped"))
            continue
        own = timeouts.get(name, FALLBACK_TIMEOUT)
        res = run_script(path, own, env, carried=spare)
        if res.status == "timeout":
            print(f"===== {name}: killed after its {own + spare:.0f} s timeout =====", flush=True)
        spare = max(0.0, own + spare - res.seconds)
        results.append(res)
    text, ok = summary(results, args.quick)
    print(text)
    print(f"total {time.monotonic() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps([
            {"script": r.script, "status": r.status, "returncode": r.returncode, "seconds": round(r.seconds, 1),
             "figures": [{"name": f.name, "value": f.value, "goal": f.goal, "pass": f.passed} for f in r.figures],
             "malformed": r.malformed} for r in results], indent=1) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
