"""JAX code with array inputs (``shapes=``): a jaxpr -> the array IR of ``_array_ir``.

The function is traced with abstract float64 arrays whose sizes are JAX
symbolic dimensions named as in ``shapes=`` (``jax.export.symbolic_shape``),
so the closed form holds for every size. Elementwise primitives, calls and
refusals are read as for scalars (:mod:`symdiff._capture_jax`); the array
primitives map onto the IR:

- ``dot_general`` (``@``, ``jnp.dot``, ``jnp.einsum`` of two operands) with at
  most rank-2 operands and no batch dimensions -> ``matmul`` / ``outer`` /
  ``sum(A * B)``, transposing operands as the contraction needs;
- ``transpose`` -> ``.T``; ``reduce_sum`` -> ``sum(X, axis)``;
  ``broadcast_in_dim`` / ``reshape`` / ``squeeze`` / ``expand_dims`` that only
  add or drop unit axes or broadcast -> ``expand`` / ``sum`` over a unit axis /
  ``broadcast_to``; ``dim_as_value`` (``jnp.mean``'s count) -> the size;
- ``slice``, a ``gather`` of a contiguous piece of a vector and a ``dynamic_slice``
  at a constant index (``x[1:]``, ``x[:-1]``, ``x[0]``) -> the IR's indexing;
- ``jnp.linalg.inv``, ``det``, ``slogdet``, ``jnp.trace``, ``jnp.diag`` and
  ``jnp.diagonal`` calls (recognised by name and by comparing their body with
  JAX's own) -> ``inv(A)``, ``det(A)``, ``(sign(det(A)), logdet(A))``,
  ``trace(A)``, ``diag(...)``.

Constant arrays from the enclosing scope have no place in the IR unless all
their entries are equal (then ``broadcast_to(c, shape)``): pass them as inputs.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from . import _array_ir as ir
from ._capture_jax import _F64, _Reader, _reference_body, _refuse, _Unsupported, call_with_symbols
from ._errors import CaptureError
from ._placement import x64_scope

__all__ = ["ARRAY_PRIMITIVES", "LINALG", "jax_array_expression", "with_user_check"]


def _is_ir(v) -> bool:
    return isinstance(v, sympy.Basic)


def _dims(shape, dims: dict) -> tuple:
    """A jaxpr shape (ints and JAX symbolic dimensions) -> IR shape (ints and ``Dim``)."""
    out = []
    for d in shape:
        if isinstance(d, (int, np.integer)):
            out.append(int(d))
        elif str(d) in dims:
            out.append(dims[str(d)])
        else:
            raise _Unsupported(f"a size computed from the declared ones ({d})")
    return tuple(out)


def _dot_general(lhs, rhs, dimension_numbers, **_):
    (lc, rc), (lb, rb) = dimension_numbers
    if lb or rb:
        raise _Unsupported("a batched contraction (dot_general with batch dimensions)")
    ra, rb_ = ir.rank(lhs), ir.rank(rhs)
    if ra > 2 or rb_ > 2:
        raise _Unsupported("a contraction of arrays of rank above 2")
    if not lc:
        if ra == 0 or rb_ == 0:
            return lhs * rhs
        if ra == 1 and rb_ == 1:
            return ir.outer(lhs, rhs)
        raise _Unsupported("an outer product of matrices")
    if len(lc) == 2:  # both axes of two matrices: sum(A * B) or sum(A * B.T)
        return ir.reduce_sum(lhs * (rhs if tuple(lc) == tuple(rc) else ir.transpose(rhs)))
    a = ir.transpose(lhs) if ra == 2 and lc[0] == 0 else lhs  # contracted axis last
    b = ir.transpose(rhs) if rb_ == 2 and rc[0] == 1 else rhs  # contracted axis first
    return ir.matmul(a, b)


def _transpose(x, permutation, **_):
    if tuple(permutation) == tuple(range(len(permutation))):
        return x
    if tuple(permutation) == (1, 0):
        return ir.transpose(x)
    raise _Unsupported(f"a transpose of rank {len(permutation)}")


def _drop_axes(x, axes):
    """Squeeze unit axes: a sum over an axis of size 1."""
    return ir.reduce_sum(x, tuple(axes)) if axes else x


class _ArrayReader(_Reader):
    """Reads a jaxpr with array inputs into the array IR."""

    structural: dict = {}  # the object-array bookkeeping of scalar capture does not apply here
    reads_stop_gradient = False  # no placeholders in the array IR: refused

    def __init__(self, fn_name: str, dims: dict):
        super().__init__(fn_name)
        self.dims = dims

    def constant(self, value):
        arr = np.asarray(value)
        if arr.ndim == 0 or arr.dtype.kind in "iub":  # integer arrays are indices: kept as they are
            return arr
        flat = arr.reshape(-1)
        if flat.size and np.all(flat == flat[0]):
            return ir.broadcast_to(sympy.Float(float(flat[0])), arr.shape)
        raise CaptureError(
            f"{self.fn_name} uses a constant array of shape {arr.shape} from the enclosing scope; with shapes=, "
            "give it as an input (a parameter with its shape in shapes=) instead")

    def equation(self, eqn, ins: list, outer: str) -> list:
        prim = eqn.primitive.name
        where = outer
        try:
            if prim == "dim_as_value":
                return [_dims((eqn.params["dim"],), self.dims)[0]]
            if prim in _CONDITIONS and any(_is_ir(v) and ir.rank(v) > 0 for v in ins if not isinstance(v, np.ndarray)):
                raise _Unsupported("jnp.where / a comparison on arrays (the array IR has no elementwise "
                                   "conditions; relu, abs, max and min work)")
            rule = ARRAY_PRIMITIVES.get(prim)
            if rule is not None and (any(_is_ir(v) for v in ins) or not _concrete(eqn)):
                return [rule(self, eqn, ins)]
        except _Unsupported as exc:
            from ._capture_jax import _location

            raise _refuse(prim, str(exc), _location(eqn) or where, self.fn_name) from None
        return super().equation(eqn, ins, outer)

    def fold(self, eqn, ins: list, where: str) -> list:
        if not _concrete(eqn):
            raise _refuse(eqn.primitive.name, "constants of symbolic size", where, self.fn_name)
        return super().fold(eqn, ins, where)

    def call(self, eqn, prim: str, ins: list, where: str) -> list:
        from ._capture_jax import _body, _call_name

        body, _ = _body(eqn)
        name = _call_name(eqn, body)
        known = LINALG.get((prim, name))
        if known is not None and len(ins) == 1 and _is_ir(ins[0]):
            reference, build = known
            if _reference_body(eqn, prim, name, reference) == str(body):
                return build(ins[0])
        return super().call(eqn, prim, ins, where)


_CONDITIONS = {"select_n", "gt", "ge", "lt", "le", "eq", "ne", "and", "or", "not", "cond"}


def _concrete(eqn) -> bool:
    return all(all(isinstance(d, (int, np.integer)) for d in v.aval.shape) for v in eqn.outvars)


def _broadcast_in_dim(reader, eqn, ins):
    (x,) = ins[:1]
    shape = _dims(eqn.params["shape"], reader.dims)
    dims = eqn.params["broadcast_dimensions"]
    x = sympy.Float(float(x)) if isinstance(x, np.ndarray) and x.ndim == 0 else x
    if isinstance(x, np.ndarray):
        x = reader.constant(x)
    if ir.rank(x) == 0:
        return ir.broadcast_to(x, shape)
    for axis in range(len(shape)):  # new axes, in the result's order
        if axis not in dims:
            x = ir.expand(x, axis)
    return ir.broadcast_to(x, shape)


def _reshape(reader, eqn, ins):
    (x,) = ins
    old = ir.shape_of(x)
    new = _dims(eqn.params["new_sizes"], reader.dims)
    if [d for d in old if d != 1] != [d for d in new if d != 1]:
        raise _Unsupported(f"a reshape from {ir.format_shape(old)} to {ir.format_shape(new)}")
    x = _drop_axes(x, [i for i, d in enumerate(old) if d == 1])
    for axis, d in enumerate(new):
        if d == 1:
            x = ir.expand(x, axis)
    return x


def _reduce_sum(reader, eqn, ins):
    return ir.reduce_sum(ins[0], tuple(eqn.params["axes"]))


def _stop(limit, size):
    """A slice's stop as NumPy writes it: None at the end, negative from a symbolic end."""
    gap = size - limit
    if isinstance(gap, (int, np.integer)):
        return None if gap == 0 else (int(limit) if isinstance(size, (int, np.integer)) else -int(gap))
    if isinstance(limit, (int, np.integer)):  # counted from the start of a symbolic axis
        return int(limit)
    raise _Unsupported(f"a slice ending at {limit} of an axis of size {size}")


def _index(x, starts, limits, sizes, steps=None):
    from ._array_index import index

    steps = steps or (1,) * len(starts)
    items = [slice(int(a), _stop(b, n), int(k)) for a, b, n, k in zip(starts, limits, sizes, steps)]
    return index(x, items)


def _slice(reader, eqn, ins):
    sizes = eqn.invars[0].aval.shape
    return _index(ins[0], eqn.params["start_indices"], eqn.params["limit_indices"], sizes, eqn.params["strides"])


def _integer(value) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        return int(value)
    if isinstance(value, sympy.Integer):
        return int(value)
    raise _Unsupported("an index that depends on the inputs")


def _dynamic_slice(reader, eqn, ins):
    """``x[i]`` with a constant ``i`` (JAX writes it as a dynamic slice of one entry when sizes are symbolic)."""
    from ._array_index import index

    items = []
    jax_sizes = eqn.invars[0].aval.shape
    for start, length, size, jax_size in zip(ins[1:], eqn.params["slice_sizes"], ir.shape_of(ins[0]), jax_sizes):
        if isinstance(start, sympy.Expr) and not start.is_Integer:  # n - 1: counted from the end
            offset = sympy.expand(start - size)
            if not offset.is_Integer or not isinstance(length, (int, np.integer)):
                raise _Unsupported("an index that depends on the inputs")
            start = int(offset)
            items.append(slice(start, None if start + length == 0 else start + length))
        else:
            start = _integer(start)
            items.append(slice(start, _stop(start + length, jax_size)))
    return index(ins[0], items)


def _gather(reader, eqn, ins):
    """A contiguous slice of a vector (``x[1:]``, ``x[:-1]`` with a symbolic size)."""
    x, indices = ins
    numbers = eqn.params["dimension_numbers"]
    if (ir.rank(x) != 1 or not isinstance(indices, np.ndarray) or indices.shape != (1,)
            or tuple(numbers.offset_dims) != (0,) or tuple(numbers.collapsed_slice_dims)
            or tuple(numbers.start_index_map) != (0,) or tuple(numbers.operand_batching_dims)):
        raise _Unsupported("a gather other than a contiguous slice of a vector")
    start, size = int(indices[0]), eqn.params["slice_sizes"][0]
    return _index(x, [start], [start + size], eqn.invars[0].aval.shape)


def _squeeze(reader, eqn, ins):
    from ._array_index import Index, index, spec_items

    x, dims = ins[0], tuple(eqn.params["dimensions"])
    if isinstance(x, Index) and ir.rank(x.args[0]) == 1 and dims == (0,):
        (item,) = spec_items(x.args[1].name)
        size = ir.shape_of(x.args[0])[0]
        if isinstance(item, slice) and item.step in (None, 1) and item.start is not None and (
                item.stop == item.start + 1 or (item.stop is None and (item.start == -1 or item.start == size - 1))):
            return index(x.args[0], [item.start])  # x[i:i+1] squeezed is x[i]
    return _drop_axes(x, dims)


# Array primitives -> the IR (elementwise ones are read by the scalar table).
ARRAY_PRIMITIVES: dict[str, Callable] = {
    "dot_general": lambda reader, eqn, ins: _dot_general(*ins, **eqn.params),
    "transpose": lambda reader, eqn, ins: _transpose(*ins, **eqn.params),
    "reduce_sum": _reduce_sum,
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "squeeze": _squeeze,
    "slice": _slice,
    "dynamic_slice": _dynamic_slice,
    "gather": _gather,
    "expand_dims": lambda reader, eqn, ins: _reshape(reader, eqn, ins),
}

# Linear-algebra calls recognised whole: (primitive, name) -> (JAX's function, IR builder of its outputs).
LINALG: dict[tuple[str, str], tuple[Callable, Callable]] = {
    ("jit", "inv"): (jnp.linalg.inv, lambda a: [ir.inv(a)]),
    ("jit", "det"): (jnp.linalg.det, lambda a: [ir.det(a)]),
    ("jit", "slogdet"): (jnp.linalg.slogdet, lambda a: [sympy.sign(ir.det(a)), ir.logdet(a)]),
    ("jit", "trace"): (jnp.trace, lambda a: [ir.trace(a)]),
    ("jit", "diagonal"): (jnp.diagonal, lambda a: [ir.diag(a)]),
    ("jit", "_diag"): (jnp.diag, lambda a: [ir.diag(a)]),
}


def _abstract_inputs(names: list[str], declared: dict) -> tuple[list, dict]:
    """ShapeDtypeStructs with JAX symbolic dimensions, and JAX dimension name -> IR ``Dim``."""
    dim_names = sorted({d.name for shape in declared.values() for d in shape if isinstance(d, ir.Dim)})
    symbolic = dict(zip(dim_names, jax.export.symbolic_shape(",".join(dim_names)))) if dim_names else {}
    structs = []
    for name in names:
        shape = tuple(symbolic[d.name] if isinstance(d, ir.Dim) else d for d in declared.get(name, ()))
        structs.append(jax.ShapeDtypeStruct(shape, _F64))
    dims = {name: ir.Dim(name) for name in dim_names}
    return structs, dims


def jax_array_expression(fn, shapes):
    """The array IR expression of JAX code ``fn`` with array inputs; ``fn`` itself if it is not JAX code.

    The routing rule is the scalar one: ``fn`` is first called with symdiff's
    symbolic arrays; if that raises or runs a JAX operation, it is read from its jaxpr.
    """
    import inspect

    from ._array_derive import _symbols_for, parse_shapes
    from ._array_math import ArrayValue

    declared = parse_shapes(shapes or {})
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        return fn  # the array front end reports it
    symbols = _symbols_for(declared)
    fn_name = f"function {getattr(fn, '__name__', type(fn).__name__)!r}"
    try:
        args = [ArrayValue(symbols.get(n) or sympy.Symbol(n, real=True)) for n in names]
        _, used_jax = call_with_symbols(fn, args)
        if not used_jax:
            return fn
        symbolic_error = None
    except Exception as exc:  # noqa: BLE001 - JAX code fails on symbolic arrays: read its jaxpr
        symbolic_error = exc
    structs, dims = _abstract_inputs(names, declared)
    with x64_scope(_F64):
        try:
            closed = jax.make_jaxpr(fn)(*structs)
        except Exception as exc:  # noqa: BLE001 - not traceable by JAX either: say both ways
            tried = f" with symbolic arrays ({type(symbolic_error).__name__}: {symbolic_error}) nor" \
                if symbolic_error is not None else ""
            raise CaptureError(f"{fn_name} could not be traced{tried} with JAX ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        reader = _ArrayReader(fn_name, dims)
        inputs = [symbols.get(n) or sympy.Symbol(n, real=True) for n in names]
        try:
            outs = reader.run(closed.jaxpr, closed.consts, inputs)
        except _Unsupported as exc:
            raise CaptureError(f"{fn_name}: {exc} cannot be captured") from None
    if len(outs) != 1:
        raise CaptureError(f"{fn_name} returns {len(outs)} arrays; with shapes=, return one (possibly array) value")
    out = outs[0]
    if isinstance(out, np.ndarray):
        out = reader.constant(out) if out.ndim else sympy.Float(float(out))
    if not isinstance(out, sympy.Expr):
        raise CaptureError(f"{fn_name} returns a boolean; expected real numbers")
    return out


class _ProgramView:
    """An array program whose "original" is the user's own function (what the check differentiates)."""

    def __init__(self, program, fn: Callable, names: list[str]):
        self._program = program
        arg_names = program.arg_names

        def kernel(*xs):
            by_name = dict(zip(arg_names, xs))
            return (fn(*[by_name.get(n, 0.0) for n in names]),)

        self.kernel = kernel

    def __getattr__(self, name):
        return getattr(self._program, name)


class _UserReference:
    """A derivative as the array check sees it, with :class:`_ProgramView` as its program."""

    def __init__(self, derivative, fn: Callable, names: list[str]):
        self._derivative = derivative
        self._program = _ProgramView(derivative._program, fn, names)

    def __getattr__(self, name):
        return getattr(self._derivative, name)

    def __call__(self, *args, **kwargs):
        return self._derivative(*args, **kwargs)


def with_user_check(derivative, fn: Callable):
    """Make ``derivative.check`` differentiate ``fn`` itself (JAX code read from its jaxpr), so a mistake in
    reading the jaxpr shows up as a disagreement. Parameters the closed form does not mention are 0 there."""
    import inspect

    names = list(inspect.signature(fn).parameters)

    def check(*args, rtol=None, atol=None, **kwargs):
        from ._array_check import cross_check_arrays

        return cross_check_arrays(_UserReference(derivative, fn, names), args, kwargs, rtol=rtol, atol=atol)

    check.__doc__ = "Cross-check against JAX autodiff of the user's own function and float64 central differences."
    derivative.check = check
    return derivative
