"""Every knob in one place (as in Scrapy's settings): the YAML config is validated into these models.

A config file looks like::

    feeds:
      - name: example-world
        url: https://example.com/world/rss.xml
    fetch:
      user_agent: "newsingest/0.1 (+https://example.com/bot)"
      min_delay_s: 1.0

Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline import __version__

DEFAULT_USER_AGENT = f"newsingest/{__version__} (+https://github.com/newsingest/newsingest; news feed reader)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchSettings(_Strict):
    """The HTTP client: politeness, limits and retries. Defaults suit the public web."""

    user_agent: str = Field(DEFAULT_USER_AGENT, description="sent with every request; name your bot and a contact URL")
    obey_robots: bool = Field(True, description="honour robots.txt (Disallow and Crawl-delay) of every host")
    min_delay_s: float = Field(1.0, ge=0, description="minimum seconds between requests to one host")
    max_crawl_delay_s: float = Field(30.0, ge=0, description="cap on a robots.txt Crawl-delay we honour")
    robots_ttl_s: float = Field(86400.0, ge=0, description="how long a fetched robots.txt is reused (RFC 9309: 24 h)")
    per_host_concurrency: int = Field(2, ge=1, description="requests in flight to one host")
    concurrency: int = Field(32, ge=1, description="requests in flight over all hosts")
    connect_timeout_s: float = Field(10.0, gt=0, description="seconds to establish a connection")
    read_timeout_s: float = Field(15.0, gt=0, description="longest silence between two reads")
    deadline_s: float = Field(30.0, gt=0, description="total time for one request, body included")
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0, description="compressed bytes on the wire")
    max_decompressed_bytes: int = Field(20 * 1024 * 1024, gt=0, description="bytes after gzip/br decoding (zip-bomb guard)")
    max_feed_bytes: int = Field(16 * 1024 * 1024, gt=0, description="largest feed document accepted")
    max_redirects: int = Field(5, ge=0, description="redirects followed per request (each re-checked by the URL policy)")
    max_retries: int = Field(2, ge=0, description="extra attempts after a 429/5xx or a timeout")
    backoff_base_s: float = Field(0.5, ge=0, description="first retry delay; doubles per attempt")
    backoff_max_s: float = Field(10.0, ge=0, description="cap on the in-run retry delay")
    max_retry_after_s: float = Field(
        15.0, ge=0, description="wait in-run for a Retry-After up to this; longer defers the host to a later run"
    )
    allow_private: list[str] = Field(
        default_factory=list,
        description="addresses or networks (CIDR) exempt from the private-address refusal, e.g. 127.0.0.1",
    )
    page_retry_base_s: float = Field(900.0, ge=0, description="first delay before re-fetching a failed page")
    page_retry_max_s: float = Field(86400.0, ge=0, description="cap on the delay between re-fetches of a failed page")
    page_max_attempts: int = Field(6, ge=1, description="attempts before a failing page is given up")

    @field_validator("allow_private")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"allow_private entry {item!r} is not an IP address or network") from exc
        return v


class FeedConfig(_Strict):
    """One feed: RSS, Atom, JSON Feed or a news sitemap."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$", description="identifies the feed in the warehouse (`source` column)")
    url: str = Field(description="absolute http(s) URL of the feed or news sitemap")
    kind: Literal["auto", "rss", "atom", "jsonfeed", "sitemap"] = Field("auto", description="format; auto detects it from the content")
    enabled: bool = Field(True, description="false keeps the entry but skips the feed")
    max_items: int = Field(500, ge=1, description="newest items taken per poll")
    min_delay_s: float | None = Field(None, ge=0, description="overrides fetch.min_delay_s for this host")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"feed url {v!r} must be an absolute http(s) URL")
        return v


class ExtractSettings(_Strict):
    """Main-text extraction."""

    min_words: int = Field(40, ge=0, description="shorter texts are stored with status too_short")
    workers: int = Field(0, ge=0, description="extraction processes (a run in one process also parses its feeds and cleans its texts in them); 0 = one per CPU")
    worker_nice: int = Field(
        10, ge=0, le=19,
        description="how much lower the extraction processes' CPU priority is than the run's (Unix nice "
        "increment; 0 = the same): the process that fetches, with its requests' deadlines, gets a core as soon "
        "as it has work, so the workers are not left waiting for pages (a 5,000-page loopback run: ~2% faster)")


class DedupSettings(_Strict):
    """Near-duplicate detection (pipeline.dedup). `pipeline.dedup._DefaultSettings` mirrors these defaults
    so that `newsingest dedup --jsonl` starts without pydantic; a test keeps the two in step.

    Verification compares consistent samples of word shingles. A pair of texts is a copy when the shorter
    is contained in the longer at `min_containment`; when it covers less than `full_coverage` of the
    longer, it must also be the longer's lead (a truncated copy), not a passage further down (a digest
    item, the background paragraphs of a follow-up). Shingles shared by many stories are template text
    (outlet footers, disclaimers, promos) and never count as evidence.
    """

    window_days: int = Field(14, ge=1, description="how long an article stays a dedup candidate")
    shingle_size: int = Field(5, ge=1, le=63, description="words per shingle")
    num_perm: int = Field(128, ge=16, description="MinHash permutations (candidate search)")
    bands: int = Field(32, ge=1, description="LSH bands; must divide num_perm")
    min_containment: float = Field(0.6, gt=0, le=1, description="share of the shorter text found in the longer")
    min_words: int = Field(30, ge=1, description="shorter texts are never near-duplicate candidates")
    sample_mod: int = Field(
        2, ge=1, le=64,
        description="shingles whose hash % sample_mod == 0 are the verification evidence and what the index "
        "stores (1 = all; 2 halves index size and verification time at a small cost in precision on short "
        "texts). Changing it requires rebuilding the dedup index",
    )
    template_clusters: int = Field(
        8, ge=2, description="a shingle used by this many different clusters in the window is template text"
    )
    source_template_clusters: int = Field(
        2, ge=2, description="... or by this many different clusters of one source (that outlet's boilerplate)"
    )
    full_coverage: float = Field(
        0.8, gt=0, le=1,
        description="the shorter text covers at least this share of the longer: a copy wherever it sits",
    )
    min_length_ratio: float = Field(
        0.2, ge=0, le=1,
        description="below full_coverage, the shorter must be at least this share of the longer's length ...",
    )
    max_lead_skip: float = Field(
        0.2, ge=0, le=1,
        description="... and the shared text must start within this share of the longer (a truncated copy "
        "keeps the lead; a roundup quoting a paragraph or a follow-up reusing background does not)",
    )
    threads: int = Field(
        0, ge=0, le=64,
        description="threads of a batch dedup (`newsingest dedup`): fingerprinting, sorting and pair counting run "
        "on ranges in parallel, with the same results; 0 = one per core the process may use, at most 8",
    )

    @model_validator(mode="after")
    def _bands_divide(self) -> DedupSettings:
        if self.num_perm % self.bands:
            raise ValueError(f"dedup.bands ({self.bands}) must divide dedup.num_perm ({self.num_perm})")
        return self


class PollingSettings(_Strict):
    """When each feed is polled (see pipeline/polling.py): an interval adapted to how often the feed gets
    new items, between `min_interval_s` and `max_interval_s`. Defaults suit public feeds."""

    min_interval_s: float = Field(60.0, gt=0, description="never poll one feed more often than this")
    max_interval_s: float = Field(86400.0, gt=0, description="poll even a feed that never changes this often")
    initial_interval_s: float = Field(900.0, gt=0, description="longest wait before a new feed's second poll")
    reference_interval_s: float = Field(
        120.0, gt=0,
        description="a feed with one new item every this many seconds is polled that often; a feed k times "
        "busier sqrt(k) times more often (the interval that minimises requests plus waiting time)",
    )
    rate_half_life_s: float = Field(6 * 3600.0, gt=0, description="memory of the item arrival-rate estimate")
    growth: float = Field(2.0, ge=1.0, description="interval factor after a poll that found nothing new")
    error_backoff: float = Field(2.0, ge=1.0, description="interval factor per consecutive failure")
    respect_hints: bool = Field(True, description="<ttl>, sy:updatePeriod, Cache-Control max-age as lower bounds")
    jitter: float = Field(0.1, ge=0, lt=1, description="up to this share earlier, spreads the polls of many feeds")
    schedule_s: float = Field(
        900.0, ge=0,
        description="period of the scheduler that runs `newsingest run` or the ingest DAG: a feed due before "
        "the next scheduled run is polled in this one (the schedule is the floor)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> PollingSettings:
        if self.min_interval_s > self.max_interval_s:
            raise ValueError(f"polling.min_interval_s ({self.min_interval_s:g}) exceeds max_interval_s "
                             f"({self.max_interval_s:g})")
        return self


class WatchSettings(_Strict):
    """`newsingest watch`: micro-batches committed every `commit_interval_s` or `commit_max_articles`."""

    commit_interval_s: float = Field(10.0, gt=0, description="commit new articles at most this long after the first")
    commit_max_articles: int = Field(200, ge=1, description="commit as soon as the open batch holds this many")
    idle_commit_s: float = Field(300.0, gt=0, description="commit polls without new articles (state, fetch log) this often")
    lock_wait_s: float = Field(60.0, ge=0, description="wait this long for the warehouse lock at each commit")
    drain_s: float = Field(20.0, ge=0, description="on SIGINT/SIGTERM, let polls in flight finish this long")


class CommitSettings(_Strict):
    """The commit of a run (clean, deduplicate, write Parquet). Texts stream from staging files in chunks of
    `chunk_rows` articles, the dedup index keeps its postings in a staging file; what still grows with the
    number of new articles is small per-article state (a 100,000-article run peaked at 226 MB in its main
    process against 180 MB for 2,000 articles, 0.5 KB per extra article: `python bench/memory.py`)."""

    chunk_rows: int = Field(
        2000, ge=1,
        description="articles held in memory at once while cleaning and writing (texts are spooled to staging "
        "files between passes); articles files are written in row groups of up to about twice this many rows",
    )


class Config(_Strict):
    """The whole config file."""

    feeds: list[FeedConfig] = Field(default_factory=list, description="the feeds to poll")
    fetch: FetchSettings = Field(default_factory=FetchSettings, description="HTTP client, politeness and limits")
    extract: ExtractSettings = Field(default_factory=ExtractSettings, description="main-text extraction")
    dedup: DedupSettings = Field(default_factory=DedupSettings, description="syndicated-copy detection")
    polling: PollingSettings = Field(default_factory=PollingSettings, description="adaptive per-feed polling intervals")
    watch: WatchSettings = Field(default_factory=WatchSettings, description="the streaming mode (newsingest watch)")
    commit: CommitSettings = Field(default_factory=CommitSettings, description="the commit of a run: memory bounds")

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for feed in self.feeds:
            if feed.name in seen:
                raise ValueError(f"feed name {feed.name!r} is used twice; names identify feeds in the warehouse")
            seen.add(feed.name)
        return self

    @property
    def active_feeds(self) -> list[FeedConfig]:
        return [f for f in self.feeds if f.enabled]


class ConfigError(Exception):
    """A config that cannot be used; the message says where and why."""


def parse_config(text: str, origin: str = "<config>") -> Config:
    """Validate a config text; a ConfigError lists every problem with its line (see pipeline.configcheck).

    An empty feed list is not an error here (`dedup --config` only reads settings); `run` refuses it."""
    from pipeline.configcheck import NO_FEEDS, check_config_text

    result = check_config_text(text, origin)
    errors = [p for p in result.errors if p.code != NO_FEEDS]
    if errors:
        raise ConfigError("\n".join(p.format(origin) for p in errors))
    return result.validated


def load_config(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {p} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
    return parse_config(text, origin=str(p))


def default_warehouse() -> str:
    return os.environ.get("NEWSINGEST_WAREHOUSE") or "warehouse"
