"""The docs match the code: the generated config reference, the article columns, the module map, the
CLI table, the check-config sample, and every SQL and Python example of the consumer guide, run on the
demo warehouse."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.views import connect

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_config_reference_is_generated_from_the_models():
    gen = _load(DOCS / "gen_config_reference.py", "gen_config_reference")
    current = gen.GUIDE.read_text(encoding="utf-8")
    assert gen.render(current) == current, "docs/operator-guide.md is stale: run python docs/gen_config_reference.py"


def test_every_setting_has_a_description():
    from pydantic import BaseModel

    from pipeline.configcheck import _model_at
    from pipeline.settings import Config

    missing, todo = [], [("", Config)]
    while todo:
        prefix, model = todo.pop()
        for name, info in model.model_fields.items():
            if not info.description:
                missing.append(f"{prefix}{name}")
            inner = _model_at(model, (name,)) or _model_at(model, (name, 0))
            if inner is not None and issubclass(inner, BaseModel):
                todo.append((f"{prefix}{name}.", inner))
    assert not missing, f"give these fields a description= in pipeline/settings.py (the reference shows it): {missing}"


def test_consumer_guide_lists_every_article_column_in_order():
    from pipeline.schema import ARTICLE_PARTITION, ARTICLE_SCHEMA

    guide = (DOCS / "consumer-guide.md").read_text(encoding="utf-8")
    table = guide.split("## The article record")[1].split("## Views")[0]
    documented = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert documented == [f.name for f in ARTICLE_SCHEMA] + [ARTICLE_PARTITION.name]


def test_consumer_guide_sql_runs_on_the_demo_warehouse(demo_warehouse: Path):
    guide = (DOCS / "consumer-guide.md").read_text(encoding="utf-8")
    con = connect(demo_warehouse)
    examples = _blocks(guide.split("## DuckDB examples")[1], "sql")[0]
    statements = [s.strip() for s in examples.split(";") if s.strip()]
    assert len(statements) == 6
    results = [con.sql(s).fetchall() for s in statements]
    republish = dict(((a, b), n) for a, b, n in results[1])
    assert sum(republish.values()) == con.sql("SELECT count(*) FROM articles WHERE duplicate_of IS NOT NULL").fetchall()[0][0]
    total = con.sql("SELECT count(*) FROM articles").fetchall()[0][0]
    watermark = _blocks(guide.split("## Only what is new")[1], "sql")[0]
    assert len(con.execute(watermark, [0]).fetchall()) == total
    last_seq = con.sql("SELECT max(seq) FROM runs").fetchall()[0][0]
    assert con.execute(watermark, [last_seq]).fetchall() == []
    # The live file list holds every article row exactly once (what a plain-Parquet reader must read).
    plain = _blocks(guide.split("**Plain Parquet**")[1], "sql")[0]
    listed = con.sql(plain.strip().rstrip(";")).fetchall()
    assert sum(rows for _, rows in listed) == total
    files = [str(demo_warehouse / path) for path, _ in listed]
    assert con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchall()[0][0] == total


def test_consumer_dag_example_copies_each_article_once(demo_warehouse: Path, tmp_path: Path):
    example = _load(ROOT / "dags" / "news_consumer_example.py", "consumer_dag") if _has_airflow() else None
    if example is None:
        pytest.skip("apache-airflow is not installed: the example DAG imports airflow.sdk")
    first = example.copy_since(str(demo_warehouse), str(tmp_path), None)
    con = connect(demo_warehouse)
    total = con.sql("SELECT count(*) FROM articles").fetchall()[0][0]
    assert first["rows"] == total and Path(first["file"]).exists()
    import pyarrow.parquet as pq

    copied = pq.read_table(first["file"]).column("article_id").to_pylist()
    assert len(copied) == len(set(copied)) == total
    latest = con.sql("SELECT run_id FROM runs ORDER BY seq DESC LIMIT 1").fetchall()[0][0]
    assert first["watermark"] == latest  # the newest committed run
    again = example.copy_since(str(demo_warehouse), str(tmp_path), first["watermark"])
    assert again["rows"] == 0 and again["watermark"] == first["watermark"] and again["file"] is None
    # The watermark file round-trips (atomically replaced; absent = everything).
    out = tmp_path / "consumer"
    assert example.read_watermark(str(out)) is None
    example.write_watermark(str(out), first["watermark"])
    assert example.read_watermark(str(out)) == first["watermark"]


def _has_airflow() -> bool:
    return importlib.util.find_spec("airflow") is not None


@pytest.mark.airflow
def test_consumer_dag_schedules_on_the_ingest_dags_asset(tmp_path: Path):
    if not _has_airflow():
        pytest.skip("apache-airflow is not installed")
    code = """
import importlib.util, json, sys
def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m
producer = load(sys.argv[1], "news_ingest")
consumer = load(sys.argv[2], "consumer_dag")
dag = consumer.news_consumer_example()
scheduled = [[a.name, a.uri] for a in dag.timetable.asset_condition.objects]
print(json.dumps({"producer": [producer.ARTICLES.name, producer.ARTICLES.uri],
                  "consumer": [consumer.ARTICLES.name, consumer.ARTICLES.uri],
                  "schedule": scheduled, "dag_id": dag.dag_id}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(tmp_path), "NEWSINGEST_WAREHOUSE": str(tmp_path / "wh"), "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "dags" / "news_ingest.py"),
                           str(ROOT / "dags" / "news_consumer_example.py")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["producer"] == out["consumer"] == ["newsingest_articles", f"file://{tmp_path / 'wh'}/articles"]
    assert out["dag_id"] == "news_consumer_example"
    assert out["schedule"] == [out["producer"]]  # scheduled on exactly the Asset the ingest DAG emits


def test_architecture_module_map_covers_every_module():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    mapped = set(re.findall(r"^\| `([\w/]+\.py)` \|", text, re.M))
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "pipeline").rglob("*.py")}
    missing = sorted(modules - mapped)
    assert not missing, f"add these modules to the module map in docs/architecture.md: {missing}"
    stale = sorted(m for m in mapped if not (ROOT / m).exists())
    assert not stale, f"the module map names modules that do not exist: {stale}"


def test_readme_lists_every_command_and_links_the_docs():
    from pipeline.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Command line")[1].split("\n## ")[0]
    listed = set(re.findall(r"^\| `newsingest ([\w-]+)", table, re.M))
    assert set(commands) <= listed, f"README's command table lacks: {sorted(set(commands) - listed)}"
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link
    for doc in DOCS.glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+)\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / link).exists(), (doc.name, link)


def test_operator_guide_check_config_sample_is_real_output(tmp_path: Path):
    guide = (DOCS / "operator-guide.md").read_text(encoding="utf-8")
    section = guide.split("For this `feeds.yaml`:")[1]
    config = _blocks(section, "yaml")[0]
    expected = _blocks(section, "text")[0].splitlines()
    assert expected[0] == "$ newsingest check-config feeds.yaml"
    (tmp_path / "feeds.yaml").write_text(config, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "check-config", "feeds.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.stdout.splitlines() == expected[1:]
