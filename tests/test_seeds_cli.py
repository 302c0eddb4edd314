"""The five seed documents through the public command line: `newsingest clean --jsonl` as a subprocess.

Gold (../shared/seeds/gold.json): every `body` line survives, no `boilerplate` line does, authors and
`syndicated_from` as annotated, and the publication date of seed 000 does not come from its first line
(a page-render date). Skips visibly when the seeds are absent.

Time zones: seed 001's byline says "Thursday, 12 December 2024, 19:16" with no zone; the gold gives
19:16+02:00, which only knowledge of the outlet (Kyiv) supplies. `clean` reports such a time as the
outlet's local wall-clock time without an offset ("2024-12-12T19:16:00") rather than claiming UTC.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def seeds() -> tuple[list[dict], dict[str, dict]]:
    folder = shared_path("seeds")
    gold = json.loads((folder / "gold.json").read_text(encoding="utf-8"))
    lines = "".join(
        json.dumps({"id": g["file"], "text": (folder / g["file"]).read_text(encoding="utf-8")}, ensure_ascii=False)
        + "\n"
        for g in gold
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "clean", "--jsonl"],
        input=lines,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == [g["file"] for g in gold], "one output line per input, in order"
    return gold, {o["id"]: o for o in out}


SEEDS = ["000", "001", "002", "003", "004"]


def _pick(seeds: tuple[list[dict], dict[str, dict]], prefix: str) -> tuple[dict, dict]:
    gold, out = seeds
    g = next(g for g in gold if g["file"].startswith(prefix + "_"))
    return g, out[g["file"]]


@pytest.mark.parametrize("prefix", SEEDS)
def test_seed_body_kept_boilerplate_gone(seeds, prefix: str) -> None:
    gold, out = _pick(seeds, prefix)
    kept = [line.strip() for line in out["text"].splitlines()]
    lost = [b for b in gold["body"] if b.strip() not in kept]
    leaked = [b for b in gold["boilerplate"] if b.strip() in kept]
    assert not lost, f"body lines removed: {lost}"
    assert not leaked, f"boilerplate lines kept: {leaked}"
    allowed = {b.strip() for b in gold["body"] + gold["optional"]}
    assert [line for line in kept if line not in allowed] == []
    # every removed line is accounted for with a reason
    assert all(isinstance(reason, str) and reason for _, reason in out["removed"])


@pytest.mark.parametrize("prefix", SEEDS)
def test_seed_authors_and_syndication(seeds, prefix: str) -> None:
    gold, out = _pick(seeds, prefix)
    assert out["authors"] == gold["authors"]
    assert out["syndicated_from"] == gold["syndicated_from"]
    assert out["title"] in (gold["title"], None)


@pytest.mark.parametrize("prefix", SEEDS)
def test_seed_dates_are_never_wrong(seeds, prefix: str) -> None:
    """A date is reported only when the text supports it, and then it agrees with the gold: the same
    instant when an offset is given, the same local wall-clock time when it is not."""
    gold, out = _pick(seeds, prefix)
    if out["published_at"] is None:
        return
    got = datetime.fromisoformat(out["published_at"])
    expected = datetime.fromisoformat(gold["published"])
    if got.tzinfo is not None and expected.tzinfo is not None:
        assert got == expected
    else:
        assert got.date() == expected.date()
        if expected.tzinfo is not None and (got.hour, got.minute) != (0, 0):
            assert got.replace(tzinfo=None) == expected.replace(tzinfo=None)


def test_seed_000_date_is_not_its_first_line(seeds) -> None:
    _gold, out = _pick(seeds, "000")
    first_line = "Tuesday, 02 January 2024 12:17 GMT"
    assert dict((line, reason) for line, reason in out["removed"])[first_line] == "page_date"
    assert out["published_at"] is not None
    published = datetime.fromisoformat(out["published_at"])
    assert published.date() == date(2025, 11, 26) != date(2024, 1, 2)
    assert out["published_source"] == "tracking_id"


def test_seed_001_local_time_without_an_invented_zone(seeds) -> None:
    _gold, out = _pick(seeds, "001")
    assert out["published_at"] == "2024-12-12T19:16:00"  # no offset: the text gives none
    assert out["published_source"] == "byline"
