"""The Hammer v1 user message, byte for byte (docs/hammer-prompt.md)."""

import json

from pipelines.core.prompts import build_prompt, hammer_tool
from pipelines.core.tools import load_tools

WORKED_TOOLS = [
    {"name": "live_giveaways_by_type",
     "description": "Retrieve live giveaways from the GamerPower API based on the specified type.",
     "parameters": {"type": "object", "properties": {"type": {
         "type": "string", "description": "The type of giveaways to retrieve (e.g., game, loot, beta).", "default": "game"}},
         "required": ["type"]}},
    {"name": "get_current_weather", "description": "Get the current weather",
     "parameters": {"type": "object", "properties": {"location": {
         "type": "string", "description": "The city and state, e.g. San Francisco, CA"}}, "required": ["location"]}},
]
WORKED_QUERY = "Where can I find live giveaways for beta access and games? And what's the weather like in New York, US?"
# Copied from the reference's repr-style line.
WORKED_MESSAGE = '[BEGIN OF TASK INSTRUCTION]\nYou are a tool calling assistant. In order to complete the user\'s request, you need to select one or more appropriate tools from the following tools and fill in the correct values for the tool parameters. Your specific tasks are:\n1. Make one or more function/tool calls to meet the request based on the question.\n2. If none of the function can be used, point it out and refuse to answer.\n3. If the given question lacks the parameters required by the function, also point it out.\n\n[END OF TASK INSTRUCTION]\n\n[BEGIN OF AVAILABLE TOOLS]\n[{"name": "live_giveaways_by_type", "description": "Retrieve live giveaways from the GamerPower API based on the specified type.", "parameters": {"type": {"type": "string", "description": "The type of giveaways to retrieve (e.g., game, loot, beta).default is \'game\'", "default": "game", "required": true}}}, {"name": "get_current_weather", "description": "Get the current weather", "parameters": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA", "required": true}}}]\n[END OF AVAILABLE TOOLS]\n\n[BEGIN OF FORMAT INSTRUCTION]\n\nThe output MUST strictly adhere to the following JSON format, and NO other text MUST be included.\nThe example format is as follows. Please make sure the parameter type is correct. If no function call is needed, please directly output an empty list \'[]\'\n```\n[\n    {"name": "func_name1", "arguments": {"argument1": "value1", "argument2": "value2"}},\n    ... (more tool calls as required)\n]\n```\n\n[END OF FORMAT INSTRUCTION]\n\n[BEGIN OF QUERY]\nWhere can I find live giveaways for beta access and games? And what\'s the weather like in New York, US?\n[END OF QUERY]\n\n'


def _hammer1_message(query, tools):
    return build_prompt("hammer1", query, tools).messages[0]["content"]


def test_worked_example_byte_for_byte():
    assert _hammer1_message(WORKED_QUERY, load_tools(json.dumps(WORKED_TOOLS))) == WORKED_MESSAGE


def test_openai_wrapper_and_list_input_give_the_same_message():
    wrapped = [{"type": "function", "function": t} for t in WORKED_TOOLS]
    assert _hammer1_message(WORKED_QUERY, load_tools(wrapped)) == WORKED_MESSAGE


def test_messages_are_one_user_turn():
    messages = build_prompt("hammer1", WORKED_QUERY, load_tools(WORKED_TOOLS)).messages
    assert messages == [{"role": "user", "content": WORKED_MESSAGE}]


def _params(tool):
    return hammer_tool(load_tools([tool])[0])["parameters"]


def test_defaults_of_every_json_type_use_python_str():
    props = {name: {"type": "string", "description": "d. ", "default": value} for name, value in {
        "s": "x", "i": 3, "f": 1.5, "t": True, "f2": False, "n": None, "l": ["a", "b"], "o": {"k": 1}}.items()}
    tool = {"name": "f", "description": "", "parameters": {"type": "object", "properties": props}}
    descriptions = {k: v["description"] for k, v in _params(tool).items()}
    assert descriptions == {
        "s": "d. default is 'x'", "i": "d. default is '3'", "f": "d. default is '1.5'", "t": "d. default is 'True'",
        "f2": "d. default is 'False'", "n": "d. default is 'None'", "l": "d. default is '['a', 'b']'",
        "o": "d. default is '{'k': 1}'",
    }


def test_required_true_is_the_last_key_and_only_on_required():
    tool = {"name": "f", "description": "x", "parameters": {"type": "object", "properties": {
        "a": {"type": "integer", "description": "A", "default": 1}, "b": {"description": "B", "type": "string"}},
        "required": ["b"]}}
    params = _params(tool)
    assert list(params["b"]) == ["description", "type", "required"] and params["b"]["required"] is True
    assert "required" not in params["a"]


def test_unicode_is_ascii_escaped_in_tools_but_not_in_query():
    tool = {"name": "übersetze", "description": "Übersetzt 東京", "parameters": {}}
    message = _hammer1_message("Was heißt 東京?", load_tools([tool]))
    assert '"name": "\\u00fcbersetze"' in message and "\\u6771\\u4eac" in message
    assert "[BEGIN OF QUERY]\nWas heißt 東京?\n[END OF QUERY]" in message


def test_tool_without_parameters():
    message = _hammer1_message("ping", load_tools([{"name": "ping", "description": "Ping."}]))
    assert '[{"name": "ping", "description": "Ping.", "parameters": {}}]' in message


def test_xlam_form_gets_defaults_but_no_required_marks():
    tool = {"name": "tip", "description": "Tip.", "parameters": {
        "bill": {"type": "float", "description": "Bill."},
        "pct": {"type": "float, optional", "description": "Percent.", "default": 15.0}}}
    assert _params(tool) == {
        "bill": {"type": "float", "description": "Bill."},
        "pct": {"type": "float, optional", "description": "Percent.default is '15.0'", "default": 15.0},
    }


# ------------------------------------------------------------------ Hammer 2.0 and 2.1 (BFCL's handlers)

EVENT_TOOL = {"name": "create_event", "description": "Create an event.", "parameters": {"type": "object", "properties": {
    "title": {"type": "string", "description": "Title"},
    "location": {"type": "object", "description": "Where", "properties": {
        "city": {"type": "string", "description": "City"}, "address": {"type": "string", "description": "Street"}},
        "required": ["city"]},
    "reminder": {"type": "integer", "description": "Minutes before", "default": 10}}, "required": ["title", "location"]}}
EVENT_TOOLS_FLAT = ('[{"name": "create_event", "description": "Create an event.", "parameters": {'
                    '"title": {"type": "string", "description": "Title", "required": true}, '
                    '"location": {"city": {"type": "string", "description": "City", "required": true}, '
                    '"address": {"type": "string", "description": "Street"}, "required": true}, '
                    '"reminder": {"type": "integer", "description": "Minutes beforedefault is \'10\'", "default": 10}}}]')
TASK_BLOCK = WORKED_MESSAGE[:WORKED_MESSAGE.index("[BEGIN OF AVAILABLE TOOLS]")]
FORMAT_BLOCK = WORKED_MESSAGE[WORKED_MESSAGE.index("[BEGIN OF FORMAT INSTRUCTION]"):WORKED_MESSAGE.index("[BEGIN OF QUERY]")]
ROLES_TASK_BLOCK = TASK_BLOCK.replace(
    "also point it out.\n\n[END OF TASK INSTRUCTION]",
    "also point it out.\n\nThe following are characters that may interact with you\n"
    "1. user: Provides query or additional information.\n2. tool: Returns the results of the tool calling.\n"
    "\n[END OF TASK INSTRUCTION]")


def test_hammer20_flattens_objects_and_writes_role_lines():
    messages = build_prompt("hammer2.0", "Lunch in Oslo", load_tools([EVENT_TOOL])).messages
    assert messages == [{"role": "user", "content": TASK_BLOCK
                         + "[BEGIN OF AVAILABLE TOOLS]\n" + EVENT_TOOLS_FLAT + "\n[END OF AVAILABLE TOOLS]\n\n"
                         + FORMAT_BLOCK + "[BEGIN OF QUERY]\nuser: Lunch in Oslo\n\n[END OF QUERY]\n\n"}]


def test_hammer20_multi_turn_ends_with_an_empty_user_line():
    query = json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Lunch?"},
                        {"role": "assistant", "content": "Where?"}])
    content = build_prompt("hammer2.0", query, load_tools([EVENT_TOOL])).messages[0]["content"]
    assert content.endswith("[BEGIN OF QUERY]\nuser: Be brief.\nuser: Lunch?\nassistant: Where?\nuser:  \n\n[END OF QUERY]\n\n")


def test_hammer21_sends_each_message_as_its_own_turn():
    query = json.dumps([{"role": "user", "content": "Lunch in Oslo"}, {"role": "tool", "content": {"ok": True}}])
    messages = build_prompt("hammer2.1", query, load_tools([EVENT_TOOL])).messages
    assert messages == [
        {"role": "user", "content": ROLES_TASK_BLOCK + "[BEGIN OF AVAILABLE TOOLS]\n" + EVENT_TOOLS_FLAT
         + "\n[END OF AVAILABLE TOOLS]\n\n" + FORMAT_BLOCK},
        {"role": "user", "content": "Lunch in Oslo"},
        {"role": "tool", "content": '{"ok": true}'},
    ]


def test_hammer1_joins_user_messages_and_puts_system_text_in_the_instruction():
    query = json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Lunch?"},
                        {"role": "assistant", "content": "Where?"}, {"role": "user", "content": "Oslo"}])
    content = build_prompt("hammer1", query, load_tools(WORKED_TOOLS)).messages[0]["content"]
    assert content.startswith(TASK_BLOCK.replace("point it out.\n\n[END", "point it out.\n\nBe brief.\n[END"))
    assert content.endswith("[BEGIN OF QUERY]\n\nLunch?\nOslo\n[END OF QUERY]\n\n")


def test_a_query_that_only_looks_like_json_is_plain_text():
    content = build_prompt("hammer1", "[urgent] weather in Oslo", load_tools(WORKED_TOOLS)).messages[0]["content"]
    assert content.endswith("[BEGIN OF QUERY]\n[urgent] weather in Oslo\n[END OF QUERY]\n\n")


def test_chat_template_keeps_the_conversation_and_gives_the_tools_as_openai_function_tools():
    from pipelines.core.prompts import build_prompt

    tools = load_tools(json.dumps([
        {"name": "f", "description": "F.", "parameters": {"type": "object", "properties": {
            "a": {"type": "integer", "description": "A"}}, "required": ["a"]}},
        {"name": "g", "description": "G.", "parameters": {"b": {"type": "str, optional", "description": "B"},
                                                          "c": {"type": "int", "description": "C"}}}]))
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    prompt = build_prompt("chat_template", json.dumps(conversation), tools)
    assert prompt.messages == conversation  # the template takes system turns itself
    assert prompt.tools == [
        {"type": "function", "function": {"name": "f", "description": "F.", "parameters": {
            "type": "object", "properties": {"a": {"type": "integer", "description": "A"}}, "required": ["a"]}}},
        {"type": "function", "function": {"name": "g", "description": "G.", "parameters": {
            "type": "object", "properties": {"b": {"type": "str, optional", "description": "B"},
                                             "c": {"type": "int", "description": "C"}}, "required": ["c"]}}}]
    assert build_prompt("chat_template", "What now?", tools).messages == [{"role": "user", "content": "What now?"}]


def test_the_tools_probe_is_seen_only_where_a_template_shows_it():
    from pipelines.core.prompts import TOOLS_PROBE, shows_tools

    assert shows_tools("<tools>" + json.dumps(TOOLS_PROBE) + "</tools>")
    assert not shows_tools("<|im_start|>user\nhello<|im_end|>")
