"""The engine stage, one kind per subpackage: `vllm/` (in-process vLLM actors through ray.data.llm)
and `endpoint/` (an OpenAI-compatible server). Each kind takes the rows of the prompt stage
(columns.READS and its prompt column) and writes columns.WRITES; the jobs call `generate`
and `takes_messages` here and never a kind's module.
"""

from __future__ import annotations

import importlib

from pipelines.engines.columns import MESSAGES_COL, PROMPT_TOKENS_COL, READS, TOOLS_REQUEST_COL, WRITES  # noqa: F401 - the contract

_KINDS = {"vllm": "pipelines.engines.vllm.stage", "endpoint": "pipelines.engines.endpoint.stage"}


def _kind(engine):
    return importlib.import_module(_KINDS[engine.kind])


def takes_messages(engine) -> bool:
    """What the prompt stage must give this engine: chat messages (MESSAGES_COL: an endpoint's server
    applies its own chat template and tokenizes, so no tokenizer loads here), else token ids
    (PROMPT_TOKENS_COL, the in-process engine's)."""
    return engine.kind == "endpoint"


def generate(ds, config, model: str, keep: list[str], seed: int = 0):
    """The engine stage on a dataset: rows with READS in, the same rows with WRITES out; `keep`: the
    columns carried through. config: a config with `model`, `engine` and `generation` (the labeling
    job's, or the judge job's `judge` section); seed: with each row's id, seeds its samples."""
    return _kind(config.engine).generate(ds, config, model, keep, seed)
