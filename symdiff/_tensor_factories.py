"""Tensor factories: ``sd.tensor``, ``sd.ones``, ``sd.zeros``, ``sd.arange``, ``sd.randn``, ...

>>> from symdiff._tensor_factories import ones, arange
>>> ones(2, 3).shape, arange(3)
(symdiff.Size([2, 3]), tensor([0, 1, 2]))
"""

from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import DtypeError
from ._tensor_class import Tensor, _infer_dtype
from ._tensor_devices import jax_device
from ._tensor_dtypes import float32, int64, to_dtype, x64_mode
from ._tensor_random import manual_seed, next_key
from ._tensor_shapes import shape_arg

__all__ = ["tensor", "as_tensor", "from_numpy", "ones", "zeros", "full", "eye", "ones_like", "zeros_like",
           "full_like", "arange", "linspace", "rand", "randn", "manual_seed"]


def tensor(data, dtype=None, device=None, requires_grad: builtins.bool = False, name: str | None = None) -> Tensor:
    """A tensor from a number, (nested) list, NumPy or JAX array.

    ``dtype=None`` infers as PyTorch does: Python floats give float32, ints
    int64, bools bool; arrays keep their dtype. ``dtype=int`` is int64 and
    ``dtype=float`` float64. ``name`` names the symbol in printed derivatives.

    >>> from symdiff._tensor_factories import tensor
    >>> tensor([[1, 1]])
    tensor([[1, 1]])
    >>> tensor([2., 3.], requires_grad=True)
    tensor([2., 3.], requires_grad=True)
    >>> str(tensor([1.5], dtype=float).dtype)
    'symdiff.float64'
    """
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad, name=name)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` itself if it already is a tensor of that dtype and device, else a new tensor."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor with the array's values and dtype."""
    return tensor(array)


def _sized(size) -> tuple:
    return shape_arg(size)


def _filled(size, fill, dtype, device, requires_grad, default=float32) -> Tensor:
    dt = to_dtype(dtype) or default
    shape = _sized(size)
    with x64_mode():
        value = jnp.full(shape, fill, dtype=dt.numpy_dtype)
        if device is not None:
            value = jax.device_put(value, jax_device(device))
    t = Tensor._wrap(value)
    t.requires_grad = requires_grad
    return t


def ones(*size, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise).

    >>> from symdiff._tensor_factories import ones
    >>> ones(1, 2, dtype=int)
    tensor([[1, 1]])
    """
    return _filled(size, 1, dtype, device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return _filled(size, 0, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """A tensor filled with ``fill_value`` (its dtype inferred as in :func:`tensor`)."""
    return _filled(size, fill_value, dtype, device, requires_grad, default=_infer_dtype(fill_value))


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """The identity matrix."""
    t = tensor(np.eye(n, m), dtype=dtype or float32, device=device)
    t.requires_grad = requires_grad
    return t


def _like(t: Tensor, fill, dtype, device, requires_grad) -> Tensor:
    return _filled(t.shape, fill, dtype or t.dtype, device or t.device, requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """Ones with ``t``'s shape, dtype and device."""
    return _like(t, 1, dtype, device, requires_grad)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """Zeros with ``t``'s shape, dtype and device."""
    return _like(t, 0, dtype, device, requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """``fill_value`` with ``t``'s shape, dtype and device."""
    return _like(t, fill_value, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """``[start, end)`` in steps: int64 for integer arguments, else float32.

    >>> from symdiff._tensor_factories import arange
    >>> arange(3)
    tensor([0, 1, 2])
    """
    if end is None:
        start, end = 0, start
    default = int64 if all(isinstance(v, builtins.int) for v in (start, end, step)) else float32
    dt = to_dtype(dtype) or default
    with x64_mode():
        values = np.arange(start, end, step, dtype=np.float64 if dt.is_floating_point else np.int64)
    t = tensor(values, dtype=dt, device=device)
    t.requires_grad = requires_grad
    return t


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` (float32 by default)."""
    t = tensor(np.linspace(start, end, steps), dtype=to_dtype(dtype) or float32, device=device)
    t.requires_grad = requires_grad
    return t


def _random(sampler, size, dtype, device, requires_grad) -> Tensor:
    dt = to_dtype(dtype) or float32
    if not dt.is_floating_point:
        raise DtypeError(f"random floats need a floating point dtype; got {dt}")
    with x64_mode():
        value = sampler(next_key(), _sized(size), dt.numpy_dtype)
        if device is not None:
            value = jax.device_put(value, jax_device(device))
    t = Tensor._wrap(value)
    t.requires_grad = requires_grad
    return t


def rand(*size, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """Uniform samples from ``[0, 1)``; reproducible after :func:`manual_seed`."""
    return _random(jax.random.uniform, size, dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: builtins.bool = False) -> Tensor:
    """Standard normal samples; reproducible after :func:`manual_seed`."""
    return _random(jax.random.normal, size, dtype, device, requires_grad)

