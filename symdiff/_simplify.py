"""Simplification as named passes under a time budget.

SymPy's ``simplify`` can run for hours on derivative swell, so the passes run
in a worker process (:mod:`symdiff._budget`) that is killed when its share of
the budget is spent; the best form found so far (cheapest, see :func:`_cost`)
is kept, and the unsimplified derivative is always a valid fallback. Passes
compose like optax transforms: a pass is a pure module-level function
``Expr -> Expr`` (it travels to the worker by reference) and
:data:`DEFAULT_CHAIN` is a tuple of them, cheap ones first.

This module is also imported by the worker process, without the rest of
symdiff: it must not import JAX.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, NamedTuple

import sympy
from sympy.core.function import UndefinedFunction
from sympy.core.parameters import distribute

from ._budget import run_budgeted, wait_ready
from ._templates import template

__all__ = ["Pass", "DEFAULT_CHAIN", "DEFAULT_BUDGET", "MAX_NODES", "simplify_entries", "resolve_budget", "node_count",
           "hold_saturating_sums", "chain_candidates", "expand_products", "warm_up"]

DEFAULT_BUDGET = 1.0  # seconds per derive() when simplify=True
MAX_NODES = 2_000  # larger expressions skip simplification: SymPy's passes are superlinear
_MIN_SHARE = 0.02  # seconds: no entry gets less than this while budget remains


class Pass(NamedTuple):
    """A named simplification pass."""

    name: str
    run: Callable[[sympy.Expr], sympy.Expr]


def _full_simplify(expr: sympy.Expr) -> sympy.Expr:
    return sympy.simplify(expr, ratio=1.0, inverse=False, doit=False)


DEFAULT_CHAIN: tuple[Pass, ...] = (
    Pass("factor_terms", sympy.factor_terms),  # pull out common factors: 2*x*(b + w*x - y)
    Pass("cancel_powers", sympy.powsimp),
    Pass("simplify", _full_simplify),
)


def hold_saturating_sums(expr: sympy.Expr) -> tuple[sympy.Expr, dict]:
    """``expr`` with sums like ``1 - tanh(x)**2`` replaced by placeholders, and the map that restores them.

    Such sums (a constant plus powers of one function application) are what
    the derivatives of tanh, sigmoid and tan are built from. They vanish where
    the function saturates; expanded into a polynomial in ``tanh(x)``, every
    term of a high derivative is a large number cancelling there (the 10th
    derivative of ``tanh`` at 12 would lose four digits more than autodiff).
    Held whole, each term keeps the small factor. Multiples share one
    placeholder: ``2 - 2*tanh(x)**2`` is ``2 * (1 - tanh(x)**2)``.

    >>> t = sympy.tanh(sympy.Symbol("x", real=True))
    >>> held, restore = hold_saturating_sums((2 - 2*t**2) * (1 - t**2) * t)
    >>> len(restore), held.xreplace(restore)
    (1, 2*(1 - tanh(x)**2)**2*tanh(x))
    """
    kept, names = {}, {}  # sum -> c * placeholder; primitive sum -> placeholder
    for a in expr.atoms(sympy.Add):
        if _constant_plus_powers_of_one_function(a):
            c, primitive = a.as_content_primitive()
            if primitive.as_coeff_Add()[0] < 0:  # one sign for both: 1 - tanh(x)**2, not tanh(x)**2 - 1
                c, primitive = -c, -primitive
            kept[a] = c * names.setdefault(primitive, sympy.Dummy(real=True))
    if not kept:
        return expr, {}
    return expr.xreplace(kept), {d: primitive for primitive, d in names.items()}


def _constant_plus_powers_of_one_function(add: sympy.Add) -> bool:
    """Whether ``add`` is ``c0 + c1*f**k1 + ...`` for one function application ``f``."""
    function, constant = None, False
    for term in add.args:
        if term.is_Number:
            constant = True
            continue
        _, base = term.as_coeff_Mul()
        if base.is_Pow and base.exp.is_Integer:
            base = base.base
        if not isinstance(base, sympy.Function) or (function is not None and base != function):
            return False
        function = base
    return constant and function is not None


def resolve_budget(simplify) -> float:
    """Seconds of simplification from the ``simplify=`` argument of ``derive``."""
    from ._errors import SymdiffError

    if simplify is True:
        return DEFAULT_BUDGET
    if simplify is False or simplify is None:
        return 0.0
    if isinstance(simplify, (int, float)) and not isinstance(simplify, bool) and simplify >= 0:
        return float(simplify)
    raise SymdiffError(f"simplify must be True, False or a budget in seconds >= 0; got {simplify!r}")


def node_count(expr: sympy.Basic, limit: int) -> int:
    """Number of tree nodes, counting no further than ``limit`` (iterative)."""
    count, stack = 0, [expr]
    while stack and count <= limit:
        node = stack.pop()
        count += 1
        stack.extend(node.args)
    return count


NEW_FUNCTION_COST = 8  # operations a function call costs that the derivative did not already need


def _heads(expr: sympy.Expr) -> set:
    return {type(f) for f in expr.atoms(sympy.Function)}


def _cost(expr: sympy.Expr, needed: set) -> int:
    """Operations, plus the price of each kind of function the derivative did not need.

    ``1 - tanh(x)**2`` has more operations than ``cosh(x)**-2`` but reuses the
    ``tanh(x)`` the value needs anyway; a new transcendental costs far more to
    evaluate than a multiply.
    """
    return sympy.count_ops(expr) + NEW_FUNCTION_COST * len(_heads(expr) - needed)


def chain_candidates(expr: sympy.Expr, chain: tuple[Pass, ...]):
    """Yield ``(candidate, cost)`` for each pass's result that differs (runs in the worker process).

    Each pass starts from the cheapest form so far, except ``simplify``, which
    starts from the original (SymPy's own heuristics do better from there).
    """
    needed = _heads(expr)
    best, best_cost = expr, _cost(expr, needed)
    for p in chain:
        candidate = p.run(best if p.name != "simplify" else expr)
        if candidate == best:
            continue
        cost = _cost(candidate, needed)
        yield candidate, cost
        if cost < best_cost:
            best, best_cost = candidate, cost


def expand_products(expr: sympy.Expr):
    """Yield ``expr`` with products distributed over sums (runs in the worker process).

    Powers, exponentials and logs of sums stay as they are, and saturating sums
    like ``1 - tanh(x)**2`` are held whole (see :func:`hold_saturating_sums`).
    """
    held, restore = hold_saturating_sums(expr)
    expanded = sympy.expand(held, power_exp=False, power_base=False, log=False, multinomial=False)
    yield expanded.xreplace(restore)


_WORKER_MODULES = ("symdiff._functions",)  # besides SymPy: what the worker process has imported


def _travels(head: type) -> bool:
    """Whether the worker process can rebuild applications of ``head`` (pickled by reference)."""
    if isinstance(head, UndefinedFunction):
        return True
    module = head.__module__ or ""
    if not (module.startswith("sympy.") or module in _WORKER_MODULES):
        return False  # a user's module, or one of ours that imports JAX
    return getattr(sys.modules.get(module), head.__qualname__, None) is head


def _for_worker(expr: sympy.Expr) -> tuple[sympy.Expr, dict]:
    """``expr`` with function heads the worker cannot import renamed to stand-ins, and the renaming back.

    A stand-in is an undefined function of the same arity: the passes still
    simplify its arguments, and the original head is put back afterwards.
    """
    foreign = sorted({type(f) for f in expr.atoms(sympy.Function) if not _travels(type(f))}, key=str)
    if not foreign:
        return expr, {}
    standins = {h: sympy.Function(f"_symdiff_{i}_{h.__name__}", real=True) for i, h in enumerate(foreign)}
    with distribute(False):  # rebuilding must not re-distribute 2*(a - b)
        for head, standin in standins.items():
            expr = expr.replace(head, standin)
    return expr, {standin: head for head, standin in standins.items()}


def _cheapest(expr: sympy.Expr, chain: tuple[Pass, ...], accept, seconds: float, hold_sums: bool) -> sympy.Expr:
    """The cheapest acceptable form the chain finds for ``expr`` within ``seconds`` (``expr`` if none)."""
    held, restore = hold_saturating_sums(expr) if hold_sums else (expr, {})
    best, best_cost = expr, _cost(held, _heads(held))
    shipped, heads_back = _for_worker(held)
    for candidate, cost in run_budgeted(chain_candidates, (shipped, chain), seconds):
        if cost < best_cost:
            if heads_back or restore:
                with distribute(False):  # rebuilding must not re-distribute 2*(a - b) (this clears SymPy's cache)
                    for standin, head in heads_back.items():
                        candidate = candidate.replace(standin, head)
                    candidate = candidate.xreplace(restore) if restore else candidate
            if accept(candidate):  # checked here: the worker cannot lower to JAX
                best, best_cost = candidate, cost
    return best


def simplify_entries(
    exprs: list[sympy.Expr],
    budget: float,
    accept: Callable[[sympy.Expr], bool],
    chain: Iterable[Pass] = DEFAULT_CHAIN,
    hold_sums: bool = False,
) -> list[sympy.Expr]:
    """Simplify each expression within ``budget`` seconds in total.

    ``accept`` rejects candidate forms later stages cannot use. An expression
    whose share of the budget runs out keeps the best form found so far.
    ``hold_sums``: passes may not expand saturating sums (high-order
    derivatives; see :func:`hold_saturating_sums`).

    >>> x = sympy.Symbol("x", real=True)
    >>> simplify_entries([sympy.sin(x)**2 + sympy.cos(x)**2], 1.0, lambda e: True)
    [1]
    """
    chain = tuple(chain)
    out = list(exprs)
    todo = [i for i, e in enumerate(exprs) if not e.is_Atom and node_count(e, MAX_NODES) <= MAX_NODES]
    if budget <= 0 or not chain or not todo or not wait_ready():
        return out
    deadline = time.monotonic() + budget  # from here: the worker's one-time start is not charged
    # Entries equal up to renaming (a Hessian's repeated shapes) are simplified once, as their template.
    rank = {s: r for r, s in enumerate(sorted(set().union(*(exprs[i].free_symbols for i in todo)), key=str))}
    groups: dict[sympy.Expr, list] = {}
    for i in todo:
        shape, symbols, slots = template(exprs[i], rank)
        groups.setdefault(shape, []).append((i, dict(zip(slots, symbols))))
    for n, (shape, members) in enumerate(groups.items()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        share = max(remaining / (len(groups) - n), min(_MIN_SHARE, remaining))
        best = _cheapest(shape, chain, accept, share, hold_sums)
        if best is not shape:
            with distribute(False):  # keep 2*(b + w*x) as simplified: no re-distribution of the 2
                for i, fill in members:
                    out[i] = best.xreplace(fill)
    return out


def warm_up() -> None:
    """Run each pass once on a small expression, so SymPy's lazy imports and caches are inherited by every fork.

    Without it each fresh worker would spend most of a small budget importing
    (SymPy's first ``simplify`` imports a dozen modules), and lose it again when killed.
    """
    x, y = sympy.symbols("x y", real=True)
    list(chain_candidates(sympy.sin(x) ** 2 * y + sympy.cos(x) ** 2 * y, DEFAULT_CHAIN))  # small: imports, not work
    list(expand_products((x + 1) * (1 - sympy.tanh(y) ** 2)))
