"""Canonical article URLs: variants of one article share a spelling, different articles do not."""

from __future__ import annotations

import re

import pytest

from pipeline.urls import article_id_for, canonicalize_url, host_of

SAME_ARTICLE = [
    # tracking parameters, fragment, case of scheme and host, default port, www
    (
        "https://example.com/world/tram-line-approved",
        [
            "HTTPS://Example.COM/world/tram-line-approved",
            "https://example.com:443/world/tram-line-approved",
            "https://www.example.com/world/tram-line-approved#comments",
            "https://example.com/world/tram-line-approved?utm_source=twitter&utm_medium=social&utm_campaign=x",
            "https://example.com/world/tram-line-approved?fbclid=IwAR0abc&gclid=Cj0K&mc_cid=1a&mc_eid=2b",
            "https://example.com/world/tram-line-approved?ref=rss&cmpid=rss_feed&ocid=msn&_ga=2.1&igshid=x",
            "https://example.com/world/tram-line-approved?UTM_Source=Newsletter",
        ],
    ),
    # AMP and mobile editions
    (
        "https://example.com/2024/05/12/tram-line/",
        [
            "https://example.com/2024/05/12/tram-line/amp/",
            "https://amp.example.com/2024/05/12/tram-line/",
            "https://m.example.com/2024/05/12/tram-line/",
            "https://mobile.example.com/2024/05/12/tram-line/?amp=1",
            "https://example.com/amp/2024/05/12/tram-line/",
            "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/2024/05/12/tram-line/",
        ],
    ),
    (
        "https://example.com/news/tram-line.html",
        [
            "https://example.com/news/tram-line.amp.html",
            "https://example.com/news/tram-line.html?outputType=amp",
            "https://m.example.com/news/tram-line.html?amp",
        ],
    ),
    (
        "https://example.com/news/tram-line",
        ["https://example.com/news/tram-line/amp", "https://example.com/news/./x/../tram-line"],
    ),
    # parameter order, percent-encoding
    (
        "https://example.com/story?a=1&id=42",
        ["https://example.com/story?id=42&a=1", "https://example.com/st%6Fry?id=42&a=1&utm_content=top"],
    ),
    ("http://example.com/", ["http://EXAMPLE.com", "http://example.com:80/", "http://example.com/#top"]),
]


@pytest.mark.parametrize(("canonical", "variants"), SAME_ARTICLE)
def test_variants_share_the_canonical_url(canonical: str, variants: list[str]) -> None:
    assert canonicalize_url(canonical) == canonical
    for url in variants:
        assert canonicalize_url(url) == canonical, url


def test_canonicalization_is_idempotent() -> None:
    for _, variants in SAME_ARTICLE:
        for url in variants:
            once = canonicalize_url(url)
            assert canonicalize_url(once) == once


DIFFERENT_ARTICLES = [
    ("https://example.com/story?id=1", "https://example.com/story?id=2"),
    ("https://example.com/story?p=2", "https://example.com/story"),
    ("https://example.com/news/a", "https://example.com/news/b"),
    ("https://example.com/News/A", "https://example.com/news/a"),  # paths are case-sensitive
    ("https://example.com/news/a", "https://example.org/news/a"),
    ("https://example.com/news/a", "https://sport.example.com/news/a"),
    ("https://example.com:8080/news/a", "https://example.com/news/a"),
    ("http://example.com/news/a", "https://example.com/news/a"),  # no guessing about the scheme
    ("https://example.com/news/a/index.html", "https://example.com/news/a/"),
    ("https://example.com/#!/story/1", "https://example.com/#!/story/2"),  # hash-bang routes name content
    ("https://example.com/search?q=amp", "https://example.com/search"),
]


@pytest.mark.parametrize(("a", "b"), DIFFERENT_ARTICLES)
def test_different_articles_stay_different(a: str, b: str) -> None:
    assert canonicalize_url(a) != canonicalize_url(b)
    assert article_id_for(canonicalize_url(a)) != article_id_for(canonicalize_url(b))


def test_values_and_repeated_parameters_are_kept() -> None:
    url = "https://example.com/tags?tag=b&tag=a&q=caf%C3%A9+au+lait&ref=home"
    assert canonicalize_url(url) == "https://example.com/tags?q=caf%C3%A9+au+lait&tag=b&tag=a"


def test_percent_encoding_and_idn() -> None:
    assert canonicalize_url("https://example.com/%7euser/a%2fb") == "https://example.com/~user/a%2Fb"
    assert canonicalize_url("https://example.com/caf\u00e9 news") == "https://example.com/caf%C3%A9%20news"
    assert canonicalize_url("https://B\u00fccher.example/x") == "https://xn--bcher-kva.example/x"
    assert canonicalize_url("https://xn--bcher-kva.example/x") == "https://xn--bcher-kva.example/x"


def test_non_http_and_odd_input() -> None:
    assert canonicalize_url("  mailto:desk@example.com ") == "mailto:desk@example.com"
    assert canonicalize_url("not a url") == "not a url"
    assert canonicalize_url("https://[2001:db8::1]:8443/a") == "https://[2001:db8::1]:8443/a"
    assert canonicalize_url("https://m.co/a") == "https://m.co/a"  # too short to be a mobile prefix


def test_article_id_is_stable_16_hex() -> None:
    canonical = canonicalize_url("https://www.example.com/world/tram-line-approved?utm_source=x")
    aid = article_id_for(canonical)
    assert re.fullmatch(r"[0-9a-f]{16}", aid)
    assert aid == article_id_for("https://example.com/world/tram-line-approved")
    # pinned: ids are stored keys, a change would split every article's history
    assert aid == "8e557aca2a9b552b"
    assert article_id_for("https://example.com/") == "14ba2eb79c27555b"


def test_host_of() -> None:
    assert host_of("https://WWW.Example.com:8080/x") == "www.example.com"
    assert host_of("https://m.B\u00fccher.example./x") == "m.xn--bcher-kva.example"
    assert host_of("not a url") == ""
