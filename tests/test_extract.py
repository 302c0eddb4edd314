"""Tests of the extract stage: golden pages (tests/golden/extract/<name>.html + <name>.json, written by
hand and checked in) and unit tests of the edge cases (not HTML, deep nesting, encodings, walls)."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.extract import (
    benchmark_text,
    extract_jsonl,
    extract_page,
    extracted_to_dict,
    parse_date,
)
from pipeline.records import EXTRACTION_STATUSES, Extracted

GOLDEN = Path(__file__).parent / "golden" / "extract"
GOLDEN_NAMES = sorted(p.stem for p in GOLDEN.glob("*.html"))
EXACT_FIELDS = (
    "title", "status", "published_at", "published_source", "authors", "language", "canonical_url",
    "site_name", "description", "tags", "syndicated_from",
)  # fmt: skip
OUTPUT_KEYS = [
    "id", "title", "text", "published_at", "published_source", "authors", "language", "status",
    "canonical_url", "site_name", "description", "tags", "syndicated_from", "error",
]  # fmt: skip

PARAGRAPHS = [
    "The regional water board announced on Tuesday that the reservoir north of the town has reached its highest level in a decade after weeks of steady rain.",
    "Engineers opened two of the overflow gates as a precaution and said the dam itself was in good condition, with no sign of damage after the winter storms.",
    "Residents living downstream were asked to keep away from the river banks until the end of the week, when the water level is expected to fall again.",
    "The board said the full reservoir would secure the supply for the summer months and that no restrictions on garden watering were planned this year.",
]


def article_html(
    paragraphs: list[str] = PARAGRAPHS,
    *,
    head: str = "",
    before: str = "",
    after: str = "",
    title: str = "Reservoir reaches highest level in a decade",
    lang: str = "en",
) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
        f'<body><nav><a href="/">Home</a> <a href="/news">News</a></nav>{before}'
        f"<article><h1>{title}</h1>{body}{after}</article>"
        '<footer><a href="/about">About</a> © 2024 Example Media</footer></body></html>'
    )


# ------------------------------------------------------------------------------------------ golden


def test_golden_pages_are_present():
    assert len(GOLDEN_NAMES) >= 6
    for name in GOLDEN_NAMES:
        assert (GOLDEN / f"{name}.json").exists(), f"{name}.html has no {name}.json"


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden(name: str, as_bytes: bool):
    expected = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    raw = (GOLDEN / f"{name}.html").read_bytes()
    page: str | bytes = raw if as_bytes else raw.decode("utf-8")
    inputs = expected.get("input", {})
    feed = inputs.get("feed_published_at")
    record = extract_page(
        page, inputs.get("url"), feed_published_at=datetime.fromisoformat(feed) if feed else None
    )
    got = extracted_to_dict(record)

    for field in EXACT_FIELDS:
        if field in expected:
            assert got[field] == expected[field], f"{name}: {field}"
    assert record.status in EXTRACTION_STATUSES
    if record.status == "ok":
        assert record.text and record.error is None
        assert "\n\n" not in record.text  # one paragraph a line
        for snippet in expected.get("text_contains", []):
            assert snippet in record.text, f"{name}: missing {snippet!r}"
        for snippet in expected.get("text_excludes", []):
            assert snippet not in record.text, f"{name}: leaked {snippet!r}"
    else:
        assert record.text is None
    if record.published_at is not None:
        assert record.published_at.tzinfo is not None and record.published_at.utcoffset().total_seconds() == 0


def test_golden_pages_are_thread_safe():
    pages = [(GOLDEN / f"{n}.html").read_text(encoding="utf-8") for n in GOLDEN_NAMES]
    sequential = [extracted_to_dict(extract_page(p)) for p in pages]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda p: extracted_to_dict(extract_page(p)), pages * 3))
    assert parallel == sequential * 3


# ------------------------------------------------------------------------------------------ not HTML


@pytest.mark.parametrize(
    "payload",
    [
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01",
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    ],
    ids=["pdf", "png", "jpeg", "gif", "zip"],
)
def test_binary_payloads_are_not_html(payload: bytes):
    record = extract_page(payload + bytes(range(256)) * 4, "https://example.org/file")
    assert record.status == "not_html"
    assert record.text is None and record.title is None
    assert record.error and "not HTML" in record.error


@pytest.mark.parametrize(
    "document",
    [
        '{"version": "https://jsonfeed.org/version/1.1", "items": []}',
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>x</title></channel></rss>',
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>',
        "Just some plain text without any markup at all, long enough to look like a document.",
        "",
    ],
    ids=["json", "rss", "atom-bytes", "plain-text", "empty"],
)
def test_feeds_and_text_are_not_html(document: str | bytes):
    record = extract_page(document)
    assert record.status == "not_html"
    assert record.text is None


def test_xhtml_with_xml_declaration_is_html():
    page = '<?xml version="1.0" encoding="utf-8"?>\n' + article_html()
    record = extract_page(page)
    assert record.status == "ok"
    assert PARAGRAPHS[0] in record.text


# ------------------------------------------------------------------------------------------ robustness


def test_deep_nesting_is_flattened_quickly():
    n = 50_000
    page = (
        "<html><head><title>Deep</title></head><body><article>"
        + "".join(f"<p>{p}</p>" for p in PARAGRAPHS[:2])
        + "<div>" * n
        + "<p>Deep inside.</p>"
        + "</div>" * n
        + "".join(f"<p>{p}</p>" for p in PARAGRAPHS[2:])
        + "</article></body></html>"
    )
    started = time.perf_counter()
    record = extract_page(page)
    assert time.perf_counter() - started < 5
    assert record.status in EXTRACTION_STATUSES
    assert record.status == "ok"
    # libxml2 alone would silently drop everything after the 256th level
    assert PARAGRAPHS[0] in record.text and PARAGRAPHS[3] in record.text


def test_deep_nesting_without_content_never_raises():
    n = 50_000
    started = time.perf_counter()
    record = extract_page("<div>" * n + "x" + "</div>" * n)
    assert time.perf_counter() - started < 5
    assert record.status in {"error", "no_article", "too_short"}
    assert record.text is None


@pytest.mark.parametrize("value", [None, 42, ["<p>x</p>"]])
def test_unsupported_input_is_an_error(value):
    record = extract_page(value)  # type: ignore[arg-type]
    assert record.status == "error" and record.error


def test_nul_bytes_are_stripped():
    page = article_html([PARAGRAPHS[0].replace("reservoir", "reser\x00voir"), *PARAGRAPHS[1:]])
    for variant in (page, page.encode("utf-8")):
        record = extract_page(variant)
        assert record.status == "ok"
        assert "\x00" not in record.text
        assert "the reservoir north of the town" in record.text


def test_cp1251_bytes_with_meta_charset():
    paragraphs = [
        "Городской совет во вторник утвердил план реконструкции набережной, работы начнутся весной и продлятся два года.",
        "По словам мэра, на набережной появятся новые скамейки, велосипедная дорожка и освещение вдоль всей реки.",
        "Жители смогут обсудить проект на открытых слушаниях, которые пройдут в здании библиотеки в конце месяца.",
    ]
    page = article_html(paragraphs, title="Набережную реконструируют", lang="ru").replace(
        '<meta charset="utf-8">', '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
    )
    record = extract_page(page.encode("cp1251"))
    assert record.status == "ok"
    assert record.title == "Набережную реконструируют"
    assert paragraphs[0] in record.text
    assert record.language == "ru"


def test_utf16_with_bom():
    record = extract_page(b"\xff\xfe" + article_html().encode("utf-16-le"))
    assert record.status == "ok"
    assert PARAGRAPHS[1] in record.text


def test_wrong_declared_charset_prefers_valid_utf8():
    page = article_html([p.replace("decade", "décennie") for p in PARAGRAPHS]).replace(
        '<meta charset="utf-8">', '<meta charset="iso-8859-1">'
    )
    record = extract_page(page.encode("utf-8"))
    assert "décennie" in record.text


# ------------------------------------------------------------------------------------------ statuses


def test_too_short_depends_on_min_words():
    page = article_html(PARAGRAPHS[:1])
    short = extract_page(page)
    assert short.status == "too_short" and short.text is None
    assert short.title == "Reservoir reaches highest level in a decade"
    ok = extract_page(page, min_words=10)
    assert ok.status == "ok" and PARAGRAPHS[0] in ok.text


def test_subscribe_prompt_at_the_end_is_paywalled():
    page = article_html(
        PARAGRAPHS[:3], after="<p>This article is for subscribers only. Subscribe to continue reading.</p>"
    )
    record = extract_page(page)
    assert record.status == "paywalled"
    assert record.text is None


def test_not_free_but_complete_text_is_ok():
    # some publishers mark every article isAccessibleForFree=false and still serve the full text
    ld = (
        '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle",'
        ' "headline": "x", "isAccessibleForFree": false}</script>'
    )
    record = extract_page(article_html(PARAGRAPHS * 3, head=ld))
    assert record.status == "ok"


def test_cookie_banner_around_an_article_is_removed():
    banner = (
        '<div class="cookie-consent"><p>We and our partners use cookies to personalise ads and content. '
        "By clicking Accept all you consent to the use of cookies.</p><button>Accept all</button></div>"
    )
    record = extract_page(article_html(before=banner))
    assert record.status == "ok"
    assert "cookies" not in record.text


# ------------------------------------------------------------------------------------------ metadata


@pytest.mark.parametrize(
    ("meta_author", "expected"),
    [
        ("By JANE DOE and JOHN SMITH", ["Jane Doe", "John Smith"]),
        ("Anna Berg, Reuters", ["Anna Berg"]),
        ("Anna Berg; Carl Weiss & Dora Lind", ["Anna Berg", "Carl Weiss", "Dora Lind"]),
        ("Written by: Mary-Ann O'BRIEN", ["Mary-Ann O'BRIEN"]),
        ("MARY-ANN O'BRIEN", ["Mary-Ann O'Brien"]),
        ("Sam Lee | sam.lee@example.com | @samlee", ["Sam Lee"]),
        ("@samlee", []),
        ("https://www.facebook.com/someone", []),
    ],
)
def test_author_normalisation(meta_author: str, expected: list[str]):
    record = extract_page(article_html(head=f'<meta name="author" content="{meta_author}">'))
    assert record.authors == expected


def test_date_preference_jsonld_over_meta_over_time():
    ld = (
        '<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [{"@type": "WebSite",'
        ' "name": "x"}, {"@type": "NewsArticle", "headline": "x", "datePublished": "2024-05-17T10:00:00-04:00"}]}'
        "</script>"
    )
    meta = '<meta property="article:published_time" content="2024-05-16T09:00:00Z">'
    time_el = '<p class="dateline"><time datetime="2024-05-15T08:00:00Z">15 May</time></p>'
    url = "https://example.org/2024/05/14/story/"
    feed = datetime(2024, 5, 13, 7, 0, tzinfo=UTC)

    def published(head: str, before_text: str = "", link: str | None = url) -> tuple[str | None, str | None]:
        record = extract_page(
            article_html(PARAGRAPHS, head=head, after=before_text), link, feed_published_at=feed
        )
        return (record.published_at.isoformat() if record.published_at else None), record.published_source

    assert published(ld + meta, time_el) == ("2024-05-17T14:00:00+00:00", "jsonld")
    assert published(meta, time_el) == ("2024-05-16T09:00:00+00:00", "meta")
    assert published("", time_el) == ("2024-05-15T08:00:00+00:00", "time")
    assert published("") == ("2024-05-14T00:00:00+00:00", "url")
    assert published("", link="https://example.org/story") == ("2024-05-13T07:00:00+00:00", "feed")


def test_render_date_in_header_is_not_a_publication_date():
    page = article_html().replace(
        "<nav>",
        '<header><span class="today">Today is <time datetime="2024-06-03">3 June 2024</time></span></header><nav>',
    )
    record = extract_page(page, "https://example.org/news/story")
    assert record.published_at is None and record.published_source is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-17T10:00:00Z", "2024-05-17T10:00:00+00:00"),
        ("2024-05-17T12:00:00+0200", "2024-05-17T10:00:00+00:00"),
        ("2024-05-17 10:00:00", "2024-05-17T10:00:00+00:00"),
        ("2024-05-17", "2024-05-17T00:00:00+00:00"),
        ("Fri, 17 May 2024 10:00:00 GMT", "2024-05-17T10:00:00+00:00"),
        ("May 17, 2024 6:00 AM EDT", "2024-05-17T10:00:00+00:00"),
        ("17 May 2024", "2024-05-17T00:00:00+00:00"),
        ("1715940000", "2024-05-17T10:00:00+00:00"),
        ("1715940000000", "2024-05-17T10:00:00+00:00"),
        ("not a date", None),
        ("1970-01-01T00:00:00Z", None),
        ("2999-01-01T00:00:00Z", None),
    ],
)
def test_parse_date(value: str, expected: str | None):
    parsed = parse_date(value)
    assert (parsed.isoformat() if parsed else None) == expected


def test_language_is_none_for_very_short_text():
    record = extract_page("<html><body><p>Hi there</p></body></html>")
    assert record.language is None


# ------------------------------------------------------------------------------------------ JSONL contract


def test_extract_jsonl_contract():
    lines = [
        {"id": "a", "html": article_html(), "url": "https://example.org/2024/05/17/reservoir/"},
        {"id": 2, "html": "%PDF-1.4 binary"},
        {"id": "c"},
        {"id": "d", "html": article_html(PARAGRAPHS[:1])},
    ]
    out = list(extract_jsonl(iter(lines)))
    assert [o["id"] for o in out] == ["a", 2, "c", "d"]
    for o in out:
        assert list(o) == OUTPUT_KEYS
        assert o["status"] in EXTRACTION_STATUSES
        json.dumps(o)  # serialisable as is
    first = out[0]
    assert first["status"] == "ok" and PARAGRAPHS[0] in first["text"]
    assert first["published_at"] == "2024-05-17T00:00:00+00:00" and first["published_source"] == "url"
    assert datetime.fromisoformat(first["published_at"]).tzinfo is not None
    assert first["title"] == "Reservoir reaches highest level in a decade"
    assert first["language"] == "en" and first["error"] is None
    assert out[1]["status"] == "not_html" and out[1]["text"] is None
    assert out[2]["status"] == "error" and out[2]["error"]
    assert out[3]["status"] == "too_short" and out[3]["text"] is None


def test_extracted_to_dict():
    record = Extracted(status="ok", title="T", text="x", published_at=datetime(2024, 5, 17, 10, tzinfo=UTC))
    data = extracted_to_dict(record)
    assert list(data) == OUTPUT_KEYS[1:]
    assert data["published_at"] == "2024-05-17T10:00:00+00:00"
    assert data["authors"] == [] and data["tags"] == []


def test_benchmark_text_returns_text_whatever_the_status():
    page = article_html(PARAGRAPHS[:1])
    assert extract_page(page).status == "too_short"
    assert PARAGRAPHS[0] in benchmark_text(page)
    assert benchmark_text("%PDF-1.4") == ""


def test_subscription_box_after_a_complete_article_is_cut_not_paywalled():
    long_text = [f"{p} Paragraph {i} adds more detail to the story." for i, p in enumerate(PARAGRAPHS * 9)]
    page = article_html(long_text, after="<p>Already a subscriber? Log in to continue reading.</p>")
    record = extract_page(page)
    assert record.status == "ok"
    assert "Already a subscriber" not in record.text
    assert long_text[-1] in record.text


def test_consent_notice_only_is_a_consent_wall_even_without_markup_hints():
    notice = [
        "We and our partners use cookies and similar technologies to store and access information on your device.",
        "We use them for personalised ads and content, ad and content measurement, and audience insights.",
        "You can accept all, reject all or manage preferences at any time in the privacy settings of this site.",
    ]
    record = extract_page(article_html(notice, title="Your privacy choices"))
    assert record.status == "consent_wall"
    assert record.text is None


def test_language_model_cache_matches_the_packaged_model(tmp_path, monkeypatch):
    """The unpacked copy of py3langid's model (written on first use) ranks exactly as the packaged one."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    import pipeline.extract as ex

    monkeypatch.setenv("NEWSINGEST_CACHE_DIR", str(tmp_path / "cache"))
    assert ex._cached_language_model() is not None  # unpacks into the cache
    # the copy, its weights in float32 and its transition table, each mapped; no temporary file left
    assert len(list((tmp_path / "cache").iterdir())) == 3
    ptc, pc, classes, nextmove, row, output = ex._cached_language_model()  # reads the copy
    assert ptc.dtype == "float32" and nextmove.dtype == "uint32" and not nextmove.flags.owndata
    fast = LanguageIdentifier(ptc, pc, classes, nextmove, output, norm_probs=True, tk_row=row)
    packaged = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    for text in ("Le gouvernement a annoncé mardi une nouvelle réforme des retraites.",
                 "Die Regierung hat am Dienstag eine neue Rentenreform angekündigt.",
                 "The government announced a new pension reform on Tuesday."):
        assert fast.rank(text)[:5] == packaged.rank(text)[:5]


def test_language_model_cache_that_cannot_be_written_falls_back(tmp_path, monkeypatch):
    import pipeline.extract as ex

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("NEWSINGEST_CACHE_DIR", str(blocker / "cache"))
    assert ex._cached_language_model() is None
    ex._language_identifier.cache_clear()
    try:
        assert ex._language("The government announced a new pension reform on Tuesday, officials said.", None) == "en"
    finally:
        ex._language_identifier.cache_clear()


def test_language_dfa_forgets_all_but_its_last_bytes():
    """The vectorised walk (pipeline.extract._dfa_states) relies on this property of py3langid's model: from
    any two states, the same _LANGID_DFA_MEMORY bytes lead to the same state. Pairs of distinct states are
    followed over every byte until none is left."""
    import numpy as np

    import pipeline.extract as ex

    identifier = ex._language_identifier()
    rows = np.frombuffer(identifier.tk_nextmove, dtype=f"u{identifier.tk_nextmove.itemsize}").reshape(-1, 256)
    delta = rows[np.frombuffer(identifier.tk_row, dtype=f"u{identifier.tk_row.itemsize}")]  # state x byte
    states = len(delta)
    a, b = np.arange(1, states, dtype=np.int64), np.zeros(states - 1, dtype=np.int64)  # (any state, start)
    for _ in range(ex._LANGID_DFA_MEMORY):
        next_a, next_b = delta[a].ravel().astype(np.int64), delta[b].ravel().astype(np.int64)
        apart = next_a != next_b
        pairs = np.unique(next_a[apart] * states + next_b[apart])
        a, b = pairs // states, pairs % states
    assert len(a) == 0, f"{len(a)} state pairs still apart after {ex._LANGID_DFA_MEMORY} bytes"


def test_language_feature_counts_match_py3langid():
    """Same features, counts and first-seen order as py3langid's own DFA walk (its scores sum in that order)."""
    import random

    from py3langid.langid import MODEL_FILE, LanguageIdentifier, visit_counts

    import pipeline.extract as ex

    identifier = ex._language_identifier()
    packaged = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    assert packaged.nb_ptc.dtype == "float16" and identifier.nb_ptc.dtype == "float32"
    rnd = random.Random(7)
    texts = [
        "Le gouvernement a annoncé mardi une nouvelle réforme des retraites. " * 20,
        "Правительство во вторник объявило о новой пенсионной реформе. " * 10,
        "".join(chr(rnd.randrange(32, 0x3000)) for _ in range(1500)),
    ]
    samples = [identifier._encode(t) for t in texts]
    samples += [bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 12))) for _ in range(200)]
    for data in samples:
        expected = visit_counts(identifier.tk_nextmove, identifier._rowbase, identifier.tk_output, data)
        got = ex._dfa_feature_counts(identifier._np_nextmove, identifier._np_rowbase, identifier._np_output, data)
        assert (None if expected is None else list(expected.items())) == (
            None if got is None else list(zip(got[0].tolist(), got[1].tolist(), strict=True)))
        # and the scores, to the bit, as py3langid's own walk and sparse scoring give them, over the packaged
        # model's float16 weights (ours are float32)
        assert identifier._raw_score(data).tobytes() == LanguageIdentifier._raw_score(packaged, data).tobytes()


def test_norm_space_collapses_exactly_what_regex_whitespace_matches():
    """_norm_space splits with str.split(); it must treat as space exactly the characters `\\s` matches."""
    import re
    import sys

    from pipeline.extract import _norm_space

    spaces = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(r"\s", c) or c.isspace())
    for text in (f"{spaces}a{spaces}b c\u200b d{spaces}", "x", "", " \u00a0\u3000 ", "\x1c\x1d\x1e\x1fword\x85"):
        assert _norm_space(text) == re.sub(r"\s+", " ", text).strip()
    assert _norm_space(None) == ""


def _regex_examples(pattern: re.Pattern, limit: int = 20_000) -> list[str]:
    """Strings matching `pattern`: every branch and every listed character of a class, each repeat taken at
    its minimum and once more (a negated class or `.` is an "x", a digit class a "7", an anchor nothing)."""
    from itertools import product
    from re import _constants as c
    from re import _parser

    def seq(items) -> list[str]:
        out = [""]
        for op, av in items:
            out = [a + b for a, b in product(out, node(op, av))][:limit]
        return out

    def node(op, av) -> list[str]:
        if op is c.LITERAL:
            return [chr(av)]
        if op in (c.NOT_LITERAL, c.ANY):
            return ["x"]
        if op is c.AT:
            return [""]
        if op is c.IN:
            if any(o is c.NEGATE for o, _ in av):
                return ["x"]
            return [chr(a) if o is c.LITERAL else "7" for o, a in av]
        if op is c.BRANCH:
            return [s for branch in av[1] for s in seq(branch)]
        if op is c.SUBPATTERN:
            return seq(av[-1])
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, inner = av
            counts = {low, min(low + 1, high)}
            return [s for n in counts for s in seq(list(inner) * n)]
        raise AssertionError(f"unsupported regex node {op}")

    return seq(_parser.parse(pattern.pattern, pattern.flags))


@pytest.mark.parametrize("which", ["consent", "paywall"])
def test_phrase_screens_pass_every_match_of_their_regex(which: str):
    """_has_consent_text / _has_paywall_text screen texts by phrases before the case-insensitive regex:
    every match of the regex, in any case the regex accepts (including the non-ASCII letters re.I takes for
    ASCII ones), must contain a phrase."""
    import pipeline.extract as ex

    regex, has = {"consent": (ex._CONSENT_TEXT_RE, ex._has_consent_text),
                  "paywall": (ex._PAYWALL_TEXT_RE, ex._has_paywall_text)}[which]
    examples = _regex_examples(regex)
    assert len(examples) > 30
    for example in examples:
        for variant in (example, example.upper(), example.title(), example.replace("i", "ı"),
                        example.replace("i", "İ"), example.replace("s", "ſ"), example.replace("k", "\u212a")):
            text = f"Before. {variant} after"
            assert regex.search(text), text
            assert has(text), f"{text!r} matches the regex but no phrase"


_SCAN_SAMPLE = """<html><head><title>t</title></head><body class="b">
<div id="main" data-x="1"><p class="lead" style="x">Lead <a href="/a">link</a></p>
<span hidden>hidden</span><i data-module="promo">m</i><img src="x.png" alt="no scanned attribute">
<section aria-label="Share bar" role="toolbar"><b itemprop="author">A</b><u data-component="c"></u></section>
<em class="">empty class</em><a href="/b" rel="tag">tag</a></div>
<ul><li><a href="/1">One story</a></li><li> <a href="/2">Two <b>stories</b></a>\u00a0</li>
<li>Words <a href="/3">three</a> and more words around it</li><li><a href="/4"><a href="/5">nested</a></a></li>
<li><a href="/6"> </a></li><li><a href="/7">x</a><a href="/8">y</a></li><li>\u2003<a href="/9">nbsp</a>!</li>
<li>no link</li><li></li></ul></body></html>"""


def test_the_scans_verdict_from_tag_and_attributes_is_the_per_element_reading():
    """The page scan judges an element by its tag and attributes once per distinct pair (cached): the same
    verdict as reading each element's attributes, on the sample and on every golden page."""
    import lxml.html

    import pipeline.extract as ex

    def reading(el) -> tuple[int, bool, bool]:  # the scan's tests, element by element
        if el.tag in ex._NEVER_PRUNED or ex._SCANNED_ATTRIBUTES.isdisjoint(el.keys()):
            return ex._NO_VERDICT
        signature = ex._signature(el.attrib)
        consent, paywall, boilerplate = ex._signature_flags(signature) if signature else (False,) * 3
        role = (el.get("role") or "").lower()
        box = ex._CONSENT_BOX if consent or role in ("dialog", "alertdialog") else ex._PAYWALL_BOX if paywall else 0
        if el.get("hidden") is not None or role in ex._PRUNE_ROLES or boilerplate:
            return box, True, False
        itemprop = el.get("itemprop")
        return box, False, bool(itemprop and itemprop.lower() in ex._METADATA_ITEMPROPS and el.tag not in ("meta", "link"))

    pages = [_SCAN_SAMPLE] + [(GOLDEN / f"{name}.html").read_text(encoding="utf-8") for name in GOLDEN_NAMES]
    verdicts = set()
    for html in pages:
        body = lxml.html.document_fromstring(html).find("body")
        for el in ex._DESCENDANTS_WITH_ATTRIBUTES(body):
            verdict = ex._attribute_verdict(el.tag, tuple(el.items()))
            assert verdict == reading(el), lxml.html.tostring(el)[:200]
            scanned = tuple(kv for kv in el.items() if kv[0] in ex._SCANNED_ATTRIBUTES)  # the scan's key
            assert ex._attribute_verdict(el.tag, scanned) == verdict
            verdicts.add(verdict)
    assert {ex._NO_VERDICT, (0, True, False)} <= verdicts  # elements left alone and boilerplate blocks


def test_item_link_share_is_the_link_text_share_of_an_item_with_links():
    """List items of one link skip the walk over their links: the share must be what _link_text_share gives
    (None: no link or no text, which makes the list no link list)."""
    import lxml.html

    import pipeline.extract as ex

    items = list(lxml.html.document_fromstring(_SCAN_SAMPLE).iter("li"))
    assert len(items) == 9
    for li in items:
        size = len(ex._elem_text(li)) if li.find(".//a") is not None else 0
        expected = ex._link_text_share(li, size) if size else None
        assert ex._item_link_share(li) == expected, lxml.html.tostring(li)


def test_author_candidates_are_the_elements_whose_attributes_match():
    """The author XPath tests attributes and returns their elements: the same elements, in document order and
    once each, as testing the attributes on every element."""
    import lxml.html
    from lxml import etree

    import pipeline.extract as ex

    root = lxml.html.document_fromstring(
        """<html><head><meta itemprop="author" content="A"><link rel="author" href="/a"></head><body>
        <div class="byline author" rel="author" itemprop="author"><span class="author-name">B</span></div>
        <p class="coauthors">C</p><a rel="nofollow author" href="/c">D</a><i itemprop="Author">E</i>
        <section class="post"><b class="bylines" rel="author">F</b></section></body></html>"""
    )
    per_element = etree.XPath(
        "//*[@rel='author' or @itemprop='author' or contains(@class, 'byline') or contains(@class, 'author')]"
    )
    expected = per_element(root)
    assert [el.tag for el in expected] == ["meta", "link", "div", "span", "p", "b"]
    assert ex._AUTHOR_CANDIDATES_XPATH(root) == expected


def test_parsed_elements_have_lxml_html_classes():
    """_parse chooses lxml.html's element classes with a C lookup: every element (also of a copy, and one
    added later) must get the class lxml.html's own parser gives it."""
    import copy

    import lxml.html
    from lxml import etree

    import pipeline.extract as ex

    page = """<!DOCTYPE html><HTML><body><FORM action="/s"><LABEL>q <INPUT name="q"></LABEL>
        <select name="s"><option>a</option></select><textarea>t</textarea></FORM><div><P>text</P>
        <svg:form xmlns:svg="http://www.w3.org/2000/svg"></svg:form><Custom-Tag>x</Custom-Tag></div></body></HTML>"""
    root, _ = ex._parse(page)
    expected_root = lxml.html.document_fromstring(
        page,
        parser=lxml.html.HTMLParser(collect_ids=False, default_doctype=False, remove_comments=True, remove_pis=True),
    )
    for tree, expected_tree in ((root, expected_root), (copy.deepcopy(root), copy.deepcopy(expected_root))):
        etree.SubElement(tree.find("body"), "form")
        etree.SubElement(expected_tree.find("body"), "form")
        got = [(el.tag, type(el)) for el in tree.iter()]
        assert got == [(el.tag, type(el)) for el in expected_tree.iter()]
        assert {cls.__name__ for _, cls in got} >= {
            "HtmlElement", "FormElement", "InputElement", "LabelElement", "SelectElement", "TextareaElement",
        }  # fmt: skip


def test_invalid_xml_char_screen_agrees_with_the_regex():
    """_parse runs the invalid-character substitution only when a byte-level screen finds such a character:
    the screen must say yes exactly when the regex matches (every BMP character, surrogates included)."""
    import pipeline.extract as ex

    characters = [*map(chr, range(0x10000)), *map(chr, range(0x10000, 0x110000, 97)), "\U0010ffff"]
    for c in characters:
        text = f"<p>a{c}b</p>"
        assert ex._has_invalid_xml_chars(text) == (ex._INVALID_XML_CHARS_RE.search(text) is not None), hex(ord(c))
    assert not ex._has_invalid_xml_chars("".join(c for c in characters if not ex._INVALID_XML_CHARS_RE.match(c)))
    for c in map(chr, range(0x80)):  # ASCII texts (read as they are), at the start, in the middle, at the end
        for text in (f"{c}<p>ab</p>", f"<p>a{c}b</p>" * 50, f"<p>ab</p>{c}"):
            assert ex._has_invalid_xml_chars(text) == (ex._INVALID_XML_CHARS_RE.search(text) is not None), hex(ord(c))


def _spy_trafilatura(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, bool]]:
    import pipeline.extract as extract_module

    calls: list[tuple[bool, bool]] = []
    original = extract_module._trafilatura_text

    def spy(tree, url, precision, fast=True):  # noqa: ANN001, ANN202
        calls.append((precision, fast))
        return original(tree, url, precision, fast)

    monkeypatch.setattr(extract_module, "_trafilatura_text", spy)
    return calls


def test_fast_trafilatura_with_full_comparison_only_for_layout_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """trafilatura runs without its readability/jusText comparison (a third of its time), except when its
    text came out of a layout table, where that comparison is what separates article from headline lists."""
    paragraphs = "".join(
        "<p>" + " ".join(f"The council met on Tuesday to discuss item {i} of budget part {j}, which residents "
                         "had questioned for weeks." for i in range(4)) + "</p>"
        for j in range(5)
    )
    calls = _spy_trafilatura(monkeypatch)
    plain = f"<html><body><article><h1>Budget vote</h1>{paragraphs}</article></body></html>"
    assert extract_page(plain).status == "ok"
    assert calls == [(True, True)]
    calls.clear()
    table = f"<html><body><table><tr><td><h1>Budget vote</h1>{paragraphs}</td></tr></table></body></html>"
    assert "council met on Tuesday" in (extract_page(table).text or "")
    assert calls == [(True, True), (True, False)]
