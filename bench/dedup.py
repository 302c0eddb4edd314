#!/usr/bin/env python3
"""Syndicated-copy dedup: newsingest against datasketch MinHash LSH, in the same run.

    python bench/dedup.py [--data DIR] [--sizes 10000,100000] [--skip-index] [--json FILE]

Quality: ARI and pairwise precision/recall on the dev set of ../shared/dedup-benchmark (or
$NEWSINGEST_SHARED/dedup-benchmark, or --data), scored with that folder's own `score.py`. Speed and memory:
on corpora of 10,000 and 100,000 documents generated at run time from the dev set (nothing is written into
the project): replica r of the dev set maps every word through its own random permutation of the
vocabulary, so each replica has the dev set's cluster structure, copies, truncations and outlet
boilerplate, and no shingle in common with the other replicas (words of the tokenizer's abbreviation
table and numbers are kept, so a replica is exactly as hard as the dev set). The gold clusters of the
generated corpora are known, so ARI is reported at every size.

Systems, each measured in a fresh subprocess (documents are loaded before the clock starts):
  newsingest batch   pipeline.dedup.dedup_documents: the engine of `newsingest dedup --jsonl`
  newsingest index   pipeline.dedup.DedupIndex.add_many in batches of 1,000: the pipeline's rolling index,
                     one document after the other (up to --index-max documents, to keep the run short)
  datasketch LSH     datasketch MinHash (num_perm 128) + MinHashLSH (threshold 0.5) over the same word
                     5-shingles of the casefolded text; clusters = connected components of LSH matches
                     (each document queries, then is inserted), as in the issue's baseline

Speed: documents per second of CPU time of the worker (single-threaded, so equal to wall-clock time on an
idle machine, and independent of other load), with wall-clock time alongside. Memory: the worker's peak
resident set (VmHWM), and its growth over the resident set once the documents are
loaded (the peak mark is reset at that point, so the growth is what the system itself needed, results
included). The summary prints ours/datasketch ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NUM_PERM = 128
THRESHOLD = 0.5
SHINGLE = 5
WORD_RE = re.compile(r"\w+")
TOKEN_RE = re.compile(r"[^\W\d_]+|\d+|[^\w]+|_", re.UNICODE)


# ------------------------------------------------------------------------------------------ data


def find_data(explicit: str | None) -> Path | None:
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("NEWSINGEST_SHARED"):
        candidates.append(Path(os.environ["NEWSINGEST_SHARED"]) / "dedup-benchmark")
    candidates.append(ROOT.parent / "shared" / "dedup-benchmark")
    return next((c for c in candidates if (c / "score.py").is_file() and (c / "dev.jsonl").is_file()), None)


def load_score(data: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("dedup_benchmark_score", data / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _kept_words() -> set[str]:
    """Words the tokenizer folds (abbreviations and their spelled-out forms): kept by every replica."""
    from pipeline import dedup

    words = {w for line in dedup._SYNONYMS for w in line.split()}
    words |= {w for pair in dedup._BIGRAMS for phrase in pair for w in phrase.split()}
    return words


_WORD_SPLIT_RE = re.compile(r"([^\W\d_]+)")


def replicate(docs: list[dict], gold: dict[str, str], n: int, seed: int = 7) -> tuple[list[dict], dict[str, str]]:
    """`n` documents: replica 0 is the dev set, replica r > 0 maps words through a random permutation."""
    keep = _kept_words()
    vocab: dict[str, int] = {}
    split_docs = []  # per document: the pieces (separators at even, words at odd positions) and word codes
    for d in docs:
        pieces = _WORD_SPLIT_RE.split(d["text"])
        codes = []
        for w in pieces[1::2]:
            wid = vocab.setdefault(w.lower(), len(vocab))
            case = 2 if w.isupper() and len(w) > 1 else 1 if w[0].isupper() else 0
            codes.append(3 * wid + case)
        split_docs.append((pieces, codes))
    words = list(vocab)
    movable = [i for i, w in enumerate(words) if w not in keep]
    out: list[dict] = []
    out_gold: dict[str, str] = {}
    r = 0
    while len(out) < n:
        target = list(range(len(words)))
        if r > 0:
            shuffled = movable[:]
            random.Random(seed * 1000 + r).shuffle(shuffled)
            for src, dst in zip(movable, shuffled, strict=True):
                target[src] = dst
        forms = []  # 3 * word id + case -> the replica's word in that case
        for i in range(len(words)):
            w = words[target[i]]
            forms += [w, w.capitalize(), w.upper()]
        for d, (pieces, codes) in zip(docs, split_docs, strict=True):
            if len(out) >= n:
                break
            parts = pieces[:]
            parts[1::2] = [forms[c] for c in codes]
            doc_id = f"{d['id']}-r{r}"
            out.append({"id": doc_id, "text": "".join(parts) if r else d["text"]})
            out_gold[doc_id] = f"{gold[d['id']]}-r{r}"
        r += 1
    return out, out_gold


# ------------------------------------------------------------------------------------------ systems (worker side)


def run_newsingest_batch(docs: list[dict]) -> dict[str, str]:
    from pipeline.dedup import dedup_documents

    return {r["id"]: r["cluster"] for r in dedup_documents(docs)}


def run_newsingest_index(docs: list[dict]) -> dict[str, str]:
    from datetime import UTC, datetime

    from pipeline.dedup import DedupIndex

    index = DedupIndex()
    now = datetime.now(UTC)
    out: dict[str, str] = {}
    for lo in range(0, len(docs), 1000):
        chunk = [{"id": d["id"], "text": d["text"], "seen_at": now} for d in docs[lo : lo + 1000]]
        for d, m in zip(chunk, index.add_many(chunk), strict=True):
            out[d["id"]] = m.cluster_id
    return out


def run_datasketch(docs: list[dict]) -> dict[str, str]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for d in docs:
        toks = WORD_RE.findall(d["text"].casefold())
        shingles = {" ".join(toks[i : i + SHINGLE]) for i in range(max(1, len(toks) - SHINGLE + 1))}
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch([s.encode("utf-8") for s in shingles])
        doc_id = d["id"]
        parent[doc_id] = doc_id
        for other in lsh.query(m):
            a, b = find(doc_id), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
        lsh.insert(doc_id, m)
    return {d["id"]: find(d["id"]) for d in docs}


SYSTEMS = {
    "newsingest batch": run_newsingest_batch,
    "newsingest index": run_newsingest_index,
    "datasketch LSH": run_datasketch,
}


def _status_mb(field: str) -> float | None:
    """VmRSS / VmHWM of this process from /proc (Linux), in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0), so the peak measured after
    this is the system's own; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # may include the parent's pages before exec
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def worker(system: str, docs_path: str, out_path: str) -> int:
    import gc

    docs = read_jsonl(Path(docs_path))
    if system.startswith("newsingest"):
        import numpy  # noqa: F401 - imports are not what is measured

        import pipeline.dedup  # noqa: F401
    else:
        import datasketch  # noqa: F401
    gc.collect()
    reset = _reset_peak()
    base = _status_mb("VmRSS") if reset else _peak_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    clusters = SYSTEMS[system](docs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_mb()
    Path(out_path).write_text(
        json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_base_mb": base, "rss_peak_mb": peak,
                    "clusters": clusters}),
        encoding="utf-8",
    )
    return 0


# ------------------------------------------------------------------------------------------ driver


def measure(system: str, docs: list[dict], gold: dict[str, str], score: ModuleType, tmp: Path) -> dict:
    docs_path, out_path = tmp / "docs.jsonl", tmp / "out.json"
    with docs_path.open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", system, str(docs_path), str(out_path)], cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{system} failed with exit code {proc.returncode}")
    res = json.loads(out_path.read_text(encoding="utf-8"))
    pred = {i: ("p", str(res["clusters"].get(i, "missing:" + i))) for i in gold}
    m = score.pair_and_ari(gold, pred)
    return {
        "n": len(docs), "ARI": m["ARI"], "P": m["P"], "R": m["R"], "docs_per_s": len(docs) / res["cpu_seconds"],
        "docs_per_s_wall": len(docs) / res["seconds"], "seconds": res["seconds"], "cpu_seconds": res["cpu_seconds"],
        "rss_peak_mb": res["rss_peak_mb"],
        "rss_growth_mb": res["rss_peak_mb"] - res["rss_base_mb"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(*argv[1:4])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="the dedup-benchmark folder (dev.jsonl, dev.gold.jsonl, score.py)")
    ap.add_argument("--sizes", default="10000,100000", help="generated corpus sizes (comma-separated)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="which systems to run (comma-separated)")
    ap.add_argument("--index-max", type=int, default=10_000,
                    help="largest corpus the streaming index runs on (it adds documents one by one; default 10000)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    data = find_data(args.data)
    if data is None:
        print("dedup benchmark skipped: ../shared/dedup-benchmark not found (set NEWSINGEST_SHARED or pass --data)")
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        ap.error(f"unknown systems {unknown}; choose from {list(SYSTEMS)}")
    score = load_score(data)
    dev = read_jsonl(data / "dev.jsonl")
    dev_gold = {r["id"]: r["cluster"] for r in read_jsonl(data / "dev.gold.jsonl")}
    corpora = [("dev", dev, dev_gold)]
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        t0 = time.perf_counter()
        docs, gold = replicate(dev, dev_gold, size)
        print(f"generated {size:,} documents in {time.perf_counter() - t0:.1f} s", flush=True)
        corpora.append((f"{size // 1000}k", docs, gold))
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="newsingest-bench-") as tmp:
        for label, docs, gold in corpora:
            for system in systems:
                if system == "newsingest index" and len(docs) > args.index_max:
                    continue
                res = measure(system, docs, gold, score, Path(tmp))
                results.setdefault(label, {})[system] = res
                print(
                    f"{label:>5} {system:<18} ARI={res['ARI']:.3f} P={res['P']:.3f} R={res['R']:.3f} "
                    f"{res['docs_per_s']:>8.0f} docs/s CPU ({res['docs_per_s_wall']:.0f} wall)  "
                    f"peak RSS {res['rss_peak_mb']:.0f} MB "
                    f"(+{res['rss_growth_mb']:.0f} MB)",
                    flush=True,
                )
    print(summary(results, systems))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


def summary(results: dict[str, dict[str, dict]], systems: list[str]) -> str:
    lines = ["", f"{'corpus':<7}{'system':<19}{'ARI':>6}{'P':>7}{'R':>7}{'docs/s':>9}{'wall':>7}{'peak MB':>9}"
             f"{'+MB':>7}{'speed vs ds':>13}{'+MB vs ds':>11}"]  # fmt: skip
    for label, by_system in results.items():
        base = by_system.get("datasketch LSH")
        for system in systems:
            if system not in by_system:
                continue
            r = by_system[system]
            ratio = f"{r['docs_per_s'] / base['docs_per_s']:>12.1f}x" if base else f"{'':>13}"
            mem = f"{r['rss_growth_mb'] / max(base['rss_growth_mb'], 1):>10.2f}x" if base else f"{'':>11}"
            lines.append(
                f"{label:<7}{system:<19}{r['ARI']:>6.3f}{r['P']:>7.3f}{r['R']:>7.3f}{r['docs_per_s']:>9.0f}"
                f"{r['docs_per_s_wall']:>7.0f}{r['rss_peak_mb']:>9.0f}{r['rss_growth_mb']:>7.0f}{ratio}{mem}"
            )
    lines.append("docs/s: documents per CPU second of the worker (wall: per wall-clock second, which depends on "
                 "what else the machine runs); speed vs ds: docs/s relative to datasketch MinHash LSH on the same "
                 "corpus; +MB vs ds: memory growth relative to datasketch's")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
