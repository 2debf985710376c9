"""What a summary says of execution: exec_status counts, and exec_correct over the rows with a
verdict (the labeling summary's `execution` block, and the re-execution job's summary)."""

from __future__ import annotations

from collections import Counter

from pipelines.core.reasons import EXEC_STATUSES

SUMMARY_COLUMNS = ["exec_status", "exec_correct"]


class ExecCounter:
    """exec_status counts, and exec_correct over the rows with a verdict (the labeling summary's
    `execution` block and the re-execution job's summary)."""

    def __init__(self):
        self.rows = 0
        self.status: Counter = Counter()
        self.correct: Counter = Counter()

    def add(self, batch: dict[str, list]) -> None:
        self.rows += len(batch["exec_status"])
        self.status.update(s or "not_executed" for s in batch["exec_status"])
        self.correct.update("correct" if c else "incorrect" for c in batch["exec_correct"] if c is not None)

    def to_dict(self) -> dict:
        judged = self.correct["correct"] + self.correct["incorrect"]
        return {"rows": self.rows, "exec_status": {s: self.status[s] for s in EXEC_STATUSES},
                "exec_correct": {"rows": judged, "correct": self.correct["correct"],
                                 "accuracy": round(self.correct["correct"] / judged, 4) if judged else None}}

