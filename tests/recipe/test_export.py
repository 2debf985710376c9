"""jobs/export.py as a user runs it: over a real labeling output (made by jobs/validate.py from known
outputs, so the calls are known), both formats, the filters counted, and the xLAM export read back
by jobs/label.py."""

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

TOOLS = json.dumps([{"name": "weather", "description": "Weather in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "description": "City"}}, "required": ["city"]}}])
OSLO = json.dumps([{"name": "weather", "arguments": {"city": "Oslo"}}])
ROWS = [  # id, query, raw output, gold
    ("oslo", "Weather in Oslo?", OSLO, OSLO),
    ("wrong", "Weather in Oslo now?", json.dumps([{"name": "weather", "arguments": {"city": "Bergen"}}]), OSLO),
    ("none", "Tell me a joke.", "[]", None),
    ("garbled", "Weather in Rome?", "oops", None),
    ("again", "Weather in Oslo?", OSLO, OSLO),  # the same query and tools as `oslo`
    ("invalid", "Weather?", json.dumps([{"name": "weather", "arguments": {}}]), None),
]


def _job(script, *args, code=0):
    proc = subprocess.run([sys.executable, f"jobs/{script}", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def labels(tmp_path_factory, cluster):
    root = tmp_path_factory.mktemp("export")
    (root / "given").mkdir()
    pq.write_table(pa.table({"id": [r[0] for r in ROWS], "query": [r[1] for r in ROWS], "tools": [TOOLS] * len(ROWS),
                             "raw_output": [r[2] for r in ROWS], "answers": [r[3] for r in ROWS]}),
                   root / "given" / "rows.parquet")
    _job("validate.py", "conf=local", f"input.path={root / 'given'}", f"output.path={root / 'labels'}", f"ray.address={cluster[0].address}")
    return root


def _read(folder):
    rows = []
    for path in sorted(folder.glob("part-*")):
        if path.suffix == ".jsonl":
            rows += [json.loads(line) for line in path.read_text().splitlines()]
        else:
            rows += pq.read_table(path).to_pylist()
    return rows


def test_xlam_export_keeps_what_the_filters_keep_and_the_labeling_job_reads_it_back(labels, cluster):
    out = labels / "xlam"
    _job("export.py", "conf=local", f"input.path={labels / 'labels'}", f"output.path={out}", "export.file_format=parquet",
         "export.require_correct=true")
    rows = {r["id"]: r for r in _read(out)}
    assert sorted(rows) == ["none", "oslo"]
    assert json.loads(rows["oslo"]["answers"]) == [{"name": "weather", "arguments": {"city": "Oslo"}}]
    assert json.loads(rows["none"]["answers"]) == [] and rows["oslo"]["tools"] == TOOLS
    summary = json.loads((out / "_summary.json").read_text())
    assert (summary["rows_in"], summary["rows"]) == (6, 2)
    assert summary["dropped"] == {"status": 2, "incorrect": 1, "duplicate": 1}
    # The export is the labeling job's input: a dry run reads it and builds every prompt.
    _job("label.py", "conf=local", f"input.path={out}", f"output.path={labels / 'relabeled'}", "dry_run=true",
         f"ray.address={cluster[0].address}")
    relabeled = json.loads((labels / "relabeled" / "_summary.json").read_text())
    assert relabeled["rows"] == 2 and relabeled["status"]["dry_run"] == 2


def test_openai_export_writes_chat_records_with_tool_calls(labels):
    out = labels / "openai"
    _job("export.py", f"input.path={labels / 'labels'}", f"output.path={out}", "export.format=openai")
    rows = {r["id"]: r for r in _read(out)}
    assert sorted(rows) == ["none", "oslo", "wrong"]  # no gold filter: the wrong label is a label too
    user, assistant = rows["oslo"]["messages"]
    assert user == {"role": "user", "content": "Weather in Oslo?"}
    assert assistant["role"] == "assistant" and assistant["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]
    assert rows["none"]["messages"][1]["tool_calls"] == []
    (tool,) = rows["oslo"]["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "weather"
    assert tool["function"]["parameters"]["properties"]["city"]["type"] == "string"


def test_agreement_filter_and_refusals(labels):
    out = labels / "agreeing"
    _job("export.py", f"input.path={labels / 'labels'}", f"output.path={out}", "export.min_agreement=0.5")
    # These labels were made without samples: no row has an agreement to meet the bar with.
    assert json.loads((out / "_summary.json").read_text())["dropped"]["low_agreement"] == 4
    refused = _job("export.py", f"input.path={labels / 'given'}", f"output.path={labels / 'nope'}", code=2)
    assert "is not an output of jobs/label.py" in refused
    assert "not empty" in _job("export.py", f"input.path={labels / 'labels'}", f"output.path={out}", code=2)


# Decontamination: BFCL's simple_python_0 and simple_python_1, as given and as near copies, beside clean rows.
BFCL_0 = "Find the area of a triangle with a base of 10 units and height of 5 units."
CONTAMINATION = [  # id, query, dropped by the BFCL set, by the custom set
    ("bfcl_exact", "FIND the area of a triangle, with a base of 10 units and height of 5 units!", True, False),
    ("bfcl_near", "Please find the area of a triangle with a base of 10 units and height of 7 units.", True, False),
    ("bfcl_short", "Calculate the factorial of 5 using math functions", True, False),  # 8 words: whole text only
    ("custom_near", "Book a table for two at Luigi's tonight at eight, near the station please", False, True),
    ("clean", "What is the weather in Oslo today and tomorrow morning at nine?", False, False),
]


@pytest.fixture(scope="module")
def near_copies(tmp_path_factory, cluster):
    root = tmp_path_factory.mktemp("decontaminate")
    (root / "given").mkdir()
    calls = json.dumps([{"name": "weather", "arguments": {"city": "Oslo"}}])
    pq.write_table(pa.table({"id": [r[0] for r in CONTAMINATION], "query": [r[1] for r in CONTAMINATION],
                             "tools": [TOOLS] * len(CONTAMINATION), "raw_output": [calls] * len(CONTAMINATION)}),
                   root / "given" / "rows.parquet")
    (root / "evalset.jsonl").write_text(json.dumps({"query": "Book a table for two at Luigi's tonight at eight, "
                                                            "near the station"}) + "\n")
    _job("validate.py", "conf=local", f"input.path={root / 'given'}", f"output.path={root / 'labels'}", f"ray.address={cluster[0].address}")
    return root


@pytest.mark.parametrize("eval_sets, column", [("[bfcl]", 2), (None, 3)])
def test_decontamination_drops_the_rows_an_evaluation_set_holds_and_counts_them(near_copies, eval_sets, column):
    sets = eval_sets or f"[{near_copies / 'evalset.jsonl'}]"
    out = near_copies / f"out-{column}"
    _job("export.py", f"input.path={near_copies / 'labels'}", f"output.path={out}", "export.decontaminate=true",
         f"export.eval_sets={sets}")
    kept = {r["id"] for r in _read(out)}
    assert kept == {r[0] for r in CONTAMINATION if not r[column]}
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["dropped"] == {"contaminated": len(CONTAMINATION) - len(kept)}
    assert summary["decontamination"]["eval_queries"] > (8000 if eval_sets else 0)
