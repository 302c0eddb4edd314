"""A generated little web of made-up news outlets, with machine-readable ground truth.

Everything here is invented and generated deterministically from ``seed`` and ``now``: the outlets,
the people, the places, the numbers and the prose (one hand-written template per story, filled from
word pools). Nothing is copied from real news.

The web has:

* a wire service (Continental Press Wire, JSON Feed 1.1) whose stories are syndicated by the others,
  some copies truncated, retitled, with the dateline dropped or with typos;
* four local outlets with their own page templates and feeds (RSS 2.0 with ``guid isPermaLink="false"``,
  RSS 2.0 with relative item links plus a "top stories" feed whose links carry ``utm_`` parameters,
  Atom 1.0, RSS 2.0 with numeric time-zone offsets);
* a MENAFN-style aggregator whose copies start with a credit ``(NFMN- Source)`` and end with a tracking
  id and a "Legal Disclaimer:" paragraph;
* two deliberately broken feed items: one page that 404s and one page with no article on it;
* two different stories about one press conference, and one follow-up story.

``DemoWeb.pages`` is the ground truth (what a perfect pipeline would extract), ``DemoWeb.feeds`` lists
the feeds, ``DemoWeb.build_site(base_url)`` renders every resource (the port is only known when the
server starts, and feeds carry absolute URLs), ``DemoWeb.config_yaml(base_url)`` is a newsingest config.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import NamedTuple

__all__ = [
    "DemoFeed",
    "DemoOutlet",
    "DemoPage",
    "DemoStory",
    "DemoWeb",
    "Resource",
    "default_now",
]

DEFAULT_SEED = 20240601
TRACKING_QUERY = "utm_source=rss&utm_medium=feed"


# --------------------------------------------------------------------------------------------------
# Public truth types
# --------------------------------------------------------------------------------------------------


class DemoFeed(NamedTuple):
    """One feed: the config name, its path on the server and its format (rss | atom | jsonfeed)."""

    name: str
    path: str
    format: str


@dataclass(frozen=True, slots=True)
class DemoOutlet:
    slug: str  # path prefix, e.g. "daily-courier"
    name: str  # site name, e.g. "The Daily Courier"
    kind: str  # wire | news | aggregator
    feeds: tuple[str, ...]  # names of its feeds


@dataclass(frozen=True, slots=True)
class DemoStory:
    """One distinct story (all copies of a syndicated story share its ``story_id``)."""

    story_id: str
    outlet: str  # the outlet that wrote it
    title: str
    published_at: datetime
    paragraphs: tuple[str, ...]
    section: str
    tags: tuple[str, ...]
    author: str
    event_id: str  # stories about the same real-world event share it (the press-conference pair)
    follow_up_of: str | None = None


@dataclass(frozen=True, slots=True)
class DemoPage:
    """Ground truth for one article URL of the demo web."""

    path: str
    outlet: str
    story_id: str
    is_copy: bool
    truncated: bool
    title: str
    published_at: datetime  # UTC
    paragraphs: tuple[str, ...]  # the real article text, in order, without boilerplate or credit
    status: str  # ok | no_article | fetch_failed
    author: str | None = None
    site_name: str = ""
    syndicated_from: str | None = None  # for copies: the outlet credited as the source
    headline_edited: bool = False
    dateline_dropped: bool = False
    has_typos: bool = False
    has_jsonld: bool = False
    shows_render_date: bool = False  # a "today" date at the top of the page that is not the publication date
    event_id: str | None = None
    follow_up_of: str | None = None
    section: str = ""
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other request targets serving this page (e.g. with utm_ parameters)
    feeds: tuple[str, ...] = ()  # names of the feeds listing it

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True, slots=True)
class Resource:
    """One rendered response body."""

    body: bytes
    content_type: str
    status: int = 200
    last_modified: datetime | None = None
    etag: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers (e.g. Cache-Control, Retry-After)


def default_now() -> datetime:
    """The current time truncated to the hour (UTC), so feeds look fresh and reruns within an hour match."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


# --------------------------------------------------------------------------------------------------
# Word pools (all invented)
# --------------------------------------------------------------------------------------------------

_FEMALE = (
    "Agnes Amara Beatrix Bianca Carla Celeste Daria Delphine Edith Elena Freya Grace Hana Ines Julia Kavya "
    "Lena Maren Nadia Nora Paloma Priya Rosa Sinead Tessa Uma Valeria Willa Yara Zofia"
).split()
_MALE = (
    "Adrian Anselm Benedikt Bruno Colm Cyrus Declan Dmitri Elias Emeka Farid Florian Gideon Hiroshi Idris "
    "Jonah Kofi Lars Mateo Oskar Owen Quentin Rafael Samuel Tomasz Ulrich Viktor Xavier Yusuf Zane"
).split()
_LAST = (
    "Abernathy Achterberg Alcott Ambrose Ashworth Baptiste Bellamy Bergstrom Blackwood Brennan Brightman "
    "Calloway Carver Castellano Corrigan Crowley Dahl Dalgleish Delacroix Devereux Drummond Duarte Ellery "
    "Emberley Eriksen Esposito Everly Fairweather Falconer Farrow Fenwick Ferreira Fitzgerald Galbraith "
    "Gallagher Garland Gorski Grantham Haddad Halloran Hargreaves Hawthorne Hollis Holloway Ibarra Ingram "
    "Iversen Janssen Jovanovic Keane Kincaid Kowalczyk Lachance Lindgren Lindqvist Lowther Maddox Marchetti "
    "Mercer Moreau Nakamura Navarro Novak Nyberg Oakley Okafor Ortega Oyelaran Pemberton Pereira Petrov "
    "Prentice Quarles Quinlan Radcliffe Rasmussen Renwick Rowntree Salgado Sandoval Saunderson Strand Szabo "
    "Tanaka Thorne Tremblay Ulloa Underhill Valdez Vance Varga Voss Wainwright Wexler Whitlock Winslow Yates "
    "Yilmaz Zeller Zimmer"
).split()
_PLACES = (
    "Ashcombe|Brightwater|Calder Falls|Dunmore|Elmstead|Fernhill|Glenarrow|Hartwell|Kestrel Bay|Lindenfield|"
    "Larkspur|Norrington|Oakhaven|Pellham|Quarry Hill|Redmoor|Saltmarsh|Thornbury|Ulverton|Vantry|"
    "Wickham Cross|Yarrowby|Lakemoor|Stonebridge|Gullhaven|Briarwood|Coldharbour|Eastfold|Mirren Sound|"
    "Rookfield|Sandmere|Tarnside|Westerby"
).split("|")
_CAPITALS = ("Kingsport", "Aldermoor", "Castlereach")
_WEST_PROVINCES = ("Westmarch", "Corran", "Highmoor")
_EAST_PROVINCES = ("Eastvale", "Lowmere", "Tidesend")
_STORM_NAMES = ("Ilona", "Bertil", "Carys", "Dorian", "Maelle", "Torsten")
_TECH = ("Corvix Systems", "Lumenra", "Solvane Technologies", "Nimbrel", "Quillstone Software")
_UTILITIES = ("Coastline Power", "Tidewater Electric", "Seaboard Grid")
_BANKS = ("Harbourline Bank", "Meridian Capital", "Northgate Securities")
_FERRIES = ("Bluewake Ferries", "Straitline Ferries")
_CLUB_SUFFIX = ("Rovers", "Athletic", "United", "City", "Wanderers", "Albion")
_BRIDGES = ("Queen Adelaide", "Millrace", "Ferrygate", "Old Weir")
_BOATS = ("Lady Fenella", "Hope of Alder", "Sea Lantern", "Brave Marigold")
_FESTIVALS = ("Riverlight", "Southbank Sounds", "Meadowgrass")

_ABBR = {"continental-wire": "CPW"}


@dataclass(frozen=True, slots=True)
class _Person:
    first: str
    last: str
    female: bool

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def he(self) -> str:
        return "she" if self.female else "he"

    @property
    def He(self) -> str:  # noqa: N802 - reads naturally in templates
        return "She" if self.female else "He"

    @property
    def his(self) -> str:
        return "her" if self.female else "his"


class _Ctx:
    """Seeded choices: unique people and places, numbers, alternative phrasings."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._lasts: list[str] = []
        self._firsts: dict[bool, list[str]] = {True: [], False: []}
        self._used: set[tuple[str, str]] = set()
        self._places = list(_PLACES)
        rng.shuffle(self._places)

    def person(self, female: bool | None = None) -> _Person:
        while True:
            if not self._lasts:
                self._lasts = list(_LAST)
                self.rng.shuffle(self._lasts)
            last = self._lasts.pop()
            fem = self.rng.random() < 0.5 if female is None else female
            if not self._firsts[fem]:
                self._firsts[fem] = list(_FEMALE if fem else _MALE)
                self.rng.shuffle(self._firsts[fem])
            first = self._firsts[fem].pop()
            if (first, last) not in self._used:
                self._used.add((first, last))
                return _Person(first, last, fem)

    def place(self) -> str:
        return self._places.pop()

    def pick(self, options):  # type: ignore[no-untyped-def]
        return self.rng.choice(options)

    def num(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


@dataclass(slots=True)
class _World:
    capital: str
    west_capital: str
    west: str  # province of the drought and the wildfire (Port Alder is there)
    east: str  # province hit by the storm
    governor: _Person  # governor of the western province
    east_governor: _Person
    storm: dict[str, object]
    drought: dict[str, object]
    courier_city: str = "Bramwell"
    ledger_city: str = "Marlow"
    herald_city: str = "Port Alder"
    observer_city: str = "Northfield"


@dataclass(slots=True)
class _Draft:
    headline: str
    alt_headline: str
    section: str
    tags: tuple[str, ...]
    paras: list[str]
    caption: str
    dateline: str | None = None  # wire stories start "DATELINE (CPW) — "


def _wd(d: datetime) -> str:
    return d.strftime("%A")


def _n(x: int) -> str:
    return f"{x:,}"


_WORDS = "zero one two three four five six seven eight nine ten".split()


def _w(x: int) -> str:
    """Small numbers spelled out, as news style has it."""
    return _WORDS[x] if 0 <= x < len(_WORDS) else _n(x)


def _th(x: int) -> str:
    suffix = "th" if 10 <= x % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(x % 10, "th")
    return f"{x}{suffix}"


# --------------------------------------------------------------------------------------------------
# The stories. One template each; people, places and numbers come from the seed.
# --------------------------------------------------------------------------------------------------


def _s_storm(c: _Ctx, w: _World, when: datetime) -> _Draft:
    s = w.storm
    a, b, storm, utility = s["city_a"], s["city_b"], s["name"], s["utility"]
    homes = int(s["homes"])  # type: ignore[call-overload]
    resident, met = c.person(), c.person()
    gust = c.num(118, 164)
    return _Draft(
        headline=f"Storm {storm} batters {w.east} coast, leaving {_n(homes)} homes without power",
        alt_headline=f"Thousands in the dark as Storm {storm} sweeps across the coast",
        section="National",
        tags=("weather", f"Storm {storm}", w.east, "power cuts"),
        dateline=a,
        caption=f"Waves break over the harbour wall in {a} as Storm {storm} makes landfall.",
        paras=[
            f"Storm {storm} slammed into the coast of {w.east} overnight with gusts of up to {gust} kilometres "
            f"per hour, tearing roofs from houses, bringing down trees across main roads and cutting electricity "
            f"to about {_n(homes)} homes, officials said on {_wd(when)}.",
            f"The national weather service had issued its highest warning level for the coastline the previous "
            f"afternoon, urging residents of low-lying neighbourhoods in {a} and {b} to stay indoors and keep "
            f"away from the seafront.",
            f'"We saw the sea come over the harbour wall twice before midnight," said {resident.full}, who runs '
            f'a guesthouse near the ferry terminal in {a}. "The car park was under water within twenty minutes, '
            f'and the noise from the wind was unlike anything I have heard in thirty years here."',
            f"Emergency services reported {c.num(11, 19)} people with minor injuries, most of them caused by "
            f"falling branches and flying debris. No deaths had been confirmed by mid-morning, according to the "
            f"provincial civil protection agency.",
            f"{utility}, the region's largest electricity distributor, said more than {c.num(14, 26) * 10} repair "
            f"crews had been sent out but warned that some rural customers could stay disconnected for several "
            f"days because fallen lines were blocking access roads.",
            f"Rail operators suspended services on the coastal line between {a} and {b}, and "
            f"{c.pick(_FERRIES)} cancelled all sailings for the day. Several schools in the area announced they "
            f"would remain closed.",
            f"Meteorologist {met.full} said the storm had deepened unusually quickly over warm sea water in the "
            f'previous 36 hours. "Rapid intensification like this gives communities very little time to '
            f'prepare, which is why the early warnings mattered," {met.last} said.',
            "Forecasters expect winds to ease gradually through the evening as the system moves inland, although "
            "heavy rain could still cause flash flooding in river valleys further north.",
        ],
    )


def _s_storm_followup(c: _Ctx, w: _World, when: datetime) -> _Draft:
    s = w.storm
    a, b, storm, utility = s["city_a"], s["city_b"], s["name"], s["utility"]
    homes = int(s["homes"])  # type: ignore[call-overload]
    pct = c.num(86, 94)
    damage = c.num(45, 130)
    gov = w.east_governor
    return _Draft(
        headline=f"Power back for most homes as {w.east} counts cost of Storm {storm}",
        alt_headline=f"Storm {storm} clean-up under way, damage bill put at ${damage} million",
        section="National",
        tags=("weather", f"Storm {storm}", w.east, "insurance"),
        dateline=b,
        caption=f"Council workers clear fallen trees from a street in {b}.",
        paras=[
            f"Electricity has been restored to roughly {pct} percent of the households that lost supply during "
            f"Storm {storm}, {utility} said on {_wd(when)}, as clean-up crews cleared debris from streets and "
            f"beaches along the {w.east} coastline.",
            f"About {_n(homes * (100 - pct) // 100)} customers, mostly in isolated farming districts, were still "
            f"waiting for their connections to be repaired. The company said it was using helicopters to inspect "
            f"damaged transmission lines in terrain that its trucks could not reach.",
            f"Provincial officials gave a preliminary estimate of {damage} million dollars in damage to public "
            f"infrastructure, including a collapsed section of sea wall in {a} and two road bridges that "
            f"engineers have closed until they can be inspected.",
            "Insurers said claims were arriving at several times the normal rate. A spokesperson for the "
            "industry association advised homeowners to photograph damage before starting repairs and to keep "
            "receipts for emergency work such as tarpaulins over broken roofs.",
            f"Hundreds of volunteers joined council workers in {b} to fill sandbags and remove fallen branches "
            f"from parks and school grounds, and a community kitchen at the town hall served hot meals to "
            f"families whose homes still had no heating.",
            f"Governor {gov.full} visited the harbour in {a} and promised an emergency fund for small "
            f'businesses. "People here have lost stock, equipment and a week of trade, and they need help '
            f'quickly rather than a form to fill in next month," {gov.last} told reporters.',
            f"Climate scientists noted that it was the third major storm to hit {w.east} in five years, reviving "
            f"debate about whether the province's coastal defences, most of them built in the 1970s, are still "
            f"adequate.",
        ],
    )


def _s_rates(c: _Ctx, w: _World, when: datetime) -> _Draft:
    new = c.pick(("3.75", "4.00", "4.25", "4.50"))
    months = c.num(14, 30)
    yes = c.num(5, 7)
    gov, econ = c.person(), c.person()
    infl = c.pick(("2.4", "2.6", "2.7", "2.9"))
    bank = c.pick(_BANKS)
    return _Draft(
        headline=f"Reserve Bank cuts key rate to {new}%, first reduction in {months} months",
        alt_headline="Borrowers get relief as Reserve Bank lowers interest rates",
        section="Business",
        tags=("economy", "interest rates", "National Reserve Bank", "inflation"),
        dateline=w.capital,
        caption="The headquarters of the National Reserve Bank.",
        paras=[
            f"The National Reserve Bank lowered its benchmark interest rate by a quarter of a percentage point "
            f"to {new} percent on {_wd(when)}, its first reduction in {months} months, citing a steady decline in "
            f"inflation and signs that the labour market is cooling.",
            f"The decision by the bank's monetary policy committee was taken by a vote of {yes} to {9 - yes}, "
            f"with the dissenting members arguing that price pressures in the services sector had not eased "
            f"enough to justify looser policy.",
            f'Governor {gov.full} told a news conference that the committee would move cautiously. "We are not '
            f"declaring victory over inflation. We are acknowledging that the policy rate had become more "
            f'restrictive than the economy needs, and we will judge each further step on the data," '
            f"{gov.last} said.",
            f"Annual consumer price inflation slowed to {infl} percent last month from a peak of "
            f"{c.pick(('8.1', '8.6', '9.3'))} percent two years ago, according to the statistics office. Core "
            f"inflation, which strips out food and energy, stood at {c.pick(('3.0', '3.1', '3.3'))} percent.",
            "Financial markets had largely priced in the move. The currency slipped about 0.4 percent after the "
            "announcement, while yields on two-year government bonds fell to their lowest level since the spring.",
            f'Economists at {bank} said they expected one or two more cuts over the next year. "The tone was '
            f'more careful than the market had hoped, but the direction of travel is clear," said {econ.full}, '
            f"the bank's chief economist.",
            f"Business groups welcomed the decision, saying high borrowing costs had delayed investment, "
            f"particularly in construction, where housing starts have fallen for {_w(c.num(3, 6))} consecutive "
            f"quarters.",
            "The committee's next scheduled meeting is in six weeks, when the bank will also publish updated "
            "forecasts for growth and inflation.",
        ],
    )


def _s_earnings(c: _Ctx, w: _World, when: datetime) -> _Draft:
    co = c.pick(_TECH)
    growth = c.num(18, 34)
    rev = f"{c.num(4, 9)}.{c.num(1, 9)}"
    profit = c.num(610, 980)
    ceo, cfo = c.person(), c.person()
    a, b = c.place(), c.place()
    lo = c.num(5, 9)
    return _Draft(
        headline=f"{co} revenue jumps {growth}% on cloud demand, shares rise after hours",
        alt_headline=f"{co} beats forecasts as businesses flock to its cloud",
        section="Business",
        tags=("technology", co, "earnings", "cloud computing"),
        dateline=w.capital,
        caption=f"The {co} campus on the outskirts of {w.capital}.",
        paras=[
            f"{co} reported a {growth} percent rise in quarterly revenue to {rev} billion dollars on {_wd(when)}, "
            f"beating analyst expectations as businesses continued to move data storage and computing work to "
            f"its cloud platform.",
            f"Net profit for the quarter came in at {profit} million dollars, compared with "
            f"{profit - c.num(150, 300)} million a year earlier. Analysts surveyed by a financial data provider "
            f"had forecast a profit of about {profit - c.num(40, 90)} million.",
            f"The company's shares rose {c.num(6, 12)} percent in extended trading after the results were "
            f"published, adding to a rally that has lifted the stock by more than half since January.",
            f"Chief executive {ceo.full} told analysts on a conference call that demand for the firm's "
            f'data-centre services was outpacing the supply of new capacity. "We are turning customers away in '
            f'some regions, which is not a problem I expected to have a year ago," {ceo.last} said.',
            f"{co} said it would raise capital spending to about {c.num(3, 6)} billion dollars next year, most "
            f"of it for new server halls in {a} and {b}, and expects to hire around {_n(c.num(12, 30) * 100)} "
            f"engineers.",
            f"Not every division did as well. Sales of the company's consumer devices fell {c.num(8, 17)} "
            f"percent, hurt by weaker spending on household electronics, and the firm said it would stop selling "
            f"its line of home security cameras.",
            f"Chief financial officer {cfo.full} said revenue growth would probably slow in the current quarter "
            f"because of the comparison with a strong period last year, and gave guidance of {lo} to {lo + 1} "
            f"billion dollars.",
        ],
    )


def _s_football(c: _Ctx, w: _World, when: datetime) -> _Draft:
    wc, lc = c.place(), c.place()
    suffix_w, suffix_l = c.rng.sample(_CLUB_SUFFIX, 2)
    winner, loser = f"{wc} {suffix_w}", f"{lc} {suffix_l}"
    s1, s2, s3 = c.person(False), c.person(False), c.person(False)
    coach, capt = c.person(), c.person(False)
    m1, m2, m3 = c.num(14, 38), c.num(58, 70), c.num(80, 88)
    years = c.num(21, 47)
    return _Draft(
        headline=f"{winner} beat {loser} 2-1 to win National Cup final",
        alt_headline=f"Late stunner hands {winner} first cup in {years} years",
        section="Sport",
        tags=("football", "National Cup", winner, loser),
        dateline=w.capital,
        caption=f"{winner} players celebrate with the trophy after the final whistle.",
        paras=[
            f"{winner} won the National Cup for the first time in {years} years on {_wd(when)}, beating {loser} "
            f"2-1 in a tense final at the National Stadium in front of a crowd of {_n(c.num(61, 78) * 1000)}.",
            f"Striker {s1.full} opened the scoring in the {_th(m1)} minute, turning in a low cross from the left "
            f"after a quick counter-attack, and the lead held until the hour mark.",
            f"{loser} equalised through a header from defender {s2.full} at a corner in the {_th(m2)} minute, and "
            f"for a spell they looked the stronger side as the favourites' midfield began to tire.",
            f"Substitute {s3.full} settled the match in the {_th(m3)} minute, curling a shot into the far corner "
            f"from just outside the penalty area barely two minutes after coming on.",
            f'"I told the players at half-time that nobody would remember how we played, only whether we won," '
            f'said {winner} coach {coach.full}. "They gave everything. Some of them could hardly walk at the '
            f'end."',
            f'{loser} captain {capt.full} said his team had chances to win it. "We had them on the ropes after '
            f'the equaliser and did not finish it off. That will hurt for a long time," he said.',
            f"Police said the match passed off peacefully, with {_w(c.num(3, 9))} arrests reported around the "
            f"stadium. Thousands of supporters were expected to line the streets of {wc} for a homecoming parade "
            f"the following day.",
        ],
    )


def _s_science(c: _Ctx, w: _World, when: datetime) -> _Draft:
    n = c.num(11, 24)
    lead = c.person()
    canyon = c.pick(("Graywater", "Merrow", "Osprey", "Falcon Deep"))
    inst = c.pick(
        ("National Oceanographic Institute", "Institute for Marine Research", "Coastal Science Centre")
    )
    d1 = c.num(4, 9) * 100
    return _Draft(
        headline=f"Deep-sea expedition finds {n} new species, including a glowing shrimp",
        alt_headline=f"Scientists discover {n} unknown creatures in undersea canyon",
        section="Science",
        tags=("science", "ocean", "biodiversity", inst),
        dateline=w.capital,
        caption="A remotely operated vehicle is lowered from the research ship's deck.",
        paras=[
            f"Marine biologists have identified {n} previously unknown species during a month-long expedition to "
            f"the {canyon} Canyon, a deep trench off the coast of {w.east}, including a shrimp that produces its "
            f"own blue light, the {inst} said on {_wd(when)}.",
            f"The team used a remotely operated vehicle to survey the canyon walls at depths between {_n(d1)} and "
            f"{_n(d1 + c.num(18, 30) * 100)} metres, collecting specimens and more than {c.num(30, 48) * 10} hours "
            f"of video footage.",
            f'"Every dive brought something we could not name on the spot," said expedition leader '
            f'{lead.full}, a deep-sea ecologist at the institute. "The canyon acts like a funnel for nutrients '
            f'from the continental shelf, and life down there is far richer than we assumed."',
            "Among the finds were a translucent sea cucumber, two species of carnivorous sponge and a small "
            "octopus with unusually long arms. The bioluminescent shrimp, provisionally named after the research "
            "vessel, appears to use its light to confuse predators.",
            f"Genetic analysis confirmed that at least {n - c.num(3, 6)} of the species are new to science, the "
            f"researchers said, while the remaining specimens are still being compared with museum collections "
            f"abroad.",
            "The findings come as the government considers applications for seabed mining licences in nearby "
            "waters. Conservation groups said the discoveries strengthened the case for declaring the canyon a "
            "protected area.",
            "The institute plans to publish formal descriptions of the species over the next two years and has "
            "made the expedition's video archive available to schools.",
        ],
    )


def _s_drought_wire(c: _Ctx, w: _World, when: datetime) -> _Draft:
    d = w.drought
    gov = w.governor
    return _Draft(
        headline=f"{w.west} declares drought emergency as reservoirs fall to {d['level']}%",
        alt_headline=f"Watering ban ordered as {w.west} reservoirs hit two-decade low",
        section="National",
        tags=("drought", "water", w.west, "agriculture"),
        dateline=w.west_capital,
        caption=f"The exposed bed of a reservoir in {w.west}.",
        paras=[
            f"The government of {w.west} declared a drought emergency on {_wd(when)}, ordering restrictions on "
            f"garden watering and car washing from next week after reservoir levels fell to {d['level']} percent "
            f"of capacity, the lowest in more than two decades.",
            f"Governor {gov.full} announced the measures at a press conference in {w.west_capital}, saying the "
            f'province had recorded its driest {d["months"]} months since records began. "We cannot wait for '
            f'rain that may not come," {gov.last} said.',
            "Under the emergency order, households will be banned from using hoses and sprinklers, and municipal "
            "authorities must cut water pressure at night. Businesses that use large amounts of water, such as "
            "car washes and golf courses, will face individual limits.",
            f"Violations could bring fines of up to {_n(int(d['fine']))} dollars for households and much larger "  # type: ignore[call-overload]
            f"penalties for companies, officials said.",
            f"The province will also release {d['fund']} million dollars in emergency aid for farmers, many of "
            f"whom have already sold livestock because pastures have dried out and the price of feed has doubled "
            f"since spring.",
            f"Opposition lawmakers said the government had ignored warnings about ageing pipes, which lose an "
            f"estimated {d['leak']} percent of treated water before it reaches customers.",
        ],
    )


def _s_drought_local(c: _Ctx, w: _World, when: datetime) -> _Draft:
    d = w.drought
    gov = w.governor
    farmer = c.person()
    village = c.place()
    utility = c.pick(("Alder Water", "Harbourside Water Company", "West Coast Water"))
    return _Draft(
        headline=f"Hosepipe ban and farm aid: what the drought emergency means for {w.herald_city}",
        alt_headline="Drought rules explained",
        section="Local",
        tags=("drought", "water", w.herald_city, "explainer"),
        caption=f"A sprinkler sits unused on a lawn in {w.herald_city}.",
        paras=[
            f"{w.herald_city} residents will have to put away their garden hoses within days, after Governor "
            f"{gov.full} told reporters in the provincial capital that there was no choice left but to impose "
            f"emergency water rules.",
            f"Standing beside a chart that showed reservoir storage at just {d['level']} percent, the governor "
            f"called the situation serious but manageable and asked people to take shorter showers and to fix "
            f"dripping taps.",
            "For households in our area the main change is simple: sprinklers, hoses and filling swimming pools "
            "are off limits. Watering cans are still allowed, and recycled grey water from baths and sinks may be "
            "used on gardens.",
            f"The local supplier, {utility}, said it would lower mains pressure between midnight and five in the "
            f"morning, which may mean only a trickle from the taps in upper-floor flats during those hours.",
            f"Asked by the Herald whether the rules would really be enforced, {gov.last} said inspectors would "
            f"start by handing out warnings. Repeat offenders risk penalties of as much as "
            f"{_n(int(d['fine']))} dollars.",  # type: ignore[call-overload]
            f"Farmers on the plains east of town, who have been hauling water in by truck since late summer, "
            f'welcomed the {d["fund"]} million dollar aid package but said it came late. "Half my herd is '
            f'already gone," said {farmer.full}, who keeps cattle near {village}.',
            "The harbour authority said shipping would not be affected, and the town's pilot desalination plant, "
            "which supplies about a tenth of local demand, will run at full capacity throughout the emergency.",
        ],
    )


def _s_wildfire(c: _Ctx, w: _World, when: datetime) -> _Draft:
    town, town2 = c.place(), c.place()
    chief, evacuee = c.person(), c.person(True)
    ridge = c.pick(("Mount Carrick", "the Seven Sisters hills", "Barrow Ridge"))
    evac = c.num(24, 61) * 100
    return _Draft(
        headline=f"Thousands evacuated as wildfire spreads near {town}",
        alt_headline=f"Wildfire forces {_n(evac)} from their homes in {w.west}",
        section="National",
        tags=("wildfire", w.west, "evacuation", "emergency services"),
        dateline=town,
        caption=f"Smoke rises above the forest on the slopes near {town}.",
        paras=[
            f"Authorities ordered the evacuation of about {_n(evac)} residents from villages around {town} on "
            f"{_wd(when)} as a wildfire driven by hot, dry winds burned through more than "
            f"{_n(c.num(28, 75) * 100)} hectares of forest and farmland.",
            f"The fire started the previous afternoon in a pine plantation on the slopes of {ridge} and crossed "
            f"a major highway overnight, forcing police to close the road in both directions.",
            f"More than {c.num(3, 6) * 100} firefighters, supported by {c.num(6, 14)} water-bombing aircraft, "
            f"were trying to stop the flames from reaching the edge of the town. Fire chief {chief.full} said "
            f"containment lines on the eastern flank were holding but that conditions would worsen in the "
            f"afternoon.",
            f'"The wind is the enemy today. It is changing direction every hour and throwing embers several '
            f'hundred metres ahead of the front," {chief.last} said.',
            f"Evacuees were being housed in a sports hall and two schools in neighbouring {town2}, where "
            f"volunteers handed out water, blankets and pet food. {evacuee.full}, a retired teacher, said she had "
            f"left with only her medication and her dog.",
            f"At least {c.num(12, 31)} houses and several barns have been destroyed, according to preliminary "
            f"figures. One firefighter was treated in hospital for smoke inhalation.",
            "The cause of the fire is under investigation. The region has had almost no rain for seven weeks, and "
            "a total fire ban was already in force.",
        ],
    )


def _s_election(c: _Ctx, w: _World, when: datetime) -> _Draft:
    p1, p2, p3 = c.pick(
        (
            ("Progressive Alliance", "National Unity Party", "Green Renewal"),
            ("Civic Forward Party", "People's Conservative Party", "Ecology Now"),
        )
    )
    leader1, pm, leader3 = c.person(), c.person(), c.person()
    total = 200
    s1 = c.num(72, 88)
    s2 = c.num(51, 63)
    s3 = c.num(19, 27)
    turnout = c.num(71, 79)
    return _Draft(
        headline=f"{p1} wins most seats in election but falls short of majority",
        alt_headline=f"Hung parliament: {p1} ahead, coalition talks loom",
        section="Politics",
        tags=("election", "parliament", p1, p2),
        dateline=w.capital,
        caption=f"Supporters of the {p1} wave flags as results come in.",
        paras=[
            f"The {p1} won the largest share of seats in {_wd(when - timedelta(hours=10))}'s parliamentary "
            f"election but fell short of an outright majority, according to preliminary official results, "
            f"setting the stage for weeks of coalition negotiations.",
            f"With nearly all ballots counted, the party led by {leader1.full} had {s1} of the {total} seats in "
            f"the lower house, {c.num(14, 26)} more than at the last election. The governing {p2} of Prime "
            f"Minister {pm.full} dropped to {s2} seats.",
            f"Turnout was {turnout} percent, the highest in two decades, the electoral commission said, after "
            f"long queues formed outside polling stations in several cities during the evening.",
            f"Addressing supporters at a hotel in {w.capital}, {leader1.last} said voters had asked for change. "
            f'"Tonight the country chose a different direction. We will talk to every party that shares our '
            f'priorities on housing and energy prices," {leader1.he} said.',
            f"{pm.last} conceded that the result was a disappointment but said the {p2} would remain a "
            f"constructive force in parliament. Analysts said the outgoing prime minister's future as party "
            f"leader was now in doubt.",
            f"{p3}, an environmental party, more than doubled its representation to {s3} seats and is widely "
            f"seen as a likely coalition partner. Its co-leader {leader3.full} said any agreement would require a "
            f"binding timetable for closing coal-fired power stations.",
            "Parliament must convene within 30 days. Under the constitution, the president first invites the "
            "leader of the largest party to try to form a government.",
        ],
    )


def _s_budget(c: _Ctx, w: _World, when: datetime) -> _Draft:
    city = w.ledger_city
    total = c.num(380, 520)
    y = c.num(7, 9)
    tax = c.pick(("2.5", "3.1", "3.8", "4.2"))
    cl, mayor = c.person(), c.person()
    return _Draft(
        headline=f"{city} council approves ${total}M budget after late-night session",
        alt_headline=f"{city} passes budget with property tax rise",
        section="City Hall",
        tags=("city council", "budget", "property tax", city),
        caption=f"Residents fill the public gallery at {city} City Hall during the budget debate.",
        paras=[
            f"{city} City Council approved a {total} million dollar budget for the coming fiscal year shortly "
            f"after 1 a.m. on {_wd(when)}, ending a marathon session in which members argued over library hours, "
            f"police overtime and a contested increase in the property tax rate.",
            f"The spending plan passed by a vote of {y} to {11 - y}. It raises the property tax rate by {tax} "
            f"percent, which the finance department estimates will add about {c.num(90, 180)} dollars a year to "
            f"the bill of a typical homeowner.",
            f"Councillor {cl.full}, who voted against it, argued that the city should have drawn more from its "
            f'reserves before asking residents to pay more. "We are sitting on a rainy-day fund and it is '
            f'raining," {cl.last} said during the debate.',
            f"Supporters said the increase was needed to cover higher pension contributions and the rising cost "
            f"of asphalt and other road maintenance materials. Mayor {mayor.full} said the budget protected core "
            f"services without any layoffs.",
            "An amendment restoring Sunday opening at three branch libraries was adopted after more than forty "
            "residents spoke in favour during public comment, many of them parents and students.",
            f"The police department's overtime budget was trimmed by {c.num(6, 12)} percent, with the savings "
            f"going to a new mental health response team that will answer some emergency calls alongside or "
            f"instead of officers.",
            "The budget takes effect on the first day of the new fiscal year, and property owners will see the "
            "new rate on their next tax notice.",
        ],
    )


def _s_bridge(c: _Ctx, w: _World, when: datetime) -> _Draft:
    bridge = c.pick(_BRIDGES)
    months = c.num(9, 16)
    shop = c.person()
    street = c.pick(("Tanner Street", "Mill Lane", "Quayside Road", "Market Row"))
    cost = c.num(18, 42)
    return _Draft(
        headline=f"{bridge} Bridge reopens to traffic after {months}-month repair",
        alt_headline=f"Drivers cheer as {bridge} Bridge reopens",
        section="Local",
        tags=("transport", "roads", w.courier_city, f"{bridge} Bridge"),
        caption=f"The first bus crosses the {bridge} Bridge after the barriers were lifted.",
        paras=[
            f"The {bridge} Bridge in {w.courier_city} reopened to cars and buses on {_wd(when)} morning, "
            f"{months} months after engineers closed the river crossing when inspectors found corrosion in "
            f"several of its steel support cables.",
            f"A small crowd of commuters, cyclists and local officials gathered on the eastern approach as the "
            f"barriers were lifted at 6 a.m. The first vehicle across was a number {c.num(3, 42)} bus, whose "
            f"driver sounded the horn to cheers.",
            f"The repair cost {cost} million dollars, about {c.num(12, 35)} percent more than the original "
            f"estimate, according to the regional transport department. Officials blamed the overrun on the "
            f"price of specialised cable and a two-week delay during spring flooding.",
            f"During the closure, drivers faced detours of up to {c.num(7, 15)} kilometres through the town "
            f"centre, and shop owners on {street} said their trade fell sharply as traffic jams discouraged "
            f"visitors.",
            f'"It has been a long year for us," said {shop.full}, who owns a hardware store near the bridge. '
            f'"I had customers telling me they would rather drive to the retail park than sit in a queue to '
            f'reach us."',
            f"A weight limit of {c.num(7, 18)} tonnes will remain in place until a final load test next month, so "
            f"heavy goods vehicles must keep using the ring road.",
            f"The bridge, built in {c.num(1928, 1964)}, carries an estimated {_n(c.num(21, 38) * 1000)} vehicles "
            f"a day. The department said a sensor system installed during the works would now monitor the "
            f"cables continuously.",
        ],
    )


def _s_museum(c: _Ctx, w: _World, when: datetime) -> _Draft:
    director = c.person(True)
    boat = c.pick(_BOATS)
    return _Draft(
        headline=f"New maritime museum opens its doors on the {w.herald_city} waterfront",
        alt_headline=f"{w.herald_city} maritime museum opens after six-year campaign",
        section="Culture",
        tags=("museums", "heritage", w.herald_city, "tourism"),
        caption=f"Visitors look at the restored lifeboat {boat} on opening day.",
        paras=[
            f"After six years of fundraising and construction, the {w.herald_city} Maritime Museum opened to the "
            f"public on {_wd(when)}, with a queue stretching along the quay more than an hour before the doors "
            f"opened.",
            f"The museum occupies a restored nineteenth-century grain warehouse and tells the story of the "
            f"town's fishing fleet, its shipyards and the families who emigrated from the harbour. Its "
            f"centrepiece is the {boat}, a wooden lifeboat that served the local station for almost forty years.",
            f"Director {director.full} said the collection had been built largely from donations by local "
            f"families. \"Almost every object here came out of somebody's attic or shed. People kept these "
            f'things for generations, and now everyone can see them," she said.',
            f"The building cost {c.num(9, 17)} million dollars, with the largest share coming from a national "
            f"heritage grant and the rest from private donors and a crowdfunding campaign that attracted more "
            f"than {_n(c.num(21, 48) * 100)} contributors.",
            "Visitors on the first day tried out an interactive tide simulator and listened to recorded "
            "interviews with retired dockworkers. A children's gallery lets young visitors tie knots, load a "
            "model cargo ship and steer through a virtual harbour entrance.",
            "Admission is free for residents of the district until the end of the year. The museum is open daily "
            "except Mondays, and guided tours of the warehouse roof terrace run at weekends.",
            "Local businesses hope the museum will stretch the tourist season. The owner of a cafe opposite the "
            "entrance said she had taken on two extra staff in anticipation.",
        ],
    )


def _s_teachers(c: _Ctx, w: _World, when: datetime) -> _Draft:
    pres, chair = c.person(), c.person()
    r1, r2, r3 = c.pick(("3.0", "3.5", "4.0")), c.pick(("2.5", "3.0")), c.pick(("2.0", "2.5", "3.0"))
    return _Draft(
        headline=f"{w.observer_city} teachers ratify new contract, ending months of talks",
        alt_headline="Teachers approve three-year deal",
        section="Education",
        tags=("education", "schools", "unions", w.observer_city),
        caption="Union members count ballots at the district teachers' centre.",
        paras=[
            f"Teachers in the {w.observer_city} school district voted to ratify a three-year contract on "
            f"{_wd(when)}, ending eight months of negotiations that at one point brought the union close to "
            f"calling a strike.",
            f"The agreement gives teachers raises of {r1}, {r2} and {r3} percent over the three years and caps "
            f"class sizes at {c.num(22, 25)} pupils in the first two grades of primary school, one of the "
            f"union's central demands.",
            f"Of the union members who cast ballots, {c.num(78, 91)} percent supported the deal, union president "
            f'{pres.full} said. "This is not everything we asked for, but it shows that teachers were heard," '
            f"{pres.last} said.",
            f"The school board approved the contract unanimously at a special meeting later in the evening. "
            f"Board chair {chair.full} said the district would pay for the raises partly by delaying the "
            f"replacement of pupils' laptops and renegotiating its bus contract.",
            "Parents had watched the talks nervously in recent weeks after the union held a series of rallies "
            "outside the district offices, and several said they were relieved that the school year would not "
            "be disrupted.",
            "The contract also adds two paid planning days a year and a mentoring programme for teachers in "
            "their first three years, which the district hopes will reduce turnover at its two hardest-to-staff "
            "schools.",
        ],
    )


def _s_debate(c: _Ctx, w: _World, when: datetime) -> _Draft:
    ca, cb, cc, mod = c.person(True), c.person(False), c.person(True), c.person()
    return _Draft(
        headline=f"{w.courier_city} mayoral hopefuls clash over housing and parking in first debate",
        alt_headline="Mayoral candidates debate housing",
        section="Politics",
        tags=("local elections", "housing", w.courier_city, "mayor"),
        caption="The three mayoral candidates on stage at the community college.",
        paras=[
            f"The three candidates for mayor of {w.courier_city} sparred over housing costs, downtown parking and "
            f"the future of the old rail yard in their first public debate on {_wd(when)} evening, held in a "
            f"packed auditorium at the community college.",
            f"{ca.full}, a two-term councillor, pledged to rezone the rail yard for up to "
            f'{_n(c.num(9, 16) * 100)} homes, a third of them below market rent. "Our children cannot afford to '
            f'live in the town they grew up in, and that is a choice we have made with our zoning rules," she '
            f"said.",
            f"{cb.full}, who runs a family logistics business, warned that dense development would overwhelm "
            f"roads and schools and said he would instead turn part of the site into a park with a multi-storey "
            f"car park serving the high street.",
            f"The third candidate, {cc.full}, a retired nurse running as an independent, focused on the town's "
            f"ageing care homes and accused both rivals of ignoring older residents. She drew the loudest "
            f"applause of the night when she promised to hold monthly open meetings in every ward.",
            f"Moderator {mod.full} repeatedly had to ask the audience to hold its applause, and a question about "
            f"the recent increase in parking fines produced a heated exchange between {ca.last} and {cb.last}.",
            f"Two more debates are scheduled before the election in {_w(c.num(4, 7))} weeks. The incumbent mayor, "
            f"who is not seeking re-election, has not endorsed anyone.",
        ],
    )


def _s_hospital(c: _Ctx, w: _World, when: datetime) -> _Draft:
    ceo = c.person()
    old = c.num(18, 25) * 1000
    street = c.pick(("Orchard Avenue", "Linden Road", "Chapel Hill"))
    return _Draft(
        headline=f"{w.observer_city} General breaks ground on new emergency wing",
        alt_headline="Work starts on hospital's emergency department",
        section="Health",
        tags=("health", "hospitals", w.observer_city, "construction"),
        caption=f"Hospital staff and officials at the groundbreaking ceremony on {street}.",
        paras=[
            f"Construction began on {_wd(when)} on a new emergency department at {w.observer_city} General "
            f"Hospital, a {c.num(64, 120)} million dollar project that hospital leaders say will nearly double "
            f"the number of treatment bays and cut waiting times.",
            f"The existing emergency room was designed in the 1980s for about {_n(old)} visits a year. It now "
            f"handles more than {_n(old * 2 + c.num(2, 9) * 1000)}, and patients regularly wait on trolleys in "
            f"corridors during the winter.",
            f"The new wing will have {c.num(38, 56)} treatment bays, a separate paediatric area and a rapid "
            f"assessment unit where senior doctors see patients as they arrive. It is due to open in "
            f"{c.pick(('two', 'three'))} years.",
            f'"Our staff have done remarkable work in a building that stopped being fit for purpose a long time '
            f'ago," said chief executive {ceo.full}. "This gives them the space to treat people with dignity."',
            f"The project is funded by the provincial health ministry and a {c.num(4, 11)} million dollar gift "
            f"from the estate of a local farming family, whose name will be given to the children's area.",
            f"Neighbours on {street} have raised concerns about construction traffic and ambulance sirens. The "
            f"hospital said a temporary access road would keep lorries away from residential streets.",
        ],
    )


def _s_rents(c: _Ctx, w: _World, when: datetime) -> _Draft:
    pct = c.num(9, 14)
    rent = c.num(17, 24) * 100
    org = c.person(True)
    return _Draft(
        headline=f"{w.ledger_city} rents climb {pct}% in a year as vacancy rate hits record low",
        alt_headline="Rents hit record as empty flats vanish",
        section="Housing",
        tags=("housing", "rents", w.ledger_city, "short-term rentals"),
        caption=f"Apartment blocks near the new light rail line in {w.ledger_city}.",
        paras=[
            f"Average rents in the {w.ledger_city} metro area rose {pct} percent over the past year, the fastest "
            f"increase on record, as the share of empty apartments fell to just {c.pick(('1.2', '1.4', '1.7'))} "
            f"percent, according to a report published on {_wd(when)} by the regional housing agency.",
            f"A typical two-bedroom apartment now rents for about {_n(rent)} dollars a month, up from "
            f"{_n(rent * 100 // (100 + pct))} dollars a year ago. The sharpest rises were recorded in "
            f"neighbourhoods close to the new light rail line.",
            f"The report attributes the squeeze to population growth, slower construction and the spread of "
            f"short-term holiday lets, which the agency estimates have removed around {_n(c.num(18, 35) * 100)} "
            f"homes from the long-term rental market.",
            f"Tenant organiser {org.full} said members were increasingly sharing flats with strangers or moving "
            f'back in with their parents. "We hear from nurses and bus drivers who spend more than half their '
            f'income on rent," she said.',
            "A landlords' association disputed parts of the analysis, arguing that rising maintenance costs and "
            "interest rates had left many small property owners with little choice but to raise rents.",
            f"The city is considering a cap on short-term rental permits and has approved "
            f"{_n(c.num(6, 12) * 100)} subsidised units on public land, the first of which should be ready in "
            f"two years.",
        ],
    )


def _s_harvest(c: _Ctx, w: _World, when: datetime) -> _Draft:
    grower = c.person(False)
    last = c.num(38, 52) * 1000
    return _Draft(
        headline=f"Late frost cuts {w.observer_city} apple harvest by a third",
        alt_headline="Frost damage leaves orchards with thin crop",
        section="Farming",
        tags=("agriculture", "apples", w.observer_city, "weather"),
        caption="Pickers at work in an orchard west of town.",
        paras=[
            f"Orchards around {w.observer_city} are picking about a third fewer apples than last year after a "
            f"late frost in spring damaged the blossom, growers said this week, and some smaller farms expect to "
            f"lose money for the season.",
            f"{grower.full}, who farms {c.num(40, 160)} acres of apples on the hillside west of town, said "
            f'temperatures fell to minus four degrees on two nights just as the trees were in full flower. "You '
            f'could see the damage the next morning. The centres of the flowers turned black," he said.',
            f"The regional growers' cooperative estimates that the district will produce around "
            f"{_n(last * 2 // 300 * 100)} tonnes this year, compared with more than {_n(last)} tonnes in an average "
            f"season. Varieties that bloom early were hit hardest.",
            "Prices at the farm gate have risen as a result, but growers said the increase did not make up for "
            "the smaller crop, especially with higher wages for seasonal pickers.",
            "Some farms have turned to frost fans and overhead sprinklers, which protect blossom by keeping the "
            "air moving or coating the flowers in a thin layer of ice. The equipment is expensive, and the "
            "cooperative is lobbying for grants to help members install it.",
            "The town's harvest festival will go ahead as planned next month, with pressing demonstrations and a "
            "cider tasting in the market square.",
        ],
    )


def _s_busline(c: _Ctx, w: _World, when: datetime) -> _Draft:
    mgr, rider = c.person(), c.person(True)
    km = c.num(11, 19)
    colour = c.pick(("Blue", "Orange", "Teal", "Crimson"))
    return _Draft(
        headline=f"{w.ledger_city}'s first rapid bus line to launch next month with free rides",
        alt_headline=f"{colour} Line rapid buses start running next month",
        section="Transport",
        tags=("transport", "buses", w.ledger_city, "public transit"),
        caption=f"A {colour} Line bus on a test run along the dedicated lane.",
        paras=[
            f"The {colour} Line, {w.ledger_city}'s first bus rapid transit route, will start carrying passengers "
            f"at the beginning of next month, and rides will be free for the first two weeks, the regional "
            f"transit authority announced on {_wd(when)}.",
            f"The {km}-kilometre route links the central station with the university and the hospital district, "
            f"using dedicated lanes for most of its length and traffic signals that turn green as buses approach.",
            f"Buses will run every {c.pick(('six', 'seven', 'eight'))} minutes at peak times and every twelve "
            f"minutes in the evening. The authority expects the line to cut the end-to-end journey from about 50 "
            f"minutes to just over half an hour.",
            f"Project manager {mgr.full} said the 18 new articulated buses were electric and would charge at "
            f'both ends of the route. "Riders will notice how quiet they are before they notice anything else," '
            f"{mgr.last} said.",
            f"Some business owners along the route remain unhappy about the loss of on-street parking. "
            f"{rider.full}, a student who currently takes two buses to reach campus, said she would switch on the "
            f"first day.",
            "Fares after the free period will be the same as on the regular bus network, and transfers to other "
            "routes within ninety minutes will be included.",
        ],
    )


def _s_port(c: _Ctx, w: _World, when: datetime) -> _Draft:
    chair, opp = c.person(), c.person()
    cost = c.num(240, 390)
    return _Draft(
        headline=f"Harbour authority approves ${cost}M container terminal expansion",
        alt_headline=f"{w.herald_city} port to double container capacity",
        section="Business",
        tags=("port", "shipping", w.herald_city, "jobs"),
        caption="Cranes at the existing container terminal.",
        paras=[
            f"The {w.herald_city} Harbour Authority on {_wd(when)} approved a {cost} million dollar expansion of "
            f"its container terminal, a project that would roughly double the port's capacity and allow it to "
            f"handle the largest ships now sailing on Atlantic routes.",
            f"The plan involves dredging the approach channel to a depth of {c.num(16, 18)} metres, building "
            f"{c.num(500, 700)} metres of new quay and installing four ship-to-shore cranes. Work is expected to "
            f"start next spring and take about three years.",
            f"Authority chair {chair.full} said the expansion would create around {c.num(6, 11) * 100} permanent "
            f'jobs. "Shipping lines are already asking when they can call here. If we do not build it, another '
            f'port will," {chair.last} said.',
            f"Environmental groups said dredging would disturb seagrass meadows at the mouth of the estuary. "
            f"{opp.full} of the Estuary Trust said the authority had not done enough to protect nursery grounds "
            f"for juvenile fish.",
            "The authority said it would replant seagrass elsewhere in the estuary and monitor water quality "
            "during the works, and that an independent panel would review the results every six months.",
            "Residents near the container yard have also asked for a noise barrier and limits on night-time "
            "truck movements, which the authority said it would consider as part of the final design.",
        ],
    )


def _s_coach(c: _Ctx, w: _World, when: datetime) -> _Draft:
    coach, gm = c.person(), c.person()
    years = c.num(2, 4)
    return _Draft(
        headline=f"{w.courier_city} Bears name {coach.full} as new head coach",
        alt_headline="Bears hire new coach",
        section="Sport",
        tags=("basketball", f"{w.courier_city} Bears", "coaching"),
        caption=f"{coach.full} at the introductory news conference.",
        paras=[
            f"The {w.courier_city} Bears have appointed {coach.full} as head coach on a {_w(years)}-year contract, "
            f"the basketball club said on {_wd(when)}, two weeks after parting ways with its previous coach "
            f"following a losing season.",
            f"{coach.last}, {c.num(38, 52)}, spent the past five seasons as an assistant with a top-flight club "
            f"abroad, where {coach.he} was credited with building one of the league's best defences.",
            f'General manager {gm.full} said the club had interviewed seven candidates. "We wanted someone who '
            f"would make the team hard to play against every single night, and who develops young players rather "
            f'than buying finished ones," {gm.last} said.',
            f"The Bears won only {c.num(9, 13)} of their 34 league games last season and missed the playoffs for "
            f"the second year running, and attendance at the arena fell by about a fifth.",
            f"{coach.last} said {coach.his} first priority was the team's rebounding. \"You can teach almost "
            f'anything, but you cannot win if the other team gets two shots every time down the floor," '
            f"{coach.he} said.",
            "Season ticket holders will be invited to an open practice with the new coach before training camp "
            "begins.",
        ],
    )


def _s_algae(c: _Ctx, w: _World, when: datetime) -> _Draft:
    officer = c.person()
    beach1, beach2 = c.pick((("Gull Point", "Sandy Reach"), ("Long Strand", "Cove Beach")))
    return _Draft(
        headline=f"Algae bloom closes two beaches near {w.herald_city}",
        alt_headline="Toxic algae warning for swimmers",
        section="Environment",
        tags=("environment", "beaches", "water quality", w.herald_city),
        caption=f"Warning signs at the entrance to {beach1}.",
        paras=[
            f"Health officials closed {beach1} and {beach2} to swimmers on {_wd(when)} after tests found high "
            f"levels of blue-green algae, which can cause skin rashes and stomach illness and is dangerous to "
            f"dogs.",
            "The bloom appeared after weeks of hot, still weather and low river flows, which allow the "
            "microscopic organisms to multiply in warm, shallow water near the shore.",
            f"Environmental health officer {officer.full} said the water had a green, paint-like scum in places. "
            f'"If the water looks like pea soup, stay out and keep your dog out too. Do not let children play in '
            f"the foam at the water's edge,\" {officer.last} said.",
            "Samples will be taken twice a week, and the beaches will reopen only after two clean results in a "
            "row. Other beaches in the district remain open, although officials advised people to check the "
            "council's website before visiting.",
            "Scientists say blooms have become more frequent along the coast because of warmer summers and "
            "fertiliser running off farmland into the rivers that feed the bay.",
        ],
    )


def _s_trial(c: _Ctx, w: _World, when: datetime) -> _Draft:
    acc, judge, pros = c.person(), c.person(), c.person()
    amount = c.num(310, 690)
    charity = c.pick(("Hillside Children's Fund", "Riverbank Food Pantry", "Bramwell Hospice Trust"))
    return _Draft(
        headline=f"Former charity treasurer found guilty of embezzling ${amount},000",
        alt_headline="Treasurer convicted of stealing charity funds",
        section="Courts",
        tags=("courts", "fraud", w.courier_city, "charity"),
        caption=f"{w.courier_city} Crown Court, where the trial was held.",
        paras=[
            f"A jury in {w.courier_city} on {_wd(when)} found {acc.full}, the former treasurer of the {charity}, "
            f"guilty of embezzling {amount},000 dollars from the charity over a period of six years.",
            f"Prosecutor {pros.full} told the court that {acc.last} had written cheques to a company {acc.he} "
            f"controlled and disguised them in the accounts as payments for catering and printing that never "
            f"took place.",
            "The fraud came to light when a new volunteer bookkeeper noticed that the charity's printing costs "
            "were higher than those of organisations several times its size and raised the matter with the "
            "board.",
            f"{acc.last}, who denied the charges, told the jury that the payments were loans that {acc.he} had "
            f"intended to repay. The jury deliberated for about {_w(c.num(3, 7))} hours before returning its "
            f"verdict.",
            f"Judge {judge.full} said a custodial sentence was likely and adjourned the case for a pre-sentence "
            f"report. The charity said it had since changed its banking rules so that every payment requires two "
            f"signatures.",
            "The charity's chair said in a statement that donors had stayed loyal throughout the case and that no "
            "services had been cut as a result of the losses.",
        ],
    )


def _s_festival(c: _Ctx, w: _World, when: datetime) -> _Draft:
    fest = c.pick(_FESTIVALS)
    director = c.person()
    return _Draft(
        headline=f"{fest} festival announces lineup and adds a third stage",
        alt_headline=f"{fest} festival reveals headliners",
        section="Culture",
        tags=("music", "festivals", w.ledger_city, fest),
        caption=f"Crowds in front of the main stage at last year's {fest} festival.",
        paras=[
            f"The {fest} music festival will add a third stage and extend to four days this summer, organisers "
            f"said on {_wd(when)} as they announced a lineup of more than {c.num(6, 9) * 10} acts for the event in "
            f"{w.ledger_city}'s riverside park.",
            "The new stage, in a former tram depot next to the park, will host electronic and experimental acts "
            "late into the night, with a strict sound limit after eleven o'clock to keep the peace with "
            "neighbours.",
            f"Festival director {director.full} said ticket sales last year had shown that demand outstripped "
            f'capacity. "We turned away thousands of people at the gate. The depot lets us grow without '
            f'squeezing more bodies into the meadow," {director.last} said.',
            f"Early-bird weekend passes go on sale next week at {c.num(129, 179)} dollars, with a limited number "
            f"of discounted tickets for local residents and students.",
            "Organisers said the festival would again run free shuttle buses from the central station and ban "
            "single-use plastic cups, after reporting that last year's reusable cup scheme cut waste on the site "
            "by more than half.",
        ],
    )


def _s_flu(c: _Ctx, w: _World, when: datetime) -> _Draft:
    doc, pharm = c.person(), c.person(True)
    return _Draft(
        headline=f"Free flu jabs offered at {w.observer_city} pharmacies as season starts early",
        alt_headline="Flu season arrives early, free vaccines offered",
        section="Health",
        tags=("health", "flu", "vaccination", w.observer_city),
        caption="A pharmacist prepares a flu vaccine.",
        paras=[
            f"Pharmacies in {w.observer_city} began offering free flu vaccinations to everyone over the age of "
            f"{c.pick(('50', '60', '65'))} and to people with long-term health conditions this week, after "
            f"health officials reported that the flu season had started several weeks earlier than usual.",
            f"The district's public health director, {doc.full}, said laboratory-confirmed cases had "
            f"{c.pick(('doubled', 'tripled'))} in a fortnight and that hospital admissions for respiratory "
            f"illness were already at levels normally seen in midwinter.",
            f'"The vaccine takes about two weeks to give full protection, so the sooner people come forward, '
            f'the better," {doc.last} said. Children aged two to ten can receive a nasal spray vaccine at their '
            f"family doctor's surgery.",
            f"Pharmacist {pharm.full} said her shop had given more than {c.num(12, 24) * 10} jabs in the first two "
            f"days and was adding evening appointments. Walk-in patients are accepted, though booking ahead is "
            f"recommended.",
            "Officials also urged people with flu symptoms to stay at home and avoid visiting care homes and "
            "hospital wards until they have recovered.",
        ],
    )


def _s_mill(c: _Ctx, w: _World, when: datetime) -> _Draft:
    jobs = c.num(31, 48) * 10
    union, mp = c.person(), c.person()
    co = c.pick(("Fairholme Paper", "Kingfisher Pulp & Paper", "Norland Papers"))
    return _Draft(
        headline=f"{w.courier_city} paper mill to close, putting {jobs} jobs at risk",
        alt_headline="Paper mill closure threatens hundreds of jobs",
        section="Business",
        tags=("business", "jobs", w.courier_city, "manufacturing"),
        caption="The paper mill on the riverbank.",
        paras=[
            f"{co} said on {_wd(when)} that it plans to close its mill in {w.courier_city} by the end of next "
            f"year, putting {jobs} jobs at risk at one of the town's oldest and largest employers.",
            "The company blamed falling demand for printing paper, high energy costs and competition from larger, "
            "newer mills abroad. It said production would move to its two other plants, which make packaging "
            "materials.",
            f"Union representative {union.full} said workers had learned of the decision at a meeting on the "
            f'factory floor. "Some of these men and women are the third generation of their family to work '
            f'there. They deserved better than a ten-minute announcement," {union.last} said.',
            f"The mill has operated on the riverbank since {c.num(1888, 1921)} and at its peak in the 1970s "
            f"employed more than two thousand people. Local suppliers, hauliers and cafes depend on its business.",
            f"The area's member of parliament, {mp.full}, called on the company to keep the site open while "
            f"potential buyers were sought, and said {mp.he} would ask the government to set up a task force to "
            f"help workers find new jobs.",
            "The company said it would begin a consultation with staff and offer retraining and help with job "
            "searches to every affected employee.",
        ],
    )


# key -> (writer, origin outlet, event id, follow-up of)
_STORIES: tuple[tuple[str, Callable[[_Ctx, _World, datetime], _Draft], str, str | None, str | None], ...] = (
    ("storm", _s_storm, "continental-wire", "storm", None),
    ("storm-followup", _s_storm_followup, "continental-wire", "storm", "storm"),
    ("rate-cut", _s_rates, "continental-wire", None, None),
    ("tech-earnings", _s_earnings, "continental-wire", None, None),
    ("cup-final", _s_football, "continental-wire", None, None),
    ("deep-sea-species", _s_science, "continental-wire", None, None),
    ("drought-emergency", _s_drought_wire, "continental-wire", "drought-presser", None),
    ("wildfire", _s_wildfire, "continental-wire", None, None),
    ("election", _s_election, "continental-wire", None, None),
    ("council-budget", _s_budget, "metro-ledger", None, None),
    ("bridge-reopens", _s_bridge, "daily-courier", None, None),
    ("maritime-museum", _s_museum, "harbor-herald", None, None),
    ("drought-local", _s_drought_local, "harbor-herald", "drought-presser", None),
    ("teachers-contract", _s_teachers, "northfield-observer", None, None),
    ("mayoral-debate", _s_debate, "daily-courier", None, None),
    ("hospital-wing", _s_hospital, "northfield-observer", None, None),
    ("rents-record", _s_rents, "metro-ledger", None, None),
    ("apple-harvest", _s_harvest, "northfield-observer", None, None),
    ("rapid-bus", _s_busline, "metro-ledger", None, None),
    ("port-expansion", _s_port, "harbor-herald", None, None),
    ("new-coach", _s_coach, "daily-courier", None, None),
    ("algae-bloom", _s_algae, "harbor-herald", None, None),
    ("charity-fraud", _s_trial, "daily-courier", None, None),
    ("music-festival", _s_festival, "metro-ledger", None, None),
    ("flu-jabs", _s_flu, "northfield-observer", None, None),
    ("mill-closure", _s_mill, "daily-courier", None, None),
)

# Syndicated copies: (story, outlet, variant flags). Flags: T truncated, H edited headline,
# D dateline dropped, Y typos, U also listed with tracking parameters in the "top stories" feed.
_COPIES: tuple[tuple[str, str, str], ...] = (
    ("storm", "daily-courier", "H"),
    ("storm", "northfield-observer", "TD"),
    ("storm", "newsflow-markets", ""),
    ("storm-followup", "metro-ledger", "T"),
    ("rate-cut", "daily-courier", ""),
    ("rate-cut", "harbor-herald", "TH"),
    ("rate-cut", "newsflow-markets", "D"),
    ("tech-earnings", "metro-ledger", "Y"),
    ("tech-earnings", "newsflow-markets", ""),
    ("cup-final", "daily-courier", "HD"),
    ("cup-final", "northfield-observer", "T"),
    ("deep-sea-species", "harbor-herald", ""),
    ("deep-sea-species", "northfield-observer", "Y"),
    ("drought-emergency", "daily-courier", "T"),
    ("drought-emergency", "metro-ledger", "U"),
    ("wildfire", "northfield-observer", "H"),
    ("wildfire", "newsflow-markets", "Y"),
    ("election", "metro-ledger", "D"),
    ("election", "harbor-herald", ""),
    ("election", "newsflow-markets", "T"),
    ("maritime-museum", "newsflow-markets", ""),
)


# --------------------------------------------------------------------------------------------------
# Outlets and their page templates
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Style:
    slug: str
    name: str
    kind: str  # wire | news | aggregator
    short: str
    tz_hours: int
    nav: tuple[str, ...]
    languages: tuple[str, ...]
    read_also: str
    ad_label: str
    byline: str  # with {name}
    follow: str
    patron: str
    render_date: str | None  # strftime pattern of a "today" line at the top, or None
    jsonld: str  # all | some | none
    pub_meta: bool  # <meta property="article:published_time">
    min_read: bool
    views: bool
    caption_in_body: bool
    layout: str  # article | div
    inline_boilerplate: bool  # byline, ad labels, follow and patron calls as plain <p> inside the body
    related_title: str
    recent_title: str
    legal: str


_STYLES: tuple[_Style, ...] = (
    _Style(
        slug="continental-wire",
        name="Continental Press Wire",
        kind="wire",
        short="CPW",
        tz_hours=0,
        nav=("World", "National", "Politics", "Business", "Sport", "Science"),
        languages=("EN", "FR", "ES"),
        read_also="Read also:",
        ad_label="Advertisement",
        byline="By {name}",
        follow="Follow CPW on X, LinkedIn and Mastodon for breaking news.",
        patron="Independent news costs money. Support us and become a CPW patron from $3 a month.",
        render_date=None,
        jsonld="all",
        pub_meta=True,
        min_read=True,
        views=False,
        caption_in_body=False,
        layout="article",
        inline_boilerplate=False,
        related_title="Related stories",
        recent_title="RECENT NEWS",
        legal="Continental Press Wire Ltd.",
    ),
    _Style(
        slug="daily-courier",
        name="The Daily Courier",
        kind="news",
        short="Courier",
        tz_hours=1,
        nav=("Home", "Local", "Politics", "Business", "Sport", "Culture", "Opinion"),
        languages=("EN", "DE", "FR"),
        read_also="Read also:",
        ad_label="Advertisement",
        byline="Author: {name}",
        follow="Follow us on Facebook, X and Instagram",
        patron="Support the Courier: become a patron from $5 a month and help keep local journalism free "
        "to read.",
        render_date="%A, %B %d, %Y",
        jsonld="all",
        pub_meta=True,
        min_read=True,
        views=True,
        caption_in_body=False,
        layout="article",
        inline_boilerplate=False,
        related_title="Related",
        recent_title="RECENT NEWS",
        legal="Daily Courier Media Ltd.",
    ),
    _Style(
        slug="metro-ledger",
        name="Metro Ledger",
        kind="news",
        short="Ledger",
        tz_hours=1,
        nav=("News", "City Hall", "Housing", "Transport", "Business", "Culture", "Sport"),
        languages=("EN", "ES"),
        read_also="READ MORE:",
        ad_label="- Advertisement -",
        byline="By {name}",
        follow="Follow the Ledger on Facebook and Telegram",
        patron="Become a Ledger member. Our reporting is funded by readers like you - join today.",
        render_date=None,
        jsonld="all",
        pub_meta=True,
        min_read=True,
        views=False,
        caption_in_body=True,
        layout="article",
        inline_boilerplate=False,
        related_title="More from the Ledger",
        recent_title="Latest news",
        legal="Metro Ledger Publishing Co.",
    ),
    _Style(
        slug="harbor-herald",
        name="The Harbor Herald",
        kind="news",
        short="Herald",
        tz_hours=0,
        nav=("Home", "Local", "Business", "Environment", "Culture", "Sport", "Video"),
        languages=("EN", "PT"),
        read_also="Also read:",
        ad_label="ADVERTISEMENT",
        byline="Author: {name}",
        follow="Follow us on Instagram and Threads",
        patron="Do you value the Herald? Become a patron and support independent coastal journalism.",
        render_date=None,
        jsonld="some",
        pub_meta=True,
        min_read=False,
        views=True,
        caption_in_body=True,
        layout="div",
        inline_boilerplate=True,
        related_title="You may also like",
        recent_title="RECENT NEWS",
        legal="Harbor Herald Newspapers",
    ),
    _Style(
        slug="northfield-observer",
        name="Northfield Observer",
        kind="news",
        short="Observer",
        tz_hours=1,
        nav=("News", "Farming", "Education", "Health", "Sport", "Notices"),
        languages=("EN", "NL"),
        read_also="Read also:",
        ad_label="Advertisement",
        byline="By {name}",
        follow="Follow us on Facebook",
        patron="Support us: become a patron of the Observer for the price of a coffee a month.",
        render_date="%d %B %Y, %H:%M",
        jsonld="none",
        pub_meta=False,
        min_read=False,
        views=True,
        caption_in_body=False,
        layout="div",
        inline_boilerplate=True,
        related_title="Related articles",
        recent_title="RECENT NEWS",
        legal="Northfield Observer Ltd.",
    ),
    _Style(
        slug="newsflow-markets",
        name="NewsFlow Markets Network",
        kind="aggregator",
        short="NFMN",
        tz_hours=3,
        nav=("Home", "Markets", "Business", "Politics", "Press Releases", "Search"),
        languages=("EN", "AR", "FR"),
        read_also="Read also:",
        ad_label="Advertisement",
        byline="",
        follow="Follow NFMN on X and LinkedIn",
        patron="",
        render_date="%A, %d %B %Y %H:%M GMT",
        jsonld="all",
        pub_meta=True,
        min_read=False,
        views=True,
        caption_in_body=True,
        layout="div",
        inline_boilerplate=False,
        related_title="Related News",
        recent_title="RECENT NEWS",
        legal="NewsFlow Markets Network",
    ),
)
_STYLE = {s.slug: s for s in _STYLES}

_DISCLAIMER = (
    "NewsFlow Markets Network republishes this content as it was received from the provider named above and "
    "makes no representation or warranty about its accuracy, completeness or timeliness. NFMN is not "
    "responsible for the opinions, images or claims contained in it. Questions about the content, including "
    "copyright, should be addressed directly to the provider."
)
_COOKIE = (
    "We use cookies to remember your settings, measure how our site is used and show you relevant "
    "advertising. You can accept all cookies or choose which ones to allow."
)


@dataclass(slots=True)
class _Spec:
    """A page plus what only rendering needs."""

    truth: DemoPage
    updated_at: datetime
    caption: str
    photo_credit: str
    dateline_prefix: str | None = None  # the "CITY (CPW) — " the first paragraph starts with, if kept
    read_also: str | None = None  # path
    related: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()
    views: int = 0
    tracking_id: str | None = None
    source_id: str = ""


def _slugify(text: str, words: int = 9) -> str:
    parts = re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))
    return "-".join(parts[:words])


def _iso(d: datetime, tz_hours: int = 0) -> str:
    s = d.astimezone(timezone(timedelta(hours=tz_hours))).isoformat(timespec="seconds")
    return s.replace("+00:00", "Z")


def _typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if w.isalpha() and w.islower() and len(w) >= 7]
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randint(2, len(w) - 3)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]  # swap two letters
    return " ".join(words)


def _summary(text: str, words: int = 28) -> str:
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words]) + " ..."


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _e(text: str) -> str:
    return html.escape(text, quote=True)


# --------------------------------------------------------------------------------------------------
# The web
# --------------------------------------------------------------------------------------------------


class DemoWeb:
    """The generated web and its ground truth. Deterministic for a given ``seed`` and ``now``."""

    def __init__(self, seed: int = DEFAULT_SEED, now: datetime | None = None) -> None:
        self.seed = seed
        now = now or default_now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self.now: datetime = now.astimezone(UTC)
        self.outlets: list[DemoOutlet] = []
        self.feeds: list[DemoFeed] = []
        self.stories: dict[str, DemoStory] = {}
        self.pages: list[DemoPage] = []
        self._specs: dict[str, _Spec] = {}
        self._feed_items: dict[str, list[tuple[str, str]]] = {}  # feed name -> [(path, link as written)]
        self._sites: dict[str, dict[str, Resource]] = {}
        self._build()

    # ---- public helpers --------------------------------------------------------------------------

    @property
    def ok_pages(self) -> list[DemoPage]:
        return [p for p in self.pages if p.status == "ok"]

    @property
    def copies(self) -> list[DemoPage]:
        return [p for p in self.pages if p.is_copy]

    def page(self, path: str) -> DemoPage:
        """The truth for a path (a query string such as utm_ parameters is ignored)."""
        return self._specs[path.split("?", 1)[0]].truth

    def feed(self, name: str) -> DemoFeed:
        return next(f for f in self.feeds if f.name == name)

    def feed_items(self, name: str) -> list[tuple[str, str]]:
        """(page path, link exactly as written in the feed) for each item of a feed, newest first."""
        return list(self._feed_items[name])

    def outlet_name(self, slug: str) -> str:
        return _STYLE[slug].name

    def config_yaml(self, base_url: str) -> str:
        """A newsingest config that ingests every feed of the demo web served at ``base_url``."""
        base = base_url.rstrip("/")
        lines = ["# newsingest config for the bundled demo web (generated)", "feeds:"]
        for f in self.feeds:
            lines.append(f'  - {{name: {f.name}, url: "{base}{f.path}"}}')
        lines += [
            "fetch:",
            '  allow_private: ["127.0.0.1"]',
            "  min_delay_s: 0",
            "  per_host_concurrency: 8",
            "",
        ]
        return "\n".join(lines)

    def build_site(self, base_url: str) -> dict[str, Resource]:
        """Every servable path -> its response, with absolute URLs built on ``base_url``."""
        base = base_url.rstrip("/")
        if base not in self._sites:
            self._sites[base] = self._render_site(base)
        return self._sites[base]

    # ---- generation ------------------------------------------------------------------------------

    def _build(self) -> None:
        seed, now = self.seed, self.now
        ctx = _Ctx(random.Random(f"{seed}:text"))
        trng = random.Random(f"{seed}:time")
        prng = random.Random(f"{seed}:pages")

        world = _World(
            capital=ctx.pick(_CAPITALS),
            west_capital=ctx.place(),
            west=ctx.pick(_WEST_PROVINCES),
            east=ctx.pick(_EAST_PROVINCES),
            governor=ctx.person(),
            east_governor=ctx.person(),
            storm={
                "name": ctx.pick(_STORM_NAMES),
                "city_a": ctx.place(),
                "city_b": ctx.place(),
                "utility": ctx.pick(_UTILITIES),
                "homes": ctx.num(38, 96) * 1000,
            },
            drought={
                "level": ctx.num(21, 29),
                "months": ctx.num(14, 20),
                "fine": ctx.pick((500, 1000, 2500)),
                "fund": ctx.num(40, 90),
                "leak": ctx.num(18, 27),
            },
        )
        reporters = {s.slug: [ctx.person() for _ in range(4)] for s in _STYLES if s.kind != "aggregator"}
        photographers = {s.slug: ctx.person() for s in _STYLES}

        # publication times (UTC, minute precision), relative to now
        def ago(lo_h: int, hi_h: int) -> datetime:
            return now - timedelta(minutes=trng.randint(lo_h * 60, hi_h * 60))

        times: dict[str, datetime] = {}
        for key, *_ in _STORIES:
            if key == "storm":
                times[key] = ago(70, 88)
            elif key == "storm-followup":
                times[key] = times["storm"] + timedelta(minutes=trng.randint(24 * 60, 30 * 60))
            elif key == "drought-emergency":
                times[key] = ago(20, 56)
            elif key == "drought-local":
                times[key] = times["drought-emergency"] + timedelta(minutes=trng.randint(100, 280))
            else:
                times[key] = ago(2, 92)

        # stories
        drafts: dict[str, _Draft] = {}
        for key, writer, outlet, event, follow in _STORIES:
            d = writer(ctx, world, times[key].astimezone(timezone(timedelta(hours=_STYLE[outlet].tz_hours))))
            drafts[key] = d
            paras = list(d.paras)
            if d.dateline:
                paras[0] = f"{d.dateline.upper()} ({_ABBR[outlet]}) \u2014 {paras[0]}"
            author = prng.choice(reporters[outlet]).full
            self.stories[key] = DemoStory(
                story_id=key,
                outlet=outlet,
                title=d.headline,
                published_at=times[key],
                paragraphs=tuple(paras),
                section=d.section,
                tags=d.tags,
                author=author,
                event_id=event or key,
                follow_up_of=follow,
            )

        self.outlets = []
        for s in _STYLES:
            names = [s.slug] + (["metro-ledger-top"] if s.slug == "metro-ledger" else [])
            self.outlets.append(DemoOutlet(s.slug, s.name, s.kind, tuple(names)))
        fmt = {
            "continental-wire": ("/continental-wire/feed.json", "jsonfeed"),
            "daily-courier": ("/daily-courier/feed.xml", "rss"),
            "metro-ledger": ("/metro-ledger/feed.xml", "rss"),
            "metro-ledger-top": ("/metro-ledger/top/feed.xml", "rss"),
            "harbor-herald": ("/harbor-herald/feed.xml", "atom"),
            "northfield-observer": ("/northfield-observer/feed.xml", "rss"),
            "newsflow-markets": ("/newsflow-markets/feed.xml", "rss"),
        }
        self.feeds = [DemoFeed(n, *fmt[n]) for o in self.outlets for n in o.feeds]

        # pages: originals, then copies, then the two broken items
        raw: list[dict] = []
        used_paths: set[str] = set()
        counter = {"n": 0}

        def path_for(outlet: str, title: str, section: str, when: datetime) -> str:
            slug = _slugify(title)
            counter["n"] += 1
            num = 410000 + counter["n"] * 37 + prng.randint(0, 30)
            local = when.astimezone(timezone(timedelta(hours=_STYLE[outlet].tz_hours)))
            if outlet == "continental-wire":
                p = f"/continental-wire/stories/{local:%Y/%m/%d}/{slug}-{num}"
            elif outlet == "daily-courier":
                p = f"/daily-courier/news/{_slugify(section)}/{slug}.html"
            elif outlet == "metro-ledger":
                p = f"/metro-ledger/news/{local:%Y/%m}/{slug}"
            elif outlet == "harbor-herald":
                p = f"/harbor-herald/article/{num}/{slug}"
            elif outlet == "northfield-observer":
                p = f"/northfield-observer/{_slugify(section)}/{slug}-{num}.html"
            else:
                p = f"/newsflow-markets/news/{num}/{slug}"
            assert p not in used_paths, p
            used_paths.add(p)
            return p

        for key, _writer, outlet, _event, _follow in _STORIES:
            st, d = self.stories[key], drafts[key]
            raw.append(
                dict(
                    key=key,
                    outlet=outlet,
                    is_copy=False,
                    flags="",
                    title=st.title,
                    when=st.published_at,
                    paras=list(st.paragraphs),
                    author=st.author,
                    source=None,
                    dateline=f"{d.dateline.upper()} ({_ABBR[outlet]}) \u2014 " if d.dateline else None,
                )
            )
        for key, outlet, flags in _COPIES:
            st, d = self.stories[key], drafts[key]
            paras = list(st.paragraphs)
            dateline = f"{d.dateline.upper()} ({_ABBR[st.outlet]}) \u2014 " if d.dateline else None
            if "D" in flags and dateline:
                paras[0] = paras[0][len(dateline) :]
                dateline = None
            truncated = "T" in flags
            if truncated:
                paras = paras[: max(4, len(paras) - prng.randint(2, 3))]
            if "Y" in flags:
                for i in prng.sample(range(1, len(paras)), 2):
                    paras[i] = _typo(paras[i], prng)
            when = min(st.published_at + timedelta(minutes=prng.randint(20, 300)), now - timedelta(minutes=5))
            raw.append(
                dict(
                    key=key,
                    outlet=outlet,
                    is_copy=True,
                    flags=flags,
                    truncated=truncated,
                    title=d.alt_headline if "H" in flags else st.title,
                    when=when,
                    paras=paras,
                    author=None if outlet == "newsflow-markets" else st.author,
                    source=_STYLE[st.outlet].name,
                    dateline=dateline,
                )
            )

        specs: list[_Spec] = []
        for r in raw:
            st = self.stories[r["key"]]
            path = path_for(r["outlet"], r["title"], st.section, r["when"])
            style = _STYLE[r["outlet"]]
            has_jsonld = style.jsonld == "all" or (style.jsonld == "some" and len(specs) % 3 != 0)
            truth = DemoPage(
                path=path,
                outlet=r["outlet"],
                story_id=r["key"],
                is_copy=r["is_copy"],
                truncated=r.get("truncated", False),
                title=r["title"],
                published_at=r["when"],
                paragraphs=tuple(r["paras"]),
                status="ok",
                author=r["author"],
                site_name=style.name,
                syndicated_from=r["source"],
                headline_edited="H" in r["flags"],
                dateline_dropped="D" in r["flags"],
                has_typos="Y" in r["flags"],
                has_jsonld=has_jsonld,
                shows_render_date=style.render_date is not None,
                event_id=st.event_id,
                follow_up_of=st.follow_up_of,
                section=st.section,
                tags=st.tags,
                aliases=(f"{path}?{TRACKING_QUERY}",) if "U" in r["flags"] else (),
            )
            upd = min(r["when"] + timedelta(minutes=prng.choice((0, 0, 12, 45, 95, 160))), now)
            specs.append(
                _Spec(
                    truth=truth,
                    updated_at=upd,
                    caption=drafts[r["key"]].caption,
                    photo_credit=f"{photographers[r['outlet']].full}/{style.short}"
                    if not r["is_copy"]
                    else f"{photographers[st.outlet].full}/{_STYLE[st.outlet].short}",
                    dateline_prefix=r["dateline"],
                    views=prng.randint(180, 24000),
                    source_id=f"{prng.randint(10**9, 10**10 - 1)}",
                )
            )

        # the two broken items: a page that 404s and a page without an article
        gallery_when = now - timedelta(minutes=trng.randint(180, 600))
        video_when = now - timedelta(minutes=trng.randint(240, 900))
        broken = [
            DemoPage(
                path="/daily-courier/news/gallery/in-pictures-lantern-parade-lights-up-the-old-town.html",
                outlet="daily-courier",
                story_id="gallery-404",
                is_copy=False,
                truncated=False,
                title="In pictures: lantern parade lights up the old town",
                published_at=gallery_when,
                paragraphs=(),
                status="fetch_failed",
                site_name=_STYLE["daily-courier"].name,
                section="Local",
            ),
            DemoPage(
                path=f"/harbor-herald/video/{prng.randint(5000, 9000)}/harbour-regatta-highlights",
                outlet="harbor-herald",
                story_id="video-no-article",
                is_copy=False,
                truncated=False,
                title="Video: highlights from the harbour regatta",
                published_at=video_when,
                paragraphs=(),
                status="no_article",
                site_name=_STYLE["harbor-herald"].name,
                section="Video",
            ),
        ]
        for b in broken:
            specs.append(_Spec(truth=b, updated_at=b.published_at, caption="", photo_credit=""))

        # feeds: which pages each one lists
        by_outlet: dict[str, list[_Spec]] = {}
        for sp in specs:
            by_outlet.setdefault(sp.truth.outlet, []).append(sp)
        for lst in by_outlet.values():
            lst.sort(key=lambda sp: (sp.truth.published_at, sp.truth.path), reverse=True)
        feed_pages: dict[str, list[_Spec]] = {o: list(lst) for o, lst in by_outlet.items()}
        ledger_ok = [sp for sp in by_outlet["metro-ledger"] if sp.truth.status == "ok"]
        top = [sp for sp in ledger_ok if sp.truth.aliases]
        top += [sp for sp in ledger_ok if not sp.truth.is_copy][:3]
        for sp in top:
            if not sp.truth.aliases:
                sp.truth = _replace(sp.truth, aliases=(f"{sp.truth.path}?{TRACKING_QUERY}",))
        feed_pages["metro-ledger-top"] = sorted(
            top, key=lambda sp: (sp.truth.published_at, sp.truth.path), reverse=True
        )
        for f in self.feeds:
            items = []
            for i, sp in enumerate(feed_pages[f.name]):
                p = sp.truth.path
                if f.name == "metro-ledger":  # relative links: root-relative, and a few path-relative
                    link = p[len("/metro-ledger/") :] if i % 3 == 1 else p
                elif f.name == "metro-ledger-top":
                    link = f"{{base}}{p}?{TRACKING_QUERY}"
                else:
                    link = f"{{base}}{p}"
                items.append((p, link))
                sp.truth = _replace(sp.truth, feeds=(*sp.truth.feeds, f.name))
            self._feed_items[f.name] = items

        # render-only links: read also, related, recent
        for sp in specs:
            if sp.truth.status == "fetch_failed":
                continue
            mates = [m for m in by_outlet[sp.truth.outlet] if m is not sp and m.truth.status == "ok"]
            if mates:
                sp.read_also = prng.choice(mates).truth.path
                sp.related = tuple(m.truth.path for m in prng.sample(mates, min(3, len(mates))))
                sp.recent = tuple(m.truth.path for m in mates[:6])
            if sp.truth.outlet == "newsflow-markets":
                local = sp.truth.published_at.astimezone(timezone(timedelta(hours=3)))
                sp.tracking_id = f"NFMN{local:%d%m%Y}{prng.randint(10**11, 10**12 - 1)}ID{sp.source_id}"

        self._specs = {sp.truth.path: sp for sp in specs}
        self.pages = [sp.truth for sp in specs]

    # ---- rendering -------------------------------------------------------------------------------

    def _render_site(self, base: str) -> dict[str, Resource]:
        site: dict[str, Resource] = {}
        html_type = "text/html; charset=utf-8"

        def put(path: str, body: str, ctype: str, modified: datetime | None) -> None:
            data = body.encode("utf-8")
            site[path] = Resource(data, ctype, 200, modified or self.now, _etag(data))

        for path, sp in self._specs.items():
            if sp.truth.status == "fetch_failed":
                continue
            body = (
                self._render_video(sp, base)
                if sp.truth.status == "no_article"
                else self._render_article(sp, base)
            )
            put(path, body, html_type, sp.updated_at)
        for f in self.feeds:
            body, ctype = self._render_feed(f, base)
            newest = max(self._specs[p].updated_at for p, _ in self._feed_items[f.name])
            put(f.path, body, ctype, newest)
        for s in _STYLES:
            put(f"/{s.slug}/", self._render_home(s, base), html_type, None)
        put("/", self._render_index(base), html_type, None)
        put(
            "/robots.txt", "User-agent: *\nDisallow: /private/\nAllow: /\n", "text/plain; charset=utf-8", None
        )
        put(
            "/private/staff-rota.html",
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Staff only</title></head>'
            "<body><h1>Staff rota</h1><p>Robots.txt disallows this page; a polite crawler never asks for it."
            "</p></body></html>",
            html_type,
            None,
        )
        return site

    def not_found(self, base_url: str = "") -> Resource:
        body = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>404 Not Found</title></head>'
            "<body><h1>Page not found</h1><p>The page you requested does not exist or has been moved.</p>"
            f'<p><a href="{_e(base_url)}/">Back to the front page</a></p></body></html>'
        ).encode()
        return Resource(body, "text/html; charset=utf-8", 404)

    # pieces shared by the templates

    def _local(self, d: datetime, style: _Style) -> datetime:
        return d.astimezone(timezone(timedelta(hours=style.tz_hours)))

    def _ago(self, d: datetime) -> str:
        hours = int((self.now - d).total_seconds() // 3600)
        if hours < 1:
            return "less than an hour ago"
        if hours < 48:
            return f"{hours} hour{'s' if hours != 1 else ''} ago"
        return f"{hours // 24} days ago"

    def _head(self, sp: _Spec, style: _Style, base: str) -> list[str]:
        t = sp.truth
        url = f"{base}{t.path}"
        desc = _summary(t.paragraphs[0][len(sp.dateline_prefix or "") :] if t.paragraphs else t.title)
        out = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(t.title)} | {_e(style.name)}</title>",
            f'<link rel="canonical" href="{_e(url)}">',
            f'<meta name="description" content="{_e(desc)}">',
            f'<meta property="og:type" content="{"video.other" if t.status == "no_article" else "article"}">',
            f'<meta property="og:title" content="{_e(t.title)}">',
            f'<meta property="og:description" content="{_e(desc)}">',
            f'<meta property="og:url" content="{_e(url)}">',
            f'<meta property="og:site_name" content="{_e(style.name)}">',
            f'<meta property="og:image" content="{_e(base)}/static/img/{_slugify(t.title, 4)}.jpg">',
            '<meta name="twitter:card" content="summary_large_image">',
        ]
        if style.pub_meta:
            out += [
                f'<meta property="article:published_time" content="{_iso(t.published_at, style.tz_hours)}">',
                f'<meta property="article:modified_time" content="{_iso(sp.updated_at, style.tz_hours)}">',
            ]
        out.append(f'<meta property="article:section" content="{_e(t.section)}">')
        out += [f'<meta property="article:tag" content="{_e(tag)}">' for tag in t.tags]
        if t.author:
            out.append(f'<meta name="author" content="{_e(t.author)}">')
        feed = next(f for f in self.feeds if f.name == style.slug)
        ftype = {
            "rss": "application/rss+xml",
            "atom": "application/atom+xml",
            "jsonfeed": "application/feed+json",
        }
        out.append(
            f'<link rel="alternate" type="{ftype[feed.format]}" title="{_e(style.name)}" href="{feed.path}">'
        )
        if t.has_jsonld:
            ld = {
                "@context": "https://schema.org",
                "@type": "NewsArticle",
                "headline": t.title,
                "datePublished": _iso(t.published_at, style.tz_hours),
                "dateModified": _iso(sp.updated_at, style.tz_hours),
                "author": [{"@type": "Person", "name": t.author}]
                if t.author
                else {"@type": "Organization", "name": t.syndicated_from or style.name},
                "publisher": {
                    "@type": "Organization",
                    "name": style.name,
                    "logo": {"@type": "ImageObject", "url": f"{base}/{style.slug}/logo.png"},
                },
                "mainEntityOfPage": {"@type": "WebPage", "@id": url},
                "image": [f"{base}/static/img/{_slugify(t.title, 4)}.jpg"],
                "articleSection": t.section,
                "keywords": list(t.tags),
                "inLanguage": "en",
                "description": desc,
            }
            blob = json.dumps(ld, ensure_ascii=False, indent=1).replace("</", "<\\/")
            out.append(f'<script type="application/ld+json">\n{blob}\n</script>')
        out += [
            "<style>body{font-family:Georgia,serif;max-width:60rem;margin:auto}"
            ".ad-slot{background:#eee;text-align:center;font:12px sans-serif}"
            "nav ul{list-style:none;display:flex;gap:1em}</style>",
            "</head>",
        ]
        return out

    def _top(self, style: _Style, base: str) -> list[str]:
        home = f"/{style.slug}/"
        out = ['<body class="article-page">']
        bar = ['<div class="top-bar">']
        if style.render_date:
            today = self.now if "GMT" in style.render_date else self._local(self.now, style)
            bar.append(f'<span class="today">{today.strftime(style.render_date)}</span>')
        langs = " | ".join(
            f'<a href="?lang={lang.lower()}" hreflang="{lang.lower()}">{lang}</a>' for lang in style.languages
        )
        bar.append(f'<div class="lang-switcher">{langs}</div>')
        bar.append('<a class="subscribe" href="#subscribe">Subscribe</a> <a href="#login">Sign in</a></div>')
        out += bar
        nav = "".join(f'<li><a href="{home}?section={_slugify(n)}">{_e(n)}</a></li>' for n in style.nav)
        out += [
            '<header class="site-header">',
            f'<a class="logo" href="{home}">{_e(style.name)}</a>',
            f'<nav class="main-nav" aria-label="Sections"><ul>{nav}</ul></nav>',
            "</header>",
            f'<div id="cookie-banner" class="cookie-consent" role="dialog"><p>{_COOKIE}</p>'
            '<button type="button">Accept all</button> <button type="button">Manage preferences</button></div>',
        ]
        return out

    def _footer(self, style: _Style) -> list[str]:
        year = self.now.year
        return [
            '<footer class="site-footer">',
            '<nav class="footer-nav"><ul><li><a href="#about">About us</a></li><li><a href="#contact">Contact</a>'
            '</li><li><a href="#advertise">Advertise</a></li><li><a href="#privacy">Privacy policy</a></li>'
            '<li><a href="#terms">Terms of use</a></li><li><a href="#cookies">Cookie settings</a></li></ul></nav>',
            f"<p>&copy; {year} {_e(style.legal.rstrip('.'))}. All rights reserved.</p>",
            "</footer>",
            "</body>",
            "</html>",
        ]

    def _lists(self, sp: _Spec, style: _Style) -> list[str]:
        out = [f'<aside class="related"><h2>{_e(style.related_title)}</h2><ul>']
        for p in sp.related:
            o = self._specs[p]
            out.append(
                f'<li><a href="{p}">{_e(o.truth.title)}</a> <span class="ago">{self._ago(o.truth.published_at)}'
                "</span></li>"
            )
        out.append("</ul></aside>")
        out.append(f'<aside class="recent-news"><h2>{_e(style.recent_title)}</h2><ul>')
        for p in sp.recent:
            o = self._specs[p]
            hhmm = self._local(o.truth.published_at, style).strftime("%H:%M")
            out.append(f'<li><span class="time">{hhmm}</span> <a href="{p}">{_e(o.truth.title)}</a></li>')
        out.append("</ul></aside>")
        return out

    def _render_article(self, sp: _Spec, base: str) -> str:
        t, style = sp.truth, _STYLE[sp.truth.outlet]
        local = self._local(t.published_at, style)
        words = sum(len(p.split()) for p in t.paragraphs)
        out = self._head(sp, style, base) + self._top(style, base)
        section_link = f"/{style.slug}/?section={_slugify(t.section)}"
        out.append(
            f'<nav class="breadcrumbs" aria-label="Breadcrumb"><a href="/{style.slug}/">Home</a> &rsaquo; '
            f'<a href="/{style.slug}/?section=news">News</a> &rsaquo; <a href="{section_link}">{_e(t.section)}</a>'
            "</nav>"
        )
        wrap_open = (
            '<main>\n<article class="story">'
            if style.layout == "article"
            else ('<div id="content" class="container"><div class="post single">')
        )
        wrap_close = "</article>\n" if style.layout == "article" else "</div>\n"
        out.append(wrap_open)
        out.append(f'<h1 class="headline">{_e(t.title)}</h1>')
        meta = []
        if t.author:
            credit = f" | {_e(t.syndicated_from)}" if t.syndicated_from else ""
            meta.append(
                f'<span class="byline">{style.byline.format(name=f"<a rel=author href=#>{_e(t.author)}</a>")}'
                f"{credit}</span>"
            )
        meta.append(
            f'<time class="published" datetime="{_iso(t.published_at, style.tz_hours)}">'
            f"{local:%d %B %Y, %H:%M}</time>"
        )
        meta.append(f'<span class="updated">Last update: {self._ago(sp.updated_at)}</span>')
        if style.min_read:
            meta.append(f'<span class="read-time">{max(1, math.ceil(words / 220))} min read</span>')
        if style.views:
            meta.append(f'<span class="views">{_n(sp.views)} Views</span>')
        out.append('<div class="article-meta">' + " &middot; ".join(meta) + "</div>")
        out.append(
            '<div class="share-bar"><a href="#share">Share</a> <a href="#tweet">Tweet</a> '
            '<a href="#whatsapp">WhatsApp</a> <button type="button">Copy link</button></div>'
        )
        img = f"/static/img/{_slugify(t.title, 4)}.jpg"
        if not style.caption_in_body:
            out.append(
                f'<figure class="lead-image"><img src="{img}" alt="{_e(sp.caption)}" width="1200" height="675">'
                f'<figcaption>{_e(sp.caption)} <span class="credit">Photo: {_e(sp.photo_credit)}</span>'
                "</figcaption></figure>"
            )
        out.append('<div class="article-body" itemprop="articleBody">')
        inline = style.inline_boilerplate
        if inline:
            who = style.byline.format(name=t.author) if t.author else style.name
            if t.syndicated_from:
                who += f", {t.syndicated_from}"
            out.append(f"<p>{_e(who)}</p>")
            out.append(
                f"<p>{local:%d.%m.%Y %H:%M} | Last update: {self._ago(sp.updated_at)} | {_n(sp.views)} Views</p>"
            )
        if style.caption_in_body:
            out.append(f'<img src="{img}" alt="">')
            out.append(f"<p>{_e(sp.caption)} Photo: {_e(sp.photo_credit)}</p>")
        paras = list(t.paragraphs)
        read_also_at = max(2, len(paras) // 2)
        for i, para in enumerate(paras):
            text = _e(para)
            if i == 0 and style.kind == "aggregator":
                text = f"({style.short}- {_e(t.syndicated_from or style.name)}) {text}"
            out.append(f"<p>{text}</p>")
            if i in (1, 4) and i < len(paras) - 1:
                if inline:
                    out.append(f"<p>{_e(style.ad_label)}</p>")
                else:
                    out.append(
                        f'<div class="ad-slot" aria-hidden="true"><span>{_e(style.ad_label)}</span></div>'
                    )
            if i == read_also_at - 1 and sp.read_also:
                other = self._specs[sp.read_also].truth
                out.append(f'<p>{_e(style.read_also)} <a href="{other.path}">{_e(other.title)}</a></p>')
        if style.kind == "aggregator":
            out += [
                "<p>Archive photo</p>",
                f"<p>{sp.tracking_id}</p>",
                f"<p>{_e(t.syndicated_from or '')}</p>",
                "<p><strong>Legal Disclaimer:</strong></p>",
                f"<p>{_e(_DISCLAIMER)}</p>",
            ]
        if inline:
            out.append(f"<p>{_e(style.follow)}</p>")
            out.append(f"<p>{_e(style.patron)}</p>")
        out.append("</div>")
        tags = ", ".join(f'<a href="/{style.slug}/?tag={_slugify(tag)}">{_e(tag)}</a>' for tag in t.tags)
        out.append(f'<p class="tags">Tags: {tags}</p>')
        out.append(
            '<div class="share-bar bottom"><span>Share this article:</span> <a href="#share">Share</a> '
            '<a href="#tweet">Tweet</a> <button type="button">Copy link</button></div>'
        )
        if not inline:
            out.append(f'<div class="follow-us">{_e(style.follow)}</div>')
        if style.patron and not inline:
            out.append(
                f'<aside class="support-us"><p>{_e(style.patron)}</p><a href="#patron">Support us</a></aside>'
            )
        out.append(wrap_close)
        out += self._lists(sp, style)
        out.append("</main>" if style.layout == "article" else "</div>")
        out += self._footer(style)
        return "\n".join(out) + "\n"

    def _render_video(self, sp: _Spec, base: str) -> str:
        t, style = sp.truth, _STYLE[sp.truth.outlet]
        out = self._head(sp, style, base) + self._top(style, base)
        out.append(
            f'<nav class="breadcrumbs"><a href="/{style.slug}/">Home</a> &rsaquo; <a href="/{style.slug}/?section='
            'video">Video</a></nav>'
        )
        out.append(f'<div id="content" class="container video-page"><h1>{_e(t.title)}</h1>')
        out.append(
            f'<div class="video-player" data-src="/{style.slug}/media/regatta.m3u8"><noscript>Enable JavaScript '
            "to play this video.</noscript></div>"
        )
        out.append(
            '<div class="share-bar"><a href="#share">Share</a> <button type="button">Copy link</button></div>'
        )
        out += self._lists(sp, style)
        out.append("</div>")
        out += self._footer(style)
        return "\n".join(out) + "\n"

    def _render_home(self, style: _Style, base: str) -> str:
        items = [
            sp for sp in self._specs.values() if sp.truth.outlet == style.slug and sp.truth.status == "ok"
        ]
        items.sort(key=lambda sp: sp.truth.published_at, reverse=True)
        lis = "\n".join(f'<li><a href="{sp.truth.path}">{_e(sp.truth.title)}</a></li>' for sp in items)
        feeds = " ".join(
            f'<a href="{f.path}">{f.name} ({f.format})</a>'
            for f in self.feeds
            if f.name.startswith(style.slug)
        )
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(style.name)}</title></head>'
            f"<body><h1>{_e(style.name)}</h1><p>Feeds: {feeds}</p><ul>\n{lis}\n</ul></body></html>\n"
        )

    def _render_index(self, base: str) -> str:
        lis = "\n".join(
            f'<li><a href="/{o.slug}/">{_e(o.name)}</a> ({o.kind}): '
            + ", ".join(f'<a href="{f.path}">{f.name}</a>' for f in self.feeds if f.name in o.feeds)
            + "</li>"
            for o in self.outlets
        )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>newsingest demo web</title></head>'
            "<body><h1>newsingest demo web</h1><p>Made-up outlets with made-up news, generated for the demo.</p>"
            f"<ul>\n{lis}\n</ul></body></html>\n"
        )

    # feeds

    def _render_feed(self, f: DemoFeed, base: str) -> tuple[str, str]:
        items = [(self._specs[p], link.replace("{base}", base)) for p, link in self._feed_items[f.name]]
        return self._render_feed_doc(f, items, base)

    def _render_feed_doc(
        self,
        f: DemoFeed,
        items: list[tuple[_Spec, str]],
        base: str,
        *,
        title: str | None = None,
        ttl_minutes: int | None = 15,
    ) -> tuple[str, str]:
        """A feed document listing ``items`` (spec, link as written), newest first (also for live.py)."""
        slug = f.path.split("/")[1]
        style = _STYLE[slug]
        newest = max((sp.updated_at for sp, _ in items), default=self.now)
        title = title or style.name + (" - Top stories" if f.name.endswith("-top") else "")
        home = f"{base}/{slug}/"

        def teaser(sp: _Spec) -> str:
            t = sp.truth
            if not t.paragraphs:
                return t.title
            return _summary(t.paragraphs[0][len(sp.dateline_prefix or "") :])

        if f.format == "jsonfeed":
            doc = {
                "version": "https://jsonfeed.org/version/1.1",
                "title": title,
                "home_page_url": home,
                "feed_url": f"{base}{f.path}",
                "description": f"Latest stories from {style.name}",
                "language": "en",
                "authors": [{"name": style.name}],
                "items": [
                    {
                        "id": f"urn:{slug}:{_slugify(sp.truth.story_id)}",
                        "url": link,
                        "title": sp.truth.title,
                        "content_text": teaser(sp),
                        "summary": teaser(sp),
                        "date_published": _iso(sp.truth.published_at, style.tz_hours),
                        "date_modified": _iso(sp.updated_at, style.tz_hours),
                        "authors": [{"name": sp.truth.author or style.name}],
                        "tags": list(sp.truth.tags),
                        "language": "en",
                    }
                    for sp, link in items
                ],
            }
            return json.dumps(
                doc, ensure_ascii=False, indent=2
            ) + "\n", "application/feed+json; charset=utf-8"

        if f.format == "atom":
            out = [
                '<?xml version="1.0" encoding="utf-8"?>',
                '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">',
                f"<title>{_e(title)}</title>",
                "<subtitle>News from the coast</subtitle>",
                f'<link rel="self" type="application/atom+xml" href="{_e(base + f.path)}"/>',
                f'<link rel="alternate" type="text/html" href="{_e(home)}"/>',
                f"<id>{_e(home)}</id>",
                f"<updated>{_iso(newest, style.tz_hours)}</updated>",
                f"<author><name>{_e(style.name)}</name></author>",
            ]
            for sp, link in items:
                t = sp.truth
                out += [
                    "<entry>",
                    f"<title>{_e(t.title)}</title>",
                    f'<link rel="alternate" type="text/html" href="{_e(link)}"/>',
                    f"<id>tag:harbor-herald.demo,{t.published_at:%Y-%m-%d}:{_e(t.path.split('/')[3])}</id>",
                    f"<published>{_iso(t.published_at, style.tz_hours)}</published>",
                    f"<updated>{_iso(sp.updated_at, style.tz_hours)}</updated>",
                    f"<author><name>{_e(t.author or style.name)}</name></author>",
                    *[f'<category term="{_e(tag)}"/>' for tag in t.tags],
                    f'<summary type="text">{_e(teaser(sp))}</summary>',
                    "</entry>",
                ]
            out.append("</feed>")
            return "\n".join(out) + "\n", "application/atom+xml; charset=utf-8"

        tz = timezone(timedelta(hours=style.tz_hours))
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">',
            "<channel>",
            f"<title>{_e(title)}</title>",
            f"<link>{_e(home)}</link>",
            f"<description>Latest news from {_e(style.name)}</description>",
            "<language>en</language>",
            f"<lastBuildDate>{format_datetime(newest.astimezone(tz))}</lastBuildDate>",
            f'<atom:link href="{_e(base + f.path)}" rel="self" type="application/rss+xml"/>',
        ]
        if ttl_minutes is not None:
            out.append(f"<ttl>{ttl_minutes}</ttl>")
        for sp, link in items:
            t = sp.truth
            out += ["<item>", f"<title>{_e(t.title)}</title>", f"<link>{_e(link)}</link>"]
            if slug in ("daily-courier", "newsflow-markets"):
                out.append(
                    f'<guid isPermaLink="false">{style.short.lower()}-{_stable_int(t.path) % 10**9}</guid>'
                )
            elif f.name == "metro-ledger":
                out.append(f'<guid isPermaLink="false">metro-ledger:{_e(t.path)}</guid>')
            else:
                out.append(f'<guid isPermaLink="true">{_e(link)}</guid>')
            out.append(f"<pubDate>{format_datetime(t.published_at.astimezone(tz))}</pubDate>")
            if t.author:
                out.append(f"<dc:creator>{_e(t.author)}</dc:creator>")
            out += [f"<category>{_e(tag)}</category>" for tag in t.tags]
            out += [f"<description>{_e(teaser(sp))}</description>", "</item>"]
        out += ["</channel>", "</rss>"]
        return "\n".join(out) + "\n", "application/rss+xml; charset=utf-8"


def _stable_int(text: str) -> int:
    """A stable integer hash (``hash()`` of a str changes between interpreter runs)."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:6], "big")


def _replace(page: DemoPage, **changes: object) -> DemoPage:
    from dataclasses import replace

    return replace(page, **changes)  # type: ignore[arg-type]
