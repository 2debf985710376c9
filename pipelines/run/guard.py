"""One guard per row: whatever one row does inside a stage, the stage goes on and the row comes out
once, with its reason.

`guard_row(fn, budget_s)` runs one row's work and returns its value, or the Reason it failed:
  * an exception no check of the row caught: `row_exception: <class>: <message>`;
  * the row still running after `budget_s` seconds: `row_time_budget`.

The stages turn either into the row's status ROW_ERROR (pipelines/core/reasons.py), counted apart
in the summary: a row the job could not handle is a bug of the job or an input no check foresaw, and
is shown as such rather than hidden among bad input.

The time budget is a backstop: the checks bound each row's work (untrusted.py, the linear-time
validator), and the budget catches what they did not foresee. It works in any thread (Ray runs a
stage's rows in an actor's or a task's thread): a watchdog thread, one per process, raises RowTimeout
in the row's thread at its deadline (CPython's PyThreadState_SetAsyncExc). The exception lands at the
row's next Python instruction; C code that runs on row data (json, RE2, the tokenizer) is linear in a
row whose size is capped, so it returns soon. The worker is then free for the next row.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
import time
from typing import Callable, TypeVar

from pipelines.core.reasons import Reason

T = TypeVar("T")

ROW_EXCEPTION = "row_exception"
ROW_TIME_BUDGET = "row_time_budget"
_DETAIL_CHARS = 300


class RowTimeout(BaseException):
    """Raised in a row's thread at its deadline. A BaseException, so that the row's own
    `except Exception` cannot swallow it."""


class _Watchdog:
    """Deadlines of the rows running in this process's threads, and the thread that enforces them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._armed: dict[int, tuple[float, int]] = {}  # token -> (deadline, thread id)
        self._tokens = itertools.count()
        self._period = float("inf")  # the watchdog never sleeps longer than the shortest budget
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        token = next(self._tokens)
        with self._lock:
            self._armed[token] = (time.monotonic() + seconds, threading.get_ident())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="row-time-budget", daemon=True)
                self._thread.start()
            if seconds < self._period:
                self._period = seconds
                self._wake.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._lock:
            if self._armed.pop(token, None) is not None:
                return
        # Fired: the exception was sent under the lock, and is delivered or pending; clear a pending one
        # so that it cannot land after the row. (If it lands here first, the caller disarms again.)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.get_ident()), None)

    def _watch(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                due = [(token, tid) for token, (deadline, tid) in self._armed.items() if deadline <= now]
                for token, tid in due:
                    del self._armed[token]
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(RowTimeout))
                nearest = min((deadline for deadline, _ in self._armed.values()), default=now + self._period)
                self._wake.wait(min(max(nearest - now, 0.001), self._period))


_WATCHDOG = _Watchdog()


def within_budget(fn: Callable[[], T], budget_s: float | None) -> T:
    """fn() in this thread, raising RowTimeout if it is still running after budget_s seconds (None: no limit)."""
    if not budget_s:
        return fn()
    token = _WATCHDOG.arm(budget_s)
    try:
        try:
            return fn()
        finally:
            _WATCHDOG.disarm(token)
    except RowTimeout:
        _WATCHDOG.disarm(token)  # it may have landed inside the first disarm
        raise


def guard_row(fn: Callable[[], T], budget_s: float | None) -> tuple[T | None, Reason | None]:
    """(fn(), None), or (None, why it failed) for an exception or a row past its time budget."""
    try:
        return within_budget(fn, budget_s), None
    except RowTimeout:
        return None, Reason(ROW_TIME_BUDGET, f"the row was still running after {budget_s:g} s (row_time_budget_s); "
                                             "stopped")
    except Exception as e:  # noqa: BLE001 - the point: no row's exception leaves its stage
        return None, exception_reason(e)


def exception_reason(e: BaseException) -> Reason:
    """An exception as a row's reason: its class and the start of its message, text any column can hold."""
    message = str(e)[:_DETAIL_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
    return Reason(ROW_EXCEPTION, f"{type(e).__name__}: {message}")
