"""Expressions up to a renaming of their symbols.

A Hessian of n variables repeats a few shapes n times: every interior diagonal
entry of the Rosenbrock Hessian is ``1200*x_i**2 - 400*x_(i+1) + 202``. Renaming
an entry's symbols to ``slot0, slot1, ...`` (in a fixed symbol order) gives its
*template*; entries with equal templates differ only in which symbols fill the
slots. Simplification then runs once per template and lowering evaluates each
template once on vectors of slot values.
"""

from __future__ import annotations

from typing import Mapping

import sympy

__all__ = ["template"]


def template(expr: sympy.Expr, rank: Mapping[sympy.Symbol, int]):
    """``(template, symbols, slots)``: ``expr`` with its symbols, ordered by ``rank``, renamed to slots.

    ``template.xreplace(dict(zip(slots, symbols)))`` is ``expr`` again. Slots
    keep each symbol's assumptions, so only symbols of the same kind share one.

    >>> x, y, z = sympy.symbols("x y z", real=True)
    >>> rank = {x: 0, y: 1, z: 2}
    >>> template(2*x*y + y, rank)[0] == template(2*y*z + z, rank)[0]
    True
    >>> template(2*x*y + y, rank)[1]
    (x, y)
    """
    symbols = tuple(sorted(expr.free_symbols, key=rank.__getitem__))
    slots = tuple(sympy.Symbol(f"slot{j}", **s.assumptions0) for j, s in enumerate(symbols))
    return expr.xreplace(dict(zip(symbols, slots))), symbols, slots
