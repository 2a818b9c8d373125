"""Every front end ends here: text, SymPy, callables -> one :class:`Captured` form."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import sympy

from ._deep import call_deep
from ._errors import CaptureError, ParseError, SymdiffError
from ._parse import parse

__all__ = ["Captured", "capture", "natural_key", "real_symbol", "resolve_wrt", "sort_symbols"]


@dataclass(frozen=True)
class Captured:
    """The one intermediate form: real-symbol SymPy expressions.

    Attributes:
        outputs: the captured expressions, one per output.
        vector: whether the user gave several expressions (Jacobian semantics).
        references: for expressions read from JAX code, one callable per output
            (``None`` for others) computing it with the user's own function: what
            ``d.check`` differentiates (see ``_capture_jax.JaxReference``).
    """

    outputs: tuple[sympy.Expr, ...]
    vector: bool
    references: tuple = field(default=(), compare=False, repr=False)

    @property
    def expr(self) -> sympy.Expr | sympy.Matrix:
        """The scalar expression, or a column ``sympy.Matrix`` when vector-valued."""
        return sympy.Matrix(self.outputs) if self.vector else self.outputs[0]

    @property
    def free_symbols(self) -> set[sympy.Symbol]:
        """Every symbol the outputs depend on (an explicit-stack walk: no recursion limit)."""
        cached = self.__dict__.get("_free_symbols")
        if cached is None:
            cached = _symbols_in(self.outputs)
            object.__setattr__(self, "_free_symbols", cached)
        return set(cached)


def _symbols_in(roots) -> frozenset:
    found, seen, stack = set(), set(), list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if isinstance(node, sympy.Symbol):
            found.add(node)
        else:
            stack.extend(node.args)
    return frozenset(found)


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str):
    """Sort key putting ``x2`` before ``x10``.

    >>> sorted(["x10", "x2", "a"], key=natural_key)
    ['a', 'x2', 'x10']
    """
    return tuple((1, int(p), p) if p.isdigit() else (0, 0, p) for p in _DIGITS.split(name) if p)


def sort_symbols(symbols) -> tuple[sympy.Symbol, ...]:
    """Symbols in natural name order."""
    return tuple(sorted(symbols, key=lambda s: natural_key(s.name)))


def real_symbol(name: str) -> sympy.Symbol:
    """The real symbol symdiff uses for ``name``."""
    return sympy.Symbol(name, real=True)


def _realify(expr: sympy.Basic, where: str) -> sympy.Expr:
    """Replace every symbol by the real symbol of the same name."""
    if not isinstance(expr, sympy.Expr):
        raise CaptureError(f"{where}: expected a SymPy expression, got {type(expr).__name__} {expr!r}")
    if expr.has(sympy.I):
        raise CaptureError(f"{where}: complex expressions are not supported: {expr}")
    free = _symbols_in([expr])
    mapping = {s: real_symbol(s.name) for s in free if isinstance(s, sympy.Symbol) and not s.is_real}
    others = [s for s in free if not isinstance(s, sympy.Symbol)]
    if others:
        raise CaptureError(f"{where}: unsupported free object {others[0]!r} in {expr}")
    result = expr.xreplace(mapping) if mapping else expr
    hash(result)  # SymPy caches it; computed here, on the deep stack, not later on the caller's
    return result


def _from_python(value: Any, where: str) -> sympy.Expr:
    """A value returned by a traced callable (SymPy object, number or Tensor)."""
    if hasattr(value, "__symdiff_expr__"):
        value = value.__symdiff_expr__()
    if isinstance(value, sympy.Basic):
        return _realify(value, where)
    if isinstance(value, (bool,)) or not isinstance(value, (int, float)):
        raise CaptureError(
            f"{where} returned {type(value).__name__} {value!r}; expected a SymPy expression or a number"
        )
    return sympy.Float(value) if isinstance(value, float) else sympy.Integer(value)


def _capture_callable(fn, where: str) -> list:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise CaptureError(f"cannot read the parameters of {where}: {exc}") from exc
    names = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise CaptureError(f"{where}: *args/**kwargs cannot name symbols; give each input its own parameter")
        names.append(p.name)
    symbols = [real_symbol(n) for n in names]
    # The rule (docs/jax_input.md): a callable is first called with SymPy symbols; if that
    # raises, or runs any JAX operation, it is JAX code and is read from its jaxpr instead.
    from ._capture_jax import call_with_symbols, capture_jax

    try:
        result, used_jax = call_with_symbols(fn, symbols)
    except SymdiffError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported as capture failure
        return capture_jax(fn, names, symbols, where, symbolic_error=exc)
    if used_jax:
        return capture_jax(fn, names, symbols, where)
    if isinstance(result, (list, tuple)):
        return [_from_python(r, f"{where}[{i}]") for i, r in enumerate(result)]
    if isinstance(result, sympy.MatrixBase):
        return [_realify(r, where) for r in result]
    return _from_python(result, where)


def _unwrap(got):
    """(expression or list, references) of what ``_capture_one`` returned."""
    references = getattr(got, "references", None)
    return (got.outputs, references) if references is not None else (got, ())


def _parse_and_hash(text: str) -> sympy.Expr:
    expr = parse(text)
    hash(expr)  # SymPy caches the hash; computing it here keeps deep recursion on the deep stack
    return expr


def _capture_one(item: Any, where: str):
    if isinstance(item, str):
        try:
            return call_deep(_parse_and_hash, item)
        except RecursionError as exc:
            raise ParseError("expression too deeply nested to process", item[:80], 0) from exc
    if hasattr(item, "__symdiff_expr__"):
        return _from_python(item, where)
    if isinstance(item, sympy.MatrixBase):
        return [_realify(e, f"{where}[{i}]") for i, e in enumerate(item)]
    if isinstance(item, sympy.Basic):
        return call_deep(_realify, item, where)  # SymPy recurses over the tree
    if callable(item):
        name = getattr(item, "__name__", type(item).__name__)
        return _capture_callable(item, f"function {name!r}")
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return _from_python(item, where)
    raise CaptureError(
        f"{where}: cannot capture {type(item).__name__} {item!r}; give a string, a SymPy expression, "
        "a Python callable, or a list of these"
    )


def capture(expr: Any) -> Captured:
    """Capture a user expression in symdiff's one intermediate form.

    >>> capture("x**2 + y").outputs
    (x**2 + y,)
    >>> capture(lambda a, b: a * b).outputs
    (a*b,)
    """
    if isinstance(expr, (list, tuple)):
        if not expr:
            raise CaptureError("an empty list of expressions has no derivative")
        outputs: list = []
        references: list = []
        for i, item in enumerate(expr):
            got, refs = _unwrap(_capture_one(item, f"expression [{i}]"))
            if isinstance(got, list):
                raise CaptureError(f"expression [{i}] is itself vector-valued; give a flat list of expressions")
            outputs.append(got)
            references.append(refs[0] if refs else None)
        return Captured(tuple(outputs), True, tuple(references) if any(references) else ())
    got, refs = _unwrap(_capture_one(expr, "expression"))
    if isinstance(got, list):
        return Captured(tuple(got), True, refs)
    return Captured((got,), False, refs)


def resolve_wrt(wrt: Any, captured: Captured) -> tuple[tuple[sympy.Symbol, ...], bool]:
    """The ``wrt`` symbols and whether the user asked for a single one."""
    if wrt is None:
        symbols = sort_symbols(captured.free_symbols)
        if not symbols:
            raise SymdiffError(
                f"the expression {captured.expr} has no symbols to differentiate with respect to; pass wrt=..."
            )
        return symbols, False
    if isinstance(wrt, (str, sympy.Symbol)):
        return (_wrt_symbol(wrt),), True
    if isinstance(wrt, Sequence):
        symbols = tuple(_wrt_symbol(w) for w in wrt)
        if not symbols:
            raise SymdiffError("wrt is an empty sequence; give at least one symbol, or None for all")
        return symbols, False
    raise SymdiffError(f"wrt must be None, a name, a SymPy Symbol or a sequence of these; got {wrt!r}")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _wrt_symbol(item: Any) -> sympy.Symbol:
    if isinstance(item, sympy.Symbol):
        return real_symbol(item.name)
    if isinstance(item, str) and _NAME.match(item):
        return real_symbol(item)
    raise SymdiffError(f"wrt entries must be symbol names or SymPy Symbols; got {item!r}")
