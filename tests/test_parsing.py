import pytest

from pipelines.parsing import parse_output, strip_fence


@pytest.mark.parametrize("text", [
    '[{"name": "f", "arguments": {"a": 1}}]',
    '```\n[{"name": "f", "arguments": {"a": 1}}]\n```',
    '```json\n[{"name": "f", "arguments": {"a": 1}}]\n```',
    '  [{"name": "f", "arguments": "{\\"a\\": 1}"}]  ',
])
def test_calls_are_parsed_from_plain_fenced_and_string_arguments(text):
    parsed = parse_output(text)
    assert parsed.calls == [{"name": "f", "arguments": {"a": 1}}] and parsed.errors == []


def test_empty_list_is_no_call():
    assert parse_output("[]").calls == []


@pytest.mark.parametrize("text, code", [
    ("", "parse_error"),
    ("I cannot help", "parse_error"),
    ('{"name": "f", "arguments": {}}', "not_a_list"),
    ('[{"arguments": {}}]', "not_a_call"),
    ('[{"name": "f", "arguments": [1]}]', "not_a_call"),
    ('[{"name": "f", "arguments": "oops"}]', "not_a_call"),
    ("[1]", "not_a_call"),
    ("[" * 100_000 + "]" * 100_000, "output_too_large"),
])
def test_unusable_output_has_a_reason(text, code):
    parsed = parse_output(text, max_chars=1_000_000)
    assert parsed.calls is None and parsed.errors[0].startswith(code + ":")


def test_size_limit():
    assert parse_output("[]" + " " * 50, max_chars=10).errors[0].startswith("output_too_large:")


def test_strip_fence_leaves_unfenced_text():
    assert strip_fence(" [] ") == "[]"
