"""The rows a reviewer reads, picked in one streaming pass over an output: a few per status, a few
per reason (the reasons ranked by how many rows they hold), the least confident `ok` rows, and, where
present, a few per judge verdict and per execution status. Memory holds the picked rows only."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

from pipelines.core.reasons import OK, Reason

PER_GROUP = 3  # rows shown per status, verdict or execution status
PER_REASON = 2
LEAST_CONFIDENT = 5
SHOWN_COLUMNS = ["id", "query", "tools", "raw_output", "calls", "status", "errors", "flags", "answers", "correct",
                 "mismatch", "agreement", "mean_logprob", "judge_verdict", "judge_reason", "exec_status",
                 "exec_results", "exec_mismatch"]


@dataclass
class Picked:
    reasons: Counter = field(default_factory=Counter)  # code -> rows whose errors hold it
    by_group: dict = field(default_factory=dict)  # (column, value) -> rows
    by_reason: dict = field(default_factory=dict)  # code -> rows
    least_confident: list = field(default_factory=list)  # heap of (-uncertainty, order, row)
    seen: int = 0

    def add(self, row: dict) -> None:
        self.seen += 1
        for column in ("status", "judge_verdict", "exec_status"):
            if row.get(column) is not None:
                group = self.by_group.setdefault((column, row[column]), [])
                if len(group) < PER_GROUP:
                    group.append(row)
        for code in {Reason.parse(e).code for e in row.get("errors") or [] if isinstance(e, str)}:
            self.reasons[code] += 1
            picked = self.by_reason.setdefault(code, [])
            if len(picked) < PER_REASON:
                picked.append(row)
        confidence = row.get("agreement") if row.get("agreement") is not None else row.get("mean_logprob")
        if row.get("status") == OK and confidence is not None:
            item = (-confidence, -self.seen, row)  # the smallest confidence is the largest key: kept
            if len(self.least_confident) < LEAST_CONFIDENT:
                heapq.heappush(self.least_confident, item)
            elif item > self.least_confident[0]:
                heapq.heapreplace(self.least_confident, item)

    def least_confident_rows(self) -> list[dict]:
        return [row for _, _, row in sorted(self.least_confident, reverse=True)]


def pick(batches) -> Picked:
    picked = Picked()
    for batch in batches:
        for row in batch.to_pylist():
            picked.add(row)
    return picked
