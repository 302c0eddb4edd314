"""The contract other projects build on: the Parquet we write has exactly the declared schema and layout,
the files in schemas/ match pipeline/schema.py, and a schema change without the right version bump and
changelog section fails."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.demo import DemoServer, DemoWeb
from pipeline.maintenance import compact
from pipeline.run import run_once
from pipeline.schema import (
    ARTICLE_SCHEMA,
    FETCH_LOG_SCHEMA,
    MIGRATIONS,
    RAW_PAGE_SCHEMA,
    SCHEMA_VERSION,
    SCHEMAS_DIR,
    arrow_schema_json,
    article_json_schema,
    check_contract,
    classify_change,
    contract_problems,
    load_history,
)
from pipeline.settings import parse_config
from pipeline.warehouse import Warehouse

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PART = re.compile(r"^part-[A-Za-z0-9._-]+\.parquet$")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    web = DemoWeb(seed=11, now=NOW)
    with DemoServer(web) as server:
        wh = tmp_path_factory.mktemp("contract") / "warehouse"
        run_once(parse_config(web.config_yaml(server.base_url) + "extract:\n  workers: 1\n"), wh)
    return wh


# ---------------------------------------------------------------------------------------------- written files


def test_written_parquet_has_exactly_the_declared_schema(warehouse):
    declared = {"articles": ARTICLE_SCHEMA, "fetch_log": FETCH_LOG_SCHEMA, "raw_pages": RAW_PAGE_SCHEMA}
    files = Warehouse(warehouse).snapshot().files
    assert {f["dataset"] for f in files.values()} == {"articles", "fetch_log", "raw_pages", "dedup_index"}
    for rel, f in files.items():
        if f["dataset"] not in declared:
            continue
        schema = pq.read_schema(warehouse / rel)
        # names, order, types, nullability: a consumer's reader must not see a difference (a list's item is
        # named `element` in Parquet, as the format's spec says; Arrow compares lists by item type)
        assert schema.equals(declared[f["dataset"]], check_metadata=False), (rel, schema)
        assert [(x.name, str(x.type).replace("element", "item"), x.nullable) for x in schema] == [
            (x.name, str(x.type), x.nullable) for x in declared[f["dataset"]]]
        if f["dataset"] == "articles":
            assert schema.metadata[b"newsingest.schema_version"].decode() == SCHEMA_VERSION
            versions = pq.read_table(warehouse / rel, columns=["schema_version"])["schema_version"]
            assert set(versions.to_pylist()) == {SCHEMA_VERSION}


def test_compacted_files_keep_the_declared_schema(warehouse, tmp_path):
    import shutil

    copy_ = tmp_path / "wh"
    shutil.copytree(warehouse, copy_)
    r = compact(copy_, small_mb=64, min_files=1)  # every file is rewritten
    assert r["files_written"] >= 1
    for f in Warehouse(copy_).snapshot().live("articles"):
        schema = pq.read_schema(copy_ / f["path"])
        assert schema.equals(ARTICLE_SCHEMA) and schema.metadata == ARTICLE_SCHEMA.metadata


def test_partition_layout(warehouse):
    """articles/published_date=YYYY-MM-DD/part-*.parquet by publication date (first seen when unknown),
    fetch_log by run date, raw_pages by fetch date; no temporary file left behind."""
    layout = {"articles": "published_date", "fetch_log": "run_date", "raw_pages": "fetch_date"}
    for dataset, key in layout.items():
        files = list((warehouse / dataset).rglob("*"))
        assert files
        for p in files:
            rel = p.relative_to(warehouse / dataset).parts
            if p.is_dir():
                assert len(rel) == 1 and re.fullmatch(rf"{key}=\d{{4}}-\d{{2}}-\d{{2}}", rel[0]), p
                continue
            assert len(rel) == 2 and PART.match(rel[1]), p  # no .tmp files, nothing at the top
    dates_checked = 0
    for p in (warehouse / "articles").rglob("*.parquet"):
        day = p.parent.name.split("=", 1)[1]
        for row in pq.read_table(p, columns=["published_at", "first_seen_at"]).to_pylist():
            stamp = row["published_at"] or row["first_seen_at"]
            assert stamp.astimezone(UTC).date().isoformat() == day
            dates_checked += 1
        assert "published_date" not in pq.read_schema(p).names  # the partition lives in the path only
    assert dates_checked >= 40
    # Late articles land in their own day: the demo web's stories span several days, all found today.
    days = {p.parent.name for p in (warehouse / "articles").rglob("*.parquet")}
    assert len(days) >= 3


# ---------------------------------------------------------------------------------------------- contract files


def test_contract_files_match_the_code():
    assert check_contract() == []
    on_disk = json.loads((SCHEMAS_DIR / "article.schema.json").read_text(encoding="utf-8"))
    assert on_disk == article_json_schema()
    assert on_disk["x-schema-version"] == SCHEMA_VERSION
    assert pa.ipc.read_schema(pa.py_buffer((SCHEMAS_DIR / "article.arrows").read_bytes())).equals(
        ARTICLE_SCHEMA, check_metadata=True)


def _changed(add=(), drop=(), retype=None):
    doc = copy.deepcopy(arrow_schema_json())
    doc["fields"] = [f for f in doc["fields"] if f["name"] not in drop]
    doc["fields"] += [{"name": n, "type": "string", "nullable": nullable} for n, nullable in add]
    if retype:
        for f in doc["fields"]:
            if f["name"] == retype:
                f["type"] = "int64"
    return doc


def test_a_schema_change_without_a_bump_fails():
    history = load_history()
    changelog = (SCHEMAS_DIR / "CHANGELOG.md").read_text(encoding="utf-8")
    assert contract_problems(arrow_schema_json(), history, changelog, MIGRATIONS) == []
    # A new column, same version: caught.
    grown = _changed(add=[("paywall", True)])
    problems = contract_problems(grown, history, changelog, MIGRATIONS)
    assert any("SCHEMA_VERSION is still" in p for p in problems)
    # Bumped and recorded but no changelog section: caught.
    grown["version"] = "1.1.0"
    problems = contract_problems(grown, {**history, "1.1.0": grown}, changelog, MIGRATIONS)
    assert problems == ["schemas/CHANGELOG.md has no section '## 1.1.0'"]
    # With its section, a minor bump for a new nullable column is right.
    assert contract_problems(grown, {**history, "1.1.0": grown}, changelog + "\n## 1.1.0\n", MIGRATIONS) == []


def test_breaking_changes_need_a_major_version_and_a_migration():
    changelog = (SCHEMAS_DIR / "CHANGELOG.md").read_text(encoding="utf-8")
    history = load_history()
    for broken in (_changed(drop=["summary"]), _changed(retype="word_count"), _changed(add=[("x", False)])):
        assert classify_change(arrow_schema_json(), broken) == "major"
        broken["version"] = "1.1.0"  # a minor bump is not enough
        problems = contract_problems(broken, {**history, "1.1.0": broken}, changelog + "\n## 1.1.0\n", MIGRATIONS)
        assert any("needs a new major version" in p for p in problems)
        broken["version"] = "2.0.0"
        problems = contract_problems(broken, {**history, "2.0.0": broken}, changelog + "\n## 2.0.0\n", MIGRATIONS)
        assert problems == ["major version 2 has no migration in pipeline.schema.MIGRATIONS"]
        assert contract_problems(broken, {**history, "2.0.0": broken}, changelog + "\n## 2.0.0\n",
                                 {2: lambda t: t}) == []
    assert classify_change(arrow_schema_json(), _changed(add=[("x", True)])) == "minor"
