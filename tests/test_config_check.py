"""`check-config`: one test per class of problem, each pinned to its line and column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.configcheck import (
    BAD_NETWORK,
    BAD_URL,
    DUPLICATE_FEED,
    DUPLICATE_KEY,
    DUPLICATE_URL,
    INVALID_VALUE,
    MISSING_KEY,
    NO_FEEDS,
    NOT_A_MAPPING,
    REFUSED_URL,
    UNKNOWN_KEY,
    YAML_SYNTAX,
    check_config_file,
    check_config_text,
)
from pipeline.settings import ConfigError, parse_config

GOOD = """\
feeds:
  - name: world
    url: https://example.com/world/rss.xml
  - name: local
    url: https://news.example.org/local.atom
    max_items: 50
fetch:
  min_delay_s: 2
"""


def only(text: str, code: str):
    """The single problem of `code` in `text` (and no error of another class)."""
    result = check_config_text(text, "config.yaml")
    matching = [p for p in result.problems if p.code == code]
    others = [p for p in result.errors if p.code != code]
    assert len(matching) == 1, result.report()
    assert not others, result.report()
    return matching[0], result


def test_a_good_config_has_no_problem():
    result = check_config_text(GOOD, "config.yaml")
    assert result.problems == [] and result.config is not None
    assert [f.name for f in result.config.feeds] == ["world", "local"]


def test_checking_a_config_leaves_the_http_client_unimported(tmp_path: Path) -> None:
    """A run checks its config before anything else, and the check tests each feed URL against the fetch
    policy: aiohttp (~0.15 s to import) is not imported for it, so a run's start does not wait for it."""
    config = tmp_path / "config.yaml"
    config.write_text(GOOD + "  allow_private: [127.0.0.1]\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", "import sys\nfrom pipeline.configcheck import check_config_file\n"
                          f"r = check_config_file({str(config)!r})\n"
                          "print(len(r.errors), 'aiohttp' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"]


def test_yaml_syntax_error_has_its_line():
    text = GOOD + "extract:\n  min_words: [40\n"
    p, result = only(text, YAML_SYNTAX)
    assert p.line == 11 and result.config is None
    assert p.format("config.yaml").startswith("config.yaml:11:")
    assert "not valid YAML" in p.message


def test_duplicate_key_is_found_although_yaml_keeps_the_last():
    text = GOOD + "  min_delay_s: 5\n"
    p, result = only(text, DUPLICATE_KEY)
    assert (p.line, p.column) == (9, 3)
    assert p.format("config.yaml") == (
        "config.yaml:9:3: fetch.min_delay_s: key 'min_delay_s' appears twice in this mapping (first on line 8); "
        "YAML would silently keep only this last one: delete one of them")
    assert result.config is None  # an error, though the models would accept it


def test_duplicate_key_inside_a_feed():
    text = GOOD.replace("    max_items: 50\n", "    max_items: 50\n    url: https://example.net/other.xml\n")
    p, _ = only(text, DUPLICATE_KEY)
    assert p.path == ("feeds", 1, "url") and p.line == 7


def test_top_level_must_be_a_mapping():
    p, _ = only("- name: world\n  url: https://example.com/rss\n", NOT_A_MAPPING)
    assert p.line == 1 and "found list" in p.message


def test_unknown_key_suggests_the_closest():
    text = GOOD.replace("    max_items: 50", "    max_itmes: 50")
    p, _ = only(text, UNKNOWN_KEY)
    assert p.format("config.yaml") == "config.yaml:6:5: feeds[1].max_itmes: unknown key; did you mean 'max_items'?"


def test_unknown_key_without_a_close_match_lists_the_valid_ones():
    p, _ = only(GOOD + "frobnicate: true\n", UNKNOWN_KEY)
    assert p.line == 9 and p.column == 1
    assert "valid keys here: feeds, fetch, extract, dedup" in p.message


def test_unknown_key_in_a_nested_section():
    p, _ = only(GOOD + "  min_dealy_s: 3\n", UNKNOWN_KEY)
    assert p.path == ("fetch", "min_dealy_s") and "did you mean 'min_delay_s'?" in p.message


def test_missing_required_key_points_at_its_mapping():
    text = GOOD.replace("    url: https://news.example.org/local.atom\n", "")
    p, _ = only(text, MISSING_KEY)
    assert p.path == ("feeds", 1, "url") and p.line == 4  # the feed's mapping starts on the "- name:" line
    assert "required key 'url' is missing" in p.message


@pytest.mark.parametrize(
    ("replace", "by", "line", "expect"),
    [
        ("min_delay_s: 2", "min_delay_s: fast", 8, "expected a number, got 'fast'"),
        ("min_delay_s: 2", "min_delay_s: -1", 8, "greater than or equal to 0 (got -1)"),
        ("max_items: 50", "max_items: many", 6, "expected a whole number, got 'many'"),
        ("url: https://example.com/world/rss.xml", "url: ftp://example.com/x", 3,
         "feed url 'ftp://example.com/x' must be an absolute http(s) URL"),
    ],
)
def test_invalid_values_have_the_line_of_the_value(replace, by, line, expect):
    p, _ = only(GOOD.replace(replace, by), INVALID_VALUE)
    assert p.line == line and expect in p.message, p


def test_invalid_value_from_a_model_rule():
    p, _ = only(GOOD + "dedup:\n  bands: 7\n", INVALID_VALUE)
    assert p.line == 10 and "bands (7) must divide dedup.num_perm (128)" in p.message


def test_the_issue_example_format():
    text = "feeds:\n  - name: a\n    url: https://a.example.com/rss\n  - name: b\n    url: https://b.example.com/rss\n" \
           "  - name: c\n    url: 'ftp://x'\n"
    p, _ = only(text, INVALID_VALUE)
    assert p.format("config.yaml") == "config.yaml:7:10: feeds[2].url: feed url 'ftp://x' must be an absolute http(s) URL"


def test_feed_name_used_twice():
    text = GOOD.replace("name: local", "name: world")
    p, _ = only(text, DUPLICATE_FEED)
    assert p.format("config.yaml").startswith("config.yaml:4:11: feeds[1].name: feed name 'world' is already used by "
                                              "feeds[0] (line 2)")


@pytest.mark.parametrize("text", ["feeds: []\n", "feeds:\n", "fetch:\n  min_delay_s: 1\n", ""])
def test_empty_feed_list(text):
    p, result = only(text, NO_FEEDS)
    assert "the feed list is empty" in p.message and result.config is None
    # parse_config (used by `dedup --config` and Airflow) accepts it: only `run` and check-config refuse it.
    assert parse_config(text).feeds == []


def test_every_feed_disabled_is_an_empty_feed_list():
    text = GOOD.replace("    url: https://example.com/world/rss.xml\n", "    url: https://example.com/world/rss.xml\n"
                        "    enabled: false\n").replace("    max_items: 50\n", "    enabled: false\n")
    p, _ = only(text, NO_FEEDS)
    assert "enabled: false" in p.message


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("http://example.com:99999/rss", "Port out of range"),
        ("https://user:secret@example.com/rss", "credentials"),
        ("https://example.com/my feed.xml", "contains spaces"),
        ("https://exa_mple..com/rss", "is not a valid DNS name"),
    ],
)
def test_urls_that_can_never_be_fetched(url, expect):
    p, _ = only(GOOD.replace("https://example.com/world/rss.xml", f'"{url}"'), BAD_URL)
    assert p.line == 3 and p.column == 10 and expect in p.message, p


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]"])
def test_private_addresses_warn_unless_allowed(host):
    text = GOOD.replace("https://example.com/world/rss.xml", f"http://{host}:8080/rss")
    p, result = only(text, REFUSED_URL)
    assert p.severity == "warning" and p.line == 3 and "fetch.allow_private" in p.message
    assert result.config is not None  # a warning: the config is usable
    allowed = text.replace("fetch:\n", 'fetch:\n  allow_private: ["127.0.0.0/8", "10.0.0.0/8", "::1", "169.254.169.254"]\n')
    assert check_config_text(allowed).problems == []


def test_allow_private_entries_are_checked_one_by_one():
    text = GOOD + '  allow_private: ["10.0.0.0/8", "intranet", "192.168.1.300"]\n'
    result = check_config_text(text, "config.yaml")
    bad = [p for p in result.problems if p.code == BAD_NETWORK]
    assert [(p.path, p.line) for p in bad] == [(("fetch", "allow_private", 1), 9), (("fetch", "allow_private", 2), 9)]
    assert [p.column for p in bad] == [33, 45]
    assert not [p for p in result.errors if p.code != BAD_NETWORK]  # the model's own message is not repeated


def test_same_url_twice_is_a_warning():
    text = GOOD.replace("https://news.example.org/local.atom", "https://example.com/world/rss.xml")
    p, result = only(text, DUPLICATE_URL)
    assert p.severity == "warning" and p.line == 5 and result.config is not None


def test_many_problems_are_all_reported_in_line_order():
    text = ("feeds:\n  - name: a\n    url: ftp://x\n    max_itmes: 3\n  - name: a\n    url: https://example.com/a\n"
            "fetch:\n  min_delay_s: fast\n  min_delay_s: 1\nfrobnicate: 1\n")
    result = check_config_text(text, "c.yaml")
    assert [(p.line, p.code) for p in result.problems] == [
        (3, INVALID_VALUE), (4, UNKNOWN_KEY), (5, DUPLICATE_FEED), (9, DUPLICATE_KEY), (10, UNKNOWN_KEY)]


def test_parse_config_raises_with_lines():
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD.replace("max_items: 50", "max_itmes: 50"), origin="feeds.yaml")
    assert str(info.value) == "feeds.yaml:6:5: feeds[1].max_itmes: unknown key; did you mean 'max_items'?"


def test_files_missing_unreadable_or_not_utf8(tmp_path: Path):
    assert check_config_file(str(tmp_path / "nope.yaml")).problems[0].code == "missing_file"
    assert check_config_file(str(tmp_path)).problems[0].code == "missing_file"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("feeds: []\n# caf\xe9\n".encode("latin-1"))
    p = check_config_file(str(latin)).problems[0]
    assert p.code == "unreadable_file" and "save the file as UTF-8" in p.message


# ------------------------------------------------------------------------------------------ the command


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_check_config_command_lists_every_problem_and_exits_1(tmp_path: Path):
    path = tmp_path / "feeds.yaml"
    path.write_text(GOOD.replace("max_items: 50", "max_itmes: 50") + "  min_delay_s: 3\n", encoding="utf-8")
    proc = cli("check-config", str(path))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{path}:6:5: feeds[1].max_itmes: unknown key; did you mean 'max_items'?"
    assert lines[1].startswith(f"{path}:9:3: fetch.min_delay_s: key 'min_delay_s' appears twice")
    assert lines[-1] == f"{path}: 2 errors, 0 warnings; nothing was fetched"


def test_check_config_command_ok_with_warnings(tmp_path: Path):
    path = tmp_path / "feeds.yaml"
    path.write_text(GOOD.replace("https://example.com/world/rss.xml", "http://127.0.0.1/rss"), encoding="utf-8")
    proc = cli("check-config", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning: feeds[0].url: 127.0.0.1 is a loopback address" in proc.stdout
    assert proc.stdout.splitlines()[-1] == f"{path}: ok (2 active feeds of 2, 1 warning)"


def test_check_config_command_json(tmp_path: Path):
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds: []\n", encoding="utf-8")
    proc = cli("check-config", "--json", str(path))
    assert proc.returncode == 1
    (row,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert row["code"] == NO_FEEDS and row["line"] == 1 and row["severity"] == "error" and row["path"] == "feeds"


def test_check_config_command_missing_file(tmp_path: Path):
    proc = cli("check-config", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 1 and "config file does not exist; check the path" in proc.stdout
