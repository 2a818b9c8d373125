"""derive(): the contract of API.md §1, checked against independent JAX oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

import symdiff as sd


def test_seed_example_golden():
    d = sd.derive("3*a**3 - b**2")
    assert str(d) == "d/da = 9*a**2\nd/db = -2*b"
    ga, gb = d(a=[2.0, 3.0], b=[6.0, 4.0])
    np.testing.assert_array_equal(np.asarray(ga), [36.0, 81.0])
    np.testing.assert_array_equal(np.asarray(gb), [-12.0, -8.0])
    assert ga.dtype == jnp.float32 and isinstance(ga, jax.Array)


def test_closed_form_is_dict_of_sympy_and_usable():
    d = sd.derive("3*a**3 - b**2")
    cf = d.closed_form
    assert list(cf) == ["a", "b"]
    a = sympy.Symbol("a", real=True)
    assert cf["a"] == 9 * a**2
    assert cf["a"].subs(a, 2) == 36
    assert d.latex().startswith("\\frac")
    assert d._repr_latex_().startswith("$")


def test_wrt_rules_single_sequence_none_and_natural_order():
    d = sd.derive("x10*x2 + a")
    assert [s.name for s in d.wrt] == ["a", "x2", "x10"]
    single = sd.derive("x**2*y", "x")
    out = single(3.0, 2.0)
    assert isinstance(out, jax.Array) and float(out) == 12.0
    seq = sd.derive("x**2*y", ["y", "x"])
    gy, gx = seq(x=3.0, y=2.0)
    assert (float(gy), float(gx)) == (9.0, 12.0)
    one_tuple = sd.derive("x**2")
    assert isinstance(one_tuple(3.0), tuple) and len(one_tuple(3.0)) == 1


def test_plain_sympy_symbol_matches_by_name_and_absent_wrt_is_zero():
    x = sympy.Symbol("x")  # no assumptions
    d = sd.derive(x**2 * sympy.Symbol("y"), [x, "z"])
    gx, gz = d(x=2.0, y=5.0, z=np.ones(3))
    assert float(gx) == 60.0  # 2*x*y = 20 at each of the 3 broadcast points, summed back to x's shape
    assert gx.dtype == jnp.float64  # a float64 numpy input selects float64
    np.testing.assert_array_equal(np.asarray(gz), np.zeros(3))
    assert [s.name for s in d.args] == ["x", "y", "z"]


def test_abs_derivative_is_sign_with_real_symbols():
    d = sd.derive("abs(x)", "x")
    assert d.closed_form == {"x": sympy.sign(sympy.Symbol("x", real=True))}


def test_broadcast_gradients_are_summed_like_pytorch():
    # oracle: jax.vjp with a ones cotangent, the definition of y.backward(ones)
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b = np.array([0.5, -1.0, 2.0])
    c = np.float64(1.5)
    d = sd.derive("a*sin(b) + c*a**2")
    got = d(a, b, c)

    def f(a, b, c):
        return a * jnp.sin(b) + c * a**2

    with jax.enable_x64(True):
        y, pullback = jax.vjp(f, jnp.asarray(a), jnp.asarray(b), jnp.asarray(c))
        want = pullback(jnp.ones_like(y))
    for g, w, x in zip(got, want, (a, b, c)):
        assert g.shape == np.shape(x)
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)
    assert got[0].dtype == jnp.float64


def test_vjp_and_value_and_grad():
    d = sd.derive("3*a**3 - b**2")
    ga, gb = d.vjp([1.0, 2.0], a=[2.0, 3.0], b=[6.0, 4.0])
    np.testing.assert_allclose(np.asarray(ga), [36.0, 162.0])
    np.testing.assert_allclose(np.asarray(gb), [-12.0, -16.0])
    value, (ga, gb) = d.value_and_grad(a=[2.0, 3.0], b=[6.0, 4.0])
    np.testing.assert_allclose(np.asarray(value), [-12.0, 65.0])
    with pytest.raises(sd.ShapeError):
        d.vjp([1.0, 2.0, 3.0], a=[2.0, 3.0], b=[6.0, 4.0])


def test_hessian_matches_jax_hessian():
    d = sd.derive("x**3*y + sin(x*z) + exp(y)*z**2", order=2)
    pt = (0.7, -0.3, 1.9)
    H = d(*pt)

    def f(v):
        x, y, z = v
        return x**3 * y + jnp.sin(x * z) + jnp.exp(y) * z**2

    with jax.enable_x64(True):
        want = np.asarray(jax.hessian(f)(jnp.array(pt, dtype=jnp.float64)))
    got = np.array([[float(H[i][j]) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-5)  # float32 evaluation
    assert isinstance(d.closed_form, sympy.Matrix) and d.closed_form.shape == (3, 3)
    arr = d.array(np.full(4, 0.7), -0.3, 1.9)
    assert arr.shape == (4, 3, 3)
    np.testing.assert_allclose(np.asarray(arr[0]), want, rtol=1e-5)


def test_kth_derivative_single_wrt_and_tensor_of_partials():
    d = sd.derive("tanh(x)", "x", order=5)
    assert isinstance(d.closed_form, sympy.Expr)
    xs = np.linspace(-2, 2, 7)

    def f(x):
        return jnp.tanh(x)

    g = f
    for _ in range(5):
        g = jax.grad(g)
    with jax.enable_x64(True):
        want = np.asarray(jax.vmap(g)(jnp.asarray(xs)))
    np.testing.assert_allclose(np.asarray(d(xs)), want, rtol=1e-10, atol=1e-10)
    t = sd.derive("x**2*y**2", order=3)
    assert isinstance(t.closed_form, sympy.Array) and t.closed_form.shape == (2, 2, 2)
    out = t(2.0, 3.0)
    assert float(out[0][0][1]) == 12.0  # d3/dx2 dy = 4y
    assert float(out[1][0][0]) == 12.0  # symmetric position, same entry
    assert t.array(2.0, 3.0).shape == (2, 2, 2)


def test_constant_entries_broadcast_at_higher_order():
    d = sd.derive("x*y", order=2)
    H = d(np.ones(3), np.ones(3))
    for row in H:
        for entry in row:
            assert entry.shape == (3,)


def test_jacobian_of_vector_valued_expression():
    d = sd.derive(["x*y", "sin(x) + y**2"])
    assert d.closed_form.shape == (2, 2)
    (j00, j01), (j10, j11) = d(0.5, 2.0)
    np.testing.assert_allclose([float(j00), float(j01), float(j10), float(j11)],
                               [2.0, 0.5, np.cos(0.5), 4.0], rtol=1e-6)
    assert d.array(np.ones(5), 2.0).shape == (5, 2, 2)
    gx, gy = d.vjp([1.0, 10.0], 0.5, 2.0)
    np.testing.assert_allclose([float(gx), float(gy)], [2.0 + 10 * np.cos(0.5), 0.5 + 40.0], rtol=1e-6)


def test_callable_capture_with_sd_math():
    d = sd.derive(lambda w, x: sd.exp(-w * x) * sd.sin(x))
    gw, gx = d(0.5, 1.0)
    np.testing.assert_allclose(float(gw), -1.0 * np.exp(-0.5) * np.sin(1.0), rtol=1e-6)
    with pytest.raises(sd.CaptureError, match="could not be traced"):
        import math

        sd.derive(lambda x: math.sin(x))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtypes_really_compute_in_that_dtype(dtype):
    d = sd.derive("x**3/3 + x", "x", dtype=dtype)
    out = d(np.array([1.0, 2.0]))
    assert out.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(np.asarray(out, dtype=np.float64), [2.0, 5.0], rtol=1e-2)


def test_float64_precision_is_kept_and_global_config_untouched():
    assert not jax.config.jax_enable_x64
    d = sd.derive("x/3", "x", dtype="float64")
    out = d(np.array([1.0]))
    assert out.dtype == jnp.float64 and float(out[0]) == 1 / 3  # Rational(1, 3) exact to double
    assert not jax.config.jax_enable_x64
    f32 = sd.derive("x/3", "x")(np.array([1.0], dtype=np.float32))
    assert f32.dtype == jnp.float32


def test_integer_inputs_are_promoted():
    out = sd.derive("x**2", "x")(np.array([1, 2, 3]))
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out), [2.0, 4.0, 6.0])


def test_devices_cpu_and_clear_error_for_missing_gpu():
    out = sd.derive("x**2", "x", device="cpu")(2.0)
    assert list(out.devices())[0].platform == "cpu"
    if not any(d.platform == "gpu" for d in jax.devices()):
        with pytest.raises(sd.DeviceError, match="cpu:0"):
            sd.derive("x**2", device="cuda")
    with pytest.raises(sd.DeviceError, match="unknown device"):
        sd.derive("x**2", device="quantum")


def test_function_composes_with_jit_vmap_grad():
    d = sd.derive("x**3*y", "x")
    f = d.function
    assert float(jax.jit(f)(2.0, 1.0)) == 12.0
    np.testing.assert_allclose(np.asarray(jax.vmap(f)(jnp.arange(3.0), jnp.ones(3))), [0.0, 3.0, 12.0])
    assert float(jax.grad(f)(2.0, 1.0)) == 12.0  # d/dx 3x^2 y


def test_source_is_the_executed_code():
    d = sd.derive("sin(a)*exp(-b**2) + a*b", dtype="float64")
    namespace = dict(vars(__import__("symdiff._lower", fromlist=["x"])))
    exec(d.source, namespace)  # the text alone, re-executed independently
    fn = namespace["derivative"]
    with jax.enable_x64(True):
        values, entries = jax.jit(fn)(jnp.array([0.3, 0.4]), jnp.array([1.0, 2.0]))
    ga, gb = d(np.array([0.3, 0.4]), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(entries[0]), np.asarray(ga))
    np.testing.assert_array_equal(np.asarray(entries[1]), np.asarray(gb))
    assert "jnp.sin(a)" in d.source


def test_input_errors_name_the_input():
    d = sd.derive("x*y")
    with pytest.raises(sd.InputError, match="missing input 'y'"):
        d(1.0)
    with pytest.raises(sd.InputError, match="unexpected input 'z'"):
        d(1.0, 2.0, z=3.0)
    with pytest.raises(sd.InputError, match="both"):
        d(1.0, x=2.0)
    with pytest.raises(sd.InputError, match="'x'"):
        d(x="abc", y=1.0)
    with pytest.raises(sd.ShapeError, match="x: \\(2,\\)"):
        d(x=[1.0, 2.0], y=[1.0, 2.0, 3.0])
    with pytest.raises(sd.DtypeError, match="int32"):
        sd.derive("x", dtype="int32")
    with pytest.raises(sd.SymdiffError, match="order"):
        sd.derive("x", order=0)
    with pytest.raises(sd.SymdiffError, match="no symbols"):
        sd.derive("2 + 3")
    assert issubclass(sd.SymdiffError, ValueError)


def test_hessian_array_of_many_variables_matches_jax_hessian():
    n = 30
    text = " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(n - 1))
    d = sd.derive(text, order=2, simplify=False, dtype="float64")
    xs = np.linspace(-0.5, 1.5, n)

    def rosen(v):
        return jnp.sum(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)

    with jax.enable_x64(True):
        want = np.asarray(jax.hessian(rosen)(jnp.asarray(xs)))
    got = d.array(*xs)
    assert got.shape == (n, n)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
