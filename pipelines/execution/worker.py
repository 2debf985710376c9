"""What runs in a row's worker process (forked from a clean forkserver: one process per row, so a
call that loops, allocates without end or kills its interpreter ends only this row's execution).

Nothing here evaluates text: a call is a parsed JSON object, `{"name": ..., "arguments": {...}}`,
looked up by name among the implementations' public functions and methods and called with its
arguments as keywords. The implementations are the user's code (or BFCL's environments): what they
do with the disk or the network is theirs; the process bounds only their time and memory.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import resource

from pipelines.core.execution import (ERROR_PREFIX, exec_category_verdict, missing_results, multi_turn_verdict,
                                      result_text, state_differences)


class Environment:
    """Fresh instances of a row's classes and the module functions, by tool name."""

    def __init__(self, specs: list[str], row_config: dict, classes: list[str] | None):
        self.instances: dict[str, object] = {}
        self.functions: dict[str, object] = {}
        for spec in specs:
            module_name, _, class_name = spec.partition(":")
            module = importlib.import_module(module_name)
            if not class_name:
                members = [(n, f) for n, f in inspect.getmembers(module, inspect.isfunction)
                           if f.__module__ == module.__name__]
            elif classes is not None and class_name not in classes:
                continue
            else:
                instance = getattr(module, class_name)()
                settings = row_config.get(class_name)
                # BFCL's convention: a stateful environment is built empty, then loaded with its configuration
                # (a stateless one, MathAPI, takes none)
                if settings and hasattr(instance, "_load_scenario"):
                    instance._load_scenario(copy.deepcopy(settings))
                self.instances[class_name] = instance
                members = inspect.getmembers(instance, inspect.ismethod)
            for name, member in members:
                if not name.startswith("_"):
                    self.functions.setdefault(name, member)

    def call(self, call: dict):
        """(value, error text or None, implemented)."""
        function = self.functions.get(call.get("name")) if isinstance(call, dict) else None
        if function is None:
            return None, f"{ERROR_PREFIX}no implementation of {call.get('name')!r}", False
        arguments = call.get("arguments")
        try:
            return function(**(arguments if isinstance(arguments, dict) else {})), None, True
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - a call's failure is its result, as the leaderboard keeps it
            return None, f"{ERROR_PREFIX}{e}", True


def limit_memory(extra_bytes: int) -> None:
    """Address space: what the process holds now, plus extra_bytes."""
    with open("/proc/self/status") as f:
        size_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    limit = size_kb * 1024 + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def serve(conn, specs: list[str], job: dict, memory_bytes: int, max_result_chars: int) -> None:
    """Runs one row: the model's calls, then the gold's, each side on its own fresh environment, and
    sends a message after each step (the parent times each one); ends with the verdict."""
    limit_memory(memory_bytes)
    try:
        sides = {}
        for side in ("model", "gold"):
            calls = job[side]
            if calls is None:
                continue
            try:
                env = Environment(specs, job["config"], job["classes"])
            except MemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - the row's configuration or the user's constructor
                conn.send(("environment_failed", side, f"{type(e).__name__}: {e}"[:1000]))
                return
            conn.send(("built", side))
            texts, values, missing_names = [], [], []
            for index, call in enumerate(calls):
                value, error, implemented = env.call(call)
                text = error if error is not None else result_text(value)
                texts.append(text)
                values.append(value if error is None else None)
                if not implemented:
                    missing_names.append(str(call.get("name") if isinstance(call, dict) else call))
                outcome = "ok" if error is None else ("error" if implemented else "not_implemented")
                conn.send(("done", side, index, text[:max_result_chars], outcome))
            sides[side] = (env, texts, values, missing_names)
        conn.send(("end", verdict(job, sides)))
    except MemoryError:
        conn.send(("out_of_memory",))


def verdict(job: dict, sides: dict) -> dict:
    """The model's side against the gold's, by the row's rules; plain values only (they cross the pipe)."""
    found = {"not_implemented": sides["model"][3]}
    if "gold" not in sides:
        return found
    model_env, model_texts, model_values, _ = sides["model"]
    gold_env, gold_texts, gold_values, gold_missing = sides["gold"]
    # A gold call with no implementation has no result to compare; an exec category's gold needs values
    # (the multi-turn rules compare an error's text like any result, as the leaderboard does).
    gold_errors = [t for t in gold_texts if t.startswith(ERROR_PREFIX)] if job["result_types"] else []
    if gold_missing or gold_errors:
        return {**found, "gold_failed": (f"no implementation of {gold_missing[0]!r}" if gold_missing
                                         else gold_errors[0][:200])}
    if job["result_types"]:
        why = exec_category_verdict(model_values, gold_values, job["result_types"])
    else:
        why = multi_turn_verdict(len(job["model"]), len(job["gold"]), state_differences(model_env.instances,
                                 gold_env.instances), missing_results(gold_texts, model_texts))
    return {**found, "mismatch": None if why is None else str(why)}
