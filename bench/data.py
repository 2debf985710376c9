"""Seeded rows shaped like real function-calling data, for the benchmarks.

    .venv/bin/python bench/data.py --rows 2000 --out .cache/bench/rows-2000 [--seed 0]

Each row: 1-8 tools (the bare-function form), 2-4 parameters each with a description, some with
defaults and enums, a query of 10-60 words, and gold `answers`. Half the rows draw their tool set
from a pool of 20 popular sets (repeated sets share a long prompt prefix, as in real data), half get
a set of their own. Prompts land around 600-1,500 tokens with the demo model's tokenizer.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

WORDS = """account address amount analysis api app area article balance bank book budget calendar call
camera card cart city client code color company contact content country currency customer data date
day delivery device discount distance document domain email employee energy event file filter flight
forecast format game goal group hotel image index invoice item job key language level limit list
location map market media meeting message metric mode model movie music name network news note
number order page payment period person phone photo plan player policy portfolio post price product
profile project query quote rate rating record region report request reservation restaurant result
review room route sale schedule score search season sensor server service session share shipment
size song source space station status stock store stream subscription summary system table task
team temperature term ticket time title token topic track trade traffic train transaction trip type
unit user value vehicle venue video volume weather website week window year zone""".split()
VERBS = "get find search list create update delete send book check compute convert fetch track".split()
TYPES = ["string", "integer", "number", "boolean"]
POPULAR_SETS = 20


def _phrase(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _tool(rng: random.Random, index: int) -> dict:
    name = f"{rng.choice(VERBS)}_{rng.choice(WORDS)}_{rng.choice(WORDS)}_{index}"
    properties, required = {}, []
    for _ in range(rng.randint(2, 4)):
        pname = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}"
        if pname in properties:  # a name twice would repeat it in `required`, which JSON Schema forbids
            continue
        kind = rng.choice(TYPES)
        spec = {"type": kind, "description": f"The {_phrase(rng, 2, 4)}."}
        if kind == "string" and rng.random() < 0.3:
            spec["enum"] = sorted({rng.choice(WORDS) for _ in range(rng.randint(2, 5))})
        if rng.random() < 0.4:
            spec["default"] = {"string": (spec.get("enum") or [rng.choice(WORDS)])[0], "integer": rng.randint(1, 100),
                               "number": round(rng.uniform(0, 100), 1), "boolean": rng.random() < 0.5}[kind]
        else:
            required.append(pname)
        properties[pname] = spec
    return {"name": name, "description": f"{rng.choice(VERBS).capitalize()} the {_phrase(rng, 3, 8)}.",
            "parameters": {"type": "object", "properties": properties, "required": required}}


def _tool_set(rng: random.Random) -> list[dict]:
    tools = [_tool(rng, i) for i in range(rng.randint(1, 8))]
    names = set()
    return [t for t in tools if not (t["name"] in names or names.add(t["name"]))]


def _answer(rng: random.Random, tool: dict) -> dict:
    values = {"string": lambda s: (s.get("enum") or [rng.choice(WORDS)])[0], "integer": lambda s: rng.randint(1, 500),
              "number": lambda s: round(rng.uniform(0, 500), 2), "boolean": lambda s: rng.random() < 0.5}
    params = tool["parameters"]
    args = {p: values[params["properties"][p]["type"]](params["properties"][p]) for p in params["required"]}
    return {"name": tool["name"], "arguments": args}


def make_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    popular = [_tool_set(rng) for _ in range(POPULAR_SETS)]
    rows = []
    for i in range(n):
        tools = rng.choice(popular) if rng.random() < 0.5 else _tool_set(rng)
        called = rng.sample(tools, rng.randint(0, min(2, len(tools))))
        answers = [_answer(rng, t) for t in called]
        query = _phrase(rng, 10, 60).capitalize() + "?"
        rows.append({"id": f"bench-{seed}-{i}", "query": query, "tools": json.dumps(tools),
                     "answers": json.dumps(answers)})
    return rows


def prompted(table: pa.Table, model: str, max_prompt_tokens: int, batch_rows: int = 256) -> pa.Table:
    """The rows through this job's prompt stage, batch by batch as in the job (each batch's rows come
    out grouped by tool set); the token ids are in its `tokenized_prompt` column."""
    from pipelines.label.stages import PromptStage

    stage = PromptStage(model, "hammer1", max_prompt_tokens, False)
    return pa.concat_tables(stage(table.slice(i, batch_rows)) for i in range(0, table.num_rows, batch_rows))


def write_shards(rows: list[dict], out: Path, rows_per_shard: int = 1000) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(rows), rows_per_shard):
        pq.write_table(pa.Table.from_pylist(rows[start:start + rows_per_shard]),
                       out / f"part-{start // rows_per_shard:05d}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows-per-shard", type=int, default=1000)
    args = parser.parse_args()
    write_shards(make_rows(args.rows, args.seed), args.out, args.rows_per_shard)
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()
