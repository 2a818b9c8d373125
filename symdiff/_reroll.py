"""Rerolling: the terms of a large sum that are one term up to constants and a renaming of symbols.

``sum(sin(i*x + y)*exp(-i*y**2/1000) for i in 1..2000)`` is 2,000 copies of
``c0*sin(c1*x + y)*exp(c2*y**2)`` with different constants. Lowered term by
term it is 28,000 XLA operations (a minute to trace and compile); rerolled, the
template is lowered once and evaluated on vectors of the gathered constants and
inputs, ``jnp.sum(template(c, x, y), axis=0)``: a dozen operations, whatever
the number of terms. Derivatives of such sums are such sums again, so every
entry of a gradient or Hessian is rerolled the same way.

A term's *signature* is its tree in pre-order with each constant that is a
direct argument of a sum or product (a coefficient or an added constant)
replaced by a slot, and each symbol by the position of its first occurrence.
Terms with equal signatures are the same template with different slot values,
exactly: the template is rebuilt from one of them, and the others differ from
it only in the slots. Exponents and function parameters (``x**2``,
``polygamma(1, x)``) stay part of the signature, so they lower as before.

:func:`reroll` rewrites the roots of a kernel, replacing each rerolled group
by a placeholder symbol that :func:`symdiff._lower.build_kernel` computes with
one call of the group's :class:`Rerolled` function.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy

__all__ = ["Rerolled", "reroll", "MIN_TERMS", "MIN_MEMBERS"]

MIN_TERMS = 32  # sums with fewer terms are lowered term by term
MIN_MEMBERS = 8  # a template must stand for at least this many terms
CHUNK_ELEMENTS = 1 << 22  # members x points evaluated at once; larger sums are summed chunk by chunk


class Rerolled:
    """One template of a sum, evaluated over its members and summed: ``fn(*args) -> broadcast shape``.

    ``constants``: ``(n_constant_slots, members)``, float64 values.
    ``positions``: ``(n_symbol_slots, members)``, the argument that fills each symbol slot.
    """

    def __init__(self, name: str, template: sympy.Expr, kernel, constants: np.ndarray, positions: np.ndarray):
        self.name, self.template, self.kernel = name, template, kernel
        self.symbol = sympy.Dummy(name, real=True)  # the placeholder in the rewritten sum (equals no user symbol)
        self.constants, self.positions = constants, positions
        self.members = constants.shape[1] if constants.size else positions.shape[1]
        self._uniform_constants = [bool((row == row[0]).all()) for row in constants]
        self._uniform_positions = [bool((row == row[0]).all()) for row in positions]

    def __repr__(self) -> str:
        return f"Rerolled({self.name}: {self.members} terms of {self.template})"

    def __call__(self, *xs):
        dtype = jnp.result_type(*xs)
        shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in xs))
        size = math.prod(shape)
        chunk = max(1, CHUNK_ELEMENTS // max(size, 1))
        if self.members <= chunk:
            return self._sum(xs, dtype, shape, np.arange(self.members), None)
        # chunks of members in a loop, so memory stays bounded for many points
        n_chunks = -(-self.members // chunk)
        index = np.arange(n_chunks * chunk)
        valid = index < self.members
        index = np.where(valid, index, 0).reshape(n_chunks, chunk)

        def body(total, step):
            members, mask = step
            return total + self._sum(xs, dtype, shape, members, mask), None

        total, _ = jax.lax.scan(body, jnp.zeros(shape, dtype), (jnp.asarray(index), jnp.asarray(valid.reshape(
            n_chunks, chunk))))
        return total

    def _sum(self, xs, dtype, shape, members, mask):
        """The sum over ``members`` (indices into the member axis), those with ``mask`` False left out."""
        lead = (-1,) + (1,) * len(shape)
        static = isinstance(members, np.ndarray)
        slots, stacked = [], None
        for row, uniform in zip(self.constants, self._uniform_constants):
            if uniform:
                slots.append(jnp.asarray(row[0], dtype))
            else:
                values = row[members] if static else jnp.asarray(row, dtype)[members]
                slots.append(jnp.asarray(values, dtype).reshape(lead))
        for row, uniform in zip(self.positions, self._uniform_positions):
            if uniform:
                slots.append(xs[int(row[0])])
            else:
                if stacked is None:
                    stacked = jnp.stack(jnp.broadcast_arrays(*xs))  # (n_args,) + shape
                slots.append(stacked[row[members] if static else jnp.asarray(row)[members]])
        if not any(jnp.ndim(s) == len(shape) + 1 for s in slots):  # every member alike: cannot happen in a sum
            raise AssertionError("rerolled members do not differ")
        (terms,) = self.kernel.fn(*slots)[1]
        if mask is not None:
            terms = jnp.where(mask.reshape(lead), terms, 0)
        return jnp.sum(terms, axis=0)


def _is_constant(node: sympy.Basic) -> bool:
    """A number slot: rationals and floats (``sqrt(2)`` or ``pi`` stay in the signature: cheap to check)."""
    return node.is_Number


def _signature(term: sympy.Basic):
    """``(key, constants, symbols)``: the term's shape with slots, the slots' values in order; None if unfit."""
    tokens: list = []
    constants: list[float] = []
    symbols: dict[sympy.Symbol, int] = {}
    stack = [(term, False)]
    while stack:
        node, coefficient = stack.pop()
        if node.is_Symbol:
            tokens.append(("s", symbols.setdefault(node, len(symbols))))
        elif coefficient and _is_constant(node):
            try:
                value = float(node)
            except (TypeError, ValueError):  # complex or undefined: leave the term as it is
                return None
            if not math.isfinite(value):
                return None
            constants.append(value)
            tokens.append("#")
        elif node.is_Atom:
            tokens.append(("n", node))
        else:
            tokens.append((type(node), len(node.args)))
            inner = isinstance(node, (sympy.Add, sympy.Mul))
            stack.extend((a, inner) for a in reversed(node.args))
    return tuple(tokens), constants, tuple(symbols)


def _template(term: sympy.Basic, symbols: tuple, n_constants: int):
    """``term`` with its slot constants and its symbols replaced by slot symbols (same walk as :func:`_signature`)."""
    cslots = [sympy.Symbol(f"_c{k}", real=True) for k in range(n_constants)]
    sslots = {s: sympy.Symbol(f"_s{j}", real=True) for j, s in enumerate(symbols)}
    counter = iter(cslots)

    def rebuild(node, coefficient):
        if node.is_Symbol:
            return sslots[node]
        if coefficient and _is_constant(node):
            return next(counter)
        if node.is_Atom:
            return node
        inner = isinstance(node, (sympy.Add, sympy.Mul))
        return node.func(*[rebuild(a, inner) for a in node.args])

    return rebuild(term, False), cslots, list(sslots.values())


def _plan(node: sympy.Add, position: dict, build, made: list) -> tuple[sympy.Expr, list] | None:
    """``node`` with its large groups of alike terms replaced by placeholders, or None if none qualify."""
    groups: dict = {}
    for term in node.args:
        sig = _signature(term)
        if sig is None or any(s not in position for s in sig[2]):
            continue
        key, constants, symbols = sig
        groups.setdefault(key, []).append((term, constants, symbols))
    big = [g for g in groups.values() if len(g) >= MIN_MEMBERS]
    if not big:
        return None
    rest = set(node.args)
    placeholders = []
    for group in big:
        term, constants, symbols = group[0]
        try:
            template, cslots, sslots = _template(term, symbols, len(constants))
            kernel = build(cslots + sslots, template)
        except Exception:  # noqa: BLE001 - a head the template cannot take: those terms stay unrolled
            continue
        name = f"_rr{len(made)}"
        values = np.asarray([c for _, c, _ in group], dtype=np.float64).T.reshape(len(constants), len(group))
        where = np.asarray([[position[s] for s in syms] for _, _, syms in group], dtype=np.int32).T.reshape(
            len(symbols), len(group))
        made.append(Rerolled(name, template, kernel, values, where))
        placeholders.append(made[-1].symbol)
        rest.difference_update(t for t, _, _ in group)
    if not placeholders:
        return None
    return sympy.Add(*[t for t in node.args if t in rest], *placeholders), placeholders


def reroll(roots: Sequence[sympy.Expr], args: Sequence[sympy.Symbol], build) -> tuple[list, list[Rerolled]]:
    """``roots`` with every large sum's alike terms replaced by placeholders, and the :class:`Rerolled` behind them.

    ``build(slots, template)`` lowers a template (a :class:`~symdiff._lower.Kernel`
    of the slots). Sums found inside rerolled terms are left to the template's
    own lowering.

    >>> from symdiff._lower import build_kernel
    >>> x, y = sympy.symbols("x y", real=True)
    >>> s = sum(sympy.sin(i * x + y) for i in range(2, 42))
    >>> build = lambda slots, t: build_kernel(slots, (), [t], ["term"], function_name="template")
    >>> (new,), made = reroll([s], [x, y], build)
    >>> new == made[0].symbol, made[0].template, made[0].members
    (True, sin(_c0*_s1 + _s0), 40)
    >>> got = float(made[0](jnp.float32(0.5), jnp.float32(0.25)))
    >>> bool(abs(got - sum(np.sin(i * 0.5 + 0.25) for i in range(2, 42))) < 1e-4)
    True
    """
    position = {s: i for i, s in enumerate(args)}
    made: list[Rerolled] = []
    mapping: dict = {}
    stack, seen = list(roots), set()
    while stack:  # top-down: a sum inside a rerolled term is never visited
        node = stack.pop()
        if node in seen or node.is_Atom:
            continue
        seen.add(node)
        if isinstance(node, sympy.Add) and len(node.args) >= MIN_TERMS:
            planned = _plan(node, position, build, made)
            if planned is not None:
                mapping[node], placeholders = planned
                stack.extend(a for a in mapping[node].args if a not in placeholders)
                continue
        stack.extend(node.args)
    if not mapping:
        return list(roots), []
    memo: dict = {}
    return [_replace(r, mapping, memo) for r in roots], made


def _replace(root: sympy.Basic, mapping: dict, memo: dict) -> sympy.Basic:
    """``root`` with the nodes of ``mapping`` replaced, each shared node rebuilt once."""
    stack = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if node in memo:
            continue
        source = mapping.get(node, node)  # a rerolled sum: its remaining terms may hold rerolled sums too
        if source.is_Atom:
            memo[node] = source
            continue
        if not ready:
            stack.append((node, True))
            stack.extend((a, False) for a in source.args if a not in memo)
            continue
        new = [memo[a] for a in source.args]
        memo[node] = source if all(n is a for n, a in zip(new, source.args)) else source.func(*new)
    return memo[root]
