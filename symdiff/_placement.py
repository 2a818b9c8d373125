"""Dtypes and devices: user spellings -> JAX objects, with errors that list what exists."""

from __future__ import annotations

import contextlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import DeviceError, DtypeError

__all__ = ["FLOAT_DTYPES", "resolve_float_dtype", "resolve_device", "available_devices", "x64_scope", "infer_float_dtype"]

FLOAT_DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype(jnp.float16),
    "bfloat16": np.dtype(jnp.bfloat16),
    "float32": np.dtype(jnp.float32),
    "float64": np.dtype(jnp.float64),
}


def resolve_float_dtype(dtype: Any) -> np.dtype | None:
    """``None`` or a float dtype (name, numpy/JAX dtype, or symdiff dtype) -> numpy dtype."""
    if dtype is None:
        return None
    if hasattr(dtype, "numpy_dtype"):  # a symdiff dtype object
        dtype = dtype.numpy_dtype
    if dtype is float:
        return FLOAT_DTYPES["float64"]
    if isinstance(dtype, str) and dtype in FLOAT_DTYPES:
        return FLOAT_DTYPES[dtype]
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is not None and resolved in FLOAT_DTYPES.values():
        return resolved
    raise DtypeError(
        f"unknown or unsupported dtype {dtype!r}: derivatives are computed in one of {', '.join(FLOAT_DTYPES)}"
    )


def infer_float_dtype(values) -> np.dtype:
    """The contract's default: float64 if an array input is float64, else float32."""
    for v in values:
        dt = getattr(v, "dtype", None)
        if dt is not None and not isinstance(v, (int, float)) and np.dtype(dt) == np.float64:
            return FLOAT_DTYPES["float64"]
    return FLOAT_DTYPES["float32"]


def available_devices() -> list[str]:
    """Names of every device JAX can use here, e.g. ``['cpu:0']``."""
    names = []
    for platform in ("cpu", "gpu", "tpu"):
        try:
            devices = jax.devices(platform)
        except RuntimeError:
            continue
        names += [f"{'cuda' if d.platform == 'gpu' else d.platform}:{i}" for i, d in enumerate(devices)]
    return names


_PLATFORMS = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "tpu": "tpu"}


def resolve_device(spec: Any) -> jax.Device | None:
    """``None``, ``"cpu"``, ``"gpu"``, ``"cuda"``, ``"cuda:1"``, a ``jax.Device`` or ``sd.device``.

    >>> resolve_device("cpu").platform
    'cpu'
    """
    if spec is None:
        return None
    if isinstance(spec, jax.Device):
        return spec
    if hasattr(spec, "jax_device"):  # an sd.device
        return spec.jax_device
    if not isinstance(spec, str):
        raise DeviceError(f"device must be a string like 'cpu' or 'cuda:0', or a jax.Device; got {spec!r}")
    kind, _, index = spec.strip().lower().partition(":")
    platform = _PLATFORMS.get(kind)
    if platform is None or (index and not index.isdigit()):
        raise DeviceError(
            f"unknown device {spec!r}: use 'cpu', 'gpu', 'cuda' or 'cuda:N'; available devices: "
            f"{', '.join(available_devices())}"
        )
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    i = int(index) if index else 0
    if i >= len(devices):
        raise DeviceError(
            f"device {spec!r} is not available on this machine; available devices: {', '.join(available_devices())}"
        )
    return devices[i]


def x64_scope(dtype: np.dtype):
    """A context in which ``dtype`` really computes (float64 needs JAX's x64 mode, per call)."""
    if dtype == np.float64:
        return jax.enable_x64(True)
    return contextlib.nullcontext()
