"""Dedup across runs, for real: the demo web on a loopback server, two runs into one warehouse (Parquet
files, the persisted rolling index, DuckDB views).

* a copy ingested in a later run joins the cluster of the article a former run stored (its id is the
  cluster id), and the former run's rows are never rewritten;
* the index a run loads holds only entries of the window (entries of runs committed before it are not
  read, nor those of runs that never committed), and a copy arriving after the window starts a cluster of
  its own;
* `articles_unique` picks the origin: the outlet a copy credits in `syndicated_from`, else the earliest
  publication.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.demo import DemoServer, DemoWeb
from pipeline.records import Article
from pipeline.run import _articles_table, _load_index, run_once
from pipeline.settings import parse_config
from pipeline.urls import canonicalize_url
from pipeline.views import connect
from pipeline.warehouse import RunEntry, Warehouse, write_parquet_atomic

WIRE = "continental-wire"


@pytest.fixture(scope="module")
def demo():
    web = DemoWeb(seed=5, now=datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    with DemoServer(web) as server:
        yield web, server


def _config(web: DemoWeb, base_url: str, feeds: set[str] | None, window_days: int = 14):
    lines = []
    for line in web.config_yaml(base_url).splitlines():
        if line.startswith("  - {name:") and feeds is not None and not any(f"name: {f}," in line for f in feeds):
            continue
        lines.append(line)
    lines.append(f"dedup:\n  window_days: {window_days}\n")
    return parse_config("\n".join(lines))


def _articles(wh: Path) -> list[dict]:
    return connect(wh).sql("SELECT * FROM articles").to_arrow_table().to_pylist()


def _two_runs(demo, root: Path, gap: timedelta) -> tuple[DemoWeb, str, list[dict], list[dict], datetime]:
    """Run 1 ingests the wire only (the origin stories); run 2, `gap` later, every outlet (the copies)."""
    web, server = demo
    wh = root / "warehouse"
    t1 = datetime.now(UTC)
    first = run_once(_config(web, server.base_url, {WIRE}), wh, now=t1)
    assert first.committed and first.articles_ok >= 4 and first.duplicates == 0
    before = _articles(wh)
    files_before = {p: p.stat().st_mtime_ns for p in (wh / "articles").rglob("*.parquet")}
    second = run_once(_config(web, server.base_url, None), wh, now=t1 + gap)
    assert second.committed and second.articles_written > 0
    # rows are never rewritten: run 1's files are untouched and its rows unchanged
    assert {p: p.stat().st_mtime_ns for p in files_before} == files_before
    after = {r["article_id"]: r for r in _articles(wh)}
    for row in before:
        assert after[row["article_id"]] == row
    return web, server.base_url, before, list(after.values()), t1


@pytest.mark.slow
def test_copy_in_a_later_run_joins_the_cluster_of_the_first_run(demo, tmp_path):
    web, base, before, rows, t1 = _two_runs(demo, tmp_path, timedelta(days=1))
    truth = {canonicalize_url(base + p.path): p for p in web.pages}
    first_run = {r["run_id"] for r in before}
    assert len(first_run) == 1
    origin_of = {truth[r["canonical_url"]].story_id: r for r in before if r["extraction_status"] == "ok"}
    joined = 0
    for row in rows:
        page = truth[row["canonical_url"]]
        if row["extraction_status"] != "ok" or row["run_id"] in first_run:
            continue
        origin = origin_of.get(page.story_id)
        if page.is_copy and origin is not None:
            assert row["cluster_id"] == origin["article_id"], page.path
            assert row["duplicate_of"] is not None
            joined += 1
        elif origin is None:
            assert row["cluster_id"] not in {r["article_id"] for r in before}, page.path
    wire_copies = [p for p in web.pages if p.is_copy and p.status == "ok" and p.story_id in origin_of]
    assert joined == len(wire_copies) >= 8
    # the index run 2 loaded: run 1's entries, all inside the window
    window_start = t1 + timedelta(days=1) - timedelta(days=14)
    loaded = _load_index(Warehouse(tmp_path / "warehouse"), window_start)
    assert loaded is not None
    ids = set(loaded["doc_id"].to_pylist())
    assert {r["article_id"] for r in before if r["extraction_status"] == "ok"} <= ids
    assert min(loaded["seen_at"].to_pylist()) >= window_start


@pytest.mark.slow
def test_copy_after_the_window_starts_its_own_cluster(demo, tmp_path):
    web, base, before, rows, t1 = _two_runs(demo, tmp_path, timedelta(days=20))
    truth = {canonicalize_url(base + p.path): p for p in web.pages}
    old_ids = {r["article_id"] for r in before}
    new_rows = [r for r in rows if r["article_id"] not in old_ids and r["extraction_status"] == "ok"]
    assert new_rows
    assert not [r for r in new_rows if r["cluster_id"] in old_ids], "a copy joined a cluster outside the window"
    # copies of one wire story that both arrived in run 2 still cluster with each other
    by_story: dict[str, set[str]] = {}
    for r in new_rows:
        by_story.setdefault(truth[r["canonical_url"]].story_id, set()).add(r["cluster_id"])
    assert all(len(c) == 1 for c in by_story.values())
    assert any(sum(1 for r in new_rows if truth[r["canonical_url"]].story_id == s) >= 2 for s in by_story)
    # run 1's index entries are outside the window of a run 20 days later: not loaded
    wh = Warehouse(tmp_path / "warehouse")
    later = _load_index(wh, t1 + timedelta(days=20) - timedelta(days=14))
    assert later is None or not (set(later["doc_id"].to_pylist()) & old_ids)


def test_load_index_reads_committed_runs_only(tmp_path):
    from pipeline.dedup import DedupIndex

    wh = Warehouse(tmp_path / "wh")
    now = datetime.now(UTC)
    text = " ".join(f"word{i} filler text number {i} of a made up story." for i in range(40))
    for run, committed in (("r-done", True), ("r-crashed", False)):
        index = DedupIndex()
        index.add(f"{run}-doc", text + run, seen_at=now)
        path = wh.dataset_dir("dedup_index") / f"part-{run}-0.parquet"
        write_parquet_atomic(path, index.to_arrow())
        if committed:
            stamp = now.isoformat()
            wh.commit(RunEntry(run, stamp, stamp, {}, [wh.relative(path)], None, None))
    loaded = _load_index(wh, now - timedelta(days=1))
    assert loaded["doc_id"].to_pylist() == ["r-done-doc"]  # the crashed run's file exists but is not read
    assert pq.read_table(path, partitioning=None).num_rows == 1
    assert _load_index(wh, now + timedelta(days=1)) is None  # committed before the window


# ------------------------------------------------------------------------------------ articles_unique

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _row(aid: str, cluster: str, source: str, site_name: str, published: datetime | None,
         syndicated_from: str | None = None) -> Article:
    return Article(
        article_id=aid, url=f"https://{source}.example/{aid}", canonical_url=f"https://{source}.example/{aid}",
        source=source, site=f"{source}.example", first_seen_at=T, run_id="run-1", extraction_status="ok",
        title=aid, text="text of " + aid, site_name=site_name, published_at=published, cluster_id=cluster,
        duplicate_of=None if aid == cluster else cluster, syndicated_from=syndicated_from,
    )


def test_articles_unique_prefers_the_credited_origin_then_the_earliest(tmp_path):
    rows = [
        # a copy published before its origin (a wrong clock, a time zone): the credit decides
        _row("a-copy", "a-copy", "courier", "The Daily Courier", T - timedelta(hours=2), "Continental Press Wire"),
        _row("a-origin", "a-copy", "wire", "Continental Press Wire", T),
        # the credit may name the feed instead of the site
        _row("b-copy", "b-copy", "ledger", "Metro Ledger", T - timedelta(hours=1), "herald"),
        _row("b-origin", "b-copy", "herald", "The Harbor Herald", T),
        # no credit: the earliest publication; unknown times last
        _row("c-late", "c-late", "ledger", "Metro Ledger", T + timedelta(hours=3)),
        _row("c-early", "c-late", "courier", "The Daily Courier", T + timedelta(hours=1)),
        _row("c-undated", "c-late", "observer", "Northfield Observer", None),
        # a credit naming an outlet that is not in the cluster does not count
        _row("d-1", "d-1", "courier", "The Daily Courier", T + timedelta(hours=2), "Somewhere Else Press"),
        _row("d-2", "d-1", "ledger", "Metro Ledger", T + timedelta(hours=1), "Somewhere Else Press"),
        _row("e-alone", "e-alone", "wire", "Continental Press Wire", T),
    ]
    wh = Warehouse(tmp_path / "wh")
    path = wh.dataset_dir("articles") / "published_date=2026-03-02" / "part-run-1-0.parquet"
    write_parquet_atomic(path, _articles_table(rows))
    wh.commit(RunEntry("run-1", T.isoformat(), T.isoformat(), {}, [wh.relative(path)], None, None))
    unique = connect(wh.root).sql("SELECT cluster_id, article_id FROM articles_unique").fetchall()
    assert dict(unique) == {"a-copy": "a-origin", "b-copy": "b-origin", "c-late": "c-early", "d-1": "d-2",
                            "e-alone": "e-alone"}
