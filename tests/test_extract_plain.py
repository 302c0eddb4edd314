"""The plain-body path of pipeline.extract (`_plain_body_text`): where it answers, its text is trafilatura's
on the same pruned tree, and it declines every shape where trafilatura's rules could answer otherwise."""

from __future__ import annotations

import gzip
import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ROOT, shared_path
from lxml import etree

from pipeline import extract as E

GOLDEN = Path(__file__).parent / "golden" / "extract"


def _pruned(html: bytes | str) -> tuple[etree._Element, str | None]:
    """The tree as `_extract` hands it to text extraction, and the page's h1 (which `_tidy_text` drops)."""
    root, _ = E._parse(E.decode_html(html) if isinstance(html, bytes) else html)
    scan = E._PageScan(root)
    E._merge_split_bodies(root)
    E._prune(scan)
    E._paragraphise(root)
    h1 = next(root.iter("h1"), None)
    return root, (E._norm_space(h1.text_content()) if h1 is not None else None)


def _compare(pages: list[tuple[bytes | str, str | None]]) -> tuple[int, list[str]]:
    """(pages the plain path answered, the URLs where its text differs from trafilatura's)."""
    answered, differ = 0, []
    for html, url in pages:
        root, h1 = _pruned(html)
        plain = E._plain_body_text(root)
        if plain is None:
            continue
        answered += 1
        if E._tidy_text(plain, None, h1) != E._tidy_text(E._trafilatura_main_text(root, url), None, h1):
            differ.append(url or "?")
    return answered, differ


def _loopweb_pages(n: int) -> list[tuple[bytes | str, str | None]]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import loopweb
    finally:
        sys.path.remove(str(ROOT / "bench"))
    outlets = loopweb.make_outlets(4)
    refs = loopweb.page_refs(outlets, n, datetime(2026, 12, 1, tzinfo=UTC), seed=5)
    rng = random.Random(5)
    return [(loopweb.render_page(outlets[r.host], r, refs[:10], rng), f"http://127.0.0.1/{r.path}") for r in refs]


def test_the_benchmark_web_takes_the_plain_path_with_trafilaturas_text() -> None:
    answered, differ = _compare(_loopweb_pages(40))
    assert differ == []
    assert answered == 40  # the path is alive: bench/e2e.py's pages are plain columns


def test_the_demo_web_pages_that_take_the_plain_path_get_trafilaturas_text() -> None:
    from pipeline.demo.web import DemoWeb

    site = DemoWeb().build_site("http://127.0.0.1:8787")
    pages = [(r.body, path) for path, r in sorted(site.items()) if r.content_type.startswith("text/html")]
    assert len(pages) > 20
    answered, differ = _compare(pages)
    assert differ == []


def test_golden_pages_that_take_the_plain_path_get_trafilaturas_text() -> None:
    pages = [(p.read_bytes(), p.name) for p in sorted(GOLDEN.glob("*.html"))]
    _, differ = _compare(pages)
    assert differ == []


def test_real_pages_that_take_the_plain_path_get_trafilaturas_text() -> None:
    bench = shared_path("extraction-benchmark")
    truth = json.loads((bench / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [(gzip.decompress((bench / "html" / f"{k}.html.gz").read_bytes()), v.get("url")) for k, v in truth.items()]
    answered, differ = _compare(pages)
    assert differ == []
    assert answered >= 3  # 7 of the 90 dev pages when this was written


# ------------------------------------------------------------------------------------------------ shapes

BODY = [
    "The regional water board announced on Tuesday that the reservoir north of the town has reached its highest "
    "level in a decade after weeks of steady rain, and that the gates would stay open.",
    "Engineers opened two of the overflow gates as a precaution and said the dam itself was in good condition, "
    "with no sign of damage after the winter storms that hit the valley in January.",
    "Residents living downstream were asked to keep away from the river banks until the end of the week, when "
    "the water level is expected to fall again according to the board's latest forecast.",
    "The board said the full reservoir would secure the supply for the summer months and that no restrictions "
    "on garden watering were planned this year, for the first time since the drought.",
    "Farmers in the lower valley welcomed the news, although several said the rain had come too late for the "
    "winter wheat, which had already suffered from the dry autumn and the early frosts.",
    "A public meeting on the long-term plan for the reservoir will be held at the town hall next month, the "
    "board said, and residents are invited to send their questions in advance by post.",
    "The last time the reservoir was this full was in the spring of 2016, when heavy snow melt filled it within "
    "a few days and the board had to open all four gates for nearly a week.",
]


def _page(column: str, *, around: str = "") -> str:
    return (f"<html><head><title>Reservoir full</title></head><body><header><a href='/'>Home</a></header>"
            f"<article><h1>Reservoir full</h1><div class='story-body'>{column}</div></article>{around}"
            f"<footer><p>Copyright 2026 The Valley Post. All rights reserved, all of them, everywhere.</p></footer>"
            f"</body></html>")


def _paras(texts: list[str] = BODY) -> str:
    return "".join(f"<p>{t}</p>" for t in texts)


def _plain(html: str) -> str | None:
    root, _ = _pruned(html)
    return E._plain_body_text(root)


def _same_as_trafilatura(html: str) -> str:
    root, h1 = _pruned(html)
    plain = E._plain_body_text(root)
    assert plain is not None
    assert E._tidy_text(plain, None, h1) == E._tidy_text(E._trafilatura_main_text(root, None), None, h1)
    return plain


def test_a_column_of_paragraphs_and_subheadings_is_read_directly() -> None:
    column = _paras(BODY[:3]) + "<h2>What happens next</h2>" + _paras(BODY[3:])
    text = _same_as_trafilatura(_page(column))
    assert text.split("\n") == [*BODY[:3], "What happens next", *BODY[3:]]


def test_inline_markup_figures_and_nested_wrappers_are_read_like_trafilatura() -> None:
    column = (f"<p>{BODY[0]} <strong>Officials</strong> said <em>so</em>.</p>"
              "<figure><img src='a.jpg'><figcaption>The dam in January. Photo: Staff</figcaption></figure>"
              f"<div><section>{_paras(BODY[1:4])}</section></div><script>var x = 1;</script>{_paras(BODY[4:])}")
    text = _same_as_trafilatura(_page(column))
    assert "Photo: Staff" not in text and "var x" not in text
    assert text.startswith(BODY[0])


def test_soft_hyphens_and_zero_width_characters_go_as_in_trafilatura() -> None:
    column = _paras([BODY[0].replace("reservoir", "reser\u00advoir"), BODY[1].replace("town", "to\u200bwn"), *BODY[2:]])
    text = _same_as_trafilatura(_page(column))
    assert "\u00ad" not in text and "\u200b" not in text


@pytest.mark.parametrize("column", [
    _paras(BODY[:3]) + "<ul><li>first point of the list</li><li>second point of the list</li></ul>" + _paras(BODY[3:]),
    _paras(BODY[:3]) + f"<blockquote><p>{BODY[3]}</p></blockquote>" + _paras(BODY[4:]),
    _paras(BODY[:3]) + "<table><tr><td>1</td><td>2</td></tr></table>" + _paras(BODY[3:]),
    _paras(BODY[:3]) + f"<p>{BODY[3]}<br>{BODY[4]}</p>" + _paras(BODY[5:]),
    _paras(BODY) + "<h2>Read next</h2>",  # trafilatura drops a trailing heading
    _paras(BODY[:3]) + "<p><a href='/x'>Water board raises its forecast for the summer again</a></p>" + _paras(BODY[3:]),
    _paras(BODY[:3]) + "<p>Twitter</p>" + _paras(BODY[3:]),  # a share label trafilatura filters out
    _paras(BODY[:3]) + f"<p class='hide-print'>{BODY[3]}</p>" + _paras(BODY[4:]),  # a class trafilatura discards
    _paras(BODY[:3]) + f"<p>{BODY[3]} <time>Tuesday</time></p>" + _paras(BODY[4:]),  # trafilatura deletes <time>
    _paras(BODY[:3]) + "<code>x = 1</code>" + _paras(BODY[3:]),
    _paras(BODY[:3]) + f"<p>{BODY[3][:50]}<span></span> {BODY[3][50:]}</p>" + _paras(BODY[4:]),
    _paras(BODY[:3]) + f"<p>{BODY[3]} <q>so it goes</q></p>" + _paras(BODY[4:]),
    _paras(BODY[:3]) + f"<p>{BODY[3]} <s>withdrawn</s></p>" + _paras(BODY[4:]),
    _paras(BODY[:3]) + "<hr>" + _paras(BODY[3:]),
    _paras(BODY[:3]) + f"<form><p>{BODY[3]}</p></form>" + _paras(BODY[4:]),
    "Loose text before the paragraphs" + _paras(BODY),
    _paras(BODY[:4] + [BODY[3]] + BODY[4:]),  # trafilatura deletes a long block repeating the one before it
    _paras(BODY[:2]),  # too short: trafilatura's balanced second opinion may differ
], ids=["list", "quote", "table", "line-break", "trailing-heading", "link-paragraph", "share-label",
        "discarded-class", "time-element", "code", "empty-span", "inline-quote", "struck-out", "rule", "form",
        "loose-text", "repeated-paragraph", "short"])
def test_shapes_where_trafilatura_may_differ_go_to_trafilatura(column: str) -> None:
    assert _plain(_page(column)) is None


def test_paragraphs_outside_the_column_send_the_page_to_trafilatura() -> None:
    sidebar = f"<div class='sidebar'><p>{BODY[0]}</p></div>"
    assert _plain(_page(_paras(BODY[1:]), around=sidebar)) is None
    # ... except in what trafilatura deletes whole (the footer above, an aside, a figure)
    aside = f"<aside><p>{BODY[0]}</p></aside>"
    assert _plain(_page(_paras(BODY[1:]), around=aside)) is not None


def test_a_column_inside_an_element_trafilatura_discards_goes_to_trafilatura() -> None:
    html = _page(_paras(BODY)).replace("<article>", "<article class='article hidden'>")
    assert _plain(html) is None


def test_an_element_named_as_xml_does_not_allow_is_judged_without_error() -> None:
    html = _page(_paras(BODY[:3]) + "<div><o:p class='comments-title'></o:p></div>" + _paras(BODY[3:]))
    assert E._trafilatura_discards().deletes(next(_pruned(html)[0].iter("o:p")))  # by its class
    assert _plain(html) is None
    assert E.extract_page(html).status == "ok"


def test_discard_rules_tested_on_one_element_agree_with_trafilaturas_xpaths() -> None:
    """`_Discards.deletes(el)` against trafilatura's own XPaths run over the element's parent."""
    from trafilatura.xpaths import OVERALL_DISCARD_XPATH, PRECISION_DISCARD_XPATH, TEASER_DISCARD_XPATH

    discards = E._trafilatura_discards()
    assert discards is not None
    xpaths = (*OVERALL_DISCARD_XPATH, *TEASER_DISCARD_XPATH, *PRECISION_DISCARD_XPATH)
    pages = [p.read_bytes() for p in sorted(GOLDEN.glob("*.html"))]
    pages += [html.encode() for html, _ in _loopweb_pages(3)]
    pages.append(_page(_paras(BODY)).replace("<div class='story-body'>", "<div class='story-body hide-print' "
                                                                           "style='display:none' role='navigation'>")
                 .encode())
    pages.append(_page(_paras(BODY) + "<o:p class='comments-title'></o:p><o:p class='other'></o:p>").encode())
    checked = matched = 0
    for html in pages:
        root, _ = E._parse(E.decode_html(html))
        found = {el for xpath in xpaths for el in xpath(root)}
        for el in root.iter():
            if not isinstance(el.tag, str) or el.tag in discards.tags:
                continue  # tags: trafilatura's cleaning deletes those whatever their attributes
            checked += 1
            matched += el in found
            assert discards.deletes(el) == (el in found), etree.tostring(el)[:200]
    assert checked > 500 and matched > 5


def test_a_failure_of_the_plain_path_leaves_the_page_to_trafilatura(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(root: etree._Element) -> str:
        raise RuntimeError("a bug")

    html = _page(_paras(BODY))
    expected = E.extract_page(html)
    monkeypatch.setattr(E, "_plain_body_text", broken)
    got = E.extract_page(html)
    assert got.status == "ok" and got.text == expected.text
