"""Recorded tensor computations as array expressions: matrix closed forms for ``y.derive()`` and ``backward``.

A recorded graph whose operations all have an array counterpart (elementwise
math with broadcasting, ``@``, ``sum``/``mean`` with or without ``dim``,
2-D transposes, broadcasts, reshapes, casts)
becomes one expression of :mod:`symdiff._array_ir`, differentiated by
:func:`symdiff._array_diff.gradient` and lowered to ``jax.numpy`` matrix code
by :func:`symdiff._array_lower.lower_arrays`. So the least-squares loss
``((X @ w - y)**2).mean()`` has the gradient ``X.T @ (X @ w - y)/50`` (100
rows), not a product with a ``matmul(X, 1)`` pseudo-function.

Graphs use this route when they hold a matrix product (or a 2-D transpose)
and nothing without an array counterpart (indexing, batched ``@``, permutations
of more than two axes); others keep the elementwise segments of :mod:`symdiff._tensor_graph`.

Sizes are symbolic while deriving: every distinct size other than 1 becomes a
:class:`~symdiff._array_ir.Dim`, numbered in order of first appearance, so one
derivation serves every batch size (a new size retraces, it does not
re-derive). Printed closed forms show the recorded sizes.

>>> from symdiff._tensor import tensor
>>> X = tensor([[1., 2.], [3., 4.], [5., 6.]], name="X")
>>> w = tensor([0.5, -0.5], requires_grad=True, name="w")
>>> print(((X @ w) ** 2).sum().derive())
d/dw = 2*X.T @ (X @ w)
"""

from __future__ import annotations

from typing import Any

import sympy

from . import _array_ir as ir
from . import _cache
from ._array_diff import gradient
from ._array_lower import lower_arrays
from ._errors import SymdiffError
from ._tensor_ops import is_elementwise
from ._tensor_sympy import sympy_elementwise, sympy_number

__all__ = ["uses_matrices", "size_pattern", "array_expressions", "ArrayGradients", "tidy", "NotAnArray"]


class NotAnArray(SymdiffError):
    """A recorded operation has no array-expression counterpart (the graph keeps the elementwise route)."""


def uses_matrices(key: tuple) -> bool:
    """Whether a graph key holds a matrix product, a 2-D transpose or a reduction along a dim (the array route).

    Reductions along a dim print as NumPy's ``sum(..., axis=0)`` here; the
    elementwise route could only write them as a function of the whole array.
    """
    return any(e[0] == "matmul" or (e[0] == "permute" and e[1][0] == (1, 0)) or
               (e[0] in ("sum", "mean") and e[1][0] is not None) for e in key if e[0] != "in")


# ---------------------------------------------------------------- sizes -> symbolic dimensions


def size_pattern(key: tuple) -> tuple[tuple, dict]:
    """The key with every size other than 1 replaced by ``("d", k)`` (k: order of first appearance).

    Returns ``(pattern, sizes)``: ``sizes[k]`` is the size that label ``k``
    stands for. Two graphs of one structure whose sizes differ but are equal
    where the other's are (and 1 where the other's are) share a pattern.
    A graph with a reshape that merges or splits axes keeps its sizes (its
    closed forms are derived per shape): a label cannot say that 15 is 5*3.
    """
    labels: dict[int, int] = {}
    concrete = any(e[0] == "reshape" and not _unit_only(_shape_at(key, e[2][0][1]), e[1][0]) for e in key)

    def dims(shape):
        if concrete:
            return tuple(int(s) for s in shape)
        out = []
        for s in shape:
            if s == 1:
                out.append(1)
            else:
                out.append(("d", labels.setdefault(int(s), len(labels))))
        return tuple(out)

    pattern = []
    for e in key:
        if e[0] == "in":
            pattern.append(("in", dims(e[1]), e[2], e[3]))
            continue
        op, params = e[0], e[1]
        if op in ("reshape", "expand"):
            params = (dims(params[0]),)
        pattern.append((op, params, e[2], dims(e[3]), e[4]))
    return tuple(pattern), {k: v for v, k in labels.items()}


def _shape_at(key: tuple, i: int) -> tuple:
    return key[i][1] if key[i][0] == "in" else key[i][3]


def _unit_only(old: tuple, new: tuple) -> bool:
    """Whether a reshape only adds or drops axes of size 1."""
    return [d for d in old if d != 1] == [d for d in new if d != 1]


def _ir_shape(shape: tuple) -> tuple:
    return tuple(s if isinstance(s, int) else ir.Dim(f"n{s[1]}") for s in shape)


# ---------------------------------------------------------------- graph -> array expressions


def array_expressions(pattern: tuple, names: dict[int, str]) -> list:
    """Every node of a size pattern as an array expression (inputs named by ``names``).

    Raises :class:`NotAnArray` for an operation without an array counterpart.
    """
    exprs: list[Any] = [None] * len(pattern)
    for i, e in enumerate(pattern):
        if e[0] == "in":
            shape = _ir_shape(e[1])
            exprs[i] = sympy.Symbol(names[i], real=True) if not shape else ir.ArraySymbol(names[i], shape)
            continue
        op, params = e[0], e[1]
        args = [exprs[r[1]] if r[0] == "t" else sympy_number(r[2]) for r in e[2]]
        if is_elementwise(op):
            exprs[i] = sympy_elementwise(op, params, args)
        else:
            exprs[i] = _structural(op, params, args, _ir_shape(e[3]))
    return exprs


def _structural(op: str, params, args: list, shape: tuple):
    x = args[0]
    if op in ("cast", "to", "clone"):
        return x
    if op in ("sum", "mean"):
        dims, keepdim = params
        axes = tuple(range(ir.rank(x))) if dims is None else dims
        out = ir.reduce_sum(x, axes) if op == "sum" else ir.mean(x, axes)
        if keepdim:
            out = _to_shape(out, shape)
        return out
    if op == "matmul":
        if ir.rank(x) > 2 or ir.rank(args[1]) > 2:
            raise NotAnArray("batched matmul")
        return ir.matmul(x, args[1])
    if op == "permute":
        perm = params[0]
        if perm == tuple(range(len(perm))):
            return x
        if perm == (1, 0):
            return ir.transpose(x)
        raise NotAnArray(f"permute{perm}")
    if op == "expand":
        return ir.broadcast_to(x, shape)
    if op == "reshape":
        return _to_shape(x, shape) if _unit_only(ir.shape_of(x), shape) else ir.reshape(x, shape)
    raise NotAnArray(op)


def _to_shape(x, shape: tuple):
    """``x`` reshaped to ``shape`` when that only drops or adds unit axes (a sum over them, new axes)."""
    old = ir.shape_of(x)
    if [d for d in old if d != 1] != [d for d in shape if d != 1]:
        raise NotAnArray(f"reshape {ir.format_shape(old)} -> {ir.format_shape(shape)}")
    if not any(d != 1 for d in shape) and not old:  # a scalar to (1, ..., 1)
        return ir.broadcast_to(x, shape) if shape else x
    units = tuple(i for i, d in enumerate(old) if d == 1)
    if units:
        x = ir.reduce_sum(x, units)  # a sum over unit axes drops them
    for i, d in enumerate(shape):
        if d == 1:
            x = ir.expand(x, i) if ir.rank(x) else ir.broadcast_to(x, (1,))
    return x


# ---------------------------------------------------------------- readable closed forms


def _masked(expr: sympy.Expr) -> tuple[sympy.Expr, dict]:
    """``expr`` with its array operations replaced by dummies (so scalar algebra cannot reach inside)."""
    back: dict = {}
    found: dict = {}

    def walk(node):
        if isinstance(node, ir.ArrayOp):
            if node not in found:
                found[node] = sympy.Dummy(f"a{len(found)}", real=True)
                back[found[node]] = node
            return found[node]
        if node.is_Atom or not node.args:
            return node
        args = [walk(a) if isinstance(a, sympy.Expr) else a for a in node.args]
        return node.func(*args)

    return walk(expr), back


def tidy(expr: sympy.Expr) -> sympy.Expr:
    """Common numeric factors pulled out of sums, scalars moved in front of ``@``: ``2*X.T @ (X @ w - y)``."""
    memo: dict = {}

    def walk(node):
        if node in memo:
            return memo[node]
        if node.is_Atom or isinstance(node, ir.ArraySymbol):
            out = node
        elif isinstance(node, ir.MatMul):
            out = ir.matmul(walk(node.args[0]), walk(node.args[1]))
        elif isinstance(node, ir.Transpose):
            out = ir.transpose(walk(node.args[0]))
        elif isinstance(node, ir.ReduceSum):
            out = ir.reduce_sum(walk(node.args[0]), tuple(int(a) for a in node.args[1]))
        elif isinstance(node, ir.ArrayOp):
            out = type(node)(*[walk(a) if i < node.nary else a for i, a in enumerate(node.args)])
        else:
            out = node.func(*[walk(a) if isinstance(a, sympy.Expr) else a for a in node.args])
            if isinstance(out, sympy.Add):
                masked, back = _masked(out)
                c, rest = sympy.factor_terms(masked).as_coeff_Mul()
                if c != 1 and isinstance(rest, sympy.Add):
                    # SymPy would distribute 2*(a - b) again; ``@`` and ``sum`` pull the number out
                    out = sympy.Mul(c, rest.xreplace(back), evaluate=False)
                else:
                    out = (c * rest).xreplace(back)
        memo[node] = out
        return out

    return walk(expr)


# ---------------------------------------------------------------- gradients, lowered


class ArrayGradients:
    """The closed-form gradients of one size pattern, and the ``jax.numpy`` function computing them.

    ``with_cotangent``: the gradients of ``sum(g * y)`` for an extra input
    ``g`` of y's shape (``y.backward(gradient=g)``); otherwise of ``sum(y)``.
    ``fn(*inputs[, g])`` takes the graph's inputs in key order.
    """

    def __init__(self, pattern: tuple, with_cotangent: bool):
        _cache.count("symbolic")
        inputs = [i for i, e in enumerate(pattern) if e[0] == "in"]
        self.names = {i: f"arg{i}" for i in inputs}  # not t<k>: the lowering names its temporaries so
        exprs = array_expressions(pattern, self.names)
        self.symbols = {i: exprs[i] for i in inputs}
        y = exprs[-1]
        args = [exprs[i] for i in inputs]
        if with_cotangent:
            shape = _ir_shape(pattern[-1][3])
            g = ir.ArraySymbol("g", shape) if shape else sympy.Symbol("g", real=True)
            y = g * y
            args.append(g)
        f = ir.reduce_sum(y) if ir.rank(y) else y
        self.wrt = [i for i in inputs if pattern[i][3]]
        grads = gradient(f, [exprs[i] for i in self.wrt])
        self.closed_forms = [tidy(gr) for gr in grads]
        outputs = [(c, ir.shape_of(exprs[i])) for c, i in zip(self.closed_forms, self.wrt)]
        self.source, self.fn = lower_arrays(outputs, args, name="tensor_gradients")
