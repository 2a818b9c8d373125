"""sd.optim: SGD / Adam on optax, PyTorch's update rules and the no-retrace training loop."""

from __future__ import annotations

import numpy as np
import pytest

import symdiff as sd
from symdiff._tensor import float64, linspace, manual_seed, randn, tensor
from symdiff.optim import SGD, Adam, AdamW


def _quadratic_grad(w):
    (w**2).sum().backward()  # gradient 2*w


def test_sgd_matches_the_update_rule():
    w = tensor([1.0, -2.0], requires_grad=True)
    opt = SGD([w], lr=0.1)
    _quadratic_grad(w)
    opt.step()
    np.testing.assert_allclose(w.tolist(), [0.8, -1.6], rtol=1e-6)
    assert w.is_leaf and w.requires_grad
    opt.zero_grad()
    assert w.grad is None


def test_sgd_momentum_and_weight_decay_follow_pytorch():
    w = tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=0.5)
    expected, buf = 1.0, 0.0
    for _ in range(3):
        opt.zero_grad()
        _quadratic_grad(w)
        g = 2 * expected + 0.5 * expected  # PyTorch: weight decay added to the gradient
        buf = 0.9 * buf + g
        expected -= 0.1 * buf
        opt.step()
    assert w.item() == pytest.approx(expected, rel=1e-5)


def test_adam_matches_the_update_rule():
    w = tensor([1.0, 3.0], requires_grad=True)
    opt = Adam([w], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    p = np.array([1.0, 3.0])
    m = v = np.zeros(2)
    for t in range(1, 4):
        opt.zero_grad()
        _quadratic_grad(w)
        g = 2 * p
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        opt.step()
    np.testing.assert_allclose(w.tolist(), p, rtol=1e-5)
    assert "Adam (" in repr(opt) and "lr: 0.01" in repr(opt)


def test_zero_grad_to_zero_and_params_without_grad():
    w = tensor([1.0], requires_grad=True)
    frozen = tensor([5.0], requires_grad=True)
    opt = SGD([w, frozen], lr=0.5)
    _quadratic_grad(w)
    opt.step()
    assert w.tolist() == [0.0] and frozen.tolist() == [5.0]  # no gradient: untouched
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0]


def test_learning_rate_can_change_between_steps():
    w = tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.1)
    _quadratic_grad(w)
    opt.step()
    opt.param_groups[0]["lr"] = 0.0
    opt.zero_grad()
    _quadratic_grad(w)
    opt.step()
    assert w.item() == pytest.approx(0.8)


def test_float64_parameters_and_adamw():
    w = tensor([2.0], dtype=float64, requires_grad=True)
    opt = AdamW([w], lr=0.1, weight_decay=0.0)
    _quadratic_grad(w)
    opt.step()
    assert w.dtype is float64 and w.item() == pytest.approx(1.9, rel=1e-9)


def test_errors():
    with pytest.raises(sd.SymdiffError):
        SGD([], lr=0.1)
    with pytest.raises(sd.SymdiffError):
        SGD([tensor([1.0], requires_grad=True) * 2], lr=0.1)
    with pytest.raises(sd.SymdiffError):
        SGD([tensor([1.0], requires_grad=True)], lr=-1.0)


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.5), lambda ps: Adam(ps, lr=0.1)])
def test_training_loop_fits_and_does_not_retrace(make):
    manual_seed(1)
    x = linspace(-1, 1, 64)
    y = 2 * x + 1 + 0.05 * randn(64)
    w = tensor(0.0, requires_grad=True)
    b = tensor(0.0, requires_grad=True)
    opt = make([w, b])
    seen = []
    for _ in range(150):
        opt.zero_grad()
        loss = ((w * x + b - y) ** 2).mean()
        loss.backward()
        opt.step()
        seen.append(sd.cache_stats())
    assert w.item() == pytest.approx(2.0, abs=0.05) and b.item() == pytest.approx(1.0, abs=0.05)
    for stats in seen[1:]:
        assert stats["symbolic"] == seen[0]["symbolic"] and stats["traces"] == seen[0]["traces"]
