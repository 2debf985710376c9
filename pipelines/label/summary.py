"""The run summary: counts per status and call type, tokens, accuracy against gold, time. Pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pipelines.core import bfcl
from pipelines.core.confidence import AGREEMENT_BUCKETS, LOGPROB_BUCKETS, agreement_bucket, logprob_bucket
from pipelines.core.reasons import CUT, STATUSES
from pipelines.core.scoring import BFCL_RULES, CATEGORY_COLUMN, GOLD_TYPES
from pipelines.core.validation import CALL_TYPES
from pipelines.execution.summary import SUMMARY_COLUMNS as EXEC_SUMMARY_COLUMNS
from pipelines.execution.summary import ExecCounter

COLUMNS = ["status", "call_type", "num_prompt_tokens", "num_output_tokens", "correct", "gold_call_type", "gold_errors",
           "agreement", "mean_logprob", "finish_reason", "sample_finish_reasons", "scoring_rules"]
OPTIONAL_COLUMNS = (CATEGORY_COLUMN, *EXEC_SUMMARY_COLUMNS)  # read where the output has them (an input column; execution.*)
# The confidence signals the calibration table groups rows by: column -> (bucket of a value, bucket names in order)
SIGNALS = {"agreement": (agreement_bucket, [name for _, name in AGREEMENT_BUCKETS]),
           "mean_logprob": (logprob_bucket, [name for _, name in LOGPROB_BUCKETS])}


@dataclass
class LeaderboardCounter:
    """Rows scored by BFCL's rules, per BFCL category: (correct, scored); rows of a category without a
    verdict (bad_input, bad_gold) are counted apart."""

    scored: Counter = field(default_factory=Counter)
    correct: Counter = field(default_factory=Counter)
    unscored: Counter = field(default_factory=Counter)

    def add(self, batch: dict[str, list]) -> None:
        categories = batch.get(CATEGORY_COLUMN) or [None] * len(batch["correct"])
        for category, correct, rules in zip(categories, batch["correct"], batch["scoring_rules"]):
            if category not in bfcl.CATEGORIES:
                continue
            if correct is None or rules != BFCL_RULES:
                self.unscored[category] += 1
            else:
                self.scored[category] += 1
                self.correct[category] += bool(correct)

    def table(self) -> dict | None:
        """BFCL's table (bfcl.table), with the unscored rows per category; None without such rows."""
        if not self.scored and not self.unscored:
            return None
        return {**bfcl.table({c: (self.correct[c], self.scored[c]) for c in self.scored}),
                "unscored_rows": dict(self.unscored)}


@dataclass
class SummaryCounter:
    rows: int = 0
    status: Counter = field(default_factory=Counter)
    call_type: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    output_tokens: int = 0
    truncated: int = 0  # labels stopped at generation.max_tokens
    samples: int = 0  # sampled outputs
    truncated_samples: int = 0
    scored: Counter = field(default_factory=Counter)  # gold call type -> rows with a verdict
    correct: Counter = field(default_factory=Counter)  # gold call type -> correct rows
    confusion: Counter = field(default_factory=Counter)  # (gold call type, status) -> rows
    gold_with_errors: int = 0  # rows whose gold calls break their own tools
    buckets: Counter = field(default_factory=Counter)  # (signal, bucket) -> rows
    bucket_scored: Counter = field(default_factory=Counter)  # (signal, bucket) -> rows with a verdict
    bucket_correct: Counter = field(default_factory=Counter)  # (signal, bucket) -> correct rows
    leaderboard: LeaderboardCounter = field(default_factory=LeaderboardCounter)
    execution: ExecCounter | None = None  # where the output has exec_* columns (execution.*)

    def add(self, batch: dict[str, list]) -> None:
        """A batch of the COLUMNS, as lists."""
        self.rows += len(batch["status"])
        self.status.update(batch["status"])
        self.call_type.update(batch["call_type"])
        self.prompt_tokens += sum(t for t in batch["num_prompt_tokens"] if t)
        self.output_tokens += sum(t for t in batch["num_output_tokens"] if t)
        self.truncated += sum(1 for f in batch["finish_reason"] if f == CUT)
        for reasons in batch["sample_finish_reasons"]:
            self.samples += len(reasons or [])
            self.truncated_samples += sum(1 for f in reasons or [] if f == CUT)
        for status, correct, gold_type in zip(batch["status"], batch["correct"], batch["gold_call_type"]):
            if gold_type is not None:
                self.confusion[(gold_type, status)] += 1
            if correct is not None:
                self.scored[gold_type] += 1
                self.correct[gold_type] += bool(correct)
        self.gold_with_errors += sum(1 for errors in batch["gold_errors"] if errors)
        self.leaderboard.add(batch)
        if "exec_status" in batch:
            self.execution = self.execution or ExecCounter()
            self.execution.add(batch)
        for signal, (bucket_of, _) in SIGNALS.items():
            for value, correct in zip(batch[signal], batch["correct"]):
                bucket = bucket_of(value)
                if bucket is None:
                    continue
                self.buckets[(signal, bucket)] += 1
                if correct is not None:
                    self.bucket_scored[(signal, bucket)] += 1
                    self.bucket_correct[(signal, bucket)] += bool(correct)

    def to_dict(self, wall_seconds: float, **extra) -> dict:
        scored = sum(self.scored.values())
        return {
            **extra,
            "rows": self.rows,
            "status": {s: self.status.get(s, 0) for s in STATUSES},
            "call_type": {c: self.call_type.get(c, 0) for c in CALL_TYPES},
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            # outputs stopped at generation.max_tokens before their end of turn: raise it when these are many
            "truncated": {"rows": self.truncated, "samples": self.truncated_samples, "of_samples": self.samples},
            "accuracy": {
                "scored_rows": scored,
                "overall": _share(sum(self.correct.values()), scored),
                **{g: _share(self.correct[g], self.scored[g]) for g in GOLD_TYPES},
            },
            "confusion": {g: {s: self.confusion[(g, s)] for s in STATUSES if self.confusion[(g, s)]}
                          for g in GOLD_TYPES if any(self.confusion[(g, s)] for s in STATUSES)},
            "gold_with_errors": self.gold_with_errors,
            # Per confidence signal and bucket: rows, and accuracy where gold exists (does it predict correctness?)
            "calibration": {
                signal: {b: {"rows": self.buckets[(signal, b)],
                             "accuracy": _share(self.bucket_correct[(signal, b)], self.bucket_scored[(signal, b)])}
                         for b in names if self.buckets[(signal, b)]}
                for signal, (_, names) in SIGNALS.items()},
            # BFCL's table over the rows the leaderboard's rules scored, by their category (pipelines/core/bfcl.py)
            "bfcl": self.leaderboard.table(),
            # execution.*: how the labels ran on the implementations, and against the gold's execution
            "execution": None if self.execution is None else self.execution.to_dict(),
            "wall_seconds": round(wall_seconds, 3),
            "rows_per_second": round(self.rows / wall_seconds, 3) if wall_seconds > 0 else None,
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def format_table(summary: dict) -> str:
    """The summary as a plain-text table for stdout."""
    lines = [f"rows            {summary['rows']}"]
    for section in ("status", "call_type"):
        for name, n in summary[section].items():
            if n:
                share = n / summary["rows"] if summary["rows"] else 0
                lines.append(f"{section:<9} {name:<18} {n:>8}  {share:6.1%}")
    truncated = summary["truncated"]
    if truncated["rows"] or truncated["samples"]:
        samples = f" and {truncated['samples']} of {truncated['of_samples']} samples" if truncated["of_samples"] else ""
        lines.append(f"truncated {truncated['rows']} rows{samples} stopped at generation.max_tokens before their end "
                     "of turn: raise generation.max_tokens")
    accuracy = summary["accuracy"]
    if accuracy["scored_rows"]:
        lines.append(f"accuracy  {'overall':<18} {accuracy['overall']:>8.1%}  of {accuracy['scored_rows']} rows with answers")
        lines += [f"accuracy  {g:<18} {accuracy[g]:>8.1%}" for g in GOLD_TYPES if accuracy[g] is not None]
        lines.append("confusion (gold call type -> status): " + "; ".join(
            f"{g}: " + ", ".join(f"{s} {n}" for s, n in row.items()) for g, row in summary["confusion"].items()))
    if summary["gold_with_errors"]:
        lines.append(f"gold      {'breaks its tools':<18} {summary['gold_with_errors']:>8}  (gold_errors: fix these references)")
    for signal, buckets in summary["calibration"].items():
        for bucket, cell in buckets.items():
            accuracy = "" if cell["accuracy"] is None else f"  accuracy {cell['accuracy']:.1%}"
            lines.append(f"{signal:<13} {bucket:<14} {cell['rows']:>8}{accuracy}")
    if summary.get("bfcl"):
        lines.append(format_leaderboard(summary["bfcl"]))
    if summary.get("execution"):
        execution = summary["execution"]
        lines += [f"exec      {name:<18} {n:>8}" for name, n in execution["exec_status"].items() if n]
        judged = execution["exec_correct"]
        if judged["rows"]:
            lines.append(f"exec      {'correct':<18} {judged['accuracy']:>8.1%}  of {judged['rows']} rows with gold calls run")
    lines += [
        f"prompt tokens   {summary['prompt_tokens']}",
        f"output tokens   {summary['output_tokens']}",
        f"wall time       {summary['wall_seconds']:.1f} s",
        f"rows/s          {summary['rows_per_second']}",
    ]
    return "\n".join(lines)


def format_leaderboard(result: dict) -> str:
    """BFCL's table as plain text: the aggregates, then each category present."""
    lines = [f"bfcl      {name:<22} {bfcl.cell_text(result[key]):>8}" for name, key in bfcl.CARD_COLUMNS]
    lines.append(f"bfcl      {'Non-live AST, Python':<22} {bfcl.cell_text(result['non_live_python_ast']):>8}  "
                 "(simple_python for the three simple categories: not a leaderboard figure)")
    lines += [f"bfcl      {name:<22} {bfcl.cell_text(cell):>8}  of {cell['total']} rows"
              for name, cell in result["categories"].items() if not cell["missing"]]
    missing = [name for name, cell in result["categories"].items() if cell["missing"]]
    if missing:
        lines.append(f"bfcl      missing: {', '.join(missing)} (an aggregate that needs one is shown as missing)")
    if result["unscored_rows"]:
        lines.append("bfcl      rows without a verdict (bad_input, bad_gold): " +
                     ", ".join(f"{c} {n}" for c, n in result["unscored_rows"].items()))
    return "\n".join(lines)
