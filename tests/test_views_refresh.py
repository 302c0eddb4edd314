"""newsingest.duckdb after each commit: up to date, yet rebinding only what changed; a run where every feed
answers 304 is recorded (fetch log, feed state, views) without loading the extraction and dedup machinery."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from test_warehouse import bench  # bench/warehouse.py, loaded once there

from pipeline.run import add_ids
from pipeline.schema import FETCH_LOG_SCHEMA
from pipeline.views import connect, refresh_database_file
from pipeline.warehouse import DB_FILE, RunEntry, Warehouse

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DERIVED = {"articles_unique", "clusters", "source_freshness", "source_health"}


@pytest.mark.parametrize("seed", range(6))
def test_add_ids_is_union1d(seed):
    rng = np.random.default_rng(seed)
    seen = np.unique(rng.integers(0, 2**64 - 1, size=int(rng.integers(0, 2000)), dtype=np.uint64))
    picks = [rng.integers(0, 2**64 - 1, size=int(rng.integers(0, 50)), dtype=np.uint64)]
    if len(seen):
        picks.append(rng.choice(seen, size=20))  # some already stored
    picks.append(np.array([0, 2**64 - 1], dtype=np.uint64))  # both ends
    new = np.concatenate([*picks, picks[0][:5]])  # and repeated within the run
    out = add_ids(seen, new)
    assert out.dtype == np.uint64
    assert np.array_equal(out, np.union1d(seen, new))
    assert add_ids(seen, np.empty(0, dtype=np.uint64)) is seen
    assert add_ids(seen, seen[::3]) is seen


class _Recorder:
    """A DuckDB connection that remembers the views it (re)created."""

    def __init__(self, con, log: list[str]) -> None:
        self._con, self._log = con, log

    def execute(self, sql, *args):
        if sql.startswith("CREATE OR REPLACE VIEW"):
            self._log.append(sql.split(" AS ", 1)[0].split()[-1])
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.fixture
def recorded(monkeypatch):
    created: list[str] = []
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: _Recorder(real(*a, **k), created))
    return created


def _file(wh: Warehouse):
    return duckdb.connect(str(wh.root / DB_FILE), read_only=True)


def _commit_fetch_log_only(wh: Warehouse, run_id: str) -> None:
    """What a run whose feeds all answered 304 adds: a fetch_log file, no articles."""
    rows = [
        {
            "run_id": run_id,
            "url": f"http://example.org/{k}.xml",
            "final_url": None,
            "kind": "feed",
            "source": f"outlet-{k:02d}",
            "host": "example.org",
            "outcome": "not_modified",
            "http_status": 304,
            "error": None,
            "elapsed_ms": 2,
            "attempts": 1,
            "redirects": 0,
            "bytes": None,
            "content_type": None,
            "charset": None,
            "charset_mismatch": False,
            "started_at": NOW,
        }
        for k in range(3)
    ]
    with wh.lock("test"):
        f = wh.write_table(
            f"fetch_log/run_date=2026-11-20/part-{run_id}-0.parquet",
            pa.Table.from_pylist(rows, schema=FETCH_LOG_SCHEMA),
        )
        wh.commit(
            RunEntry(run_id, NOW.isoformat(), NOW.isoformat(), {"articles_written": 0}, [f], None, None)
        )


def test_database_file_follows_each_commit_and_rebinds_only_what_changed(tmp_path, recorded):
    wh = Warehouse(tmp_path / "w")
    bench.ingest_synthetic(wh, rows=300, runs=3, days=2)
    refresh_database_file(wh)
    assert {"articles", "fetch_log"} | DERIVED <= set(recorded)  # a new file: everything
    recorded.clear()

    _commit_fetch_log_only(wh, "r304")
    refresh_database_file(wh)
    assert recorded == ["fetch_log"]  # no articles file changed: `articles` and what reads it stay
    db = _file(wh)
    assert db.sql("SELECT count(*) FROM fetch_log WHERE run_id = 'r304'").fetchall()[0][0] == 3
    assert db.sql("SELECT count(*) FROM runs WHERE run_id = 'r304'").fetchall()[0][0] == 1
    health = dict(db.sql("SELECT source, last_outcome FROM source_health").fetchall())
    assert health == {f"outlet-{k:02d}": "not_modified" for k in range(3)}
    db.close()
    recorded.clear()

    bench.ingest_synthetic(wh, rows=50, runs=1, days=1, seed=5)
    refresh_database_file(wh)
    assert recorded == ["articles"]  # same columns: the derived views bind the new file list when queried
    db, mem = _file(wh), connect(wh)
    for view in ("articles", "articles_unique", "clusters", "source_health"):
        assert (
            db.sql(f"SELECT count(*) FROM {view}").fetchall()
            == mem.sql(f"SELECT count(*) FROM {view}").fetchall()
        )
    assert db.sql("SELECT count(*) FROM articles").fetchall()[0][0] == 350
    db.close()


def test_a_view_changed_in_the_file_or_new_columns_recreate_the_derived_views(tmp_path, recorded):
    wh = Warehouse(tmp_path / "w")
    bench.ingest_synthetic(wh, rows=200, runs=2, days=2)
    refresh_database_file(wh)
    con = duckdb.connect(str(wh.root / DB_FILE))  # a user's shell drops one view, replaces another
    con.execute("DROP VIEW clusters")
    con.execute("CREATE OR REPLACE VIEW source_health AS SELECT 1 AS x")
    con.close()
    recorded.clear()
    refresh_database_file(wh)
    assert sorted(recorded) == ["clusters", "source_health"]
    db = _file(wh)
    assert "last_outcome" in [r[0] for r in db.sql("DESCRIBE source_health").fetchall()]
    db.close()
    recorded.clear()

    # A file of a newer schema (one more column): `articles` reads by name and gains the column; the views
    # over it are created again so that their recorded columns say so too.
    table = bench.synthetic_table(*_one_run_args())
    table = table.append_column("extra_note", pa.array(["n"] * table.num_rows, pa.string()))
    with wh.lock("test"):
        f = wh.write_table("articles/published_date=2026-10-01/part-newer-0.parquet", table)
        wh.commit(
            RunEntry(
                "newer",
                NOW.isoformat(),
                NOW.isoformat(),
                {"articles_written": table.num_rows},
                [f],
                None,
                None,
            )
        )
    refresh_database_file(wh)
    assert set(recorded) == {"articles"} | DERIVED
    db = _file(wh)
    assert "extra_note" in [r[0] for r in db.sql("DESCRIBE articles_unique").fetchall()]
    assert db.sql("SELECT count(*) FROM articles_unique WHERE extra_note = 'n'").fetchall()[0][0] > 0
    db.close()


def _one_run_args():
    rng = np.random.default_rng(1)
    published = np.array([datetime(2026, 10, 1, 12, tzinfo=UTC)] * 10)
    return (
        rng,
        bench._pools(rng, 50, 50),
        "newer",
        10,
        published,
        datetime(2026, 10, 1, 13, tzinfo=UTC),
        ["a", "b"],
    )


def test_an_all_304_run_is_recorded_without_loading_extraction(tmp_path):
    """Run 1 ingests the demo web; run 2 polls every feed again and each answers 304. Run 2 commits its
    fetch log and feed state (the views and the operators' health view show it), and never imports the
    extractor, the cleaner or the dedup index, nor starts extraction workers."""
    wh = tmp_path / "warehouse"
    with socket.socket() as sock:  # one port for both runs: the feeds name their server, so their ETags too
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = textwrap.dedent(f"""
        import json, multiprocessing, sys
        from datetime import datetime
        from pipeline.demo import DemoServer, DemoWeb
        from pipeline.run import run_once
        from pipeline.settings import parse_config

        web = DemoWeb(seed=11, now=datetime.fromisoformat({NOW.isoformat()!r}))
        with DemoServer(web, port={port}) as server:
            config = parse_config(web.config_yaml(server.base_url) + "extract:\\n  workers: 1\\n")
            if sys.argv[1] == "1":
                s = run_once(config, {str(wh)!r})
            else:
                s = run_once(config, {str(wh)!r}, all_feeds=True)
        heavy = sorted(m for m in ("pipeline.extract", "pipeline.clean", "pipeline.dedup", "trafilatura", "lxml",
                                   "pipeline.sources", "feedparser", "concurrent.futures.process")
                       if m in sys.modules)
        print(json.dumps({{"run_id": s.run_id, "feeds": s.feeds, "not_modified": s.feeds_not_modified,
                          "written": s.articles_written, "heavy": heavy,
                          "children": len(multiprocessing.active_children())}}))
    """)

    def run(n: str) -> dict:
        res = subprocess.run(
            [sys.executable, "-c", script, n], capture_output=True, text=True, cwd=ROOT, timeout=300
        )
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads(res.stdout.strip().splitlines()[-1])

    first = run("1")
    assert first["written"] > 0
    second = run("2")
    assert second["feeds"] > 0 and second["not_modified"] == second["feeds"] and second["written"] == 0
    assert second["heavy"] == [] and second["children"] == 0
    w = Warehouse(wh)
    runs = w.committed_runs()
    assert runs[-1]["run_id"] == second["run_id"]
    state = w.load_state()
    assert all(st["last_outcome"] == "not_modified" for st in state["feeds"].values())
    # Nothing new stored: the run names the id set of run 1 again instead of writing a copy of it.
    assert runs[-1]["seen_file"] == runs[-2]["seen_file"] and runs[-1]["state_file"] != runs[-2]["state_file"]
    assert len(w.load_seen()) == first["written"]
    for f in (wh / "_state").iterdir():  # old enough for pruning: still kept, a live run names it
        os.utime(f, (f.stat().st_atime - 7200, f.stat().st_mtime - 7200))
    w.prune_state()
    assert (wh / runs[-1]["seen_file"]).exists() and (wh / runs[-1]["state_file"]).exists()
    db = _file(w)
    polled = db.sql(
        f"SELECT count(*), min(outcome), max(outcome) FROM fetch_log WHERE run_id = '{second['run_id']}' "
        "AND kind = 'feed'"
    ).fetchall()[0]
    assert polled == (second["feeds"], "not_modified", "not_modified")
    assert (
        db.sql("SELECT count(*) FROM source_health WHERE last_outcome <> 'not_modified'").fetchall()[0][0]
        == 0
    )
    assert db.sql("SELECT count(*) FROM runs").fetchall()[0][0] == 2
    db.close()


YAML_CASES = [
    "feeds:\n  - {name: a, url: 'http://example.org/a.xml'}\n  - name: b\n    url: http://example.org/b.xml\n"
    '    max_items: 50\nfetch:\n  min_delay_s: 0  # a comment\n  allow_private: ["127.0.0.1"]\n',
    "feeds:\n  - name: a\n    url: http://x/a\n    url: http://x/b\n",  # a repeated key
    "base: &b {min_delay_s: 2}\nfetch: *b\nfeeds: []\n",  # anchors
    "feeds:\n  - name: 'unterminated\n",  # not YAML: the pure-Python parser's message
    "feeds:\n\t- name: tab\n",
    "",
    "just a scalar",
    'feeds:\n  - name: é\n    url: "http://exämple.org/ü"\n',
]


@pytest.mark.parametrize("text", YAML_CASES)
def test_config_parse_with_libyaml_matches_pure_python(text):
    import yaml

    from pipeline import configcheck

    fast, slow = [], []
    got = configcheck._load(text, fast)
    want = configcheck._load_with(yaml.SafeLoader, text, slow)
    assert got[0] == want[0]
    assert (got[1].value, got[1].key) == (want[1].value, want[1].key)
    assert fast == slow  # problems (dataclasses): code, message, path, line, column
