"""Model output text -> a list of calls, or the reason there is none. Pure; never evaluates code."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_FENCE = re.compile(r"^```[A-Za-z]*[ \t]*\n?(.*?)\n?```$", re.S)


@dataclass
class Parsed:
    calls: list[dict] | None  # each {"name": str, "arguments": dict}; None when the output is unusable
    errors: list[str] = field(default_factory=list)  # "code: detail"


def strip_fence(text: str) -> str:
    """Removes one surrounding ``` or ```json fence, which Hammer often adds."""
    text = text.strip()
    m = _FENCE.match(text)
    return m.group(1).strip() if m else text


def parse_output(text: str, max_chars: int = 100_000) -> Parsed:
    if len(text) > max_chars:
        return Parsed(None, [f"output_too_large: {len(text)} characters, limit {max_chars}"])
    body = strip_fence(text)
    if not body:
        return Parsed(None, ["parse_error: empty output"])
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        return Parsed(None, [f"parse_error: {e}"])
    except RecursionError:
        return Parsed(None, ["output_too_large: nested too deep"])
    if not isinstance(value, list):
        return Parsed(None, [f"not_a_list: the output is a JSON {type(value).__name__}, expected a list of calls"])
    calls, errors = [], []
    for i, item in enumerate(value):
        call, problem = _as_call(item)
        if problem:
            errors.append(f"not_a_call: item {i} {problem}")
        else:
            calls.append(call)
    return Parsed(calls if not errors else None, errors)


def _as_call(item) -> tuple[dict | None, str | None]:
    if not isinstance(item, dict):
        return None, f"is a {type(item).__name__}, expected an object"
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return None, "has no string 'name'"
    arguments = item.get("arguments", {})
    if isinstance(arguments, str):  # some models emit arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None, f"({name}) has 'arguments' that is a string but not JSON"
    if not isinstance(arguments, dict):
        return None, f"({name}) has 'arguments' that is a {type(arguments).__name__}, expected an object"
    return {"name": name, "arguments": arguments}, None
