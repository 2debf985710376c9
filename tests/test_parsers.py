"""The other families' answer formats (pipelines/core/parsing.py, PARSERS): each gives the calls the
Hammer parser gives for the same calls, with the same reason codes when it cannot."""

import pytest

from pipelines.core.parsing import PARSERS, parse_hermes, parse_llama3_json, parse_mistral, parse_output, parse_pythonic

WEATHER = {"name": "weather", "arguments": {"city": "Oslo", "days": 3}}
TIME = {"name": "time", "arguments": {"zone": "CET"}}
HAMMER = '[{"name": "weather", "arguments": {"city": "Oslo", "days": 3}}, {"name": "time", "arguments": {"zone": "CET"}}]'

# The same two calls, as each family writes them.
TWO_CALLS = {
    "hermes": '<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo", "days": 3}}\n</tool_call>\n'
              '<tool_call>\n{"name": "time", "arguments": {"zone": "CET"}}\n</tool_call>',
    "llama3_json": '<|python_tag|>{"name": "weather", "parameters": {"city": "Oslo", "days": 3}}; '
                   '{"name": "time", "parameters": {"zone": "CET"}}',
    "mistral": '[TOOL_CALLS][{"name": "weather", "arguments": {"city": "Oslo", "days": 3}}, '
               '{"name": "time", "arguments": {"zone": "CET"}}]',
    "pythonic": '[weather(city="Oslo", days=3), time(zone="CET")]',
}


@pytest.mark.parametrize("parser", sorted(TWO_CALLS))
def test_each_format_gives_the_calls_the_hammer_parser_gives(parser):
    expected = parse_output(HAMMER)
    parsed = PARSERS[parser](TWO_CALLS[parser])
    assert parsed.calls == expected.calls == [WEATHER, TIME] and parsed.errors == [] and parsed.flags == []


@pytest.mark.parametrize("parser", sorted(TWO_CALLS))
def test_prose_is_a_plain_answer_with_no_call(parser):
    parsed = PARSERS[parser]("I cannot help with that; no tool fits.")
    assert parsed.calls == [] and [f.code for f in parsed.flags] == ["text_answer"]


@pytest.mark.parametrize("parser", sorted(PARSERS))
def test_size_limits_hold_for_every_format(parser):
    assert PARSERS[parser]("[" * 40 + "]" * 40).errors[0].code == "output_too_large"
    assert PARSERS[parser]("x" * 101, max_chars=100).errors[0].code == "output_too_large"


def test_hermes_several_calls_in_one_block_and_text_around():
    # a list in one block, and two objects one after another in one block (both seen from Qwen models)
    for block in (f"[{HAMMER[1:-1]}]", '{"name": "weather", "arguments": {"city": "Oslo", "days": 3}}\n'
                                        '{"name": "time", "arguments": {"zone": "CET"}}'):
        parsed = parse_hermes(f"Let me check.\n<tool_call>\n{block}\n</tool_call>")
        assert parsed.calls == [WEATHER, TIME] and [f.code for f in parsed.flags] == ["text_around"]


def test_hermes_failures():
    cut = parse_hermes('<tool_call>\n{"name": "weather", "arguments": {"city": "Os')
    assert cut.calls is None and cut.errors[0].code == "parse_error" and "not closed" in cut.errors[0].detail
    assert parse_hermes("<tool_call>\nweather(city='Oslo')\n</tool_call>").errors[0].code == "parse_error"
    no_name = parse_hermes('<tool_call>{"arguments": {}}</tool_call>')
    assert no_name.calls is None and no_name.errors[0].code == "not_a_call"
    as_string = parse_hermes('<tool_call>{"name": "time", "arguments": "{\\"zone\\": \\"CET\\"}"}</tool_call>')
    assert as_string.calls == [TIME] and [f.code for f in as_string.flags] == ["arguments_as_string"]


def test_llama3_extra_data_after_a_call_and_arguments_key():
    # vLLM's llama3_json parser once failed on this with json's "Extra data"
    parsed = parse_llama3_json('{"name": "time", "parameters": {"zone": "CET"}} I called the time tool.')
    assert parsed.calls == [TIME] and [f.code for f in parsed.flags] == ["text_around"]
    assert parse_llama3_json('{"name": "time", "arguments": {"zone": "CET"}}').calls == [TIME]
    assert parse_llama3_json('{"name": "time", "parameters": {"zone": ').errors[0].code == "parse_error"


def test_mistral_v11_format_and_failures():
    v11 = '[TOOL_CALLS]weather[ARGS]{"city": "Oslo", "days": 3}[TOOL_CALLS]time[ARGS]{"zone": "CET"}'
    assert parse_mistral(v11).calls == [WEATHER, TIME]
    assert parse_mistral('[TOOL_CALLS]weather[ARGS]{"city": ').errors[0].code == "parse_error"
    assert parse_mistral("[TOOL_CALLS] not json").errors[0].code == "parse_error"
    assert parse_mistral('[TOOL_CALLS][{"name": "time"}]').errors[0].code == "not_a_call"  # no arguments


def test_pythonic_nested_values_dotted_names_and_no_call():
    parsed = parse_pythonic('[math.hypot(sides=[3, [4.5, 2]], opts={"exact": True, "unit": None}, pair=(1, 2)), now()]')
    assert parsed.calls == [{"name": "math.hypot", "arguments": {"sides": [3, [4.5, 2]],
                                                                 "opts": {"exact": True, "unit": None}, "pair": [1, 2]}},
                            {"name": "now", "arguments": {}}]
    assert parse_pythonic("[]").calls == [] and parse_pythonic("[]").flags == []
    assert parse_pythonic("<|python_start|>[now()]<|python_end|>").calls == [{"name": "now", "arguments": {}}]


@pytest.mark.parametrize("text, code", [
    ("[weather('Oslo')]", "not_a_call"),  # positional
    ("[weather(city=get_city())]", "not_a_call"),  # not a literal: never called
    ("[weather(city={1, 2})]", "not_a_call"),  # a set: JSON cannot hold it
    ("[weather(**kw)]", "not_a_call"),
    ("[weather]", "not_a_call"),
    ("[weather(city='Oslo'", "parse_error"),
    ("[" + "(" * 300 + "1" + ")" * 300 + "]", "parse_error"),  # past Python's own parser nesting limit
])
def test_pythonic_failures(text, code):
    parsed = parse_pythonic(text)
    assert parsed.calls is None and parsed.errors[0].code == code, parsed


def test_validation_parser_picks_the_format_and_prose_is_no_call():
    from pipelines.core.reasons import NO_CALL, OK, PARSE_ERROR
    from pipelines.core.tools import load_tools
    from pipelines.core.validation import ValidationConfig, label_output

    tools = load_tools('[{"name": "time", "description": "Time in a zone.", "parameters": {"type": "object", '
                       '"properties": {"zone": {"type": "string", "description": "Zone"}}, "required": ["zone"]}}]')
    hermes = ValidationConfig(parser="hermes")
    block = '<tool_call>{"name": "time", "arguments": {"zone": "CET"}}</tool_call>'
    assert label_output(block, tools, "time in CET?", hermes).status == OK
    assert label_output(block, tools, "time in CET?").status == PARSE_ERROR  # Hammer's parser: not a JSON list
    prose = label_output("No tool fits.", tools, "hi", hermes)
    assert prose.status == NO_CALL and [f.code for f in prose.flags] == ["text_answer"]
