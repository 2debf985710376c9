"""The execution rules against the leaderboard's own multi-turn checker (bfcl-eval's
multi_turn_checker, which runs BFCL's environments with eval): the first turn of every
multi_turn_base row, as jobs/prepare.py imports it, with outputs built from its gold (the gold
itself, reordered, with the last call dropped, with a wrong value, with a call of an environment the
row does not use). Our verdict (pipelines/execution/, no eval) must equal BFCL's on every one."""

import copy
import json
import time

import pytest

from pipelines.core.execution import call_string
from pipelines.execution.config import ExecutionConfig
from pipelines.execution.runner import Executor
from pipelines.recipe.prepare import bfcl_folder, multi_turn_rows

CATEGORY = "multi_turn_base"
FOREIGN_CALL = {"name": "mean", "arguments": {"numbers": [1.0, 2.0]}}  # MathAPI's


def variants(gold: list[dict], row: dict) -> dict[str, list[dict]]:
    out = {"gold": gold, "reordered": list(reversed(gold)), "dropped": gold[:-1]}
    wrong = copy.deepcopy(gold)
    for c in wrong:  # the first argument of the first call that has one, changed
        for key, value in c["arguments"].items():
            c["arguments"][key] = (value + "_x" if isinstance(value, str) else value + 1
                                   if isinstance(value, (int, float)) and not isinstance(value, bool) else [value])
            break
        else:
            continue
        break
    out["wrong_value"] = wrong
    if "MathAPI" not in row["involved_classes"]:
        out["foreign_call"] = [*gold, FOREIGN_CALL]
    return out


@pytest.fixture(scope="module")
def rows():
    return multi_turn_rows(bfcl_folder("bfcl-eval"), CATEGORY)


def test_every_first_turn_gets_the_leaderboards_verdict(rows):
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    executor = Executor(ExecutionConfig(implementations=["bfcl"], call_timeout_s=30))
    differ, verdicts, started = [], {True: 0, False: 0}, time.monotonic()
    for row in rows:
        config = json.loads(row["initial_config"])
        entry = {"id": row["id"], "initial_config": config, "involved_classes": row["involved_classes"]}
        for name, calls in variants(row["answers"], row).items():
            # BFCL keeps each environment in its module's globals by model name and row id: a name per variant
            theirs = multi_turn_checker([[[call_string(c) for c in calls]]], [[call_string(c) for c in row["answers"]]],
                                        entry, CATEGORY, f"oracle_{name}")["valid"]
            ours = executor.run(calls, row["answers"], config, row["involved_classes"], None)
            verdicts[theirs] += 1
            if ours.correct is not theirs:
                differ.append((row["id"], name, theirs, ours.correct, str(ours.mismatch)))
    assert differ == [], differ[:10]
    # every kind of verdict is among them: the variants reach both of the checker's answers
    assert sum(verdicts.values()) >= 4 * len(rows) == 800 and verdicts[True] >= 400 and verdicts[False] >= 300, verdicts
    print(f"{verdicts} in {time.monotonic() - started:.0f} s")
