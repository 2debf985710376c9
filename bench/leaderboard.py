"""BFCL's table of a real model's labels, beside the schema rules' accuracy (docs/quality.md, "The leaderboard's table").

    .venv/bin/python bench/leaderboard.py [--categories simple_python,multiple,parallel,parallel_multiple,irrelevance]
                                          [--model built:smollm2-135m-instruct] [--labels PATH]
                                          [--out docs/bench/leaderboard.json] [--table docs/bench/leaderboard.md]

1. jobs/prepare.py input.format=bfcl input.path=bfcl-eval: every row of the categories, with BFCL's
   possible answers and its category (the installed bfcl-eval package's data).
2. jobs/label.py conf=local on them, unless --labels names an earlier labeling output of the same
   rows (same ids; its own answers and category columns, if any, are replaced by step 1's).
3. jobs/validate.py twice on those labels, without a model: scoring.rules=auto (the leaderboard's
   rules on these rows: its table) and scoring.rules=schema (the tools' schemas).
Outputs under .cache/bench/leaderboard/; the report to --out, the Markdown table to --table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".cache" / "bench" / "leaderboard"
NON_LIVE = "simple_python,multiple,parallel,parallel_multiple,irrelevance"


def job(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def rows_of(output: Path, columns: list[str] | None = None) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for f in sorted(output.rglob("*.parquet")) if not f.name.startswith("_")
            for r in pq.read_table(f, columns=columns).to_pylist()]


def revalidation_input(labels: Path, shards: Path, out: Path) -> Path:
    """The labels with step 1's answers and category, by id: what jobs/validate.py reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    gold = {r["id"]: r for r in rows_of(shards, ["id", "answers", "bfcl_category"])}
    rows = rows_of(labels)
    missing = [r["id"] for r in rows if r["id"] not in gold]
    if missing or len(rows) != len(gold):
        raise SystemExit(f"--labels {labels} holds {len(rows)} rows, the categories {len(gold)}; ids not among them: "
                         f"{missing[:5]}")
    keep = ["id", "query", "tools", "raw_output", "num_output_tokens", "finish_reason", "num_prompt_tokens", "model"]
    table = pa.Table.from_pylist([{**{k: r[k] for k in keep}, "answers": gold[r["id"]]["answers"],
                                   "bfcl_category": gold[r["id"]]["bfcl_category"]} for r in rows])
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "part-00000.parquet")
    return out


def per_category(rows: list[dict]) -> dict:
    groups = defaultdict(lambda: {"rows": 0, "scored": 0, "correct": 0})
    for r in rows:
        g = groups[r["bfcl_category"]]
        g["rows"] += 1
        if r["correct"] is not None:
            g["scored"] += 1
            g["correct"] += bool(r["correct"])
    return {c: {**g, "accuracy": round(g["correct"] / g["scored"], 4) if g["scored"] else None}
            for c, g in sorted(groups.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--categories", default=NON_LIVE)
    parser.add_argument("--model", default="built:smollm2-135m-instruct")
    parser.add_argument("--labels", type=Path, help="an earlier labeling output of the same rows (skips step 2)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "leaderboard.json")
    parser.add_argument("--table", type=Path, default=REPO / "docs" / "bench" / "leaderboard.md")
    parser.add_argument("--name", default="SmolLM2-135M-Instruct (conf=local, constrained, greedy)",
                        help="the table's Model column")
    args = parser.parse_args()

    name = args.categories.replace(",", "-")
    shards = WORK / "shards" / name
    if not (shards / "_summary.json").exists():
        job(["jobs/prepare.py", "input.format=bfcl", "input.path=bfcl-eval", f"prepare.categories=[{args.categories}]",
             f"output.path={shards}", "prepare.drop_bad=true"])
    labels = args.labels
    if labels is None:
        labels = WORK / "labels" / name
        job(["jobs/label.py", "conf=local", f"input.path={shards}", f"output.path={labels}",
             f"model.source={args.model}", "progress_interval_s=600"])
    source = revalidation_input(labels, shards, WORK / "revalidate-input" / name)
    runs = {}
    for rules in ("auto", "schema"):
        out = WORK / f"scored-{rules}" / name
        job(["jobs/validate.py", "conf=local", f"input.path={source}", f"output.path={out}", f"scoring.rules={rules}",
             "resume=overwrite"])
        runs[rules] = out
    summary = json.loads((runs["auto"] / "_summary.json").read_text())
    auto_rows = {r["id"]: r for r in rows_of(runs["auto"], ["id", "bfcl_category", "correct", "status", "scoring_rules"])}
    schema_rows = rows_of(runs["schema"], ["id", "bfcl_category", "correct"])
    differ = [r["id"] for r in schema_rows if bool(r["correct"]) != bool(auto_rows[r["id"]]["correct"])]
    report = {
        "gold": f"bfcl-eval 2026.3.23 (possible answers), every row of {args.categories}",
        "model": summary.get("model") or args.model,
        "labels": str(labels.relative_to(REPO) if labels.is_relative_to(REPO) else labels),
        "bfcl": summary["bfcl"],
        "schema_rules": per_category(schema_rows),
        "bfcl_rules": per_category(list(auto_rows.values())),
        "verdicts_that_differ": len(differ),
        "status": {c: {s: n for s, n in _count(auto_rows.values(), c).items()} for c in sorted({r["bfcl_category"] for r in auto_rows.values()})},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    job(["jobs/leaderboard.py", f"input.path={runs['auto']}", f"output.path={args.table}", f"model={args.name}"])
    print(json.dumps(report, indent=2))


def _count(rows, category) -> dict:
    counts = defaultdict(int)
    for r in rows:
        if r["bfcl_category"] == category:
            counts[r["status"]] += 1
    return dict(sorted(counts.items()))


if __name__ == "__main__":
    main()
