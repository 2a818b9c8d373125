"""Independent same-shaped sums merged into one reduction, inside a traced function.

A loss and its gradients are typically several sums over the same batch axis
(the loss itself, and every gradient of a broadcast parameter). XLA on CPU
runs each reduction as its own kernels, which for small batches costs more
than the arithmetic; :func:`merged_sums` stacks the summands and reduces once.

>>> import jax, jax.numpy as jnp
>>> from symdiff._tensor_sums import merged_sums
>>> f = merged_sums(lambda a, b: (jnp.sum(a * 2), jnp.sum(b + 1)))
>>> [float(v) for v in jax.jit(f)(jnp.ones(3), jnp.ones(3))]
[6.0, 6.0]
"""

from __future__ import annotations

import jax
import jax.extend.core as _jcore
import jax.numpy as jnp
from jax.extend.core.primitives import jit_p as _JIT_P

from ._tensor_shapes import numel

__all__ = ["merged_sums", "MERGE_MAX_SIZE"]


class _Sum:
    """A ``reduce_sum`` whose computation waits, to be merged with others of the same shape (see merged_sums)."""

    __slots__ = ("x", "params", "value")

    def __init__(self, x, params):
        self.x, self.params, self.value = x, params, None


MERGE_MAX_SIZE = 1 << 16  # larger arrays: separate reductions (a stacked copy would cost more than it saves)


def merged_sums(fn):
    """``fn`` traced, then replayed with its independent same-shaped ``reduce_sum``s merged into one.

    A loss and its gradients are typically several sums over the same batch
    axis (the loss itself, and every gradient of a broadcast parameter). XLA
    on CPU runs each reduction as its own kernels, which for small batches
    costs more than the arithmetic; stacking the summands and reducing once
    gives the same sums with one reduction. Use inside ``jax.jit``.
    """

    def merged(*args):
        flat, in_tree = jax.tree_util.tree_flatten(args)
        closed, shapes = jax.make_jaxpr(lambda *xs: fn(*jax.tree_util.tree_unflatten(in_tree, xs)),
                                        return_shape=True)(*flat)
        pending: list = []
        outs = _replay_merging(closed.jaxpr, closed.consts, flat, pending)
        outs = [_resolve(o, pending) for o in outs]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), outs)

    return merged


def _flush(pending: list) -> None:
    groups: dict = {}
    for p in pending:
        groups.setdefault((p.x.shape, p.x.dtype, p.params["axes"]), []).append(p)
    pending.clear()
    for (shape, _, axes), members in groups.items():
        if len(members) == 1 or numel(shape) > MERGE_MAX_SIZE:
            for p in members:
                p.value = jax.lax.reduce_sum_p.bind(p.x, **p.params)
            continue
        params = dict(members[0].params, axes=tuple(a + 1 for a in axes))
        sums = jax.lax.reduce_sum_p.bind(jnp.stack([p.x for p in members]), **params)
        for k, p in enumerate(members):
            p.value = sums[k]


def _resolve(value, pending: list):
    if isinstance(value, _Sum):
        if value.value is None:
            _flush(pending)
        return value.value
    return value


def _replay_merging(jaxpr, consts, args, pending: list) -> list:
    """Evaluate ``jaxpr`` like ``jax.core.eval_jaxpr``, deferring ``reduce_sum``s and what uses them.

    Equations are taken in order; one that needs a sum not yet computed waits
    (with everything that needs its results). When only waiting equations are
    left, every deferred sum is computed, merged by shape (``_flush``), and the
    waiting equations are taken again, in order.
    """
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, _jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    queue = list(jaxpr.eqns)
    while queue:
        waiting = []
        blocked: set = set()
        for eqn in queue:
            invals = None
            if not any(isinstance(v, _jcore.Var) and v in blocked for v in eqn.invars):
                invals = [read(v) for v in eqn.invars]
            if invals is None or any(isinstance(x, _Sum) and x.value is None for x in invals):
                waiting.append(eqn)
                blocked.update(eqn.outvars)
                continue
            invals = [x.value if isinstance(x, _Sum) else x for x in invals]
            prim = eqn.primitive
            if prim is jax.lax.reduce_sum_p and set(eqn.params) <= {"axes", "out_sharding"} and (
                    eqn.params.get("out_sharding") is None):
                env[eqn.outvars[0]] = sm = _Sum(invals[0], eqn.params)
                pending.append(sm)
                continue
            if prim is _JIT_P:
                inner = eqn.params["jaxpr"]
                outs = _replay_merging(inner.jaxpr, inner.consts, invals, pending)
            else:
                with eqn.ctx.manager:
                    outs = prim.bind(*invals, **prim.get_bind_params(eqn.params))
                if not prim.multiple_results:
                    outs = [outs]
            for v, o in zip(eqn.outvars, outs):
                env[v] = o
        if waiting:
            _flush(pending)
        queue = waiting
    return [read(v) for v in jaxpr.outvars]

