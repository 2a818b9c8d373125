"""Tensor devices: ``sd.device("cuda")``, ``sd.cuda.is_available()`` and the JAX devices behind them.

>>> from symdiff._tensor_devices import device
>>> device("gpu")
device(type='cuda')
"""

from __future__ import annotations

import functools

import jax

from ._errors import DeviceError
from ._placement import available_devices, resolve_device

__all__ = ["device", "cuda", "device_of", "jax_device", "single_device"]


class device:
    """A device name: ``sd.device("cuda")`` may be created anywhere; using it needs the GPU.

    >>> from symdiff._tensor_devices import device
    >>> device("cuda:1"), str(device("cpu"))
    (device(type='cuda', index=1), 'cpu')
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str | device, index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise DeviceError(f"device must be a string like 'cpu' or 'cuda:0'; got {type!r}")
        kind, _, idx = type.strip().lower().partition(":")
        if kind == "gpu":
            kind = "cuda"
        if kind not in ("cpu", "cuda", "tpu") or (idx and not idx.isdigit()):
            raise DeviceError(f"unknown device {type!r}: use 'cpu', 'cuda' or 'cuda:N'; "
                              f"available devices: {', '.join(available_devices())}")
        self.type = kind
        self.index = int(idx) if idx else index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    @property
    def jax_device(self) -> jax.Device:
        """The JAX device; raises :class:`~symdiff.DeviceError` naming the devices that exist."""
        return resolve_device(str(self))


def device_of(array: jax.Array) -> device:
    """The :class:`device` a JAX array lives on (``cuda:N`` for the N-th GPU)."""
    d = next(iter(array.devices()))
    if d.platform == "cpu":
        return device("cpu")
    kind = "cuda" if d.platform == "gpu" else d.platform
    return device(kind, jax.devices(d.platform).index(d))


def jax_device(spec) -> jax.Device | None:
    """``None``, a name, a :class:`device` or a ``jax.Device`` -> the ``jax.Device`` (``None`` stays)."""
    if spec is None:
        return None
    return device(spec).jax_device if not isinstance(spec, jax.Device) else spec


@functools.lru_cache(maxsize=1)
def single_device() -> bool:
    """Whether JAX sees one device only (then no operation needs a device check)."""
    return len(available_devices()) == 1


class _Cuda:
    """``sd.cuda.is_available()`` and ``sd.cuda.device_count()``, as in ``torch.cuda``."""

    @staticmethod
    def device_count() -> int:
        try:
            return len(jax.devices("gpu"))
        except RuntimeError:
            return 0

    def is_available(self) -> bool:
        return self.device_count() > 0

    def __repr__(self) -> str:
        return "<symdiff.cuda>"


cuda = _Cuda()
