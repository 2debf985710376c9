"""What every vLLM process of the job does when vLLM loads its plugins: record the settings each
engine was really built with, and end with the process that started it.

`setup_engine_process` is a vLLM general plugin (entry point `vllm.general_plugins` in
pyproject.toml; vLLM loads it in every process that builds engine arguments, in each EngineCore
process (vllm/v1/engine/core.py) and in each worker (vllm/v1/worker/worker_base.py)).

Recording: `record_engine_config` wraps vLLM's
AsyncLLM constructor so that each engine prints the settings it was really built with (the
`VllmConfig`, after vLLM filled in its defaults) and, when HAMMER_ENGINE_RECORD_DIR is set, writes
them there as JSON and adds a stat logger that records what the engine did step by step
(stats.py: KV-cache use, preemptions, idle time; what bench/gpu.py reports). ray.data.llm gives no handle on its engine, and Ray honours a
`worker_process_setup_hook` only for a whole job, not for one stage's actors; this is how a run
(and the tests) see that every setting arrived.
"""

from __future__ import annotations

import enum
import functools
import json
import multiprocessing
import os
import signal
import threading
from typing import Any

from pipelines.engines.vllm.keys import RECORD_DIR_ENV

# The parts of vLLM's VllmConfig that hold what engine_kwargs set.
RECORDED_CONFIGS = ("model_config", "cache_config", "scheduler_config", "parallel_config",
                    "structured_outputs_config", "load_config",
                    # torch.compile and CUDA graphs (mode, cudagraph_mode, capture sizes): what a GPU log must confirm
                    "compilation_config")


def setup_engine_process() -> None:
    """The vLLM plugin: both duties below."""
    record_engine_config()
    die_with_parent()


# Dying with the parent: an engine actor killed by the OOM killer or SIGKILL runs no cleanup, and
# vLLM 0.29's EngineCore process does not watch the process that started it (its busy loop ends on
# SIGTERM/SIGINT or a shutdown request only; its workers do watch it, through a death pipe). Left
# alone it keeps its GPU memory, and the actor's replacement then fails vLLM's free-memory check.
# A watcher thread here, in every process that multiprocessing started (EngineCore, workers), kills
# the process once its parent is gone. Polling the parent pid rather than PR_SET_PDEATHSIG: the
# death signal fires when the parent *thread* that started the child exits, and Ray runs an actor's
# calls on threads of its own.
PARENT_POLL_S = 0.5
_watching = False


def die_with_parent() -> None:
    """In a process that multiprocessing started: end it (SIGKILL) when its parent is gone."""
    global _watching
    if _watching or multiprocessing.parent_process() is None:
        return
    _watching = True
    parent = os.getppid()

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(PARENT_POLL_S):
            if os.getppid() != parent:  # re-parented: the process that started this one has died
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="hammer-die-with-parent", daemon=True).start()


def record_engine_config() -> None:
    """Each engine prints (and records) its settings (see the module's docstring); idempotent."""
    from vllm.v1.engine.async_llm import AsyncLLM

    if getattr(AsyncLLM.__init__, "_records_config", False):
        return
    build = AsyncLLM.__init__

    @functools.wraps(build)
    def init(self, vllm_config, *args, **kwargs):
        record = flatten_vllm_config(vllm_config)
        print("engine settings: " + " ".join(f"{k}={record.get(k)}" for k in SUMMARY_KEYS), flush=True)
        directory = os.environ.get(RECORD_DIR_ENV)
        if directory:
            from pipelines.engines.vllm.stats import stats_logger_class

            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, f"engine-{os.getpid()}.json"), "w") as f:
                json.dump(record, f, indent=1, sort_keys=True, default=str)
            kwargs["stat_loggers"] = [*(kwargs.get("stat_loggers") or []), stats_logger_class()]
        build(self, vllm_config, *args, **kwargs)

    init._records_config = True
    AsyncLLM.__init__ = init


# What the engine's one-line record shows in the job's log.
SUMMARY_KEYS = ("scheduler_config.max_num_seqs", "scheduler_config.max_num_batched_tokens",
                "model_config.max_model_len", "model_config.dtype", "cache_config.enable_prefix_caching",
                "cache_config.gpu_memory_utilization", "parallel_config.tensor_parallel_size",
                "structured_outputs_config.backend", "model_config.enforce_eager", "compilation_config.mode",
                "compilation_config.cudagraph_mode")


def flatten_vllm_config(vllm_config) -> dict[str, Any]:
    """`{"scheduler_config.max_num_seqs": 128, ...}`: the plain-valued fields of the parts that
    engine_kwargs set."""
    import torch

    record = {}
    for part in RECORDED_CONFIGS:
        section = getattr(vllm_config, part, None)
        for name, value in (vars(section) if hasattr(section, "__dict__") else {}).items():
            if name.startswith("_"):
                continue
            if isinstance(value, enum.Enum):  # e.g. compilation_config.cudagraph_mode, mode
                value = value.name
            elif isinstance(value, torch.dtype):  # model_config.dtype, as resolved from "auto"
                value = str(value).removeprefix("torch.")
            if value is None or isinstance(value, (bool, int, float, str)):
                record[f"{part}.{name}"] = value
            elif isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
                record[f"{part}.{name}"] = list(value)  # e.g. cudagraph_capture_sizes
    return record
