"""The SymPy side of recorded elementwise operations: each op applied to SymPy (or array) expressions.

>>> import sympy
>>> from symdiff._tensor_sympy import sympy_elementwise, sympy_number
>>> x = sympy.Symbol("x", real=True)
>>> sympy_elementwise("mul", (), [x, sympy_number(0.5)]), sympy_number(2.0)
(x/2, 2)
"""

from __future__ import annotations

import math

import sympy

from ._functions import FUNCTIONS

__all__ = ["sympy_number", "sympy_elementwise"]


def sympy_number(x) -> sympy.Expr:
    """A Python scalar as SymPy writes it best: ``2.0 -> 2``, ``0.1 -> 1/10``, else a Float."""
    if isinstance(x, bool):
        return sympy.Integer(int(x))
    if isinstance(x, int):
        return sympy.Integer(x)
    x = float(x)
    if not math.isfinite(x):
        return sympy.Float(x)
    if x.is_integer() and abs(x) < 2**53:
        return sympy.Integer(int(x))
    r = sympy.Rational(x).limit_denominator(1000)
    return r if float(r) == x else sympy.Float(x)


def sympy_elementwise(op: str, params, args: list) -> sympy.Expr:
    """The SymPy expression of one elementwise op applied to SymPy ``args``."""
    if op == "add":
        return args[0] + args[1]
    if op == "sub":
        return args[0] - args[1]
    if op == "mul":
        return args[0] * args[1]
    if op == "div":
        return args[0] / args[1]
    if op == "pow":
        return args[0] ** args[1]
    if op == "neg":
        return -args[0]
    if op == "clamp":
        lo, hi = params
        out = args[0]
        if lo is not None:
            out = sympy.Max(out, sympy_number(lo))
        if hi is not None:
            out = sympy.Min(out, sympy_number(hi))
        return out
    return FUNCTIONS[op[3:]][0](*args)
