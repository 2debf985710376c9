"""Gold scoring: the row's calls against its `answers`. Pure.

- one gold call (single, multiple): exactly that call; several (parallel, parallel_multiple): the same
  multiset of calls in any order;
- values equal after BFCL's normalization (validation.values_equal);
- an argument on one side only is equal only when its value is the parameter's default;
- gold `[]` (irrelevance) is correct only for `[]`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipelines.core.reasons import INVALID_CALL, NOT_SCORED, Reason
from pipelines.core.tools import Tool
from pipelines.core.validation import call_type, validate_calls, values_equal

GOLD_TYPES = ("single", "multiple", "parallel", "parallel_multiple", "irrelevance")


@dataclass
class Score:
    correct: bool | None  # None: no gold, or nothing to score
    mismatch: Reason | None  # why not correct
    gold_call_type: str | None
    gold_errors: list[Reason] = field(default_factory=list)  # the gold calls checked against their own tools


def load_gold(cell: Any) -> list[dict]:
    """`answers` (JSON string or list) -> calls; ValueError says what is wrong."""
    value = json.loads(cell) if isinstance(cell, (str, bytes)) else cell
    if not isinstance(value, list):
        raise ValueError(f"answers is a {type(value).__name__}, expected a list of calls")
    gold = []
    for i, c in enumerate(value):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise ValueError(f"answers item {i} is not a call with a name")
        arguments = c.get("arguments", {})
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        if not isinstance(arguments, dict):
            raise ValueError(f"answers item {i} has arguments that are not an object")
        gold.append({"name": c["name"], "arguments": arguments})
    return gold


def score_row(status: str, calls: list[dict] | None, errors: list[Reason], answers: Any, tools: list[Tool] | None) -> Score:
    if answers is None:
        return Score(None, None, None)
    try:
        gold = load_gold(answers)
    except (ValueError, json.JSONDecodeError) as e:
        return Score(None, Reason("bad_gold", str(e)), None)
    gold_type = "irrelevance" if not gold else call_type(gold, len(tools or []))
    gold_errors = validate_calls(gold, tools)[0] if tools else []
    if gold_errors:  # a reference that breaks its own tools judges nothing: fix the reference
        return Score(None, Reason("bad_gold", f"the gold calls break their tools: {gold_errors[0]}"), gold_type,
                     gold_errors)
    if status in NOT_SCORED:
        return Score(None, None, gold_type)
    return Score(*_compare(status, calls, errors, gold, tools or []), gold_type)


def _compare(status, calls, errors, gold, tools) -> tuple[bool, Reason | None]:
    if calls is None:
        detail = errors[0] if errors else status
        return False, Reason("unusable_output", str(detail))
    if status == INVALID_CALL:
        return False, Reason("invalid_call", f"{errors[0] if errors else 'failed validation'}")
    if not gold:
        return (True, None) if not calls else (False, Reason("expected_no_call", f"the model made {len(calls)} call(s)"))
    if not calls:
        return False, Reason("unexpected_no_call", f"expected {len(gold)} call(s)")
    if len(calls) != len(gold):
        return False, Reason("wrong_count", f"expected {len(gold)} call(s), got {len(calls)}")
    difference = first_difference(calls, gold, tools)
    return difference is None, difference


def same_calls(calls: list[dict], other: list[dict], tools: list[Tool]) -> bool:
    """The scoring equality of two call lists: as many calls, and each of `other` matched by one of
    `calls` (any order; values BFCL-normalized; an omitted argument equal to its default)."""
    return len(calls) == len(other) and first_difference(calls, other, tools) is None


def first_difference(calls: list[dict], gold: list[dict], tools: list[Tool]) -> Reason | None:
    """Matches each gold call to an unused call; the first gold call without a match gives the
    reason, preferring a difference from a call of the same function."""
    by_name = {t.name: t for t in tools}
    unused = list(calls)
    for g in gold:
        problems = [call_mismatch(c, g, by_name.get(g["name"])) for c in unused]
        if None in problems:
            unused.pop(problems.index(None))
            continue
        same_name = [p for c, p in zip(unused, problems) if c["name"] == g["name"]]
        return (same_name or problems)[0]
    return None


def call_mismatch(call: dict, gold: dict, tool: Tool | None) -> Reason | None:
    """None when `call` equals `gold`, else the first difference."""
    name = gold["name"]
    if call["name"] != name:
        return Reason("wrong_function", f"expected {name}, got {call['name']}")
    properties = tool.properties if tool else {}
    got, want = call["arguments"], gold["arguments"]
    for arg in list(want) + [a for a in got if a not in want]:
        default = properties.get(arg, {}).get("default", _NO_DEFAULT) if isinstance(properties.get(arg), dict) else _NO_DEFAULT
        if arg in got and arg in want:
            if not values_equal(got[arg], want[arg]):
                return Reason("wrong_value", f"{name}.{arg} expected {_short(want[arg])}, got {_short(got[arg])}")
        elif arg in want and not values_equal(want[arg], default):
            return Reason("missing_argument", f"{name}.{arg} (expected {_short(want[arg])})")
        elif arg in got and not values_equal(got[arg], default):
            return Reason("extra_argument", f"{name}.{arg} = {_short(got[arg])}")
    return None


_NO_DEFAULT = object()


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
