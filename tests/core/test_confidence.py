"""Agreement, consensus, log-probability statistics and calibration buckets, on hand-written cases."""

import pytest

from pipelines.core.confidence import (agreement_bucket, argument_value_spans, confidence, logprob_bucket,
                                       logprob_stats)
from pipelines.core.tools import load_tools

TOOLS = load_tools([
    {"name": "weather", "description": "Weather in a city.", "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City"},
        "unit": {"type": "string", "description": "Unit", "enum": ["c", "f"], "default": "c"}}, "required": ["city"]}},
    {"name": "stock", "description": "A stock's price.", "parameters": {"type": "object", "properties": {
        "symbol": {"type": "string", "description": "Ticker"}}, "required": ["symbol"]}},
])


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


OSLO = [call("weather", city="Oslo")]
BERGEN = [call("weather", city="Bergen")]


def ok(calls):
    return ("ok" if calls else "no_call", calls)


def test_samples_that_equal_the_label_under_the_scoring_equality_agree():
    label = ok([call("weather", city="New York"), call("stock", symbol="AAPL")])
    samples = [
        ok([call("stock", symbol="aapl"), call("weather", city="new-york")]),  # other order, normalized values
        ok([call("weather", city="New York", unit="c"), call("stock", symbol="AAPL")]),  # the default, spelled out
        ok([call("weather", city="New York", unit="f"), call("stock", symbol="AAPL")]),  # not the default
        ok([call("weather", city="New York")]),  # one call short
    ]
    result = confidence(label, samples, TOOLS)
    assert result.agreement == 0.5
    assert result.consensus_calls == label[1] and result.consensus_share == 0.6  # 3 of 5 outputs


def test_the_consensus_needs_a_strict_majority_of_all_outputs():
    # 2 against 2: a tie is no majority.
    tie = confidence(ok(OSLO), [ok(BERGEN), ok(BERGEN), ok(OSLO)], TOOLS)
    assert (tie.agreement, tie.consensus_calls, tie.consensus_share) == (pytest.approx(1 / 3), None, 0.5)
    # The samples outvote the label.
    outvoted = confidence(ok(OSLO), [ok(BERGEN), ok(BERGEN), ok(BERGEN)], TOOLS)
    assert (outvoted.agreement, outvoted.consensus_calls, outvoted.consensus_share) == (0.0, BERGEN, 0.75)


def test_failed_and_invalid_samples_count_as_disagreeing_and_outside_any_consensus():
    samples = [("parse_error", None), ("engine_error", None), ("invalid_call", [call("weather", town="Oslo")])]
    result = confidence(ok(OSLO), samples, TOOLS)
    assert (result.agreement, result.consensus_calls, result.consensus_share) == (0.0, None, 0.25)


def test_an_invalid_label_can_agree_with_its_samples_but_not_lead_a_consensus():
    wrong = [call("weather", town="Oslo")]
    result = confidence(("invalid_call", wrong), [("invalid_call", wrong), ok(OSLO)], TOOLS)
    assert (result.agreement, result.consensus_calls, result.consensus_share) == (0.5, None, pytest.approx(1 / 3))


def test_no_call_is_a_valid_answer_to_agree_on():
    result = confidence(ok([]), [ok([]), ok([]), ok(OSLO)], TOOLS)
    assert (result.agreement, result.consensus_calls, result.consensus_share) == (pytest.approx(2 / 3), [], 0.75)


def test_without_samples_there_is_no_confidence_to_report():
    result = confidence(ok(OSLO), [], TOOLS)
    assert (result.agreement, result.consensus_calls, result.consensus_share) == (None, None, None)


def test_argument_value_spans_cover_the_values_and_only_them():
    text = 'Sure:\n```json\n[{"name": "weather", "arguments": {"city": "Oslo", "days": 3, "where": {"near": true}}}]\n```'
    assert [text[s:e] for s, e in argument_value_spans(text)] == ['"Oslo"', "3", "true"]
    assert argument_value_spans('[{"name": "f", "arguments": {}}]') == []
    assert argument_value_spans("not json") == []
    assert argument_value_spans('[{"name": "f", "arguments": {"a": ') == []  # cut short


def test_logprob_stats_over_all_tokens_and_the_value_tokens():
    tokens = ['[{"name": "weather", "arguments": {"city": ', '"Os', 'lo"', "}}]"]
    stats = logprob_stats("".join(tokens), tokens, [-0.1, -2.0, -0.5, 0.0])
    assert (stats.mean, stats.min) == (pytest.approx(-0.65), -2.0)
    assert (stats.value_mean, stats.value_min) == (pytest.approx(-1.25), -2.0)
    no_values = logprob_stats("[]", ["[]"], [-0.3])
    assert (no_values.mean, no_values.min, no_values.value_mean, no_values.value_min) == (-0.3, -0.3, None, None)


@pytest.mark.parametrize("agreement, bucket", [
    (None, None), (0.0, "0"), (0.25, "(0, 0.5)"), (0.5, "[0.5, 0.8)"), (0.8, "[0.8, 1)"), (0.99, "[0.8, 1)"), (1.0, "1"),
])
def test_agreement_buckets(agreement, bucket):
    assert agreement_bucket(agreement) == bucket


@pytest.mark.parametrize("value, bucket", [(None, None), (-3.0, "< -2"), (-2.0, "[-2, -0.5)"), (-0.2, "[-0.5, -0.1)"),
                                           (-0.1, ">= -0.1"), (0.0, ">= -0.1")])
def test_logprob_buckets(value, bucket):
    assert logprob_bucket(value) == bucket
