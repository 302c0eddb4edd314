"""The record types that flow through the stages.

One record grows as it moves: a feed item (`FeedItem`) is fetched (`FetchResult`), extracted
(`Extracted`), cleaned and deduplicated into an `Article`, which is what lands in Parquet.
All are slotted dataclasses: cheap to create by the hundred thousand, and typos in field names fail.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

_T = TypeVar("_T", bound=type)


def pickled_by_fields(cls: _T) -> _T:
    """A slotted dataclass pickled as its class and its field values in order, unpickled through its
    `__init__`: the default pickles a dict of its slots and sets each back (a page's records cross a
    process boundary and the page spool, ~20% less time for both ways). For dataclasses whose every field
    is an `__init__` argument, and whose `__init__` only stores them (no `__post_init__`). Such a pickle is
    read by the same code that wrote it (a run's pool workers, its page spool); what one task hands another
    (`run.save_page_stage`) is JSON, by field name."""
    names = tuple(f.name for f in fields(cls))
    if any(not f.init for f in fields(cls)) or hasattr(cls, "__post_init__") or len(names) < 2:
        raise TypeError(f"{cls.__name__}: fields that are not __init__ arguments, a __post_init__ or one field")
    values = operator.attrgetter(*names)  # a tuple of them (two names or more)

    def __reduce__(self: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[assignment]
    return cls

# Outcomes of one HTTP attempt chain, as stored in the fetch log (a closed set: tests and views rely on it).
FETCH_OUTCOMES = (
    "ok",
    "not_modified",
    "http_error",
    "timeout",
    "too_large",
    "blocked",
    "bad_content",
    "robots_disallowed",
    "invalid_url",
    "deferred",  # not attempted this run (host backing off after 429/503); retried later
    "error",
)

# Per-article status of extraction (`ok` is the only one whose text is an article body).
EXTRACTION_STATUSES = (
    "ok",
    "no_article",
    "too_short",
    "consent_wall",
    "paywalled",
    "not_html",
    "error",
    "fetch_failed",  # the page could not be fetched after all retries; feed title and summary kept
    "invalid_url",  # the feed item had no usable http(s) link; feed title and summary kept
)


@pickled_by_fields
@dataclass(slots=True)
class FeedItem:
    """One entry of a feed, after link resolution and validation."""

    source: str  # feed name from the config
    feed_url: str
    url: str | None  # absolute http(s) link, or None when missing or rejected
    guid: str | None
    title: str | None = None
    summary: str | None = None
    published_at: datetime | None = None
    authors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    link_error: str | None = None  # why the link was rejected (recorded, never silently dropped)
    link: str | None = None  # the link as the feed wrote it, kept when rejected (the fetch log shows it)


@pickled_by_fields
@dataclass(slots=True)
class FetchResult:
    """The outcome of fetching one URL through every fetch layer."""

    url: str
    kind: str  # feed | page | robots
    outcome: str  # one of FETCH_OUTCOMES
    final_url: str | None = None
    http_status: int | None = None
    body: bytes | None = None  # decompressed, capped; None unless outcome == "ok"
    text: str | None = None  # decoded body for text content (HTML, XML, JSON)
    content_type: str | None = None
    charset: str | None = None
    charset_mismatch: bool = False  # the declared charset was wrong; `text` decoded with the detected one
    etag: str | None = None
    last_modified: str | None = None
    retry_after_s: float | None = None
    cache_max_age_s: float | None = None  # Cache-Control max-age (a polling hint for feeds)
    error: str | None = None
    elapsed_ms: int = 0
    attempts: int = 0
    redirects: int = 0
    started_at: datetime | None = None
    host: str | None = None


@pickled_by_fields
@dataclass(slots=True)
class Extracted:
    """What extraction found on one page."""

    status: str  # one of EXTRACTION_STATUSES
    title: str | None = None
    text: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    published_source: str | None = None  # jsonld | meta | time | url | feed | text
    language: str | None = None
    canonical_url: str | None = None
    site_name: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    error: str | None = None
    syndicated_from: str | None = None  # the agency or outlet a byline credits ("By X | Reuters")


@dataclass(slots=True)
class Article:
    """One row of the `articles` dataset (see schemas/ for the contract)."""

    article_id: str
    url: str | None
    canonical_url: str | None
    source: str
    site: str | None
    first_seen_at: datetime
    run_id: str
    extraction_status: str
    title: str | None = None
    text: str | None = None
    summary: str | None = None
    description: str | None = None
    site_name: str | None = None
    authors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    published_source: str | None = None
    language: str | None = None
    word_count: int = 0
    content_hash: str | None = None
    cluster_id: str | None = None
    duplicate_of: str | None = None
    dup_method: str | None = None  # exact | near, when this row copies an earlier one
    similarity: float | None = None
    syndicated_from: str | None = None
    feed_guid: str | None = None
    feed_url: str | None = None
    http_status: int | None = None
    fetched_at: datetime | None = None
