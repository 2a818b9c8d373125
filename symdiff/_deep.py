"""Run SymPy work on a thread with a deep stack, optionally under a time budget.

SymPy recurses over expression trees, even while constructing them, so an
expression nested 1,000 levels deep overflows Python's default recursion limit.
Symbolic stages therefore run on a helper thread with a large C stack and a
raised recursion limit. The same helper enforces time budgets: SymPy offers no
cancellation, so when a budget is spent the helper thread receives an
asynchronous :class:`BudgetExceeded` (delivered between bytecodes) and unwinds.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any, Callable

__all__ = ["BudgetExceeded", "call_deep"]

_STACK_BYTES = 1024 * 2**20
_RECURSION_LIMIT = 150_000
_GRACE_SECONDS = 2.0  # how long an interrupted thread may take to unwind

_lock = threading.Lock()
_active = 0
_saved_limit = 0


class BudgetExceeded(BaseException):
    """Raised inside a helper thread whose time budget is spent.

    A ``BaseException`` so that SymPy's ``except Exception`` blocks let it pass.
    """


def _enter():
    global _active, _saved_limit
    with _lock:
        if _active == 0:
            _saved_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_saved_limit, _RECURSION_LIMIT))
        _active += 1


def _leave():
    global _active
    with _lock:
        _active -= 1
        if _active == 0:
            sys.setrecursionlimit(_saved_limit)


def _ignore_stray_interrupts() -> None:
    """Stop Python printing a BudgetExceeded that landed in a GC callback (it is re-sent)."""
    previous = sys.unraisablehook
    if getattr(previous, "_symdiff", False):
        return

    def hook(unraisable):
        if not isinstance(unraisable.exc_value, BudgetExceeded):
            previous(unraisable)

    hook._symdiff = True
    sys.unraisablehook = hook


def _interrupt(thread: threading.Thread) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(BudgetExceeded))


def call_deep(fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
    """Call ``fn(*args)`` on a deep-stack helper thread and return its result.

    Exceptions of ``fn`` propagate. With ``timeout`` (seconds), a call that runs
    longer is interrupted and :class:`BudgetExceeded` is raised here.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def target():
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc
        finally:
            finished.set()

    _enter()
    try:
        with _lock:
            previous = threading.stack_size(_STACK_BYTES)
            try:
                thread = threading.Thread(target=target, name="symdiff-symbolic", daemon=True)
                thread.start()
            finally:
                threading.stack_size(previous)
        if not finished.wait(timeout):
            _ignore_stray_interrupts()
            # Re-send: an exception delivered inside a GC callback is swallowed by Python.
            for _ in range(int(_GRACE_SECONDS / 0.05)):
                _interrupt(thread)
                if finished.wait(0.05):
                    break
            else:  # stuck in C code: abandon it, it is a daemon
                raise BudgetExceeded()
        thread.join()
    finally:
        _leave()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
