"""Decontamination's method, chosen with numbers (docs/recipe.md, "Decontamination"): for word
n-grams of n = 5, 8 and 13, the recall on planted edits of BFCL's questions, the false drops on rows
unrelated to BFCL, and the time per 100k rows.

    .venv/bin/python bench/decontamination.py --out docs/bench/decontamination.json

Planted: 1,000 of BFCL's questions (seeded draw), each edited six ways: case and punctuation changed,
one word replaced, a word added in front, one word dropped, two words swapped, the last third cut.
Unrelated: bench/data.py's seeded rows (20,000 queries of 10-60 words from its own vocabulary), the
sample (data/sample/) and the recipe's xLAM source (data/sources/xlam.json).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import make_rows  # noqa: E402
from pipelines.core.decontamination import EvalIndex  # noqa: E402
from pipelines.recipe.export import _bfcl_questions  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def edits(question: str, rng: random.Random) -> dict[str, str]:
    words = question.split()
    middle = len(words) // 2
    swapped = list(words)
    if len(words) > 3:
        swapped[middle - 1], swapped[middle] = swapped[middle], swapped[middle - 1]
    return {
        "case_and_punctuation": question.upper().replace(",", " ;") + "!!",
        "one_word_replaced": " ".join(words[:middle] + ["something"] + words[middle + 1:]),
        "word_added_in_front": "Please " + question,
        "one_word_dropped": " ".join(words[:middle] + words[middle + 1:]),
        "two_words_swapped": " ".join(swapped),
        "last_third_cut": " ".join(words[: max(1, len(words) * 2 // 3)]),
    }


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--planted", type=int, default=1000)
    parser.add_argument("--unrelated", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    questions = list(_bfcl_questions())
    planted = rng.sample([q for q, _ in questions], args.planted)
    variants = [edits(q, rng) for q in planted]
    synthetic = [r["query"] for r in make_rows(args.unrelated, seed=args.seed)]
    import pyarrow.parquet as pq

    sample = [q for q in pq.read_table(REPO / "data" / "sample").column("query").to_pylist() if isinstance(q, str)]
    xlam = [r["query"] for r in json.loads((REPO / "data" / "sources" / "xlam.json").read_text())]
    report = {"eval_queries": len(questions), "planted": args.planted, "unrelated": len(synthetic), "by_n": {}}
    for n in (5, 8, 13):
        started = time.perf_counter()
        index = EvalIndex(ngram=n)
        for query, _ in questions:
            index.add(query)
        built = time.perf_counter() - started
        recall = {kind: sum(index.overlaps(v[kind]) for v in variants) / len(variants) for kind in variants[0]}
        started = time.perf_counter()
        dropped = sum(index.overlaps(q) for q in synthetic)
        per_100k = (time.perf_counter() - started) / len(synthetic) * 100_000
        report["by_n"][n] = {
            "index_s": round(built, 2), "digests": len(index.keys), "recall": {k: round(v, 3) for k, v in recall.items()},
            "false_drops": {"synthetic": dropped, "sample": sum(index.overlaps(q) for q in sample),
                            "xlam_source": sum(index.overlaps(q) for q in xlam)},
            "seconds_per_100k_rows": round(per_100k, 2)}
        print(n, json.dumps(report["by_n"][n]))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
