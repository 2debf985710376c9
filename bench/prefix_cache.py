"""Does ordering rows by tool set raise vLLM's prefix-cache hit rate and throughput?

    .venv/bin/python bench/prefix_cache.py [--rows 2000] [--repeats 2] [--out FILE.json]

Rows with the same tool set share their prompt up to the end of the tools JSON (prompts.Prompt.parts),
and every row shares the template and task block. One engine (the demo model, prefix caching on)
generates the benchmark rows' prompts in three orders: as read; grouped by tool set within each
block of `prompt.batch_size` rows (what the prompt stage could do to each batch at no cost); and
grouped over the whole input (which would take a sort across blocks). Each with an ample KV cache
(20% of RAM, millions of tokens: nothing is evicted) and with a tight one (16 MiB: 32,768 tokens,
about 25 prompts, fewer than the rows between two uses of a popular tool set, so LRU eviction
decides what stays). The prefix cache is reset between runs; hit rate from vLLM's own counters.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.data import make_rows, prompted  # noqa: E402

CACHES = {"ample": {"gpu_memory_utilization": 0.2}, "tight": {"kv_cache_memory_bytes": 16 * 2**20}}


def _orders(tool_sets: list[str], block: int) -> dict[str, list[int]]:
    rows = range(len(tool_sets))
    within = [i for start in range(0, len(tool_sets), block)
              for i in sorted(rows[start:start + block], key=lambda i: tool_sets[i])]
    return {"as_read": list(rows), "grouped_in_block": within, "grouped_overall": sorted(rows, key=lambda i: tool_sets[i])}


def _counter(llm, name: str) -> float:
    return sum(m.value for m in llm.get_metrics() if m.name == name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--block", type=int, default=256, help="prompt.batch_size")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import pyarrow as pa
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from pipelines.engines.columns import PROMPT_TOKENS_COL
    from pipelines.models.built import ensure_built

    model = ensure_built("tiny-qwen2")
    rows = make_rows(args.rows, seed=0)
    out = prompted(pa.Table.from_pylist(rows), model, 4096 - args.max_tokens, args.block)
    by_id = dict(zip(out.column("id").to_pylist(), out.column(PROMPT_TOKENS_COL).to_pylist()))
    token_ids = [by_id[r["id"]] for r in rows]  # as read: the stage itself groups each batch by tool set
    orders = _orders([r["tools"] for r in rows], args.block)
    params = SamplingParams(temperature=0, max_tokens=args.max_tokens)
    results = {}
    for cache, cache_kwargs in CACHES.items():
        llm = LLM(model, max_model_len=4096, enable_prefix_caching=True, disable_log_stats=False, **cache_kwargs)
        llm.generate([TokensPrompt(prompt_token_ids=token_ids[0])], params, use_tqdm=False)  # warm-up
        runs: dict[str, list[dict]] = {name: [] for name in orders}
        for _ in range(args.repeats):
            for name, order in orders.items():  # interleaved
                llm.reset_prefix_cache()
                hits, queries = _counter(llm, "vllm:prefix_cache_hits"), _counter(llm, "vllm:prefix_cache_queries")
                started = time.perf_counter()
                llm.generate([TokensPrompt(prompt_token_ids=token_ids[i]) for i in order], params, use_tqdm=False)
                wall = time.perf_counter() - started
                hit_rate = ((_counter(llm, "vllm:prefix_cache_hits") - hits)
                            / (_counter(llm, "vllm:prefix_cache_queries") - queries))
                runs[name].append({"wall_s": wall, "hit_rate": hit_rate})
                print(cache, name, round(wall, 2), round(hit_rate, 3), flush=True)
        results[cache] = {name: {"rows_per_s": round(args.rows / statistics.median(r["wall_s"] for r in rs), 1),
                                 "rows_per_s_min_max": [round(args.rows / max(r["wall_s"] for r in rs), 1),
                                                        round(args.rows / min(r["wall_s"] for r in rs), 1)],
                                 "prefix_cache_hit_rate": round(statistics.median(r["hit_rate"] for r in rs), 3)}
                          for name, rs in runs.items()}
        del llm
    report = {"rows": args.rows, "max_tokens": args.max_tokens, "block": args.block, "repeats": args.repeats,
              "prompt_tokens": sum(map(len, token_ids)), "results": results}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
