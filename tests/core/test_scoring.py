import json

import pytest

from pipelines.core.scoring import call_mismatch, load_answers, load_gold, score_row
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


def score(calls, gold, status="ok", errors=(), rules="auto"):
    return score_row(status, calls, list(errors), json.dumps(gold), TOOLS, rules=rules)


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
    assert call_mismatch(call("f", a=1), ("f", {}), None) == Reason("extra_argument", "f.a = 1")


def possible(name, **accepted):
    return {name: accepted}


def test_answers_forms_are_told_apart_and_a_cell_in_neither_is_bad_gold():
    assert load_answers([call("f", a=1)]).possible_answers is False
    gold = load_answers([possible("f", a=[1, 2], b=[""])])
    assert gold.possible_answers is True and gold.calls == [("f", {"a": [1, 2], "b": [""]})]
    assert load_answers([]).calls == []
    for cell, message in [([{"f": {"a": 1}}], "parameter 'a' does not list its accepted values"),
                          ([call("f"), possible("g", a=[1])], "mixes calls and possible answers"),
                          ([{"f": 1, "g": 2}], "neither a call"), ('{"name": "f"}', "answers is a dict")]:
        s = score_row("ok", [], [], json.dumps(cell) if not isinstance(cell, str) else cell, TOOLS, rules="schema")
        assert s.correct is None and s.mismatch.code == "bad_gold" and message in s.mismatch.detail
    with pytest.raises(ValueError, match="possible answers"):  # augment masks concrete calls only
        load_gold([possible("f", a=[1])])


def test_schema_rules_on_possible_answers_accept_any_listed_value_and_omission_where_listed():
    gold = [possible("weather", city=["Oslo", "Oslo, Norway"], unit=["", "celsius"], days=[3])]
    assert score([call("weather", city="oslo norway", days=3)], gold, rules="schema").correct is True  # "" listed: may be left out
    assert score([call("weather", city="Oslo", unit="celsius", days=3)], gold, rules="schema").correct is True
    s = score([call("weather", city="Bergen", days=3)], gold, rules="schema")
    assert s.mismatch == Reason("wrong_value", 'weather.city expected ["Oslo", "Oslo, Norway"] (one of), got "Bergen"')
    s = score([call("weather", city="Oslo")], gold, rules="schema")
    assert s.mismatch == Reason("missing_argument", "weather.days (expected 3)")
    # under schema rules "" is not itself a value, and an unlisted argument still matches only its default
    assert score([call("weather", city="Oslo", unit="", days=3)], gold, rules="schema").correct is False
    assert score([call("weather", city="Oslo", days=3)], [possible("weather", city=["Oslo"], days=[3])], rules="schema").correct is True


def test_schema_rules_accept_nested_objects_key_by_key():
    tools = load_tools([{"name": "book", "description": "", "parameters": {"type": "dict", "properties": {
        "guest": {"type": "dict", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}},
        "required": ["guest"]}}])
    gold = json.dumps([possible("book", guest=[{"name": ["Ann", "Anna"], "age": ["", 30]}])])
    for guest, correct in [({"name": "anna"}, True), ({"name": "Ann", "age": 30}, True), ({"name": "Bo"}, False),
                           ({"age": 30}, False), ({"name": "Ann", "pet": "cat"}, False)]:
        assert score_row("ok", [call("book", guest=guest)], [], gold, tools, rules="schema").correct is correct, guest


def test_every_accepted_value_of_the_gold_is_audited():
    gold = [possible("weather", city=["Oslo", 7], days=["", "three"])]
    s = score([call("weather", city="Oslo")], gold, rules="schema")
    assert [e.code for e in s.gold_errors] == ["type_mismatch", "type_mismatch"] and s.mismatch.code == "bad_gold"
    # the leaderboard scores such rows all the same (rule 6: the possible answer's own type wins)
    s = score([call("weather", city=7)], [possible("weather", city=[7], days=["", "three"])], rules="bfcl")
    assert (s.correct, s.rules, len(s.gold_errors)) == (True, "bfcl", 2)
    assert "weather.city" in str(s.gold_errors[0]) and "weather.days" in str(s.gold_errors[1])
