"""scoring.rules=bfcl against the leaderboard's own code, on every row of BFCL's single-turn Python
and relevance categories.

bfcl-eval==2026.3.23 is installed without its dependencies (Makefile): its checker is imported from
the package; `bfcl_eval.constants.model_config` (which imports every model vendor's SDK) is stood in
for with the one thing the checker reads from it (whether a model's names had dots replaced: no).
The relevance rule is the leaderboard runner's own function, taken from its source file (the module
that holds it imports tree-sitter and every model handler).

Each row is fed through jobs/prepare.py's row conversion (tools and possible answers as the labeling
job reads them), then many outputs built here from BFCL's gold (every accepted value, optional
parameters left out or given, `""` itself, int/float swaps, case and punctuation changes, wrong
values, wrong and missing functions and parameters, extra parameters with their defaults, reordered,
dropped and repeated parallel calls, no call, output that does not decode) go to both. Any
difference fails the test, naming the row and the output.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import sys
import types
from pathlib import Path

import pytest

from pipelines.core import bfcl
from pipelines.core.scoring import score_row
from pipelines.core.tools import BadInput, load_tools
from pipelines.core.validation import validate_calls
from pipelines.recipe.prepare import to_shard_row

MODEL = "oracle-model"


@pytest.fixture(scope="module")
def leaderboard(tmp_path_factory):
    """(ast_checker, Language.PYTHON, relevance entry function, data folder) from the installed package."""
    # its config module makes result and lock folders at import, beside the package unless told where
    saved_root = os.environ.get("BFCL_PROJECT_ROOT")
    os.environ["BFCL_PROJECT_ROOT"] = str(tmp_path_factory.mktemp("bfcl-project"))
    stand_in = types.ModuleType("bfcl_eval.constants.model_config")
    stand_in.MODEL_CONFIG_MAPPING = {MODEL: types.SimpleNamespace(underscore_to_dot=False)}
    saved = sys.modules.get("bfcl_eval.constants.model_config")
    sys.modules["bfcl_eval.constants.model_config"] = stand_in
    try:
        import bfcl_eval
        from bfcl_eval.constants.enums import Language, ReturnFormat
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
        from bfcl_eval.utils import is_empty_output
    finally:
        if saved_root is None:
            os.environ.pop("BFCL_PROJECT_ROOT")
        else:
            os.environ["BFCL_PROJECT_ROOT"] = saved_root
        if saved is None:
            sys.modules.pop("bfcl_eval.constants.model_config")
        else:
            sys.modules["bfcl_eval.constants.model_config"] = saved
    package = Path(bfcl_eval.__file__).parent
    source = (package / "eval_checker" / "eval_runner.py").read_text()
    (definition,) = [n for n in ast.parse(source).body
                     if isinstance(n, ast.FunctionDef) and n.name == "_evaluate_single_relevance_entry"]
    namespace = {"ReturnFormat": ReturnFormat, "is_empty_output": is_empty_output}
    exec(compile(ast.Module([definition], []), "eval_runner.py", "exec"), namespace)
    return ast_checker, Language.PYTHON, namespace["_evaluate_single_relevance_entry"], package / "data"


def rows(data: Path, category: str) -> list[tuple[dict, list | None]]:
    questions = [json.loads(line) for line in (data / f"BFCL_v4_{category}.json").read_text().splitlines()]
    answers_file = data / "possible_answer" / f"BFCL_v4_{category}.json"
    gold = {}
    if answers_file.exists():
        gold = {r["id"]: r["ground_truth"] for r in map(json.loads, answers_file.read_text().splitlines())}
    return [(q, gold.get(q["id"])) for q in questions]


# ---------------------------------------------------------------- outputs built from the gold

def first_value(accepted: list):
    return next((v for v in accepted if v != ""), None)


def concrete(value):
    """An accepted value with nested objects at their first accepted values."""
    if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
        return {k: concrete(first_value(v)) for k, v in value.items() if first_value(v) is not None}
    if isinstance(value, list):
        return [concrete(v) for v in value]
    return value


def base_call(name: str, params: dict) -> dict:
    return {"name": name, "arguments": {p: concrete(first_value(v)) for p, v in params.items()
                                        if first_value(v) is not None}}


def changed_values(value) -> list:
    """Values near `value`: type swaps, case and punctuation changes, wrong ones."""
    out = []
    if isinstance(value, bool):
        out += [not value, int(value), str(value).lower()]
    elif isinstance(value, int):
        out += [float(value), value + 1, str(value)]
    elif isinstance(value, float):
        out += [value + 1.5, str(value)] + ([int(value)] if value.is_integer() else [])
    elif isinstance(value, str):
        out += [value.upper(), value.replace(" ", "") + ".", value + " x", "", 1]
    elif isinstance(value, list):
        out += [list(reversed(value)), value[:-1], value + value[:1], [str(v) for v in value],
                [v.upper() + " ." if isinstance(v, str) else v for v in value]]
        if value and isinstance(value[0], dict):
            out += [[{k: changed_values(v)[0] for k, v in value[0].items()}] + value[1:]]
    elif isinstance(value, dict):
        keys = list(value)
        out += [{k: v for k, v in value.items() if k != keys[0]} if keys else {"x": 1}, {**value, "extra_key": 1}]
        if keys:
            out += [{**value, keys[0]: changed_values(value[keys[0]])[0]},
                    {k: v.upper() + " ." if isinstance(v, str) else v for k, v in value.items()}]
    return out


def outputs(gold: list[dict], functions: list[dict]) -> list[list[dict] | None]:
    """Outputs to score, built from the possible answers (None: output that does not decode)."""
    calls = [base_call(*next(iter(g.items()))) for g in gold]
    out: list[list[dict] | None] = [calls, [], None]
    specs = {f["name"]: f for f in functions}
    for i, g in enumerate(gold):
        name, params = next(iter(g.items()))
        spec = specs.get(name, {}).get("parameters", {})
        properties = spec.get("properties", {})

        def variant(arguments, function=name):
            new = copy.deepcopy(calls)
            new[i] = {"name": function, "arguments": arguments}
            out.append(new)

        arguments = calls[i]["arguments"]
        for param, accepted in params.items():
            for value in accepted:  # every accepted value, `""` itself included
                variant({**arguments, param: concrete(value)})
            if param in arguments:
                variant({k: v for k, v in arguments.items() if k != param})  # left out
                for value in changed_values(arguments[param]):
                    variant({**arguments, param: value})
        optional = {p: v for p, v in arguments.items() if "" not in params.get(p, [""])}
        variant(optional)  # every parameter that may be left out, left out
        for param, prop in properties.items():
            if param not in params and "default" in prop:  # rule 4: given its default, absent from the answer
                variant({**arguments, param: prop["default"]})
            if param not in arguments and param in params and "default" in prop:  # an optional one at its default
                variant({**arguments, param: prop["default"]})
        variant({**arguments, "not_a_parameter": 1})
        variant(arguments, function=name + "_x")
        others = [f["name"] for f in functions if f["name"] != name]
        if others:
            variant(arguments, function=others[0])
    if len(calls) > 1:
        out += [calls[::-1], calls[1:] + calls[:1], calls[:-1], calls + calls[:1]]
    return out


def leaderboard_output(calls):
    """The decoded output the leaderboard's checker reads; Hammer's handler decodes failures to []."""
    return [{c["name"]: c["arguments"]} for c in calls or []]


def status_of(calls, tools) -> str:
    if calls is None:
        return "parse_error"
    if not calls:
        return "no_call"
    return "invalid_call" if validate_calls(calls, tools)[0] else "ok"


# ---------------------------------------------------------------- the tests

@pytest.mark.parametrize("category", bfcl.AST_CATEGORIES)
def test_ast_verdicts_equal_the_leaderboards_on_every_row(leaderboard, category):
    ast_checker, python, _, data = leaderboard
    differences, checked, schema_invalid_but_correct = [], 0, 0
    for question, gold in rows(data, category):
        shard = to_shard_row({**question, "answers": gold}, 0)
        tools = load_tools(shard["tools"])
        for calls in outputs(gold, question["function"]):
            theirs = ast_checker(copy.deepcopy(question["function"]), leaderboard_output(copy.deepcopy(calls)),
                                 copy.deepcopy(gold), python, category, MODEL)["valid"]
            status = status_of(calls, tools)
            ours = score_row(status, copy.deepcopy(calls), [], shard["answers"], tools, rules="bfcl", category=category)
            checked += 1
            schema_invalid_but_correct += status == "invalid_call" and ours.correct is True
            if ours.correct is not theirs:
                differences.append(f"{question['id']}: output {json.dumps(calls)[:300]}: leaderboard {theirs}, "
                                   f"ours {ours.correct} ({ours.mismatch})")
    assert not differences, f"{len(differences)} of {checked} verdicts differ:\n" + "\n".join(differences[:20])
    assert checked > 10 * len(rows(data, category))
    if category == "live_multiple":  # the case the rules exist for: the schema says invalid, the leaderboard correct
        assert schema_invalid_but_correct > 0


@pytest.mark.parametrize("category", bfcl.IRRELEVANCE_CATEGORIES + bfcl.RELEVANCE_CATEGORIES)
def test_relevance_verdicts_equal_the_leaderboards_on_every_row(leaderboard, category):
    _, _, relevance_entry, data = leaderboard

    class Decoder:  # Hammer's output as the labeling job parses it; a failure to decode raises, as a handler does
        def decode_ast(self, result, language, has_tool_call_tag):
            if result is None:
                raise ValueError("does not decode")
            return leaderboard_output(result)

    differences, checked, refused = [], 0, []
    for question, _ in rows(data, category):
        if not question["function"]:  # the job refuses a row with nothing to call (bad_input: tools_empty)
            with pytest.raises(BadInput, match="tools_empty"):
                to_shard_row(question, 0)
            refused.append(question["id"])
            continue
        shard = to_shard_row(question, 0)
        tools = load_tools(shard["tools"])
        first = question["function"][0]
        required = first.get("parameters", {}).get("required", [])
        call = {"name": first["name"], "arguments": {p: "x" for p in required}}
        for calls in (None, [], [call], [call, call], [{**call, "name": "not_a_tool"}]):
            theirs = relevance_entry(Decoder(), question["id"], calls, question, MODEL, category)["valid"]
            answers = None if category in bfcl.RELEVANCE_CATEGORIES else shard["answers"] or "[]"
            ours = score_row(status_of(calls, tools), calls, [], answers, tools, rules="bfcl", category=category)
            checked += 1
            if ours.correct is not theirs:
                differences.append(f"{question['id']}: output {json.dumps(calls)}: leaderboard {theirs}, ours {ours.correct}")
    assert not differences, f"{len(differences)} of {checked} verdicts differ:\n" + "\n".join(differences[:20])
    assert len(refused) == (4 if category == "live_irrelevance" else 0), refused  # docs/output.md says which
