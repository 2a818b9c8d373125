"""Symbolic arrays for traced callables, and ``sd.sum``, ``sd.inv``, ... on every kind of value.

A callable given to ``derive(..., shapes=...)`` is called once with
:class:`ArrayValue` objects: they support ``+ - * / ** @``, ``.T``,
``.sum(axis)``, ``.mean(axis)``, ``.shape`` and the ``sd.`` functions, and
record the array expression.

The array functions (``sd.sum, sd.mean, sd.dot, sd.outer, sd.trace, sd.det,
sd.logdet, sd.inv, sd.diag, sd.norm, sd.logsumexp, sd.softmax``) dispatch on
their first argument: an object whose type has ``__symdiff_array_function__``
(tensors: the dispatch point for the tensor front end) handles the call
itself; symbolic values build array expressions; numbers and arrays are
evaluated with ``jax.numpy``.

>>> import symdiff as sd, numpy as np
>>> float(sd.logdet(2 * np.eye(2)))  # doctest: +ELLIPSIS
1.386...
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import sympy

from . import _array_ir as ir
from ._errors import CaptureError

__all__ = ["ArrayValue", "ARRAY_MATH", "unwrap"]


def unwrap(value):
    """The SymPy expression of a traced value (numbers become SymPy numbers)."""
    if isinstance(value, ArrayValue):
        return value.expr
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaptureError(f"cannot combine {type(value).__name__} {value!r:.60} with a symbolic array")
    return sympy.Float(value) if isinstance(value, float) else sympy.Integer(value)


def _binary(op: str):
    def forward(self, other):
        return ArrayValue(_apply(op, unwrap(self), unwrap(other)))

    def backward(self, other):
        return ArrayValue(_apply(op, unwrap(other), unwrap(self)))

    return forward, backward


def _apply(op, a, b):
    if op == "@":
        return ir.matmul(a, b)
    ir.broadcast_shapes([ir.shape_of(a), ir.shape_of(b)], op)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
            "**": lambda: a ** b}[op]()


class ArrayValue:
    """A symbolic array (or scalar) inside a traced callable."""

    __slots__ = ("expr",)
    __array_priority__ = 1000  # numpy defers to our reflected operators

    def __init__(self, expr):
        self.expr = expr

    __add__, __radd__ = _binary("+")
    __sub__, __rsub__ = _binary("-")
    __mul__, __rmul__ = _binary("*")
    __truediv__, __rtruediv__ = _binary("/")
    __pow__, __rpow__ = _binary("**")
    __matmul__, __rmatmul__ = _binary("@")

    def __getitem__(self, key):  # constant indices and slices (symdiff._array_index)
        from ._array_index import index_key

        return ArrayValue(index_key(self.expr, key))

    def __neg__(self):
        return ArrayValue(-self.expr)

    def __pos__(self):
        return self

    @property
    def T(self):  # noqa: N802 - NumPy's name
        return ArrayValue(ir.transpose(self.expr))

    @property
    def shape(self):
        return ir.shape_of(self.expr)

    @property
    def ndim(self):
        return len(self.shape)

    def sum(self, axis=None):
        return ArrayValue(ir.reduce_sum(self.expr, axis))

    def mean(self, axis=None):
        return ArrayValue(ir.mean(self.expr, axis))

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ArrayValue(ir.reshape(self.expr, shape))

    def __symdiff_expr__(self):
        return self.expr

    def __symdiff_function__(self, name, args):
        from ._functions import FUNCTIONS

        exprs = [unwrap(a) for a in args]
        ir.broadcast_shapes([ir.shape_of(e) for e in exprs], name)
        return ArrayValue(FUNCTIONS[name][0](*exprs))

    def __symdiff_array_function__(self, name, args, kwargs):
        return ArrayValue(_SYMBOLIC[name](*[unwrap(a) for a in args], **kwargs))

    def __bool__(self):
        raise CaptureError("a symbolic array has no truth value: the traced function cannot branch on it")

    def __repr__(self):
        return f"ArrayValue({self.expr}, shape={ir.format_shape(self.shape)})"


_SYMBOLIC = {
    "sum": ir.reduce_sum, "mean": ir.mean, "dot": ir.dot, "outer": ir.outer, "trace": ir.trace, "det": ir.det,
    "logdet": ir.logdet, "inv": ir.inv, "diag": ir.diag, "norm": ir.norm, "logsumexp": ir.logsumexp,
    "softmax": ir.softmax,
}

_NUMERIC = {
    "sum": lambda a, axis=None: jnp.sum(a, axis=axis),
    "mean": lambda a, axis=None: jnp.mean(a, axis=axis),
    "dot": jnp.dot, "outer": jnp.outer, "trace": jnp.trace, "det": jnp.linalg.det,
    "logdet": lambda a: jnp.linalg.slogdet(a)[1], "inv": jnp.linalg.inv, "diag": jnp.diag,
    "norm": jnp.linalg.norm, "logsumexp": jax.scipy.special.logsumexp, "softmax": jax.nn.softmax,
}


def _make(name: str):
    def function(*args, **kwargs):
        for a in args:
            handler = getattr(type(a), "__symdiff_array_function__", None)
            if handler is not None:  # tensors (and traced arrays) handle the call themselves
                return handler(a, name, args, kwargs)
        if any(isinstance(a, sympy.Basic) for a in args):
            return _SYMBOLIC[name](*args, **kwargs)
        return _NUMERIC[name](*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (f"``{name}`` of symbolic arrays (an array expression), tensors (recorded) "
                        "or arrays (evaluated with jax.numpy).")
    return function


ARRAY_MATH = {name: _make(name) for name in _SYMBOLIC}
