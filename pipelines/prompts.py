"""Hammer prompt formats: pure functions of (query, canonical tools) -> chat messages.

  hammer1    the Hammer-7b model card's prompt, byte for byte (docs/hammer-prompt.md): one user turn
             with four blocks; a multi-turn query joins its user messages as BFCL's handler does.
  hammer2.0  hammer1's instruction; object parameters flattened into their sub-parameters; the
             QUERY block holds `role: content` lines (BFCL's Hammer handler for 2.0).
  hammer2.1  a task instruction that names the roles; no QUERY block: every conversation message
             is its own chat turn (BFCL's Hammer handler for 2.1).

A query is a string, or a JSON list of chat messages (`role`, `content`) for multi-turn rows.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pipelines.tools import Tool

TASK_INSTRUCTION = """You are a tool calling assistant. In order to complete the user's request, you need to select one or more appropriate tools from the following tools and fill in the correct values for the tool parameters. Your specific tasks are:
1. Make one or more function/tool calls to meet the request based on the question.
2. If none of the function can be used, point it out and refuse to answer.
3. If the given question lacks the parameters required by the function, also point it out.
"""

ROLES_PARAGRAPH = """
The following are characters that may interact with you
1. user: Provides query or additional information.
2. tool: Returns the results of the tool calling.
"""

FORMAT_INSTRUCTION = """
The output MUST strictly adhere to the following JSON format, and NO other text MUST be included.
The example format is as follows. Please make sure the parameter type is correct. If no function call is needed, please directly output an empty list '[]'
```
[
    {"name": "func_name1", "arguments": {"argument1": "value1", "argument2": "value2"}},
    ... (more tool calls as required)
]
```
"""

PROMPT_FORMATS = ("hammer1", "hammer2.0", "hammer2.1")


def parse_query(query: str) -> list[dict] | None:
    """The chat messages of a multi-turn query, or None for a plain-text query."""
    if not query.lstrip().startswith("["):
        return None
    try:
        value = json.loads(query)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in value):
        return None
    return [{"role": m["role"], "content": _text(m["content"])} for m in value]


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content)


def hammer_tool(tool: Tool, flatten_objects: bool = False) -> dict:
    """A canonical tool in Hammer's form: parameters are the properties themselves, with
    `"required": true` appended to required ones and the default spelled out in the description.

    flatten_objects (Hammer 2.x): an object parameter with `properties` is replaced by the map of its
    sub-parameters, each required one marked, as BFCL's handler does.
    """
    params = {}
    for pname, spec in tool.properties.items():
        spec = copy.deepcopy(spec)
        if flatten_objects and isinstance(spec.get("properties"), dict):
            sub_required = spec.get("required") if isinstance(spec.get("required"), list) else []
            spec = spec["properties"]
            for sub in sub_required:
                if isinstance(spec.get(sub), dict):
                    spec[sub]["required"] = True
        elif "default" in spec:
            spec["description"] = f"{spec.get('description', '')}default is '{spec['default']}'"
        params[pname] = spec
    for pname in tool.required:
        params[pname]["required"] = True
    return {"name": tool.name, "description": tool.description, "parameters": params}


def _block(title: str, body: str) -> str:
    return f"[BEGIN OF {title}]\n{body}\n[END OF {title}]\n\n"


def _tools_json(tools: list[Tool], flatten_objects: bool) -> str:
    return json.dumps([hammer_tool(t, flatten_objects) for t in tools])


def hammer1_user_message(query: str, tools: list[Tool]) -> str:
    task, user_query = TASK_INSTRUCTION, query
    messages = parse_query(query)
    if messages is not None:
        task += "".join(f"\n{m['content']}" for m in messages if m["role"] == "system")
        user_query = "".join(f"\n{m['content']}" for m in messages if m["role"] == "user")
    return (
        _block("TASK INSTRUCTION", task)
        + _block("AVAILABLE TOOLS", _tools_json(tools, flatten_objects=False))
        + _block("FORMAT INSTRUCTION", FORMAT_INSTRUCTION)
        + _block("QUERY", user_query)
    )


def _conversation(query: str) -> list[dict]:
    # Hammer takes no system turn of its own: a system message speaks as the user (as in BFCL).
    messages = parse_query(query) or [{"role": "user", "content": query}]
    return [{**m, "role": "user"} if m["role"] == "system" else m for m in messages]


def hammer20_user_message(query: str, tools: list[Tool]) -> str:
    messages = _conversation(query)
    lines = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    if messages[-1]["role"] != "user":
        lines += "user:  \n"
    return (
        _block("TASK INSTRUCTION", TASK_INSTRUCTION)
        + _block("AVAILABLE TOOLS", _tools_json(tools, flatten_objects=True))
        + _block("FORMAT INSTRUCTION", FORMAT_INSTRUCTION)
        + _block("QUERY", lines)
    )


def hammer21_messages(query: str, tools: list[Tool]) -> list[dict]:
    instructions = (
        _block("TASK INSTRUCTION", TASK_INSTRUCTION + ROLES_PARAGRAPH)
        + _block("AVAILABLE TOOLS", _tools_json(tools, flatten_objects=True))
        + _block("FORMAT INSTRUCTION", FORMAT_INSTRUCTION)
    )
    return [{"role": "user", "content": instructions}, *_conversation(query)]


def build_messages(prompt_format: str, query: str, tools: list[Tool]) -> list[dict]:
    """The chat turns sent through the model's chat template."""
    if prompt_format == "hammer1":
        return [{"role": "user", "content": hammer1_user_message(query, tools)}]
    if prompt_format == "hammer2.0":
        return [{"role": "user", "content": hammer20_user_message(query, tools)}]
    if prompt_format == "hammer2.1":
        return hammer21_messages(query, tools)
    raise ValueError(f"unknown prompt format {prompt_format!r}; known: {', '.join(PROMPT_FORMATS)}")


def prompt_text(messages: list[dict]) -> str:
    """The `prompt` column: the user message of a one-turn prompt, else the turns as JSON."""
    if len(messages) == 1:
        return messages[0]["content"]
    return json.dumps(messages, ensure_ascii=False)
