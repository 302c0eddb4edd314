"""The report's data on a warehouse with a known history, committed through the real commit protocol
(Parquet files with the declared schemas, then the manifest entry), so every expected number is known."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.report import failing_feeds, nice_ticks, top_stories, write_report
from pipeline.schema import ARTICLE_SCHEMA, FETCH_LOG_SCHEMA, SCHEMA_VERSION
from pipeline.views import connect
from pipeline.warehouse import RunEntry, Warehouse, write_parquet_atomic

HOST = "news.example.com"


def commit_run(root: Path, run_id: str, at: datetime, *, articles: list[dict[str, Any]] = (),
               fetches: list[dict[str, Any]] = ()) -> None:
    wh = Warehouse(root)
    files = []
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in articles:
        row = {"run_id": run_id, "schema_version": SCHEMA_VERSION, "first_seen_at": at, **a}
        by_day[(row.get("published_at") or row["first_seen_at"]).date().isoformat()].append(row)
    for day, rows in by_day.items():
        path = root / "articles" / f"published_date={day}" / f"part-{run_id}-0.parquet"
        write_parquet_atomic(path, pa.Table.from_pylist(rows, schema=ARTICLE_SCHEMA))
        files.append(wh.relative(path))
    if fetches:
        rows = [{"run_id": run_id, "kind": "feed", "host": HOST, "elapsed_ms": 120, "attempts": 1, **f}
                for f in fetches]
        path = root / "fetch_log" / f"run_date={at.date().isoformat()}" / f"part-{run_id}-0.parquet"
        write_parquet_atomic(path, pa.Table.from_pylist(rows, schema=FETCH_LOG_SCHEMA))
        files.append(wh.relative(path))
    wh.commit(RunEntry(run_id=run_id, started_at=at.isoformat(), committed_at=(at + timedelta(seconds=30)).isoformat(),
                       counts={"articles_written": len(articles)}, files=files, state_file=None, seen_file=None,
                       config_feeds=7, trigger="test"))


def feed(source: str, outcome: str, at: datetime, error: str | None = None, status: int | None = None) -> dict[str, Any]:
    return {"source": source, "url": f"https://{HOST}/{source}.xml", "outcome": outcome, "started_at": at,
            "error": error, "http_status": status}


def article(aid: str, source: str, title: str, *, cluster: str | None = None, duplicate_of: str | None = None,
            status: str = "ok", published: datetime | None = None, credit: str | None = None) -> dict[str, Any]:
    return {"article_id": aid, "url": f"https://{HOST}/{source}/{aid}", "source": source, "title": title,
            "text": "words " * 80 if status == "ok" else None, "extraction_status": status,
            "cluster_id": cluster or aid, "duplicate_of": duplicate_of, "published_at": published,
            "syndicated_from": credit}


def build_history(root: Path, now: datetime) -> None:
    """Three runs, 50 h, 26 h and 2 h before `now`, and one five days earlier."""
    t0, t1, t2 = now - timedelta(hours=50), now - timedelta(hours=26), now - timedelta(hours=2)
    commit_run(root, "r0", now - timedelta(hours=100), fetches=[feed("removed", "ok", now - timedelta(hours=100))])
    commit_run(root, "r0b", now - timedelta(hours=80), fetches=[
        feed("removed", "http_error", now - timedelta(hours=80), "HTTP 500", 500)])
    commit_run(root, "r1", t0, fetches=[
        feed("steady", "ok", t0), feed("broken-long", "ok", t0), feed("broken-new", "ok", t0),
        feed("never-worked", "error", t0, "cannot resolve host"), feed("recovered", "timeout", t0, "deadline"),
    ], articles=[
        article("a1", "wire", "<b>Storm</b> hits the coast & more", published=t0),
        article("a2", "steady", "Storm copy", cluster="a1", duplicate_of="a1", published=t0 + timedelta(hours=1),
                credit="wire"),
        article("a3", "steady", "A local story", published=t0),
        article("a4", "steady", "Gallery", status="no_article", published=t0),
    ])
    commit_run(root, "r2", t1, fetches=[
        feed("steady", "not_modified", t1), feed("broken-long", "http_error", t1, "HTTP 404 Not Found", 404),
        feed("broken-new", "ok", t1), feed("never-worked", "error", t1, "cannot resolve host"),
        feed("recovered", "timeout", t1, "deadline"), feed("deferred-only", "ok", t1),
    ], articles=[
        article("a5", "broken-new", "Storm, third copy", cluster="a1", duplicate_of="a1", published=t1),
        article("a6", "broken-new", "Paywalled", status="paywalled", published=t1),
    ])
    commit_run(root, "r3", t2, fetches=[
        feed("steady", "ok", t2), feed("broken-long", "http_error", t2, "HTTP 404 Not Found", 404),
        feed("broken-new", "timeout", t2, "no answer within 30 s"), feed("never-worked", "error", t2, "cannot resolve host"),
        feed("recovered", "not_modified", t2), feed("deferred-only", "deferred", t2, "host asked us to wait"),
    ])


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    root = tmp_path_factory.mktemp("history") / "warehouse"
    build_history(root, now)
    return root, now


def test_failing_feeds_since_their_last_success(history):
    root, now = history
    con = connect(root)
    rows = {r["source"]: r for r in failing_feeds(con, now)}
    # "removed" was last tried 78 h before the newest attempt (no longer configured); "recovered" and
    # "deferred-only" are fine (a deferral is not a failure); "steady" never failed.
    assert set(rows) == {"never-worked", "broken-long", "broken-new"}
    assert rows["never-worked"]["failing_since"] == now - timedelta(hours=50)
    assert rows["never-worked"]["failed_attempts"] == 3 and rows["never-worked"]["last_success"] is None
    assert rows["broken-long"]["failing_since"] == now - timedelta(hours=26)
    assert rows["broken-long"]["last_status"] == 404 and rows["broken-long"]["last_error"] == "HTTP 404 Not Found"
    assert rows["broken-new"]["failing_since"] == now - timedelta(hours=2)
    assert {s for s, r in rows.items() if r["over_a_day"]} == {"never-worked", "broken-long"}
    assert [r["source"] for r in failing_feeds(con, now)] == ["never-worked", "broken-long", "broken-new"]


def test_top_stories_with_outlets_and_origin(history):
    root, _now = history
    (story,) = top_stories(connect(root))
    assert story["copies"] == 3 and story["sources"] == 3
    assert story["outlets"] == ["broken-new", "steady", "wire"]
    assert story["origin"] == "wire"  # the outlet a copy credits as its origin
    assert story["title"] == "<b>Storm</b> hits the coast & more"


def test_report_page_on_a_known_history(history, tmp_path: Path):
    root, now = history
    result = write_report(root, tmp_path / "r.html", now=now)
    assert result["articles"] == 6 and result["stories"] == 4 and result["sources"] == 3 and result["runs"] == 5
    assert result["feeds_failing"] == 3 and result["feeds_failing_over_a_day"] == 2
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<b>Storm</b>" not in page and "&lt;b&gt;Storm&lt;/b&gt; hits the coast &amp; more" in page
    assert page.count('<span class="badge">over a day</span>') == 2
    assert page.count('<span class="badge recent">recent</span>') == 1
    assert "<b>2</b> feeds failing for more than a day, 1 more failing more recently." in page
    # Rates of "steady": 2 articles with text, 1 a copy of an earlier story, 1 in a multi-outlet story.
    assert re.search(r"<td>steady</td><td>3</td><td>2</td><td>1</td><td>50%</td><td>1</td><td>50%</td><td>1</td>", page)


def test_report_of_an_empty_warehouse(tmp_path: Path):
    Warehouse(tmp_path / "wh")
    result = write_report(tmp_path / "wh", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert result["articles"] == 0 and result["charts"] == 0
    assert "No articles yet." in page and "No committed run yet." in page


def test_report_needs_an_existing_warehouse(tmp_path: Path):
    from pipeline.warehouse import WarehouseError

    with pytest.raises(WarehouseError, match="no warehouse at"):
        write_report(tmp_path / "missing", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("top", "expect"), [(0, [0, 1]), (7, [0, 2, 4, 6, 8]), (48, [0, 10, 20, 30, 40, 50]),
                                             (1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (785.65, [0, 200, 400, 600, 800])])
def test_nice_ticks(top, expect):
    assert nice_ticks(top) == pytest.approx(expect)
