"""Fast paths of the extractor's helpers give what the general code gives."""

from __future__ import annotations

import random
import re
import string

from lxml import html as lxml_html

from pipeline.extract import _count_words, _is_link_list, _item_link_share, _PageScan, extract_page


def test_ascii_word_count_is_the_regex_count():
    words = re.compile(r"\w+")
    rng = random.Random(7)
    for _ in range(5000):
        text = "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 60)))
        assert _count_words(text) == len(words.findall(text)), repr(text)
    assert _count_words("naïve café, 2 ways") == 4  # not ASCII: the regex
    assert _count_words("東京都 news") == 3  # CJK: two characters a word


def test_a_plain_link_item_is_all_link_text():
    items = lxml_html.fromstring(
        "<ul><li><a href='/a'>Story one</a></li><li> <a href='/b'> </a> </li><li><a href='/c'><b>Bold</b> story</a></li>"
        "<li><a href='/d'><!-- c --></a></li><li>Intro <a href='/e'>link</a></li><li>No link</li></ul>"
    )
    assert [_item_link_share(li) for li in items] == [1.0, None, 1.0, None, 0.4, None]


def _mixed_lines(seed: int, n: int, words: tuple[str, ...]) -> list[str]:
    """Lines of random ASCII words and punctuation, some holding the given words (any case), some not ASCII."""
    rng = random.Random(seed)
    vocab = ("the", "harbour", "said", "report", "by", "Jane", "Roe", "Agency", "Reuters", ":", "-", "|", "—", ".",
             "(", ")", "liability", "photos") + words
    lines = []
    for _ in range(n):
        toks = [rng.choice(vocab) for _ in range(rng.randint(1, 14))]
        toks = [t.upper() if rng.random() < 0.2 else t.capitalize() if rng.random() < 0.2 else t for t in toks]
        line = " ".join(toks)
        if rng.random() < 0.1:
            line += " İmage ſ фото"  # letters that re.IGNORECASE folds to ASCII ones
        lines.append(line)
    return lines


def test_the_link_list_test_is_the_mean_of_its_items_shares():
    """`_is_link_list` (the plain <li><a>text</a></li> item read inline) gives the mean of `_item_link_share`
    over random lists of plain, spaced, empty, nested, commented, partly linked and unlinked items."""
    pieces = ["<li><a href='/a'>Story</a></li>", "<li> <a href='/b'>Spaced</a> </li>", "<li><a href='/c'> </a></li>",
              "<li><a href='/d'>\u00a0</a></li>", "<li><a href='/e'><b>Bold</b> story</a></li>",
              "<li><a href='/f'><!-- c --></a></li>", "<li><!-- c --><a href='/g'>After a comment</a></li>",
              "<li>Intro <a href='/h'>link</a></li>", "<li><a href='/i'>Long link text here</a> and a tail</li>",
              "<li>No link</li>", "<li><span><a href='/j'>Nested</a></span></li>", "<li><a href='/k'>x</a>\u2003</li>"]
    rng = random.Random(11)
    for _ in range(3000):
        items = list(lxml_html.fromstring("<ul>" + "".join(rng.choices(pieces, k=rng.randint(2, 6))) + "</ul>"))
        shares = [_item_link_share(li) for li in items]
        want = None not in shares and sum(shares) / len(items) >= 0.75
        assert _is_link_list(items) == want, [lxml_html.tostring(li) for li in items]


def test_a_link_list_inside_a_box_that_holds_the_article_is_still_pruned():
    """The page scan does not test what lies inside a box it prunes; inside a box it keeps (here a share-tools
    wrapper around the whole article) a related-links list is still found and pruned."""
    paragraphs = "".join(f"<p>Paragraph {i} of the story tells what the council decided on the tram line and why "
                         "the vote took nine hours.</p>" for i in range(8))
    related = "".join(f"<li><a href='/r{i}'>Related headline number {i}</a></li>" for i in range(6))
    page = (f"<html><body><div class='share-tools'><article><h1>Council approves tram</h1>{paragraphs}"
            f"<ul>{related}</ul></article></div><div class='share'><ul>{related}</ul></div></body></html>")
    root = lxml_html.document_fromstring(page)
    scan = _PageScan(root)
    pruned = sorted((el.tag, el.get("class") or "") for el in scan.prune)
    assert pruned == [("div", "share"), ("ul", "")]
    got = extract_page(page, "https://example.com/news/tram.html")
    assert got.status == "ok" and "Paragraph 7" in got.text and "Related headline" not in got.text


def test_the_photo_credit_screen_never_hides_a_match():
    from pipeline.clean import _PHOTO_TAIL_RE, _may_name_a_photo

    lines = _mixed_lines(3, 20000, ("photo", "picture", "image", "foto", "photograph", "Photo:", "pictures"))
    matched = [line for line in lines if _PHOTO_TAIL_RE.search(line)]
    assert len(matched) > 500
    assert all(_may_name_a_photo(line) for line in matched)
    assert not _may_name_a_photo("Waves break over the harbour wall.")  # the screen does screen
    assert _may_name_a_photo("Waves break. PİCTURE: Jane Roe")  # not ASCII: the regex decides


def test_the_disclaimer_hint_screen_gives_the_regexs_answer():
    from pipeline.clean import _DISCLAIMER_HINT_RE, _DISCLAIMER_HINTS, _rule_disclaimer

    hints = _DISCLAIMER_HINTS + ("advicexpressed", "provideresponsible", "warranty")  # glued: regex finds one
    lines = _mixed_lines(5, 20000, hints)
    for line in lines:
        low = line.lower()
        if len(set(_DISCLAIMER_HINT_RE.findall(low))) >= 2:
            assert sum(1 for h in _DISCLAIMER_HINTS if h in low) >= 2, line
    assert sum(1 for line in lines if _rule_disclaimer(line)) == sum(1 for line in lines if _old_rule_disclaimer(line))


def _old_rule_disclaimer(core: str) -> str | None:
    from pipeline.clean import _DISCLAIMER_HEAD_RE, _DISCLAIMER_HINT_RE, _REPORTING_RE, _disclaimer_score

    if _DISCLAIMER_HEAD_RE.match(core):
        return "legal_disclaimer"
    if len(set(_DISCLAIMER_HINT_RE.findall(core.lower()))) < 2:
        return None
    if _REPORTING_RE.search(core):
        return None
    return "legal_disclaimer" if _disclaimer_score(core) >= 3 else None


def test_the_consent_check_screens_the_whole_text_first():
    """A text no line of which mentions consent is not consent-only, whether or not the page has a banner."""
    from pipeline.extract import _consent_only, _count_words, _PageScan, _parse

    banner = "<div class='consent'>We use cookies and partners process your data. Accept all or manage.</div>"
    root, _ = _parse(f"<html><body>{banner}<article><p>text</p></article></body></html>")
    scan = _PageScan(root)
    assert scan.consent_text
    article = "\n".join(f"The council met on day {k} and the harbour budget was debated at length." for k in range(12))
    consent = "We and our partners use cookies to store and access information. Accept all or manage preferences."
    for text, expected in ((article, False), (consent, True), (article + "\n" + consent, False),
                           (consent + "\n" + consent + "\nShort.", True)):
        assert _consent_only(text, _count_words(text), scan, 40) is expected, text[:60]


def test_lines_screened_for_the_texts_own_consent_hints_are_screened_as_for_all():
    """_consent_only screens a text's lines only for the hints the whole text holds (`_hints_in`): the same
    answer, line by line, as screening them for every hint, whatever the case and letters around them."""
    from pipeline.extract import _CONSENT_HINTS, _hints_in, _may_mention_consent

    rng = random.Random(5)
    vocab = [*_CONSENT_HINTS, "COOKIE", "Partners", "ΣΊΣΥΦΟΣ", "İstanbul", "Straße", "the", "harbour", "said", "—",
             "acceptance", "managed", "ΜΑΝΑΓΕ", "ǅ", "ﬁne"]
    checked = 0
    for _ in range(3000):
        lines = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(1, 5))]
        text = "\n".join(lines)
        hints = _hints_in(text)
        for line in lines:
            assert _may_mention_consent(line, hints) == _may_mention_consent(line), (line, hints)
            checked += _may_mention_consent(line)
    assert checked > 1000
