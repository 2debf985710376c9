"""The run summary: counts per status and call type, tokens, time. Pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pipelines.validation import CALL_TYPES, STATUSES


@dataclass
class SummaryCounter:
    rows: int = 0
    status: Counter = field(default_factory=Counter)
    call_type: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    output_tokens: int = 0

    def add(self, statuses, call_types, prompt_tokens, output_tokens) -> None:
        self.rows += len(statuses)
        self.status.update(statuses)
        self.call_type.update(call_types)
        self.prompt_tokens += sum(t for t in prompt_tokens if t)
        self.output_tokens += sum(t for t in output_tokens if t)

    def to_dict(self, wall_seconds: float, **extra) -> dict:
        return {
            **extra,
            "rows": self.rows,
            "status": {s: self.status.get(s, 0) for s in STATUSES},
            "call_type": {c: self.call_type.get(c, 0) for c in CALL_TYPES},
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "wall_seconds": round(wall_seconds, 3),
            "rows_per_second": round(self.rows / wall_seconds, 3) if wall_seconds > 0 else None,
        }


def format_table(summary: dict) -> str:
    """The summary as a plain-text table for stdout."""
    lines = [f"rows            {summary['rows']}"]
    for section in ("status", "call_type"):
        for name, n in summary[section].items():
            if n:
                share = n / summary["rows"] if summary["rows"] else 0
                lines.append(f"{section:<9} {name:<18} {n:>8}  {share:6.1%}")
    lines += [
        f"prompt tokens   {summary['prompt_tokens']}",
        f"output tokens   {summary['output_tokens']}",
        f"wall time       {summary['wall_seconds']:.1f} s",
        f"rows/s          {summary['rows_per_second']}",
    ]
    return "\n".join(lines)
