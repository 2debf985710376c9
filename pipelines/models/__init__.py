"""Where the model comes from: a model the job builds (`built:NAME`), a local directory, a model id,
or an s3:// prefix. (The model a pool labels with, an endpoint's served name included, is its engine
kind's: pipelines.engines.model_name.)"""

from __future__ import annotations

import json
import os

from pipelines.config import ConfigError
from pipelines.models.built import BuildError, built_name, ensure_built

REMOTE_PREFIXES = ("s3://", "gs://")


def resolve_model(model, key: str = "model.source") -> str:
    """Driver side: a built model is built (once) and becomes its folder; local paths become absolute.
    model: a config's `model` part (its `source`).
    key: the config key of the source, for messages (the judge's is judge.model.source)."""
    source = model.source
    name = built_name(source)
    if name is not None:
        try:
            return ensure_built(name)
        except BuildError as e:
            raise ConfigError(f"{key} {source!r}: {e}") from None
    if source.startswith(REMOTE_PREFIXES):
        return source  # ray.data.llm downloads it on each engine node
    if os.path.isdir(source):
        return os.path.abspath(source)
    if source.startswith((".", "/", "~")):
        raise ConfigError(f"{key} {source!r}: no such directory (a model id looks like org/name)")
    return source  # a model id, fetched from the hub by vLLM and transformers


def load_model_config(source: str, trust_remote_code: bool = False) -> dict:
    """The `config.json` of a resolved model source (remote sources fetch the small files only)."""
    source = _small_files(source)
    if os.path.isdir(source):
        path = os.path.join(source, "config.json")
        if not os.path.isfile(path):
            raise ValueError(f"{source} has no config.json: not a transformers checkpoint folder")
        with open(path) as f:
            return json.load(f)
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code).to_dict()


def _small_files(source: str) -> str:
    """A local folder with the config and tokenizer files of an s3:// or gs:// model, else the source."""
    if not source.startswith(REMOTE_PREFIXES):
        return source
    from ray.llm._internal.common.utils.download_utils import NodeModelDownloadable, download_model_files

    return download_model_files(model_id=source, download_model=NodeModelDownloadable.TOKENIZER_ONLY)


def load_tokenizer(source: str, trust_remote_code: bool = False):
    """Tokenizer of a resolved model source; remote sources fetch the tokenizer files only."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_small_files(source), trust_remote_code=trust_remote_code)


def tools_template_problem(tokenizer) -> str | None:
    """Why this tokenizer's chat template cannot take a row's tools (prompt.format=chat_template), or None."""
    from pipelines.core.prompts import TOOLS_PROBE, TOOLS_PROBE_MESSAGES, shows_tools

    if not getattr(tokenizer, "chat_template", None):
        return "it has no chat template"
    try:
        rendered = tokenizer.apply_chat_template(TOOLS_PROBE_MESSAGES, tools=[TOOLS_PROBE], tokenize=False,
                                                 add_generation_prompt=True)
    except Exception as e:  # noqa: BLE001 - a Jinja template can raise anything
        return f"its chat template fails when given tools ({type(e).__name__}: {e})"
    return None if shows_tools(rendered) else "its chat template ignores tools (a probe tool does not appear in the prompt)"
