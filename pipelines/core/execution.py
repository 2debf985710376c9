"""What executed calls are worth, pure: the leaderboard's execution rules, and gold call strings read
without evaluating them.

Two rule sets, as BFCL scores execution:
- multi-turn (a row with environments: `multi_turn_checker.py`'s rules for one turn): after the
  model's calls and the gold's calls run on fresh instances of the row's environments, every
  instance's public attributes are equal (`state_checker`), and every result of the gold's calls is
  among the model's (`response_checker`: unordered, with multiplicity); a turn whose gold calls
  something and whose model calls nothing is wrong;
- the exec categories (a row whose gold names an `execution_result_type` per call): the model's
  results are matched one to one with the gold's (any order; as many calls as the gold's), by
  `exact_match` (equal, a tuple read as a list), `real_time_match` (a number within 20% of the
  gold's) or `structural_match` (the same type; a dict with the same keys, a list of the same length).

Results are compared as the leaderboard renders them (`result_text`): text as is, a dict as JSON
(else its str), anything else its str; an error as "Error during execution: <message>".
"""

from __future__ import annotations

import ast
import json
from typing import Any, Callable

from pipelines.core.reasons import Reason

REAL_TIME_MATCH_ALLOWED_DIFFERENCE = 0.2  # BFCL's executable checker constant
RESULT_TYPES = ("exact_match", "real_time_match", "structural_match")
ERROR_PREFIX = "Error during execution: "


def result_text(value: Any) -> str:
    """A call's result as the leaderboard keeps it."""
    if type(value) is str:
        return value
    if type(value) is dict:
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def state_differences(model_instances: dict[str, object], gold_instances: dict[str, object]) -> list[str]:
    """`Class.attribute` for every public attribute of a gold instance that the model's instance of
    the same class does not equal (BFCL's _compare_instances, which uses the objects' own ==)."""
    differences = []
    for class_name, gold in gold_instances.items():
        model = model_instances[class_name]
        for name in vars(gold):
            if not name.startswith("_") and getattr(model, name, None) != getattr(gold, name):
                differences.append(f"{class_name}.{name}")
    return differences


def missing_results(gold_results: list[str], model_results: list[str]) -> list[str]:
    """The gold's results not found among the model's, each found one used once (BFCL's
    _is_subsequence_unordered)."""
    left, missing = list(model_results), []
    for item in gold_results:
        try:
            left.remove(item)
        except ValueError:
            missing.append(item)
    return missing


def multi_turn_verdict(model_calls: int, gold_calls: int, state_diff: list[str], missing: list[str]) -> Reason | None:
    """Why one turn's execution is wrong by the multi-turn rules, or None when it is right."""
    if gold_calls and not model_calls:
        return Reason("empty_turn", f"the gold makes {gold_calls} call(s), the model none")
    if not gold_calls:
        return None if not model_calls else Reason("calls_where_none_fit", f"{model_calls} call(s); the gold makes none")
    if state_diff:
        return Reason("state_mismatch", ", ".join(state_diff[:8]))
    if missing:
        return Reason("result_missing", f"{len(missing)} of the gold's results not among the model's: "
                                        f"{_short(missing[0])}")
    return None


def result_matches(value: Any, expected: Any, result_type: str) -> Reason | None:
    """One model result against one gold result by the exec category's rule, or why not."""
    if isinstance(value, tuple):
        value = list(value)
    if result_type == "exact_match":
        return None if value == expected else Reason("wrong_result", f"expected {_short(expected)}, got {_short(value)}")
    if result_type == "real_time_match":
        numbers = (int, float)
        if type(value) not in numbers or type(expected) not in numbers:
            return Reason("wrong_result", f"real_time_match needs numbers, got {type(value).__name__}")
        low, high = sorted((expected * (1 - REAL_TIME_MATCH_ALLOWED_DIFFERENCE),
                            expected * (1 + REAL_TIME_MATCH_ALLOWED_DIFFERENCE)))
        return None if low <= value <= high else Reason("wrong_result", f"expected {expected} within 20%, got {value}")
    if type(value) is not type(expected):
        return Reason("wrong_result_type", f"expected {type(expected).__name__}, got {type(value).__name__}")
    if isinstance(value, dict) and set(value) != set(expected):
        return Reason("wrong_result_type", f"keys {sorted(map(str, value))} against {sorted(map(str, expected))}")
    if isinstance(value, list) and len(value) != len(expected):
        return Reason("wrong_result_type", f"{len(value)} elements against {len(expected)}")
    return None


def exec_category_verdict(model_values: list, gold_values: list, result_types: list[str]) -> Reason | None:
    """The model's results matched one to one with the gold's, in any order (BFCL's
    executable_checker_parallel_no_order; one call is its special case)."""
    if len(model_values) != len(gold_values):
        return Reason("wrong_count", f"{len(model_values)} call(s), the gold makes {len(gold_values)}")
    used: set[int] = set()
    for expected, result_type in zip(gold_values, result_types):
        why = None
        for index, value in enumerate(model_values):
            if index not in used:
                why = result_matches(value, expected, result_type)
                if why is None:
                    used.add(index)
                    break
        if why is not None:  # no unused result of the model's matches this one of the gold's
            return why
    return None


def parse_call_string(text: str, parameters: Callable[[str], list[str] | None]) -> dict:
    """A gold call as the leaderboard writes it (`cd(folder='document')`, `sort('a.pdf')`) -> the
    call as JSON (`{"name": ..., "arguments": {...}}`), reading the arguments as Python literals
    (ast.literal_eval: nothing is evaluated). Positional arguments are named by `parameters(name)`,
    the function's parameter names in order. Raises ValueError for anything else."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise ValueError(f"not a call: {text!r} ({e.msg})") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a call of a named function: {text!r}")
    name = node.func.id
    arguments = {}
    if node.args:
        names = parameters(name)
        if names is None or len(node.args) > len(names):
            raise ValueError(f"{text!r}: {len(node.args)} positional argument(s), and {name}'s parameters are not known")
        for parameter, value in zip(names, node.args):
            arguments[parameter] = ast.literal_eval(value)
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ValueError(f"{text!r}: **arguments are not a call's literal arguments")
        arguments[keyword.arg] = ast.literal_eval(keyword.value)
    return {"name": name, "arguments": arguments}


def call_string(call: dict) -> str:
    """A JSON call written as the leaderboard writes calls (keyword arguments, Python literals)."""
    return f"{call['name']}({', '.join(f'{k}={v!r}' for k, v in call['arguments'].items())})"


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
