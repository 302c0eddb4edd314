"""Text-level boilerplate removal: the `clean` stage.

Runs after HTML extraction and on plain-text input. The text is handled line by line (one paragraph per
line); every removed line is recorded with the name of the rule that removed it, so a decision can always
be explained. Two mechanisms:

1. Rules for what is boilerplate on every site (`classify_line` for the context-free ones, plus rules that
   need the position of a line: title, page-render date, breadcrumb runs, the paragraph after a
   "Disclaimer" heading, headline lists after a "RECENT NEWS" heading or after the body has ended).
2. `SiteTemplate`: what repeats across *different* articles of one site is page furniture. It is kept as
   per-site state (`to_dict` / `from_dict`) between runs.

Metadata leaves the body: the title, bylines (authors and date), syndication credits ("(MENAFN- X) ", and
a wire or outlet credited in a byline: "By Jane Roe, Continental Press Wire") and the date encoded in
MENAFN tracking ids. Publication date precedence: byline > tracking id > a date-only line between title and
body; a date line above the title is the page-render date and is never used.

Time zones: a time that states its zone ("19:16 GMT", "10:30 +02:00") becomes an aware UTC datetime. A
time that does not ("Thursday, 12 December 2024, 19:16") is the outlet's local wall-clock time in a zone
the text does not give; it is returned as a *naive* datetime (ISO 8601 without an offset), never silently
labelled UTC. The pipeline prefers a zoned date from the page or the feed over it and stores it as UTC
only as a last resort (`published_source` "text").

Safety principle: removing a real paragraph is worse than leaking a footer. Rules match whole lines with
narrow patterns, and patterns that could also describe a sentence (cookies, copyright, disclaimers,
calls to action) refuse lines that report speech ("..., the minister said."). Site-template evidence is
only applied outside the span of body paragraphs (header and tail), and long sentence-like lines need
much more evidence than short ones. Topical section names ("Europe") between two body paragraphs are
subheadings and stay; a run of headline-like lines after the body goes only when the body visibly ended
before it (furniture removed), when it carries clock times, or when it is long.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import numpy as np

from pipeline.records import pickled_by_fields

__all__ = [
    "REASONS",
    "CleanResult",
    "SiteTemplate",
    "TemplateProbe",
    "byline_credit",
    "classify_line",
    "clean_documents",
    "clean_text",
    "is_outlet_credit",
    "line_keys",
    "normalize_line",
    "preclean_text",
]

# Every reason a line can be removed for (the `removed` record uses these names).
REASONS: dict[str, str] = {
    "title": "the title line: moved to the `title` field",
    "repeated_title": "a line equal to the title, below it",
    "page_date": "a date line above the title (page-render date, not the publication date)",
    "date_line": "a date-only line between title and body: moved to `published_at`",
    "byline": "author names (and date): moved to `authors` / `published_at`",
    "syndication_credit": "'(MENAFN- Source)' prefix or a bare source line: moved to `syndicated_from`",
    "ad_label": "'Advertisement', 'Sponsored content', 'Story continues below'",
    "call_to_action": "follow / subscribe / donate / support / share calls, social-button bars",
    "related_link": "'Read also: <headline>' lines",
    "related_heading": "headings of related-headline lists ('Read more', 'Related', 'RECENT NEWS', 'All News', 'More from X')",
    "headline_list": "items of a list of other articles' headlines",
    "clock_time": "a bare clock time ('22:36') in a headline list",
    "cookie_consent": "cookie / consent banner text and buttons",
    "copyright": "copyright and reprint notices",
    "legal_disclaimer": "a 'Disclaimer' heading, the paragraph after it, or a standalone disclaimer",
    "photo_credit": "photo credits and captions ('Archive photo', '- NATO - Archive', 'Photo: X')",
    "breadcrumb": "breadcrumb navigation ('1. HOME', '2. WORLD', 'Home > World')",
    "counter": "freshness, read-time and view counters ('Last update: 3 days ago', '2 min read')",
    "tracking_id": "tracking ids and hashes on a line of their own",
    "language_switcher": "language switchers ('Укр Рус Eng')",
    "tag_line": "tag lines ('Tags: a, b', concatenated tags 'NATOwarPutin')",
    "section_label": "bare section and navigation labels ('WORLD', 'All Sections', 'Search')",
    "site_template": "a line seen in many different articles of the same site (learned)",
}

# --------------------------------------------------------------------------------------------------------
# Normalisation and line shape
# --------------------------------------------------------------------------------------------------------

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_BULLET_RE = re.compile(r"^(?:[•·▪●◦‣∙■□➤►▶✓✔]\s*|\*\s+)+")
_WS_RE = re.compile(r"\s+")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_CLOSERS = "\"'”’»)]›」』"
_TERMINALS = ".!?…。！？"
_REPORTING_RE = re.compile(
    r"\b(?:said|says|say|told|tells|ruled|according to|reported|stated|added|noted|argued|claimed|"
    r"announced|warned|insisted|confirmed|urged|wrote|explained)\b",
    re.I,
)


def single_spaced(s: str) -> str:
    r"""Runs of whitespace as one space, none at the ends: `_WS_RE.sub(" ", s).strip()`, several times faster
    (str.split() splits at exactly the characters `\s` matches: tests/test_clean.py checks every one)."""
    return " ".join(s.split())


@lru_cache(maxsize=1024)  # a line is looked at as it is, stripped, and as its core: mostly one string
def _core(line: str) -> str:
    """The line for matching: NFKC, no zero-width characters, no leading bullet, single spaces."""
    s = unicodedata.normalize("NFKC", line).translate(_ZERO_WIDTH).strip()
    s = _BULLET_RE.sub("", s)
    return single_spaced(s)


def _strip_edges(s: str) -> str:
    """Strip everything that is not a letter or digit from both ends."""
    i, j = 0, len(s)
    while i < j and not s[i].isalnum():
        i += 1
    while j > i and not s[j - 1].isalnum():
        j -= 1
    return s[i:j]


def normalize_line(line: str) -> str:
    """The key a line is compared under (title matching, site templates): casefolded core text
    without leading/trailing punctuation. Whole lines are compared, never substrings."""
    return _strip_edges(_core(line).casefold())


@lru_cache(maxsize=8192)
def _words(s: str) -> int:
    # CJK scripts have no spaces: count about two characters as a word.
    if s.isascii():
        return len(s.split())
    return len(s.split()) + len(_CJK_RE.findall(s)) // 2


def _last_char(s: str) -> str:
    t = s.rstrip(_CLOSERS + " ")
    return t[-1] if t else ""


def _is_paragraph(core: str) -> bool:
    """A line that reads like running text (a body paragraph), not a heading or a label."""
    w = _words(core)
    if w >= 25:
        return True
    last = _last_char(core)
    if last in ".…。" and w >= 6:
        return True
    return last in "!?！？" and w >= 20


def _is_long_sentence(core: str) -> bool:
    w = _words(core)
    return w >= 25 or (w >= 12 and _last_char(core) in _TERMINALS)


def _first_letter_is_lower(core: str) -> bool:
    for ch in core:
        if ch.isalpha():
            return ch.islower()
    return False


def _is_headline_like(core: str) -> bool:
    """A title-like line: 3-30 words, no sentence-final period, comma, colon or semicolon."""
    w = _words(core)
    if not 3 <= w <= 30 or len(core) > 250:
        return False
    if _last_char(core) in ".,;:…。" or _is_paragraph(core):
        return False
    return not _first_letter_is_lower(core)


def _ends_with_dash(core: str) -> bool:
    return core.rstrip().endswith(("-", "–", "—"))


def _is_dateline(core: str) -> bool:
    """A wire dateline on its own line ('Brussels, December 2 (European Press) –'): body, never removed
    by learned templates and never a title."""
    return _ends_with_dash(core) and _words(core) <= 12 and not _first_letter_is_lower(core)


def _is_short_label(core: str) -> bool:
    return 1 <= _words(core) <= 3 and len(core) <= 40 and _last_char(core) not in _TERMINALS + ",;:"


_CLOCK_RE = re.compile(r"^\d{1,2}(?::\d{2}|h\d{2})(?:\s?[ap]\.?m\.?)?$", re.I)

# --------------------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------------------

_MONTHS: dict[str, int] = {
    # English
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
    # German
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "mai": 5, "juni": 6, "juli": 7, "oktober": 10,
    "dezember": 12,
    # French
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "juin": 6, "juillet": 7, "août": 8,
    "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12, "decembre": 12,
    # Spanish
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7, "agosto": 8,
    "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
    # Ukrainian and Russian (genitive, as used in dates)
    "січня": 1, "лютого": 2, "березня": 3, "квітня": 4, "травня": 5, "червня": 6, "липня": 7,
    "серпня": 8, "вересня": 9, "жовтня": 10, "листопада": 11, "грудня": 12,
    "января": 1, "февраля": 2, "марта": 3, "апреля": 4, "мая": 5, "июня": 6, "июля": 7, "августа": 8,
    "сентября": 9, "октября": 10, "ноября": 11, "декабря": 12,
}  # fmt: skip
_WEEKDAYS_FULL = (
    "monday tuesday wednesday thursday friday saturday sunday "
    "montag dienstag mittwoch donnerstag freitag samstag sonntag "
    "lundi mardi mercredi jeudi vendredi samedi dimanche "
    "lunes martes miércoles jueves viernes sábado domingo "
    "понеділок вівторок середа четвер п'ятниця п’ятниця субота неділя "
    "понедельник вторник среда четверг пятница суббота воскресенье"
).split()
_WEEKDAYS_ABBR = "mon tue tues wed thu thur thurs fri sat sun".split()
_WEEKDAY_WORDS = frozenset(_WEEKDAYS_FULL + _WEEKDAYS_ABBR)


def _alt(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_MON = rf"(?P<mon>{_alt(_MONTHS)})\.?"
# Full weekday names may be glued to a preceding word ("ROMANENKOThursday"); abbreviations may not.
_WEEKDAY_BEFORE_RE = re.compile(
    rf"(?:(?:{_alt(_WEEKDAYS_FULL)})|\b(?:{_alt(_WEEKDAYS_ABBR)})\.?)\s*,?\s*$", re.I
)
_DATE_RES = (
    re.compile(rf"(?<!\d)(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?{_MON},?\s+(?P<y>\d{{4}})(?!\d)", re.I),
    re.compile(rf"(?<![^\W\d_]){_MON}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})(?!\d)", re.I),
    re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})(?!\d)"),
    re.compile(r"(?<![\d.])(?P<d>\d{1,2})\.(?P<mo>\d{1,2})\.(?P<y>\d{4})(?!\d)"),
)
_TZ_HOURS = {
    "gmt": 0, "utc": 0, "z": 0, "cet": 1, "cest": 2, "eet": 2, "eest": 3, "bst": 1, "est": -5,
    "edt": -4, "cst": -6, "cdt": -5, "pst": -8, "pdt": -7, "msk": 3,
}  # fmt: skip
_TIME_AFTER_RE = re.compile(
    r"\s*(?:,|\||-|–|—|\bat\b|\bum\b|\bà\b|\bо\b|\bв\b|T)?\s*"
    r"(?P<h>\d{1,2})[:h](?P<mi>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ap>[ap]\.?\s?m\.?)?"
    r"(?:\s*\(?(?P<tz>(?:GMT|UTC)?\s*[+-]\d{1,2}(?::?\d{2})?|GMT|UTC|Z|"
    + _alt(k.upper() for k in _TZ_HOURS)
    + r")\b\)?)?",
    re.I,
)


_YEAR_RE = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")


@dataclass(slots=True)
class _DateHit:
    start: int
    end: int
    value: datetime


def _tz_offset(tz: str) -> timezone | None:
    t = tz.strip().upper().replace(" ", "")
    if t.lower() in _TZ_HOURS:
        return timezone(timedelta(hours=_TZ_HOURS[t.lower()]))
    m = re.fullmatch(r"(?:GMT|UTC)?([+-])(\d{1,2})(?::?(\d{2}))?", t)
    if not m:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    if minutes > 14 * 60:
        return None
    return timezone((-1 if m.group(1) == "-" else 1) * timedelta(minutes=minutes))


def _find_date(s: str) -> _DateHit | None:
    """The earliest absolute date (with an optional weekday before and time/zone after) in `s`.
    Times with a zone are converted to UTC (aware); dates and times without one are naive (local time)."""
    if not _YEAR_RE.search(s):
        return None
    best: _DateHit | None = None
    for rx in _DATE_RES:
        for m in rx.finditer(s):
            gd = m.groupdict()
            month = _MONTHS[gd["mon"].lower()] if gd.get("mon") else int(gd["mo"])
            try:
                value = datetime(int(gd["y"]), month, int(gd["d"]))
            except ValueError:
                continue
            if not 1990 <= value.year <= 2100:
                continue
            end, tz = m.end(), None
            t = _TIME_AFTER_RE.match(s, end)
            if t and int(t["h"]) < 24 and int(t["mi"]) < 60:
                hour = int(t["h"])
                if t["ap"]:
                    hour = hour % 12 + (12 if t["ap"].lower().startswith("p") else 0)
                value = value.replace(hour=hour, minute=int(t["mi"]), second=int(t["s"] or 0))
                end = t.end()
                if t["tz"]:
                    tz = _tz_offset(t["tz"])
            if tz is not None:
                value = value.replace(tzinfo=tz).astimezone(UTC)
            start = m.start()
            before = s[max(0, start - 16) : start]
            wd = _WEEKDAY_BEFORE_RE.search(before)
            if wd:
                start -= len(before) - wd.start()
            if best is None or start < best.start:
                best = _DateHit(start, end, value)
            break
    return best


_DATE_LABEL_RE = re.compile(
    r"^(?:published|posted|date|on|at|updated|last updated|modified|опубліковано|оновлено|дата|"
    r"опубликовано|обновлено|veröffentlicht|aktualisiert|publié le|publié|mis à jour|publicado|actualizado)$",
    re.I,
)
_UPDATED_LABEL_RE = re.compile(r"updat|modif|оновл|обновл|aktualis|mis à jour|actualiz", re.I)


def _date_only(core: str) -> tuple[_DateHit, bool] | None:
    """(date, is_update_label) when the line is nothing but a date (with an optional label)."""
    if _words(core) > 14:
        return None
    hit = _find_date(core)
    if hit is None:
        return None
    rest = (core[: hit.start] + " " + core[hit.end :]).strip(" \t,;:|-–—()[]·•/")
    if rest and not _DATE_LABEL_RE.match(rest):
        return None
    return hit, bool(rest and _UPDATED_LABEL_RE.search(rest))


# A MENAFN tracking id encodes the publication date as DDMMYYYY right after the prefix.
_MENAFN_ID_RE = re.compile(r"^MENAFN(?P<d>\d{2})(?P<m>\d{2})(?P<y>\d{4})\d*ID\d+$")


def _tracking_id_date(core: str) -> datetime | None:
    m = _MENAFN_ID_RE.match(core)
    if not m:
        return None
    try:
        value = datetime(int(m["y"]), int(m["m"]), int(m["d"]))  # a calendar date: no zone
    except ValueError:
        return None
    return value if 1990 <= value.year <= 2100 else None


# --------------------------------------------------------------------------------------------------------
# Bylines and syndication credits
# --------------------------------------------------------------------------------------------------------

_BYLINE_LABEL_RE = re.compile(
    r"^(?:(?:written|words|story|text)\s+by|by|authors?|autor(?:in|en)?|auteur|autore|автор(?:и|ы)?|"
    r"por|von)\b\s*[:\-–—]?\s*",
    re.I,
)
_NAME_SPLIT_RE = re.compile(r"\s*(?:,|;|&|\band\b|\bund\b|\bet\b|\bі\b|\bи\b|\bта\b)\s*", re.I)
_NAME_TOKEN_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’\-.])*$")
_NAME_PARTICLES = frozenset("van von de der den da di du la le del della bin ibn al el ben dos das do ter ten zu".split())
_NOT_NAME_WORDS = frozenset(
    "the a an said says and of in on at for with to from this that news is was are were".split()
) | _WEEKDAY_WORDS | frozenset(_MONTHS)


def _normalise_name(name: str) -> str:
    """Title-case ALL-CAPS name tokens ('VALENTYNA ROMANENKO' -> 'Valentyna Romanenko')."""
    out = []
    for tok in name.split():
        letters = [c for c in tok if c.isalpha()]
        if len(letters) >= 3 and all(c.isupper() for c in letters):
            tok = re.sub(r"[^\W\d_]+", lambda m: m.group(0).capitalize(), tok)
        out.append(tok)
    return " ".join(out)


def _split_names(part: str, *, labelled: bool) -> list[str] | None:
    part = part.strip(" ,;|·-–—")
    if not part:
        return None
    names = []
    for raw in _NAME_SPLIT_RE.split(part):
        raw = raw.strip(" ,;|·")
        if not raw:
            continue
        toks = raw.split()
        if not (1 if labelled else 2) <= len(toks) <= (5 if labelled else 4):
            return None
        capitalised = 0
        for tok in toks:
            low = tok.lower().strip(".")
            if not _NAME_TOKEN_RE.match(tok) or low in _NOT_NAME_WORDS:
                return None
            if tok[0].isupper():
                capitalised += 1
            elif low not in _NAME_PARTICLES:
                return None
        if capitalised == 0:
            return None
        names.append(_normalise_name(raw))
    if not 1 <= len(names) <= 6:
        return None
    return names


# Credits in a byline ("By Jane Roe, Reuters", "Author: Tom Ash | Continental Press Wire"): news agencies
# known by name, and organisation names that end like an outlet. Roles ("Staff Writer") are not credits.
_AGENCIES = frozenset(
    name.strip()
    for name in """reuters|associated press|ap|afp|agence france-presse|agence france presse|dpa|deutsche presse-agentur|
    bloomberg|bloomberg news|efe|agencia efe|ansa|xinhua|xinhua news agency|kyodo|kyodo news|jiji press|pa|
    pa media|press association|upi|united press international|ukrinform|interfax|interfax-ukraine|tass|ria novosti|
    yonhap|anadolu|anadolu agency|aa|ani|pti|press trust of india|ians|aap|australian associated press|cna|
    bernama|europa press|notimex|anp|belga|apa|tt|ntb|ritzau|stt|ctk|pap|mti|hina|bta|ata|mena|wafa|kuna|wam|
    spa|irna|ips|canadian press|the canadian press|cp|newsday|cnn wire|nexstar media wire""".split("|")
)
_OUTLET_ENDINGS = frozenset(
    "press wire newswire news agency service services media network networks syndicate times post herald "
    "tribune journal gazette courier chronicle observer telegraph guardian independent daily weekly radio tv "
    "television broadcasting ledger monitor dispatch express standard review bulletin record inquirer".split()
)
_STRONG_OUTLET_ENDINGS = frozenset(
    "wire newswire news agency service media network networks syndicate times tribune journal gazette "
    "chronicle telegraph radio tv television broadcasting".split()
)
_ROLE_WORDS = frozenset(
    "writer writers reporter reporters correspondent correspondents editor editors columnist contributor "
    "contributors staff desk producer analyst photographer photographers intern chief senior special associate "
    "managing executive freelance freelancer journalist author reporting editorial team bureau for to with in "
    "at from".split()
)
_CREDIT_SPLIT_RE = re.compile(r"\s*(?:[,|/]|\s[-–—]\s)\s*")
_TITLES = frozenset("MD PHD CEO CFO MP MEP QC KC JR SR II III IV RN DDS".split())


def is_outlet_credit(part: str) -> bool:
    """Whether a byline segment names a news agency or an outlet ("Reuters", "AP", "Continental Press
    Wire", "The Harbor Herald"), as opposed to a person or a role ("Staff Writer", "Special to X")."""
    words = _core(part).strip(" .:;").split()
    if not 1 <= len(words) <= 6:
        return False
    low = [w.lower().strip(".,'’") for w in words]
    if any(w in _ROLE_WORDS for w in low):
        return False
    key = " ".join(low)
    if key in _AGENCIES or key.removeprefix("the ") in _AGENCIES:
        return True
    if len(words) == 1:
        w = words[0].strip(".")
        # an unknown acronym of two or three letters ("CPW"); longer capitals are often a place ("KYIV")
        return w.isalpha() and w.isupper() and 2 <= len(w) <= 3 and w not in _TITLES
    if low[-1] not in _OUTLET_ENDINGS:
        return False
    if len(words) == 2 and low[0] != "the" and low[-1] not in _STRONG_OUTLET_ENDINGS:
        return False  # "Frank Press", "Heath Ledger": two words ending like an outlet may be a person
    return all(w[0].isupper() or w[0].isdigit() or lw in ("of", "the", "and", "&", "de", "for") for w, lw in zip(words, low, strict=True))


_ROLE_NOUNS = frozenset(
    "writer writers reporter reporters correspondent correspondents editor editors columnist contributor "
    "contributors staff producer analyst photographer intern journalist".split()
)


def _is_role(part: str) -> bool:
    """'Staff Writer', 'Senior Correspondent', 'Special to the Ledger', 'for The Courier'."""
    low = [w.lower().strip(".,") for w in part.split()]
    if not 1 <= len(low) <= 6:
        return False
    return any(w in _ROLE_NOUNS for w in low) or low[:2] == ["special", "to"] or low[0] == "for"


def _agency_prefix(part: str) -> str | None:
    """The news agency a role names ("AP National Political Writer" -> "AP", "Reuters correspondent")."""
    words = part.split()
    for n in (3, 2, 1):
        if len(words) > n and " ".join(w.lower().strip(".,") for w in words[:n]) in _AGENCIES:
            name = " ".join(words[:n])
            return name.upper() if len(name) <= 4 and name.isalpha() else name
    return None


def _split_credit(names_part: str) -> tuple[str, str | None]:
    """(names, credit) of a byline's name part: the last segment when it names an outlet, or the agency of a
    trailing role ("AP National Writer"); other roles ("Staff Writer") are dropped. A byline that is nothing
    but a news agency ("By Reuters") is all credit."""
    whole = _WS_RE.sub(" ", names_part).strip(" ,;|·-–—.")
    if whole and " ".join(w.lower() for w in whole.split()).removeprefix("the ") in _AGENCIES:
        return "", whole
    credit = None
    for _ in range(2):  # "Jane Roe, Staff Writer, Reuters"
        stripped = names_part.rstrip(" ,;|·-–—")
        parts = _CREDIT_SPLIT_RE.split(stripped.lstrip(" ,;|·-–—"))
        if len(parts) < 2:
            break
        last = parts[-1]
        if credit is None and is_outlet_credit(last):
            credit = _WS_RE.sub(" ", last).strip(" .")
        elif _is_role(last):
            credit = credit or _agency_prefix(last)
        else:
            break
        names_part = stripped[: stripped.rfind(last)].rstrip(" ,;|/·-–—")
    return names_part, credit


def byline_credit(byline: str) -> str | None:
    """The agency or outlet a byline credits ("By Jane Roe | Continental Press Wire" -> "Continental Press
    Wire"), or None (also for a role: "By Jane Roe, Staff Writer")."""
    core = _core(byline)
    if not core or _words(core) > 25:
        return None
    label = _BYLINE_LABEL_RE.match(core)
    rest = core[label.end() :] if label else core
    hit = _find_date(rest)
    if hit is not None and not rest[hit.end :].strip(" ,;|·-–—()"):
        rest = rest[: hit.start]
    return _split_credit(rest)[1]


def _same_outlet(a: str, b: str) -> bool:
    def key(x: str) -> str:
        return normalize_line(x).removeprefix("the ")

    return key(a) == key(b)


def _parse_byline(core: str) -> tuple[list[str], datetime | None, str | None] | None:
    """('Author: Jane Doe' | 'By A and B, Agency' | 'A , B<date>') -> (names, date, outlet credit) or None.

    Unlabelled lines count only when they are nothing but person names followed by a date."""
    if _words(core) > 25:
        return None
    label = _BYLINE_LABEL_RE.match(core)
    labelled = bool(label) and label.end() < len(core)
    if labelled and label.group(0).strip().lower() in {"by", "von", "por"} and not core[0].isupper():
        labelled = False
    rest = core[label.end() :] if labelled else core
    hit = _find_date(rest)
    if hit is not None and rest[hit.end :].strip(" ,;|·-–—()"):
        hit = None  # the date must end the line
    names_part = rest[: hit.start] if hit else rest
    if not labelled and hit is None:
        return None
    credit = None
    if labelled:
        names_part, credit = _split_credit(names_part)
        if credit and not names_part.strip():
            return [], hit.value if hit else None, credit  # "By Reuters"
    names = _split_names(names_part, labelled=labelled)
    if names is None:
        return None
    return names, hit.value if hit else None, credit


# Wire-copy tags in parentheses that are not syndication credits.
_NOT_AGGREGATORS = frozenset(
    "UPDATE UPDATED CORRECTED CORRECTION REFILE REPEAT EXCLUSIVE ANALYSIS BREAKING VIDEO PHOTO PHOTOS LIVE "
    "WATCH OPINION EDITORIAL INTERVIEW FACTBOX EXPLAINER".split()
)
_KNOWN_AGGREGATORS = frozenset({"MENAFN", "EMAILWIRE", "EMAILWIRE.COM"})
_SYNDICATION_RE = re.compile(
    r"^\(\s*(?P<agg>MENAFN|EMAILWIRE(?:\.COM)?|[A-Z][A-Z.]{3,20})\s*[-–—:]\s*(?P<src>[^()]{2,60}?)\s*\)\s*[-–—]?\s*"
)


def _normalise_source(src: str, text: str) -> str:
    """Normalise the casing of a syndication source ('UkrinForm' -> 'Ukrinform').

    The document's own running text is the evidence: the most frequent other spelling of the name wins
    (ALL-CAPS spellings only as a last resort). Without evidence, ALL-CAPS words longer than five
    letters are capitalised and everything else is kept."""
    src = single_spaced(src)
    pat = re.compile(r"(?<!\w)" + re.escape(src) + r"(?!\w)", re.I)
    variants = Counter(m.group(0) for m in pat.finditer(text) if m.group(0) != src)
    if variants:
        ranked = sorted(variants.items(), key=lambda kv: (kv[0].isupper(), -kv[1]))
        return ranked[0][0]
    return " ".join(w.capitalize() if w.isupper() and len(w) > 5 else w for w in src.split())


# --------------------------------------------------------------------------------------------------------
# Context-free line rules (each returns a reason name or None)
# --------------------------------------------------------------------------------------------------------


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


_TRACKING_RES = (
    re.compile(r"^(?=[A-Z0-9]*\d{8})[A-Z][A-Z0-9]{15,}$"),
    _rx(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    _rx(r"^[0-9a-f]{24,}$"),
    _rx(r"^(?:article|story|doc(?:ument)?|tracking|ref(?:erence)?)\s*(?:id|no\.?|number)?\s*[:#]\s*[\w-]{6,}$"),
)


def _rule_tracking_id(core: str) -> str | None:
    if " " in core and not core.lower().startswith(("article", "story", "doc", "tracking", "ref")):
        return None
    return "tracking_id" if any(rx.match(core) for rx in _TRACKING_RES) else None


_AD_RE = _rx(
    r"^(?:advertisements?|advertising|advert|ads?|sponsored(?: content| post| links?)?|paid (?:content|post)|"
    r"promoted(?: content)?|partner content|anzeige|werbung|publicité|publicidad|pubblicità|реклама|reklama|"
    r"(?:the )?(?:story|article) continues below(?: (?:this )?advertisement)?|continue reading(?: below| the main story)?|"
    r"scroll (?:down )?to continue(?: reading)?(?: with content)?)\s*[:.\-–—]?$"
)


def _rule_ad(core: str) -> str | None:
    return "ad_label" if _AD_RE.match(core) else None


_COOKIE_RES = (
    _rx(r"\b(?:we|this (?:web)?site|our (?:web)?site|this page|our partners)\b[^.]{0,80}\bcookies?\b"),
    _rx(r"\bcookies?\b[^.]{0,120}\b(?:you (?:agree|consent|accept)|your (?:consent|browsing|experience|preferences|device))"),
    _rx(r"^(?:accept|reject|allow|decline|refuse)(?: all)?(?: cookies)?$"),
    _rx(r"^(?:manage|customi[sz]e)(?: your)? (?:cookies|consent|preferences|privacy settings)$"),
    _rx(r"^(?:cookie|privacy|consent) (?:settings|preferences|policy|notice)$"),
    _rx(r"^by (?:continuing|using|browsing)\b[^.]{0,60}\b(?:site|website|page)\b[^.]{0,80}\b(?:agree|consent|accept|cookies)\b"),
    _rx(r"^i (?:agree|accept)$"),
)


def _rule_cookie(core: str) -> str | None:
    low = core.lower()
    if "cookie" not in low and not (len(low) < 40 and any(k in low for k in ("accept", "reject", "consent", "agree", "allow", "decline", "refuse", "privacy"))):
        return None
    if _words(core) > 70 or _REPORTING_RE.search(core):
        return None
    return "cookie_consent" if any(rx.search(core) for rx in _COOKIE_RES) else None


_COPYRIGHT_START_RE = _rx(r"^(?:©|\(c\)|℗|copyright\s*(?:©|\(c\)|\d{4}|by\b|:))")
_RIGHTS_RE = _rx(
    r"\b(?:all rights reserved|всі права захищені|усі права захищені|все права защищены|tous droits réservés|"
    r"alle rechte vorbehalten|todos los derechos reservados|tutti i diritti riservati)\b"
)
_REPRINT_RES = (
    _rx(
        r"\b(?:reprint\w*|reproduc\w*|republish\w*|republication|redistribut\w*|copying|rewrit\w*|"
        r"(?:any )?use of (?:the |our )?materials?)\b[^.]{0,100}?\b(?:prohibited|forbidden|not (?:allowed|permitted)|"
        r"without (?:the |prior |express )*(?:written )?(?:permission|consent|authori[sz]ation)|"
        r"(?:hyper)?link[^.]{0,40}(?:required|mandatory|obligatory))"
    ),
    _rx(r"\bmay not be (?:published|reproduced|broadcast|rewritten|redistributed|copied)\b"),
    _rx(r"\b(?:hyper)?link to .{1,60}? is (?:required|mandatory|obligatory)\b"),
    _rx(r"\bmaterials?\b.{0,80}\b(?:hyper)?link\b.{0,80}\b(?:required|mandatory|obligatory)\b"),
)


# Cheap pre-filters, matched against the lower-cased line (case-insensitive alternations are slow).
_COPYRIGHT_HINT_RE = re.compile(
    r"©|\(c\)|℗|copyright|rights|права|droits|rechte|derechos|diritti|reprint|reproduc|republi|redistribut|"
    r"copying|rewrit|material|link"
)


def _rule_copyright(core: str) -> str | None:
    if _words(core) > 60 or not _COPYRIGHT_HINT_RE.search(core.lower()):
        return None
    if _COPYRIGHT_START_RE.match(core) or _RIGHTS_RE.search(core):
        return "copyright"
    if not _REPORTING_RE.search(core) and any(rx.search(core) for rx in _REPRINT_RES):
        return "copyright"
    return None


_DISCLAIMER_HEAD_RE = _rx(
    r"^(?:legal\s+)?(?:disclaimer|haftungsausschluss|avertissement|aviso legal|застереження|"
    r"відмова від відповідальності|отказ от ответственности)s?\s*(?::\s*(?P<inline>.*))?$"
)
_DISCLAIMER_TERMS = tuple(
    _rx(p)
    for p in (
        r"\bas is\b",
        r"\bwithout (?:any )?warrant",
        r"\bno warrant",
        r"\bliabilit",
        r"\bresponsib",
        r"\baccuracy\b",
        r"\bcompleteness\b",
        r"\binformational purposes\b",
        r"\b(?:does|do|shall) not constitute\b",
        r"\b(?:investment|financial|legal) advice\b",
        r"\bviews (?:and opinions )?expressed\b",
        r"\bdo(?:es)? not necessarily reflect\b",
        r"\bthe provider\b",
        r"\bthis (?:article|content|website|site|press release|material)\b",
        r"\bendorse",
        r"\bcopyright issues\b",
        r"\b(?:kindly|please) contact\b",
    )
)


def _disclaimer_score(core: str) -> int:
    return sum(1 for rx in _DISCLAIMER_TERMS if rx.search(core))


_DISCLAIMER_HINTS = ("warrant", "liabil", "responsib", "accuracy", "advice", "expressed", "necessarily", "provider")
_DISCLAIMER_HINT_RE = re.compile("|".join(_DISCLAIMER_HINTS))


def _rule_disclaimer(core: str) -> str | None:
    if _DISCLAIMER_HEAD_RE.match(core):
        return "legal_disclaimer"
    low = core.lower()
    # the hints the regex finds are among those the text holds: fewer than two there, fewer found (the
    # substring tests cost a fifth of the regex scan, which runs only past them)
    if sum(1 for hint in _DISCLAIMER_HINTS if hint in low) < 2 or len(set(_DISCLAIMER_HINT_RE.findall(low))) < 2:
        return None
    if _REPORTING_RE.search(core):
        return None
    return "legal_disclaimer" if _disclaimer_score(core) >= 3 else None


_RELATED_LINK_RE = _rx(
    r"^(?:read also|also read|read more|see also|read next|more reading|further reading|watch also|"
    r"related|recommended|читайте також|читайте также|дивіться також|смотрите также|лесен|lesen sie auch|"
    r"lesen sie mehr|mehr zum thema|à lire aussi|lire aussi|lire la suite|leer más|lee también|leggi anche|"
    r"te puede interesar)(?:\s*(?:[:\-–—»›>|]+)\s*(?P<rest>\S.*)|\s*[:\-–—»›>|.]*)$"
)
_RELATED_HEADING_RE = _rx(
    r"^(?:recent news|latest news|all news|more news|top news|news feed|latest|trending(?: now)?|most read|"
    r"most popular|most viewed|popular(?: now)?|top stories|more stories|editor'?s picks|"
    r"related (?:articles?|stories|news|coverage|content|posts|topics|reading)|recommended for you|"
    r"you (?:may|might) also like|don'?t miss|in case you missed it|"
    r"останні новини|всі новини|усі новини|последние новости|все новости|meistgelesen|neueste artikel|"
    r"les plus lus|à la une|lo más leído|últimas noticias)\s*[:.]?$"
)
_MORE_FROM_RE = _rx(r"^more (?:from|on|in|about)\s+[^.!?]{1,50}$")


def _rule_related(core: str) -> str | None:
    m = _RELATED_LINK_RE.match(core)
    if m:
        return "related_link" if m.group("rest") else "related_heading"
    if _RELATED_HEADING_RE.match(core):
        return "related_heading"
    if _MORE_FROM_RE.match(core) and _words(core) <= 7:
        return "related_heading"
    return None


_US = r"(?-i:us|Us)"
_SOCIAL = (
    r"facebook|instagram|twitter|x|telegram|youtube|tiktok|linkedin|whatsapp|threads|mastodon|bluesky|"
    r"viber|google news|flipboard|reddit|pinterest"
)
_CTA_RES = tuple(
    _rx(p)
    for p in (
        rf"^(?:please\s+)?(?:follow|find|like|join|add|watch|listen to|contact)\s+{_US}\b",
        rf"^(?:please\s+)?(?:follow|join|subscribe to|find|watch|read)\b.{{0,60}}\b(?:on|via|in)\s+(?:{_SOCIAL})\b",
        rf"^(?:please\s+)?(?:subscribe|sign up|register|join)\b.{{0,60}}\b(?:newsletters?|channel|updates|digest|"
        rf"mailing list|alerts|our|{_US})\b",
        rf"^(?:please\s+)?(?:support|donate|help|back|fund)\b.{{0,60}}\b(?:{_US}|our|patron\w*|journalism|"
        rf"newsroom|donat\w*|independent media|patreon|membership)\b",
        r"\bbecome (?:a |our )?(?:patron|member|subscriber|supporter|donor)\b",
        r"^(?:please\s+)?(?:share|repost|retweet|forward)\s+(?:this|the|our)\s+(?:article|story|post|page|news|video|link)\b",
        rf"^share\b.{{0,30}}\b(?:on|via|with)\s+(?:{_SOCIAL}|e-?mail|friends)\b",
        r"^(?:download|get|install)\s+(?:our|the)\s+(?:[\w-]+\s+)?app\b",
        r"^(?:підписуйтесь|підпишіться|подписывайтесь|подпишитесь|долучайтеся|присоединяйтесь|folgen sie uns|"
        r"abonnieren sie|suivez-nous|abonnez-vous|síguenos|suscríbete|seguici|iscriviti)\b",
        r"^(?:підтримайте|поддержите|unterstützen sie|soutenez|apoya)\b.{0,60}\b(?:нас|uns|nous|us|our|патрон\w*|"
        r"journalis\w*|журналіст\w*|журналист\w*)\b",
    )
)
_CTA_PHRASES = frozenset(
    "sign up|sign up now|sign up for free|subscribe now|donate now|support us|follow us|join us|"
    "log in to comment|sign in to comment|leave a comment|add a comment|click here|newsletter sign up|"
    "get the app|download the app".split("|")
)
_CLICK_HERE_RE = _rx(r"^click here\b")
_SOCIAL_TOKENS = frozenset(
    "share shares tweet email e-mail print facebook twitter x linkedin whatsapp telegram reddit pinterest "
    "viber messenger instagram youtube tiktok threads bluesky mastodon flipboard pocket copy link url "
    "comment comments subscribe donate".split()
)
_SOCIAL_SPLIT_RE = re.compile(r"[\s|/•·,]+")


def _rule_cta(core: str) -> str | None:
    if _words(core) > 15 or _REPORTING_RE.search(core):
        return None
    probe = core.lower() if core.isupper() else core
    if core.casefold().strip(" !.:") in _CTA_PHRASES or (_CLICK_HERE_RE.match(core) and _words(core) <= 12):
        return "call_to_action"
    tokens = [t for t in _SOCIAL_SPLIT_RE.split(probe.lower().strip(" !.:")) if t]
    if tokens and len(tokens) <= 10 and all(t in _SOCIAL_TOKENS for t in tokens):
        return "call_to_action"
    if _last_char(core) == "." and _words(core) > 10:
        return None
    return "call_to_action" if any(rx.search(probe) for rx in _CTA_RES) else None


_LANG_TOKENS = frozenset(
    "eng en english укр ua ukr українська рус ru rus русский de deu deutsch fr fra français francais es esp "
    "español espanol it ita italiano pl polski pt português tr türkçe ar العربية zh 中文 ja 日本語 ko 한국어 "
    "ro română nl nederlands cs čeština ka ქართული бел беларуская kk қаз қазақша az hu magyar bg "
    "български sr srpski hr hrvatski lt lietuvių lv latviešu et eesti".split()
)
_NAV_PHRASES_RE = _rx(r"\b(?:support us|menu|search|log in|login|sign in|subscribe|donate)\b")


def _rule_language_switcher(core: str) -> str | None:
    if _words(core) > 16:
        return None
    rest = _NAV_PHRASES_RE.sub(" ", core)
    tokens = [t.strip(".:") for t in _SOCIAL_SPLIT_RE.split(rest.lower()) if t.strip(".:")]
    if 2 <= len(tokens) <= 14 and all(t in _LANG_TOKENS for t in tokens):
        return "language_switcher"
    return None


_HOME = r"(?:home|home ?page|main|main page|головна|главная|startseite|accueil|inicio|inizio)"
_BREADCRUMB_RES = (
    _rx(rf"^{_HOME}\s*(?:[>/»›→]|::)\s*\S"),
    _rx(r"^you are here\s*:"),
)
_BREADCRUMB_START_RE = _rx(rf"^1[.)]\s*{_HOME}$")
_NUMBERED_RE = re.compile(r"^(\d{1,2})[.)]\s+\S")


def _rule_breadcrumb(core: str) -> str | None:
    if _words(core) > 15 or _last_char(core) == ".":
        return None
    return "breadcrumb" if any(rx.match(core) for rx in _BREADCRUMB_RES) else None


_UNITS = r"(?:sec|secs|second|seconds|min|mins|minute|minutes|hour|hours|hr|hrs|day|days|week|weeks|month|months|year|years)"
_UPDATED_RE = _rx(
    r"^(?:last\s+)?(?:updated?|modified|edited|оновлено|обновлено|aktualisiert|mis à jour|actualizado)"
    r"(?:\s+(?:on|at))?\s*:?\s*(?P<rest>.+)$"
)
_RELATIVE_TIME_RE = _rx(rf"^(?:(?:\d+|an?|one|a few)\s+{_UNITS}\s+ago|yesterday|today|just now|moments? ago)$")
_ZONED_CLOCK_RE = _rx(
    r"^\d{1,2}[:.]\d{2}(?:\s*(?:[ap]\.?m\.?|gmt|utc|cet|cest|eet|eest|bst|msk|[+-]\d{2}:?\d{2}))*$"
)


def _is_time_expression(s: str) -> bool:
    s = s.strip(" .,;()")
    return bool(_RELATIVE_TIME_RE.match(s) or _ZONED_CLOCK_RE.match(s) or _date_only(s))


_COUNTER_RES = (
    _rx(rf"^(?:published|posted|опубліковано|опубликовано)\s*:?\s*(?:\d+|an?|one)\s+{_UNITS}\s+ago$"),
    _rx(rf"^(?:\d+|an?|one)\s+{_UNITS}\s+ago$"),
    _rx(
        r"^\d+(?:[.,]\d+)?\s*(?:min|mins|minutes?|sec|secs|seconds?|хв|мин|minuten?)\.?\s*"
        r"(?:read|reading|to read|read time|читання|чтения|lesezeit|de lecture|de lectura)$"
    ),
    _rx(r"^(?:reading time|read time|time to read|lesezeit|час читання|время чтения|temps de lecture)\s*:?\s*\d+.{0,20}$"),
    _rx(
        r"^\d+(?:[.,]\d+)?\s*[kmкм]?\+?\s*(?:views?|reads?|comments?|shares?|likes?|replies|переглядів|перегляди|"
        r"перегляд|просмотров|просмотра|просмотр|коментар\w*|комментари\w*|aufrufe|vues|visitas)$"
    ),
    _rx(r"^(?:views?|comments?|shares?|переглядів|просмотров)\s*:?\s*\(?\d+(?:[.,]\d+)?\s*[km]?\)?$"),
)


def _rule_counter(core: str) -> str | None:
    if _words(core) > 10:
        return None
    m = _UPDATED_RE.match(core)
    if m and _is_time_expression(m["rest"]):
        return "counter"
    return "counter" if any(rx.match(core) for rx in _COUNTER_RES) else None


_CREDIT_WORDS = (
    r"archive|archive photo|archival photo|file photo|file|photo|getty images|reuters|afp|epa|ap|ap photo|"
    r"anadolu|shutterstock|depositphotos|unsplash|pexels|pool|handout|illustration|screenshot"
)
_PHOTO_PREFIX_RE = _rx(
    r"^(?:photo(?:graph)?s?|pictures?|pics?|images?|illustration|credits?|photo credit|image credit|"
    r"source of (?:the )?photo|foto|фото|світлина|bild|imagen|immagine)\s*(?:by\b|:|/|—|–|-|\|)\s*(?P<rest>\S.*)$"
)
_AGENCY_RE = _rx(
    r"\b(?:getty|reuters|afp|epa|ap|anadolu|shutterstock|depositphotos|unsplash|pexels|pool|handout|courtesy|"
    r"press service|пресслужба|прес-служба)\b"
)
_CREDIT_FILLERS = frozenset("by via for and of the de von van da di del la le courtesy".split())


def _credit_like(rest: str) -> bool:
    """'Reuters', 'Jane Roe/AFP', 'Укрінформ' - names and agencies, not a sentence or a headline."""
    if "/" in rest or _AGENCY_RE.search(rest):
        return True
    toks = re.findall(r"[^\W\d_][\w'’.-]*", rest)
    return 0 < len(toks) <= 8 and all(t[0].isupper() or t.lower() in _CREDIT_FILLERS for t in toks)


_PHOTO_RES = (
    _rx(
        r"^(?:archive|archival|file|illustrative|stock|library|handout|cover|main|lead|illustration|"
        r"illustrated|screenshot|collage)\s+(?:photo(?:graph)?|image|picture|pic|footage)s?\b"
    ),
    _rx(rf"(?:^|\s)[–—\-/|]\s*(?:{_CREDIT_WORDS})\s*$"),
    _rx(r"^\((?:photo|image|foto|фото|credit)\b[^)]*\)$"),
    _rx(r"^(?:getty images|shutterstock|depositphotos|afp via getty images|(?:reuters|ap photo|epa)/[\w .-]+)$"),
)


# A caption that ends with its credit: "Waves break over the harbour wall. Photo: Jane Roe/Agency".
_PHOTO_TAIL_RE = _rx(r"(?:^|[.!?)]\s+|\s[–—|-]\s)(?:photo(?:graph)?|picture|image|foto|фото)s?\s*(?:by|:)\s*(?P<rest>[^.!?]{2,60})$")


def _may_name_a_photo(core: str) -> bool:
    """False only where _PHOTO_TAIL_RE cannot match: an ASCII line without its words (re.IGNORECASE folds
    exactly ASCII case there); the regex tries its three openings at every position, ten times slower."""
    if not core.isascii():
        return True
    low = core.lower()
    return "photo" in low or "picture" in low or "image" in low or "foto" in low


def _rule_photo(core: str) -> str | None:
    tail = _PHOTO_TAIL_RE.search(core) if _may_name_a_photo(core) else None
    if tail and _words(core) <= 40 and _credit_like(tail["rest"]) and not _REPORTING_RE.search(core):
        return "photo_credit"
    if _words(core) > 15 or _REPORTING_RE.search(core):
        return None
    if _last_char(core) in ".!?" and _words(core) >= 6:
        return None
    m = _PHOTO_PREFIX_RE.match(core)
    if m and _credit_like(m["rest"]):
        return "photo_credit"
    return "photo_credit" if any(rx.search(core) for rx in _PHOTO_RES) else None


_TAGS_RE = _rx(
    r"^(?:tags?|topics?|keywords?|tagged(?: with)?|filed under|теги|мітки|теґи|schlagwörter|schlagworte|"
    r"étiquettes|etiquetas)\s*[:\-–]\s*\S"
)


def _camel_boundaries(token: str) -> int:
    """Case transitions inside one word: lower->Upper, and an upper-case run followed by lower case
    ('NATOwarPutin' has two; 'McDonald', 'YouTube', 'iPhone' have one)."""
    n, run = 0, 0
    prev = ""
    for ch in token:
        if ch.isupper():
            if prev and prev.islower():
                n += 1
            run += 1
        else:
            if ch.islower() and run >= 2:
                n += 1
            run = 0
        prev = ch
    return n


def _rule_tags(core: str) -> str | None:
    if _TAGS_RE.match(core) and _words(core) <= 30:
        return "tag_line"
    if " " not in core and len(core) >= 8 and core.isalpha() and _camel_boundaries(core) >= 2:
        return "tag_line"
    return None


def _label_set(text: str) -> frozenset[str]:
    return frozenset(w.strip() for w in text.split("|") if w.strip())


# Navigation labels go wherever they are.
_NAV_LABELS = _label_set(
    """all sections|sections|section|home|homepage|home page|main page|menu|main menu|open menu|close menu|
    search|search for|skip to content|skip to main content|skip navigation|back to top|to top|log in|login|
    sign in|log out|register|my account|account|close|more|less|next|previous|prev|previous article|
    next article|previous story|next story|tags|newsletter|newsletters|contact|contact us|about|about us|
    privacy policy|privacy|terms of use|terms and conditions|terms of service|cookie policy|imprint|impressum|
    rss|advertise|advertise with us|jobs|careers|loading|listen|listen to this article|print edition|
    головна|пошук|меню|главная|поиск|startseite|suche|accueil|recherche|inicio|buscar"""
)
# Topical section names could also be subheadings of an article ("Europe", "Asia"): they go only in the
# header and the tail, never between two body paragraphs.
_TOPICAL_LABELS = _label_set(
    """news|world|world news|politics|business|economy|economics|finance|markets|money|sport|sports|culture|
    arts|entertainment|lifestyle|life|opinion|opinions|op-ed|columns|science|technology|tech|health|society|
    environment|climate|europe|asia|africa|americas|middle east|video|videos|photos|gallery|in pictures|
    podcast|podcasts|live|watch live|weather|travel|education|новини|світ|політика|економіка|суспільство|
    спорт|культура|новости|мир|политика|экономика|общество|nachrichten|politik|wirtschaft|actualités|
    noticias|política|economía"""
)
_SECTION_LABELS = _NAV_LABELS | _TOPICAL_LABELS
_NAV_SPLIT_RE = re.compile(r"\s*[|/•·»›>]\s*")


def _rule_section_label(core: str) -> str | None:
    if len(core) > 120 or _words(core) > 14:
        return None
    low = _strip_edges(core.casefold())
    if low in _SECTION_LABELS:
        return "section_label"
    parts = [p for p in _NAV_SPLIT_RE.split(low) if p]
    if len(parts) >= 2 and all(p in _SECTION_LABELS for p in parts):
        return "section_label"
    return None


# Order matters only for which reason is reported when several rules match.
_LINE_RULES = (
    _rule_tracking_id,
    _rule_ad,
    _rule_cookie,
    _rule_copyright,
    _rule_disclaimer,
    _rule_related,
    _rule_cta,
    _rule_language_switcher,
    _rule_breadcrumb,
    _rule_counter,
    _rule_photo,
    _rule_tags,
    _rule_section_label,
)


def classify_line(line: str) -> str | None:
    """The reason a line is boilerplate on any site, judged on the line alone; None when no rule
    matches. (Position-dependent rules - title, page date, bylines, breadcrumb runs, headline lists,
    disclaimer paragraphs, site templates - run in `clean_text`.)"""
    return _classify_core(_core(line))


def _classify_core(core: str) -> str | None:
    if not core:
        return None
    for rule in _LINE_RULES:
        reason = rule(core)
        if reason:
            return reason
    return None


# --------------------------------------------------------------------------------------------------------
# Site templates
# --------------------------------------------------------------------------------------------------------


def _h64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "big")


@lru_cache(maxsize=1024)  # a text's probe asks for most of its lines twice (as observed, as tested)
def _template_key(line: str) -> tuple[int, bool] | None:
    """What a site template knows a line by: the hash of its normalised text, and whether it is a long
    sentence (which needs more evidence); None for a line with no letter or digit."""
    core = _core(line)
    norm = _strip_edges(core.casefold())
    return (_h64(norm), _is_long_sentence(core)) if norm else None


def _line_key_sets(text: str) -> tuple[set[int], set[int]]:
    keys, long_keys = _line_key_lists(text)
    return set(keys), set(long_keys)


def _line_key_lists(text: str) -> tuple[list[int], list[int]]:
    """The keys of a text's lines and of its long sentences, each once, in order of first occurrence (a set
    made of them iterates in the same order as one made of the lines: a template's line order is the same)."""
    keys: dict[int, bool] = {}
    for raw in text.splitlines():
        key = _template_key(raw)
        if key is not None:
            keys[key[0]] = keys.get(key[0], False) or key[1]
    return list(keys), [h for h, long in keys.items() if long]


def line_keys(text: str) -> tuple[np.ndarray, np.ndarray]:
    """What `SiteTemplate.observe` counts of a text: the distinct keys of its lines, and those of its long
    sentences (uint64, in order of first occurrence)."""
    keys, long_keys = _line_key_lists(text)
    return np.array(keys, dtype=np.uint64), np.array(long_keys, dtype=np.uint64)


@dataclass(slots=True)
class TemplateProbe:
    """What a site template needs of one text, from `preclean_text`: the `line_keys` it observes, and the
    keys of the lines `clean_text` would test against it (`SiteTemplate.marks_any`)."""

    keys: np.ndarray  # uint64, in order of first occurrence
    long_keys: np.ndarray  # uint64, in order of first occurrence
    tested: np.ndarray  # uint64, in text order
    tested_long: np.ndarray  # bool

    def __reduce__(self) -> tuple[Any, tuple[bytes, ...]]:
        # as bytes: a probe crosses a process pipe and a page spool, and numpy arrays pickle five times slower
        return _probe_from_bytes, (self.keys.tobytes(), self.long_keys.tobytes(), self.tested.tobytes(),
                                   self.tested_long.tobytes())


def _probe_from_bytes(keys: bytes, long_keys: bytes, tested: bytes, tested_long: bytes) -> TemplateProbe:
    return TemplateProbe(np.frombuffer(keys, np.uint64).copy(), np.frombuffer(long_keys, np.uint64).copy(),
                         np.frombuffer(tested, np.uint64).copy(), np.frombuffer(tested_long, bool).copy())


class SiteTemplate:
    """What repeats across different articles of one site.

    `observe` counts each distinct normalised line once per document (lines repeated within one document
    count once; a document id, and an identical text under another id, count once). A document whose long sentences were mostly seen before
    is a near-duplicate (an update, a syndicated copy) and is not counted: templates are learned from
    *different* articles. A line is template when it was seen in at least `min_docs` documents and in at
    least `min_share` of the site's documents; long sentence-like lines need twice the documents and half
    of them.

    Memory is bounded: lines are kept as 8-byte hashes, at most `max_lines` of them (lines seen once are
    pruned first), document ids are remembered up to `max_doc_ids`, and when more than `window` documents
    were counted all counts are halved, so the template follows a site redesign.
    """

    __slots__ = ("min_docs", "min_share", "max_lines", "max_doc_ids", "window", "n_docs", "_counts", "_doc_ids")

    def __init__(
        self,
        min_docs: int = 3,
        *,
        min_share: float = 0.2,
        max_lines: int = 5_000,
        max_doc_ids: int = 5_000,
        window: int = 2_000,
    ) -> None:
        if min_docs < 2:
            raise ValueError("min_docs must be at least 2")
        self.min_docs = min_docs
        self.min_share = min_share
        self.max_lines = max_lines
        self.max_doc_ids = max_doc_ids
        self.window = window
        self.n_docs = 0
        self._counts: dict[int, int] = {}
        self._doc_ids: dict[int, None] = {}  # insertion-ordered set of hashed ids

    def __len__(self) -> int:
        return len(self._counts)

    def __repr__(self) -> str:
        return f"SiteTemplate(n_docs={self.n_docs}, lines={len(self._counts)}, min_docs={self.min_docs})"

    def observe(self, doc_id: str, text: str) -> None:
        """Count the lines of one document (idempotent per doc_id)."""
        self._observe(doc_id, *_line_key_sets(text))

    def observe_keys(self, doc_id: str, keys: np.ndarray, long_keys: np.ndarray) -> None:
        """`observe` of a text by its `line_keys` (computed where it was extracted)."""
        self._observe(doc_id, set(keys.tolist()), set(long_keys.tolist()))

    def _observe(self, doc_id: str, keys: set[int], long_keys: set[int]) -> None:
        key = _h64("\0doc\0" + str(doc_id))
        if key in self._doc_ids:
            return
        self._remember(key)
        if not keys:
            return
        content = _h64("\0content\0" + ",".join(map(str, sorted(keys))))
        if content in self._doc_ids:
            return  # the same text under another id
        self._remember(content)
        if len(long_keys) >= 2:
            seen = sum(1 for h in long_keys if self._counts.get(h, 0) > 0)
            if seen * 2 > len(long_keys):
                return  # a near-duplicate of an article already counted
        self.n_docs += 1
        counts = self._counts
        for h in keys:
            counts[h] = counts.get(h, 0) + 1
        if self.n_docs > self.window:
            self._decay()
        if len(counts) > self.max_lines:
            self._prune()

    def _remember(self, key: int) -> None:
        self._doc_ids[key] = None
        while len(self._doc_ids) > self.max_doc_ids:
            del self._doc_ids[next(iter(self._doc_ids))]

    def _decay(self) -> None:
        self._counts = {k: v // 2 for k, v in self._counts.items() if v >= 2}
        self.n_docs //= 2

    def _prune(self) -> None:
        counts = {k: v for k, v in self._counts.items() if v > 1}
        if len(counts) > self.max_lines * 3 // 4:
            top = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[: self.max_lines * 3 // 4]
            counts = dict(top)
        self._counts = counts

    def count(self, line: str) -> int:
        """In how many counted documents the line occurred."""
        norm = normalize_line(line)
        return self._counts.get(_h64(norm), 0) if norm else 0

    def is_template(self, line: str) -> bool:
        key = _template_key(line)
        return key is not None and self.is_template_key(*key)

    def is_template_key(self, h: int, is_long: bool) -> bool:
        """`is_template` of a line by its `_template_key`."""
        c = self._counts.get(h, 0)
        if is_long:
            return c >= 2 * self.min_docs and c >= 0.5 * self.n_docs
        return c >= self.min_docs and c >= self.min_share * self.n_docs

    def marks_any(self, probe: TemplateProbe) -> bool:
        """Whether `clean_text` with this template would find a template line in the text `probe` was made
        of (else it cleans it as without a template: `preclean_text`'s result stands)."""
        return self.marks_any_key(probe.tested, probe.tested_long)

    def marks_any_key(self, tested: np.ndarray, tested_long: np.ndarray) -> bool:
        """`marks_any` of a probe's `tested` and `tested_long`."""
        return any(map(self.is_template_key, tested.tolist(), tested_long.tolist()))

    def to_dict(self) -> dict:
        """A compact JSON-serialisable form: line hashes and document ids as base64 of 8-byte keys,
        counts as base64 of 4-byte little-endian integers (about 16 characters per tracked line)."""
        keys = list(self._counts)
        return {
            "version": 1,
            "min_docs": self.min_docs,
            "min_share": self.min_share,
            "max_lines": self.max_lines,
            "max_doc_ids": self.max_doc_ids,
            "window": self.window,
            "n_docs": self.n_docs,
            "lines": _b64_ints(keys, 8),
            "counts": _b64_ints([min(self._counts[k], 0xFFFFFFFF) for k in keys], 4),
            "doc_ids": _b64_ints(list(self._doc_ids), 8),
        }

    @classmethod
    def from_dict(cls, d: dict) -> SiteTemplate:
        if d.get("version") != 1:
            raise ValueError(f"unsupported SiteTemplate version: {d.get('version')!r}")
        t = cls(
            int(d.get("min_docs", 3)),
            min_share=float(d.get("min_share", 0.2)),
            max_lines=int(d.get("max_lines", 5_000)),
            max_doc_ids=int(d.get("max_doc_ids", 5_000)),
            window=int(d.get("window", 2_000)),
        )
        t.n_docs = int(d.get("n_docs", 0))
        keys, counts = _ints_b64(d.get("lines", ""), 8), _ints_b64(d.get("counts", ""), 4)
        if len(keys) != len(counts):
            raise ValueError("corrupt SiteTemplate: lines and counts differ in length")
        t._counts = dict(zip(keys, counts, strict=True))
        t._doc_ids = dict.fromkeys(_ints_b64(d.get("doc_ids", ""), 8))
        return t


def _b64_ints(values: list[int], width: int) -> str:
    order = "big" if width == 8 else "little"
    return base64.b64encode(b"".join(v.to_bytes(width, order) for v in values)).decode("ascii")


def _ints_b64(data: str, width: int) -> list[int]:
    raw = base64.b64decode(data) if data else b""
    if len(raw) % width:
        raise ValueError("corrupt SiteTemplate: truncated data")
    order = "big" if width == 8 else "little"
    return [int.from_bytes(raw[i : i + width], order) for i in range(0, len(raw), width)]


# Long repeated paragraphs are removed as template only when they speak about the site or to the reader:
# a background paragraph repeated in many articles of a site is still body.
_SITE_SPEAK_RE = _rx(
    r"\b(?:this (?:article|site|website|page|content|material|press release)|our (?:website|site|newsletter|"
    r"journalism|readers|app)|subscribe|newsletter|all rights reserved|copyright|contact us|support us|"
    r"cookies?|privacy policy|terms of (?:use|service)|disclaimer|the provider|click here|sign up|donat\w+)\b"
)

# --------------------------------------------------------------------------------------------------------
# clean_text
# --------------------------------------------------------------------------------------------------------


@pickled_by_fields
@dataclass(slots=True)
class CleanResult:
    text: str  # cleaned body: one paragraph per line, lines joined with "\n"
    title: str | None
    authors: list[str] = field(default_factory=list)
    # aware UTC when the text states a zone; naive (the outlet's local time, zone unknown) when it does not
    published_at: datetime | None = None
    published_source: str | None = None  # "byline" | "tracking_id" | "date_line"
    syndicated_from: str | None = None
    removed: list[tuple[str, str]] = field(default_factory=list)  # (line, reason), in text order


@dataclass(slots=True)
class _Line:
    idx: int
    text: str  # the stripped line as it will be output (syndication prefix removed)
    core: str
    norm: str
    reason: str | None = None
    fragment: tuple[str, str] | None = None  # a removed prefix of a kept line
    template: bool = False


def _make_line(idx: int, text: str) -> _Line:
    core = _core(text)
    return _Line(idx, text, core, _strip_edges(core.casefold()))


def _body_span(lines: list[_Line], extra_excluded: AbstractSet[int] = frozenset()) -> tuple[int, int] | None:
    paras = [ln.idx for ln in lines if ln.reason is None and ln.idx not in extra_excluded and _is_paragraph(ln.core)]
    return (paras[0], paras[-1]) if paras else None


def _is_title_candidate(core: str) -> bool:
    return (
        _is_headline_like(core)
        and _words(core) <= 25
        and not _ends_with_dash(core)
        and not _is_dateline(core)
        and not _NUMBERED_RE.match(core)
        and not _CLOCK_RE.match(core)
    )


def _title_matches(line: _Line, tnorm: str) -> bool:
    if not tnorm or not line.norm:
        return False
    if line.norm == tnorm:
        return True
    # an HTML title often carries the site name: "Headline - Site" / "Headline | Site"
    if tnorm.startswith(line.norm) and _words(line.core) >= 3:
        rest = tnorm[len(line.norm) :].strip()
        return bool(rest) and rest[0] in "-–—|:" and _words(rest) <= 6
    return False


def clean_text(
    text: str, *, title: str | None = None, template: SiteTemplate | None = None, site_name: str | None = None
) -> CleanResult:
    """Remove boilerplate lines from one document and move its metadata out of the body.

    `site_name` is the publishing outlet, when known: a byline crediting the outlet itself is not a
    syndication credit."""
    return _clean(text, title, template, site_name, None)


def preclean_text(text: str, *, title: str | None = None, site_name: str | None = None
                  ) -> tuple[CleanResult, TemplateProbe]:
    """`clean_text` without a site template, before the site's template is known (where the page is
    extracted), and the text's `TemplateProbe`. Where the site's template, once learned, `marks_any` of
    the probe, the text is cleaned again with it; else this result is `clean_text`'s with the template
    (its `removed` left empty: the pipeline does not keep it)."""
    tested: list[tuple[int, bool]] = []
    result = _clean(text, title, None, site_name, tested)
    result.removed = []
    keys, long_keys = line_keys(text)
    return result, TemplateProbe(keys, long_keys, np.array([h for h, _ in tested], dtype=np.uint64),
                                 np.array([long for _, long in tested], dtype=bool))


def _clean(text: str, title: str | None, template: SiteTemplate | None, site_name: str | None,
           tested: list[tuple[int, bool]] | None) -> CleanResult:
    """`clean_text`; `tested`, when given, collects the `_template_key` of each line tested against the
    template (every line a template could mark)."""
    lines = [_make_line(i, s.strip()) for i, s in enumerate((text or "").splitlines())]
    lines = [ln for ln in lines if ln.core]
    for pos, ln in enumerate(lines):
        ln.idx = pos

    # 1. Syndication credits at the start of a paragraph: strip the prefix, keep the paragraph. Known
    #    aggregators anywhere; any other ALL-CAPS credit only on the first line of running text.
    syndicated_raw: str | None = None
    # The first line of running text, skipping furniture such as a photo caption above it.
    first_text = next((ln.idx for ln in lines if _words(ln.core) >= 8 and _classify_core(ln.core) is None), -1)
    for ln in lines:
        m = _SYNDICATION_RE.match(ln.text)
        if (
            m
            and m.end() < len(ln.text)
            and any(c.isalpha() for c in m["src"])
            and m["agg"].rstrip(".") not in _NOT_AGGREGATORS
            and (m["agg"].rstrip(".").upper() in _KNOWN_AGGREGATORS or ln.idx == first_text)
        ):
            ln.fragment = (m.group(0).strip(), "syndication_credit")
            syndicated_raw = syndicated_raw or m["src"]
            new = _make_line(ln.idx, ln.text[m.end() :].strip())
            ln.text, ln.core, ln.norm = new.text, new.core, new.norm
    syndicated_from = _normalise_source(syndicated_raw, text) if syndicated_raw else None
    synd_norms = {normalize_line(syndicated_raw), normalize_line(syndicated_from)} if syndicated_raw else set()

    # 2. Context-free rules, bylines, tracking ids.
    authors: list[str] = []
    byline_date: datetime | None = None
    byline_credit: str | None = None
    tracking_date: datetime | None = None
    for ln in lines:
        ln.reason = _classify_core(ln.core)
        if ln.reason == "tracking_id":
            tracking_date = tracking_date or _tracking_id_date(ln.core)
            continue
        if ln.reason is None and ln.norm in synd_norms:
            ln.reason = "syndication_credit"
            continue
        if ln.reason is None:
            byline = _parse_byline(ln.core)
            if byline:
                ln.reason = "byline"
                for name in byline[0]:
                    if name not in authors:
                        authors.append(name)
                byline_date = byline_date or byline[1]
                credit = byline[2]
                if credit and not (site_name and _same_outlet(credit, site_name)):
                    byline_credit = byline_credit or credit

    # 3. Numbered breadcrumb runs: "1. HOME", "2. WORLD", "3. <title>".
    for i, ln in enumerate(lines):
        if not _BREADCRUMB_START_RE.match(ln.core):
            continue
        ln.reason = "breadcrumb"
        expected = 2
        for nxt in lines[i + 1 :]:
            m = _NUMBERED_RE.match(nxt.core)
            if not m or int(m.group(1)) != expected or _words(nxt.core) > 20:
                break
            nxt.reason = "breadcrumb"
            expected += 1

    # 4. The paragraph(s) after a "Disclaimer" heading.
    for i, ln in enumerate(lines):
        if ln.reason != "legal_disclaimer" or _words(ln.core) > 4:
            continue
        first = True
        for nxt in lines[i + 1 :]:
            if nxt.reason is not None:
                if nxt.reason == "legal_disclaimer":
                    continue
                break
            if _disclaimer_score(nxt.core) >= (1 if first else 2):
                nxt.reason = "legal_disclaimer"
                first = False
            else:
                break

    # 5. Site-template evidence (applied below, outside the span of body paragraphs only).
    template_removable: set[int] = set()
    if template is not None or tested is not None:
        for ln in lines:
            if ln.reason is not None or _is_dateline(ln.core):
                continue
            key = _template_key(ln.core)
            if key is None:
                continue
            if tested is not None:
                tested.append(key)
            if template is not None and template.is_template_key(*key):
                ln.template = True
                if not _is_long_sentence(ln.core) or _SITE_SPEAK_RE.search(ln.core):
                    template_removable.add(ln.idx)

    span = _body_span(lines, template_removable)
    first_para = span[0] if span else len(lines)
    if span:
        for ln in lines[span[0] + 1 : span[1]]:
            if ln.reason == "section_label" and ln.norm in _TOPICAL_LABELS:
                ln.reason = None

    # 6. Title: the caller's, or the first headline-like line above the first body paragraph.
    title_idx: int | None = None
    date_only = {ln.idx: d for ln in lines if ln.reason is None and (d := _date_only(ln.core))}
    if title and title.strip():
        result_title: str | None = single_spaced(title)
        tnorm = normalize_line(result_title)
        for ln in lines:
            if ln.reason is None and _title_matches(ln, tnorm):
                if title_idx is None and ln.idx < first_para:
                    title_idx, ln.reason = ln.idx, "title"
                else:
                    ln.reason = "repeated_title"
    else:
        result_title = None
        for ln in lines:
            if ln.idx >= first_para:
                break
            if ln.reason is not None or ln.template or ln.idx in date_only:
                continue
            if _is_title_candidate(ln.core):
                title_idx, ln.reason, result_title = ln.idx, "title", ln.text
                break
        if title_idx is not None:
            tnorm = lines[title_idx].norm
            for ln in lines:
                if ln.reason is None and ln.norm == tnorm:
                    ln.reason = "repeated_title"

    # 7. Date-only lines in the header: above the title it is the page-render date (never the
    #    publication date); between title and body it is the publication date.
    date_line_value: datetime | None = None
    for idx, (hit, is_update) in sorted(date_only.items()):
        ln = lines[idx]
        if ln.reason is not None or idx >= first_para:
            continue
        above_title = title_idx is not None and idx < title_idx
        if title_idx is None and idx == 0:
            # no title: a first-line date followed by a headline-like line is still the page's date
            above_title = any(
                _is_headline_like(o.core) for o in lines[1:first_para] if o.reason is None and o.idx not in date_only
            )
        if above_title:
            ln.reason = "page_date"
        elif is_update:
            ln.reason = "counter"
        else:
            ln.reason = "date_line"
            date_line_value = date_line_value or hit.value

    # 8. Template lines outside the body span go, except a label heading ("Background:") that introduces
    #    lines which stay.
    span = _body_span(lines, template_removable)
    first_para, last_para = span if span else (len(lines), len(lines))
    for ln in lines:
        if ln.idx in template_removable and ln.reason is None and not (first_para <= ln.idx <= last_para):
            nxt = lines[ln.idx + 1] if ln.idx + 1 < len(lines) else None
            if ln.core.endswith(":") and nxt is not None and nxt.reason is None and not nxt.template:
                continue
            ln.reason = "site_template"
    span = _body_span(lines)
    first_para, last_para = span if span else (len(lines), len(lines))

    # 9. Lists of other articles' headlines: after a related heading (until the next paragraph), and
    #    runs of headline-like lines after the body has ended.
    in_zone = False
    for ln in lines:
        if ln.reason == "related_heading":
            in_zone = True
            continue
        if ln.reason is not None or not in_zone:
            continue
        core = ln.core
        if _CLOCK_RE.match(core):
            ln.reason = "clock_time"
        elif not _is_paragraph(core) and (_is_headline_like(core) or _is_short_label(core)) and not _is_dateline(core):
            ln.reason = "headline_list"
        else:
            in_zone = False

    if span:
        # After the body, a run of headline-like lines is a list of other articles when the body has visibly
        # ended before it (a line was removed as furniture: share buttons, tags, an ad, the byline), when
        # it carries clock times, or when it is long. Otherwise it may be the article's own last lines
        # (an interview's last answer, a short list) and stays.
        run: list[_Line] = []
        ended = False
        run_after_end = False

        def flush() -> None:
            heads = sum(1 for r in run if _is_headline_like(r.core))
            long_heads = sum(1 for r in run if _is_headline_like(r.core) and _words(r.core) >= 5)
            times = sum(1 for r in run if _CLOCK_RE.match(r.core))
            if (run_after_end and (heads >= 2 or (heads and times))) or (heads >= 2 and times >= 2) or long_heads >= 4:
                for r in run:
                    r.reason = "clock_time" if _CLOCK_RE.match(r.core) else "headline_list"
            run.clear()

        for ln in lines[last_para + 1 :]:
            if ln.reason is not None:
                ended = True
                continue
            bullet = ln.text[:1] in "•·▪●◦‣∙■□➤►▶*-–—"
            is_item = _CLOCK_RE.match(ln.core) or (
                not bullet and not _is_dateline(ln.core) and (_is_headline_like(ln.core) or _is_short_label(ln.core))
            )
            if is_item:
                if not run:
                    run_after_end = ended
                run.append(ln)
            else:
                flush()
        flush()
        if ended:
            for ln in lines[last_para + 1 :]:
                if ln.reason is None and _CLOCK_RE.match(ln.core):
                    ln.reason = "clock_time"

    # 10. Assemble.
    kept: list[str] = []
    removed: list[tuple[str, str]] = []
    for ln in lines:
        if ln.fragment:
            removed.append(ln.fragment)
        if ln.reason is None:
            kept.append(ln.text)
        else:
            removed.append((ln.text, ln.reason))

    if byline_date is not None:
        published, source = byline_date, "byline"
    elif tracking_date is not None:
        published, source = tracking_date, "tracking_id"
    elif date_line_value is not None:
        published, source = date_line_value, "date_line"
    else:
        published, source = None, None

    return CleanResult(
        text="\n".join(kept),
        title=result_title,
        authors=authors,
        published_at=published,
        published_source=source,
        syndicated_from=syndicated_from or byline_credit,
        removed=removed,
    )


def clean_documents(docs: Iterable[dict]) -> Iterator[dict]:
    """The `newsingest clean --jsonl` contract: input dicts {"id", "text", "source"?, "title"?, "site_name"?};
    output dicts {"id", "title", "text", "authors", "published_at" (ISO 8601 or None; without an offset when
    the text gives no time zone), "published_source", "syndicated_from", "removed": [[line, reason], ...]}.

    Documents sharing a `source` are cleaned together so site templates can be learned: first all of a
    source's documents are observed, then each is cleaned with the learned template (documents without a
    source get no template). The input is therefore materialised; output order = input order."""
    batch = list(docs)
    templates: dict[str, SiteTemplate] = {}
    for i, doc in enumerate(batch):
        source = doc.get("source")
        if source:
            doc_id = doc.get("id")
            templates.setdefault(str(source), SiteTemplate()).observe(str(doc_id if doc_id is not None else i), doc.get("text") or "")
    for doc in batch:
        source = doc.get("source")
        result = clean_text(
            doc.get("text") or "",
            title=doc.get("title"),
            template=templates.get(str(source)) if source else None,
            site_name=doc.get("site_name") if isinstance(doc.get("site_name"), str) else None,
        )
        yield {
            "id": doc.get("id"),
            "title": result.title,
            "text": result.text,
            "authors": result.authors,
            "published_at": result.published_at.isoformat() if result.published_at else None,
            "published_source": result.published_source,
            "syndicated_from": result.syndicated_from,
            "removed": [[line, reason] for line, reason in result.removed],
        }
