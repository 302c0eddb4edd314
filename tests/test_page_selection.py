"""A run takes each feed's page tasks as the feed arrives (`PageSelector`, tasks spooled to disk in a
`TaskSpool`) and keeps only the counts of its items (`FeedOutcome.digest_items`): the same tasks, counts,
feed state and staged feeds as selecting over every feed's items at the end (`select_pages`), whatever
order the feeds arrive in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pipeline.records import FeedItem
from pipeline.run import (
    FeedOutcome,
    PageSelector,
    PageTask,
    RunSummary,
    TaskSpool,
    _SourceOfUrl,
    _TakenIds,
    id_to_u64,
    item_article_id,
    load_feed_stage,
    record_poll,
    save_feed_stage,
    select_pages,
    stamp_first_seen,
    summarize_feeds,
)
from pipeline.settings import Config
from pipeline.urls import canonicalize_url

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _item(feed: int, story: int, *, link: bool = True, day: int = 0) -> FeedItem:
    url = f"https://news{story % 3}.example/story/{story}" if link else None
    return FeedItem(source=f"feed{feed}", feed_url=f"https://feeds.example/{feed}.xml", url=url,
                    guid=f"g{story}", title=f"Story {story} as feed {feed} has it",
                    summary=f"summary {story} " * 20, published_at=NOW - timedelta(hours=story + day),
                    tags=[f"t{feed}"])


def _feeds() -> list[FeedOutcome]:
    """Five feeds sharing stories (the feed ranked first must win a shared one), link-less items (one twice
    in its feed), stories already stored, and stories waiting for a retry."""
    feeds = []
    for f in range(5):
        stories = list(range(f * 6, f * 6 + 12))  # each shares six stories with the next feed
        items = [_item(f, s) for s in stories]
        items += [_item(f, 100 + f, link=False), _item(f, 100 + f, link=False), _item(f, 3, day=1)]
        feeds.append(FeedOutcome(f"feed{f}", f"https://feeds.example/{f}.xml", "ok", items=items,
                                 polled_at=NOW - timedelta(minutes=10 - f)))
    return feeds


def _state() -> tuple[np.ndarray, dict[str, dict]]:
    def aid(story: int) -> str:
        return item_article_id(_item(0, story))[0]

    seen = np.array(sorted(id_to_u64(aid(s)) for s in (1, 7, 20)), dtype=np.uint64)
    later, earlier = (NOW + timedelta(hours=1)).isoformat(), (NOW - timedelta(hours=1)).isoformat()
    gone = _item(9, 500)
    pending = {
        aid(8): {"attempts": 2, "next_attempt_at": earlier, "first_seen_at": "2026-11-19T00:00:00+00:00"},
        aid(9): {"attempts": 1, "next_attempt_at": later},
        item_article_id(gone)[0]: {"attempts": 3, "next_attempt_at": earlier,
                                   "item": {"source": "feed2", "feed_url": gone.feed_url, "url": gone.url,
                                            "guid": gone.guid}},
    }
    return seen, pending


def _as_dict(tasks: list[PageTask]) -> dict[str, tuple]:
    out = {t.article_id: (t.item, t.attempts, t.first_seen_at) for t in tasks}
    assert len(out) == len(tasks), "an article was taken twice"
    return out


@pytest.mark.parametrize("spooled", [False, True])
def test_feeds_selected_as_they_arrive_give_the_tasks_of_selecting_them_all_in_rank_order(tmp_path, spooled):
    seen, pending = _state()
    feeds = _feeds()
    want_fetch, want_linkless, want_counts = select_pages([i for fo in feeds for i in fo.items], seen, pending, NOW)
    stamp_first_seen(want_fetch + want_linkless, feeds)
    assert want_counts["same_in_run"] > 20 and want_counts["already_seen"] >= 3  # the case is not trivial
    assert want_counts["pending_not_due"] == 1 and len(want_linkless) == 5
    assert {t.item.source for t in want_fetch} >= {f"feed{f}" for f in range(5)}
    polled = {fo.name: fo.polled_at for fo in feeds}
    rng = random.Random(7)
    for order in [list(range(5)), list(range(4, -1, -1)), *(rng.sample(range(5), 5) for _ in range(4))]:
        selector = PageSelector(seen, pending, NOW, TaskSpool(tmp_path) if spooled else None)
        for rank in order:
            selector.add(feeds[rank].items, rank, feeds[rank].polled_at)
        fetch, linkless, counts = selector.finish(polled)
        assert isinstance(fetch, TaskSpool) == spooled
        assert counts == want_counts, order
        assert _as_dict(list(fetch)) == _as_dict(want_fetch), order
        assert _as_dict(linkless) == _as_dict(want_linkless), order
        if spooled:
            assert list(fetch.urls) == [t.item.url for t in fetch] and fetch.sources == [t.item.source for t in fetch]
            fetch.close()


def test_a_task_spool_reads_back_what_it_holds_and_a_replaced_task_takes_its_place(tmp_path):
    tasks = [PageTask(f"{k:016x}", _item(k % 3, k), attempts=k % 2, first_seen_at=NOW) for k in range(50)]
    spool = TaskSpool(tmp_path)
    for t in tasks:
        spool.append(t)
    spool[7] = PageTask(tasks[7].article_id, _item(4, 7))
    tasks[7] = PageTask(tasks[7].article_id, _item(4, 7))
    assert len(spool) == 50
    assert list(spool) == tasks and spool[10:13] == tasks[10:13] and spool[-1] == tasks[-1]
    assert list(spool.urls) == [t.item.url for t in tasks]
    assert spool.sources == [t.item.source for t in tasks] and spool.sources[7] == "feed4"
    assert not list(tmp_path.iterdir()), "the spool's file has no name"
    spool.close()


def test_a_feed_digested_once_its_tasks_are_taken_updates_the_feed_state_as_its_items_would(tmp_path):
    seen, pending = _state()
    config = Config()
    for fo, twin in zip(_feeds(), _feeds(), strict=True):
        fo.outcome = twin.outcome = "ok"
        twin.digest_items(seen, pending)
        assert twin.items == [] and twin.n_items == len(fo.items) > 0
        full, digested = {}, {}
        record_poll(config, full, fo, seen, pending, NOW)
        record_poll(config, digested, twin, seen, pending, NOW)
        assert digested == full
        assert twin.new_items is not None and 0 < twin.new_items < len(fo.items)
    feeds, digested = _feeds(), _feeds()
    for fo in digested:
        fo.digest_items(seen, pending)
    a, b = RunSummary("r"), RunSummary("r")
    summarize_feeds(a, feeds)
    summarize_feeds(b, digested)
    assert a.counts() == b.counts() and b.items == sum(len(fo.items) for fo in feeds)
    # a digested feed survives the feed stage of an Airflow run
    save_feed_stage(tmp_path / "feeds.json", digested, [])
    loaded, _ = load_feed_stage(tmp_path / "feeds.json")
    assert loaded == digested


def test_the_taken_ids_answer_as_a_dict_of_them_would():
    rng = random.Random(5)
    pool = [f"{rng.getrandbits(64):016x}" for _ in range(300)] + [f"odd-{k}" for k in range(20)]
    taken, model = _TakenIds(), {}
    for _feed in range(40):
        for _ in range(rng.randrange(1, 30)):
            aid = rng.choice(pool)
            assert taken.get(aid) == model.get(aid) and (aid in taken) == (aid in model)
            rank, where = rng.randrange(50), rng.choice([None, rng.randrange(-99, 1000)])
            taken.set(aid, rank, where)
            model[aid] = (rank, where)
        taken.settle()
    assert all(taken.get(aid) == model.get(aid) for aid in pool)


def test_the_fetch_log_finds_the_source_of_a_spooled_task_by_its_url(tmp_path):
    tasks = [PageTask(f"{k:016x}", _item(k % 4, k, link=k % 7 != 0), first_seen_at=NOW) for k in range(60)]
    spool = TaskSpool(tmp_path)
    for t in tasks:
        spool.append(t)
    source_of = _SourceOfUrl(spool)
    for t in tasks:
        if t.item.url:
            assert source_of.get(t.item.url) == t.item.source
    assert source_of.get("https://elsewhere.example/") is None and source_of.get(None) is None
    spool.close()


def test_what_the_selection_keeps_of_each_article_is_bytes_not_objects(tmp_path):
    """The tasks' spool and the selector keep ~160 bytes an article (the URL's and a few array slots), in no
    object of its own: a dict of the ids and a list of the URLs kept ~350 bytes and ~4 objects an article
    (16,770 objects here), which outlived the feed items they were made among."""
    import gc
    import tracemalloc

    n_feeds, per_feed = 8, 500
    spool = TaskSpool(tmp_path)
    selector = PageSelector(np.zeros(0, dtype=np.uint64), {}, NOW, spool)
    selector.add([_item(99, 10**6 + k) for k in range(1500)], rank=99, first_seen_at=NOW)  # imports its store
    canonicalize_url.cache_clear()  # it keeps the last 1,024 URLs
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for f in range(n_feeds):
            items = [_item(f, f * per_feed + k) for k in range(per_feed)]  # dropped after each feed
            selector.add(items, rank=f, first_seen_at=NOW)
            del items
        canonicalize_url.cache_clear()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = [d for d in after.compare_to(before, "filename") if d.size_diff > 0]
    per_article = sum(d.size_diff for d in grown) / (n_feeds * per_feed)
    objects = sum(d.count_diff for d in grown)
    assert per_article < 250, f"{per_article:.0f} bytes an article"
    # what is left: the bounded caches of urllib and of the spool's pickling (~1,000 objects)
    assert objects < n_feeds * per_feed / 2, f"{objects} more objects for {n_feeds * per_feed} articles"
    tasks, _, counts = selector.finish()
    assert len(tasks) == counts["to_fetch"] == n_feeds * per_feed + 1500
    spool.close()


def test_selected_tasks_carry_their_canonical_url_which_the_page_site_and_the_row_take(monkeypatch):
    """The selection canonicalizes each item's URL once (the article id is its hash); the page's site and
    the article row take it from the task, where a task without it computes the same."""
    from pipeline import run, urls
    from pipeline.records import Extracted, FetchResult
    from pipeline.run import PageOutcome, _base_row, _page_site, item_article_id, task_canonical_url

    seen, pending = _state()
    fetch, linkless, _ = select_pages([i for fo in _feeds() for i in fo.items], seen, pending, NOW)
    for task in fetch:
        assert task_canonical_url(task) == item_article_id(task.item)[1]
    fetch = [t for t in fetch if t.canonical_url is not None]  # (not a due retry whose item left its feed)
    assert len(fetch) > 20
    for task in linkless:
        assert task.canonical_url is None and task_canonical_url(task) is None
    calls = []
    canonicalize = urls.canonicalize_url

    def counted(url: str) -> str:
        calls.append(url)
        return canonicalize(url)

    monkeypatch.setattr(urls, "canonicalize_url", counted)
    for task in fetch:
        page = PageOutcome(task, FetchResult(url=task.item.url, kind="page", outcome="ok"),
                           Extracted(status="ok", canonical_url=task.item.url), NOW)
        assert _page_site(page) == urls.host_of(task.canonical_url)
        assert _base_row(task, "ok", page, "r1", NOW).canonical_url == task.canonical_url
    assert calls == []  # nothing canonicalized again
    bare = run.PageTask(fetch[0].article_id, fetch[0].item)
    assert task_canonical_url(bare) == fetch[0].canonical_url and len(calls) == 1
