"""A hostile corpus of the project's own, by class, through the real job (integration): one hostile
row among good ones must end with exit 0, every id exactly once, each hostile row carrying its
reason, the good rows as they come out alone, no row needing the time budget's backstop, no
connection to a local listener and nothing of a local file in the output. The same classes, row by
row and fast, are in tests/test_hostile.py."""

from __future__ import annotations

import json
import socket
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.label.test_integration import run_job

pytestmark = pytest.mark.integration

MARKER = "secret-marker-7f3a"  # the content of a local file a row points at: must never reach the output


def tool(spec: dict, name: str = "f") -> dict:
    return {"name": name, "description": "d", "parameters": {"type": "object", "properties": {"a": spec},
                                                             "required": ["a"]}}


def good_rows() -> list[dict]:
    weather = {"name": "get_weather", "description": "Current weather for a city.",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    return [
        {"id": "good-1", "query": "What is the weather in Paris?", "tools": json.dumps([weather]),
         "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}}])},
        {"id": "good-2", "query": "Quel temps fait-il à Montréal ? 😀", "tools": json.dumps([weather]),
         "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Montréal"}}])},
        {"id": "good-3", "query": "Tell me a joke.", "tools": json.dumps([weather]), "answers": "[]"},
    ]


def hostile_rows(port: int, secret_file: str) -> list[tuple[dict, str, str | None]]:
    """(row, expected status, expected first reason code, or None for a row labeled as usual) by class."""
    here = f"http://127.0.0.1:{port}"
    rows = [
        # the four cases of the issue: a JSON-escaped lone surrogate in a multi-turn query ...
        ({"query": '[{"role": "user", "content": "hi \\ud800 there"}]', "tools": json.dumps([tool({"type": "string"})])},
         "bad_input", "invalid_unicode"),
        # ... a 5,000-digit integer in a tool schema ...
        ({"query": "q", "tools": '[{"name": "f", "description": "", "parameters": {"a": {"type": "int", "default": '
                                 + "7" * 5000 + "}}}]"}, "bad_input", "number_too_large"),
        # ... a $dynamicRef to a local file (JSON, so that its content would show if it were read) ...
        ({"query": "q", "tools": json.dumps([tool({"type": "string", "$dynamicRef": f"file://{secret_file}"})])},
         "bad_input", "unsupported_ref"),
        # ... and a backtracking pattern, with a gold value that takes Python's `re` minutes
        ({"query": "q aaaa", "tools": json.dumps([tool({"type": "string", "pattern": "^(a+)+$"})]),
         "answers": json.dumps([{"name": "f", "arguments": {"a": "a" * 34 + "!"}}])}, None, None),
        # references to a listener, every keyword
        *(({"query": "q", "tools": json.dumps([tool({"type": "string", keyword: f"{here}/{keyword}"})])},
           "bad_input", "unsupported_ref") for keyword in ("$ref", "$id", "$schema", "$recursiveRef", "$anchor")),
        ({"query": "q", "tools": json.dumps([tool({"type": "string", "pattern": "(?<=x)y"})])},
         "bad_input", "unsupported_pattern"),
        ({"query": "q", "tools": json.dumps([tool({"type": "object", "unevaluatedProperties": False})])},
         "bad_input", "unsupported_keyword"),
        ({"query": "q", "tools": '[{"name": "f", "description": "", "parameters": {"a": {"type": "number", '
                                 '"maximum": NaN}}}]'}, "bad_input", "not_finite"),
        ({"query": "q", "tools": '[{"name": "f", "name": "g", "description": "", "parameters": {}}]'},
         "bad_input", "duplicate_key"),
        ({"query": "q", "tools": "[" * 5000 + "]" * 5000}, "bad_input", "schema_too_deep"),
        ({"query": "[" * 5000 + "]" * 5000, "tools": json.dumps([tool({"type": "string"})])}, "bad_input", "too_deep"),
        # a type name whose nested generics would cost depth x length: an unknown type, labeled as usual
        ({"query": "q", "tools": json.dumps([{"name": "f", "description": "", "parameters": {
            "a": {"type": "List[" * 3000 + "int" + "]" * 3000}}}])}, None, None),
        # hostile gold: the row is labeled, its gold is bad_gold
        ({"query": "q", "tools": json.dumps([tool({"type": "string"})]),
          "answers": '[{"name": "f", "arguments": {"a": NaN}}]'}, None, None),
        ({"query": "q", "tools": json.dumps([tool({"type": "string"})]), "answers": "[" * 5000 + "]" * 5000},
         None, None),
    ]
    return [({"id": f"hostile-{i}", "answers": None, **row}, status, code) for i, (row, status, code) in enumerate(rows)]


# Model outputs (re-validation reads them from `raw_output`): status and first reason code.
PATTERN_TOOLS = json.dumps([tool({"type": "string", "pattern": "^(a+)+$"}),
                            tool({"type": "array", "uniqueItems": True}, name="g")])
HOSTILE_OUTPUTS = [
    ('[{"name": "f", "arguments": {"a": NaN}}]', "parse_error", "not_finite"),
    ('[{"name": "f", "arguments": {"a": Infinity}}]', "parse_error", "not_finite"),
    ('[{"name": "f", "arguments": {"a": "x", "a": "y"}}]', "parse_error", "duplicate_key"),
    ('[{"name": "f", "arguments": {"a": "\\ud800"}}]', "parse_error", "invalid_unicode"),
    ('[{"name": "f", "arguments": {"a": ' + "1" * 5000 + "}}]", "parse_error", "number_too_large"),
    ("[" * 5000 + "]" * 5000, "parse_error", "output_too_large"),
    ("```" + "a" * 99_000, "parse_error", "parse_error"),
    (json.dumps([{"name": "f", "arguments": {"a": "a" * 40 + "!"}}]), "invalid_call", "out_of_range"),
    (json.dumps([{"name": "g", "arguments": {"a": list(range(8000))}}]), "ok", None),
    (json.dumps([{"name": "g", "arguments": {"a": [{"k": 1}, {"k": 1.0}]}}]), "invalid_call", "out_of_range"),
]


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()


@pytest.fixture
def listener():
    found = Listener()
    yield found
    found.sock.close()


def write_shard(path, rows: list[dict]) -> None:
    columns = sorted({k for r in rows for k in r})
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows],
                                        schema=pa.schema([(c, pa.string()) for c in columns])), path)


def assert_clean(table: pa.Table, listener: Listener) -> None:
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "a row came out twice"
    assert listener.accepted == 0, "a row made the job connect to the listener"
    assert MARKER not in json.dumps(table.to_pylist(), default=str), "a local file's content reached the output"
    for row in table.to_pylist():  # every row within the time budget: none needed the backstop
        assert not any(e.startswith("row_time_budget") for e in row["errors"] or []), row["id"]


@pytest.mark.parametrize("dry_run", [True, False])
def test_hostile_rows_among_good_ones_through_the_job(common_args, tmp_path, listener, dry_run):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"enum": [MARKER], "type": "string"}))
    hostile = hostile_rows(listener.port, str(secret))
    data, alone = tmp_path / "data", tmp_path / "alone"
    data.mkdir()
    alone.mkdir()
    # A shard name outside [A-Za-z0-9._-]: its pieces must still be found by the summary and a rerun.
    write_shard(data / "émissions.parquet", [row for row, _, _ in hostile] + good_rows())
    write_shard(alone / "good.parquet", good_rows())
    args = ["conf=local", "generation.max_tokens=8", *common_args, *(["dry_run=true"] if dry_run else [])]
    _, summary, table, _, _ = run_job([*args, f"input.path={data}", f"output.path={tmp_path / 'out'}"])
    assert summary["rows"] == summary["input_rows"] == len(hostile) + 3
    assert_clean(table, listener)
    rows = {r["id"]: r for r in table.to_pylist()}
    for row, status, code in hostile:
        out = rows[row["id"]]
        if status is None:  # labeled as usual: not stopped before the engine
            assert out["status"] not in ("bad_input", "row_error"), (row["id"], out["errors"])
        else:
            assert out["status"] == status and out["errors"][0].split(":")[0] == code, (row["id"], out["errors"])
    pattern_row = rows[hostile[3][0]["id"]]  # the backtracking pattern's gold, audited in linear time
    assert any(e.startswith("out_of_range: f.a:") for e in pattern_row["gold_errors"]), pattern_row["gold_errors"]
    for row_id in (hostile[-2][0]["id"], hostile[-1][0]["id"]):  # hostile gold: the row labeled, its gold refused
        assert rows[row_id]["mismatch"].startswith("bad_gold: ") and rows[row_id]["correct"] is None

    if dry_run:  # the good rows come out as they do alone (generation is compared with plain vLLM elsewhere)
        _, _, good_alone, _, _ = run_job([*args, f"input.path={alone}", f"output.path={tmp_path / 'out-alone'}"])
        compared = ["status", "prompt", "errors", "flags", "correct", "mismatch", "num_prompt_tokens"]
        for row in good_alone.to_pylist():
            assert {c: rows[row["id"]][c] for c in compared} == {c: row[c] for c in compared}, row["id"]
    else:
        assert all(rows[f"good-{i}"]["raw_output"] is not None for i in (1, 2, 3))

    # A rerun finds every row of the Unicode-named shard already written.
    _, again, _, _, _ = run_job([*args, f"input.path={data}", f"output.path={tmp_path / 'out'}"])
    assert again["rows_before_this_run"] == summary["rows"]


def test_hostile_outputs_through_revalidation(common_args, tmp_path, listener):
    data = tmp_path / "labeled"
    data.mkdir()
    rows = [{"id": f"out-{i}", "query": "q aaaa", "tools": PATTERN_TOOLS, "raw_output": text}
            for i, (text, _, _) in enumerate(HOSTILE_OUTPUTS)]
    write_shard(data / "labeled.parquet", rows)
    _, summary, table, _, _ = run_job(["conf=local", f"input.path={data}", f"output.path={tmp_path / 'out'}",
                                       *common_args], revalidate=True)
    assert summary["rows"] == len(HOSTILE_OUTPUTS)
    assert_clean(table, listener)
    out = {r["id"]: r for r in table.to_pylist()}
    for i, (text, status, code) in enumerate(HOSTILE_OUTPUTS):
        row = out[f"out-{i}"]
        assert row["status"] == status, (text[:60], row["errors"])
        assert (row["errors"][0].split(":")[0] if row["errors"] else None) == code, (text[:60], row["errors"])
    for row in out.values():  # every written argument is strict JSON
        for call in row["calls"] or []:
            json.loads(call["arguments"], parse_constant=lambda name: pytest.fail(f"{name} written in calls"))


@pytest.mark.parametrize("where", ["same", "parent"])
def test_an_output_that_is_or_holds_the_input_is_refused_and_nothing_is_deleted(tmp_path, tiny_model, where):
    import subprocess
    import sys

    from tests.conftest import REPO

    data = tmp_path / "data"
    data.mkdir()
    write_shard(data / "part.parquet", good_rows())
    before = sorted(p.name for p in data.iterdir())
    output = data if where == "same" else tmp_path
    proc = subprocess.run([sys.executable, "jobs/label.py", "conf=local", f"input.path={data}",
                           f"output.path={output}", "resume=overwrite", "dry_run=true", f"model.source={tiny_model}",
                           "generation.constrained=false"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "is input.path" in proc.stdout and "or a folder holding it" in proc.stdout
    assert sorted(p.name for p in data.iterdir()) == before
