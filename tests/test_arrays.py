"""Arrays: matrix calculus closed forms, checked against the Matrix Cookbook (NumPy) and JAX autodiff.

Each identity is derived ONCE with symbolic sizes and evaluated at two sizes.
Oracles: the cookbook formula typed here and evaluated with NumPy, and
``jax.grad`` / ``jax.hessian`` / ``jax.jacobian`` of independently written
``jax.numpy`` code, in float64.
"""

from __future__ import annotations

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

import symdiff as sd

SIZES = (3, 7)
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _spd(rng, n):
    m = rng.normal(size=(n, n))
    return m @ m.T + n * np.eye(n)


def _close(a, b, tol=1e-9):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * (1 + np.abs(b).max()))


def _jax64(fn, *args):
    with jax.enable_x64(True):
        return np.asarray(fn(*[jnp.asarray(a, dtype=jnp.float64) for a in args]))


# ---- gradients: (text, shapes, wrt, jnp function of the wrt (others bound), cookbook formula) ----

def _inputs(rng, n):
    m = n + 2
    return {
        "x": rng.normal(size=n), "a": rng.normal(size=n), "b": rng.normal(size=n),
        "A": rng.normal(size=(n, n)), "B": rng.normal(size=(n, n)), "S": _spd(rng, n),
        "X": rng.normal(size=(m, n)), "y": rng.normal(size=m), "w": rng.normal(size=n),
        "U": rng.normal(size=(n, 2)), "V": rng.normal(size=(m, 2)), "Y": rng.normal(size=(n, m)),
        "t": np.sign(rng.normal(size=m)),
    }


SHAPES = {"x": "n", "a": "n", "b": "n", "A": ("n", "n"), "B": ("n", "n"), "S": ("n", "n"), "X": ("m", "n"),
          "y": "m", "w": "n", "U": ("n", "k"), "V": ("m", "k"), "Y": ("n", "m"), "t": "m"}

GRADIENTS = [
    # Matrix Cookbook (2.4.2): d(x^T A x)/dx = (A + A^T) x
    ("x @ A @ x", "x", lambda v: lambda x: x @ v["A"] @ x, lambda v: (v["A"] + v["A"].T) @ v["x"]),
    # (2.4.1): d(a^T x)/dx = a
    ("a @ x", "x", lambda v: lambda x: v["a"] @ x, lambda v: v["a"]),
    # (2.4.2) d(a^T X b)/dX = a b^T
    ("a @ A @ b", "A", lambda v: lambda A: v["a"] @ A @ v["b"], lambda v: np.outer(v["a"], v["b"])),
    # (2.5.1) d tr(AB)/dA = B^T
    ("trace(A @ B)", "A", lambda v: lambda A: jnp.trace(A @ v["B"]), lambda v: v["B"].T),
    # (2.1.1) d det(X)/dX = det(X) X^-T
    ("det(A)", "A", lambda v: lambda A: jnp.linalg.det(A), lambda v: np.linalg.det(v["A"]) * np.linalg.inv(v["A"]).T),
    # (2.1.1) d log|det X|/dX = X^-T
    ("logdet(S)", "S", lambda v: lambda S: jnp.linalg.slogdet(S)[1], lambda v: np.linalg.inv(v["S"]).T),
    # (2.2) d a^T X^-1 b / dX = -X^-T a b^T X^-T
    ("a @ inv(S) @ b", "S", lambda v: lambda S: v["a"] @ jnp.linalg.inv(S) @ v["b"],
     lambda v: -np.linalg.inv(v["S"]).T @ np.outer(v["a"], v["b"]) @ np.linalg.inv(v["S"]).T),
    # (2.6) d ||x||_2 / dx = x / ||x||
    ("norm(x)", "x", lambda v: lambda x: jnp.linalg.norm(x), lambda v: v["x"] / np.linalg.norm(v["x"])),
    # (2.6) d ||X||_F^2 / dX = 2X
    ("norm(A)**2", "A", lambda v: lambda A: jnp.sum(A**2), lambda v: 2 * v["A"]),
    # least squares: d ||Xw - y||^2 / dw = 2 X^T (Xw - y)
    ("sum((X @ w - y)**2)", "w", lambda v: lambda w: jnp.sum((v["X"] @ w - v["y"]) ** 2),
     lambda v: 2 * v["X"].T @ (v["X"] @ v["w"] - v["y"])),
    # matrix factorisation: d ||U V^T - Y||_F^2 / dU = 2 (U V^T - Y) V
    ("norm(U @ V.T - Y)**2", "U", lambda v: lambda U: jnp.sum((U @ v["V"].T - v["Y"]) ** 2),
     lambda v: 2 * (v["U"] @ v["V"].T - v["Y"]) @ v["V"]),
    # logistic regression: d sum log(1 + exp(-t * Xw)) / dw = -X^T (t * sigmoid(-t * Xw))
    ("sum(log(1 + exp(-t * (X @ w))))", "w", lambda v: lambda w: jnp.sum(jnp.log1p(jnp.exp(-v["t"] * (v["X"] @ w)))),
     lambda v: -v["X"].T @ (v["t"] / (1 + np.exp(v["t"] * (v["X"] @ v["w"]))))),
    # d logsumexp(x)/dx = softmax(x)
    ("logsumexp(x)", "x", lambda v: lambda x: jax.scipy.special.logsumexp(x),
     lambda v: np.exp(v["x"]) / np.exp(v["x"]).sum()),
    # d mean(X, 0) @ w ... : mean and sum with an axis
    ("sum(mean(X, 0) * w) + sum(sum(X, 1)**2)", "X",
     lambda v: lambda X: jnp.sum(jnp.mean(X, 0) * v["w"]) + jnp.sum(jnp.sum(X, 1) ** 2),
     lambda v: np.broadcast_to(v["w"] / v["X"].shape[0], v["X"].shape) + 2 * v["X"].sum(1)[:, None]),
    # d (x^T S^-1 x) / dx = (S^-1 + S^-T) x
    ("x @ inv(S) @ x", "x", lambda v: lambda x: x @ jnp.linalg.solve(v["S"], x),
     lambda v: (np.linalg.inv(v["S"]) + np.linalg.inv(v["S"]).T) @ v["x"]),
    # diag: d sum(diag(A) * a) / dA = diag(a)
    ("sum(diag(A) * a) + trace(diag(x) @ A)", "A", lambda v: lambda A: jnp.sum(jnp.diag(A) * v["a"]) + jnp.trace(jnp.diag(v["x"]) @ A),
     lambda v: np.diag(v["a"] + v["x"])),
    # outer and dot: d dot(a, outer(x, x) @ b) / dx = (a.b) x + ... = a (x.b) + b (a.x)
    ("dot(a, outer(x, x) @ b)", "x", lambda v: lambda x: jnp.dot(v["a"], jnp.outer(x, x) @ v["b"]),
     lambda v: v["a"] * (v["x"] @ v["b"]) + v["b"] * (v["a"] @ v["x"])),
    # softmax: d softmax(x) @ a / dx = s * (a - s.a)
    ("softmax(x) @ a", "x", lambda v: lambda x: jax.nn.softmax(x) @ v["a"],
     lambda v: (lambda s: s * (v["a"] - s @ v["a"]))(np.exp(v["x"]) / np.exp(v["x"]).sum())),
]


@pytest.fixture(scope="module")
def gradient_derivatives():
    return [sd.derive(text, wrt=wrt, shapes=SHAPES) for text, wrt, _, _ in GRADIENTS]


@pytest.mark.parametrize("case", range(len(GRADIENTS)), ids=[g[0] for g in GRADIENTS])
def test_gradient_identities(case, gradient_derivatives):
    text, wrt, jax_fn, cookbook = GRADIENTS[case]
    d = gradient_derivatives[case]
    for n in SIZES:
        v = _inputs(_rng(n), n)
        got = d(**{a.name: v[a.name] for a in d.args}, )
        v64 = {k: np.asarray(x, dtype=np.float64) for k, x in v.items()}
        got = d(**{a.name: v64[a.name] for a in d.args})
        _close(got, cookbook(v64))
        if n == SIZES[0]:  # autodiff at one size (each size costs JAX a compilation); the cookbook at both
            _close(got, _jax64(jax.jit(jax.grad(jax_fn(v64))), v64[wrt]))
    printed = str(d)
    assert len(printed) < 200 and not re.search(r"\[-?\d", printed), printed  # no per-element entries


HESSIANS = [
    ("x @ A @ x", "x", lambda v: lambda x: x @ v["A"] @ x, lambda v: v["A"] + v["A"].T),
    ("sum((X @ w - y)**2)", "w", lambda v: lambda w: jnp.sum((v["X"] @ w - v["y"]) ** 2), lambda v: 2 * v["X"].T @ v["X"]),
    ("sum(log(1 + exp(-t * (X @ w))))", "w", lambda v: lambda w: jnp.sum(jnp.log1p(jnp.exp(-v["t"] * (v["X"] @ w)))),
     lambda v: (lambda s: v["X"].T @ np.diag(s * (1 - s)) @ v["X"])(1 / (1 + np.exp(-v["t"] * (v["X"] @ v["w"]))))),
    ("logsumexp(x)", "x", lambda v: lambda x: jax.scipy.special.logsumexp(x),
     lambda v: (lambda s: np.diag(s) - np.outer(s, s))(np.exp(v["x"]) / np.exp(v["x"]).sum())),
    ("norm(x)", "x", lambda v: lambda x: jnp.linalg.norm(x),
     lambda v: (lambda r: (np.eye(len(v["x"])) - np.outer(v["x"], v["x"]) / r**2) / r)(np.linalg.norm(v["x"]))),
    ("logdet(S)", "S", lambda v: lambda S: jnp.linalg.slogdet(S)[1],
     lambda v: (lambda Si: -np.einsum("li,jk->ijkl", Si, Si))(np.linalg.inv(v["S"]))),
]


@pytest.fixture(scope="module")
def hessian_derivatives():
    return [sd.derive(text, wrt=wrt, order=2, shapes=SHAPES) for text, wrt, _, _ in HESSIANS]


@pytest.mark.parametrize("case", range(len(HESSIANS)), ids=[h[0] for h in HESSIANS])
def test_hessian_identities(case, hessian_derivatives):
    text, wrt, jax_fn, cookbook = HESSIANS[case]
    h = hessian_derivatives[case]
    for n in SIZES:
        v = {k: np.asarray(x, dtype=np.float64) for k, x in _inputs(_rng(n + 10), n).items()}
        got = h(**{a.name: v[a.name] for a in h.args})
        _close(got, cookbook(v), 1e-8)
        if n == SIZES[0]:
            _close(got, _jax64(jax.jit(jax.hessian(jax_fn(v))), v[wrt]), 1e-8)


def test_printed_closed_forms():
    shapes = {"x": "n", "A": ("n", "n")}
    assert str(sd.derive("x @ A @ x", wrt="x", shapes=shapes)) == "d/dx = A @ x + A.T @ x"
    assert str(sd.derive("x @ A @ x", wrt="x", order=2, shapes=shapes)) == "d^2/dx^2 = A + A.T"
    ls = sd.derive("sum((X @ w - y)**2)", wrt="w", order=2, shapes=SHAPES)
    assert str(ls) == "d^2/dw^2 = 2*X.T @ X"
    assert str(sd.derive("logdet(S)", shapes=SHAPES)) == "d/dS = inv(S).T"
    lr = sd.derive("sum(log(1 + exp(-t * (X @ w))))", wrt="w", order=2, shapes=SHAPES)
    assert "X.T @ (diag(" in str(lr) and ") @ X)" in str(lr)
    assert sd.derive("logdet(A)", shapes=SHAPES).latex().endswith(r"= \left(A^{-1}\right)^{T}")
    assert "A^{-1}" in sd.derive("inv(A) @ x", wrt="x", shapes=SHAPES).latex()
    assert "A^{T}" in sd.derive("x @ A @ x", wrt="x", shapes=SHAPES).latex()


def test_closed_forms_are_sympy_objects():
    d = sd.derive("x @ A @ x", wrt="x", shapes={"x": "n", "A": ("n", "n")})
    g = d.closed_form["x"]
    assert isinstance(g, sympy.Expr)
    A = next(s for s in d.args if s.name == "A")
    B = sd._array_ir.ArraySymbol("B", A.shape)
    assert sympy.sstr(g.subs(A, B)) == "B @ x + B.T @ x"
    assert sympy.latex(g)


def test_mixed_scalar_and_array_symbols():
    d = sd.derive("sigma**2 * sum(x**2)", shapes={"x": "n"})
    assert [a.name for a in d.args] == ["sigma", "x"]
    gs, gx = d(sigma=np.float64(1.5), x=np.array([1.0, 2.0, 3.0]))
    _close(gs, 2 * 1.5 * 14.0)
    _close(gx, 2 * 1.5**2 * np.array([1.0, 2.0, 3.0]))


def test_shape_errors():
    with pytest.raises(sd.ShapeError, match=r"@.*\(n, n\).*\(m,\)"):
        sd.derive("A @ x", shapes={"A": ("n", "n"), "x": "m"})
    with pytest.raises(sd.ShapeError, match="broadcast"):
        sd.derive("x + y", shapes={"x": "n", "y": "m"})
    with pytest.raises(sd.ShapeError, match="square"):
        sd.derive("logdet(X)", shapes={"X": ("m", "n")})
    with pytest.raises(sd.ParseError):
        sd.derive("x @ A")  # no shapes: @ stays an error
    d = sd.derive("x @ A @ x", wrt="x", shapes={"x": "n", "A": ("n", "n")})
    with pytest.raises(sd.ShapeError, match=r"dimension n: size 3 .*'A'.* but 4 .*'x'"):
        d(A=np.eye(3), x=np.ones(4))
    with pytest.raises(sd.ShapeError, match="'A'"):
        d(A=np.ones(3), x=np.ones(3))
    fixed = sd.derive("a @ x", wrt="x", shapes={"x": 3, "a": 3})
    with pytest.raises(sd.ShapeError, match="declared 3"):
        fixed(a=np.ones(3), x=np.ones(4))


def test_callable_and_matrix_symbol_inputs():
    shapes = {"x": "n", "A": ("n", "n")}
    d = sd.derive(lambda x, A: x @ A @ x + sd.logdet(A) + sd.sin(x).sum() + (A * A).mean(), shapes=shapes)
    rng = _rng(3)
    x, A = rng.normal(size=4), _spd(rng, 4)

    def f(A, x):
        return x @ A @ x + jnp.linalg.slogdet(A)[1] + jnp.sum(jnp.sin(x)) + jnp.mean(A * A)

    gA, gx = d(A=A, x=x)
    ref = _jax64(lambda A, x: jnp.concatenate([jax.grad(f, (0, 1))(A, x)[0].ravel(), jax.grad(f, 1)(A, x)]), A, x)
    _close(np.concatenate([np.asarray(gA).ravel(), gx]), ref)

    n = sympy.Symbol("n")
    X, w = sympy.MatrixSymbol("X", n, n), sympy.MatrixSymbol("w", n, 1)
    g = sd.derive(w.T * X * w, wrt="w")  # SymPy's shapes: w is a (n, 1) column
    X0, w0 = rng.normal(size=(3, 3)), rng.normal(size=(3, 1))
    _close(g(X=X0, w=w0), (X0 + X0.T) @ w0)
    assert str(g) == "d/dw = X @ w + X.T @ w"
    ld = sd.derive(sympy.log(sympy.Determinant(X)))  # wrt=None: results are tuples
    S = _spd(rng, 3)
    (gS,) = ld(X=S)
    _close(gS, np.linalg.inv(S).T)


@pytest.fixture(scope="module")
def regression():
    """Least squares plus a log-determinant: two array wrt of different ranks, one derive."""
    shapes = {"X": ("m", "n"), "w": "n", "y": "m", "S": ("n", "n")}
    return sd.derive("sum((X @ w - y)**2)/m + logdet(S)", wrt=["w", "S"], shapes=shapes)


def _regression_inputs(n, seed=0):
    rng = _rng(seed)
    return {"X": rng.normal(size=(n + 2, n)), "w": rng.normal(size=n), "y": rng.normal(size=n + 2),
            "S": _spd(rng, n)}


def test_check_source_and_function(regression):
    d = regression
    assert str(d) == "d/dw = (2*X.T @ (-y + X @ w))/m\nd/dS = inv(S).T"
    v = _regression_inputs(4)
    report = d.check(**v)
    assert report.ok and report.max_abs_error < 1e-9
    assert "X @ w" in d.source and "jnp.linalg.slogdet" in d.source and "m = X.shape[0]" in d.source
    # d.function is pure JAX: jit, vmap over a batch of w, and grad through it
    args = [jnp.asarray(v[a.name]) for a in d.args]
    with jax.enable_x64(True):
        args = [jnp.asarray(v[a.name], dtype=jnp.float64) for a in d.args]
        gw, gS = jax.jit(d.function)(*args)
        _close(gw, 2 * v["X"].T @ (v["X"] @ v["w"] - v["y"]) / (len(v["y"])))
        hw = jax.jacfwd(lambda w: d.function(args[0], args[1], w, args[3])[0])(args[2])
        _close(hw, 2 * v["X"].T @ v["X"] / len(v["y"]))
        # value_and_grad and vjp
        value, (gw2, _) = d.value_and_grad(**v)
        _close(value, np.sum((v["X"] @ v["w"] - v["y"]) ** 2) / len(v["y"]) + np.linalg.slogdet(v["S"])[1])
        _close(gw2, gw)
        vw, _ = d.vjp(3.0, **v)
        _close(vw, 3 * np.asarray(gw))
    # the readable source is what runs
    namespace = {"jnp": jnp, "jax": jax, "jsp": jax.scipy.special}
    exec(d.source, namespace)  # noqa: S102 - our own generated source
    with jax.enable_x64(True):
        _close(namespace["derivative"](*args)[1], gw)


def test_check_detects_a_wrong_closed_form(regression):
    from symdiff._array_ir import ArraySymbol

    d = sd.derive("x @ A @ x", wrt="x", shapes={"x": "n", "A": ("n", "n")})
    A = next(a for a in d.args if a.name == "A")
    program = d._program
    saved, kernel = program._jitted_entries, program.kernel
    program._jitted_entries = jax.jit(lambda A_, x_: (kernel(A_, x_)[1] * 1.01,))  # a 1% error
    try:
        with pytest.raises(sd.CrossCheckError):
            d.check(A=np.eye(3) + 0.5, x=np.ones(3))
    finally:
        program._jitted_entries = saved
    assert isinstance(A, ArraySymbol)


def test_save_load_any_size(regression, tmp_path):
    d = regression
    path = tmp_path / "regression.sdz"
    d.save(path)
    loaded = sd.load(path)
    assert str(loaded) == str(d)
    for n in SIZES:
        v = {k: np.asarray(x) for k, x in _regression_inputs(n, seed=n).items()}
        for got, want in zip(loaded(**v), d(**v)):
            _close(got, want)
    bad = tmp_path / "bad.sdz"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(sd.SymdiffError):
        sd.load(bad)


def test_cli_shapes(capsys):
    from symdiff.cli import run

    assert run(["x @ A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n",
                "--at", "x=1,2", "--at", "A=1,2;3,4", "--check"]) == 0
    out = capsys.readouterr().out
    assert "d/dx = A @ x + A.T @ x" in out
    assert "d/dx = [12. 21.]" in out  # (A + A.T) @ x
    assert "cross-check passed" in out
    assert run(["x @ A", "--at", "x=1"]) == 2  # no --shape: '@' is not part of the scalar language
    assert run(["A @ x", "--shape", "A=n,n", "--shape", "x=m"]) == 2
    assert "ShapeError" in capsys.readouterr().err


def test_closed_forms_do_not_grow_with_concrete_sizes():
    # int sizes give the same matrix formula as symbolic ones: nothing is expanded per entry
    forms = {str(sd.derive("sum(log(1 + exp(-t * (X @ w))))", wrt="w", order=2,
                           shapes={"X": (m, n), "w": n, "t": m}))
             for m, n in ((5, 3), (500, 300))}
    assert len(forms) == 1 and len(forms.pop()) < 120


def test_matrix_calculus_example_runs(capsys):
    import runpy

    runpy.run_path(str(ROOT / "examples" / "matrix_calculus.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "d^2/dw^2 = 2*X.T @ X" in out
    assert "one Newton step = numpy.linalg.lstsq" in out
    assert out.count("cross-check passed") == 1 and "diag(" in out


def test_fit_with_array_parameters():
    rng = _rng(5)
    X = rng.normal(size=(200, 3))
    y = np.where(X @ np.array([1.5, -2.0, 0.5]) + rng.normal(size=200) > 0, 1.0, -1.0)
    r = sd.fit("log(1 + exp(-y * (x @ w)))", {"w": np.zeros(3)}, {"x": X, "y": y},
               shapes={"x": "n", "w": "n"}, steps=40, optimizer="lbfgs", progress=False)
    assert str(r.derivative) == "d/dw = -x*y/(exp(y*(x @ w)) + 1)"

    def mean_loss(w):
        return jnp.mean(jnp.log1p(jnp.exp(-y * (X @ w))))

    g = _jax64(jax.grad(mean_loss), r.params["w"])  # the optimum: zero gradient of the independent loss
    assert np.abs(g).max() < 1e-5
    with pytest.raises(sd.ShapeError, match="'w'"):
        sd.fit("log(1 + exp(-y * (x @ w)))", {"w": np.zeros(4)}, {"x": X, "y": y},
               shapes={"x": "n", "w": "n"}, steps=2, progress=False)


def test_reshape_jacobians_and_blocks():
    shapes = {"W": ("m", "n"), "x": "n", "b": "m", "X": ("n", "k")}
    rng = _rng(9)
    W, x, b, X = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=4), rng.normal(size=(3, 2))
    # Jacobians of a vector output: a matrix formula wrt vectors, jacobian(...) wrt the matrix (rank 3)
    j = sd.derive("tanh(W @ x + b)", wrt=["x", "b", "W"], shapes=shapes)
    assert str(j).splitlines()[0] == "d/dx = diag(1 - tanh(b + W @ x)**2) @ W"
    assert "jacobian(" in str(j).splitlines()[2]

    def f(W, x, b):
        return jnp.tanh(W @ x + b)

    got = j(W=W, x=x, b=b)
    with jax.enable_x64(True):
        want = jax.jacobian(f, (1, 2, 0))(*(jnp.asarray(a) for a in (W, x, b)))
    for g_, w_ in zip(got, want):
        _close(g_, w_)
    # Hessian blocks of several wrt, and reshape (callable), against jax.hessian
    h = sd.derive(lambda x, X: sd.sum(sd.exp(X.T @ x)) + (X.reshape(6) ** 2).sum() * x.sum(),
                  wrt=["x", "X"], order=2, shapes={"x": 3, "X": (3, 2)})

    def g(x, X):
        return jnp.sum(jnp.exp(X.T @ x)) + jnp.sum(X.reshape(6) ** 2) * jnp.sum(x)

    with jax.enable_x64(True):
        want = jax.hessian(g, (0, 1))(jnp.asarray(x), jnp.asarray(X))
    got = h(x=x, X=X)
    for i in range(2):
        for k in range(2):
            _close(got[i][k], want[i][k])


def test_vjp_of_an_array_output_and_third_order():
    shapes = {"W": ("m", "n"), "x": "n", "b": "m", "A": ("n", "n")}
    W, x, b, ct = np.full((2, 3), 0.1), np.array([1.0, 2.0, 3.0]), np.zeros(2), np.array([1.0, 2.0])
    gx, gW = sd.derive("tanh(W @ x + b)", wrt=["x", "W"], shapes=shapes).vjp(ct, W=W, x=x, b=b)
    with jax.enable_x64(True):
        _, pull = jax.vjp(lambda x, W: jnp.tanh(W @ x + b), jnp.asarray(x), jnp.asarray(W))
        rx, rW = pull(jnp.asarray(ct))
    _close(gx, rx)
    _close(gW, rW)
    d3 = sd.derive("sum(x**4) + x @ A @ x", order=3, wrt="x", shapes=shapes)
    A = np.arange(9.0).reshape(3, 3)
    with jax.enable_x64(True):
        ref = jax.jacfwd(jax.hessian(lambda x: jnp.sum(x**4) + x @ A @ x))(jnp.asarray(x))
    _close(d3(x=x, A=A), ref)


def test_two_layer_mlp_gradients():
    shapes = {"X": ("B", "d"), "W1": ("d", "h"), "b1": "h", "W2": ("h", 1), "b2": 1, "y": ("B", 1)}
    names = ["W1", "b1", "W2", "b2"]
    d = sd.derive("mean((tanh(X @ W1 + b1) @ W2 + b2 - y)**2)", wrt=names, shapes=shapes)
    assert "matmul(" not in str(d) and "X.T @ (" in str(d).splitlines()[0]
    rng = _rng(11)
    v = {"X": rng.normal(size=(8, 4)), "W1": rng.normal(size=(4, 5)), "b1": rng.normal(size=5),
         "W2": rng.normal(size=(5, 1)), "b2": rng.normal(size=1), "y": rng.normal(size=(8, 1))}

    def loss(W1, b1, W2, b2):
        return jnp.mean((jnp.tanh(v["X"] @ W1 + b1) @ W2 + b2 - v["y"]) ** 2)

    with jax.enable_x64(True):
        want = jax.grad(loss, (0, 1, 2, 3))(*(jnp.asarray(v[k]) for k in names))
    for got, ref in zip(d(**v), want):
        _close(got, ref)


def test_matrix_symbol_entry_of_a_product():
    n = sympy.Symbol("n", integer=True, positive=True)
    xs, As = sympy.MatrixSymbol("x", n, 1), sympy.MatrixSymbol("A", n, n)
    rng = _rng(13)
    A, xc = rng.normal(size=(3, 3)), rng.normal(size=(3, 1))
    d = sd.derive((xs.T * As * xs)[0, 0], wrt=xs)  # SymPy spells this entry as a Sum over index dummies
    assert str(d) == "d/dx = A @ x + A.T @ x"
    _close(d(x=xc, A=A), (A + A.T) @ xc)
    with pytest.raises(sd.CaptureError):
        sd.derive(sympy.Sum(xs[sympy.Symbol("i", integer=True), 0] ** 3, (sympy.Symbol("i", integer=True), 0, n - 1)))
