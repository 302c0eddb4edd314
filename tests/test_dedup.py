"""Syndicated-copy detection: copies join their story, related but different texts stay apart.

All texts here are made up for the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from pipeline import dedup
from pipeline.dedup import DedupIndex, DedupMatch, content_hash, dedup_documents, fingerprint, normalize_text
from pipeline.settings import DedupSettings

BENCH = SHARED / "dedup-benchmark"

# ---------------------------------------------------------------------------------------------- texts

ORIGIN_PARAS = [
    "NORDHAVEN, May 12 (Wire) - The Nordhaven city council on Tuesday approved a 1.2 billion euro light rail "
    "line that will link the container port with the northern suburbs, ending a decade of debate over how to "
    "relieve the city's congested ring road.",
    "Councillors voted 31 to 14 in favour of the plan after a nine-hour session, Mayor Ilse Vandermeer said. "
    "Construction is due to start next spring and the first trams should run in late 2029.",
    "The 14-kilometre line will have 22 stops and is expected to carry about 60,000 passengers a day, according "
    "to projections by the municipal transport department. Trams will run every six minutes at peak hours.",
    "The regional government has pledged to cover 40 pct of the cost, with the remainder financed by municipal "
    "bonds and a loan from the European Investment Bank, the council said in a statement.",
    "Opposition councillors argued that the projections were too optimistic and that dedicated bus lanes would "
    'have been far cheaper. "We are betting the finances of this city on passenger numbers that nobody can '
    'guarantee," said Joris Aalbers of the Citizens List.',
    "Shop owners along the planned route have warned that two years of roadworks could drive small businesses "
    "out of the old centre. The council promised a compensation fund of 15 mln euros for affected traders.",
    "The port authority welcomed the decision, saying the line would make it easier for its 8,000 workers to "
    "reach the terminals without a car and would cut lorry traffic on the harbour bridge.",
    "Nordhaven last operated trams in 1957, when the old network was dismantled to make room for cars and "
    "buses, a decision that local historians now describe as one of the costliest in the history of the city.",
]
ORIGIN = "Nordhaven council approves tram line to port\n\n" + "\n\n".join(ORIGIN_PARAS)

# the same wire story as an outlet publishes it: template lines, new headline, no dateline, reworded a bit
SYNDICATED = "\n".join(
    [
        "Home | News | Sport | Weather | Subscribe",
        "Nordhaven backs harbour tram link after marathon vote",
        "By Wire Staff",
        ORIGIN_PARAS[0].replace("NORDHAVEN, May 12 (Wire) - ", ""),
        ORIGIN_PARAS[1].replace("Mayor Ilse Vandermeer said", "Mayor Ilse Vandermeer told reporters"),
        "Advertisement",
        ORIGIN_PARAS[2],
        ORIGIN_PARAS[3].replace("40 pct", "40 percent"),
        "Advertisement",
        *ORIGIN_PARAS[4:],
        "Sign up for the Riverside Gazette morning briefing to get the top stories in your inbox.",
        "(c) The Riverside Gazette. Wire content used under licence.",
    ]
)

TRUNCATED = "\n\n".join(
    ["NORDHAVEN APPROVES TRAM LINE", *ORIGIN_PARAS[:3], "Copyright Wire. All rights reserved."]
)

# another agency on the same event: same facts, its own words, one shared quote
INDEPENDENT = """Port tram gets green light in Nordhaven

Nordhaven's council has backed plans for a light rail connection between the harbour and the northern \
districts, approving a budget of 1.2 billion euros late on Tuesday after a long and heated meeting.

The vote was 31 to 14. Supporters said the tram would finally take pressure off the ring road, where \
commuters lose close to an hour a day in traffic jams according to a study by the chamber of commerce.

Building work on the route is planned to begin next year, and officials hope passengers can ride the first \
trams before the end of the decade. Most of the money will be raised through bonds and European loans.

Critics remain unconvinced. "We are betting the finances of this city on passenger numbers that nobody can \
guarantee," said Joris Aalbers of the Citizens List, who wants cheaper express buses instead.

Retailers in the old town fear the construction site. A spokeswoman for the traders' association said \
members would seek talks with the council about rent relief during the works."""

# two days later: a new story that reuses background paragraphs of the first one
FOLLOW_UP = "\n\n".join(
    [
        "Nordhaven traders go to court over tram works",
        "NORDHAVEN, May 14 (Wire) - A group of 120 shop owners in Nordhaven filed a lawsuit on Thursday to halt "
        "preparatory work on the city's new tram line, arguing that the council failed to assess the economic "
        "impact of two years of roadworks on the old centre.",
        "The traders' lawyer, Mieke Dorsman, said the compensation fund promised by the council was far too small "
        "and that her clients would ask the administrative court for an injunction within weeks.",
        "A council spokesman said the city was confident the project would survive the challenge and that "
        "contracts for the first section would be signed in the autumn as planned.",
        ORIGIN_PARAS[2],
        ORIGIN_PARAS[3],
        ORIGIN_PARAS[7],
    ]
)

# a weekly roundup that quotes one paragraph of the story among its own items
ROUNDUP = "\n\n".join(
    [
        "The week in review: trams, tides and a new library",
        "It was a busy week for the region. Here is what you may have missed while the rain kept everyone "
        "indoors and the ferry timetable changed yet again.",
        ORIGIN_PARAS[0],
        "In Westerby, the long-awaited public library finally opened its doors on Saturday. More than 3,000 "
        "visitors came on the first day, and the children's reading room was full within an hour of opening.",
        "Spring tides flooded the coastal road near Kalvik twice this week. The water board said new barriers "
        "would be installed before the autumn storms, at a cost of four million euros.",
        "The regional football derby ended in a goalless draw in front of a sold-out stadium, leaving both "
        "clubs level on points with three matches of the season still to play.",
        "Farmers in the polder region reported an early start to the asparagus harvest after an unusually warm "
        "April, and prices at the weekly market in Dorne fell by a third compared with last year.",
        "Next week: the provincial budget debate, the opening of the beach season and the results of the "
        "annual survey on cycling safety in the larger towns of the region.",
    ]
)

# four unrelated short items of one outlet that share only its disclaimer and promo lines
SHORT_ITEMS = [
    "Bakery on Mill Street closes after 60 years\nThe family bakery on Mill Street will close its doors at the "
    "end of the month because none of the grandchildren wants to take over the business.",
    "Cyclist injured on ring road\nA 34-year-old cyclist was taken to hospital on Monday morning after a "
    "collision with a delivery van at the junction of the ring road and Canal Street.",
    "School choir wins national prize\nThe choir of the Lindenhof primary school won first prize at the "
    "national youth music contest in Utrecht with a programme of folk songs from the region.",
    "Water outage in the north\nResidents of the northern districts will be without tap water on Wednesday "
    "between nine and noon while the utility replaces a main pipe under the railway.",
]
OUTLET_FOOTER = (
    "This article was produced by the Valley Courier newsroom. Quotes may have been edited for length and "
    "clarity. Report errors to our corrections desk.\nSubscribe to the Valley Courier for one euro a week and get "
    "unlimited access to local news, puzzles and the digital edition."
)

# short wire briefs and a "news in brief" page that carries six of them whole
BRIEFS = [
    "Dutch central bank keeps growth forecast\nThe central bank kept its forecast for economic growth this year "
    "at 1.4 pct on Monday, saying strong household spending offset weaker exports to Germany and Belgium.",
    "Rail strike called off\nUnions called off a planned 24-hour rail strike on Tuesday after the operator "
    "agreed to raise wages by five pct over two years and to hire 300 additional conductors.",
    "Airport passenger numbers hit record\nThe national airport handled 6.1 million passengers in April, a "
    "record for the month, as airlines added routes to southern Europe ahead of the summer holidays.",
    "Chemical plant fined over leak\nA court fined a chemical company 2.5 mln euros on Wednesday for a leak "
    "that polluted a canal with solvents in 2022 and forced the temporary closure of two water intakes.",
    "Tulip exports fall\nExports of tulip bulbs fell 8 pct last season as growers lost market share in the "
    "United States to cheaper producers from Chile and New Zealand, the growers association said on Thursday.",
    "Museum returns stolen painting\nA museum in Leiden returned a seventeenth-century landscape painting to the "
    "heirs of a Jewish collector on Friday, ending a restitution claim that had lasted more than a decade.",
]
DIGEST = "News in brief\n\n" + "\n\n".join(BRIEFS) + "\n\nCompiled by the Wire news desk."


def run(docs: list[dict], settings: DedupSettings | None = None) -> dict[str, dict]:
    return {r["id"]: r for r in dedup_documents(docs, settings)}


def together(out: dict[str, dict], a: str, b: str) -> bool:
    return out[a]["cluster"] == out[b]["cluster"]


# ------------------------------------------------------------------------------------- normalisation


def test_normalize_and_content_hash() -> None:
    a = "Tram line APPROVED &amp; funded!\n\n  Council\u2019s vote: 31\u201314."
    b = "tram line approved & funded council's vote 31 14"
    assert normalize_text(a) == "tram line approved funded council s vote 31 14"
    assert content_hash(a) == content_hash(b)
    assert content_hash("\uff34\uff52\uff41\uff4d") == content_hash("tram")  # NFKC (fullwidth letters)
    assert content_hash(a) != content_hash("tram line rejected & funded")
    assert len(content_hash(a)) == 32
    assert fingerprint(a).content_hash == content_hash(a)


def test_batch_fingerprints_equal_single_ones() -> None:
    texts = [ORIGIN, SYNDICATED, "", "short", DIGEST, "caf\u00e9 \u4e2d\u6587 \U0001f600 x\x00y"]
    batch = dedup.fingerprints(texts)
    for text, fp in zip(texts, batch, strict=True):
        one = fingerprint(text)
        assert one.content_hash == fp.content_hash
        assert one.n_tokens == fp.n_tokens
        assert np.array_equal(one.minhash, fp.minhash)
        assert np.array_equal(one.sample, fp.sample)
    assert batch[2].sample.size == 0 and (batch[2].minhash == 0xFFFFFFFF).all()


def test_wire_abbreviations_fold() -> None:
    a = fingerprint("Profits rose 5 pct to 40 mln dlrs in Mar, the company said. Sales fell 2 pct in the U.K.")
    b = fingerprint("Profits rose 5% to 40 million dollars in March, the company stated. Sales fell 2% in the UK.")
    assert set(a.sample.tolist()) == set(b.sample.tolist())
    assert np.array_equal(a.minhash, b.minhash)


_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pipeline.dedup import fingerprint
fp = fingerprint(sys.argv[2])
print(json.dumps([fp.content_hash, fp.n_tokens, fp.minhash.tobytes().hex(), fp.sample.tobytes().hex()]))
"""


def test_fingerprints_are_identical_across_processes() -> None:
    root = str(Path(__file__).resolve().parents[1])
    outs = []
    for seed in ("1", "2"):  # different hash randomisation in each child
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, root, SYNDICATED],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        outs.append(json.loads(proc.stdout))
    fp = fingerprint(SYNDICATED)
    here = [fp.content_hash, fp.n_tokens, fp.minhash.tobytes().hex(), fp.sample.tobytes().hex()]
    assert outs[0] == outs[1] == here


# ------------------------------------------------------------------------------------ batch contract


def test_syndicated_copy_and_truncated_repost_join_the_origin() -> None:
    out = run(
        [
            {"id": "origin", "text": ORIGIN},
            {"id": "copy", "text": SYNDICATED},
            {"id": "trunc", "text": TRUNCATED},
        ]
    )
    assert out["origin"] == {"id": "origin", "cluster": "origin", "duplicate_of": None}
    assert out["copy"]["cluster"] == "origin" and out["copy"]["duplicate_of"] == "origin"
    assert out["trunc"]["cluster"] == "origin"


def test_truncated_repost_seen_first_names_the_cluster() -> None:
    out = run([{"id": "trunc", "text": TRUNCATED}, {"id": "origin", "text": ORIGIN}])
    assert out["origin"]["cluster"] == "trunc"


def test_url_twin_joins_via_url() -> None:
    out = run(
        [
            {"id": "a", "text": ORIGIN, "url": "https://www.example-news.com/world/tram-line?utm_source=rss"},
            {"id": "b", "text": "Live: council debates the tram line", "url": "https://m.example-news.com/world/tram-line#live"},
            {"id": "c", "text": "Live: council debates the tram line", "url": "https://example-news.com/world/other"},
        ]
    )
    assert out["b"]["cluster"] == "a" and out["b"]["duplicate_of"] == "a"
    assert out["c"]["cluster"] == "a" and out["c"]["duplicate_of"] == "b"  # same text as b, other URL


def test_exact_copies_with_different_formatting_join() -> None:
    out = run([{"id": "a", "text": ORIGIN}, {"id": "b", "text": ORIGIN.upper().replace("\n\n", " ")}])
    assert together(out, "a", "b")


def test_independent_report_and_follow_up_stay_apart() -> None:
    out = run(
        [
            {"id": "origin", "text": ORIGIN, "source": "wire"},
            {"id": "independent", "text": INDEPENDENT, "source": "other-agency"},
            {"id": "follow-up", "text": FOLLOW_UP, "source": "wire"},
            {"id": "copy", "text": SYNDICATED, "source": "gazette"},
        ]
    )
    assert not together(out, "origin", "independent")
    assert not together(out, "origin", "follow-up")
    assert not together(out, "independent", "follow-up")
    assert together(out, "origin", "copy")


def test_roundup_quoting_one_paragraph_stays_apart() -> None:
    for order in (["origin", "roundup"], ["roundup", "origin"]):
        texts = {"origin": ORIGIN, "roundup": ROUNDUP}
        out = run([{"id": i, "text": texts[i]} for i in order])
        assert not together(out, "origin", "roundup")


def test_short_items_sharing_only_template_lines_stay_apart() -> None:
    docs = [
        {"id": f"item{i}", "text": f"{text}\n{OUTLET_FOOTER}", "source": "valley-courier"}
        for i, text in enumerate(SHORT_ITEMS)
    ]
    assert all(fingerprint(d["text"]).n_tokens >= DedupSettings().min_words for d in docs)
    out = run(docs)
    assert len({r["cluster"] for r in out.values()}) == len(docs)
    out = run([{k: v for k, v in d.items() if k != "source"} for d in docs])  # also without a source
    assert len({r["cluster"] for r in out.values()}) == len(docs)


def test_digest_of_briefs_joins_none_of_them() -> None:
    briefs = [{"id": f"brief{i}", "text": t} for i, t in enumerate(BRIEFS)]
    for docs in (briefs + [{"id": "digest", "text": DIGEST}], [{"id": "digest", "text": DIGEST}] + briefs):
        out = run(docs)
        assert len({r["cluster"] for r in out.values()}) == len(docs), out


def test_window_days_separates_documents_far_apart_in_time() -> None:
    docs = [
        {"id": 1, "text": ORIGIN, "published_at": "2026-05-12T08:00:00Z"},
        {"id": 2, "text": SYNDICATED, "published_at": "2026-05-13T08:00:00+00:00"},
        {"id": 3, "text": SYNDICATED, "published_at": "2026-07-01T08:00:00"},  # naive: UTC
        {"id": 4, "text": ORIGIN},  # no date: the previous document's time
    ]
    out = run(docs)
    assert out[2]["cluster"] == 1  # ids come back as given
    assert out[3]["cluster"] == 3 and out[4]["cluster"] == 3
    assert out[4]["duplicate_of"] == 3


def test_empty_and_short_texts_are_exact_only() -> None:
    out = run(
        [
            {"id": "e1", "text": ""},
            {"id": "e2", "text": "   "},
            {"id": "s1", "text": "Council approves tram line to the port."},
            {"id": "s2", "text": "Council approves tram line to the port!"},
            {"id": "s3", "text": "Council approves tram line to the harbour."},
        ]
    )
    assert out["e2"]["cluster"] == "e2"  # empty texts are not duplicates of each other
    assert out["s2"]["cluster"] == "s1"
    assert out["s3"]["cluster"] == "s3"


def test_cli_reads_and_writes_jsonl() -> None:
    root = Path(__file__).resolve().parents[1]
    lines = [{"id": "origin", "text": ORIGIN}, {"id": "copy", "text": SYNDICATED}, {"id": "x", "text": ROUNDUP}]
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.dedup"],
        input="".join(json.dumps(d) + "\n" for d in lines),
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows == [
        {"id": "origin", "cluster": "origin", "duplicate_of": None},
        {"id": "copy", "cluster": "origin", "duplicate_of": "origin"},
        {"id": "x", "cluster": "x", "duplicate_of": None},
    ]


def test_cli_imports_only_numpy_and_the_standard_library() -> None:
    code = (
        "import sys, pipeline.dedup; "
        "print(sorted(m for m in ('pyarrow', 'pydantic', 'yaml', 'pipeline.settings') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert proc.stdout.strip() == "[]"


def test_cli_dedup_path_starts_without_pydantic() -> None:
    """`newsingest dedup --jsonl` parses its arguments and runs without importing pydantic or pyarrow, and
    without the feature modules' subcommands (here a module that would import pydantic at once)."""
    code = (
        "import sys, io; from pipeline import cli; sys.stdin = io.StringIO('{\"id\": 1, \"text\": \"x\"}\\n'); "
        "cli.COMMAND_MODULES = ('pipeline.run',); "
        "rc = cli.main(['-v', 'dedup', '--jsonl']); "
        "print(sorted(m for m in ('pyarrow', 'pydantic', 'yaml', 'pipeline.settings', 'trafilatura') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert proc.stdout.splitlines() == ['{"id": 1, "cluster": 1, "duplicate_of": null}', "[]"]


def test_default_settings_mirror_dedup_settings() -> None:
    defaults = dedup._DefaultSettings()
    assert set(dedup._DefaultSettings.__dataclass_fields__) == set(DedupSettings.model_fields)
    for name, field in DedupSettings.model_fields.items():
        assert getattr(defaults, name) == field.default, name


def test_verifier_settings_are_honoured() -> None:
    docs = [{"id": "origin", "text": ORIGIN}, {"id": "trunc", "text": TRUNCATED}]
    assert run(docs)["trunc"]["cluster"] == "origin"
    # the truncated re-post is about 3/8 of the origin: too short once the ratio asks for 9/10 ...
    assert run(docs, DedupSettings(min_length_ratio=0.9))["trunc"]["cluster"] == "trunc"
    # ... unless a partial coverage of that size counts as a copy wherever it sits
    assert run(docs, DedupSettings(min_length_ratio=0.9, full_coverage=0.3))["trunc"]["cluster"] == "origin"
    index = DedupIndex(DedupSettings(min_length_ratio=0.9))
    index.add("origin", ORIGIN, seen_at=T0)
    assert index.add("trunc", TRUNCATED, seen_at=T0).cluster_id == "trunc"
    with pytest.raises(ValueError):
        DedupSettings(source_template_clusters=1)


def test_index_refuses_a_table_built_with_another_sample_rate() -> None:
    index = DedupIndex()
    index.add("origin", ORIGIN, seen_at=T0)
    with pytest.raises(ValueError, match="sample_mod"):
        DedupIndex.from_arrow(index.to_arrow(), DedupSettings(sample_mod=4))


# ---------------------------------------------------------------------------------------- the index

T0 = datetime(2026, 5, 12, 8, 0, tzinfo=UTC)


def test_index_clusters_copies_and_keeps_related_stories_apart() -> None:
    index = DedupIndex(DedupSettings())
    first = index.add("origin", ORIGIN, source="wire", seen_at=T0)
    assert first == DedupMatch("origin", None, None, None)
    copy = index.add("copy", SYNDICATED, source="gazette", seen_at=T0 + timedelta(hours=1))
    assert copy.cluster_id == "origin" and copy.duplicate_of == "origin" and copy.method == "near"
    assert copy.similarity is not None and copy.similarity >= DedupSettings().min_containment
    trunc = index.add("trunc", TRUNCATED, seen_at=T0 + timedelta(hours=2))
    assert trunc.cluster_id == "origin"
    exact = index.add("exact", ORIGIN.replace("\n\n", "\n"), seen_at=T0 + timedelta(hours=2))
    assert exact == DedupMatch("origin", "origin", "exact", 1.0)
    for doc_id, text in (("independent", INDEPENDENT), ("follow-up", FOLLOW_UP), ("roundup", ROUNDUP)):
        m = index.add(doc_id, text, source="wire", seen_at=T0 + timedelta(days=2))
        assert m.cluster_id == doc_id and m.duplicate_of is None, (doc_id, m)
    assert index.add("copy", "anything", seen_at=T0).cluster_id == "origin"  # ids are indexed once
    assert len(index) == 7 and "trunc" in index and index.cluster_of("trunc") == "origin"


def test_index_short_items_of_one_source_stay_apart() -> None:
    index = DedupIndex()
    for i, text in enumerate(SHORT_ITEMS * 2):  # the outlet keeps publishing
        m = index.add(f"item{i}", f"{text}\n{OUTLET_FOOTER}" if i < 4 else f"{text} Updated.\n{OUTLET_FOOTER}",
                      source="valley-courier", seen_at=T0 + timedelta(minutes=i))  # fmt: skip
        if i < 4:
            assert m.cluster_id == f"item{i}", m
        else:  # a re-post of an earlier item with one word added is a copy of it
            assert m.cluster_id == f"item{i - 4}", m


def test_index_digest_seen_after_its_briefs_joins_none() -> None:
    index = DedupIndex()
    for i, text in enumerate(BRIEFS):
        index.add(f"brief{i}", text, seen_at=T0)
    assert index.add("digest", DIGEST, seen_at=T0).cluster_id == "digest"


def test_index_round_trip_through_arrow_keeps_clusters() -> None:
    pa = pytest.importorskip("pyarrow")
    settings = DedupSettings()
    index = DedupIndex(settings)
    index.add("origin", ORIGIN, source="wire", seen_at=T0)
    index.add("roundup", ROUNDUP, seen_at=T0)
    for i, text in enumerate(SHORT_ITEMS):
        index.add(f"item{i}", f"{text}\n{OUTLET_FOOTER}", source="valley-courier", seen_at=T0)
    table = index.to_arrow()
    assert table.column_names == [
        "doc_id", "cluster_id", "content_hash", "source", "seen_at", "n_tokens", "minhash", "sample",
    ]  # fmt: skip
    assert table.schema.field("seen_at").type == pa.timestamp("us", tz="UTC")
    assert table.num_rows == 6

    loaded = DedupIndex.from_arrow(table, settings)
    assert len(loaded) == 6
    assert loaded.to_arrow().equals(table)
    # some documents' rows only (a commit's new entries): the same rows, in window order
    import pyarrow.compute as pc

    some = ["item2", "origin", "not-indexed", "item0"]
    assert loaded.to_arrow(some).equals(table.filter(pc.is_in(table["doc_id"], value_set=pa.array(some))))
    assert loaded.to_arrow([]).num_rows == 0 and loaded.to_arrow([]).schema.equals(table.schema)
    m = loaded.add("copy", SYNDICATED, source="gazette", seen_at=T0 + timedelta(hours=3))
    assert m.cluster_id == "origin" and m.method == "near"
    assert loaded.add("trunc", TRUNCATED, seen_at=T0 + timedelta(hours=3)).cluster_id == "origin"
    assert loaded.add("origin", "ignored").cluster_id == "origin"
    # the loaded index knows the outlet's template lines
    assert loaded.add("item9", f"{SHORT_ITEMS[0][:60]} tomorrow.\n{OUTLET_FOOTER}", source="valley-courier",
                      seen_at=T0).cluster_id == "item9"  # fmt: skip

    with pytest.raises(ValueError, match="shingle_size"):
        DedupIndex.from_arrow(table, DedupSettings(shingle_size=4))


def test_prune_drops_old_entries_and_from_arrow_skips_them() -> None:
    index = DedupIndex(DedupSettings(window_days=3))
    index.add("old", ORIGIN, seen_at=T0)
    index.add("other", INDEPENDENT, seen_at=T0 + timedelta(days=2))
    assert index.prune(T0 + timedelta(days=1)) == 1
    assert "old" not in index and len(index) == 1
    assert index.prune(T0 + timedelta(days=1)) == 0
    # the old story is gone: its copy starts a new cluster
    assert index.add("copy", SYNDICATED, seen_at=T0 + timedelta(days=2)).cluster_id == "copy"

    index = DedupIndex(DedupSettings(window_days=3))
    index.add("old", ORIGIN, seen_at=T0)
    index.add("other", INDEPENDENT, seen_at=T0 + timedelta(days=2))
    loaded = DedupIndex.from_arrow(index.to_arrow(), DedupSettings(window_days=3), since=T0 + timedelta(days=1))
    assert len(loaded) == 1 and "other" in loaded
    # outside the window even without pruning: no match
    late = DedupIndex(DedupSettings(window_days=3))
    late.add("old", ORIGIN, seen_at=T0)
    assert late.add("copy", SYNDICATED, seen_at=T0 + timedelta(days=5)).cluster_id == "copy"


def test_add_many_equals_add() -> None:
    docs = [{"id": "origin", "text": ORIGIN}, {"id": "copy", "text": SYNDICATED}, {"id": "r", "text": ROUNDUP}]
    a, b = DedupIndex(), DedupIndex()
    many = a.add_many([{**d, "seen_at": T0} for d in docs])
    one = [b.add(d["id"], d["text"], seen_at=T0) for d in docs]
    assert many == one


def _copies_corpus(n_stories: int, seed: int) -> list[dict]:
    """Made-up stories of random words, each published several times: whole, truncated, with a template
    line (shared by every outlet), so postings hold keys with many holders (the cap) and single ones."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(3000)]
    docs = []
    for s in range(n_stories):
        sentences = [" ".join(rng.choice(vocab, 14)) + "." for _ in range(12)]
        story = "\n".join(sentences)
        for c in range(int(rng.integers(1, 5))):
            text = story if c % 2 == 0 else "\n".join(sentences[: 6 + c])
            docs.append({"id": f"s{s}c{c}", "text": text + "\nShare this story on social media today please."})
    rng.shuffle(docs)
    return docs


def test_runs_in_finds_every_keys_run() -> None:
    """Start and length of each key's run in a sorted tier with repeats: keys absent (below, between and
    above the tier's), present once and several times; against a count by comparison."""
    rng = np.random.default_rng(5)
    tier = np.sort(np.concatenate([rng.integers(1, 2**63, 500, dtype=np.uint64)] * 1
                                  + [rng.integers(1, 2**63, 40, dtype=np.uint64).repeat(3)]))
    keys = np.concatenate([tier[::7], rng.integers(0, 2**64 - 1, 200, dtype=np.uint64, endpoint=True),
                           np.array([0, 2**64 - 1], dtype=np.uint64)])
    lo, n = dedup._runs_in(tier, keys)
    for key, start, count in zip(keys.tolist(), lo.tolist(), n.tolist(), strict=True):
        assert count == int((tier == key).sum())
        if count:
            assert tier[start] == key and (start == 0 or tier[start - 1] < key)


def test_sketch_adds_a_documents_keys_like_add_at() -> None:
    """The sorted plain-indexing path of the sketch counts what np.add.at counts, repeats included."""
    rng = np.random.default_rng(9)
    sketch = dedup._Sketch(16)  # 65,536 slots: every batch here takes the per-document path
    want = np.zeros_like(sketch.rows)
    for size in (1, 2, 30, 200):
        keys = rng.integers(0, 2**64 - 1, size, dtype=np.uint64, endpoint=True)
        keys = np.concatenate([keys, keys[: size // 3]])  # the same key twice: the add.at path
        for batch in (keys[: size], keys):  # distinct keys only, then with repeats
            sketch.add(batch)
            for row, slots in zip(want, sketch._slots(batch), strict=True):
                np.add.at(row, slots, 1)
    assert np.array_equal(sketch.rows, want)


@pytest.mark.parametrize("bits", [12, 22])
def test_sketch_adds_texts_like_add_at(bits: int) -> None:
    """`add_texts` (a batch of texts at once, its counters sorted as 32-bit numbers) counts what np.add.at
    counts of each text's keys and its source's keys, repeats within and across texts included."""
    rng = np.random.default_rng(bits)
    sketch = dedup._Sketch(bits)
    want = np.zeros_like(sketch.rows)
    samples = [rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True) for n in (0, 1, 7, 300, 300)]
    samples[4][:50] = samples[3][:50]  # keys shared with the text before
    samples[3][10:20] = samples[3][0]  # a key ten times in one text
    srcs = [0, 3, 0, 5, 5]
    sketch.add_texts(samples, srcs)
    for sample, src in zip(samples, srcs, strict=True):
        for row, slots in zip(want, sketch._slots(dedup._sketch_keys(sample, src)), strict=True):
            np.add.at(row, slots, 1)
    assert np.array_equal(sketch.rows, want) and want.sum() > 0


@pytest.mark.parametrize("cap", [1, 3])
def test_postings_build_keeps_each_keys_first_slots(cap: int) -> None:
    """The bulk build against a plain reference: per key, its first `cap` slots in slot order, with keys
    that share their high 32 bits (the sort's re-sorted runs) and keys held many times."""
    rng = np.random.default_rng(cap)
    base = rng.integers(0, 2**63, 300, dtype=np.uint64)
    twins = (base[:40] & np.uint64(0xFFFFFFFF00000000)) | rng.integers(0, 2**32, 40, dtype=np.uint64)
    pool = np.concatenate([base, twins])
    keys, slots = [], []
    for slot in range(400):  # slot order, a few keys each, popular keys often
        k = np.unique(np.concatenate([rng.choice(pool, 5), rng.choice(pool[:8], 2)]))
        keys.append(k)
        slots.append(np.full(k.size, slot))
    post = dedup._Postings(cap)
    post.build(np.concatenate(keys), np.concatenate(slots))
    want: dict[int, list[int]] = {}
    for k, sl in zip(keys, slots, strict=True):
        for h, slot in zip(k.tolist(), sl.tolist(), strict=True):
            held = want.setdefault(h, [])
            if len(held) < cap:
                held.append(slot)
    assert post.keys.tolist() == sorted(h for h, held in want.items() for _ in held)  # one entry per holder
    for h, held in want.items():
        assert post.lookup(np.array([h], dtype=np.uint64), [h]).tolist() == held
    assert post.lookup(pool, pool.tolist()).size == sum(len(want[h]) for h in pool.tolist())


def test_insert_sorted_in_place_is_np_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    for trial in range(400):
        monkeypatch.setattr(dedup, "_MOVE_BLOCK", int(rng.integers(1, 9)))  # many blocks, overlapping moves
        n, m = int(rng.integers(0, 60)), int(rng.integers(0, 40))
        base = np.sort(rng.integers(0, 50, n)).astype(np.uint64)
        add = np.sort(rng.integers(0, 50, m)).astype(np.uint64)
        at = np.searchsorted(base, add, side="right")
        out = np.concatenate([base, np.full(m, 99, dtype=np.uint64)])
        dedup._insert_sorted(out, n, at, add)
        assert np.array_equal(out, np.insert(base, at, add)), trial


def test_postings_absorb_grows_the_base_in_place() -> None:
    """No second copy of a big base: the array is enlarged where it is (same object) when nothing else
    refers to it, and copied when something does (a view here), with the same result."""
    post = dedup._Postings(6, recent_max=1 << 30)
    rng = np.random.default_rng(3)
    post.build(rng.integers(0, 2**63, 5000, dtype=np.uint64), np.repeat(np.arange(500), 10))
    for slot in range(500, 600):
        post.add(slot, rng.integers(0, 2**63, 10, dtype=np.uint64))
    keys_id = id(post.keys)  # no reference kept: a reference would make numpy refuse to resize
    post.absorb()
    assert id(post.keys) == keys_id and post.keys.size == 6000
    assert np.all(post.keys[1:] >= post.keys[:-1])
    view = post.keys[:10]
    for slot in range(600, 610):
        post.add(slot, rng.integers(0, 2**63, 10, dtype=np.uint64))
    post.absorb()
    assert post.keys.size == 6100 and view.base is not post.keys and np.all(post.keys[1:] >= post.keys[:-1])


@pytest.mark.parametrize("block", [1 << 18, 3, 1])
@pytest.mark.parametrize("cap", [1, 3])
def test_postings_absorb_gives_the_base_a_full_build_gives(cap: int, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Additions merged into the base now and then (`absorb`, with the dict and the sorted tier both in
    use) leave exactly the base that `build` over every entry gives: each key's first `cap` slots. With
    tiny blocks, a key's run of additions spans several blocks of the merge."""
    monkeypatch.setattr(dedup, "_MOVE_BLOCK", block)
    rng = np.random.default_rng(10 + cap)
    pool = rng.integers(0, 2**63, 200, dtype=np.uint64)
    post = dedup._Postings(cap, recent_max=16)
    keys, slots = [], []
    for slot in range(600):
        k = np.unique(np.concatenate([rng.choice(pool, 4), rng.choice(pool[:6], 2)]))
        keys.append(k)
        slots.append(np.full(k.size, slot))
        post.add(slot, k)
        if slot in (40, 41, 300, 599):  # an empty addition (41) too
            assert post.mid_keys.size or slot == 41
            post.absorb()
            full = dedup._Postings(cap)
            full.build(np.concatenate(keys), np.concatenate(slots))
            assert np.array_equal(post.keys, full.keys) and np.array_equal(post.slots, full.slots)
            assert not post.new and not post.mid_keys.size and post.n_new == 0
    assert post.keys.dtype == np.uint64 and post.slots.dtype == np.int32


def test_index_absorbing_its_postings_finds_the_same_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """An index whose postings outgrow their tiers every few documents (absorbed into the base) finds the
    same matches as one that never absorbs, and ends with the postings a full rebuild gives."""
    docs = _copies_corpus(150, seed=5)
    plain = DedupIndex()
    want = [plain.add(d["id"], d["text"], seen_at=T0) for d in docs]
    absorbed = []
    real = dedup._Postings.absorb

    def counted(self: dedup._Postings) -> None:
        absorbed.append(self.n_new)
        real(self)

    monkeypatch.setattr(dedup._Postings, "outgrown", lambda self: self.n_new > 300)
    monkeypatch.setattr(dedup._Postings, "absorb", counted)
    often = DedupIndex(tuning=dedup.DedupTuning(recent_postings=128))
    got = [often.add(d["id"], d["text"], seen_at=T0) for d in docs]
    assert len(absorbed) > 10 and often._post.keys.size > 1000
    assert got == want and sum(m.duplicate_of is not None for m in got) > 50
    post, lsh = often._post, often._lsh
    post.absorb(), lsh.absorb()
    keys, slots, lkeys, lslots = post.keys, post.slots, lsh.keys, lsh.slots
    often._build_postings()
    assert np.array_equal(keys, often._post.keys) and np.array_equal(slots, often._post.slots)
    assert np.array_equal(lkeys, often._lsh.keys) and np.array_equal(lslots, often._lsh.slots)


def test_posted_keys_are_each_documents_smallest_in_text_order() -> None:
    """`_posted` (a document added) and `_posted_mask` (the documents of a load) choose the same keys: the
    `k` smallest, ties (a shingle twice in a text) to the first in text order."""
    rng = np.random.default_rng(12)
    samples = [rng.choice(rng.integers(0, 2**63, 40, dtype=np.uint64), int(rng.integers(0, 30))) for _ in range(300)]
    lens = np.array([a.size for a in samples])
    flat = np.concatenate(samples)
    starts = np.concatenate(([0], np.cumsum(lens)))
    for k in (1, 5, 12):
        mask = dedup._posted_mask(flat, lens, k)
        for i, a in enumerate(samples):
            want = dedup._posted(a, k)
            assert np.array_equal(flat[starts[i]:starts[i + 1]][mask[starts[i]:starts[i + 1]]], want)
            assert np.array_equal(np.sort(want), np.sort(a)[: min(k, a.size)])  # the smallest
            it = iter(a.tolist())
            assert all(v in it for v in want.tolist())  # a subsequence: text order
    assert dedup._posted(samples[0], 0) is samples[0]


@pytest.mark.parametrize("k", [8, 24])
def test_index_posting_a_few_keys_a_document_finds_the_same_matches(k: int) -> None:
    """Postings of each document's `posted_keys` smallest keys (a lookup still uses all of the new text's)
    find the same matches as postings of every key, on copies, truncated copies (half a story) and
    unrelated stories, hold at most `k` keys a document, and are what a load of the window builds."""
    docs = _copies_corpus(120, seed=8)
    full = DedupIndex(tuning=dedup.DedupTuning(posted_keys=0))
    want = [full.add(d["id"], d["text"], seen_at=T0) for d in docs]
    full._post.absorb()
    few = DedupIndex(tuning=dedup.DedupTuning(posted_keys=k))
    got = [few.add(d["id"], d["text"], seen_at=T0) for d in docs]
    assert got == want and sum(m.duplicate_of is not None for m in got) > 100
    post = few._post
    post.absorb()
    held = np.bincount(post.slots, minlength=len(docs))
    assert held.max() <= k < full._post.slots.size / len(docs)  # each document's keys are many more than k
    loaded = DedupIndex.from_arrow(few.to_arrow(), tuning=dedup.DedupTuning(posted_keys=k))
    assert np.array_equal(loaded._post.keys, post.keys) and np.array_equal(loaded._post.slots, post.slots)


@pytest.mark.parametrize("cap", [2, 6])
def test_index_postings_tiers_find_the_same_matches(cap: int) -> None:
    """The postings' recent additions merged into the sorted tier every few keys (dict kept tiny) give
    the same matches as keeping them all in the dict."""
    docs = _copies_corpus(150, seed=cap)
    merged = DedupIndex(tuning=dedup.DedupTuning(posting_cap=cap, recent_postings=64))
    plain = DedupIndex(tuning=dedup.DedupTuning(posting_cap=cap, recent_postings=1 << 40))
    got = [merged.add(d["id"], d["text"], seen_at=T0) for d in docs]
    want = [plain.add(d["id"], d["text"], seen_at=T0) for d in docs]
    assert merged._post.mid_keys.size and merged._lsh.mid_keys.size  # the sorted tier was used
    assert len(merged._post.new) <= 64 + 200 and not plain._post.mid_keys.size
    assert got == want
    assert sum(m.duplicate_of is not None for m in got) > 50  # copies were found, through both tiers
    sample = np.concatenate([plain._sample[i] for i in range(0, len(docs), 7)])
    assert np.array_equal(np.sort(merged._post.lookup(sample, sample.tolist())),
                          np.sort(plain._post.lookup(sample, sample.tolist())))


# -------------------------------------------------------------------------------------- benchmark


def _ari(gold: dict[str, str], pred: dict[str, str]) -> tuple[float, float, float]:
    from collections import Counter

    def c2(n: int) -> int:
        return n * (n - 1) // 2

    cells = Counter((gold[i], pred[i]) for i in gold)
    tp = sum(c2(v) for v in cells.values())
    gp = sum(c2(v) for v in Counter(gold.values()).values())
    pp = sum(c2(v) for v in Counter(pred[i] for i in gold).values())
    total = c2(len(gold))
    expected = gp * pp / total
    ari = (tp - expected) / ((gp + pp) / 2 - expected)
    return ari, tp / pp if pp else 1.0, tp / gp if gp else 1.0


@pytest.mark.skipif(not (BENCH / "dev.jsonl").exists(), reason=f"dedup benchmark not found at {BENCH}")
def test_benchmark_dev_set() -> None:
    docs = [json.loads(line) for line in (BENCH / "dev.jsonl").open(encoding="utf-8")]
    gold = {r["id"]: r["cluster"] for r in map(json.loads, (BENCH / "dev.gold.jsonl").open(encoding="utf-8"))}
    t = time.perf_counter()
    pred = {r["id"]: r["cluster"] for r in dedup_documents(docs)}
    seconds = time.perf_counter() - t
    ari, precision, recall = _ari(gold, pred)
    print(f"dev: ARI={ari:.4f} P={precision:.4f} R={recall:.4f} {len(docs) / seconds:.0f} docs/s")
    assert ari >= 0.99
    assert precision >= 0.995


@pytest.mark.parametrize("write_bytes", [1, 5000, None])
def test_array_store_spilled_gives_back_what_was_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          write_bytes: int | None) -> None:
    """Whether an array is still in the write buffer or already in the file (written at once, a few at a
    time, or 256 KB at a time), it reads back the same, also between appends."""
    if write_bytes is not None:
        monkeypatch.setattr(dedup, "_STORE_WRITE_BYTES", write_bytes)
    rng = np.random.default_rng(3)
    arrays = [rng.integers(0, 2**63, size=int(n), dtype=np.uint64) for n in rng.integers(0, 300, size=2500)]
    arrays[7] = np.zeros(0, dtype=np.uint64)
    memory, spilled = dedup.ArrayStore(np.uint64), dedup.ArrayStore(np.uint64, tmp_path / "spill")
    memory.extend(arrays)
    for i, a in enumerate(arrays):
        spilled.append(a)
        back = spilled[i]
        back_half = spilled[i // 2]
        assert np.array_equal(back, a) and np.array_equal(back_half, arrays[i // 2])
    assert spilled._flushed < spilled._end or write_bytes == 1  # the last arrays wait in the buffer
    assert len(spilled) == len(memory) == 2500
    assert all(np.array_equal(spilled[i], a) and spilled[i].dtype == np.uint64 for i, a in enumerate(arrays))
    assert np.array_equal(spilled.sizes(), memory.sizes()) and spilled.size(7) == 0
    some = [2499, 3, 7, 100]
    assert np.array_equal(spilled.concat(some), memory.concat(some))
    # runs of consecutive arrays (each read at once), across the file and the write buffer, empty ones inside
    for run in ([5, 6, 7, 8, 9], list(range(2400, 2500)), [0, 1, 2, 3, 2497, 2498, 2499, 8, 7], list(range(2500)), [7]):
        assert np.array_equal(spilled.concat(run), memory.concat(run)) and spilled.concat(run).dtype == np.uint64
    assert np.array_equal(spilled.concat(), memory.concat()) and spilled.concat().dtype == np.uint64
    assert np.array_equal(spilled.sizes(some), [a.size for a in (arrays[i] for i in some)])
    kept = spilled.take(some)
    assert [kept[i].tolist() for i in range(4)] == [arrays[i].tolist() for i in some]
    with pytest.raises(IndexError):
        spilled[2500]
    assert not list((tmp_path / "spill").iterdir())  # unnamed files: nothing left behind, even on a crash
    spilled.close()
    kept.close()


def test_index_with_spilled_arrays_finds_the_same_matches(tmp_path: Path) -> None:
    """An index keeping its documents' MinHash values and samples on disk gives the same matches, the same
    table, the same pruning and the same reloaded index as one keeping them in memory."""
    docs = _copies_corpus(150, seed=9)
    plain, spilled = DedupIndex(), DedupIndex(spill_to=tmp_path)
    for k, d in enumerate(docs):
        at = T0 + timedelta(hours=k)
        assert spilled.add(d["id"], d["text"], seen_at=at) == plain.add(d["id"], d["text"], seen_at=at)
    assert spilled._sample._list is None and len(spilled._sample) == len(docs)
    assert spilled.to_arrow().equals(plain.to_arrow())
    ids = [d["id"] for d in docs[::5]]
    assert spilled.to_arrow(ids).equals(plain.to_arrow(ids))
    cut = T0 + timedelta(hours=40)
    assert spilled.prune(cut) == plain.prune(cut) > 0
    assert spilled.to_arrow().equals(plain.to_arrow())
    reloaded = DedupIndex.from_arrow(plain.to_arrow(), spill_to=tmp_path)
    loaded = DedupIndex.from_arrow(plain.to_arrow())
    more = [{"id": "more-" + d["id"], "text": d["text"]} for d in _copies_corpus(40, seed=10)] + docs[-30:]
    found = 0
    for k, d in enumerate(more):
        at = T0 + timedelta(hours=200 + k)
        match = reloaded.add(d["id"], d["text"], seen_at=at)
        assert match == loaded.add(d["id"], d["text"], seen_at=at)
        found += match.duplicate_of is not None
    assert found > 10
    assert reloaded.to_arrow().equals(loaded.to_arrow())
    for index in (spilled, reloaded):
        index.close()


def test_postings_hold_the_high_half_of_sampled_keys() -> None:
    """The index's shingle postings hold 32-bit keys: the high half of each hash, since sampling chose the keys
    by their low bits (with sample_mod 2 every sampled key is even)."""
    fp = fingerprint(ORIGIN)
    assert fp.sample.size > 50 and not (fp.sample % 2).any()
    index = DedupIndex()
    held = index._post.held_as(fp.sample)
    assert held.dtype == np.uint32 and np.array_equal(held, fp.sample >> np.uint64(32))
    assert (held % 2).any() and index._lsh.key_dtype == np.uint32  # band keys: their high half too


def test_index_with_32_bit_postings_finds_what_64_bit_postings_find(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key shared by chance in its high half only adds a candidate (the full samples are compared): the
    matches are those of postings (shingles and LSH bands) holding the whole 64-bit keys."""
    docs = _copies_corpus(200, seed=11)
    half = DedupIndex()
    got = [half.add(d["id"], d["text"], seen_at=T0) for d in docs]
    real_init = dedup._Postings.__init__

    def whole_keys(self: dedup._Postings, cap: int, recent_max: int = 1 << 16, key_dtype: object = None,
                   **spill: object) -> None:
        real_init(self, cap, recent_max, np.uint64, **spill)

    monkeypatch.setattr(dedup._Postings, "__init__", whole_keys)
    whole = DedupIndex()
    want = [whole.add(d["id"], d["text"], seen_at=T0) for d in docs]
    assert whole._post.keys.dtype == np.uint64 and half._post.keys.dtype == np.uint32
    assert whole._lsh.key_dtype == np.uint64 and half._lsh.key_dtype == np.uint32
    assert got == want and sum(m.duplicate_of is not None for m in got) > 80


# ---------------------------------------------------------------- spilled postings


@pytest.mark.parametrize("segment", [1, 3, 8, 4096])
def test_sorted_file_finds_every_keys_run_and_windows_split_none(segment: int, tmp_path: Path) -> None:
    """A spilled base (written in several appends, a key's run continuing across appends and segments)
    answers what a sorted array answers: each key's slots in order, none for keys below, between and
    above its keys; its windows give every entry once and never split a key's run."""
    rng = np.random.default_rng(segment)
    keys = np.sort(np.concatenate([rng.integers(5, 2**32 - 5, 300, dtype=np.uint64),
                                   rng.integers(5, 2**32 - 5, 30, dtype=np.uint64).repeat(6)])).astype(np.uint32)
    slots = rng.integers(0, 10_000, keys.size).astype(np.int32)
    spilled = dedup._SortedFile(tmp_path, np.uint32, segment=segment)
    for part in np.array_split(np.arange(keys.size), 7):
        spilled.append(keys[part], slots[part])
    spilled.finish()
    assert spilled.size == keys.size and spilled.max_run >= 6
    queries = np.unique(np.concatenate([keys[::5], rng.integers(0, 2**32, 100, dtype=np.uint64).astype(np.uint32),
                                        np.array([0, 2**32 - 1], dtype=np.uint32)]))
    for group in (1, 2, 64):
        start, count, got = spilled.runs(queries, group=group)
        for q, s, c in zip(queries.tolist(), start.tolist(), count.tolist(), strict=True):
            assert got[s:s + c].tolist() == slots[keys == q].tolist()
    for size in (1, 4, 1000):
        windows = list(spilled.windows(size))
        whole = np.concatenate(windows)
        assert np.array_equal(whole["k"], keys) and np.array_equal(whole["s"], slots)
        assert all(a["k"][-1] != b["k"][0] for a, b in zip(windows[:-1], windows[1:], strict=True))  # no run split
    spilled.close()


def test_spilled_postings_hold_and_find_what_postings_in_memory_do(tmp_path: Path) -> None:
    """Postings whose base is in a file (built, then absorbing additions into it) hold the entries and
    answer the lookups of postings in memory absorbing at the same points, prefetched or not; the
    process keeps none of the base."""
    rng = np.random.default_rng(4)
    pool = rng.integers(0, 2**63, 400, dtype=np.uint64)
    kept, spilled = dedup._Postings(3, recent_max=32), dedup._Postings(3, recent_max=32, spill_to=tmp_path)
    first = rng.choice(pool, 500)
    for post in (kept, spilled):
        post.build(first, np.repeat(np.arange(100), 5))
    for slot in range(100, 700):
        k = np.unique(np.concatenate([rng.choice(pool, 4), rng.choice(pool[:5], 2)]))
        for post in (kept, spilled):
            post.add(slot, k)
        if slot % 150 == 0:
            for post in (kept, spilled):
                post.absorb()
            assert spilled.keys.size == 0 and spilled.disk is not None and spilled.disk.size == kept.keys.size
            got, want = spilled.entries(), kept.entries()
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        if slot % 50 == 0:
            probe = np.concatenate([rng.choice(pool, 30), rng.integers(0, 2**63, 5, dtype=np.uint64)])
            want_slots = kept.lookup(probe, probe.tolist()).tolist()
            assert spilled.lookup(probe, probe.tolist()).tolist() == want_slots
            spilled.prefetch(np.concatenate([probe, rng.choice(pool, 50)]))
            assert spilled.lookup(probe, probe.tolist()).tolist() == want_slots
            spilled._pre = None


@pytest.mark.parametrize("batched", [True, False])
def test_index_with_spilled_postings_finds_the_same_matches(batched: bool, tmp_path: Path) -> None:
    """An index whose postings go to its spill file every few documents (absorbing into it between
    add_fingerprints' batches, or as add_fingerprint finds them outgrown) finds the matches of one that
    keeps its postings in memory, and keeps only its bounded additions in memory."""
    docs = _copies_corpus(150, seed=5)
    fps = [fingerprint(d["text"]) for d in docs]
    plain = DedupIndex()
    want = [plain.add_fingerprint(d["id"], fp, seen_at=T0) for d, fp in zip(docs, fps, strict=True)]
    tuning = dedup.DedupTuning(spilled_postings=500, prefetch_docs=16, recent_postings=64)
    spilled = DedupIndex(tuning=tuning, spill_to=tmp_path)
    if batched:
        got = [m for _, m in spilled.add_fingerprints((d["id"], fp, None, T0) for d, fp in zip(docs, fps, strict=True))]
    else:
        got = [spilled.add_fingerprint(d["id"], fp, seen_at=T0) for d, fp in zip(docs, fps, strict=True)]
    assert got == want and sum(m.duplicate_of is not None for m in got) > 50
    for post in (spilled._post, spilled._lsh):
        assert post.disk is not None and post.disk.size > 2000 and post.keys.size == 0
        assert post.mid_keys.size + len(post.new) <= 500 + 16 * 64  # what a batch adds past the threshold
    spilled.close()


def test_held_before_counts_each_key_an_earlier_list_holds() -> None:
    """`_held_before` against a loop over the lists: a key of an earlier list counts each time it occurs,
    a key repeated within its own list does not count, for 32-bit keys (packed) and 64-bit ones."""
    rng = np.random.default_rng(3)
    for dtype in (np.uint32, np.uint64):
        pool = rng.integers(0, np.iinfo(dtype).max, 60, dtype=dtype, endpoint=True)
        lists = [rng.choice(pool, int(rng.integers(0, 12))) for _ in range(40)]
        want = [sum(int(k) in {int(x) for earlier in lists[:i] for x in earlier} for k in keys)
                for i, keys in enumerate(lists)]
        lens = np.array([keys.size for keys in lists], dtype=np.int64)
        got = dedup._held_before(np.concatenate(lists).astype(dtype), lens)
        assert got.tolist() == want and 0 < sum(want) < lens.sum()


def test_postings_hold_exactly_the_keys_a_lookup_finds(tmp_path: Path) -> None:
    """`holds` is True for a key exactly where `lookup` finds a slot: keys in the base, the sorted tier, the
    dict of additions, a spilled base (prefetched or not), and keys held nowhere."""
    rng = np.random.default_rng(8)
    pool = rng.integers(0, 2**63, 300, dtype=np.uint64)
    for post in (dedup._Postings(3, recent_max=16), dedup._Postings(3, recent_max=16, spill_to=tmp_path)):
        post.build(pool[:100], np.arange(100))
        post.absorb()
        for slot in range(100, 160):
            post.add(slot, np.unique(rng.choice(pool[:200], 3)))
        assert post.mid_keys.size and post.new  # every tier holds some keys
        probe = np.concatenate([rng.choice(pool, 200), rng.integers(0, 2**63, 20, dtype=np.uint64)])
        want = [post.lookup(probe[i:i + 1], probe[i:i + 1].tolist()).size > 0 for i in range(probe.size)]
        assert post.holds(probe).tolist() == want and 0 < sum(want) < probe.size
        if post.disk is not None:
            post.prefetch(probe)
            assert post.holds(probe).tolist() == want
            post.forget()


def test_a_text_sharing_only_an_lsh_band_is_searched() -> None:
    """A text whose MinHash shares a band with an indexed text's is a candidate search even when no sampled
    key is shared (and so is one sharing two sampled keys, in the same batch or indexed)."""
    index = DedupIndex()
    first = fingerprint(ORIGIN)
    list(index.add_fingerprints([("a", first, None, T0)]))
    other = fingerprint("Completely different words about another matter entirely, " * 12)
    assert not np.intersect1d(other.sample, first.sample).size
    same_bands = dedup.Fingerprint(other.content_hash, other.n_tokens, first.minhash, other.sample)
    two_keys = dedup.Fingerprint(other.content_hash, other.n_tokens, other.minhash,
                                 np.concatenate([other.sample, first.sample[:2]]))
    for fp, alone in ((other, True), (same_bands, False), (two_keys, False)):  # each a batch of its own
        assert index._without_candidates([fp], index._band_keys(fp.minhash).reshape(1, -1)).tolist() == [alone]
    # in one batch, the text after one it shares two keys with
    fresh = DedupIndex()
    pair = [first, dedup.Fingerprint(other.content_hash, other.n_tokens, other.minhash,
                                     np.concatenate([other.sample, first.sample[:2]]))]
    bands = fresh._band_keys(np.stack([fp.minhash for fp in pair])).reshape(2, fresh._bands)
    assert fresh._without_candidates(pair, bands).tolist() == [True, False]


def test_the_alone_test_pauses_where_few_texts_are_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where fewer than a quarter of a batch's texts were alone (here every text shares the outlets'
    template line), the next `_ALONE_RETEST` batches go without the test: it runs for one batch in eight;
    a corpus of texts alone keeps it on every batch."""
    calls = []
    real = DedupIndex._without_candidates

    def counted(self: DedupIndex, near: list, bands: np.ndarray) -> np.ndarray:
        out = real(self, near, bands)
        calls.append(float(out.mean()) if len(near) else 1.0)
        return out

    monkeypatch.setattr(DedupIndex, "_without_candidates", counted)
    tuning = dedup.DedupTuning(prefetch_docs=8)
    copies = _copies_corpus(40, seed=3)  # every text has the share line: none is alone after the first batch
    index = DedupIndex(tuning=tuning)
    list(index.add_fingerprints((d["id"], fingerprint(d["text"]), None, T0) for d in copies))
    batches = -(-len(copies) // 8)
    assert calls[0] > calls[1] and max(calls[1:]) < dedup._ALONE_WORTH
    assert len(calls) == 1 + (batches - 1) // (dedup._ALONE_RETEST + 1) < batches / 4
    calls.clear()
    rng = np.random.default_rng(5)
    vocab = [f"v{i}" for i in range(5000)]
    unique = ["\n".join(" ".join(rng.choice(vocab, 14)) + "." for _ in range(10)) for _ in range(64)]
    index = DedupIndex(tuning=tuning)
    list(index.add_fingerprints((f"u{k}", fingerprint(t), None, T0) for k, t in enumerate(unique)))
    assert len(calls) == 8 and min(calls) > 0.5


@pytest.mark.parametrize("shape", ["memory", "spilled", "loaded", "64-bit"])
def test_texts_without_candidates_skip_matching_with_the_same_matches(shape: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`add_fingerprints` skips the candidate search of a text that no indexed text, and no text before it in
    its batch, shares two sampled keys or an LSH band with: the matches are those of the search run for
    every text (an index in memory, spilled, loaded from a table, with 64-bit postings), and most texts of
    a corpus of copies are still found without it."""
    if shape == "64-bit":
        real_init = dedup._Postings.__init__

        def whole_keys(self: dedup._Postings, cap: int, recent_max: int = 1 << 16, key_dtype: object = None,
                       **spill: object) -> None:
            real_init(self, cap, recent_max, np.uint64, **spill)

        monkeypatch.setattr(dedup._Postings, "__init__", whole_keys)
    rng = np.random.default_rng(12)
    vocab = [f"u{i}" for i in range(5000)]  # most texts of a run are copies of nothing: these
    unique = [{"id": f"u{k}", "text": "\n".join(" ".join(rng.choice(vocab, 14)) + "." for _ in range(10))}
              for k in range(150)]
    docs = _copies_corpus(60, seed=12) + unique
    rng.shuffle(docs)
    fps = [fingerprint(d["text"]) for d in docs]
    tuning = dedup.DedupTuning(prefetch_docs=16, spilled_postings=400, recent_postings=64)
    head = 200 if shape == "loaded" else 0

    def index() -> DedupIndex:
        first = DedupIndex(tuning=tuning)
        if head:
            list(first.add_fingerprints((d["id"], fp, None, T0) for d, fp in zip(docs[:head], fps[:head], strict=True)))
            return DedupIndex.from_arrow(first.to_arrow(), tuning=tuning)
        return DedupIndex(tuning=tuning, spill_to=tmp_path) if shape == "spilled" else first

    def matches(idx: DedupIndex) -> list[DedupMatch]:
        rest = zip(docs[head:], fps[head:], strict=True)
        return [m for _, m in idx.add_fingerprints((d["id"], fp, d["id"][:3], T0 + timedelta(minutes=k))
                                                   for k, (d, fp) in enumerate(rest))]

    # each text through `_add_fingerprint`, to see the ones the test skips (tested against the batched insertion
    # of lone texts in test_lone_texts_inserted_together_make_the_same_index)
    monkeypatch.setattr(dedup, "_BATCH_LONE_INSERTS", False)
    skipping = index()
    searched_every_text = []
    real_near, real_add = DedupIndex._near, DedupIndex._add_fingerprint
    skipped = []

    def counted_near(self: DedupIndex, *args: object, **kwargs: object) -> object:
        searched_every_text.append(1)
        return real_near(self, *args, **kwargs)

    def checked_add(self: DedupIndex, doc_id: str, fp: dedup.Fingerprint, source: str | None, seen_at: datetime,
                    bands: np.ndarray | None, alone: bool = False) -> DedupMatch:
        if alone:  # the search over all of the text's keys (not only its informative ones) finds nothing
            assert bands is not None and self._candidates(fp.sample, bands, dedup._utc_us(seen_at)) == []
            skipped.append(doc_id)
        return real_add(self, doc_id, fp, source, seen_at, bands, alone)

    monkeypatch.setattr(DedupIndex, "_near", counted_near)
    monkeypatch.setattr(DedupIndex, "_add_fingerprint", checked_add)
    got = matches(skipping)
    searched = len(searched_every_text)
    assert len(skipped) > 30
    monkeypatch.setattr(DedupIndex, "_without_candidates", lambda self, near, *rest: np.zeros(len(near), dtype=bool))
    searching = index()
    before = len(searched_every_text)
    want = matches(searching)
    assert got == want and sum(m.duplicate_of is not None for m in want) > 30
    assert len(searched_every_text) - before == searched + len(skipped)  # the second pass searched them all
    if shape == "loaded":
        assert skipping._post.keys.size  # the loaded texts are in the base tier
    skipping.close()


@pytest.mark.parametrize("tier_limit", [1 << 20, 300])
def test_postings_add_many_is_add_in_turn(tier_limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`_Postings.add_many` holds what `add` of each text in turn holds: keys new, repeated within a text and
    across texts, already in the dict of additions and in the sorted tier, past the cap; the tier merged
    between calls; the keys nobody holds put straight into the sorted tier, or (past `tier_limit` entries)
    into the dict."""
    monkeypatch.setattr(dedup, "_COPY_TIER_BELOW", tier_limit)
    rng = np.random.default_rng(8)
    pool = rng.integers(0, 2**64 - 1, 400, dtype=np.uint64, endpoint=True)
    texts = [np.concatenate([rng.integers(0, 2**64 - 1, int(rng.integers(0, 12)), dtype=np.uint64, endpoint=True),
                             rng.choice(pool, int(rng.integers(0, 4)))]) for _ in range(600)]
    one, many = dedup._Postings(3, recent_max=200), dedup._Postings(3, recent_max=200)
    slot = 0
    for lo in range(0, len(texts), 37):
        group = texts[lo:lo + 37]
        lens = np.array([k.size for k in group])
        many.add_many(np.repeat(np.arange(slot, slot + len(group)), lens), np.concatenate(group))
        for k in group:
            one.add(slot, k)
            slot += 1
        assert many.n_new == one.n_new
    assert many.mid_keys.size and one.mid_keys.size  # the tier took merges
    everything = np.unique(np.concatenate([*texts, pool]))
    for postings in (one, many):
        postings.absorb()
    assert np.array_equal(one.entries()[0], many.entries()[0])
    assert np.array_equal(one.entries()[1], many.entries()[1])
    assert one.lookup(everything, everything.tolist()).tolist() == many.lookup(everything, everything.tolist()).tolist()


@pytest.mark.parametrize("shape", ["memory", "spilled", "every text alone"])
def test_lone_texts_inserted_together_make_the_same_index(shape: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts alone that start their clusters go into the index together (`_insert_lone`): the matches, the
    index's table, its sketch and its postings are those of one text at a time, over copies, texts alone, a
    text given twice, an exact copy under another id and texts too short for near-duplicates, with and
    without sources, in memory and spilled; and where every text is taken as alone, so that copies of a
    text waiting to go in (by id, by content) are met too."""
    spilled = shape == "spilled"
    if shape == "every text alone":
        monkeypatch.setattr(DedupIndex, "_without_candidates", lambda self, near, *rest: np.ones(len(near), dtype=bool))
    rng = np.random.default_rng(31)
    vocab = [f"u{i}" for i in range(4000)]
    unique = [{"id": f"u{k}", "text": "\n".join(" ".join(rng.choice(vocab, 14)) + "." for _ in range(8))}
              for k in range(300)]
    docs = _copies_corpus(40, seed=31) + unique + [{"id": "short", "text": "Too short to compare."}]
    rng.shuffle(docs)
    last, again, other = ({"id": name, "text": "\n".join(" ".join(rng.choice(vocab, 14)) + "." for _ in range(8))}
                          for name in ("last", "last", "other"))
    # given again (by id, by content) while its first insertion may still wait: in the same batch, next to it
    docs += [dict(unique[3]), {"id": "again", "text": unique[5]["text"]}, {"id": "short2", "text": "Too short to compare."},
             last, again, other, {"id": "other-copy", "text": other["text"]}]
    fps = [fingerprint(d["text"]) for d in docs]
    tuning = dedup.DedupTuning(prefetch_docs=64, spilled_postings=2000, recent_postings=300)

    def built(batched: bool) -> tuple[list[DedupMatch], DedupIndex]:
        monkeypatch.setattr(dedup, "_BATCH_LONE_INSERTS", batched)
        idx = DedupIndex(tuning=tuning, spill_to=tmp_path / str(batched) if spilled else None)
        got = [m for _, m in idx.add_fingerprints(
            (d["id"], fp, None if k % 3 == 0 else f"s{k % 4}", T0 + timedelta(minutes=k))
            for k, (d, fp) in enumerate(zip(docs, fps, strict=True)))]
        return got, idx

    lone_calls = []
    real_insert_lone = DedupIndex._insert_lone

    def counted(self: DedupIndex, lone: list) -> object:
        lone_calls.append(len(lone))
        return real_insert_lone(self, lone)

    monkeypatch.setattr(DedupIndex, "_insert_lone", counted)
    together, a = built(True)
    assert sum(lone_calls) > 250 and max(lone_calls) > 10  # most texts went in together
    if shape == "every text alone":  # an id given twice gets its first match; the copies are exact
        assert together[-7] == together[[d["id"] for d in docs].index(unique[3]["id"])]
        assert together[-4] == together[-3] == DedupMatch("last")
        assert together[-1] == DedupMatch("other", "other", "exact", 1.0)
        assert [m.method for m in together[-6:-4]] == ["exact", "exact"]
    lone_calls.clear()
    in_turn, b = built(False)
    assert not lone_calls
    assert together == in_turn and sum(m.duplicate_of is not None for m in in_turn) > (0 if shape == "every text alone" else 40)
    assert a.to_arrow().equals(b.to_arrow())
    assert np.array_equal(a._sketch.rows, b._sketch.rows)
    for x, y in ((a._post, b._post), (a._lsh, b._lsh)):
        x.absorb()
        y.absorb()
        assert all(np.array_equal(p, q) for p, q in zip(x.entries(), y.entries(), strict=True))
    a.close()
    b.close()


@pytest.mark.parametrize("key_dtype", [np.uint32, np.uint64])
def test_spilled_build_in_parts_is_the_build(key_dtype: type, tmp_path: Path) -> None:
    """A spilled build from parts (64 bucket files, each sorted and capped) holds what `build` over every
    entry holds: each key's first `cap` slots, keys in order, with keys held many times and keys that share
    their high bits (the buckets' and the 32-bit keys')."""
    rng = np.random.default_rng(21)
    pool = rng.integers(0, 2**64 - 1, 500, dtype=np.uint64, endpoint=True)
    pool[:40] = (pool[:40] & np.uint64(0xFFFFFFFF00000000)) | np.uint64(7)
    keys = [np.concatenate([rng.choice(pool, 6), rng.choice(pool[:5], 2)]) for _ in range(300)]
    slots = [np.full(k.size, i) for i, k in enumerate(keys)]
    whole = dedup._Postings(3, key_dtype=key_dtype)
    whole.build(np.concatenate(keys), np.concatenate(slots))
    parts = dedup._Postings(3, key_dtype=key_dtype, spill_to=tmp_path)
    parts.build_parts((np.concatenate(keys[i:i + 37]), np.concatenate(slots[i:i + 37])) for i in range(0, 300, 37))
    got = parts.entries()
    assert parts.disk is not None and parts.keys.size == 0
    assert np.array_equal(got[0], whole.keys) and np.array_equal(got[1], whole.slots)
    memory = dedup._Postings(3, key_dtype=key_dtype)  # without a spill directory: `build` itself
    memory.build_parts((keys[i], slots[i]) for i in range(300))
    assert np.array_equal(memory.keys, whole.keys) and np.array_equal(memory.slots, whole.slots)


def test_index_loaded_a_table_at_a_time_is_the_index_loaded_at_once(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`from_arrow` over the window's files one at a time, spilled, its documents' keys gathered a few at a
    time (clusters never split), gives the index a load of one table gives: the same rows, template counts,
    cluster unions and postings, and the same matches for new documents."""
    monkeypatch.setattr(dedup, "_BUILD_DOCS", 7)
    docs = _copies_corpus(120, seed=8)
    fps = [fingerprint(d["text"]) for d in docs]
    first = DedupIndex()
    for i, (d, fp) in enumerate(zip(docs[:200], fps[:200], strict=True)):
        first.add_fingerprint(d["id"], fp, source=f"outlet{i % 3}", seen_at=T0)
    table = first.to_arrow()
    assert len(first._union) > 20
    whole = DedupIndex.from_arrow(table)
    parts = DedupIndex.from_arrow((table.slice(i, 45) for i in range(0, table.num_rows, 45)), spill_to=tmp_path)
    assert parts.to_arrow().equals(whole.to_arrow())
    assert np.array_equal(parts._sketch.rows, whole._sketch.rows)
    assert parts._union.keys() == whole._union.keys()
    assert all(np.array_equal(parts._union[c], whole._union[c]) for c in whole._union)
    for a, b in ((parts._post, whole._post), (parts._lsh, whole._lsh)):
        got, want = a.entries(), b.entries()
        assert a.disk is not None and np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    rest = list(zip(docs[200:], fps[200:], strict=True))
    want_matches = [whole.add_fingerprint(d["id"], fp, seen_at=T0) for d, fp in rest]
    got_matches = [m for _, m in parts.add_fingerprints((d["id"], fp, None, T0) for d, fp in rest)]
    assert got_matches == want_matches and sum(m.duplicate_of is not None for m in got_matches) > 20
    parts.close()
