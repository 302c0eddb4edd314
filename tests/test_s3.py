"""The warehouse on object storage: ingest, views, compaction, export, crash recovery and the lease lock,
against a local S3-compatible server (moto's) that the test starts on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.demo import DemoServer, DemoWeb
from pipeline.maintenance import compact, export, vacuum
from pipeline.run import run_once
from pipeline.settings import parse_config
from pipeline.views import connect
from pipeline.warehouse import RunEntry, Warehouse, WarehouseConflict, WarehouseLocked

moto_server = pytest.importorskip("moto.server", reason="moto[server] (a dev extra) runs the local S3 server")
boto3 = pytest.importorskip("boto3", reason="boto3 (the s3 extra) makes the conditional writes")

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BUCKET = "newsingest-test"


@pytest.fixture(scope="module")
def s3():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "NEWSINGEST_S3_LEASE_S": "60"}
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        mp.undo()
        server.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    web = DemoWeb(seed=11, now=NOW)
    with DemoServer(web) as server:
        cfg = tmp_path_factory.mktemp("s3demo") / "demo.yaml"
        cfg.write_text(web.config_yaml(server.base_url) + "extract:\n  workers: 1\n", encoding="utf-8")
        yield web, server, cfg


def _keys(prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _ids(url: str) -> list[str]:
    return [r[0] for r in connect(url).sql("SELECT article_id FROM articles").fetchall()]


@pytest.mark.slow
def test_ingest_query_compact_export_on_s3(s3, demo, tmp_path):
    _web, server, cfg = demo
    url = f"s3://{BUCKET}/news"
    config = parse_config(cfg.read_text())
    first = run_once(config, url)
    ids = _ids(url)
    assert first.committed and len(ids) == len(set(ids)) == first.articles_written >= 40
    keys = _keys("news/")
    assert "news/_log/000000000001.json" in keys
    assert any(k.startswith("news/articles/published_date=") for k in keys)
    assert any(k.startswith("news/raw_pages/fetch_date=") for k in keys)
    assert not (tmp_path / "news").exists()  # nothing of the warehouse on the local disk
    # The committed state (validators, ids) lives there too: the next run is incremental.
    server.clear_requests()
    again = run_once(config, url)
    assert again.articles_written == 0 and again.feeds_not_modified == again.feeds
    # Compaction and export work on object storage the same way.
    digest = connect(url).sql("SELECT count(*), sum(hash(article_id || run_id)) FROM articles").fetchall()[0]
    result = compact(url, min_files=1, small_mb=64)
    assert result["files_written"] >= 1
    assert connect(url).sql("SELECT count(*), sum(hash(article_id || run_id)) FROM articles").fetchall()[0] == digest
    out = export(url, tmp_path / "out", since="")
    assert out["rows"] == len(ids) and out["watermark"] == again.run_id
    retired = list(Warehouse(url).snapshot().retired)
    assert retired and all(f"news/{p}" in _keys("news/") for p in retired)
    v = vacuum(url, now=datetime.now(UTC) + timedelta(hours=2))
    assert v["purged_files"] == len(retired) and not set(f"news/{p}" for p in retired) & set(_keys("news/"))
    assert sorted(_ids(url)) == sorted(ids)


@pytest.mark.slow
def test_killed_run_on_s3_then_completed(s3, demo):
    _web, _server, cfg = demo
    url = f"s3://{BUCKET}/crash"
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--config", str(cfg), "--warehouse", url, "-q", "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NEWSINGEST_CRASH_AT": "write@2", "NEWSINGEST_S3_LEASE_S": "2"})
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert _ids(url) == []
    assert _keys("crash/articles/"), "the killed run had written files"
    # Its lease is still there: the next run waits for it to expire (2 s here), then completes.
    res = subprocess.run(cmd + ["--wait", "120"], capture_output=True, text=True, timeout=300, env=os.environ)
    assert res.returncode == 0, res.stderr
    ids = _ids(url)
    assert len(ids) == len(set(ids)) == json.loads(res.stdout)["articles_written"] >= 40


def test_stale_writer_cannot_commit_on_s3(s3):
    wh = Warehouse(f"s3://{BUCKET}/stale")
    stale = wh.snapshot()
    wh.commit_entry(stale, "retain")
    with pytest.raises(WarehouseConflict):
        wh.commit(RunEntry("late", "x", "x", {}, [], None, None), base=stale)
    assert wh.snapshot().seq == 1 and not wh.is_committed("late")


def test_lease_lock_refuses_renews_and_releases(s3, monkeypatch):
    monkeypatch.setenv("NEWSINGEST_S3_LEASE_S", "1")
    url = f"s3://{BUCKET}/lease"
    holder = Warehouse(url)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.lock("compact (test holder)"):
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(10)
    with pytest.raises(WarehouseLocked, match=r"locked by compact \(test holder\)"):
        with Warehouse(url).lock("second"):
            pass
    time.sleep(3.5)  # three times the lease: only renewals keep it
    with pytest.raises(WarehouseLocked):
        with Warehouse(url).lock("second"):
            pass
    holder.storage.check_lock()  # still ours
    release.set()
    t.join(10)
    with Warehouse(url).lock("second"):  # released: free at once
        assert "second" in Warehouse(url).lock_holder()
    assert Warehouse(url).lock_holder() is None


def test_lease_of_a_killed_holder_expires(s3):
    url = f"s3://{BUCKET}/deadlease"
    code = ("import os, signal; from pipeline.warehouse import Warehouse\n"
            f"with Warehouse({url!r}).lock('doomed writer'):\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    res = subprocess.run([sys.executable, "-c", code], env={**os.environ, "NEWSINGEST_S3_LEASE_S": "2"}, timeout=60)
    assert res.returncode == -signal.SIGKILL
    with pytest.raises(WarehouseLocked, match="doomed writer"):
        with Warehouse(url).lock("next"):
            pass
    t = time.monotonic()
    with Warehouse(url).lock("next", wait_s=30):
        waited = time.monotonic() - t
    assert 0.2 < waited < 10
