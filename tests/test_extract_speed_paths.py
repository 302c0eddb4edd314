"""Fast paths of the extractor's helpers give what the general code gives."""

from __future__ import annotations

import random
import re
import string

from lxml import html as lxml_html

from pipeline.extract import _count_words, _item_link_share


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
