"""The column contract: what the job adds to every input row. The writer and the tests use this."""

from __future__ import annotations

import pyarrow as pa

from pipelines.core.reasons import STATUSES

CALL = pa.struct([("name", pa.string()), ("arguments", pa.string())])  # arguments: a JSON object


# name -> (type, meaning); the README's output table is this, in words.
ADDED_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "prompt": (pa.string(), "the Hammer user message, byte for byte (null for bad_input)"),
    "raw_output": (pa.string(), "the model's text (null when not generated)"),
    "calls": (pa.list_(CALL), "parsed calls; arguments as a JSON string (null when unparseable)"),
    "status": (pa.string(), ", ".join(STATUSES)),
    "errors": (pa.list_(pa.string()), "reasons, each `code: detail`"),
    "flags": (pa.list_(pa.string()), "soft warnings that do not make a row invalid, `code: detail`"),
    "call_type": (pa.string(), "single, multiple, parallel, parallel_multiple, none"),
    "correct": (pa.bool_(), "the calls equal the gold `answers` by `scoring_rules` (null without answers)"),
    "mismatch": (pa.string(), "why not correct, `code: detail`"),
    "scoring_rules": (pa.string(), "the rules that gave `correct`: schema or bfcl (the leaderboard's checker)"),
    "gold_call_type": (pa.string(), "single, multiple, parallel, parallel_multiple, irrelevance (from answers)"),
    "gold_errors": (pa.list_(pa.string()), "the gold calls' problems against their own tools, `code: detail`"),
    "finish_reason": (pa.string(), "why the output ended: stop (end of turn) or length (at generation.max_tokens)"),
    "sample_outputs": (pa.list_(pa.string()), "with generation.samples > 1: the sampled outputs' texts"),
    "sample_statuses": (pa.list_(pa.string()), "each sampled output's status"),
    "sample_finish_reasons": (pa.list_(pa.string()), "why each sampled output ended: stop or length"),
    "agreement": (pa.float64(), "share of the sampled outputs whose calls equal the label's"),
    "consensus_calls": (pa.list_(CALL), "the calls a strict majority of all outputs agree on"),
    "consensus_share": (pa.float64(), "the largest group of equal valid outputs, as a share of all outputs"),
    "mean_logprob": (pa.float64(), "with generation.logprobs: mean log-probability of the label's tokens"),
    "min_logprob": (pa.float64(), "the lowest log-probability of the label's tokens"),
    "value_mean_logprob": (pa.float64(), "mean log-probability of the argument values' tokens"),
    "value_min_logprob": (pa.float64(), "the lowest log-probability of the argument values' tokens"),
    "name_map": (pa.string(), "with mask.names: the masked names the prompt used -> the original ones (JSON)"),
    "num_prompt_tokens": (pa.int32(), "prompt tokens after the chat template"),
    "num_output_tokens": (pa.int32(), "generated tokens"),
    "model": (pa.string(), "the resolved model directory or id"),
    "prompt_format": (pa.string(), "the prompt format, e.g. hammer1"),
    "run_id": (pa.string(), "the run that wrote the row"),
    "config_hash": (pa.string(), "fingerprint of the settings that change labels"),
}


def output_schema(input_schema: pa.Schema) -> pa.Schema:
    """Input columns (pass-through, `id` included) followed by the added ones; added names win."""
    fields = [f for f in input_schema if f.name not in ADDED_COLUMNS]
    return pa.schema(fields + [pa.field(name, t) for name, (t, _) in ADDED_COLUMNS.items()])
