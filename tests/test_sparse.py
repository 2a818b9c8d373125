"""Sparse Jacobians and Hessians (d.sparse) and Hessian-vector products (d.hvp).

Oracles: SciPy's closed-form Rosenbrock derivatives (rosen_hess, rosen_hess_prod)
and JAX autodiff (jax.jacobian, jax.hessian) of independently written jax.numpy code,
in float64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
import sympy
from jax.experimental import sparse as jsparse

import symdiff as sd

N = 12
NAMES = [f"x{i}" for i in range(N)]
ROSENBROCK = " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(N - 1))


@pytest.fixture(autouse=True)
def x64():
    """The oracles compute in float64."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def hessian():
    return sd.derive(ROSENBROCK, NAMES, order=2, dtype="float64")


@pytest.fixture(scope="module")
def point():
    return np.random.default_rng(7).uniform(-1.5, 1.5, N)


# ---- scalar names: the Rosenbrock Hessian --------------------------------------------------------


def test_scalar_names_sparse_hessian_matches_rosen_hess(hessian, point):
    expected = scipy.optimize.rosen_hess(point)
    h = hessian.sparse(*point)
    assert isinstance(h, jsparse.BCOO)
    assert h.shape == (N, N) and h.nse == 3 * N - 2 and h.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(h.todense()), expected, rtol=1e-13, atol=1e-10)
    s = hessian.sparse(*point, format="scipy")
    assert isinstance(s, scipy.sparse.csr_array)
    assert s.nnz == 3 * N - 2 and s.dtype == np.float64
    np.testing.assert_allclose(s.toarray(), expected, rtol=1e-13, atol=1e-10)
    np.testing.assert_allclose(np.asarray(hessian.array(*point)), expected, rtol=1e-13, atol=1e-10)  # dense


def test_pattern_comes_from_the_closed_form_not_from_values(hessian):
    # at x = 0 the off-diagonal entries -400*x_i are zero in value, yet structurally nonzero: still stored
    h = hessian.sparse(*np.zeros(N), format="scipy")
    assert h.nnz == 3 * N - 2
    stored = {tuple(ij) for ij in np.asarray(hessian.sparse(*np.zeros(N)).indices).tolist()}
    assert stored == {(i, j) for i in range(N) for j in range(N) if abs(i - j) <= 1}
    assert np.count_nonzero(h.data) == N  # only the diagonal is nonzero in value there
    np.testing.assert_allclose(h.toarray(), scipy.optimize.rosen_hess(np.zeros(N)), atol=1e-12)


def test_sparse_by_name_with_jax_scalars_and_no_retrace(hessian, point):
    expected = scipy.optimize.rosen_hess(point)
    h = hessian.sparse(**{n: jnp.float64(v) for n, v in zip(NAMES, point)})
    np.testing.assert_allclose(np.asarray(h.todense()), expected, rtol=1e-13, atol=1e-10)
    hessian.sparse(*point)
    traces = sd.cache_stats()["traces"]
    other = point[::-1].copy()
    h = hessian.sparse(*other, format="scipy")
    assert sd.cache_stats()["traces"] == traces
    np.testing.assert_allclose(h.toarray(), scipy.optimize.rosen_hess(other), rtol=1e-13, atol=1e-10)


def test_hvp_matches_rosen_hess_prod_from_hessian_and_gradient(hessian, point):
    v = np.random.default_rng(8).normal(size=N)
    expected = scipy.optimize.rosen_hess_prod(point, v)
    np.testing.assert_allclose(np.asarray(hessian.hvp(v, *point)), expected, rtol=1e-12, atol=1e-9)
    gradient = sd.derive(ROSENBROCK, NAMES, dtype="float64")  # order 1: the Hessian of the same expression
    hv = gradient.hvp(jnp.asarray(v), *point)
    assert hv.shape == (N,) and hv.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(hv), expected, rtol=1e-12, atol=1e-9)


def test_default_dtype_is_float32_for_python_scalars(hessian, point):
    d = sd.derive(ROSENBROCK, NAMES, order=2)
    h = d.sparse(*point.tolist())
    assert h.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(h.todense()), scipy.optimize.rosen_hess(point), rtol=1e-5, atol=1e-3)


# ---- Jacobians of vector-valued expressions --------------------------------------------------------

M = 8


def _residuals_jnp(x):
    """Independent jax.numpy code: a chained residual system (Broyden tridiagonal, plus a sine)."""
    xm = jnp.concatenate([jnp.zeros(1), x[:-1]])
    xp = jnp.concatenate([x[1:], jnp.zeros(1)])
    r = (3 - 2 * x) * x - xm - 2 * xp + 1
    return jnp.concatenate([r, jnp.array([jnp.sin(x[0]) * x[-1]])])


def _residuals_text():
    out = []
    for i in range(M):
        xm = f"x{i - 1}" if i > 0 else "0"
        xp = f"x{i + 1}" if i < M - 1 else "0"
        out.append(f"(3 - 2*x{i})*x{i} - {xm} - 2*{xp} + 1")
    return out + [f"sin(x0)*x{M - 1}"]


def test_sparse_jacobian_matches_jax_jacobian():
    names = [f"x{i}" for i in range(M)]
    d = sd.derive(_residuals_text(), names, dtype="float64")
    x = np.random.default_rng(9).normal(size=M)
    expected = np.asarray(jax.jacobian(_residuals_jnp)(jnp.asarray(x)))
    j = d.sparse(*x)
    assert j.shape == (M + 1, M)
    assert j.nse == 3 * M - 2 + 2  # tridiagonal plus the sine row's two entries
    np.testing.assert_allclose(np.asarray(j.todense()), expected, rtol=1e-13, atol=1e-12)
    s = d.sparse(*x, format="scipy")
    np.testing.assert_allclose(s.toarray(), expected, rtol=1e-13, atol=1e-12)
    # stored exactly where jax's Jacobian is nonzero at a random point
    assert set(zip(*s.nonzero())) == set(zip(*np.nonzero(expected)))


def test_vector_valued_hessian_is_a_3d_bcoo():
    d = sd.derive(["x*y", "sin(x) + z**2"], ["x", "y", "z"], order=2, dtype="float64")
    h = d.sparse(0.3, 0.5, 0.7)
    expected = jax.hessian(lambda v: jnp.stack([v[0] * v[1], jnp.sin(v[0]) + v[2] ** 2]))(jnp.array([0.3, 0.5, 0.7]))
    assert h.shape == (2, 3, 3) and h.nse == 4
    np.testing.assert_allclose(np.asarray(h.todense()), np.asarray(expected), rtol=1e-14)
    with pytest.raises(sd.SymdiffError, match="format='bcoo'"):
        d.sparse(0.3, 0.5, 0.7, format="scipy")


# ---- lazy lowering --------------------------------------------------------------------------------

BIG = 70  # 2485 Hessian entries: more than _compile.LAZY_ENTRIES


def test_large_hessian_is_not_lowered_densely_until_asked():
    names = [f"y{i}" for i in range(BIG)]
    text = " + ".join(f"(y{i} - y{i + 1})**4" for i in range(BIG - 1))
    d = sd.derive(text, names, order=2, dtype="float64")
    kernel = d._program.kernel
    assert getattr(kernel, "_kernel", "eager") is None  # nothing lowered yet
    y = np.linspace(-1, 1, BIG)

    def f(v):
        return jnp.sum((v[:-1] - v[1:]) ** 4)

    expected = np.asarray(jax.hessian(f)(jnp.asarray(y)))
    np.testing.assert_allclose(d.sparse(*y, format="scipy").toarray(), expected, rtol=1e-12, atol=1e-12)
    assert kernel._kernel is None  # the sparse path lowered its 3 templates only
    assert "d_y3_y4 = " in d.source  # the dense source lowers every entry, on first use
    assert kernel._kernel is not None


def test_lowering_error_still_raised_at_derive_for_large_programs():
    ys = sympy.symbols(f"y0:{BIG}", real=True)
    expr = sum((ys[i] - ys[i + 1]) ** 2 for i in range(BIG - 1)) + sympy.besselj(0, ys[0])
    with pytest.raises(sd.LoweringError, match="besselj"):
        sd.derive(expr, [str(y) for y in ys], order=2)


# ---- errors --------------------------------------------------------------------------------------


def test_errors_name_the_problem(hessian, point):
    with pytest.raises(sd.SymdiffError, match="unknown sparse format 'csc'"):
        hessian.sparse(*point, format="csc")
    with pytest.raises(sd.ShapeError, match="one value per input"):
        hessian.sparse(*([point] * N))
    with pytest.raises(sd.ShapeError, match=f"vector of {N} entries"):
        hessian.hvp(np.ones(N + 1), *point)
    gradient = sd.derive("x**2 + y", ["x", "y"])
    with pytest.raises(sd.SymdiffError, match="gradient, a dense vector"):
        gradient.sparse(1.0, 2.0)
    with pytest.raises(sd.SymdiffError, match="vector-valued"):
        sd.derive(["x*y", "x"], ["x", "y"]).hvp([1.0, 1.0], 1.0, 2.0)
    with pytest.raises(sd.InputError, match="missing input"):
        hessian.sparse(*point[:-1])
