"""Gradients, Jacobians, Hessians and k-th derivatives of captured expressions.

Mixed partials of smooth functions commute, so only one entry per multiset of
``wrt`` indices is differentiated: ``d2f/dx dy`` is computed once and shared by
both Hessian positions. Each entry is derived from its parent entry (one order
lower), so the lower-order work is never redone.

The derivative itself is SymPy's, computed faster. ``expr.diff(x)`` re-enters
``Derivative.__new__`` at every node, which walks the node's whole subtree
(free symbols, a ``replace`` pass) each time: quadratic on wide sums and cubic
on deep nesting. :class:`_Differentiator` applies the very same rules (each
node class's ``_eval_derivative``, ``Mul``'s ``_eval_derivative_n_times``: the
sum and product rules, SymPy's power rule, the chain rule with each head's
``fdiff``, the kink conventions of
``Abs``, ``sign``, ``Min``/``Max``, ``Heaviside`` and ``relu``) over the
expression DAG with an explicit stack, memoised per node and per ``wrt`` symbol,
so every distinct subexpression is differentiated once across all outputs and
orders, and constant subtrees cost a lookup. Heads without a known rule fall
back to SymPy's own ``diff`` for that node.

Chains of one-argument functions (``sin(sin(...sin(x)))``) multiply their
``fdiff`` factors lazily and build the product once at the end: building it one
level at a time would re-sort an ever longer product at every level.
"""

from __future__ import annotations

import threading
import time
from itertools import combinations_with_replacement
from typing import Iterator, Union

import sympy
from sympy.core.function import Application, ArgumentIndexError, Function
from sympy.functions.elementary.miscellaneous import MinMaxBase

from ._budget import run_budgeted, wait_ready
from ._capture import Captured
from ._deep import call_deep
from ._simplify import expand_products, node_count

__all__ = ["differentiate", "entry_keys", "diff"]

# An entry key: (output index, sorted tuple of wrt indices of length `order`).
EntryKey = tuple[int, tuple[int, ...]]

_ZERO, _ONE = sympy.S.Zero, sympy.S.One
_NONE: frozenset = frozenset()
_Add, _Mul, _Pow = sympy.Add, sympy.Mul, sympy.Pow
_DEEP_THREAD = "symdiff-symbolic"  # the helper thread of symdiff._deep.call_deep

# Node classes whose rule is the generic chain rule over fdiff (SymPy's Function._eval_derivative).
_GENERIC_RULES = (Function._eval_derivative, MinMaxBase._eval_derivative)
_BASIC_N_TIMES = sympy.Basic._eval_derivative_n_times  # n derivatives = n times _eval_derivative


def entry_keys(n_outputs: int, n_wrt: int, order: int) -> Iterator[EntryKey]:
    """Every distinct derivative entry, outputs first, wrt multisets in lexicographic order."""
    for o in range(n_outputs):
        for combo in combinations_with_replacement(range(n_wrt), order):
            yield (o, combo)


class _Product:
    """A product ``factor * rest`` not yet built: the chain rule's running product.

    ``rest`` is an expression or another ``_Product``. ``build`` flattens the
    chain into one ``Mul`` (cached), which equals SymPy's nested ``df * da``
    products because ``Mul`` flattens nested products into the same canonical form.
    """

    __slots__ = ("factor", "rest", "_built")

    def __init__(self, factor: sympy.Expr, rest: Union[sympy.Expr, _Product]):
        self.factor, self.rest, self._built = factor, rest, None

    def build(self) -> sympy.Expr:
        if self._built is None:
            factors, node = [], self
            while isinstance(node, _Product):
                if node._built is not None:
                    factors.append(node._built)
                    break
                factors.append(node.factor)
                node = node.rest
            else:
                factors.append(node)
            self._built = _Mul(*factors)
        return self._built


_Derivative = Union[sympy.Expr, _Product]


def _built(d: _Derivative) -> sympy.Expr:
    return d.build() if isinstance(d, _Product) else d


def _is_zero(d: _Derivative) -> bool:
    return d is _ZERO or (not isinstance(d, _Product) and d.is_Number and not d)  # no assumption query


# Heads whose fdiff builds the partner function of the same argument: sin(u) -> cos(u), ...
# When u is a plain expression (symbols, finite real numbers, E; no pi, I or infinities), the
# partner's eval rewrites u exactly when the head's own eval does (minus signs, pi and I
# multiples, inverse functions, numbers), so for an existing head(u) it is skipped.
_PARTNERS = {
    sympy.sin: (sympy.cos, False),
    sympy.cos: (sympy.sin, True),  # d cos(u) = -sin(u)
    sympy.sinh: (sympy.cosh, False),
    sympy.cosh: (sympy.sinh, False),
}
_PLAIN_ATOMS = (sympy.Symbol, sympy.Rational)


def _plain_atom(node: sympy.Basic) -> bool:
    return isinstance(node, _PLAIN_ATOMS) or node is sympy.E or (isinstance(node, sympy.Float) and node.is_finite)


def _chainable(e: sympy.Expr) -> bool:
    """Whether ``e`` may sit in a lazy product: ``Mul(e, p)`` and ``Mul(e, *p.args)`` agree.

    Not a number: ``Mul(2, x + 1)`` distributes, ``Mul(2, x + 1, y)`` does not.
    """
    return not e.is_Number and e.is_commutative


def _fold(root: sympy.Basic, memo: dict, combine) -> None:
    """Set ``memo[node] = combine(node)`` for every non-atom node under ``root``, children first (iterative)."""
    stack = [root]
    while stack:
        node = stack[-1]
        if node in memo:
            stack.pop()
            continue
        pending = [a for a in node.args if not a.is_Atom and a not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        memo[node] = combine(node)


_WIDE = 16  # sums and products with more arguments get a symbol -> arguments index


class _Differentiator:
    """``d/ds`` of SymPy expressions, memoised per node (one instance per symbol ``s``)."""

    def __init__(self, s: sympy.Symbol, shared: dict | None = None):
        self.s = s
        self.memo: dict[sympy.Basic, _Derivative] = {}
        # fdiff results and plainness do not depend on s: shared by the differentiators of one call
        shared = {} if shared is None else shared
        self.plain: dict[sympy.Basic, bool] = shared.setdefault("plain", {})
        self.fdiffs: dict[tuple[sympy.Basic, int], sympy.Expr] = shared.setdefault("fdiff", {})
        self.symbols: dict[sympy.Basic, frozenset] = shared.setdefault("symbols", {})
        self.wide: dict[sympy.Basic, dict] = shared.setdefault("wide", {})

    def _args_with_s(self, node: sympy.Basic) -> tuple | list:
        """The arguments of a sum or product that contain ``s``.

        Wide nodes (an n-term sum) are indexed once, symbol -> arguments, and the
        index is shared by every symbol's differentiator: the gradient of an
        n-term sum touches each term once in all, not n times.
        """
        args = node.args
        if len(args) <= _WIDE:
            return args
        index = self.wide.get(node)
        if index is None:
            index = self.wide[node] = {}
            symbols = self.symbols
            for a in args:
                for sym in (symbols[a] if not a.is_Atom else ((a,) if a.is_Symbol else ())):
                    index.setdefault(sym, []).append(a)
        return index.get(self.s, ())

    def _index_symbols(self, root: sympy.Basic) -> None:
        """Record the symbols under every node of ``root`` (memoised, iterative).

        A superset of the free symbols (bound variables count too), so a node
        without ``s`` is constant for ``d/ds`` and its subtree is never walked:
        the gradient of an n-term sum costs O(n) per variable instead of a walk
        of the whole expression per variable.
        """
        symbols = self.symbols

        def union(node):
            parts = [symbols[a] if not a.is_Atom else (frozenset((a,)) if a.is_Symbol else _NONE)
                     for a in node.args]
            parts = [p for p in parts if p]
            if not parts:
                return _NONE
            if all(p is parts[0] or p == parts[0] for p in parts[1:]):
                return parts[0]  # share one set along chains of one variable
            return frozenset().union(*parts)

        _fold(root, symbols, union)

    def _is_plain(self, root: sympy.Basic) -> bool:
        """No pi, I, infinities or NaN anywhere in ``root`` (memoised, iterative)."""
        if root.is_Atom:
            return _plain_atom(root)
        plain = self.plain
        _fold(root, plain, lambda node: isinstance(node, sympy.Expr) and all(
            _plain_atom(a) if a.is_Atom else plain[a] for a in node.args))
        return plain[root]

    def _fdiff(self, node: sympy.Basic, i: int) -> sympy.Expr:
        """``node.fdiff(i)``, skipping the partner function's eval where it provably does nothing."""
        key = (node, i)
        df = self.fdiffs.get(key)
        if df is None:
            partner = _PARTNERS.get(type(node))
            if partner is not None and self._is_plain(node.args[0]):
                head, negate = partner
                df = head(node.args[0], evaluate=False)
                df = -df if negate else df
            else:
                df = node.fdiff(i)
            self.fdiffs[key] = df
        return df

    def __call__(self, expr: sympy.Expr) -> sympy.Expr:
        return _built(self._derive(expr))

    # -- traversal ---------------------------------------------------------------------------

    def _derive(self, root: sympy.Basic) -> _Derivative:
        if root.is_Atom:
            return self._atom(root)
        memo = self.memo
        got = memo.get(root)
        if got is not None:
            return got
        self._index_symbols(root)
        symbols, s = self.symbols, self.s
        stack = [root]
        while stack:
            node = stack[-1]
            if node in memo:
                stack.pop()
                continue
            if s not in symbols[node]:
                memo[node] = _ZERO
                stack.pop()
                continue
            kind = self._kind(node)
            if kind == "fallback":
                memo[node] = self._fallback(node)
                stack.pop()
                continue
            children = (self._args_with_s(node) if kind in ("add", "mul") else
                        node.args if kind != "piecewise" else [pair.args[0] for pair in node.args])
            pending = [c for c in children if not c.is_Atom and c not in memo]  # atoms: no hashing
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            memo[node] = self._rule(node, kind)
        return memo[root]

    def _atom(self, node: sympy.Basic) -> sympy.Expr:
        return _ONE if node.is_Symbol and node == self.s else _ZERO

    def _d(self, node: sympy.Basic) -> _Derivative:
        """The derivative of an already visited node."""
        return self._atom(node) if node.is_Atom else self.memo[node]

    def _kind(self, node: sympy.Basic) -> str:
        cls = type(node)
        rule = getattr(cls, "_eval_derivative", None)
        n_times = getattr(cls, "_eval_derivative_n_times", None)
        if cls is _Mul or (isinstance(node, _Mul) and n_times is _Mul._eval_derivative_n_times):
            return "mul"
        if n_times is not _BASIC_N_TIMES:  # a class with its own rule for derivatives
            return "fallback"
        if cls is _Add or (isinstance(node, _Add) and rule is _Add._eval_derivative):
            return "add"
        if cls is _Pow or (isinstance(node, _Pow) and rule is _Pow._eval_derivative):
            return "pow"
        if isinstance(node, Application):
            if rule in _GENERIC_RULES:
                return "function"
            if rule is sympy.Abs._eval_derivative and node.args[0].is_extended_real:
                return "abs"
            if rule is sympy.sign._eval_derivative and node.args[0].is_extended_real:
                return "sign"
        if cls is sympy.Piecewise and rule is sympy.Piecewise._eval_derivative:
            return "piecewise"
        return "fallback"

    def _fallback(self, node: sympy.Basic) -> sympy.Expr:
        """SymPy's own derivative of a node whose head has no rule here."""
        if self.s not in node.free_symbols:
            return _ZERO
        return node.diff(self.s)

    # -- rules: SymPy's _eval_derivative of each class, with child derivatives from the memo --

    def _rule(self, node: sympy.Basic, kind: str) -> _Derivative:
        if kind == "function":
            return self._chain(node)
        if kind == "add":  # Add._eval_derivative
            ds = [_built(d) for d in map(self._d, self._args_with_s(node)) if not _is_zero(d)]
            return _Add(*ds) if ds else _ZERO
        if kind == "mul":  # Mul._eval_derivative_n_times(s, 1): one product per differentiated factor
            args = list(node.args)
            with_s = set(self._args_with_s(node)) if len(args) > _WIDE else None
            terms = []
            for i, a in enumerate(args):
                if with_s is not None and a not in with_s:
                    continue  # constant in s: its derivative is zero
                d = self._d(a)
                if _is_zero(d):
                    continue
                terms.append(_Mul(*(args[:i] + [_built(d)] + args[i + 1 :])))
            return _Add(*terms) if terms else _ZERO
        if kind == "pow":
            return self._power(node)
        if kind == "piecewise":  # Piecewise._eval_derivative
            ds = [self._d(pair.args[0]) for pair in node.args]
            if all(_is_zero(d) for d in ds):
                return _ZERO
            return sympy.Piecewise(*[(_built(d), pair.args[1]) for d, pair in zip(ds, node.args)])
        u = node.args[0]
        du = self._d(u)
        if _is_zero(du):
            return _ZERO
        if kind == "abs":  # Abs._eval_derivative, real argument: sign(u) * du
            return _built(du) * sympy.sign(sympy.conjugate(u))
        if kind == "sign":  # sign._eval_derivative, real argument: 2 * du * DiracDelta(u)
            return 2 * _built(du) * sympy.DiracDelta(u)
        raise AssertionError(kind)  # pragma: no cover

    def _power(self, node: sympy.Pow) -> sympy.Expr:
        """Pow._eval_derivative: ``self * (dexp * log(base) + dbase * exp / base)``."""
        base, exp = node.args
        dbase, dexp = self._d(base), self._d(exp)
        if _is_zero(dbase) and _is_zero(dexp):
            return _ZERO
        if base.is_number:  # keep SymPy's exact arithmetic (0 * log(0) and friends)
            return node * (_built(dexp) * sympy.log(base) + _built(dbase) * exp / base)
        terms = []
        if not _is_zero(dexp):
            terms.append(_built(dexp) * sympy.log(base))
        if not _is_zero(dbase):
            terms.append(_built(dbase) * exp / base)
        inner = terms[0] if len(terms) == 1 else terms[0] + terms[1]
        return node * inner

    def _chain(self, node: sympy.Basic) -> _Derivative:
        """Function._eval_derivative: ``sum_i fdiff(i) * d(arg_i)``."""
        parts = []
        for i, a in enumerate(node.args, 1):
            da = self._d(a)
            if _is_zero(da):
                continue
            try:
                df = self._fdiff(node, i)
            except ArgumentIndexError:
                return node.diff(self.s)  # SymPy's unevaluated Derivative/Subs forms
            parts.append((df, da))
        if not parts:
            return _ZERO
        if len(parts) == 1:
            df, da = parts[0]
            if _chainable(df) and (isinstance(da, _Product) or _chainable(da)):
                return _Product(df, da)
        return _Add(*[df * _built(da) for df, da in parts])


def diff(expr: sympy.Expr, s: sympy.Symbol) -> sympy.Expr:
    """``expr.diff(s)``, the same expression, computed without deep recursion or repeated walks.

    >>> x = sympy.Symbol("x", real=True)
    >>> diff(sympy.sin(x**2) * abs(x), x)
    2*x*cos(x**2)*Abs(x) + sin(x**2)*sign(x)
    """
    return _Differentiator(s)(expr)


def differentiate(
    captured: Captured, wrt: tuple[sympy.Symbol, ...], order: int
) -> dict[EntryKey, sympy.Expr]:
    """All distinct ``order``-th partial derivatives of every output.

    Runs on a deep-stack thread (SymPy's constructors recurse over deep trees)
    unless already on one.

    >>> from symdiff._capture import capture, real_symbol
    >>> a, b = real_symbol("a"), real_symbol("b")
    >>> differentiate(capture("3*a**3 - b**2"), (a, b), 1)
    {(0, (0,)): 9*a**2, (0, (1,)): -2*b}
    """
    if threading.current_thread().name != _DEEP_THREAD:
        return call_deep(_differentiate, captured, wrt, order)
    return _differentiate(captured, wrt, order)


class _Normaliser:
    """Expand high-order derivatives as they are built, within a time budget.

    Differentiating a product k times without collecting terms multiplies the
    terms at every order: the 10th derivative of ``tanh(x)`` has thousands of
    nodes, yet expanded it has five terms in ``tanh(x)`` and ``1 - tanh(x)**2``.
    Expanding each intermediate order (products of sums distributed; powers,
    exponentials and logs of sums left alone, and saturating sums such as
    ``1 - tanh(x)**2`` held whole for accuracy) keeps every order as small as
    its expanded form. A form that expands to more than about twice its size, or
    that does not expand within its share of the budget, stays as it is.
    """

    BUDGET = 0.5  # seconds per differentiate() call
    MAX_NODES = 5_000

    def __init__(self):
        self.deadline = time.monotonic() + self.BUDGET if wait_ready() else 0.0

    def __call__(self, expr: sympy.Expr) -> sympy.Expr:
        remaining = self.deadline - time.monotonic()
        if expr.is_Atom or remaining <= 0:
            return expr
        size = node_count(expr, self.MAX_NODES)
        if size > self.MAX_NODES:
            return expr
        expanded = run_budgeted(expand_products, (expr,), remaining)
        if not expanded:
            return expr
        expanded = expanded[0]
        limit = 2 * size + 20
        return expanded if node_count(expanded, limit) <= limit else expr


def _differentiate(captured: Captured, wrt: tuple[sympy.Symbol, ...], order: int) -> dict[EntryKey, sympy.Expr]:
    by_symbol: dict[sympy.Symbol, _Differentiator] = {}  # one memo per symbol, shared by outputs and orders
    shared: dict = {}
    result: dict[EntryKey, sympy.Expr] = {}
    normalise = _Normaliser() if order >= 3 else None  # Hessians stay as differentiated: no swell at order 2
    for o, f in enumerate(captured.outputs):
        lower: dict[tuple[int, ...], sympy.Expr] = {(): f}
        for k in range(1, order + 1):
            current: dict[tuple[int, ...], sympy.Expr] = {}
            depends: dict[tuple[int, ...], frozenset] = {}  # parent -> its free symbols (sparse Hessians)
            for combo in combinations_with_replacement(range(len(wrt)), k):
                prefix = combo[:-1]
                parent = lower[prefix]
                symbols = depends.get(prefix)
                if symbols is None:
                    symbols = depends[prefix] = frozenset(parent.free_symbols)
                s = wrt[combo[-1]]
                if s in symbols:
                    d = by_symbol.get(s)
                    if d is None:
                        d = by_symbol[s] = _Differentiator(s, shared)
                    current[combo] = d(parent)
                else:
                    current[combo] = _ZERO
            if normalise is not None:
                current = {combo: normalise(e) for combo, e in current.items()}
            lower = current
        for combo, expr in lower.items():
            result[(o, combo)] = expr
    return result
