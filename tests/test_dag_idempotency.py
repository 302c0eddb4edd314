"""Retries of the ingest DAG's tasks are safe: a commit task killed (SIGKILL, for real) at its write and
before_commit points and then retried leaves exactly one row per article, consistent views, and a
further retry is a no-op; a retried planning task plans the same work. The tasks are the functions of
`pipeline.orchestration` that dags/news_ingest.py calls, each run in its own process (as a worker runs
a task instance) against the demo web on loopback. Also the small helpers the DAGs use (run clock,
retention days, report path, Asset URI)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_crash import assert_consistent

from pipeline.demo import DemoServer, DemoWeb
from pipeline.orchestration import articles_asset_uri, report_path, retain_days, run_clock
from pipeline.settings import ConfigError
from pipeline.views import connect
from pipeline.warehouse import DATASETS, Warehouse

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # the demo web's time, and the first run's clock

# One task per process, as an Airflow worker runs it: "fetch" = plan_feeds, fetch_feeds[*], plan_pages,
# fetch_pages[*] (each planning task twice: the second call is a retry), "commit" = the commit task.
# XCom is a JSON file.
TASKS = """
import json, sys
from datetime import datetime
from pathlib import Path
from pipeline import orchestration as o
from pipeline.settings import load_config

stage, cfg, wh, run_id, now, xcom = sys.argv[1:7]
config, now = load_config(cfg), datetime.fromisoformat(now)
if stage == "fetch":
    batches = o.plan_feeds(config, warehouse=wh, now=now)
    retried_batches = o.plan_feeds(config, warehouse=wh, now=now)
    feeds = [o.fetch_feed_batch(config, wh, run_id, i, b) for i, b in enumerate(batches)]
    plans = o.plan_pages(config, wh, run_id, feeds, now=now)
    files = {p["path"]: Path(p["path"]).read_bytes() for p in plans}
    retried_plans = o.plan_pages(config, wh, run_id, feeds, now=now)
    same_files = all(Path(p).read_bytes() == b for p, b in files.items())
    pages = [o.fetch_page_batch(config, wh, run_id, p) for p in plans]
    out = {"batches": batches, "retried_batches": retried_batches, "feeds": feeds, "plans": plans,
           "retried_plans": retried_plans, "same_files": same_files, "pages": pages}
    Path(xcom).write_text(json.dumps(out))
elif stage == "commit":
    x = json.loads(Path(xcom).read_text())
    out = o.commit(config, wh, run_id, x["feeds"], x["pages"], lock_wait_s=60)
else:  # "plan": what plan_feeds plans at this clock
    out = o.plan_feeds(config, warehouse=wh, now=now)
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    web = DemoWeb(seed=11, now=NOW)
    with DemoServer(web) as server:
        cfg = tmp_path_factory.mktemp("idem") / "demo.yaml"
        # One extraction process: a killed task must not leave pool workers behind.
        cfg.write_text(web.config_yaml(server.base_url) + "extract:\n  workers: 1\n", encoding="utf-8")
        yield web, cfg


def task(stage: str, cfg: Path, wh: Path, run_id: str, now: datetime, xcom: Path,
         crash: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSINGEST")}
    env.update({"PYTHONPATH": str(ROOT), "NEWSINGEST_CRASH_AT": crash or ""})
    return subprocess.run([sys.executable, "-c", TASKS, stage, str(cfg), str(wh), run_id, now.isoformat(), str(xcom)],
                          capture_output=True, text=True, env=env, timeout=300)


def ok(res: subprocess.CompletedProcess):
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def consistent(wh: Path) -> tuple[int, int]:
    """(articles, committed runs), after test_crash's checks: one row per article, nothing of an uncommitted
    run, per-run counts that add up, the DuckDB file agreeing."""
    articles = assert_consistent(wh)
    runs = connect(wh).sql("SELECT count(*) FROM runs").fetchall()[0][0]
    return len(articles), runs


def no_leftovers(wh: Path) -> None:
    snap = Warehouse(wh).snapshot()
    known = set(snap.files) | set(snap.retired)
    on_disk = {str(p.relative_to(wh)) for d in DATASETS if (wh / d).is_dir() for p in (wh / d).rglob("*") if p.is_file()}
    assert on_disk <= known, f"files no commit lists: {sorted(on_disk - known)[:5]}"
    assert not (wh / "_txn").is_dir() or not list((wh / "_txn").iterdir())


@pytest.mark.slow
def test_commit_killed_mid_commit_and_retried_stores_each_article_once(demo, tmp_path):
    _web, cfg = demo
    wh, xcom = tmp_path / "warehouse", tmp_path / "xcom.json"
    run_id = "af_news_ingest_scheduled__2026-11-20T09_00_00_00_00"

    staged = ok(task("fetch", cfg, wh, run_id, NOW, xcom))
    # A retried planning task plans the same work: same batches, same page plans, same plan files.
    assert staged["retried_batches"] == staged["batches"] and staged["batches"] != [[]]
    assert staged["retried_plans"] == staged["plans"] and staged["same_files"]
    planned = sum(p["pages"] for p in staged["plans"])
    assert planned >= 40
    # Each fetch task meters its work, as a CLI run's stages: time, CPU (and its workers'), peak memory.
    for kind in ("feeds", "pages"):
        for result in staged[kind]:
            [stage] = result["stages"]
            assert stage["stage"] == kind and stage["elapsed_s"] > 0 and stage["cpu_s"] > 0, stage
            assert stage["children_cpu_s"] >= 0 and 30 < stage["peak_rss_mb"] < 2000, stage
    import pyarrow.parquet as pq

    raw_staged = sum(pq.ParquetFile(p).metadata.num_rows for p in Warehouse(wh).staging_dir(run_id).glob("raw-*.parquet"))
    assert raw_staged > 0

    # The commit task is killed after two of its data files, then with every file and the state written
    # but the log entry not: nothing is visible either time.
    for point in ("write@2", "before_commit"):
        res = task("commit", cfg, wh, run_id, NOW, xcom, crash=point)
        assert res.returncode == -signal.SIGKILL, (point, res.returncode, res.stderr[-2000:])
        assert consistent(wh) == (0, 0), f"half a commit is visible after a kill at {point}"

    # The retry commits everything the fetch tasks staged, once.
    first = ok(task("commit", cfg, wh, run_id, NOW, xcom))
    assert not first.get("already_committed") and first["run_id"] == run_id
    articles, runs = consistent(wh)
    assert runs == 1 and articles == first["articles_written"]
    # Every staged item is either stored or waiting for a retry (a demo page answers with errors).
    assert articles + first["retries_pending"] == first["new_items"] >= planned
    no_leftovers(wh)
    assert not Warehouse(wh).staging_dir(run_id).exists()  # staging goes with the commit
    # The kept raw pages (for reextract) survived the killed attempts too: the staged file is still there
    # for the retry after an attempt put it into the warehouse and died.
    assert sum(f.get("rows") or 0 for f in Warehouse(wh).snapshot().live("raw_pages")) == raw_staged

    # A further retry (the task's success was not recorded, say) changes nothing.
    again = ok(task("commit", cfg, wh, run_id, NOW, xcom))
    assert again["already_committed"] is True and again["articles_written"] == first["articles_written"]
    assert consistent(wh) == (articles, 1)

    # Plans follow the run's clock, not the wall clock: at a clock before the feeds' next poll nothing is
    # due, at one days later every feed is (so a retry, which keeps its run's clock, plans as its first try).
    wall = datetime.now(UTC)
    assert ok(task("plan", cfg, wh, run_id, wall - timedelta(days=1), xcom)) == [[]]
    assert ok(task("plan", cfg, wh, run_id, wall + timedelta(days=3), xcom)) != [[]]

    # A second run killed just after its commit point: its retry finds it committed and cleans up.
    run2 = "af_news_ingest_scheduled__2026-11-20T09_15_00_00_00"
    later = wall + timedelta(days=3)
    ok(task("fetch", cfg, wh, run2, later, xcom))
    res = task("commit", cfg, wh, run2, later, xcom, crash="after_commit")
    assert res.returncode == -signal.SIGKILL, res.stderr[-2000:]
    assert consistent(wh) == (articles, 2)
    retry = ok(task("commit", cfg, wh, run2, later, xcom))
    assert retry["already_committed"] is True
    assert consistent(wh) == (articles, 2)  # the feeds answered 304: nothing new, nothing twice
    assert not Warehouse(wh).staging_dir(run2).exists()
    no_leftovers(wh)


def test_run_clock_is_the_runs_time_in_plain_utc():
    from zoneinfo import ZoneInfo

    after = datetime(2026, 11, 20, 10, 15, tzinfo=ZoneInfo("Europe/Berlin"))
    clock = run_clock(after, None)
    assert clock == after and clock.tzinfo is UTC and type(clock) is datetime
    assert run_clock(None, NOW) == NOW  # a run without run_after (older Airflow): its logical date
    assert run_clock(after, NOW) == after  # run_after wins: a manual run's logical date may be None or old
    with pytest.raises(ValueError, match="naive"):
        run_clock(datetime(2026, 11, 20), None)
    with pytest.raises(ValueError, match="cannot pin"):
        run_clock(None, None)


def test_retain_days_from_a_setting():
    assert retain_days(None) == retain_days("") == 30
    assert retain_days(" 7 ") == 7 and retain_days("0") == 0
    assert retain_days("off") is None and retain_days("Never") is None
    with pytest.raises(ConfigError, match="not a whole number"):
        retain_days("7d")
    with pytest.raises(ConfigError, match="0 or more"):
        retain_days("-1")


def test_report_path_and_asset_uri(tmp_path):
    day = NOW.date()
    assert report_path(str(tmp_path), day) == tmp_path / "_reports" / "report-2026-11-20.html"
    assert report_path(str(tmp_path), day, str(tmp_path / "r" / "health-{date}.html")) == tmp_path / "r" / "health-2026-11-20.html"
    assert report_path("s3://bucket/news", day) is None  # no local directory: needs NEWSINGEST_REPORT_PATH
    assert articles_asset_uri(str(tmp_path)) == f"file://{tmp_path}/articles"
    assert articles_asset_uri("s3://bucket/news/") == "s3://bucket/news/articles"


def test_a_staged_raw_file_put_into_the_warehouse_stays_and_a_rewrite_never_touches_the_put_copy(tmp_path):
    """The retried commit needs the staged raw pages after a killed attempt put them into the warehouse; and
    a task re-run for a committed run rewrites its staging file as a new file, not the committed one."""
    import pyarrow.parquet as pq

    from pipeline.records import FeedItem, FetchResult
    from pipeline.run import PageTask, RawPageWriter

    def write(path: Path, n: int) -> None:
        raw = RawPageWriter(path, "r1")
        for k in range(n):
            item = FeedItem(source="s", feed_url="http://example.com/feed", url=f"http://example.com/{k}", guid=None)
            raw.add(PageTask(f"id{k}", item), FetchResult(url=item.url, kind="page", outcome="ok", body=b"<p>x</p>"), NOW)
        raw.close()

    wh = Warehouse(tmp_path / "warehouse")
    staged = wh.staging_dir("r1") / "raw-0000.parquet"
    write(staged, 3)
    entry = wh.put_file(staged, "raw_pages/fetch_date=2026-11-20/part-r1-0.parquet")
    assert staged.exists() and entry["bytes"] == staged.stat().st_size
    put = wh.root / entry["path"]
    before = put.read_bytes()
    write(staged, 5)  # the same staging path written again
    assert put.read_bytes() == before and pq.ParquetFile(put).metadata.num_rows == 3
    assert pq.ParquetFile(staged).metadata.num_rows == 5
