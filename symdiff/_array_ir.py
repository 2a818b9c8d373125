"""The array expression IR: vector and matrix symbols with shapes, as SymPy objects.

Everything here is an ordinary SymPy expression, so ``.subs``, ``sympy.sstr``
and ``sympy.latex`` work on it:

- :class:`ArraySymbol` is a real ``sympy.Symbol`` that carries a shape (a tuple
  of ``int`` and :class:`Dim`, a symbolic size). Scalars stay plain symbols.
- Elementwise math reuses SymPy's scalar nodes (``Add``, ``Mul``, ``Pow``,
  ``sin``, ``exp``, ...) with NumPy broadcasting: elementwise arithmetic is a
  commutative ring, so SymPy's algebra and its scalar derivative rules hold
  entry by entry.
- The non-elementwise operations are :class:`ArrayOp` subclasses (``MatMul``,
  ``Transpose``, ``ReduceSum``, ``Inv``, ``LogDet``, ...). Each prints in NumPy
  notation (``A @ x``, ``A.T``, ``inv(S)``, ``sum(X, axis=0)``) and in LaTeX
  (``A^{T}``, ``A^{-1}``).

Build nodes with the functions at the end of this module (:func:`matmul`,
:func:`transpose`, :func:`reduce_sum`, ...): they check shapes (raising
:class:`~symdiff.ShapeError` naming the operation and both shapes) and apply
cheap canonical rewrites (``x.T`` of a vector is ``x``, ``eye(n) @ B`` is
``B``, numeric factors move to the left operand of ``@``). :func:`shape_of`
gives the shape of any expression.

>>> n = Dim("n")
>>> x, A = ArraySymbol("x", (n,)), ArraySymbol("A", (n, n))
>>> e = matmul(matmul(x, A), x)
>>> print(e)
A.T @ x @ x
>>> shape_of(e)
()
>>> print(matmul(A + transpose(A), x))
(A + A.T) @ x
"""

from __future__ import annotations

import functools
from typing import Sequence

import sympy
from sympy.printing.precedence import PRECEDENCE

from ._errors import ShapeError

__all__ = [
    "Dim", "ArraySymbol", "ArrayOp", "MatMul", "Transpose", "ReduceSum", "Expand", "BroadcastTo", "Identity",
    "Outer", "Trace", "Det", "LogDet", "Reshape", "Inv", "Diag", "DiagPart", "Norm", "LogSumExp", "Softmax",
    "shape_of", "rank", "broadcast_shapes", "is_elementwise", "format_shape",
    "rebuild", "matmul", "transpose", "reshape", "reduce_sum", "mean", "expand", "broadcast_to", "identity", "outer", "trace", "det",
    "logdet", "inv", "diag", "norm", "logsumexp", "softmax", "dot", "elementwise",
]

Shape = tuple  # of int | Dim


class Dim(sympy.Symbol):
    """A symbolic size (a positive integer symbol), e.g. the ``n`` of ``shapes={"x": "n"}``.

    Dims are never inputs of a compiled derivative: their values are read from
    the shapes of the array inputs.
    """

    def __new__(cls, name: str):
        return super().__new__(cls, name, integer=True, positive=True)


class ArraySymbol(sympy.Symbol):
    """A real array-valued symbol with a shape of ints and :class:`Dim`.

    The shape is part of its identity (two symbols of one name and different
    shapes are different), so SymPy's caches never mix them up.
    """

    __slots__ = ("_shape",)

    def __new__(cls, name: str, shape: Sequence):
        obj = sympy.Symbol.__xnew__(cls, name, real=True)
        obj._shape = tuple(_dim(d) for d in shape)
        return obj

    def __getnewargs_ex__(self):
        return (self.name, self._shape), {}

    def _hashable_content(self):
        return super()._hashable_content() + (self._shape,)

    @property
    def shape(self) -> Shape:
        """The declared shape (ints and :class:`Dim`)."""
        return self._shape

    def _sympystr(self, printer):
        return self.name

    def _latex(self, printer):  # SymPy's own ArraySymbol printer would be picked by class name
        return printer._print_Symbol(sympy.Symbol(self.name))


def _dim(d):
    if isinstance(d, sympy.Integer):
        return int(d)
    if isinstance(d, int) and not isinstance(d, bool):
        return d
    if isinstance(d, Dim):
        return d
    if isinstance(d, sympy.Symbol):
        return Dim(d.name)
    if isinstance(d, str):
        return Dim(d)
    if isinstance(d, sympy.Expr) and d.free_symbols and all(isinstance(s, Dim) for s in d.free_symbols):
        return d  # a size computed from dims: x[1:] of (n,) has n - 1 entries (symdiff._array_index)
    raise ShapeError(f"a dimension must be an int or a name, got {d!r}")


def format_shape(shape: Shape) -> str:
    """``(n, 3)`` as text."""
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


# ---- node types -------------------------------------------------------------


class ArrayOp(sympy.Expr):
    """Base of the non-elementwise array operations.

    Subclasses name their array operands in ``array_args`` (the other args
    are static parameters such as axes) and compute ``_shape()`` from them.
    """

    is_commutative = True  # elementwise products of arrays commute; @ is a node, not a Mul
    is_real = True
    nary = 1  # how many leading args are array operands

    def __new__(cls, *args):
        return sympy.Expr.__new__(cls, *[sympy.sympify(a) for a in args])

    @property
    def array_args(self) -> tuple:
        return self.args[: self.nary]

    @property
    def shape(self) -> Shape:
        return shape_of(self)

    def _shape(self) -> Shape:
        raise NotImplementedError

    def _eval_derivative(self, s):  # SymPy's diff must not silently treat these as constants
        raise NotImplementedError(f"use symdiff's array differentiation for {type(self).__name__}")

    def _call_str(self, printer, name: str) -> str:
        return f"{name}({', '.join(printer.doprint(a) for a in self.array_args)})"

    def _pretty(self, printer):
        # SymPy's pretty printer would dispatch on the class name (Transpose, MatMul, ...) to its
        # matrix-expression methods, which these nodes are not: show the NumPy notation instead.
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(sympy.sstr(self))

    def _pythoncode(self, printer):
        return sympy.sstr(self)  # NumPy notation (jnp names: inv, diag, eye, ...)


def _paren(printer, arg, prec: int, strict: bool = False) -> str:
    text = printer.doprint(arg)
    p = _precedence(arg)
    return f"({text})" if (p < prec or (strict and p == prec)) else text


def _precedence(expr) -> int:
    from sympy.printing.precedence import precedence

    if isinstance(expr, ArrayOp):
        return expr.precedence
    if isinstance(expr, (sympy.Number)) and expr.is_negative:
        return PRECEDENCE["Add"]
    if isinstance(expr, sympy.Rational) and not expr.is_Integer:
        return PRECEDENCE["Mul"]
    return precedence(expr)


# SymPy's Mul printer parenthesizes factors at or below the level of a sum (a product with a
# negative coefficient is printed at that level), so a*(B @ c) and -(B @ c)*d keep theirs.
_MATMUL_PREC = PRECEDENCE["Add"]


class MatMul(ArrayOp):
    """``a @ b`` (``numpy.matmul`` of vectors and matrices)."""

    nary = 2
    precedence = _MATMUL_PREC

    def _shape(self):
        a, b = (shape_of(x) for x in self.args)
        return _matmul_shape(a, b, "@")

    def _sympystr(self, printer):
        # Python reads @ and * left to right at one level: a sum on the left needs
        # parentheses, and on the right anything but a power, a call or an atom does.
        a, b = self.args
        left = printer.doprint(a)
        if isinstance(a, sympy.Add) or _precedence(a) < _MATMUL_PREC:
            left = f"({left})"
        right = printer.doprint(b)
        if _precedence(b) <= PRECEDENCE["Mul"] or isinstance(b, (sympy.Add, sympy.Mul)):
            right = f"({right})"
        return f"{left} @ {right}"

    def _latex(self, printer):
        a, b = self.args
        return f"{_latex_paren(printer, a, PRECEDENCE['Mul'])} {_latex_paren(printer, b, PRECEDENCE['Mul'])}"


def _latex_paren(printer, arg, prec, strict=False):
    text = printer._print(arg)
    p = _precedence(arg)
    return rf"\left({text}\right)" if (p < prec or (strict and p == prec)) else text


class Transpose(ArrayOp):
    """``A.T`` (axes reversed)."""

    precedence = PRECEDENCE["Atom"] - 1

    def _shape(self):
        return tuple(reversed(shape_of(self.args[0])))

    def _sympystr(self, printer):
        return f"{_paren(printer, self.args[0], PRECEDENCE['Func'])}.T"

    def _latex(self, printer):
        return f"{_latex_paren(printer, self.args[0], PRECEDENCE['Func'] + 1)}^{{T}}"


class ReduceSum(ArrayOp):
    """``sum(a, axis=axes)``; ``axes`` is a Tuple of non-negative ints (all of them: ``sum(a)``)."""

    precedence = PRECEDENCE["Func"]

    def _shape(self):
        shape = shape_of(self.args[0])
        axes = {int(a) for a in self.args[1]}
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def _all(self) -> bool:
        return len(self.args[1]) == rank(self.args[0])

    def _sympystr(self, printer):
        a = printer.doprint(self.args[0])
        if self._all():
            return f"sum({a})"
        axes = [int(x) for x in self.args[1]]
        return f"sum({a}, axis={axes[0] if len(axes) == 1 else tuple(axes)})"

    def _latex(self, printer):
        a = printer._print(self.args[0])
        if self._all():
            return rf"\operatorname{{sum}}\left({a}\right)"
        axes = ",".join(str(int(x)) for x in self.args[1])
        return rf"\operatorname{{sum}}_{{{axes}}}\left({a}\right)"


class Expand(ArrayOp):
    """``a`` with a new axis of size 1 at ``axis`` (``a[:, None]``, ``a[None, :]``)."""

    precedence = PRECEDENCE["Atom"] - 1

    def _shape(self):
        shape = list(shape_of(self.args[0]))
        shape.insert(int(self.args[1]), 1)
        return tuple(shape)

    def _sympystr(self, printer):
        r = rank(self.args[0]) + 1
        idx = [":"] * r
        idx[int(self.args[1])] = "None"
        return f"{_paren(printer, self.args[0], PRECEDENCE['Func'])}[{', '.join(idx)}]"

    def _latex(self, printer):
        return printer._print(self.args[0])


class BroadcastTo(ArrayOp):
    """``a`` broadcast to ``shape`` (a Tuple of dims); ``ones(n)`` when ``a`` is 1."""

    precedence = PRECEDENCE["Func"]

    def _shape(self):
        return tuple(_dim(d) for d in self.args[1])

    def _sympystr(self, printer):
        shape = ", ".join(printer.doprint(d) for d in self.args[1])
        if self.args[0] == 1:
            return f"ones({shape})"
        return f"broadcast_to({printer.doprint(self.args[0])}, ({shape}{',' if len(self.args[1]) == 1 else ''}))"

    def _latex(self, printer):
        if self.args[0] == 1:
            return r"\mathbf{1}"
        return rf"{printer._print(self.args[0])} \mathbf{{1}}"


class Reshape(ArrayOp):
    """``reshape(a, shape)``: the entries of ``a`` in row-major order, in a new shape (a Tuple of dims)."""

    precedence = PRECEDENCE["Func"]

    def _shape(self):
        return tuple(_dim(d) for d in self.args[1])

    def _sympystr(self, printer):
        shape = ", ".join(printer.doprint(d) for d in self.args[1])
        return f"reshape({printer.doprint(self.args[0])}, ({shape}{',' if len(self.args[1]) == 1 else ''}))"

    def _latex(self, printer):
        return printer._print(self.args[0])


class Identity(ArrayOp):
    """``eye(n)``, the identity matrix."""

    nary = 0
    precedence = PRECEDENCE["Atom"]

    def _shape(self):
        n = _dim(self.args[0])
        return (n, n)

    def _sympystr(self, printer):
        return f"eye({printer.doprint(self.args[0])})"

    def _latex(self, printer):
        return "I"


class _Call(ArrayOp):
    """An operation printed as ``name(args)``."""

    precedence = PRECEDENCE["Func"]
    name = ""
    latex_name = ""

    def _sympystr(self, printer):
        return self._call_str(printer, self.name)

    def _latex(self, printer):
        args = ", ".join(printer._print(a) for a in self.array_args)
        return rf"\operatorname{{{self.latex_name or self.name}}}\left({args}\right)"


class Outer(_Call):
    """``outer(a, b)`` of two vectors."""

    nary = 2
    name = "outer"

    def _shape(self):
        return shape_of(self.args[0]) + shape_of(self.args[1])

    def _latex(self, printer):
        a, b = self.args
        return f"{_latex_paren(printer, a, _MATMUL_PREC)} {_latex_paren(printer, b, _MATMUL_PREC)}^{{T}}"


class Trace(_Call):
    """``trace(A)``."""

    name = "trace"
    latex_name = "tr"

    def _shape(self):
        return ()


class Det(_Call):
    """``det(A)``."""

    name = "det"

    def _shape(self):
        return ()

    def _latex(self, printer):
        return rf"\det\left({printer._print(self.args[0])}\right)"


class LogDet(_Call):
    """``logdet(A)``: ``log |det A|``."""

    name = "logdet"

    def _shape(self):
        return ()

    def _latex(self, printer):
        return rf"\log\left|{printer._print(self.args[0])}\right|"


class Inv(_Call):
    """``inv(A)``, the matrix inverse."""

    name = "inv"

    def _shape(self):
        return shape_of(self.args[0])

    def _latex(self, printer):
        return f"{_latex_paren(printer, self.args[0], PRECEDENCE['Atom'])}^{{-1}}"


class Diag(_Call):
    """``diag(v)``: the diagonal matrix of a vector."""

    name = "diag"

    def _shape(self):
        (n,) = shape_of(self.args[0])
        return (n, n)


class DiagPart(_Call):
    """``diag(A)``: the diagonal of a square matrix, as a vector."""

    name = "diag"

    def _shape(self):
        return shape_of(self.args[0])[:1]


class Norm(_Call):
    """``norm(a)``: the 2-norm of a vector, the Frobenius norm of a matrix."""

    name = "norm"

    def _shape(self):
        return ()

    def _latex(self, printer):
        return rf"\left\|{printer._print(self.args[0])}\right\|"


class LogSumExp(_Call):
    """``logsumexp(a)`` over every entry."""

    name = "logsumexp"

    def _shape(self):
        return ()


class Softmax(_Call):
    """``softmax(v)`` of a vector."""

    name = "softmax"

    def _shape(self):
        return shape_of(self.args[0])


# ---- shapes -----------------------------------------------------------------


def is_elementwise(expr: sympy.Basic) -> bool:
    """Whether ``expr`` is an elementwise node (SymPy arithmetic or a scalar function)."""
    return not expr.is_Atom and not isinstance(expr, ArrayOp)


@functools.lru_cache(maxsize=65536)
def shape_of(expr: sympy.Basic) -> Shape:
    """The shape of an array expression: ``()`` for scalars.

    >>> shape_of(ArraySymbol("X", (Dim("m"), 3)) * 2)
    (m, 3)
    """
    if isinstance(expr, ArraySymbol):
        return expr.shape
    if isinstance(expr, ArrayOp):
        return expr._shape()
    if expr.is_Atom:
        return ()
    return broadcast_shapes([shape_of(a) for a in expr.args if isinstance(a, sympy.Expr)], type(expr).__name__)


def rank(expr: sympy.Basic) -> int:
    """The number of axes of ``expr``."""
    return len(shape_of(expr))


def broadcast_shapes(shapes: Sequence[Shape], op: str = "broadcast") -> Shape:
    """NumPy broadcasting of shapes with symbolic dims (a symbolic dim only matches itself or 1).

    >>> n = Dim("n")
    >>> broadcast_shapes([(n, 1), (3,)])
    (n, 3)
    """
    shapes = [s for s in shapes if s]
    if not shapes:
        return ()
    if len(shapes) == 1:
        return shapes[0]
    r = max(len(s) for s in shapes)
    out = []
    for i in range(r):
        sizes = [s[len(s) - r + i] for s in shapes if len(s) - r + i >= 0]
        big = {d for d in sizes if d != 1}
        if len(big) > 1:
            a, b = list(big)[:2]
            listed = " and ".join(format_shape(s) for s in shapes)
            raise ShapeError(f"{op}: shapes {listed} do not broadcast (dimension {i - r}: sizes {a} and {b})")
        out.append(big.pop() if big else 1)
    return tuple(out)


def _same(a, b) -> bool:
    return a == b


def _matmul_shape(a: Shape, b: Shape, op: str) -> Shape:
    if not a or not b:
        raise ShapeError(f"{op}: operands must be vectors or matrices, got shapes {format_shape(a)} and "
                         f"{format_shape(b)} (use * for scalars)")
    if len(a) > 2 or len(b) > 2:
        raise ShapeError(f"{op}: only vectors and matrices are supported, got shapes {format_shape(a)} and "
                         f"{format_shape(b)}")
    k1 = a[-1]
    k2 = b[0] if len(b) == 1 else b[-2]
    if not _same(k1, k2):
        raise ShapeError(f"{op}: shapes {format_shape(a)} and {format_shape(b)} do not match "
                         f"(contracted dimension: sizes {k1} and {k2})")
    return a[:-1] + b[:-2] + b[-1:] if len(b) == 2 else a[:-1]


def _require_rank(expr, ranks, op: str):
    r = rank(expr)
    if r not in ranks:
        want = " or ".join({0: "a scalar", 1: "a vector", 2: "a matrix"}[k] for k in ranks)
        raise ShapeError(f"{op}: expected {want}, got shape {format_shape(shape_of(expr))}")


def _require_square(expr, op: str):
    _require_rank(expr, (2,), op)
    n, m = shape_of(expr)
    if not _same(n, m):
        raise ShapeError(f"{op}: expected a square matrix, got shape {format_shape(shape_of(expr))} "
                         f"(sizes {n} and {m})")


# ---- builders (shape-checked, lightly canonicalised) ------------------------


def elementwise(expr: sympy.Expr, op: str = "elementwise") -> sympy.Expr:
    """Check that an elementwise expression's operands broadcast; return it."""
    broadcast_shapes([shape_of(a) for a in expr.args if isinstance(a, sympy.Expr)] if not expr.is_Atom else [], op)
    return expr


def _split_scalar(expr: sympy.Expr):
    """``(scalar factor, array part)`` of a product; the factor is 1 when there is none."""
    if isinstance(expr, sympy.Mul):
        scalars = [f for f in expr.args if rank(f) == 0]
        if scalars and len(scalars) < len(expr.args):
            rest = [f for f in expr.args if rank(f) != 0]
            return sympy.Mul(*scalars), sympy.Mul(*rest)
    if isinstance(expr, MatMul) and isinstance(expr.args[0], sympy.Mul):  # MatMul(2*A, B) is 2*(A @ B)
        c, rest = expr.args[0].as_coeff_Mul()
        if c != 1 and c.is_Number and rank(rest) == rank(expr.args[0]):
            return c, MatMul(rest, expr.args[1])
    return sympy.S.One, expr


def _is_zero(expr) -> bool:
    return expr == 0


def _is_unit_ones(e) -> bool:
    """``ones(1, k)`` / ``ones(k, 1)`` / ``ones(1)``: a product with it only broadcasts."""
    return isinstance(e, BroadcastTo) and e.args[0] == 1 and 1 in shape_of(e)


def matmul(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """``a @ b`` with NumPy's vector rules; scalar factors move to the left.

    A vector on the left of a matrix is written ``B.T @ a`` (the same
    numbers), so chains read right to left like matrix-vector products.
    """
    sa, sb = shape_of(a), shape_of(b)
    if _is_zero(a) or _is_zero(b):
        return sympy.S.Zero
    _matmul_shape(sa, sb, "@")
    ca, a = _split_scalar(a)
    cb, b = _split_scalar(b)
    coeff = ca * cb
    if isinstance(a, Diag):  # diag(-2*p) @ B is -2*(diag(p) @ B)
        c, rest = a.args[0].as_coeff_Mul()
        if c != 1 and rank(rest) == 1:
            coeff, a = coeff * c, Diag(rest)
    if _is_unit_ones(b) and sa[-1] == 1:  # a @ ones(1, k) with a's last dim 1: a broadcast
        out = a if sb == (1, 1) or len(sb) == 1 else a * b
    elif _is_unit_ones(a) and len(sb) == 2 and sb[0] == 1:
        out = b if sa == (1, 1) or len(sa) == 1 else a * b
    elif isinstance(a, Identity):
        out = b
    elif isinstance(b, Identity):
        out = a
    elif isinstance(a, Diag) and isinstance(b, Diag):
        out = Diag(a.args[0] * b.args[0])
    elif isinstance(a, Diag) and isinstance(b, MatMul) and isinstance(b.args[0], Diag):
        out = matmul(Diag(a.args[0] * b.args[0].args[0]), b.args[1])
    elif len(sa) == 1 and len(sb) == 2:
        out = matmul(transpose(b), a)
    elif len(sa) == 1 and len(sb) == 1 and isinstance(b, MatMul) and not isinstance(a, MatMul):
        out = MatMul(b, a)  # x @ (A @ y): the chain on the left reads better, the value is the same
    else:
        out = MatMul(a, b)
    if coeff == 1:
        return out
    if isinstance(out, MatMul) and coeff.is_Integer:  # 2*X.T @ r reads as the textbook's 2 X^T r
        return MatMul(coeff * out.args[0], out.args[1])
    return coeff * out


def dot(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """``dot(a, b)``: ``a @ b`` for vectors and matrices, ``a*b`` when one is a scalar."""
    if rank(a) == 0 or rank(b) == 0:
        return elementwise(a * b, "dot")
    return matmul(a, b)


def transpose(a: sympy.Expr) -> sympy.Expr:
    """``a.T`` (a no-op on scalars and vectors)."""
    r = rank(a)
    if r < 2:
        return a
    if isinstance(a, Transpose):
        return a.args[0]
    if isinstance(a, (Identity, Diag)):
        return a
    if isinstance(a, BroadcastTo) and rank(a.args[0]) == 0:
        return BroadcastTo(a.args[0], sympy.Tuple(*reversed(a.args[1])))
    c, rest = _split_scalar(a)
    if c != 1:
        return c * transpose(rest)
    if isinstance(a, MatMul) and r == 2:
        return MatMul(transpose(a.args[1]), transpose(a.args[0]))
    if isinstance(a, Outer):
        return Outer(a.args[1], a.args[0])
    if isinstance(a, sympy.Add):
        return sympy.Add(*[transpose(t) for t in a.args])
    if isinstance(a, sympy.Mul) and all(rank(f) in (0, 2) for f in a.args):
        return sympy.Mul(*[transpose(f) for f in a.args])
    return Transpose(a)


def _axes(a, axis, op: str) -> tuple[int, ...]:
    r = rank(a)
    if axis is None:
        return tuple(range(r))
    items = axis if isinstance(axis, (tuple, list, sympy.Tuple)) else (axis,)
    out = []
    for ax in items:
        if isinstance(ax, sympy.Integer):
            ax = int(ax)
        if not isinstance(ax, int) or isinstance(ax, bool):
            raise ShapeError(f"{op}: axis must be an integer, got {ax!r}")
        if not -r <= ax < r:
            raise ShapeError(f"{op}: axis {ax} is out of range for shape {format_shape(shape_of(a))}")
        out.append(ax % r)
    return tuple(sorted(set(out)))


def reduce_sum(a: sympy.Expr, axis=None) -> sympy.Expr:
    """``sum(a, axis)`` (every entry when ``axis`` is None)."""
    axes = _axes(a, axis, "sum")
    if not axes:
        return a
    shape = shape_of(a)
    if _is_zero(a):
        return sympy.S.Zero
    if isinstance(a, Identity):
        return BroadcastTo(1, sympy.Tuple(shape[0])) if len(axes) == 1 else shape[0]
    if isinstance(a, Diag):
        return a.args[0] if len(axes) == 1 else reduce_sum(a.args[0])
    if isinstance(a, MatMul) and len(axes) == 1 and axes[0] == 0 and isinstance(a.args[0], Diag):
        return matmul(transpose(a.args[1]), a.args[0].args[0])
    c, rest = _split_scalar(a)
    if c != 1:
        return c * reduce_sum(rest, axes)
    if isinstance(a, BroadcastTo) and rank(a.args[0]) == 0:
        size = sympy.Mul(*[shape[i] for i in axes])
        left = tuple(d for i, d in enumerate(shape) if i not in axes)
        return size * a.args[0] if not left else broadcast_to(size * a.args[0], left)
    return ReduceSum(a, sympy.Tuple(*axes))


def mean(a: sympy.Expr, axis=None) -> sympy.Expr:
    """``mean(a, axis)``: the sum divided by the number of entries summed."""
    axes = _axes(a, axis, "mean")
    shape = shape_of(a)
    count = sympy.Mul(*[shape[i] for i in axes])
    return reduce_sum(a, axes) / count


def expand(a: sympy.Expr, axis: int) -> sympy.Expr:
    """A new unit axis at ``axis`` (non-negative, in the result)."""
    if rank(a) == 0:
        return a
    return Expand(a, axis)


def broadcast_to(a: sympy.Expr, shape: Shape) -> sympy.Expr:
    """``a`` broadcast to ``shape`` (itself when it already has that shape)."""
    shape = tuple(shape)
    if shape_of(a) == shape:
        return a
    if _is_zero(a):
        return a
    if rank(a) == 0 and a != 1:
        return a * BroadcastTo(1, sympy.Tuple(*shape))
    return BroadcastTo(a, sympy.Tuple(*shape))


def reshape(a: sympy.Expr, shape) -> sympy.Expr:
    """``a.reshape(shape)`` (row-major, as NumPy); sizes must agree when both are known.

    Symbolic sizes are compared as products (``(n, m)`` -> ``(n*m,)`` is fine).
    """
    shape = tuple(_dim(d) if not isinstance(d, sympy.Expr) or d.is_Integer or isinstance(d, sympy.Symbol) else d
                  for d in shape)
    old = shape_of(a)
    if sympy.Mul(*old) != sympy.Mul(*shape):
        raise ShapeError(f"reshape: cannot reshape {format_shape(old)} ({sympy.Mul(*old)} entries) into "
                         f"{format_shape(shape)} ({sympy.Mul(*shape)} entries)")
    if tuple(old) == shape:
        return a
    if isinstance(a, Reshape):
        a = a.args[0]
        if shape_of(a) == shape:
            return a
    return Reshape(a, sympy.Tuple(*shape))


def identity(n) -> Identity:
    """``eye(n)``."""
    return Identity(n)


def outer(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """``outer(a, b)`` of two vectors."""
    _require_rank(a, (1,), "outer")
    _require_rank(b, (1,), "outer")
    if _is_zero(a) or _is_zero(b):
        return sympy.S.Zero
    ca, a = _split_scalar(a)
    cb, b = _split_scalar(b)
    return ca * cb * Outer(a, b)


def trace(a: sympy.Expr) -> sympy.Expr:
    """``trace(A)`` of a square matrix."""
    _require_square(a, "trace")
    if _is_zero(a):
        return sympy.S.Zero
    if isinstance(a, Identity):
        return a.args[0]
    if isinstance(a, Diag):
        return reduce_sum(a.args[0])
    if isinstance(a, Outer):
        return matmul(a.args[0], a.args[1])
    c, rest = _split_scalar(a)
    if c != 1:
        return c * trace(rest)
    if isinstance(a, sympy.Add):
        return sympy.Add(*[trace(t) for t in a.args])
    return Trace(a)


def det(a: sympy.Expr) -> sympy.Expr:
    """``det(A)`` of a square matrix."""
    _require_square(a, "det")
    return Det(a)


def logdet(a: sympy.Expr) -> sympy.Expr:
    """``logdet(A)``: ``log |det A|`` of a square matrix."""
    _require_square(a, "logdet")
    return LogDet(a)


def inv(a: sympy.Expr) -> sympy.Expr:
    """``inv(A)`` of a square matrix."""
    _require_square(a, "inv")
    if isinstance(a, Inv):
        return a.args[0]
    if isinstance(a, Identity):
        return a
    if isinstance(a, Transpose):
        return Transpose(inv(a.args[0]))
    return Inv(a)


def diag(a: sympy.Expr) -> sympy.Expr:
    """``diag(v)``: a vector's diagonal matrix; ``diag(A)``: a square matrix's diagonal."""
    _require_rank(a, (1, 2), "diag")
    if rank(a) == 1:
        if _is_zero(a):
            return sympy.S.Zero
        return Diag(a)
    _require_square(a, "diag")
    if isinstance(a, Diag):
        return a.args[0]
    if isinstance(a, Identity):
        return BroadcastTo(1, sympy.Tuple(a.args[0]))
    return DiagPart(a)


def norm(a: sympy.Expr) -> sympy.Expr:
    """``norm(a)``: 2-norm of a vector, Frobenius norm of a matrix (``|a|`` of a scalar)."""
    if rank(a) == 0:
        return sympy.Abs(a)
    return Norm(a)


def logsumexp(a: sympy.Expr) -> sympy.Expr:
    """``logsumexp(a)`` over every entry."""
    if rank(a) == 0:
        return a
    return LogSumExp(a)


def softmax(a: sympy.Expr) -> sympy.Expr:
    """``softmax(v)`` of a vector."""
    _require_rank(a, (1,), "softmax")
    return Softmax(a)


def rebuild(node: ArrayOp, args) -> sympy.Expr:
    """``node`` with new ``args``, through its builder (so canonical rewrites apply again)."""
    builder = _BUILDERS.get(type(node))
    if builder is None:
        return node.func(*args)
    return builder(*args)


_BUILDERS = {
    MatMul: matmul,
    Transpose: transpose,
    ReduceSum: lambda a, axes: reduce_sum(a, tuple(int(x) for x in axes)),
    Outer: outer,
    Trace: trace,
    Inv: inv,
    Diag: diag,
    DiagPart: diag,
    Norm: norm,
}
