"""The extraction process pool of a run: a daemonic process (a Celery prefork worker's task) may not start
children, so it extracts in-process instead of failing every page batch."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from pipeline.run import _make_pool
from pipeline.settings import parse_config

CONFIG = parse_config('feeds:\n  - {name: a, url: "https://example.com/feed.xml"}\nextract:\n  workers: 2\n')


def _pool_kind(out) -> None:
    pool = _make_pool(CONFIG, 100)
    out.put("none" if pool is None else type(pool).__name__)
    if pool is not None:
        pool.shutdown()


def _run(daemon: bool) -> str:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=_pool_kind, args=(out,), daemon=daemon)
    proc.start()
    kind = out.get(timeout=30)
    proc.join(timeout=30)
    assert proc.exitcode == 0
    return kind


def test_daemonic_process_extracts_in_process():
    assert _run(daemon=True) == "none"


def test_regular_process_gets_a_process_pool():
    assert _run(daemon=False) == "ProcessPoolExecutor"


def test_pool_workers_run_at_a_lower_priority_than_the_run():
    """The fetching process comes first: the workers are `extract.worker_nice` below it (Unix nice), or
    level with it at 0; a watch's workers as well."""
    import os

    from pipeline.watch import _start_worker

    base = os.nice(0)
    for nice in (0, 3):
        config = CONFIG.model_copy(update={"extract": CONFIG.extract.model_copy(update={"worker_nice": nice})})
        pool = _make_pool(config, 100)
        try:
            assert pool.submit(os.nice, 0).result(timeout=60) == min(19, base + nice)
        finally:
            pool.shutdown()
    ctx = multiprocessing.get_context("spawn")
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=ctx, initializer=_start_worker, initargs=(4,)) as pool:
        assert pool.submit(os.nice, 0).result(timeout=60) == min(19, base + 4)


def test_pool_workers_run_openblas_on_one_thread_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool's workers start with OPENBLAS_NUM_THREADS=1 (its thread per core spins ~0.08 s of CPU at numpy's
    import, in every worker), or with what the environment already says."""
    import os

    for preset, want in ((None, "1"), ("3", "3")):
        if preset is None:
            monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OPENBLAS_NUM_THREADS", preset)
        pool = _make_pool(CONFIG, 100)
        try:
            assert pool.submit(os.getenv, "OPENBLAS_NUM_THREADS").result(timeout=60) == want
        finally:
            pool.shutdown()


def test_pool_workers_extract_and_precleaned_without_pydantic() -> None:
    """A pool worker extracts and precleans with the dedup settings as a plain dataclass
    (`dedup.plain_settings`): it never imports pydantic (~0.08 s of CPU at each worker's start), and the
    fingerprints are those the config's settings give."""
    from pipeline.dedup import fingerprint, plain_settings
    from pipeline.run import _extract_precleaned_many

    body = "".join(f"<p>Paragraph {k} of a story about the harbour tram line, which the council approved on "
                   f"Tuesday after a long debate about its cost and its route.</p>" for k in range(8))
    page = f"<html><head><title>Tram</title></head><body><article><h1>Tram</h1>{body}</article></body></html>"
    config = CONFIG.model_copy(update={"dedup": CONFIG.dedup.model_copy(update={"num_perm": 64, "bands": 16})})
    pool = _make_pool(config, 100)
    try:
        [(ex, pre)] = pool.submit(_extract_precleaned_many, [(page, "https://example.com/a", 20, None, "Tram")],
                                  20, plain_settings(config.dedup)).result(timeout=120)
        assert pool.submit(eval, "'pydantic' in __import__('sys').modules").result(timeout=60) is False
    finally:
        pool.shutdown()
    assert ex.status == "ok" and pre.fingerprint.minhash.size == 64
    want = fingerprint(pre.cleaned.text, config.dedup)
    got = pre.fingerprint
    assert (got.content_hash, got.n_tokens) == (want.content_hash, want.n_tokens)
    assert np.array_equal(got.minhash, want.minhash) and np.array_equal(got.sample, want.sample)


def test_pages_are_taken_from_the_hosts_in_turn():
    from datetime import UTC, datetime

    from pipeline.records import FeedItem
    from pipeline.run import PageTask, _interleave_hosts

    def task(url: str) -> PageTask:
        return PageTask(url, FeedItem(source="s", feed_url="http://f/", url=url, guid=None), 0,
                        datetime(2026, 1, 1, tzinfo=UTC))

    urls = ["http://a/1", "http://a/2", "http://a/3", "http://b:81/1", "http://c/1", "http://b:81/2", "http://A/4"]
    order = _interleave_hosts([task(u) for u in urls])
    assert [urls[i] for i in order] == [
        "http://a/1", "http://b:81/1", "http://c/1", "http://a/2", "http://b:81/2", "http://a/3", "http://A/4",
    ]  # fmt: skip
    assert _interleave_hosts([]).tolist() == []


def _page(n: int) -> str:
    words = " ".join(f"word{n}x{i}" for i in range(60))
    return f"<html><head><title>Page {n}</title></head><body><article><h1>Headline {n}</h1><p>{words}.</p></article></body></html>"


def test_pages_go_to_the_pool_in_batches_and_each_gets_its_own_result():
    """Pages reach the pool a few per task (a partial batch leaves after a short wait); every page's
    caller gets that page's extraction, and a pool that cannot take work fails each page, not the loop."""
    import asyncio
    from concurrent.futures import ProcessPoolExecutor

    from pipeline import run

    submitted: list[int] = []

    class Counting(ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(len(args[0]))
            return super().submit(fn, *args, **kwargs)

    pool = Counting(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    async def go() -> list:
        batches = run._ExtractBatches(asyncio.get_running_loop(), pool, 10, None, size=4, wait_s=0.01)
        pairs = await asyncio.gather(*(batches.extract(_page(n), f"https://x.example/{n}", 10, None, None)
                                       for n in range(10)))
        assert all(pre is None for _, pre in pairs)  # no precleaning asked
        return [ex for ex, _ in pairs]

    try:
        results = asyncio.run(go())
    finally:
        pool.shutdown()
    assert submitted == [4, 4, 2]
    assert all(r.status == "ok" and f"word{n}x0 " in r.text and f"word{n}x59" in r.text for n, r in enumerate(results))

    async def refused() -> list:
        batches = run._ExtractBatches(asyncio.get_running_loop(), pool, 10, None, size=2, wait_s=0.01)
        return await asyncio.gather(*(batches.extract(_page(n), None, 10, None, None) for n in range(3)),
                                    return_exceptions=True)

    errors = asyncio.run(refused())  # the pool is shut down now
    assert len(errors) == 3 and all(isinstance(e, RuntimeError) for e in errors)
