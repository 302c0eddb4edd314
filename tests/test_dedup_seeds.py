"""Syndicated copies built from the seed documents (read from ../shared/seeds at run time, never copied
into the project), through the stateless batch contract (`dedup_documents` and `newsingest dedup --jsonl`)
and through the pipeline's rolling `DedupIndex`.

Together: seed 000's story as its (made-up) origin outlet published it, seed 000 itself (the MENAFN copy
with its furniture: render date, credit, "Read also", tracking id, legal disclaimer), a truncated re-post
and a tracking-parameter twin. Apart: seeds 002 and 003 (two reports of one press conference, written
independently), seeds 001 and 004 (other reports on the same talks), a follow-up story that reuses two
background paragraphs, a weekly roundup that quotes one paragraph, and short items of the syndicator that
share nothing but its disclaimer and promo lines (and that seed 000 carries too).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import shared_path

from pipeline.clean import clean_text
from pipeline.dedup import DedupIndex, dedup_documents
from pipeline.settings import DedupSettings

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 11, 26, 9, 0, tzinfo=UTC)

# Made-up furniture and stories (only the seeds' own lines come from ../shared, at run time).
ORIGIN_HEADER = ["Kyiv Ledger", "Politics | World | Economy | Opinion", "26.11.2025 10:41"]
ORIGIN_FOOTER = ["Follow the Kyiv Ledger on Telegram", "© 2025 Kyiv Ledger. Quoting is allowed with a link."]
REPOST_FURNITURE = ["EUROPE DESK", "Shared from our partners", "Comments (0)"]
PROMO = "Get the NewsFlow morning markets briefing: sign up free and read it before the opening bell."
SHORT_ITEMS = [  # one-sentence briefs: the syndicator's shared lines are most of each item
    "(MENAFN- Baltic Freight Review) Container volumes at the port of Klaipeda rose four percent in October.",
    "(MENAFN- Gulf Retail Insider) An organic grocery chain plans nine new branches in the emirates next year.",
    "(MENAFN- Andes Mining Journal) A Chilean copper producer reported a fifteen percent fall in quarterly output.",
    "(MENAFN- Nordic Energy Watch) Wind farms in the region produced a record share of electricity in November.",
    "(MENAFN- Alpine Tourism Daily) Ski resorts in Tyrol opened three weeks early after heavy snow at altitude.",
]
FOLLOW_UP_OWN = [
    "Two days after the talks in Geneva, the NATO Secretary General met defence ministers of the Nordic "
    "and Baltic states in Tallinn to discuss how a ceasefire in Ukraine could be monitored from the air.",
    "The ministers agreed to set up a working group on surveillance flights over the Black Sea and asked "
    "the alliance's military committee to present options before the end of January.",
    "Estonia's defence minister said his country was ready to provide drones and crews for the mission, "
    "but warned that no monitoring plan would work without guarantees agreed by all the parties involved.",
    "Officials in Tallinn said a joint statement would be published after the meeting of foreign ministers "
    "in Brussels next week, where the peace proposal will again be on the agenda.",
]
ROUNDUP_OWN = [
    "Our weekly review of European security news: what happened, and what to watch next week.",
    "Poland signed a contract for 96 attack helicopters, the largest single purchase in the history of its "
    "armed forces, with deliveries due to begin in 2028 and local assembly of some of the airframes.",
    "Finland opened the first section of a fence along its eastern border, saying the barrier would help "
    "its guards control crossings after months of migrants arriving at checkpoints in the far north.",
    "The European Commission proposed a new fund to help member states buy air defence systems together, "
    "with the first calls for joint orders expected in the spring after talks with the industry.",
    "Next week: NATO foreign ministers meet in Brussels, and the EU's leaders gather for their last summit "
    "of the year.",
]


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    """Documents {id, text, url, source, published_at} and the expected grouping in `GROUPS`."""
    folder = shared_path("seeds")
    gold = {g["file"][:3]: g for g in json.loads((folder / "gold.json").read_text(encoding="utf-8"))}
    raw = {k: (folder / g["file"]).read_text(encoding="utf-8") for k, g in gold.items()}
    body = gold["000"]["body"]  # the story's paragraphs, in order
    disclaimer = [b for b in gold["000"]["boilerplate"] if b.startswith(("Legal Disclaimer", "MENAFN provides"))]
    assert len(body) >= 12 and len(disclaimer) == 2
    title = gold["000"]["title"]
    origin_url = "https://kyiv-ledger.example/world/2025/11/26/rutte-far-from-peace"
    docs = [
        {"id": "origin", "url": origin_url, "source": "kyiv-ledger",
         "text": "\n\n".join([*ORIGIN_HEADER, title, *body, *ORIGIN_FOOTER])},
        {"id": "menafn-copy", "url": "https://menafn.example/1110400918/rutte", "source": "menafn", "text": raw["000"]},
        {"id": "truncated", "url": "https://eurodesk.example/rutte-peace", "source": "eurodesk",
         "text": "\n".join([REPOST_FURNITURE[0], title.upper(), *body[:6], *REPOST_FURNITURE[1:]])},
        {"id": "utm-twin", "url": origin_url + "?utm_source=telegram&utm_medium=social", "source": "kyiv-ledger",
         "text": "\n\n".join([*ORIGIN_HEADER, title, *body, *ORIGIN_FOOTER[:1]])},
        {"id": "seed-001", "source": "pravda", "text": raw["001"]},
        {"id": "seed-002", "source": "europe-press", "text": raw["002"]},
        {"id": "seed-003", "source": "sample-outlet", "text": raw["003"]},
        {"id": "seed-004", "source": "rferl", "text": raw["004"]},
        {"id": "follow-up", "source": "kyiv-ledger",
         "text": "\n\n".join(["NATO allies discuss air monitoring of a ceasefire", *FOLLOW_UP_OWN[:2], body[1],
                              *FOLLOW_UP_OWN[2:], body[6]])},
        {"id": "roundup", "source": "security-weekly",
         "text": "\n\n".join(["The week in European security", ROUNDUP_OWN[0], body[0] + " " + body[1],
                              *ROUNDUP_OWN[1:]])},
    ]
    for i, item in enumerate(SHORT_ITEMS):
        docs.append({"id": f"short-{i}", "url": f"https://menafn.example/{1110400990 + i}/item", "source": "menafn",
                     "text": "\n".join([item, *disclaimer, PROMO])})
    for n, d in enumerate(docs):
        d["published_at"] = (T0 + timedelta(minutes=10 * n)).isoformat()
    return docs


TOGETHER = {"origin", "menafn-copy", "truncated", "utm-twin"}


def _check(clusters: dict[str, str], docs: list[dict], *, short_items: bool = True) -> None:
    story = {clusters[i] for i in TOGETHER}
    assert len(story) == 1, {i: clusters[i] for i in TOGETHER}
    assert story == {"origin"}  # named after its first-seen document
    others = [d["id"] for d in docs if d["id"] not in TOGETHER and (short_items or not d["id"].startswith("short-"))]
    assert all(clusters[i] == i for i in others), {i: clusters[i] for i in others if clusters[i] != i}


def test_the_short_items_need_the_template_guard(corpus) -> None:
    """The syndicator's shared lines are most of each short item: without template knowledge some of them
    pass for copies of each other, so the guard is what keeps them apart."""
    blind = DedupSettings(template_clusters=10**6, source_template_clusters=10**6)
    clusters = {r["id"]: r["cluster"] for r in dedup_documents(corpus, blind)}
    assert any(clusters[f"short-{i}"] != f"short-{i}" for i in range(len(SHORT_ITEMS)))
    index = DedupIndex(blind)
    merged = [
        index.add(d["id"], d["text"], source=d["source"], seen_at=T0).duplicate_of is not None
        for d in corpus
        if d["id"].startswith("short-")
    ]
    assert any(merged)


def test_batch_contract_on_seeds(corpus) -> None:
    out = list(dedup_documents(corpus))
    assert [r["id"] for r in out] == [d["id"] for d in corpus]
    clusters = {r["id"]: r["cluster"] for r in out}
    _check(clusters, corpus)
    dup = {r["id"]: r["duplicate_of"] for r in out}
    assert dup["origin"] is None and dup["utm-twin"] == "origin"  # the URL layer links the twin first
    # with URLs only, the source is the URL's host: the syndicator's lines are still learned as template
    urls_only = [{k: v for k, v in d.items() if k != "source"} for d in corpus]
    _check({r["id"]: r["cluster"] for r in dedup_documents(urls_only)}, corpus)
    # raw texts only: the story and the related reports are told apart the same way (a syndicator's
    # boilerplate, unattributed, can only be learned once many different stories carry it)
    bare = [{"id": d["id"], "text": d["text"]} for d in corpus]
    _check({r["id"]: r["cluster"] for r in dedup_documents(bare)}, corpus, short_items=False)


def test_cli_on_seeds(corpus) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "dedup", "--jsonl"],
        input="".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus),
        capture_output=True, text=True, encoding="utf-8", cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(set(r) == {"id", "cluster", "duplicate_of"} for r in rows)
    _check({r["id"]: r["cluster"] for r in rows}, corpus)


@pytest.mark.parametrize("cleaned", [False, True], ids=["raw", "cleaned"])
def test_rolling_index_on_seeds(corpus, cleaned: bool) -> None:
    """The pipeline's stage: documents arrive one by one (cleaned text, as stored, or raw text) and each
    joins the cluster of its best indexed match; the URL layer is upstream (one article id per canonical
    URL), so the tracking twin arrives here as a second text of the same story."""
    index = DedupIndex()
    clusters = {}
    for d in corpus:
        text = clean_text(d["text"]).text if cleaned else d["text"]
        match = index.add(d["id"], text, source=d["source"], seen_at=datetime.fromisoformat(d["published_at"]))
        clusters[d["id"]] = match.cluster_id
    _check(clusters, corpus)
    # the index survives a round trip through Arrow: a late copy joins the same story
    reloaded = DedupIndex.from_arrow(index.to_arrow())
    late = next(d for d in corpus if d["id"] == "truncated")
    assert reloaded.add("late-copy", late["text"], seen_at=T0 + timedelta(days=1)).cluster_id == "origin"
