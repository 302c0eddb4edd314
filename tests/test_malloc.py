"""pipeline._malloc.keep_freed_memory: big freed arrays are reused inside the block (no new page faults)."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from pipeline import _malloc

pytestmark = pytest.mark.skipif(
    not (_malloc.available() and sys.platform.startswith("linux")), reason="glibc's mallopt is not available here"
)


def _faults_of_new_array(nbytes: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.empty(nbytes, dtype=np.uint8)
    a[::4096] = 1  # touch every page
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del a
    return after - before


def test_freed_big_array_is_reused_inside_the_block() -> None:
    size = 96 << 20  # above glibc's largest mmap threshold (32 MB): always a fresh mapping by default
    with _malloc.keep_freed_memory() as active:
        assert active
        first = _faults_of_new_array(size)
        again = _faults_of_new_array(size)
    assert first > 0
    assert again * 4 < first, (first, again)

def _mapped_bytes() -> int:
    return int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()


def test_freed_memory_stays_mapped_inside_the_block_only() -> None:
    size = 96 << 20
    with _malloc.keep_freed_memory():
        before = _mapped_bytes()
        _faults_of_new_array(size)
        kept = _mapped_bytes() - before
    assert kept >= size * 0.9, kept  # freed, but still the process's for the next array
    # after the block glibc's defaults are back: a big array is its own mapping, gone when freed
    before = _mapped_bytes()
    _faults_of_new_array(size)
    assert abs(_mapped_bytes() - before) < size // 4, "the freed array was not given back after the block"


def test_nested_blocks_and_results_unchanged() -> None:
    from pipeline.dedup import dedup_documents

    docs = [{"id": str(i), "text": f"story {i % 7} " + "the same wire copy of a long report " * 20} for i in range(60)]
    plain = list(dedup_documents(docs))
    with _malloc.keep_freed_memory(), _malloc.keep_freed_memory() as inner:
        assert inner
        kept = list(dedup_documents(docs))
    assert kept == plain
    assert _malloc._depth == 0
