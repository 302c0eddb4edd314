"""Pure parts of the fetch layer: URL policy, decoding, Retry-After, decompression caps."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import zlib

import pytest

from pipeline.fetch.client import _Abort, _Decompressor, parse_retry_after
from pipeline.fetch.decode import decode_body, sniff_binary
from pipeline.fetch.policy import PolicyError, UrlPolicy


@pytest.mark.parametrize("url,outcome", [
    ("file:///etc/passwd", "invalid_url"),
    ("javascript:alert(1)", "invalid_url"),
    ("ftp://example.com/x", "invalid_url"),
    ("http://user:pw@example.com/", "invalid_url"),
    ("http:///nohost", "invalid_url"),
    ("http://example.com:99999/", "invalid_url"),
])
def test_policy_rejects_bad_urls(url, outcome):
    with pytest.raises(PolicyError) as err:
        UrlPolicy().parse(url)
    assert err.value.outcome == outcome


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.4", "169.254.169.254",
                                  "0.0.0.0", "224.0.0.1", "100.64.0.1", "192.0.2.1", "[::1]", "[fe80::1]",
                                  "[fd00:ec2::254]", "[::ffff:127.0.0.1]"])
def test_policy_refuses_non_public_addresses(host):
    policy = UrlPolicy()
    with pytest.raises(PolicyError) as err:
        asyncio.run(policy.resolve(policy.parse(f"http://{host}/x")))
    assert err.value.outcome == "blocked"


def test_allow_list_opens_loopback_but_not_metadata():
    policy = UrlPolicy(["127.0.0.1", "169.254.0.0/16"])
    assert asyncio.run(policy.resolve(policy.parse("http://127.0.0.1:8080/"))) == [ipaddress.ip_address("127.0.0.1")]
    assert not policy.address_allowed(ipaddress.ip_address("127.0.0.2"))
    assert not policy.address_allowed(ipaddress.ip_address("169.254.169.254"))  # only when listed exactly
    assert UrlPolicy(["169.254.169.254"]).address_allowed(ipaddress.ip_address("169.254.169.254"))
    assert policy.address_allowed(ipaddress.ip_address("93.184.216.34"))


def test_localhost_name_is_resolved_and_refused():
    policy = UrlPolicy()
    with pytest.raises(PolicyError) as err:
        asyncio.run(policy.resolve(policy.parse("http://localhost/")))
    assert err.value.outcome == "blocked" and "loopback" in str(err.value)


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("120") == 120.0
    assert 59 <= parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=0.0) <= 60
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=1000.0) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.fixture(params=["zlib-ng", "zlib"])
def inflating(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each decompressor test with zlib-ng (the dependency) and with the standard library's zlib (the
    fallback where zlib-ng has no wheel): the same bodies, the same outcomes."""
    from pipeline.fetch import client

    if request.param == "zlib":
        monkeypatch.setattr(client, "_inflating", zlib)
    else:
        assert client._inflating.__name__ == "zlib_ng.zlib_ng"  # installed: a dependency, not an option
    return request.param


def test_gzip_bomb_is_capped_incrementally(inflating: str):
    bomb = gzip.compress(b" " * (50 * 1024 * 1024), compresslevel=9)
    dec = _Decompressor("gzip", limit=1024 * 1024)
    with pytest.raises(_Abort) as err:
        for i in range(0, len(bomb), 16384):
            dec.feed(bomb[i:i + 16384])
    assert err.value.outcome == "too_large"
    assert dec.produced <= 1024 * 1024 + 16384 * 2


def test_deflate_raw_and_zlib_and_brotli(inflating: str):
    import brotli

    data = b"<html>" + b"x" * 5000 + b"</html>"
    gz = gzip.compress(data)
    assert _Decompressor("gzip", 10**6).feed(gz) == data
    dec = _Decompressor("gzip", 10**6)  # fed in small pieces, as a response arrives
    assert b"".join(dec.feed(gz[i:i + 7]) for i in range(0, len(gz), 7)) == data
    with pytest.raises(_Abort) as err:
        _Decompressor("gzip", 10**6).feed(b"\x1f\x8b" + b"not gzip at all" * 3)
    assert err.value.outcome == "bad_content" and "corrupt gzip" in str(err.value)
    assert _Decompressor("deflate", 10**6).feed(zlib.compress(data)) == data
    raw = zlib.compressobj(wbits=-15)
    assert _Decompressor("deflate", 10**6).feed(raw.compress(data) + raw.flush()) == data
    assert _Decompressor("br", 10**6).feed(brotli.compress(data)) == data
    with pytest.raises(_Abort):
        _Decompressor("br", 100).feed(brotli.compress(data))
    with pytest.raises(_Abort):
        _Decompressor("compress", 100)


def test_sniffing():
    assert sniff_binary(b"%PDF-1.4 ...") == "application/pdf"
    assert sniff_binary(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_binary(b"<!doctype html><p>hi") is None


CYR = "Мешканці міста вітають цю новину про відновлення мосту через річку."


def test_decode_declared_utf8_but_cp1251():
    d = decode_body(f"<html><p>{CYR}</p></html>".encode("cp1251"), "text/html; charset=utf-8")
    assert CYR in d.text and d.mismatch and d.charset == "cp1251"


def test_decode_declared_cp1251_but_utf8():
    d = decode_body(f"<html><p>{CYR}</p></html>".encode(), "text/html; charset=windows-1251")
    assert CYR in d.text and d.mismatch and d.charset == "utf-8"


def test_decode_meta_only_koi8r_and_undeclared_cp1251():
    body = f'<html><head><meta charset="koi8-r"></head><p>{CYR[:30]}</p></html>'
    ru = "Правительство объявило о ремонте моста через реку. Жители довольны."
    body = f'<html><head><meta charset="koi8-r"></head><p>{ru}</p></html>'.encode("koi8-r")
    d = decode_body(body, "text/html")
    assert ru in d.text and not d.mismatch and d.source == "meta"
    d = decode_body(f"<html><p>{ru} {ru}</p></html>".encode("cp1251"), "text/html")
    assert ru in d.text


def test_decode_sparse_invalid_utf8_keeps_utf8_and_strips_nul():
    body = ("<html><p>" + "Plain English text. " * 50 + "</p></html>").encode() .replace(b"Plain", b"Pl\xff\xfein", 1)
    d = decode_body(b"\x00" + body, "text/html; charset=utf-8")
    assert d.charset == "utf-8" and "\x00" not in d.text and "\ufffd" in d.text and not d.mismatch


def test_decode_bom_wins():
    d = decode_body("\ufeff<p>Grüße</p>".encode("utf-8"), "text/html; charset=iso-8859-1")
    assert d.text == "<p>Grüße</p>" and d.source == "bom"


def test_decode_damaged_utf8_in_an_ascii_page_is_not_a_legacy_charset():
    page = ("<html><p>" + "The harbour reopened after the storm. " * 40 + "</p></html>").encode()
    damaged = page.replace(b" the ", b" \xff\xfe the \xc0\xaf ", 3).replace(b"storm", b"st\xe9orm", 2)
    d = decode_body(damaged, "text/html; charset=utf-8")
    assert d.charset == "utf-8" and not d.mismatch and "\ufffd" in d.text
    ru = "Городской совет сообщил, что новый паром начнёт курсировать весной."
    d = decode_body(f"<html><p>{ru}</p></html>".encode("cp1251"), "text/html; charset=utf-8")
    assert d.charset == "cp1251" and d.mismatch and ru in d.text


def test_crawl_delay_groups_and_fractions():
    from pipeline.fetch.robots import rules_from_response

    body = ("User-agent: otherbot\nCrawl-delay: 9\n\nUser-agent: newsingest\nUser-agent: friend\nDisallow: /x/\n"
            "Crawl-delay: 0.5  # be gentle\n\nUser-agent: *\nCrawl-delay: 2\nDisallow: /private/\n")
    rules = rules_from_response(200, body)
    assert rules.crawl_delay("newsingest/0.1 (+https://e.example)") == 0.5
    assert rules.crawl_delay("somebot/1.0") == 2.0
    assert not rules.allowed("https://e.example/x/1", "newsingest/0.1")
    assert rules.allowed("https://e.example/private/1", "newsingest/0.1")  # our group replaces '*'
    assert rules_from_response(200, "User-agent: *\nCrawl-delay: soon\n").crawl_delay("a/1") is None
    assert rules_from_response(404, None).allowed("https://e.example/", "a/1")
    assert not rules_from_response(503, None).allowed("https://e.example/", "a/1")


def test_host_store_robots_ttl_and_deferrals(tmp_path):
    from pipeline.fetch.hoststate import HostStore

    store = HostStore(tmp_path / "hosts")
    store.save_robots("news.example:8080", "http://news.example:8080", 200, "User-agent: *\n", now=1000.0, ttl_s=60)
    assert store.robots("news.example:8080", "http://news.example:8080", now=1059.0)["status"] == 200
    assert store.robots("news.example:8080", "http://news.example:8080", now=1061.0) is None
    assert store.robots("news.example:8080", "https://news.example:8080", now=1001.0) is None  # per origin
    store.save_deferral("news.example:8080", until=2000.0, reason="HTTP 429 with Retry-After 120 s")
    store.save_deferral("news.example:8080", until=1500.0, reason="shorter")  # never shortens a deferral
    assert store.deferred("news.example:8080", now=1999.0) == (2000.0, "HTTP 429 with Retry-After 120 s")
    assert store.deferred("news.example:8080", now=2000.0) is None
    assert store.deferred("other.example", now=0.0) is None
    (tmp_path / "hosts" / "blocker").write_text("")  # a file where the cache directory should be
    HostStore(tmp_path / "hosts" / "blocker").save_deferral("third.example", until=5.0, reason="x")  # no raise


def test_robots_rules_follow_rfc_9309_matching():
    """The most specific rule wins (Allow on a tie), `*` and a final `$` are patterns, escapes compare
    decoded, every group naming us is merged; urllib.robotparser got the first four wrong."""
    from pipeline.fetch.robots import rules_from_response

    ua = "newsingest/0.1 (+https://e.example)"

    def allowed(body: str, path: str, agent: str = ua) -> bool:
        return rules_from_response(200, body).allowed(f"https://e.example{path}", agent)

    news_only = "User-agent: *\nDisallow: /\nAllow: /news/\n"
    assert allowed(news_only, "/news/2026/storm.html") and not allowed(news_only, "/shop/")
    assert allowed(news_only, "/robots.txt")  # always
    assert allowed("User-agent: *\nDisallow: /page\nAllow: /page\n", "/page")  # a tie: the least restrictive
    assert not allowed("User-agent: *\nAllow: /page\nDisallow: /page.html\n", "/page.html")  # longer wins
    wild = "User-agent: *\nDisallow: /*.pdf$\nDisallow: /*?*utm_\nDisallow: /search*/results\n"
    assert not allowed(wild, "/files/report.pdf")
    assert allowed(wild, "/files/report.pdf?download=1") and allowed(wild, "/files/report.pdfs")  # `$` anchors
    assert not allowed(wild, "/story?id=4&utm_source=x") and allowed(wild, "/story?id=4")
    assert not allowed(wild, "/search/2026/results") and allowed(wild, "/search/2026/")
    assert allowed("User-agent: *\nDisallow: /*.php$\nAllow: /index.php$\n", "/index.php")
    # percent-encoding: unreserved characters compare decoded, others as upper-case escapes, UTF-8 encoded
    assert not allowed("User-agent: *\nDisallow: /%7Ejoe/\n", "/~joe/notes")
    assert not allowed("User-agent: *\nDisallow: /café\n", "/caf%c3%a9/menu")
    assert not allowed("User-agent: *\nDisallow: /a%2fb\n", "/a%2Fb") and allowed("User-agent: *\nDisallow: /a%2fb\n", "/a/b")
    # groups: ours (any case, any version) merged and replacing `*`; lines before any group ignored
    groups = ("Disallow: /everything\n\nUser-agent: NewsIngest/2.0\nDisallow: /a/\n\nUser-agent: other\n"
              "Disallow: /b/\n\nUser-agent: newsingest\nDisallow: /c/\n\nUser-agent: *\nDisallow: /\n")
    assert not allowed(groups, "/a/1") and not allowed(groups, "/c/1")
    assert allowed(groups, "/b/1") and allowed(groups, "/everything")
    assert not allowed(groups, "/a/1", "newsingest-bot/1.0") and not allowed(groups, "/x", "newsingest-bot/1.0")
    assert allowed("\ufeffUser-agent: *\nDisallow:\n", "/anything")  # an empty Disallow; a byte order mark
    assert not allowed("\ufeffUser-agent: *\nDisallow: /\n", "/anything")
