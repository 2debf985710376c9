import json

import pytest

from pipelines.core.reasons import Reason
from pipelines.core.tools import load_tools
from pipelines.core.validation import call_type, label_output

TOOLS = load_tools([
    {"name": "weather", "description": "", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]},
        "days": {"type": "integer"},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
        "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["city"]}},
    {"name": "sort", "description": "", "parameters": {
        "numbers": {"type": "List[float]"}, "desc": {"type": "bool, optional", "default": False},
        "cb": {"type": "Callable, optional"}}},
])


def label(calls, query=""):
    return label_output(json.dumps(calls), TOOLS, query)


def test_valid_calls_are_ok():
    result = label([{"name": "weather", "arguments": {"city": "Oslo", "unit": "c", "days": 3,
                                                     "where": {"lat": 59.9}, "tags": ["x"]}}])
    assert (result.status, result.errors, result.call_type) == ("ok", [], "multiple")


def test_integers_are_numbers_but_booleans_are_not_integers():
    assert label([{"name": "sort", "arguments": {"numbers": [1, 2.5]}}]).status == "ok"
    result = label([{"name": "weather", "arguments": {"city": "Oslo", "days": True}}])
    assert result.status == "invalid_call" and str(result.errors[0]).startswith("type_mismatch: weather.days")


@pytest.mark.parametrize("arguments, code", [
    ({}, "missing_required"),
    ({"city": "Oslo", "color": "red"}, "unknown_argument"),
    ({"city": 3}, "type_mismatch"),
    ({"city": "Oslo", "unit": "k"}, "enum_mismatch"),
    ({"city": "Oslo", "where": {}}, "missing_required"),
    ({"city": "Oslo", "where": {"lat": "north"}}, "type_mismatch"),
    ({"city": "Oslo", "tags": ["a", 1]}, "type_mismatch"),
])
def test_each_problem_has_its_code(arguments, code):
    result = label([{"name": "weather", "arguments": arguments}])
    assert result.status == "invalid_call"
    assert [e.code for e in result.errors] == [code]


def test_unknown_function():
    result = label([{"name": "nope", "arguments": {}}])
    assert result.status == "invalid_call" and str(result.errors[0]).startswith("unknown_function: 'nope'")


def test_xlam_missing_required_and_unknown_type_flag():
    result = label([{"name": "sort", "arguments": {"desc": True, "cb": "f"}}], query="sort f")
    assert result.errors == [Reason("missing_required", "sort.numbers")]
    assert result.flags == [Reason("unknown_type", "sort has type 'Callable, optional'; not checked")]


def test_statuses_for_unusable_output():
    assert label_output("[]", TOOLS).status == "no_call"
    assert label_output("nope", TOOLS).status == "parse_error"
    assert label_output('{"name": "weather"}', TOOLS).status == "invalid_call"  # a lone call without arguments
    assert label_output('{"weather": 1}', TOOLS).status == "parse_error"
    assert label_output("[3]", TOOLS).status == "invalid_call"


@pytest.mark.parametrize("names, num_tools, expected", [
    ([], 2, "none"), (["a"], 1, "single"), (["a"], 3, "multiple"),
    (["a", "a"], 1, "parallel"), (["a", "b"], 2, "parallel_multiple"), (["a", "a", "b"], 2, "parallel_multiple"),
])
def test_call_types(names, num_tools, expected):
    assert call_type([{"name": n, "arguments": {}} for n in names], num_tools) == expected


def test_grounding_flags():
    result = label([{"name": "sort", "arguments": {"numbers": [3, 1], "desc": False}},
                    {"name": "weather", "arguments": {"city": "Oslo", "unit": "c"}},
                    {"name": "weather", "arguments": {"city": "Oslo", "unit": "c"}},
                    {"name": "weather", "arguments": {"city": "Bergen"}}], query="Sort 3 and 1; weather in OSLO, please")
    assert result.status == "ok"
    assert [str(f) for f in result.flags] == [
        "unknown_type: sort has type 'Callable, optional'; not checked",
        "default_not_in_query: sort.desc = 'false' is the default",
        "duplicate_call: weather with the same arguments",
        "value_not_in_query: weather.city = 'Bergen'",
    ]


def test_values_in_a_multi_turn_query_count():
    query = json.dumps([{"role": "user", "content": "weather?"}, {"role": "assistant", "content": "where?"},
                        {"role": "user", "content": "Tromsø"}])
    assert label([{"name": "weather", "arguments": {"city": "Tromsø"}}], query).flags == []


BOUNDED = load_tools([{"name": "book", "description": "", "parameters": {"type": "object", "properties": {
    "guests": {"type": "integer", "minimum": 1, "maximum": 10},
    "code": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    # As BFCL and OpenAPI-derived specs write it: the enum lists the allowed items.
    "metrics": {"type": "array", "items": {"type": "string"}, "enum": ["temperature", "humidity", "co2"]}},
    "required": []}}])


@pytest.mark.parametrize("arguments, code", [
    ({"guests": 0}, "out_of_range"), ({"guests": 11}, "out_of_range"), ({"code": "abc1"}, "out_of_range"),
    ({"code": "AB"}, "out_of_range"), ({"tags": ["a", "b", "c"]}, "out_of_range"),
    ({"guests": "two"}, "type_mismatch"), ({"tags": "a"}, "type_mismatch"),
])
def test_a_value_out_of_bounds_is_out_of_range_not_a_wrong_type(arguments, code):
    result = label_output(json.dumps([{"name": "book", "arguments": arguments}]), BOUNDED)
    assert result.status == "invalid_call" and result.errors[0].code == code, result.errors


def test_an_enum_on_an_array_is_checked_on_its_items_and_flagged():
    ok = label_output(json.dumps([{"name": "book", "arguments": {"metrics": ["temperature", "humidity"]}}]), BOUNDED)
    assert ok.status == "ok", ok.errors
    assert Reason("enum_on_array", "book.metrics: the enum is checked on each item") in ok.flags
    bad = label_output(json.dumps([{"name": "book", "arguments": {"metrics": ["temperature", "wind"]}}]), BOUNDED)
    assert bad.status == "invalid_call" and str(bad.errors[0]).startswith("enum_mismatch: book.metrics.1")
    plain = label_output(json.dumps([{"name": "book", "arguments": {"guests": 2}}]), BOUNDED)
    assert plain.status == "ok" and not any(f.code == "enum_on_array" for f in plain.flags)


def test_a_reason_is_written_as_code_colon_detail_and_read_back():
    reason = Reason("type_mismatch", "weather.days: True is not of type 'integer'")
    assert str(reason) == "type_mismatch: weather.days: True is not of type 'integer'"
    assert Reason.parse(str(reason)) == reason
