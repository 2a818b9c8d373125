"""Shape arithmetic for tensors: ``sd.Size``, broadcasting, ``reshape``'s ``-1``, ``dim`` arguments.

>>> from symdiff._tensor_shapes import reshaped, broadcast_shapes
>>> reshaped((2, 3), (-1,)), broadcast_shapes((3, 1), (4,))
((6,), (3, 4))
"""

from __future__ import annotations

import builtins
import functools

import numpy as np

from ._errors import ShapeError

__all__ = ["Size", "numel", "broadcast_shapes", "check_broadcast", "reshaped", "normalize_dims", "shape_arg"]


class Size(tuple):
    """A tensor's shape: a tuple that prints as ``symdiff.Size([2, 3])``."""

    def __repr__(self) -> str:
        return f"symdiff.Size({list(self)})"

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


@functools.lru_cache(maxsize=1024)
def numel(shape: tuple) -> int:
    """The number of elements of a shape."""
    return builtins.int(np.prod(shape, dtype=np.int64))


@functools.lru_cache(maxsize=1024)
def broadcast_shapes(*shapes) -> tuple:
    """NumPy's broadcast shape (cached: a training loop asks for the same few)."""
    return np.broadcast_shapes(*shapes)


def check_broadcast(shapes: list) -> tuple:
    """The broadcast shape of ``shapes``; PyTorch's error when they do not broadcast."""
    first = shapes[0]
    if all(s == first for s in shapes):
        return first
    try:
        return broadcast_shapes(*shapes)
    except ValueError:
        a, b = shapes[0], shapes[-1]
        for i in range(1, min(len(a), len(b)) + 1):
            if a[-i] != b[-i] and a[-i] != 1 and b[-i] != 1:
                raise ShapeError(f"The size of tensor a ({a[-i]}) must match the size of tensor b ({b[-i]}) at "
                                 f"non-singleton dimension {max(len(a), len(b)) - i}") from None
        raise ShapeError(f"shapes {', '.join(str(list(s)) for s in shapes)} do not broadcast together") from None


def reshaped(shape: tuple, new: tuple) -> tuple:
    """``new`` with its ``-1`` resolved; ``ValueError`` when the sizes differ."""
    size = numel(shape)
    if new.count(-1) > 1 or any(s < -1 for s in new):
        raise ValueError("only one dimension can be inferred")
    if -1 in new:
        rest = numel(tuple(s for s in new if s != -1))
        if rest == 0 or size % rest:
            raise ValueError("cannot infer the size")
        new = tuple(size // rest if s == -1 else s for s in new)
    if numel(new) != size:
        raise ValueError("sizes differ")
    return new


def normalize_dims(dim, ndim: int):
    """A ``dim`` argument (int or tuple, negative allowed) -> sorted nonnegative dims, or ``None``."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, builtins.int) else tuple(dim)
    try:
        return tuple(sorted(d % builtins.max(ndim, 1) for d in dims))
    except TypeError:
        raise ShapeError(f"dim must be an int or a tuple of ints; got {dim!r}") from None


def shape_arg(shape) -> tuple:
    """``f(2, 3)`` or ``f((2, 3))`` -> ``(2, 3)``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        shape = tuple(shape[0])
    return tuple(builtins.int(s) for s in shape)
