"""Existing JAX code as input (docs/jax_input.md): closed forms read from the jaxpr.

Oracles: ``jax.grad`` / ``jax.hessian`` / ``jax.jacobian`` of the very same
``jax.numpy`` function in float64, mpmath (SymPy's ``evalf``) for round trips.
"""

import inspect
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pytest
import sympy
from jax import lax

import symdiff as sd
from symdiff import _capture_jax, _jaxpr_arrays
from symdiff._capture import real_symbol
from symdiff._capture_jax import capture_jax
from symdiff._functions import FUNCTIONS
from symdiff._lower import FUNCTION_TABLE, build_kernel

ROOT = pathlib.Path(__file__).resolve().parents[1]
x_, y_ = real_symbol("x"), real_symbol("y")

# ---- every function of the language round-trips: lowered to jnp by symdiff, read back --------

_ROUND_TRIP = {name: (build(x_, y_) if 2 in arity else build(x_)) for name, (build, arity) in FUNCTIONS.items()}
_ROUND_TRIP["log1"] = sympy.log(x_)
_ROUND_TRIP["polygamma"] = sympy.polygamma(1, x_)
_ROUND_TRIP["heaviside"] = sympy.Heaviside(x_, sympy.Rational(1, 2))
_DOMAIN = {  # points inside each function's real domain
    "asin": [-0.7, 0.2, 0.9], "acos": [-0.7, 0.2, 0.9], "atanh": [-0.7, 0.2, 0.9],
    "acosh": [1.2, 2.0, 5.0], "log": [0.3, 2.0, 5.0], "log1": [0.3, 2.0, 5.0], "sqrt": [0.3, 2.0, 5.0],
    "loggamma": [0.3, 2.0, 5.0], "polygamma": [0.3, 2.0, 5.0], "gamma": [-1.5, 0.3, 4.2],
}


def test_round_trip_covers_the_lowering_table():
    heads = {type(e) for e in _ROUND_TRIP.values()} | {sympy.log, sympy.Min, sympy.Max}
    missing = set(FUNCTION_TABLE) - heads - {sympy.DiracDelta}  # DiracDelta lowers to 0: nothing to read back
    assert not missing, missing


@pytest.mark.parametrize("name", sorted(_ROUND_TRIP))
def test_every_language_function_round_trips(name):
    expr = _ROUND_TRIP[name]
    args = sorted(expr.free_symbols, key=lambda s: s.name)
    kernel = build_kernel(args, [expr], [], [], "expression")
    back = capture_jax(lambda *xs: kernel.fn(*xs)[0][0], [a.name for a in args], args, name).outputs
    if back == expr:
        return
    # otherwise numerically identical (cot -> 1/tan, log(x, 2) -> 1.44...*log(x), Heaviside -> Piecewise)
    points = _DOMAIN.get(name, [-1.3, 0.4, 2.5])
    for p in points:
        at = {x_: p, y_: 0.7}
        want, got = complex(expr.evalf(30, subs=at)), complex(back.evalf(30, subs=at))
        assert abs(want - got) <= 1e-13 * (1 + abs(want)), (name, p, want, got, back)
    assert name in {"cot", "sec", "csc", "log", "heaviside"}, f"{name} came back as {back}"


# ---- every function written with jnp / jax.nn / jax.scipy.special vs jax.grad of itself ------

_JAX_FUNCTIONS = {  # name -> (function of x or of (x, y), points of x)
    "sin": (jnp.sin, None), "cos": (jnp.cos, None), "tan": (jnp.tan, None),
    "cot": (lambda x: 1 / jnp.tan(x), None), "sec": (lambda x: 1 / jnp.cos(x), None),
    "csc": (lambda x: 1 / jnp.sin(x), None),
    "asin": (jnp.arcsin, [-0.7, 0.2, 0.9]), "acos": (jnp.arccos, [-0.7, 0.2, 0.9]), "atan": (jnp.arctan, None),
    "atan2": (lambda x, y: jnp.arctan2(x, y), None),
    "sinh": (jnp.sinh, None), "cosh": (jnp.cosh, None), "tanh": (jnp.tanh, None), "asinh": (jnp.arcsinh, None),
    "acosh": (jnp.arccosh, [1.2, 2.0, 5.0]), "atanh": (jnp.arctanh, [-0.7, 0.2, 0.9]),
    "exp": (jnp.exp, None), "log": (jnp.log, [0.3, 2.0, 5.0]), "log2": (jnp.log2, [0.3, 2.0, 5.0]),
    "log1p": (jnp.log1p, [0.3, 2.0, 5.0]), "expm1": (jnp.expm1, None),
    "sqrt": (jnp.sqrt, [0.3, 2.0, 5.0]), "cbrt": (jnp.cbrt, None), "abs": (jnp.abs, None),
    "sign": (lambda x: jnp.sign(x) * x**2, None), "erf": (jsp.erf, None), "erfc": (jsp.erfc, None),
    "gamma": (jsp.gamma, [-1.5, 0.3, 4.2]), "loggamma": (jsp.gammaln, [0.3, 2.0, 5.0]),
    "sigmoid": (jax.nn.sigmoid, None), "softplus": (jax.nn.softplus, None), "relu": (jax.nn.relu, None),
    "min": (lambda x, y: jnp.minimum(x, y), None), "max": (lambda x, y: jnp.maximum(x, y), None),
    "silu": (jax.nn.silu, None), "gelu": (lambda x: jax.nn.gelu(x), None), "elu": (lambda x: jax.nn.elu(x), None),
    "log_sigmoid": (jax.nn.log_sigmoid, None), "leaky_relu": (lambda x: jax.nn.leaky_relu(x), None),
    "relu6": (jax.nn.relu6, [-1.3, 0.4, 7.0]), "soft_sign": (jax.nn.soft_sign, None),
    "where": (lambda x, y: jnp.where(x > y, x**3 - y, jnp.cos(x * y)), None),
    "clip": (lambda x: jnp.clip(x, -1.0, 1.0) * x, [-1.3, 0.4, 2.5]), "pow": (lambda x, y: x**y, [0.3, 2.0, 5.0]),
    "square": (lambda x: jnp.square(x) + jnp.reciprocal(x) + lax.rsqrt(x), [0.3, 2.0, 5.0]),
    "cond": (lambda x, y: lax.cond(x > y, lambda a, b: a * jnp.sin(b), lambda a, b: a**2 - b, x, y), None),
    "logsumexp": (lambda x, y: jax.nn.logsumexp(jnp.stack([x, y, 0.5])), None),  # stop_gradient shift dropped
    "softmax": (lambda x, y: jax.nn.softmax(jnp.stack([x, y]))[0] * jnp.where(jnp.isfinite(x), 1.0, 0.0), None),
    "bool_to_float": (lambda x: (x > 0.5).astype(jnp.float64) * x**3 + (x < 0).astype(int) * x, None),
}


@pytest.mark.parametrize("name", sorted(_JAX_FUNCTIONS))
def test_jax_function_gradient_matches_jax_grad(name):
    fn, points = _JAX_FUNCTIONS[name]
    points = np.asarray(points or [-1.3, 0.4, 2.5])
    d = sd.derive(fn, simplify=False)
    n = len(d.args)
    assert [a.name for a in d.args] == ["x", "y"][:n]
    inputs = [points, np.asarray([0.7, 1.9, -0.45])][:n]
    got = d(*inputs)
    with jax.enable_x64(True):
        want = jax.jit(jax.vmap(jax.grad(fn, argnums=tuple(range(n)))))(*inputs)
    for g, w in zip(got, want):
        assert g.dtype == np.float64
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12, atol=1e-13, err_msg=name)


# ---- Hessians, Jacobians, jit, closures ------------------------------------------------------


def _model(x, y, z):
    return jnp.sin(x * y) + jax.nn.softplus(z) * x**2 + jnp.where(y > 0, y**3, -y) * jnp.exp(-z**2 / 2)


def test_hessian_matches_jax_hessian():
    h = sd.derive(_model, order=2, simplify=False)
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(3, 8))
    got = np.asarray(h.array(*pts))
    with jax.enable_x64(True):
        want = jax.jit(jax.vmap(jax.hessian(lambda v: _model(*v))))(jnp.asarray(pts.T))
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-11, atol=1e-12)


def test_vector_output_is_a_jacobian():
    def f(x, y):
        return jnp.stack([x * y, jnp.sin(x) + y**2])

    d = sd.derive(f)
    assert d.expr.shape == (2, 1)
    got = np.asarray(d.array(np.asarray([0.3, 1.1]), np.asarray([2.0, -0.5])))
    with jax.enable_x64(True):
        want = jax.jit(jax.vmap(lambda a, b: jnp.stack(jax.jacobian(f, argnums=(0, 1))(a, b), axis=-1)))(
            jnp.asarray([0.3, 1.1]), jnp.asarray([2.0, -0.5]))
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12)


@jax.jit
def _jitted(x, y):
    return jnp.tanh(x) * jax.nn.sigmoid(y) + jnp.log1p(x**2)


def test_jit_decorated_function():
    d = sd.derive(_jitted)
    assert {str(k): str(v) for k, v in d.closed_form.items()}  # it prints as a closed form
    assert "tanh" in str(d) and "sigmoid" in str(d)
    xs, ys = np.asarray([0.3, -1.2]), np.asarray([2.0, 0.5])
    with jax.enable_x64(True):
        want = jax.vmap(jax.grad(_jitted, argnums=(0, 1)))(xs, ys)
    for g, w in zip(d(xs, ys), want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)


def test_closure_constants_are_folded_at_float64():
    weights = jnp.asarray([1.0, 2.0, 3.0])
    k = 0.1

    def f(x):
        return jnp.sum(weights * jnp.sin(k * x)) + k * x

    d = sd.derive(f, wrt="x")
    assert d.closed_form["x"].free_symbols == {real_symbol("x")}
    # 0.1 kept its float64 value (traced in float32 it would be 0.100000001490116)
    assert float(sd.derive(lambda x: k * x).closed_form["x"]) == 0.1
    xs = np.asarray([0.3, -2.0, 4.0])
    with jax.enable_x64(True):
        want = jax.vmap(jax.grad(f))(xs)
    np.testing.assert_allclose(np.asarray(d(xs)), np.asarray(want), rtol=1e-12)


def test_symbolic_callables_keep_their_route():
    assert str(sd.derive(lambda x: sd.sin(x) ** 2)) == str(sd.derive("sin(x)**2"))
    assert sd.derive(lambda x: sympy.sin(x) ** 2).closed_form == sd.derive("sin(x)**2").closed_form
    assert sd.derive(lambda x: jnp.sin(x) ** 2).closed_form == sd.derive("sin(x)**2").closed_form


def test_check_differentiates_the_users_own_function(monkeypatch):
    def f(x):
        return jnp.sin(x) * x

    assert sd.derive(f).check([0.3, 1.7]).ok
    monkeypatch.setitem(_capture_jax.PRIMITIVES, "sin", sympy.cos)  # a capture mistake...
    wrong = sd.derive(f)
    assert "cos" in str(wrong.expr)
    with pytest.raises(sd.CrossCheckError):  # ...cannot hide behind its own re-lowering
        wrong.check([0.3, 1.7])


# ---- refusals name the primitive and the user's line -----------------------------------------


def _line_of(text):
    lines = pathlib.Path(__file__).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_while_loop_is_refused_with_primitive_and_line():
    def f(x):
        return lax.while_loop(lambda v: v < 10.0, lambda v: v * x, 1.0)  # LOOP-LINE

    with pytest.raises(sd.CaptureError, match=r"'while'.*test_capture_jax\.py:(\d+)") as info:
        sd.derive(f)
    assert re.search(rf"test_capture_jax\.py:{_line_of('LOOP-LINE')}\b", str(info.value))


def test_random_numbers_are_refused_with_primitive_and_line():
    def f(x):
        return x * jax.random.normal(jax.random.key(0))  # RANDOM-LINE

    with pytest.raises(sd.CaptureError, match=r"'random_\w+'.*random numbers") as info:
        sd.derive(f)
    assert re.search(rf"test_capture_jax\.py:{_line_of('RANDOM-LINE')}\b", str(info.value))


@pytest.mark.parametrize("fn, primitive", [
    (lambda x: x * lax.stop_gradient(x), "stop_gradient"),
    (lambda x: jnp.floor(x) * x, "floor"),
    (lambda x: jax.pure_callback(np.sin, jax.ShapeDtypeStruct((), np.float64), x), "pure_callback"),
])
def test_other_refusals(fn, primitive):
    with pytest.raises(sd.CaptureError, match=f"'{primitive}'"):
        sd.derive(fn)


def test_untraceable_function_says_why_both_ways():
    def f(x):
        return x if x > 0 else -x  # Python branching on the input

    with pytest.raises(sd.CaptureError, match="could not be traced.*SymPy.*JAX"):
        sd.derive(f)


def test_example_runs():
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "from_jax.py")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "d/dtheta" in r.stdout and "max |symdiff - jax.grad|" in r.stdout
    assert "cross-check passed" in r.stdout


# ---- arrays (shapes=): @, jnp.sum, jnp.mean, .T, jnp.linalg, jnp.dot, jnp.einsum --------------

_SQUARE = {"x": "n", "A": ("n", "n")}
_ARRAY_CASES = {  # name -> (function, shapes, wrt, text of the expected closed form's pieces)
    "quadratic": (lambda x, A: x @ A @ x, _SQUARE, "x", ["A.T @ x"]),
    "least_squares": (lambda X, w, y: jnp.sum((X @ w - y) ** 2), {"X": ("m", "n"), "w": "n", "y": "m"}, "w",
                      ["X.T @"]),
    "mean": (lambda x: jnp.mean(jnp.sin(x) ** 2), {"x": "n"}, "x", ["/n"]),
    "slogdet": (lambda A: jnp.linalg.slogdet(A)[1], {"A": ("n", "n")}, "A", ["inv(A).T"]),
    "det": (lambda A: jnp.linalg.det(A), {"A": ("n", "n")}, "A", ["det(A)", "inv(A).T"]),
    "inv": (lambda A, x: x @ jnp.linalg.inv(A) @ x, _SQUARE, "x", ["inv(A)"]),
    "einsum": (lambda A, x: jnp.einsum("ij,i,j->", A, x, x) + jnp.einsum("ij,j->", A, x), _SQUARE, "x", ["A"]),
    "dot_transpose": (lambda A, x: jnp.dot(A.T, jax.nn.softplus(x)).sum(), _SQUARE, "x", ["sigmoid(x)"]),
    "vector_valued": (lambda A, x: jnp.tanh(A @ x), _SQUARE, "x", ["A"]),
    "trace_diag_norm": (lambda A, x: jnp.trace(A @ A) + jnp.diag(A) @ x + jnp.linalg.norm(A @ x), _SQUARE, "A",
                        ["A.T"]),
    "outer_relu": (lambda A, x: jnp.sum(jnp.outer(x, x) * A) + jnp.sum(jax.nn.relu(A @ x)), _SQUARE, "x",
                   ["Heaviside"]),
}


def _array_inputs(shapes, rng):
    dims = {"n": 3, "m": 5}
    out = {}
    for name, shape in shapes.items():
        shape = (shape,) if isinstance(shape, str) else shape
        value = rng.normal(size=tuple(dims[d] for d in shape))
        if len(shape) == 2 and shape[0] == shape[1]:
            value = value @ value.T + 3 * np.eye(dims[shape[0]])  # well conditioned, positive determinant
        out[name] = value
    return out


@pytest.mark.parametrize("name", sorted(_ARRAY_CASES))
def test_jax_array_function_matches_jax_autodiff(name):
    fn, shapes, wrt, pieces = _ARRAY_CASES[name]
    d = sd.derive(fn, wrt=wrt, shapes=shapes, simplify=False)
    printed = str(d)
    assert all(p in printed for p in pieces), printed
    assert "[0]" not in printed and "[1]" not in printed  # matrix closed form, not entries
    inputs = _array_inputs(shapes, np.random.default_rng(1))
    names = list(inspect.signature(fn).parameters)
    got = np.asarray(d(**inputs))
    with jax.enable_x64(True):
        args = [jnp.asarray(inputs[n]) for n in names]
        want = jax.jacobian(fn, argnums=names.index(wrt))(*args)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-10, atol=1e-12)


def test_jax_array_hessian_is_a_matrix_expression():
    h = sd.derive(lambda x, A: x @ A @ x + jnp.sum(x**2), wrt="x", order=2, shapes=_SQUARE)
    assert "A.T" in str(h) and "[0]" not in str(h)
    inputs = _array_inputs(_SQUARE, np.random.default_rng(2))
    with jax.enable_x64(True):
        want = jax.hessian(lambda x: x @ inputs["A"] @ x + jnp.sum(x**2))(jnp.asarray(inputs["x"]))
    np.testing.assert_allclose(np.asarray(h(**inputs)), np.asarray(want), rtol=1e-12)


def test_jax_array_refusals():
    with pytest.raises(sd.CaptureError, match="'while'"):
        sd.derive(lambda x: lax.fori_loop(0, x.shape[0], lambda i, v: v + x[i], 0.0) * jnp.sum(x),
                  shapes={"x": "n"})
    weights = np.arange(3.0)
    with pytest.raises(sd.CaptureError, match="constant array"):
        sd.derive(lambda x: jnp.sum(weights * x), shapes={"x": 3})
    with pytest.raises(sd.CaptureError, match="'gt'.*comparison on arrays"):
        sd.derive(lambda x: jnp.sum(jnp.where(x > 0, x, 0.0)), shapes={"x": "n"})


def test_array_callables_with_sd_functions_keep_their_route():
    d = sd.derive(lambda x, A: x @ A @ x, wrt="x", shapes=_SQUARE)  # operators only: symbolic arrays
    assert str(d) == str(sd.derive("x @ A @ x", wrt="x", shapes=_SQUARE))


def test_array_check_differentiates_the_users_own_function(monkeypatch):
    def f(A, x):
        return jnp.sum(jnp.sin(A.T @ x))

    inputs = _array_inputs(_SQUARE, np.random.default_rng(3))
    inputs["A"] = inputs["A"] + np.triu(np.ones((3, 3)))  # not symmetric
    assert sd.derive(f, wrt="x", shapes=_SQUARE).check(**inputs).ok
    monkeypatch.setitem(_jaxpr_arrays.ARRAY_PRIMITIVES, "transpose", lambda reader, eqn, ins: ins[0])  # a mistake
    with pytest.raises(sd.CrossCheckError):
        sd.derive(f, wrt="x", shapes=_SQUARE).check(**inputs)


def _rosenbrock(x):
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def test_jax_rosenbrock_slices_give_a_sparse_hessian():
    g = sd.derive(lambda x: _rosenbrock(x) + x[0] * x[-1], wrt="x", shapes={"x": "n"})
    assert "x[1:]" in str(g)  # slices of symbolic size, not entries
    h = sd.derive(_rosenbrock, wrt="x", order=2, shapes={"x": "n"})
    xv = np.linspace(-1.0, 2.0, 7)
    with jax.enable_x64(True):
        want_g = jax.grad(lambda x: _rosenbrock(x) + x[0] * x[-1])(jnp.asarray(xv))
        want_h = jax.hessian(_rosenbrock)(jnp.asarray(xv))
    np.testing.assert_allclose(np.asarray(g(x=xv)), np.asarray(want_g), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(h(x=xv)), np.asarray(want_h), rtol=1e-12)
    assert h.sparse(x=xv, format="scipy").nnz == 3 * 7 - 2
