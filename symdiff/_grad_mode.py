"""Grad mode: whether operations on tensors that require grad are recorded (``sd.no_grad()``).

>>> from symdiff._grad_mode import is_grad_enabled, no_grad
>>> with no_grad():
...     is_grad_enabled()
False
"""

from __future__ import annotations

import builtins
import contextlib
import threading

from ._errors import SymdiffError

__all__ = ["AutogradError", "is_grad_enabled", "set_grad_enabled", "no_grad", "enable_grad"]


class AutogradError(SymdiffError, RuntimeError):
    """A gradient was asked for where PyTorch refuses one (a ``RuntimeError`` too, as in PyTorch)."""


_GRAD = threading.local()


def is_grad_enabled() -> bool:
    """Whether operations on tensors that require grad are recorded (off inside ``no_grad``)."""
    return getattr(_GRAD, "enabled", True)


class set_grad_enabled(contextlib.ContextDecorator):
    """Turn recording on or off inside a ``with`` block (or a decorated function)."""

    def __init__(self, mode: bool):
        self.mode = builtins.bool(mode)

    def __enter__(self):
        self._previous = is_grad_enabled()
        _GRAD.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _GRAD.enabled = self._previous
        return False


class no_grad(set_grad_enabled):
    """``with sd.no_grad(): ...``: nothing is recorded, e.g. for in-place parameter updates.

    >>> from symdiff._tensor import tensor, no_grad
    >>> w = tensor([1.], requires_grad=True)
    >>> with no_grad():
    ...     (w * 2).requires_grad
    False
    """

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Recording on again (inside ``no_grad``)."""

    def __init__(self):
        super().__init__(True)
