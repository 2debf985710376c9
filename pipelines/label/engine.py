"""The engine stage: vLLM through ray.data.llm, token ids in, text out.

Its settings are assembled in one place (`engine_settings`) and handed over whole: the pydantic
processor config copies the dicts it is given, so anything added afterwards never reaches vLLM.

The engines record the settings they were built with: see engine_plugin.py.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from pipelines.label import config as cfg
from pipelines.label import stages
from pipelines.label.engine_plugin import RECORD_DIR_ENV


@dataclass(frozen=True)
class EngineSettings:
    engine_kwargs: dict[str, Any]  # exactly what vLLM's AsyncEngineArgs receive
    sampling_params: dict[str, Any]
    placement_group_config: dict | None


def engine_settings(config: cfg.LabelConfig) -> EngineSettings:
    """Every engine setting of a run, from its config; `engine.engine_kwargs` win over the keys above them."""
    engine, generation = config.engine, config.generation
    kwargs: dict[str, Any] = {
        "max_model_len": generation.max_model_len,
        "enable_prefix_caching": engine.enable_prefix_caching,
        "gpu_memory_utilization": engine.gpu_memory_utilization,
        "tensor_parallel_size": engine.tensor_parallel_size,
        "trust_remote_code": config.model.trust_remote_code,
    }
    # Unset, ray.data.llm's engine gets vLLM's defaults for its context: 128 sequences and 2,048
    # tokens per step on any GPU (docs/gpu.md).
    if engine.max_num_seqs is not None:
        kwargs["max_num_seqs"] = engine.max_num_seqs
    if engine.max_num_batched_tokens is not None:
        kwargs["max_num_batched_tokens"] = engine.max_num_batched_tokens
    if generation.constrained and engine.structured_outputs_backend:
        kwargs["structured_outputs_config"] = {"backend": engine.structured_outputs_backend}
    kwargs.update(engine.engine_kwargs)
    # ray.data.llm asks for one GPU (and CPU) per engine worker unless given the bundle to ask for.
    placement = None
    if engine.device == "cpu":
        placement = {"bundle_per_worker": {"CPU": engine.cpus_per_replica, **engine.resources}}
    elif engine.resources:
        placement = {"bundle_per_worker": {"GPU": 1, "CPU": 1, **engine.resources}}
    sampling = {"temperature": generation.temperature, "max_tokens": generation.max_tokens}
    return EngineSettings(kwargs, sampling, placement)


def engine_processor(config: cfg.LabelConfig, model: str):
    """The ray.data.llm vLLM processor: token ids in, text out; its own template/tokenize stages off."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    settings = engine_settings(config)
    engine = config.engine
    processor_config = vLLMEngineProcessorConfig(
        model_source=model,
        engine_kwargs=settings.engine_kwargs,
        batch_size=engine.batch_size,
        concurrency=(engine.replicas, engine.replicas),
        max_concurrent_batches=engine.max_concurrent_batches,
        accelerator_type=engine.accelerator_type,
        placement_group_config=settings.placement_group_config,
        runtime_env=engine_runtime_env(),
        should_continue_on_error=True,
        chat_template_stage=False,
        tokenize_stage=False,
        detokenize_stage=False,
        log_engine_metrics=engine.log_metrics,
    )
    request = functools.partial(stages.engine_request, sampling_params=settings.sampling_params)
    return build_processor(processor_config, preprocess=request)


def engine_runtime_env() -> dict | None:
    """The engine actors' runtime environment: the record folder when the driver has one (the
    driver's environment does not reach actors on other nodes)."""
    return {"env_vars": {RECORD_DIR_ENV: os.environ[RECORD_DIR_ENV]}} if os.environ.get(RECORD_DIR_ENV) else None
