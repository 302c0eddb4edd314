"""The data contract: explicit Arrow schemas of every dataset we write.

`ARTICLE_SCHEMA` is the consumer-facing contract, versioned by `SCHEMA_VERSION` (semver: a new nullable
column is a minor bump; anything else is a major bump with a migration). `schemas/` holds the same
contract as JSON Schema plus a changelog; tests/test_contract.py fails when the two drift apart or when
written Parquet differs from the declared schema.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1.0.0"

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
