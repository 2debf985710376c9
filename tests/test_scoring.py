import json

import pytest

from pipelines.core.scoring import call_mismatch, load_gold, score_row
from pipelines.core.tools import load_tools
from pipelines.core.validation import values_equal
from pipelines.core.reasons import Reason

TOOLS = load_tools([
    {"name": "weather", "description": "", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "default": "celsius"}, "days": {"type": "integer"}},
        "required": ["city"]}},
    {"name": "stock", "description": "", "parameters": {"symbol": {"type": "str"}}},
])


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def score(calls, gold, status="ok", errors=()):
    return score_row(status, calls, list(errors), json.dumps(gold), TOOLS)


@pytest.mark.parametrize("a, b, equal", [
    ("New York, NY", "new york ny", True), ("it's", 'it"s', True), ("a-b_c*d^e/f.g", "abcdefg", True),
    ("Oslo", "Bergen", False), (1, 1.0, True), (True, 1, False), (False, 0, False), ([1, 2], [1, 2.0], True),
    ([1, 2], [2, 1], False), ({"a": "X"}, {"a": "x"}, True), ({"a": 1}, {"a": 1, "b": 2}, False), (None, None, True),
    ("1", 1, False),
])
def test_values_equal(a, b, equal):
    assert values_equal(a, b) is equal


def test_exact_single_and_multiple():
    s = score([call("weather", city="Oslo")], [call("weather", city="oslo")])
    assert (s.correct, s.mismatch, s.gold_call_type) == (True, None, "multiple")
    s = score([call("stock", symbol="NVDA")], [call("weather", city="Oslo")])
    assert s.correct is False and s.mismatch == Reason("wrong_function", "expected weather, got stock")


def test_parallel_in_any_order_as_a_multiset():
    gold = [call("weather", city="Oslo"), call("weather", city="Rome"), call("weather", city="Oslo")]
    assert score([gold[1], gold[0], gold[2]], gold).correct is True
    s = score([gold[1], gold[1], gold[0]], gold)
    assert s.correct is False and s.mismatch.code == "wrong_value" and s.mismatch.detail.startswith("weather.city") and s.gold_call_type == "parallel"


def test_optional_arguments_match_only_their_default():
    gold = [call("weather", city="Oslo", unit="celsius")]
    assert score([call("weather", city="Oslo")], gold).correct is True
    assert score([call("weather", city="Oslo", unit="Celsius")], [call("weather", city="Oslo")]).correct is True
    s = score([call("weather", city="Oslo")], [call("weather", city="Oslo", unit="fahrenheit")])
    assert s.mismatch == Reason("missing_argument", 'weather.unit (expected "fahrenheit")')
    s = score([call("weather", city="Oslo", days=3)], [call("weather", city="Oslo")])
    assert s.mismatch == Reason("extra_argument", "weather.days = 3")


def test_irrelevance_and_counts():
    assert score([], []).correct is True and score([], []).gold_call_type == "irrelevance"
    assert score([call("stock", symbol="X")], []).mismatch == Reason("expected_no_call", "the model made 1 call(s)")
    assert score([], [call("stock", symbol="X")], status="no_call").mismatch == Reason("unexpected_no_call", "expected 1 call(s)")
    s = score([call("stock", symbol="X")], [call("stock", symbol="X"), call("weather", city="Oslo")])
    assert s.mismatch == Reason("wrong_count", "expected 2 call(s), got 1") and s.gold_call_type == "parallel_multiple"


def test_unusable_and_invalid_output_are_wrong_never_a_refusal():
    s = score(None, [], status="parse_error", errors=[Reason("parse_error", "Expecting value")])
    assert (s.correct, s.mismatch) == (False, Reason("unusable_output", "parse_error: Expecting value"))
    s = score([call("weather")], [call("weather", city="Oslo")], status="invalid_call",
              errors=[Reason("missing_required", "weather.city")])
    assert (s.correct, s.mismatch) == (False, Reason("invalid_call", "missing_required: weather.city"))


@pytest.mark.parametrize("gold, code", [
    ([call("weather", unit="f")], "missing_required"),  # city is required
    ([call("weather", city=7)], "type_mismatch"),
    ([call("weather", city="Oslo", when="now")], "unknown_argument"),
    ([call("forecast", city="Oslo")], "unknown_function"),
])
def test_gold_that_breaks_its_own_tools_is_recorded_and_judges_nothing(gold, code):
    # The model answered by the schema; the reference did not: the row is not marked wrong.
    s = score([call("weather", city="Oslo")], gold)
    assert s.correct is None and [e.code for e in s.gold_errors] == [code]
    assert s.mismatch.code == "bad_gold" and s.mismatch.detail.startswith(f"the gold calls break their tools: {code}: ")
    assert score([call("weather", city="Oslo")], [call("weather", city="Oslo")]).gold_errors == []


def test_no_answers_bad_answers_and_rows_not_scored():
    assert score_row("ok", [], [], None, TOOLS).correct is None
    assert score_row("ok", [], [], "{oops", TOOLS).mismatch.code == "bad_gold"
    assert score_row("bad_input", None, [], "[]", None).correct is None
    assert score_row("engine_error", None, ["engine_error: boom"], "[]", TOOLS).correct is False


def test_gold_arguments_may_be_json_strings():
    assert load_gold('[{"name": "f", "arguments": "{\\"a\\": 1}"}]') == [call("f", a=1)]
    with pytest.raises(ValueError):
        load_gold('[{"arguments": {}}]')


def test_call_mismatch_without_tool_definition():
    assert call_mismatch(call("f", a=1), call("f"), None) == Reason("extra_argument", "f.a = 1")
