"""`newsingest watch`: micro-batches through the commit protocol, clean stops, SIGKILL and restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.demo import DemoServer, DemoWeb, LiveDemoWeb
from pipeline.settings import parse_config
from pipeline.views import connect
from pipeline.warehouse import Warehouse
from pipeline.watch import Batch, Unit, should_commit

ROOT = Path(__file__).resolve().parents[1]


def start_watch(config: Path, warehouse: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "watch", "--config", str(config), "--warehouse",
                             str(warehouse), "--workers", "1", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"watch exited with {proc.returncode} while waiting for {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def stored(wh: Path) -> list[tuple[str, str]]:
    if not (wh / "_log").is_dir():  # nothing committed yet
        return []
    return connect(wh).sql("SELECT url, article_id FROM articles").fetchall()


def watch_runs(wh: Path) -> int:
    return sum(1 for r in Warehouse(wh).committed_runs() if r.get("trigger") == "watch")


def check_committed_runs_are_whole(wh: Path) -> None:
    """Every committed run's files exist: nothing half-written is visible."""
    for run in Warehouse(wh).committed_runs():
        for rel in run["files"] + [run["state_file"], run["seen_file"]]:
            assert (wh / rel).exists(), (run["run_id"], rel)


class FrozenAfter:
    """A clock that stops at `freeze()`: the live web stops publishing, feeds stop changing."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return time.time() if self.at is None else min(time.time(), self.at)

    def freeze(self) -> datetime:
        self.at = time.time()
        return datetime.fromtimestamp(self.at, UTC)


# ------------------------------------------------------------------------------------------ pure parts


def test_should_commit_every_n_seconds_or_m_articles():
    empty = Batch()
    assert not should_commit(empty, 100.0, 0.0, 5, 10, 60)
    polls_only = Batch(units=[Unit(feed=object())], opened_at=0.0)
    assert not should_commit(polls_only, 30.0, 0.0, 5, 10, 60)  # only polls: wait for the idle commit
    assert should_commit(polls_only, 61.0, 0.0, 5, 10, 60)
    one = Batch()
    one.add(Unit(feed=object(), linkless=[object()]))
    t = one.first_article_at
    assert not should_commit(one, t + 4.9, t, 5, 10, 60)
    assert should_commit(one, t + 5.0, t, 5, 10, 60)  # N seconds after the first article
    many = Batch()
    many.add(Unit(feed=object(), linkless=[object()] * 10))
    assert should_commit(many, many.first_article_at, many.first_article_at, 5, 10, 60)  # M articles


# ------------------------------------------------------------------------------------------ static web


def test_watch_runs_for_a_duration_and_refuses_a_second_watcher(tmp_path: Path):
    web = DemoWeb(seed=3)
    with DemoServer(web) as server:
        cfg = tmp_path / "demo.yaml"
        cfg.write_text(web.config_yaml(server.base_url) + "watch:\n  commit_interval_s: 0.5\n", encoding="utf-8")
        wh = tmp_path / "wh"
        first = start_watch(cfg, wh, "--duration", "8")
        try:
            wait_for(lambda: watch_runs(wh) >= 1, 60, first, "the first commit")
            second = start_watch(cfg, wh, "--duration", "1")
            out, err = second.communicate(timeout=60)
            assert second.returncode == 1 and "another watcher runs on" in err
            out, err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == 0, err
        assert "watch stopped:" in out
        rows = stored(wh)
        assert len(rows) == len({aid for _, aid in rows})
        expected = {server.url(p.path) for p in web.pages if p.status != "fetch_failed"}
        assert {url.split("?")[0] for url, _ in rows} == expected
        state = Warehouse(wh).load_state()
        assert set(state["feeds"]) == {f.name for f in web.feeds}
        assert all(st["poll"]["next_poll_at"] for st in state["feeds"].values())
        assert len(state["pending"]) == 1  # the deliberate 404, waiting for its retry
        # A restarted watcher takes the schedule from the warehouse: no feed is due yet, nothing is fetched.
        server.clear_requests()
        again = start_watch(cfg, wh, "--duration", "2")
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert server.requests == []
        staging = wh / "_staging"
        assert not staging.exists() or not any(staging.iterdir())  # no commit left staging behind


# ------------------------------------------------------------------------------------------ live web


@pytest.mark.slow
def test_watch_streams_a_live_web_and_stops_cleanly(tmp_path: Path):
    from pipeline.run import run_once

    clock = FrozenAfter()
    web = LiveDemoWeb(seed=11, speed=15, clock=clock, start=datetime.now(UTC) + timedelta(seconds=3))
    with DemoServer(web) as server:
        cfg = tmp_path / "live.yaml"
        cfg.write_text(web.config_yaml(server.base_url), encoding="utf-8")
        config = parse_config(cfg.read_text())
        wh = tmp_path / "wh"
        proc = start_watch(cfg, wh)
        try:
            wait_for(lambda: watch_runs(wh) >= 3, 90, proc, "three commits")
            # Another writer commits in between (the warehouse lock is held per commit, not for life).
            other = run_once(config, wh, all_feeds=True, lock_wait_s=60, trigger="test")
            assert other.committed
            wait_for(lambda: len(web.publications(since=web.start)) >= 30, 90, proc, "30 publications")
            end = clock.freeze()
            pubs = web.publications(until=end, since=web.start)
            urls = {server.url(p.path) for p in pubs}
            wait_for(lambda: urls <= {u for u, _ in stored(wh)}, config.polling.max_interval_s + 30, proc,
                     "every publication stored")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert "watch stopped:" in out and "SIGTERM" in err
    rows = stored(wh)
    assert len(rows) == len({aid for _, aid in rows}), "an article was stored twice"
    check_committed_runs_are_whole(wh)
    con = connect(wh)
    fresh = dict(con.sql("SELECT source, queryable_p95_s FROM source_freshness").fetchall())
    assert fresh["continental-wire"] is not None and fresh["continental-wire"] < 60
    health = {r[0]: r[1:] for r in con.sql(
        "SELECT source, poll_interval_s, discovery_p50_s, queryable_p95_s FROM source_health").fetchall()}
    assert health["harbor-herald"][0] > health["continental-wire"][0]  # idle polled less often than busy
    pages = con.sql("SELECT count(*) FILTER (WHERE source IS NULL) FROM fetch_log WHERE kind = 'page'").fetchall()
    assert pages[0][0] == 0  # page fetches carry their feed's name
    triggers = {r[0] for r in con.sql("SELECT DISTINCT trigger FROM runs").fetchall()}
    assert triggers == {"watch", "test"}


@pytest.mark.slow
def test_sigkill_and_restart_lose_nothing_and_duplicate_nothing(tmp_path: Path):
    clock = FrozenAfter()
    web = LiveDemoWeb(seed=12, speed=12, clock=clock, start=datetime.now(UTC) + timedelta(seconds=3))
    with DemoServer(web) as server:
        cfg = tmp_path / "live.yaml"
        cfg.write_text(web.config_yaml(server.base_url), encoding="utf-8")
        config = parse_config(cfg.read_text())
        wh = tmp_path / "wh"
        proc = start_watch(cfg, wh)
        kills = 0
        try:
            # Kill at varied moments: during boot, with pages in flight, with a batch open, mid-commit.
            for delay in (4.0, 2.5, 6.0, 3.3, 5.1, 1.7, 4.4):
                time.sleep(delay)
                assert proc.poll() is None, proc.stderr.read()
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                check_committed_runs_are_whole(wh)
                rows = stored(wh)
                assert len(rows) == len({aid for _, aid in rows}), f"duplicate after kill {kills}"
                proc = start_watch(cfg, wh)
            end = clock.freeze()
            pubs = web.publications(until=end, since=web.start)
            assert len(pubs) >= 20
            urls = {server.url(p.path) for p in pubs}
            wait_for(lambda: urls <= {u for u, _ in stored(wh)}, config.polling.max_interval_s + 40, proc,
                     "every publication stored after the restarts")
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
    rows = stored(wh)
    assert len(rows) == len({aid for _, aid in rows}) == len({u for u, _ in rows}), "an article was stored twice"
    missing = urls - {u for u, _ in rows}
    assert not missing
    check_committed_runs_are_whole(wh)
    # Leftovers of killed commits were removed by later commits; none is visible meanwhile.
    leftovers = [p for p in wh.rglob("*.tmp-*")]
    assert leftovers == []
    state = json.loads((wh / Warehouse(wh).last_run()["state_file"]).read_text())
    assert all("poll" in st for st in state["feeds"].values())


def test_a_feeds_validators_are_committed_only_with_its_items(tmp_path: Path):
    """Killed after its first commit, while the pages of other feeds are still being fetched, the watcher
    must not have committed those feeds' new ETags: a restart would get 304s and never see their items."""
    web = DemoWeb(seed=4)
    feed_paths = {f.path for f in web.feeds}
    with DemoServer(web, delay=lambda path: 0.0 if path in feed_paths or path == "/robots.txt" else 1.0) as server:
        cfg = tmp_path / "demo.yaml"
        cfg.write_text(web.config_yaml(server.base_url) + "watch:\n  commit_interval_s: 0.2\n  idle_commit_s: 0.2\n",
                       encoding="utf-8")
        wh = tmp_path / "wh"
        proc = start_watch(cfg, wh)
        try:
            wait_for(lambda: watch_runs(wh) >= 1, 60, proc, "the first commit")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            state = Warehouse(wh).load_state()
            committed_feeds = set(state["feeds"])
            assert committed_feeds < {f.name for f in web.feeds}  # killed with some feeds' pages in flight
            proc = start_watch(cfg, wh)
            expected = {server.url(p.path) for p in web.pages if p.status != "fetch_failed"}
            wait_for(lambda: expected <= {u.split("?")[0] for u, _ in stored(wh)}, 90, proc, "every page stored")
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
    rows = stored(wh)
    assert len(rows) == len({aid for _, aid in rows})
