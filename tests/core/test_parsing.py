import pytest

from pipelines.core.parsing import parse_output, strip_fence
from pipelines.core.reasons import Reason


@pytest.mark.parametrize("text", [
    '[{"name": "f", "arguments": {"a": 1}}]',
    '```\n[{"name": "f", "arguments": {"a": 1}}]\n```',
    '```json\n[{"name": "f", "arguments": {"a": 1}}]\n```',
    '  [{"name": "f", "arguments": "{\\"a\\": 1}"}]  ',
])
def test_calls_are_parsed_from_plain_fenced_and_string_arguments(text):
    parsed = parse_output(text)
    assert parsed.calls == [{"name": "f", "arguments": {"a": 1}}] and parsed.errors == []
    assert parsed.flags == ([Reason("arguments_as_string", "item 0 (f)")] if '\\"a' in text else [])


def test_fence_with_text_around_it():
    text = 'Sure! Here you go:\n```json\n[{"name": "f", "arguments": {}}]\n```\nAnything else?'
    assert parse_output(text).calls == [{"name": "f", "arguments": {}}]


def test_text_around_an_unfenced_list_is_a_parse_error():
    assert parse_output('Here: [{"name": "f", "arguments": {}}]').errors[0].code == "parse_error"


def test_single_object_is_wrapped_and_flagged():
    parsed = parse_output('{"name": "f", "arguments": {"a": 1}}')
    assert parsed.calls == [{"name": "f", "arguments": {"a": 1}}]
    assert parsed.flags == [Reason("single_object", "the output is one call, not a list")]


def test_tool_calls_wrapper_only_when_lenient():
    text = '{"tool_calls": [{"name": "f", "arguments": {}}]}'
    assert parse_output(text).errors[0].code == "not_a_list"
    lenient = parse_output(text, lenient=True)
    assert lenient.calls == [{"name": "f", "arguments": {}}] and lenient.flags[0].code == "tool_calls_wrapper"


def test_extra_keys_are_flagged():
    parsed = parse_output('[{"name": "f", "arguments": {}, "id": 3}]')
    assert parsed.calls and parsed.flags == [Reason("extra_keys", "item 0 (f) has id")]


def test_depth_limit_and_brackets_inside_strings():
    assert parse_output("[" * 40 + "]" * 40).errors[0] == Reason("output_too_large", "nested 40 deep, limit 32")
    deep_string = '[{"name": "f", "arguments": {"s": "' + "[" * 100 + '"}}]'
    assert parse_output(deep_string).calls[0]["arguments"]["s"] == "[" * 100


def test_empty_list_is_no_call():
    assert parse_output("[]").calls == []


@pytest.mark.parametrize("text, code", [
    ("", "parse_error"),
    ("I cannot help", "parse_error"),
    ('{"calls": []}', "not_a_list"),
    ('{"tool_calls": []}', "not_a_list"),
    ('"f"', "not_a_list"),
    ('[{"name": "f"}]', "not_a_call"),
    ('[{"arguments": {}}]', "not_a_call"),
    ('[{"name": "f", "arguments": [1]}]', "not_a_call"),
    ('[{"name": "f", "arguments": "oops"}]', "not_a_call"),
    ("[1]", "not_a_call"),
    ("[" * 100_000 + "]" * 100_000, "output_too_large"),
])
def test_unusable_output_has_a_reason(text, code):
    parsed = parse_output(text, max_chars=1_000_000)
    assert parsed.calls is None and parsed.errors[0].code == code


def test_size_limit():
    assert parse_output("[]" + " " * 50, max_chars=10).errors[0].code == "output_too_large"


def test_strip_fence_leaves_unfenced_text():
    assert strip_fence(" [] ") == "[]"
