"""The batch engine's numba kernels (pipeline/_dedup_jit.py) give exactly what its numpy code gives.

Compares both paths on real texts (the dedup benchmark's dev set and a generated replica of it, which
has template lines, truncations and copies), on the made-up texts of test_dedup, and on random strings
built from the characters the tokenizer and the segmenter treat specially.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED
from test_dedup import FOLLOW_UP, INDEPENDENT, ORIGIN, SYNDICATED, TRUNCATED, _copies_corpus

from pipeline import dedup
from pipeline.settings import DedupSettings

jit = pytest.importorskip("pipeline._dedup_jit", reason="numba is not installed")

BENCH = SHARED / "dedup-benchmark"
ROOT = Path(__file__).resolve().parents[1]


def _dev_docs() -> list[dict]:
    path = BENCH / "dev.jsonl"
    if not path.exists():
        pytest.skip(f"dedup benchmark not found at {BENCH}")
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def _both(docs: list[dict], settings=None, tuning=None) -> tuple[list[dict], list[dict]]:
    numpy_out = list(dedup._dedup_items(docs, settings, tuning, None))
    jit_out = list(dedup._dedup_items(docs, settings, tuning, jit))
    return numpy_out, jit_out


def _assert_same_flat(texts: list[str], settings=None, sample_mod: int = 2) -> None:
    st = settings if settings is not None else dedup._DefaultSettings()
    a = dedup._fingerprint_arrays(texts, st, sample_mod, minhash=False)
    b = dedup._fingerprint_arrays(texts, st, sample_mod, minhash=False, jit=jit)
    assert a.hashes == b.hashes
    assert np.array_equal(a.n_tokens, b.n_tokens)
    assert np.array_equal(a.keys, b.keys) and a.keys.dtype == b.keys.dtype
    assert np.array_equal(a.doc, b.doc) and a.doc.dtype == b.doc.dtype


SPECIAL = [
    "a", "b", "z", "7", "42", " ", "  ", "\n", "\r\n", "\t", ".", ". ", "!", "?", "-", " - ", " -", "|", "%", "%%",
    '."', ".' ", ".) ", ".\u201d", " \u2013 ", " \u2014 ", "\u2013", "\u00a0", "\u00e9", "\u00c9t\u00e9", "\u00d7",
    "\u3001", "\u65e5\u672c", "\u30ab\u30ca", "\ud55c", "\U0001f600", "\u2122", "\u2103", "&amp;", "&#8212;",
    "\x00", "U.S.", "u.k.", "per cent", "told reporters", "mln", "Pct", "dlrs", "said", "Sept.", "united states",
    "u s s", "abcdefghijklmnopq", "abcdefghijklmnopqrstuvwxyz0123", "\ufb01", "\u212b",
]  # fmt: skip


def test_fingerprints_equal_on_special_characters() -> None:
    rng = np.random.default_rng(8)
    texts = ["", "x", "%", "\n", "word " * 40]
    for _ in range(400):
        parts = rng.choice(len(SPECIAL), size=int(rng.integers(0, 120)))
        texts.append("".join(SPECIAL[p] + (" " if rng.random() < 0.5 else "") for p in parts))
    _assert_same_flat(texts)
    _assert_same_flat(texts, sample_mod=1)
    _assert_same_flat(texts, DedupSettings(shingle_size=3), sample_mod=4)
    for t in texts[:60]:  # one text per call: tokens and segments at the very start and end of the bytes
        _assert_same_flat([t])


def test_fingerprints_equal_on_the_dev_set() -> None:
    texts = [d["text"] for d in _dev_docs()]
    texts += [ORIGIN, SYNDICATED, TRUNCATED, INDEPENDENT, FOLLOW_UP]
    _assert_same_flat(texts)
    _assert_same_flat(texts[:500], DedupSettings(shingle_size=1), sample_mod=3)


def test_dedup_documents_equal_on_the_dev_set() -> None:
    docs = _dev_docs()
    numpy_out, jit_out = _both(docs)
    assert jit_out == numpy_out
    assert sum(r["duplicate_of"] is not None for r in jit_out) > 500  # many pairs were verified
    # other verifier settings: fewer postings, every shingle sampled, shorter shingles
    settings = DedupSettings(sample_mod=1, shingle_size=4, min_containment=0.5)
    numpy_out, jit_out = _both(docs[:2000], settings, dedup.DedupTuning(posting_cap=2))
    assert jit_out == numpy_out


def test_dedup_documents_equal_on_a_generated_corpus_with_sources() -> None:
    """Replicas of the dev set (bench/dedup.py's generator), with URLs, sources and times: template
    shingles of many clusters and of one source, the time window, URL twins."""
    sys.path.insert(0, str(ROOT))
    try:
        from bench.dedup import Replicator
    finally:
        sys.path.remove(str(ROOT))
    docs = Replicator(_dev_docs()).corpus(12_000)
    for k, d in enumerate(docs):
        d["url"] = f"https://outlet{k % 7}.example/story/{k % 9000}"
        d["published_at"] = f"2026-0{1 + k // 3000}-0{1 + k % 9}T10:00:00+00:00"
    numpy_out, jit_out = _both(docs, DedupSettings(window_days=30))
    assert jit_out == numpy_out


def test_small_batches_do_not_import_numba() -> None:
    code = (
        "import sys; from pipeline.dedup import dedup_documents; "
        "list(dedup_documents([{'id': i, 'text': 'some words ' * 20} for i in range(50)])); "
        "print('numba' in sys.modules)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "NEWSINGEST_DEDUP_JIT"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert proc.stdout.strip() == "False"


def test_kernel_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSINGEST_DEDUP_JIT", raising=False)
    assert dedup._jit_kernels(dedup.JIT_MIN_DOCS) is jit
    assert dedup._jit_kernels(dedup.JIT_LOADED_MIN_DOCS) is jit  # loaded in this process by now
    assert dedup._jit_kernels(dedup.JIT_LOADED_MIN_DOCS - 1) is None
    monkeypatch.setenv("NEWSINGEST_DEDUP_JIT", "0")
    assert dedup._jit_kernels(10**7) is None
    assert dedup.warm_jit() == 0.0
    monkeypatch.setenv("NEWSINGEST_DEDUP_JIT", "1")
    assert dedup._jit_kernels(1) is jit
    assert dedup.warm_jit() > 0.0


@pytest.mark.parametrize("kernels", [None, jit], ids=["numpy", "jit"])
def test_threaded_fingerprinting_gives_the_serial_result(kernels) -> None:
    """Slices fingerprinted by several threads land in slice order: the same arrays as one thread."""
    texts = [d["text"] for d in _copies_corpus(1200, seed=5)]  # self-contained (no ../shared needed)
    st = dedup._DefaultSettings()
    budget = 20_000  # ~100 slices, so several are in flight and results wait for earlier ones
    assert len(dedup._slices(texts, budget)) > 50
    one = dedup._fingerprint_chunks(texts, st, 2, minhash=False, budget=budget, jit=kernels, threads=1)
    for threads in (2, 5):
        many = dedup._fingerprint_chunks(texts, st, 2, minhash=False, budget=budget, jit=kernels, threads=threads)
        assert many.hashes == one.hashes
        assert np.array_equal(many.n_tokens, one.n_tokens)
        assert np.array_equal(many.keys, one.keys) and np.array_equal(many.doc, one.doc)
    whole = dedup._fingerprint_arrays(texts, st, 2, minhash=False, jit=kernels)  # and slicing changes nothing
    assert np.array_equal(whole.keys, one.keys) and np.array_equal(whole.doc, one.doc)


def test_dedup_documents_same_clusters_with_any_thread_count() -> None:
    docs = _dev_docs()  # real texts, where ../shared is present (the next test needs nothing)
    serial = list(dedup._dedup_items(docs, DedupSettings(threads=1), None, jit))
    assert list(dedup._dedup_items(docs, DedupSettings(threads=4), None, jit)) == serial


def test_in_order_keeps_order_bounds_waiting_results_and_raises() -> None:
    import threading
    import time

    started: list[int] = []
    lock = threading.Lock()

    def slow(i: int) -> int:
        with lock:
            started.append(i)
        time.sleep(0.002 * (i % 3))  # later items often finish first
        return i * i

    out = []
    for i, v in enumerate(dedup._in_order(slow, list(range(40)), threads=3)):
        out.append(v)
        with lock:
            assert len(started) <= i + 1 + 2 * 3  # at most 2x threads submitted ahead of the consumer
    assert out == [i * i for i in range(40)]

    def failing(i: int) -> int:
        if i == 7:
            raise ValueError("slice 7")
        return i

    with pytest.raises(ValueError, match="slice 7"):
        list(dedup._in_order(failing, list(range(20)), threads=2))


def test_batch_threads_setting() -> None:
    assert dedup.batch_threads(DedupSettings(threads=3)) == 3
    auto = dedup.batch_threads(DedupSettings())
    assert 1 <= auto <= 8
    assert dedup.batch_threads(dedup._DefaultSettings()) == auto


def test_parallel_kernels_give_the_serial_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's ranges in threads (packing, sorted entries, pair counting by documents, pair statistics)
    split even a small batch when the split threshold is low: same clusters and links as one thread."""
    docs = _copies_corpus(1500, seed=9)
    for k, d in enumerate(docs):  # URL twins, outlets and times: every rule of the batch is exercised
        d["url"] = f"https://outlet{k % 7}.example/story/{k % 3000}"
        d["published_at"] = f"2026-0{1 + k // 1000}-0{1 + k % 9}T10:00:00+00:00"
    serial = list(dedup._dedup_items(docs, DedupSettings(threads=1, window_days=30), None, jit))
    monkeypatch.setattr(dedup, "_PARALLEL_MIN", 1000)
    assert len(dedup._split(10_000, 3)) == 3
    for threads in (2, 3, 7):
        got = list(dedup._dedup_items(docs, DedupSettings(threads=threads, window_days=30), None, jit))
        assert got == serial, threads
    assert sum(r["duplicate_of"] is not None for r in serial) > 1000


def _batch(texts: list[str], threads: int) -> dedup._Batch:
    st = DedupSettings(threads=threads)
    flat = dedup._fingerprint_chunks(texts, st, 2, minhash=False, jit=jit, threads=threads)
    return dedup._Batch({"keys": flat.keys, "doc": flat.doc}, flat.n_tokens, np.zeros(len(texts), dtype=np.int64),
                        [0] * len(texts), st, dedup.DedupTuning(), jit)  # fmt: skip


def test_parallel_ranges_give_the_serial_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stronger than equal clusters: the candidate pairs with their counts, and the layout, are the same
    arrays (a document split between two ranges would count its pairs twice, in parts)."""
    texts = [d["text"] for d in _copies_corpus(800, seed=3)]
    one = _batch(texts, 1)
    raw_one = one.raw_pairs()
    monkeypatch.setattr(dedup, "_PARALLEL_MIN", 500)
    for threads in (2, 3):
        many = _batch(texts, threads)
        assert len(many._document_ranges()) == threads
        for name in ("order", "Ds", "dk", "dk_order", "gid_sorted"):
            assert np.array_equal(getattr(many, name), getattr(one, name)), name
        raw = many.raw_pairs()
        assert all(np.array_equal(a, b) for a, b in zip(raw, raw_one, strict=True))
        template = np.zeros(many.D.size, dtype=bool)
        got, want = many.pairs(raw, template), one.pairs(raw_one, template)
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def test_split_covers_the_range_once() -> None:
    for n, threads in ((0, 4), (5, 4), (dedup._PARALLEL_MIN * 3 + 7, 2), (dedup._PARALLEL_MIN * 3 + 7, 8)):
        ranges = dedup._split(n, threads)
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        assert len(ranges) <= max(1, threads)
    assert len(dedup._split(dedup._PARALLEL_MIN * 3 + 7, 8)) == 3  # no range below the threshold
    arr = dedup._empty(dedup._PARALLEL_MIN * 2 + 5, np.int64, 2)
    assert arr.size == dedup._PARALLEL_MIN * 2 + 5 and not arr.any()

