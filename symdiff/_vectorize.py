"""Lower many derivative entries of one shape as a single vectorised computation.

A Hessian of n variables has O(n**2) entries, but structured expressions repeat
a handful of shapes: every interior diagonal entry of the Rosenbrock Hessian is
``1200*x_i**2 - 400*x_(i+1) + 202``, every off-diagonal one ``-400*x_i``.
Lowering each entry on its own gives XLA a graph of O(n**2) tiny operations
(slow to compile, slow to run on scalars). Here entries are grouped by
*template* (:mod:`symdiff._templates`: the entry with its symbols renamed to
slots in argument order);
each template is lowered once and evaluated on gathered vectors of its slots'
values, so the graph has one small piece per template, whatever ``n`` is.

:func:`plan_vectorized` returns ``None`` where grouping would not pay (every
entry its own template); the caller then lowers entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jax.numpy as jnp
import numpy as np
import sympy

from ._lower import Kernel, build_kernel
from ._templates import template

__all__ = ["VectorPlan", "plan_vectorized"]

MIN_ENTRIES = 8  # fewer distinct entries: per-entry lowering is as small
MAX_GROUP_SHARE = 0.5  # vectorise only when templates are at most half the distinct entries


@dataclass(frozen=True)
class _Group:
    kernel: Kernel  # the template, a function of its slots
    slots: np.ndarray  # (n_slots, members): argument position of each slot, per member


@dataclass(frozen=True)
class VectorPlan:
    """Evaluates distinct entries ``exprs`` as ``S + (len(exprs),)`` from inputs of broadcast shape ``S``."""

    groups: tuple[_Group, ...]
    constants: np.ndarray  # values of the constant entries, in float64
    order: np.ndarray  # position in :meth:`pieces` of each distinct entry

    def __call__(self, xs: Sequence) -> jnp.ndarray:
        return self.pieces(xs)[..., self.order]

    def pieces(self, xs: Sequence) -> jnp.ndarray:
        """Every distinct entry, grouped by template: ``S + (len(exprs),)`` in the order ``order`` maps."""
        dtype = jnp.result_type(*xs)
        stacked = jnp.stack(jnp.broadcast_arrays(*xs), axis=-1)  # S + (n_args,)
        shape = stacked.shape[:-1]
        pieces = []
        for group in self.groups:
            slot_values = [stacked[..., idx] for idx in group.slots]  # each S + (members,)
            (entry,) = group.kernel.fn(*slot_values)[1]
            pieces.append(entry)
        if self.constants.size:
            pieces.append(jnp.broadcast_to(jnp.asarray(self.constants, dtype=dtype), shape + self.constants.shape))
        return jnp.concatenate(pieces, axis=-1)


def plan_vectorized(args: Sequence[sympy.Symbol], exprs: Sequence[sympy.Expr]) -> VectorPlan | None:
    """A :class:`VectorPlan` for the distinct entries ``exprs`` of a function of ``args``, or ``None``.

    >>> x, y, z = sympy.symbols("x y z", real=True)
    >>> exprs = [2*x, 2*y, 2*z, x*y, y*z, x*z, 0, 0, 1, 3*x, 3*y, 3*z]
    >>> exprs = [sympy.sympify(e) for e in exprs]
    >>> plan = plan_vectorized([x, y, z], exprs)
    >>> len(plan.groups)  # 2*slot0, slot0*slot1, 3*slot0
    3
    >>> plan([jnp.float32(1), jnp.float32(2), jnp.float32(3)]).tolist()
    [2.0, 4.0, 6.0, 2.0, 6.0, 3.0, 0.0, 0.0, 1.0, 3.0, 6.0, 9.0]
    """
    variable = [i for i, e in enumerate(exprs) if not e.is_number]
    if len(variable) < MIN_ENTRIES:
        return None
    position = {s: i for i, s in enumerate(args)}
    templates: dict[sympy.Expr, tuple[tuple, list[int], list[tuple[int, ...]]]] = {}
    for i in variable:
        shape, symbols, slots = template(exprs[i], position)
        group = templates.setdefault(shape, (slots, [], []))
        group[1].append(i)
        group[2].append(tuple(position[s] for s in symbols))
    if len(templates) > MAX_GROUP_SHARE * len(variable):
        return None
    groups, placed = [], []
    for shape, (slots, members, where) in templates.items():
        kernel = build_kernel(slots, (), [shape], ["entry"], function_name="template")
        groups.append(_Group(kernel, np.asarray(where, dtype=np.int32).T.copy()))
        placed += members
    constant = [i for i, e in enumerate(exprs) if e.is_number]
    try:
        values = np.asarray([float(exprs[i]) for i in constant], dtype=np.float64)
    except TypeError:  # a non-real constant: leave it to the per-entry lowering and its errors
        return None
    placed += constant
    order = np.empty(len(exprs), dtype=np.int32)
    order[placed] = np.arange(len(placed), dtype=np.int32)
    return VectorPlan(tuple(groups), values, order)
