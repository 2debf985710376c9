"""The engine stage: vLLM through ray.data.llm, token ids in, text out.

ray.data.llm's row contract (`tokenized_prompt`, `sampling_params`, `__inference_error__`,
`generated_text`, `num_generated_tokens` and the rest of its output) is known here and nowhere else:
`engine_request` maps our columns onto it going in, `engine_response` maps it back to ours
(columns.WRITES) coming out.

Its settings are assembled in one place (`engine_settings`) and handed over whole: the pydantic
processor config copies the dicts it is given, so anything added afterwards never reaches vLLM.

The engines record the settings they were built with: see plugin.py.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipelines.contract import Contract
from pipelines.engines.columns import (CALL_SCHEMA_COL, EARLY_STATUS_COL, ENGINE_ERROR_COL, ENGINE_FINISH_COL,
                                       ENGINE_LOGPROBS_COL, ENGINE_PROMPT_TOKENS_COL, ENGINE_SAMPLE_ERROR_COL,
                                       ENGINE_SAMPLE_FINISH_COL, ENGINE_SAMPLES_COL, ENGINE_TEXT_COL, ENGINE_TOKENS_COL,
                                       CONTRACT, LOGPROB_STATS_TYPE, PROMPT_TOKENS_COL,
                                       sample_seed)
from pipelines.engines.config import COMPACT_BACKENDS, rows_per_block
from pipelines.engines.vllm.keys import (FINISH_REASON, LOGPROB_STATS, RECORD_DIR_ENV, SAMPLE_ERROR,
                                         SAMPLE_FINISH_REASONS, SAMPLE_TEXTS, SAMPLES_KEY)

SKIP_MARK = "skipped: "  # prefix of __inference_error__ for rows kept out of the engine (they stopped early)

@dataclass(frozen=True)
class EngineSettings:
    engine_kwargs: dict[str, Any]  # exactly what vLLM's AsyncEngineArgs receive
    sampling_params: dict[str, Any]  # the label's: greedy
    sample_params: dict[str, Any] | None  # the sampled outputs' (n = samples - 1), None without samples
    placement_group_config: dict | None


def engine_settings(config) -> EngineSettings:
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
    if generation.constrained:
        structured = {"backend": engine.structured_outputs_backend} if engine.structured_outputs_backend else {}
        if not generation.json_whitespace:
            # Compact JSON: fewer tokens for a model that pretty-prints, but also other choices
            # (docs/quality.md, "Compact JSON"). vLLM 0.29 reads it per engine, not per request.
            structured = {"backend": COMPACT_BACKENDS[0], **structured, "disable_any_whitespace": True}
        if structured:
            kwargs["structured_outputs_config"] = structured
    if engine.device == "cpu" and generation.samples > 1:
        # vLLM 0.29's CPU build cannot rewind a seeded request's generator when a chunked prefill
        # discards its sampled token ("CPU Generator does not use offset", and the engine dies):
        # samples are seeded, so prompts are prefilled whole there. CUDA generators rewind.
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = max(kwargs.get("max_num_batched_tokens") or 0, generation.max_model_len)
    kwargs.update(engine.engine_kwargs)
    # ray.data.llm asks for one GPU (and CPU) per engine worker unless given the bundle to ask for.
    placement = None
    if engine.device == "cpu":
        placement = {"bundle_per_worker": {"CPU": engine.cpus_per_replica, **engine.resources}}
    elif engine.resources:
        placement = {"bundle_per_worker": {"GPU": 1, "CPU": 1, **engine.resources}}
    sampling = {"temperature": generation.temperature, "max_tokens": generation.max_tokens}
    if generation.logprobs:
        # 0: the chosen token's log-probability alone. raw_logprobs, on purpose: the model's own
        # distribution, from the logits as they enter the sampler, which under constrained decoding
        # already carry the grammar's mask (docs/output.md, "Log-probabilities").
        sampling["logprobs"] = 0
        kwargs.setdefault("logprobs_mode", "raw_logprobs")
    samples = None
    if generation.samples > 1:
        samples = {"n": generation.samples - 1, "temperature": generation.sample_temperature,
                   "top_p": generation.sample_top_p, "max_tokens": generation.max_tokens}
    return EngineSettings(kwargs, sampling, samples, placement)


# The names ray.data.llm's engine stage reads from a row or writes into it (its optional and
# required input keys, `_prepare_llm_request`'s pops, vLLMOutputData and the stage's own output;
# pinned by tests/engines/test_engine_udf.py). A carried column of one of these names (the `prompt` and
# `model` of a labeling output the judge reads, or a user's input column) would be taken as an
# engine input (`model` as a LoRA adapter) or overwritten: it crosses the engine under another name.
ENGINE_NAMES = frozenset({
    "prompt", "tokenized_prompt", "model", "multimodal_data", "mm_processor_kwargs", "multimodal_uuids",
    "tokenization_kwargs", "sampling_params", "pooling_params", "prompt_token_ids", "num_input_tokens",
    "generated_tokens", "generated_text", "num_generated_tokens", "embeddings", "metrics", "logprobs",
    "prompt_logprobs", "request_id", "batch_uuid", "time_taken_llm", "params", "__inference_error__",
})
SHELTER = "_carried_"  # the prefix a carried column with an engine name crosses the engine under


def generate(ds, config, model: str, keep: list[str], seed: int = 0):
    """The engine stage on a dataset: rows with READS in, the same rows with WRITES out. `keep`: the
    columns to carry through (everything else the engine adds is dropped at its edge).
    config: a config with `model`, `engine` and `generation` (the labeling job's, or the judge job's
    `judge` section); seed: with each row's id, seeds its samples."""
    # An engine's start (a first download of the weights, loading, compiling) yields no rows for a while.
    # Ray Data 2.60 waits for an actor's start without limit and fails a run after 30 minutes without
    # progress: both are engine.start_timeout_s, so a slow first start is waited for and one that never
    # comes (no node can place the engine) fails, naming the operator. Set on the dataset: a dataset
    # runs with the context it was made with.
    start = config.engine.start_timeout_s
    ds.context.wait_for_min_actors_s = int(start)
    ds.context.execution_no_progress_timeout_s = max(ds.context.execution_no_progress_timeout_s, start)
    # Blocks of one actor's rows in flight (engines/config.py, rows_per_block).
    ds = ds.repartition(target_num_rows_per_block=rows_per_block(config.engine))
    sheltered = [c for c in keep if c in ENGINE_NAMES]
    if sheltered:
        ds = ds.map_batches(_rename, batch_format="pyarrow",
                            fn_kwargs={"names": {c: SHELTER + c for c in sheltered}})
    ds = engine_processor(config, model, seed)(ds)
    return ds.map_batches(engine_response, batch_format="pyarrow", fn_kwargs={"keep": keep})


def _rename(batch: pa.Table, names: dict[str, str]) -> pa.Table:
    return batch.rename_columns([names.get(c, c) for c in batch.column_names])


def engine_request(row: dict, sampling_params: dict, sample_params: dict | None = None, seed: int = 0) -> dict:
    """ray.data.llm's preprocess, per row: our columns onto its contract. A row that stopped early is
    marked so that ray.data.llm passes it through without running it (it skips rows whose
    `__inference_error__` is set). A row's samples are seeded from `seed` and its id: a rerun draws
    the same ones."""
    early = row.get(EARLY_STATUS_COL)
    structured = {"structured_outputs": {"json": row[CALL_SCHEMA_COL]}} if row.get(CALL_SCHEMA_COL) and not early else {}
    samples = None
    if sample_params and not early:
        samples = {**sample_params, **structured, "seed": sample_seed(seed, row["id"])}
    return {
        "tokenized_prompt": row[PROMPT_TOKENS_COL],
        PROMPT_TOKENS_COL: None,  # the engine consumes its copy; not carried twice through the stage
        "sampling_params": {**sampling_params, **structured},
        SAMPLES_KEY: samples,
        "__inference_error__": f"{SKIP_MARK}{early}" if early else "",
    }


def engine_response(batch: pa.Table, keep: list[str]) -> pa.Table:
    """ray.data.llm's output back to our columns: the text, the engine's error for a row it failed
    (null for rows it ran, and for rows it skipped because they stopped early), the token count."""
    n = batch.num_rows

    def column(name, type_):
        return batch.column(name) if name in batch.column_names else pa.nulls(n, type_)

    errors = column("__inference_error__", pa.string()).to_pylist()
    texts = column("generated_text", pa.string()).to_pylist()
    failed = [bool(e) and not e.startswith(SKIP_MARK) for e in errors]
    ran = [not e for e in errors]
    carried = [SHELTER + c if c in ENGINE_NAMES else c for c in keep]
    Contract("engine_response", tuple(carried)).check_in(batch)  # what ray.data.llm was asked to carry

    def ran_only(name, type_):
        return pa.array([v if r else None for v, r in zip(column(name, type_).to_pylist(), ran)], type_)

    return CONTRACT.check_out(batch.select(carried).rename_columns(keep).append_column(ENGINE_TEXT_COL, pa.array([t if r else None for t, r in zip(texts, ran)], pa.string()))
            .append_column(ENGINE_ERROR_COL, pa.array([e if f else None for e, f in zip(errors, failed)], pa.string()))
            .append_column(ENGINE_TOKENS_COL, ran_only("num_generated_tokens", pa.int32()))
            .append_column(ENGINE_FINISH_COL, ran_only(FINISH_REASON, pa.string()))
            .append_column(ENGINE_SAMPLES_COL, ran_only(SAMPLE_TEXTS, pa.list_(pa.string())))
            .append_column(ENGINE_SAMPLE_FINISH_COL, ran_only(SAMPLE_FINISH_REASONS, pa.list_(pa.string())))
            .append_column(ENGINE_SAMPLE_ERROR_COL, ran_only(SAMPLE_ERROR, pa.string()))
            .append_column(ENGINE_LOGPROBS_COL, ran_only(LOGPROB_STATS, LOGPROB_STATS_TYPE))
            .append_column(ENGINE_PROMPT_TOKENS_COL, pa.nulls(n, pa.int32())))  # the prompt stage counted them


def engine_processor(config, model: str, seed: int = 0):
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
    request = functools.partial(engine_request, sampling_params=settings.sampling_params,
                                sample_params=settings.sample_params, seed=seed)
    processor = build_processor(processor_config, preprocess=request)
    from pipelines.engines.vllm.udf import SamplingEngineUDF  # imports ray.data.llm's engine stage (and torch)

    # A copy, not an assignment: assigning re-runs the stage's validator, which has already consumed
    # the placement group config and would fall back to asking for a GPU.
    stage = processor.stages["vLLMEngineStage"]
    processor.stages["vLLMEngineStage"] = stage.model_copy(update={"fn": SamplingEngineUDF})
    return processor


def engine_runtime_env() -> dict | None:
    """The engine actors' runtime environment: the record folder when the driver has one (the
    driver's environment does not reach actors on other nodes)."""
    return {"env_vars": {RECORD_DIR_ENV: os.environ[RECORD_DIR_ENV]}} if os.environ.get(RECORD_DIR_ENV) else None
