"""BFCL's table of a finished labeling output, without a model (jobs/leaderboard.py).

    jobs/leaderboard.py [conf=NAME] input.path=LABELS [output.path=TABLE.md] [model=NAME]

Reads three columns of the output's pieces (`bfcl_category`, `correct`, `scoring_rules`) and aggregates
them as the labeling job's summary does (pipelines/label/summary.py): the rows scored by the
leaderboard's rules, per BFCL category. Rows scored by the schema rules are counted apart, so a
table is never made of other rules' verdicts: relabel, or re-validate with scoring.rules=bfcl
(jobs/validate.py), to score them the leaderboard's way.
"""

from __future__ import annotations

import time

from pipelines import storage
from pipelines.core import bfcl
from pipelines.core.scoring import CATEGORY_COLUMN
from pipelines.run.output import finished_output
from pipelines.label.summary import LeaderboardCounter, format_leaderboard
from pipelines.recipe.config import LeaderboardConfig

COLUMNS = ["correct", "scoring_rules"]


def run(config: LeaderboardConfig) -> dict:
    started = time.time()
    fs, root = storage.filesystem(config.input.path, config.s3)
    finished = finished_output(fs, root, "input.path", config.input.path)
    pieces = storage.parquet_files(fs, root)
    if pieces and CATEGORY_COLUMN not in storage.read_schema(fs, pieces[0]).names:
        raise storage.InputError(f"input.path {config.input.path!r} has no {CATEGORY_COLUMN} column: its rows carry no "
                                 "BFCL category (jobs/prepare.py input.format=bfcl writes one)")
    counter = LeaderboardCounter()
    for batch in storage.read_columns(fs, root, [*COLUMNS, CATEGORY_COLUMN]):
        counter.add(batch.to_pydict())
    result = counter.table()
    if result is None:
        raise storage.InputError(f"input.path {config.input.path!r} has no row of a BFCL category this job scores "
                                 f"({', '.join(bfcl.CATEGORIES)})")
    model = config.model or finished.summary.get("model") or config.input.path
    table = bfcl.markdown(result, model)
    print(format_leaderboard(result))
    print(table)
    if config.output.path:
        out_fs, out_path = storage.filesystem(config.output.path, config.s3)
        storage.write_text(out_fs, out_path, table)
    return {"input": config.input.path, "output": config.output.path or "stdout", "model": model, "bfcl": result,
            "wall_time_s": round(time.time() - started, 2)}
