"""Lazy recording: recorded results are computed on demand, backward is one compiled call, the optimizer one more.

Oracles are NumPy closed forms, ``jax.grad`` / ``jax.vjp`` and optax applied by hand, never symdiff itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import symdiff as sd
from symdiff import _tensor_graph
from symdiff._tensor import float64, linspace, manual_seed, no_grad, ones, randn, tensor
from symdiff.optim import SGD, Adam

X = np.linspace(-1, 1, 16).astype(np.float32)
Y = (2 * X + 1 + 0.1 * np.sin(7 * X)).astype(np.float32)


def _traces() -> int:
    return sd.cache_stats()["traces"]


def _loss_np(w, b):
    return np.mean((np.float32(w) * X + np.float32(b) - Y) ** 2, dtype=np.float32)


# ---------------------------------------------------------------- values on demand


def test_recorded_results_are_pending_until_needed():
    w = tensor([0.5, -1.0], requires_grad=True)
    y = (w * 3 + 1).exp()
    assert y._node.out is None  # nothing computed yet
    before = _traces()
    assert y.shape == (2,) and y.dtype is sd.float32 and y.ndim == 2 - 1 and y.numel() == 2
    assert str(y.device) == "cpu" and y.requires_grad and not y.is_leaf
    assert _traces() == before  # metadata needs no computation
    np.testing.assert_allclose(y.tolist(), np.exp(np.array([0.5, -1.0]) * 3 + 1), rtol=1e-6)
    assert y._node.out is not None
    assert repr(y) == "tensor([12.1825,  0.1353], grad_fn=<ExpBackward0>)"


def test_intermediates_print_and_reuse_computed_values():
    w = tensor(2.0, requires_grad=True)
    h = w * w
    z = h + 1
    assert h.item() == 4.0  # computed on its own
    assert z.item() == 5.0  # uses h's computed value
    assert (z * 2).item() == 10.0 and h.tolist() == 4.0


def test_in_place_update_after_recording_keeps_the_recorded_value():
    # As in PyTorch, y = w * 2 is computed from w's value at the time of the operation.
    w = tensor([1.0, 2.0], requires_grad=True)
    y = w * 2
    with no_grad():
        w += 10
    assert w.tolist() == [11.0, 12.0]
    assert y.tolist() == [2.0, 4.0]
    z = w * 2  # recorded after the update: the new value
    assert z.tolist() == [22.0, 24.0]


def test_shape_errors_are_raised_when_recording():
    w = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(sd.ShapeError, match="must match the size"):
        w * ones(3)
    with pytest.raises(sd.ShapeError):
        w.reshape(3)
    with pytest.raises(sd.ShapeError, match="cannot be multiplied"):
        w.reshape(2, 1) @ ones(2, 3)
    with pytest.raises(sd.ShapeError):
        w.expand(3, 3)


def test_pending_values_feed_eager_operations():
    w = tensor([1.0, 2.0], requires_grad=True)
    y = w * w
    with no_grad():
        z = y + 1  # eager: y is computed first
    assert not z.requires_grad and z.tolist() == [2.0, 5.0]
    assert (y > 2).tolist() == [False, True]
    assert y.detach().numpy().tolist() == [1.0, 4.0]
    assert np.asarray(y.detach()).tolist() == [1.0, 4.0]


def test_float64_and_wide_integers_stay_exact():
    x = tensor([1.0 + 1e-12], dtype=float64, requires_grad=True)
    y = x * 3 - 3
    assert y.item() == pytest.approx(3e-12, rel=1e-3)  # float64, not float32
    big = tensor(1.0, requires_grad=True) * 2**40
    assert big.item() == float(np.float32(2.0**40))


# ---------------------------------------------------------------- backward: one call


def test_backward_computes_the_loss_too():
    w = tensor(0.5, requires_grad=True)
    b = tensor(-0.25, requires_grad=True)
    loss = ((w * tensor(X) + b - tensor(Y)) ** 2).mean()
    loss.backward()
    before = _traces()
    assert loss.item() == pytest.approx(float(_loss_np(0.5, -0.25)), rel=1e-5)
    assert _traces() == before  # the value came with the gradients
    gw, gb = jax.grad(lambda w, b: jnp.mean((w * X + b - Y) ** 2), argnums=(0, 1))(0.5, -0.25)
    assert w.grad.item() == pytest.approx(float(gw), rel=1e-5)
    assert b.grad.item() == pytest.approx(float(gb), rel=1e-5)


def test_accumulation_is_in_place_and_sums():
    a = tensor([2.0, 3.0], requires_grad=True)
    (a**3).sum().backward()
    g = a.grad
    (a**3).sum().backward()
    assert a.grad is g  # accumulated into the same tensor, as in PyTorch
    np.testing.assert_allclose(g.tolist(), 2 * 3 * np.array([4.0, 9.0]))
    c = tensor([1.0, 1.0], requires_grad=True)
    (a * c).sum().backward(inputs=[c])  # only c
    np.testing.assert_allclose(a.grad.tolist(), 2 * 3 * np.array([4.0, 9.0]))
    assert c.grad.tolist() == [2.0, 3.0]


def test_shared_leaf_and_several_sums_match_jax():
    manual_seed(2)
    xs = randn(8)
    w = tensor([0.3, -0.7], requires_grad=True)
    v = tensor(0.2, requires_grad=True)
    s = w.sum()
    loss = ((w[0] * xs + v) ** 2).mean() + (xs * w[1]).sum() * s + (xs * v).sum() + (w * w).sum()
    loss.backward()

    def ref(w, v):
        x = jnp.asarray(xs.numpy())
        return jnp.mean((w[0] * x + v) ** 2) + jnp.sum(x * w[1]) * jnp.sum(w) + jnp.sum(x * v) + jnp.sum(w * w)

    value, (gw, gv) = jax.value_and_grad(ref, argnums=(0, 1))(jnp.array([0.3, -0.7]), jnp.float32(0.2))
    assert loss.item() == pytest.approx(float(value), rel=1e-5)
    np.testing.assert_allclose(w.grad.tolist(), np.asarray(gw), rtol=1e-5)
    assert v.grad.item() == pytest.approx(float(gv), rel=1e-5)


def test_merged_sums_equal_separate_sums():
    rng = np.random.default_rng(0)
    a, b, c = (jnp.asarray(rng.normal(size=(5, 7)), jnp.float32) for _ in range(3))

    def f(a, b, c):
        s1 = jnp.sum(a * b, axis=1)
        s2 = jnp.sum(b - c, axis=1)
        s3 = jnp.sum(a, axis=0)  # another shape of result, same input shape and other axes
        return s1 + jnp.sum(s2) * s3[:5], jnp.sum(c * c, axis=1), s2

    got = jax.jit(_tensor_graph.merged_sums(f))(a, b, c)
    want = f(a, b, c)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)


def test_a_training_loop_that_prints_the_loss_does_not_retrace():
    x, y = tensor(X), tensor(Y)
    w = tensor(0.0, requires_grad=True)
    b = tensor(0.0, requires_grad=True)
    seen = []
    for _ in range(5):
        loss = ((w * x + b - y) ** 2).mean()
        text = repr(loss)  # computed before backward: one forward call
        loss.backward()
        with no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
        w.grad.zero_()
        b.grad.zero_()
        seen.append((sd.cache_stats()["traces"], sd.cache_stats()["symbolic"]))
    assert text.startswith("tensor(") and "grad_fn=<MeanBackward0>" in text
    assert all(s == seen[0] for s in seen[1:])


# ---------------------------------------------------------------- the fused optimizer


def _optax_by_hand(tx, steps):
    params = [jnp.float32(0.0), jnp.float32(0.0)]
    state = tx.init(params)
    grad = jax.grad(lambda p: jnp.mean((p[0] * X + p[1] - Y) ** 2))
    for _ in range(steps):
        g = grad(params)
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    return [float(p) for p in params]


@pytest.mark.parametrize("make, reference", [
    (lambda ps: SGD(ps, lr=0.3), optax.sgd(0.3)),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True), optax.sgd(0.1, momentum=0.9, nesterov=True)),
    (lambda ps: Adam(ps, lr=0.05), optax.adam(0.05)),
])
def test_fused_optimizer_matches_optax_by_hand(make, reference):
    x, y = tensor(X), tensor(Y)
    w = tensor(0.0, requires_grad=True)
    b = tensor(0.0, requires_grad=True)
    opt = make([w, b])
    for _ in range(12):
        opt.zero_grad()
        ((w * x + b - y) ** 2).mean().backward()
        opt.step()
    np.testing.assert_allclose([w.item(), b.item()], _optax_by_hand(reference, 12), rtol=1e-5, atol=1e-6)
    assert w.dtype is sd.float32 and w.is_leaf and w.requires_grad
    assert isinstance(opt.state[0], tuple)  # the optax state, whole again


def test_optimizer_float64_parameters_update_in_float64():
    w = tensor([1.0 + 1e-10], dtype=float64, requires_grad=True)
    opt = SGD([w], lr=1e-12)
    (w * 1).sum().backward()  # gradient 1
    opt.step()
    assert w.dtype is float64 and w.item() == pytest.approx(1.0 + 1e-10 - 1e-12, rel=1e-15, abs=1e-15)


def test_in_place_ops_keep_dtype_and_check_shapes():
    t = tensor([1.0, 2.0])
    t += 1
    t *= tensor([2.0, 3.0], dtype=float64)  # computed, then stored in t's dtype
    assert t.dtype is sd.float32 and t.tolist() == [4.0, 9.0]
    t -= 0.5
    t /= 2
    assert t.tolist() == [1.75, 4.25]
    with pytest.raises(sd.ShapeError):
        t += ones(3)
    with pytest.raises(sd.ShapeError, match="doesn't match the broadcast shape"):
        t += ones(2, 2)
    i = tensor([1, 2])
    i += 3
    assert i.dtype is sd.int64 and i.tolist() == [4, 5]
    i.zero_()
    assert i.tolist() == [0, 0]


def test_eager_float32_arithmetic_matches_numpy():
    a = np.array([0.1, 0.7, 3.3], np.float32)
    t = tensor(a)
    np.testing.assert_array_equal(np.asarray(t * 0.3 + 1.7), a * np.float32(0.3) + np.float32(1.7))
    d = np.array([0.1, 0.7], np.float64)
    np.testing.assert_array_equal(np.asarray(tensor(d) * 0.3), d * 0.3)


def test_linear_regression_loop_converges_with_lazy_recording():
    manual_seed(0)
    x = linspace(-1, 1, 100)
    y = 2 * x + 1 + 0.1 * randn(100)
    w = tensor(0.0, requires_grad=True)
    b = tensor(0.0, requires_grad=True)
    opt = SGD([w, b], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        loss = ((w * x + b - y) ** 2).mean()
        loss.backward()
        opt.step()
    xs, ys = x.numpy(), y.numpy()
    slope, intercept = np.polyfit(xs, ys, 1)  # the least-squares line, independently
    assert w.item() == pytest.approx(slope, abs=1e-3) and b.item() == pytest.approx(intercept, abs=1e-3)


def test_clear_caches_forgets_tensor_plans():
    w = tensor(1.5, requires_grad=True)
    (w * w).backward()
    before = sd.cache_stats()["symbolic"]
    (w * w).backward()
    assert sd.cache_stats()["symbolic"] == before
    sd.clear_caches()
    (w * w).backward()
    assert sd.cache_stats()["symbolic"] > before  # derived again
    assert w.grad.item() == pytest.approx(3 * 2 * 1.5)


def test_new_numbers_reuse_the_compiled_forward_pass():
    w = tensor([-1.5, 2.0], requires_grad=True)
    (sd.sin(w * 0.5) + 1).tolist()
    before = _traces()
    for t in (0.25, -3.0, 7.0):
        y = sd.sin(w * t) + 1
        np.testing.assert_allclose(y.tolist(), np.sin(np.array([-1.5, 2.0]) * t) + 1, rtol=1e-6)
    assert _traces() == before
    assert (w**3).tolist() == [-3.375, 8.0]  # exponents stay static: exact for negative bases
