"""The CPU stages alone, in rows/s per core: prompt (Hammer message, chat template, tokenization) and
validation (parsing, schema checks, grounding flags, scoring), in one process without Ray and as
Ray Data operators on a local Ray.

    .venv/bin/python bench/cpu_stages.py [--rows 4000] [--repeats 3] [--model DIR] [--out FILE.json]

Per core: rows divided by the CPU seconds (user + system) the work took, so that a tokenizer using
several threads is not counted as one core. The validation input is each row's gold calls as the
model's text: the path a correct output takes, with every check run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.data import make_rows  # noqa: E402


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(fn, repeats: int) -> dict:
    """Median wall and CPU seconds of fn() over repeats."""
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, wall = _cpu_seconds(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu_seconds() - cpu)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "wall_min": min(walls),
            "wall_max": max(walls)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--model", default="built:tiny-qwen2", help="a checkpoint folder or built:NAME")
    args = parser.parse_args()

    import pyarrow as pa

    from pipelines.core.validation import ValidationConfig
    from pipelines.label.config import Mode
    from pipelines.engines.columns import (EARLY_STATUS_COL, ENGINE_ERROR_COL, ENGINE_TEXT_COL, ENGINE_TOKENS_COL,
                                           PROMPT_TOKENS_COL)
    from pipelines.label.stages import TOOLS_COL, PromptStage, annotate_row
    from pipelines.run.stages import EARLY_ERRORS_COL
    from pipelines.run.config import ModelConfig
    from pipelines.models import resolve_model

    args.model = resolve_model(ModelConfig(source=args.model), key="--model")
    table = pa.Table.from_pylist(make_rows(args.rows, seed=1))
    stage = PromptStage(args.model, "hammer1", 100_000, False)
    batches = [table.slice(i, 256) for i in range(0, table.num_rows, 256)]
    # First sight: every row's tool set new to this process (half the rows share 20 sets, so those
    # repeat within the pass), as for a fresh actor; then again with every set seen before.
    first_pass: list = []
    first = _measure(lambda: first_pass.extend(stage(b) for b in batches), 1)
    prompted = pa.concat_tables(first_pass)
    tokens = [len(t) for t in prompted.column(PROMPT_TOKENS_COL).to_pylist()]
    prompt = _measure(lambda: [stage(b) for b in batches], args.repeats)

    rows = [{**r, ENGINE_TEXT_COL: r["answers"], ENGINE_TOKENS_COL: 1, ENGINE_ERROR_COL: None,
             EARLY_STATUS_COL: None, EARLY_ERRORS_COL: []}
            for r in prompted.select(["query", "answers", TOOLS_COL]).to_pylist()]
    settings = ValidationConfig()
    statuses = [annotate_row(r, mode=Mode.GENERATE, validation=settings)["status"] for r in rows]
    validate = _measure(lambda: [annotate_row(r, mode=Mode.GENERATE, validation=settings) for r in rows], args.repeats)

    in_ray = ray_rates(table, prompted, args.model, args.repeats)
    n = args.rows
    result = {
        "rows": n,
        "prompt_tokens": {"mean": round(statistics.mean(tokens)), "min": min(tokens), "max": max(tokens),
                          "median": statistics.median(tokens)},
        "prompt_first_sight_rows_per_cpu_s": round(n / first["cpu_s"]),
        "prompt_rows_per_s_wall": round(n / prompt["wall_s"]),
        "prompt_rows_per_cpu_s": round(n / prompt["cpu_s"]),
        "prompt_wall_spread_s": [round(prompt["wall_min"], 3), round(prompt["wall_max"], 3)],
        "validation_rows_per_s_wall": round(n / validate["wall_s"]),
        "validation_rows_per_cpu_s": round(n / validate["cpu_s"]),
        "validation_statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        **in_ray,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def ray_rates(table, prompted, model: str, repeats: int) -> dict:
    """The same stages as Ray Data operators (one actor / one task at a time, one CPU each), per CPU second."""
    import pyarrow as pa
    import ray

    from pipelines.core.validation import ValidationConfig
    from pipelines.label.config import Mode
    from pipelines.engines.columns import ENGINE_ERROR_COL, ENGINE_TEXT_COL, ENGINE_TOKENS_COL, WRITE_TYPES
    from pipelines.label.stages import PromptStage, annotate_batch
    from pipelines.run.stages import ROW_COL, SHARD_COL

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False

    def prompt_pass(rows):
        ds = ray.data.from_arrow(rows).map_batches(
            PromptStage, batch_format="pyarrow", batch_size=256, compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=1, fn_constructor_args=(model, "hammer1", 100_000, False))
        return ds.materialize()

    generated = prompted.append_column(ENGINE_TEXT_COL, prompted.column("answers")).append_column(
        ENGINE_TOKENS_COL, [[1] * prompted.num_rows]).append_column(ENGINE_ERROR_COL, pa.nulls(prompted.num_rows, pa.string()))

    generated = generated.append_column(SHARD_COL, [["s"] * generated.num_rows]).append_column(
        ROW_COL, [list(range(generated.num_rows))])
    for name, type_ in WRITE_TYPES.items():  # no samples, no log-probabilities, no finish reasons
        if name not in generated.column_names:
            generated = generated.append_column(name, pa.nulls(generated.num_rows, type_))

    def validate_pass(rows):
        ds = ray.data.from_arrow(rows).map_batches(
            annotate_batch, batch_format="pyarrow", batch_size=1024, num_cpus=1,
            fn_kwargs={"input_schema": table.schema, "lineage": {}, "mode": Mode.GENERATE, "validation": ValidationConfig()})
        return ds.materialize()

    # Per-operator CPU time from Ray Data's own stats (the sum over the operator's tasks of the time
    # its UDF and block handling took): the actor's start is not in it, and a rate cannot come out
    # negative, as a difference of two noisy wall times could (-5,412 rows/s once, at --repeats 1).
    prompt_pass(table)  # warm-up: workers, imports
    validate_pass(generated)
    prompt_cpu = [_operator_cpu_s(prompt_pass(table), "PromptStage") for _ in range(repeats)]
    validate_cpu = [_operator_cpu_s(validate_pass(generated), "annotate_batch") for _ in range(repeats)]
    ray.shutdown()
    n = table.num_rows
    return {"ray_prompt_rows_per_cpu_s": _rates(n, prompt_cpu), "ray_validation_rows_per_cpu_s": _rates(n, validate_cpu)}


def _operator_cpu_s(ds, name: str) -> float:
    """CPU seconds the operator named `name` took in a materialized dataset, summed over its tasks."""
    ops = [op for op in ds._get_stats_summary().operators_stats if name in op.operator_name]
    assert ops and all(op.cpu_time is not None for op in ops), f"no CPU time for {name} in Ray Data's stats"
    return sum(op.cpu_time.sum for op in ops)


def _rates(rows: int, cpu_seconds: list[float]) -> dict:
    """Rows per CPU second: the median and the spread over the repeats."""
    rates = sorted(rows / s for s in cpu_seconds)
    return {"median": round(statistics.median(rates)), "min": round(rates[0]), "max": round(rates[-1])}


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
