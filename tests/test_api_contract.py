"""Acceptance-style checks of the public contract, /work/shared/API.md §1-§9.

Every test calls the API exactly as the contract writes it and compares with an
independent oracle (NumPy closed forms, JAX autodiff of separate jnp code,
SciPy's Rosenbrock derivatives, float64 finite differences). Kept fast: derivatives
are built once per module and reused, sizes are small, subprocesses are few.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
import sympy

import symdiff as sd

RNG = np.random.default_rng(1234)


def _fd(f, x, h=1e-6):
    """Central finite difference of a float64 scalar function of a scalar."""
    return (f(x + h) - f(x - h)) / (2 * h)


# --------------------------------------------------------------------------- §1


@pytest.fixture(scope="module")
def seed():
    return sd.derive("3*a**3 - b**2")


def test_seed_example_prints_and_values(seed):
    assert str(seed).splitlines() == ["d/da = 9*a**2", "d/db = -2*b"]
    ga, gb = seed(a=[2.0, 3.0], b=[6.0, 4.0])
    assert isinstance(ga, jax.Array) and isinstance(gb, jax.Array)
    np.testing.assert_array_equal(np.asarray(ga), [36.0, 81.0])
    np.testing.assert_array_equal(np.asarray(gb), [-12.0, -8.0])
    # Python lists are float32
    assert ga.dtype == jnp.float32 and gb.dtype == jnp.float32
    # positional, in d.args order
    ga2, gb2 = seed([2.0, 3.0], [6.0, 4.0])
    np.testing.assert_array_equal(np.asarray(ga2), [36.0, 81.0])
    np.testing.assert_array_equal(np.asarray(gb2), [-12.0, -8.0])


def test_seed_members(seed):
    a, b = sympy.symbols("a b", real=True)
    assert seed.args == (a, b)
    assert seed.wrt == (a, b)
    assert all(isinstance(s, sympy.Symbol) and s.is_real for s in seed.args)
    assert isinstance(seed.expr, sympy.Expr)
    assert sympy.simplify(seed.expr - (3 * a**3 - b**2)) == 0
    cf = seed.closed_form
    assert isinstance(cf, dict) and set(cf) == {"a", "b"}
    assert sympy.simplify(cf["a"] - 9 * a**2) == 0
    assert sympy.simplify(cf["b"] + 2 * b) == 0
    # ordinary SymPy expressions
    assert float(cf["a"].subs(a, 2).evalf()) == 36.0
    lat = seed.latex()
    assert isinstance(lat, str) and "a^{2}" in lat
    assert isinstance(seed._repr_latex_(), str)
    assert isinstance(seed.source, str) and "def " in seed.source


def test_wrt_forms():
    x, y = sympy.symbols("x y", real=True)
    # None: every free symbol, natural name order, always tuples
    d = sd.derive("x10 + 2*x2 + x1**2")
    assert [s.name for s in d.args] == ["x1", "x2", "x10"]
    assert [s.name for s in d.wrt] == ["x1", "x2", "x10"]
    one = sd.derive("x**2")(3.0)
    assert isinstance(one, tuple) and len(one) == 1
    np.testing.assert_allclose(np.asarray(one[0]), 6.0)
    # single name: a single array
    single = sd.derive("x**2*y", wrt="x")(x=3.0, y=2.0)
    assert isinstance(single, jax.Array)
    np.testing.assert_allclose(np.asarray(single), 12.0)
    # a plain sympy.Symbol matches by name, as wrt and as input
    single2 = sd.derive("x**2*y", wrt=sympy.Symbol("x"))
    assert isinstance(single2(x=3.0, y=2.0), jax.Array)
    assert isinstance(single2.closed_form, dict) and set(single2.closed_form) == {"x"}
    assert single2.wrt == (x,)
    plain = sympy.Symbol("x") ** 2 * sympy.Symbol("y")
    r = sd.derive(plain, wrt="x")(x=3.0, y=2.0)
    np.testing.assert_allclose(np.asarray(r), 12.0)
    # a sequence: tuples in that order
    seq = sd.derive("x**2*y", wrt=["y", "x"])
    gy, gx = seq(x=3.0, y=2.0)
    np.testing.assert_allclose([float(gy), float(gx)], [9.0, 12.0])
    assert seq.wrt == (y, x)
    # a wrt symbol that does not occur: zero, and it is an input
    z = sd.derive("x**2", wrt=["x", "z"])
    assert [s.name for s in z.args] == ["x", "z"]
    gx, gz = z(x=3.0, z=5.0)
    np.testing.assert_allclose([float(gx), float(gz)], [6.0, 0.0])


def test_symbols_are_real_abs_gives_sign():
    x = sympy.Symbol("x", real=True)
    d = sd.derive("abs(x)")
    assert d.closed_form["x"] == sympy.sign(x)
    (g,) = d([-2.0, 3.0])
    np.testing.assert_allclose(np.asarray(g), [-1.0, 1.0])


def test_order_semantics():
    x, y = sympy.symbols("x y", real=True)
    # single wrt: one expression and one array at every order
    d2 = sd.derive("sin(x)*y", wrt="x", order=2)
    assert isinstance(d2.closed_form, sympy.Expr)
    assert sympy.simplify(d2.closed_form + sympy.sin(x) * y) == 0
    v = d2(x=0.5, y=2.0)
    assert isinstance(v, jax.Array)
    np.testing.assert_allclose(np.asarray(v), -np.sin(0.5) * 2.0, rtol=1e-6)
    d3 = sd.derive("x**5", wrt="x", order=3)
    assert isinstance(d3.closed_form, sympy.Expr)
    np.testing.assert_allclose(np.asarray(d3(x=2.0)), 60 * 4.0, rtol=1e-6)
    # sequence, order 2: Hessian (Matrix closed form, nested tuples of arrays)
    h = sd.derive("x**3*y**2", order=2)
    assert isinstance(h.closed_form, sympy.MatrixBase) and h.closed_form.shape == (2, 2)
    H = h(x=1.5, y=-0.5)
    assert isinstance(H, tuple) and len(H) == 2 and all(isinstance(r, tuple) and len(r) == 2 for r in H)
    X, Y = 1.5, -0.5  # NumPy closed forms of the partials of x**3*y**2
    ref = np.array([[6 * X * Y**2, 6 * X**2 * Y], [6 * X**2 * Y, 2 * X**3]])
    np.testing.assert_allclose(np.array([[float(e) for e in r] for r in H]), ref, rtol=1e-5)
    # sequence, order 3: rank-3 sympy.Array, nested tuples
    t = sd.derive("x**3*y**2", order=3)
    assert isinstance(t.closed_form, sympy.NDimArray) and t.closed_form.rank() == 3
    T = t(x=1.5, y=-0.5)
    assert len(T) == 2 and len(T[0]) == 2 and len(T[0][0]) == 2
    ref3 = np.array([[[6 * Y**2, 12 * X * Y], [12 * X * Y, 6 * X**2]], [[12 * X * Y, 6 * X**2], [6 * X**2, 0.0]]])
    got = np.array([[[float(T[i][j][k]) for k in range(2)] for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(got, np.asarray(ref3), rtol=1e-5)


def test_broadcasting_semantics():
    d = sd.derive("x*y**2")
    x = np.array([1.0, 2.0, 3.0])
    gx, gy = d(x=x, y=2.0)
    # PyTorch's y.backward(ones_like(y)): each gradient has its input's shape
    assert gx.shape == (3,) and gy.shape == ()
    np.testing.assert_allclose(np.asarray(gx), [4.0, 4.0, 4.0])
    np.testing.assert_allclose(float(gy), float(np.sum(2 * x * 2.0)))
    # order 2: every entry the broadcast shape, constants too
    h = sd.derive("x*y**2", order=2)
    H = h(x=x, y=2.0)
    for row in H:
        for e in row:
            assert e.shape == (3,)
    np.testing.assert_allclose(np.asarray(H[0][0]), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(np.asarray(H[1][1]), 2 * x)
    # d.array: broadcast_shape + (len(wrt),) * order
    A = h.array(x=x, y=2.0)
    assert isinstance(A, jax.Array) and A.shape == (3, 2, 2)
    np.testing.assert_allclose(np.asarray(A[:, 0, 1]), [4.0, 4.0, 4.0])
    A1 = d.array(x=x, y=2.0)
    assert A1.shape == (3, 2)
    np.testing.assert_allclose(np.asarray(A1[:, 1]), 4 * x)
    # single wrt adds no trailing axes
    assert sd.derive("x*y**2", wrt="y", order=2).array(x=x, y=2.0).shape == (3,)


def test_vector_valued_jacobian():
    x, y = sympy.symbols("x y", real=True)
    d = sd.derive(["x*y", "sin(x) + y**2", "x"])
    assert isinstance(d.expr, sympy.MatrixBase)
    assert isinstance(d.closed_form, sympy.MatrixBase) and d.closed_form.shape == (3, 2)
    J = d(x=0.3, y=1.7)
    assert len(J) == 3 and all(len(r) == 2 for r in J)
    ref = jax.jacobian(lambda v: jnp.stack([v[0] * v[1], jnp.sin(v[0]) + v[1] ** 2, v[0]]))(jnp.array([0.3, 1.7]))
    got = np.array([[float(e) for e in r] for r in J])
    np.testing.assert_allclose(got, np.asarray(ref), rtol=1e-6)
    arr = d.array(x=np.array([0.3, 0.4]), y=np.array([1.7, 1.8]))
    assert arr.shape == (2, 3, 2)


def test_vjp_and_value_and_grad(seed):
    a = np.array([2.0, 3.0])
    b = np.array([6.0, 4.0])
    c = np.array([0.5, -2.0])
    va, vb = seed.vjp(c, a=a, b=b)
    np.testing.assert_allclose(np.asarray(va), c * 9 * a**2)
    np.testing.assert_allclose(np.asarray(vb), c * -2 * b)
    # broadcasting: the cotangent has the broadcast shape, results their input's shape
    d = sd.derive("x*y**2")
    vx, vy = d.vjp(np.array([1.0, 2.0, 3.0]), x=np.array([1.0, 2.0, 3.0]), y=2.0)
    assert vx.shape == (3,) and vy.shape == ()
    np.testing.assert_allclose(np.asarray(vx), [4.0, 8.0, 12.0])
    np.testing.assert_allclose(float(vy), 2 * 2.0 * (1 * 1 + 2 * 2 + 3 * 3))
    # vector-valued: gradient of sum(cotangent * y) over the outputs
    gx, gy = sd.derive(["x*y", "x + y"]).vjp((np.array(1.0), np.array(2.0)), x=1.0, y=3.0)
    np.testing.assert_allclose([float(gx), float(gy)], [3.0 + 2.0, 1.0 + 2.0])
    # JAX arrays as inputs
    ga, gb = seed(a=jnp.array([2.0, 3.0]), b=jnp.array([6.0, 4.0]))
    np.testing.assert_array_equal(np.asarray(ga), [36.0, 81.0])
    value, grads = seed.value_and_grad(a=a, b=b)
    np.testing.assert_allclose(np.asarray(value), 3 * a**3 - b**2)
    np.testing.assert_allclose(np.asarray(grads[0]), 9 * a**2)
    np.testing.assert_allclose(np.asarray(grads[1]), -2 * b)


def test_function_in_jit_vmap_grad(seed):
    fn = seed.function
    ga, gb = jax.jit(fn)(jnp.array([2.0, 3.0]), jnp.array([6.0, 4.0]))
    np.testing.assert_allclose(np.asarray(ga), [36.0, 81.0])
    np.testing.assert_allclose(np.asarray(gb), [-12.0, -8.0])
    va, vb = jax.vmap(fn)(jnp.array([2.0, 3.0]), jnp.array([6.0, 4.0]))
    np.testing.assert_allclose(np.asarray(va), [36.0, 81.0])
    # d/da of (9 a^2) = 18 a
    second = jax.grad(lambda a, b: fn(a, b)[0])(2.0, 6.0)
    np.testing.assert_allclose(float(second), 36.0, rtol=1e-6)


def test_check_report_and_cross_check_error():
    d = sd.derive("exp(x)*sin(y)")
    r = d.check(np.array([0.3, 0.7]), np.array([1.1, -0.4]))
    assert r.ok is True or r.ok == True  # noqa: E712
    assert float(r.max_abs_error) >= 0 and float(r.max_rel_error) >= 0
    assert float(r.max_abs_error) < 1e-4
    assert isinstance(str(r), str) and str(r)
    assert issubclass(sd.CrossCheckError, sd.SymdiffError)


def test_save_and_load(seed, tmp_path):
    ga, gb = seed(a=[2.0, 3.0], b=[6.0, 4.0])
    p = tmp_path / "seed.sdx"
    seed.save(p)
    loaded = sd.load(p)
    la, lb = loaded(a=[2.0, 3.0], b=[6.0, 4.0])
    np.testing.assert_array_equal(np.asarray(la), [36.0, 81.0])
    np.testing.assert_array_equal(np.asarray(lb), [-12.0, -8.0])
    assert str(loaded) == str(seed)
    a = sympy.Symbol("a", real=True)
    assert sympy.simplify(loaded.closed_form["a"] - 9 * a**2) == 0
    bad = tmp_path / "bad.sdx"
    data = p.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(sd.SymdiffError):
        sd.load(bad)(a=[2.0, 3.0], b=[6.0, 4.0])
    junk = tmp_path / "junk.sdx"
    junk.write_bytes(b"not a derivative at all")
    with pytest.raises(sd.SymdiffError):
        sd.load(junk)


def test_dtype_rule():
    d = sd.derive("x**2", wrt="x")
    assert d(x=3.0).dtype == jnp.float32
    assert d(x=[1.0, 2.0]).dtype == jnp.float32
    assert d(x=3).dtype == jnp.float32  # integers promoted
    assert d(x=np.array([1, 2])).dtype == jnp.float32
    x64 = np.array([1.0 + 1e-10, 2.0])
    r = d(x=x64)
    assert r.dtype == jnp.float64
    # really computed in float64
    np.testing.assert_allclose(np.asarray(r), 2 * x64, rtol=1e-15, atol=0)
    assert np.asarray(r)[0] != np.float32(2.0)
    # explicit dtype
    r2 = sd.derive("x**2", wrt="x", dtype="float64")(x=[1.0 + 1e-10])
    assert r2.dtype == jnp.float64 and np.asarray(r2)[0] == 2 * (1.0 + 1e-10)
    assert sd.derive("x**2", wrt="x", dtype=np.float32)(x=x64).dtype == jnp.float32
    gx, gy = sd.derive("x*y")(x=np.array([1.0, 2.0], np.float32), y=np.array([1.0, 2.0]))
    assert gx.dtype == jnp.float64 and gy.dtype == jnp.float64  # a float64 array input makes it float64
    assert float(sd.derive(lambda x: x * 0.1, wrt="x", dtype="float64")(x=1.0)) == 0.1  # float64 literal kept
    fd = _fd(lambda t: np.sin(t) * np.exp(t) / (1 + t**2), 0.7)  # float64 central differences
    got = sd.derive("sin(x)*exp(x)/(1 + x**2)", wrt="x", dtype="float64")(x=0.7)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(float(got), fd, rtol=1e-8)
    # JAX's global configuration unchanged
    assert not jax.config.jax_enable_x64
    for dt, want in (("bfloat16", jnp.bfloat16), (sd.float16, jnp.float16), (sd.float64, jnp.float64), (jnp.float64, jnp.float64)):
        assert sd.derive("x**2", wrt="x", dtype=dt)(x=3.0).dtype == want, dt
    with pytest.raises(sd.SymdiffError):
        sd.derive("x**2", dtype="float128")(x=1.0)


def test_device_error_names_existing_devices():
    with pytest.raises(sd.DeviceError) as info:
        sd.derive("x**2", device="gpu")(x=1.0)
    msg = str(info.value).lower()
    assert "cpu" in msg
    with pytest.raises(sd.DeviceError):
        sd.derive("x**2", device="cuda:0")(x=1.0)
    r = sd.derive("x**2", wrt="x", device="cpu")(x=2.0)
    np.testing.assert_allclose(float(r), 4.0)
    dev = jax.devices("cpu")[0]
    assert sd.derive("x**2", wrt="x", device=dev)(x=2.0).devices() == {dev}


# --------------------------------------------------------------------------- §5


def test_error_hierarchy():
    assert issubclass(sd.SymdiffError, ValueError)
    for cls in (sd.ParseError, sd.DeviceError, sd.ShapeError, sd.CrossCheckError, sd.CaptureError):
        assert issubclass(cls, sd.SymdiffError), cls


@pytest.mark.parametrize(
    "text, pos",
    [("x + $", 4), ("2x", 1), ("x % y", 2), ("x.real", 1), ("x @ y", 2), ("x // y", 2), ("x < y", 2), ("a = 1", 2)],
)
def test_parse_errors(text, pos):
    with pytest.raises(sd.ParseError) as info:
        sd.derive(text)
    assert info.value.text == text
    assert info.value.position == pos


def test_no_hang_on_huge_numbers():
    import time

    t = time.monotonic()
    d = sd.derive("x**999999999999")
    assert sympy.simplify(d.closed_form["x"] - 999999999999 * sympy.Symbol("x", real=True) ** 999999999998) == 0
    with pytest.raises(sd.ParseError):
        sd.derive("9**9**9**9*x")
    assert time.monotonic() - t < 10


def test_parser_never_evaluates():
    for text in ("__import__('os').system('true')", "lambda: 1", "'abc'", "x[0]", "sin(x, y)", "0x10", "1_000"):
        with pytest.raises(sd.ParseError):
            sd.derive(text)


def test_parser_language():
    d = sd.derive("2.5*x^2 + .5 + 1e-3*atan2(y, x) + log(x, 2) + pi + E + max(x, y)", wrt="x")
    x, y = 1.3, 0.4
    ref = jax.grad(lambda x: 2.5 * x**2 + 1e-3 * jnp.arctan2(y, x) + jnp.log(x) / jnp.log(2.0) + jnp.maximum(x, y))(x)
    np.testing.assert_allclose(float(d(x=x, y=y)), float(ref), rtol=1e-5)
    deep = "(" * 1000 + "x" + ")" * 1000
    (g,) = sd.derive(deep)(2.0)
    np.testing.assert_allclose(float(g), 1.0)


def test_bad_inputs_name_the_input(seed):
    with pytest.raises(sd.SymdiffError, match="'b'"):
        seed(a=[1.0])
    with pytest.raises(sd.SymdiffError, match="'c'"):
        seed(a=1.0, b=1.0, c=1.0)
    with pytest.raises(sd.SymdiffError):
        seed(a=[1.0, 2.0], b=[1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- §2


def test_tensor_front_end():
    assert repr(sd.tensor([[1, 1]])) == "tensor([[1, 1]])"
    x = sd.tensor([2.0, 3.0], requires_grad=True)
    assert repr(x) == "tensor([2., 3.], requires_grad=True)"
    y = x + sd.tensor([2.0, 2.0])
    assert repr(y) == "tensor([4., 5.], grad_fn=<AddBackward0>)"
    assert str(sd.tensor([1, 2]).dtype) == "symdiff.int64"
    assert sd.tensor([1.0]).dtype == sd.float32
    assert sd.tensor([1.0], dtype=float).dtype == sd.float64
    assert sd.tensor([1], dtype=int).dtype == sd.int64
    loss = (x**3).sum()
    loss.backward()
    np.testing.assert_allclose(np.asarray(x.grad.numpy()), 3 * np.array([2.0, 3.0]) ** 2)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(sd.SymdiffError, match="floating point"):  # PyTorch's message, a user error
        sd.tensor([1, 2], requires_grad=True)
    assert repr(sd.ones(1, 2)) == "tensor([[1., 1.]])"
    assert repr(sd.arange(3)) == "tensor([0, 1, 2])"
    assert sd.zeros(2, dtype=sd.float64).dtype == sd.float64
    np.testing.assert_allclose(sd.linspace(0, 1, 3).numpy(), [0.0, 0.5, 1.0])
    sd.manual_seed(7)
    r1 = sd.rand(3).tolist()
    sd.manual_seed(7)
    assert sd.rand(3).tolist() == r1 and tuple(sd.randn(2, 2).shape) == (2, 2)
    m = sd.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert tuple(m.shape) == (2, 2) and m.ndim == 2 and m.to(sd.float64).dtype == sd.float64
    assert m.sum().item() == 10.0 and m.tolist() == [[1.0, 2.0], [3.0, 4.0]] and isinstance(m.numpy(), np.ndarray)
    cuda = sd.device("cuda")  # creating it is fine without a GPU
    assert sd.cuda.is_available() is False
    with pytest.raises(sd.DeviceError):
        sd.tensor([1.0], device=cuda)


def test_training_loop_pytorch_style():
    w = sd.tensor(0.0, requires_grad=True)
    opt = sd.optim.SGD([w], lr=0.1)
    for _ in range(30):
        opt.zero_grad()
        loss = (w - 3) ** 2
        loss.backward()
        opt.step()
    assert abs(w.item() - 3 * (1 - 0.8**30)) < 1e-4  # SGD on (w-3)^2: w_k = 3 (1 - 0.8^k)
    v = sd.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        (v**2).sum().backward()
        with sd.no_grad():
            v -= 0.1 * v.grad
        v.grad.zero_()
    np.testing.assert_allclose(v.detach().numpy(), np.array([1.0, 2.0]) * 0.8**3, rtol=1e-6)
    u = sd.tensor([1.0, -1.0], requires_grad=True)
    adam = sd.optim.Adam([u], lr=0.1)
    adam.zero_grad()
    (u**2).sum().backward()
    adam.step()
    np.testing.assert_allclose(u.detach().numpy(), [0.9, -0.9], rtol=1e-5)  # Adam's first step is lr * sign(g)


# --------------------------------------------------------------------------- §3


def test_fit_linear():
    xs = np.linspace(-1, 1, 32)
    r = sd.fit("(w*x + b - y)**2", {"w": 0.0, "b": 0.0}, {"x": xs, "y": 2 * xs + 1}, steps=300, lr=0.1, progress=False)
    assert len(r.loss_history) == 300 and isinstance(r.loss_history, np.ndarray)
    np.testing.assert_allclose(float(r.params["w"]), 2.0, atol=0.05)
    np.testing.assert_allclose(float(r.params["b"]), 1.0, atol=0.05)
    assert isinstance(r.derivative, sd.Derivative)
    assert {s.name for s in r.model.free_symbols} == {"x", "y"}
    import matplotlib.figure

    assert isinstance(r.plot(), matplotlib.figure.Figure)


def test_fit_plain_minimisation_and_shapes():
    r = sd.fit("(a - 3)**2 + (b + 1)**2", {"a": 0.0, "b": 0.0}, {}, steps=10, optimizer="lbfgs", lr=None, progress=False)
    np.testing.assert_allclose([float(r.params["a"]), float(r.params["b"])], [3.0, -1.0], atol=1e-3)
    X = RNG.standard_normal((32, 3))
    wt = np.array([1.0, -2.0, 0.5])
    r = sd.fit("(x @ w - y)**2", {"w": np.zeros(3)}, {"x": X, "y": X @ wt}, steps=300, lr=0.05, progress=False, shapes={"x": "n", "w": "n"})
    assert np.shape(r.params["w"]) == (3,)
    np.testing.assert_allclose(np.asarray(r.params["w"]), wt, atol=1e-2)


# --------------------------------------------------------------------------- §4 CLI


def _run_all(arg_lists, envs=None, timeout=240):
    """Run several Python subprocesses at once (each pays JAX's import)."""
    envs = envs or [None] * len(arg_lists)
    procs = [
        subprocess.Popen([sys.executable, *a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
        for a, e in zip(arg_lists, envs)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_cli():
    # `python -m symdiff` as a real process for the seed and for a bad expression
    good, bad_text = _run_all(
        [["-m", "symdiff", "3*a**3 - b**2", "--at", "a=2,3", "--at", "b=6,4"], ["-m", "symdiff", "3*a**"]]
    )
    assert good.returncode == 0, good.stderr
    assert "[36. 81.]" in good.stdout and "[-12. -8.]" in good.stdout
    assert "d/da = 9*a**2" in good.stdout and "d/db = -2*b" in good.stdout
    assert bad_text.returncode == 2, (bad_text.stdout, bad_text.stderr)
    assert len(bad_text.stderr.strip().splitlines()) == 1, bad_text.stderr
    assert "Traceback" not in bad_text.stderr


def _cli(capsys, *argv):
    """The `symdiff` console script (pyproject: symdiff.cli:main), in this process to save JAX's import."""
    from symdiff.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code or 0, out, err


def test_cli_in_process(capsys):
    rc, out, err = _cli(capsys, "3*a**3", "--at", "a=oops")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    rc, out, err = _cli(capsys, "x @ A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n",
                        "--at", "x=1,1,1", "--at", "A=1,0,0;0,1,0;0,0,1")  # fmt: skip
    assert rc == 0, err
    assert "@" in out and "A.T" in out and "[2. 2. 2.]" in out
    rc, out, err = _cli(capsys, "3*a**3 - b**2", "--wrt", "a", "--order", "2", "--at", "a=2,3", "--at", "b=6,4",
                        "--latex", "--source", "--check", "--dtype", "float64", "--device", "cpu")  # fmt: skip
    assert rc == 0, err
    assert "18 a" in out or "18a" in out  # LaTeX of d^2/da^2 = 18*a
    assert "def " in out and "[36. 54.]" in out
    rc, out, err = _cli(capsys, "x**2", "--at", "x=1", "--device", "gpu")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "cpu" in err.lower(), err
    assert not jax.config.jax_enable_x64


# --------------------------------------------------------------------------- §6 arrays

XA = {"x": "n", "A": ("n", "n")}


@pytest.fixture(scope="module")
def quad():
    return (
        sd.derive("x @ A @ x", wrt="x", shapes=XA),
        sd.derive("x @ A @ x", wrt="x", order=2, shapes=XA),
    )


def test_quadratic_form(quad):
    d, h = quad
    r = d(x=np.ones(3), A=np.eye(3))
    assert isinstance(r, jax.Array) and r.shape == (3,)
    np.testing.assert_allclose(np.asarray(r), [2.0, 2.0, 2.0])
    s = str(d)
    assert s.startswith("d/dx = ") and "@" in s and "A.T" in s
    assert str(h).startswith("d^2/dx^2 = ") and "A.T" in str(h)
    assert [a.name for a in d.args] == ["A", "x"]
    for n in (3, 5):  # one derive, two sizes
        A = RNG.standard_normal((n, n))
        x = RNG.standard_normal(n)
        np.testing.assert_allclose(np.asarray(d(x=x, A=A)), (A + A.T) @ x, rtol=1e-10)
        H = h(x=x, A=A)
        assert H.shape == (n, n)
        np.testing.assert_allclose(np.asarray(H), A + A.T, rtol=1e-10)
        A32 = jnp.asarray(A, jnp.float32)
        ref = jax.hessian(lambda x, A32=A32: x @ A32 @ x)(jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(np.asarray(H), np.asarray(ref), rtol=1e-5, atol=1e-5)
    # closed form is a matrix expression, same size for every n
    assert "[" not in str(d.closed_form["x"]) and len(str(h.closed_form)) < 40
    assert isinstance(d.latex(), str) and "^{T}" in d.latex().replace(" ", "")


def test_quadratic_form_more_members(quad, tmp_path):
    d, h = quad
    A = RNG.standard_normal((4, 4))
    x = RNG.standard_normal(4)
    src = d.source
    assert "@" in src or "matmul" in src or "einsum" in src
    # jit / vmap / grad of the pure function (args in d.args order: A, x); JAX's own dtypes (float32 outside x64)
    fn = d.function
    np.testing.assert_allclose(np.asarray(jax.jit(fn)(A, x)), (A + A.T) @ x, rtol=1e-5, atol=1e-5)
    xs = RNG.standard_normal((2, 4))
    vm = jax.vmap(fn, in_axes=(None, 0))(A, xs)
    np.testing.assert_allclose(np.asarray(vm), xs @ (A + A.T).T, rtol=1e-5, atol=1e-5)
    gg = jax.grad(lambda x: fn(jnp.asarray(A), x).sum())(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(gg), (A + A.T).sum(axis=0), rtol=1e-5)
    value, grad = d.value_and_grad(x=x, A=A)
    np.testing.assert_allclose(float(value), x @ A @ x, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(grad), (A + A.T) @ x, rtol=1e-10)
    rep = d.check(x=x, A=A)
    assert rep.ok
    p = tmp_path / "quad.sdx"
    d(x=x, A=A)
    d.save(p)
    loaded = sd.load(p)
    np.testing.assert_allclose(np.asarray(loaded(x=x, A=A)), (A + A.T) @ x, rtol=1e-10)


def test_shape_errors(quad):
    d, _ = quad
    with pytest.raises(sd.ShapeError) as info:
        d(x=np.ones(3), A=np.eye(4))
    msg = str(info.value)
    assert "n" in msg and "3" in msg and "4" in msg
    assert "'x'" in msg or "'A'" in msg
    with pytest.raises(sd.ShapeError) as info:
        d(x=np.ones((3, 3)), A=np.eye(3))
    assert "x" in str(info.value)
    with pytest.raises(sd.ShapeError) as info:
        sd.derive("A @ x", wrt="x", shapes={"A": ("n", "n"), "x": "m"})
    msg = str(info.value)
    assert "@" in msg or "matmul" in msg
    assert "(n, n)" in msg and "(m,)" in msg


def test_array_closed_forms_are_sympy_objects(quad):
    d, h = quad
    for e in (d.closed_form["x"], h.closed_form):
        assert isinstance(e, sympy.Basic)
        assert "A" in sympy.latex(e) and sympy.srepr(e)
        A = next(s for s in e.free_symbols if s.name == "A")
        e2 = e.subs(A, 2 * A)
        assert isinstance(e2, sympy.Basic) and e2 != e and "2" in str(e2)


def test_array_closed_forms_pretty_print(quad):
    _, h = quad
    assert sympy.pretty(h.closed_form).replace(" ", "") == "A+A.T"
    d = sd.derive("logdet(S)", wrt="S", shapes={"S": ("n", "n")})
    assert sympy.pretty(d.closed_form["S"]) == "inv(S).T"
    assert sympy.pycode(h.closed_form) == "A + A.T"


def test_least_squares():
    d = sd.derive("sum((X @ w - y)**2)", wrt="w", shapes={"X": ("m", "n"), "w": "n", "y": "m"})
    h = sd.derive("sum((X @ w - y)**2)", wrt="w", order=2, shapes={"X": ("m", "n"), "w": "n", "y": "m"})
    assert "X.T" in str(d) and "@" in str(d)
    X = RNG.standard_normal((6, 3))
    w = RNG.standard_normal(3)
    y = RNG.standard_normal(6)
    np.testing.assert_allclose(np.asarray(d(X=X, w=w, y=y)), 2 * X.T @ (X @ w - y), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(h(X=X, w=w, y=y)), 2 * X.T @ X, rtol=1e-10)


def test_logdet_gradient():
    d = sd.derive("logdet(S)", wrt="S", shapes={"S": ("n", "n")})
    assert "inv" in str(d) and "^{-1}" in d.latex() and "^{T}" in d.latex()
    S = RNG.standard_normal((4, 4)) + 4 * np.eye(4)
    g = d(S=S)
    assert g.shape == (4, 4)
    np.testing.assert_allclose(np.asarray(g), np.linalg.inv(S).T, rtol=1e-9)
    S2 = -S  # log |det|: sign does not matter
    np.testing.assert_allclose(np.asarray(d(S=S2)), np.linalg.inv(S2).T, rtol=1e-9)


def test_callable_and_matrix_symbol():
    d = sd.derive(lambda x, A: x @ A @ x, wrt="x", shapes=XA)
    A = RNG.standard_normal((3, 3))
    x = RNG.standard_normal(3)
    np.testing.assert_allclose(np.asarray(d(x=x, A=A)), (A + A.T) @ x, rtol=1e-10)
    t = sd.derive("x.T @ x", wrt="x", shapes={"x": "n"})  # .T is a no-op on vectors
    np.testing.assert_allclose(np.asarray(t(x=x)), 2 * x, rtol=1e-12)
    d2 = sd.derive(lambda x, A: (A @ x).sum() + sd.sum(sd.exp(x)) + x.T @ x, wrt="x", shapes=XA)
    np.testing.assert_allclose(np.asarray(d2(x=x, A=A)), A.sum(axis=0) + np.exp(x) + 2 * x, rtol=1e-10)
    n = sympy.Symbol("n", integer=True, positive=True)
    xs = sympy.MatrixSymbol("x", n, 1)
    As = sympy.MatrixSymbol("A", n, n)
    dm = sd.derive(xs.T * As * xs, wrt=xs)
    assert [a.name for a in dm.args] == ["A", "x"]
    xc = x.reshape(3, 1)
    g = np.asarray(dm(x=xc, A=A))
    assert g.shape == (3, 1)  # SymPy's shapes: a column
    np.testing.assert_allclose(g, (A + A.T) @ xc, rtol=1e-10)


def test_matrix_symbol_element():
    n = sympy.Symbol("n", integer=True, positive=True)
    xs = sympy.MatrixSymbol("x", n, 1)
    As = sympy.MatrixSymbol("A", n, n)
    A = RNG.standard_normal((3, 3))
    xc = RNG.standard_normal((3, 1))
    dm = sd.derive((xs.T * As * xs)[0, 0], wrt=xs)  # the same scalar, as SymPy's 1x1 element
    np.testing.assert_allclose(np.asarray(dm(x=xc, A=A)), (A + A.T) @ xc, rtol=1e-10)


def test_mixed_scalar_and_array():
    d = sd.derive("sigma**2 * sum(x**2)", shapes={"x": "n"})
    assert [a.name for a in d.args] == ["sigma", "x"]
    x = RNG.standard_normal(5)
    gs, gx = d(sigma=1.5, x=x)
    assert gs.shape == () and gx.shape == (5,)
    np.testing.assert_allclose(float(gs), 2 * 1.5 * np.sum(x**2), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(gx), 2 * 1.5**2 * x, rtol=1e-10)


def test_array_jacobians_and_hessian_blocks():
    shapes = {"A": ("n", "n"), "x": "n"}
    j = sd.derive("A @ x", wrt=["A", "x"], shapes=shapes)
    A = RNG.standard_normal((3, 3))
    x = RNG.standard_normal(3)
    JA, Jx = j(A=A, x=x)
    rA, rx = jax.jacobian(lambda A, x: A @ x, argnums=(0, 1))(A, x)
    assert JA.shape == (3, 3, 3) and Jx.shape == (3, 3)
    np.testing.assert_allclose(np.asarray(JA), np.asarray(rA), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(Jx), A, rtol=1e-10)
    h = sd.derive("x @ A @ y", wrt=["x", "y"], order=2, shapes={"x": "n", "y": "n", "A": ("n", "n")})
    y = RNG.standard_normal(3)
    H = h(x=x, y=y, A=A)
    assert len(H) == 2 and len(H[0]) == 2
    np.testing.assert_allclose(np.asarray(H[0][0]), np.zeros((3, 3)))
    np.testing.assert_allclose(np.asarray(H[0][1]), A, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(H[1][0]), A.T, rtol=1e-10)
    assert isinstance(h.closed_form, tuple) and isinstance(h.closed_form[0], tuple)


def test_array_functions_exist():
    for name in ("sum", "mean", "dot", "outer", "trace", "det", "logdet", "inv", "diag", "norm", "logsumexp", "softmax"):
        assert callable(getattr(sd, name)), name


def test_array_function_values():
    x = np.array([0.3, -1.2, 2.0])
    A = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    Ai = np.linalg.inv(A)
    sm = np.exp(x) / np.exp(x).sum()
    sx, sA, sAx = {"x": "n"}, {"A": ("n", "n")}, {"A": ("n", "n"), "x": "n"}
    cases = [  # NumPy closed forms of the gradients / Jacobians
        ("logsumexp(x)", sx, "x", sm),
        ("softmax(x)", sx, "x", np.diag(sm) - np.outer(sm, sm)),
        ("norm(x)", sx, "x", x / np.linalg.norm(x)),
        ("trace(diag(x)) + sum(outer(x, x)) + dot(x, x) + mean(x)", sx, "x", 1 + 2 * x.sum() + 2 * x + 1 / 3),
        ("det(A)", sA, "A", np.linalg.det(A) * Ai.T),
        ("sum(inv(A) @ x) + norm(A) + mean(A, 0) @ x + sum(A, 1) @ x", sAx, "A",
         -np.outer(Ai.T @ np.ones(3), Ai @ x) + A / np.linalg.norm(A) + np.outer(np.ones(3), x) / 3
         + np.outer(x, np.ones(3))),
    ]  # fmt: skip
    for text, shapes, wrt, ref in cases:
        d = sd.derive(text, wrt=wrt, shapes=shapes)
        got = d(**{k: {"x": x, "A": A}[k] for k in shapes})
        assert got.dtype == jnp.float64 and got.shape == ref.shape, text
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-9, atol=1e-12, err_msg=text)


def test_tensor_least_squares_derive():
    Xv = RNG.standard_normal((100, 3)).astype(np.float32)
    yv = RNG.standard_normal(100).astype(np.float32)
    X = sd.tensor(Xv, name="X")
    y = sd.tensor(yv, name="y")
    w = sd.tensor(np.zeros(3, np.float32), requires_grad=True, name="w")
    loss = ((X @ w - y) ** 2).mean()
    s = str(loss.derive())
    assert "matmul(" not in s and "@" in s and "X" in s, s
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * Xv.T @ (Xv @ np.zeros(3) - yv) / 100, rtol=1e-4, atol=1e-5)


def _eval_printed(d, env):
    """Read the right-hand side of each printed line as NumPy code (the notation §6 promises)."""
    ns = {"sum": lambda a, axis=None, dim=None: np.sum(a, axis=axis if dim is None else dim),
          "mean": lambda a, axis=None, dim=None: np.mean(a, axis=axis if dim is None else dim),
          "outer": np.outer, "inv": np.linalg.inv, "diag": np.diag, "dot": np.dot, **env}  # fmt: skip
    return [eval(line.split(" = ", 1)[1], ns) for line in str(d).splitlines()]  # noqa: S307


def test_tensor_printed_closed_form_reads_as_numpy():
    Xv = RNG.standard_normal((4, 3))
    yv = RNG.standard_normal(4)
    wv = RNG.standard_normal(3)
    w = sd.tensor(wv, requires_grad=True, name="w", dtype=sd.float64)
    loss = ((sd.tensor(Xv, name="X") @ w - sd.tensor(yv, name="y")) ** 2).mean()
    (g,) = _eval_printed(loss.derive(), {"X": Xv, "y": yv, "w": wv})
    np.testing.assert_allclose(g, 2 * Xv.T @ (Xv @ wv - yv) / 4, rtol=1e-10)


def test_tensor_printed_mean_dim_reads_as_numpy():
    Xv = np.arange(6.0).reshape(2, 3)
    X = sd.tensor(Xv, requires_grad=True, name="X")
    (g,) = _eval_printed(((X**2).mean(dim=0).sum()).derive(), {"X": Xv})
    assert np.shape(g) == (2, 3)
    np.testing.assert_allclose(g, Xv, rtol=1e-12)


def test_tensor_mean_dim_values():
    Xv = np.arange(6.0).reshape(2, 3).astype(np.float32)
    X = sd.tensor(Xv, requires_grad=True, name="X")
    loss = (X**2).mean(dim=0).sum()
    (g,) = loss.derive()(X=Xv)
    np.testing.assert_allclose(np.asarray(g), Xv, rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(X.grad.numpy(), Xv, rtol=1e-6)


# --------------------------------------------------------------------------- §7 sparse

ROSEN = "sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)"


@pytest.fixture(scope="module")
def rosen():
    return (
        sd.derive(ROSEN, wrt="x", shapes={"x": "n"}),
        sd.derive(ROSEN, wrt="x", order=2, shapes={"x": "n"}),
    )


def test_rosenbrock_gradient_hessian_hvp(rosen):
    g, h = rosen
    x = RNG.uniform(-1, 1, 10)
    v = RNG.standard_normal(10)
    np.testing.assert_allclose(np.asarray(g(x=x)), scipy.optimize.rosen_der(x), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(h(x=x)), scipy.optimize.rosen_hess(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(h.hvp(v, x=x)), scipy.optimize.rosen_hess_prod(x, v), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(g.hvp(v, x=x)), scipy.optimize.rosen_hess_prod(x, v), rtol=1e-10)


def test_rosenbrock_sparse(rosen):
    from jax.experimental import sparse as jsparse

    _, h = rosen
    for n in (10, 2000):
        x = np.full(n, 0.5) if n > 10 else RNG.uniform(-1, 1, n)
        H = h.sparse(x=x)
        assert isinstance(H, jsparse.BCOO) and H.shape == (n, n)
        assert H.nse == 3 * n - 2
        S = h.sparse(x=x, format="scipy")
        assert isinstance(S, scipy.sparse.csr_array) and S.shape == (n, n)
        assert S.nnz == 3 * n - 2
        ref = scipy.optimize.rosen_hess(x)
        np.testing.assert_allclose(S.toarray(), ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.asarray(H.todense()), ref, rtol=1e-6, atol=1e-6)


def test_rosenbrock_million(rosen):
    from jax.experimental import sparse as jsparse

    _, h = rosen
    n = 10**6
    x = np.full(n, 0.5, np.float32)
    H = h.sparse(x=x)
    assert isinstance(H, jsparse.BCOO) and H.nse == 3 * n - 2 and H.dtype == jnp.float32
    v = np.ones(n, np.float32)
    hv = np.asarray(h.hvp(v, x=x))
    ref = scipy.optimize.rosen_hess_prod(np.full(7, 0.5), np.ones(7))  # constant x: ends and a constant middle
    np.testing.assert_allclose(hv[:3], ref[:3], rtol=1e-5)
    np.testing.assert_allclose(hv[-3:], ref[-3:], rtol=1e-5)
    np.testing.assert_allclose(hv[3:-3], ref[3], rtol=1e-5)


def test_indexing_sizes_and_errors():
    d = sd.derive("sum(x[1:]) + 3*x[0] + x[-1]**2 + sum(x[:-1]**2)", wrt="x", shapes={"x": "n"})
    for n in (4, 6):
        x = np.arange(1.0, n + 1)
        ref = np.r_[0.0, np.ones(n - 1)] + np.r_[3.0, np.zeros(n - 1)]
        ref[-1] += 2 * x[-1]
        ref[:-1] += 2 * x[:-1]
        np.testing.assert_allclose(np.asarray(d(x=x)), ref)
    dA = sd.derive("A[1, 2]**2 + sum(A[:, 0])", wrt="A", shapes={"A": ("n", "n")})
    A = RNG.standard_normal((3, 3))
    ref = np.zeros((3, 3))
    ref[:, 0] = 1
    ref[1, 2] = 2 * A[1, 2]
    np.testing.assert_allclose(np.asarray(dA(A=A)), ref, rtol=1e-10)
    bad = sd.derive("x[5]**2", wrt="x", shapes={"x": "n"})
    with pytest.raises(sd.ShapeError):
        bad(x=np.ones(3))


def test_step_slice_symbolic_size():
    d = sd.derive("sum(x[::2])", wrt="x", shapes={"x": "n"})
    np.testing.assert_allclose(np.asarray(d(x=np.arange(1.0, 6.0))), [1.0, 0, 1, 0, 1])
    np.testing.assert_allclose(np.asarray(d(x=np.arange(1.0, 5.0))), [1.0, 0, 1, 0])


def test_sparse_jacobian_of_vector_output():
    j = sd.derive("x[1:] - x[:-1]**2", wrt="x", shapes={"x": "n"})
    x = np.array([0.5, 1.0, 1.5, 2.0])
    ref = np.zeros((3, 4))
    ref[np.arange(3), np.arange(3)] = -2 * x[:-1]
    ref[np.arange(3), np.arange(1, 4)] = 1.0
    np.testing.assert_allclose(np.asarray(j(x=x)), ref)
    S = j.sparse(x=x, format="scipy")
    assert isinstance(S, scipy.sparse.csr_array) and S.shape == (3, 4) and S.nnz == 6
    np.testing.assert_allclose(S.toarray(), ref)


def test_sparse_matrix_wrt_flattened():
    A = RNG.uniform(0.5, 1.5, (2, 3))
    h = sd.derive("sum(A**3)", wrt="A", order=2, shapes={"A": (2, 3)})
    H = h.sparse(A=A, format="scipy")
    assert H.shape == (6, 6) and H.nnz == 6
    np.testing.assert_allclose(H.toarray(), np.diag(6 * A.ravel()), rtol=1e-12)


def test_sparse_scalar_names():
    h = sd.derive("x0**2*x1 + x2", wrt=["x0", "x1", "x2"], order=2)
    S = h.sparse(x0=1.5, x1=2.0, x2=3.0, format="scipy")
    assert isinstance(S, scipy.sparse.csr_array) and S.shape == (3, 3) and S.nnz == 3
    np.testing.assert_allclose(S.toarray(), [[4.0, 3.0, 0], [3.0, 0, 0], [0, 0, 0]])
    j = sd.derive(["x0*x1", "x2"], wrt=["x0", "x1", "x2"])
    J = j.sparse(x0=1.5, x1=2.0, x2=3.0)
    assert J.shape == (2, 3) and J.nse == 3
    np.testing.assert_allclose(np.asarray(J.todense()), [[2.0, 1.5, 0], [0, 0, 1.0]])
    hv = h.hvp(np.array([1.0, 0.0, 1.0]), x0=1.5, x1=2.0, x2=3.0)
    np.testing.assert_allclose(np.asarray(hv).ravel(), [4.0, 3.0, 0.0])


# --------------------------------------------------------------------------- §8 JAX input


def test_jax_callable():
    def f(x, y):
        return jnp.sin(x) * jnp.exp(-y**2)

    d = sd.derive(f)
    assert str(d).splitlines() == ["d/dx = exp(-y**2)*cos(x)", "d/dy = -2*y*exp(-y**2)*sin(x)"]
    gx, gy = d(x=0.7, y=0.3)
    rx, ry = jax.grad(f, argnums=(0, 1))(0.7, 0.3)
    np.testing.assert_allclose([float(gx), float(gy)], [float(rx), float(ry)], rtol=1e-6)


def test_jax_callable_arrays_and_literals():
    d = sd.derive(lambda x, A: x @ A @ x, wrt="x", shapes=XA)
    A = RNG.standard_normal((3, 3))
    x = RNG.standard_normal(3)
    np.testing.assert_allclose(np.asarray(d(x=x, A=A)), (A + A.T) @ x, rtol=1e-10)

    def g(x):
        return jnp.sum(jnp.tanh(x)) * 0.1

    dg = sd.derive(g, wrt="x", shapes={"x": "n"})
    xv = np.array([0.2, -0.4])
    r = dg(x=xv)
    assert r.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(r), 0.1 * (1 - np.tanh(xv) ** 2), rtol=1e-14)


def test_jax_callable_linalg_and_einsum():
    S = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    d = sd.derive(lambda S: jnp.linalg.slogdet(S)[1], wrt="S", shapes={"S": ("n", "n")})
    np.testing.assert_allclose(np.asarray(d(S=S)), np.linalg.inv(S).T, rtol=1e-9)
    e = sd.derive(lambda x, A: jnp.sum(jnp.einsum("i,ij->j", x, A)), wrt="x", shapes=XA)
    np.testing.assert_allclose(np.asarray(e(x=np.ones(3), A=S)), S.sum(axis=1), rtol=1e-12)
    f = sd.derive(lambda x: jax.nn.sigmoid(x) + jax.scipy.special.erf(x) + jax.lax.tanh(x), wrt="x")
    ref = jax.grad(lambda x: jax.nn.sigmoid(x) + jax.scipy.special.erf(x) + jnp.tanh(x))(0.4)
    np.testing.assert_allclose(float(f(x=0.4)), float(ref), rtol=1e-6)


def test_jax_callable_scalar_closure_constant():
    c = np.array([1.0, 2.0, 3.0])
    d = sd.derive(lambda x: jnp.sum(c * x**2), wrt="x")
    np.testing.assert_allclose(float(d(x=2.0)), 2 * 2.0 * c.sum(), rtol=1e-6)


@pytest.mark.xfail(strict=True, reason="library refuses enclosing-scope arrays with shapes= (CaptureError), contract §8 says they are constants")
def test_jax_callable_array_closure_constant_with_shapes():
    c = np.array([1.0, 2.0, 3.0])
    d = sd.derive(lambda x: jnp.sum(c * x**2), wrt="x", shapes={"x": 3})
    np.testing.assert_allclose(np.asarray(d(x=np.ones(3))), 2 * c, rtol=1e-12)


def test_callables_with_array_functions():
    A = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    x = RNG.standard_normal(3)

    def f_jnp(A, x):  # §8: jnp / jnp.linalg captured with shapes=
        return jnp.dot(x, jnp.linalg.inv(A) @ x) + jnp.linalg.det(A) + jnp.mean(A.T @ x)

    def f_sd(A, x):  # §6: symbolic arrays with the sd. functions
        return (sd.dot(x, sd.inv(A) @ x) + sd.det(A) + (A.T @ x).mean() + sd.logdet(A) + sd.trace(A) + sd.norm(x)
                + sd.logsumexp(x) + sd.sum(sd.softmax(x) * x) + sd.sum(sd.outer(x, x)) + sd.sum(sd.diag(A)))  # fmt: skip

    n = 3
    Ai = np.linalg.inv(A)
    sm = np.exp(x) / np.exp(x).sum()
    one = np.ones(n)
    # NumPy closed forms of the gradients of f_jnp, then of the extra terms of f_sd
    jA = -Ai.T @ np.outer(x, x) @ Ai.T + np.linalg.det(A) * Ai.T + np.outer(x, one) / n
    jx = (Ai + Ai.T) @ x + A @ one / n
    sA = jA + Ai.T + np.eye(n) + np.eye(n)
    sx = jx + x / np.linalg.norm(x) + sm + (sm + sm * (x - np.sum(sm * x))) + 2 * x.sum() * one
    for fn, rA, rx in ((f_jnp, jA, jx), (f_sd, sA, sx)):
        d = sd.derive(fn, wrt=["A", "x"], shapes=XA, simplify=False)  # values only: skip the simplification budget
        gA, gx = d(A=A, x=x)
        assert gA.shape == (3, 3) and gx.shape == (3,)
        np.testing.assert_allclose(np.asarray(gA), rA, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(gx), rx, rtol=1e-10, atol=1e-12)


def test_capture_error_names_primitive():
    def f(x):
        return jax.lax.while_loop(lambda c: c < 10.0, lambda c: c * 2.0, x)

    with pytest.raises(sd.CaptureError) as info:
        sd.derive(f)
    msg = str(info.value)
    assert "while" in msg
    assert "test_api_contract.py" in msg or "'f'" in msg  # where it occurs

    def r(x):
        return x * jax.random.normal(jax.random.PRNGKey(0))

    with pytest.raises(sd.CaptureError):
        sd.derive(r)


# --------------------------------------------------------------------------- §9 disk caches

_CACHE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import symdiff as sd
    d = sd.derive("sin(q)*exp(r**2) + q**3", wrt=["q", "r"])
    root = os.environ["SYMDIFF_CACHE_DIR"]
    files = [] if root == "off" else [os.path.join(p, f) for p, _, fs in os.walk(root) for f in fs]
    out = {"files": len(files), "values": [float(v) for v in d(q=1.0, r=0.5)]}
    if "load" in sys.argv:  # a derivative saved by the test process
        out["loaded"] = [float(v) for v in sd.load(sys.argv[-1])(a=[2.0, 3.0], b=[6.0, 4.0])[0]]
    if root != "off":
        out["mode"] = os.stat(root).st_mode & 0o777
    if "clear" in sys.argv:
        sd.clear_caches(disk=True)
        out["after"] = sum(len(fs) for _, _, fs in os.walk(root))
    print(json.dumps(out))
    """
)


def test_disk_cache_and_load_in_another_process(seed, tmp_path):
    saved = tmp_path / "seed.sdx"
    seed(a=[2.0, 3.0], b=[6.0, 4.0])
    seed.save(saved)
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if k not in ("SYMDIFF_CACHE_DIR", "XDG_CACHE_HOME")}
    base["HOME"] = str(home)
    cache = tmp_path / "c" / "symdiff-cache"
    xdg = tmp_path / "xdg"
    on = {**base, "SYMDIFF_CACHE_DIR": str(cache)}
    p, q = _run_all(
        [["-c", _CACHE_SCRIPT], ["-c", _CACHE_SCRIPT, "load", str(saved)]],
        envs=[on, {**base, "SYMDIFF_CACHE_DIR": "off", "XDG_CACHE_HOME": str(xdg)}],
    )
    q1, r1 = 1.0, 0.5  # NumPy closed form of the gradient
    ref = [np.cos(q1) * np.exp(r1**2) + 3 * q1**2, np.sin(q1) * 2 * r1 * np.exp(r1**2)]
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["values"], ref, rtol=1e-6)
    assert out["mode"] == 0o700
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    entries = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs]
    assert entries  # filled
    assert q.returncode == 0, q.stderr
    out = json.loads(q.stdout.strip().splitlines()[-1])
    assert out["files"] == 0
    assert out["loaded"] == [36.0, 81.0]
    assert not (xdg / "symdiff").exists()
    assert not (home / ".cache" / "symdiff").exists()
    # damaged entries are ignored and rebuilt; clear_caches(disk=True) empties the directory
    for e in entries:
        with open(e, "r+b") as fh:
            fh.truncate(max(0, os.path.getsize(e) // 2))
    (p2,) = _run_all([["-c", _CACHE_SCRIPT, "clear"]], envs=[on])
    assert p2.returncode == 0, p2.stderr
    out = json.loads(p2.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["values"], ref, rtol=1e-6)
    assert out["after"] == 0
