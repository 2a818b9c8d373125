"""PyTorch-style optimisers over symdiff tensors, built on optax.

>>> import symdiff as sd
>>> from symdiff._tensor import tensor
>>> from symdiff.optim import SGD
>>> w = tensor([1.0], requires_grad=True)
>>> opt = SGD([w], lr=0.1)
>>> (w**2).sum().backward()
>>> opt.step(); opt.zero_grad()
>>> w, w.grad
(tensor([0.8000], requires_grad=True), None)

Each optimiser keeps an optax state for its parameters and applies one jitted
update per ``step()`` to every parameter that has a gradient, in place (the
parameter tensors stay the same objects). ``param_groups[i]["lr"]`` may be
changed between steps, as in PyTorch.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import optax

from . import _cache
from ._errors import SymdiffError
from ._tensor_class import Tensor
from ._tensor_dtypes import x64_mode as _x64

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Base class: an optax transformation applied to a list of tensors in place.

    Args:
        params: tensors that require grad (or a list of dicts with a ``"params"`` key).
        make: ``make(learning_rate, **other_hyperparameters) -> optax.GradientTransformation``.
        defaults: the hyperparameters; ``lr`` may change between steps, the others are fixed.
    """

    def __init__(self, params: Iterable, make: Callable[..., optax.GradientTransformation], defaults: dict):
        groups = list(params)
        if not groups:
            raise SymdiffError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            group = {**self.defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Tensor):
                    raise SymdiffError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
                if not p.is_leaf:
                    raise SymdiffError("can't optimize a non-leaf Tensor")
            self.param_groups.append(group)
        self._make = make
        self._transforms = []
        self._treedefs = []
        self._leaves = []
        self._lr = []
        self._updates = []
        # 64-bit mode only where a parameter is 64-bit: float32 parameters update in float32, as in PyTorch
        self._x64 = any(p.dtype.itemsize == 8 for group in self.param_groups for p in group["params"])
        for group in self.param_groups:
            fixed = {k: v for k, v in group.items() if k not in ("params", "lr")}
            tx = optax.inject_hyperparams(lambda learning_rate, _f=fixed: make(learning_rate, **_f))(
                **self._hyperparameters(group))
            with self._mode(self._x64):
                state = tx.init([p._value for p in group["params"]])
            paths, treedef = jax.tree_util.tree_flatten_with_path(state)
            # the learning rate's place in the flat state: it is an input of every step, never an output
            lr_at = [i for i, (path, _) in enumerate(paths)
                     if [getattr(k, "name", None) for k in path[:1]] == ["hyperparams"]
                     and getattr(path[-1], "key", None) == "learning_rate"]
            if len(lr_at) != 1 or len(paths[lr_at[0]][0]) != 2:
                raise SymdiffError("internal: unexpected optax state layout")
            lr_dtype = paths[lr_at[0]][1].dtype
            self._transforms.append(tx)
            self._treedefs.append((treedef, lr_at[0], lr_dtype))
            self._leaves.append([leaf for i, (_, leaf) in enumerate(paths) if i != lr_at[0]])
            self._lr.append((group["lr"], paths[lr_at[0]][1]))
            self._updates.append(jax.jit(self._fused(tx, treedef, lr_at[0], lr_dtype)))

    @staticmethod
    def _mode(x64: bool):
        return _x64() if x64 else contextlib.nullcontext()

    @staticmethod
    def _fused(tx, treedef, lr_at: int, lr_dtype):
        """One compiled update of every parameter of a group: flat optax state in, flat state out.

        The learning rate is an argument (it may change between steps) and
        not part of the flat state. A ``None`` gradient (a parameter without
        ``.grad``) counts as zeros.
        """
        def update(grads, leaves, params, lr):
            _cache.count("traces")
            lr = jnp.asarray(lr, dtype=lr_dtype)
            state = jax.tree_util.tree_unflatten(treedef, leaves[:lr_at] + [lr] + leaves[lr_at:])
            state.hyperparams["learning_rate"] = lr
            params = list(params)  # the structure the state was made for
            grads = [jnp.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
            updates, state = tx.update(grads, state, params)
            out = jax.tree_util.tree_leaves(state)
            return optax.apply_updates(params, updates), out[:lr_at] + out[lr_at + 1:]

        return update

    def _hyperparameters(self, group: dict) -> dict:
        return {"learning_rate": group["lr"]}

    @property
    def state(self) -> list:
        """The optax states, one per parameter group."""
        states = []
        for (treedef, lr_at, lr_dtype), leaves, (_, lr) in zip(self._treedefs, self._leaves, self._lr):
            with self._mode(self._x64):
                lr = jnp.asarray(lr, dtype=lr_dtype)
            states.append(jax.tree_util.tree_unflatten(treedef, leaves[:lr_at] + [lr] + leaves[lr_at:]))
        return states

    def step(self, closure: Callable[[], Any] | None = None):
        """One update of every parameter with a gradient (parameters without one keep their value).

        One compiled call per parameter group updates every parameter and the optax state.
        """
        loss = None
        if closure is not None:
            loss = closure()
        for k, group in enumerate(self.param_groups):
            params = group["params"]
            grads = tuple([None if p.grad is None else p.grad._value for p in params])
            values = tuple([p._value for p in params])
            x64 = self._x64
            if not x64:
                for v in values + grads:
                    if v is not None and v.dtype.itemsize == 8:
                        x64 = True
                        break
            lr = group["lr"]
            cached, lr_array = self._lr[k]
            if cached != lr or type(cached) is not type(lr) or x64 != self._x64:
                with self._mode(x64):
                    lr_array = jnp.asarray(float(lr))
                if x64 == self._x64:
                    self._lr[k] = (lr, lr_array)
            with self._mode(x64):
                new, self._leaves[k] = self._updates[k](grads, self._leaves[k], values, lr_array)
            for p, g, v in zip(params, grads, new):
                if g is not None:
                    p._v = v  # optax.apply_updates keeps each parameter's dtype
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``set_to_none=False``: set them to zero instead)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            lines += [f"    {name}: {value}" for name, value in group.items() if name != "params"]
        return "\n".join(lines + [")"])


def _sgd(learning_rate, momentum=0.0, weight_decay=0.0, nesterov=False):
    parts = []
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov))
    return optax.chain(*parts)


class SGD(Optimizer):
    """Stochastic gradient descent (``optax.sgd``), PyTorch's ``torch.optim.SGD`` signature.

    >>> from symdiff._tensor import tensor
    >>> w = tensor([2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.25)
    >>> (w * w).sum().backward(); opt.step()
    >>> w
    tensor([1.], requires_grad=True)
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        if lr < 0:
            raise SymdiffError(f"Invalid learning rate: {lr}")
        super().__init__(
            params,
            lambda learning_rate, momentum, weight_decay: _sgd(learning_rate, momentum, weight_decay, nesterov),
            {"lr": lr, "momentum": momentum, "weight_decay": weight_decay},
        )


def _adam(learning_rate, b1, b2, eps, weight_decay):
    parts = []
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))  # PyTorch's Adam: L2 added to the gradient
    parts.append(optax.adam(learning_rate, b1=b1, b2=b2, eps=eps))
    return optax.chain(*parts)


class Adam(Optimizer):
    """Adam (``optax.adam``), PyTorch's ``torch.optim.Adam`` signature (``betas``, ``eps``, ``weight_decay``)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr < 0:
            raise SymdiffError(f"Invalid learning rate: {lr}")
        super().__init__(
            params,
            lambda learning_rate, b1, b2, eps, weight_decay: _adam(learning_rate, b1, b2, eps, weight_decay),
            {"lr": lr, "b1": betas[0], "b2": betas[1], "eps": eps, "weight_decay": weight_decay},
        )


class AdamW(Optimizer):
    """AdamW (``optax.adamw``, decoupled weight decay), PyTorch's ``torch.optim.AdamW`` signature."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(
            params,
            lambda learning_rate, b1, b2, eps, weight_decay: optax.adamw(
                learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay),
            {"lr": lr, "b1": betas[0], "b2": betas[1], "eps": eps, "weight_decay": weight_decay},
        )
