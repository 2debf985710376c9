"""Live progress of a run, from the counts each committed piece reports. Pure."""

from __future__ import annotations

import json
import time
from collections import Counter

from pipelines.core.reasons import FAILURES


class ErrorRateExceeded(RuntimeError):
    """The share of bad_input + engine_error rows passed max_error_rate."""


class Progress:
    # The error rate is judged only once this many rows are in (or all of them): a first small
    # piece with one bad row is not a trend.
    MIN_ROWS_FOR_ERROR_RATE = 100
    MAX_TIMELINE = 512

    def __init__(self, total_rows: int, already_done: int, interval_s: float, clock=time.monotonic):
        self.total = total_rows
        self.already = already_done
        self.rows = 0
        self.statuses: Counter = Counter()
        self.reasons: Counter = Counter()
        self.interval = interval_s
        self.clock = clock
        self.started = clock()
        self.last_print = self.started
        # [seconds since the start, rows written this run] at each committed piece: the report's rows/s
        self.timeline: list[list[float]] = [[0.0, 0]]

    def add(self, rows: int, statuses: dict, reasons: dict) -> None:
        self.rows += rows
        self.timeline.append([round(self.clock() - self.started, 2), self.rows])
        if len(self.timeline) > self.MAX_TIMELINE:  # a long run keeps every other point: the shape, bounded
            self.timeline = self.timeline[::2]
        self.statuses.update(statuses)
        self.reasons.update(reasons)

    def add_batch(self, batch: dict[str, list]) -> None:
        """A batch of stages.write_pieces results, as lists."""
        for rows, statuses, reasons in zip(batch["rows"], batch["statuses"], batch["reasons"]):
            self.add(rows, json.loads(statuses), json.loads(reasons))

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        done = self.already + self.rows
        rate = self.rows / elapsed
        remaining = self.total - done
        eta = f"{remaining / rate / 60:.1f} min" if rate > 0 else "unknown"
        share = done / self.total if self.total else 1.0
        statuses = ", ".join(f"{s} {n}" for s, n in self.statuses.most_common())
        return (f"progress: {done}/{self.total} rows ({share:.1%}), {rate:.2f} rows/s this run, ETA {eta}"
                + (f"; statuses this run: {statuses}" if statuses else ""))

    def due(self) -> bool:
        now = self.clock()
        if now - self.last_print >= self.interval:
            self.last_print = now
            return True
        return False

    def check_error_rate(self, max_error_rate: float | None) -> None:
        if max_error_rate is None:
            return
        if self.rows < min(self.MIN_ROWS_FOR_ERROR_RATE, self.total - self.already):
            return
        bad = sum(self.statuses[status] for status in FAILURES)
        if bad / self.rows > max_error_rate:
            reasons = ", ".join(f"{code} {n}" for code, n in self.reasons.most_common(5))
            raise ErrorRateExceeded(
                f"{bad} of {self.rows} rows ({bad / self.rows:.1%}) are bad_input or engine_error, over "
                f"max_error_rate={max_error_rate}; top reasons: {reasons}; what was written is kept"
            )
