"""A row's execution in its own worker process: results, limits, and what stops only that row."""

import time

import pytest

from pipelines.execution.config import ExecutionConfig
from pipelines.execution.runner import Executor

TOYS = ["tests.execution.toy_tools", "tests.execution.toy_tools:Counter"]


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


@pytest.fixture(scope="module")
def executor():
    return Executor(ExecutionConfig(implementations=TOYS, call_timeout_s=2.0, memory_mb=256, max_result_chars=50))


def test_calls_run_in_order_on_a_fresh_environment_per_row(executor):
    calls = [call("increment", by=2), call("increment"), call("add", a=1, b=2)]
    first = executor.run(calls, None, {"Counter": {"start": 10}}, None, None)
    assert (first.status, first.results, first.correct) == ("ok", ["12", "13", "3"], None)
    again = executor.run(calls, None, {"Counter": {"start": 10}}, None, None)
    assert again.results == ["12", "13", "3"]  # nothing of the row before survives


def test_the_gold_decides_by_state_and_results(executor):
    gold = [call("increment", by=2), call("add", a=1, b=2)]
    assert executor.run(list(reversed(gold)), gold, {}, None, None).correct is True  # results in any order
    wrong_state = executor.run([call("increment", by=3), call("add", a=1, b=2)], gold, {}, None, None)
    assert wrong_state.correct is False and wrong_state.mismatch.code == "state_mismatch"
    assert "Counter.count" in wrong_state.mismatch.detail
    missing = executor.run([call("increment", by=2)], gold, {}, None, None)
    assert missing.correct is False and missing.mismatch.code == "result_missing"
    none = executor.run([], gold, {}, None, None)
    assert none.correct is False and none.mismatch.code == "empty_turn"


def test_a_raising_call_is_an_error_result_and_the_rest_run(executor):
    out = executor.run([call("fail"), call("add", a=2, b=2)], None, {}, None, None)
    assert out.status == "error" and out.results == ["Error during execution: no such account", "4"]


def test_a_tool_without_implementation_is_named(executor):
    out = executor.run([call("transfer", amount=5)], None, {}, None, None)
    assert out.status == "not_implemented" and "transfer" in out.errors[0].detail


def test_results_are_capped(executor):
    out = executor.run([call("echo", text="x" * 500)], None, {}, None, None)
    assert len(out.results[0]) == 50


@pytest.mark.parametrize("name, status", [("spin", "timeout"), ("allocate", "out_of_memory"), ("die", "crashed")])
def test_a_call_that_hangs_allocates_or_kills_its_interpreter_ends_only_its_row(executor, name, status):
    gold = [call("add", a=1, b=1)]
    started = time.monotonic()
    out = executor.run([call("add", a=1, b=1), call(name), call("add", a=5, b=5)], gold, {}, None, None)
    assert out.status == status, out
    assert out.results == ["2"]  # what ran before it; nothing after
    assert out.correct is False and out.mismatch.code == f"exec_{status}"
    assert time.monotonic() - started < 2.0 + 10  # the call's limit, and the worker's start and end
    assert executor.run(gold, gold, {}, None, None).correct is True  # the next row runs as ever


def test_text_is_never_evaluated(executor, tmp_path):
    """A call's name and arguments are data: a name that is Python is no tool; an argument that is
    Python is a string."""
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    out = executor.run([call(code), call("echo", text=code), {"name": "add", "arguments": code}], None, {}, None, None)
    assert not marker.exists()
    assert out.status == "not_implemented" and out.results[1].startswith('{"text": "__import__')
