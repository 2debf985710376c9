"""The stages every job over shards shares, batch in, batch out: the shard reader at the start of a
plan, the piece writer at its end, and the helpers both jobs' prompt stages use.

    read_shard -> (the job's prompt stage) -> (an engine kind) -> (the job's annotator) -> write_pieces
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.reasons import FAILURES, PROMPT_TOO_LONG, Reason
from pipelines.contract import Contract
from pipelines.run.guard import exception_reason, guard_row
from pipelines.run.output import skip_mask, to_ranges, write_piece

# Internal columns, dropped before writing.
SHARD_COL = "_shard"  # the input shard a row came from, relative to input.path
ROW_COL = "_row"  # its position in that shard
EARLY_ERRORS_COL = "_early_errors"


# ------------------------------------------------------------------------------------- read


def read_shard(item: dict, *, filesystem, add_id: bool, batch_rows: int = 4096) -> Iterator[pa.Table]:
    """One parquet shard -> tables of its rows not yet done, each row tagged with its shard and
    position (for resume), and with a stable `id` (`<shard>:<row>`) when the input has none."""
    path, name, done = item["path"][0], item["shard"][0], json.loads(item["done"][0])
    with filesystem.open(path, "rb") as f:
        offset = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows):
            table = pa.Table.from_batches([batch])
            n = table.num_rows
            positions = pa.array(range(offset, offset + n), pa.int64())
            if add_id:
                table = table.append_column("id", pa.array([f"{name}:{r}" for r in range(offset, offset + n)], pa.string()))
            table = table.append_column(SHARD_COL, pa.array([name] * n, pa.string())).append_column(ROW_COL, positions)
            skip = skip_mask(done, offset, n)
            offset += n
            if any(skip):
                table = table.filter(pa.array([not s for s in skip]))
            if table.num_rows:
                yield table


def too_long(token_ids: list[int], limit: int) -> Reason | None:
    """Why a prompt skips the engine (over max_model_len - max_tokens), or None when it fits."""
    return Reason(PROMPT_TOO_LONG, f"{len(token_ids)} tokens, limit {limit}") if len(token_ids) > limit else None


def encode_rows(rows: list[dict], schema: pa.Schema, failed: Callable[[int, Reason], dict]) -> pa.Table:
    """Rows as one Arrow table of `schema`; a row Arrow cannot encode (a value of the wrong type, text
    that is not UTF-8) is replaced by failed(its index, why), so the block is never lost for one row."""
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        pass
    tables = []
    for i, row in enumerate(rows):
        try:
            tables.append(pa.Table.from_pylist([row], schema=schema))
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as e:
            tables.append(pa.Table.from_pylist([failed(i, exception_reason(e))], schema=schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def shape_rows(batch: pa.Table, contract: Contract, schema: pa.Schema, row_fn: Callable[[dict], dict],
               failed: Callable[[dict, Reason], dict], row_time_budget_s: float | None) -> pa.Table:
    """The row loop of a stage that shapes each row into `schema` (its contract's writes are part of
    it): the batch checked on entry, each row through row_fn under the row guard (an exception or a
    row past its budget becomes failed(row, why)), the rows encoded (a row Arrow refuses becomes
    failed too: the block is never lost), and the result checked on exit."""
    contract.check_in(batch)
    rows = batch.select(list(dict.fromkeys(contract.reads))).to_pylist()
    out = []
    for row in rows:
        shaped, why = guard_row(lambda: row_fn(row), row_time_budget_s)
        out.append(shaped if why is None else failed(row, why))
    return contract.check_out(encode_rows(out, schema, lambda i, why: failed(rows[i], why)))


def set_column(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)


# ------------------------------------------------------------------------------------ write



def write_pieces(batch: pa.Table, *, filesystem, root: str, lease_token: str, status_column: str = "status") -> pa.Table:
    """Commits a batch as one output file (see output.write_piece) and returns one row of counts for
    the driver's progress report: per value of `status_column` (the judge counts its verdicts)."""
    shards, rows = batch.column(SHARD_COL).to_pylist(), batch.column(ROW_COL).to_pylist()
    held: dict[str, list[int]] = {}
    for shard, row in zip(shards, rows):
        held.setdefault(shard, []).append(row)
    coverage = {shard: to_ranges(r) for shard, r in held.items()}
    write_piece(filesystem, root, batch.drop_columns([SHARD_COL, ROW_COL]), coverage, lease_token)
    statuses = [s if s is not None else f"no {status_column}" for s in batch.column(status_column).to_pylist()]
    reasons = Counter(
        Reason.parse(e).code
        for status, errors in zip(statuses, batch.column("errors").to_pylist())
        if status in FAILURES
        for e in errors or []
    )
    return pa.table({"rows": [batch.num_rows], "statuses": [json.dumps(Counter(statuses))],
                     "reasons": [json.dumps(reasons)]})
