"""Sparse Jacobians and Hessians, and Hessian-vector products, over scalar ``wrt`` names.

The closed form says which entries are zero: an entry that differentiation
(and simplification) left as the number 0 is structurally zero, whatever the
inputs. :func:`sparse` keeps only the others, in row-major order, so the
pattern comes from the formula and never from evaluating and testing values.
The pattern and the compiled evaluator are built once per program and kept
with it (``sd.clear_caches()`` forgets them).

Values come from one compiled call that lowers only the distinct nonzero
entries, grouped by template like ``d.array`` (:mod:`symdiff._vectorize`): the
Rosenbrock Hessian of 1000 names has 2998 stored entries of three shapes, so
the compiled graph has three small pieces and one gather. The dense kernel of
500,500 entries is never lowered (see ``_LazyKernel`` in :mod:`symdiff._compile`).

:func:`hvp` is the directional derivative of the gradient,
``(H v)_i = sum_j v_j * d(df/dx_i)/dx_j``, summed over the structural nonzeros
``j`` of row ``i`` only: never an ``n x n`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from ._compile import Program, _counting
from ._deep import call_deep
from ._differentiate import diff
from ._errors import InputError, ShapeError, SymdiffError
from ._lower import build_kernel
from ._placement import x64_scope
from ._vectorize import VectorPlan, plan_vectorized

if TYPE_CHECKING:
    from ._derive import Derivative

__all__ = ["sparse", "hvp", "FORMATS"]

FORMATS = ("bcoo", "scipy")


def _is_zero(expr: sympy.Expr) -> bool:
    """Structurally zero: the closed form is the number 0 (no value is ever tested)."""
    return expr.is_Number and not expr


@dataclass(frozen=True)
class _Structure:
    """Where the nonzeros are and which closed form each one is.

    ``coords`` is ``(nse, ndim)`` in row-major order; ``slot[k]`` indexes the
    distinct closed forms ``exprs`` for stored entry ``k``; ``output[k]`` is the
    output whose value guards entry ``k`` (NaN outside its real domain).
    """

    shape: tuple[int, ...]
    coords: np.ndarray
    slot: np.ndarray
    exprs: tuple[sympy.Expr, ...]
    output: np.ndarray


def _structure(shape: tuple[int, ...], coords: list, exprs: list, output: list) -> _Structure:
    """Sort stored entries row-major and give equal closed forms one slot."""
    if coords:
        coords_arr = np.asarray(coords, dtype=np.int64)
        order = np.lexsort(coords_arr.T[::-1])
    else:
        coords_arr, order = np.zeros((0, len(shape)), dtype=np.int64), np.zeros(0, dtype=np.int64)
    slots: dict[sympy.Expr, int] = {}
    slot = np.fromiter((slots.setdefault(exprs[k], len(slots)) for k in order), dtype=np.int32, count=len(order))
    out = np.asarray(output, dtype=np.int32)[order] if len(order) else np.zeros(0, dtype=np.int32)
    return _Structure(shape, coords_arr[order].astype(np.int32), slot, tuple(slots), out)


def _program_structure(p: Program) -> _Structure:
    """The Jacobian (order 1, vector-valued) or the Hessian (order 2) of a scalar-name program."""
    n, n_out = len(p.wrt), len(p.captured.outputs)
    coords, exprs, output = [], [], []
    for (o, combo), e in zip(p.keys, p.entries):
        if _is_zero(e):
            continue
        if p.order == 1:
            coords.append((o, combo[0]))
            exprs.append(e)
            output.append(o)
            continue
        i, j = combo
        prefix = (o,) if p.captured.vector else ()
        coords.append(prefix + (i, j))
        exprs.append(e)
        output.append(o)
        if i != j:  # the Hessian is symmetric: one closed form, two positions
            coords.append(prefix + (j, i))
            exprs.append(e)
            output.append(o)
    if p.order == 1:
        shape = (n_out, n)
    else:
        shape = ((n_out,) if p.captured.vector else ()) + (n, n)
    return _structure(shape, coords, exprs, output)


def _gradient_hessian_structure(p: Program) -> _Structure:
    """The Hessian of a scalar order-1 program: each gradient entry differentiated by the names it contains."""
    n = len(p.wrt)
    position = {s: i for i, s in enumerate(p.wrt)}
    coords, exprs = [], []
    for i in range(n):
        g = p.entries[p.index(0, (i,))]
        for s in g.free_symbols:
            j = position.get(s)
            if j is None:
                continue
            h = diff(g, s)
            if not _is_zero(h):
                coords.append((i, j))
                exprs.append(h)
    return _structure((n, n), coords, exprs, [0] * len(coords))


class _Evaluator:
    """The stored values of a :class:`_Structure`, from inputs stacked along the first axis."""

    def __init__(self, p: Program, structure: _Structure):
        self.structure = structure
        self.n_args = len(p.args)
        exprs = structure.exprs
        self.plan: VectorPlan | None = plan_vectorized(p.args, exprs) if exprs else None
        if self.plan is not None:
            self.gather = self.plan.order[structure.slot]
        else:  # few distinct entries: one kernel, entry by entry
            self.kernel = build_kernel(p.args, (), exprs, function_name="sparse") if exprs else None
            self.gather = structure.slot
        guarded = sorted(set(structure.output.tolist()) & p.kernel.guarded)
        self.guard = None
        if guarded:  # the dense result's domain rule: NaN wherever the expression's value is NaN
            self.value_kernel = p.value_kernel
            self.guard = np.isin(structure.output, guarded)

    def values(self, stacked: jax.Array) -> jax.Array:
        """``(nse,)`` stored values from ``stacked`` of shape ``(n_args,)``."""
        dtype = stacked.dtype
        if not self.structure.exprs:
            return jnp.zeros(0, dtype)
        columns = [stacked[i] for i in range(self.n_args)] if self.plan is None or self.guard is not None else None
        if self.plan is not None:
            pieces = [group.kernel.fn(*(stacked[idx] for idx in group.slots))[1][0] for group in self.plan.groups]
            if self.plan.constants.size:
                pieces.append(jnp.asarray(self.plan.constants, dtype=dtype))
            distinct = jnp.concatenate(pieces)
        else:
            distinct = jnp.stack(self.kernel.fn(*columns)[1])
        data = distinct[self.gather]
        if self.guard is not None:
            values, _ = self.value_kernel.fn(*columns)
            nan = jnp.isnan(jnp.stack(values))[self.structure.output]
            data = jnp.where(nan & self.guard, jnp.nan, data)
        return data


def _jit(fn: Callable) -> Callable:
    return jax.jit(_counting(fn))  # traces are counted like the program's own entry points


@dataclass
class _Sparse:
    """One program's sparse result: structure, evaluator, jitted entry points, host-side index arrays."""

    evaluator: _Evaluator
    packed: Callable  # stacked (n_args,) -> data
    unpacked: Callable  # *scalars -> data
    hvp_packed: Callable  # v, stacked -> H @ v (Hessians only)
    hvp_unpacked: Callable
    indptr: np.ndarray | None  # CSR row pointers (2-D only)
    device_indices: dict

    @property
    def structure(self) -> _Structure:
        return self.evaluator.structure

    def indices_on(self, device) -> jax.Array:
        """The BCOO index array, transferred once per device."""
        got = self.device_indices.get(device)
        if got is None:
            got = self.device_indices[device] = jax.device_put(self.structure.coords, device)
        return got


def _build_sparse(p: Program, structure: _Structure) -> _Sparse:
    ev = _Evaluator(p, structure)
    rows = structure.coords[:, -2] if structure.coords.ndim == 2 and structure.shape else None
    cols = structure.coords[:, -1] if rows is not None else None
    n_rows = structure.shape[-2] if len(structure.shape) >= 2 else 0

    def sparse_values(*xs):
        return ev.values(jnp.stack(xs))

    def hvp_stacked(v, stacked):
        products = ev.values(stacked) * v[cols]
        return jax.ops.segment_sum(products, rows, num_segments=n_rows, indices_are_sorted=True)

    def hvp(v, *xs):
        return hvp_stacked(v, jnp.stack(xs))

    indptr = None
    if len(structure.shape) == 2:
        indptr = np.zeros(structure.shape[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=structure.shape[0]), out=indptr[1:])
    return _Sparse(
        ev,
        _jit(ev.values),
        _jit(sparse_values),
        _jit(hvp_stacked),
        _jit(hvp),
        indptr,
        {},
    )


def _cached(p: Program, key: str, make: Callable[[], _Sparse]) -> _Sparse:
    got = p._jitted.get(key)  # the program's own per-program cache: forgotten with the program
    if got is None:
        got = p._jitted[key] = call_deep(make)
    return got


def _sparse_of(p: Program) -> _Sparse:
    if p.order > 2:
        raise SymdiffError(f"d.sparse gives Jacobians (order 1) and Hessians (order 2); this derivative has "
                           f"order {p.order}: use d.array for the tensor of order-{p.order} partials")
    if p.order == 1 and not p.captured.vector:
        raise SymdiffError("d.sparse of a first-order derivative of a scalar expression would be the gradient, "
                           "a dense vector: call d(...) for it, derive with order=2 for the sparse Hessian, or "
                           "use d.hvp(v, ...) for Hessian-vector products")
    return _cached(p, "sparse", lambda: _build_sparse(p, _program_structure(p)))


def _hessian_of(p: Program) -> _Sparse:
    """The sparse Hessian behind ``hvp``: the program's own (order 2) or its gradient's derivatives (order 1)."""
    if p.captured.vector:
        raise SymdiffError("d.hvp needs a scalar expression; this one is vector-valued "
                           f"({len(p.captured.outputs)} outputs): use d.vjp or d.sparse for its Jacobian")
    if p.order == 2:
        return _sparse_of(p)
    if p.order != 1:
        raise SymdiffError(f"d.hvp needs a derivative of order 2 (or 1, then of its gradient); got order {p.order}")
    return _cached(p, "hvp", lambda: _build_sparse(p, _gradient_hessian_structure(p)))


def _inputs(d: Derivative, args: tuple, kwargs: dict):
    """``(entry, inputs, dtype)``: the packed or per-input call, with scalar inputs checked."""
    raw = d._bound(args, kwargs)
    packed = d._packed(raw)
    if packed is not None:
        if packed.ndim != 1:
            _reject_shapes(d, [np.shape(r) for r in raw])
        dtype = d._dtype_for(raw)
        return True, [packed.astype(dtype, copy=False)], dtype
    arrays, shape, dtype = d._prepare(args, kwargs, raw)
    if shape != ():
        _reject_shapes(d, [np.shape(a) for a in arrays])
    return False, d._place(arrays, dtype), dtype


def _reject_shapes(d: Derivative, shapes: Sequence[tuple]) -> None:
    listed = ", ".join(f"{n}: {s}" for n, s in zip(d._program.arg_names, shapes) if s != ())
    raise ShapeError(f"d.sparse and d.hvp over scalar names take one value per input (one point); got arrays "
                     f"({listed}). Use d.array for a batch of points")


def sparse(d: Derivative, args: tuple, kwargs: dict, format: str = "bcoo"):
    """The Jacobian or Hessian of ``d`` at one point, with exactly its structural nonzeros.

    Args:
        d: an order-1 derivative of a vector-valued expression (the Jacobian,
            outputs x wrt) or an order-2 derivative (the Hessian, wrt x wrt;
            vector-valued: outputs x wrt x wrt, BCOO only).
        args, kwargs: the inputs, as for ``d(...)``: one value each.
        format: ``"bcoo"`` (``jax.experimental.sparse.BCOO``) or ``"scipy"``
            (``scipy.sparse.csr_array``, values on the host in their dtype).

    >>> import numpy as np, symdiff as sd
    >>> h = sd.derive("x0**2*x1 + x2**3", ["x0", "x1", "x2"], order=2)
    >>> H = h.sparse(1.0, 2.0, 3.0, format="scipy")
    >>> H.nnz, H.toarray().tolist()
    (4, [[4.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 18.0]])
    """
    if format not in FORMATS:
        raise SymdiffError(f"unknown sparse format {format!r}; use one of {', '.join(map(repr, FORMATS))}")
    p = d._program
    if not isinstance(p, Program):  # shapes=: array wrt (symdiff._sparse_array)
        from ._sparse_array import sparse_arrays

        return sparse_arrays(d, args, kwargs, format)
    s = _sparse_of(p)
    if format == "scipy" and len(s.structure.shape) != 2:
        raise SymdiffError(f"format='scipy' holds matrices; this result has shape {s.structure.shape}: "
                           "use format='bcoo'")
    packed, inputs, dtype = _inputs(d, args, kwargs)
    with x64_scope(dtype):
        data = (s.packed if packed else s.unpacked)(*inputs)
        if format == "bcoo":
            from jax.experimental import sparse as jsparse

            device = d._device if d._device is not None else next(iter(data.devices()))
            return jsparse.BCOO((data, s.indices_on(device)), shape=s.structure.shape,
                                indices_sorted=True, unique_indices=True)
    import scipy.sparse

    cols = s.structure.coords[:, 1].copy()  # a copy: the caller may modify the matrix's arrays
    return scipy.sparse.csr_array((np.asarray(data), cols, s.indptr.copy()), shape=s.structure.shape)


def hvp(d: Derivative, v, args: tuple, kwargs: dict) -> jax.Array:
    """The Hessian-vector product ``H @ v`` of a scalar expression, never forming ``H``.

    ``d`` has order 2, or order 1 (then the Hessian of the same expression).
    ``v`` is a vector of ``len(d.wrt)`` entries (for a single ``wrt``, also a
    scalar); the result has ``v``'s shape.

    >>> import symdiff as sd
    >>> g = sd.derive("x0**2*x1 + x2**3", ["x0", "x1", "x2"])
    >>> g.hvp([1.0, 0.0, 1.0], 1.0, 2.0, 3.0).tolist()
    [4.0, 2.0, 18.0]
    """
    p = d._program
    if not isinstance(p, Program):
        from ._sparse_array import hvp_arrays

        return hvp_arrays(d, v, args, kwargs)
    s = _hessian_of(p)
    n = len(p.wrt)
    v_arr = v if isinstance(v, jax.Array) else np.asarray(v)
    if v_arr.dtype.kind not in "biuf":
        raise InputError(f"v must be real numbers, got dtype {v_arr.dtype}")
    out_shape = v_arr.shape
    if v_arr.shape != (n,) and not (n == 1 and v_arr.shape == ()):
        names = ", ".join(w.name for w in p.wrt[:4]) + (", ..." if n > 4 else "")
        raise ShapeError(f"v must be a vector of {n} entries, one per wrt name ({names}); got shape {v_arr.shape}")
    packed, inputs, dtype = _inputs(d, args, kwargs)
    with x64_scope(dtype):
        v_in = v_arr.reshape(n).astype(dtype)
        if d._device is not None:
            v_in = jax.device_put(v_in, d._device)
        out = (s.hvp_packed if packed else s.hvp_unpacked)(v_in, *inputs)
    return out.reshape(out_shape)
