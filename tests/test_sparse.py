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


# ---- arrays (shapes=): indexing, the vector Rosenbrock, chained problems --------------------------

ROSEN = "sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)"
X = {"x": "n"}


@pytest.fixture(scope="module")
def rosen_hessian():
    return sd.derive(ROSEN, wrt="x", order=2, shapes=X)


def test_indexing_closed_forms_print_as_slices_and_pads():
    g = sd.derive(ROSEN, wrt="x", shapes=X)
    text = str(g)
    assert "x[1:]" in text and "x[:-1]" in text and "pad(" in text
    x = np.random.default_rng(10).uniform(-1.5, 1.5, 9)
    np.testing.assert_allclose(np.asarray(g(x=x)), scipy.optimize.rosen_der(x), rtol=1e-12, atol=1e-10)


def test_vector_rosenbrock_dense_sparse_and_hvp_match_scipy(rosen_hessian):
    x = np.random.default_rng(11).uniform(-1.5, 1.5, 10)
    expected = scipy.optimize.rosen_hess(x)
    np.testing.assert_allclose(np.asarray(rosen_hessian(x=x)), expected, rtol=1e-12, atol=1e-9)  # dense
    h = rosen_hessian.sparse(x=x)
    assert isinstance(h, jsparse.BCOO) and h.shape == (10, 10) and h.nse == 3 * 10 - 2
    np.testing.assert_allclose(np.asarray(h.todense()), expected, rtol=1e-12, atol=1e-9)
    s = rosen_hessian.sparse(x=x, format="scipy")
    assert s.nnz == 3 * 10 - 2 and s.dtype == np.float64
    np.testing.assert_allclose(s.toarray(), expected, rtol=1e-12, atol=1e-9)
    v = np.random.default_rng(12).normal(size=10)
    np.testing.assert_allclose(np.asarray(rosen_hessian.hvp(v, x=x)), scipy.optimize.rosen_hess_prod(x, v),
                               rtol=1e-12, atol=1e-9)
    traces = sd.cache_stats()["traces"]  # same shape, new values: the pattern and the compiled calls are reused
    y = x[::-1].copy()
    np.testing.assert_allclose(np.asarray(rosen_hessian.sparse(x=y).todense()), scipy.optimize.rosen_hess(y),
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(np.asarray(rosen_hessian.hvp(v, x=y)), scipy.optimize.rosen_hess_prod(y, v),
                               rtol=1e-12, atol=1e-9)
    assert sd.cache_stats()["traces"] == traces


def test_vector_rosenbrock_from_a_callable_and_hvp_of_the_gradient():
    def rosen(x):
        return sd.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    g = sd.derive(rosen, wrt="x", shapes=X)
    x = np.random.default_rng(13).uniform(-1.5, 1.5, 7)
    v = np.random.default_rng(14).normal(size=7)
    np.testing.assert_allclose(np.asarray(g(x=x)), scipy.optimize.rosen_der(x), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(np.asarray(g.hvp(v, x=x)), scipy.optimize.rosen_hess_prod(x, v), rtol=1e-12, atol=1e-9)


def test_vector_rosenbrock_at_n_1e5(rosen_hessian):
    n = 10**5
    rng = np.random.default_rng(15)
    x = rng.uniform(-1.5, 1.5, n)
    h = rosen_hessian.sparse(x=x, format="scipy")
    assert h.shape == (n, n) and h.nnz == 3 * n - 2
    for _ in range(2):  # H is tridiagonal and symmetric, so two products pin down its three diagonals
        v = rng.normal(size=n)
        expected = scipy.optimize.rosen_hess_prod(x, v)
        np.testing.assert_allclose(h @ v, expected, rtol=1e-10, atol=1e-7)
        np.testing.assert_allclose(np.asarray(rosen_hessian.hvp(v, x=x)), expected, rtol=1e-10, atol=1e-7)
    assert rosen_hessian.sparse(x=x).nse == 3 * n - 2


BROYDEN = ("sum(((3 - 2*x[1:-1])*x[1:-1] - x[:-2] - 2*x[2:] + 1)**2)"
           " + ((3 - 2*x[0])*x[0] - 2*x[1] + 1)**2 + ((3 - 2*x[-1])*x[-1] - x[-2] + 1)**2")
WOOD = ("1 + sum(100*(x[0:-3:2]**2 - x[1:-2:2])**2 + (1 - x[0:-3:2])**2 + 90*(x[2:-1:2]**2 - x[3::2])**2"
        " + (1 - x[2:-1:2])**2 + 10*(x[1:-2:2] + x[3::2] - 2)**2 + 0.1*(x[1:-2:2] - x[3::2])**2)")


def _broyden_jnp(x):
    """MGH 30, Broyden tridiagonal: sum of squared residuals, written independently with padding."""
    xp = jnp.pad(x, 1)
    r = (3 - 2 * x) * x - xp[:-2] - 2 * xp[2:] + 1
    return jnp.sum(r**2)


def _wood_jnp(x):
    """CUTEst CHAINWOO (chained Wood), written independently over the pairs (x[2i], x[2i+1])."""
    total = 1.0
    for i in range(0, x.shape[0] - 3, 2):
        a, b, c, d = x[i], x[i + 1], x[i + 2], x[i + 3]
        total += (100 * (a**2 - b) ** 2 + (1 - a) ** 2 + 90 * (c**2 - d) ** 2 + (1 - c) ** 2
                  + 10 * (b + d - 2) ** 2 + 0.1 * (b - d) ** 2)
    return total


@pytest.mark.parametrize("text, reference, n", [(BROYDEN, _broyden_jnp, 9), (WOOD, _wood_jnp, 10)],
                         ids=["broyden_tridiagonal", "chained_wood"])
def test_chained_problems_match_jax_hessian(text, reference, n):
    h = sd.derive(text, wrt="x", order=2, shapes=X)
    x = np.random.default_rng(16).uniform(-1.5, 1.5, n)
    expected = np.asarray(jax.hessian(reference)(jnp.asarray(x)))
    s = h.sparse(x=x, format="scipy")
    np.testing.assert_allclose(s.toarray(), expected, rtol=1e-11, atol=1e-9)
    stored = {tuple(ij) for ij in np.asarray(h.sparse(x=x).indices).tolist()}
    assert stored == set(zip(*np.nonzero(expected)))  # exactly the nonzeros, at a random point
    v = np.random.default_rng(17).normal(size=n)
    np.testing.assert_allclose(np.asarray(h.hvp(v, x=x)), expected @ v, rtol=1e-11, atol=1e-9)


def test_sparse_jacobian_of_an_array_valued_expression_matches_jax_jacobian():
    d = sd.derive("x[1:]*x[:-1] - c*sin(x[1:])**2", wrt="x", shapes=X)
    x = np.random.default_rng(18).normal(size=9)

    def f(x):
        return x[1:] * x[:-1] - 0.7 * jnp.sin(x[1:]) ** 2

    expected = np.asarray(jax.jacobian(f)(jnp.asarray(x)))
    j = d.sparse(x=x, c=0.7)
    assert j.shape == (8, 9) and j.nse == 2 * 8
    np.testing.assert_allclose(np.asarray(j.todense()), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d.sparse(x=x, c=0.7, format="scipy").toarray(), expected, rtol=1e-12, atol=1e-12)


def test_matrix_wrt_hessian_is_flattened():
    """Indexing a matrix, and a product that couples entries of one row of A only (block structure)."""
    h = sd.derive("A[1, 2]*sum(A[:, 0]**2) + sum(A[0, :]**3) + sum((A @ b)**2)", wrt="A", order=2,
                  shapes={"A": (3, 4), "b": 4})
    a = np.random.default_rng(19).normal(size=(3, 4))
    b = np.random.default_rng(22).normal(size=4)

    def f(a):
        return a[1, 2] * jnp.sum(a[:, 0] ** 2) + jnp.sum(a[0, :] ** 3) + jnp.sum((a @ b) ** 2)

    expected = np.asarray(jax.hessian(f)(jnp.asarray(a))).reshape(12, 12)
    s = h.sparse(A=a, b=b, format="scipy")
    assert s.shape == (12, 12)
    np.testing.assert_allclose(s.toarray(), expected, rtol=1e-12, atol=1e-12)
    assert {tuple(ij) for ij in np.asarray(h.sparse(A=a, b=b).indices).tolist()} == set(zip(*np.nonzero(expected)))
    v = np.random.default_rng(20).normal(size=(3, 4))
    np.testing.assert_allclose(np.asarray(h.hvp(v, A=a, b=b)), (expected @ v.ravel()).reshape(3, 4), rtol=1e-12)


def test_index_errors_at_the_call_are_shape_errors():
    d = sd.derive("x[4] + sum(x[1:-1])", wrt="x", shapes=X)
    np.testing.assert_allclose(np.asarray(d(x=np.arange(5.0))), [0, 1, 1, 1, 1])
    with pytest.raises(sd.ShapeError, match="index 4 is out of bounds"):
        d(x=np.arange(4.0))
    with pytest.raises(sd.ShapeError):
        sd.derive("sum(x[1:-1])", wrt="x", shapes=X)(x=np.arange(1.0))
    with pytest.raises(sd.ShapeError, match="out of bounds"):
        sd.derive("x[3]", wrt="x", shapes={"x": 3})
    with pytest.raises(sd.ParseError, match="integer constants"):
        sd.derive("x[a]", wrt="x", shapes=X)


def test_large_scale_example_runs_in_quick_mode(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "large_scale.py"
    spec = importlib.util.spec_from_file_location("large_scale_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--quick", "--problem", "broyden", "--method", "trust-constr"]) == 0
    out = capsys.readouterr().out
    assert "closed-form gradient" in out and "pad(" in out and "converged" in out
    assert "9,994 stored entries" in out  # Broyden's pentadiagonal Hessian: 5n - 6 at n = 2000


def test_indexed_derivative_saves_loads_and_cross_checks(tmp_path):
    g = sd.derive(ROSEN, wrt="x", shapes=X)
    x = np.random.default_rng(21).uniform(-1.5, 1.5, 6)
    assert g.check(x=x).ok
    g.save(tmp_path / "rosen.sdz")
    loaded = sd.load(tmp_path / "rosen.sdz")
    np.testing.assert_allclose(np.asarray(loaded(x=x)), scipy.optimize.rosen_der(x), rtol=1e-6)

