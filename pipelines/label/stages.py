"""The Ray Data stages of the labeling job: thin wrappers, batch in, batch out, around the pure core.

    read_shard -> PromptStage (CPU actors) -> engine.generate (vLLM actors) -> annotate_batch -> write_pieces

Each stage declares the columns it reads and writes; a batch without them is a wiring error, named
with the stage. The engine's own columns (ray.data.llm's, a server's response) never reach this module: each engine
kind writes pipelines/engines/columns.py's WRITES at its stage's edge.

Rows that stop early (bad_input, prompt_too_long) carry their status through the engine stage
untouched and are never dropped.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass, fields
from typing import Any

import pyarrow as pa

from pipelines.core.confidence import LogprobStats, confidence
from pipelines.core.masking import MaskMap, mask_row, row_rng, unmask_calls
from pipelines.core.prompts import Prompt, build_prompt, prompt_text
from pipelines.core import untrusted
from pipelines.core.reasons import (BAD_INPUT, DRY_RUN, ENGINE_ERROR, NO_CALL, OK, PROMPT_TOO_LONG, ROW_ERROR, Reason,
                                    truncation)
from pipelines.core.scoring import CATEGORY_COLUMN, ScoringConfig, score_row
from pipelines.core.tools import BadInput, Tool, calls_schema, load_tools, plain_cell
from pipelines.core.untrusted import UntrustedValue
from pipelines.contract import Contract
from pipelines.core.validation import ValidationConfig, label_output
from pipelines.engines.columns import (CALL_SCHEMA_COL, EARLY_STATUS_COL, ENGINE_ERROR_COL, ENGINE_FINISH_COL,
                                       ENGINE_LOGPROBS_COL, ENGINE_PROMPT_TOKENS_COL, ENGINE_SAMPLE_ERROR_COL,
                                       ENGINE_SAMPLE_FINISH_COL, ENGINE_SAMPLES_COL, ENGINE_TEXT_COL, ENGINE_TOKENS_COL,
                                       MESSAGES_COL, PROMPT_TOKENS_COL, TOOLS_REQUEST_COL)
from pipelines.label.config import Mode
from pipelines.core.calls import written_calls
from pipelines.label.schema import ADDED_COLUMNS, output_schema
from pipelines.models.prompt_tokens import PromptTokenizer
from pipelines.run.guard import guard_row
from pipelines.run.stages import EARLY_ERRORS_COL, ROW_COL, SHARD_COL, set_column, shape_rows, too_long

# Internal columns, dropped before writing.
USER_MESSAGE_COL = "_user_message"  # becomes `prompt`
TOOLS_COL = "_canonical_tools"  # canonical tools as JSON, so validation need not re-normalize
PROMPT_TOKEN_COUNT_COL = "_num_prompt_tokens"  # becomes `num_prompt_tokens` (re-validation keeps the input's)
NAME_MAP_COL = "_name_map"  # becomes `name_map` (mask.names); re-validation reads the input's back to unmask calls
NAME_MASK = "label-name-mask"  # the purpose of the per-row generator for mask.names


# ----------------------------------------------------------------------------------- prompt


@dataclass
class RowPrompt:
    """One row's prompt, or why it has none."""
    prompt: Prompt | None
    tools: list[Tool] | None  # as given: what the output is judged against
    user_message: str | None
    error: BadInput | None
    prompt_tools: list[Tool] | None = None  # as the prompt shows them (masked names with mask.names)
    name_map: str | None = None  # MaskMap JSON, with mask.names


def row_prompt(query: Any, tools_cell: Any, prompt_format: str, mask_rng: random.Random | None = None) -> RowPrompt:
    """Pure: one input row -> the chat messages to send, or why the row cannot be labeled.
    mask_rng: prompt with function and parameter names masked (mask.names)."""
    try:
        if query is None:
            raise BadInput("missing_query", "query is null")
        if isinstance(query, bytes):
            try:
                query = query.decode("utf-8")
            except UnicodeDecodeError as e:
                raise BadInput("query_not_utf8", str(e)) from None
        if not isinstance(query, str):
            raise BadInput("query_not_string", f"query is a {type(query).__name__}")
        if not query.strip():
            raise BadInput("empty_query", "query is empty")
        untrusted.check_text(query)
        if not isinstance(tools_cell, (str, bytes)):
            tools_cell = plain_cell(tools_cell)
        tools = prompt_tools = load_tools(tools_cell)
        name_map = None
        if mask_rng is not None:
            _, prompt_tools, _, mapping = mask_row(query, tools, None, mask_rng, defaults=False, shuffle=False)
            name_map = mapping.to_json()
        prompt = build_prompt(prompt_format, query, prompt_tools)
    except BadInput as e:
        return RowPrompt(None, None, None, e)
    except UntrustedValue as e:  # the query's text, or its JSON messages
        return RowPrompt(None, None, None, BadInput(e.code, f"query: {e.reason.detail}"))
    return RowPrompt(prompt, tools, prompt_text(prompt.messages), None, prompt_tools, name_map)


@dataclass
class PromptColumns:
    """One row's prompt-stage columns."""
    prompt: Prompt | None
    status: str | None  # why it stops before the engine (bad_input, prompt_too_long, row_error), or None
    errors: list[str]
    user_message: str | None = None
    canonical_tools: str | None = None
    call_schema: str | None = None
    name_map: str | None = None
    messages: str | None = None
    tools_request: str | None = None


class PromptStage:
    """CPU actor: Hammer user message -> chat template -> token ids, for a batch of rows.

    Without a tokenizer (re-validation, dry runs without one) it builds the messages and canonical
    tools only, and the token columns stay empty.
    """

    CONTRACT = Contract("PromptStage", ("query", "tools"), {  # and reads `id` with mask_names: the row's draws
        USER_MESSAGE_COL: pa.string(), TOOLS_COL: pa.string(), EARLY_STATUS_COL: pa.string(),
        EARLY_ERRORS_COL: pa.list_(pa.string()), PROMPT_TOKENS_COL: pa.list_(pa.int32()),
        PROMPT_TOKEN_COUNT_COL: pa.int32(), CALL_SCHEMA_COL: pa.string(), NAME_MAP_COL: pa.string(),
        MESSAGES_COL: pa.string(), TOOLS_REQUEST_COL: pa.string()})

    def __init__(self, tokenizer_source: str | None, prompt_format: str, max_prompt_tokens: int,
                 trust_remote_code: bool, constrained: bool = False, mask_names: bool = False, seed: int = 0,
                 messages: bool = False, row_time_budget_s: float | None = None):
        from pipelines.models import load_tokenizer

        self.tokenizer = (PromptTokenizer(load_tokenizer(tokenizer_source, trust_remote_code)) if tokenizer_source
                          else None)
        self.prompt_format = prompt_format
        self.max_prompt_tokens = max_prompt_tokens
        self.constrained = constrained
        self.mask_names = mask_names
        self.seed = seed
        self.messages = messages  # the chat messages too, for an engine that applies the template itself
        self.row_time_budget_s = row_time_budget_s

    def _row(self, query: Any, tools_cell: Any, row_id: Any) -> PromptColumns:
        """One row's columns but its tokens (pure, guarded by the caller)."""
        rng = row_rng(self.seed, row_id, NAME_MASK) if self.mask_names else None
        p = row_prompt(query, tools_cell, self.prompt_format, rng)
        if p.error is not None:
            return PromptColumns(None, BAD_INPUT, [str(p.error.reason)])
        return PromptColumns(
            p.prompt, None, [], user_message=p.user_message, name_map=p.name_map,
            canonical_tools=json.dumps([t.to_dict() for t in p.tools], allow_nan=False),
            call_schema=json.dumps(calls_schema(p.prompt_tools), allow_nan=False) if self.constrained else None,
            messages=json.dumps(p.prompt.messages) if self.messages else None,
            tools_request=json.dumps(p.prompt.tools) if self.messages and p.prompt.tools is not None else None)

    def _tokenize(self, prompts: list[Prompt]) -> list[list[int] | Reason]:
        """Token ids per prompt, in one call; a prompt the tokenizer fails on fails alone (its reason)."""
        batch, failed = guard_row(lambda: self.tokenizer(prompts), self.row_time_budget_s and
                                  self.row_time_budget_s * len(prompts))
        if failed is None:
            return batch
        return [ids if why is None else why for ids, why in
                (guard_row(lambda p=p: self.tokenizer([p])[0], self.row_time_budget_s) for p in prompts)]

    def __call__(self, batch: pa.Table) -> pa.Table:
        contract = self.CONTRACT.with_reads("id") if self.mask_names else self.CONTRACT
        contract.check_in(batch)
        ids = batch.column("id").to_pylist() if self.mask_names else [None] * batch.num_rows
        rows = []
        for query, tools, row_id in zip(batch.column("query").to_pylist(), batch.column("tools").to_pylist(), ids):
            row, failed = guard_row(lambda: self._row(query, tools, row_id), self.row_time_budget_s)
            rows.append(row if failed is None else PromptColumns(None, ROW_ERROR, [str(failed)]))
        ok = [i for i, r in enumerate(rows) if r.status is None] if self.tokenizer else []
        tokens: list[list[int]] = [[] for _ in rows]
        counts: list[int | None] = [None] * len(rows)
        for i, ids_or_reason in zip(ok, self._tokenize([rows[i].prompt for i in ok]) if ok else []):
            row = rows[i]
            if isinstance(ids_or_reason, Reason):
                row.status, row.errors = ROW_ERROR, [str(ids_or_reason)]
                continue
            counts[i] = len(ids_or_reason) or None
            long = too_long(ids_or_reason, self.max_prompt_tokens)
            if long:
                row.status, row.errors = PROMPT_TOO_LONG, [str(long)]
            else:
                tokens[i] = ids_or_reason
        going = [r.status is None for r in rows]  # to the engine: what only the engine reads goes with these
        new = {
            USER_MESSAGE_COL: [r.user_message for r in rows],
            TOOLS_COL: [r.canonical_tools for r in rows],
            EARLY_STATUS_COL: [r.status for r in rows],
            EARLY_ERRORS_COL: [r.errors for r in rows],
            PROMPT_TOKENS_COL: tokens,
            PROMPT_TOKEN_COUNT_COL: counts,
            CALL_SCHEMA_COL: [r.call_schema for r in rows],
            NAME_MAP_COL: [r.name_map for r in rows],
            MESSAGES_COL: [r.messages if g else None for r, g in zip(rows, going)],
            TOOLS_REQUEST_COL: [r.tools_request if g else None for r, g in zip(rows, going)],
        }
        for name, values in new.items():
            batch = set_column(batch, name, pa.array(values, self.CONTRACT.writes[name]))
        contract.check_out(batch)
        # Rows whose prompts share a prefix (the same tool set) go to the engine one after another:
        # where the KV cache cannot hold every tool set, vLLM's prefix cache then hits more
        # (docs/performance.md, "Prefix caching": +22% rows/s with a tight cache).
        shared_prefix = [r.prompt.shared_prefix if r.prompt else () for r in rows]
        return batch.take(sorted(range(batch.num_rows), key=shared_prefix.__getitem__))


# --------------------------------------------------------------------------------- annotate


def annotate_reads(mode: Mode) -> tuple[str, ...]:
    """The columns annotate_batch reads besides the input's: where a row's text comes from depends on the mode."""
    common = (TOOLS_COL, EARLY_STATUS_COL, EARLY_ERRORS_COL, USER_MESSAGE_COL, PROMPT_TOKEN_COUNT_COL, NAME_MAP_COL,
              SHARD_COL, ROW_COL)
    return common + {Mode.GENERATE: (ENGINE_TEXT_COL, ENGINE_ERROR_COL, ENGINE_TOKENS_COL, ENGINE_FINISH_COL,
                                     ENGINE_SAMPLES_COL, ENGINE_SAMPLE_FINISH_COL, ENGINE_SAMPLE_ERROR_COL,
                                     ENGINE_LOGPROBS_COL, ENGINE_PROMPT_TOKENS_COL),
                     Mode.REVALIDATE: ("raw_output",), Mode.DRY_RUN: ()}[mode]

# The confidence columns a re-validation takes from its input when there (it has no engine to ask).
LOGPROB_COLUMNS = {f.name: f"{f.name}_logprob" for f in fields(LogprobStats)}


def annotate_row(row: dict, *, mode: Mode, validation: ValidationConfig, scoring: ScoringConfig | None = None,
                 samples: int = 0) -> dict:
    """Pure: one row after generation -> its judged columns: parsed and validated calls, status,
    reasons, call type, the confidence (samples, agreement, consensus, log-probabilities), and the
    score against gold `answers` when the row has them (by `scoring.rules`, with the row's `bfcl_category`).

    mode: where the text is: the engine's (generate), the input's `raw_output` and `sample_outputs`
    columns (revalidate), or nowhere (dry_run: nothing to judge).
    samples: the sampled outputs asked of the engine per row (generation.samples - 1).
    """
    early = row.get(EARLY_STATUS_COL)
    tools = [Tool.from_dict(d) for d in json.loads(row[TOOLS_COL])] if row.get(TOOLS_COL) else None
    out = {"raw_output": None, "calls": None, "errors": [], "flags": [], "call_type": "none", "num_output_tokens": None,
           # without a tokenizer, re-validation keeps the count the labeling run wrote, and an endpoint's
           # rows take the count its server gave
           "num_prompt_tokens": (row.get("num_prompt_tokens") if mode == Mode.REVALIDATE
                                 else row.get(PROMPT_TOKEN_COUNT_COL) or row.get(ENGINE_PROMPT_TOKENS_COL)),
           # set by mask.names, or carried in by a re-validated output
           "name_map": row.get("name_map" if mode == Mode.REVALIDATE else NAME_MAP_COL),
           "finish_reason": None, "sample_outputs": None, "sample_statuses": None, "sample_finish_reasons": None,
           "agreement": None, "consensus_calls": None,
           "consensus_share": None, **dict.fromkeys(LOGPROB_COLUMNS.values())}
    reasons: list[Reason] = [Reason.parse(e) for e in row.get(EARLY_ERRORS_COL) or []]
    text = parsed_calls = None
    if early:
        out["status"] = early
    elif mode == Mode.DRY_RUN:
        out["status"] = DRY_RUN
    elif mode == Mode.GENERATE and row.get(ENGINE_ERROR_COL):
        out["status"] = ENGINE_ERROR
        reasons = [Reason(ENGINE_ERROR, row[ENGINE_ERROR_COL])]
    else:
        text = row.get(ENGINE_TEXT_COL) if mode == Mode.GENERATE else row.get("raw_output")
        if text is None:
            out["status"] = BAD_INPUT
            reasons = [Reason("missing_raw_output", "raw_output is null")]
    if text is not None:
        name_map = out["name_map"]
        unmask = functools.partial(unmask_calls, mapping=MaskMap.from_json(name_map)) if name_map else None
        label = label_output(text, tools, row.get("query") or "", validation, unmask)
        parsed_calls, reasons, flags = label.calls, label.errors, label.flags
        generated = mode == Mode.GENERATE
        tokens = row.get(ENGINE_TOKENS_COL if generated else "num_output_tokens")
        finish = row.get(ENGINE_FINISH_COL if generated else "finish_reason")
        cut = truncation(finish, tokens)
        if cut and label.status in (OK, NO_CALL):  # complete calls before the cut: a usable label, flagged
            flags = [*flags, cut]
        elif cut:  # the cut is why the text does not parse or validate: said first
            reasons = [cut, *reasons]
        out.update(raw_output=text, status=label.status, flags=[str(f) for f in flags], call_type=label.call_type,
                   num_output_tokens=tokens, finish_reason=finish,
                   sample_finish_reasons=row.get(ENGINE_SAMPLE_FINISH_COL if generated else "sample_finish_reasons"))
        out["calls"] = written_calls(parsed_calls)
        out.update(_confidence(row, mode, samples, (label.status, parsed_calls), tools, validation, unmask))
    score = score_row(out["status"], parsed_calls, reasons, row.get("answers"), tools,
                      rules=(scoring or ScoringConfig()).rules, category=row.get(CATEGORY_COLUMN))
    out.update(errors=[str(r) for r in reasons], correct=score.correct,
               mismatch=str(score.mismatch) if score.mismatch else None, gold_call_type=score.gold_call_type,
               gold_errors=[str(r) for r in score.gold_errors], scoring_rules=score.rules)
    return out


def _confidence(row: dict, mode: Mode, samples: int, label: tuple, tools, validation, unmask) -> dict:
    """A generated row's sampled outputs judged like its label, their agreement and consensus, and
    its log-probabilities (a re-validation judges the input's samples and keeps its log-probabilities)."""
    if mode == Mode.GENERATE:
        texts, failed = row.get(ENGINE_SAMPLES_COL), row.get(ENGINE_SAMPLE_ERROR_COL)
        stats = row.get(ENGINE_LOGPROBS_COL) or {}
        out = {column: stats.get(key) for key, column in LOGPROB_COLUMNS.items()}
    else:
        texts, failed = row.get("sample_outputs"), None
        out = {column: row.get(column) for column in LOGPROB_COLUMNS.values()}
    if failed:  # the row's sampled request failed in the engine: its samples count as disagreeing
        judged = [(ENGINE_ERROR, None)] * samples
        statuses = [str(Reason(ENGINE_ERROR, failed))] * samples
    elif texts is not None:
        labels = [label_output(t, tools, row.get("query") or "", validation, unmask) for t in texts]
        judged = [(s.status, s.calls) for s in labels]
        statuses = [s.status for s in labels]
    else:
        return out
    result = confidence(label, judged, tools or [])
    return {**out, "sample_outputs": texts, "sample_statuses": statuses, "agreement": result.agreement,
            "consensus_calls": written_calls(result.consensus_calls), "consensus_share": result.consensus_share}


def annotate_batch(batch: pa.Table, *, input_schema: pa.Schema, lineage: dict, mode: Mode,
                   validation: ValidationConfig, scoring: ScoringConfig | None = None, samples: int = 0,
                   row_time_budget_s: float | None = None) -> pa.Table:
    """Judges a batch (annotate_row, one guard per row: run/stages.shape_rows) and shapes it to the
    output schema: input columns, then the added ones, then the shard and row that say where each came from."""
    schema = output_schema(input_schema).append(pa.field(SHARD_COL, pa.string())).append(pa.field(ROW_COL, pa.int64()))
    contract = Contract("annotate_batch", (*input_schema.names, *annotate_reads(mode)),
                        {f.name: f.type for f in schema if f.name not in input_schema.names})

    def shaped(row: dict, added: dict) -> dict:
        out = {name: row.get(name) for name in input_schema.names}
        out.update(prompt=row.get(USER_MESSAGE_COL), **added, **lineage)
        out.update({SHARD_COL: row[SHARD_COL], ROW_COL: row[ROW_COL]})
        return out

    def failed(row: dict, reason: Reason) -> dict:
        """The row as the job could not judge it: its input, its status and why (run/guard.py)."""
        added = dict.fromkeys(ADDED_COLUMNS)
        added.update(status=ROW_ERROR, errors=[str(reason)], flags=[], gold_errors=[], call_type="none")
        return {**shaped(row, added), "prompt": None}

    def annotated(row: dict) -> dict:
        return shaped(row, annotate_row(row, mode=mode, validation=validation, scoring=scoring, samples=samples))

    return shape_rows(batch, contract, schema, annotated, failed, row_time_budget_s)
