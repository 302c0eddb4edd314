"""`newsingest reextract`: text rebuilt from the kept raw pages with other extraction settings, without a
single request to the web; rows replaced (one per article), clusters kept, partitions right."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from pipeline.demo import DemoServer, DemoWeb
from pipeline.maintenance import reextract
from pipeline.run import run_once
from pipeline.settings import parse_config
from pipeline.views import connect
from pipeline.warehouse import Warehouse

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
COLS = "article_id, cluster_id, duplicate_of, first_seen_at, extraction_status, text, run_id, published_date"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    web = DemoWeb(seed=11, now=NOW)
    with DemoServer(web) as server:
        wh = tmp_path_factory.mktemp("rx") / "warehouse"
        config = parse_config(web.config_yaml(server.base_url) + "extract:\n  workers: 1\n")
        summary = run_once(config, wh)
        yield web, server, config, wh, summary


def _rows(wh) -> dict[str, dict]:
    con = connect(wh)
    rows = con.sql(f"SELECT {COLS} FROM articles").to_arrow_table().to_pylist()
    assert len(rows) == len({r["article_id"] for r in rows}), "an article has two rows"
    return {r["article_id"]: r for r in rows}


def test_reextract_rebuilds_text_without_fetching_and_keeps_clusters(ingested):
    _web, server, config, wh, summary = ingested
    before = _rows(wh)
    ok = {k for k, r in before.items() if r["extraction_status"] == "ok"}
    assert len(ok) >= 40
    server.clear_requests()

    # "A newer extractor": here the same one with a stricter setting, then back.
    strict = config.model_copy(update={"extract": config.extract.model_copy(update={"min_words": 100_000})})
    first = reextract(wh, "2026-11-01", config=strict)
    assert first["changed"] >= len(ok) and first["articles_written"] == len(before)
    mid = _rows(wh)
    assert mid.keys() == before.keys()
    assert all(mid[k]["extraction_status"] == "too_short" and mid[k]["text"] is None for k in ok)
    assert all(r["run_id"] == first["run_id"] for r in mid.values())

    second = reextract(wh, "2000-01-01", config=config)
    after = _rows(wh)
    assert server.requests == [], "reextract fetched from the web"
    assert after.keys() == before.keys()
    for k, r in after.items():
        b = before[k]
        assert (r["cluster_id"], r["duplicate_of"], r["first_seen_at"]) == (b["cluster_id"], b["duplicate_of"],
                                                                             b["first_seen_at"])
        assert (r["text"], r["extraction_status"], r["published_date"]) == (b["text"], b["extraction_status"],
                                                                            b["published_date"])
        assert r["run_id"] == second["run_id"]
    con = connect(wh)
    kinds = con.sql("SELECT kind, count(*) FROM runs GROUP BY 1 ORDER BY 1").fetchall()
    assert kinds == [("ingest", 1), ("reextract", 2)]
    clusters = con.sql("SELECT count(*) FROM clusters WHERE copies > 1").fetchall()[0][0]
    assert clusters >= 5
    # The next ingest still knows every article: nothing is fetched or written twice.
    again = run_once(config, wh)
    assert again.articles_written == 0 and len(_rows(wh)) == len(before)


def test_reextract_killed_before_commit_changes_nothing(ingested):
    _web, _server, _config, wh, _summary = ingested
    before = _rows(wh)
    env = {**os.environ, "NEWSINGEST_CRASH_AT": "reextract.before_commit"}
    cmd = [sys.executable, "-m", "pipeline.cli", "reextract", "--warehouse", str(wh), "--since", "2000-01-01", "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert _rows(wh) == before
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    after = _rows(wh)
    assert after.keys() == before.keys()
    snap = Warehouse(wh).snapshot()
    on_disk = {str(p.relative_to(wh)) for p in (wh / "articles").rglob("*.parquet")}
    assert on_disk <= set(snap.files) | set(snap.retired), "the killed reextract's files were not removed"
