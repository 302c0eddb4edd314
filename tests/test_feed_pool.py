"""Feeds parse in the run's process pool when it has one (every core parses), with the same outcomes as
in a thread; the pool's processes start at the first feed to parse, so a run of 304s starts none."""

from __future__ import annotations

import asyncio
import multiprocessing
from datetime import UTC, datetime

import pytest
import yaml

from pipeline import run
from pipeline.demo import DemoServer, DemoWeb
from pipeline.records import FetchResult
from pipeline.run import ParseQueue, _make_pool, fetch_feeds
from pipeline.settings import parse_config

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
COPIES = 3  # each demo feed polled under three names (the server ignores query strings): 21 feeds


@pytest.fixture(scope="module")
def served():
    web = DemoWeb(seed=11, now=NOW)
    with DemoServer(web) as server:
        config = yaml.safe_load(web.config_yaml(server.base_url))
        config["feeds"] = [{"name": f"{f['name']}-{k}", "url": f"{f['url']}?copy={k}"}
                           for f in config["feeds"] for k in range(COPIES)]
        config["extract"] = {"workers": 2}
        # a feed URL that answers with a page, not a feed: its failure comes back from the pool too
        config["feeds"].append({"name": "not-a-feed", "url": f"{server.base_url}{web.pages[0].path}"})
        yield parse_config(yaml.safe_dump(config))


def _essentials(outcomes):
    return {fo.name: (fo.outcome, fo.error, fo.format, fo.etag, [vars_of(i) for i in fo.items]) for fo in outcomes}


def vars_of(item):
    return {k: getattr(item, k) for k in item.__slots__}


def test_feeds_parse_in_the_pool_as_in_a_thread(served):
    config = served
    in_thread, log_thread = fetch_feeds(config, None, {}, "r1")
    pool = _make_pool(config, len(config.active_feeds))
    assert pool is not None
    before = len(multiprocessing.active_children())
    try:
        in_pool, log_pool = fetch_feeds(config, None, {}, "r1", pool=pool)
        assert len(multiprocessing.active_children()) > before  # the pool's workers did the parsing
    finally:
        pool.shutdown()
    assert _essentials(in_pool) == _essentials(in_thread)
    assert sum(len(fo.items) for fo in in_pool) > 20 * COPIES
    bad = next(fo for fo in in_pool if fo.name == "not-a-feed")
    assert bad.outcome == "bad_content" and bad.error
    # one log row per request, in the order the responses came
    assert sorted((r["url"], r["outcome"]) for r in log_pool) == sorted((r["url"], r["outcome"]) for r in log_thread)


def test_a_poll_of_304s_starts_no_worker(served):
    config = served
    first, _ = fetch_feeds(config, None, {}, "r1")
    state = {fo.name: {"url": fo.url, "etag": fo.etag, "last_modified": fo.last_modified} for fo in first}
    pool = _make_pool(config, len(config.active_feeds))
    before = len(multiprocessing.active_children())
    try:
        again, _ = fetch_feeds(config, None, state, "r2", pool=pool)
        assert len(multiprocessing.active_children()) == before
    finally:
        pool.shutdown()
    assert {fo.outcome for fo in again if fo.name != "not-a-feed"} == {"not_modified"}


def test_a_run_with_a_pool_stores_what_a_run_without_one_stores(served, tmp_path):
    """`run_once` with 22 feeds: one pool parses the feeds, extracts the pages and cleans the texts; the same
    run in one process (`extract.workers: 1`) stores the same articles, texts and clusters."""
    from pipeline.run import run_once
    from pipeline.views import connect

    def stored(config, name):
        summary = run_once(config, tmp_path / name, all_feeds=True, now=NOW)
        con = connect(tmp_path / name)
        try:
            rows = con.sql("SELECT article_id, extraction_status, title, text, cluster_id, duplicate_of, content_hash "
                           "FROM articles ORDER BY article_id").fetchall()
        finally:
            con.close()
        return summary, rows

    pooled, pooled_rows = stored(served, "pooled")
    single, single_rows = stored(served.model_copy(update={"extract": served.extract.model_copy(update={"workers": 1})}),
                                 "single")
    assert pooled_rows == single_rows
    assert sum(1 for r in pooled_rows if r[1] == "ok") >= 40 and any(r[5] for r in pooled_rows)
    assert pooled.counts() == single.counts()


def test_documents_waiting_for_a_parse_slot_wait_on_disk_past_the_first_few():
    async def scenario() -> tuple[list[bytes], list[bool], int]:
        queue = ParseQueue(1, in_memory=1)
        parsed: list[bytes] = []
        results = [FetchResult(url=f"u{k}", kind="feed", outcome="ok", body=bytes([65 + k]) * 1000) for k in range(4)]

        async def parse(res: FetchResult) -> None:
            async with queue.turn(res) as body:
                await asyncio.sleep(0.01)
                parsed.append(body)

        tasks = [asyncio.create_task(parse(r)) for r in results]
        await asyncio.sleep(0)  # every task has handed its body over: the first parses, the others wait
        handed_over = [r.body is None for r in results]
        spooled_while_waiting = queue.spooled
        await asyncio.gather(*tasks)
        assert queue.waiting == 0 and not queue.slot.locked()
        return parsed, handed_over, spooled_while_waiting

    parsed, handed_over, spooled = asyncio.run(scenario())
    assert all(handed_over)
    assert spooled == 2  # one parsing, one waiting in memory, two on disk
    assert parsed == [bytes([65 + k]) * 1000 for k in range(4)]  # each body back, in order


def test_a_parse_cancelled_while_it_waits_leaves_the_queue_as_it_was():
    async def scenario() -> ParseQueue:
        queue = ParseQueue(1, in_memory=1)

        async def parse(res: FetchResult, hold: float) -> None:
            async with queue.turn(res):
                await asyncio.sleep(hold)

        first = asyncio.create_task(parse(FetchResult(url="a", kind="feed", outcome="ok", body=b"a"), 0.05))
        waiting = [asyncio.create_task(parse(FetchResult(url=u, kind="feed", outcome="ok", body=b"x"), 0))
                   for u in ("b", "c")]  # b waits in memory, c on disk
        await asyncio.sleep(0)
        assert queue.waiting == 2 and queue.spooled == 1
        for t in waiting:
            t.cancel()
        await asyncio.gather(first, *waiting, return_exceptions=True)
        return queue

    queue = asyncio.run(scenario())
    assert queue.waiting == 0 and not queue.slot.locked()


def test_feeds_whose_documents_waited_on_disk_come_out_the_same(served, monkeypatch):
    config = served
    want, _ = fetch_feeds(config, None, {}, "r1")
    queues: list[ParseQueue] = []

    class OnDisk(ParseQueue):
        def __init__(self, slots: int, in_memory: int) -> None:
            super().__init__(slots, in_memory=0)
            queues.append(self)

    monkeypatch.setattr(run, "ParseQueue", OnDisk)
    got, _ = fetch_feeds(config, None, {}, "r1")
    assert queues and queues[0].spooled > 5  # most of the 22 documents waited on disk
    assert _essentials(got) == _essentials(want)
