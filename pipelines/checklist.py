"""The preflight's checklist: every check of a job's start prints one line as it runs (what, the
verdict, the seconds it took), and the failures together make PreflightFailed (exit 2). Shared by the
jobs' checks (pipelines/run/, label/, judge/) and the engine kinds' (pipelines/engines/)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pipelines import storage


class PreflightFailed(ValueError):
    """One or more checks failed; the message is the checklist."""


@dataclass
class Checklist:
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (mark, what, detail)
    shards: storage.Shards | None = None  # the input listing, for the run
    last: float = field(default_factory=time.monotonic)  # when the previous line was printed

    def ok(self, what: str, detail: str) -> None:
        self._add("ok", what, detail)

    def info(self, what: str, detail: str) -> None:
        self._add("info", what, detail)

    def warn(self, what: str, detail: str) -> None:
        self._add("WARN", what, detail)

    def fail(self, what: str, detail: str) -> None:
        self._add("FAIL", what, detail)

    def _add(self, mark: str, what: str, detail: str) -> None:
        """Prints the line with the seconds its check took (since the line before): where start-up goes."""
        now = time.monotonic()
        self.lines.append((mark, what, detail))
        print(f"  [{mark:>4}] {what}: {detail} ({now - self.last:.1f} s)", flush=True)
        self.last = now

    @property
    def failed(self) -> list[str]:
        return [f"{what}: {detail}" for mark, what, detail in self.lines if mark == "FAIL"]

    def raise_if_failed(self) -> None:
        if self.failed:
            raise PreflightFailed("preflight failed:\n  " + "\n  ".join(self.failed))
