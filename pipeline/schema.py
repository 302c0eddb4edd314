"""The data contract: explicit Arrow schemas of every dataset we write.

`ARTICLE_SCHEMA` is the consumer-facing contract, versioned by `SCHEMA_VERSION` (semver: a new nullable
column is a minor bump; anything else is a major bump with a migration in `MIGRATIONS`). `schemas/` holds
the same contract in files other projects can read without Python:

    schemas/article.schema.json          JSON Schema (draft 2020-12) of one exported row
    schemas/article.arrow.json           the Arrow schema as JSON (names, types, nullability)
    schemas/article.arrows               the Arrow schema in Arrow IPC form (`pyarrow.ipc.read_schema`)
    schemas/history/article-<v>.arrow.json   every released version, for the compatibility checks
    schemas/CHANGELOG.md                 one section per version

`python -m pipeline.schema` regenerates the first three and records the current version in history/.
`check_contract()` (run by tests/test_contract.py) fails when the files drift from this module, when the
schema changed without a version bump and a changelog section, or when a bump does not match the change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = "1.0.0"

# Columns of long values that are nearly all distinct (page bytes, article texts): Parquet writers encode them
# plainly. A dictionary there only costs the writer, which fills one up to its page limit and then falls back
# to plain encoding anyway: writing 5,000 raw pages took 0.65 s of CPU with it and 0.40 s without, for a file
# of the same size.
PLAIN_ENCODED_COLUMNS = frozenset({"body", "text", "summary", "description"})


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """`ParquetWriter(use_dictionary=...)` for `schema`: every column but `PLAIN_ENCODED_COLUMNS`."""
    return [f.name for f in schema if f.name not in PLAIN_ENCODED_COLUMNS]


_TS = pa.timestamp("us", tz="UTC")

ARTICLE_SCHEMA = pa.schema(
    [
        pa.field("article_id", pa.string(), nullable=False),  # hash of the canonical URL: stable across runs
        pa.field("url", pa.string()),
        pa.field("canonical_url", pa.string()),
        pa.field("source", pa.string(), nullable=False),  # feed name from the config
        pa.field("site", pa.string()),  # host of the canonical URL
        pa.field("site_name", pa.string()),
        pa.field("title", pa.string()),
        pa.field("text", pa.string()),  # the cleaned main text; null unless extraction_status == 'ok'
        pa.field("summary", pa.string()),  # from the feed
        pa.field("description", pa.string()),  # from the page's metadata
        pa.field("authors", pa.list_(pa.string())),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("published_at", _TS),
        pa.field("published_source", pa.string()),  # jsonld | meta | time | url | feed | text
        pa.field("first_seen_at", _TS, nullable=False),
        pa.field("language", pa.string()),
        pa.field("word_count", pa.int32()),
        pa.field("content_hash", pa.string()),
        pa.field("cluster_id", pa.string()),  # article_id of the first-seen copy of this story
        pa.field("duplicate_of", pa.string()),
        pa.field("dup_method", pa.string()),  # exact | near
        pa.field("similarity", pa.float32()),
        pa.field("syndicated_from", pa.string()),
        pa.field("feed_guid", pa.string()),
        pa.field("feed_url", pa.string()),
        pa.field("http_status", pa.int16()),
        pa.field("fetched_at", _TS),
        pa.field("extraction_status", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("schema_version", pa.string(), nullable=False),
    ],
    metadata={"newsingest.schema_version": SCHEMA_VERSION, "newsingest.dataset": "articles"},
)

# Hive partition column of `articles`: not stored in the files, derived from the directory name.
ARTICLE_PARTITION = pa.field("published_date", pa.date32(), nullable=False)

FETCH_LOG_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("final_url", pa.string()),
        pa.field("kind", pa.string(), nullable=False),  # feed | page | robots
        pa.field("source", pa.string()),
        pa.field("host", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("http_status", pa.int16()),
        pa.field("error", pa.string()),
        pa.field("elapsed_ms", pa.int32()),
        pa.field("attempts", pa.int8()),
        pa.field("redirects", pa.int8()),
        pa.field("bytes", pa.int64()),
        pa.field("content_type", pa.string()),
        pa.field("charset", pa.string()),
        pa.field("charset_mismatch", pa.bool_()),
        pa.field("started_at", _TS),
    ]
)

RAW_PAGE_SCHEMA = pa.schema(
    [
        pa.field("article_id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("final_url", pa.string()),
        pa.field("source", pa.string()),
        pa.field("fetched_at", _TS, nullable=False),
        pa.field("http_status", pa.int16()),
        pa.field("content_type", pa.string()),
        pa.field("charset", pa.string()),
        pa.field("body", pa.large_binary()),  # decompressed bytes as served
        pa.field("run_id", pa.string(), nullable=False),
    ]
)


def _json_type(t: pa.DataType) -> dict:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return {"type": "string"}
    if pa.types.is_timestamp(t):
        return {"type": "string", "format": "date-time"}
    if pa.types.is_date(t):
        return {"type": "string", "format": "date"}
    if pa.types.is_integer(t):
        return {"type": "integer"}
    if pa.types.is_floating(t):
        return {"type": "number"}
    if pa.types.is_boolean(t):
        return {"type": "boolean"}
    if pa.types.is_list(t):
        return {"type": "array", "items": _json_type(t.value_type)}
    raise TypeError(f"no JSON Schema mapping for {t}")


def article_json_schema() -> dict:
    """The article contract as JSON Schema (draft 2020-12), generated from ARTICLE_SCHEMA."""
    props: dict[str, dict] = {}
    for f in list(ARTICLE_SCHEMA) + [ARTICLE_PARTITION]:
        spec = _json_type(f.type)
        if f.nullable:
            spec = {**spec, "type": [spec["type"], "null"]}
        props[f.name] = {**spec, "x-arrow-type": str(f.type)}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://newsingest.dev/schemas/article/{SCHEMA_VERSION}",
        "title": "newsingest article",
        "description": "One row of the `articles` dataset. `published_date` is the hive partition column.",
        "x-schema-version": SCHEMA_VERSION,
        "type": "object",
        "additionalProperties": False,
        "required": [f.name for f in list(ARTICLE_SCHEMA) + [ARTICLE_PARTITION] if not f.nullable],
        "properties": props,
    }


# ---------------------------------------------------------------------------------------------------- contract files

# Major version -> function that rewrites an article table of the previous major version. A major bump
# without its migration fails the contract check.
MIGRATIONS: dict[int, Callable[[pa.Table], pa.Table]] = {}

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"


def arrow_schema_json(schema: pa.Schema = ARTICLE_SCHEMA, version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """The Arrow schema as plain JSON: what a consumer in any language can check against."""
    return {
        "version": version,
        "fields": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema],
        "partition": {"name": ARTICLE_PARTITION.name, "type": str(ARTICLE_PARTITION.type),
                      "layout": "articles/published_date=YYYY-MM-DD/part-*.parquet"},
    }


def fingerprint(doc: dict[str, Any]) -> str:
    """Hash of the fields and partition of an `arrow_schema_json` document (its version excluded)."""
    body = json.dumps({"fields": doc["fields"], "partition": doc["partition"]}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _semver(v: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        raise ValueError(f"version {v!r} is not MAJOR.MINOR.PATCH")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def classify_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """'none', 'minor' (only new nullable columns) or 'major' (anything else) between two versions."""
    if fingerprint(old) == fingerprint(new):
        return "none"
    old_fields = {f["name"]: f for f in old["fields"]}
    new_fields = {f["name"]: f for f in new["fields"]}
    if old["partition"] != new["partition"]:
        return "major"
    for name, f in old_fields.items():
        if new_fields.get(name) != f:
            return "major"  # removed, retyped or nullability changed
    added = [f for n, f in new_fields.items() if n not in old_fields]
    return "minor" if all(f["nullable"] for f in added) else "major"


def contract_problems(current: dict[str, Any], history: dict[str, dict[str, Any]], changelog: str,
                      migrations: dict[int, Any]) -> list[str]:
    """Everything wrong with a contract (pure: the test feeds it both the real files and broken ones)."""
    problems = []
    version = current["version"]
    recorded = history.get(version)
    if recorded is None:
        problems.append(f"schema version {version} is not recorded in schemas/history/ "
                        "(run `python -m pipeline.schema`)")
    elif fingerprint(recorded) != fingerprint(current):
        problems.append(f"the article schema changed but SCHEMA_VERSION is still {version}: bump it (a new "
                        "nullable column is a minor version, anything else a major one with a migration), add a "
                        "CHANGELOG section and run `python -m pipeline.schema`")
    if not re.search(rf"^## {re.escape(version)}\b", changelog, re.M):
        problems.append(f"schemas/CHANGELOG.md has no section '## {version}'")
    versions = sorted(history, key=_semver)
    for old_v, new_v in zip(versions, versions[1:], strict=False):
        change = classify_change(history[old_v], history[new_v])
        (o_major, o_minor, _), (n_major, n_minor, _) = _semver(old_v), _semver(new_v)
        if change == "major" and n_major != o_major + 1:
            problems.append(f"{old_v} -> {new_v} is a breaking change: it needs a new major version")
        if change == "major" and n_major not in migrations:
            problems.append(f"major version {n_major} has no migration in pipeline.schema.MIGRATIONS")
        if change == "minor" and not (n_major == o_major and n_minor > o_minor):
            problems.append(f"{old_v} -> {new_v} only adds nullable columns: that is a minor version")
        if not re.search(rf"^## {re.escape(new_v)}\b", changelog, re.M):
            problems.append(f"schemas/CHANGELOG.md has no section '## {new_v}'")
    return list(dict.fromkeys(problems))


def load_history(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, dict[str, Any]]:
    out = {}
    for p in sorted((schemas_dir / "history").glob("article-*.arrow.json")):
        doc = json.loads(p.read_text(encoding="utf-8"))
        out[doc["version"]] = doc
    return out


def check_contract(schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Problems of the contract files in `schemas_dir` against this module (empty when all is well)."""
    problems = []
    for name, expected in generated_files().items():
        path = schemas_dir / name
        if not path.exists() or not _same_file(name, path.read_bytes(), expected):
            problems.append(f"schemas/{name} is out of date with pipeline/schema.py (run `python -m pipeline.schema`)")
    changelog = (schemas_dir / "CHANGELOG.md").read_text(encoding="utf-8") if (schemas_dir / "CHANGELOG.md").exists() else ""
    problems += contract_problems(arrow_schema_json(), load_history(schemas_dir), changelog, MIGRATIONS)
    return problems


def _same_file(name: str, found: bytes, expected: bytes) -> bool:
    if name.endswith(".arrows"):  # IPC bytes may differ between pyarrow releases; the schema may not
        try:
            return pa.ipc.read_schema(pa.py_buffer(found)).equals(ARTICLE_SCHEMA, check_metadata=True)
        except pa.ArrowInvalid:
            return False
    return found == expected


def _json_text(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def generated_files() -> dict[str, bytes]:
    return {
        "article.schema.json": _json_text(article_json_schema()),
        "article.arrow.json": _json_text(arrow_schema_json()),
        "article.arrows": ARTICLE_SCHEMA.serialize().to_pybytes(),
    }


def write_contract_files(schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Regenerate the contract files; record the current version in history/ unless it is there already
    (a recorded version is never overwritten: changing it is what the check must catch)."""
    written = []
    for name, data in generated_files().items():
        path = schemas_dir / name
        if not path.exists() or not _same_file(name, path.read_bytes(), data):
            path.write_bytes(data)
            written.append(name)
    hist = schemas_dir / "history" / f"article-{SCHEMA_VERSION}.arrow.json"
    if not hist.exists():
        hist.parent.mkdir(parents=True, exist_ok=True)
        hist.write_bytes(_json_text(arrow_schema_json()))
        written.append(str(hist.relative_to(schemas_dir)))
    return written


if __name__ == "__main__":
    import sys

    changed = write_contract_files()
    print("\n".join(f"wrote schemas/{n}" for n in changed) or "schemas/ is up to date")
    problems = check_contract()
    for p in problems:
        print(f"contract: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)
