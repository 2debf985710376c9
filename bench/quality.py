"""Every quality signal of the job, measured on a real model's labels (docs/quality.md).

    .venv/bin/python bench/quality.py [--per-category 20] [--seed 0] [--model built:smollm2-135m-instruct]
                                      [--runs greedy,unconstrained,...] [--out docs/bench/quality.json]

Gold: the Berkeley Function-Calling Leaderboard's non-live single-turn categories (simple_python,
multiple, parallel, parallel_multiple, irrelevance) from its own package `bfcl-eval` (Apache-2.0),
installed by `make setup` without its dependencies. `--per-category` rows of each, drawn with
`--seed`, go through jobs/prepare.py; the live_* categories are never read.

BFCL's gold lists every accepted value per parameter (`""`: may be left out). These runs keep the
form they were first recorded with (docs/quality.md): each row's `answers` is one concrete call list,
a parameter whose accepted values include `""` left out, any other at its first accepted value,
scored by the schema rules. A correct call with another accepted value is then scored wrong, so
accuracies here are lower bounds. bench/leaderboard.py scores BFCL's own possible answers by its rules.

Runs (each jobs/label.py on the same rows, conf=local, outputs under .cache/bench/quality/; a run whose
output is complete is not run again):
  greedy          constrained, samples 8, logprobs: accuracy, calibration, export curve, flags
  compact         the same without samples, json_whitespace=true vs false: output tokens, truncation
  unconstrained   constrained=false
  masked          mask.names=true, constrained
  judge           jobs/judge.py on greedy's output, the same model judging its own labels
Then the report: docs/bench/quality.json and docs/quality.png (coverage against accuracy).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
WORK = REPO / ".cache" / "bench" / "quality"
SAMPLES = 8
THRESHOLDS = (None, 0.25, 0.5, 0.75, 1.0)  # export.min_agreement


def bfcl_data() -> Path:
    """The installed bfcl-eval package's data folder."""
    from pipelines.recipe.prepare import INSTALLED_BFCL, bfcl_folder

    return bfcl_folder(INSTALLED_BFCL)


def concrete_call(possible: dict) -> dict:
    """{function: {parameter: [accepted values]}} -> one call: "" accepted = left out, else the first value."""
    (name, params), = possible.items()
    arguments = {}
    for key, accepted in params.items():
        if "" in accepted:
            continue
        value = accepted[0]
        arguments[key] = concrete_value(value)
    return {"name": name, "arguments": arguments}


def concrete_value(value):
    """Nested objects list accepted values per key too: take the first of each."""
    if isinstance(value, dict):
        return {k: concrete_value(v[0]) if isinstance(v, list) and v else concrete_value(v)
                for k, v in value.items() if not (isinstance(v, list) and "" in v)}
    return value


def gold_rows(per_category: int, seed: int) -> list[dict]:
    data, rows = bfcl_data(), []
    for category in CATEGORIES:
        questions = [json.loads(line) for line in (data / f"BFCL_v4_{category}.json").read_text().splitlines()]
        answers = {}
        possible = data / "possible_answer" / f"BFCL_v4_{category}.json"
        if possible.exists():
            for line in possible.read_text().splitlines():
                item = json.loads(line)
                answers[item["id"]] = [concrete_call(c) for c in item["ground_truth"]]
        for q in random.Random(f"{seed}-{category}").sample(questions, per_category):
            rows.append({"id": q["id"], "question": q["question"], "function": q["function"],
                         "answers": json.dumps(answers.get(q["id"], []))})
    return rows


def prepare(per_category: int, seed: int) -> Path:
    shards = WORK / f"bfcl-{per_category}-seed{seed}"
    if not (shards / "_summary.json").exists():
        source = WORK / f"bfcl-{per_category}-seed{seed}.jsonl"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("".join(json.dumps(r) + "\n" for r in gold_rows(per_category, seed)))
        job(["jobs/prepare.py", f"input.path={source}", f"output.path={shards}"])
    return shards


def job(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL)


RUNS = {  # name -> jobs/label.py overrides on conf=local
    "greedy": [f"generation.samples={SAMPLES}", "generation.logprobs=true"],
    "compact": ["generation.json_whitespace=false"],
    "whitespace": ["generation.json_whitespace=true"],
    "unconstrained": ["generation.constrained=false"],
    "masked": ["mask.names=true"],
}


def label(name: str, shards: Path, model: str) -> Path:
    out = WORK / "runs" / shards.name / name
    job(["jobs/label.py", "conf=local", f"input.path={shards}", f"output.path={out}", f"model.source={model}",
         "progress_interval_s=600", *RUNS[name]])
    return out


def judge(labels: Path, model: str) -> Path:
    out = labels.parent / "judge"
    job(["jobs/judge.py", "conf=local", f"input.path={labels}", f"output.path={out}", f"judge.model.source={model}"])
    return out


def rows_of(output: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for f in sorted(output.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def category(row: dict) -> str:
    return row["id"].rsplit("_", 1)[0]


def accuracy(rows: list[dict], key=category) -> dict:
    """Correct rows per group, over the rows with a verdict (a gold that breaks its own tools has none)."""
    groups = defaultdict(list)
    for r in rows:
        if r["correct"] is None:
            continue
        groups[key(r)].append(r)
        groups["all"].append(r)
    return {g: {"rows": len(rs), "correct": sum(bool(r["correct"]) for r in rs),
                "accuracy": share(sum(bool(r["correct"]) for r in rs), len(rs))} for g, rs in sorted(groups.items())}


def share(part, whole):
    return round(part / whole, 4) if whole else None


def auroc(scores: list[float], labels: list[bool]) -> float | None:
    """The probability that a correct row scores above an incorrect one (ties count half)."""
    right = [s for s, y in zip(scores, labels) if y]
    wrong = [s for s, y in zip(scores, labels) if not y]
    if not right or not wrong:
        return None
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return round(wins / (len(right) * len(wrong)), 4)


def agreement_at(row: dict, samples: int) -> float | None:
    """The agreement the label would have had with `generation.samples=samples`: its first
    `samples - 1` sampled outputs, judged and compared by the job's own code (the draws are seeded
    per row, so these are the samples such a run draws first only in distribution, not token for token)."""
    from pipelines.core.confidence import confidence
    from pipelines.core.tools import load_tools
    from pipelines.core.validation import label_output
    from pipelines.core.calls import read_calls

    if row["sample_outputs"] is None:
        return None
    tools = load_tools(row["tools"])
    judged = [label_output(text, tools, row["query"]) for text in row["sample_outputs"][: samples - 1]]
    label = (row["status"], read_calls(row["calls"]))
    return confidence(label, [(j.status, j.calls) for j in judged], tools).agreement


def calibration(rows: list[dict]) -> dict:
    from pipelines.core.confidence import agreement_bucket, logprob_bucket

    signals = {"agreement@8": (lambda r: r["agreement"], agreement_bucket),
               "mean_logprob": (lambda r: r["mean_logprob"], logprob_bucket),
               "value_min_logprob": (lambda r: r["value_min_logprob"], logprob_bucket)}
    out = {}
    for name, (value, bucket) in signals.items():
        scored = [(value(r), bool(r["correct"])) for r in rows if value(r) is not None and r["correct"] is not None]
        buckets = defaultdict(list)
        for v, y in scored:
            buckets[bucket(v)].append(y)
        out[name] = {"auroc": auroc([v for v, _ in scored], [y for _, y in scored]), "rows": len(scored),
                     "buckets": {b: {"rows": len(ys), "accuracy": share(sum(ys), len(ys))} for b, ys in buckets.items()}}
    return out


def export_curve(rows: list[dict]) -> list[dict]:
    """The export job's own filter (pipelines.recipe.export.drop_reason) at each min_agreement."""
    from pipelines.recipe.config import ExportSettings
    from pipelines.recipe.export import drop_reason

    curve = []
    for threshold in THRESHOLDS:
        settings = ExportSettings(min_agreement=threshold, dedupe=False)
        kept = [r for r in rows if drop_reason(r, settings, set()) is None]
        scored = [r for r in kept if r["correct"] is not None]
        curve.append({"min_agreement": threshold, "kept": len(kept), "coverage": share(len(kept), len(rows)),
                      "accuracy": share(sum(bool(r["correct"]) for r in scored), len(scored))})
    return curve


def flag_signal(rows: list[dict]) -> dict:
    out = {}
    for code in ("value_not_in_query", "default_not_in_query"):
        has = [r for r in rows if any(f.startswith(code + ":") for f in r["flags"] or [])]
        lacks = [r for r in rows if r["status"] == "ok" and r not in has]
        out[code] = {"with": accuracy(has, key=lambda r: "ok")["all"] if has else None,
                     "without (ok rows)": accuracy(lacks, key=lambda r: "ok")["all"] if lacks else None}
    return out


def tokens(rows: list[dict]) -> dict:
    generated = [r for r in rows if r["num_output_tokens"] is not None]
    return {"rows": len(generated), "output_tokens": sum(r["num_output_tokens"] for r in generated),
            "mean_output_tokens": share(sum(r["num_output_tokens"] for r in generated), len(generated)),
            "truncated": sum(r["finish_reason"] == "length" for r in generated),
            "status": dict(Counter(r["status"] for r in rows))}


def judge_confusion(rows: list[dict]) -> dict:
    table = Counter((r["judge_verdict"], r["correct"]) for r in rows if r["judge_verdict"] is not None)
    return {f"{verdict} / correct={correct}": n for (verdict, correct), n in sorted(table.items(), key=str)}


def plot(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = [p for p in curve if p["accuracy"] is not None]  # a threshold that kept no row has no accuracy
    fig, ax = plt.subplots(figsize=(5, 3.6))
    xs = [p["coverage"] for p in curve]
    ys = [p["accuracy"] for p in curve]
    ax.plot(xs, ys, marker="o")
    for p in curve:
        ax.annotate("none" if p["min_agreement"] is None else f">= {p['min_agreement']}", (p["coverage"], p["accuracy"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("share of rows exported (coverage)")
    ax.set_ylabel("accuracy of the exported rows")
    ax.set_title("export.min_agreement, samples=8, SmolLM2-135M on BFCL", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-category", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="built:smollm2-135m-instruct")
    parser.add_argument("--runs", default="greedy,compact,whitespace,unconstrained,masked,judge")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "quality.json")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "quality.png")
    args = parser.parse_args()

    shards = prepare(args.per_category, args.seed)
    outputs = {}
    for name in args.runs.split(","):
        if name == "judge":
            outputs["judge"] = judge(outputs.get("greedy") or label("greedy", shards, args.model), args.model)
        else:
            outputs[name] = label(name, shards, args.model)
    report = {"gold": f"bfcl-eval, {args.per_category} rows per category of {', '.join(CATEGORIES)}, seed {args.seed}",
              "model": args.model, "runs": {}}
    for name, out in outputs.items():
        rows = rows_of(out)
        summary = json.loads((out / "_summary.json").read_text())
        entry = {"wall_seconds": summary.get("wall_seconds"), "accuracy": accuracy(rows), "tokens": tokens(rows)}
        if name == "greedy":
            entry.update(calibration=calibration(rows), export_curve=export_curve(rows), flags=flag_signal(rows),
                         agreement_at_4_auroc=auroc(*zip(*[(agreement_at(r, 4), bool(r["correct"])) for r in rows
                                                            if r["sample_statuses"] and r["correct"] is not None])))
            plot(entry["export_curve"], args.plot)
        if name == "judge":
            entry = {"wall_seconds": summary.get("wall_seconds"), "verdicts": summary.get("verdicts"),
                     "confusion": judge_confusion(rows)}
        report["runs"][name] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
