"""The ingest DAG under a real Airflow deployment: api-server, scheduler and dag-processor (plus two Celery
workers in the Celery variant) run as separate processes in a fresh AIRFLOW_HOME, the DAG is scheduled
every minute against the demo web on loopback, and the scheduler itself must complete two runs.

Variants (one test, parametrized):
  local   SQLite metadata DB + LocalExecutor (always runs)
  celery  PostgreSQL metadata DB (a new database, dropped afterwards) + CeleryExecutor on Redis with two
          workers; skips, saying why, when Postgres, Redis or the Celery provider is missing

Measured and printed (and written to <tmp>/airflow_scheduler_<variant>.json): seconds from the start of the
components to the end of the first and second successful scheduled runs, and the peak RSS of each
component's process tree (task processes included: they are children of the scheduler or the workers).

`make airflow-e2e` runs only this file; it is also part of `make test` (slow: ~2 minutes per variant on 2 cores).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("airflow", reason="apache-airflow is not installed (pip install -e '.[airflow]')")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "news_ingest"
POOL = "news_fetch"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = ("127.0.0.1", 6379)
RUNS_DEADLINE_S = 480.0  # two one-minute cron runs need ~2-3 minutes; a loaded 2-core machine may need more
STOP_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_table() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields resume after the last ')'
        table[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return table


def _tree(root: int, table: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return seen


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie (no VmRSS line)


@dataclass
class Component:
    name: str
    proc: subprocess.Popen
    log: Path
    peak_rss_kib: int = 0  # the process tree
    peak_root_kib: int = 0  # the component's own process


@dataclass
class Deployment:
    """Airflow components started as background processes, each in its own process group; a sampler
    thread records the peak RSS of each process tree."""

    env: dict[str, str]
    logs: Path
    components: list[Component] = field(default_factory=list)
    peak_total_kib: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Component:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "airflow", *args], env=env or self.env,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.logs)
        comp = Component(name, proc, log)
        self.components.append(comp)
        return comp

    def sample(self) -> None:
        table = _proc_table()
        total = 0
        for comp in self.components:
            rss = sum(_rss_kib(pid) for pid in _tree(comp.proc.pid, table))
            comp.peak_rss_kib = max(comp.peak_rss_kib, rss)
            comp.peak_root_kib = max(comp.peak_root_kib, _rss_kib(comp.proc.pid))
            total += rss
        self.peak_total_kib = max(self.peak_total_kib, total)

    def start_sampling(self, every_s: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(every_s):
                self.sample()

        self._sampler = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        self._sampler.start()

    def check_alive(self) -> None:
        for comp in self.components:
            if comp.proc.poll() is not None:
                raise AssertionError(f"{comp.name} exited with {comp.proc.returncode}\n{self.log_tails()}")

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for comp in self.components:
            text = comp.log.read_text(encoding="utf-8", errors="replace").splitlines()
            out.append(f"----- {comp.name} ({comp.log}), last {lines} lines -----")
            out.extend(text[-lines:])
        return "\n".join(out)

    def stop(self) -> None:
        """SIGTERM every process group (and stray descendants that left it), SIGKILL what is left after
        STOP_TIMEOUT_S."""
        self._stop.set()
        if self._sampler:
            self._sampler.join(timeout=5)
        table = _proc_table()
        pids = {comp.proc.pid: _tree(comp.proc.pid, table) for comp in self.components}
        for comp in self.components:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(comp.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for comp in self.components:
            with contextlib.suppress(subprocess.TimeoutExpired):
                comp.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for comp in self.components:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(comp.proc.pid, signal.SIGKILL)
            for pid in pids[comp.proc.pid] - {comp.proc.pid}:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                comp.proc.wait(timeout=10)


def airflow_cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    res = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"airflow {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
    return res.stdout


# ---------------------------------------------------------------------------------------------- backends


@dataclass
class Backend:
    name: str
    executor: str
    sql_conn: str
    env: dict[str, str]
    workers: int = 0
    queue: str = "default"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def local_backend(home: Path):
    yield Backend("local", "LocalExecutor", f"sqlite:///{home}/airflow.db", {})


@contextlib.contextmanager
def celery_backend(home: Path):
    try:
        import airflow.providers.celery  # noqa: F401
        import psycopg2
        import redis
    except ImportError as exc:
        pytest.skip(f"Celery variant needs apache-airflow[celery,postgres] (pip install "
                    f"'apache-airflow[celery,postgres]==3.3.2'): {exc}")
    if not _reachable(PG["host"], PG["port"]):
        pytest.skip(f"PostgreSQL is not reachable on {PG['host']}:{PG['port']}")
    if not _reachable(*REDIS):
        pytest.skip(f"Redis is not reachable on {REDIS[0]}:{REDIS[1]}")
    tag = f"newsingest_af_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = psycopg2.connect(dbname="postgres", **PG)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {PG['host']}:{PG['port']} refuses user {PG['user']}: {exc}")
    admin.autocommit = True
    r = redis.Redis(host=REDIS[0], port=REDIS[1])
    # A Redis db nobody uses if there is one; the key prefix and queue name keep us apart regardless.
    used = {int(k[2:]) for k in r.info("keyspace")}
    db = next((n for n in range(15, 0, -1) if n not in used), 15)
    prefix = f"{tag}:"
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{tag}"')
        url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{tag}"
        yield Backend("celery", "CeleryExecutor", url.replace("postgresql://", "postgresql+psycopg2://"), {
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{url}",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": prefix,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": tag,
        }, workers=2, queue=tag)
    finally:
        with contextlib.suppress(Exception):
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{tag}" WITH (FORCE)')
        admin.close()
        with contextlib.suppress(Exception):
            rdb = redis.Redis(host=REDIS[0], port=REDIS[1], db=db)
            keys = list(rdb.scan_iter(match=f"{prefix}*")) + list(rdb.scan_iter(match=f"*{tag}*"))
            if keys:
                rdb.delete(*keys)


BACKENDS = {"local": local_backend, "celery": celery_backend}


@pytest.fixture(params=list(BACKENDS))
def backend(request, tmp_path):
    home = tmp_path / "airflow_home"
    home.mkdir()
    with BACKENDS[request.param](home) as b:
        b.env["AIRFLOW_HOME"] = str(home)
        yield b


# ---------------------------------------------------------------------------------------------- metadata DB


class Metadata:
    """Read-only queries on the Airflow metadata DB (SQLite or PostgreSQL) with short transactions."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_engine(url, poolclass=NullPool)

    def rows(self, sql: str, **params) -> list[dict]:
        from sqlalchemy import text

        with self.engine.connect() as con:
            return [dict(r._mapping) for r in con.execute(text(sql), params)]

    def close(self) -> None:
        self.engine.dispose()


def _utc(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _task_log_tails(home: Path, lines: int = 30) -> str:
    out = []
    for path in sorted((home / "logs").rglob("*.log"))[-12:]:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        out.append(f"----- task log {path.relative_to(home)} -----")
        out.extend(text[-lines:])
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- the test


@pytest.mark.timeout(900)
def test_scheduler_runs_ingest_dag_every_minute(backend: Backend, tmp_path: Path):
    from pipeline.demo import DemoServer, DemoWeb
    from pipeline.run import sanitize_run_id
    from pipeline.views import connect

    home = Path(backend.env["AIRFLOW_HOME"])
    warehouse = tmp_path / "warehouse"
    logs = tmp_path / "component_logs"
    logs.mkdir()
    api_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSINGEST"))}
    env.update({
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": backend.executor,
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": backend.sql_conn,
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__PORT": str(api_port),
        # one secret for every component: the scheduler signs task tokens the api-server checks
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "PYTHONPATH": str(ROOT),
        "NEWSINGEST_SCHEDULE": "* * * * *",
        "NEWSINGEST_POOL": POOL,
        "NEWSINGEST_WAREHOUSE": str(warehouse),
        **backend.env,
    })

    t = time.monotonic()
    airflow_cli(env, "db", "migrate", timeout=600)
    migrate_s = time.monotonic() - t
    airflow_cli(env, "pools", "set", POOL, "2", "newsingest fetch tasks")

    web = DemoWeb(seed=11)
    meta = Metadata(backend.sql_conn)
    deployment = Deployment(env, logs)
    report: dict = {"variant": backend.name, "executor": backend.executor, "db_migrate_s": round(migrate_s, 1)}
    with DemoServer(web) as server:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(web.config_yaml(server.base_url), encoding="utf-8")
        env["NEWSINGEST_CONFIG"] = str(cfg)
        try:
            t0 = time.time()
            deployment.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(api_port),
                             "--workers", "1")
            # Logs are files in the shared AIRFLOW_HOME: nothing needs the log server.
            deployment.start("scheduler", "scheduler", "--skip-serve-logs")
            deployment.start("dag-processor", "dag-processor")
            for k in range(backend.workers):
                deployment.start(f"celery-worker-{k + 1}", "celery", "worker", "--queues", backend.queue,
                                 "--concurrency", "2", "--celery-hostname", f"w{k + 1}-{backend.queue}@%h",
                                 "--pid", str(home / f"worker-{k + 1}.pid"), "--skip-serve-logs",
                                 "--without-mingle", "--without-gossip")
            deployment.start_sampling()

            _wait(lambda: _api_healthy(api_port), 180, "the api-server to answer", deployment)
            _wait(lambda: meta.rows("SELECT dag_id FROM dag WHERE dag_id = :d", d=DAG_ID), 180,
                  f"the dag-processor to parse {DAG_ID}", deployment)
            parsed_s = time.time() - t0
            airflow_cli(env, "dags", "unpause", DAG_ID)
            unpaused_s = time.time() - t0

            def finished_runs() -> list[dict]:
                runs = meta.rows("SELECT run_id, state, run_type, run_after, start_date, end_date FROM dag_run "
                                 "WHERE dag_id = :d ORDER BY start_date", d=DAG_ID)
                failed = [r for r in runs if r["state"] == "failed"]
                if failed:
                    raise AssertionError(f"scheduled run failed: {failed}\n{deployment.log_tails()}\n"
                                         f"{_task_log_tails(home)}")
                ok = [r for r in runs if r["state"] == "success" and r["run_type"] == "scheduled"]
                return ok if len(ok) >= 2 else []

            runs = _wait(finished_runs, RUNS_DEADLINE_S, f"two successful scheduled runs of {DAG_ID}",
                         deployment, home)
            deployment.sample()
        finally:
            deployment.stop()
            meta_events = None
            with contextlib.suppress(Exception):
                meta_events = meta.rows(
                    "SELECT e.source_dag_id, e.source_run_id, e.source_task_id, a.name, a.uri FROM asset_event e "
                    "JOIN asset a ON a.id = e.asset_id ORDER BY e.timestamp")
            meta.close()

    first, second = runs[0], runs[1]
    report.update({
        "dag_parsed_s": round(parsed_s, 1),
        "unpaused_s": round(unpaused_s, 1),
        "first_run_done_s": round(_utc(first["end_date"]).timestamp() - t0, 1),
        "second_run_done_s": round(_utc(second["end_date"]).timestamp() - t0, 1),
        "run_durations_s": [round((_utc(r["end_date"]) - _utc(r["start_date"])).total_seconds(), 1)
                            for r in (first, second)],
        "run_after": [str(_utc(r["run_after"])) for r in (first, second)],
        "peak_rss_mib": {c.name: round(c.peak_rss_kib / 1024) for c in deployment.components},
        "peak_rss_total_mib": round(deployment.peak_total_kib / 1024),
        "peak_rss_main_process_mib": {c.name: round(c.peak_root_kib / 1024) for c in deployment.components},
    })
    if backend.workers:
        report["tasks_per_worker"] = {c.name: c.log.read_text(errors="replace").count("] succeeded in ")
                                      for c in deployment.components if c.name.startswith("celery-worker")}
    print(f"\nairflow scheduler e2e ({backend.name}): {json.dumps(report, indent=2)}")
    (tmp_path.parent / f"airflow_scheduler_{backend.name}.json").write_text(json.dumps(report, indent=2))

    # Two consecutive ticks of the one-minute cron (from NEWSINGEST_SCHEDULE, read at parse time).
    assert (_utc(second["run_after"]) - _utc(first["run_after"])).total_seconds() == 60, report["run_after"]
    # The warehouse holds the demo articles once, all written by the first scheduled run.
    wh_ids = [sanitize_run_id(f"af_{DAG_ID}_{r['run_id']}") for r in (first, second)]
    con = connect(warehouse)
    n, distinct = con.sql("SELECT count(*), count(DISTINCT article_id) FROM articles").fetchall()[0]
    assert n >= 40 and n == distinct, (n, distinct)
    assert con.sql("SELECT DISTINCT run_id FROM articles").fetchall() == [(wh_ids[0],)]
    rows = con.sql("SELECT run_id, trigger, feeds, counts FROM runs ORDER BY seq").fetchall()
    by_id = {r[0]: r for r in rows}
    assert set(wh_ids) <= set(by_id), (wh_ids, rows)
    assert all(by_id[i][1] == "airflow" for i in wh_ids)
    # The second run is incremental: every feed it polled answered 304, nothing new was fetched or written.
    # (Adaptive polling may leave a feed that is not yet due out of a run that follows the first closely.)
    counts = by_id[wh_ids[1]][3]
    assert 0 < counts["feeds"] <= len(web.feeds) and counts["feeds_not_modified"] == counts["feeds"], counts
    assert counts["new_items"] == 0 and counts["articles_written"] == 0, counts
    # Each successful commit emitted the articles Asset, in the metadata DB.
    assert meta_events is not None
    uri = f"file://{warehouse.absolute()}/articles"
    ours = [e for e in meta_events if e["name"] == "newsingest_articles" and e["uri"] == uri]
    for r in (first, second):
        assert [e["source_task_id"] for e in ours if e["source_run_id"] == r["run_id"]] == ["commit"], meta_events


def _api_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def _wait(check, timeout_s: float, what: str, deployment: Deployment, home: Path | None = None):
    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + timeout_s
    while True:
        deployment.check_alive()
        try:
            result = check()
        except OperationalError as exc:  # SQLite: a writer holds the lock; ask again
            if "locked" not in str(exc):
                raise
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{deployment.log_tails()}"
                                 + (f"\n{_task_log_tails(home)}" if home else ""))
        time.sleep(3)
