"""Tensors recorded as array expressions: matrix closed forms for ``y.derive()`` and ``backward`` (issue 11).

Oracles: ``jax.grad``/``jax.vjp`` of the same computation written separately
in ``jax.numpy``, and the textbook least-squares gradient ``2 X^T (X w - y) / m``
evaluated with NumPy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symdiff as sd

RNG = np.random.default_rng(11)


def _np(t):
    return np.asarray(t.detach())


@pytest.mark.parametrize("dtype", [sd.float32, sd.float64])
def test_least_squares_prints_a_matrix_formula_and_backward_matches_jax(dtype):
    npdt = dtype.numpy_dtype
    Xv, yv, w0 = RNG.normal(size=(100, 3)).astype(npdt), RNG.normal(size=100).astype(npdt), np.array([0.3, -0.2, 0.5], npdt)
    X, y = sd.tensor(Xv, name="X"), sd.tensor(yv, name="y")
    w = sd.tensor(w0, requires_grad=True, name="w")
    loss = ((X @ w - y) ** 2).mean()
    d = loss.derive()
    text = str(d)
    assert isinstance(d, sd.Derivative) and text.startswith("d/dw = ")
    assert "X.T @" in text and "X @ w" in text  # 2*X.T @ (X @ w - y)/100: the mean over 100 rows
    assert "/50" in text or ("2*X.T @" in text and "/100" in text)
    assert "matmul" not in text and "\n" not in text
    assert set(d.closed_form) == {"w"} and [s.name for s in d.args] == ["X", "w", "y"]
    assert "^{T}" in d.latex() and "@" in d.source
    loss.backward()
    tol = dict(rtol=2e-4, atol=1e-5) if dtype is sd.float32 else dict(rtol=1e-10, atol=1e-12)
    with jax.enable_x64(dtype is sd.float64):
        ref = jax.grad(lambda w: jnp.mean((jnp.asarray(Xv) @ w - jnp.asarray(yv)) ** 2))(jnp.asarray(w0))
    assert w.grad.dtype is dtype
    np.testing.assert_allclose(_np(w.grad), np.asarray(ref), **tol)
    np.testing.assert_allclose(np.asarray(d()[0]), 2 * Xv.T @ (Xv @ w0 - yv) / 100, **tol)  # the textbook formula
    w1 = np.array([1.0, 2.0, -1.0], npdt)
    np.testing.assert_allclose(np.asarray(d(w=w1)[0]), 2 * Xv.T @ (Xv @ w1 - yv) / 100, **tol)
    assert d.check().ok
    with pytest.raises(sd.SymdiffError, match="dense"):
        d.sparse()


def _jax_mlp_loss(W1, b1, W2, b2, X, Y):
    hidden = jnp.tanh(jnp.matmul(X, W1) + b1[None, :])
    return jnp.mean((jnp.matmul(hidden, W2) + b2 - Y) ** 2)


@pytest.fixture(scope="module")
def mlp_data():
    X = RNG.normal(size=(16, 5)).astype(np.float32)
    Y = RNG.normal(size=(16, 1)).astype(np.float32)
    params = [RNG.normal(scale=0.5, size=s).astype(np.float32) for s in ((5, 8), (8,), (8, 1), (1,))]
    return X, Y, params


def _mlp(X, Y, params):
    W1, b1, W2, b2 = (sd.tensor(p, requires_grad=True, name=n) for p, n in zip(params, ("W1", "b1", "W2", "b2")))
    loss = ((sd.tanh(X @ W1 + b1) @ W2 + b2 - Y) ** 2).mean()
    return loss, (W1, b1, W2, b2)


def test_two_layer_mlp_gradients_match_jax_and_print_as_matrices(mlp_data):
    Xv, Yv, params = mlp_data
    X, Y = sd.tensor(Xv, name="X"), sd.tensor(Yv, name="Y")
    loss, leaves = _mlp(X, Y, params)
    text = str(loss.derive())
    lines = text.split("\n")
    assert [line.split(" = ")[0] for line in lines] == ["d/dW1", "d/dW2", "d/db1", "d/db2"]
    assert "matmul" not in text and "X.T @" in text and "W2.T" in text and "tanh(b1 + X @ W1)" in text
    loss.backward()
    refs = jax.grad(_jax_mlp_loss, argnums=(0, 1, 2, 3))(*params, Xv, Yv)
    for leaf, ref in zip(leaves, refs):
        assert leaf.grad.shape == leaf.shape
        np.testing.assert_allclose(_np(leaf.grad), np.asarray(ref), rtol=2e-4, atol=1e-6, err_msg=leaf.name)
    np.testing.assert_allclose(loss.item(), float(_jax_mlp_loss(*params, Xv, Yv)), rtol=1e-5)
    d = loss.derive()
    got = jax.jit(d.function)(*[{"X": Xv, "Y": Yv, "W1": params[0], "b1": params[1], "W2": params[2],
                                 "b2": params[3]}[s.name] for s in d.args])
    by_name = dict(zip([s.name for s in d.wrt], got))
    np.testing.assert_allclose(np.asarray(by_name["W2"]), np.asarray(refs[2]), rtol=2e-4, atol=1e-6)


def test_training_loop_derives_and_compiles_once(mlp_data):
    Xv, Yv, params = mlp_data
    X, Y = sd.tensor(Xv), sd.tensor(Yv)
    W1, b1, W2, b2 = (sd.tensor(p, requires_grad=True) for p in params)
    opt = sd.optim.SGD([W1, b1, W2, b2], lr=0.1)
    losses, stats = [], []
    for _ in range(5):
        opt.zero_grad()
        loss = ((sd.tanh(X @ W1 + b1) @ W2 + b2 - Y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        stats.append(sd.cache_stats())
    for s in stats[2:]:
        assert s["symbolic"] == stats[1]["symbolic"] and s["traces"] == stats[1]["traces"]
    assert losses[-1] < losses[0]
    # a batch of another size: the same closed forms (no SymPy work), one new trace
    X2, Y2 = sd.tensor(Xv[:7]), sd.tensor(Yv[:7])
    ((sd.tanh(X2 @ W1 + b1) @ W2 + b2 - Y2) ** 2).mean().backward()
    assert sd.cache_stats()["symbolic"] == stats[-1]["symbolic"]
    assert sd.cache_stats()["traces"] == stats[-1]["traces"] + 1


def test_transposes_reductions_reshapes_and_broadcasts_with_a_cotangent():
    Av, Bv, vv = (RNG.normal(size=s).astype(np.float32) for s in ((6, 4), (3, 4), (4,)))
    ct = RNG.normal(size=(6, 3)).astype(np.float32)

    def ours(A, B, v):
        h = sd.tanh(A @ B.T)
        row_sums = h.sum(1, keepdim=True)
        col_means = h.mean(dim=0)
        r = (A @ v).reshape(6, 1)
        return row_sums * r + col_means.unsqueeze(0).expand(6, 3) * h + (r.squeeze(1) @ A).sum()

    def reference(A, B, v):
        h = jnp.tanh(A @ B.T)
        r = (A @ v)[:, None]
        return jnp.sum(h, axis=1, keepdims=True) * r + jnp.mean(h, axis=0)[None, :] * h + jnp.sum(r[:, 0] @ A)

    leaves = [sd.tensor(x, requires_grad=True, name=n) for x, n in zip((Av, Bv, vv), "ABv")]
    y = ours(*leaves)
    text = str(y.derive())
    assert "@" in text and "B.T" in text and "matmul" not in text
    value, pullback = jax.vjp(reference, Av, Bv, vv)
    np.testing.assert_allclose(_np(y), np.asarray(value), rtol=1e-5, atol=1e-5)
    y.backward(gradient=sd.tensor(ct))
    for leaf, ref in zip(leaves, pullback(jnp.asarray(ct))):
        np.testing.assert_allclose(_np(leaf.grad), np.asarray(ref), rtol=2e-4, atol=1e-4, err_msg=leaf.name)


def test_reshapes_that_merge_and_split_axes():
    Av, Bv, cv = (RNG.normal(size=s).astype(np.float32) for s in ((6, 4), (3, 4), (18,)))
    A, B = sd.tensor(Av, requires_grad=True, name="A"), sd.tensor(Bv, requires_grad=True, name="B")
    c = sd.tensor(cv, name="c")
    flat = sd.tanh(A @ B.T).reshape(-1) * c  # (6, 3) -> (18,)
    loss = (flat.reshape(2, 9) ** 2).sum(1).mean()  # (18,) -> (2, 9)
    assert "reshape(" in str(loss.derive()) and "matmul" not in str(loss.derive())
    loss.backward()

    def reference(A, B):
        flat = jnp.tanh(A @ B.T).reshape(-1) * cv
        return jnp.mean(jnp.sum(flat.reshape(2, 9) ** 2, axis=1))

    for leaf, ref in zip((A, B), jax.grad(reference, argnums=(0, 1))(Av, Bv)):
        np.testing.assert_allclose(_np(leaf.grad), np.asarray(ref), rtol=2e-4, atol=1e-5, err_msg=leaf.name)
