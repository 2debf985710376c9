"""The run summary: counts per status and call type, tokens, accuracy against gold, time. Pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pipelines.core.reasons import STATUSES
from pipelines.core.scoring import GOLD_TYPES
from pipelines.core.validation import CALL_TYPES

COLUMNS = ["status", "call_type", "num_prompt_tokens", "num_output_tokens", "correct", "gold_call_type"]


@dataclass
class SummaryCounter:
    rows: int = 0
    status: Counter = field(default_factory=Counter)
    call_type: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    output_tokens: int = 0
    scored: Counter = field(default_factory=Counter)  # gold call type -> rows with a verdict
    correct: Counter = field(default_factory=Counter)  # gold call type -> correct rows
    confusion: Counter = field(default_factory=Counter)  # (gold call type, status) -> rows

    def add(self, batch: dict[str, list]) -> None:
        """A batch of the COLUMNS, as lists."""
        self.rows += len(batch["status"])
        self.status.update(batch["status"])
        self.call_type.update(batch["call_type"])
        self.prompt_tokens += sum(t for t in batch["num_prompt_tokens"] if t)
        self.output_tokens += sum(t for t in batch["num_output_tokens"] if t)
        for status, correct, gold_type in zip(batch["status"], batch["correct"], batch["gold_call_type"]):
            if gold_type is not None:
                self.confusion[(gold_type, status)] += 1
            if correct is not None:
                self.scored[gold_type] += 1
                self.correct[gold_type] += bool(correct)

    def to_dict(self, wall_seconds: float, **extra) -> dict:
        scored = sum(self.scored.values())
        return {
            **extra,
            "rows": self.rows,
            "status": {s: self.status.get(s, 0) for s in STATUSES},
            "call_type": {c: self.call_type.get(c, 0) for c in CALL_TYPES},
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "accuracy": {
                "scored_rows": scored,
                "overall": _share(sum(self.correct.values()), scored),
                **{g: _share(self.correct[g], self.scored[g]) for g in GOLD_TYPES},
            },
            "confusion": {g: {s: self.confusion[(g, s)] for s in STATUSES if self.confusion[(g, s)]}
                          for g in GOLD_TYPES if any(self.confusion[(g, s)] for s in STATUSES)},
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
    accuracy = summary["accuracy"]
    if accuracy["scored_rows"]:
        lines.append(f"accuracy  {'overall':<18} {accuracy['overall']:>8.1%}  of {accuracy['scored_rows']} rows with answers")
        lines += [f"accuracy  {g:<18} {accuracy[g]:>8.1%}" for g in GOLD_TYPES if accuracy[g] is not None]
        lines.append("confusion (gold call type -> status): " + "; ".join(
            f"{g}: " + ", ".join(f"{s} {n}" for s, n in row.items()) for g, row in summary["confusion"].items()))
    lines += [
        f"prompt tokens   {summary['prompt_tokens']}",
        f"output tokens   {summary['output_tokens']}",
        f"wall time       {summary['wall_seconds']:.1f} s",
        f"rows/s          {summary['rows_per_second']}",
    ]
    return "\n".join(lines)
