"""``d.check(...)`` for array derivatives: JAX autodiff of the lowered original, and finite differences.

The reference differentiates the *original* expression (lowered to ``jnp``
by :mod:`symdiff._array_lower`, no SymPy differentiation) with
``jax.jacfwd`` once per order, in float64, and is compared entry by entry
with the closed form. Central finite differences in float64 along a random
direction check the reference: the change of the order ``k - 1`` autodiff
derivative against its ``jax.jvp``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._check import _FD_RTOL, DEFAULT_TOLERANCES, CheckReport, _compare
from ._errors import CrossCheckError

__all__ = ["cross_check_arrays"]


def _reference(kernel, positions, order):
    """The order-``order`` autodiff derivative of the value, a function of every input."""

    def value(*xs):
        return kernel(*xs)[0]

    fn = value
    argnums = tuple(positions)
    for _ in range(order):
        fn = jax.jacfwd(fn, argnums=argnums)
    return fn


def cross_check_arrays(d, args, kwargs, rtol=None, atol=None) -> CheckReport:
    """Compare the array derivative ``d`` with autodiff and finite differences at one point."""
    p = d._program
    arrays, dtype = d._validated(args, kwargs)
    name = str(np.dtype(dtype)) if np.dtype(dtype) != jnp.bfloat16 else "bfloat16"
    default_rtol, default_atol = DEFAULT_TOLERANCES[name]
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    sym = [np.asarray(leaf, dtype=np.float64) for leaf in jax.tree_util.tree_leaves(d(*arrays))]
    positions = [p.args.index(w) for w in p.wrt]
    problems = []
    with jax.enable_x64(True):
        # the float64 reference sees the same (rounded) inputs the checked dtype computed with
        xs = [jnp.asarray(np.asarray(np.asarray(a, dtype=dtype), dtype=np.float64)) for a in arrays]
        ref_fn = _reference(p.kernel, positions, p.order)
        # nested tuples [wrt][wrt]..., as d(...) returns them: both flatten in the same order
        ref = [np.asarray(r, dtype=np.float64) for r in jax.tree_util.tree_leaves(jax.jit(ref_fn)(*xs))]
        ok_all, max_abs, max_rel = True, 0.0, 0.0
        for s, r in zip(sym, ref):
            r = r.reshape(s.shape)
            ok, diff, rel = _compare(s, r, rtol, atol)
            max_abs = max(max_abs, float(diff.max(initial=0.0)))
            max_rel = max(max_rel, float(rel.max(initial=0.0)))
            if not ok.all() and ok_all:
                bad = tuple(int(i) for i in np.argwhere(~ok)[0])
                problems.append(f"symdiff {s[bad]:.10g} vs autodiff {r[bad]:.10g} at entry {bad}")
            ok_all &= bool(ok.all())
        # finite differences of the (k-1)-th autodiff derivative along a random direction
        lower = _reference(p.kernel, positions, p.order - 1)

        def flat_lower(*w):
            full = list(xs)
            for i, pos in enumerate(positions):
                full[pos] = w[i]
            return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree_util.tree_leaves(lower(*full))])

        flat_lower = jax.jit(flat_lower)
        rng = np.random.default_rng(0)
        w0 = [xs[pos] for pos in positions]
        direction = [jnp.asarray(rng.normal(size=np.shape(w))) for w in w0]
        scale = max(1.0, max(float(jnp.max(jnp.abs(w), initial=0.0)) for w in w0))
        h = np.cbrt(np.finfo(np.float64).eps) * scale
        up = flat_lower(*[w + h * v for w, v in zip(w0, direction)])
        down = flat_lower(*[w - h * v for w, v in zip(w0, direction)])
        central = np.asarray((up - down) / (2 * h))
        _, tangent = jax.jit(lambda w, v: jax.jvp(flat_lower, w, v))(tuple(w0), tuple(direction))
        tangent = np.asarray(tangent)
        good = np.isfinite(central) & np.isfinite(tangent)
        fd_err = np.where(good, np.abs(central - tangent), 0.0)
        base = np.asarray(flat_lower(*w0))
        fd_ok = ~good | (fd_err <= _FD_RTOL * (1 + np.abs(tangent) + np.abs(base)) * max(1.0, scale))
    if not fd_ok.all():
        bad = int(np.argwhere(~fd_ok)[0][0])
        problems.append(f"finite differences {central[bad]:.10g} disagree with autodiff {tangent[bad]:.10g} "
                        f"(directional derivative, entry {bad})")
    report = CheckReport(
        ok=ok_all and bool(fd_ok.all()),
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        fd_max_abs_error=float(fd_err.max(initial=0.0)),
        n_points=1,
        n_entries=int(sum(s.size for s in sym)),
        kinks=0,
        dtype=name,
        rtol=rtol,
        atol=atol,
        problems=tuple(problems),
    )
    if not report.ok:
        raise CrossCheckError(report)
    return report
