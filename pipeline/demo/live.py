"""A live demo web: the bundled outlets keep publishing, each feed at its own rate.

    web = LiveDemoWeb(seed=7)                   # publication schedule starts now (web.start)
    with DemoServer(web) as server:             # the server asks web.respond() at every request
        ...
        web.publications()                      # the publication log: what appeared in which feed, when

Some feeds are busy (a new item every ~20 s), some steady, one is bursty (a burst of items, then quiet for
minutes), many are idle (never change), and one flaps between working and failing (HTTP 500 for a while,
then fine again). Rates are "demo seconds": `speed=k` compresses the whole schedule k times.

Everything is deterministic for (seed, start, speed): the schedule of each feed comes from its own seeded
generator, and an article's text from its path. An item is in its feed from its publication time on, and
its page exists from then on (404 before); the publication log is that schedule, so it is exact. Each
feed lists its newest `max_items` items: a feed polled too rarely loses items, as real feeds do.

The feeds have been publishing for `history_s` before `start` (a watcher starting finds busy feeds busy,
and can tell from their items' dates), and the backlog of the static `DemoWeb` (same seed) is listed
after those items.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.demo.web import (
    _CLUB_SUFFIX,
    _FEMALE,
    _LAST,
    _MALE,
    _PLACES,
    _STYLE,
    _TECH,
    DEFAULT_SEED,
    DemoFeed,
    DemoPage,
    DemoWeb,
    Resource,
    _etag,
    _slugify,
    _Spec,
)

__all__ = ["LIVE_FEEDS", "LiveDemoWeb", "LiveFeed", "Publication"]


@dataclass(frozen=True, slots=True)
class LiveFeed:
    """One feed of the live web and how it behaves (times in demo seconds)."""

    name: str
    path: str
    format: str  # rss | atom | jsonfeed
    pattern: str  # busy | steady | bursty | idle | flaky
    topic: str = "local"
    section: str = "News"
    mean_gap_s: float = 0.0  # busy/steady: mean time between items (Poisson arrivals)
    burst_on_s: float = 0.0  # bursty: a burst lasts this long, items every mean_gap_s ...
    burst_off_s: float = 0.0  # ... then nothing for this long
    outage_every_s: float = 0.0  # flaky: every this long, the feed fails (HTTP 500) ...
    outage_s: float = 0.0  # ... for this long
    ttl_minutes: int | None = None  # <ttl> in RSS documents (a polling hint)
    title: str | None = None

    @property
    def outlet(self) -> str:
        return self.path.split("/")[1]


LIVE_FEEDS: tuple[LiveFeed, ...] = (
    LiveFeed("continental-wire", "/continental-wire/feed.json", "jsonfeed", "busy", "world", "World", mean_gap_s=20),
    LiveFeed("newsflow-markets", "/newsflow-markets/feed.xml", "rss", "busy", "markets", "Markets", mean_gap_s=30),
    LiveFeed("daily-courier", "/daily-courier/feed.xml", "rss", "steady", "local", "Local", mean_gap_s=75),
    LiveFeed("metro-ledger", "/metro-ledger/feed.xml", "rss", "bursty", "city", "City", mean_gap_s=10,
             burst_on_s=60, burst_off_s=200),
    LiveFeed("northfield-observer", "/northfield-observer/feed.xml", "rss", "steady", "regional", "Region",
             mean_gap_s=150),
    LiveFeed("continental-wire-science", "/continental-wire/science/feed.json", "jsonfeed", "steady", "science",
             "Science", mean_gap_s=400, title="Continental Press Wire - Science"),
    LiveFeed("metro-ledger-top", "/metro-ledger/top/feed.xml", "rss", "idle"),
    LiveFeed("harbor-herald", "/harbor-herald/feed.xml", "atom", "idle"),
    LiveFeed("daily-courier-culture", "/daily-courier/culture/feed.xml", "rss", "idle",
             title="The Daily Courier - Culture"),
    LiveFeed("daily-courier-sport", "/daily-courier/sport/feed.xml", "rss", "idle", ttl_minutes=10,
             title="The Daily Courier - Sport"),
    LiveFeed("harbor-herald-opinion", "/harbor-herald/opinion/feed.xml", "atom", "idle",
             title="The Harbor Herald - Opinion"),
    LiveFeed("harbor-herald-weather", "/harbor-herald/weather/feed.xml", "atom", "flaky", outage_every_s=150,
             outage_s=40, title="The Harbor Herald - Weather"),
    LiveFeed("metro-ledger-opinion", "/metro-ledger/opinion/feed.xml", "rss", "idle",
             title="Metro Ledger - Opinion"),
    LiveFeed("northfield-observer-sport", "/northfield-observer/sport/feed.xml", "rss", "idle",
             title="Northfield Observer - Sport"),
    LiveFeed("newsflow-markets-commodities", "/newsflow-markets/commodities/feed.xml", "rss", "idle",
             title="NewsFlow Markets - Commodities"),
    LiveFeed("continental-wire-corrections", "/continental-wire/corrections/feed.json", "jsonfeed", "idle",
             title="Continental Press Wire - Corrections"),
)


@dataclass(frozen=True, slots=True)
class Publication:
    """One entry of the publication log: an article that appeared in a feed."""

    feed: str
    path: str
    title: str
    appeared_at: datetime  # UTC: from this instant the item is in the feed and its page exists
    n: int  # its number in the feed's schedule

    def to_dict(self, base_url: str = "") -> dict[str, str | int]:
        return {"feed": self.feed, "path": self.path, "url": base_url.rstrip("/") + self.path, "title": self.title,
                "appeared_at": self.appeared_at.isoformat(), "n": self.n}


class _Schedule:
    """Publication offsets (demo seconds from the start) of one feed, generated on demand."""

    def __init__(self, feed: LiveFeed, seed: int, history_s: float) -> None:
        self.feed = feed
        self.rng = random.Random(f"{seed}:live:{feed.name}")
        self.offsets: list[float] = []
        self.first = -history_s
        self.horizon = -history_s
        self._next = -history_s  # busy/steady: the next arrival; bursty: the start of the next burst
        if feed.pattern in ("busy", "steady"):
            self._next += self.rng.expovariate(1.0 / feed.mean_gap_s)
        elif feed.pattern == "bursty":  # start inside a cycle
            self._next -= self.rng.uniform(0, feed.burst_on_s + feed.burst_off_s)

    def until(self, offset: float) -> list[float]:
        """Every publication offset up to at least `offset` (generated in fixed steps: deterministic)."""
        f = self.feed
        while self.horizon < offset:
            self.horizon += 600.0
            if f.pattern in ("busy", "steady"):
                while self._next <= self.horizon:
                    self.offsets.append(self._next)
                    self._next += self.rng.expovariate(1.0 / f.mean_gap_s)
            elif f.pattern == "bursty":
                while self._next <= self.horizon:
                    start, t = self._next, self._next
                    while True:
                        t += self.rng.expovariate(1.0 / f.mean_gap_s)
                        if t > start + f.burst_on_s:
                            break
                        if t > self.first:
                            self.offsets.append(t)
                    self._next = start + f.burst_on_s + f.burst_off_s
        return self.offsets


# ----------------------------------------------------------------------------------------------- text

_ROLES = ("council member", "spokesperson", "economist", "professor", "union representative", "analyst",
          "director", "resident", "engineer", "shop owner", "deputy mayor", "researcher", "nurse", "teacher")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_THINGS = ("footbridge", "library annex", "bus depot", "water main", "cycle lane", "harbour wall", "school roof",
           "community hall", "tram extension", "flood barrier", "sports ground", "market hall", "clinic",
           "car park", "recycling centre", "ferry terminal")
_GOODS = ("copper", "wheat", "coffee", "aluminium", "cocoa", "natural gas", "soybeans", "nickel", "sugar", "timber")
_FIELDS = ("marine biology", "astronomy", "soil science", "materials research", "genetics", "climate modelling",
           "glaciology", "neuroscience", "battery chemistry", "ornithology")

_HEADLINES: dict[str, tuple[str, ...]] = {
    "world": ("{place} talks stall over {good} quotas as {org} walks out",
              "Parliament in {place} passes {pct} percent {thing} levy after {n} hour sitting",
              "{person} named envoy to {place} as border dispute drags on",
              "Ceasefire monitors report {n} breaches near {place}"),
    "markets": ("{good} futures jump {pct} percent on {place} supply fears",
                "{org} shares slide after {person} warns on margins",
                "{org} beats forecasts with {n} million quarterly profit",
                "{good} prices ease as {place} warehouses refill"),
    "local": ("{place} residents fight plan to close the {thing}",
              "Repairs to {thing} in {place} to cost {n} thousand",
              "{person} to lead {place} {thing} review",
              "Volunteers in {place} raise {n} thousand for new {thing}"),
    "city": ("City votes {n} to {m} on {thing} in {place}",
             "{place} {thing} closes for {n} weeks of works",
             "{person} quits {place} planning board over {thing}",
             "Rents near {place} {thing} rise {pct} percent"),
    "regional": ("{place} farmers count cost of {good} slump",
                 "{person} elected to head {place} school board",
                 "{place} {thing} reopens after {n} month delay",
                 "Hospital in {place} hires {n} nurses amid waiting list row"),
    "science": ("Researchers in {place} map {n} new species in {field} survey",
                "{person} wins prize for work in {field}",
                "{field} team in {place} publishes {n} year dataset",
                "Telescope upgrade at {place} delayed by {n} months"),
}

_SENTENCES: dict[str, tuple[str, ...]] = {
    "world": (
        "Delegates from {place} and {place2} met for {n} hours on {day} without agreeing on {good} quotas.",
        "{person}, a {role} who attended the session, said the mood had soured after {m} proposals were rejected.",
        "The {org} delegation left the room shortly after {hour} o'clock, according to {n} people present.",
        "Officials in {place2} said they expected the talks to resume within {m} weeks at the earliest.",
        "A draft seen by reporters would cut tariffs on {good} by {pct} percent over {m} years.",
        "{person2} of the {place} foreign ministry called the walkout regrettable but not final.",
    ),
    "markets": (
        "{good} for delivery in {month} rose {pct} percent to {n} dollars a tonne by the close of trading on {day}.",
        "Traders in {place} pointed to a {m} percent drop in stocks held at {place2} warehouses.",
        "{person}, chief {role} at {org}, said margins would stay under pressure for {m} quarters.",
        "Shares of {org} fell {pct} percent in early trading before recovering some of the losses.",
        "Volumes were {m} times the thirty day average, exchange figures showed on {day}.",
        "{person2}, who manages a {n} million fund in {place}, said the move looked overdone.",
    ),
    "local": (
        "Residents of {place} packed the hall on {day} evening, with {n} people signing a petition against the plan.",
        "The {thing} has served the {place} area for {m} decades and draws about {n} visitors a week.",
        "{person}, a {role} who lives on the same street, said closing it would cut off older neighbours.",
        "The council says repairs would cost {n} thousand and take at least {m} months.",
        "{person2} from the {place2} works department said {m} options were still on the table.",
        "A final decision is expected at the meeting on {day2}, {m} weeks from now.",
    ),
    "city": (
        "The vote on the {thing} passed {n} to {m} after a debate that ran past {hour} o'clock on {day}.",
        "{person}, a {role}, told the chamber that {place} had waited {m} years for the project.",
        "Opponents say the {n} thousand budget for the {thing} would be better spent in {place2}.",
        "Works are due to start in {month} and last about {m} weeks, city officials said.",
        "{person2} said traffic around {place} would be diverted via {place2} while the works last.",
        "Figures from the city show {pct} percent of households near the {thing} rent their homes.",
    ),
    "regional": (
        "Farmers around {place} say {good} prices have fallen {pct} percent since {month}.",
        "{person}, a {role} with {m} decades in the trade, said some families would not plant next year.",
        "The {thing} in {place2} finally reopened on {day} after a delay of {m} months.",
        "The board in {place} confirmed {n} new posts would be filled before {month}.",
        "{person2} welcomed the news but said {m} more years of investment were needed.",
        "About {n} people attended the meeting at the {thing} in {place} on {day} evening.",
    ),
    "science": (
        "The survey off {place} catalogued {n} specimens, of which {m} appear to be new to {field}.",
        "{person}, a {role} who led the expedition, said the findings took {m} years to confirm.",
        "Samples were collected at depths of up to {n} metres during {m} weeks at sea.",
        "The team from {place2} will publish the full dataset of {n} records in {month}.",
        "{person2}, who was not involved, called the work careful and the sample unusually large.",
        "Funding of {n} thousand came from a {place} trust that backs work in {field}.",
    ),
}

_GENERIC: tuple[str, ...] = (
    "{person3}, a {role} from {place3}, said on {day} that {m} questions remained unanswered.",
    "A spokesperson for {org2} declined to comment when reached on {day2}.",
    "Records reviewed by the paper show {n} similar cases in {place3} since {month}.",
    "The next hearing is set for {day2}, {m} weeks after the first, at the {thing2} in {place3}.",
    "{person3} said the figures for {month} would be published within {m} days.",
    "Earlier this year {org2} said it would invest {n} thousand in {place3} over {m} years.",
    "In {place3}, {pct} percent of those asked in a survey of {n} people backed the change.",
    "Asked about the timetable on {day}, {person3} said only that {m} steps were left.",
)

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FEMALE + _MALE)} {rng.choice(_LAST)}"


def _fill(template: str, rng: random.Random, slots: dict[str, str]) -> str:
    values = dict(slots)
    values.update(n=str(rng.randint(12, 980)), m=str(rng.randint(2, 11)), pct=f"{rng.randint(2, 29)}.{rng.randint(0, 9)}",
                  hour=str(rng.randint(7, 11)), role=rng.choice(_ROLES), month=rng.choice(_MONTHS),
                  day=rng.choice(_WEEKDAYS), day2=rng.choice(_WEEKDAYS), person3=_person(rng),
                  place3=rng.choice(_PLACES), thing2=rng.choice(_THINGS), org2=rng.choice(_ORGS))
    return template.format(**values)


_ORGS = tuple(_TECH) + ("Harbourline Bank", "Meridian Capital", "Northgate Securities", "Coastline Power",
                        "Tidewater Electric", "Bluewake Ferries") + tuple(f"{p} {c}" for p, c in zip(
                            _PLACES[:6], _CLUB_SUFFIX, strict=False))


def live_article(seed: int, feed: LiveFeed, n: int) -> tuple[str, tuple[str, ...], str]:
    """(title, paragraphs, author) of the n-th live article of a feed: invented, deterministic."""
    rng = random.Random(f"{seed}:live-text:{feed.name}:{n}")
    topic = feed.topic if feed.topic in _HEADLINES else "local"
    slots = {"place": rng.choice(_PLACES), "place2": rng.choice(_PLACES), "person": _person(rng),
             "person2": _person(rng), "org": rng.choice(_ORGS), "good": rng.choice(_GOODS),
             "thing": rng.choice(_THINGS), "field": rng.choice(_FIELDS)}
    title = _fill(rng.choice(_HEADLINES[topic]), rng, slots)
    title = title[0].upper() + title[1:]
    own = list(_SENTENCES[topic])
    rng.shuffle(own)
    generic = list(_GENERIC)
    rng.shuffle(generic)
    sentences = own + generic[: rng.randint(4, 7)]
    rng.shuffle(sentences)
    paras: list[str] = []
    while sentences:
        k = min(len(sentences), rng.randint(1, 3))
        paras.append(" ".join(_fill(t, rng, slots) for t in sentences[:k]))
        sentences = sentences[k:]
    return title, tuple(paras), _person(rng)


# ----------------------------------------------------------------------------------------------- the web


class LiveDemoWeb:
    """The demo outlets, publishing over time. Serve it with `DemoServer(LiveDemoWeb(...))`."""

    def __init__(self, seed: int = DEFAULT_SEED, *, start: datetime | None = None, speed: float = 1.0,
                 feeds: tuple[LiveFeed, ...] = LIVE_FEEDS, max_items: int = 20, history_s: float = 1800.0,
                 clock: Callable[[], float] = time.time) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.seed = seed
        self.clock = clock
        self.start = (start or datetime.fromtimestamp(clock(), UTC)).astimezone(UTC)
        self.speed = speed
        self.max_items = max_items
        self.live_feeds = feeds
        self.base = DemoWeb(seed=seed, now=self.start.replace(minute=0, second=0, microsecond=0))
        self.feeds = [DemoFeed(f.name, f.path, f.format) for f in feeds]
        self._by_path = {f.path: f for f in feeds}
        self._schedules = {f.name: _Schedule(f, seed, history_s) for f in feeds}
        self._pubs: dict[str, list[Publication]] = {f.name: [] for f in feeds}
        self._pages: dict[str, Publication] = {}
        self._specs: dict[str, _Spec] = {}
        self._rendered: dict[tuple[str, str, int], Resource] = {}
        self._lock = threading.Lock()
        # Feeds and pages may be cached for a demo minute (a polling hint the watcher respects).
        self._cache_control = (("Cache-Control", f"max-age={max(1, round(60 / speed))}"),)

    # ---- time -----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _offset(self, at: datetime) -> float:
        """Demo seconds since the start at wall-clock time `at`."""
        return (at - self.start).total_seconds() * self.speed

    def _at(self, offset: float) -> datetime:
        return self.start + timedelta(seconds=offset / self.speed)

    # ---- the schedule and the log ---------------------------------------------------------------

    def _extend(self, until: datetime) -> None:
        """Make sure publications up to `until` are generated (under the lock)."""
        offset = self._offset(until)
        for f in self.live_feeds:
            offsets = self._schedules[f.name].until(offset)
            pubs = self._pubs[f.name]
            for n in range(len(pubs), len(offsets)):
                title, _paras, _author = live_article(self.seed, f, n)
                path = self._path_for(f, n, title)
                pub = Publication(f.name, path, title, self._at(offsets[n]), n)
                pubs.append(pub)
                self._pages[path] = pub

    def publications(self, until: datetime | None = None, since: datetime | None = None) -> list[Publication]:
        """The publication log: every live article that appeared up to `until` (default: now) and, if
        given, after `since` (the history before `start` is in it too), in order."""
        until = until or self.now()
        with self._lock:
            self._extend(until)
            out = [p for pubs in self._pubs.values() for p in pubs
                   if p.appeared_at <= until and (since is None or p.appeared_at > since)]
        return sorted(out, key=lambda p: (p.appeared_at, p.feed, p.n))

    def _path_for(self, f: LiveFeed, n: int, title: str) -> str:
        outlet = f.outlet
        slug = _slugify(title)
        num = 600000 + 1000 * (self.feeds.index(DemoFeed(f.name, f.path, f.format))) + n
        if outlet == "continental-wire":
            return f"/continental-wire/live/{num}/{slug}"
        if outlet == "daily-courier":
            return f"/daily-courier/news/{_slugify(f.section)}/{slug}-{num}.html"
        if outlet == "metro-ledger":
            return f"/metro-ledger/news/live/{slug}-{num}"
        if outlet == "harbor-herald":
            return f"/harbor-herald/article/{num}/{slug}"
        if outlet == "northfield-observer":
            return f"/northfield-observer/{_slugify(f.section)}/{slug}-{num}.html"
        return f"/newsflow-markets/news/{num}/{slug}"

    def _spec(self, pub: Publication) -> _Spec:
        sp = self._specs.get(pub.path)
        if sp is None:
            f = next(x for x in self.live_feeds if x.name == pub.feed)
            title, paras, author = live_article(self.seed, f, pub.n)
            style = _STYLE[f.outlet]
            truth = DemoPage(path=pub.path, outlet=f.outlet, story_id=f"live-{f.name}-{pub.n:05d}", is_copy=False,
                             truncated=False, title=title, published_at=pub.appeared_at, paragraphs=paras,
                             status="ok", author=author, site_name=style.name, section=f.section,
                             tags=(f.section, f.topic), feeds=(f.name,), has_jsonld=style.jsonld != "none")
            sp = _Spec(truth=truth, updated_at=pub.appeared_at, caption=f"{title}.",
                       photo_credit=f"{_person(random.Random(pub.path))}/{style.short}")
            self._specs[pub.path] = sp
        return sp

    # ---- serving --------------------------------------------------------------------------------

    def build_site(self, base_url: str) -> dict[str, Resource]:
        """The static part (backlog pages, home pages, robots.txt), as `DemoWeb.build_site`."""
        return self.base.build_site(base_url)

    def not_found(self, base_url: str = "") -> Resource:
        return self.base.not_found(base_url)

    def respond(self, path: str, base_url: str) -> Resource | None:
        """The resource at `path` at this moment (None: 404)."""
        now = self.now()
        base = base_url.rstrip("/")
        with self._lock:
            self._extend(now)
            feed = self._by_path.get(path)
            if feed is not None:
                return self._feed_resource(feed, base, now)
            pub = self._pages.get(path)
            if pub is not None:
                if pub.appeared_at > now:
                    return None
                key = ("page", path, 0)
                if key not in self._rendered:
                    body = self.base._render_article(self._spec(pub), base).encode("utf-8")
                    self._rendered[key] = Resource(body, "text/html; charset=utf-8", 200, pub.appeared_at, _etag(body),
                                                   headers=self._cache_control)
                return self._rendered[key]
        return self.base.build_site(base).get(path)

    def _feed_resource(self, f: LiveFeed, base: str, now: datetime) -> Resource:
        if f.pattern == "flaky" and f.outage_every_s > 0:
            phase = self._offset(now) % f.outage_every_s
            if phase >= f.outage_every_s - f.outage_s:  # the publisher's feed generator is down
                return Resource(b"Internal Server Error: feed generator unavailable\n", "text/plain; charset=utf-8",
                                500, headers=(("Cache-Control", "no-store"),))
        visible = [p for p in self._pubs[f.name] if p.appeared_at <= now]
        key = (f.name, base, len(visible))
        res = self._rendered.get(key)
        if res is None:
            items = [(self._spec(p), f"{base}{p.path}") for p in reversed(visible)]
            items += self._backlog(f, base)
            items = items[: self.max_items]
            body, ctype = self.base._render_feed_doc(DemoFeed(f.name, f.path, f.format), items, base, title=f.title,
                                                     ttl_minutes=f.ttl_minutes)
            data = body.encode("utf-8")
            newest = max((sp.updated_at for sp, _ in items), default=self.base.now)
            res = Resource(data, ctype, 200, newest, _etag(data), headers=self._cache_control)
            self._rendered[key] = res
        return res

    def _backlog(self, f: LiveFeed, base: str) -> list[tuple[_Spec, str]]:
        """Items of the static web this feed lists: its own feed's, or for a new section feed, the outlet's
        three newest pages (already listed by the outlet's main feed: nothing new)."""
        names = {x.name for x in self.base.feeds}
        if f.name in names:
            pairs = self.base.feed_items(f.name)
        else:
            pairs = [(p, link) for p, link in self.base.feed_items(f.outlet)
                     if self.base.page(p).status == "ok"][:3]
        return [(self.base._specs[p], link.replace("{base}", base)) for p, link in pairs]

    # ---- config ---------------------------------------------------------------------------------

    def config_yaml(self, base_url: str, *, scale: float | None = None) -> str:
        """A config for `newsingest watch` on this web: its feeds, and polling compressed like the web
        (`scale` defaults to the web's speed): intervals between 60/scale s and 300/scale s."""
        k = scale or self.speed
        base = base_url.rstrip("/")
        lines = ["# newsingest config for the live demo web (generated)", "feeds:"]
        lines += [f'  - {{name: {f.name}, url: "{base}{f.path}"}}' for f in self.live_feeds]
        lines += [
            "fetch:",
            '  allow_private: ["127.0.0.1"]',
            "  min_delay_s: 0",
            "  per_host_concurrency: 8",
            "polling:                       # the production defaults, compressed to the demo's clock",
            f"  min_interval_s: {60 / k:g}",
            f"  max_interval_s: {300 / k:g}",
            f"  initial_interval_s: {60 / k:g}",
            f"  reference_interval_s: {60 / k:g}",
            f"  rate_half_life_s: {1800 / k:g}",
            "  jitter: 0.05",
            "  schedule_s: 0",
            "watch:",
            f"  commit_interval_s: {max(1.0, 5 / k):g}",
            "  commit_max_articles: 100",
            f"  idle_commit_s: {max(5.0, 60 / k):g}",
            "",
        ]
        return "\n".join(lines)
