"""Cheap tracing of generated code: one source location for all of a kernel's operations.

JAX records a Python traceback for every operation it traces and turns each
into an MLIR source location when lowering. For generated code that is pure
overhead, and it grows with the program: every location maps a bytecode
offset to a line of one long generated function, so a 28,000-operation
kernel spent most of its lowering time there (``mlir._traceback_to_location``).
:func:`one_location` traces a kernel under a single traceback taken at its
call, so JAX captures and converts one location per kernel instead of one per
operation. The setting is JAX's own thread-local source-info context, active
only while the kernel runs: the user's code and JAX's configuration are
untouched.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["one_location"]

try:  # JAX internals; without them kernels trace as before
    from jax._src import source_info_util as _source_info
    from jax._src.lib import xla_client as _xla_client
except ImportError:  # pragma: no cover - a JAX that moved them
    _source_info = None


def one_location(fn: Callable) -> Callable:
    """``fn`` whose traced operations all carry the location of its caller.

    >>> import jax, jax.numpy as jnp
    >>> f = one_location(lambda x: jnp.sin(x) * 2 + 1)
    >>> float(jax.jit(f)(0.0))
    1.0
    """
    if _source_info is None:
        return fn

    def located(*args):
        with _source_info.user_context(_xla_client.Traceback.get_traceback()):
            return fn(*args)

    located.__name__ = getattr(fn, "__name__", "kernel")
    located.__wrapped__ = fn
    return located
