"""The whole pipeline for real: the demo web on a loopback HTTP server -> fetch -> extract -> clean ->
dedup -> Parquet -> DuckDB, and incremental re-runs that add nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.demo import DemoServer, DemoWeb
from pipeline.run import run_once
from pipeline.settings import parse_config
from pipeline.urls import canonicalize_url
from pipeline.views import connect

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo():
    web = DemoWeb(seed=11, now=NOW)
    with DemoServer(web) as server:
        yield web, server


@pytest.fixture(scope="module")
def first_run(demo, tmp_path_factory):
    web, server = demo
    wh = tmp_path_factory.mktemp("e2e") / "warehouse"
    config = parse_config(web.config_yaml(server.base_url))
    server.clear_requests()
    summary = run_once(config, wh)
    return web, server, config, wh, summary


def _rows(wh: Path) -> list[dict]:
    con = connect(wh)
    return con.sql("SELECT * FROM articles").to_arrow_table().to_pylist()


def _truth_by_url(web: DemoWeb, base: str) -> dict[str, object]:
    return {canonicalize_url(base + p.path): p for p in web.pages}


def test_first_run_commits_every_article_once(first_run):
    web, server, _config, wh, summary = first_run
    assert summary.committed and summary.feeds == len(web.feeds) and summary.feeds_failed == 0
    rows = _rows(wh)
    ids = [r["article_id"] for r in rows]
    assert len(ids) == len(set(ids)), "an article was stored twice"
    truth = _truth_by_url(web, server.base_url)
    by_url = {r["canonical_url"]: r for r in rows}
    # Every page except the deliberate 404 (kept for a retry, not stored) is a row; the utm twin is one row.
    expected = {u for u, p in truth.items() if p.status != "fetch_failed"}
    assert set(by_url) == expected
    assert summary.retries_pending == sum(1 for p in truth.values() if p.status == "fetch_failed")
    assert summary.articles_written == len(rows) >= 40


def test_the_summary_meters_each_stage(first_run):
    """Time and peak memory of each stage of the run, the commit's passes inside the commit."""
    *_, summary = first_run
    stages = {s["stage"]: s for s in summary.stages}
    assert list(stages) == ["feeds", "pages", "commit", "commit/rows", "commit/dedup", "commit/files", "commit/views"]
    assert all(s["elapsed_s"] >= 0 and s["cpu_s"] >= 0 and s["peak_rss_mb"] > 20 for s in stages.values())
    commit, passes = stages["commit"], [stages[n] for n in ("commit/rows", "commit/dedup", "commit/files", "commit/views")]
    assert sum(p["elapsed_s"] for p in passes) <= commit["elapsed_s"] + 0.005  # one after the other, inside it
    assert max(p["peak_rss_mb"] for p in passes) <= commit["peak_rss_mb"]


def test_text_metadata_and_boilerplate(first_run):
    web, server, _config, wh, _summary = first_run
    truth = _truth_by_url(web, server.base_url)
    ok = 0
    for row in _rows(wh):
        page = truth[row["canonical_url"]]
        if page.status == "no_article":
            assert row["extraction_status"] != "ok" and row["text"] is None
            assert row["title"]  # the feed's title is kept
            continue
        assert row["extraction_status"] == "ok", (page.path, row["extraction_status"])
        text = row["text"]
        # Every real paragraph is kept ...
        for para in page.paragraphs:
            assert para in text, (page.path, para[:60])
        # ... and the boilerplate the demo pages carry is gone.
        for junk in ("Advertisement", "Legal Disclaimer", "Follow us", "Read also", "cookies", "All rights reserved"):
            assert junk not in text, (page.path, junk)
        assert row["published_at"] is not None
        assert abs((row["published_at"] - page.published_at).total_seconds()) < 60, page.path
        # copies credit their origin: in the text, MENAFN style (the aggregator), or in the byline
        # ("By X | Continental Press Wire", "Author: X, Continental Press Wire"); originals credit nobody
        assert (row["syndicated_from"] or "").lower() == (page.syndicated_from or "").lower(), page.path
        assert row["published_source"] in ("jsonld", "meta", "time", "url", "feed", "text"), page.path
        ok += 1
    assert ok >= 40


def test_syndicated_copies_cluster_and_distinct_stories_stay_apart(first_run):
    web, server, _config, wh, summary = first_run
    truth = _truth_by_url(web, server.base_url)
    clusters_by_story: dict[str, set[str]] = defaultdict(set)
    stories_by_cluster: dict[str, set[str]] = defaultdict(set)
    for row in _rows(wh):
        page = truth[row["canonical_url"]]
        if row["extraction_status"] != "ok":
            continue
        clusters_by_story[page.story_id].add(row["cluster_id"])
        stories_by_cluster[row["cluster_id"]].add(page.story_id)
    split = {s: c for s, c in clusters_by_story.items() if len(c) > 1}
    merged = {c: s for c, s in stories_by_cluster.items() if len(s) > 1}
    assert not split, f"copies of one story in several clusters: {split}"
    assert not merged, f"different stories merged: {merged}"
    copies = sum(1 for p in web.ok_pages if p.is_copy and p.status == "ok")
    assert summary.duplicates >= 8 and summary.duplicates == copies  # the utm twin is one page: never a row


def test_articles_unique_picks_the_origin_of_every_story(first_run):
    """One row per story, and it is the original: the outlet the copies credit, even when a copy was
    published (or seen) earlier."""
    web, server, _config, wh, _summary = first_run
    truth = _truth_by_url(web, server.base_url)
    con = connect(wh)
    unique = con.sql("SELECT * FROM articles_unique WHERE extraction_status = 'ok'").to_arrow_table().to_pylist()
    stories = [truth[r["canonical_url"]].story_id for r in unique]
    assert len(stories) == len(set(stories))
    origins = {p.story_id: p for p in web.pages if p.status == "ok" and not p.is_copy}
    copied = {p.story_id for p in web.pages if p.status == "ok" and p.is_copy}
    assert len(copied) >= 4
    for row in unique:
        page = truth[row["canonical_url"]]
        assert not page.is_copy, f"articles_unique shows the copy {page.path} of story {page.story_id}"
        assert page.path == origins[page.story_id].path
    assert {truth[r["canonical_url"]].story_id for r in unique} >= copied


def test_parquet_partitions_schema_and_views(first_run):
    web, server, _config, wh, _summary = first_run
    files = sorted((wh / "articles").glob("published_date=*/*.parquet"))
    assert files
    from pipeline.schema import ARTICLE_SCHEMA

    for f in files:
        table = pq.read_table(f, partitioning=None)
        assert table.schema.remove_metadata().equals(ARTICLE_SCHEMA.remove_metadata()), f
        day = f.parent.name.split("=", 1)[1]
        for row in table.to_pylist():
            stamp = row["published_at"] or row["first_seen_at"]
            assert stamp.date().isoformat() == day
    con = connect(wh)
    n_articles = con.sql("SELECT count(*) FROM articles").fetchall()[0][0]
    n_unique = con.sql("SELECT count(*) FROM articles_unique").fetchall()[0][0]
    n_clusters = con.sql("SELECT count(*) FROM clusters").fetchall()[0][0]
    assert n_unique == n_clusters < n_articles
    runs = con.sql("SELECT run_id FROM runs").fetchall()
    assert len(runs) == 1
    fetch = dict(con.sql("SELECT kind, count(*) FROM fetch_log GROUP BY kind").fetchall())
    assert fetch["feed"] == len(web.feeds) and fetch["page"] >= 45 and fetch["robots"] == 1
    health = con.sql("SELECT source, consecutive_failures, last_success FROM source_health").fetchall()
    assert len(health) == len(web.feeds) and all(h[1] == 0 and h[2] is not None for h in health)


def test_long_distinct_columns_are_written_without_a_dictionary(first_run):
    """Page bytes and article texts are encoded plainly (a dictionary of nearly unique values only costs the
    writer); the other columns keep theirs. Checked in the committed raw-page and article files."""
    from pipeline.schema import PLAIN_ENCODED_COLUMNS

    _web, _server, _config, wh, _summary = first_run
    raw = sorted((wh / "raw_pages").glob("fetch_date=*/*.parquet"))
    articles = sorted((wh / "articles").glob("published_date=*/*.parquet"))
    assert raw and articles
    for f, plain in [(raw[0], {"body"}), *((a, {"text", "summary", "description"}) for a in articles)]:
        meta = pq.ParquetFile(f).metadata
        for i in range(meta.num_columns):
            column = meta.row_group(0).column(i)
            name = column.path_in_schema
            dictionary = any("DICTIONARY" in e for e in column.encodings)
            if name in plain:
                assert name in PLAIN_ENCODED_COLUMNS and not dictionary, (f.name, name, column.encodings)
            elif name in ("source", "run_id"):
                assert dictionary, (f.name, name, column.encodings)


def test_second_run_is_incremental(first_run):
    web, server, config, wh, _summary = first_run
    before = _rows(wh)
    server.clear_requests()
    again = run_once(config, wh)
    assert again.committed and again.articles_written == 0 and again.feeds_not_modified == len(web.feeds)
    feed_requests = [r for r in server.requests if r.path in {f.path for f in web.feeds}]
    assert feed_requests and all(r.if_none_match for r in feed_requests)
    assert all(r.status == 304 for r in feed_requests)
    page_paths = {p.path for p in web.pages if p.status == "ok"}
    assert not [r for r in server.requests if r.path in page_paths], "a stored page was fetched again"
    after = _rows(wh)
    assert len(after) == len(before)


def test_same_run_id_twice_adds_nothing(first_run):
    _web, _server, config, wh, summary = first_run
    n = len(_rows(wh))
    again = run_once(config, wh, run_id=summary.run_id)
    assert again.already_committed and len(_rows(wh)) == n


def test_uncommitted_files_are_invisible_and_cleaned(first_run, tmp_path):
    _web, _server, config, wh, _summary = first_run
    n = len(_rows(wh))
    import pyarrow as pa

    src = next((wh / "articles").glob("*/*.parquet"))
    table = pq.read_table(src, partitioning=None)
    crashed = "20990101T000000Z-deadbe"
    table = table.set_column(table.schema.get_field_index("run_id"), "run_id", pa.array([crashed] * table.num_rows))
    fake = src.parent / f"part-{crashed}-0.parquet"
    pq.write_table(table, fake)  # a crashed run's file: rows stamped with a run that never committed ...
    try:
        assert len(_rows(wh)) == n  # ... so nobody sees it
    finally:
        fake.unlink(missing_ok=True)


def test_cli_query_and_run(first_run, tmp_path):
    web, server, _config, wh, _summary = first_run
    exe = [sys.executable, "-m", "pipeline.cli"]
    out = subprocess.run(exe + ["query", "--warehouse", str(wh), "--format", "csv", "select count(*) as n from articles"],
                         capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "n" and int(lines[1]) >= 40
    out = subprocess.run(exe + ["query", "--warehouse", str(wh), "--format", "json",
                                "select source, count(*) as n from articles group by 1 order by 1"],
                         capture_output=True, text=True, check=True)
    assert len(out.stdout.strip().splitlines()) == len({p.outlet for p in web.pages})
    bad = subprocess.run(exe + ["query", "--warehouse", str(wh), "select nope from articles"], capture_output=True, text=True)
    assert bad.returncode == 1 and "query failed" in bad.stderr
    # `run` through the CLI on a fresh warehouse, with the config in a file and the warehouse from the env.
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(web.config_yaml(server.base_url), encoding="utf-8")
    env = dict(os.environ, NEWSINGEST_WAREHOUSE=str(tmp_path / "wh2"))
    res = subprocess.run(exe + ["run", "--config", str(cfg), "-q"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "committed" in res.stdout and any((tmp_path / "wh2" / "_log").glob("*.json"))
    stage = r"[\d.]+ s \(CPU [\d.]+ s( \+ [\d.]+ s in workers)?\), \d+ MB"
    assert re.search(rf"stages +feeds {stage}; pages {stage}; commit {stage}\n", res.stdout), res.stdout
    # --json carries the same figures: a second run (every feed answers 304) still meters its stages
    res = subprocess.run(exe + ["run", "--config", str(cfg), "-q", "--json"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["new_items"] == 0 and [s["stage"] for s in out["stages"]][:3] == ["feeds", "pages", "commit"]


@pytest.mark.parametrize("precleaned", [True, False])
def test_fetched_pages_are_precleaned_for_a_commit_in_process(demo, tmp_path, precleaned):
    """`fetch_pages` precleans each article text where it extracts it (the cleaning without a site template,
    with the cleaned text's fingerprint), unless asked not to (a page stage saved as JSON for an Airflow
    commit task does not keep it: no work is thrown away)."""
    import numpy as np

    from pipeline.clean import clean_text
    from pipeline.dedup import fingerprint
    from pipeline.run import fetch_feeds, fetch_pages, select_pages

    web, server = demo
    config = parse_config(web.config_yaml(server.base_url))
    feeds, _ = fetch_feeds(config, None, {}, "t")
    tasks, _, _ = select_pages([i for fo in feeds for i in fo.items], np.zeros(0, dtype=np.uint64), {}, NOW)
    pages, _, _ = fetch_pages(config, tasks[:8], tmp_path, "t", "t", precleaned=precleaned)
    with_text = [po for po in pages if po.has_text]
    assert len(with_text) >= 4
    if not precleaned:
        assert all(po.precleaned is None for po in pages)
        return
    assert sum(po.precleaned.fingerprint is not None for po in with_text) >= 4
    texts = dict(zip(*_spool_columns(tmp_path / "texts-t.parquet"), strict=True))
    for po in with_text:
        pre, ex = po.precleaned, po.extracted
        expected = clean_text(texts[po.task.article_id], title=ex.title or po.task.item.title, site_name=ex.site_name)
        assert pre.cleaned.text == expected.text and pre.cleaned.title == expected.title
        if pre.fingerprint is not None:
            assert pre.fingerprint.content_hash == fingerprint(expected.text, config.dedup).content_hash


def test_a_big_page_fetch_keeps_its_log_as_a_table(demo, tmp_path, monkeypatch):
    """Past `_LOG_COMPACT_ROWS` fetches, `fetch_pages` keeps its fetch-log rows as table chunks (a dict a
    row cost 80 MB over 100,000 pages), spilled to an Arrow file in its staging directory and mapped back
    at the end: the same rows, stamped with the run id, also through a page stage."""
    import numpy as np

    from pipeline import run as run_mod
    from pipeline.run import (
        fetch_feeds,
        fetch_log_table,
        fetch_pages,
        load_page_stage,
        save_page_stage,
        select_pages,
    )

    web, server = demo
    config = parse_config(web.config_yaml(server.base_url))
    feeds, _ = fetch_feeds(config, None, {}, "t")
    tasks, _, _ = select_pages([i for fo in feeds for i in fo.items], np.zeros(0, dtype=np.uint64), {}, NOW)
    tasks = tasks[:10]
    _, rows, _ = fetch_pages(config, tasks, tmp_path / "a", "t", "run-a")
    assert isinstance(rows, list) and rows  # under the threshold: dicts, as before
    monkeypatch.setattr(run_mod, "_LOG_COMPACT_ROWS", 3)
    pages, table, raw = fetch_pages(config, tasks, tmp_path / "b", "t", "run-b")
    assert not isinstance(table, list) and table.num_rows == len(rows)
    assert (tmp_path / "b" / "fetch-log-t.arrow").stat().st_size > 0 and not (tmp_path / "a" / "fetch-log-t.arrow").exists()

    def key(t):
        return sorted(zip(t["url"].to_pylist(), t["outcome"].to_pylist(), t["http_status"].to_pylist(),
                          t["bytes"].to_pylist(), strict=True))

    assert key(table) == key(fetch_log_table([rows]))
    assert set(table["run_id"].to_pylist()) == {"run-b"}
    save_page_stage(tmp_path / "b" / "pages-t.json", list(pages), table, raw)
    _, loaded, _ = load_page_stage(tmp_path / "b" / "pages-t.json")
    assert fetch_log_table([loaded]).equals(table)


def _spool_columns(path: Path) -> tuple[list[str], list[str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table["article_id"].to_pylist(), table["text"].to_pylist()
