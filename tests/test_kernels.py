"""The CPU kernels (symdiff/_kernels.py): accuracy against mpmath / long double, special values,
derivatives against JAX autodiff, transformations, dtypes, backend dispatch and the lowering's use."""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import symdiff as sd
from symdiff import _kernels as K
from symdiff._placement import x64_scope

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the sweep lives in benchmarks/
from benchmarks import kernel_accuracy as ka  # noqa: E402

CASES = [(name, dtype) for name in ka.FUNCTIONS for dtype in ka.DTYPES]


@pytest.fixture(autouse=True)
def kernels_at_every_size(monkeypatch):
    """Small arrays normally take XLA's routine (K.MIN_SIZE); these tests exercise the kernels on them."""
    monkeypatch.setattr(K, "MIN_SIZE", 0)


def test_small_arrays_take_xla_routine(monkeypatch):
    monkeypatch.setattr(K, "MIN_SIZE", 4096)
    small = jax.jit(K.sin).lower(jax.ShapeDtypeStruct((100,), jnp.float32)).as_text()
    large = jax.jit(K.sin).lower(jax.ShapeDtypeStruct((8192,), jnp.float32)).as_text()
    assert "round_nearest_even" not in small and "round_nearest_even" in large


def _check_accuracy(name, dtype, n, mp_points):
    args = ka.sweep(name, dtype, n, seed=3)
    ours, xla = ka.evaluate(name, dtype, args)
    ref = ka.reference(name, args)
    e_ours, e_xla = ka.ulp_errors(ours, ref, dtype), ka.ulp_errors(xla, ref, dtype)
    # mpmath, the independent oracle, on a subsample and on every hard case
    hard = len(args[0]) - n
    idx = np.concatenate([np.random.default_rng(2).choice(n, mp_points, replace=False), np.arange(n, n + hard)])
    mref = ka.mp_reference(name, tuple(a[idx] for a in args))
    e_ours = np.concatenate([e_ours, ka.ulp_errors(ours[idx], mref, dtype)])
    e_xla = np.concatenate([e_xla, ka.ulp_errors(xla[idx], mref, dtype)])
    allargs = tuple(np.concatenate([a, a[idx]]) for a in args)
    # a wrong NaN/inf/sign of zero where XLA's value is right fails outright; where XLA's is wrong too
    # (subnormal arguments, which XLA's CPU arithmetic flushes to zero) it is left out of the maxima
    wrong = np.isinf(e_ours) & np.isfinite(e_xla)
    assert not wrong.any(), f"{name} {dtype}: wrong value at {[a[wrong][:5] for a in allargs]}"
    refs = np.abs(np.concatenate([ref, mref]))
    subnormal = (refs > 0) & (refs < np.finfo(np.dtype(dtype)).tiny)
    keep = np.isfinite(e_xla)
    # subnormal results: XLA's CPU arithmetic flushes them; the kernel is nowhere worse than XLA there
    assert np.all(e_ours[keep & subnormal] <= e_xla[keep & subnormal] + 1), f"{name} {dtype}: subnormal result"
    keep &= ~subnormal
    worst_ours, worst_xla = e_ours[keep].max(), e_xla[keep].max()
    at = [a[keep][np.argmax(e_ours[keep])] for a in allargs]
    # the contract on the maxima: at most 1 ulp worse than XLA's routine, and within 2 ulp where XLA is
    assert worst_ours <= worst_xla + 1, f"{name} {dtype}: {worst_ours:.2f} ulp vs XLA {worst_xla:.2f}, at {at}"
    # and, stronger than the contract (XLA's asin and cbrt lose whole numbers near the underflow
    # threshold), every kernel is within 2 ulp everywhere its result is a normal number
    assert worst_ours <= 2, f"{name} {dtype}: {worst_ours:.2f} ulp (XLA {worst_xla:.2f}), at {at}"


@pytest.mark.parametrize("name,dtype", CASES)
def test_accuracy_against_mpmath(name, dtype):
    _check_accuracy(name, dtype, n=10**5, mp_points=150)


@pytest.mark.slow
@pytest.mark.parametrize("name,dtype", CASES)
def test_accuracy_dense_sweep(name, dtype):
    _check_accuracy(name, dtype, n=2 * 10**6, mp_points=3000)


def test_references_agree():
    """The long-double reference used for the dense sweep is mpmath's to far below an ulp."""
    x = np.random.default_rng(0).uniform(-20, 20, 200)
    for name in ("sin", "atan", "cbrt"):
        a = ka.reference(name, (x,))
        b = ka.mp_reference(name, (x,))
        assert np.max(np.abs(a - b) / np.abs(b)) < 2.0**-60


def test_cody_waite_pieces_sum_to_half_pi():
    mpmath.mp.dps = 50
    for pieces, bits in ((K._PIO2_F32, 12), (K._PIO2_F64, 26)):
        total = sum(mpmath.mpf(p) for p in pieces)
        assert abs(total - mpmath.pi / 2) < mpmath.mpf(2) ** -(3 * bits + 20)
        for p in pieces[:3]:  # few enough bits that k * piece is exact for the allowed k
            m, _ = mpmath.frexp(mpmath.mpf(p))
            assert (m * 2**bits) == int(m * 2**bits)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values(dtype):
    nan, inf = np.nan, np.inf
    with x64_scope(np.dtype(dtype)):
        def f(fn, *v):
            return np.asarray(jax.jit(fn)(*[jnp.asarray(np.array(u, dtype)) for u in v]))

        zeros = [0.0, -0.0]
        for fn in (K.sin, K.tan, K.arctan, K.arcsin, K.cbrt):
            got = f(fn, zeros)
            assert list(np.signbit(got)) == [False, True], fn  # f(-0) = -0
        assert np.all(np.isnan(f(K.sin, [inf, -inf, nan]))) and np.all(np.isnan(f(K.cos, [inf, -inf, nan])))
        assert np.all(np.isnan(f(K.arcsin, [1.5, -2.0, nan]))) and np.all(np.isnan(f(K.arccos, [1.5, -2.0, nan])))
        np.testing.assert_array_equal(f(K.cbrt, [inf, -inf, 8.0, -27.0]), [inf, -inf, 2.0, -3.0])
        np.testing.assert_allclose(f(K.arctan, [inf, -inf]), [np.pi / 2, -np.pi / 2], rtol=1e-7)
        with np.errstate(all="ignore"):
            logs = np.log(np.array([0.0, -0.0, -1.0, inf, nan, 1.0], np.float64))
        np.testing.assert_array_equal(f(K.log, [0.0, -0.0, -1.0, inf, nan, 1.0]), logs)
        y = [0.0, -0.0, 0.0, -0.0, inf, inf, -inf, 1.0, nan]
        x = [0.0, 0.0, -0.0, -0.0, inf, -inf, inf, nan, 1.0]
        np.testing.assert_allclose(f(K.arctan2, y, x), np.arctan2(np.array(y), np.array(x)), rtol=1e-7)
        assert list(np.signbit(f(K.arctan2, y[:4], x[:4]))) == list(np.signbit(np.arctan2(y[:4], x[:4])))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_arguments_take_xla_routine(dtype):
    """An array with |x| beyond the Cody-Waite limit gets XLA's values there and the kernel's elsewhere."""
    x = np.array([0.5, 1e30 if dtype == "float32" else 1e300, -3e9, 2.0], dtype)
    with x64_scope(np.dtype(dtype)):
        for ours, xla in ((K.sin, jnp.sin), (K.cos, jnp.cos), (K.tan, jnp.tan)):
            got = np.asarray(jax.jit(ours)(x))
            np.testing.assert_allclose(got, np.asarray(jax.jit(xla)(x)), rtol=4e-7 if dtype == "float32" else 1e-15)
        s, c = jax.jit(K.sincos)(x)
        np.testing.assert_allclose(np.asarray(s) ** 2 + np.asarray(c) ** 2, 1.0, rtol=1e-6)


# each kernel, an independent jnp definition of it, a domain
DERIVATIVES = [
    (K.sin, jnp.sin, (-20, 20)), (K.cos, jnp.cos, (-20, 20)), (K.tan, jnp.tan, (-1.4, 1.4)),
    (K.arctan, jnp.arctan, (-30, 30)), (K.arcsin, jnp.arcsin, (-0.95, 0.95)), (K.arccos, jnp.arccos, (-0.95, 0.95)),
    (K.cbrt, lambda x: jnp.sign(x) * jnp.abs(x) ** (1 / 3), (0.2, 50)), (K.log, jnp.log, (1e-3, 1e3)),
]


@pytest.mark.parametrize("ours,theirs,domain", DERIVATIVES)
def test_derivatives_match_jax_autodiff(ours, theirs, domain):
    x = np.random.default_rng(0).uniform(*domain, 64)
    with jax.enable_x64(True):
        g = jax.jit(jax.vmap(jax.grad(ours)))(x)
        want = jax.vmap(jax.grad(theirs))(x)
        np.testing.assert_allclose(np.asarray(g), np.asarray(want), rtol=1e-13, atol=1e-15)
        h = jax.vmap(jax.grad(jax.grad(ours)))(x)  # second derivative: the rules are differentiable
        np.testing.assert_allclose(np.asarray(h), np.asarray(jax.vmap(jax.grad(jax.grad(theirs)))(x)),
                                   rtol=1e-11, atol=1e-13)


def test_arctan2_and_sincos_derivatives():
    rng = np.random.default_rng(1)
    y, x = rng.uniform(-3, 3, 32), rng.uniform(-3, 3, 32)
    with jax.enable_x64(True):
        for argnum in (0, 1):
            g = jax.vmap(jax.grad(K.arctan2, argnum))(y, x)
            np.testing.assert_allclose(g, jax.vmap(jax.grad(jnp.arctan2, argnum))(y, x), rtol=1e-13)
        jac = jax.jacfwd(lambda v: jnp.stack(K.sincos(v)))(0.7)
        np.testing.assert_allclose(jac, [np.cos(0.7), -np.sin(0.7)], rtol=1e-15)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_dtypes_computed_in_float32(dtype):
    x = jnp.linspace(-0.99, 0.99, 201).astype(dtype)
    truth = np.asarray(x, np.float64)
    eps = float(jnp.finfo(dtype).eps)
    for ours, exact in ((K.sin, np.sin), (K.arctan, np.arctan), (K.cbrt, np.cbrt), (K.arccos, np.arccos),
                        (K.tan, np.tan)):
        got = jax.jit(ours)(x)
        assert got.dtype == x.dtype
        # float32 work, one rounding to the low dtype: within one of its ulps
        np.testing.assert_allclose(np.asarray(got, np.float64), exact(truth), rtol=eps, atol=1e-30)


def test_integer_inputs_and_python_scalars():
    np.testing.assert_allclose(K.sin(jnp.arange(3)), np.sin(np.arange(3)), rtol=1e-6)
    assert float(K.cbrt(-8)) == -2.0
    assert abs(float(K.arctan2(1.0, 1.0)) - np.pi / 4) < 1e-7


def test_vmap_and_jit_of_kernels():
    x = np.random.default_rng(2).uniform(-5, 5, (4, 8)).astype(np.float32)
    got = jax.jit(jax.vmap(lambda r: K.sin(r) * K.arctan(r)))(x)
    np.testing.assert_allclose(got, np.sin(x) * np.arctan(x), rtol=3e-6, atol=1e-7)


def test_other_backends_get_xla_routines():
    """Lowered for a non-CPU platform, the kernel's code is absent (only XLA's own sine remains)."""
    x = jax.ShapeDtypeStruct((8,), jnp.float32)
    cpu = jax.jit(K.sin).trace(x).lower(lowering_platforms=("cpu",)).as_text()
    cuda = jax.jit(K.sin).trace(x).lower(lowering_platforms=("cuda",)).as_text()
    assert "round_nearest_even" in cpu  # the kernel's range reduction (XLA's sine stays for huge arguments)
    assert "stablehlo.sine" in cuda and "round_nearest_even" not in cuda


def test_lowering_uses_kernels_and_source_runs():
    text = "sin(a)*exp(-b**2) + atan2(a, b) + cbrt(a)*acos(b/3) + cot(a)"
    d = sd.derive(text, ["a", "b"], dtype="float64", simplify=False)
    assert "fast_jnp.sin(a)" in d.source and "fast_jnp.arctan2(a, b)" in d.source
    assert "fast_jnp.log(" in sd.derive("log(1 + x**2)", "x").source
    a = np.array([0.5, 1.3, -0.7])
    b = np.array([0.3, 2.0, 1.1])

    def f(a, b):
        return jnp.sin(a) * jnp.exp(-b**2) + jnp.arctan2(a, b) + jnp.cbrt(a) * jnp.arccos(b / 3) + 1 / jnp.tan(a)

    with jax.enable_x64(True):
        ga, gb = d(a, b)
        want = jax.vmap(jax.grad(f, (0, 1)))(a, b)
        np.testing.assert_allclose(np.asarray(ga), want[0], rtol=1e-13)
        np.testing.assert_allclose(np.asarray(gb), want[1], rtol=1e-13)
        # d.function stays a JAX function: its grad is f's second derivative
        h = jax.vmap(jax.grad(lambda u, v: d.function(u, v)[0]))(jnp.asarray(a), jnp.asarray(b))
        np.testing.assert_allclose(h, jax.vmap(jax.grad(jax.grad(f)))(a, b), rtol=1e-12)
