"""Hammer's data recipe on Ray Data: irrelevance rows and masking (`jobs/augment.py`).

    shards (id, query, tools, answers, ...) -> augment_row per row -> shards + origin, mask_map

Every decision is drawn from a generator seeded by (seed, row id, purpose), so two runs of the same
command write the same rows whatever the number of workers or blocks. Rows whose tools or answers
cannot be read pass through unchanged: the labeling job reports them as bad_input.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections import Counter
from typing import Any

import pyarrow as pa

from pipelines import storage
from pipelines.core.masking import mask_row, row_rng
from pipelines.core.reasons import Reason
from pipelines.core.scoring import load_gold
from pipelines.core.tools import BadInput, load_tools, plain_cell
from pipelines.recipe.config import AugmentConfig, AugmentSettings

ORIGINS = ("original", "irrelevance", "masked")
REQUIRED_COLUMNS = ("id", "query", "tools")
IRRELEVANCE_SUFFIX = "#irrelevance"  # id of the irrelevance row made from row `id`
# origin; mask_map (a masked row's way back); not_augmented (why a row passed through as it was)
ADDED_COLUMNS = ("origin", "mask_map", "not_augmented")


def augment_row(row: dict, settings: AugmentSettings, seed: int) -> list[dict]:
    """One row -> the rows it becomes: itself (masked with probability mask.probability) and, for a
    sampled fraction of rows with gold calls, an irrelevance row without the called tools."""
    raw_tools = _parse_json(plain_cell(row["tools"]))
    out = {**row, "tools": _as_json(row["tools"]), "origin": "original", "mask_map": None, "not_augmented": None}
    if "answers" in row:
        out["answers"] = None if row["answers"] is None else _as_json(row["answers"])
    try:
        tools = load_tools(raw_tools)
        answers = load_gold(row["answers"]) if row.get("answers") is not None else None
    except BadInput as e:
        return [{**out, "not_augmented": str(e.reason)}]
    except ValueError as e:
        return [{**out, "not_augmented": str(Reason("bad_answers", str(e)))}]
    if not isinstance(row.get("query"), str):
        return [{**out, "not_augmented": str(Reason("query_not_string", f"query is a {type(row.get('query')).__name__}"))}]

    rows = [out]
    if answers and row_rng(seed, row["id"], "irrelevance").random() < settings.irrelevance.fraction:
        called = {call["name"] for call in answers}
        remaining = [raw for raw, tool in zip(raw_tools, tools) if tool.name not in called]
        if remaining:  # a row whose every tool is called has nothing left to refuse with
            rows.append({**out, "id": f"{row['id']}{IRRELEVANCE_SUFFIX}", "tools": json.dumps(remaining, ensure_ascii=False),
                         "answers": "[]", "origin": "irrelevance"})

    mask = settings.mask
    if row_rng(seed, row["id"], "mask").random() < mask.probability:
        query, masked_tools, masked_answers, mapping = mask_row(
            row["query"], tools, answers, row_rng(seed, row["id"], "mask-values"), functions=mask.functions,
            parameters=mask.parameters, defaults=mask.defaults, shuffle=mask.shuffle)
        out.update(query=query, tools=json.dumps([t.to_raw() for t in masked_tools], ensure_ascii=False),
                   origin="masked", mask_map=mapping.to_json())
        if masked_answers is not None:
            out["answers"] = json.dumps(masked_answers, ensure_ascii=False)
    return rows


def _parse_json(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError, UnicodeDecodeError):
            return value
    return value


def _as_json(value: Any) -> Any:
    """tools and answers are written as JSON strings, whatever form they came in."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(plain_cell(value), ensure_ascii=False)


def output_schema(input_schema: pa.Schema) -> pa.Schema:
    fields = [pa.field(f.name, pa.string()) if f.name in ("tools", "answers") else f for f in input_schema
              if f.name not in ADDED_COLUMNS]
    return pa.schema(fields + [pa.field(name, pa.string()) for name in ADDED_COLUMNS])


def augment_batch(batch: pa.Table, *, settings: AugmentSettings, seed: int, schema: pa.Schema) -> pa.Table:
    rows = [out for row in batch.to_pylist() for out in augment_row(row, settings, seed)]
    return pa.Table.from_pylist(rows, schema=schema)


def run(config: AugmentConfig) -> dict:
    """Reads the shards, augments them on Ray Data, writes parquet and `_summary.json`."""
    import ray

    from pipelines.cluster import start_ray

    started = time.time()
    in_fs, in_root = storage.filesystem(config.input.path, config.s3)
    out_fs, out_root = storage.filesystem(config.output.path, config.s3)
    shards = storage.list_shards(in_fs, in_root, REQUIRED_COLUMNS)
    storage.require_empty_output(out_fs, out_root, config.output.path)
    schema = output_schema(shards.schema)

    start_ray(config.ray)
    ray.data.DataContext.get_current().execution_options.preserve_order = True  # same files, same order
    ds = ray.data.read_parquet(shards.paths, filesystem=storage.arrow_filesystem(in_fs, shards.paths[0]))
    ds = ds.map_batches(augment_batch, batch_format="pyarrow",
                        fn_kwargs={"settings": config.augment, "seed": config.seed, "schema": schema})
    ds.write_parquet(out_root, filesystem=storage.arrow_filesystem(out_fs, out_root))

    origins: Counter = Counter()
    not_augmented: Counter = Counter()
    for batch in storage.read_columns(out_fs, out_root, ["origin", "not_augmented"]):
        origins.update(batch.column("origin").to_pylist())
        not_augmented.update(Reason.parse(r).code for r in batch.column("not_augmented").to_pylist() if r)
    summary = {"input": config.input.path, "output": config.output.path, "input_rows": shards.num_rows,
               "rows": sum(origins.values()), "origin": {o: origins[o] for o in ORIGINS},
               "not_augmented": dict(sorted(not_augmented.items())), "seed": config.seed,
               "wall_time_s": round(time.time() - started, 2)}
    storage.write_json(out_fs, posixpath.join(out_root, storage.SUMMARY_FILE), summary)
    return summary
