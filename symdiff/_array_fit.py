"""``sd.fit(..., shapes=)``: array parameters and row-shaped data symbols in the training loop.

A parameter's declared shape is its whole shape; a data symbol's is the
shape of one row (rows along the first axis). The closed-form gradient of
the per-row loss (:mod:`symdiff._array_derive`) is mapped over the rows with
``jax.vmap``, and :mod:`symdiff._fit` averages it as it does for scalars:
:func:`fit_program` gives it the program interface it expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
import sympy

from ._array_derive import _check_shape, capture_arrays, parse_shapes
from ._array_ir import Dim, rank
from ._errors import ShapeError

__all__ = ["capture_for_fit", "fit_program", "check_fit_shapes"]


def capture_for_fit(loss, shapes) -> tuple[sympy.Expr, set[str]]:
    """The per-row loss as an array expression and the names of its inputs."""
    expr = capture_arrays(loss, parse_shapes(shapes))
    if rank(expr) != 0:
        raise ShapeError(f"the loss of one row must be a scalar; {expr} has rank {rank(expr)}")
    names = {s.name for s in expr.free_symbols if isinstance(s, sympy.Symbol) and not isinstance(s, Dim)}
    return expr, names


def check_fit_shapes(derivative, params: dict, data: dict) -> None:
    """Parameters must have their declared shape, data rows the declared row shape (one size per dim)."""
    sizes: dict = {}
    for sym in derivative.args:
        if sym.name in params:
            _check_shape(sym, np.shape(params[sym.name]), sizes)
        else:
            _check_shape(sym, np.shape(data[sym.name])[1:], sizes)


@dataclass(frozen=True)
class _Captured:
    outputs: tuple


@dataclass(frozen=True)
class _Kernel:
    fn: object


class _FitProgram:
    """What :mod:`symdiff._fit` reads from a program: args, wrt, entry indices and ``kernel.fn``."""

    def __init__(self, program, data_names: tuple[str, ...]):
        self.args = program.args
        self.wrt = program.wrt
        self.captured = _Captured((program.expr,))
        kernel = program.kernel
        in_axes = tuple(0 if a.name in data_names else None for a in program.args)

        def per_row(*xs):
            out = kernel(*xs)
            return out[0], out[1:]

        batched = jax.vmap(per_row, in_axes=in_axes) if any(a == 0 for a in in_axes) else per_row

        def fn(*xs):
            value, entries = batched(*xs)
            return (value,), tuple(entries)

        self.kernel = _Kernel(fn)

    def index(self, output: int, combo) -> int:
        return combo[0]


def fit_program(derivative, data_names) -> _FitProgram:
    """The per-row program of an array derivative, for :func:`symdiff.fit`."""
    return _FitProgram(derivative._program, tuple(data_names))
