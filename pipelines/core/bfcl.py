"""The Berkeley Function-Calling Leaderboard's rules: its AST checker, its relevance rules and its
table, in-process. Pure.

A port of bfcl-eval 2026.3.23 (Apache-2.0; `bfcl_eval/eval_checker/ast_eval/ast_checker.py`, the
relevance runner of `eval_runner.py`, the aggregates of `eval_runner_helper.py`), Python rules only.
tests/core/test_bfcl_oracle.py feeds the same outputs to this and to the installed leaderboard code, row
for row. The checker's quirks are the leaderboard's and are kept on purpose (each is named in
docs/output.md, "Scoring like the leaderboard"); where this differs, it says so below.

Gold here is BFCL's possible-answer form, one entry per expected call: (function, {parameter:
[accepted values]}), `""` among the accepted values meaning the parameter may be left out.
"""

from __future__ import annotations

import re
from typing import Any

from pipelines.core.reasons import Reason
from pipelines.core.tools import parameters_schema

# ---------------------------------------------------------------- categories

# The single-turn categories whose rows this module scores, and how (the leaderboard picks the
# checker by the category's name: "parallel" in it, then "multiple", else simple).
AST_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple",
                  "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
IRRELEVANCE_CATEGORIES = ("irrelevance", "live_irrelevance")  # correct: no call
RELEVANCE_CATEGORIES = ("live_relevance",)  # correct: any well-formed call
CATEGORIES = AST_CATEGORIES + IRRELEVANCE_CATEGORIES + RELEVANCE_CATEGORIES
# Scored by the leaderboard after converting values by language; not ported (docs/output.md).
UNPORTED_CATEGORIES = ("simple_java", "simple_javascript")

# The gold call type of a row without a category -> the checker the leaderboard would pick.
_CHECKER_OF_GOLD_TYPE = {"single": "simple", "multiple": "multiple", "parallel": "parallel",
                         "parallel_multiple": "parallel", "irrelevance": "irrelevance"}


def checker_of(category: str | None, gold_call_type: str) -> str:
    """simple, multiple, parallel, irrelevance or relevance: by the category's name as the
    leaderboard reads it, or, without a category, by the gold calls."""
    if not category:
        return _CHECKER_OF_GOLD_TYPE[gold_call_type]
    if "irrelevance" in category:
        return "irrelevance"
    if "relevance" in category:
        return "relevance"
    if "parallel" in category:
        return "parallel"
    return "multiple" if "multiple" in category else "simple"


# ---------------------------------------------------------------- the checker

# BFCL's Python types of a parameter's `type`, plus JSON Schema's names for tools written that way
# (the leaderboard's own data uses only the first eight; it would fail on the others).
PYTHON_TYPES = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list,
                "dict": dict, "any": str,
                "number": float, "object": dict}
_NESTED = ("array", "tuple")  # checked one level deep, item by item


def check(checker: str, calls: list[dict] | None, gold: list[tuple[str, dict]], tools: list) -> Reason | None:
    """None when the leaderboard counts `calls` correct for `gold`, else why not.

    calls: the decoded output as {"name", "arguments"} (None: it does not decode); tools: the row's
    Tool objects (pipelines.core.tools).
    """
    if checker == "irrelevance":  # no call, or output that does not decode (the leaderboard's rule)
        return Reason("expected_no_call", f"the model made {len(calls)} call(s)") if calls else None
    if checker == "relevance":
        return None if calls else Reason("unexpected_no_call", "expected a call (relevance: any well-formed call)")
    calls = calls or []  # an output that does not decode is no calls: wrong count
    expected = 1 if checker == "simple" else len(gold)
    if len(calls) != expected:
        return Reason("wrong_count", f"expected {expected} call(s), got {len(calls)}")
    by_name = {t.name: t for t in tools}
    if checker == "parallel":
        return _parallel_no_order(calls, gold, by_name)
    # simple and multiple: the first call against the first expected one. (The leaderboard's simple
    # checker takes the row's first tool; this takes the expected function's, the same one in its data.)
    return _function(by_name.get(gold[0][0]), calls[0], gold[0])


def _parallel_no_order(calls: list[dict], gold: list[tuple[str, dict]], by_name: dict) -> Reason | None:
    """Each expected call, in gold order, takes the first unmatched call that passes (greedy: an
    earlier match can take the call a later one needed, as on the leaderboard)."""
    matched: list[int] = []
    for expected in gold:
        tool = by_name.get(expected[0])
        problems = []
        for index, call in enumerate(calls):
            if index in matched:
                continue
            problem = _function(tool, call, expected)
            if problem is None:
                matched.append(index)
                break
            problems.append((call["name"] == expected[0], problem))
        else:
            same_name = [p for same, p in problems if same]
            return (same_name or [p for _, p in problems])[0]
    return None


def _function(tool, call: dict, expected: tuple[str, dict]) -> Reason | None:
    """BFCL's simple_function_checker."""
    name, possible = expected
    if tool is None:
        return Reason("wrong_function", f"{name} is not among the row's tools")
    if call["name"] != name:
        return Reason("wrong_function", f"expected {name}, got {call['name']}")
    arguments = call["arguments"]
    for param in _required(tool):
        if param not in arguments:
            return Reason("missing_argument", f"{name}.{param} is required")
    for param, value in arguments.items():
        spec = tool.properties.get(param)
        if not isinstance(spec, dict) or param not in possible:
            return Reason("extra_argument", f"{name}.{param} = {_short(value)} (not in the possible answer)")
        accepted = possible[param]
        type_name = spec.get("type")
        expected_type = PYTHON_TYPES.get(type_name) if isinstance(type_name, str) else None
        nested_type = None
        if type_name in _NESTED:
            items = spec.get("items") if isinstance(spec.get("items"), dict) else {}
            nested_type = PYTHON_TYPES.get(items.get("type"))
        if type_name == "float" and type(value) is int:  # the leaderboard lets Python widen int to float
            value = float(value)
        if expected_type is not None:  # a type this module does not know is not checked (see PYTHON_TYPES)
            valid, is_variable = _type_check(value, accepted, expected_type, nested_type)
            if not valid:
                items = f" of {spec['items'].get('type')}" if nested_type is not None else ""
                return Reason("wrong_type", f"{name}.{param}: expected {type_name}{items}, got {_short(value)}")
        else:
            is_variable = False
        if not is_variable:
            if expected_type is dict:
                problem = _dict_check(value, accepted)
            elif expected_type is list and nested_type is dict:
                problem = _list_dict_check(value, accepted)
            elif expected_type is str:
                problem = None if _standard(value) in [_standard(a) for a in accepted if type(a) is str] else \
                    f"one of {_short(accepted)} (case, spaces and ,./-_*^ ignored)"
            elif expected_type is list:
                problem = None if _standard_list(value) in [_standard_list(a) for a in accepted
                                                            if isinstance(a, (list, str))] else \
                    f"one of {_short(accepted)}"
            else:
                problem = None if value in accepted else f"one of {_short(accepted)}"
            if problem:
                return Reason("wrong_value", f"{name}.{param} expected {problem}, got {_short(value)}")
        elif value not in accepted:
            return Reason("wrong_value", f"{name}.{param} expected one of {_short(accepted)}, got {_short(value)}")
    for param, accepted in possible.items():
        if param not in arguments and "" not in accepted:
            return Reason("missing_argument", f"{name}.{param} (expected one of {_short(accepted)}; the possible "
                                              "answer does not let it be left out)")
    return None


def _required(tool) -> list[str]:
    # xLAM-form tools declare no `required`; the schema's own reading of them applies (pipelines.core.tools)
    return parameters_schema(tool)[0]["required"] if tool.form == "xlam" else tool.required


def _answer_type(accepted: list):
    """The type of the first accepted value other than "" (the leaderboard's reading of a value
    whose type differs from the schema's: a variable, or a gold value of its own type)."""
    return next((type(a) for a in accepted if a != ""), None)


def _type_check(value, accepted: list, expected_type, nested_type) -> tuple[bool, bool]:
    """BFCL's type_checker: (valid, is_variable). One level of nesting; the possible answer's own
    type is accepted in place of the schema's."""
    answer_type = _answer_type(accepted)
    is_variable = answer_type is not None and answer_type is not expected_type
    if type(value) is expected_type:
        if nested_type is None:
            return True, is_variable
        for alternative in accepted:
            if type(alternative) is list and not all(_type_check(item, alternative, nested_type, None)[0]
                                                       for item in value):
                continue
            return True, is_variable  # a list alternative whose items all fit, or any other alternative
        return False, is_variable
    if answer_type is not None and type(value) is answer_type:
        return True, True
    return False, is_variable


def _standard(text) -> str:
    """BFCL's standardize_string: spaces and ,./-_*^ removed, lower case, ' as "."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _standard_list(value) -> list:
    """A list with its string items standardized (BFCL's list_checker; "" among the accepted values
    becomes [], so an empty list matches it)."""
    return [_standard(v) if type(v) is str else v for v in value]


def _dict_check(value, accepted: list) -> str | None:
    """BFCL's dict_checker: an accepted object gives each key its accepted values; keys whose
    accepted values hold "" may be left out. None when one accepted object matches. (Where the
    leaderboard's code would raise, on a value or an accepted one that is not such an object, this
    says no.)"""
    problem = "an object"
    for alternative in accepted:
        if alternative == "":
            continue
        if not isinstance(value, dict) or not isinstance(alternative, dict):
            problem = "an object"
            continue
        problem = None
        for key, item in value.items():
            if key not in alternative:
                problem = f"no key {key!r}"
                break
            values = alternative[key] if isinstance(alternative[key], list) else [alternative[key]]
            standard = _standard(item) if type(item) is str else item
            if standard not in [_standard(a) if type(a) is str else a for a in values]:
                problem = f"{key} one of {_short(alternative[key])}"
                break
        if problem is None:
            for key, values in alternative.items():
                if key not in value and not (isinstance(values, list) and "" in values):
                    problem = f"key {key!r}"
                    break
        if problem is None:
            return None
    return problem


def _list_dict_check(value: list, accepted: list) -> str | None:
    """BFCL's list_dict_checker: a list of objects, each against the same place of an accepted list."""
    problem = "a list of objects"
    for alternative in accepted:
        if not isinstance(alternative, (list, str)) or len(value) != len(alternative):  # "": an empty list
            problem = "another number of objects"
            continue
        problems = [_dict_check(item, [pattern]) for item, pattern in zip(value, alternative)]
        problem = next((p for p in problems if p), None)
        if problem is None:
            return None
    return problem


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------- the table

def _score(counts: dict, category: str) -> dict:
    """BFCL's get_category_score: accuracy and count, or missing (the leaderboard counts a missing
    category as 0 in the aggregates that show a number anyway, and as N/A where it shows N/A)."""
    if category in counts:
        correct, total = counts[category]
        return {"accuracy": correct / total if total else 0.0, "total": total, "missing": []}
    return {"accuracy": 0.0, "total": 0, "missing": [category]}


def _unweighted(parts: list[dict]) -> dict:
    return {"accuracy": sum(p["accuracy"] for p in parts) / len(parts), "total": sum(p["total"] for p in parts),
            "missing": [m for p in parts for m in p["missing"]]}


def _weighted(parts: list[dict]) -> dict:
    total = sum(p["total"] for p in parts)
    return {"accuracy": sum(p["accuracy"] * p["total"] for p in parts) / total if total else 0.0, "total": total,
            "missing": [m for p in parts for m in p["missing"]]}


def table(counts: dict[str, tuple[int, int]]) -> dict:
    """Per-category (correct, rows) -> BFCL's single-turn table, aggregated as the leaderboard does:
    non-live simple and AST summary unweighted means, live AST weighted by rows, irrelevance the
    unweighted mean of non-live and live. Each cell: accuracy, rows, and the categories it lacks
    (a cell with any is shown as missing, not as the number the leaderboard's zeros would give).
    The leaderboard's overall accuracy also weighs multi-turn and agentic categories, which are not
    single-turn: it is not computed."""
    s = {c: _score(counts, c) for c in (*CATEGORIES, *UNPORTED_CATEGORIES)}
    simple = _unweighted([s["simple_python"], s["simple_java"], s["simple_javascript"]])
    non_live = _unweighted([simple, s["multiple"], s["parallel"], s["parallel_multiple"]])
    python_only = _unweighted([s["simple_python"], s["multiple"], s["parallel"], s["parallel_multiple"]])
    live = _weighted([s[c] for c in AST_CATEGORIES if c.startswith("live_")])
    irrelevance = _unweighted([s["irrelevance"], s["live_irrelevance"]])
    return {
        "categories": {c: s[c] for c in (*CATEGORIES, *UNPORTED_CATEGORIES)},
        "non_live_simple": simple,
        "non_live_ast_summary": non_live,
        # not a leaderboard figure: the summary with simple_python in place of the three simple categories
        "non_live_python_ast": python_only,
        "live_ast_summary": live,
        "irrelevance": irrelevance,
        "relevance": s["live_relevance"],
    }


# The Hammer-7b card's BFCL columns (its Exec Summary has no single-turn AST counterpart in BFCL v4).
CARD_COLUMNS = (("Non-live AST summary", "non_live_ast_summary"), ("Live AST summary", "live_ast_summary"),
                ("Irrelevance", "irrelevance"), ("Relevance", "relevance"))


def cell_text(cell: dict) -> str:
    return "missing" if cell["missing"] else f"{100 * cell['accuracy']:.2f}"


def markdown(result: dict, model: str) -> str:
    """The table in Markdown: the card's columns, then every category with its rows."""
    head = "| Model | " + " | ".join(name for name, _ in CARD_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(CARD_COLUMNS) + 1),
             f"| {model} | " + " | ".join(cell_text(result[key]) for _, key in CARD_COLUMNS) + " |", "",
             "| Category | Accuracy | Rows |", "|---|---|---|"]
    cells = {**result["categories"], "non-live simple (python, java, javascript)": result["non_live_simple"],
             "non-live AST, Python only (not a leaderboard figure)": result["non_live_python_ast"]}
    lines += [f"| {name} | {cell_text(cell)} | {cell['total'] or ''} |" for name, cell in cells.items()]
    missing = sorted({m for key in ("non_live_ast_summary", "live_ast_summary", "irrelevance", "relevance")
                      for m in result[key]["missing"]})
    if missing:
        lines += ["", f"Missing (no rows, or not scored like the leaderboard): {', '.join(missing)}. A cell that "
                      "needs one of them is shown as missing; the leaderboard would count it as 0."]
    return "\n".join(lines) + "\n"
