"""Gold scoring: the row's calls against its `answers`. Pure.

`answers` holds one of two forms (read by load_answers; a cell in neither is `bad_gold`):
  * calls: `[{"name": ..., "arguments": {...}}, ...]`, one concrete answer (xLAM's form);
  * possible answers: `[{function: {parameter: [accepted values]}}, ...]`, BFCL's `ground_truth`
    form: every accepted value per parameter, `""` meaning the parameter may be left out, an object
    value listing accepted values per key.
`[]` is the same in both: no call is the answer (irrelevance).

Two sets of rules (`scoring.rules`):
  * schema: one gold call (single, multiple): exactly that call; several (parallel,
    parallel_multiple): the same multiset of calls in any order; values equal after BFCL's
    normalization (validation.values_equal) to one accepted value; an argument on one side only is
    equal only when its value is the parameter's default (or, in possible answers, when `""` is
    accepted); gold `[]` is correct only for `[]`;
  * bfcl: the leaderboard's own checker (pipelines.core.bfcl), chosen by the row's BFCL category.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipelines.core import bfcl
from pipelines.core.reasons import INVALID_CALL, NOT_SCORED, Reason
from pipelines.core import untrusted
from pipelines.core.tools import Tool
from pipelines.core.validation import call_type, validate_calls, values_equal

GOLD_TYPES = ("single", "multiple", "parallel", "parallel_multiple", "irrelevance")
SCHEMA_RULES, BFCL_RULES = "schema", "bfcl"
# scoring.rules: auto picks bfcl for a row whose gold is in possible-answer form or whose category is
# one of the leaderboard's, schema for the others
RULES = ("auto", SCHEMA_RULES, BFCL_RULES)
MAX_AUDITED = 256  # concrete call lists the gold audit checks per row: each copies the row's calls
OMITTED = ""  # among a possible answer's accepted values: the parameter may be left out
CATEGORY_COLUMN = "bfcl_category"  # an input column naming the row's BFCL category (jobs/prepare.py writes it)


@dataclass
class ScoringConfig:
    # schema: the tools' schemas (defaults, BFCL's string normalization); bfcl: the leaderboard's checker;
    # auto: bfcl for rows whose gold is in possible-answer form or whose category is BFCL's, else schema
    rules: str = "auto"


@dataclass(frozen=True)
class Gold:
    """The expected calls, each (function, {parameter: [accepted values]}); a concrete answer has
    one accepted value per parameter."""

    calls: list[tuple[str, dict[str, list]]]
    possible_answers: bool  # BFCL's form: OMITTED among the accepted values means "may be left out"

    def to_json(self) -> str:
        """The cell as written by jobs/prepare.py, in the form it was given."""
        if self.possible_answers:
            value = [{name: params} for name, params in self.calls]
        else:
            value = [{"name": name, "arguments": {p: v[0] for p, v in params.items()}} for name, params in self.calls]
        return json.dumps(value, ensure_ascii=False)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def concrete_calls(self) -> list[list[dict]]:
        """Every concrete call list the gold names, one accepted value changed at a time from the
        first accepted ones: what the gold audit validates against the tools."""
        first = [(name, _first_values(params)) for name, params in self.calls]
        out = [[{"name": n, "arguments": a} for n, a in first]]
        for i, (name, params) in enumerate(self.calls):
            for param, accepted in params.items():
                for value in accepted[1:]:
                    if self.possible_answers and value == OMITTED:
                        continue
                    calls = [{"name": n, "arguments": dict(a)} for n, a in first]
                    calls[i]["arguments"][param] = _concrete(value)
                    out.append(calls)
        return out


_LEFT_OUT = object()


def _first(accepted: list):
    chosen = next((v for v in accepted if v != OMITTED), _LEFT_OUT)
    return chosen if chosen is _LEFT_OUT else _concrete(chosen)


def _first_values(accepted: dict) -> dict:
    """Each key's first accepted value; keys that may only be left out are left out."""
    chosen = {k: _first(v) for k, v in accepted.items()}
    return {k: v for k, v in chosen.items() if v is not _LEFT_OUT}


def _concrete(value):
    """An accepted value with its nested objects' first accepted values (possible answers nest)."""
    if _is_pattern(value):
        return _first_values(value)
    if isinstance(value, list):
        return [_concrete(v) if _is_pattern(v) else v for v in value]
    return value


def _is_pattern(value) -> bool:
    """An object of a possible answer whose keys list their accepted values."""
    return isinstance(value, dict) and bool(value) and all(isinstance(v, list) for v in value.values())


@dataclass
class Score:
    correct: bool | None  # None: no gold, or nothing to score
    mismatch: Reason | None  # why not correct
    gold_call_type: str | None
    gold_errors: list[Reason] = field(default_factory=list)  # the gold calls checked against their own tools
    rules: str | None = None  # the rules that gave `correct`


def load_answers(cell: Any) -> Gold:
    """`answers` (JSON string or list) in either form -> Gold; ValueError says what is wrong."""
    if isinstance(cell, bytes):
        cell = cell.decode("utf-8")  # UnicodeDecodeError is a ValueError: bad_gold
    value = untrusted.loads(cell) if isinstance(cell, str) else untrusted.check_value(cell)
    if not isinstance(value, list):
        raise ValueError(f"answers is a {type(value).__name__}, expected a list of calls or of possible answers")
    forms, calls = set(), []
    for i, item in enumerate(value):
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            forms.add("calls")
            arguments = item.get("arguments", {})
            if isinstance(arguments, str):
                arguments = untrusted.loads(arguments)
            if not isinstance(arguments, dict):
                raise ValueError(f"answers item {i} has arguments that are not an object")
            calls.append((item["name"], {p: [v] for p, v in arguments.items()}))
        elif isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), dict):
            (name, params), = item.items()
            bad = [p for p, v in params.items() if not isinstance(v, list)]
            if bad:
                raise ValueError(f"answers item {i} ({name}) is a possible answer whose parameter {bad[0]!r} does not "
                                 "list its accepted values")
            forms.add("possible answers")
            calls.append((name, params))
        else:
            raise ValueError(f"answers item {i} is neither a call ({{\"name\", \"arguments\"}}) nor a possible answer "
                             "({function: {parameter: [accepted values]}})")
    if len(forms) > 1:
        raise ValueError("answers mixes calls and possible answers: use one form per row")
    return Gold(calls, forms == {"possible answers"})


def load_gold(cell: Any) -> list[dict]:
    """`answers` as one concrete call list (jobs/augment.py masks those); ValueError for possible answers."""
    gold = load_answers(cell)
    if gold.possible_answers:
        raise ValueError("answers are BFCL possible answers (accepted values per parameter): this takes concrete calls")
    return [{"name": name, "arguments": {p: v[0] for p, v in params.items()}} for name, params in gold.calls]


def rules_of(rules: str, gold: Gold, category: str | None) -> str:
    """The rules a row is scored by (scoring.rules, resolved for `auto`)."""
    if rules != "auto":
        return rules
    return BFCL_RULES if gold.possible_answers or category in bfcl.CATEGORIES else SCHEMA_RULES


def score_row(status: str, calls: list[dict] | None, errors: list[Reason], answers: Any, tools: list[Tool] | None,
              rules: str = "auto", category: str | None = None) -> Score:
    """rules: scoring.rules; category: the row's BFCL category, if any (bfcl rules pick the
    leaderboard's checker by it; live_relevance rows are scored without answers)."""
    if answers is None:
        if category in bfcl.RELEVANCE_CATEGORIES and rules != SCHEMA_RULES and status not in NOT_SCORED:
            return Score(*_bfcl(calls, Gold([], True), tools or [], category, None), None, rules=BFCL_RULES)
        return Score(None, None, None)
    try:
        gold = load_answers(answers)
    except (ValueError, json.JSONDecodeError) as e:
        return Score(None, Reason("bad_gold", str(e)), None)
    chosen = rules_of(rules, gold, category)
    gold_type = "irrelevance" if not gold.calls else call_type([{"name": n} for n in gold.names()], len(tools or []))
    gold_errors = _audit(gold, tools) if tools else []
    if gold_errors and chosen == SCHEMA_RULES:  # a reference that breaks its own tools judges nothing: fix it
        return Score(None, Reason("bad_gold", f"the gold calls break their tools: {gold_errors[0]}"), gold_type,
                     gold_errors)
    if status in NOT_SCORED:
        return Score(None, None, gold_type, gold_errors)
    if chosen == BFCL_RULES:  # the leaderboard scores gold that breaks its tools too (an enum value the schema lacks)
        return Score(*_bfcl(calls, gold, tools or [], category, gold_type), gold_type, gold_errors, BFCL_RULES)
    return Score(*_compare(status, calls, errors, gold, tools or []), gold_type, rules=SCHEMA_RULES)


def _audit(gold: Gold, tools: list[Tool]) -> list[Reason]:
    """Every accepted value of the gold, validated against the row's tools (first problem of each kind)."""
    errors = [Reason("no_accepted_value", f"{name}.{param}: the possible answer accepts no value, so no call is "
                                          "correct") for name, params in gold.calls for param, v in params.items() if not v]
    seen = set()
    for calls in gold.concrete_calls()[:MAX_AUDITED]:
        for reason in validate_calls(calls, tools)[0]:
            if str(reason) not in seen:
                seen.add(str(reason))
                errors.append(reason)
    return errors


def _bfcl(calls, gold: Gold, tools, category, gold_type) -> tuple[bool, Reason | None]:
    difference = bfcl.check(bfcl.checker_of(category, gold_type), calls, gold.calls, tools)
    return difference is None, difference


def _compare(status, calls, errors, gold: Gold, tools) -> tuple[bool, Reason | None]:
    if calls is None:
        detail = errors[0] if errors else status
        return False, Reason("unusable_output", str(detail))
    if status == INVALID_CALL:
        return False, Reason("invalid_call", f"{errors[0] if errors else 'failed validation'}")
    if not gold.calls:
        return (True, None) if not calls else (False, Reason("expected_no_call", f"the model made {len(calls)} call(s)"))
    if not calls:
        return False, Reason("unexpected_no_call", f"expected {len(gold.calls)} call(s)")
    if len(calls) != len(gold.calls):
        return False, Reason("wrong_count", f"expected {len(gold.calls)} call(s), got {len(calls)}")
    difference = first_difference(calls, gold, tools)
    return difference is None, difference


def same_calls(calls: list[dict], other: list[dict], tools: list[Tool]) -> bool:
    """The scoring equality of two call lists: as many calls, and each of `other` matched by one of
    `calls` (any order; values BFCL-normalized; an omitted argument equal to its default)."""
    expected = Gold([(c["name"], {p: [v] for p, v in c["arguments"].items()}) for c in other], False)
    return len(calls) == len(other) and first_difference(calls, expected, tools) is None


def first_difference(calls: list[dict], gold: Gold, tools: list[Tool]) -> Reason | None:
    """Matches each gold call to an unused call; the first gold call without a match gives the
    reason, preferring a difference from a call of the same function."""
    by_name = {t.name: t for t in tools}
    unused = list(calls)
    for expected in gold.calls:
        problems = [call_mismatch(c, expected, by_name.get(expected[0]), gold.possible_answers) for c in unused]
        if None in problems:
            unused.pop(problems.index(None))
            continue
        same_name = [p for c, p in zip(unused, problems) if c["name"] == expected[0]]
        return (same_name or problems)[0]
    return None


def call_mismatch(call: dict, expected: tuple[str, dict], tool: Tool | None, possible_answers: bool = False) -> Reason | None:
    """None when `call` matches the expected (function, {parameter: [accepted values]}), else the
    first difference. possible_answers: OMITTED among the accepted values lets the argument be left out."""
    name, want = expected
    if call["name"] != name:
        return Reason("wrong_function", f"expected {name}, got {call['name']}")
    properties = tool.properties if tool else {}
    got = call["arguments"]
    for arg in list(want) + [a for a in got if a not in want]:
        default = properties.get(arg, {}).get("default", _NO_DEFAULT) if isinstance(properties.get(arg), dict) else _NO_DEFAULT
        accepted = [v for v in want.get(arg, []) if not (possible_answers and v == OMITTED)]
        if arg in got and arg in want:
            if not any(_accepts(v, got[arg]) for v in accepted):
                shown = accepted[0] if len(accepted) == 1 else accepted
                return Reason("wrong_value", f"{name}.{arg} expected {_short(shown)}{'' if len(accepted) == 1 else ' (one of)'}, "
                                             f"got {_short(got[arg])}")
        elif arg in want:
            if len(accepted) < len(want[arg]) or any(values_equal(v, default) for v in accepted):
                continue
            return Reason("missing_argument", f"{name}.{arg} (expected {_short(accepted[0] if len(accepted) == 1 else accepted)})")
        elif not values_equal(got[arg], default):
            return Reason("extra_argument", f"{name}.{arg} = {_short(got[arg])}")
    return None


def _accepts(accepted, value) -> bool:
    """`value` equals the accepted one; an object of a possible answer accepts values key by key."""
    if _is_pattern(accepted) and isinstance(value, dict):
        return all(k in accepted and any(_accepts(a, v) for a in accepted[k] if a != OMITTED) for k, v in value.items()) \
            and all(k in value or OMITTED in a for k, a in accepted.items())
    if isinstance(accepted, list) and isinstance(value, list) and any(_is_pattern(a) for a in accepted):
        return len(accepted) == len(value) and all(_accepts(a, v) for a, v in zip(accepted, value))
    return values_equal(value, accepted)


_NO_DEFAULT = object()


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
