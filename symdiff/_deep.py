"""Run SymPy work on a thread with a deep stack.

SymPy recurses over expression trees, even while constructing them, so an
expression nested 1,000 levels deep overflows Python's default recursion limit.
Symbolic stages therefore run on a helper thread with a large C stack and a
raised recursion limit. Nothing here ever interrupts a thread: time budgets
are enforced in worker processes (:mod:`symdiff._budget`).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

__all__ = ["call_deep"]

_STACK_BYTES = 1024 * 2**20
_RECURSION_LIMIT = 150_000

_lock = threading.Lock()
_active = 0
_saved_limit = 0


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


def call_deep(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)`` on a deep-stack helper thread and return its result; exceptions propagate.

    >>> call_deep(sum, [1, 2, 3])
    6
    """
    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    _enter()
    try:
        with _lock:
            previous = threading.stack_size(_STACK_BYTES)
            try:
                thread = threading.Thread(target=target, name="symdiff-symbolic", daemon=True)
                thread.start()
            finally:
                threading.stack_size(previous)
        thread.join()
    finally:
        _leave()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
