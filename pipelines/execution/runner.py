"""The parent's side of a row's execution: one worker process per row (forked from a forkserver that
imported the implementations once), each step of it timed, the verdict read back.

Bounds, per row: each environment's construction and each call within execution.call_timeout_s (the
worker is killed past it, and the row's later calls never run); the worker's address space within
execution.memory_mb of what it started with; each result written capped at execution.max_result_chars.
A row's whole execution therefore takes at most (environments + calls) x call_timeout_s, for the
model's side and the gold's.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field

from pipelines.core.reasons import (EXEC_CRASHED, EXEC_ERROR, EXEC_NOT_IMPLEMENTED, EXEC_OK, EXEC_OUT_OF_MEMORY,
                                    EXEC_TIMEOUT, Reason)
from pipelines.execution.config import ExecutionConfig, implementation_specs


@dataclass
class Execution:
    status: str  # core.reasons.EXEC_STATUSES
    results: list[str] = field(default_factory=list)  # the model's calls' results (capped), as the leaderboard keeps them
    errors: list[Reason] = field(default_factory=list)
    correct: bool | None = None  # against the gold's execution; None: no gold, or the gold's own calls failed here
    mismatch: Reason | None = None  # why not correct, or why no verdict


class Executor:
    """Runs rows' calls; one per executor actor (its forkserver lives as long as it does)."""

    def __init__(self, config: ExecutionConfig):
        self.config = config
        self.specs = implementation_specs(config)
        self.context = multiprocessing.get_context("forkserver")
        modules = sorted({spec.partition(":")[0] for spec in self.specs})
        self.context.set_forkserver_preload(["pipelines.execution.worker", *modules])

    def run(self, model_calls: list[dict], gold_calls: list[dict] | None, row_config: dict,
            classes: list[str] | None, result_types: list[str] | None) -> Execution:
        from pipelines.execution.worker import serve

        job = {"model": model_calls, "gold": gold_calls, "config": row_config, "classes": classes,
               "result_types": result_types}
        receiving, sending = self.context.Pipe(duplex=False)
        worker = self.context.Process(target=serve, daemon=True,
                                      args=(sending, self.specs, job, self.config.memory_mb * 2**20,
                                            self.config.max_result_chars))
        worker.start()
        sending.close()
        try:
            return self._read(receiving, worker, gold_calls is not None)
        finally:
            if worker.is_alive():
                worker.kill()
            worker.join()
            receiving.close()

    def _read(self, receiving, worker, has_gold: bool) -> Execution:
        out = Execution(EXEC_OK)
        side, step = "model", "building the environments"
        while True:
            if not receiving.poll(self.config.call_timeout_s):
                return self._stopped(out, side, has_gold, EXEC_TIMEOUT, f"{step} ran past execution.call_timeout_s="
                                                              f"{self.config.call_timeout_s:g}")
            try:
                message = receiving.recv()
            except (EOFError, OSError):
                worker.join(5)
                return self._stopped(out, side, has_gold, EXEC_CRASHED, f"the worker died at {step} (exit code {worker.exitcode})")
            kind = message[0]
            if kind == "built":
                side = message[1]
                step = f"call 0 of the {side}'s"
            elif kind == "done":
                _, side, index, text, outcome = message
                step = f"call {index + 1} of the {side}'s"
                if side == "model":
                    out.results.append(text)
                    if outcome == "error" and out.status == EXEC_OK:  # (not_implemented comes with the end)
                        out.status = EXEC_ERROR
                        out.errors.append(Reason("exec_error", f"call {index}: {text}"))
            elif kind == "environment_failed":  # the row's configuration: no verdict either way
                out.status = EXEC_ERROR
                out.errors.append(Reason("environment_failed", f"the {message[1]}'s: {message[2]}"))
                out.mismatch = Reason("environment_failed", message[2])
                return out
            elif kind == "out_of_memory":
                return self._stopped(out, side, has_gold, EXEC_OUT_OF_MEMORY, f"{step} went past execution.memory_mb="
                                                                   f"{self.config.memory_mb}")
            else:  # the end, with the verdict
                return self._finished(out, message[1], has_gold)

    @staticmethod
    def _stopped(out: Execution, side: str, has_gold: bool, status: str, detail: str) -> Execution:
        """The worker stopped before the end: on the model's side the label's execution failed (and
        is wrong where there is gold: it did not run to its end); on the gold's, there is no verdict."""
        if side == "model":
            out.status = status
            out.errors.append(Reason(f"exec_{status}", detail))
            if has_gold:
                out.correct, out.mismatch = False, Reason(f"exec_{status}", detail)
        else:
            out.mismatch = Reason("gold_exec_failed", f"{status}: {detail}")
        return out

    @staticmethod
    def _finished(out: Execution, found: dict, has_gold: bool) -> Execution:
        if found["not_implemented"]:
            out.status = EXEC_NOT_IMPLEMENTED
            out.errors.append(Reason("not_implemented", ", ".join(found["not_implemented"][:8])))
        if not has_gold:
            return out
        if found.get("gold_failed"):
            out.mismatch = Reason("gold_exec_failed", found["gold_failed"])
            return out
        out.correct = found["mismatch"] is None
        out.mismatch = None if out.correct else Reason.parse(found["mismatch"])
        return out
