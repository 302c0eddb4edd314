"""When to poll each feed next: an interval adapted to how often the feed gets new items.

Pure functions, no I/O and no clock: the caller passes what a poll showed (`PollObservation`) and the
feed's previous `PollState`, and gets the next state, which says when to poll again. The state is kept
per feed in the committed warehouse state (`state["feeds"][name]["poll"]`), so it survives restarts.

The policy, in order:

* **Rate.** New items per second, estimated with exponential forgetting over time (half-life
  `rate_half_life_s`): a decayed count of new items over a decayed count of observed seconds, so polls at
  irregular intervals weigh by the time they cover. A new feed's rate is seeded from the publication times
  of the items it already lists.
* **Target interval.** `sqrt(reference_interval_s / rate)`: the interval that minimises requests plus the
  time new items wait to be seen (cost c per poll, items arriving at rate r wait I/2 on average:
  c/I + r*I/2 is smallest at I = sqrt(2c/r)). A feed publishing once every `reference_interval_s` is polled
  that often; 4x busier, 2x more often; 4x quieter, 2x less often.
* **New items** set the interval to the target at once, taking the busier of the long-run rate and the
  rate of this poll alone (new items over the time since the last poll), so a quiet feed that bursts
  speeds up in one poll. When every item of the document is new, items may have scrolled out unseen:
  the interval is at least halved.
* **Nothing new** (304, or the same items) grows the interval by `growth` per poll, up to the target (a
  feed that never changes reaches `max_interval_s`). A changed document without new items (edited items,
  a new lastBuildDate: "ETag churn") grows it more slowly (sqrt(growth)): something is moving.
* **Hints** (`<ttl>`, `sy:updatePeriod`, `Cache-Control: max-age`) are lower bounds, within the bounds.
* **Errors** back off: `interval * error_backoff ** consecutive_failures`, up to `max_interval_s`;
  `Retry-After` is honoured (up to a week) even beyond that. A host we deferred ourselves (it asked us to
  wait) is neither a poll nor a failure.
* **Bounds and jitter.** Everything stays in [min_interval_s, max_interval_s]; a small deterministic
  jitter (hash of feed and time, only ever shortening the wait) spreads the polls of many feeds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pipeline.settings import Config, FeedConfig, PollingSettings

SUCCESS_OUTCOMES = frozenset({"ok", "not_modified"})
RETRY_AFTER_CAP_S = 7 * 86400.0  # a Retry-After further out than a week is a misconfiguration, not a request


@dataclass(frozen=True, slots=True)
class PollObservation:
    """What one poll of one feed showed."""

    polled_at: datetime
    outcome: str  # fetch outcome of the feed request (ok | not_modified | deferred | http_error | ...)
    new_items: int = 0  # items never seen before (neither stored nor waiting for a retry)
    items: int = 0  # items in the document
    changed: bool | None = None  # the document differs from the last one (ETag/Last-Modified); None: unknown
    item_times: tuple[datetime, ...] = ()  # publication times of the items (seed the rate of a new feed)
    ttl_s: float | None = None  # <ttl> or sy:updatePeriod of the document
    max_age_s: float | None = None  # Cache-Control max-age of the response
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class PollState:
    """The polling state of one feed (JSON-able through `to_dict`/`from_dict`)."""

    interval_s: float | None = None  # the adapted interval while the feed is healthy
    next_poll_at: datetime | None = None
    last_poll_at: datetime | None = None  # last poll that reached the feed (ok or not modified)
    last_attempt_at: datetime | None = None
    rate_n: float = 0.0  # decayed count of new items
    rate_t: float = 0.0  # decayed seconds observed
    failures: int = 0  # consecutive
    polls: int = 0  # polls that reached the feed
    not_modified: int = 0
    changed_no_new: int = 0  # documents that changed without new items (ETag churn)
    new_items: int = 0  # total new items seen
    last_new_at: datetime | None = None
    ttl_s: float | None = None  # last <ttl>/sy:updatePeriod seen (a 304 has no body to carry it)
    max_age_s: float | None = None
    delay_s: float | None = None  # the wait chosen after the last poll (with jitter, backoff, Retry-After)
    reason: str = ""  # why that wait

    @property
    def rate_per_s(self) -> float | None:
        return self.rate_n / self.rate_t if self.rate_t > 0 else None

    def to_dict(self) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}
        rate = self.rate_per_s
        out["rate_per_h"] = round(rate * 3600, 4) if rate is not None else None  # for humans and views
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> PollState:
        if not d:
            return cls()
        kwargs: dict[str, Any] = {}
        for f in cls.__dataclass_fields__:
            if f in d and d[f] is not None:
                v = d[f]
                kwargs[f] = datetime.fromisoformat(v) if f.endswith("_at") and isinstance(v, str) else v
        return cls(**kwargs)


def _clamp(value: float, settings: PollingSettings) -> float:
    return min(settings.max_interval_s, max(settings.min_interval_s, value))


def _jitter(key: str, at: datetime, amount: float) -> float:
    """A factor in [1 - amount, 1], deterministic for (key, at). Only ever earlier: a feed is never polled
    later than its interval says, so a scheduler's horizon (`due_feeds`) keeps its promise."""
    if amount <= 0:
        return 1.0
    h = int.from_bytes(hashlib.sha1(f"{key}|{at.isoformat()}".encode()).digest()[:8], "big")
    return 1.0 - amount * h / 2**64


def target_interval(rate_per_s: float | None, settings: PollingSettings) -> float | None:
    """The interval that balances requests against waiting time for a feed with this item rate
    (unclamped; None when the rate is unknown)."""
    if rate_per_s is None:
        return None
    if rate_per_s <= 0:
        return math.inf
    return math.sqrt(settings.reference_interval_s / rate_per_s)


def seed_rate(item_times: Iterable[datetime], at: datetime, settings: PollingSettings) -> tuple[float, float]:
    """(decayed count, decayed seconds) for a feed polled for the first time, from the publication times
    of the items it lists: the items of the last half-life, or the span of the items when shorter."""
    window = settings.rate_half_life_s
    times = sorted((t for t in item_times if t <= at + timedelta(minutes=5)), reverse=True)
    if len(times) < 2:
        return 0.0, 0.0
    span = (at - times[-1]).total_seconds()
    if span <= 0:
        return 0.0, 0.0
    if span >= window:
        recent = sum(1 for t in times if (at - t).total_seconds() < window)
        return float(recent), window
    return float(len(times) - 1), span  # n items span n - 1 gaps


def hint_floor(state: PollState, settings: PollingSettings) -> float:
    if not settings.respect_hints:
        return 0.0
    hint = max(state.ttl_s or 0.0, state.max_age_s or 0.0)
    return min(hint, settings.max_interval_s)


def update(state: PollState, obs: PollObservation, settings: PollingSettings, *, key: str = "") -> PollState:
    """The feed's polling state after this poll, with `next_poll_at` set. Pure."""
    at = obs.polled_at
    s = settings

    if obs.outcome == "deferred":  # we did not ask: the host told us to wait (Retry-After, robots)
        delay = max(s.min_interval_s, min(obs.retry_after_s or s.min_interval_s, RETRY_AFTER_CAP_S))
        return replace(state, last_attempt_at=at, next_poll_at=at + timedelta(seconds=delay), delay_s=delay,
                       reason="host deferred")

    if obs.outcome not in SUCCESS_OUTCOMES:
        failures = state.failures + 1
        base = state.interval_s or s.initial_interval_s
        delay = min(s.max_interval_s, max(s.min_interval_s, base) * s.error_backoff**failures)
        delay = max(s.min_interval_s, delay * _jitter(key, at, s.jitter))
        reason = f"error backoff ({failures} consecutive)"
        if obs.retry_after_s:
            retry_after = min(obs.retry_after_s, RETRY_AFTER_CAP_S)
            if retry_after > delay:
                delay, reason = retry_after, "Retry-After"
        return replace(state, failures=failures, last_attempt_at=at, next_poll_at=at + timedelta(seconds=delay),
                       delay_s=delay, reason=reason)

    # The poll reached the feed.
    ttl = obs.ttl_s if obs.ttl_s is not None else state.ttl_s
    max_age = obs.max_age_s if obs.max_age_s is not None else state.max_age_s
    first = state.last_poll_at is None
    if first:
        rate_n, rate_t = seed_rate(obs.item_times, at, s)
    else:
        elapsed = max(0.0, (at - state.last_poll_at).total_seconds())
        decay = 0.5 ** (elapsed / s.rate_half_life_s)
        rate_n = state.rate_n * decay + obs.new_items
        rate_t = state.rate_t * decay + elapsed
    rate = rate_n / rate_t if rate_t > 0 else None
    target = target_interval(rate, s)
    prev = state.interval_s or s.initial_interval_s

    if first:
        interval = s.initial_interval_s if target is None else min(s.initial_interval_s, target)
        reason = "first poll"
    elif obs.new_items > 0:
        # The long-run estimate reacts within a half-life; the items of this very poll say at once when a
        # quiet feed turned busy (a burst). The busier of the two wins.
        elapsed = max(1.0, (at - state.last_poll_at).total_seconds()) if state.last_poll_at else prev
        now_target = target_interval(obs.new_items / elapsed, s)
        interval = min(t for t in (target, now_target, math.inf) if t is not None)
        reason = f"{obs.new_items} new"
        if obs.items and obs.new_items >= obs.items:  # every item new: some may have scrolled out unseen
            interval = min(interval, prev / 2)
            reason += ", all items new"
    else:
        changed = bool(obs.changed) and obs.outcome == "ok"
        growth = math.sqrt(s.growth) if changed else s.growth
        cap = target if target is not None else math.inf
        interval = max(prev, min(prev * growth, cap))
        reason = "changed, nothing new" if changed else ("not modified" if obs.outcome == "not_modified"
                                                          else "nothing new")
    interval = _clamp(interval, s)
    floor = hint_floor(replace(state, ttl_s=ttl, max_age_s=max_age), s)
    if interval < floor:
        interval, reason = floor, reason + ", feed hint"
    delay = max(s.min_interval_s, interval * _jitter(key, at, s.jitter))
    return PollState(
        interval_s=interval,
        next_poll_at=at + timedelta(seconds=delay),
        last_poll_at=at,
        last_attempt_at=at,
        rate_n=rate_n,
        rate_t=rate_t,
        failures=0,
        polls=state.polls + 1,
        not_modified=state.not_modified + (obs.outcome == "not_modified"),
        changed_no_new=state.changed_no_new + (obs.outcome == "ok" and bool(obs.changed) and not obs.new_items),
        new_items=state.new_items + (0 if first else obs.new_items),
        last_new_at=at if obs.new_items and not first else state.last_new_at,
        ttl_s=ttl,
        max_age_s=max_age,
        delay_s=delay,
        reason=reason,
    )


def next_interval(state: PollState, obs: PollObservation, settings: PollingSettings, *, key: str = "") -> float:
    """Seconds from this poll to the next one."""
    new = update(state, obs, settings, key=key)
    assert new.next_poll_at is not None
    return (new.next_poll_at - obs.polled_at).total_seconds()


# ---------------------------------------------------------------------------------------------------- feeds


def poll_state(feed_state: Mapping[str, Any] | None) -> PollState:
    """The PollState kept in one feed's committed state entry."""
    return PollState.from_dict((feed_state or {}).get("poll"))


def scheduled_at(feed: FeedConfig, feed_state: Mapping[str, Any] | None) -> datetime | None:
    """When the feed is due; None when it never was polled (or its URL changed: the state says nothing)."""
    st = feed_state or {}
    if st.get("url") != feed.url:
        return None
    return poll_state(st).next_poll_at


def is_due(feed: FeedConfig, feed_state: Mapping[str, Any] | None, now: datetime, horizon_s: float = 0.0) -> bool:
    nxt = scheduled_at(feed, feed_state)
    return nxt is None or nxt <= now + timedelta(seconds=horizon_s)


def due_feeds(config: Config, feed_state: Mapping[str, Any], now: datetime, horizon_s: float = 0.0) -> list[FeedConfig]:
    """Active feeds whose next poll falls before `now + horizon_s`, the most overdue first.

    A scheduler that runs every P seconds passes `horizon_s=P`: a feed due before the next run is polled
    in this one rather than late (the schedule is the floor of every interval)."""
    due = [f for f in config.active_feeds if is_due(f, feed_state.get(f.name), now, horizon_s)]
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    return sorted(due, key=lambda f: (scheduled_at(f, feed_state.get(f.name)) or epoch, f.name))


def next_due_at(config: Config, feed_state: Mapping[str, Any], exclude: Iterable[str] = ()) -> datetime | None:
    """The earliest next poll time among active feeds (None when some feed has no schedule yet)."""
    skip = set(exclude)
    times = []
    for f in config.active_feeds:
        if f.name in skip:
            continue
        nxt = scheduled_at(f, feed_state.get(f.name))
        if nxt is None:
            return None
        times.append(nxt)
    return min(times) if times else None


@dataclass(slots=True)
class FeedPollSummary:
    """One feed's polling, for reports and benchmarks."""

    name: str
    interval_s: float | None
    next_poll_at: datetime | None
    rate_per_h: float | None
    polls: int
    new_items: int
    reason: str
    extra: dict[str, Any] = field(default_factory=dict)


def summarize(config: Config, feed_state: Mapping[str, Any]) -> list[FeedPollSummary]:
    out = []
    for f in config.feeds:
        ps = poll_state(feed_state.get(f.name))
        rate = ps.rate_per_s
        out.append(FeedPollSummary(f.name, ps.interval_s, ps.next_poll_at, rate * 3600 if rate is not None else None,
                                   ps.polls, ps.new_items, ps.reason))
    return out
