"""Domains and special values follow JAX: NaN/inf, never an exception, never a wrong finite number."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symdiff as sd

OUTSIDE = {
    # expression: (jax function, points outside or at the edge of the real domain)
    "log(x)": (jnp.log, [-1.0, 0.0, 2.0]),
    "sqrt(x)": (jnp.sqrt, [-4.0, 0.0, 4.0]),
    "acosh(x)": (jnp.arccosh, [0.5, -2.0, 3.0]),
    "atanh(x)": (jnp.arctanh, [2.0, -1.0, 0.5]),
    "asin(x)": (jnp.arcsin, [1.5, -2.0, 0.25]),
    "1/x": (lambda x: 1 / x, [0.0, -0.0, 2.0]),
    "x**0.5": (lambda x: x**0.5, [-1.0, 0.0, 9.0]),
}


def _same_special(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)), (got, want)
    finite = np.isfinite(want)
    assert np.array_equal(np.isinf(got), np.isinf(want)), (got, want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12)


@pytest.mark.parametrize("text", sorted(OUTSIDE))
def test_outside_domain_matches_jax_nan_inf(text):
    fn, points = OUTSIDE[text]
    xs = np.array(points)
    d = sd.derive(text, "x", dtype="float64")
    value, grad = d.value_and_grad(xs)
    with jax.enable_x64(True):
        want_value = fn(jnp.asarray(xs))
        want_grad = jax.vmap(jax.grad(fn))(jnp.asarray(xs))
    _same_special(value, want_value)
    # Where the value is undefined (NaN) the derivative is NaN too; JAX's rule may
    # return a finite number there (arccosh'(-2)), symdiff never does. Elsewhere: JAX's.
    undefined = np.isnan(np.asarray(want_value))
    assert np.isnan(np.asarray(grad)[undefined]).all()
    _same_special(np.asarray(grad)[~undefined], np.asarray(want_grad)[~undefined])


def test_float16_overflow_gives_inf_like_jax():
    d = sd.derive("exp(x)", "x", dtype="float16")
    out = d(np.array([1.0, 20.0]))
    assert out.dtype == jnp.float16
    want = jax.grad(jnp.exp)(jnp.float16(20.0))
    assert np.isinf(float(out[1])) and np.isinf(float(want))
    assert float(out[0]) == pytest.approx(np.e, rel=1e-3)


def test_kink_convention_in_value_derivative_and_check():
    d = sd.derive("abs(x) + relu(x) + sign(x)", "x", dtype="float64")
    value, grad = d.value_and_grad(np.array([0.0, -2.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(value), [0.0, 1.0, 7.0])
    np.testing.assert_array_equal(np.asarray(grad), [0.0, -1.0, 2.0])
    assert sd.derive("abs(x)", "x").check([0.0, 1.0]).ok


def test_domain_guard_only_where_the_value_can_be_undefined():
    """log and sqrt of arguments SymPy proves nonnegative need no NaN guard; log(a) does."""
    assert "isnan" not in sd.derive("log(1 + exp(a*b))").source
    assert "isnan" not in sd.derive("a**2*sqrt(b**2 + 1)").source
    d = sd.derive("log(a)*b", dtype="float64")
    assert "isnan" in d.source
    ga, gb = d(np.array([-1.0, 2.0]), np.array([3.0, 3.0]))
    assert np.isnan(np.asarray(ga)[0]) and np.isnan(np.asarray(gb)[0])
    np.testing.assert_allclose(np.asarray(ga)[1], 1.5)
    np.testing.assert_allclose(np.asarray(gb)[1], np.log(2.0))
