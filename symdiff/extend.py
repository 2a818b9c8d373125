"""For people adding functions: teach symdiff how to lower a SymPy function to JAX.

>>> import jax.numpy as jnp, sympy
>>> import symdiff as sd
>>> from symdiff.extend import register_function
>>> class sinc(sympy.Function):
...     def fdiff(self, argindex=1):
...         x = self.args[0]
...         return (sympy.cos(x) - sinc(x)) / x
>>> register_function(sinc, lambda x: jnp.sin(x) / x)
>>> x = sympy.Symbol("x", real=True)
>>> d = sd.derive(sinc(x), "x")
>>> round(float(d(1.0)), 6)
-0.301169
"""

from __future__ import annotations

from typing import Callable

import sympy

from ._errors import SymdiffError
from ._lower import register_jax_function

__all__ = ["register_function"]


def register_function(sympy_function: type, jax_function: Callable, *, name: str | None = None) -> None:
    """Lower every ``sympy_function(...)`` node with ``jax_function`` (elementwise, pure JAX).

    The derivative rule is SymPy's: define ``fdiff`` on the SymPy class. The
    entry is added to the readable table ``symdiff._lower.FUNCTION_TABLE``.
    Compiled derivatives already cached keep their old lowering; call
    ``symdiff.clear_caches()`` after registering.
    """
    if not (isinstance(sympy_function, type) and issubclass(sympy_function, sympy.Function)):
        raise SymdiffError(f"register_function needs a sympy.Function subclass, got {sympy_function!r}")
    if not callable(jax_function):
        raise SymdiffError(f"register_function needs a callable JAX implementation, got {jax_function!r}")
    register_jax_function(sympy_function, jax_function, name)
