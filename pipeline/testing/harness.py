"""Run `newsingest` as a child process and measure it; read hostile-server logs. Used by the hostile-run
tests and by bench/hostile_run.py (standard library only; Linux for the process-tree memory sampling)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.metering import rss_mb
from pipeline.testing.connect_audit import audit_env, read_log

NEWSINGEST = str(Path(sys.executable).with_name("newsingest"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback test server
                resp.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass
class RunStats:
    rc: int
    wall_s: float
    max_rss_mb: float  # ru_maxrss of the child (the largest of it and its waited-for workers)
    tree_peak_mb: float  # the largest sum of RSS over the child and all its descendants, sampled every 20 ms
    output: str
    summary: dict[str, Any] | None = None
    connections: list[dict[str, Any]] = field(default_factory=list)


def descendant_pids(root: int) -> list[int]:
    """`root` and every process below it (from /proc; Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def run_newsingest(args: list[str], workdir: Path, *, timeout_s: float = 600, audit: bool = True,
                   env: dict[str, str] | None = None) -> RunStats:
    """`newsingest ARGS` in a child process: exit status, wall time, peak memory, JSON summary (when
    `--json` is among ARGS), and with `audit` every socket connection the child tree opened."""
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = time.monotonic_ns()
    log_path = workdir / f"connections-{stamp}.jsonl"
    full_env = {**os.environ, **(env or {})}
    if audit:
        full_env.update(audit_env(workdir / "audit-site", log_path))
    out_path = workdir / f"output-{stamp}.txt"
    peak = [0.0]  # MB
    done = threading.Event()
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([NEWSINGEST, *args], stdout=out, stderr=subprocess.STDOUT, env=full_env)

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], sum(rss_mb(p) or 0.0 for p in descendant_pids(proc.pid)))
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
                    raise TimeoutError(f"newsingest {' '.join(args[:1])} did not finish within {timeout_s} s")
                time.sleep(0.02)
        finally:
            done.set()
            sampler.join()
            proc.returncode = 0 if proc.returncode is None else proc.returncode
    wall = time.monotonic() - t0
    text = out_path.read_text(encoding="utf-8", errors="replace")
    summary = None
    for line in text.splitlines():
        if line.startswith("{") and '"run_id"' in line:
            try:
                summary = json.loads(line)
            except ValueError:
                pass
    return RunStats(rc=os.waitstatus_to_exitcode(status), wall_s=wall, max_rss_mb=usage.ru_maxrss / 1024,
                    tree_peak_mb=peak[0], output=text, summary=summary,
                    connections=read_log(log_path) if audit else [])


def shared_server_records(log_path: Path, port: int) -> list[dict[str, Any]]:
    """Requests from ../shared/feeds/hostile_server.py's JSONL log, in the shape `politeness()` reads.

    That log has a `request` event when a request arrives and a `done` event when its handler finishes;
    they are paired per path in arrival order."""
    pending: dict[str, list[dict[str, Any]]] = {}
    out: list[dict[str, Any]] = []
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "request":
            rec = {"host": "shared", "port": port, "path": ev.get("path"), "started": ev["t"], "finished": None,
                   "status": ev.get("status"), "user_agent": ev.get("user_agent"),
                   "if_none_match": ev.get("if_none_match"), "if_modified_since": ev.get("if_modified_since")}
            out.append(rec)
            pending.setdefault(rec["path"], []).append(rec)
        elif ev.get("event") == "done" and pending.get(ev.get("path")):
            rec = pending[ev["path"]].pop(0)
            rec["finished"] = ev["t"]
    return out


def query(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    from pipeline.views import connect

    con = connect(warehouse)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
