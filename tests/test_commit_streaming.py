"""The commit streams a run's texts in chunks (`commit.chunk_rows`) with the same output as holding them all.

Pages are made up here (several sites with a page template's boilerplate, syndicated copies across sites,
failed fetches, pages that are no article, link-less items, several publication days) and committed three
ways: chunks of 3 with the texts spooled to a staging file (as `fetch_pages` does), one chunk with the texts
in memory (as `watch` does), and the all-in-memory reference (`build_articles` + `assign_clusters`, what the
commit did before it streamed). Rows (real Parquet, read back through DuckDB), templates, retries and
dedup index entries must be identical.
"""

from __future__ import annotations

import json
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.records import Extracted, FeedItem, FetchResult
from pipeline.run import (
    PageList,
    PageOutcome,
    PageSpool,
    PageTask,
    Precleaned,
    RunSummary,
    TextSpool,
    _articles_table,
    _preclean,
    assign_clusters,
    build_articles,
    commit_run,
    item_article_id,
    load_page_stage,
    precleaned_from_table,
    precleaned_stamp,
    precleaned_table,
    save_page_stage,
    save_page_tasks,
)
from pipeline.settings import Config
from pipeline.views import connect
from pipeline.warehouse import Warehouse

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WORDS = ("harbour council budget river bridge school hospital market storm festival museum railway election "
         "court ferry mayor minister union farmers prices energy wind solar housing teachers nurses police coast "
         "valley airport shipping exports inflation wages tourism library stadium season league record harvest").split()


def _sentence(rng: random.Random, n: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _pages(seed: int, n: int, first: int = 0) -> tuple[list[PageOutcome], list[PageTask]]:
    """`n` page outcomes on 4 sites (a few canonical URLs on another site), with copies, failures and
    non-articles; plus two link-less items."""
    rng = random.Random(seed)
    boiler = {s: [f"Subscribe to the {s} newsletter today", f"Follow {s} on social media for updates",
                  f"Copyright {s} Media Group all rights reserved"] for s in ("alpha", "beta", "gamma", "delta")}
    bodies: list[str] = []
    outcomes = []
    for k in range(first, first + n):
        site = ("alpha", "beta", "gamma", "delta")[k % 4]
        url = f"https://{site}.example/news/{k}.html"
        published = NOW - timedelta(days=k % 3, hours=k % 7) if k % 5 else None
        item = FeedItem(source=f"{site}-feed", feed_url=f"https://{site}.example/rss", url=url, guid=f"g{k}",
                        title=f"Story {k}", summary=f"summary {k}", published_at=published)
        aid, _ = item_article_id(item)
        task = PageTask(aid, item, first_seen_at=NOW - timedelta(minutes=k))
        if k % 11 == 3:  # a failed fetch: a retry (500) or given up (410)
            status = 410 if k % 2 else 500
            res = FetchResult(url=url, kind="page", outcome="http_error", http_status=status, error=f"HTTP {status}")
            outcomes.append(PageOutcome(task, res, None, NOW))
            continue
        res = FetchResult(url=url, kind="page", outcome="ok", http_status=200)
        if k % 13 == 5:
            outcomes.append(PageOutcome(task, res, Extracted(status="no_article", title="Index page"), NOW))
            continue
        if bodies and k % 6 == 0:  # a syndicated copy of an earlier story (on another site)
            body = rng.choice(bodies)
        elif k % 17 == 9:
            body = _sentence(rng, 8)  # too short once cleaned
        else:
            body = "\n".join(_sentence(rng) for _ in range(rng.randint(5, 9)))
            bodies.append(body)
        b = boiler[site]
        text = "\n".join([b[0], body, b[1], b[2]])
        canonical = f"https://alpha.example/news/{k}.html" if k % 19 == 7 else url
        ex = Extracted(status="ok", title=f"Story {k}", text=text, published_at=published,
                       published_source="meta" if published else None, canonical_url=canonical, language="en")
        outcomes.append(PageOutcome(task, res, ex, NOW))
    linkless = []
    for j in range(2):
        item = FeedItem(source="alpha-feed", feed_url="https://alpha.example/rss", url=None, guid=f"nolink-{seed}-{j}",
                        title=f"No link {j}", link="javascript:void(0)", link_error="not http(s)")
        linkless.append(PageTask(item_article_id(item)[0], item, first_seen_at=NOW))
    return outcomes, linkless


def _spool(outcomes: list[PageOutcome], path: Path) -> list[PageOutcome]:
    """What fetch_pages does: texts to a TextSpool, stubs keep the rest (pages in another order than the
    spool's, as when fetches complete out of order)."""
    spool = TextSpool(path, flush_rows=4)
    for po in reversed(outcomes):
        if po.extracted is not None and po.extracted.text:
            spool.add(po.task.article_id, po.extracted.text)
            po.extracted.text, po.text_file = None, path
    spool.close()
    return outcomes


def _precleaned(outcomes: list[PageOutcome], skip: int = 0) -> list[PageOutcome]:
    """What fetch_pages' workers do: each article text cleaned without a template and fingerprinted (with
    `skip`, every `skip`-th page is not, as a page whose precleaning failed)."""
    config = Config()
    pres = _preclean([(po.extracted or Extracted(status="error"), po.task.item.title) for po in outcomes],
                     config.extract.min_words, config.dedup)
    for n, (po, pre) in enumerate(zip(outcomes, pres, strict=True)):
        po.precleaned = None if skip and n % skip == 0 else pre
    assert sum(pre is not None for pre in pres) > len(outcomes) // 2
    return outcomes


def _on_disk(outcomes: list[PageOutcome], directory: Path) -> PageList:
    """What fetch_pages does with the pages: pickled to a PageSpool as they arrive (here in reverse), handed
    on in task order."""
    spool = PageSpool(directory)
    at = {i: spool.append(outcomes[i]) for i in reversed(range(len(outcomes)))}
    return PageList(spool, [at[i] for i in range(len(outcomes))])


def _commit(wh: Warehouse, run_id: str, outcomes: list[PageOutcome], linkless: list[PageTask], chunk: int,
            now: datetime, pool=None) -> RunSummary:
    # with a pool as run_once calls it: the page outcomes handed over, emptied once the rows are built
    summary = commit_run(Config(), wh, run_id, feed_outcomes=[], page_outcomes=outcomes, linkless=linkless,
                         log_rows=[], raw_files=[], started_at=now, now=now, chunk_rows=chunk, pool=pool,
                         release_pages=pool is not None)
    if isinstance(outcomes, list):
        assert (outcomes == []) == (pool is not None)
    return summary


def _commit_staged(wh: Warehouse, run_id: str, outcomes: list[PageOutcome], linkless: list[PageTask],
                   now: datetime) -> RunSummary:
    """What the Airflow DAG does: two fetch tasks precleaned their pages (some not, as where precleaning
    failed) and staged them with their precleaned texts; the commit task commits the stages."""
    from pipeline import orchestration

    staging, stamp = wh.staging_dir(run_id), precleaned_stamp(Config())
    outcomes = _precleaned(outcomes, skip=5)
    results = []
    for k, part in enumerate((outcomes[:25], outcomes[25:])):
        part = _spool(part, staging / f"texts-{k:04d}.parquet")
        path = staging / f"pages-{k:04d}.json"
        save_page_stage(path, part, [], None, precleaned_stamp=stamp)
        # the commit gets them back (else it would clean every text, and store the same rows just as well)
        loaded, _, _ = load_page_stage(path, precleaned_stamp=stamp)
        assert [po.precleaned is not None for po in loaded] == [po.precleaned is not None for po in part]
        assert any(po.precleaned is not None for po in loaded)
        results.append({"path": str(path)})
    save_page_tasks(staging / "linkless.json", linkless)
    counts = orchestration.commit(Config(), str(wh.root), run_id, [], results, lock_wait_s=0, now=now)
    assert not staging.exists()
    assert counts.pop("new_items") == len(outcomes) + len(linkless)  # the fixture's other commits leave it 0
    # the task's result carries the commit's passes, metered (pipeline.metering)
    assert [s["stage"] for s in counts.pop("stages")] == ["commit", "commit/rows", "commit/dedup", "commit/files",
                                                          "commit/views"]
    summary = RunSummary(run_id)
    for key, value in counts.items():
        if hasattr(summary, key):
            setattr(summary, key, value)
    return summary


def _articles(wh: Warehouse) -> list[dict]:
    con = connect(wh.root)
    try:
        return con.sql("SELECT * FROM articles ORDER BY article_id").to_arrow_table().to_pylist()
    finally:
        con.close()


def _index(wh: Warehouse) -> list[dict]:
    tables = [wh.read_table(f["path"]) for f in wh.snapshot().live("dedup_index")]
    rows = pa.concat_tables(tables).to_pylist() if tables else []
    return sorted(rows, key=lambda r: r["doc_id"])


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """Two runs (the second dedups against the first's index) committed in chunks of 3 from a spool (pages
    too), in one chunk from memory, and in chunks of 7 cleaned and fingerprinted in a process pool (slices
    of 2)."""
    from pipeline import run

    root = tmp_path_factory.mktemp("streaming")
    out = {}
    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    # (commit, texts sent to the pool's dedup pass, pages cleaned again, pages read, pages with kept keys)
    jobs: list[tuple[str, int, int, int, int]] = []
    run_module = run  # (`run` is a loop's below)
    start_dedup, spool_class = run._start_dedup, run.PageSpool

    def recorded(config, wh, pool, pages, stale, *rest):
        reads = []
        get, keys_of = spool_class.get, spool_class.keys_of

        def counted_get(spool, i):
            reads.append(i)
            return get(spool, i)

        def counted_keys(spool, i, into, now):
            fp = keys_of(spool, i, into, now)
            kept.append(fp is not None and fp is not run_module.NO_FINGERPRINT)
            return fp

        kept: list[bool] = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(spool_class, "get", counted_get)
            mp.setattr(spool_class, "keys_of", counted_keys)
            job = start_dedup(config, wh, pool, pages, stale, *rest)
        jobs.append((wh.root.name, len(job.future.result()[0]) if job.future else 0, len(stale), len(reads),
                     sum(kept)))
        return job

    out["dedup jobs"] = jobs
    patch = pytest.MonkeyPatch()
    patch.setattr(run, "_start_dedup", recorded)
    try:
        for name, chunk, spooled, with_pool in (("chunked", 3, True, None), ("whole", 1_000_000, False, None),
                                                ("pooled", 7, True, pool), ("precleaned", 5, True, pool),
                                                ("staged", 0, True, None)):
            wh = Warehouse(root / name)
            summaries = []
            for run, (seed, first) in enumerate(((1, 0), (2, 60))):
                outcomes, linkless = _pages(seed, 60, first)
                if name == "staged":
                    summaries.append(_commit_staged(wh, f"r{run}", outcomes, linkless, NOW + timedelta(hours=run)))
                    continue
                if name == "precleaned":
                    outcomes = _precleaned(outcomes, skip=5)  # some texts are cleaned in the commit only
                if spooled:
                    outcomes = _spool(outcomes, wh.staging_dir(f"r{run}") / "texts-0000.parquet")
                if name in ("chunked", "precleaned"):
                    outcomes = _on_disk(outcomes, wh.staging_dir(f"r{run}"))
                summaries.append(_commit(wh, f"r{run}", outcomes, linkless, chunk, NOW + timedelta(hours=run),
                                         with_pool))
            out[name] = (wh, summaries)
    finally:
        patch.undo()
        pool.shutdown()
    return out


def test_a_commit_with_a_pool_runs_its_dedup_pass_there_while_it_builds_the_rows(committed):
    """With a process pool, pass 3 runs in it (keys and fingerprints first, the pages its templates mark
    cleaned before the rows): each run of the two pooled commits did, with clusters found and pages cleaned
    again; their rows, index and counts are the in-process commit's (the tests above)."""
    jobs = committed["dedup jobs"]
    assert [job[0] for job in jobs] == ["pooled", "pooled", "precleaned", "precleaned"]
    assert all(job[1] > 0 for job in jobs)  # copies found in the pool
    for name, _, stale, reads, kept in jobs:
        if name == "precleaned":  # pages spooled to disk: their keys were kept, only the stale ones are read
            assert stale > 0 and reads == stale
        else:  # pages in memory, none precleaned: all read to be cleaned, nothing kept
            assert kept == 0 and reads == stale > 40
    assert sum(job[4] for job in jobs if job[0] == "precleaned") >= 1  # most pages here are marked (stale)


def test_the_page_spool_keeps_the_pass_3_keys_a_page_gives(tmp_path):
    """PageSpool keeps each precleaned page's pass 3 keys and fingerprint as it is appended; `keys_of` gives
    what `_start_dedup` takes from the page read back (first seen `now` where the task has none)."""
    from pipeline.run import NO_FINGERPRINT, _DedupKeys, _publication_time

    outcomes, _ = _pages(5, 60)
    outcomes = _precleaned(outcomes, skip=7)
    for po in outcomes[::4]:
        po.task.first_seen_at = None  # a task without a first-seen time: the commit's
    pages = _on_disk(outcomes, tmp_path)
    later = NOW + timedelta(hours=2)
    kept, read = _DedupKeys(), _DedupKeys()
    kept_fps, read_fps = [], []
    counts = {"kept": 0, "no text": 0, "read": 0}
    for k in range(len(pages)):
        fp = pages.keys_of(k, kept, later)
        po = pages[k]
        if fp is NO_FINGERPRINT:
            counts["no text"] += 1
            assert po.precleaned is not None and po.precleaned.fingerprint is None
            continue
        if fp is None:
            counts["read"] += 1
            assert po.precleaned is None or po.extracted is None
            continue
        counts["kept"] += 1
        pre = po.precleaned
        read.add(po.task.article_id, _publication_time(po.extracted, pre.cleaned.published_at)[0],
                 po.task.first_seen_at or later, po.task.item.source, pre.fingerprint)
        kept_fps.append(fp)
        read_fps.append(pre.fingerprint)
    assert counts["kept"] > 30 and counts["read"] > 5 and counts["no text"] + counts["read"] > 10, counts
    # the keys (content hash and tokens included), then the arrays
    assert list(kept.in_order()) == list(read.in_order())
    for (minhash, sample), b in zip(kept_fps, read_fps, strict=True):
        assert minhash.dtype == b.minhash.dtype and np.array_equal(minhash, b.minhash)
        assert sample.dtype == b.sample.dtype and np.array_equal(sample, b.sample)
    in_memory = PageList.of(outcomes)  # a spool in memory keeps nothing: the commit reads its pages
    assert in_memory.keys_of(0, _DedupKeys(), later) is None


def test_chunked_and_whole_commits_store_the_same_rows_templates_and_index(committed):
    (chunked, s_chunked), (whole, s_whole) = committed["chunked"], committed["whole"]
    rows = _articles(chunked)
    assert len(rows) == len({r["article_id"] for r in rows}) > 100
    assert rows == _articles(whole)
    statuses = {r["extraction_status"] for r in rows}
    assert {"ok", "fetch_failed", "no_article", "too_short", "invalid_url"} <= statuses
    assert sum(1 for r in rows if r["duplicate_of"]) >= 5  # copies were found, within and across the runs
    assert len({r["published_date"] for r in rows}) >= 3
    assert chunked.load_state()["templates"] == whole.load_state()["templates"]
    assert chunked.load_state()["pending"] == whole.load_state()["pending"]
    assert _index(chunked) == _index(whole) and _index(chunked)
    # the index entries are streamed to a staging file and put in place: entries like write_table's
    from pipeline.dedup import DedupIndex
    from pipeline.warehouse import schema_fingerprint

    entries = chunked.snapshot().live("dedup_index")
    assert entries and all(e["schema"] == schema_fingerprint(DedupIndex().to_arrow().schema) for e in entries)
    assert sum(e["rows"] for e in entries) == len(_index(chunked))
    assert max(pq.ParquetFile(chunked.root / e["path"]).metadata.num_row_groups for e in entries) > 1  # chunks of 3
    assert [s.counts() for s in s_chunked] == [s.counts() for s in s_whole]
    # Chunks of 3: a day's rows in several row groups; everything else as one chunk.
    files = chunked.snapshot().live("articles")
    assert max(pq.ParquetFile(chunked.root / f["path"]).metadata.num_row_groups for f in files) > 1
    # The commit's own staging files are gone; the fetch's spool stays for the caller to remove.
    assert not (chunked.staging_dir("r1") / "commit").exists()
    assert (chunked.staging_dir("r1") / "texts-0000.parquet").exists()


def _assert_same_as_whole(committed, name: str) -> None:
    (wh, summaries), (whole, s_whole) = committed[name], committed["whole"]
    rows = _articles(wh)
    assert len(rows) > 100 and rows == _articles(whole)
    assert sum(1 for r in rows if r["duplicate_of"]) >= 5
    assert wh.load_state()["templates"] == whole.load_state()["templates"]
    assert _index(wh) == _index(whole)
    assert [s.counts() for s in summaries] == [s.counts() for s in s_whole]


def test_a_commit_cleaning_in_a_process_pool_stores_the_same(committed):
    _assert_same_as_whole(committed, "pooled")


def test_texts_precleaned_where_extracted_store_the_same(committed):
    """Pages precleaned by the fetch's workers (no site template yet) store the same rows: the texts of a
    site whose template, once learned, marks one of their lines are cleaned again in the commit, with the
    texts that were not precleaned."""
    _assert_same_as_whole(committed, "precleaned")


def test_page_stages_committed_by_the_airflow_commit_task_with_their_precleaned_texts_store_the_same(committed):
    """The DAG's fetch tasks preclean their pages and stage the precleaned texts beside the page stage; the
    commit task takes them (see _commit_staged) and stores the same rows as the in-memory commit."""
    _assert_same_as_whole(committed, "staged")


def test_precleaned_texts_go_through_a_table_unchanged():
    from pipeline.clean import CleanResult, preclean_text
    from pipeline.dedup import fingerprint

    text = "\n".join(_sentence(random.Random(k)) for k in range(8))
    cleaned, probe = preclean_text(text, title="Story", site_name="Alpha")
    pres = [Precleaned(cleaned, probe, fingerprint(cleaned.text)),
            Precleaned(CleanResult("Two words", None, ["A. Writer"], datetime(2026, 11, 3, 14, 5), "byline",
                                   "Wire"), probe, None),  # naive: the outlet's local time
            Precleaned(CleanResult("x", "T", [], datetime(2026, 11, 3, 14, 5, 7, 120, tzinfo=UTC), "date_line", None),
                       probe, fingerprint("")),
            None]
    outcomes, _ = _pages(9, len(pres))
    for po, pre in zip(outcomes, pres, strict=True):
        po.precleaned = pre
    back = precleaned_from_table(precleaned_table(outcomes, "stamp"))
    assert set(back) == {po.task.article_id for po in outcomes[:3]}
    for po in outcomes[:3]:
        got, want = back[po.task.article_id], po.precleaned
        assert got.cleaned == want.cleaned
        # naive stays naive (equal to an aware time would be False anyway), aware keeps its zone
        assert repr(got.cleaned.published_at) == repr(want.cleaned.published_at)
        for a in ("keys", "long_keys", "tested", "tested_long"):
            x, y = getattr(got.probe, a), getattr(want.probe, a)
            assert x.dtype == y.dtype and x.flags.writeable and np.array_equal(x, y)
        if want.fingerprint is None:
            assert got.fingerprint is None
        else:
            assert got.fingerprint.content_hash == want.fingerprint.content_hash
            assert got.fingerprint.n_tokens == want.fingerprint.n_tokens
            for a, dtype in (("minhash", np.uint32), ("sample", np.uint64)):
                x = getattr(got.fingerprint, a)
                assert x.dtype == dtype and np.array_equal(x, getattr(want.fingerprint, a))


def test_precleaned_texts_of_other_settings_or_unreadable_are_left_to_the_commit(tmp_path, caplog):
    outcomes = _precleaned(_pages(5, 12)[0])
    outcomes = _spool(outcomes, tmp_path / "texts-0000.parquet")
    path = tmp_path / "pages-0000.json"
    stamp = precleaned_stamp(Config())
    save_page_stage(path, outcomes, [], None, precleaned_stamp=stamp)
    sidecar = tmp_path / "pages-0000.precleaned.parquet"
    assert sidecar.exists()

    def attached(**kw) -> int:
        return sum(po.precleaned is not None for po in load_page_stage(path, **kw)[0])

    assert attached(precleaned_stamp=stamp) == sum(po.precleaned is not None for po in outcomes) > 0
    assert attached() == 0  # a caller that does not ask for them
    # another min_words or dedup setting at the commit: its own cleaning decides
    other = Config.model_validate({"dedup": {"shingle_size": 4}})
    assert attached(precleaned_stamp=precleaned_stamp(other)) == 0
    sidecar.write_bytes(b"not parquet")
    with caplog.at_level("WARNING", logger="newsingest.run"):
        assert attached(precleaned_stamp=stamp) == 0
    assert "not used" in caplog.text
    sidecar.unlink()
    assert attached(precleaned_stamp=stamp) == 0  # lost: a warning, never an error of the commit
    # a stage saved without them names none
    save_page_stage(path, outcomes, [], None)
    assert json.loads(path.read_text())["precleaned"] is None


def test_a_precleaned_text_stands_unless_its_sites_template_marks_a_line(tmp_path):
    """The commit takes a precleaned text as it is (a marker put in it is stored) unless the site's template
    marks one of its lines: then the text is cleaned again (the marker is gone), with the template."""
    from pipeline.clean import SiteTemplate
    from pipeline.run import _page_site

    outcomes, linkless = _pages(5, 40)
    # a fifth site whose pages carry no line of a template: its precleaned texts stand
    for po in outcomes[::4]:
        if po.extracted is not None and po.extracted.text:
            body = [ln for ln in po.extracted.text.splitlines() if "alpha" not in ln.lower()]
            po.extracted.text = "\n".join(body)
    _precleaned(outcomes)
    marked = []
    for po in outcomes:
        if po.precleaned is not None:
            po.precleaned.cleaned.text += "\nMARKER precleaned text taken as it is, word for word here."
            marked.append(po)
    wh = Warehouse(tmp_path / "wh")
    _commit(wh, "r0", _on_disk(outcomes, wh.staging_dir("r0")), linkless, 4, NOW)
    templates = {site: SiteTemplate.from_dict(t) for site, t in wh.load_state()["templates"].items()}
    stored = {r["article_id"]: r for r in _articles(wh)}
    stood = stale = 0
    for po in marked:
        site = _page_site(po)
        row = stored[po.task.article_id]
        if row["extraction_status"] != "ok":
            continue  # too short, with or without the marker
        text = row["text"]
        if templates[site].marks_any(po.precleaned.probe):
            stale += 1
            assert "MARKER" not in text
        else:
            stood += 1
            assert text.endswith("MARKER precleaned text taken as it is, word for word here.")
    assert stood >= 5 and stale >= 5


def test_the_streamed_commit_stores_what_the_in_memory_build_gives(committed, tmp_path):
    """The reference: build_articles + assign_clusters on every row in memory (the commit before streaming),
    run for the same two runs on a warehouse holding the same earlier runs."""
    chunked, _ = committed["chunked"]
    stored = {r["article_id"]: r for r in _articles(chunked)}
    ref_wh = Warehouse(tmp_path / "ref")
    state = {"feeds": {}, "pending": {}, "templates": {}}
    n_ref = 0
    for run, (seed, first) in enumerate(((1, 0), (2, 60))):
        outcomes, linkless = _pages(seed, 60, first)
        now = NOW + timedelta(hours=run)
        rows = build_articles(Config(), outcomes, linkless, state, f"r{run}", now, RunSummary(f"r{run}"))
        delta = assign_clusters(Config(), ref_wh, rows, f"r{run}", now, RunSummary(f"r{run}"))
        # the next run's index window holds this run's entries: commit them the way commit_run does
        with ref_wh.transaction(f"r{run}", "test"):
            from pipeline.warehouse import RunEntry

            entry = ref_wh.write_table(f"dedup_index/part-r{run}-0.parquet", delta)
            ref_wh.commit(RunEntry(run_id=f"r{run}", started_at=now.isoformat(), committed_at=now.isoformat(),
                                   counts={}, files=[entry], state_file=None, seen_file=None))
        n_ref += len(rows)
        for ref in _articles_table(rows).to_pylist():
            got = {k: v for k, v in stored[ref["article_id"]].items() if k in ref}
            assert got == ref
    assert len(stored) == n_ref
    assert chunked.load_state()["templates"] == state["templates"]
    assert _index(chunked) == _index(ref_wh)


def test_a_page_stage_names_its_text_spool_and_loads_it_back(tmp_path):
    outcomes, _ = _pages(3, 12)
    texts = {po.task.article_id: po.extracted.text for po in outcomes if po.extracted and po.extracted.text}
    outcomes = _spool(outcomes, tmp_path / "texts-0001.parquet")
    save_page_stage(tmp_path / "pages-0001.json", outcomes, [], None)
    loaded, _, _ = load_page_stage(tmp_path / "pages-0001.json")
    assert [po.task.article_id for po in loaded] == [po.task.article_id for po in outcomes]
    assert {po.task.article_id for po in loaded if po.text_file == tmp_path / "texts-0001.parquet"} == set(texts)
    assert all(po.extracted is None or po.extracted.text is None for po in loaded)
    spooled = pq.read_table(tmp_path / "texts-0001.parquet").to_pylist()
    assert {r["article_id"]: r["text"] for r in spooled} == texts


def test_a_lost_text_spool_fails_the_commit_and_leaves_nothing(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    outcomes, linkless = _pages(4, 10)
    outcomes = _spool(outcomes, wh.staging_dir("r0") / "texts-0000.parquet")
    (wh.staging_dir("r0") / "texts-0000.parquet").unlink()
    with pytest.raises(RuntimeError, match="text spool"):
        _commit(wh, "r0", outcomes, linkless, 3, NOW)
    assert not wh.is_committed("r0") and not wh.snapshot().live("articles")


def _staged_rows(tmp_path, days: int) -> tuple[list, Path]:
    """40 article rows published over `days` days, staged as a commit stages them (row groups of 7)."""
    rows = []
    for k in range(40):
        item = FeedItem(source="s", feed_url="https://s.example/rss", url=f"https://s.example/{k}", guid=str(k),
                        published_at=NOW - timedelta(days=k % days))
        row = build_articles(Config(), [], [PageTask(item_article_id(item)[0], item, first_seen_at=NOW)],
                             {"pending": {}, "templates": {}}, "r9", NOW, RunSummary("r9"))[0]
        row.published_at, row.cluster_id = item.published_at, row.article_id
        rows.append(row)
    staged = tmp_path / "articles.parquet"
    pq.write_table(_articles_table(rows), staged, row_group_size=7)
    return rows, staged


def test_article_files_stay_bounded_in_open_files_and_keep_each_days_row_order(tmp_path):
    """More days than open files: a day whose file was closed goes on in its next part; every row once,
    each day's rows in staging order."""
    from pipeline.run import StreamedArticles, _write_article_files
    from pipeline.schema import ARTICLE_SCHEMA

    wh = Warehouse(tmp_path / "wh")
    rows, staged = _staged_rows(tmp_path, days=5)
    clusters = {rows[3].article_id: ("c3", rows[1].article_id, "near", 0.5)}
    arts = StreamedArticles(staged, len(rows), None, clusters, None)  # type: ignore[arg-type]
    entries = _write_article_files(wh, arts, "r9", chunk=4, max_open=2)
    assert sum(e["rows"] for e in entries) == 40
    assert len({e["partition"] for e in entries}) == 5 and len(entries) > 5  # days split over parts
    by_day: dict[str, list[str]] = {}
    for e in entries:  # in (day, part) order
        t = pq.read_table(wh.root / e["path"])
        assert t.schema.equals(ARTICLE_SCHEMA, check_metadata=False)
        by_day.setdefault(e["partition"], []).extend(t["article_id"].to_pylist())
    for day, ids in by_day.items():
        want = [r.article_id for r in rows if f"published_date={r.published_at.date().isoformat()}" == day]
        assert ids == want
    got = {r["article_id"]: r for e in entries for r in pq.read_table(wh.root / e["path"]).to_pylist()}
    assert (got[rows[3].article_id]["cluster_id"], got[rows[3].article_id]["similarity"]) == ("c3", 0.5)
    assert got[rows[4].article_id]["cluster_id"] == rows[4].article_id


def test_a_failed_write_of_the_article_files_fails_them_all_and_leaves_none(tmp_path, monkeypatch):
    """The files' chunks are written by a writer thread: its error (a full disk) is the files' error, nothing
    is written after it, and the files still open are dropped."""
    from pipeline.run import StreamedArticles, _write_article_files
    from pipeline.warehouse import TableWriter

    wh = Warehouse(tmp_path / "wh")
    rows, staged = _staged_rows(tmp_path, days=3)
    calls = []
    real_write = TableWriter.write

    def failing(self, table):
        calls.append(table.num_rows)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(self, table)

    monkeypatch.setattr(TableWriter, "write", failing)
    with pytest.raises(OSError, match="No space left"):
        _write_article_files(wh, StreamedArticles(staged, len(rows), None, {}, None), "r9", chunk=4, max_open=2)  # type: ignore[arg-type]
    assert len(calls) == 3  # nothing written after the failure
    # the files still open were dropped; one closed before (max_open) stays, for the transaction's clean-up
    left = [p for p in wh.root.rglob("*") if p.is_file()]
    assert left and all(pq.read_metadata(p).num_rows for p in left)


def test_a_page_spool_gives_back_its_pages_and_frees_them(tmp_path):
    outcomes, _ = _pages(5, 30)
    outcomes = _spool(outcomes, tmp_path / "texts.parquet")
    pages = _on_disk(outcomes, tmp_path / "pages")
    assert not list((tmp_path / "pages").iterdir())  # an unnamed file: nothing to clean up after a crash
    assert len(pages) == 30 and [p.task.article_id for p in pages] == [o.task.article_id for o in outcomes]
    assert pages[3] == outcomes[3] and pages[3] is not outcomes[3]  # read back from disk
    assert [pages.article_id(k) for k in range(30)] == [o.task.article_id for o in outcomes]
    assert pages.text_file(0) == tmp_path / "texts.parquet"
    picked = pages.subset([29, 0, 7])
    assert [p.task.article_id for p in picked] == [outcomes[k].task.article_id for k in (29, 0, 7)]
    assert [p.task.article_id for p in pages[10:12]] == [o.task.article_id for o in outcomes[10:12]]
    assert picked.site(0) == pages.site(29) and all(pages.site(k) for k in range(30))
    in_memory = PageList.of(outcomes)
    assert in_memory[5] is outcomes[5] and PageList.of(pages) is pages
    pages.spool.release()
    assert pages.article_id(4) == outcomes[4].task.article_id  # the ids stay
    with pytest.raises(ValueError, match="released"):
        pages[0]


def test_a_commit_reads_each_spooled_page_once_and_its_probe_without_it(tmp_path, monkeypatch):
    """The triage reads back only the pages without a text, pass 1 only the template probes (spilled beside
    the pages), pass 2 each page with a text: one read a page (three, before)."""
    from collections import Counter

    from pipeline.run import PageSpool

    wh = Warehouse(tmp_path / "wh")
    outcomes, linkless = _pages(7, 40)
    outcomes = _precleaned(outcomes, skip=5)
    outcomes = _spool(outcomes, wh.staging_dir("r0") / "texts-0000.parquet")
    pages = _on_disk(outcomes, wh.staging_dir("r0"))
    probed = [k for k in range(len(pages)) if pages.precleaned(k)]
    assert probed and len(probed) < len(pages)
    for k in probed:
        got, want = pages.probe(k), outcomes[k].precleaned.probe
        for name in ("keys", "long_keys", "tested", "tested_long"):
            assert getattr(got, name).dtype == getattr(want, name).dtype
            assert getattr(got, name).tolist() == getattr(want, name).tolist(), name
    with_text = [k for k in range(len(pages)) if pages.with_text(k)]
    assert with_text == [k for k, po in enumerate(outcomes) if po.extracted is not None
                         and po.extracted.status == "ok" and po.has_text]
    assert 0 < len(with_text) < len(pages)  # and failed fetches and non-articles

    reads: Counter[int] = Counter()
    read = PageSpool.get

    def counted(self, i):
        reads[i] += 1
        return read(self, i)

    monkeypatch.setattr(PageSpool, "get", counted)
    summary = _commit(wh, "r0", pages, linkless, 6, NOW)
    assert summary.articles_ok > 0
    assert reads == Counter(pages.index), "each page is read back once"


def test_a_commit_handed_the_pages_empties_the_feed_items_once_the_feed_state_has_them(tmp_path: Path) -> None:
    """With `release_pages`, the feed outcomes' items are emptied after the feed state is updated (the
    pages carry their own items; ~1 KB an item over a whole commit): the same state and articles."""
    from pipeline.run import FeedOutcome

    got = {}
    for release in (False, True):
        outcomes, linkless = _pages(41, 12)
        fo = FeedOutcome("alpha-feed", "https://alpha.example/rss", "ok", items=[po.task.item for po in outcomes],
                         etag='"v1"', polled_at=NOW)
        wh = Warehouse(tmp_path / f"wh-{release}")
        commit_run(Config(), wh, "r1", feed_outcomes=[fo], page_outcomes=outcomes, linkless=linkless, log_rows=[],
                   raw_files=[], started_at=NOW, now=NOW, release_pages=release)
        assert (fo.items == []) == release
        state = wh.load_state(wh.snapshot())["feeds"]["alpha-feed"]
        assert state["poll"] and state["etag"] == '"v1"'
        with connect(wh) as con:
            rows = con.execute("SELECT article_id, cluster_id, text FROM articles ORDER BY article_id").fetchall()
        got[release] = (state, rows)
    assert got[True] == got[False] and len(got[True][1]) >= 12


def test_staging_batches_hold_one_row_group_at_a_time(tmp_path: Path) -> None:
    """`_staging_batches` reads a staging file a row group at a time: pyarrow's memory stays at about one
    group, where `ParquetFile.iter_batches`'s default pre-buffering keeps every group read (the 200 MB peak
    of a 100,000-article commit)."""
    import os

    from pipeline.run import _staging_batches

    path = tmp_path / "staged.parquet"
    group_rows, groups, width = 200, 30, 4000
    with pq.ParquetWriter(path, pa.schema([("id", pa.int64()), ("text", pa.string())]), compression="none") as w:
        for g in range(groups):
            texts = [os.urandom(width // 2).hex() for _ in range(group_rows)]
            w.write_table(pa.table({"id": list(range(g * group_rows, (g + 1) * group_rows)), "text": texts}),
                          row_group_size=group_rows)
    group_bytes = group_rows * width
    pools = {}  # every pool the reader may allocate from (a run switches pyarrow's own to the system's)
    for make in (pa.default_memory_pool, pa.system_memory_pool, pa.mimalloc_memory_pool, pa.jemalloc_memory_pool):
        try:
            pool = make()
        except NotImplementedError:  # not built in
            continue
        pools[pool.backend_name] = pool

    def allocated() -> int:
        return sum(pool.bytes_allocated() for pool in pools.values())

    def peak(batches) -> tuple[int, int]:
        base, top, rows = allocated(), 0, 0
        for batch in batches:
            rows += batch.num_rows
            top = max(top, allocated() - base)
            del batch
        return top, rows

    ours, rows = peak(_staging_batches(path, group_rows))
    assert rows == group_rows * groups
    assert ours < 4 * group_bytes, f"{ours >> 20} MB held for row groups of {group_bytes >> 20} MB"
    default, _ = peak(pq.ParquetFile(path).iter_batches(batch_size=group_rows))
    assert default > 10 * group_bytes, "pyarrow no longer keeps every row group: _staging_batches may go"


def test_pass_3_keys_come_back_in_the_order_of_assign_clusters_and_refuse_what_they_cannot_give_back():
    from pipeline.dedup import fingerprint
    from pipeline.records import Article
    from pipeline.run import _DedupKeys

    t0 = datetime(2026, 11, 20, 8, tzinfo=UTC)

    def row(aid: str, published: datetime | None, source: str) -> Article:
        return Article(aid, None, None, source, None, t0 + timedelta(minutes=5), "r", "ok", published_at=published)

    rows = [row("00000000000000ff", t0, "a"), row("0000000000000010", t0, "b"), row("ffffffffffffffff", None, "a"),
            row("0000000000000001", t0 + timedelta(hours=1), "c")]
    fps = [fingerprint(f"story number {k} " * 30) for k in range(len(rows))]
    keys = _DedupKeys()
    for r, fp in zip(rows, fps, strict=True):
        keys.append(r, fp)
    got = list(keys.in_order())
    want = sorted(range(len(rows)), key=lambda i: (rows[i].published_at or rows[i].first_seen_at, rows[i].article_id))
    assert [g[0] for g in got] == want
    for i, aid, content, n_tokens, source, seen_at in got:
        assert (aid, content, n_tokens, source, seen_at) == (
            rows[i].article_id, fps[i].content_hash, fps[i].n_tokens, rows[i].source, rows[i].first_seen_at)
    with pytest.raises(ValueError, match="article id"):
        keys.append(row("ff", t0, "a"), fps[0])  # its number would come back as 00000000000000ff
    with pytest.raises(ValueError, match="content hash"):
        keys.append(rows[0], fps[0]._replace(content_hash=fps[0].content_hash.upper()))


def test_raw_page_writer_keeps_every_body_across_flushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The raw pages' body column is built over a buffer the writer reuses from one flush to the next: every
    body reads back as it was given (none, empty, a few bytes, big ones), flush after flush, and so does a
    flush whose bodies outgrow the reused buffer's bound (a buffer of its own); the buffer is kept between
    flushes of bodies that fit it (what saves faulting in a new one)."""
    from pipeline import run

    monkeypatch.setattr(run, "_REUSED_BODY_BYTES", 64 * 1024)
    rng = random.Random(4)
    bodies: list[bytes | None] = []
    for k in range(40):
        size = rng.choice([0, 3, 1000, 9000, 20000])
        bodies.append(None if k % 11 == 5 else bytes(rng.getrandbits(8) for _ in range(size)))
    bodies[30:34] = [b"x" * 30000] * 4  # one flush of 120 KB: past the bound
    writer = run.RawPageWriter(tmp_path / "raw.parquet", "r1", flush_rows=4)
    kept = []
    for k, body in enumerate(bodies):
        item = FeedItem(source="s", feed_url="http://example.com/feed", url=f"http://example.com/{k}", guid=None)
        writer.add(PageTask(f"{k:016x}", item), FetchResult(url=item.url, kind="page", outcome="ok", body=body),
                   datetime(2026, 12, 7, tzinfo=UTC))
        kept.append(writer._bodies)
    writer.close()
    table = pq.read_table(tmp_path / "raw.parquet")
    assert table.column("body").to_pylist() == bodies
    assert table.column("article_id").to_pylist() == [f"{k:016x}" for k in range(40)]
    assert len({id(b) for b in kept}) < 5 and all(len(b) <= 64 * 1024 for b in kept)


def test_rows_by_day_is_partition_day_in_columns():
    # the article files' split by day, in columns: the same days as `_partition_day` row by row, in the order of
    # their first row, each day's rows in table order (a day before 1970 and the year 1 included)
    from pipeline.run import _partition_day, _rows_by_day
    from pipeline.schema import ARTICLE_SCHEMA

    rnd = random.Random(7)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    published = [None if rnd.random() < 0.2 else base + timedelta(seconds=rnd.randrange(-900 * 86400, 40 * 86400))
                 for _ in range(600)]
    published[3] = datetime(1, 1, 2, 5, tzinfo=UTC)
    published[4] = datetime(1969, 12, 31, 23, 59, tzinfo=UTC)
    seen = [base + timedelta(days=41, seconds=rnd.randrange(86400)) for _ in published]
    table = pa.table({"published_at": pa.array(published, ARTICLE_SCHEMA.field("published_at").type),
                      "first_seen_at": pa.array(seen, ARTICLE_SCHEMA.field("first_seen_at").type)})
    expected: dict[str, list[int]] = {}
    for i, (p, s) in enumerate(zip(published, seen, strict=True)):
        expected.setdefault(_partition_day(p, s), []).append(i)
    assert [(day, rows.tolist()) for day, rows in _rows_by_day(table)] == list(expected.items())


def test_warming_a_pool_is_never_a_failure():
    """The commit warms its pool's workers for pass 3; a pool shut down (or broken by a killed worker) is
    no error of the warming: the commit's next real task, if any, reports it."""
    from pipeline.run import _warm_pass3_worker, _warm_workers

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        _warm_workers(pool, 1, _warm_pass3_worker)
        assert pool.submit(sum, [1, 2]).result(timeout=60) == 3  # the warmed worker works
    finally:
        pool.shutdown()
    _warm_workers(pool, 2, _warm_pass3_worker)  # shut down: nothing raised
    with pytest.raises(RuntimeError):
        pool.submit(sum, [1])
