"""Captured SymPy expressions -> the source of one pure JAX function.

Lowering is a table walk (:data:`FUNCTION_TABLE` maps SymPy heads to JAX code)
over the expression DAG with an explicit stack, so deep expressions cost no
Python recursion. A node used more than once is computed once into a local
variable (common subexpressions are shared across every output); a node used
once is written inline, so the source reads like the closed form. Unknown heads
raise :class:`LoweringError` naming them: nothing falls back to a guess.

The generated source is what runs: :func:`build_kernel` executes exactly the
text it returns as ``source``.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import sympy

from . import _kernels as fast_jnp
from ._errors import LoweringError
from ._functions import cbrt, relu, sigmoid, softplus
from ._locations import one_location
from ._reroll import reroll

__all__ = ["FUNCTION_TABLE", "Kernel", "build_kernel", "is_lowerable", "is_partial", "register_jax_function",
           "repeats_shared_work"]


@jax.custom_jvp
def abs_(x):
    """``|x|`` whose derivative is ``sign(x)`` (0 at 0), the documented kink convention."""
    return jnp.abs(x)


@abs_.defjvp
def _abs_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * t


def heaviside(x, at_zero):
    """Step function with value ``at_zero`` at 0 (SymPy's ``Heaviside(x, at_zero)``)."""
    one, zero = jnp.ones_like(x), jnp.zeros_like(x)
    return jnp.where(x > 0, one, jnp.where(x < 0, zero, jnp.asarray(at_zero, x.dtype)))


# SymPy head -> code template; {0}, {1} are the arguments' code. A plain, greppable table.
FUNCTION_TABLE: dict[type, str] = {
    # fast_jnp (symdiff/_kernels.py): drop-ins for jnp's functions, vectorised kernels on CPU, XLA's elsewhere
    sympy.sin: "fast_jnp.sin({0})",
    sympy.cos: "fast_jnp.cos({0})",
    sympy.tan: "fast_jnp.tan({0})",
    sympy.cot: "1 / fast_jnp.tan({0})",
    sympy.sec: "1 / fast_jnp.cos({0})",
    sympy.csc: "1 / fast_jnp.sin({0})",
    sympy.asin: "fast_jnp.arcsin({0})",
    sympy.acos: "fast_jnp.arccos({0})",
    sympy.atan: "fast_jnp.arctan({0})",
    sympy.atan2: "fast_jnp.arctan2({0}, {1})",
    sympy.sinh: "jnp.sinh({0})",
    sympy.cosh: "jnp.cosh({0})",
    sympy.tanh: "jnp.tanh({0})",
    sympy.asinh: "jnp.arcsinh({0})",
    sympy.acosh: "jnp.arccosh({0})",
    sympy.atanh: "jnp.arctanh({0})",
    sympy.exp: "jnp.exp({0})",
    sympy.log: "fast_jnp.log({0})",
    sympy.Abs: "abs_({0})",
    sympy.sign: "jnp.sign({0})",
    sympy.erf: "jsp.erf({0})",
    sympy.erfc: "jsp.erfc({0})",
    sympy.gamma: "jsp.gamma({0})",
    sympy.loggamma: "jsp.gammaln({0})",
    sympy.polygamma: "jsp.polygamma({0}, {1})",
    sympy.Heaviside: "heaviside({0}, {1})",
    sympy.DiracDelta: "jnp.zeros_like({0})",
    sigmoid: "jax.nn.sigmoid({0})",
    softplus: "jax.nn.softplus({0})",
    relu: "jax.nn.relu({0})",
    cbrt: "fast_jnp.cbrt({0})",
}

_NAMESPACE: dict[str, object] = {
    "jax": jax,
    "jnp": jnp,
    "jsp": jsp,
    "abs_": abs_,
    "heaviside": heaviside,
    "fast_jnp": fast_jnp,
    "full": lambda value, shape, dtype: full(value, shape, dtype),
}

_RELATIONS = {
    sympy.StrictLessThan: "<",
    sympy.LessThan: "<=",
    sympy.StrictGreaterThan: ">",
    sympy.GreaterThan: ">=",
    sympy.Equality: "==",
    sympy.Unequality: "!=",
}
_STRUCTURAL = (sympy.Add, sympy.Mul, sympy.Pow, sympy.Min, sympy.Max, sympy.Piecewise, sympy.And, sympy.Or, sympy.Not,
               sympy.functions.elementary.piecewise.ExprCondPair)


def register_jax_function(head: type, jax_fn: Callable, name: str | None = None) -> None:
    """Make ``head`` (a SymPy function class) lower to ``jax_fn`` (see :mod:`symdiff.extend`)."""
    name = name or head.__name__
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise LoweringError(f"registered name must be an identifier, got {name!r}")
    local = f"ext_{name}"
    _NAMESPACE[local] = jax_fn
    FUNCTION_TABLE[head] = local + "({args})"


def _head_ok(node: sympy.Basic) -> bool:
    if node.is_Atom:
        return not (node.is_number and node.has(sympy.I))
    t = type(node)
    return (
        t in FUNCTION_TABLE
        or isinstance(node, _STRUCTURAL)
        or t in _RELATIONS
        or node.is_number
    )


def is_lowerable(expr: sympy.Basic) -> bool:
    """Whether every node of ``expr`` has a JAX lowering."""
    stack = [expr]
    seen = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if not _head_ok(node):
            return False
        if not node.is_number:
            stack.extend(node.args)
    return True


# Precedence of generated code, Python's: higher binds tighter.
_ATOM, _POW, _UNARY, _MUL, _ADD, _CMP = 100, 80, 70, 60, 50, 30
_MAX_INLINE_DEPTH = 12  # deeper inline code goes to a local: keeps lines short, Python's parser happy
_MAX_TERMS = 64  # sums/products longer than this are chunked into locals


@dataclass
class _Code:
    text: str
    prec: int
    depth: int = 0


def _float_literal(value: float) -> _Code:
    if math.isnan(value):
        return _Code("jnp.nan", _ATOM)
    if math.isinf(value):
        return _Code("jnp.inf" if value > 0 else "(-jnp.inf)", _ATOM)
    text = repr(float(value))
    return _Code(text, _UNARY if value < 0 else _ATOM)


def _constant(node: sympy.Expr) -> _Code:
    """A constant subtree, folded to one literal at full float64 precision."""
    if node.is_Integer and abs(int(node)) < 2**53:
        v = int(node)
        return _Code(str(v), _UNARY if v < 0 else _ATOM)
    if node in (sympy.zoo, sympy.oo):
        return _float_literal(math.inf)
    if node is sympy.S.NegativeInfinity:
        return _float_literal(-math.inf)
    if node is sympy.nan:
        return _float_literal(math.nan)
    value = node.evalf(30)
    if value.has(sympy.I):
        re_part, im_part = value.as_real_imag()
        if im_part != 0:
            return _float_literal(math.nan)  # a real function outside its domain: NaN, as JAX gives
        value = re_part
    try:
        return _float_literal(float(value))
    except (TypeError, ValueError) as exc:
        raise LoweringError(f"cannot evaluate the constant {node} numerically") from exc


def _wrap(code: _Code, need: int) -> str:
    return code.text if code.prec > need else f"({code.text})"


def _inverse(factor: sympy.Pow) -> sympy.Expr:
    """``1/factor`` for a power with a negative exponent: what a division divides by."""
    return factor.base if factor.exp == -1 else sympy.Pow(factor.base, -factor.exp)


def _is_reciprocal(node: sympy.Basic) -> bool:
    return isinstance(node, sympy.Pow) and node.exp.is_number and node.exp.is_negative


def _fold(fn: str, args: list[_Code], depth: int) -> _Code:
    """An n-ary node as nested binary calls: fn(fn(a, b), c)."""
    text = args[0].text
    for a in args[1:]:
        text = f"{fn}({text}, {a.text})"
    return _Code(text, _ATOM, depth)


def _constant_nodes(roots) -> dict:
    """Which nodes of the DAG are constant, bottom-up in one pass.

    SymPy's ``is_number`` walks the whole subtree on every call, which is
    quadratic on deep expressions; this memo answers for every node at once.
    """
    const: dict = {}
    stack = [(r, False) for r in roots]
    while stack:
        node, ready = stack.pop()
        if node in const:
            continue
        if node.is_Atom:
            const[node] = bool(node.is_number)
        elif not ready:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in const)
        else:
            const[node] = all(const[a] for a in node.args)
    return const


def _children(node: sympy.Basic, is_const: Callable[[sympy.Basic], bool]):
    """The nodes whose code ``node``'s code is written from."""
    if isinstance(node, sympy.Piecewise):
        return [part for e, c in node.args for part in ((e,) if c is sympy.true else (e, c))]
    if isinstance(node, sympy.Mul):
        return [_inverse(f) if _is_reciprocal(f) else f for f in node.args if not is_const(f)]
    if _is_reciprocal(node):
        return [node.base] if node.exp == sympy.Rational(-1, 2) else [_inverse(node)]
    if isinstance(node, sympy.Pow) and node.exp.is_Integer:
        return [node.base]
    return node.args


class _Writer:
    """Writes the body of the kernel: one line per shared or large node."""

    def __init__(self, arg_names: dict[sympy.Symbol, str]):
        self.lines: list[str] = []
        self.memo: dict[sympy.Basic, _Code] = {s: _Code(n, _ATOM) for s, n in arg_names.items()}
        self.uses: dict[sympy.Basic, int] = {}
        self.const: dict[sympy.Basic, bool] = {}
        self.counter = 0

    def is_const(self, node: sympy.Basic) -> bool:
        """Whether ``node`` has no symbols (memoised; nodes made while lowering are added lazily)."""
        if node not in self.const:
            self.const.update(_constant_nodes([node]))
        return self.const[node]

    def local(self, code: _Code, name: str | None = None) -> _Code:
        if name is None:
            name = f"_t{self.counter}"
            self.counter += 1
        self.lines.append(f"    {name} = {code.text}")
        return _Code(name, _ATOM)

    def count_uses(self, roots: Sequence[sympy.Basic]) -> None:
        self.const.update(_constant_nodes(roots))
        uses = self.uses
        stack = list(roots)
        while stack:
            node = stack.pop()
            n = uses.get(node, 0)
            uses[node] = n + 1
            if n == 0 and not node.is_Atom and not self.is_const(node):
                stack.extend(_children(node, self.is_const))

    def lower(self, root: sympy.Basic) -> _Code:
        memo = self.memo
        stack = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if node in memo:
                continue
            if self.is_const(node):
                memo[node] = _constant(node)
                continue
            if node.is_Symbol:
                raise LoweringError(f"symbol {node} is not an input of this function")
            if not ready:
                stack.append((node, True))
                stack.extend((a, False) for a in _children(node, self.is_const) if a not in memo)
                continue
            code = self.render(node, [memo[a] for a in _children(node, self.is_const)])
            if self.uses.get(node, 1) > 1 or code.depth > _MAX_INLINE_DEPTH:
                code = self.local(code)
            memo[node] = code
        return memo[root]

    def chunk(self, parts: list[str], joiner: str) -> list[str]:
        while len(parts) > _MAX_TERMS:
            parts = [
                self.local(_Code(joiner.join(parts[i : i + _MAX_TERMS]), _ATOM)).text
                if len(parts[i : i + _MAX_TERMS]) > 1
                else parts[i]
                for i in range(0, len(parts), _MAX_TERMS)
            ]
        return parts

    def render(self, node: sympy.Basic, args: list[_Code]) -> _Code:
        depth = 1 + max((a.depth for a in args), default=0)
        if isinstance(node, sympy.Add):
            return self.render_add(node, depth)
        if isinstance(node, sympy.Mul):
            return self.render_mul(node, depth)
        if isinstance(node, sympy.Pow):
            return self.render_pow(node, args, depth)
        if isinstance(node, (sympy.Min, sympy.Max)):
            return _fold("jnp.minimum" if isinstance(node, sympy.Min) else "jnp.maximum", args, depth)
        if isinstance(node, sympy.Piecewise):
            pieces = [(self.memo[e], self.memo[c] if c is not sympy.true else None) for e, c in node.args]
            text = "jnp.nan"
            for value, cond in reversed(pieces):
                text = value.text if cond is None else f"jnp.where({cond.text}, {value.text}, {text})"
            return _Code(text, _ATOM, depth)
        if type(node) in _RELATIONS:
            return _Code(f"{_wrap(args[0], _CMP)} {_RELATIONS[type(node)]} {_wrap(args[1], _CMP)}", _CMP, depth)
        if isinstance(node, (sympy.And, sympy.Or)):
            return _fold("jnp.logical_and" if isinstance(node, sympy.And) else "jnp.logical_or", args, depth)
        if isinstance(node, sympy.Not):
            return _Code(f"jnp.logical_not({args[0].text})", _ATOM, depth)
        template = FUNCTION_TABLE.get(type(node))
        if template is None:
            raise LoweringError(
                f"no JAX lowering for the SymPy function {type(node).__name__} in {node}; "
                "register one with symdiff.extend.register_function"
            )
        if isinstance(node, sympy.Heaviside) and len(args) == 1:
            args = [args[0], _Code("0.5", _ATOM)]
        if isinstance(node, sympy.DiracDelta):
            args = args[:1]
        texts = [a.text for a in args]
        text = template.replace("{args}", ", ".join(texts)).format(*texts)
        return _Code(text, _MUL if text.startswith("1 / ") else _ATOM, depth)

    def render_add(self, node: sympy.Add, depth: int) -> _Code:
        terms = node.as_ordered_terms() if len(node.args) <= _MAX_TERMS else node.args  # SymPy's print order
        parts: list[str] = []
        for i, term in enumerate(terms):
            coeff, rest = term.as_coeff_Mul()
            if coeff.is_number and coeff.is_negative and i > 0:
                positive = self.memo.get(-term) if (-term) in self.memo else None
                text = positive.text if positive is not None else _wrap(self.memo[term], _ADD)
                if positive is not None:
                    parts.append(("-", _wrap(positive, _ADD)))
                    continue
                code = self.memo[term]
                if code.text.startswith("-") and code.prec >= _MUL:
                    parts.append(("-", code.text[1:]))
                    continue
                parts.append(("+", text))
            else:
                parts.append(("+", _wrap(self.memo[term], _ADD - 1)))
        first_sign, first = parts[0]
        texts = [first] + [f"{s} {t}" for s, t in parts[1:]]
        # join as "a + b - c"; long sums are chunked so no line has too many terms
        if len(texts) > _MAX_TERMS:
            pieces = [texts[0]] + [("0 " + t) for t in texts[1:]]
            summed = self.chunk([f"({p})" for p in pieces], " + ")
            return _Code(" + ".join(summed), _ADD, depth)
        return _Code(" ".join(texts), _ADD, depth)

    def render_mul(self, node: sympy.Mul, depth: int) -> _Code:
        constants = [f for f in node.args if self.is_const(f)]
        coeff = sympy.Mul(*constants) if constants else sympy.Integer(1)
        numer: list[str] = []
        denom: list[str] = []
        for factor in (f for f in node.args if not self.is_const(f)):
            if _is_reciprocal(factor):
                denom.append(_wrap(self.memo[_inverse(factor)], _MUL))
            else:
                numer.append(_wrap(self.memo[factor], _MUL - 1))
        numer = self.chunk(numer, " * ")
        denom = self.chunk(denom, " * ")
        if coeff not in (1, -1):
            numer.insert(0, _wrap(_constant(coeff), _MUL - 1))
        text = " * ".join(numer) if numer else "1"
        if denom:
            text += " / " + (denom[0] if len(denom) == 1 else "(" + " * ".join(denom) + ")")
        if coeff == -1:
            text = "-" + (text if numer or not denom else text)
        return _Code(text, _MUL, depth)

    def render_pow(self, node: sympy.Pow, args: list[_Code], depth: int) -> _Code:
        base, exp = node.args
        if _is_reciprocal(node):
            if exp == sympy.Rational(-1, 2):
                return _Code(f"jax.lax.rsqrt({args[0].text})", _ATOM, depth)
            return _Code(f"1 / {_wrap(args[0], _MUL)}", _MUL, depth)
        if exp == sympy.Rational(1, 2):
            return _Code(f"jnp.sqrt({args[0].text})", _ATOM, depth)
        if exp.is_Integer:
            return _Code(f"{_wrap(args[0], _POW)} ** {int(exp)}", _POW, depth)
        return _Code(f"{_wrap(args[0], _POW)} ** {_wrap(args[1], _POW)}", _POW, depth)


@dataclass(frozen=True)
class Kernel:
    """A lowered kernel: ``fn(*args) -> (values, entries)``, and its source text."""

    fn: Callable
    source: str
    arg_names: tuple[str, ...]
    guarded: frozenset = frozenset()  # outputs whose NaN values make their entries NaN (domain rule)


_RESERVED = set(_NAMESPACE) | {"jnp", "jax", "jsp", "lax", "full"}


def _python_names(symbols: Sequence[sympy.Symbol]) -> list[str]:
    names = []
    for i, s in enumerate(symbols):
        n = s.name
        ok = n.isidentifier() and n.isascii() and not keyword.iskeyword(n) and not n.startswith("_")
        names.append(n if ok and n not in _RESERVED and not n.startswith("ext_") else f"_arg{i}")
    return names


# Functions undefined on part of the real line: a derivative there must not look defined.
_PARTIAL = (sympy.log, sympy.acosh, sympy.atanh, sympy.asin, sympy.acos, sympy.gamma, sympy.loggamma,
            sympy.polygamma)


_PROVABLE_NODES = 200  # larger arguments are not sent to SymPy's assumption system (it can be slow)


def _provably(arg: sympy.Expr, query: str) -> bool:
    """Whether SymPy proves ``arg.<query>`` (``is_positive``...) for all real inputs; False when unsure."""
    count, stack = 0, [arg]
    while stack:
        count += 1
        if count > _PROVABLE_NODES:
            return False
        stack.extend(stack.pop().args)
    try:
        return getattr(arg, query) is True
    except (RecursionError, TypeError, ValueError, AttributeError):
        return False


def _may_be_nan(node: sympy.Basic) -> bool:
    """Whether this node can be NaN at finite real inputs where its arguments are finite."""
    if isinstance(node, sympy.log):  # log(1 + exp(x)), log(x**2 + 1): defined everywhere
        return not _provably(node.args[0], "is_nonnegative")
    if isinstance(node, sympy.Pow) and not node.exp.is_Integer:  # sqrt(x**2 + 1): defined everywhere
        return not _provably(node.base, "is_nonnegative")
    return isinstance(node, _PARTIAL)


def is_partial(expr: sympy.Basic) -> bool:
    """Whether ``expr`` can be NaN at finite real inputs (logs, roots, inverse functions, real powers).

    Logs and real powers of arguments SymPy proves nonnegative are not partial:

    >>> x = sympy.Symbol("x", real=True)
    >>> is_partial(sympy.log(1 + sympy.exp(x))), is_partial(sympy.sqrt(x**2 + 1)), is_partial(sympy.sqrt(x))
    (False, False, True)
    """
    stack, seen = [expr], set()
    while stack:
        node = stack.pop()
        if node in seen or node.is_Atom:
            continue
        seen.add(node)
        if _may_be_nan(node):
            return True
        stack.extend(node.args)
    return False


def repeats_shared_work(roots: Sequence[sympy.Expr], factor: float, min_ops: int) -> bool:
    """Whether evaluating each root on its own repeats over ``factor`` times the shared DAG's operations.

    Only for DAGs of at least ``min_ops`` distinct operations. Iterative; stops
    counting once the answer is known.

    >>> x, y = sympy.symbols("x y", real=True)
    >>> shared = sum(sympy.sin(k * x) * y**k for k in range(1, 40))
    >>> repeats_shared_work([shared + k for k in range(20)], 3, 100)
    True
    >>> repeats_shared_work([shared], 3, 100)
    False
    """

    def ops(root, seen) -> int:  # binary operations of the nodes under root not yet in seen
        count, stack = 0, [root]
        while stack:
            node = stack.pop()
            if node.is_Atom or node in seen:
                continue
            seen.add(node)
            count += max(1, len(node.args) - 1)
            stack.extend(node.args)
        return count

    union: set = set()
    shared = sum(ops(root, union) for root in roots)
    if shared < min_ops:
        return False
    total = 0
    for root in roots:
        total += ops(root, set())
        if total > factor * shared:
            return True
    return False


def build_kernel(
    args: Sequence[sympy.Symbol],
    values: Sequence[sympy.Expr],
    entries: Sequence[sympy.Expr],
    entry_names: Sequence[str] = (),
    function_name: str = "derivative",
    entry_outputs: Sequence[int] = (),
) -> Kernel:
    """Lower ``values`` and derivative ``entries`` into one JAX function of ``args``.

    The function returns ``(values, entries)``, each a tuple of arrays of the
    inputs' broadcast shape and dtype. ``entry_names`` (optional) name the
    entries' locals in the source. ``entry_outputs`` gives each entry's output
    index: where that output's value is NaN (outside its real domain) the entry
    is NaN too, instead of a finite number that looks defined.

    >>> x = sympy.Symbol("x", real=True)
    >>> k = build_kernel([x], [x**3], [3*x**2], ["d_x"])
    >>> print(k.source)
    def derivative(x):
        _shape = jnp.shape(x)
        _dtype = jnp.result_type(x)
        d_x = 3 * x ** 2
        return (full(x ** 3, _shape, _dtype),), (full(d_x, _shape, _dtype),)
    <BLANKLINE>
    """
    names = _python_names(args)
    writer = _Writer(dict(zip(args, names)))
    roots, rerolled = reroll(list(values) + list(entries), args, _template_kernel)  # alike terms of large sums
    for r in rerolled:  # computed first, each by one vectorised call (symdiff._reroll)
        writer.memo[r.symbol] = _Code(r.name, _ATOM)
        writer.lines += [f"    # {r.name}: the sum of {r.members} terms {str(r.template)[:120]}",
                         f"    {r.name} = {r.name}_sum({', '.join(names)})"]
    writer.count_uses(roots)
    header = [
        f"def {function_name}({', '.join(names)}):",
        "    _shape = " + (
            f"jnp.shape({names[0]})" if len(names) == 1 else f"jnp.broadcast_shapes({', '.join(f'jnp.shape({n})' for n in names)})"
        ),
        f"    _dtype = jnp.result_type({', '.join(names)})",
    ]
    used = set(names)
    value_codes = [writer.lower(v) for v in roots[: len(values)]]
    guarded = {o for o in set(entry_outputs) if is_partial(values[o])}
    for o in guarded:
        if value_codes[o].prec != _ATOM:
            value_codes[o] = writer.local(value_codes[o], f"_value{o}")
    entry_codes = []
    for i, e in enumerate(roots[len(values):]):
        code = writer.lower(e)
        name = entry_names[i] if i < len(entry_names) else None
        if name and name.isidentifier() and name not in used and not keyword.iskeyword(name) and code.prec != _ATOM:
            used.add(name)
            code = writer.local(code, name)
        o = entry_outputs[i] if i < len(entry_outputs) else None
        if o in guarded:
            v = value_codes[o].text
            code = _Code(f"jnp.where(jnp.isnan({v}), {v}, {code.text})", _ATOM, code.depth)
        entry_codes.append(code)

    constants: dict[str, str] = {}  # a constant entry (zeros of a Hessian) is built once, then shared

    def full(code: _Code, expr: sympy.Expr | None = None) -> str:
        if expr is not None and expr.is_number:
            if code.text not in constants:
                constants[code.text] = writer.local(_Code(f"full({code.text}, _shape, _dtype)", _ATOM)).text
            return constants[code.text]
        return f"full({code.text}, _shape, _dtype)"

    def tup(items: list[str]) -> str:
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    returned = tup([full(c, e) for c, e in zip(entry_codes, entries)])
    body = writer.lines + [f"    return {tup([full(c) for c in value_codes])}, {returned}"]
    source = "\n".join(header + body) + "\n"
    namespace = dict(_NAMESPACE)
    namespace.update((r.name + "_sum", r) for r in rerolled)
    exec(compile(source, f"<symdiff {function_name}>", "exec"), namespace)  # our generated code, never user text
    fn = one_location(namespace[function_name])  # one source location per kernel, not per op: cheap lowering
    return Kernel(fn, source, tuple(names), frozenset(guarded))


def _template_kernel(slots: Sequence[sympy.Symbol], template: sympy.Expr) -> Kernel:
    """A rerolled sum's template as a kernel of its slots (its one entry is the term)."""
    return build_kernel(slots, (), [template], ["term"], function_name="template")


def full(value, shape, dtype):
    """``value`` as an array of exactly ``shape`` and ``dtype`` (constants broadcast too)."""
    return jnp.broadcast_to(jnp.asarray(value, dtype=dtype), shape)
