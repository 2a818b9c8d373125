"""Lowering: the table walk, shared subexpressions, large and deep expressions, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff._lower import build_kernel, is_lowerable


def test_shared_subexpressions_are_computed_once():
    d = sd.derive("exp(sin(a*b)) * cos(sin(a*b))")
    assert d.source.count("a * b") == 1  # the product, shared by every use
    assert d.source.count("jnp.sin(") == 2  # sin(a*b) and sin(sin(a*b)), once each


def test_unknown_head_raises_lowering_error_naming_it():
    x = sympy.Symbol("x", real=True)
    with pytest.raises(sd.LoweringError, match="besselj"):
        build_kernel([x], [sympy.besselj(1, x)], [])
    assert not is_lowerable(sympy.besselj(1, x))


def test_constants_keep_float32_and_float64():
    d32 = sd.derive("x*pi/3 + sqrt(2)*x**2", "x", dtype="float32")
    assert d32(np.float32(1.0)).dtype == jnp.float32
    d64 = sd.derive("x*pi/3 + sqrt(2)*x**2", "x", dtype="float64")
    np.testing.assert_equal(float(d64(1.0)), np.pi / 3 + 2 * np.sqrt(2))


def test_large_sum_compiles_without_recursion_error():
    n = 3000
    text = " + ".join(f"sin(x{i})*x{i + 1}" for i in range(n))
    d = sd.derive(text, ["x0", "x1"], simplify=False)
    xs = np.linspace(0.1, 1.0, n + 1)
    g0, g1 = d(*xs)
    assert float(g0) == pytest.approx(np.cos(xs[0]) * xs[1], rel=1e-6)
    assert float(g1) == pytest.approx(np.sin(xs[0]) + np.cos(xs[1]) * xs[2], rel=1e-6)


def test_nesting_1000_levels_deep():
    text = "(" * 1000 + "x" + "*0.999+sin(y))" * 1000  # Python's own ast parser stops at 200

    def f(x, y):  # oracle: the same nested computation in JAX, differentiated by JAX
        v = x
        for _ in range(1000):
            v = v * 0.999 + jnp.sin(y)
        return v

    with jax.enable_x64(True):
        want = [float(g) for g in jax.grad(f, argnums=(0, 1))(jnp.float64(0.5), jnp.float64(0.25))]
    got = sd.derive(text, dtype="float64")(0.5, 0.25)
    np.testing.assert_allclose([float(g) for g in got], want, rtol=1e-9)


def test_piecewise_lowers_to_where():
    x = sympy.Symbol("x", real=True)
    e = sympy.Piecewise((x**2, x < 0), (sympy.sin(x), x < 1), (x, True))
    d = sd.derive(e, "x", dtype="float64")
    xs = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(np.asarray(d(xs)), [-2.0, np.cos(0.5), 1.0], rtol=1e-12)
