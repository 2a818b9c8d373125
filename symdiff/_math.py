"""``sd.sin``, ``sd.exp``, ...: one function per name, working on every kind of value.

>>> import symdiff as sd, sympy
>>> x = sympy.Symbol("x", real=True)
>>> sd.sin(x) * sd.exp(x)
exp(x)*sin(x)
>>> float(sd.sqrt(4.0))
2.0

Each function dispatches on its argument: SymPy expressions get the SymPy
function (this is how traced callables build expressions), objects that
implement ``__symdiff_function__`` (tensors) handle it themselves, and numbers
or arrays are evaluated numerically with JAX.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import sympy

from ._array_math import ARRAY_MATH
from ._functions import FUNCTIONS
from ._lower import abs_

__all__ = sorted(FUNCTIONS) + ["pi", "e"] + sorted(ARRAY_MATH)

pi = sympy.pi
e = sympy.E

# Numeric implementations for plain numbers and arrays.
_NUMERIC = {
    "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan,
    "cot": lambda x: 1 / jnp.tan(x), "sec": lambda x: 1 / jnp.cos(x), "csc": lambda x: 1 / jnp.sin(x),
    "asin": jnp.arcsin, "acos": jnp.arccos, "atan": jnp.arctan, "atan2": jnp.arctan2,
    "sinh": jnp.sinh, "cosh": jnp.cosh, "tanh": jnp.tanh,
    "asinh": jnp.arcsinh, "acosh": jnp.arccosh, "atanh": jnp.arctanh,
    "exp": jnp.exp, "log": lambda x, base=None: jnp.log(x) if base is None else jnp.log(x) / jnp.log(base),
    "sqrt": jnp.sqrt, "cbrt": jnp.cbrt, "abs": abs_, "sign": jnp.sign,
    "erf": jax.scipy.special.erf, "erfc": jax.scipy.special.erfc,
    "gamma": jax.scipy.special.gamma, "loggamma": jax.scipy.special.gammaln,
    "sigmoid": jax.nn.sigmoid, "softplus": jax.nn.softplus, "relu": jax.nn.relu,
    "min": jnp.minimum, "max": jnp.maximum,
}
assert set(_NUMERIC) == set(FUNCTIONS)


def _make(name: str):
    builder, _ = FUNCTIONS[name]
    numeric = _NUMERIC[name]

    def function(*args):
        for a in args:
            handler = getattr(type(a), "__symdiff_function__", None)
            if handler is not None:
                return handler(a, name, args)
        if any(isinstance(a, sympy.Basic) for a in args):
            return builder(*(sympy.sympify(a) for a in args))
        return numeric(*args)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"``{name}`` of SymPy expressions (symbolic), tensors (recorded for backward) or arrays (numeric)."
    )
    return function


globals().update({name: _make(name) for name in FUNCTIONS})
globals().update(ARRAY_MATH)  # sd.sum, sd.inv, sd.logdet, ... (dispatch in _array_math)
