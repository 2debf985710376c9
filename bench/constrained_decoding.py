"""What constrained decoding costs: the same prompts through one vLLM engine, with and without the
per-row JSON schema of allowed calls (generation.constrained).

    .venv/bin/python bench/constrained_decoding.py [--model DIR] [--repeats 3] [--out FILE.json]

Two measurements, each repeated, medians with min-max:
  * max_tokens=1: prefill plus one token, so the difference is the per-row fixed cost of the grammar
    (schema compilation and the first mask);
  * max_tokens=64: a whole generation. With the random-weights demo model the constrained output is
    a short valid list while the unconstrained one runs to max_tokens, so compare s/token, not wall time.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="built:tiny-qwen2", help="a checkpoint folder or built:NAME")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import pyarrow.dataset as pads
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import StructuredOutputsParams

    from pipelines.engines.columns import CALL_SCHEMA_COL, EARLY_STATUS_COL, PROMPT_TOKENS_COL
    from pipelines.label.stages import PromptStage
    from pipelines.run.config import ModelConfig
    from pipelines.models import resolve_model

    args.model = resolve_model(ModelConfig(source=args.model), key="--model")
    batch = pads.dataset(str(REPO / "data" / "sample"), format="parquet").to_table()
    rows = PromptStage(args.model, "hammer1", 3500, False, constrained=True)(batch).to_pylist()
    rows = [r for r in rows if r[EARLY_STATUS_COL] is None]
    prompts = [TokensPrompt(prompt_token_ids=r[PROMPT_TOKENS_COL]) for r in rows]
    llm = LLM(args.model, gpu_memory_utilization=0.2, max_model_len=4096, enable_prefix_caching=False)

    def run(max_tokens: int, constrained: bool) -> tuple[float, int]:
        params = [SamplingParams(temperature=0, max_tokens=max_tokens,
                                 structured_outputs=StructuredOutputsParams(json=r[CALL_SCHEMA_COL]) if constrained else None)
                  for r in rows]
        started = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - started, sum(len(o.outputs[0].token_ids) for o in outputs)

    run(1, True)  # warm-up: first-use compilation of the engine and grammar backend
    results = {}
    for max_tokens in (1, 64):
        for constrained in (False, True):
            samples = [run(max_tokens, constrained) for _ in range(args.repeats)]
            seconds = [s for s, _ in samples]
            tokens = samples[0][1]
            results[f"max_tokens={max_tokens} constrained={constrained}"] = {
                "rows": len(rows), "output_tokens": tokens,
                "seconds_median": round(statistics.median(seconds), 4),
                "seconds_min": round(min(seconds), 4), "seconds_max": round(max(seconds), 4),
                "ms_per_row": round(1000 * statistics.median(seconds) / len(rows), 2),
                "ms_per_output_token": round(1000 * statistics.median(seconds) / max(tokens, 1), 3),
            }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
