"""The GPU benchmark: this job against bare vLLM on the same rows, model and engine settings, on a
GPU node. rows/s and prompt/output tokens/s at the margin between two sizes, GPU utilization and
memory sampled through NVML, wall times and memory, written as JSON (bench/contenders.py does the work).

    python bench/gpu.py --model /models/Hammer-7b --out docs/bench/gpu-h100.json
    python bench/gpu.py --model /models/Hammer-7b --job-set engine.max_num_seqs=1024   # compare settings

Defaults: conf=prod's engine settings (sized for an H100 and a 7B, docs/gpu.md) with one replica,
2,000 and 8,000 rows, 64 output tokens, 2 repeats. Without a GPU (as in the tests) pass --conf local
and the tiny model: the same path on vLLM's CPU build. docs/performance.md says what the paper
ceiling predicts for an H100.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import contenders  # noqa: E402

GPU_DEFAULTS = ["--conf", "prod", "--contenders", "job,vllm", "--rows", "2000,8000", "--max-tokens", "64",
                "--repeats", "2", "--job-set", "engine.replicas=1", "--job-set", "prompt.concurrency=2"]


def main(argv: list[str]) -> dict:
    # Later flags win in argparse, so the user's arguments override the defaults.
    return contenders.main(GPU_DEFAULTS + argv)


if __name__ == "__main__":
    if "--model" not in sys.argv[1:] and not any(a.startswith("--model=") for a in sys.argv[1:]):
        sys.exit("bench/gpu.py: --model PATH (a Hammer checkpoint on this node) is required")
    main(sys.argv[1:])
