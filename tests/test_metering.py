"""Stage metering: each stage's wall and CPU time and this process's peak memory, measured for real (no
clock or /proc is faked), and a run's summary carrying them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from pipeline.metering import StageMeter, children_cpu, format_stages, rss_mb

pytestmark = pytest.mark.skipif(rss_mb() is None, reason="no /proc/self/statm on this platform: no memory figures")

MB = 1 << 20


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_stages_time_cpu_and_nesting_in_start_order():
    meter = StageMeter()
    with meter.stage("outer"):
        with meter.stage("outer/sleep"):
            time.sleep(0.3)
        with meter.stage("outer/busy"):
            _busy(0.3)
    names = [s["stage"] for s in meter.stages]
    assert names == ["outer", "outer/sleep", "outer/busy"]
    outer, sleep, busy = meter.stages
    assert sleep["elapsed_s"] >= 0.29 and sleep["cpu_s"] < 0.1  # waiting costs no CPU
    assert busy["cpu_s"] >= 0.29 and busy["elapsed_s"] >= busy["cpu_s"] - 0.05
    assert outer["elapsed_s"] >= sleep["elapsed_s"] + busy["elapsed_s"] - 0.01
    assert format_stages(meter.stages).startswith("outer ") and "sleep" not in format_stages(meter.stages)


def test_a_peak_freed_before_the_stage_ends_is_seen_by_the_sampler():
    meter = StageMeter(sample_every_s=0.01)
    with meter.stage("calm"):
        time.sleep(0.05)
    with meter.stage("spike"):
        block = b"x" * (120 * MB)  # written, so resident
        time.sleep(0.2)  # several samples while it is held
        del block
        time.sleep(0.05)
        after = rss_mb()
    calm, spike = meter.stages
    # The stage's first and last samples are taken without the block: only the sampler saw it.
    assert spike["peak_rss_mb"] >= after + 100, meter.stages
    assert spike["peak_rss_mb"] >= calm["peak_rss_mb"] + 100


def test_a_failing_stage_is_recorded_and_its_sampler_stops():
    before = threading.active_count()
    meter = StageMeter(sample_every_s=0.01)
    with pytest.raises(ZeroDivisionError), meter.stage("doomed"):
        time.sleep(0.03)
        1 / 0  # noqa: B018
    [doomed] = meter.stages
    assert doomed["stage"] == "doomed" and doomed["elapsed_s"] >= 0.03 and doomed["peak_rss_mb"] > 0
    assert threading.active_count() == before
    assert not any(t.name == "newsingest-stage-meter" for t in threading.enumerate())


def test_meters_sharing_a_list_record_into_it():
    shared: list[dict] = []
    outer = StageMeter(shared)
    with outer.stage("a"):
        with StageMeter(shared).stage("a/b"):
            pass
    assert [s["stage"] for s in shared] == ["a", "a/b"]
    assert all({"elapsed_s", "cpu_s", "peak_rss_mb"} <= set(s) for s in shared)


_CHILD = """
import sys, time
def busy(s):
    end = time.process_time() + s
    while time.process_time() < end:
        pass
busy(0.4)
print("first", flush=True)
sys.stdin.readline()
busy(0.3)
"""


def test_children_cpu_counts_only_what_each_child_spent_in_the_stage():
    """A child that worked before the stage and ends (reaped) inside it counts its in-stage CPU only; one
    started inside the stage counts all of its CPU."""
    meter = StageMeter()
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "first"  # 0.4 s of its CPU before the stage
    with meter.stage("reaped"):
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == 0
    with meter.stage("sleeping"):
        time.sleep(0.1)  # no child works
    with meter.stage("started"):
        fresh = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
        assert fresh.stdout.readline().strip() == "first"
        with meter.stage("started/alive"):
            time.sleep(0.05)
    fresh.stdin.write("go\n")
    fresh.stdin.close()
    fresh.wait(timeout=30)
    fresh.stdout.close()
    child.stdout.close()
    reaped, sleeping, started, _ = meter.stages
    assert 0.25 <= reaped["children_cpu_s"] <= 0.55, reaped  # its 0.3 s, not the 0.4 before
    assert sleeping["children_cpu_s"] < 0.05, sleeping
    assert started["children_cpu_s"] >= 0.38, started  # a live child's CPU so far (its first 0.4 s)
    assert "(CPU " in format_stages(meter.stages) and "in workers)" in format_stages(meter.stages)


def test_children_cpu_is_read_while_threads_come_and_go():
    """A run's threads end at any time (the pool's, asyncio's executor's): a thread gone between the listing of
    /proc/self/task and the read of its children is skipped, not a lost reading (it was 1 in 4 here)."""
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            threads = [threading.Thread(target=time.sleep, args=(0.0005,)) for _ in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        readings = [children_cpu() for _ in range(1500)]
    finally:
        stop.set()
        churner.join()
    assert all(r is not None for r in readings)
