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


# ------------------------------------------------------------------ against vLLM's own tool parsers
#
# vLLM's tool parsers (vllm/tool_parsers/, the API server's) do run on a finished text offline, given
# a tokenizer that holds their special tokens. They are the peer here: on every text they read as
# calls, ours give the same calls. Ours stay the project's own for what the table below shows, and
# because vLLM's give no reason when they fail (the text comes back as content) and the core imports
# no vLLM.

AGREED = {  # texts vLLM's parser reads as calls
    "hermes": [TWO_CALLS["hermes"],
               'Sure. <tool_call>{"name": "f", "arguments": {"a": [1, {"b": null}]}}</tool_call>'],
    "llama3_json": [TWO_CALLS["llama3_json"], '{"name": "f", "parameters": {"a": 1}}',
                    '{"name": "f", "arguments": {"a": [1, 2]}}', '{"name": "f", "parameters": {"a": 1}} and some text'],
    "mistral": ['[TOOL_CALLS]weather[ARGS]{"city": "Oslo", "days": 3}[TOOL_CALLS]time[ARGS]{"zone": "CET"}'],
    "pythonic": [TWO_CALLS["pythonic"], '[f(a=[[1, 2], [3]], b={"k": [1]}, c=None, d=True)]'],
}
# texts where they part, each for a reason the issue trackers report: ours give the calls, vLLM's none
OURS_ONLY = {
    "hermes": ['<tool_call>{"name": "f", "arguments": {"a": 1}} {"name": "g", "arguments": {}}</tool_call>',  # two in a block
               '<tool_call>[{"name": "f", "arguments": {"a": 1}}]</tool_call>'],  # a list in a block
    "pythonic": ['[math.factorial(number=5)]'],  # a dotted name (BFCL's own functions have them)
}
VLLM_PARSERS = {"hermes": "hermes_tool_parser.Hermes2ProToolParser",
                "llama3_json": "llama_tool_parser.Llama3JsonToolParser",
                "mistral": "mistral_tool_parser.MistralToolParser",
                "pythonic": "pythonic_tool_parser.PythonicToolParser"}


@pytest.fixture(scope="module")
def vllm_calls(tiny_model):
    """parser name, text -> the calls vLLM's parser reads there (None: no call)."""
    import importlib
    import json

    from transformers import AutoTokenizer
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<tool_call>", "</tool_call>", "<|python_tag|>",
                                                                "[TOOL_CALLS]", "[ARGS]"]})
    request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}])

    def calls(parser: str, text: str):
        module, name = VLLM_PARSERS[parser].split(".")
        found = getattr(importlib.import_module(f"vllm.tool_parsers.{module}"), name)(tokenizer).extract_tool_calls(
            text, request)
        return [{"name": c.function.name, "arguments": json.loads(c.function.arguments)}
                for c in found.tool_calls] if found.tools_called else None

    return calls


@pytest.mark.parametrize("parser,text", [(p, t) for p, texts in AGREED.items() for t in texts])
def test_where_vllms_parser_reads_calls_ours_read_the_same(vllm_calls, parser, text):
    theirs = vllm_calls(parser, text)
    assert theirs is not None
    assert PARSERS[parser](text).calls == theirs


@pytest.mark.parametrize("parser,text", [(p, t) for p, texts in OURS_ONLY.items() for t in texts])
def test_where_they_part_ours_give_the_calls_and_vllms_none(vllm_calls, parser, text):
    assert vllm_calls(parser, text) is None
    assert PARSERS[parser](text).calls
