"""The execution rules, pure: gold call strings read without evaluation, and the exec categories' result rules."""

import pytest

from pipelines.core.execution import (call_string, exec_category_verdict, missing_results, parse_call_string,
                                      result_matches, result_text)

PARAMETERS = {"sort": ["file_name"], "fillFuelTank": ["fuelAmount"]}.get


def test_a_gold_call_string_becomes_a_json_call():
    assert parse_call_string("cd(folder='document')", PARAMETERS) == {"name": "cd", "arguments": {"folder": "document"}}
    assert parse_call_string("sort('final_report.pdf')", PARAMETERS) == {"name": "sort", "arguments": {"file_name": "final_report.pdf"}}
    assert parse_call_string("f(a=[1, 2.5, {'k': None}], b=True, c=-3)", PARAMETERS) == {
        "name": "f", "arguments": {"a": [1, 2.5, {"k": None}], "b": True, "c": -3}}
    call = {"name": "mv", "arguments": {"source": "a b.txt", "n": 2, "x": [1, "y"]}}
    assert parse_call_string(call_string(call), PARAMETERS) == call


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')",  # not a call of a named function
    "f(x=open('/etc/passwd'))",  # an argument that is not a literal
    "f(**{'a': 1})",
    "f(1)",  # a positional argument of an unknown function
    "f(",
    "os.system('true')",
])
def test_anything_but_a_literal_call_is_refused_without_running(text):
    with pytest.raises(ValueError):
        parse_call_string(text, PARAMETERS)


def test_results_as_the_leaderboard_keeps_them():
    assert result_text("x") == "x" and result_text({"a": 1}) == '{"a": 1}' and result_text(3) == "3"
    assert result_text({"a": {1, 2}}).startswith("{'a'")  # not JSON: its str
    assert missing_results(["a", "a", "b"], ["b", "a"]) == ["a"]  # each of the model's results used once


@pytest.mark.parametrize("value, expected, rule, ok", [
    (3, 3, "exact_match", True), ((1, 2), [1, 2], "exact_match", True), (3, 3.5, "exact_match", False),
    (11.9, 10, "real_time_match", True), (12.1, 10, "real_time_match", False), ("10", 10, "real_time_match", False),
    (-11, -10, "real_time_match", True),
    ({"a": 1, "b": 2}, {"a": 9, "b": 8}, "structural_match", True), ({"a": 1}, {"a": 1, "b": 2}, "structural_match", False),
    ([1, 2], [3, 4], "structural_match", True), ([1], [3, 4], "structural_match", False), ("x", 1, "structural_match", False),
])
def test_each_result_rule(value, expected, rule, ok):
    assert (result_matches(value, expected, rule) is None) is ok


def test_exec_category_results_match_one_to_one_in_any_order():
    assert exec_category_verdict([2, 1], [1, 2], ["exact_match", "exact_match"]) is None
    assert exec_category_verdict([1, 1], [1, 2], ["exact_match", "exact_match"]).code == "wrong_result"
    assert exec_category_verdict([1], [1, 2], ["exact_match", "exact_match"]).code == "wrong_count"
