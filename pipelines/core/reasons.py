"""The status vocabulary and the reason type, used from the validator to the summary.

Every row ends with one status; every problem with a row is a Reason (a code and a detail), written
to the `errors` and `flags` columns as `code: detail` strings.
"""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"  # every call valid
NO_CALL = "no_call"  # the model answered []
PARSE_ERROR = "parse_error"  # not JSON, not a list, too large
INVALID_CALL = "invalid_call"  # a call failed a check
PROMPT_TOO_LONG = "prompt_too_long"  # skipped the engine: over max_model_len - max_tokens
BAD_INPUT = "bad_input"  # the row's query or tools cannot be labeled
ENGINE_ERROR = "engine_error"  # the engine raised on this row
DRY_RUN = "dry_run"  # prompts only, on purpose
# the job could not handle this row: an exception no check caught, or past its time budget
# (pipelines/run/guard.py); a bug of the job or an input no check foresaw, counted apart from bad_input
ROW_ERROR = "row_error"
STATUSES = (OK, NO_CALL, PARSE_ERROR, INVALID_CALL, PROMPT_TOO_LONG, BAD_INPUT, ENGINE_ERROR, DRY_RUN, ROW_ERROR)
FAILURES = (BAD_INPUT, ENGINE_ERROR, ROW_ERROR)  # what max_error_rate counts, and whose reasons progress reports
NOT_SCORED = (BAD_INPUT, DRY_RUN, ROW_ERROR)  # nothing to score: the input is broken, or nothing was generated on purpose

# A row's execution (`exec_status`, pipelines/execution/): how the label's calls ran on the implementations
EXEC_OK = "ok"  # every call ran and returned
EXEC_ERROR = "error"  # a call raised; its result is the error's text, as the leaderboard keeps it
EXEC_TIMEOUT = "timeout"  # a call (or an environment's construction) ran past execution.call_timeout_s
EXEC_OUT_OF_MEMORY = "out_of_memory"  # the row's worker went past execution.memory_mb
EXEC_CRASHED = "crashed"  # the row's worker died (a crash of the interpreter, an exit)
EXEC_NOT_IMPLEMENTED = "not_implemented"  # a call names a tool no implementation has
EXEC_SKIPPED = "skipped"  # not run: the label is not ok or no_call, or its calls cannot be read
EXEC_STATUSES = (EXEC_OK, EXEC_ERROR, EXEC_TIMEOUT, EXEC_OUT_OF_MEMORY, EXEC_CRASHED, EXEC_NOT_IMPLEMENTED, EXEC_SKIPPED,
                 ROW_ERROR)  # row_error: the job could not handle the row (its JSON cells, say), as for labels


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"

    @classmethod
    def parse(cls, text: str) -> "Reason":
        """A written `code: detail` string back into its parts."""
        code, _, detail = text.partition(":")
        return cls(code, detail.strip())

# vLLM's finish reason of an output stopped at max_tokens (the `finish_reason` column; its other: stop)
CUT = "length"
TRUNCATED = "truncated"  # the reason code of an output stopped at generation.max_tokens


def truncation(finish_reason: str | None, tokens: int | None) -> Reason | None:
    """Why a label is incomplete when the engine stopped it at generation.max_tokens, else None."""
    if finish_reason != CUT:
        return None
    return Reason(TRUNCATED, f"the output stopped at generation.max_tokens ({tokens} tokens) before its end of turn: "
                             "raise generation.max_tokens")
