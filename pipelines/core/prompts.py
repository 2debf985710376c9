"""Prompt formats: pure functions of (query, canonical tools) -> chat messages.

  hammer1    the Hammer-7b model card's prompt, byte for byte (docs/hammer-prompt.md): one user turn
             with four blocks; a multi-turn query joins its user messages as BFCL's handler does.
  hammer2.0  hammer1's instruction; object parameters flattened into their sub-parameters; the
             QUERY block holds `role: content` lines (BFCL's Hammer handler for 2.0).
  hammer2.1  a task instruction that names the roles; no QUERY block: every conversation message
             is its own chat turn (BFCL's Hammer handler for 2.1).
  chat_template  any family that takes tools through its own chat template (Qwen2.5/3, Llama 3.x,
             Mistral, xLAM-2, Hammer 2.x): the conversation as it is, and the row's tools as OpenAI
             function tools, for `apply_chat_template(..., tools=...)` or a server's `tools`; the model
             answers in its own format (validation.parser).

A query is a string, or a JSON list of chat messages (`role`, `content`) for multi-turn rows.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from pipelines.core import untrusted
from pipelines.core.tools import Tool, openai_tool

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

HAMMER_FORMATS = ("hammer1", "hammer2.0", "hammer2.1")
CHAT_TEMPLATE = "chat_template"
PROMPT_FORMATS = (*HAMMER_FORMATS, CHAT_TEMPLATE)


def parse_query(query: str) -> list[dict] | None:
    """The chat messages of a multi-turn query, or None for a plain-text query. UntrustedValue for
    a JSON query the job refuses (untrusted.py: a lone surrogate, NaN, nesting past its limit)."""
    if not query.lstrip().startswith("["):
        return None
    try:
        value = untrusted.loads(query)
    except json.JSONDecodeError:
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


@dataclass(frozen=True)
class Prompt:
    """The chat turns to send, and the first turn's text in parts that join to it: the task block
    to the tools JSON, the tools JSON, the format block, then the row's own text. All parts but the
    last repeat across rows (every row has the same task and format blocks; datasets repeat tool
    sets), so the prompt stage tokenizes them once (pipelines/prompt_tokens.py)."""

    messages: list[dict]
    parts: tuple[str, ...]
    tools: list[dict] | None = None  # chat_template: OpenAI function tools, rendered by the model's own template

    @property
    def shared_prefix(self) -> tuple:
        """What rows with the same tool set share at the start of their prompt (rows are sent by it)."""
        return (json.dumps(self.tools),) if self.tools is not None else self.parts[:2]


def _tools_json(tools: list[Tool], flatten_objects: bool) -> str:
    return json.dumps([hammer_tool(t, flatten_objects) for t in tools])


def _instruction_parts(task: str, tools: list[Tool], flatten_objects: bool) -> tuple[str, str, str]:
    """The task, tools and format blocks, cut at the edges of the tools JSON."""
    return (_block("TASK INSTRUCTION", task) + "[BEGIN OF AVAILABLE TOOLS]\n",
            _tools_json(tools, flatten_objects) + "\n",
            "[END OF AVAILABLE TOOLS]\n\n" + _block("FORMAT INSTRUCTION", FORMAT_INSTRUCTION))


def _one_turn(parts: tuple[str, ...]) -> Prompt:
    return Prompt([{"role": "user", "content": "".join(parts)}], parts)


def _hammer1(query: str, tools: list[Tool]) -> Prompt:
    task, user_query = TASK_INSTRUCTION, query
    messages = parse_query(query)
    if messages is not None:
        task += "".join(f"\n{m['content']}" for m in messages if m["role"] == "system")
        user_query = "".join(f"\n{m['content']}" for m in messages if m["role"] == "user")
    return _one_turn((*_instruction_parts(task, tools, flatten_objects=False), _block("QUERY", user_query)))


def _conversation(query: str) -> list[dict]:
    # Hammer takes no system turn of its own: a system message speaks as the user (as in BFCL).
    messages = parse_query(query) or [{"role": "user", "content": query}]
    return [{**m, "role": "user"} if m["role"] == "system" else m for m in messages]


def _hammer20(query: str, tools: list[Tool]) -> Prompt:
    messages = _conversation(query)
    lines = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    if messages[-1]["role"] != "user":
        lines += "user:  \n"
    return _one_turn((*_instruction_parts(TASK_INSTRUCTION, tools, flatten_objects=True), _block("QUERY", lines)))


def _hammer21(query: str, tools: list[Tool]) -> Prompt:
    # The row's own text is the conversation's turns, after the first: the first turn's last part is empty.
    parts = (*_instruction_parts(TASK_INSTRUCTION + ROLES_PARAGRAPH, tools, flatten_objects=True), "")
    return Prompt([{"role": "user", "content": "".join(parts)}, *_conversation(query)], parts)


def _chat_template(query: str, tools: list[Tool]) -> Prompt:
    # The family's template places the tools and takes system turns itself: the conversation goes as it is.
    messages = parse_query(query) or [{"role": "user", "content": query}]
    return Prompt(messages, (messages[0]["content"],), [openai_tool(t) for t in tools])


_BUILDERS = {"hammer1": _hammer1, "hammer2.0": _hammer20, "hammer2.1": _hammer21, CHAT_TEMPLATE: _chat_template}


# A tool no template writes by itself: rendered with it, a template that takes tools shows its name.
TOOLS_PROBE = {"type": "function", "function": {
    "name": "probe_tool_hammer_labeling", "description": "A probe: does the chat template show the tools?",
    "parameters": {"type": "object", "properties": {"x": {"type": "string", "description": "x"}}, "required": []}}}
TOOLS_PROBE_MESSAGES = [{"role": "user", "content": "hello"}]


def shows_tools(rendered: str) -> bool:
    """Whether a chat template's rendering of TOOLS_PROBE_MESSAGES with TOOLS_PROBE holds the tool."""
    return TOOLS_PROBE["function"]["name"] in rendered


def build_prompt(prompt_format: str, query: str, tools: list[Tool]) -> Prompt:
    """The chat turns sent through the model's chat template, for one row."""
    if prompt_format not in _BUILDERS:
        raise ValueError(f"unknown prompt format {prompt_format!r}; known: {', '.join(PROMPT_FORMATS)}")
    return _BUILDERS[prompt_format](query, tools)


def prompt_text(messages: list[dict]) -> str:
    """The `prompt` column: the user message of a one-turn prompt, else the turns as JSON."""
    if len(messages) == 1:
        return messages[0]["content"]
    return json.dumps(messages, ensure_ascii=False)
