"""Tensor element types (``sd.float32``, ``sd.int64``, ...) and PyTorch's type promotion.

>>> from symdiff._tensor_dtypes import float64, to_dtype
>>> str(float64), to_dtype(float) is float64
('symdiff.float64', True)
"""

from __future__ import annotations

import builtins
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import DtypeError

__all__ = [
    "dtype", "float16", "bfloat16", "float32", "float64", "int32", "int64", "bool_", "half", "double", "long",
    "DTYPES", "BY_NUMPY", "to_dtype", "dtype_of", "dtype_by_name", "result_dtype", "x64_mode",
]


def x64_mode():
    """64-bit JAX types for one operation (int64/float64 tensors), without touching global config."""
    return jax.enable_x64(True)


class dtype:
    """A tensor element type: ``symdiff.float32``, ``symdiff.int64``, ...

    >>> from symdiff._tensor_dtypes import float64
    >>> str(float64), float64.is_floating_point
    ('symdiff.float64', True)
    """

    __slots__ = ("name", "numpy_dtype", "is_floating_point", "itemsize")

    def __init__(self, name: str, numpy_dtype):
        self.name = name
        self.numpy_dtype = np.dtype(numpy_dtype)
        self.is_floating_point = self.numpy_dtype.kind == "f" or name == "bfloat16"
        self.itemsize = self.numpy_dtype.itemsize

    def __repr__(self) -> str:
        return f"symdiff.{self.name}"

    __str__ = __repr__

    def __reduce__(self):
        return (dtype_by_name, (self.name,))


float16 = dtype("float16", jnp.float16)
bfloat16 = dtype("bfloat16", jnp.bfloat16)
float32 = dtype("float32", jnp.float32)
float64 = dtype("float64", jnp.float64)
int32 = dtype("int32", jnp.int32)
int64 = dtype("int64", jnp.int64)
bool_ = dtype("bool", jnp.bool_)
half, double, long = float16, float64, int64

DTYPES: dict[str, dtype] = {d.name: d for d in (float16, bfloat16, float32, float64, int32, int64, bool_)}
_ALIASES = {"half": float16, "float": float32, "double": float64, "int": int32, "long": int64}
BY_NUMPY = {d.numpy_dtype: d for d in DTYPES.values()}
_WIDEN = {np.dtype(np.int8): int32, np.dtype(np.int16): int32, np.dtype(np.uint8): int32,
          np.dtype(np.uint16): int32, np.dtype(np.uint32): int64, np.dtype(np.uint64): int64}


def dtype_by_name(name: str) -> dtype:
    """``"float32"`` -> ``symdiff.float32`` (the canonical names only)."""
    return DTYPES[name]


def to_dtype(spec: Any) -> dtype | None:
    """``None`` or a dtype in any spelling -> a symdiff :class:`dtype` (``int`` is int64, ``float`` float64)."""
    if spec is None or isinstance(spec, dtype):
        return spec
    if spec is builtins.float:
        return float64
    if spec is builtins.int:
        return int64
    if spec is builtins.bool:
        return bool_
    if isinstance(spec, str):
        name = spec.split(".")[-1]
        found = DTYPES.get(name) or _ALIASES.get(name)
        if found is not None:
            return found
    else:
        try:
            np_dtype = np.dtype(spec)
        except TypeError:
            np_dtype = None
        if np_dtype is not None and (np_dtype in BY_NUMPY or np_dtype in _WIDEN):
            return BY_NUMPY.get(np_dtype) or _WIDEN[np_dtype]
    raise DtypeError(f"unknown dtype {spec!r}; use one of {', '.join('symdiff.' + n for n in DTYPES)}, int or float")


def dtype_of(array) -> dtype:
    """The symdiff dtype of a NumPy or JAX array (small integer types widen to int32/int64)."""
    found = BY_NUMPY.get(array.dtype)
    if found is not None:
        return found
    np_dtype = np.dtype(array.dtype)
    found = BY_NUMPY.get(np_dtype) or _WIDEN.get(np_dtype)
    if found is None:
        raise DtypeError(f"unsupported element type {np_dtype}: tensors hold {', '.join(DTYPES)}")
    return found


_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2, "V": 2}  # bfloat16's numpy kind is 'V'


def _category(d: dtype) -> int:
    return 2 if d.is_floating_point else _CATEGORY[d.numpy_dtype.kind]


def _scalar_category(x) -> int:
    if isinstance(x, builtins.bool):
        return 0
    return 1 if isinstance(x, builtins.int) else 2


def result_dtype(tensor_dtypes: Sequence[dtype], scalars: Sequence = (), to_float: bool = False) -> dtype:
    """PyTorch's promotion: tensors decide within a category; a Python scalar only lifts the category.

    >>> from symdiff._tensor_dtypes import int64, float32, result_dtype
    >>> result_dtype([int64], [2.5]), result_dtype([int64], [2])
    (symdiff.float32, symdiff.int64)
    """
    first = tensor_dtypes[0]
    if first is float32 or first is float64:  # the common case: floats with floats and Python numbers
        if all(d is first for d in tensor_dtypes):
            return first
    top = max(_category(d) for d in tensor_dtypes)
    scalar_top = max((_scalar_category(s) for s in scalars), default=-1)
    if scalar_top > top:
        result = float32 if scalar_top == 2 else int64
    else:
        result = tensor_dtypes[0]
        for d in tensor_dtypes[1:]:
            if _category(d) == top:
                result = d if _category(result) < top else BY_NUMPY.get(
                    np.dtype(jnp.promote_types(result.numpy_dtype, d.numpy_dtype)), float32)
    if to_float and not result.is_floating_point:
        result = float32
    return result
