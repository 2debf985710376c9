"""Hammer prompt formats: pure functions of (query, canonical tools) -> chat messages.

Version 1 is the prompt of the Hammer-7b model card, byte for byte (see docs/hammer-prompt.md).
"""

from __future__ import annotations

import json

from pipelines.tools import Tool

TASK_INSTRUCTION = """You are a tool calling assistant. In order to complete the user's request, you need to select one or more appropriate tools from the following tools and fill in the correct values for the tool parameters. Your specific tasks are:
1. Make one or more function/tool calls to meet the request based on the question.
2. If none of the function can be used, point it out and refuse to answer.
3. If the given question lacks the parameters required by the function, also point it out.
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

PROMPT_FORMATS = ("hammer-v1",)


def hammer_tool(tool: Tool) -> dict:
    """A canonical tool in Hammer's form: parameters are the properties themselves, with
    `"required": true` appended to required ones and the default spelled out in the description."""
    params = {}
    for pname, spec in tool.properties.items():
        spec = dict(spec)
        if "default" in spec:
            spec["description"] = f"{spec.get('description', '')}default is '{spec['default']}'"
        if pname in tool.required:
            spec["required"] = True
        params[pname] = spec
    return {"name": tool.name, "description": tool.description, "parameters": params}


def _block(title: str, body: str) -> str:
    return f"[BEGIN OF {title}]\n{body}\n[END OF {title}]\n\n"


def hammer_v1_user_message(query: str, tools: list[Tool]) -> str:
    return (
        _block("TASK INSTRUCTION", TASK_INSTRUCTION)
        + _block("AVAILABLE TOOLS", json.dumps([hammer_tool(t) for t in tools]))
        + _block("FORMAT INSTRUCTION", FORMAT_INSTRUCTION)
        + _block("QUERY", query)
    )


def build_messages(prompt_format: str, query: str, tools: list[Tool]) -> list[dict]:
    """The chat turns sent through the model's chat template."""
    if prompt_format == "hammer-v1":
        return [{"role": "user", "content": hammer_v1_user_message(query, tools)}]
    raise ValueError(f"unknown prompt format {prompt_format!r}; known: {', '.join(PROMPT_FORMATS)}")
