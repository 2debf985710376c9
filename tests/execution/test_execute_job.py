"""Execution in the jobs, on real Ray: a stage of re-validation (jobs/validate.py with execution.*,
no model) and the re-execution job over its output (jobs/execute.py), exactly once."""

import copy
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

ROWS = 12


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    """BFCL multi-turn first turns with raw outputs: the gold (6), a wrong value (3), no call (3)."""
    from pipelines.recipe.prepare import bfcl_folder, multi_turn_rows, to_shard_row

    rows = [to_shard_row(r, i) for i, r in enumerate(multi_turn_rows(bfcl_folder("bfcl-eval"), "multi_turn_base")[:ROWS])]
    expected = {}
    for i, row in enumerate(rows):
        gold = json.loads(row["answers"])
        if i < 6:
            output, expected[row["id"]] = gold, True
        elif i < 9:
            output = copy.deepcopy(gold)
            first = output[0]["arguments"]
            key = next(iter(first))
            first[key] = f"{first[key]}_elsewhere" if isinstance(first[key], str) else [first[key]]
            expected[row["id"]] = False
        else:
            output, expected[row["id"]] = [], False
        row["raw_output"] = json.dumps(output)
    folder = tmp_path_factory.mktemp("mt-labeled")
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-0.parquet")
    return folder, expected


def test_validation_with_execution_then_re_execution_exactly_once(labeled, cluster, tmp_path):
    from pipelines.cli import data_job_main, main
    from pipelines.execution.job import load_execute_config
    from pipelines.execution.job import run as execute

    folder, expected = labeled
    common = [f"ray.address={cluster[0].address}", "progress_interval_s=600"]
    validated = tmp_path / "validated"
    assert main(["conf=local", f"input.path={folder}", f"output.path={validated}", "execution.implementations=[bfcl]",
                 *common], revalidate=True) == 0
    table = {r["id"]: r for r in pq.read_table(validated).to_pylist()}
    assert {i: r["exec_correct"] for i, r in table.items()} == expected
    assert {r["exec_status"] for r in table.values()} == {"ok"}
    assert all(r["exec_results"] for i, r in table.items() if expected[i])  # the gold's calls' results, written
    assert {table[i]["exec_mismatch"].split(":")[0] for i in list(expected)[9:]} == {"empty_turn"}
    summary = json.loads((validated / "_summary.json").read_text())
    assert summary["execution"]["exec_correct"] == {"rows": ROWS, "correct": 6, "accuracy": 0.5}

    executed = tmp_path / "executed"
    args = ["conf=local", f"input.path={validated}", f"output.path={executed}", *common]
    assert data_job_main(args, load_execute_config, execute) == 0
    again = {r["id"]: r for r in pq.read_table(executed).to_pylist()}
    columns = ("exec_status", "exec_results", "exec_errors", "exec_correct", "exec_mismatch")
    assert {i: [r[c] for c in columns] for i, r in again.items()} == {i: [r[c] for c in columns] for i, r in table.items()}
    assert list(pq.read_schema(next(executed.glob("*.parquet"))).names).count("exec_status") == 1  # replaced, not doubled
    pieces = sorted(p.name for p in executed.glob("*.parquet"))
    assert data_job_main(args, load_execute_config, execute) == 0  # a rerun: nothing to do, nothing rewritten
    assert sorted(p.name for p in executed.glob("*.parquet")) == pieces
    assert json.loads((executed / "_summary.json").read_text())["exec_correct"]["accuracy"] == 0.5
    report = (executed / "_report.html").read_text()
    assert "Execution report" in report and "exec_status = ok" in report

    exported = tmp_path / "train"  # training data: the rows whose calls did what the gold's do
    done = subprocess.run([sys.executable, "jobs/export.py", f"input.path={executed}", f"output.path={exported}",
                           "export.require_exec_correct=true"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    kept = {json.loads(line)["id"] for path in exported.glob("part-*.jsonl") for line in path.read_text().splitlines()}
    assert kept == {i for i, right in expected.items() if right}
    assert json.loads((exported / "_summary.json").read_text())["dropped"] == {"exec_incorrect": ROWS - len(kept)}
