"""Tests for pipeline.clean: the seed documents, one test family per rule (with look-alike body
sentences that must stay), metadata extraction, site-template learning and the JSONL contract."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime

import pytest
from conftest import SHARED

from pipeline.clean import (
    REASONS,
    CleanResult,
    SiteTemplate,
    classify_line,
    clean_documents,
    clean_text,
    normalize_line,
)

SEEDS = SHARED / "seeds"

# A few made-up body paragraphs used as filler around the lines under test.
P1 = "The city council approved the new budget on Monday after a debate that lasted more than six hours."
P2 = "Opposition members said the plan would raise local taxes, while the mayor called it a necessary step."
P3 = "The budget now goes to the regional authority, which has thirty days to review the figures and respond."
P4 = "Residents will be able to comment on the proposals at a public meeting scheduled for early next month."


def kept_lines(result: CleanResult) -> list[str]:
    return [line.strip() for line in result.text.splitlines()]


def reasons(result: CleanResult) -> dict[str, str]:
    return {line.strip(): reason for line, reason in result.removed}


# --------------------------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------------------------


def _gold() -> list[dict]:
    if not SEEDS.is_dir():
        pytest.skip(f"seed documents not found at {SEEDS}")
    return json.loads((SEEDS / "gold.json").read_text(encoding="utf-8"))


def _seed_ids() -> list[str]:
    try:
        return [g["file"] for g in json.loads((SEEDS / "gold.json").read_text(encoding="utf-8"))]
    except OSError:
        return ["seeds-missing"]


def _check_body_and_boilerplate(gold: dict, out_lines: list[str]) -> None:
    out = set(out_lines)
    lost = [b for b in gold["body"] if b.strip() not in out]
    leaked = [b for b in gold["boilerplate"] if b.strip() in out]
    assert not lost, f"{gold['file']}: body lines removed: {lost}"
    assert not leaked, f"{gold['file']}: boilerplate lines kept: {leaked}"
    allowed = {b.strip() for b in gold["body"] + gold["optional"]}
    assert [line for line in out_lines if line not in allowed] == []


@pytest.mark.parametrize("name", _seed_ids())
def test_seed(name: str) -> None:
    gold = {g["file"]: g for g in _gold()}[name]
    result = clean_text((SEEDS / name).read_text(encoding="utf-8"))
    _check_body_and_boilerplate(gold, kept_lines(result))
    assert result.title == gold["title"]
    assert result.authors == gold["authors"]
    assert result.syndicated_from == gold["syndicated_from"]
    # every removal is explained with a known reason
    assert all(reason in REASONS for _, reason in result.removed)
    derivable = {"000_99df6a6f2373775a.txt": "tracking_id", "001_271a4f23b786c4af.txt": "byline"}
    if name in derivable:
        assert result.published_at is not None
        assert result.published_at.date() == date.fromisoformat(gold["published"][:10])
        assert result.published_source == derivable[name]
    if name.startswith("000_"):
        assert result.published_at is not None and result.published_at.date() != date(2024, 1, 2)
        assert reasons(result)["Tuesday, 02 January 2024 12:17 GMT"] == "page_date"
    if name.startswith("004_"):
        assert result.removed == []


def test_seeds_through_clean_documents() -> None:
    golds = _gold()
    docs = [{"id": g["file"], "text": (SEEDS / g["file"]).read_text(encoding="utf-8")} for g in golds]
    out = list(clean_documents(docs))
    assert [o["id"] for o in out] == [g["file"] for g in golds]
    for gold, o in zip(golds, out, strict=True):
        _check_body_and_boilerplate(gold, [line.strip() for line in o["text"].splitlines()])
        assert o["title"] == gold["title"]
        assert o["authors"] == gold["authors"]
        assert o["syndicated_from"] == gold["syndicated_from"]
        assert all(isinstance(pair, list) and len(pair) == 2 for pair in o["removed"])
        json.dumps(o)  # JSON-serialisable
    assert out[0]["published_at"].startswith("2025-11-26")
    assert out[1]["published_at"].startswith("2024-12-12")


def test_seeds_as_one_source_lose_no_body() -> None:
    """Even when unrelated documents are (wrongly) given one source, the learned template must not
    remove body lines."""
    golds = _gold()
    docs = [
        {"id": g["file"], "source": "one-site", "text": (SEEDS / g["file"]).read_text(encoding="utf-8")}
        for g in golds
    ]
    for gold, o in zip(golds, clean_documents(docs), strict=True):
        out = {line.strip() for line in o["text"].splitlines()}
        assert [b for b in gold["body"] if b.strip() not in out] == []


# --------------------------------------------------------------------------------------------------------
# Rule families: (boilerplate line, reason) and look-alike body lines that must stay
# --------------------------------------------------------------------------------------------------------

BOILERPLATE = [
    # ads
    ("Advertisement", "ad_label"),
    ("Advertisement:", "ad_label"),
    ("ADVERTISEMENT", "ad_label"),
    ("Sponsored content", "ad_label"),
    ("Story continues below advertisement", "ad_label"),
    ("Реклама", "ad_label"),
    # calls to follow / subscribe / donate / support / share
    ("Share", "call_to_action"),
    ("Share this article", "call_to_action"),
    ("Facebook Twitter WhatsApp Email", "call_to_action"),
    ("Follow us on Instagram!", "call_to_action"),
    ("Follow the Daily Herald on Telegram", "call_to_action"),
    ("FOLLOW US ON X", "call_to_action"),
    ("Subscribe to our newsletter", "call_to_action"),
    ("Sign up for our morning briefing newsletter", "call_to_action"),
    ("Support Us", "call_to_action"),
    ("Support DH or become our patron!", "call_to_action"),
    ("Donate to keep our journalism independent", "call_to_action"),
    ("Download our app", "call_to_action"),
    ("Підписуйтесь на наш Telegram-канал", "call_to_action"),
    # read also / related
    ("Read also: Mayor promises new tram line by 2027", "related_link"),
    ("READ MORE: Council debates parking fees", "related_link"),
    ("Read more", "related_heading"),
    ("Related", "related_heading"),
    ("Related articles", "related_heading"),
    ("More from Daily Herald", "related_heading"),
    ("RECENT NEWS", "related_heading"),
    ("All News", "related_heading"),
    ("Most read", "related_heading"),
    ("Читайте також: Мер пообіцяв новий трамвай", "related_link"),
    # cookies / consent
    ("We use cookies to improve your experience on our website.", "cookie_consent"),
    ("This site uses cookies. By continuing to browse the site you are agreeing to our use of cookies.",
     "cookie_consent"),
    ("Accept all cookies", "cookie_consent"),
    ("Manage consent", "cookie_consent"),
    # copyright / reprint
    ("© 2025 Daily Herald. All rights reserved.", "copyright"),
    ("Copyright 2024 Example Media Ltd", "copyright"),
    ("All rights reserved.", "copyright"),
    ("This material may not be published, broadcast, rewritten or redistributed.", "copyright"),
    ("Reprinting of our materials is prohibited without the written permission of the editors.", "copyright"),
    ("When using materials of this site, a hyperlink to dailyherald.example is required.", "copyright"),
    # legal disclaimers
    ("Legal Disclaimer:", "legal_disclaimer"),
    ("Disclaimer", "legal_disclaimer"),
    ("Disclaimer: The author holds no position in any of the stocks mentioned.", "legal_disclaimer"),
    ("The views expressed in this article are those of the author and do not necessarily reflect the "
     "views of the publisher, which accepts no liability for their accuracy.", "legal_disclaimer"),
    # photo credits and captions
    ("Archive photo", "photo_credit"),
    ("– City Hall – Archive", "photo_credit"),
    ("Photo: Reuters", "photo_credit"),
    ("Photo by Jane Roe/Getty Images", "photo_credit"),
    ("Illustrative photo: Depositphotos", "photo_credit"),
    ("Фото: Укрінформ", "photo_credit"),
    ("(Photo: Daily Herald)", "photo_credit"),
    # breadcrumbs
    ("Home > World > Europe", "breadcrumb"),
    ("Home / Politics", "breadcrumb"),
    # freshness, read-time and view counters
    ("Last update: 3 days ago", "counter"),
    ("• Last update: 2 hours ago", "counter"),
    ("Updated: 14:05", "counter"),
    ("2 min read", "counter"),
    ("Reading time: 4 minutes", "counter"),
    ("35 Views", "counter"),
    ("1.2K views", "counter"),
    ("12 comments", "counter"),
    ("5 hours ago", "counter"),
    ("1 250 переглядів".replace(" ", ""), "counter"),
    # tracking ids
    ("MENAFN01022024000123011044ID1234567890", "tracking_id"),
    ("AB12CD34EF56789012345", "tracking_id"),
    ("3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "tracking_id"),
    # language switchers
    ("Укр Рус Eng", "language_switcher"),
    ("EN | DE | FR", "language_switcher"),
    ("Укр Рус Eng Support Us", "language_switcher"),
    # tag lines
    ("CouncilBudgetTaxes", "tag_line"),
    ("Tags: budget, council, taxes", "tag_line"),
    # bare navigation labels (topical section names: see test_topical_section_labels)
    ("All Sections", "section_label"),
    ("Search", "section_label"),
    ("Loading...", "section_label"),
    ("Skip to main content", "section_label"),
    ("Home | World | Politics | Sport", "section_label"),
]


@pytest.mark.parametrize(("line", "reason"), BOILERPLATE)
def test_rule_removes(line: str, reason: str) -> None:
    assert classify_line(line) == reason
    # and in context: the line goes, the paragraphs stay
    result = clean_text("\n\n".join([P1, P2, line, P3, P4]), title="Council approves budget")
    assert line.strip() not in kept_lines(result)
    assert kept_lines(result) == [P1, P2, P3, P4]


LOOKALIKES = [
    # share / follow / subscribe / donate / support
    "The minister said he would share the findings with parliament next week.",
    "Share prices fell by three percent after the announcement.",
    "Follow-up talks are planned for March.",
    "Support for the plan has grown among allies, the latest poll found.",
    "Support for Ukraine in the US Congress is weakening",
    "Subscribers to the service will pay more from January, the company said.",
    "Donations to the fund reached a record of 2 million euros last year.",
    # ads
    "Advertisement spending rose sharply in the third quarter of the year.",
    "Sponsored by the city, the festival attracted over 10,000 visitors.",
    # read also / related
    "Related to the case, police arrested two more suspects on Friday.",
    "Read more about the proposals in the council's published report, the mayor told reporters.",
    "More from the minister's speech is expected to be published later today.",
    "More than 100 people attended the meeting.",
    # cookies
    "The bakery sold more than 500 cookies at the charity fair.",
    "Regulators fined the company for tracking users with cookies without asking for consent.",
    # copyright / reprint
    "The court ruled that the copyright of the photo belongs to the agency.",
    "Copyright law is changing fast in Europe, experts say.",
    "The court ruled that reproduction of the photo without permission was prohibited.",
    # disclaimers
    "The company said it does not accept responsibility or liability for the accuracy of the report.",
    "The regulator rejected responsibility for the accuracy of the data.",
    # photo credits
    "Photos of the meeting were published by the ministry on Tuesday.",
    "Photo by photo, investigators reconstructed the events of that night, the prosecutor said.",
    "The archive photo shows the square before the war.",
    # breadcrumbs
    "Home prices rose by 4 percent in the capital last year.",
    "1. The government must present the plan by June.",
    # counters
    "The video drew 35 views in its first hour, police said.",
    "Updated figures will be released next week.",
    "He said it would take two minutes to read the statement.",
    "Five days ago, the council met for the first time.",
    # tracking ids and tags
    "The contract number was MENAFN123 according to the documents.",
    "NATO",
    "McDonald",
    "GDP",
    # language switchers
    "The EN and FR versions of the treaty differ on one point.",
    # section labels
    "World leaders will meet in Geneva next week.",
    "Search teams found the missing hikers on Sunday evening.",
    # non-English body
    "Міська рада в понеділок ухвалила новий бюджет після дебатів, які тривали понад шість годин.",
    "Der Stadtrat hat am Montag nach mehr als sechsstündiger Debatte den neuen Haushalt beschlossen.",
    "市议会周一在经过六个多小时的辩论后批准了新预算，反对派表示该计划将提高地方税收。",
]


@pytest.mark.parametrize("line", LOOKALIKES)
def test_rule_keeps_lookalike(line: str) -> None:
    assert classify_line(line) is None
    result = clean_text("\n".join([P1, P2, line, P3, P4]), title="Council approves budget")
    assert line in kept_lines(result)


# --------------------------------------------------------------------------------------------------------
# Context rules
# --------------------------------------------------------------------------------------------------------


def test_topical_section_labels() -> None:
    """'WORLD' above the article and 'POLITICS' below it are section labels; 'Europe' between two
    paragraphs is a subheading of the article and stays."""
    assert classify_line("• WORLD") == "section_label"
    result = clean_text("\n".join(["Council approves budget", "• WORLD", P1, "Europe", P2, "Asia", P3, "POLITICS"]))
    assert kept_lines(result) == [P1, "Europe", P2, "Asia", P3]
    assert reasons(result) == {"Council approves budget": "title", "• WORLD": "section_label", "POLITICS": "section_label"}



def test_disclaimer_heading_takes_the_paragraph_after_it() -> None:
    disclaimer = (
        "The publisher provides this content as is and accepts no liability for errors or omissions."
    )
    result = clean_text("\n".join([P1, P2, P3, "Disclaimer:", disclaimer, "Search"]))
    assert kept_lines(result) == [P1, P2, P3]
    assert reasons(result)[disclaimer] == "legal_disclaimer"


def test_paragraph_after_disclaimer_heading_without_disclaimer_words_stays() -> None:
    result = clean_text("\n".join([P1, "Disclaimer", P2, P3]))
    assert kept_lines(result) == [P1, P2, P3]


def test_numbered_breadcrumb_run() -> None:
    text = "\n".join(
        ["Council approves budget after long debate", "1. HOME", "2. LOCAL", "3. Council approves budget",
         P1, "1. The plan has three parts.", "2. It starts in June.", P2]
    )
    result = clean_text(text)
    kept = kept_lines(result)
    assert "1. HOME" not in kept and "2. LOCAL" not in kept and "3. Council approves budget" not in kept
    assert "1. The plan has three parts." in kept and "2. It starts in June." in kept
    assert result.title == "Council approves budget after long debate"


def test_headline_list_after_heading_with_times() -> None:
    heads = [
        "Mayor opens new bridge over the river",
        "Football club signs young striker from rival",
        "Heavy snow expected in the north this weekend",
    ]
    text = "\n".join([P1, P2, P3, "LATEST NEWS", "09:15", heads[0], "08:40", heads[1], "08:02", heads[2]])
    result = clean_text(text)
    assert kept_lines(result) == [P1, P2, P3]
    r = reasons(result)
    assert r["LATEST NEWS"] == "related_heading"
    assert r["09:15"] == "clock_time"
    assert all(r[h] == "headline_list" for h in heads)


def test_headline_run_after_body_ends() -> None:
    heads = [
        "Mayor opens new bridge over the river",
        "Football club signs young striker from rival – photos",
    ]
    # the body has visibly ended (share buttons, tags) before the run
    result = clean_text("\n".join([P1, P2, P3, "Share", "Tags: city, budget", *heads]))
    assert kept_lines(result) == [P1, P2, P3]
    assert all(reasons(result)[h] == "headline_list" for h in heads)
    # a long run of headlines needs no end marker
    more = heads + ["Heavy snow expected in the north this weekend", "New tram line to the airport opens in spring"]
    assert kept_lines(clean_text("\n".join([P1, P2, P3, *more]))) == [P1, P2, P3]


def test_article_own_last_lines_stay() -> None:
    """Short unpunctuated lines straight after the last paragraph (no furniture between) are body."""
    tail = ["Q: Will there be talks this year", "A: I don't know, nobody does"]
    assert kept_lines(clean_text("\n".join([P1, P2, *tail]))) == [P1, P2, *tail]
    tail = ["Next steps", "Vote in March", "Implementation from April"]
    assert kept_lines(clean_text("\n".join([P1, P2, *tail]))) == [P1, P2, *tail]


def test_single_trailing_line_and_subheadings_stay() -> None:
    sub = "What happens next for the city"
    last = "Reporting by Jane Roe; editing by John Doe"
    result = clean_text("\n".join([P1, sub, P2, P3, last]))
    assert kept_lines(result) == [P1, sub, P2, P3, last]


def test_bullet_list_at_end_stays() -> None:
    items = ["• New tram line to the airport", "• Cheaper parking for residents"]
    result = clean_text("\n".join([P1, P2, "Key points of the budget:", *items]))
    assert kept_lines(result) == [P1, P2, "Key points of the budget:", *items]


def test_clock_time_inside_body_is_not_touched_without_list() -> None:
    # a lone time stamp between paragraphs (live-blog style) stays
    result = clean_text("\n".join([P1, "14:05", P2, P3]))
    assert "14:05" in kept_lines(result)


def test_wire_datelines_stay() -> None:
    dateline = "Vienna, March 3 (Example Wire) –"
    result = clean_text("\n".join([dateline, P1, P2]))
    assert kept_lines(result) == [dateline, P1, P2]
    assert result.title is None
    inline = "VIENNA -- " + P1
    assert kept_lines(clean_text("\n".join([inline, P2]))) == [inline, P2]


# --------------------------------------------------------------------------------------------------------
# Title and metadata
# --------------------------------------------------------------------------------------------------------


def test_title_detection_and_repeated_title() -> None:
    title = "Council approves budget after six-hour debate"
    text = "\n".join(["All Sections", "Follow us on Instagram!", title, "By Jane Roe", title, P1, P2])
    result = clean_text(text)
    assert result.title == title
    assert kept_lines(result) == [P1, P2]
    assert result.authors == ["Jane Roe"]
    r = [reason for _, reason in result.removed]
    assert r.count("title") == 1 and r.count("repeated_title") == 1


def test_no_title_when_text_starts_with_body() -> None:
    result = clean_text("\n".join([P1, "What happens next", P2]))
    assert result.title is None
    assert kept_lines(result) == [P1, "What happens next", P2]


def test_caller_title_with_site_suffix() -> None:
    title = "Council approves budget after six-hour debate"
    result = clean_text("\n".join([title, P1, P2]), title=title + " | Daily Herald")
    assert result.title == title + " | Daily Herald"
    assert kept_lines(result) == [P1, P2]


def test_page_render_date_above_title_is_not_publication_date() -> None:
    text = "\n".join(["Monday, 05 February 2024 08:00 GMT", "Council approves new budget", P1, P2])
    result = clean_text(text)
    assert result.published_at is None
    assert reasons(result)["Monday, 05 February 2024 08:00 GMT"] == "page_date"
    assert result.title == "Council approves new budget"


def test_date_line_below_title_is_publication_date() -> None:
    text = "\n".join(["Council approves new budget", "12 March 2025, 14:30 CET", P1, P2])
    result = clean_text(text)
    assert result.published_at == datetime(2025, 3, 12, 13, 30, tzinfo=UTC)
    assert result.published_source == "date_line"
    assert kept_lines(result) == [P1, P2]


def test_byline_with_glued_date_and_caps_names() -> None:
    line = "Olena Kovalenko , PETRO MARCHENKOFriday, 7 March 2025, 08:05"
    result = clean_text("\n".join(["Council approves new budget", line, P1, P2]))
    assert result.authors == ["Olena Kovalenko", "Petro Marchenko"]
    assert result.published_at == datetime(2025, 3, 7, 8, 5)  # the outlet's local time: no zone given
    assert result.published_source == "byline"
    assert reasons(result)[line] == "byline"


@pytest.mark.parametrize(
    ("line", "authors"),
    [
        ("Author: Jane Roe", ["Jane Roe"]),
        ("By Jane Roe and John Doe", ["Jane Roe", "John Doe"]),
        ("Автор: Олена Коваленко", ["Олена Коваленко"]),
        ("By JANE ROE", ["Jane Roe"]),
    ],
)
def test_bylines(line: str, authors: list[str]) -> None:
    result = clean_text("\n".join([P1, P2, line]))
    assert result.authors == authors
    assert kept_lines(result) == [P1, P2]


@pytest.mark.parametrize(
    "line",
    [
        "By Tuesday, the talks had collapsed and both delegations had left the city.",
        "By the end of the year, the council hopes to have hired twenty new teachers.",
        "Jane Roe and John Doe met the mayor on 12 March 2025.",
    ],
)
def test_byline_lookalikes_stay(line: str) -> None:
    result = clean_text("\n".join([P1, line, P2]))
    assert line in kept_lines(result)
    assert result.authors == []


@pytest.mark.parametrize(
    ("line", "authors", "credit"),
    [
        ("Author: Tom Ash, Continental Press Wire", ["Tom Ash"], "Continental Press Wire"),
        ("By Tom Ash | Continental Press Wire", ["Tom Ash"], "Continental Press Wire"),
        ("By Jane Roe and John Doe, Reuters", ["Jane Roe", "John Doe"], "Reuters"),
        ("By JANE ROE, AP", ["Jane Roe"], "AP"),
        ("By Jane Roe, Senior Correspondent, Reuters", ["Jane Roe"], "Reuters"),
        ("By Jane Roe - The Harbor Herald", ["Jane Roe"], "The Harbor Herald"),
        # roles, places and second authors are not credits
        ("By Jane Roe, Staff Writer", ["Jane Roe"], None),
        ("By Jane Roe, Special to the Ledger", ["Jane Roe"], None),
        ("By Jane Roe, KYIV", ["Jane Roe", "Kyiv"], None),
        ("By Jane Roe, John Doe", ["Jane Roe", "John Doe"], None),
        ("By Jane Roe, Frank Press", ["Jane Roe", "Frank Press"], None),
        ("By Jane Roe, Sky News", ["Jane Roe"], "Sky News"),
        ("By Jane Roe, The Washington Post", ["Jane Roe"], "The Washington Post"),
    ],
)
def test_byline_outlet_credit_is_syndication(line: str, authors: list[str], credit: str | None) -> None:
    result = clean_text("\n".join(["Council approves new budget", line, P1, P2]))
    assert result.authors == authors and reasons(result)[line] == "byline"
    assert result.syndicated_from == credit
    assert kept_lines(result) == [P1, P2]


def test_byline_crediting_the_outlet_itself_is_not_syndication() -> None:
    text = "\n".join(["Council approves new budget", "By Jane Roe, Reuters", P1, P2])
    assert clean_text(text, site_name="Reuters").syndicated_from is None
    assert clean_text(text, site_name="The Daily Courier").syndicated_from == "Reuters"
    # a credit in the text's first line (aggregators) wins over the byline's
    text = "\n".join(["By Jane Roe, Reuters", "(MENAFN- Example Wire) " + P1, P2])
    assert clean_text(text).syndicated_from == "Example Wire"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Author: Jane Roe, 7 March 2025, 08:05", datetime(2025, 3, 7, 8, 5)),
        ("Author: Jane Roe, 7 March 2025, 08:05 GMT", datetime(2025, 3, 7, 8, 5, tzinfo=UTC)),
        ("Author: Jane Roe, 7 March 2025, 10:05 +02:00", datetime(2025, 3, 7, 8, 5, tzinfo=UTC)),
        ("Author: Jane Roe, 7 March 2025, 3:05 pm EST", datetime(2025, 3, 7, 20, 5, tzinfo=UTC)),
        ("Author: Jane Roe, 7 March 2025", datetime(2025, 3, 7)),
    ],
)
def test_time_zone_is_kept_only_when_the_text_gives_one(line: str, expected: datetime) -> None:
    result = clean_text("\n".join(["Council approves new budget", line, P1, P2]))
    assert result.published_at == expected
    assert (result.published_at.tzinfo is None) == (expected.tzinfo is None)


def test_syndication_credit_and_tracking_id_date() -> None:
    body = "The council approved the budget on Monday, Example Wire reports, citing officials."
    text = "\n".join(
        ["Council approves budget", "(MENAFN- ExAmple WIRE) " + body, P2, "MENAFN05032025000111011044ID1109999999",
         "ExAmple WIRE"]
    )
    result = clean_text(text)
    assert kept_lines(result) == [body, P2]
    assert result.syndicated_from == "Example Wire"  # casing taken from the running text
    assert result.published_at == datetime(2025, 3, 5)  # a calendar date, no zone
    assert result.published_source == "tracking_id"
    assert ("(MENAFN- ExAmple WIRE)", "syndication_credit") in result.removed


@pytest.mark.parametrize("prefix", ["(Reuters) - ", "(UPDATE - adds quotes) ", "LONDON (AP) — "])
def test_wire_credit_in_parentheses_is_not_syndication(prefix: str) -> None:
    line = prefix + P1
    result = clean_text("\n".join([line, P2]))
    assert result.syndicated_from is None
    assert kept_lines(result) == [line, P2]
    # a parenthesised ALL-CAPS tag in the middle of the body is not a credit either
    line = "(NATO - Brussels) " + P2
    result = clean_text("\n".join([P1, line]))
    assert result.syndicated_from is None
    assert kept_lines(result) == [P1, line]


def test_empty_and_whitespace_input() -> None:
    for text in ("", "\n\n  \n"):
        result = clean_text(text)
        assert result.text == "" and result.title is None and result.removed == []


def test_normalize_line() -> None:
    assert normalize_line("  • Share!  ") == "share"
    assert normalize_line("Advertisement:") == normalize_line("ADVERTISEMENT")


# --------------------------------------------------------------------------------------------------------
# Site templates
# --------------------------------------------------------------------------------------------------------

NAV = ["Daily Herald", "News | Sport | Culture", "Log in"]
FOOTER = "Daily Herald is published by Herald Media Group, Riverside"
ARTICLES = [
    [
        "Council approves budget after long debate",
        P1,
        P2,
    ],
    [
        "Football club signs young striker",
        "The club confirmed on Tuesday that the 19-year-old striker has signed a four-year contract.",
        # merely repeats a phrase of the footer: must stay
        "The club said the deal was negotiated by Herald Media Group, Riverside, which owns a stake in it.",
    ],
    [
        "Heavy snow expected in the north",
        "Forecasters warned on Wednesday that up to forty centimetres of snow could fall by the weekend.",
        "Schools in three districts have already announced that they will close on Friday as a precaution.",
    ],
    [
        "New tram line to open in spring",
        "The new tram line connecting the airport to the city centre will open in April, officials said.",
        "Tickets will cost the same as on the existing lines, and trams will run every ten minutes.",
    ],
]


def _site_docs() -> list[str]:
    return ["\n".join([*NAV, head, *body, FOOTER, "Log in"]) for head, *body in ARTICLES]


def test_template_learns_nav_and_footer() -> None:
    tpl = SiteTemplate()
    docs = _site_docs()
    for i, text in enumerate(docs):
        tpl.observe(f"doc-{i}", text)
    assert tpl.n_docs == 4
    for line in [*NAV, FOOTER]:
        assert tpl.is_template(line), line
    assert not tpl.is_template(ARTICLES[1][2])
    for (head, *body), text in zip(ARTICLES, docs, strict=True):
        result = clean_text(text, template=tpl)
        assert result.title == head
        assert kept_lines(result) == body
        assert reasons(result)[FOOTER] == "site_template"
        assert reasons(result)["Daily Herald"] == "site_template"


def test_template_observe_is_idempotent_and_needs_distinct_documents() -> None:
    tpl = SiteTemplate()
    text = _site_docs()[0]
    for _ in range(5):
        tpl.observe("same-id", text)
    assert tpl.n_docs == 1
    assert not tpl.is_template(FOOTER)
    # a line repeated many times inside one document is not template
    tpl2 = SiteTemplate()
    tpl2.observe("a", "\n".join([P1, "Breaking", "Breaking", "Breaking", "Breaking"]))
    assert tpl2.count("Breaking") == 1 and not tpl2.is_template("Breaking")


def test_template_ignores_near_duplicate_documents() -> None:
    """Three copies of one article (an update, a re-post) are not three different articles."""
    tpl = SiteTemplate()
    sub = "What happens next for the city"
    base = [P1, sub, P2, P3, P4]
    for i in range(4):
        tpl.observe(f"copy-{i}", "\n".join(base + [f"Updated version {i}."]))
    assert tpl.n_docs == 1
    result = clean_text("\n".join(base), template=tpl)
    assert kept_lines(result) == base


def test_template_counts_identical_texts_once() -> None:
    tpl = SiteTemplate()
    short = "\n".join(["Brief: water outage in the old town", P1])
    for i in range(5):
        tpl.observe(f"repost-{i}", short)
    assert tpl.n_docs == 1
    assert not tpl.is_template("Brief: water outage in the old town")


def test_template_needs_share_and_min_docs() -> None:
    tpl = SiteTemplate(min_docs=3)
    for i in range(20):
        lines = [f"Unique paragraph number {i} tells its own story about event {i} in the city today."]
        if i < 3:
            lines.append("Weekend special")
        tpl.observe(str(i), "\n".join(lines))
    assert tpl.count("Weekend special") == 3
    assert not tpl.is_template("Weekend special")  # 3 of 20 documents is not a good share


def test_long_repeated_background_paragraph_is_kept_inside_body() -> None:
    background = (
        "The city has been debating the future of its public transport network since the old tram depot "
        "closed in 2019."
    )
    docs = [
        "\n".join([f"Headline number {i} about the city", f"Story {i} starts with its own first paragraph here.",
                   background, f"Story {i} ends with a different closing paragraph as well today."])
        for i in range(8)
    ]
    tpl = SiteTemplate()
    for i, d in enumerate(docs):
        tpl.observe(str(i), d)
    assert tpl.is_template(background)  # enough evidence ...
    for d in docs:  # ... but no site-speak, and sandwiched between body paragraphs: kept
        assert background in kept_lines(clean_text(d, template=tpl))


def test_template_keeps_outlet_structure_labels() -> None:
    """Labels such as 'Background:' repeat in every article of an outlet but are its article structure."""
    docs = []
    for i in range(5):
        tail = [f"• Item {i} one", f"• Item {i} two"] if i == 3 else [f"• Bullet {i}: the plan also covers schools."]
        docs.append("\n".join([*NAV, f"Headline number {i} about the city", f"Paragraph one of story {i} tells "
                               "what happened in the city on Monday.", "Details:", f"Paragraph two of story {i} "
                               "gives the details of the decision.", "Background:", *tail, FOOTER]))
    tpl = SiteTemplate()
    for i, d in enumerate(docs):
        tpl.observe(str(i), d)
    assert tpl.is_template("Background:") and tpl.is_template("Details:")
    for i, d in enumerate(docs):
        kept = kept_lines(clean_text(d, template=tpl))
        assert "Details:" in kept and "Background:" in kept
        assert FOOTER not in kept and NAV[0] not in kept
        assert len(kept) == (6 if i == 3 else 5)


def test_template_round_trip() -> None:
    tpl = SiteTemplate()
    for i, text in enumerate(_site_docs()):
        tpl.observe(f"doc-{i}", text)
    data = json.loads(json.dumps(tpl.to_dict()))
    tpl2 = SiteTemplate.from_dict(data)
    assert tpl2.n_docs == tpl.n_docs and len(tpl2) == len(tpl)
    for line in [*NAV, FOOTER, ARTICLES[1][2], P1]:
        assert tpl2.is_template(line) == tpl.is_template(line)
    tpl2.observe("doc-0", _site_docs()[0])  # ids survive the round trip
    assert tpl2.n_docs == tpl.n_docs
    with pytest.raises(ValueError):
        SiteTemplate.from_dict({"version": 99})
    with pytest.raises(ValueError):
        SiteTemplate.from_dict({**data, "counts": ""})


def test_template_memory_is_bounded() -> None:
    tpl = SiteTemplate(max_lines=200, window=50, max_doc_ids=30)
    for i in range(120):
        tpl.observe(str(i), "\n".join([FOOTER, *[f"Line {i}-{j} of a unique story." for j in range(10)]]))
    assert len(tpl) <= 200
    assert len(base64.b64decode(tpl.to_dict()["doc_ids"])) // 8 <= 30
    assert len(json.dumps(tpl.to_dict())) < 200 * 20 + 30 * 12 + 500  # compact state
    assert tpl.n_docs <= 50
    assert tpl.is_template(FOOTER)


def test_clean_documents_learns_per_source() -> None:
    docs = [{"id": f"h{i}", "source": "herald", "text": t} for i, t in enumerate(_site_docs())]
    # another source sharing nothing with the herald: nothing learned across sources
    docs.insert(2, {"id": "other", "source": "other", "text": "\n".join([*NAV, P3, P4, FOOTER])})
    out = list(clean_documents(docs))
    assert [o["id"] for o in out] == [d["id"] for d in docs]
    herald = [o for o in out if o["id"].startswith("h")]
    for o, (_, *body) in zip(herald, ARTICLES, strict=True):
        assert o["text"].splitlines() == body
        assert [FOOTER, "site_template"] in o["removed"]
    other = next(o for o in out if o["id"] == "other")
    assert FOOTER in other["text"].splitlines()
    assert set(other) >= {"id", "title", "text", "authors", "published_at", "syndicated_from", "removed"}


def test_pipeline_date_precedence_prefers_zoned_dates() -> None:
    """What `build_articles` stores (always UTC): page metadata, then a zoned date from the text, then the
    feed's, then a zoneless text date read as UTC, then the URL's."""
    from pipeline.records import Extracted
    from pipeline.run import _publication_time

    meta = datetime(2025, 3, 7, 7, 0, tzinfo=UTC)
    feed = datetime(2025, 3, 7, 6, 5, tzinfo=UTC)
    url = datetime(2025, 3, 7, tzinfo=UTC)
    naive, zoned = datetime(2025, 3, 7, 8, 5), datetime(2025, 3, 7, 8, 5, tzinfo=UTC)
    assert _publication_time(Extracted("ok", published_at=meta, published_source="meta"), zoned) == (meta, "meta")
    assert _publication_time(Extracted("ok", published_at=feed, published_source="feed"), zoned) == (zoned, "text")
    assert _publication_time(Extracted("ok", published_at=feed, published_source="feed"), naive) == (feed, "feed")
    assert _publication_time(Extracted("ok", published_at=url, published_source="url"), naive) == (zoned, "text")
    assert _publication_time(Extracted("ok", published_at=url, published_source="url"), None) == (url, "url")
    assert _publication_time(Extracted("ok"), None) == (None, None)


def test_single_spaced_collapses_exactly_what_regex_whitespace_matches() -> None:
    """single_spaced splits with str.split(); it must treat as space exactly the characters `\\s` matches."""
    import re
    import sys

    from pipeline.clean import single_spaced

    spaces = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(r"\s", c) or c.isspace())
    for text in (f"{spaces}a{spaces}b c\u200b d{spaces}", "x", "", " \u00a0\u3000 ", "\x1c\x1d\x1e\x1fword\x85"):
        assert single_spaced(text) == re.sub(r"\s+", " ", text).strip()
