"""A stage's contract as data: the columns it reads and the columns it writes, with their types,
checked on the way in and on the way out. Every stage of a plan declares one (the prompt stages,
the engine kinds, the annotators: docs/design.md's table follows from them); the stages that shape
rows check theirs in run/stages.py's `shape_rows`, which also holds the row guard.

A broken contract is a wiring error of the plan (a stage lacking what the one before writes, a
column of the wrong type): it names the stage and the columns and stops the run, never a column of
nulls written into every row. A row's own trouble is never a wiring error: it becomes that row's
`row_error` (run/guard.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


class StageWiringError(ValueError):
    """A stage met a batch its contract does not allow: the plan is wired wrong."""


@dataclass(frozen=True)
class Contract:
    stage: str
    reads: tuple[str, ...]  # the columns it needs (their types are the writer's contract)
    writes: dict[str, pa.DataType] = field(default_factory=dict)  # the columns it adds, with their types

    def with_reads(self, *columns: str) -> "Contract":
        """The contract of one use of the stage: reads that depend on its settings or input schema."""
        return Contract(self.stage, tuple(dict.fromkeys((*self.reads, *columns))), self.writes)

    def check_in(self, batch: pa.Table) -> None:
        missing = [c for c in self.reads if c not in batch.column_names]
        if missing:
            raise StageWiringError(f"{self.stage} needs the columns {missing}; the batch has {batch.column_names}")

    def check_out(self, batch: pa.Table) -> pa.Table:
        """The batch it returns holds every column it writes, each of its declared type."""
        wrong = [f"{name} (missing)" if name not in batch.column_names
                 else f"{name} ({batch.schema.field(name).type}, declared {kind})"
                 for name, kind in self.writes.items()
                 if name not in batch.column_names or batch.schema.field(name).type != kind]
        if wrong:
            raise StageWiringError(f"{self.stage} broke its contract: {', '.join(wrong)}")
        return batch
