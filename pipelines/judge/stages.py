"""The judge job's own stages; reading, the engine and writing are every job's (pipelines/run/, pipelines/engines/).

    read_shard -> JudgePromptStage (CPU actors) -> engine.generate (vLLM actors) -> annotate_verdicts -> write_pieces

Rows whose label is not ok or no_call are marked so the engine skips them, and come out as they went in,
with a null verdict.
"""

from __future__ import annotations

import json

import pyarrow as pa

from pipelines.core.judging import JUDGED_STATUSES, VERDICT_SCHEMA, judge_prompt, parse_verdict
from pipelines.core.prompts import Prompt
from pipelines.core.reasons import BAD_INPUT, ENGINE_ERROR, PROMPT_TOO_LONG, ROW_ERROR, Reason
from pipelines.core.tools import BadInput, load_tools, plain_cell
from pipelines.engines.columns import (CALL_SCHEMA_COL, EARLY_STATUS_COL, ENGINE_ERROR_COL, ENGINE_TEXT_COL,
                                       MESSAGES_COL, PROMPT_TOKENS_COL)
from pipelines.contract import Contract
from pipelines.core.calls import read_calls  # the calls of the labeling output it judges
from pipelines.models.prompt_tokens import PromptTokenizer
from pipelines.run.guard import guard_row
from pipelines.run.stages import EARLY_ERRORS_COL, ROW_COL, SHARD_COL, set_column, shape_rows, too_long

NOT_JUDGED = "not_judged"  # the early status of rows the judge does not see (their label is not ok or no_call)

# name -> (type, meaning): what the judge job adds to every row of a labeling output.
JUDGE_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "judge_verdict": (pa.string(), "agree, disagree, unparseable, prompt_too_long, engine_error, row_error; null: not "
                                   "judged (the label is not ok or no_call)"),
    "judge_reason": (pa.string(), "the judge's one sentence; for unparseable, what was wrong with its answer"),
    "judge_output": (pa.string(), "the judge's text, as generated"),
    "judge_model": (pa.string(), "the resolved judge model"),
    "judge_template": (pa.string(), "the judge prompt template's name"),
    "judge_run_id": (pa.string(), "the judge run that wrote the row"),
    "judge_config_hash": (pa.string(), "fingerprint of the settings that change verdicts"),
}


def judged_schema(input_schema: pa.Schema) -> pa.Schema:
    """A labeling output's columns, then the judge's (an earlier judge's columns are replaced)."""
    fields = [f for f in input_schema if f.name not in JUDGE_COLUMNS]
    return pa.schema(fields + [pa.field(name, t) for name, (t, _) in JUDGE_COLUMNS.items()])


class JudgePromptStage:
    """CPU actor: a labeled row -> the judge's prompt as token ids (or, for an endpoint, as chat
    messages: tokenizer_source None), or why the judge does not see it."""

    CONTRACT = Contract("JudgePromptStage", ("query", "tools", "status", "calls"), {
        EARLY_STATUS_COL: pa.string(), EARLY_ERRORS_COL: pa.list_(pa.string()), PROMPT_TOKENS_COL: pa.list_(pa.int32()),
        CALL_SCHEMA_COL: pa.string(), MESSAGES_COL: pa.string()})

    def __init__(self, tokenizer_source: str | None, template: str, max_prompt_tokens: int, trust_remote_code: bool,
                 constrained: bool = False, row_time_budget_s: float | None = None):
        from pipelines.models import load_tokenizer

        self.tokenizer = (PromptTokenizer(load_tokenizer(tokenizer_source, trust_remote_code)) if tokenizer_source
                          else None)
        self.template = template
        self.max_prompt_tokens = max_prompt_tokens
        self.schema = json.dumps(VERDICT_SCHEMA) if constrained else None
        self.row_time_budget_s = row_time_budget_s

    def _prompt(self, row: dict) -> Prompt | Reason:
        """The judge's prompt for a labeled row, or why the row cannot be shown (guarded by the caller)."""
        try:
            tools = load_tools(row["tools"] if isinstance(row["tools"], (str, bytes)) else plain_cell(row["tools"]))
            return judge_prompt(self.template, row["query"], tools, read_calls(row["calls"] or []))
        except BadInput as e:
            return e.reason
        except (ValueError, TypeError, KeyError) as e:
            return Reason("bad_label", f"{type(e).__name__}: {e}")

    def __call__(self, batch: pa.Table) -> pa.Table:
        self.CONTRACT.check_in(batch)
        status, errors, prompts = [], [], {}
        for i, row in enumerate(batch.select(list(self.CONTRACT.reads)).to_pylist()):
            early, error = None, None
            if row["status"] not in JUDGED_STATUSES:
                early = NOT_JUDGED
            else:
                prompt, reason = guard_row(lambda: self._prompt(row), self.row_time_budget_s)
                reason = prompt if isinstance(prompt, Reason) else reason
                if reason is None:
                    prompts[i] = prompt
                else:  # a labeled row the judge cannot show (or the job could not: row_exception): not judged, and why
                    early, error = BAD_INPUT, str(reason)
            status.append(early)
            errors.append([error] if error else [])
        rows = sorted(prompts)
        ids = dict(zip(rows, self.tokenizer([prompts[i] for i in rows]))) if self.tokenizer else {}
        tokens = []
        for i in range(batch.num_rows):
            row_ids = ids.get(i, [])
            if self.tokenizer and status[i] is None and (long := too_long(row_ids, self.max_prompt_tokens)):
                status[i] = PROMPT_TOO_LONG
                errors[i] = [str(long)]
            tokens.append(row_ids if status[i] is None else [])
        new = {
            EARLY_STATUS_COL: status,
            EARLY_ERRORS_COL: errors,
            PROMPT_TOKENS_COL: tokens,
            CALL_SCHEMA_COL: [self.schema if s is None else None for s in status],
            MESSAGES_COL: [json.dumps(prompts[i].messages) if status[i] is None and not self.tokenizer else None
                           for i in range(batch.num_rows)],
        }
        for name, values in new.items():
            batch = set_column(batch, name, pa.array(values, self.CONTRACT.writes[name]))
        return self.CONTRACT.check_out(batch)


ANNOTATE_READS = (EARLY_STATUS_COL, EARLY_ERRORS_COL, ENGINE_TEXT_COL, ENGINE_ERROR_COL, SHARD_COL, ROW_COL)


def verdict_row(row: dict) -> dict:
    """Pure: one row after the judge's engine -> judge_verdict, judge_reason, judge_output."""
    early = row.get(EARLY_STATUS_COL)
    if early == NOT_JUDGED:
        return {"judge_verdict": None, "judge_reason": None, "judge_output": None}
    if early == BAD_INPUT:  # the label's own columns are broken: not judged, and why
        return {"judge_verdict": None, "judge_reason": (row.get(EARLY_ERRORS_COL) or [None])[0], "judge_output": None}
    if early == PROMPT_TOO_LONG:
        return {"judge_verdict": PROMPT_TOO_LONG, "judge_reason": row[EARLY_ERRORS_COL][0], "judge_output": None}
    if row.get(ENGINE_ERROR_COL):
        return {"judge_verdict": ENGINE_ERROR, "judge_reason": row[ENGINE_ERROR_COL], "judge_output": None}
    text = row.get(ENGINE_TEXT_COL) or ""
    verdict = parse_verdict(text)
    return {"judge_verdict": verdict.verdict, "judge_reason": verdict.reason, "judge_output": text}


def annotate_verdicts(batch: pa.Table, *, input_schema: pa.Schema, lineage: dict,
                      row_time_budget_s: float | None = None) -> pa.Table:
    """Each row's verdict (one guard per row: run/stages.shape_rows), shaped to the judged schema,
    then the shard and row it came from."""
    schema = judged_schema(input_schema).append(pa.field(SHARD_COL, pa.string())).append(pa.field(ROW_COL, pa.int64()))
    contract = Contract("annotate_verdicts", (*input_schema.names, *ANNOTATE_READS),
                        {name: t for name, (t, _) in JUDGE_COLUMNS.items()})

    def judged(row: dict, verdict: dict) -> dict:
        return {**{name: row[name] for name in input_schema.names}, **verdict, **lineage,
                SHARD_COL: row[SHARD_COL], ROW_COL: row[ROW_COL]}

    def failed(row: dict, reason: Reason) -> dict:
        return judged(row, {"judge_verdict": ROW_ERROR, "judge_reason": str(reason), "judge_output": None})

    return shape_rows(batch, contract, schema, lambda row: judged(row, verdict_row(row)), failed, row_time_budget_s)
