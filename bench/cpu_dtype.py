"""The engine's dtype and threads on this CPU, for conf=local's choice of float32 (docs/performance.md,
"float32 on a CPU without bf16"): plain vLLM (no Ray, no job code on the generation path) on the first
row of each gold category of the sample, the job's Hammer prompt and call schema, constrained,
max_tokens 160, eager, one sequence at a time. Each setting in a process of its own: the start (vLLM's
import and the engine's) and the generation timed apart, and the texts kept to compare.

    .venv/bin/python bench/cpu_dtype.py --out docs/bench/cpu_dtype.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SETTINGS = [("bfloat16", 1), ("float32", 1), ("float32", 2)]  # (dtype, threads); bfloat16: the model's own
CATEGORIES = ("single", "multiple", "parallel", "parallel_multiple", "irrelevance")


def child(dtype: str) -> dict:
    """One setting, in this process (the parent set OMP_NUM_THREADS)."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from pipelines.core.prompts import build_prompt
    from pipelines.core.tools import calls_schema, load_tools
    from pipelines.models.built import ensure_built

    sample = pq.read_table(REPO / "data" / "sample").to_pylist()
    rows = [next(r for r in sample if r["category"] == c) for c in CATEGORIES]
    llm = LLM(ensure_built("smollm2-135m-instruct"), enforce_eager=True, max_model_len=4096, max_num_seqs=1,
              dtype=dtype)
    ready = time.perf_counter()
    texts = []
    for row in rows:  # one sequence at a time, as the real-model tests run
        tools = load_tools(row["tools"])
        params = SamplingParams(temperature=0.0, max_tokens=160,
                                structured_outputs=StructuredOutputsParams(json=calls_schema(tools)))
        (out,) = llm.chat(build_prompt("hammer1", row["query"], tools).messages, params, use_tqdm=False)
        texts.append(out.outputs[0].text)
    return {"start_s": round(ready - started, 1), "generate_s": round(time.perf_counter() - ready, 1), "texts": texts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    results = []
    for dtype, threads in SETTINGS:
        done = subprocess.run([sys.executable, __file__, "--child", dtype], capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads), "VLLM_CPU_KVCACHE_SPACE": "1"})
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append({"dtype": dtype, "threads": threads, **result})
        print(f"{dtype}, {threads} thread(s): start {result['start_s']} s, generating {result['generate_s']} s")
    texts = results[0]["texts"]
    for r in results[1:]:
        r["rows_equal_to_bfloat16"] = sum(a == b for a, b in zip(r["texts"], texts))
    import torch

    report = {"cpu": platform.processor() or platform.machine(), "avx512_bf16": torch.cpu._is_avx512_bf16_supported(),
              "rows": len(CATEGORIES), "results": results}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
