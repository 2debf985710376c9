"""What each vLLM engine was really built with.

`record_engine_config` is a vLLM general plugin (entry point `vllm.general_plugins` in
pyproject.toml; vLLM loads it in every process that builds engine arguments). It wraps vLLM's
AsyncLLM constructor so that each engine prints the settings it was really built with (the
`VllmConfig`, after vLLM filled in its defaults) and, when HAMMER_ENGINE_RECORD_DIR is set, writes
them there as JSON. ray.data.llm gives no handle on its engine, and Ray honours a
`worker_process_setup_hook` only for a whole job, not for one stage's actors; this is how a run
(and the tests) see that every setting arrived.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

RECORD_DIR_ENV = "HAMMER_ENGINE_RECORD_DIR"
# The parts of vLLM's VllmConfig that hold what engine_kwargs set.
RECORDED_CONFIGS = ("model_config", "cache_config", "scheduler_config", "parallel_config",
                    "structured_outputs_config", "load_config")


def record_engine_config() -> None:
    """The vLLM plugin (see the module's docstring); idempotent."""
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
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, f"engine-{os.getpid()}.json"), "w") as f:
                json.dump(record, f, indent=1, sort_keys=True, default=str)
        build(self, vllm_config, *args, **kwargs)

    init._records_config = True
    AsyncLLM.__init__ = init


# What the engine's one-line record shows in the job's log.
SUMMARY_KEYS = ("scheduler_config.max_num_seqs", "scheduler_config.max_num_batched_tokens",
                "model_config.max_model_len", "cache_config.enable_prefix_caching",
                "cache_config.gpu_memory_utilization", "parallel_config.tensor_parallel_size",
                "structured_outputs_config.backend")


def flatten_vllm_config(vllm_config) -> dict[str, Any]:
    """`{"scheduler_config.max_num_seqs": 128, ...}`: the plain-valued fields of the parts that
    engine_kwargs set."""
    record = {}
    for part in RECORDED_CONFIGS:
        section = getattr(vllm_config, part, None)
        for name, value in vars(section or object()).items():
            if not name.startswith("_") and (value is None or isinstance(value, (bool, int, float, str))):
                record[f"{part}.{name}"] = value
    return record
