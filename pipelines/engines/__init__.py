"""The engine stage, one kind per subpackage: `vllm/` (in-process vLLM actors through ray.data.llm)
and `endpoint/` (an OpenAI-compatible server). Each kind takes the rows of the prompt stage
(columns.READS and its prompt column) and writes columns.WRITES.

A kind is an `EngineKind`, found by its name in one registry (`KINDS`, the values `engine.kind`
takes); the jobs ask `kind_of(engine)` for what a kind does and never import a kind's module, nor
test a kind's name. A new kind is a subpackage whose `__init__` defines `KIND`, and one line here.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from pipelines.engines.columns import MESSAGES_COL, PROMPT_TOKENS_COL, READS, TOOLS_REQUEST_COL, WRITES  # noqa: F401 - the contract

# engine.kind -> the subpackage defining its KIND (imported when a run uses it: a kind's __init__ is light)
KINDS = {"vllm": "pipelines.engines.vllm", "endpoint": "pipelines.engines.endpoint"}


class EngineUnavailable(RuntimeError):
    """The engine cannot be reached at all (a server down past its retries): the run stops, keeping
    what it wrote; a rerun labels the rest. Raised in an engine actor; the command names it in one line."""


class TemplateNotChecked(Exception):
    """The engine's chat template could not be read: the check is reported as not done."""


class EnginePool(Protocol):
    """One engine pool's settings, the one shape both jobs hold: the labeling config at its top level
    (`model.*`, `engine.*`, `generation.*`, `prompt.*`) and the judge's under `judge.*`. The types are
    shared (run/config.py's ModelConfig and GenerationConfig, engines/config.py's EngineConfig); only the
    prompt actors' settings differ by job (its prompt stage's own keys)."""

    model: Any  # run.config.ModelConfig: source, trust_remote_code
    engine: Any  # engines.config.EngineConfig
    generation: Any  # run.config.GenerationConfig (the labeling job's adds samples and their settings)
    prompt: Any  # the prompt actors: concurrency, num_cpus, batch_size, resources


class EngineKind(Protocol):
    """What a kind of engine offers the jobs. `section`: an EnginePool (the labeling config, or the
    judge's `judge`); `prefix` names its keys in messages (`judge.`); `checks`: the preflight's
    pipelines.checklist.Checklist."""

    name: str
    # What the prompt stage must give this engine: chat messages (MESSAGES_COL: a server applies its
    # own chat template and tokenizes, so no tokenizer loads here), else token ids (PROMPT_TOKENS_COL).
    takes_messages: bool

    def parses_calls(self, engine) -> bool:
        """Whether the engine writes calls it parsed itself (a JSON list of calls), not the model's text."""
        ...

    def check_settings(self, engine, generation, prefix: str = "") -> None:
        """The pool's settings alone, at config time; raises ConfigError."""
        ...

    def model_name(self, section: EnginePool, key: str) -> str:
        """The model the rows are labeled with, as their `model` column and the fingerprint name it;
        `key` is model.source's key, for messages. May build or resolve the model (driver side)."""
        ...

    def check_pool(self, section: EnginePool, ray_config, model: str, checks, prefix: str = "",
                   sends_tools: bool = False) -> tuple[dict | None, dict | None]:
        """The preflight's checks of the pool (the engines or the server, and Ray); sends_tools: the
        rows send their tools to the engine (prompt.format=chat_template). Returns the model's
        config.json and the engine node's probe, where the kind has them (for the KV-cache budget)."""
        ...

    def check_model(self, section: EnginePool, model: str, checks, prefix: str = "") -> None:
        """The model loads here, for a run that tokenizes without generating (the kinds that tokenize)."""
        ...

    def check_batching(self, section: EnginePool, checks, prefix: str = "") -> None:
        """Warnings on the rows in flight against what the engine can run at once."""
        ...

    def tools_template_problem(self, section: EnginePool, model: str) -> tuple[str, str | None]:
        """prompt.format=chat_template: (where the template is, why it cannot take a row's tools or None);
        raises TemplateNotChecked when it cannot be read."""
        ...

    def generate(self, ds, section: EnginePool, model: str, keep: list[str], seed: int = 0):
        """The engine stage on a dataset: rows with READS and the kind's prompt column in, the same
        rows with `keep` and WRITES out; seed: with each row's id, seeds its samples."""
        ...


def model_name(section: EnginePool, key: str = "model.source") -> str:
    """The model a pool's rows are labeled with (EngineKind.model_name); key: model.source's key
    (the judge's is judge.model.source)."""
    return kind_of(section.engine).model_name(section, key)


def kind_of(engine) -> EngineKind:
    """The kind of a pool's `engine` settings (engine.kind, checked at config time by check_engine)."""
    return importlib.import_module(KINDS[engine.kind]).KIND
