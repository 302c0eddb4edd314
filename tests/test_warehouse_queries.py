"""Every documented query in warehouse/queries/ runs against a demo warehouse and answers what it says."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.demo import DemoServer, DemoWeb
from pipeline.run import run_once
from pipeline.settings import parse_config
from pipeline.views import connect

ROOT = Path(__file__).resolve().parents[1]
QUERIES = sorted((ROOT / "warehouse" / "queries").glob("*.sql"))
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory):
    web = DemoWeb(seed=11, now=NOW)
    with DemoServer(web) as server:
        wh = tmp_path_factory.mktemp("queries") / "warehouse"
        run_once(parse_config(web.config_yaml(server.base_url) + "extract:\n  workers: 1\n"), wh)
    return web, wh


def _run(wh: Path, name: str) -> list[dict]:
    sql = (ROOT / "warehouse" / "queries" / name).read_text(encoding="utf-8")
    return connect(wh).sql(sql).to_arrow_table().to_pylist()


def test_every_query_is_documented_and_runs(demo_warehouse):
    _web, wh = demo_warehouse
    readme = (ROOT / "warehouse" / "README.md").read_text(encoding="utf-8")
    assert len(QUERIES) >= 5
    for path in QUERIES:
        assert path.read_text(encoding="utf-8").startswith("--"), f"{path.name} has no comment saying what it answers"
        assert path.name in readme, f"{path.name} is not in warehouse/README.md"
        connect(wh).sql(path.read_text(encoding="utf-8")).fetchall()


def test_articles_per_source_per_day(demo_warehouse):
    _web, wh = demo_warehouse
    rows = _run(wh, "articles_per_source_per_day.sql")
    total = connect(wh).sql("SELECT count(*) FROM articles").fetchall()[0][0]
    assert sum(r["articles"] for r in rows) == total
    sources = {s for (s,) in connect(wh).sql("SELECT DISTINCT source FROM articles").fetchall()}
    assert {r["source"] for r in rows} == sources and len(sources) >= 5
    r = rows[0]
    direct = connect(wh).sql("SELECT count(*) FROM articles WHERE published_date = ? AND source = ?",
                             params=[r["day"], r["source"]]).fetchall()[0][0]
    assert r["articles"] == direct
    assert len({r["day"] for r in rows}) >= 3 and all(r["with_text"] <= r["articles"] for r in rows)


def test_syndication_chains_and_top_stories(demo_warehouse):
    web, wh = demo_warehouse
    chains = _run(wh, "syndication_chains.sql")
    copies = connect(wh).sql("SELECT count(*) FROM articles WHERE duplicate_of IS NOT NULL").fetchall()[0][0]
    assert len(chains) == copies >= 8  # every copy appears once, after its origin
    assert all(r["hop"] >= 1 and r["copy_source"] for r in chains)
    credited = [r for r in chains if r["credited_to"]]
    assert credited, "the aggregator's credit lines should show in the chains"
    top = _run(wh, "top_stories_by_copies.sql")
    assert top and top == sorted(top, key=lambda r: (-r["copies"], -r["outlets"], r["first_published_at"], r["cluster_id"]))
    # The most-copied story of the demo web is one of its wire stories.
    wire_copies = max(sum(1 for p in web.pages if p.story_id == s and p.status == "ok") for s in web.stories)
    assert top[0]["copies"] == wire_copies


def test_late_articles_runs_and_health(demo_warehouse):
    _web, wh = demo_warehouse
    late = _run(wh, "late_articles.sql")
    assert late and all(str(r["published_date"]) == r["published_at"].astimezone(UTC).date().isoformat() for r in late)
    runs = _run(wh, "runs_overview.sql")
    assert len(runs) == 1 and runs[0]["kind"] == "ingest" and runs[0]["articles"] >= 40
    assert _run(wh, "failing_sources.sql") == []  # every demo feed answered


def test_queries_through_the_cli(demo_warehouse):
    _web, wh = demo_warehouse
    sql = (ROOT / "warehouse" / "queries" / "top_stories_by_copies.sql").read_text(encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "query", "--warehouse", str(wh), "--format", "csv", sql],
                         capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0].startswith("copies,outlets,title")
