"""The engine stage's contract, whatever the engine: the internal columns it reads from the prompt
stage and the ones it writes for the annotator. Every engine kind (vllm/, endpoint/) reads READS
and writes exactly WRITES; the jobs' stages name these columns from here.
"""

from __future__ import annotations

from dataclasses import fields

import pyarrow as pa

from pipelines.contract import Contract
from pipelines.core.confidence import LogprobStats
from pipelines.core.masking import row_rng

EARLY_STATUS_COL = "_early_status"  # set when a row stops before generation: the engine skips it
PROMPT_TOKENS_COL = "_prompt_token_ids"  # the chat-templated prompt's token ids: the in-process engine's input
MESSAGES_COL = "_messages"  # the chat messages as JSON: an endpoint's input (its server applies the template)
TOOLS_REQUEST_COL = "_request_tools"  # with MESSAGES_COL, the OpenAI tools to send (prompt.format=chat_template); may be absent
CALL_SCHEMA_COL = "_call_schema"  # JSON schema of this row's possible outputs, for constrained decoding
ENGINE_TEXT_COL = "_generated_text"  # the label's text
ENGINE_ERROR_COL = "_engine_error"  # the engine's message for a row it failed; null otherwise
ENGINE_TOKENS_COL = "_generated_tokens"  # how many tokens the engine generated
ENGINE_FINISH_COL = "_finish_reason"  # why the engine stopped the label's output: stop (end of turn) or length
ENGINE_SAMPLES_COL = "_sample_texts"  # the sampled outputs (generation.samples > 1)
ENGINE_SAMPLE_FINISH_COL = "_sample_finish_reasons"  # why each sampled output stopped
ENGINE_SAMPLE_ERROR_COL = "_sample_error"  # the engine's message when the row's sampled request failed
ENGINE_LOGPROBS_COL = "_logprob_stats"  # the label's log-probabilities, reduced (generation.logprobs)
ENGINE_PROMPT_TOKENS_COL = "_engine_prompt_tokens"  # the prompt's tokens as a server counted them (endpoint); null in-process

READS = ("id", EARLY_STATUS_COL, CALL_SCHEMA_COL)  # and the kind's prompt column: PROMPT_TOKENS_COL or MESSAGES_COL
LOGPROB_STATS_TYPE = pa.struct([(f.name, pa.float64()) for f in fields(LogprobStats)])
WRITE_TYPES = {ENGINE_TEXT_COL: pa.string(), ENGINE_ERROR_COL: pa.string(), ENGINE_TOKENS_COL: pa.int32(),
               ENGINE_FINISH_COL: pa.string(), ENGINE_SAMPLES_COL: pa.list_(pa.string()),
               ENGINE_SAMPLE_FINISH_COL: pa.list_(pa.string()), ENGINE_SAMPLE_ERROR_COL: pa.string(),
               ENGINE_LOGPROBS_COL: LOGPROB_STATS_TYPE, ENGINE_PROMPT_TOKENS_COL: pa.int32()}
WRITES = tuple(WRITE_TYPES)
# Every kind's contract; a use of it adds the kind's prompt column and the columns carried through.
CONTRACT = Contract("engine", READS, WRITE_TYPES)


def sample_seed(seed: int, row_id: str) -> int:
    """The seed of a row's sampled outputs, from the run's seed and the row's id, for every engine
    kind: a rerun asks for the same draws."""
    return row_rng(seed, row_id, "label-samples").randrange(2**31)
