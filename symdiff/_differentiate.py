"""Gradients, Jacobians, Hessians and k-th derivatives of captured expressions.

Mixed partials of smooth functions commute, so only one entry per multiset of
``wrt`` indices is differentiated: ``d2f/dx dy`` is computed once and shared by
both Hessian positions. Each entry is derived from its parent entry (one order
lower), so SymPy never redoes the lower-order work.
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from typing import Iterator

import sympy

from ._capture import Captured

__all__ = ["differentiate", "entry_keys"]

# An entry key: (output index, sorted tuple of wrt indices of length `order`).
EntryKey = tuple[int, tuple[int, ...]]


def entry_keys(n_outputs: int, n_wrt: int, order: int) -> Iterator[EntryKey]:
    """Every distinct derivative entry, outputs first, wrt multisets in lexicographic order."""
    for o in range(n_outputs):
        for combo in combinations_with_replacement(range(n_wrt), order):
            yield (o, combo)


def differentiate(
    captured: Captured, wrt: tuple[sympy.Symbol, ...], order: int
) -> dict[EntryKey, sympy.Expr]:
    """All distinct ``order``-th partial derivatives of every output.

    >>> from symdiff._capture import capture, real_symbol
    >>> a, b = real_symbol("a"), real_symbol("b")
    >>> differentiate(capture("3*a**3 - b**2"), (a, b), 1)
    {(0, (0,)): 9*a**2, (0, (1,)): -2*b}
    """
    result: dict[EntryKey, sympy.Expr] = {}
    for o, f in enumerate(captured.outputs):
        lower: dict[tuple[int, ...], sympy.Expr] = {(): f}
        for k in range(1, order + 1):
            current: dict[tuple[int, ...], sympy.Expr] = {}
            for combo in combinations_with_replacement(range(len(wrt)), k):
                parent = lower[combo[:-1]]
                current[combo] = parent.diff(wrt[combo[-1]]) if parent != 0 else sympy.Integer(0)
            lower = current
        for combo, expr in lower.items():
            result[(o, combo)] = expr
    return result
