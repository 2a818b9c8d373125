"""The numeric side of tensor operations: JAX code for each recorded op, and the eager ops' jit cache.

Both the eager tensor operations and the replay of a recorded graph (see
:mod:`symdiff._tensor_graph`) compute through these functions, so a value is
the same whether it was computed at once or later.

>>> import jax.numpy as jnp
>>> from symdiff._tensor_ops import forward_structural
>>> forward_structural("sum", ((0,), False), [jnp.ones((2, 3))]).tolist()
[2.0, 2.0, 2.0]
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import _math
from ._errors import SymdiffError
from ._tensor_dtypes import DTYPES, x64_mode

__all__ = ["ELEMENTWISE_IMPL", "apply_elementwise", "forward_structural", "rebuild_index", "compiled",
           "EAGER_OPS", "cached_zeros", "is_elementwise"]

def is_elementwise(op: str) -> bool:
    """Whether a recorded op is elementwise (arithmetic, ``clamp``, ``fn:<name>``) rather than structural."""
    return op in ELEMENTWISE_IMPL or op.startswith("fn:")


# op -> (jnp implementation, whether the result is always floating point)
ELEMENTWISE_IMPL = {
    "add": (jnp.add, False),
    "sub": (jnp.subtract, False),
    "mul": (jnp.multiply, False),
    "div": (jnp.true_divide, True),
    "pow": (jnp.power, False),
    "neg": (jnp.negative, False),
    "clamp": (None, False),
}


def apply_elementwise(op: str, params, args, out_dtype: np.dtype):
    """The numeric value of an elementwise op (also used when a plan replays the forward pass)."""
    if op == "clamp":
        lo, hi = params
        out = args[0]
        if lo is not None:
            out = jnp.maximum(out, lo)
        if hi is not None:
            out = jnp.minimum(out, hi)
    elif op.startswith("fn:"):
        out = getattr(_math, op[3:])(*args)
    else:
        out = ELEMENTWISE_IMPL[op][0](*args)
    return out if out.dtype == out_dtype else out.astype(out_dtype)


def forward_structural(op: str, params, vals: list):
    """The numeric value of a structural op (the same code the eager tensor ran)."""
    x = vals[0]
    if op == "sum":
        return jnp.sum(x, axis=params[0], keepdims=params[1])
    if op == "mean":
        return jnp.mean(x, axis=params[0], keepdims=params[1])
    if op == "reshape":
        return x.reshape(params[0])
    if op == "permute":
        return jnp.transpose(x, params[0])
    if op == "expand":
        return jnp.broadcast_to(x, params[0])
    if op == "getitem":
        return x[rebuild_index(params[0], vals[1:])]
    if op == "matmul":
        dt = DTYPES[params[0]].numpy_dtype
        return jnp.matmul(x.astype(dt), vals[1].astype(dt))
    if op == "cast":
        return x.astype(DTYPES[params[0]].numpy_dtype)
    if op in ("to", "clone"):
        return x
    raise SymdiffError(f"internal: unknown structural op {op!r}")


def rebuild_index(spec, arrays):
    """The index expression of ``spec`` with ``arrays`` in place of its array parts."""
    out = []
    for item in spec:
        kind = item[0]
        if kind == "slice":
            out.append(slice(*item[1:]))
        elif kind == "none":
            out.append(None)
        elif kind == "ellipsis":
            out.append(Ellipsis)
        elif kind == "int":
            out.append(item[1])
        else:
            out.append(arrays[item[1]])
    return tuple(out)


EAGER_OPS: dict = {}  # (kind, op, params, dtype, static) -> jitted function; see compiled()


def compiled(kind: str, op: str, params, out_dtype=None, static=()):
    """One jitted function per op, static parameters and dtype: eager ops dispatch in microseconds."""
    key = (kind, op, params, out_dtype, static)
    fn = EAGER_OPS.get(key)
    if fn is None:
        if len(EAGER_OPS) > 4096:
            EAGER_OPS.clear()
        if kind == "elementwise":
            def impl(*dynamic):
                args = list(dynamic)
                for i, v in static:
                    args.insert(i, v)
                return apply_elementwise(op, params, args, out_dtype)
        else:
            def impl(*args):
                return forward_structural(op, params, list(args))
        fn = EAGER_OPS[key] = jax.jit(impl)
    return fn


@functools.lru_cache(maxsize=256)
def cached_zeros(shape: tuple, np_dtype) -> jax.Array:
    """Zeros of a shape and dtype on the default device (shared: JAX arrays are immutable)."""
    with x64_mode():
        return jnp.zeros(shape, np_dtype)
