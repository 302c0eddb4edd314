"""Incremental export: consecutive exports, each from the watermark the previous one printed, together hold
every committed row exactly once, through compactions and re-extractions; rows follow the contract."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.demo import DemoServer, DemoWeb
from pipeline.maintenance import compact, export, reextract
from pipeline.run import run_once
from pipeline.schema import ARTICLE_PARTITION, ARTICLE_SCHEMA, article_json_schema
from pipeline.settings import parse_config
from pipeline.views import connect
from pipeline.warehouse import Warehouse, WarehouseError

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
KEY = ("article_id", "run_id")


def _ingest(wh: Path, seed: int) -> int:
    """One run over a demo web of its own (its own port, so its own URLs and article ids)."""
    web = DemoWeb(seed=seed, now=NOW)
    with DemoServer(web) as server:
        config = parse_config(web.config_yaml(server.base_url) + "extract:\n  workers: 1\n")
        return run_once(config, wh).articles_written


def _table(wh: Path) -> pa.Table:
    return connect(wh).sql("SELECT * FROM articles").to_arrow_table()


def _read(path: str | None) -> list[dict]:
    if path is None:
        return []
    if path.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Ingest, export, ingest, compact, ingest, export, export again: (warehouse, [export results])."""
    wh = tmp_path_factory.mktemp("export") / "warehouse"
    out = wh.parent / "out"
    Warehouse(wh)  # created, nothing committed yet
    results = [export(wh, out, since="")]
    _ingest(wh, 11)
    results.append(export(wh, out, since=results[-1]["watermark"]))
    _ingest(wh, 12)
    compact(wh)
    _ingest(wh, 13)
    results.append(export(wh, out, since=results[-1]["watermark"], fmt="jsonl"))
    results.append(export(wh, out, since=results[-1]["watermark"]))
    return wh, results


@pytest.mark.slow
def test_consecutive_exports_partition_the_table(exported):
    wh, results = exported
    assert results[0] == {"since": "", "watermark": "", "runs": 0, "rows": 0, "file": None}
    assert results[1]["runs"] == 1 and results[2]["runs"] == 2 and results[3]["runs"] == 0
    assert results[3]["watermark"] == results[2]["watermark"] and results[3]["file"] is None
    rows = [r for res in results for r in _read(res["file"])]
    keys = Counter(tuple(r[k] for k in KEY) for r in rows)
    assert max(keys.values()) == 1, "a row was exported twice"
    table = _table(wh)
    assert set(keys) == {tuple(r[k] for k in KEY) for r in table.select(list(KEY)).to_pylist()}
    assert sum(res["rows"] for res in results) == table.num_rows
    runs = connect(wh).sql("SELECT run_id FROM runs ORDER BY seq").fetchall()
    assert results[2]["watermark"] == runs[-1][0]


@pytest.mark.slow
def test_exported_rows_follow_the_contract(exported):
    import jsonschema

    _wh, results = exported
    schema = pq.read_schema(results[1]["file"])
    assert schema.equals(pa.schema(list(ARTICLE_SCHEMA) + [ARTICLE_PARTITION]), check_metadata=False)
    assert schema.metadata[b"newsingest.schema_version"] == ARTICLE_SCHEMA.metadata[b"newsingest.schema_version"]
    validator = jsonschema.Draft202012Validator(article_json_schema(),
                                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    lines = _read(results[2]["file"])
    assert lines
    for row in lines:
        validator.validate(row)
        datetime.fromisoformat(row["first_seen_at"])  # ISO 8601 with its offset
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**lines[0], "article_id": None})


@pytest.mark.slow
def test_watermark_by_time_and_by_run_agree(exported):
    wh, _results = exported
    out = wh.parent / "by-time"
    runs = connect(wh).sql("SELECT run_id, committed_at FROM runs ORDER BY seq").fetchall()
    by_run = export(wh, out / "a", since=runs[0][0])
    by_time = export(wh, out / "b", since=runs[0][1].isoformat())
    assert by_run["rows"] == by_time["rows"] > 0 and by_run["watermark"] == by_time["watermark"]
    before_all = export(wh, out / "c", since="2000-01-01T00:00:00Z")
    assert before_all["rows"] == _table(wh).num_rows
    with pytest.raises(WarehouseError, match="neither a committed run id nor an ISO time"):
        export(wh, out / "d", since="no-such-run")


@pytest.mark.slow
def test_reextracted_rows_come_again_and_upserts_give_the_table(exported, tmp_path):
    wh, results = exported
    rx = reextract(wh, "2000-01-01")
    assert rx["articles_written"] == _table(wh).num_rows
    again = export(wh, tmp_path, since=results[-1]["watermark"])
    assert again["watermark"] == rx["run_id"] and again["rows"] == rx["articles_written"]
    latest: dict[str, dict] = {}
    for res in [*results, again]:
        for row in _read(res["file"]):
            latest[row["article_id"]] = row  # what a consumer does: upsert by article_id, in export order
    table = {r["article_id"]: r for r in _table(wh).to_pylist()}
    assert latest.keys() == table.keys()
    assert all(latest[k]["run_id"] == table[k]["run_id"] == rx["run_id"] for k in table)


@pytest.mark.slow
def test_cli_export_prints_only_the_watermark(exported, tmp_path):
    wh, results = exported
    exe = [sys.executable, "-m", "pipeline.cli", "export", "--warehouse", str(wh), "--out", str(tmp_path)]
    first = subprocess.run(exe + ["--since", "", "--format", "jsonl"], capture_output=True, text=True, check=True)
    watermark = first.stdout.strip()
    assert watermark == connect(wh).sql("SELECT run_id FROM runs ORDER BY seq DESC LIMIT 1").fetchall()[0][0]
    assert "exported" in first.stderr and len(list(tmp_path.glob("*.jsonl"))) == 1
    second = subprocess.run(exe + ["--since", watermark], capture_output=True, text=True, check=True)
    assert second.stdout.strip() == watermark and "exported 0 rows" in second.stderr
    bad = subprocess.run(exe + ["--since", "nope"], capture_output=True, text=True)
    assert bad.returncode == 1 and "watermark 'nope'" in bad.stderr and bad.stdout == ""
