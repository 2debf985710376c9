"""The GPU benchmark: this job against bare vLLM on the same rows, model and engine settings, on a
GPU node. rows/s and prompt/output tokens/s at the margin between two sizes, GPU utilization and
memory sampled through NVML, wall times and memory, and what the job's engines did step by step (KV-cache
use, preemptions, batch fill, idle time) with what that says of the settings ("settings_check"), written
as JSON (bench/contenders.py does the work).

    python bench/gpu.py --model /models/Hammer-7b --out docs/bench/gpu-h100.json
    python bench/gpu.py --model /models/Hammer-7b --job-set engine.max_num_seqs=1024   # compare settings

Defaults: conf=prod's engine settings (sized for an H100 and a 7B, docs/gpu.md) with one replica,
2,000 and 8,000 rows, 64 output tokens, 2 repeats. Without a GPU (as in the tests) pass --conf local
and the tiny model: the same path on vLLM's CPU build. docs/performance.md says what the paper
ceiling predicts for an H100.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import contenders  # noqa: E402

GPU_DEFAULTS = ["--conf", "prod", "--contenders", "job,vllm", "--rows", "2000,8000", "--max-tokens", "64",
                "--repeats", "2", "--job-set", "engine.replicas=1", "--job-set", "prompt.concurrency=2"]


# When a figure says a setting is off (docs/gpu.md, "Reading bench/gpu.py").
KV_UNDERUSED = 0.5  # a batch held at max_num_seqs with at most half the KV cache in use
STARVED_SHARE = 0.25  # steps with room for more requests and none waiting (a run's start and drain give some)
IDLE_SHARE = 0.1  # of the engine's active time


def settings_check(engine: dict) -> list[str]:
    """What one engine's step figures (pipelines/engines/vllm/stats.py) say of the settings that size it."""
    found = []
    seqs = engine["max_num_seqs"]
    if engine["preemptions"]:
        found.append(f"KV cache too small for the batch: {engine['preemptions']} preemptions (KV cache at most "
                     f"{engine['kv_cache_usage_max']:.0%} full): lower engine.max_num_seqs or max_num_batched_tokens")
    elif engine["running_max"] >= seqs and engine["kv_cache_usage_max"] < KV_UNDERUSED:
        found.append(f"max_num_seqs={seqs} bounds the batch while the KV cache is at most "
                     f"{engine['kv_cache_usage_max']:.0%} full: raise engine.max_num_seqs (toward "
                     f"{int(seqs / max(engine['kv_cache_usage_max'], 0.01))})")
    if engine["starved_step_share"] > STARVED_SHARE:
        found.append(f"short of rows: {engine['starved_step_share']:.0%} of steps had room and nothing waiting "
                     f"(mean {engine['running_mean']} of {seqs} running): raise engine.max_concurrent_batches or "
                     "lower engine.batch_size")
    if engine["active_s"] and engine["idle_s"] > IDLE_SHARE * engine["active_s"]:
        found.append(f"idle {engine['idle_s']:.0f} s of {engine['active_s']:.0f} s between its first and last step")
    return found or [f"settings fit: no preemption, KV cache up to {engine['kv_cache_usage_max']:.0%}, "
                     f"mean {engine['running_mean']} of {seqs} running"]


def main(argv: list[str]) -> dict:
    # Later flags win in argparse, so the user's arguments override the defaults.
    report = contenders.main(GPU_DEFAULTS + argv)
    checks = {}
    for name, result in report["results"].items():
        runs = next((v for k, v in result.items() if k.startswith("engines_")), None)
        if runs:  # the last run at the larger size, engine by engine
            checks[name] = [settings_check(engine) for engine in runs[-1]]
    report["settings_check"] = checks
    for name, engines in checks.items():
        for i, lines in enumerate(engines):
            print(f"{name}, engine {i + 1}: " + "; ".join(lines))
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--out", type=Path)
    out = out.parse_known_args(argv)[0].out
    if out:  # contenders.main wrote it without the check
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    if "--model" not in sys.argv[1:] and not any(a.startswith("--model=") for a in sys.argv[1:]):
        sys.exit("bench/gpu.py: --model PATH (a Hammer checkpoint on this node) is required")
    main(sys.argv[1:])
