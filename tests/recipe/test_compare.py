"""jobs/compare.py: the per-row comparison (pure), and the job over real runs on Ray Data (integration)."""

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.recipe.compare import PairCounter, compare_row
from tests.conftest import REPO

TOOLS = json.dumps([{"name": "weather", "description": "Weather in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "description": "City"},
                                     "unit": {"type": "string", "description": "Unit", "default": "C"}},
    "required": ["city"]}}])
OSLO = [{"name": "weather", "arguments": '{"city": "Oslo"}'}]
OSLO_C = [{"name": "weather", "arguments": '{"city": "Oslo", "unit": "C"}'}]  # equal to OSLO: the default
ROME = [{"name": "weather", "arguments": '{"city": "Rome"}'}]


def _row(*runs):
    row = {"id": "x", "query": "q", "tools": TOOLS}
    for i, (status, calls) in enumerate(runs):
        row.update({f"status_{i}": status, f"calls_{i}": calls, f"call_type_{i}": "single" if calls else "none"})
    return row


def test_three_runs_two_agree():
    out = compare_row(_row(("ok", OSLO), ("ok", OSLO_C), ("ok", ROME)), 3)
    assert out["runs_agree"] is False
    assert out["consensus_calls"] == OSLO and out["consensus_share"] == pytest.approx(2 / 3)
    assert out["pairs_agree"] == [True, False, False]
    assert out["run_statuses"] == ["ok", "ok", "ok"] and out["run_calls"] == [OSLO, OSLO_C, ROME]


def test_all_agree_and_an_invalid_or_unparsed_run_never_agrees():
    assert compare_row(_row(("ok", OSLO), ("ok", OSLO_C)), 2)["runs_agree"] is True
    assert compare_row(_row(("no_call", []), ("no_call", [])), 2)["consensus_calls"] == []
    invalid = compare_row(_row(("invalid_call", OSLO), ("invalid_call", OSLO)), 2)
    assert (invalid["runs_agree"], invalid["consensus_calls"], invalid["pairs_agree"]) == (False, None, [True])
    unparsed = compare_row(_row(("ok", OSLO), ("parse_error", None)), 2)
    assert (unparsed["runs_agree"], unparsed["consensus_share"], unparsed["pairs_agree"]) == (False, 0.5, [False])


def test_pair_counter():
    counter = PairCounter(["a", "b", "c"])
    counter.add({"run_statuses": [["ok", "ok", "ok"], ["no_call", "ok", "no_call"]],
                 "run_call_types": [["single", "single", "single"], ["none", "single", "none"]],
                 "runs_agree": [False, False], "consensus_calls": [OSLO, None],
                 "pairs_agree": [[True, False, False], [False, True, False]]})
    summary = counter.to_dict()
    assert (summary["rows"], summary["runs_agree"], summary["with_consensus"]) == (2, 0, 1)
    ab, ac, bc = summary["pairwise"]
    assert ab["runs"] == ["a", "b"] and (ab["rows"], ab["agree"], ab["share"]) == (2, 1, 0.5)
    assert ab["by_call_type"] == {"none": {"rows": 1, "agree": 0, "share": 0.0},
                                  "single": {"rows": 1, "agree": 1, "share": 1.0}}
    assert ac["by_status"] == {"no_call": {"rows": 1, "agree": 1, "share": 1.0},
                               "ok": {"rows": 1, "agree": 0, "share": 0.0}}
    assert bc["agree"] == 0 and bc["by_status"] == {"ok": {"rows": 2, "agree": 0, "share": 0.0}}


# ------------------------------------------------------------------------------------- the job

RUNS = {  # run -> raw outputs of rows r0..r3, which jobs/validate.py labels
    "a": [json.dumps([{"name": "weather", "arguments": {"city": "Oslo"}}]), "[]", "oops",
          json.dumps([{"name": "weather", "arguments": {"city": "Rome"}}])],
    "b": [json.dumps([{"name": "weather", "arguments": {"city": "Oslo", "unit": "C"}}]), "[]", "[]",
          json.dumps([{"name": "weather", "arguments": {"city": "Paris"}}])],
}


def _job(script, *args, code=0):
    proc = subprocess.run([sys.executable, f"jobs/{script}", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cluster):
    root = tmp_path_factory.mktemp("compare")
    for name, outputs in RUNS.items():
        (root / f"{name}-given").mkdir()
        ids = [f"r{i}" for i in range(len(outputs))]
        pq.write_table(pa.table({"id": ids, "query": ["Weather in Oslo?"] * len(ids), "tools": [TOOLS] * len(ids),
                                 "raw_output": outputs}), root / f"{name}-given" / "rows.parquet")
        _job("validate.py", "conf=local", f"input.path={root / f'{name}-given'}", f"output.path={root / name}", f"ray.address={cluster[0].address}")
    # a third run of one row fewer
    (root / "short-given").mkdir()
    pq.write_table(pa.table({"id": ["r0", "r1", "r2"], "query": ["q"] * 3, "tools": [TOOLS] * 3, "raw_output": ["[]"] * 3}),
                   root / "short-given" / "rows.parquet")
    _job("validate.py", "conf=local", f"input.path={root / 'short-given'}", f"output.path={root / 'short'}", f"ray.address={cluster[0].address}")
    return root


@pytest.mark.integration
def test_compare_two_real_runs(runs):
    _job("compare.py", f"input.paths=[{runs / 'a'},{runs / 'b'}]", f"output.path={runs / 'ab'}", "ray.num_cpus=4",
         "compare.num_partitions=2")
    rows = {r["id"]: r for path in (runs / "ab").glob("*.parquet") for r in pq.read_table(path).to_pylist()}
    assert sorted(rows) == ["r0", "r1", "r2", "r3"]
    assert [rows[i]["runs_agree"] for i in ("r0", "r1", "r2", "r3")] == [True, True, False, False]
    assert rows["r2"]["run_statuses"] == ["parse_error", "no_call"] and rows["r2"]["consensus_calls"] is None
    assert rows["r0"]["consensus_calls"] == [{"name": "weather", "arguments": '{"city": "Oslo"}'}]
    assert rows["r0"]["query"] == "Weather in Oslo?" and json.loads(rows["r0"]["tools"]) == json.loads(TOOLS)
    summary = json.loads((runs / "ab" / "_summary.json").read_text())
    assert (summary["rows"], summary["input_rows"], summary["runs_agree"]) == (4, 4, 2)
    assert "Compare report" in (runs / "ab" / "_report.html").read_text()
    (pair,) = summary["pairwise"]
    assert pair["runs"] == ["a", "b"] and (pair["agree"], pair["share"]) == (2, 0.5)
    assert pair["by_status"] == {"no_call": {"rows": 1, "agree": 1, "share": 1.0},
                                 "ok": {"rows": 2, "agree": 1, "share": 0.5},
                                 "parse_error": {"rows": 1, "agree": 0, "share": 0.0}}


@pytest.mark.integration
def test_compare_refuses_runs_of_other_rows_with_the_counts(runs):
    out = _job("compare.py", f"input.paths=[{runs / 'a'},{runs / 'short'}]", f"output.path={runs / 'refused'}", code=2)
    assert "a has 4 ids, short 3: 1 only in a, 0 only in short (e.g. 'r3')" in out
    assert not (runs / "refused").exists()
    out = _job("compare.py", f"input.paths=[{runs / 'a'},{runs / 'a-given'}]", f"output.path={runs / 'refused'}", code=2)
    assert "input.paths[1]" in out and "has no _manifest.json" in out


@pytest.mark.integration
def test_export_reads_a_compare_output_s_consensus_as_the_label(runs):
    _job("compare.py", f"input.paths=[{runs / 'a'},{runs / 'b'}]", f"output.path={runs / 'ab-export'}", "ray.num_cpus=4",
         "compare.num_partitions=2")
    out = runs / "consensus"
    _job("export.py", f"input.path={runs / 'ab-export'}", f"output.path={out}", "export.dedupe=false")
    rows = sorted((json.loads(line) for line in (out / "part-00000.jsonl").read_text().splitlines()), key=lambda r: r["id"])
    assert [(r["id"], json.loads(r["answers"])) for r in rows] == [
        ("r0", [{"name": "weather", "arguments": {"city": "Oslo"}}]), ("r1", [])]
    assert json.loads((out / "_summary.json").read_text())["dropped"] == {"status": 2}
    refused = _job("export.py", f"input.path={runs / 'ab-export'}", f"output.path={runs / 'nope'}",
                   "export.judge_verdicts=[agree]", code=2)
    assert "has no judge_verdict column" in refused
