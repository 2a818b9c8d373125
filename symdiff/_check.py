"""Cross-checks of a compiled derivative against JAX autodiff and finite differences.

The reference is independent of SymPy's differentiation: the *original*
expression is lowered to JAX (for JAX code as input: the user's own function)
and differentiated by ``jax.jacfwd`` (nested for
higher orders) in float64. Central finite differences of one order lower, also
in float64, check both. Points where the one-sided differences disagree are
kinks (abs, relu, min/max at a tie); finite differences are skipped there and
the documented kink convention (``docs/kinks.md``) decides, which symdiff's
lowering of ``abs`` and JAX's rules for relu/max/min/sign follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import CrossCheckError

__all__ = ["CheckReport", "cross_check", "DEFAULT_TOLERANCES"]

# dtype name -> (rtol, atol) for symbolic-vs-autodiff; atol scales with the entries' magnitude.
DEFAULT_TOLERANCES = {
    "float64": (1e-7, 1e-9),
    "float32": (2e-3, 1e-5),
    "float16": (5e-2, 1e-2),
    "bfloat16": (1e-1, 5e-2),
}
_FD_RTOL = 1e-4
_KINK_RTOL = 1e-2


@dataclass
class CheckReport:
    """The outcome of :meth:`Derivative.check`.

    Attributes:
        ok: whether every entry agreed within tolerance.
        max_abs_error: largest ``|symdiff - autodiff|`` over all finite entries.
        max_rel_error: largest ``|symdiff - autodiff| / |autodiff|``.
        fd_max_abs_error: largest ``|finite difference - autodiff|`` (kinks skipped).
        n_points, n_entries: how many points and derivative entries per point were compared.
        kinks: points x entries where finite differences were skipped as non-differentiable.
        dtype, rtol, atol: the computation dtype and the tolerances used.
        problems: readable descriptions of each disagreement (empty when ok).
    """

    ok: bool
    max_abs_error: float
    max_rel_error: float
    fd_max_abs_error: float
    n_points: int
    n_entries: int
    kinks: int
    dtype: str
    rtol: float
    atol: float
    problems: tuple[str, ...] = ()

    def __str__(self) -> str:
        head = "cross-check passed" if self.ok else "cross-check FAILED"
        lines = [
            f"{head}: {self.n_points} point(s) x {self.n_entries} entr{'y' if self.n_entries == 1 else 'ies'} in {self.dtype}",
            f"  vs JAX autodiff: max abs error {self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g}"
            f" (rtol={self.rtol:g}, atol={self.atol:g})",
            f"  vs float64 central differences: max abs error {self.fd_max_abs_error:.3g}"
            + (f" ({self.kinks} kink entr{'y' if self.kinks == 1 else 'ies'} skipped)" if self.kinks else ""),
        ]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _with_references(kernel, references, names):
    """The lowered original, with each output read from JAX code replaced by the user's own function."""

    def original(*xs):
        by_name = dict(zip(names, xs))
        lowered = kernel(*xs)[0] if None in references else [None] * len(references)
        return ([low if ref is None else ref(by_name) for low, ref in zip(lowered, references)],)

    return original


def _reference_functions(program, points_shape, references=()):
    """(D_k, D_{k-1}) as functions of (wrt vector, other scalars) -> arrays, vmapped over points.

    ``references``: for expressions captured from JAX code, the user's own function per
    output, so a capture mistake shows up as a disagreement instead of hiding.
    """
    kernel = program.value_kernel.fn
    if references:
        kernel = _with_references(kernel, references, program.arg_names)
    positions = program.wrt_positions
    n_args = len(program.args)

    def f_vec(v, others):
        xs, j = [], 0
        for a in range(n_args):
            if a in positions:
                xs.append(v[positions.index(a)])
            else:
                xs.append(others[j])
                j += 1
        return jnp.stack(kernel(*xs)[0])

    def derivative(level):
        fn = f_vec
        for _ in range(level):
            fn = jax.jacfwd(fn)
        return jax.jit(jax.vmap(fn))

    return derivative(program.order), derivative(program.order - 1), derivative(0)


def _compare(sym, ref, rtol, atol):
    """Elementwise agreement; both non-finite counts as agreement (same singularity)."""
    both_bad = ~np.isfinite(sym) & ~np.isfinite(ref)
    finite = np.isfinite(sym) & np.isfinite(ref)
    scale = max(1.0, float(np.max(np.abs(ref[finite]), initial=0.0)))
    diff = np.where(finite, np.abs(sym - ref), 0.0)
    ok = both_bad | (finite & (diff <= atol * scale + rtol * np.abs(ref)))
    rel = np.where(finite, diff / np.maximum(np.abs(ref), atol * scale), 0.0)
    return ok, diff, rel


def cross_check(d, args, kwargs, rtol=None, atol=None) -> CheckReport:
    """Compare ``d`` at the given inputs with autodiff and finite differences; raise on disagreement."""
    program = d._program
    arrays, _, dtype = d._prepare(args, kwargs)
    name = str(np.dtype(dtype)) if np.dtype(dtype) != jnp.bfloat16 else "bfloat16"
    default_rtol, default_atol = DEFAULT_TOLERANCES[name]
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol

    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    n_wrt, k = len(program.wrt), program.order
    n_out = len(program.captured.outputs)
    sym = np.asarray(d.array(*arrays), dtype=np.float64)
    sym = sym.reshape((-1, n_out) + (n_wrt,) * k)

    problems = []
    with jax.enable_x64(True):
        flat = [np.broadcast_to(np.asarray(a, dtype=np.float64), shape).reshape(-1) for a in arrays]
        # the float64 reference sees the same (rounded) inputs the checked dtype computed with
        flat = [np.asarray(np.asarray(f, dtype=dtype), dtype=np.float64) for f in flat]
        positions = program.wrt_positions
        v = np.stack([flat[p] for p in positions], axis=-1)
        others = tuple(flat[a] for a in range(len(arrays)) if a not in positions)
        d_k, d_lower, value = _reference_functions(program, shape, getattr(d, "_references", ()))
        ref = np.asarray(d_k(v, others))
        # Outside an output's real domain (its value is NaN) the derivative must be NaN
        # too; autodiff rules may return a finite number there, which is not compared.
        undefined = np.isnan(np.asarray(value(v, others))).reshape((-1, n_out) + (1,) * k)
        undefined = np.broadcast_to(undefined, ref.shape)
        ref = np.where(undefined, np.nan, ref)

        ok, diff, rel = _compare(sym, ref, rtol, atol)
        # finite differences of the (k-1)-th autodiff derivative, one wrt direction at a time
        fd_err = np.zeros_like(ref)
        kink = np.zeros(ref.shape, dtype=bool)
        fd_ok = np.ones(ref.shape, dtype=bool)
        base = np.asarray(d_lower(v, others))
        for i in range(n_wrt):
            h = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(v[:, i]))
            step = np.zeros_like(v)
            step[:, i] = h
            up = np.asarray(d_lower(v + step, others))
            down = np.asarray(d_lower(v - step, others))
            hh = h.reshape((-1,) + (1,) * (base.ndim - 1))
            central = (up - down) / (2 * hh)
            forward, backward = (up - base) / hh, (base - down) / hh
            is_kink = np.abs(forward - backward) > _KINK_RTOL * (1 + np.abs(central))
            r = ref[..., i]
            good = ~is_kink & np.isfinite(central) & np.isfinite(r)
            err = np.where(good, np.abs(central - r), 0.0)
            fd_err[..., i] = err
            kink[..., i] = is_kink
            fd_ok[..., i] = ~good | (err <= _FD_RTOL * (1 + np.abs(r) + np.abs(base)))

    if not ok.all():
        bad = np.argwhere(~ok)[0]
        problems.append(
            f"symdiff {sym[tuple(bad)]:.10g} vs autodiff {ref[tuple(bad)]:.10g} at point #{bad[0]}, entry {tuple(int(i) for i in bad[1:])}"
        )
    if not fd_ok.all():
        bad = np.argwhere(~fd_ok)[0]
        problems.append(
            f"finite differences {ref[tuple(bad)] + fd_err[tuple(bad)]:.10g} disagree with autodiff "
            f"{ref[tuple(bad)]:.10g} at point #{bad[0]}, entry {tuple(int(i) for i in bad[1:])}"
        )
    report = CheckReport(
        ok=not problems,
        max_abs_error=float(diff.max(initial=0.0)),
        max_rel_error=float(rel.max(initial=0.0)),
        fd_max_abs_error=float(fd_err.max(initial=0.0)),
        n_points=int(ref.shape[0]),
        n_entries=int(np.prod(ref.shape[1:])),
        kinks=int(kink.sum()),
        dtype=name,
        rtol=rtol,
        atol=atol,
        problems=tuple(problems),
    )
    if not report.ok:
        raise CrossCheckError(report)
    return report
