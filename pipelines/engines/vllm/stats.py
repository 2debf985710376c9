"""What each engine did, step by step: how full its KV cache and its batch ran, how many requests
it preempted, how often it had room but nothing waiting, and how long it sat idle. These say
whether `engine.max_num_seqs`, `engine.batch_size` and `engine.max_concurrent_batches` fit the GPU
and the rows (docs/gpu.md, "Reading bench/gpu.py"):

- KV cache near full with preemptions: max_num_seqs (or max_num_batched_tokens) too high for the
  KV budget; vLLM evicts requests and recomputes them.
- KV cache far from full while the batch runs at max_num_seqs: max_num_seqs too low for this GPU.
- Steps with room and nothing waiting, or idle time: the engine is short of rows (stragglers hold
  whole batches, docs/gpu.md "Rows in flight"): raise max_concurrent_batches or lower batch_size.

vLLM hands every engine step's scheduler and iteration stats to its stat loggers
(vllm/v1/metrics/loggers.py, StatLoggerBase); the job's vLLM plugin (plugin.py) adds
`EngineStatsLogger` to each engine when HAMMER_ENGINE_RECORD_DIR is set, and it writes
`stats-<pid>.json` there about once a second and when the process exits.
"""

from __future__ import annotations

import atexit
import json
import os
import statistics
import time
from dataclasses import dataclass, field

from pipelines.engines.vllm.keys import RECORD_DIR_ENV

STATS_FILE_PREFIX = "stats-"
WRITE_EVERY_S = 1.0
# A gap between two steps counts as idle past this many median steps (and never below MIN_IDLE_GAP_S):
# a step takes milliseconds to a few hundred on a GPU, more on the CPU; a gap that long is an engine
# with nothing to run.
IDLE_GAP_STEPS = 10
MIN_IDLE_GAP_S = 0.5


@dataclass
class EngineSteps:
    """The running totals of one engine's steps (pure: fed by the logger below, or by a test)."""
    max_num_seqs: int
    steps: int = 0
    kv_usage_sum: float = 0.0
    kv_usage_max: float = 0.0
    preemptions: int = 0
    running_sum: int = 0
    running_max: int = 0
    starved_steps: int = 0  # room for more requests and none waiting
    step_times: list[float] = field(default_factory=list)  # monotonic seconds

    def add(self, at: float, *, kv_usage: float, running: int, waiting: int, preempted: int) -> None:
        self.steps += 1
        self.kv_usage_sum += kv_usage
        self.kv_usage_max = max(self.kv_usage_max, kv_usage)
        self.preemptions += preempted
        self.running_sum += running
        self.running_max = max(self.running_max, running)
        self.starved_steps += running < self.max_num_seqs and waiting == 0
        self.step_times.append(at)

    def to_dict(self) -> dict:
        gaps = [b - a for a, b in zip(self.step_times, self.step_times[1:])]
        idle_gap = max(MIN_IDLE_GAP_S, IDLE_GAP_STEPS * statistics.median(gaps)) if gaps else MIN_IDLE_GAP_S
        steps = max(self.steps, 1)
        return {
            "steps": self.steps, "max_num_seqs": self.max_num_seqs,
            "kv_cache_usage_max": round(self.kv_usage_max, 4), "kv_cache_usage_mean": round(self.kv_usage_sum / steps, 4),
            "preemptions": self.preemptions,
            "running_max": self.running_max, "running_mean": round(self.running_sum / steps, 2),
            "starved_step_share": round(self.starved_steps / steps, 4),
            "active_s": round(self.step_times[-1] - self.step_times[0], 3) if self.step_times else 0.0,
            "idle_s": round(sum(g for g in gaps if g > idle_gap), 3), "idle_gap_s": round(idle_gap, 3),
        }


def stats_logger_class():
    """vLLM's stat logger interface, implemented: a class built on first use (vLLM is imported in
    engine processes only)."""
    from vllm.v1.metrics.loggers import StatLoggerBase

    class EngineStatsLogger(StatLoggerBase):
        def __init__(self, vllm_config, engine_index: int = 0):
            self.steps = EngineSteps(max_num_seqs=vllm_config.scheduler_config.max_num_seqs)
            directory = os.environ[RECORD_DIR_ENV]
            suffix = f"-{engine_index}" if engine_index else ""
            self.path = os.path.join(directory, f"{STATS_FILE_PREFIX}{os.getpid()}{suffix}.json")
            self.written_at = 0.0
            atexit.register(self.write)

        def record(self, scheduler_stats, iteration_stats, mm_cache_stats=None, engine_idx: int = 0):
            preempted = iteration_stats.num_preempted_reqs if iteration_stats else 0
            if scheduler_stats is None:  # outputs without a step's scheduler stats
                self.steps.preemptions += preempted
                return
            now = time.monotonic()
            self.steps.add(now, kv_usage=scheduler_stats.kv_cache_usage, running=scheduler_stats.num_running_reqs,
                           waiting=scheduler_stats.num_waiting_reqs, preempted=preempted)
            if now - self.written_at >= WRITE_EVERY_S:
                self.write()

        def log_engine_initialized(self):
            pass

        def write(self) -> None:
            self.written_at = time.monotonic()
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            partial = f"{self.path}.partial"
            with open(partial, "w") as f:
                json.dump(self.steps.to_dict(), f, indent=1)
            os.replace(partial, self.path)  # a reader never sees half a file

    return EngineStatsLogger
