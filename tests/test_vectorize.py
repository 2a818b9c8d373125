"""Hessians lowered by template (symdiff._vectorize) and many-input calls packed into one transfer.

Oracles: scipy's closed-form Rosenbrock Hessian and JAX autodiff in float64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import sympy

import symdiff as sd
from symdiff._vectorize import plan_vectorized

N = 12
NAMES = [f"x{i}" for i in range(N)]
ROSENBROCK = " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(N - 1))


@pytest.fixture(autouse=True)
def x64():
    """The oracles (jnp.float64 inputs, jax.grad, jax.hessian) compute in float64."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def rosenbrock():
    return sd.derive(ROSENBROCK, NAMES, order=2, dtype="float64")


@pytest.fixture(scope="module")
def point():
    return np.random.default_rng(3).uniform(-1.5, 1.5, N)


def test_rosenbrock_hessian_uses_few_templates(rosenbrock):
    plan = rosenbrock._program._vector_plan
    assert plan is not None
    # first diagonal entry, interior diagonal entries, off-diagonal entries: three shapes for any n
    assert len(plan.groups) == 3


def test_rosenbrock_hessian_from_numpy_scalars_matches_scipy(rosenbrock, point):
    h = rosenbrock.array(*point)  # NumPy float64 scalars: the packed, one-transfer path
    assert h.shape == (N, N) and h.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(h), scipy.optimize.rosen_hess(point), rtol=1e-13, atol=1e-10)


def test_rosenbrock_hessian_from_jax_scalars_and_by_name(rosenbrock, point):
    expected = scipy.optimize.rosen_hess(point)
    h = rosenbrock.array(*[jnp.float64(v) for v in point])
    np.testing.assert_allclose(np.asarray(h), expected, rtol=1e-13, atol=1e-10)
    h = rosenbrock.array(**dict(zip(NAMES, point.tolist())))  # Python floats by name
    np.testing.assert_allclose(np.asarray(h), expected, rtol=1e-13, atol=1e-10)


def test_rosenbrock_hessian_broadcasts_over_points(rosenbrock):
    pts = np.random.default_rng(4).uniform(-1.5, 1.5, (5, N))
    h = rosenbrock.array(*pts.T)  # each input a vector of 5 points
    assert h.shape == (5, N, N)
    for p, hp in zip(pts, np.asarray(h)):
        np.testing.assert_allclose(hp, scipy.optimize.rosen_hess(p), rtol=1e-13, atol=1e-10)


def test_packed_inputs_keep_float32_default():
    d = sd.derive(ROSENBROCK, NAMES, order=2)
    h = d.array(*[0.5] * N)  # Python floats: the contract's float32 default
    assert h.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(h), scipy.optimize.rosen_hess(np.full(N, 0.5)), rtol=1e-6)


def test_packed_gradient_and_vjp_match_jax():
    d = sd.derive(ROSENBROCK, NAMES, dtype="float64")
    x = np.random.default_rng(5).uniform(-1.5, 1.5, N)

    def f(*xs):
        v = jnp.stack(xs)
        return jnp.sum(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)

    expected = jax.grad(f, argnums=tuple(range(N)))(*jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(d(*x)), np.asarray(expected), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(d.vjp(2.0, *x)), 2 * np.asarray(expected), rtol=1e-13)
    np.testing.assert_allclose(scipy.optimize.rosen_der(x), np.asarray(expected), rtol=1e-12)


def test_vectorised_hessian_keeps_the_domain_rule():
    """NaN wherever the expression's value is NaN, as the per-entry kernel does."""
    n = 10
    text = " + ".join(f"log(x{i})*x{i + 1}**2" for i in range(n - 1))
    names = [f"x{i}" for i in range(n)]
    d = sd.derive(text, names, order=2, dtype="float64")
    assert d._program._vector_plan is not None
    x = np.random.default_rng(6).uniform(0.5, 2.0, n)

    def f(v):
        return jnp.sum(jnp.log(v[:-1]) * v[1:] ** 2)

    np.testing.assert_allclose(np.asarray(d.array(*x)), np.asarray(jax.hessian(f)(jnp.asarray(x))), rtol=1e-12)
    x[3] = -1.0  # log(x3) undefined: the value is NaN, so is every entry
    assert np.isnan(np.asarray(d.array(*x))).all()


def test_no_plan_when_every_entry_has_its_own_shape():
    x, y, z = sympy.symbols("x y z", real=True)
    exprs = [sympy.sin(x), sympy.cos(y), sympy.exp(z), x * y, sympy.tan(z), x**3, y**4, z**5, sympy.log(x)]
    assert plan_vectorized([x, y, z], exprs) is None


def test_ragged_and_bad_inputs_still_get_clear_errors(rosenbrock):
    with pytest.raises(sd.ShapeError):
        rosenbrock.array(*([np.zeros(2)] * (N - 1) + [np.zeros(3)]))
    with pytest.raises(sd.InputError, match="x0"):
        rosenbrock.array(*(["a"] + [0.0] * (N - 1)))
