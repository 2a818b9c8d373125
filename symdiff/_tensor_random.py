"""The random state behind ``sd.rand``/``sd.randn`` and ``sd.manual_seed`` (one JAX key per process).

>>> import jax
>>> from symdiff._tensor_random import manual_seed, next_key
>>> manual_seed(0); a = float(jax.random.normal(next_key())); manual_seed(0)
>>> float(jax.random.normal(next_key())) == a
True
"""

from __future__ import annotations

import builtins

import jax
import numpy as np

from ._tensor_dtypes import x64_mode

__all__ = ["manual_seed", "next_key"]

_SEED = {"seed": builtins.int(np.random.SeedSequence().entropy % (2**63))}


def manual_seed(seed: int) -> None:
    """Seed :func:`~symdiff.rand` and :func:`~symdiff.randn` (per process, as ``torch.manual_seed``)."""
    _SEED["seed"] = builtins.int(seed)
    _SEED["key"] = None


def next_key():
    """A fresh JAX key, split from the process's key."""
    key = _SEED.get("key")
    if key is None:
        with x64_mode():
            key = jax.random.key(_SEED["seed"])
    key, sub = jax.random.split(key)
    _SEED["key"] = key
    return sub
