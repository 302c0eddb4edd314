#!/usr/bin/env python3
"""Main-text extraction: newsingest against trafilatura alone, on the same pages in the same run.

    python bench/extraction.py [--data DIR] [--rounds N] [--check] [--json FILE]

Pages and metric come from the article-extraction benchmark in ../shared/extraction-benchmark (or
$NEWSINGEST_SHARED/extraction-benchmark, or --data): its `score.py` is imported, so F1, precision and
recall are exactly the benchmark's (token 4-gram shingles, macro means, F1 of the means). When the folder is
absent the benchmark says so and exits 0.

Extractors:
  newsingest                  pipeline.extract.benchmark_text (pre-pruning, trafilatura, fallback, tidy)
  trafilatura                 trafilatura.extract(html, url=url, include_comments=False)
  trafilatura precision       ... with favor_precision=True

Speed is pages per second of extraction calls only (decompression and scoring are outside the clock),
the median over `--rounds` rounds, measured twice: in CPU time of this process (what the ratio uses: it
does not depend on what else the machine runs, and equals wall time on an idle machine, everything being
single-threaded) and in wall-clock time. The extractors take turns inside each round. The ratio column is
the speed relative to trafilatura's default. `--check` exits 1 unless newsingest reaches F1 0.97 at half
of trafilatura's speed or more.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIN_F1 = 0.97
MIN_SPEED_RATIO = 0.5


def find_data(explicit: str | None) -> Path | None:
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("NEWSINGEST_SHARED"):
        candidates.append(Path(os.environ["NEWSINGEST_SHARED"]) / "extraction-benchmark")
    candidates.append(ROOT.parent / "shared" / "extraction-benchmark")
    return next((c for c in candidates if (c / "score.py").is_file() and (c / "ground-truth.json").is_file()), None)


def load_score(data: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("extraction_benchmark_score", data / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extractors() -> dict[str, Callable[[str, str | None], str]]:
    import trafilatura

    from pipeline.extract import benchmark_text

    def ours(html: str, url: str | None) -> str:
        return benchmark_text(html, url=url)

    def trafilatura_default(html: str, url: str | None) -> str:
        return trafilatura.extract(html, url=url, include_comments=False) or ""

    def trafilatura_precision(html: str, url: str | None) -> str:
        return trafilatura.extract(html, url=url, include_comments=False, favor_precision=True) or ""

    return {
        "newsingest": ours,
        "trafilatura": trafilatura_default,
        "trafilatura precision": trafilatura_precision,
    }


def run(data: Path, rounds: int) -> dict[str, dict[str, float]]:
    import trafilatura

    score = load_score(data)
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    ids = sorted(truth)
    pages = []
    for doc_id in ids:
        with gzip.open(data / "html" / f"{doc_id}.html.gz", "rb") as f:
            pages.append((doc_id, f.read().decode("utf-8"), truth[doc_id].get("url") or None))
    funcs = extractors()
    for func in funcs.values():  # warm-up: imports, compiled patterns, the language model
        func(pages[0][1], pages[0][2])
    predictions: dict[str, dict[str, str]] = {name: {} for name in funcs}
    seconds: dict[str, list[float]] = {name: [] for name in funcs}
    wall: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # take turns
            func, spent, spent_wall = funcs[name], 0.0, 0.0
            for doc_id, html, url in pages:
                t0, w0 = time.process_time(), time.perf_counter()
                try:
                    text = func(html, url)
                except Exception:  # noqa: BLE001 - a crash scores as an empty prediction, as in score.py
                    text = ""
                spent += time.process_time() - t0
                spent_wall += time.perf_counter() - w0
                predictions[name].setdefault(doc_id, text)
            seconds[name].append(spent)
            wall[name].append(spent_wall)
    results: dict[str, dict[str, float]] = {}
    for name in funcs:
        rows = [score.match(truth[i].get("articleBody", "") or "", predictions[name][i]) for i in ids]
        p, r, f = score.aggregate(rows)
        results[name] = {
            "F1": f, "P": p, "R": r, "pages_per_s": len(ids) / statistics.median(seconds[name]),
            "pages_per_s_wall": len(ids) / statistics.median(wall[name]),
        }  # fmt: skip
    base, base_wall = results["trafilatura"]["pages_per_s"], results["trafilatura"]["pages_per_s_wall"]
    for res in results.values():
        res["speed_ratio"] = res["pages_per_s"] / base
        res["speed_ratio_wall"] = res["pages_per_s_wall"] / base_wall
    results["_meta"] = {"pages": len(ids), "rounds": rounds, "trafilatura": trafilatura.__version__}  # type: ignore[dict-item]
    return results


def report(results: dict[str, dict[str, float]]) -> str:
    meta = results["_meta"]
    lines = [
        f"extraction benchmark: {meta['pages']} dev pages, median of {meta['rounds']} rounds, "
        f"trafilatura {meta['trafilatura']}",
        f"{'extractor':<24}{'F1':>7}{'P':>7}{'R':>7}{'pages/s CPU':>13}{'ratio':>7}{'pages/s wall':>14}{'ratio':>7}",
    ]
    for name, res in results.items():
        if name.startswith("_"):
            continue
        lines.append(
            f"{name:<24}{res['F1']:>7.3f}{res['P']:>7.3f}{res['R']:>7.3f}{res['pages_per_s']:>13.1f}"
            f"{res['speed_ratio']:>6.2f}x{res['pages_per_s_wall']:>14.1f}{res['speed_ratio_wall']:>6.2f}x"
        )
    ours, base = results["newsingest"], results["trafilatura"]
    lines.append(
        f"newsingest - trafilatura: F1 {ours['F1'] - base['F1']:+.3f}, P {ours['P'] - base['P']:+.3f}, "
        f"R {ours['R'] - base['R']:+.3f}; speed {ours['speed_ratio']:.2f}x (CPU), {ours['speed_ratio_wall']:.2f}x (wall) "
        f"(targets: F1 >= {MIN_F1}, speed >= {MIN_SPEED_RATIO}x)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="the extraction-benchmark folder (score.py, ground-truth.json, html/)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per extractor (median is reported)")
    ap.add_argument("--check", action="store_true", help=f"exit 1 unless F1 >= {MIN_F1} at >= {MIN_SPEED_RATIO}x speed")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    data = find_data(args.data)
    if data is None:
        print("extraction benchmark skipped: ../shared/extraction-benchmark not found "
              "(set NEWSINGEST_SHARED or pass --data)")
        return 0
    results = run(data, max(1, args.rounds))
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    ours = results["newsingest"]
    if args.check and (ours["F1"] < MIN_F1 or ours["speed_ratio"] < MIN_SPEED_RATIO):
        print("FAILED: below target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
