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


_RETAIN = """
import sys
import numpy as np
from pipeline import _malloc

def resident() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * 4096

if sys.argv[1] == "return":
    assert _malloc.return_freed_memory()
first = np.ones(8 << 20, dtype=np.uint8)  # a mapped block; freeing it raises glibc's threshold to 8 MB
del first
before = resident()
blocks = [np.ones(8 << 20, dtype=np.uint8) for _ in range(12)]  # 96 MB of 8 MB arrays, touched
pin = [bytearray(4096) for _ in range(100)]  # small malloc blocks after them on the heap
del blocks
print((resident() - before) >> 20)
"""


@pytest.mark.parametrize("mode", ["default", "return"])
def test_return_freed_memory_gives_big_freed_arrays_back(mode: str) -> None:
    """glibc's default keeps freed arrays below its raised threshold in the heap (held behind later small
    objects); after return_freed_memory() each is its own mapping and goes back when freed."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _RETAIN, mode], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    held_mb = int(out.stdout.strip())
    if mode == "default":
        assert held_mb >= 64, f"glibc kept only {held_mb} MB: the test no longer shows what the helper prevents"
    else:
        assert held_mb < 16, f"{held_mb} MB of freed arrays stayed in the process"


def test_trim_runs_with_and_without_pyarrow() -> None:
    _malloc.trim()
    import pyarrow as pa

    pa.array(range(100_000))
    _malloc.trim()
    assert pa.total_allocated_bytes() >= 0


_POOL = """
import os, sys
from pipeline import _malloc, cli

if sys.argv[1] == "after":
    import pyarrow
if sys.argv[1] == "cli":
    try:
        cli.main(["run", "--help"])
    except SystemExit:
        pass
else:
    _malloc.use_system_arrow_pool()
import pyarrow as pa
print(pa.default_memory_pool().backend_name)
"""


@pytest.mark.parametrize(("mode", "preset", "want"), [
    ("cli", None, "system"),  # the CLI chooses before anything imports pyarrow
    ("before", None, "system"),
    ("after", None, "system"),  # pyarrow already imported: its Python-level pool
    ("before", "mimalloc", "mimalloc"),  # the user's choice stands
])
def test_arrow_buffers_come_from_the_system_allocator(mode: str, preset: str | None, want: str) -> None:
    """mimalloc (pyarrow's default pool on Linux) kept ~80 MB of freed Parquet buffers over a
    20,000-article run's main process; the CLI and the task bodies choose the system allocator."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if preset:
        env["ARROW_DEFAULT_MEMORY_POOL"] = preset
    out = subprocess.run([sys.executable, "-c", _POOL, mode], capture_output=True, text=True, check=True, env=env,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.stdout.splitlines()[-1].split()[0] == want
