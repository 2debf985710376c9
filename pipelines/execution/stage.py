"""The execution stage: every labeled row's calls run on the implementations (and its gold's, where
it has them), written as the exec_* columns. A stage of the labeling job (execution.* set) and the
whole of the re-execution job (pipelines/execution/job.py)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.contract import Contract
from pipelines.core import untrusted
from pipelines.core.reasons import EXEC_SKIPPED, NO_CALL, OK, ROW_ERROR, Reason
from pipelines.core.tools import plain_cell
from pipelines.execution.config import ExecutionConfig
from pipelines.execution.runner import Execution, Executor
from pipelines.core.calls import read_calls
from pipelines.run.stages import shape_rows

# name -> (type, meaning): what execution adds to every row (docs/output.md, "Execution").
EXEC_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "exec_status": (pa.string(), "ok, error, timeout, out_of_memory, crashed, not_implemented, skipped, row_error"),
    "exec_results": (pa.list_(pa.string()), "each call's result as the leaderboard keeps it (capped at "
                                            "execution.max_result_chars)"),
    "exec_errors": (pa.list_(pa.string()), "why a call failed or the execution stopped, `code: detail`"),
    "exec_correct": (pa.bool_(), "the calls do what the gold's calls do, by the leaderboard's execution rules "
                                 "(null without gold calls, or when the gold's own calls fail here)"),
    "exec_mismatch": (pa.string(), "why not exec_correct, or why there is no verdict, `code: detail`"),
}
EXECUTED = (OK, NO_CALL)  # the labels whose calls run; the rest are skipped
RESULT_TYPES_COLUMN = "execution_result_type"  # per row, BFCL's exec categories: one result rule per gold call


class ExecuteStage:
    """CPU actor: one Executor (its forkserver), rows through shape_rows (a row's own failure is its
    row_error, never the block's)."""

    def __init__(self, execution: ExecutionConfig):
        self.execution = execution
        self.executor = Executor(execution)

    def __call__(self, batch: pa.Table) -> pa.Table:
        # reads every column (each row passes through whole); needs its label's status and calls; answers,
        # the environments, their configuration and the result types where the rows have them
        contract = Contract("ExecuteStage", (*batch.column_names, "status", "calls"),
                            {name: t for name, (t, _) in EXEC_COLUMNS.items()})
        schema = pa.schema([f for f in batch.schema if f.name not in EXEC_COLUMNS] +
                           [pa.field(name, t) for name, (t, _) in EXEC_COLUMNS.items()])

        def failed(row: dict, reason: Reason) -> dict:  # the job could not handle the row (run/guard.py)
            return {**row, "exec_status": ROW_ERROR, "exec_results": [], "exec_errors": [str(reason)],
                    "exec_correct": None, "exec_mismatch": str(reason)}

        return shape_rows(batch, contract, schema, lambda row: {**row, **self.execute(row)}, failed,
                          None)  # bounded by execution.call_timeout_s per step, not by the row budget

    def execute(self, row: dict) -> dict:
        if row["status"] not in EXECUTED:
            return written(Execution(EXEC_SKIPPED, mismatch=Reason("not_executed", f"the label is {row['status']}")))
        model = read_calls(row["calls"]) or []
        gold, why_no_gold = gold_calls(row.get("answers"))
        result_types = _json_cell(row.get(RESULT_TYPES_COLUMN))
        out = self.executor.run(model, gold, _json_cell(row.get(self.execution.config_column)) or {},
                                _json_cell(row.get(self.execution.environments_column)), result_types)
        if gold is None and out.mismatch is None:
            out.mismatch = why_no_gold
        return written(out)


def gold_calls(answers: Any) -> tuple[list[dict] | None, Reason | None]:
    """The gold's calls when `answers` holds calls (a JSON list of {name, arguments}); BFCL's possible
    answers (several accepted values per argument) are no calls to run."""
    if answers is None:
        return None, Reason("no_gold", "the row has no answers")
    try:
        value = untrusted.loads(answers) if isinstance(answers, str) else plain_cell(answers)
    except (ValueError, untrusted.UntrustedValue) as e:
        return None, Reason("gold_not_calls", f"answers are not JSON ({e})")
    if isinstance(value, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                       and isinstance(c.get("arguments", {}), dict) for c in value):
        return [{"name": c["name"], "arguments": c.get("arguments", {})} for c in value], None
    return None, Reason("gold_not_calls", "answers are not a list of calls (BFCL's possible answers cannot run)")


def written(out: Execution) -> dict:
    return {"exec_status": out.status, "exec_results": out.results, "exec_errors": [str(e) for e in out.errors],
            "exec_correct": out.correct, "exec_mismatch": None if out.mismatch is None else str(out.mismatch)}


def _json_cell(value: Any) -> Any:
    """A cell that holds JSON text (read as any row's JSON: core/untrusted.py) or the value itself (a
    list or struct column)."""
    if value is None:
        return None
    return untrusted.loads(value) if isinstance(value, str) else plain_cell(value)
