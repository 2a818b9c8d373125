"""Sparse Jacobians and Hessians, and Hessian-vector products, for array ``wrt`` (``shapes=``).

One closed form serves all three: the directional derivative ``D_v y`` of
``y`` (the expression for a Jacobian, its gradient for a Hessian) along a
symbolic direction ``v`` of the ``wrt``'s shape. For the vector Rosenbrock
function it reads ``pad(200*v[1:] - 400*x[:-1]*v[:-1], (1, 0)) + pad(...)``:
slices, pads and elementwise products, O(n) to evaluate, never a matrix.

- ``d.hvp(v, ...)`` evaluates that closed form (order 2, or order 1 of a
  scalar: ``y`` is the gradient).
- The sparsity pattern is read from the closed form's structure at the
  call's concrete sizes (once per shape, then cached): which entries of ``v``
  each entry of ``D_v y`` can depend on, propagated through the expression
  with index arrays (a slice reads positions, a pad writes them, an
  elementwise operation broadcasts, a sum gathers, a matrix product mixes).
  No value is evaluated to find it.
- The values of the stored entries come from one compiled call: ``D_v y``
  at a few 0/1 directions, one per group of columns that share no row (the
  Curtis-Powell-Reid compression; three for a tridiagonal Hessian), then one
  gather. Exact: each product is the closed form, not a difference quotient.

Work and memory are O(stored entries): at n = 10**6 the Rosenbrock Hessian
has 3n - 2 of them where ``jax.hessian`` would need 8 TB.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from . import _array_ir as ir
from ._array_diff import _tangent_scalar, _Unsupported, derivative
from ._array_index import Embed, Index, index_map
from ._array_ir import ArrayOp, ArraySymbol, Dim, shape_of
from ._array_lower import lower_arrays
from ._compile import _counting
from ._deep import call_deep
from ._errors import InputError, ShapeError, SymdiffError
from ._placement import x64_scope

__all__ = ["sparse_arrays", "hvp_arrays", "directional"]

MAX_STORED = 200_000_000  # structural nonzeros beyond this are a dense matrix: use d(...) instead
MAX_MODULAR_COLORS = 64  # wider rows: greedy coloring (fewer colors for irregular patterns)


def directional(y: sympy.Expr, x: ArraySymbol, v: ArraySymbol) -> sympy.Expr:
    """The closed form of ``D_v y = d/dt y(x + t*v)`` at ``t = 0`` (shape of ``y``; 0 if ``y`` ignores ``x``).

    >>> from symdiff._array_ir import Dim, reduce_sum
    >>> from symdiff._array_index import index
    >>> n = Dim("n")
    >>> x, v = ArraySymbol("x", (n,)), ArraySymbol("v", (n,))
    >>> print(directional(index(x, [slice(1, None)]) * index(x, [slice(None, -1)]), x, v))
    v[1:]*x[:-1] + v[:-1]*x[1:]
    """
    t = sympy.Dummy("t", real=True)
    moved = y.xreplace({x: x + t * v})
    try:
        tangent = _tangent_scalar(moved, t, {})
    except _Unsupported as exc:
        raise SymdiffError(f"no directional-derivative rule for {exc} in {sympy.sstr(y)[:120]}: d.sparse and d.hvp "
                           "need one; use d(...) for the dense result") from None
    return sympy.S.Zero if tangent is None else tangent.xreplace({t: sympy.S.Zero})


# ---- structure: which entries of v each entry of D_v y reads -------------------------------


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


class _Structure:
    """Dependency pairs ``(rows, cols)`` of every node on ``v`` at concrete sizes (flattened positions)."""

    def __init__(self, v: ArraySymbol, dims: dict):
        self.v, self.dims = v, dims
        self.memo: dict = {}
        self.supports: dict = {}

    def support(self, node):
        """Where ``node`` can be nonzero (None: everywhere); memoised (see :func:`_support_rule`)."""
        if node not in self.supports:
            self.supports[node] = _support_rule(self, node)
        return self.supports[node]

    def _masked(self, d, others, shape):
        """Dependencies ``d`` kept only at positions where every factor in ``others`` can be nonzero."""
        masks = [_spread(m, self.shape(f), shape) for f in others if (m := self.support(f)) is not None]
        if not masks:
            return d
        keep = np.logical_and.reduce(masks)[d[0]] if len(masks) > 1 else masks[0][d[0]]
        return d[0][keep], d[1][keep]

    def _matmul(self, node, operand, d):
        """``a @ b`` where only ``operand`` reads ``v``: an entry of ``a`` reaches its row of the result,
        an entry of ``b`` its column (every row), as ``numpy.matmul`` of vectors and matrices does."""
        a, b = node.args
        sa, sb = self.shape(a), self.shape(b)
        if isinstance(node, ir.Outer):  # outer(a, b) is a[:, None] @ b[None, :]
            sa, sb = sa + (1,), (1,) + sb
        p = sa[0] if len(sa) == 2 else 1  # result rows
        r = sb[-1] if len(sb) == 2 else 1  # result columns
        if operand is a:  # a[i, j] (or a[j]) -> result[i, k] for every k
            row = d[0] // sa[-1] if len(sa) == 2 else np.zeros_like(d[0])
            targets = row[:, None] * r + np.arange(r)[None, :]
        else:  # b[j, k] (or b[j]) -> result[i, k] for every i
            col = d[0] % r if len(sb) == 2 else np.zeros_like(d[0])
            targets = np.arange(p)[None, :] * r + col[:, None]
        if targets.size > MAX_STORED:
            raise SymdiffError(f"this derivative is dense ({targets.size} structural nonzeros): use d(...)")
        return targets.ravel(), np.repeat(d[1], targets.shape[1])

    def shape(self, node) -> tuple[int, ...]:
        return tuple(int(sympy.sympify(d).xreplace(self.dims)) for d in shape_of(node))

    def of(self, root) -> tuple[np.ndarray, np.ndarray] | None:
        """Iterative post-order over the nodes that contain ``v``."""
        memo, v = self.memo, self.v
        stack = [root]
        while stack:
            node = stack[-1]
            if node in memo:
                stack.pop()
                continue
            if v not in node.free_symbols:
                memo[node] = None
                stack.pop()
                continue
            pending = [a for a in _operands(node) if a not in memo]
            if pending and node != v:
                stack.extend(pending)
                continue
            stack.pop()
            memo[node] = self._rule(node)
        return memo[root]

    def _rule(self, node):
        if node == self.v:
            size = _size(self.shape(node))
            return np.arange(size), np.arange(size)
        shape = self.shape(node)
        parts = [(a, self.memo[a]) for a in _operands(node) if self.memo.get(a) is not None]
        if isinstance(node, sympy.Mul):  # a factor's dependencies count only where the other factors can be nonzero
            return _concat([self._masked(_broadcast(d, self.shape(a), shape), [f for f in node.args if f is not a],
                                         shape) for a, d in parts])
        if not isinstance(node, ArrayOp):  # elementwise: each operand broadcast to the node's shape
            return _concat([_broadcast(d, self.shape(a), shape) for a, d in parts])
        a = node.args[0]
        d = parts[0][1] if len(parts) == 1 and parts[0][0] is a else None  # the one operand reading v
        if d is not None and isinstance(node, Index):
            m = index_map(self.shape(a), node.args[1].name)
            inverse = np.full(_size(self.shape(a)), -1, dtype=np.int64)
            inverse[m] = np.arange(len(m))
            return _keep(inverse[d[0]], d[1])
        if d is not None and isinstance(node, Embed):  # a has the indexed shape: its entries go to m
            m = index_map(shape, node.args[1].name)
            return m[d[0]], d[1]
        if d is not None and isinstance(node, (ir.Expand, ir.Reshape)):  # the same entries in the same order
            return d
        if d is not None and isinstance(node, ir.BroadcastTo):
            return _broadcast(d, self.shape(a), shape)
        if d is not None and isinstance(node, ir.Transpose):
            sa = self.shape(a)
            perm = np.arange(_size(sa)).reshape(sa).T.ravel()  # output position j reads perm[j]
            inverse = np.empty_like(perm)
            inverse[perm] = np.arange(len(perm))
            return inverse[d[0]], d[1]
        if d is not None and isinstance(node, ir.ReduceSum):
            sa = self.shape(a)
            axes = {int(ax) for ax in node.args[1]}
            kept = tuple(1 if i in axes else s for i, s in enumerate(sa))
            target = np.broadcast_to(np.arange(_size(kept)).reshape(kept), sa).ravel()
            return target[d[0]], d[1]
        if d is not None and isinstance(node, ir.Diag):
            (n,) = self.shape(a)
            return d[0] * (n + 1), d[1]
        if d is not None and isinstance(node, ir.DiagPart):
            n = self.shape(a)[0]
            return _keep(np.where(d[0] % (n + 1) == 0, d[0] // (n + 1), -1), d[1])
        if isinstance(node, ir.MatMul) and len(parts) == 1 and _is_pointwise(node, parts[0][0]):
            return parts[0][1]
        if isinstance(node, (ir.MatMul, ir.Outer)) and len(parts) == 1:  # one operand reads v: rows or columns mix
            return self._matmul(node, *parts[0])
        if not parts:
            return None
        # anything else (an inverse, a norm, a softmax...): every entry may read every column it sees
        cols = np.unique(np.concatenate([p[1] for _, p in parts]))
        return _dense(_size(shape), cols)


def _support_rule(structure: _Structure, node):
    """Where ``node`` can be nonzero: a boolean mask over its flat positions, or None for everywhere."""
    if node.is_number:
        return None if node != 0 else np.zeros(1, dtype=bool)
    shape = structure.shape(node)
    if isinstance(node, Embed):
        mask = np.zeros(_size(shape), dtype=bool)
        inner = structure.support(node.args[0])
        m = index_map(shape, node.args[1].name)
        mask[m if inner is None else m[_spread(inner, structure.shape(node.args[0]), structure.shape(node.args[0]))]] \
            = True
        return mask
    if isinstance(node, Index):
        inner = structure.support(node.args[0])
        return None if inner is None else _spread(inner, structure.shape(node.args[0]),
                                                  structure.shape(node.args[0]))[index_map(
                                                      structure.shape(node.args[0]), node.args[1].name)]
    if isinstance(node, sympy.Pow) and node.exp.is_number and node.exp.is_positive:
        inner = structure.support(node.base)
        return None if inner is None else _spread(inner, structure.shape(node.base), shape)
    if isinstance(node, (sympy.Mul, sympy.Add)):
        masks = [(structure.support(a), structure.shape(a)) for a in node.args]
        if isinstance(node, sympy.Add) and any(m is None for m, _ in masks):
            return None
        masks = [_spread(m, sa, shape) for m, sa in masks if m is not None]
        if not masks:
            return None
        return np.logical_and.reduce(masks) if isinstance(node, sympy.Mul) else np.logical_or.reduce(masks)
    return None


def _spread(mask: np.ndarray, in_shape: tuple, out_shape: tuple) -> np.ndarray:
    """A support mask broadcast from ``in_shape`` to ``out_shape`` (flat)."""
    if mask.size == 1 and _size(out_shape) != 1:
        return np.broadcast_to(mask.reshape(()), out_shape).ravel()
    if tuple(in_shape) == tuple(out_shape):
        return mask
    return np.broadcast_to(mask.reshape(in_shape), out_shape).ravel()


def _is_pointwise(node, operand) -> bool:
    """``eye(n) @ w`` or ``diag(p) @ w`` with ``p`` free of ``v``: each entry reads its own position."""
    other = node.args[0] if node.args[1] is operand else node.args[1]
    return other is not operand and (isinstance(other, ir.Identity) or
                                     (isinstance(other, ir.Diag) and node.args[1] is operand))


def _operands(node) -> list:
    """The expression operands of ``node`` (a Piecewise's values and conditions' sides too)."""
    out = []
    for a in node.args:
        if isinstance(a, sympy.Expr):
            out.append(a)
        elif isinstance(a, sympy.Basic) and not a.is_Atom:
            out.extend(_operands(a))
    return out


def _keep(rows: np.ndarray, cols: np.ndarray):
    ok = rows >= 0
    return rows[ok], cols[ok]


def _concat(parts):
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _dense(size: int, cols: np.ndarray):
    if size * len(cols) > MAX_STORED:
        raise SymdiffError(f"this derivative is dense ({size} x {len(cols)} structural nonzeros): "
                           "d.sparse would not save anything; use d(...)")
    return np.repeat(np.arange(size), len(cols)), np.tile(cols, size)


def _broadcast(d, in_shape: tuple, out_shape: tuple):
    """Dependencies of ``a`` broadcast from ``in_shape`` to ``out_shape`` (each output position reads one input)."""
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if in_shape == out_shape:
        return d
    reads = np.broadcast_to(np.arange(_size(in_shape)).reshape(in_shape), out_shape).ravel()
    order = np.argsort(reads, kind="stable")
    starts = np.searchsorted(reads[order], d[0], "left")
    counts = np.searchsorted(reads[order], d[0], "right") - starts
    total = int(counts.sum())
    if total > MAX_STORED:
        raise SymdiffError(f"this derivative is dense ({total} structural nonzeros): use d(...)")
    offsets = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
    return order[offsets], np.repeat(d[1], counts)


def _unique_pairs(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int):
    """Distinct ``(row, col)`` pairs in row-major order.

    Banded patterns (few distinct ``col - row`` offsets: every chained
    problem) are deduplicated with a boolean table of rows x offsets, in O(n);
    others by sorting.
    """
    if len(rows) == 0:
        return rows, cols
    offsets = cols - rows
    lo, hi = int(offsets.min()), int(offsets.max())
    if hi - lo < 4096:
        present = np.zeros(hi - lo + 1, dtype=bool)
        present[offsets - lo] = True
        distinct = np.flatnonzero(present)
        if len(distinct) * n_rows <= 4 * len(rows) + 10**7:
            slot = np.zeros(hi - lo + 1, dtype=np.int64)
            slot[distinct] = np.arange(len(distinct))
            table = np.zeros((n_rows, len(distinct)), dtype=bool)
            table[rows, slot[offsets - lo]] = True
            r, k = np.nonzero(table)  # row-major; offsets ascending within a row, so columns are too
            return r, r + distinct[k] + lo
    keys = rows * np.int64(n_cols) + cols
    keys.sort()
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys // n_cols, keys % n_cols


# ---- coloring: columns that share no row are evaluated together -----------------------------


def _colors(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """A color per column such that no two columns of one color share a row."""
    if len(rows) == 0:
        return np.zeros(n_cols, dtype=np.int32)
    lo = np.full(n_rows, n_cols, dtype=np.int64)
    hi = np.full(n_rows, -1, dtype=np.int64)
    np.minimum.at(lo, rows, cols)
    np.maximum.at(hi, rows, cols)
    width = int((hi - lo).max()) + 1  # columns farther apart than this never share a row
    if width <= MAX_MODULAR_COLORS or len(rows) > 2_000_000:
        return (np.arange(n_cols) % width).astype(np.int32)
    return _greedy_colors(rows, cols, n_cols)


def _greedy_colors(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
    by_col: dict[int, list[int]] = {}
    by_row: dict[int, list[int]] = {}
    for r, c in zip(rows.tolist(), cols.tolist()):
        by_col.setdefault(c, []).append(r)
        by_row.setdefault(r, []).append(c)
    color = np.zeros(n_cols, dtype=np.int32)
    done = np.zeros(n_cols, dtype=bool)
    for c in range(n_cols):
        taken = {int(color[o]) for r in by_col.get(c, ()) for o in by_row[r] if done[o]}
        k = 0
        while k in taken:
            k += 1
        color[c], done[c] = k, True
    return color


# ---- per program: the directional closed form, lowered once; per shape: pattern and gathers --------


@dataclass
class _Pattern:
    shape: tuple[int, int]
    indices: np.ndarray  # (nse, 2) row-major
    indptr: np.ndarray
    n_colors: int
    host: tuple  # (colors per column, flat gather position per stored entry), numpy
    device_args: dict  # device -> host arrays on that device; ("indices", device) -> BCOO indices
    slices: tuple | None = None  # per color (k, first row, end row) when values need no gather (see _Plan.values)
    order: np.ndarray | None = None  # with slices: row-major position of each value, color by color


def _color_slices(rows: np.ndarray, color_of_entry: np.ndarray, n_colors: int):
    """``(slices, order)`` when the entries of each color sit in consecutive rows (every banded pattern), else None.

    The values of color ``k`` are then ``product_k[first:end]`` as they are:
    the compiled call slices and concatenates instead of gathering.
    """
    order = np.lexsort((rows, color_of_entry))
    counts = np.bincount(color_of_entry, minlength=n_colors)
    slices, start = [], 0
    for k, count in enumerate(counts.tolist()):
        if count:
            first, last = int(rows[order[start]]), int(rows[order[start + count - 1]])
            if last - first + 1 != count:  # one entry per row and color (the coloring): consecutive iff this
                return None
            slices.append((k, first, last + 1))
        start += count
    return tuple(slices), order


class _Plan:
    """The directional closed form of one program, its lowered function, and patterns per shape."""

    def __init__(self, p, kind: str):
        if len(p.wrt) != 1 or not isinstance(p.wrt[0], ArraySymbol):
            raise SymdiffError("d.sparse and d.hvp with shapes= need one array wrt (several, or a scalar wrt: "
                               f"got {', '.join(w.name for w in p.wrt)}); stack the variables into one vector")
        x = self.x = p.wrt[0]
        self.args = p.args
        self.v = ArraySymbol("_v", x.shape)
        self.y = derivative(p.expr, x) if kind == "hessian" else p.expr  # gradient, or the vector expression
        self.out_shape = shape_of(self.y)
        self.closed_form = directional(self.y, x, self.v)
        self.source, fn = lower_arrays([(self.closed_form, self.out_shape)], list(self.args) + [self.v],
                                       name="directional")
        position = self.args.index(x)
        self.x_position = position

        def product(v, *xs):
            return fn(*xs, v)[0]

        self._product = product
        self.product = jax.jit(_counting(product))
        self.values_by_colors: dict[int, Callable] = {}
        self.patterns: dict = {}

    def values(self, pattern: _Pattern) -> Callable:
        """``(colors, flat, *xs) -> stored values``: the product at ``n_colors`` 0/1 directions, then a gather."""
        key = (pattern.n_colors, pattern.slices)
        fn = self.values_by_colors.get(key)
        if fn is None:
            fn = self.values_by_colors[key] = jax.jit(_counting(_values_function(self._product, self.x_position,
                                                                                   pattern)))
        return fn

    def pattern(self, dims: dict) -> _Pattern:
        key = tuple(sorted((d.name, s) for d, s in dims.items()))
        got = self.patterns.get(key)
        if got is None:
            got = self.patterns[key] = call_deep(self._pattern, dims)
        return got

    def _pattern(self, dims: dict) -> _Pattern:
        structure = _Structure(self.v, dims)
        n_rows = _size(structure.shape(self.y))
        n_cols = _size(structure.shape(self.x))
        d = structure.of(self.closed_form) if self.closed_form != 0 else None
        if d is None:
            rows, cols = np.zeros(0, np.int64), np.zeros(0, np.int64)
        else:
            rows, cols = _unique_pairs(*_broadcast(d, structure.shape(self.closed_form), structure.shape(self.y)),
                                       n_rows, n_cols)
        colors = _colors(rows, cols, n_rows, n_cols)
        n_colors = int(colors.max()) + 1 if n_cols else 1
        flat = colors[cols].astype(np.int64) * n_rows + rows
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        index_dtype = np.int32 if max(n_rows, n_cols, n_colors * n_rows) < 2**31 else np.int64
        sliced = _color_slices(rows, colors[cols], n_colors) if len(rows) else None
        return _Pattern((n_rows, n_cols), np.stack([rows, cols], axis=1).astype(index_dtype),
                        indptr.astype(index_dtype), n_colors, (colors.astype(index_dtype), flat.astype(index_dtype)),
                        {}, *(sliced or (None, None)))


def _values_function(product: Callable, position: int, pattern: _Pattern) -> Callable:
    k_colors = pattern.n_colors

    def products(colors, xs):
        x = xs[position]
        return [product((colors == k).astype(x.dtype).reshape(x.shape), *xs).reshape(-1) for k in range(k_colors)]

    def gathered(colors, flat, *xs):
        return jnp.concatenate(products(colors, xs))[flat]

    def sliced(colors, flat, *xs):
        done = products(colors, xs)
        return jnp.concatenate([done[k][first:end] for k, first, end in pattern.slices])

    return gathered if pattern.slices is None else sliced


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # program -> {kind: _Plan}
_PLANS_LOCK = threading.Lock()


def _plan(p, kind: str) -> _Plan:
    with _PLANS_LOCK:
        plans = _PLANS.setdefault(p, {})
    plan = plans.get(kind)
    if plan is None:
        plan = plans[kind] = call_deep(_Plan, p, kind)
    return plan


def _dims(p, arrays) -> dict:
    dims = {}
    for sym, a in zip(p.args, arrays):
        if isinstance(sym, ArraySymbol):
            for d, s in zip(sym.shape, np.shape(a)):
                if isinstance(d, Dim):
                    dims[d] = int(s)
    return dims


def _kind(p) -> str:
    if p.order == 2 and ir.rank(p.expr) == 0:
        return "hessian"
    if p.order == 1 and ir.rank(p.expr) >= 1:
        return "jacobian"
    if p.order == 2:
        raise SymdiffError(f"d.sparse of the Hessian needs a scalar expression; this one has shape "
                           f"{ir.format_shape(shape_of(p.expr))}")
    if p.order == 1:
        raise SymdiffError("d.sparse of a first-order derivative of a scalar expression would be the gradient, "
                           "a dense array: call d(...), derive with order=2 for the sparse Hessian, or use d.hvp")
    raise SymdiffError(f"d.sparse gives Jacobians (order 1) and Hessians (order 2); this derivative has order {p.order}")


def _placed(d, args, kwargs):
    arrays, dtype = d._validated(args, kwargs)
    with x64_scope(dtype):
        placed = [jnp.asarray(a, dtype=dtype) for a in arrays]
        if d._device is not None:
            placed = jax.device_put(placed, d._device)
    return arrays, placed, dtype


def sparse_arrays(d, args: tuple, kwargs: dict, format: str):
    """``d.sparse`` for an array program (see :func:`symdiff._sparse.sparse`)."""
    p = d._program
    plan = _plan(p, _kind(p))
    arrays, placed, dtype = _placed(d, args, kwargs)
    pattern = plan.pattern(_dims(p, arrays))
    device = d._device if d._device is not None else next(iter(placed[0].devices())) if placed else None
    with x64_scope(dtype):
        on_device = pattern.device_args.get(device)
        if on_device is None:
            on_device = pattern.device_args[device] = tuple(jax.device_put(a, device) for a in pattern.host)
        data = plan.values(pattern)(*on_device, *placed)
        if format == "bcoo":
            from jax.experimental import sparse as jsparse

            indices = pattern.device_args.get(("indices", device))
            if indices is None:
                ordered = pattern.indices if pattern.order is None else pattern.indices[pattern.order]
                indices = pattern.device_args[("indices", device)] = jax.device_put(ordered, device)
            return jsparse.BCOO((data, indices), shape=pattern.shape, indices_sorted=pattern.order is None,
                                unique_indices=True)
    import scipy.sparse

    values = np.asarray(data)
    if pattern.order is not None:  # color by color -> row-major
        values = np.empty_like(values)
        values[pattern.order] = np.asarray(data)
    return scipy.sparse.csr_array((values, pattern.indices[:, 1].copy(), pattern.indptr.copy()), shape=pattern.shape)


def hvp_arrays(d, v, args: tuple, kwargs: dict) -> jax.Array:
    """``d.hvp`` for an array program: the directional derivative of the gradient along ``v``."""
    p = d._program
    if ir.rank(p.expr) != 0:
        raise SymdiffError(f"d.hvp needs a scalar expression; this one has shape {ir.format_shape(shape_of(p.expr))}")
    if p.order not in (1, 2):
        raise SymdiffError(f"d.hvp needs a derivative of order 2 (or 1, then of its gradient); got order {p.order}")
    plan = _plan(p, "hessian")
    arrays, placed, dtype = _placed(d, args, kwargs)
    x_shape = np.shape(arrays[plan.x_position])
    v_arr = v if isinstance(v, jax.Array) else np.asarray(v)
    if v_arr.dtype.kind not in "biuf":
        raise InputError(f"v must be real numbers, got dtype {v_arr.dtype}")
    if tuple(v_arr.shape) != tuple(x_shape):
        raise ShapeError(f"v must have the shape of {plan.x.name}, {tuple(x_shape)}; got {tuple(v_arr.shape)}")
    with x64_scope(dtype):
        v_in = jnp.asarray(v_arr, dtype=dtype)
        if d._device is not None:
            v_in = jax.device_put(v_in, d._device)
        return plan.product(v_in, *placed)


