"""The adaptive polling policy (pure functions: no sleeping, no clock) and its use by `run`."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.polling import (
    RETRY_AFTER_CAP_S,
    PollObservation,
    PollState,
    due_feeds,
    next_due_at,
    next_interval,
    seed_rate,
    target_interval,
    update,
)
from pipeline.settings import PollingSettings, parse_config

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = PollingSettings(min_interval_s=60, max_interval_s=86400, initial_interval_s=900, reference_interval_s=120,
                    rate_half_life_s=6 * 3600, growth=2.0, jitter=0.0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def poll(state: PollState, t: float, outcome: str = "not_modified", settings: PollingSettings = S, **kw) -> PollState:
    return update(state, PollObservation(polled_at=at(t), outcome=outcome, **kw), settings, key="feed")


def run_feed(arrivals: list[float], duration: float, settings: PollingSettings = S, items: int = 50) -> tuple[PollState, int]:
    """Polls a feed whose items arrive at `arrivals` (seconds) as the policy schedules; returns the final
    state and the number of polls."""
    state, t, seen, polls = PollState(), 0.0, 0, 0
    while t < duration:
        visible = sum(1 for a in arrivals if a <= t)
        new, seen = visible - seen, visible
        outcome = "ok" if new or not polls else "not_modified"
        state = poll(state, t, outcome, settings, new_items=new if polls else 0, items=items, changed=bool(new))
        polls += 1
        t = (state.next_poll_at - T0).total_seconds()
    return state, polls


def steady(gap: float, duration: float) -> list[float]:
    return [gap * k for k in range(1, int(duration / gap) + 1)]


# ------------------------------------------------------------------------------------------ first poll


def test_first_poll_without_dates_waits_the_initial_interval():
    st = poll(PollState(), 0, "ok", items=10)
    assert st.interval_s == S.initial_interval_s and st.next_poll_at == at(900)
    assert st.polls == 1 and st.new_items == 0 and st.reason == "first poll"  # the backlog is not "new"


def test_first_poll_of_a_busy_feed_uses_its_item_dates():
    times = tuple(at(-30 * k) for k in range(20))  # one item every 30 s
    st = poll(PollState(), 0, "ok", items=20, item_times=times)
    assert st.rate_per_s == pytest.approx(1 / 30)
    assert st.interval_s == pytest.approx(math.sqrt(120 * 30))  # 60 s: the sqrt rule


def test_first_poll_never_trusts_a_quiet_history_beyond_the_initial_interval():
    times = tuple(at(-86400 * k) for k in range(1, 6))  # one item a day
    st = poll(PollState(), 0, "ok", items=5, item_times=times)
    assert st.interval_s == S.initial_interval_s


def test_seed_rate_counts_the_last_half_life_or_the_span():
    assert seed_rate([], T0, S) == (0.0, 0.0)
    assert seed_rate([at(-10)], T0, S) == (0.0, 0.0)
    n, t = seed_rate([at(-100), at(-200), at(-300)], T0, S)
    assert (n, t) == (2.0, 300.0)
    old = [at(-3600 * k) for k in range(1, 20)]  # hourly for 19 h, half-life 6 h
    n, t = seed_rate(old, T0, S)
    assert t == S.rate_half_life_s and n == 5  # items at -1 h ... -5 h (-6 h is not inside)
    assert seed_rate([at(3600), at(7200)], T0, S) == (0.0, 0.0)  # future dates are ignored


# ------------------------------------------------------------------------------------------ adapting


def test_idle_feed_grows_to_the_maximum_and_stays_there():
    st = poll(PollState(), 0, "ok", items=10)
    t, intervals = 0.0, []
    for _ in range(12):
        t = (st.next_poll_at - T0).total_seconds()
        st = poll(st, t)
        intervals.append(st.interval_s)
    assert intervals[:4] == [1800, 3600, 7200, 14400]  # x growth per poll that found nothing
    assert intervals[-1] == S.max_interval_s and st.reason.startswith("not modified")
    assert st.polls == 13 and st.not_modified == 12 and st.new_items == 0


def test_busy_feed_converges_to_the_sqrt_rule():
    state, _ = run_feed(steady(240, 4 * 86400), 4 * 86400)
    assert state.rate_per_s == pytest.approx(1 / 240, rel=0.15)
    assert state.interval_s == pytest.approx(math.sqrt(120 * 240), rel=0.2)  # ~170 s


def test_four_times_busier_is_polled_about_twice_as_often():
    slow, slow_polls = run_feed(steady(1600, 3 * 86400), 3 * 86400)
    fast, fast_polls = run_feed(steady(400, 3 * 86400), 3 * 86400)
    assert slow.interval_s / fast.interval_s == pytest.approx(2.0, rel=0.25)
    assert slow_polls < fast_polls < 4 * slow_polls  # fewer polls than items for the busy feed


def test_very_busy_feed_is_clamped_to_the_minimum():
    state, _ = run_feed(steady(5, 3600), 3600)
    assert state.interval_s == S.min_interval_s


def test_a_burst_speeds_a_quiet_feed_up_in_one_poll():
    st = poll(PollState(), 0, "ok", items=10)
    for _ in range(6):
        st = poll(st, (st.next_poll_at - T0).total_seconds())
    quiet = st.interval_s
    assert quiet >= 14400
    t = (st.next_poll_at - T0).total_seconds()
    st = poll(st, t, "ok", new_items=12, items=20, changed=True)  # 12 stories since the last poll
    assert st.interval_s < quiet / 10 and st.reason == "12 new"


def test_all_items_new_halves_the_interval_at_least():
    st = PollState(interval_s=600, last_poll_at=at(0), rate_n=0.5, rate_t=20000, polls=5)
    st2 = poll(st, 600, "ok", new_items=1, items=1)  # a one-item feed whose item changed: maybe we missed some
    assert st2.interval_s <= 300 and "all items new" in st2.reason


def test_changed_document_without_new_items_grows_more_slowly_than_304():
    base = PollState(interval_s=600, last_poll_at=at(0), rate_n=0.0, rate_t=3600, polls=5)
    unchanged = poll(base, 600, "not_modified")
    churn = poll(base, 600, "ok", new_items=0, items=20, changed=True)
    same = poll(base, 600, "ok", new_items=0, items=20, changed=False)
    assert unchanged.interval_s == same.interval_s == 1200
    assert churn.interval_s == pytest.approx(600 * math.sqrt(2)) and churn.changed_no_new == 1


def test_nothing_new_never_grows_beyond_what_the_rate_supports():
    # A busy feed that happened to show nothing new once keeps its interval (its rate says so).
    st = PollState(interval_s=120, last_poll_at=at(0), rate_n=100.0, rate_t=12000, polls=50)  # 1 item/120 s
    nxt = poll(st, 120, "not_modified")
    assert nxt.interval_s == pytest.approx(120, rel=0.01)


def test_target_interval():
    assert target_interval(None, S) is None
    assert target_interval(0.0, S) == math.inf
    assert target_interval(1 / 120, S) == pytest.approx(120)
    assert target_interval(4 / 120, S) == pytest.approx(60)


# ------------------------------------------------------------------------------------------ hints


def test_ttl_is_a_lower_bound_within_the_bounds():
    busy = PollState(interval_s=60, last_poll_at=at(0), rate_n=50, rate_t=500, polls=10)
    st = poll(busy, 60, "ok", new_items=5, items=20, ttl_s=1800)
    assert st.interval_s == 1800 and "hint" in st.reason
    st = poll(st, 1860, "not_modified")  # a 304 has no body: the ttl seen last still holds
    assert st.interval_s >= 1800 and st.ttl_s == 1800
    capped = poll(busy, 60, "ok", new_items=5, items=20, ttl_s=30 * 86400.0)
    assert capped.interval_s == S.max_interval_s
    ignoring = poll(busy, 60, "ok", new_items=5, items=20, ttl_s=1800,
                    settings=S.model_copy(update={"respect_hints": False}))
    assert ignoring.interval_s == 60


def test_cache_control_max_age_is_a_lower_bound():
    busy = PollState(interval_s=60, last_poll_at=at(0), rate_n=50, rate_t=500, polls=10)
    assert poll(busy, 60, "ok", new_items=5, items=20, max_age_s=300).interval_s == 300
    assert poll(busy, 60, "ok", new_items=5, items=20, max_age_s=10).interval_s == 60  # below the minimum


# ------------------------------------------------------------------------------------------ errors


def test_errors_back_off_and_success_resets():
    st = PollState(interval_s=300, last_poll_at=at(0), rate_n=1, rate_t=3600, polls=4)
    delays = []
    t = 0.0
    for _ in range(12):
        t += 1
        st = poll(st, t, "http_error")
        delays.append((st.next_poll_at - at(t)).total_seconds())
    assert delays[:3] == [600, 1200, 2400] and delays[-1] == S.max_interval_s
    assert st.failures == 12 and st.interval_s == 300 and st.polls == 4  # the healthy interval is kept
    ok = poll(st, t + 10, "not_modified")
    assert ok.failures == 0 and ok.interval_s == 600 and ok.polls == 5


def test_retry_after_is_honoured_even_beyond_the_maximum():
    st = PollState(interval_s=300, last_poll_at=at(0), polls=4)
    st2 = poll(st, 10, "http_error", retry_after_s=2 * 86400)
    assert (st2.next_poll_at - at(10)).total_seconds() == 2 * 86400 and st2.reason == "Retry-After"
    st3 = poll(st, 10, "http_error", retry_after_s=30)  # shorter than the backoff: the backoff stands
    assert (st3.next_poll_at - at(10)).total_seconds() == 600
    st4 = poll(st, 10, "http_error", retry_after_s=10**9)
    assert (st4.next_poll_at - at(10)).total_seconds() == RETRY_AFTER_CAP_S


def test_a_host_we_deferred_is_neither_a_poll_nor_a_failure():
    st = PollState(interval_s=300, last_poll_at=at(0), polls=4, failures=0)
    st2 = poll(st, 100, "deferred", retry_after_s=900)
    assert st2.failures == 0 and st2.polls == 4 and st2.last_poll_at == at(0)
    assert st2.next_poll_at == at(1000) and st2.reason == "host deferred"


def test_not_a_feed_counts_as_a_failure():
    st = poll(PollState(interval_s=300, last_poll_at=at(0), polls=1), 300, "bad_content")
    assert st.failures == 1


# ------------------------------------------------------------------------------------------ invariants


def test_jitter_only_shortens_and_is_deterministic():
    js = S.model_copy(update={"jitter": 0.2})
    base = PollState(interval_s=1000, last_poll_at=at(0), rate_n=0, rate_t=3600, polls=3)
    delays = set()
    for k in range(50):
        obs = PollObservation(polled_at=at(1000 + k), outcome="not_modified")
        d = next_interval(base, obs, js, key=f"feed-{k}")
        assert 0.8 * 2000 <= d <= 2000
        assert d == next_interval(base, obs, js, key=f"feed-{k}")
        delays.add(round(d))
    assert len(delays) > 30  # spread over many feeds


def test_bounds_hold_for_any_sequence_of_observations():
    rng = random.Random(7)
    settings = PollingSettings(min_interval_s=30, max_interval_s=3600, initial_interval_s=300,
                               reference_interval_s=60, rate_half_life_s=1800, jitter=0.1)
    st, t = PollState(), 0.0
    outcomes = ["ok", "not_modified", "http_error", "timeout", "deferred", "bad_content"]
    for _ in range(3000):
        outcome = rng.choice(outcomes)
        obs = PollObservation(polled_at=at(t), outcome=outcome, new_items=rng.choice([0, 0, 1, 3, 20]),
                              items=20, changed=rng.choice([None, True, False]),
                              ttl_s=rng.choice([None, 60, 7200]), max_age_s=rng.choice([None, 5, 600]),
                              retry_after_s=rng.choice([None, 10, 5000]))
        st = update(st, obs, settings, key="x")
        delay = (st.next_poll_at - obs.polled_at).total_seconds()
        assert delay >= settings.min_interval_s
        assert delay <= max(settings.max_interval_s, obs.retry_after_s or 0)
        if st.interval_s is not None:
            assert settings.min_interval_s <= st.interval_s <= settings.max_interval_s
        assert st.rate_n >= 0 and st.rate_t >= 0
        t += delay * rng.uniform(0.5, 1.5)


def test_state_round_trips_through_json():
    st = poll(PollState(), 0, "ok", items=3, item_times=(at(-60), at(-120), at(-180)), ttl_s=600, max_age_s=60)
    st = poll(st, 700, "ok", new_items=2, items=5, changed=True)
    d = json.loads(json.dumps(st.to_dict()))
    assert PollState.from_dict(d) == st
    assert d["rate_per_h"] == pytest.approx(st.rate_per_s * 3600, rel=1e-3)
    assert PollState.from_dict(None) == PollState() == PollState.from_dict({})


# ------------------------------------------------------------------------------------------ due feeds

CONFIG = parse_config("""
feeds:
  - {name: a, url: "https://a.example/feed.xml"}
  - {name: b, url: "https://b.example/feed.xml"}
  - {name: c, url: "https://c.example/feed.xml"}
  - {name: d, url: "https://d.example/feed.xml", enabled: false}
""")


def _st(url: str, next_at: datetime) -> dict:
    return {"url": url, "poll": PollState(interval_s=600, next_poll_at=next_at).to_dict()}


def test_due_feeds_new_overdue_and_horizon():
    state = {
        "a": _st("https://a.example/feed.xml", at(600)),
        "b": _st("https://b.example/feed.xml", at(-60)),
        "c": _st("https://c.example/OLD.xml", at(10**6)),  # the URL changed: its schedule says nothing
    }
    assert [f.name for f in due_feeds(CONFIG, state, T0)] == ["c", "b"]  # never scheduled first, then overdue
    assert [f.name for f in due_feeds(CONFIG, state, T0, horizon_s=600)] == ["c", "b", "a"]
    assert [f.name for f in due_feeds(CONFIG, state, at(600))] == ["c", "b", "a"]
    assert [f.name for f in due_feeds(CONFIG, {}, T0)] == ["a", "b", "c"]  # d is disabled


def test_next_due_at():
    state = {"a": _st("https://a.example/feed.xml", at(600)), "b": _st("https://b.example/feed.xml", at(300))}
    assert next_due_at(CONFIG, state) is None  # c was never polled: due now
    state["c"] = _st("https://c.example/feed.xml", at(900))
    assert next_due_at(CONFIG, state) == at(300)
    assert next_due_at(CONFIG, state, exclude=["b"]) == at(600)


def test_settings_reject_inverted_bounds():
    with pytest.raises(ValueError, match="exceeds max_interval_s"):
        PollingSettings(min_interval_s=100, max_interval_s=10)


# ------------------------------------------------------------------------------------------ in `run`


def test_run_polls_only_due_feeds_and_the_schedule_survives_restarts(tmp_path):
    from pipeline.demo import DemoServer, DemoWeb
    from pipeline.orchestration import plan_feeds
    from pipeline.run import run_once
    from pipeline.views import connect
    from pipeline.warehouse import Warehouse

    web = DemoWeb(seed=9)
    names = sorted(f.name for f in web.feeds)
    feed_paths = {f.path for f in web.feeds}
    with DemoServer(web) as server:
        config = parse_config(web.config_yaml(server.base_url) + "polling:\n  schedule_s: 0\n")
        wh = tmp_path / "wh"
        first = run_once(config, wh)
        assert first.feeds == len(names) and first.feeds_not_due == 0
        state = Warehouse(wh).load_state()
        for st in state["feeds"].values():
            ps = PollState.from_dict(st["poll"])
            assert ps.polls == 1 and ps.interval_s == 900  # a new feed: at most initial_interval_s
            assert 0.9 * 900 <= (ps.next_poll_at - ps.last_poll_at).total_seconds() <= 900
        # first_seen_at is when the feed poll listed the item, not when the run committed.
        con = connect(wh)
        polled = dict(con.sql("SELECT source, min(started_at) FROM fetch_log WHERE kind = 'feed' GROUP BY 1").fetchall())
        for source, seen_at, committed_at in con.sql(
                "SELECT a.source, a.first_seen_at, r.committed_at FROM articles a JOIN runs r USING (run_id)").fetchall():
            assert seen_at == polled[source] < committed_at
        assert sorted(r[0] for r in con.sql("SELECT source FROM feed_polling WHERE interval_s = 900").fetchall()) == names

        server.clear_requests()
        second = run_once(config, wh)  # a new run reads the schedule from the warehouse: nothing is due
        assert second.committed and second.feeds == 0 and second.feeds_not_due == len(names)
        assert not [r for r in server.requests if r.path in feed_paths]
        assert plan_feeds(config, warehouse=str(wh)) == [[]]  # the DAG runs one empty batch (page retries)

        forced = run_once(config, wh, all_feeds=True)
        assert forced.feeds == forced.feeds_not_modified == len(names)
        grown = [PollState.from_dict(st["poll"]) for st in Warehouse(wh).load_state()["feeds"].values()]
        for ps in grown:  # 304: x2, or as far as the rate seen in the items' dates supports
            expected = 1800 if not ps.rate_n else min(1800, target_interval(ps.rate_per_s, config.polling))
            assert ps.interval_s == pytest.approx(expected) and ps.interval_s > 900 and ps.not_modified == 1
        assert sum(ps.interval_s == 1800 for ps in grown) >= len(names) - 2

        # With the DAG's horizon (schedule_s = 900: poll what falls due before the next run) ...
        dag_config = parse_config(web.config_yaml(server.base_url))
        assert plan_feeds(dag_config, warehouse=str(wh)) == [[]]  # ... nothing yet (due in ~30 minutes)
        later = run_once(dag_config, wh, now=datetime.now(UTC) + timedelta(minutes=20))
        assert later.feeds == len(names)  # 20 minutes on, every feed falls due before the next run
