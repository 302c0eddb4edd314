"""Keep freed memory in the process while a big batch computes (glibc only; elsewhere a no-op).

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and unmaps it
on free, so each of the batch engine's large temporary arrays is faulted in page by page from the kernel
again, although an array of the same size was just freed. On these VMs a first touch costs about 2.5 s of
CPU per GB: with this, a 100k-document batch ran ~5% faster (a third of the page faults), a 1M-document
one 10-15%. Inside
:func:`keep_freed_memory` big blocks come from the heap instead and freed ones stay there for the next
array; on the way out the defaults come back and ``malloc_trim`` returns the free pages to the system, so
the process's resident set afterwards is what it would have been.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_MMAP_THRESHOLD = -3
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_TOP_PAD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536

_RETURN_THRESHOLD = 1 << 20  # blocks from 1 MB up: their own mapping, unmapped when freed

_lock = threading.Lock()
_depth = 0


def _libc() -> ctypes.CDLL | None:
    try:
        try:  # glibc's name; ctypes.util's search for it cost ~8 ms of every process's start (the workers')
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            from ctypes.util import find_library

            libc = ctypes.CDLL(find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to tune
        return None


_LIBC = _libc()


def available() -> bool:
    return _LIBC is not None


@contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Within the block, large allocations reuse freed heap memory instead of fresh pages; yields whether
    that is in effect (glibc). Nested and concurrent uses share one setting, restored by the last to leave."""
    global _depth
    libc = _LIBC
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(_M_MMAP_MAX, 0)  # big blocks from the heap, where a freed one can be reused
            libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # and do not give the heap's top back on every free
            libc.mallopt(_M_TOP_PAD, 64 << 20)  # grow the heap in steps of 64 MB rather than per array
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                libc.mallopt(_M_TOP_PAD, _DEFAULT_TOP_PAD)
                libc.malloc_trim(0)  # free pages back to the system, as unmapping would have done


def return_freed_memory() -> bool:
    """From now on this process gives large freed blocks back to the system; returns whether that is in effect.

    By default glibc raises its mmap threshold each time a mapped block is freed (up to 32 MB), so after
    the first big temporary array the next ones, up to 32 MB each, come from the heap, and their freed
    pages stay in the process, fragmented. A long commit of a big run then holds a few hundred MB it no
    longer uses (measured: 830 -> 650 MB after indexing 20,000 articles, same speed). A fixed threshold
    of 1 MB turns that adjustment off. :func:`keep_freed_memory` blocks still keep freed memory inside.
    """
    use_system_arrow_pool()
    libc = _LIBC
    if libc is None:
        return False
    with _lock:
        libc.mallopt(_M_MMAP_THRESHOLD, _RETURN_THRESHOLD)
    return True


def use_system_arrow_pool() -> None:
    """pyarrow's buffers come from the system allocator from now on in this process (unless
    $ARROW_DEFAULT_MEMORY_POOL chooses a pool). pyarrow's default on Linux, mimalloc, keeps the pages each
    thread freed for that thread (`release_unused` collects only the calling thread's, and the Parquet
    reader and writer free from theirs): over 20,000 articles a run's main process peaked at 327 MB with
    it and 242 MB with the system allocator, which gives freed blocks of 1 MB and more back at once
    (`return_freed_memory`). Buffers already allocated stay in their pool. Before pyarrow is imported
    this sets the environment variable, which child processes (the extraction workers) inherit."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    pa = sys.modules.get("pyarrow")
    if pa is None:  # not imported yet (importing it costs 0.1-0.2 s): it reads this when it is
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    else:
        pa.set_memory_pool(pa.system_memory_pool())


def single_threaded_blas() -> None:
    """This process, if it has not imported numpy yet, and the processes it starts from now on (a pool's
    workers inherit the environment) run numpy's OpenBLAS on one thread, unless $OPENBLAS_NUM_THREADS says
    otherwise. Its default starts a thread per core at import, which spins for a while: ~0.08 s of CPU in
    each process, taken from the workers' start. Nothing here multiplies big matrices, and a run's pool
    already has a process per core."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def trim() -> None:
    """Give the free pages of glibc's heap and of pyarrow's memory pool back to the system (a phase ended)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    pa = sys.modules.get("pyarrow")  # only when this process uses pyarrow already
    if pa is not None:
        pa.default_memory_pool().release_unused()
