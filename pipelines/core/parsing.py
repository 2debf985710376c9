"""Model output text -> a list of calls, or the reason there is none. Pure; never evaluates code.

Accepted: a bare JSON list of calls; the same inside a ``` or ```json fence, with text around the
fence; a single call object (wrapped, flagged `single_object`); `{"tool_calls": [...]}` only when
lenient (flagged `tool_calls_wrapper`). Text that is not JSON is a `parse_error`, never an empty list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from pipelines.core.reasons import Reason

_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)\n?[ \t]*```", re.S)
CALL_KEYS = ("name", "arguments")


@dataclass
class Parsed:
    calls: list[dict] | None  # each {"name": str, "arguments": dict}; None when the output is unusable
    errors: list[Reason] = field(default_factory=list)
    flags: list[Reason] = field(default_factory=list)


def strip_fence(text: str) -> str:
    """The body of the first ``` / ```json fence (Hammer often adds one), else the text itself."""
    m = _FENCE.search(text)
    return m.group(1).strip() if m else text.strip()


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting outside strings: checked before json.loads so that a hostile output
    costs one linear scan, not a deep recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_output(text: str, max_chars: int = 100_000, max_depth: int = 32, lenient: bool = False) -> Parsed:
    if len(text) > max_chars:
        return Parsed(None, [Reason("output_too_large", f"{len(text)} characters, limit {max_chars}")])
    body = strip_fence(text)
    if not body:
        return Parsed(None, [Reason("parse_error", "empty output")])
    depth = nesting_depth(body)
    if depth > max_depth:
        return Parsed(None, [Reason("output_too_large", f"nested {depth} deep, limit {max_depth}")])
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        return Parsed(None, [Reason("parse_error", str(e))])
    flags = []
    if isinstance(value, dict) and "name" in value:
        value, flags = [value], [Reason("single_object", "the output is one call, not a list")]
    elif isinstance(value, dict) and lenient and isinstance(value.get("tool_calls"), list):
        value, flags = value["tool_calls"], [Reason("tool_calls_wrapper", "calls given under a 'tool_calls' key")]
    if not isinstance(value, list):
        return Parsed(None, [Reason("not_a_list", f"the output is a JSON {_json_type(value)}, expected a list of calls")])
    calls, errors = [], []
    for i, item in enumerate(value):
        call, problem, item_flags = _as_call(item, i)
        if problem:
            errors.append(Reason("not_a_call", f"item {i} {problem}"))
        else:
            calls.append(call)
            flags += item_flags
    if errors:
        return Parsed(None, errors, flags)
    return Parsed(calls, [], flags)


def _json_type(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _as_call(item, i: int) -> tuple[dict | None, str | None, list[Reason]]:
    if not isinstance(item, dict):
        return None, f"is a JSON {_json_type(item)}, expected an object", []
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return None, "has no string 'name'", []
    flags = []
    if "arguments" not in item:
        return None, f"({name}) has no 'arguments'", []
    arguments = item["arguments"]
    if isinstance(arguments, str):  # some models emit arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None, f"({name}) has 'arguments' that is a string but not JSON", []
        flags.append(Reason("arguments_as_string", f"item {i} ({name})"))
    if not isinstance(arguments, dict):
        return None, f"({name}) has 'arguments' that is a JSON {_json_type(arguments)}, expected an object", []
    extra = sorted(k for k in item if k not in CALL_KEYS)
    if extra:
        flags.append(Reason("extra_keys", f"item {i} ({name}) has {', '.join(extra)}"))
    return {"name": name, "arguments": arguments}, None, flags
