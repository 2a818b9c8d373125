"""Indexing of array expressions: ``x[0]``, ``x[-1]``, ``A[1, 2]``, ``x[1:]``, ``x[:-1]``, ``x[::2]``, ``A[:, 0]``.

Two nodes of the array IR (:mod:`symdiff._array_ir`):

- :class:`Index` is ``a[spec]``: constant integers (negative from the end) and
  slices with constant bounds and steps, NumPy's semantics and sizes with
  symbolic dimensions (``x[1:]`` of ``(n,)`` has ``n - 1`` entries,
  ``x[::2]`` has ``ceiling(n/2)``).
- :class:`Embed` is its adjoint: ``g`` placed at ``[spec]`` in an array of
  zeros (a shift or a scatter). It prints ``pad(g, (1, 0))`` for a unit-step
  slice of a vector, else ``zeros(n).at[::2].set(g)``, and lowers to
  ``jnp.pad`` / ``.at[...].set``: O(n) work, never an ``n x n`` matrix.

The spec is kept as canonical NumPy text in a ``sympy.core.symbol.Str``
(``"1:"``, ``":, 0"``), so nodes hash, compare, print and ``.subs`` like
any SymPy expression. The differentiation and lowering modules call the
node's own ``vjp_rule``, ``tangent_rule``, ``jacobian_rule`` and ``render_jax``.

The closed form assumes each slice lies within its axis (``x[1:-1]`` needs
``n >= 2``); a concrete size where it does not, or an integer index outside
its axis, raises :class:`~symdiff.ShapeError` at the call.

>>> from symdiff._array_ir import ArraySymbol, Dim, shape_of
>>> n = Dim("n")
>>> x = ArraySymbol("x", (n,))
>>> d = index(x, [slice(1, None)]) - index(x, [slice(None, -1)])**2
>>> print(d, shape_of(d))
x[1:] - x[:-1]**2 (n - 1,)
>>> print(embed(d, [slice(1, None)], (n,)))
pad(x[1:] - x[:-1]**2, (1, 0))
"""

from __future__ import annotations

import functools
import math
from typing import Sequence, Union

import sympy
from sympy.core.symbol import Str

from . import _array_ir as ir
from ._array_ir import ArrayOp, format_shape, rank, shape_of
from ._errors import ShapeError
from ._lower import _NAMESPACE

__all__ = ["Index", "Embed", "index", "embed", "parse_subscript", "check_index", "spec_items", "index_map"]

Item = Union[int, slice]
_FULL = slice(None, None, None)


# ---- the spec: items <-> canonical text --------------------------------------


def _bound(b) -> str:
    return "" if b is None else str(b)


def _item_text(item: Item) -> str:
    if isinstance(item, int):
        return str(item)
    text = f"{_bound(item.start)}:{_bound(item.stop)}"
    return text + (f":{item.step}" if item.step not in (None, 1) else "")


def _canonical(items: Sequence[Item]) -> tuple[Item, ...]:
    out = [i if isinstance(i, int) else slice(i.start, i.stop, None if i.step == 1 else i.step) for i in items]
    while out and out[-1] == _FULL:  # A[1, :] is A[1]
        out.pop()
    return tuple(out)


def spec_text(items: Sequence[Item]) -> str:
    """Canonical NumPy text of an index: ``"1:"``, ``":, 0"``, ``"::2"``."""
    return ", ".join(_item_text(i) for i in _canonical(items)) or ":"


@functools.lru_cache(maxsize=4096)
def spec_items(text: str) -> tuple[Item, ...]:
    """The items of canonical spec text (the inverse of :func:`spec_text`).

    >>> spec_items("1:, 0")
    (slice(1, None, None), 0)
    """
    items = []
    for part in text.split(","):
        part = part.strip()
        if ":" not in part:
            items.append(int(part))
            continue
        bounds = [int(b) if b.strip() else None for b in part.split(":")] + [None]
        items.append(slice(bounds[0], bounds[1], bounds[2]))
    return tuple(items)


# ---- sizes ------------------------------------------------------------------


def _slice_size(d, s: slice):
    """NumPy's length of ``range(d)[s]``, for an int or symbolic size ``d`` (bounds assumed within the axis)."""
    if isinstance(d, int):
        return len(range(d)[s])
    step = 1 if s.step is None else s.step
    if step > 0:
        start = 0 if s.start is None else (s.start if s.start >= 0 else d + s.start)
        stop = d if s.stop is None else (s.stop if s.stop >= 0 else d + s.stop)
    else:
        start = d - 1 if s.start is None else (s.start if s.start >= 0 else d + s.start)
        stop = -1 if s.stop is None else (s.stop if s.stop >= 0 else d + s.stop)
    size = sympy.ceiling(sympy.sympify(stop - start) / step)
    return int(size) if size.is_Integer else size


def _result_shape(shape: tuple, items: tuple[Item, ...], where: str) -> tuple:
    if len(items) > len(shape):
        raise ShapeError(f"{where}: too many indices ({len(items)}) for shape {format_shape(shape)}")
    out = []
    for axis, (d, item) in enumerate(zip(shape, items + (_FULL,) * (len(shape) - len(items)))):
        if isinstance(item, int):
            if isinstance(d, int) and not -d <= item < d:
                raise ShapeError(f"{where}: index {item} is out of bounds for axis {axis} with size {d}")
            continue
        if item.step == 0:
            raise ShapeError(f"{where}: slice step cannot be zero")
        if isinstance(d, int):
            _check_slice(d, item, axis, where)
        out.append(_slice_size(d, item))
    return tuple(out)


def _check_slice(size: int, s: slice, axis: int, where: str) -> None:
    """The closed form's assumption: the slice's bounds lie within the axis and in order."""
    for b in (s.start, s.stop):
        if b is not None and not -size <= b <= size:
            raise ShapeError(f"{where}: slice bound {b} is outside axis {axis} of size {size}")
    step = 1 if s.step is None else s.step
    start, stop, _ = s.indices(size)
    if (stop - start) * step < 0 and not (step < 0 and s.stop is None):
        raise ShapeError(f"{where}: the slice {_item_text(s)} is empty and reversed for axis {axis} of size {size} "
                         "(the closed form's sizes assume a larger axis)")


def check_index(value_shape: tuple, text: str, where: str) -> None:
    """At the call: every index of ``text`` fits the concrete ``value_shape`` (else :class:`ShapeError`)."""
    _result_shape(tuple(int(d) for d in value_shape), spec_items(text), where)


def index_map(shape: tuple[int, ...], text: str):
    """Flat positions in an array of concrete ``shape`` that ``a[text]`` reads, in its own order (numpy)."""
    import numpy as np

    return np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)[spec_items(text)].ravel()


def _sd_index(value, text: str, label: str):
    """What lowered code calls for ``a[spec]``: the bounds checked for this shape (at trace time), then NumPy indexing."""
    check_index(value.shape, text, label)
    return value[spec_items(text)]


_NAMESPACE["_sd_index"] = _sd_index  # lowered array code runs in this namespace (symdiff._lower)
_NAMESPACE["ceiling"] = lambda v: int(math.ceil(v))  # sizes such as ceiling(n/2) (of x[::2]) in lowered shapes


# ---- nodes ------------------------------------------------------------------


def _full(g, shape):
    return ir.broadcast_to(g, shape) if shape_of(g) != tuple(shape) else g


def _label(expr) -> str:
    text = sympy.sstr(expr)
    return text if len(text) <= 60 else text[:57] + "..."


class Index(ArrayOp):
    """``a[spec]``: constant integers and slices (NumPy's semantics)."""

    nary = 1
    precedence = ir.PRECEDENCE["Atom"] - 1

    @property
    def items(self) -> tuple[Item, ...]:
        return spec_items(self.args[1].name)

    def _shape(self):
        return _result_shape(shape_of(self.args[0]), self.items, f"{_label(self.args[0])}[{self.args[1].name}]")

    def _sympystr(self, printer):
        return f"{ir._paren(printer, self.args[0], ir.PRECEDENCE['Func'])}[{self.args[1].name}]"

    def _latex(self, printer):
        return f"{ir._latex_paren(printer, self.args[0], ir.PRECEDENCE['Func'] + 1)}_{{[{self.args[1].name}]}}"

    # rules called by symdiff._array_diff (reverse mode, forward along a scalar, Jacobian wrt a vector)
    def vjp_rule(self, g):
        a = self.args[0]
        return [embed(_full(g, shape_of(self)), self.items, shape_of(a))]

    def tangent_rule(self, ta):
        if rank(ta) == 0:  # a broadcast scalar tangent: every entry of the slice has it
            return ta
        return index(_full(ta, shape_of(self.args[0])), self.items)

    def jacobian_rule(self, ja):
        return index(ja, self.items + (_FULL,) * (rank(self.args[0]) - len(self.items)) + (_FULL,))

    def render_jax(self, writer):
        """``_sd_index(a, "1:", label)``: NumPy indexing after a bounds check at trace time (per shape)."""
        a, spec = self.args
        return f"_sd_index({writer.code(a)[0]}, {spec.name!r}, {_label(self)!r})", 2


class Embed(ArrayOp):
    """``g`` placed at ``[spec]`` of an array of zeros of ``shape``: the adjoint of :class:`Index`."""

    nary = 1
    precedence = ir.PRECEDENCE["Func"]

    @property
    def items(self) -> tuple[Item, ...]:
        return spec_items(self.args[1].name)

    def _shape(self):
        return tuple(ir._dim(d) for d in self.args[2])

    def _pad(self):
        """``(before, after)`` when this is a unit-step slice of a vector, else None."""
        items = self.items
        if len(self.args[2]) != 1 or len(items) != 1 or not isinstance(items[0], slice) or items[0].step:
            return None
        (n,) = self._shape()
        s = items[0]
        start = 0 if s.start is None else (s.start if s.start >= 0 else n + s.start)
        stop = n if s.stop is None else (s.stop if s.stop >= 0 else n + s.stop)
        return start, n - stop

    def _sympystr(self, printer):
        g = printer.doprint(self.args[0])
        pad = self._pad()
        if pad is not None:
            return f"pad({g}, ({printer.doprint(pad[0])}, {printer.doprint(pad[1])}))"
        shape = ", ".join(printer.doprint(d) for d in self.args[2])
        return f"zeros({shape}).at[{self.args[1].name}].set({g})"

    def _latex(self, printer):
        return rf"\operatorname{{embed}}_{{[{self.args[1].name}]}}\left({printer._print(self.args[0])}\right)"

    def vjp_rule(self, g):
        return [index(_full(g, shape_of(self)), self.items)]

    def tangent_rule(self, ta):
        return embed(_full(ta, shape_of(self.args[0])), self.items, shape_of(self))

    def jacobian_rule(self, ja):
        items = self.items + (_FULL,) * (len(self.args[2]) - len(self.items)) + (_FULL,)
        return embed(ja, items, shape_of(self) + shape_of(ja)[-1:])

    def render_jax(self, writer):
        g = writer.code(self.args[0])[0]
        pad = self._pad()
        if pad is not None:
            before, after = (writer.code(sympy.sympify(p))[0] for p in pad)
            return f"jnp.pad({g}, (({before}, {after}),))", 2
        return f"jnp.zeros({writer.dims(shape_of(self))}, dtype).at[{self.args[1].name}].set({g})", 2


# ---- builders ---------------------------------------------------------------


def index(a: sympy.Expr, items: Sequence[Item]) -> sympy.Expr:
    """``a[items]`` (shape-checked); ``a`` itself for ``a[:]``; indexing into an embed or a broadcast is folded."""
    where = f"{_label(a)}[{spec_text(items)}]"
    if rank(a) == 0:
        raise ShapeError(f"{where}: a scalar cannot be indexed (shape ())")
    items = _canonical(items)
    shape = _result_shape(shape_of(a), items, where)
    if not items:
        return a
    if a == 0:
        return sympy.S.Zero
    if isinstance(a, Embed) and a.items == items:
        return a.args[0]
    if isinstance(a, ir.BroadcastTo) and rank(a.args[0]) == 0:
        return ir.broadcast_to(a.args[0], shape)
    c, rest = ir._split_scalar(a)
    if c != 1:
        return c * index(rest, items)
    return Index(a, Str(spec_text(items)))


def embed(g: sympy.Expr, items: Sequence[Item], shape: tuple) -> sympy.Expr:
    """Zeros of ``shape`` with ``g`` at ``[items]`` (``g`` has the indexed shape)."""
    items = _canonical(items)
    if not items:
        return _full(g, shape)
    if g == 0:
        return sympy.S.Zero
    c, rest = ir._split_scalar(g)
    if c != 1:
        return c * embed(rest, items, shape)
    return Embed(g, Str(spec_text(items)), sympy.Tuple(*shape))


# ---- text: the subscript after an atom ----------------------------------------


def _integer(parser, what: str):
    """An optional signed integer literal; None when the next token is ':' ',' or ']'."""
    kind, text, pos = parser.peek()
    if text in (":", ",", "]"):
        return None
    if kind == "end":
        parser.fail("missing ']'", pos)
    sign = 1
    if text in ("-", "+"):
        parser.take()
        sign = -1 if text == "-" else 1
        kind, text, pos = parser.peek()
    if kind != "number" or any(c in text for c in ".eE"):
        parser.fail(f"{what} must be integer constants (like x[1:], x[-1], A[:, 0])", pos)
    parser.take()
    if len(text) > 18:
        parser.fail(f"{what} {text[:20]}... is too large", pos)
    return sign * int(text)


def parse_subscript(parser, value: sympy.Expr) -> sympy.Expr:
    """Parse ``[items]`` after ``value`` (the ``[`` is next) with the array parser's tokens."""
    _, _, start = parser.take()
    items: list[Item] = []
    while True:
        bounds = [_integer(parser, "indices")]
        while parser.peek()[1] == ":" and len(bounds) < 3:
            parser.take()
            bounds.append(_integer(parser, "slice bounds and steps"))
        if len(bounds) == 1:
            if bounds[0] is None:
                parser.fail("empty index: write an integer or a slice such as 1: or :-1", parser.peek()[2])
            items.append(bounds[0])
        else:
            if len(bounds) == 3 and bounds[2] == 0:
                parser.fail("slice step cannot be zero", start)
            items.append(slice(*bounds))
        kind, text, pos = parser.take()
        if text == "]":
            break
        if text != ",":
            parser.fail("expected ',' or ']' in the subscript" if kind != "end" else "missing ']'", pos)
    return index(value, items)


# ---- callables: ``x[1:]`` on a traced symbolic array ------------------------------


def _key_items(key) -> list[Item]:
    """A Python subscript (int, slice, tuple of these) as index items; anything else is a CaptureError."""
    from ._errors import CaptureError

    def constant(b, what):
        if b is None or (isinstance(b, int) and not isinstance(b, bool)):
            return b
        if isinstance(b, sympy.Integer):
            return int(b)
        raise CaptureError(f"{what} must be integer constants (like x[1:], x[-1], A[:, 0]); got {b!r:.60}")

    items: list[Item] = []
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, slice):
            step = constant(k.step, "slice steps")
            if step == 0:
                raise ShapeError("slice step cannot be zero")
            items.append(slice(constant(k.start, "slice bounds"), constant(k.stop, "slice bounds"), step))
        else:
            items.append(constant(k, "indices"))
    return items


def index_key(expr: sympy.Expr, key) -> sympy.Expr:
    """``expr[key]`` for a Python subscript (what a traced callable's ``x[1:]`` builds)."""
    return index(expr, _key_items(key))
