"""`newsingest run` refuses clearly when it cannot run, and completes (exit 0) when only feeds fail.

Every message says what failed, for which file, feed or directory, and what to do. Commands run as real
subprocesses; the lock is held by a real second process; permissions are real (as root, the command runs
without the capabilities that bypass them)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.warehouse import Warehouse

FEEDS = """\
feeds:
  - name: local-news
    url: http://127.0.0.1:{port}/feed.xml
fetch:
  allow_private: ["127.0.0.1"]
  max_retries: 0
  min_delay_s: 0
"""


def cli(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = (),
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "NEWSINGEST_LOG_FORMAT": "text", **(env or {})}, timeout=timeout)


def error_of(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("newsingest: error: ")]
    assert lines, proc.stderr
    return proc.stderr[proc.stderr.index("newsingest: error: ") + len("newsingest: error: "):].strip()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(FEEDS.format(port=closed_port()), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ config


def test_missing_config_file(tmp_path: Path):
    proc = cli("run", "--config", str(tmp_path / "nope.yaml"), "--warehouse", str(tmp_path / "wh"))
    assert proc.returncode == 1
    assert error_of(proc) == f"{tmp_path / 'nope.yaml'}: config file does not exist; check the path (relative paths " \
                             "start from the current directory)"
    assert not (tmp_path / "wh").exists()


def test_invalid_yaml(tmp_path: Path):
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - name: a\n    url: [http://x\n", encoding="utf-8")
    proc = cli("run", "--config", str(path), "--warehouse", str(tmp_path / "wh"))
    assert proc.returncode == 1
    msg = error_of(proc)
    assert msg.startswith(f"config {path} has 1 problem; fix it (then `newsingest check-config {path}`):")
    assert f"{path}:4:1: not valid YAML" in msg
    assert not (tmp_path / "wh").exists()


def test_invalid_config_lists_problems_with_lines(tmp_path: Path, config: Path):
    config.write_text(config.read_text() + "  max_retires: 3\n", encoding="utf-8")
    proc = cli("run", "--config", str(config), "--warehouse", str(tmp_path / "wh"))
    assert proc.returncode == 1
    assert f"{config}:8:3: fetch.max_retires: unknown key; did you mean 'max_retries'?" in error_of(proc)


def test_empty_feed_list(tmp_path: Path):
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds: []\nfetch:\n  min_delay_s: 1\n", encoding="utf-8")
    proc = cli("run", "--config", str(path), "--warehouse", str(tmp_path / "wh"))
    assert proc.returncode == 1
    assert error_of(proc) == (f"{path}:1:1: feeds: the feed list is empty: add feeds as '- {{name: ..., url: ...}}' "
                              "under 'feeds:'; a run would have nothing to ingest")
    assert not (tmp_path / "wh").exists()


def test_every_feed_disabled(tmp_path: Path, config: Path):
    config.write_text(config.read_text().replace("    url:", "    enabled: false\n    url:"), encoding="utf-8")
    proc = cli("run", "--config", str(config), "--warehouse", str(tmp_path / "wh"))
    assert proc.returncode == 1 and "every feed has enabled: false" in error_of(proc)


# ------------------------------------------------------------------------------------------ warehouse


def test_warehouse_parent_missing(tmp_path: Path, config: Path):
    target = tmp_path / "no" / "such" / "wh"
    proc = cli("run", "--config", str(config), "--warehouse", str(target))
    assert proc.returncode == 1
    assert error_of(proc) == (f"cannot create the warehouse {target}: its parent directory {target.parent} does not "
                              f"exist; create it (mkdir -p {target.parent}) or fix --warehouse")
    assert not (tmp_path / "no").exists()


def test_warehouse_is_a_file(tmp_path: Path, config: Path):
    target = tmp_path / "wh"
    target.write_text("not a warehouse")
    proc = cli("run", "--config", str(config), "--warehouse", str(target))
    assert proc.returncode == 1 and "is a file, not a directory" in error_of(proc)


def _without_dac_override() -> tuple[str, ...]:
    """A command prefix under which file permissions apply to us (root bypasses them otherwise)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root and setpriv (util-linux) is absent: cannot drop CAP_DAC_OVERRIDE")
    prefix = (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--")
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot drop capabilities here: {probe.stderr.decode().strip()}")
    return prefix


@pytest.mark.parametrize(("mode", "expect"), [(0o500, "is not writable by"), (0o000, "is not readable by")])
def test_warehouse_without_permission(tmp_path: Path, config: Path, mode: int, expect: str):
    prefix = _without_dac_override()
    target = tmp_path / "wh"
    target.mkdir()
    target.chmod(mode)
    try:
        proc = cli("run", "--config", str(config), "--warehouse", str(target), prefix=prefix)
    finally:
        target.chmod(0o755)
    assert proc.returncode == 1
    msg = error_of(proc)
    assert msg.startswith(f"warehouse {target} {expect}") and "fix its permissions (chmod/chown)" in msg
    assert list(target.iterdir()) == []  # nothing was fetched or written


def test_read_only_dataset_inside_the_warehouse(tmp_path: Path, config: Path):
    prefix = _without_dac_override()
    target = tmp_path / "wh"
    (target / "_log").mkdir(parents=True)
    (target / "_log").chmod(0o500)
    try:
        proc = cli("run", "--config", str(config), "--warehouse", str(target), prefix=prefix)
    finally:
        (target / "_log").chmod(0o755)
    assert proc.returncode == 1
    assert f"({target / '_log'} is read-only)" in error_of(proc)


def test_locked_warehouse(tmp_path: Path, config: Path):
    target = tmp_path / "wh"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pipeline.warehouse import Warehouse\n"
         "lock = Warehouse(sys.argv[1]).lock('run held-by-test')\nlock.__enter__()\nprint('locked', flush=True)\n"
         "time.sleep(120)\n", str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = cli("run", "--config", str(config), "--warehouse", str(target))
        waited = cli("run", "--config", str(config), "--warehouse", str(target), "--wait", "0.5")
        doctor = cli("doctor", "--warehouse", str(target), "--json")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1
    msg = error_of(proc)
    assert msg.startswith(f"warehouse {target} is locked by run held-by-test (pid {holder.pid} on ")
    assert msg.endswith("wait for it to finish (a crashed holder releases the lock when its process ends); or pass "
                        "--wait SECONDS to queue behind it")
    # The refused attempt left the holder's description intact, and --wait drops the hint.
    assert waited.returncode == 1 and "is locked by run held-by-test" in error_of(waited)
    assert "--wait SECONDS" not in error_of(waited)
    assert doctor.returncode == 0
    assert json.loads(doctor.stdout)["warehouse"]["lock_holder"].startswith(f"run held-by-test (pid {holder.pid}")
    # Once the holder is gone (killed: the kernel drops its flock), a run proceeds.
    after = cli("run", "--config", str(config), "--warehouse", str(target), "--json")
    assert after.returncode == 0, after.stderr


def test_committed_state_unreadable(tmp_path: Path, config: Path):
    target = tmp_path / "wh"
    first = cli("run", "--config", str(config), "--warehouse", str(target), "--json")
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)["run_id"]
    (target / "_state" / f"{run}.json").write_text("{ truncated", encoding="utf-8")
    proc = cli("run", "--config", str(config), "--warehouse", str(target))
    assert proc.returncode == 1
    assert error_of(proc).startswith(f"committed state {target / '_state' / (run + '.json')} of run {run} is unreadable")


# ------------------------------------------------------------------------------------------ runs that complete


def test_failed_feeds_are_not_errors_but_are_listed(tmp_path: Path, config: Path):
    target = tmp_path / "wh"
    proc = cli("run", "--config", str(config), "--warehouse", str(target))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "feeds     1 (0 fetched, 0 not modified, 1 failed)" in out
    url = config.read_text().split("url: ", 1)[1].split("\n", 1)[0]
    assert f"    - feed local-news ({url}): error: " in out  # which feed, which URL, why
    assert "what to do:" in out and f"newsingest doctor --warehouse {target}" in out
    assert (target / "_log").is_dir() and len(Warehouse(target).committed_runs()) == 1


def test_usage_errors_exit_2(tmp_path: Path):
    assert cli("run").returncode == 2  # --config is required
    assert cli("run", "--config", "x.yaml", "--wait", "soon").returncode == 2
    proc = cli("--help")
    assert proc.returncode == 0 and "exit codes:" in proc.stdout and "1  could not run" in proc.stdout


# ------------------------------------------------------------------------------------------ output formats


def test_errors_are_json_lines_off_a_terminal(tmp_path: Path, config: Path):
    config.write_text(config.read_text().replace("allow_private: [\"127.0.0.1\"]", "allow_private: []"),
                      encoding="utf-8")
    target = tmp_path / "missing-parent" / "wh"
    env = {k: v for k, v in os.environ.items() if k != "NEWSINGEST_LOG_FORMAT"}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", str(config), "--warehouse",
                           str(target)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    warning, error = records
    assert warning["level"] == "WARNING" and warning["logger"] == "newsingest.config"
    assert "127.0.0.1 is a loopback address: the fetcher will refuse this feed" in warning["msg"]
    assert error["level"] == "ERROR" and error["exit_code"] == 1
    assert error["msg"].startswith(f"cannot create the warehouse {target}: its parent directory")


def test_json_log_format_under_airflow_and_verbose_after_the_command(tmp_path: Path, config: Path):
    env = {k: v for k, v in os.environ.items() if k != "NEWSINGEST_LOG_FORMAT"}
    env["AIRFLOW_CTX_DAG_ID"] = "news_ingest"
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "-v", "--config", str(config), "--warehouse",
                           str(tmp_path / "wh")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert any(r["level"] == "DEBUG" for r in records)  # -v after the command took effect
    feeds = [r for r in records if r.get("stage") == "feeds"]
    assert feeds and feeds[0]["msg"].startswith("feeds: 1 of 1 in ") and feeds[0]["done"] == 1
