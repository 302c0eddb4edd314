"""`newsingest demo` through the real CLI: ingest twice (nothing added the second time), and `--serve`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.settings import load_config

CLI = [sys.executable, "-m", "pipeline.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count(warehouse: Path) -> tuple[int, int]:
    out = subprocess.run(CLI + ["query", "--warehouse", str(warehouse), "--format", "csv",
                                "select count(*) as n, count(distinct article_id) as ids from articles"],
                         capture_output=True, text=True, check=True)
    n, ids = out.stdout.strip().splitlines()[1].split(",")
    return int(n), int(ids)


@pytest.mark.slow
def test_demo_twice_adds_nothing(tmp_path):
    wh = tmp_path / "warehouse"
    port = free_port()
    first = subprocess.run(CLI + ["demo", "--warehouse", str(wh), "--port", str(port)], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "duplicates found" in first.stdout and "sample DuckDB query" in first.stdout
    n, ids = count(wh)
    assert n == ids >= 40
    # The second run reuses the pinned clock and port (even when asked for another port), so the URLs and
    # hence the article ids are the same: feeds answer 304, nothing new is stored.
    second = subprocess.run(CLI + ["demo", "--warehouse", str(wh), "--port", str(free_port())],
                            capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    feeds = len(load_config(wh / "demo-config.yaml").feeds)
    assert f"{feeds} not modified" in second.stdout and "0 written" in second.stdout
    assert count(wh) == (n, ids)


def test_demo_serve_writes_config_and_serves(tmp_path):
    port = free_port()
    cfg = tmp_path / "demo.yaml"
    proc = subprocess.Popen(CLI + ["demo", "--serve", str(port), "--write-config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not cfg.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        config = load_config(cfg)
        assert len(config.feeds) >= 5 and all(f.url.startswith(f"http://127.0.0.1:{port}/") for f in config.feeds)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(config.feeds[0].url, timeout=10) as resp:
            assert resp.status == 200 and resp.read(200)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
