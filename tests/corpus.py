"""A corpus of bad input rows, each with the status and reason code it must come out with."""

import datetime as dt
import json

import pyarrow as pa

GOOD_TOOL = {"name": "f", "description": "F.", "parameters": {"type": "object", "properties": {
    "a": {"type": "integer", "description": "A"}}, "required": ["a"]}}


def _deep(levels):
    schema = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def _tools(*tools):
    return json.dumps(list(tools))


# (case, query, tools, expected status, expected reason code or None)
CASES = [
    ("good", "use f with a=1", _tools(GOOD_TOOL), "dry_run", None),
    ("null_query", None, _tools(GOOD_TOOL), "bad_input", "missing_query"),
    ("empty_query", "", _tools(GOOD_TOOL), "bad_input", "empty_query"),
    ("blank_query", " \n\t ", _tools(GOOD_TOOL), "bad_input", "empty_query"),
    ("very_long_query", "lorem ipsum " * 5000, _tools(GOOD_TOOL), "prompt_too_long", "prompt_too_long"),
    ("null_tools", "q", None, "bad_input", "missing_tools"),
    ("tools_not_json", "q", "[{name: f}", "bad_input", "tools_not_json"),
    ("tools_not_list", "q", json.dumps(GOOD_TOOL), "bad_input", "tools_not_list"),
    ("tools_empty", "q", "[]", "bad_input", "tools_empty"),
    ("tool_without_name", "q", _tools({"description": "x"}), "bad_input", "tool_without_name"),
    ("duplicate_names", "q", _tools(GOOD_TOOL, GOOD_TOOL), "bad_input", "duplicate_tool_name"),
    ("parameters_not_object", "q", _tools({"name": "f", "parameters": "a, b"}), "bad_input", "parameters_not_object"),
    ("required_absent", "q", _tools({"name": "f", "parameters": {"type": "object", "properties": {}, "required": ["z"]}}),
     "bad_input", "required_not_found"),
    ("ref", "q", _tools({"name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}}}),
     "bad_input", "unsupported_ref"),
    ("absurdly_deep", "q", _tools({"name": "f", "parameters": {"type": "object", "properties": {"a": _deep(40)}}}),
     "bad_input", "schema_too_deep"),
    # valid JSON, nested past any parser's recursion: refused by the depth scan before parsing, as too deep
    ("tools_nested_too_deep_for_json", "q", "[" * 50_000 + "]" * 50_000, "bad_input", "schema_too_deep"),
    ("unicode_and_control_chars", "Ünïcödé \x00\x1f 東京 \U0001F600", _tools(GOOD_TOOL), "dry_run", None),
]


def corpus_table() -> pa.Table:
    n = len(CASES)
    return pa.table({
        "case": [c[0] for c in CASES],
        "query": pa.array([c[1] for c in CASES], pa.string()),
        "tools": pa.array([c[2] for c in CASES], pa.string()),
        # Extra columns of odd types pass through untouched.
        "odd_int": pa.array(range(n), pa.int8()),
        "odd_list": pa.array([[i, i + 1] for i in range(n)], pa.list_(pa.int64())),
        "odd_struct": pa.array([{"k": str(i), "v": float(i)} for i in range(n)]),
        "odd_binary": pa.array([bytes([i, 255]) for i in range(n)], pa.binary()),
        "odd_time": pa.array([dt.datetime(2024, 1, 1) + dt.timedelta(hours=i) for i in range(n)], pa.timestamp("ms")),
        "odd_map": pa.array([[("k", i)] for i in range(n)], pa.map_(pa.string(), pa.int32())),
        "odd_null": pa.nulls(n),
    })
