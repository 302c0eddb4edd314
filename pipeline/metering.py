"""Wall time, CPU time and peak memory of a run's stages, for the run's summary.

A big run's operator needs to know which stage its time and memory go to (the feeds, the pages, or the
commit's dedup index) without attaching a profiler; Scrapy's stats (`memusage/max`) and dlt's per-step
timings answer the same question. Each stage records:

- `elapsed_s`: wall-clock seconds;
- `cpu_s`: CPU seconds of this process, all its threads (the extraction workers are other processes:
  `children_cpu_s`);
- `children_cpu_s`: CPU seconds of this process's child processes in the stage (the extraction pool's
  workers: read from /proc for the live ones, from the kernel's account of the ended ones; None where
  /proc is absent);
- `peak_rss_mb`: the largest resident set of this process seen during the stage, sampled by a daemon
  thread every `sample_every_s` (of the meter whose stage started it) and at the stage's start and end
  (None where /proc is absent).

Stages nest ("commit" holds "commit/dedup"): a sample counts for every stage open in the process at the
time, whichever meter opened it. The sampler reads one /proc file per sample (~10 us: 20 samples a
second take 0.02% of a core).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


def rss_mb(pid: int | str = "self") -> float | None:
    """The resident set of process `pid` (default this one) now, in MB (None where it is gone or there is no
    /proc)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return None


_TICK_S = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def _child_pids() -> set[int]:
    """This process's live children (each thread's list: a pool's workers are started by a thread)."""
    pids: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:  # the thread ended since the listing (a pool's or an executor's)
            continue
    return pids


def cpu_of(pid: int) -> float | None:
    """CPU seconds (user + system) of process `pid` so far, from /proc (None where it is gone or there is
    no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * _TICK_S
    except (OSError, ValueError, IndexError):
        return None


def children_cpu() -> dict[int, float] | None:
    """CPU seconds of each live child, and under -1 those of the ended children this process waited for
    (None where /proc is absent). Two readings' difference (`children_cpu_between`) is the children's CPU in
    between, whichever started or ended meanwhile."""
    try:
        pids = _child_pids()
    except OSError:
        return None
    import resource

    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {pid: cpu_of(pid) or 0.0 for pid in pids}
    out[-1] = ended.ru_utime + ended.ru_stime
    return out


def children_cpu_between(start: dict[int, float] | None, end: dict[int, float] | None) -> float | None:
    """A child alive at both readings counts its difference, one started since its whole CPU, one that ended
    since its final account (in the ended total) less its CPU at the start."""
    if start is None or end is None:
        return None
    return max(0.0, sum(end.values()) - sum(start.values()))


class _Open:
    __slots__ = ("children0", "cpu0", "peak", "t0")

    def __init__(self, peak: float | None) -> None:
        self.peak = peak
        self.t0, self.cpu0 = time.monotonic(), time.process_time()
        self.children0 = children_cpu()


# The stages open in this process, of every meter: memory is the process's, so a sample counts for each of
# them (a stage nested in another meter's stage never shows a higher peak than it). One sampler thread runs
# while any is open.
_open: list[_Open] = []
_lock = threading.Lock()
_sampler: tuple[threading.Thread, threading.Event] | None = None
SAMPLE_EVERY_S = 0.05


def _sample() -> None:
    rss = rss_mb()
    if rss is None:
        return
    with _lock:
        for st in _open:
            if st.peak is None or rss > st.peak:
                st.peak = rss


def _run_sampler(stop: threading.Event, every_s: float) -> None:
    while not stop.wait(every_s):
        _sample()


class StageMeter:
    """Stages of one run, in the order they started (see the module's docstring). `into`: the list to record
    them in (a summary's, shared by the meters of a run's parts)."""

    def __init__(self, into: list[dict[str, Any]] | None = None, sample_every_s: float = SAMPLE_EVERY_S) -> None:
        self.sample_every_s = sample_every_s
        self.stages: list[dict[str, Any]] = into if into is not None else []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Measure the block as stage `name` (recorded when it ends, by an exception too)."""
        global _sampler
        st = _Open(rss_mb())
        with _lock:
            _open.append(st)
            if _sampler is None:
                stop = threading.Event()
                thread = threading.Thread(target=_run_sampler, args=(stop, self.sample_every_s),
                                          name="newsingest-stage-meter", daemon=True)
                _sampler = (thread, stop)
                thread.start()
        entry: dict[str, Any] = {"stage": name}  # its place: stages are listed in the order they started
        self.stages.append(entry)
        try:
            yield
        finally:
            _sample()
            ending = None
            with _lock:
                _open.remove(st)
                if not _open:
                    ending, _sampler = _sampler, None
            if ending is not None:
                ending[1].set()
                ending[0].join()
            entry.update(elapsed_s=round(time.monotonic() - st.t0, 3),
                         cpu_s=round(time.process_time() - st.cpu0, 3),
                         children_cpu_s=_rounded(children_cpu_between(st.children0, children_cpu())),
                         peak_rss_mb=None if st.peak is None else round(st.peak, 1))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def format_stages(stages: list[dict[str, Any]]) -> str:
    """One line: each top-level stage's time, CPU (and its workers'), and peak memory."""
    parts = []
    for s in stages:
        if "/" in s["stage"] or "elapsed_s" not in s:
            continue
        workers = s.get("children_cpu_s")
        text = f"{s['stage']} {s['elapsed_s']:.1f} s (CPU {s['cpu_s']:.1f} s"
        text += f" + {workers:.1f} s in workers)" if workers and workers >= 0.05 else ")"
        if s.get("peak_rss_mb") is not None:
            text += f", {s['peak_rss_mb']:.0f} MB"
        parts.append(text)
    return "; ".join(parts)
