"""Table-driven: every supported function, three independent derivatives compared.

For each function of the language (every name of ``symdiff._functions.FUNCTIONS``,
plus ``**``, and through second derivatives the helper heads of
``symdiff._lower.FUNCTION_TABLE``: polygamma, Heaviside, DiracDelta):

1. ``sd.derive(text)`` -- the symbolic derivative, compiled;
2. ``jax.grad`` / ``jax.hessian`` of an independently written ``jax.numpy``
   implementation (not the lowered expression);
3. ``mpmath.diff`` of an independently written mpmath implementation
   (high-precision numerical differentiation);

at points inside each function's domain, in float64 and float32, orders 1 and 2.
Every evaluation is batched (one call per dtype with an array of points) so JAX
compiles stay few.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import mpmath
import numpy as np
import pytest

import symdiff as sd
from symdiff._functions import FUNCTIONS
from symdiff._lower import FUNCTION_TABLE

mp = mpmath.mp


def _mp_cbrt(x):
    return mpmath.sign(x) * mpmath.cbrt(abs(x))


# name -> (text, jnp implementation, mpmath implementation, per-variable domain (lo, hi))
# Variables are x (and y for two-argument functions). Domains keep away from poles,
# branch cuts and kinks, where the derivative is a convention (tested separately below).
SPECS = {
    "sin": ("sin(x)", jnp.sin, mpmath.sin, [(-3.0, 3.0)]),
    "cos": ("cos(x)", jnp.cos, mpmath.cos, [(-3.0, 3.0)]),
    "tan": ("tan(x)", jnp.tan, mpmath.tan, [(-1.2, 1.2)]),
    "cot": ("cot(x)", lambda x: jnp.cos(x) / jnp.sin(x), mpmath.cot, [(0.3, 2.8)]),
    "sec": ("sec(x)", lambda x: 1 / jnp.cos(x), mpmath.sec, [(-1.2, 1.2)]),
    "csc": ("csc(x)", lambda x: 1 / jnp.sin(x), mpmath.csc, [(0.3, 2.8)]),
    "asin": ("asin(x)", jnp.arcsin, mpmath.asin, [(-0.9, 0.9)]),
    "acos": ("acos(x)", jnp.arccos, mpmath.acos, [(-0.9, 0.9)]),
    "atan": ("atan(x)", jnp.arctan, mpmath.atan, [(-3.0, 3.0)]),
    "atan2": ("atan2(x, y)", jnp.arctan2, mpmath.atan2, [(-2.0, 2.0), (0.3, 2.0)]),
    "sinh": ("sinh(x)", jnp.sinh, mpmath.sinh, [(-2.0, 2.0)]),
    "cosh": ("cosh(x)", jnp.cosh, mpmath.cosh, [(-2.0, 2.0)]),
    "tanh": ("tanh(x)", jnp.tanh, mpmath.tanh, [(-2.0, 2.0)]),
    "asinh": ("asinh(x)", jnp.arcsinh, mpmath.asinh, [(-3.0, 3.0)]),
    "acosh": ("acosh(x)", jnp.arccosh, mpmath.acosh, [(1.2, 4.0)]),
    "atanh": ("atanh(x)", jnp.arctanh, mpmath.atanh, [(-0.8, 0.8)]),
    "exp": ("exp(x)", jnp.exp, mpmath.exp, [(-2.0, 2.0)]),
    "log": ("log(x)", jnp.log, mpmath.log, [(0.2, 5.0)]),
    "log_base": ("log(x, y)", lambda x, y: jnp.log(x) / jnp.log(y), lambda x, y: mpmath.log(x, y),
                 [(0.2, 5.0), (1.5, 4.0)]),
    "sqrt": ("sqrt(x)", jnp.sqrt, mpmath.sqrt, [(0.2, 5.0)]),
    "cbrt": ("cbrt(x)", jnp.cbrt, _mp_cbrt, [(0.3, 5.0)]),
    "cbrt_negative": ("cbrt(x)", jnp.cbrt, _mp_cbrt, [(-5.0, -0.3)]),
    "abs": ("abs(x)", jnp.abs, abs, [(0.3, 3.0)]),
    "abs_negative": ("abs(x)", jnp.abs, abs, [(-3.0, -0.3)]),
    "sign": ("sign(x)*x**2", lambda x: jnp.sign(x) * x**2, lambda x: mpmath.sign(x) * x**2, [(-3.0, 3.0)]),
    "erf": ("erf(x)", jsp.erf, mpmath.erf, [(-2.0, 2.0)]),
    "erfc": ("erfc(x)", jsp.erfc, mpmath.erfc, [(-2.0, 2.0)]),
    "gamma": ("gamma(x)", jsp.gamma, mpmath.gamma, [(0.4, 4.0)]),
    "loggamma": ("loggamma(x)", jsp.gammaln, mpmath.loggamma, [(0.4, 5.0)]),
    "sigmoid": ("sigmoid(x)", jax.nn.sigmoid, lambda x: 1 / (1 + mpmath.exp(-x)), [(-4.0, 4.0)]),
    "softplus": ("softplus(x)", jax.nn.softplus, lambda x: mpmath.log(1 + mpmath.exp(x)), [(-4.0, 4.0)]),
    "relu": ("relu(x)", lambda x: jnp.maximum(x, 0.0), lambda x: max(x, 0), [(-3.0, 3.0)]),
    "min": ("min(x, y)", jnp.minimum, min, [(-2.0, 2.0), (-2.0, 2.0)]),
    "max": ("max(x, y)", jnp.maximum, max, [(-2.0, 2.0), (-2.0, 2.0)]),
    # the operators
    "pow": ("x**y", lambda x, y: x**y, lambda x, y: x**y, [(0.3, 3.0), (-2.0, 2.0)]),
    "caret_int_pow": ("x^3 - 2/x", lambda x: x**3 - 2 / x, lambda x: x**3 - 2 / x, [(0.3, 3.0)]),
    "arith": ("(x - y)*(x + 2*y)/(1 + y**2)", lambda x, y: (x - y) * (x + 2 * y) / (1 + y**2),
              lambda x, y: (x - y) * (x + 2 * y) / (1 + y**2), [(-2.0, 2.0), (-2.0, 2.0)]),
    "constants": ("pi*x + E**x", lambda x: jnp.pi * x + jnp.e**x, lambda x: mpmath.pi * x + mpmath.e**x,
                  [(-2.0, 2.0)]),
    # composites whose second derivatives reach polygamma, Heaviside and DiracDelta
    "loggamma_of_square": ("loggamma(x**2 + 1)", lambda x: jsp.gammaln(x**2 + 1),
                           lambda x: mpmath.loggamma(x**2 + 1), [(-2.0, 2.0)]),
    "relu_times_x": ("relu(x)*x", lambda x: jnp.maximum(x, 0.0) * x, lambda x: max(x, 0) * x, [(-3.0, 3.0)]),
}

N_POINTS = 6
TOL = {  # (rtol, atol) against float64 references
    "float64": (1e-9, 1e-9),
    "float32": (2e-4, 2e-4),
}


def _points(spec_name: str, domains) -> list[np.ndarray]:
    rng = np.random.default_rng(abs(hash(spec_name)) % 2**32)
    pts = [rng.uniform(lo, hi, N_POINTS) for lo, hi in domains]
    if spec_name in ("min", "max"):  # keep away from the tie x == y (a kink)
        pts[1] = np.where(np.abs(pts[0] - pts[1]) < 0.2, pts[0] + 0.5, pts[1])
    if spec_name in ("relu", "sign", "relu_times_x"):
        pts[0] = np.where(np.abs(pts[0]) < 0.2, 0.7, pts[0])
    return pts


def _mp_derivatives(mp_fn, point, order: int) -> np.ndarray:
    """Every order-th partial of mp_fn at point (tuple of floats), shape (n,)*order, by mpmath."""
    n = len(point)
    out = np.zeros((n,) * order)
    with mpmath.workdps(40):
        x = [mpmath.mpf(float(v)) for v in point]
        for idx in np.ndindex(*(n,) * order):
            counts = tuple(idx.count(i) for i in range(n))
            out[idx] = float(mpmath.diff(lambda *a: mp_fn(*a), x, counts))
    return out


def _jax_derivatives(jnp_fn, points64: list[np.ndarray], order: int) -> np.ndarray:
    """jax.grad / jax.hessian of the independent jnp implementation, float64, batched by vmap."""
    n = len(points64)
    with jax.enable_x64(True):
        def f(v):
            return jnp_fn(*[v[i] for i in range(n)])

        d = jax.grad(f) if order == 1 else jax.hessian(f)
        stacked = jnp.stack([jnp.asarray(p, dtype=jnp.float64) for p in points64], axis=-1)
        return np.asarray(jax.jit(jax.vmap(d))(stacked), dtype=np.float64)


def _symdiff_derivatives(text: str, points: list[np.ndarray], order: int, dtype) -> np.ndarray:
    d = sd.derive(text, order=order)
    names = [s.name for s in d.args]
    assert names == ["x", "y"][: len(points)], names
    args = [np.asarray(p, dtype=dtype) for p in points]
    if order == 1:
        got = d(*args)
        assert isinstance(got, tuple) and len(got) == len(points)
        for g in got:
            assert g.dtype == np.dtype(dtype), (g.dtype, dtype)
            assert g.shape == (N_POINTS,)
        return np.stack([np.asarray(g, dtype=np.float64) for g in got], axis=-1)
    got = d.array(*args)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == (N_POINTS,) + (len(points),) * order
    return np.asarray(got, dtype=np.float64)


def test_table_covers_every_function_of_the_language():
    covered = {spec[0].split("(")[0] for spec in SPECS.values()}
    missing = set(FUNCTIONS) - covered
    assert not missing, f"functions without a row in SPECS: {sorted(missing)}"


def test_every_lowering_reachable_from_the_language_is_exercised():
    """Every FUNCTION_TABLE head that the language can produce appears in a derive below."""
    import sympy

    reached = set()
    for text, *_rest in SPECS.values():
        for order in (1, 2):
            d = sd.derive(text, order=order, simplify=False)
            exprs = [d.expr] + ([*d.closed_form.values()] if order == 1 else list(d.closed_form))
            for e in exprs:
                for node in sympy.preorder_traversal(e):
                    if type(node) in FUNCTION_TABLE:
                        reached.add(type(node))
    language_heads = {type(FUNCTIONS[n][0](sympy.Symbol("q", real=True)))
                      for n, (_, arities) in FUNCTIONS.items() if 1 in arities and n not in ("log",)}
    expected = {h for h in FUNCTION_TABLE if h in language_heads}
    expected |= {sympy.polygamma, sympy.Heaviside, sympy.DiracDelta, sympy.atan2, sympy.log}
    missing = {h.__name__ for h in expected} - {h.__name__ for h in reached}
    assert not missing, f"lowerings never exercised: {sorted(missing)}"


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_derivative_matches_jax_grad_and_mpmath(name, order):
    text, jnp_fn, mp_fn, domains = SPECS[name]
    points = _points(name, domains)
    ref_jax = _jax_derivatives(jnp_fn, points, order)
    ref_mp = np.stack([_mp_derivatives(mp_fn, p, order) for p in zip(*points)])
    # the two references agree with each other (guards the table itself)
    np.testing.assert_allclose(ref_jax, ref_mp, rtol=1e-9, atol=1e-9, err_msg=f"references disagree for {text}")
    for dtype in ("float64", "float32"):
        rtol, atol = TOL[dtype]
        got = _symdiff_derivatives(text, points, order, dtype)
        scale = np.maximum(1.0, np.abs(ref_mp))
        np.testing.assert_allclose(
            got, ref_mp, rtol=rtol, atol=atol * np.max(scale),
            err_msg=f"d^{order} {text} in {dtype} disagrees with mpmath / jax.grad",
        )


# ---- the kink convention: abs'(0) = sign(0) = 0, relu'(0) = 0, min/max tie = 1/2 each, sign' = 0


def test_kink_abs_and_sign_at_zero():
    d = sd.derive("abs(x)", "x")
    np.testing.assert_array_equal(np.asarray(d(np.array([-2.0, 0.0, 3.0]))), [-1.0, 0.0, 1.0])
    s = sd.derive("sign(x)", "x")
    np.testing.assert_array_equal(np.asarray(s(np.array([-2.0, 0.0, 3.0]))), [0.0, 0.0, 0.0])
    s2 = sd.derive("sign(x)", "x", order=2)
    np.testing.assert_array_equal(np.asarray(s2(np.array([-2.0, 0.0, 3.0]))), [0.0, 0.0, 0.0])


def test_kink_relu_at_zero():
    d = sd.derive("relu(x)", "x")
    np.testing.assert_array_equal(np.asarray(d(np.array([-1.0, 0.0, 2.0]))), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("fn", ["min", "max"])
def test_kink_min_max_tie_is_one_half_each(fn):
    d = sd.derive(f"{fn}(x, y)")
    gx, gy = d(np.array([1.0, 2.0, -3.0]), np.array([1.0, 0.0, 5.0]))
    big_x = 1.0 if fn == "max" else 0.0
    np.testing.assert_array_equal(np.asarray(gx), [0.5, big_x, 1.0 - big_x])
    np.testing.assert_array_equal(np.asarray(gy), [0.5, 1.0 - big_x, big_x])


def test_kink_min_max_tie_with_constant():
    d = sd.derive("max(x, 0) + min(x, 1)", "x")
    np.testing.assert_array_equal(np.asarray(d(np.array([0.0, 1.0, 0.5]))), [1.5, 1.5, 2.0])


def test_kink_convention_float32_too():
    d = sd.derive("abs(x) + relu(x) + max(x, y)")
    gx, gy = d(np.zeros(2, np.float32), np.zeros(2, np.float32))
    assert gx.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(gx), [0.5, 0.5])
    np.testing.assert_array_equal(np.asarray(gy), [0.5, 0.5])
