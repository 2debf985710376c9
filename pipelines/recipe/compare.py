"""Agreement across runs: several labeling (or judge) outputs of the same rows, joined by `id` on Ray Data.

    jobs/compare.py input.paths=[A,B,...] output.path=OUT

Per row: each run's status, calls and call type, whether the runs agree (all valid and equal, by
the scoring equality), their consensus (the calls a strict majority of runs agree on) and its
share, and the agreement of each pair of runs. The summary holds the pairwise agreement overall,
per call type and per status (both of the pair's first run).

Runs whose id sets differ are refused before any work, with the counts on each side: a join would
silently compare fewer rows than the runs hold.
"""

from __future__ import annotations

import itertools
import json
import posixpath
import time
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import storage
from pipelines.config import ConfigError
from pipelines.core.confidence import runs_agreement
from pipelines.core.scoring import same_calls
from pipelines.core.tools import BadInput, load_tools, plain_cell
from pipelines.run.job import report
from pipelines.run.output import MANIFEST_FILE, finished_output
from pipelines.core.calls import read_calls, written_calls
from pipelines.label.schema import CALL
from pipelines.recipe.config import CompareConfig

MODE = "compare"  # the manifest's mode: export reads a compare output's consensus as its calls
SHARED_COLUMNS = ("query", "tools", "answers")  # taken from the first run
PER_RUN = ("status", "calls", "call_type")
COMPARE_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "run_statuses": (pa.list_(pa.string()), "each run's status, in input.paths order"),
    "run_calls": (pa.list_(pa.list_(CALL)), "each run's calls"),
    "run_call_types": (pa.list_(pa.string()), "each run's call type"),
    "runs_agree": (pa.bool_(), "every run's output is valid (ok or no_call) and all have equal calls"),
    "consensus_calls": (pa.list_(CALL), "the calls a strict majority of the runs agree on (null: none)"),
    "consensus_share": (pa.float64(), "the largest group of runs with equal valid calls, as a share of the runs"),
    "pairs_agree": (pa.list_(pa.bool_()), "per pair of runs (0-1, 0-2, ..., 1-2, ...): equal calls"),
}


def run(config: CompareConfig) -> dict:
    import ray

    from pipelines.cluster import start_ray

    started = time.time()
    paths = config.input.paths
    names = config.input.names or [posixpath.basename(p.rstrip("/")) or p for p in paths]
    if len(paths) < 2:
        raise ConfigError(f"input.paths names {len(paths)} run(s); compare needs two or more")
    if len(names) != len(paths) or len(set(names)) != len(names):
        raise ConfigError(f"input.names must give each of the {len(paths)} input.paths a different name (got {names})")
    runs, rows = [], []
    for key, path in zip((f"input.paths[{i}]" for i in range(len(paths))), paths):
        fs, root = storage.filesystem(path, config.s3)
        rows.append(finished_output(fs, root, key, path).summary["rows"])
        runs.append((fs, root, storage.parquet_files(fs, root)))
    _check_same_ids(runs, names)
    out_fs, out_root = storage.filesystem(config.output.path, config.s3)
    storage.require_empty_output(out_fs, out_root, config.output.path)

    start_ray(config.ray)
    shared = [c for c in SHARED_COLUMNS if c in _columns(runs[0])]
    joined = None
    for i, (fs, _, pieces) in enumerate(runs):
        columns = ["id", *PER_RUN, *(shared if i == 0 else [])]
        ds = ray.data.read_parquet(pieces, filesystem=storage.arrow_filesystem(fs, pieces[0]), columns=columns)
        ds = ds.rename_columns({c: f"{c}_{i}" for c in PER_RUN})
        joined = ds if joined is None else joined.join(ds, join_type="inner", num_partitions=config.compare.num_partitions,
                                                       on=("id",))
    schema = output_schema(shared)
    joined = joined.map_batches(compare_batch, batch_format="pyarrow",
                                fn_kwargs={"runs": len(runs), "shared": shared, "schema": schema})
    joined.write_parquet(out_root, filesystem=storage.arrow_filesystem(out_fs, out_root))

    counter = PairCounter(names)
    for batch in storage.read_columns(out_fs, out_root, ["run_statuses", "run_call_types", "runs_agree", "consensus_calls",
                                                          "pairs_agree"]):
        counter.add(batch.to_pydict())
    summary = {"output": config.output.path, "runs": [{"name": n, "path": p} for n, p in zip(names, paths)],
               "input_rows": rows[0], **counter.to_dict(), "wall_time_s": round(time.time() - started, 2)}
    storage.write_json(out_fs, posixpath.join(out_root, MANIFEST_FILE), {"fingerprint": {"mode": MODE, "runs": paths}})
    summary["report"] = report(out_fs, out_root, config.output.path, MODE, summary, {"runs": paths})
    storage.write_json(out_fs, posixpath.join(out_root, storage.SUMMARY_FILE), summary)
    return summary


def _columns(run) -> list[str]:
    fs, _, pieces = run
    with fs.open(pieces[0], "rb") as f:
        return pq.read_schema(f).names


def _check_same_ids(runs, names: list[str]) -> None:
    """Every run holds the first run's ids; otherwise an InputError with the counts on each side."""
    def ids(run) -> set:
        fs, root, _ = run
        return {i for batch in storage.read_columns(fs, root, ["id"]) for i in batch.column("id").to_pylist()}

    first = ids(runs[0])
    problems = []
    for name, run in zip(names[1:], runs[1:]):
        other = ids(run)
        if other != first:
            only_first, only_other = sorted(first - other), sorted(other - first)
            examples = ", ".join(map(repr, (only_first or only_other)[:3]))
            problems.append(f"{names[0]} has {len(first)} ids, {name} {len(other)}: {len(only_first)} only in "
                            f"{names[0]}, {len(only_other)} only in {name} (e.g. {examples})")
    if problems:
        raise storage.InputError("the runs do not hold the same rows, so they cannot be compared row by row: "
                                 + "; ".join(problems) + "; compare outputs of the same input")


def output_schema(shared: list[str]) -> pa.Schema:
    return pa.schema([pa.field("id", pa.string()), *(pa.field(c, pa.string()) for c in shared),
                      *(pa.field(name, t) for name, (t, _) in COMPARE_COLUMNS.items())])


def compare_row(row: dict, runs: int) -> dict:
    """Pure: one joined row (status_i, calls_i, call_type_i per run) -> the comparison columns."""
    try:
        tools = load_tools(row["tools"] if isinstance(row["tools"], (str, bytes)) else plain_cell(row["tools"]))
    except BadInput:  # the runs failed this row as bad_input: nothing to compare the calls against
        tools = []
    calls = [read_calls(row[f"calls_{i}"]) for i in range(runs)]
    statuses = [row[f"status_{i}"] for i in range(runs)]
    agree, consensus = runs_agreement(list(zip(statuses, calls)), tools)
    pairs = [a is not None and b is not None and same_calls(a, b, tools)
             for a, b in itertools.combinations(calls, 2)]
    return {"run_statuses": statuses, "run_calls": [row[f"calls_{i}"] for i in range(runs)],
            "run_call_types": [row[f"call_type_{i}"] for i in range(runs)], "runs_agree": agree,
            "consensus_calls": written_calls(consensus.consensus_calls), "consensus_share": consensus.consensus_share,
            "pairs_agree": pairs}


def compare_batch(batch: pa.Table, *, runs: int, shared: list[str], schema: pa.Schema) -> pa.Table:
    rows = batch.to_pylist()
    out = [{"id": r["id"], **{c: _text(r[c]) for c in shared}, **compare_row(r, runs)} for r in rows]
    return pa.Table.from_pylist(out, schema=schema)


def _text(value):
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class PairCounter:
    """Pairwise agreement of the runs, overall, per call type and per status of the pair's first run."""

    def __init__(self, names: list[str]):
        self.names = names
        self.pairs = list(itertools.combinations(range(len(names)), 2))
        self.rows = 0
        self.all_agree = 0
        self.consensus = 0
        self.counts: Counter = Counter()  # (pair, group, value, "rows" | "agree")

    def add(self, batch: dict[str, list]) -> None:
        for statuses, types, agree, consensus, pairs in zip(batch["run_statuses"], batch["run_call_types"],
                                                            batch["runs_agree"], batch["consensus_calls"],
                                                            batch["pairs_agree"]):
            self.rows += 1
            self.all_agree += bool(agree)
            self.consensus += consensus is not None
            for k, (a, _) in enumerate(self.pairs):
                for group, value in (("overall", ""), ("by_call_type", types[a]), ("by_status", statuses[a])):
                    self.counts[(k, group, value, "rows")] += 1
                    self.counts[(k, group, value, "agree")] += bool(pairs[k])

    def to_dict(self) -> dict:
        def cell(k, group, value):
            rows, agree = self.counts[(k, group, value, "rows")], self.counts[(k, group, value, "agree")]
            return {"rows": rows, "agree": agree, "share": round(agree / rows, 4) if rows else None}

        pairwise = []
        for k, (a, b) in enumerate(self.pairs):
            entry = {"runs": [self.names[a], self.names[b]], **cell(k, "overall", "")}
            for group in ("by_call_type", "by_status"):
                values = sorted({v for (p, g, v, _) in self.counts if p == k and g == group}, key=str)
                entry[group] = {str(v): cell(k, group, v) for v in values}
            pairwise.append(entry)
        return {"rows": self.rows, "runs_agree": self.all_agree, "with_consensus": self.consensus,
                "pairwise": pairwise}
