"""The Airflow DAGs: they import without errors (and without heavy top-level imports); the ingest DAG runs
end to end with `dag.test()` against the demo web on loopback, takes its config from the Airflow Variable,
survives a worker killed mid-commit, and fails its run when every feed fails; the maintenance and consumer
DAGs run on a copy of the demo warehouse. A fresh AIRFLOW_HOME (SQLite) per module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("airflow", reason="apache-airflow is not installed (pip install -e '.[airflow]')")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.airflow


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSINGEST"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    res = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=airflow_env(home),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return home


@pytest.fixture
def warehouse(airflow_home) -> Path:
    """An empty warehouse path, the same for every test of the module: the ingest DAG's Asset URI contains
    it, and Airflow keeps one active asset per name, so the DAGs of one Airflow home keep one warehouse."""
    import shutil

    path = airflow_home / "warehouse"
    shutil.rmtree(path, ignore_errors=True)
    return path


def run_py_process(code: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_py(code: str, env: dict[str, str], timeout: int = 600) -> dict:
    res = run_py_process(code, env, timeout)
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-5000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


# dag.test() of DAGs one after the other in one subprocess (Airflow starts once); for each, prints the run's
# state, run id, task states and the XCom return values. Arguments: dag_id or dag_id@<logical date = run_after>.
DAG_TEST = """
    import json, sys
    from datetime import datetime
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag()
    key = lambda ti: ti.task_id + ("[%d]" % ti.map_index if ti.map_index >= 0 else "")
    for arg in sys.argv[1:]:
        dag_id, _, when = arg.partition("@")
        when = datetime.fromisoformat(when) if when else None
        run = bag.dags[dag_id].test(logical_date=when, run_after=when) if when else bag.dags[dag_id].test()
        tis = run.get_task_instances()
        print(json.dumps({"state": str(run.state), "run_id": run.run_id,
                          "tasks": {key(ti): str(ti.state) for ti in tis},
                          "xcom": {key(ti): ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
                                   for ti in tis if str(ti.state) == "success"}}, default=str), flush=True)
"""


def dag_tests(runs: list[str], env: dict[str, str]) -> list[dict]:
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(DAG_TEST), *runs], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-5000:])
    outs = [json.loads(line) for line in res.stdout.splitlines() if line.startswith('{"state"')]
    assert len(outs) == len(runs), res.stdout[-3000:]
    for out in outs:
        out["log"] = res.stdout + res.stderr
    return outs


def test_dagbag_imports_cleanly_and_dag_files_stay_light(airflow_home):
    out = run_py("""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag()
        heavy = sorted(m for m in ("trafilatura", "pyarrow", "duckdb", "feedparser", "lxml", "numpy") if m in sys.modules)
        dags = {i: {"tasks": sorted(d.task_ids), "schedule": str(d.schedule),
                    "assets": [[a.name, a.uri] for a in getattr(d.timetable, "asset_condition", None).objects]
                              if getattr(d.timetable, "asset_condition", None) else None,
                    "outlets": {t.task_id: [[a.name, a.uri] for a in t.outlets] for t in d.tasks if t.outlets}}
                for i, d in bag.dags.items()}
        print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags,
                          "heavy": heavy}))
    """, airflow_env(airflow_home, NEWSINGEST_WAREHOUSE="/data/wh"))
    assert out["errors"] == {}
    dags = out["dags"]
    assert sorted(dags) == ["news_consumer_example", "news_ingest", "news_maintenance"]
    assert out["heavy"] == [], f"DAG files import heavy modules at parse time: {out['heavy']}"
    assert dags["news_ingest"]["tasks"] == ["commit", "fetch_feeds", "fetch_pages", "plan_feeds", "plan_pages", "verify"]
    assert dags["news_ingest"]["schedule"] == "*/15 * * * *"
    assert dags["news_maintenance"]["tasks"] == ["compact", "report", "retain", "vacuum"]
    assert dags["news_maintenance"]["schedule"] == "0 3 * * *"
    # The consumer runs on exactly the Asset the ingest DAG's commit emits.
    articles = ["newsingest_articles", "file:///data/wh/articles"]
    assert dags["news_ingest"]["outlets"] == {"commit": [articles]}
    assert dags["news_consumer_example"]["assets"] == [articles]
    assert dags["news_consumer_example"]["tasks"] == ["copy_new_articles"]


@pytest.mark.slow
def test_ingest_dag_runs_with_dag_test(airflow_home, warehouse, tmp_path):
    from pipeline.demo import DemoServer, DemoWeb

    web = DemoWeb(seed=5)
    with DemoServer(web) as server:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(web.config_yaml(server.base_url), encoding="utf-8")
        env = airflow_env(airflow_home, NEWSINGEST_CONFIG=str(cfg), NEWSINGEST_WAREHOUSE=str(warehouse))
        # Two DAG runs in one process; the second is incremental: feeds answer 304, nothing new is stored.
        first, second = dag_tests(["news_ingest", "news_ingest"], env)
    assert first["state"] == "success", first["tasks"]
    assert second["state"] == "success", second["tasks"]
    from pipeline.views import connect

    con = connect(warehouse)
    n, ids = con.sql("SELECT count(*), count(DISTINCT article_id) FROM articles").fetchall()[0]
    assert n == ids == first["xcom"]["commit"]["articles_written"] >= 40
    assert second["xcom"]["commit"]["articles_written"] == 0
    runs = con.sql("SELECT run_id, counts['feeds_not_modified'] FROM runs ORDER BY committed_at").fetchall()
    assert len(runs) == 2 and runs[1][1] == len(web.feeds)
    assert all(r[0].startswith("af_news_ingest_") for r in runs)


@pytest.mark.slow
def test_config_from_the_variable_and_a_commit_killed_then_rerun_stores_each_article_once(airflow_home, warehouse):
    """The config comes from the Airflow Variable `newsingest_config` (no NEWSINGEST_CONFIG) and lists one
    feed that 404s. The first dag.test() process is SIGKILLed at the commit's before_commit point (files
    and state written, log entry not); the same DAG run again (same logical date and run_after, so the
    same run id and run clock) commits every article once; a third time commits nothing."""
    import signal
    from datetime import UTC, datetime, timedelta

    from pipeline.demo import DemoServer, DemoWeb
    from pipeline.views import connect

    web = DemoWeb(seed=5)
    when = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0).isoformat()
    env = airflow_env(airflow_home, NEWSINGEST_WAREHOUSE=str(warehouse))
    set_var = """
        import sys
        from airflow.models import Variable
        Variable.set("newsingest_config", sys.argv[1]) if len(sys.argv) > 1 else Variable.delete("newsingest_config")
        print("{}")
    """
    with DemoServer(web) as server:
        config = web.config_yaml(server.base_url).replace(
            "feeds:\n", f'feeds:\n  - {{name: gone, url: "{server.base_url}/no-such-feed.xml"}}\n', 1)
        res = subprocess.run([sys.executable, "-c", textwrap.dedent(set_var), config], env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        try:
            killed = subprocess.run([sys.executable, "-c", textwrap.dedent(DAG_TEST), f"news_ingest@{when}"],
                                    env={**env, "NEWSINGEST_CRASH_AT": "before_commit"}, capture_output=True,
                                    text=True, timeout=600)
            assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-3000:])
            assert connect(warehouse).sql("SELECT count(*) FROM runs").fetchall()[0][0] == 0  # nothing visible

            rerun, again = dag_tests([f"news_ingest@{when}"] * 2, env)
            # One feed of eight failed: recorded, not fatal.
            assert rerun["state"] == "success", rerun["tasks"]
            counts = rerun["xcom"]["commit"]
            assert counts["feeds_failed"] == 1 and counts["feeds"] == len(web.feeds) + 1
            assert counts.get("already_committed") is None
            con = connect(warehouse)
            n, ids = con.sql("SELECT count(*), count(DISTINCT article_id) FROM articles").fetchall()[0]
            assert n == ids == counts["articles_written"] >= 40
            runs = con.sql("SELECT run_id FROM runs").fetchall()
            assert runs == [(counts["run_id"],)] and counts["run_id"].startswith("af_news_ingest_manual__")

            assert again["state"] == "success", again["tasks"]
            assert again["xcom"]["commit"]["already_committed"] is True
            assert connect(warehouse).sql("SELECT count(*), count(DISTINCT run_id) FROM articles").fetchall()[0] == (n, 1)
        finally:
            subprocess.run([sys.executable, "-c", textwrap.dedent(set_var)], env=env, capture_output=True, timeout=300)


@pytest.mark.slow
def test_a_run_where_every_feed_fails_fails_with_a_clear_message(airflow_home, warehouse, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on: every feed is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"""feeds:
  - {{name: one, url: "http://127.0.0.1:{port}/one.xml"}}
  - {{name: two, url: "http://127.0.0.1:{port}/two.xml"}}
fetch:
  allow_private: ["127.0.0.1"]
  max_retries: 0
""", encoding="utf-8")
    [out] = dag_tests(["news_ingest"], airflow_env(airflow_home, NEWSINGEST_CONFIG=str(cfg),
                                                   NEWSINGEST_WAREHOUSE=str(warehouse)))
    assert out["state"] == "failed"
    assert out["tasks"]["commit"] == "success", out["log"][-6000:]  # failures are recorded (fetch_log, source_health)
    assert out["tasks"]["verify"] == "failed"
    assert "all 2 feeds failed in run af_news_ingest_manual__" in out["log"]
    assert "SELECT url, outcome, error FROM fetch_log" in out["log"]


@pytest.mark.slow
def test_maintenance_and_consumer_dags_run_on_a_demo_warehouse(airflow_home, warehouse, demo_warehouse, tmp_path):
    import shutil
    from datetime import UTC, datetime, timedelta

    import pyarrow.parquet as pq

    from pipeline.views import connect
    from pipeline.warehouse import Warehouse

    wh = warehouse
    shutil.copytree(demo_warehouse, wh)
    out_dir = tmp_path / "consumer"
    env = airflow_env(airflow_home, NEWSINGEST_WAREHOUSE=str(wh), CONSUMER_OUT=str(out_dir),
                      NEWSINGEST_RETAIN_DAYS="7")
    con = connect(wh)
    total = con.sql("SELECT count(*) FROM articles").fetchall()[0][0]
    last_run = con.sql("SELECT run_id FROM runs ORDER BY seq DESC LIMIT 1").fetchall()[0][0]
    con.close()

    def small_partitions() -> int:  # partitions with more than one live file (what compaction merges)
        seen: dict[tuple[str, str], int] = {}
        for f in Warehouse(wh).snapshot().files.values():
            seen[(f["dataset"], f.get("partition", ""))] = seen.get((f["dataset"], f.get("partition", "")), 0) + 1
        return sum(1 for n in seen.values() if n > 1)

    before = small_partitions()
    assert before >= 1  # two runs wrote today's fetch log

    # consumer, maintenance, consumer again
    first, maint, second = dag_tests(["news_consumer_example", "news_maintenance", "news_consumer_example"], env)
    assert first["state"] == "success", first["tasks"]
    copied = first["xcom"]["copy_new_articles"]
    assert copied["rows"] == total and copied["watermark"] == last_run
    ids = pq.read_table(copied["file"]).column("article_id").to_pylist()
    assert len(ids) == len(set(ids)) == total

    assert maint["state"] == "success", maint["tasks"]
    today = datetime.now(UTC).date()
    assert maint["xcom"]["retain"]["dataset"] == "raw_pages"
    assert maint["xcom"]["retain"]["before"] == (today - timedelta(days=7)).isoformat()  # NEWSINGEST_RETAIN_DAYS
    assert maint["xcom"]["compact"]["files_merged"] >= 2
    assert small_partitions() == 0 < before
    report = wh / "_reports" / f"report-{today.isoformat()}.html"
    assert maint["xcom"]["report"]["path"] == str(report) and report.exists()
    assert maint["xcom"]["report"]["articles"] == total and "<svg" in report.read_text(encoding="utf-8")
    assert connect(wh).sql("SELECT count(*), count(DISTINCT article_id) FROM articles").fetchall()[0] == (total, total)

    # The watermark (a file beside the copies) survives the compaction: the next consumer run finds nothing new.
    assert json.loads((out_dir / "_watermark.json").read_text())["watermark"] == last_run
    assert second["state"] == "success", second["tasks"]
    assert second["xcom"]["copy_new_articles"]["rows"] == 0
    assert second["xcom"]["copy_new_articles"]["watermark"] == last_run
