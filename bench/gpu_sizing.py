"""The GPU sizing table of docs/gpu.md: KV budget and rows at once for the Hammer sizes on common GPUs.

    python bench/gpu_sizing.py            # prints the Markdown tables (tests/test_docs.py checks the doc holds them)

Computed with pipelines/core/sizing.py from the base models' config.json (tests/data/model_configs/),
not measured: no GPU was at hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.core.sizing import GiB, ModelShape, kv_budget, rows_in_flight, suggested_scheduler  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "tests" / "data" / "model_configs"
MODELS = {  # Hammer checkpoint -> the base whose config.json it shares
    "Hammer-7b": "Qwen2-7B-Instruct", "Hammer2.1-7b": "Qwen2.5-7B-Instruct",
    "Hammer2.1-3b": "Qwen2.5-3B", "Hammer2.1-1.5b": "Qwen2.5-1.5B",
}
MiB = 1024**2
GPUS = {  # name -> (memory as nvidia-smi reports it, MiB; tensor-parallel sizes worth showing)
    "H100 80GB": (81559, (1,)), "H200 141GB": (143771, (1,)), "A100 80GB": (81920, (1,)), "A100 40GB": (40960, (1, 2)),
    "L4 24GB": (23034, (1, 2)), "A10G 24GB": (23028, (1, 2)),
}
PROMPT_TOKENS, OUTPUT_TOKENS = 1000, 64  # a typical Hammer prompt with one tool set, and a label's length
STRAGGLER_TOKENS = 512  # conf/base.yaml's generation.max_tokens: the longest a row can decode
UTILIZATION = 0.9
BATCH_SIZE = 128  # conf/prod.yaml's engine.batch_size


def rows() -> list[dict]:
    out = []
    for hammer, base in MODELS.items():
        shape = ModelShape.from_hf_config(json.loads((CONFIGS / f"{base}.json").read_text()))
        for gpu, (mib, tp_sizes) in GPUS.items():
            for tp in tp_sizes:
                # First pass with ray.data.llm's defaults, then size the step as suggested and recompute.
                budget = kv_budget(shape, mib * MiB, UTILIZATION, tensor_parallel_size=tp)
                suggested = suggested_scheduler(budget, PROMPT_TOKENS, OUTPUT_TOKENS, a100="A100" in gpu)
                if suggested["max_num_seqs"]:
                    budget = kv_budget(shape, mib * MiB, UTILIZATION, tensor_parallel_size=tp, **suggested)
                    suggested = suggested_scheduler(budget, PROMPT_TOKENS, OUTPUT_TOKENS, a100="A100" in gpu)
                out.append({"model": hammer, "gpu": gpu, "tp": tp, "weights_gib": budget.weights / GiB,
                            "kv_gib": budget.kv_bytes / GiB, "kv_tokens": budget.kv_tokens,
                            "rows": budget.rows_at_once(PROMPT_TOKENS, OUTPUT_TOKENS), **suggested})
    return out


def side_by_side() -> str:
    """H100 and H200 for the 7B and 1.5B Hammers, with samples: rows at once, the scheduler, and the
    rows in flight (batch_size x max_concurrent_batches) that keep it busy."""
    lines = ["| model | samples | GPU | KV tokens / replica | rows at once | max_num_seqs | rows in flight | "
             f"max_concurrent_batches at batch_size {BATCH_SIZE} |", "|---|---|---|---|---|---|---|---|"]
    for hammer in ("Hammer-7b", "Hammer2.1-1.5b"):
        shape = ModelShape.from_hf_config(json.loads((CONFIGS / f"{MODELS[hammer]}.json").read_text()))
        for samples in (1, 8):
            for gpu in ("H100 80GB", "H200 141GB"):
                mib = GPUS[gpu][0]
                budget = kv_budget(shape, mib * MiB, UTILIZATION)
                suggested = suggested_scheduler(budget, PROMPT_TOKENS, OUTPUT_TOKENS, samples=samples)
                budget = kv_budget(shape, mib * MiB, UTILIZATION, **suggested)
                suggested = suggested_scheduler(budget, PROMPT_TOKENS, OUTPUT_TOKENS, samples=samples)
                rows = budget.rows_at_once(PROMPT_TOKENS, OUTPUT_TOKENS, samples)
                flight = rows_in_flight(suggested["max_num_seqs"], samples, OUTPUT_TOKENS, STRAGGLER_TOKENS)
                lines.append(f"| {hammer} | {samples} | {gpu} | {budget.kv_tokens:,} | {rows:,} | "
                             f"{suggested['max_num_seqs']:,} | {flight:,} | {-(-flight // BATCH_SIZE)} |")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    lines = ["| model | GPU | TP | weights / GPU (GiB) | KV / GPU (GiB) | KV tokens / replica | rows at once "
             "| max_num_seqs | max_num_batched_tokens |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows():
        seqs = f"{r['max_num_seqs']:,}" if r["max_num_seqs"] else "does not fit"
        lines.append(f"| {r['model']} | {r['gpu']} | {r['tp']} | {r['weights_gib']:.1f} | {r['kv_gib']:.1f} "
                     f"| {r['kv_tokens']:,} | {r['rows']:,} | {seqs} | {r['max_num_batched_tokens']:,} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown())
    print(side_by_side(), end="")
