"""Tensors: the seed's PyTorch workflow, every op's gradient against jax.vjp, caching, errors, printing."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symdiff as sd
from symdiff import _math
from symdiff._lower import FUNCTION_TABLE
from symdiff._tensor import (
    AutogradError,
    Tensor,
    arange,
    bfloat16,
    bool_,
    cuda,
    device,
    float16,
    float32,
    float64,
    full,
    int32,
    int64,
    linspace,
    manual_seed,
    no_grad,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from symdiff._tensor_format import format_tensor

ROOT = Path(__file__).resolve().parents[1]
HAS_GPU = cuda.is_available()


# ---------------------------------------------------------------- the seed document


def test_seed_numbers_and_reprs():
    a = tensor([2.0, 3.0], requires_grad=True)
    b = tensor([6.0, 4.0], requires_grad=True)
    assert repr(a) == "tensor([2., 3.], requires_grad=True)"
    Q = 3 * a**3 - b**2
    assert repr(Q) == "tensor([-12.,  65.], grad_fn=<SubBackward0>)"
    assert Q.tolist() == [-12.0, 65.0]
    Q.backward(gradient=tensor([1.0, 1.0]))
    assert a.grad.tolist() == [36.0, 81.0]
    assert b.grad.tolist() == [-12.0, -8.0]
    assert repr(a.grad) == "tensor([36., 81.])"
    assert repr(b.grad) == "tensor([-12.,  -8.])"
    assert str(Q.derive()) == "d/da = 9*a**2\nd/db = -2*b"


def test_seed_dtypes():
    assert repr(tensor([[1, 1]])) == "tensor([[1, 1]])"
    assert str(tensor([[1, 1]]).dtype) == "symdiff.int64"
    assert tensor([1.0, 2.0]).dtype is float32
    assert tensor([1, 2], dtype=int).dtype is int64
    assert tensor([1, 2], dtype=float).dtype is float64
    assert str(tensor([1.0], dtype=float16).dtype) == "symdiff.float16"
    assert tensor([True]).dtype is bool_
    x = tensor([1.0 + 1e-12], dtype=float64)  # really float64, not truncated
    assert (x - 1).item() != 0.0
    assert str(x.dtype) == "symdiff.float64"
    assert ones(2, 3, dtype=int32).dtype is int32
    assert x.to(float32).dtype is float32 and x.float().dtype is float32
    assert tensor([1.0]).to(bfloat16).dtype is bfloat16
    with pytest.raises(sd.DtypeError):
        tensor([1.0], dtype="complex64")


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: tensor([[1, 1]]), "tensor([[1, 1]])"),
        (lambda: tensor([2.0, 3.0], requires_grad=True), "tensor([2., 3.], requires_grad=True)"),
        (lambda: tensor([2.0, 3.0], requires_grad=True) + 2, "tensor([4., 5.], grad_fn=<AddBackward0>)"),
        (lambda: tensor([1, 2], dtype=int32), "tensor([1, 2], dtype=symdiff.int32)"),
        (lambda: tensor([True, False]), "tensor([ True, False])"),
        (lambda: tensor([1.5, 2], dtype=float16), "tensor([1.5000, 2.0000], dtype=symdiff.float16)"),
        (lambda: zeros(0, 3), "tensor([], size=(0, 3))"),
        (lambda: zeros(0), "tensor([])"),
        (lambda: tensor(3.0), "tensor(3.)"),
        (lambda: tensor([1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
        (lambda: tensor([1e10, 1.0]), "tensor([1.0000e+10, 1.0000e+00])"),
        (lambda: linspace(0, 1, 3), "tensor([0.0000, 0.5000, 1.0000])"),
        (lambda: arange(3), "tensor([0, 1, 2])"),
        (lambda: tensor([[1.0, -2.5], [3.0, 4.0]]), "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]])"),
        (lambda: arange(2000.0),
         "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03])"),
        (lambda: ones(2, dtype=float64, requires_grad=True),
         "tensor([1., 1.], dtype=symdiff.float64, requires_grad=True)"),
    ],
)
def test_repr_matches_pytorch(make, text):
    assert repr(make()) == text
    assert str(make()) == text


def test_repr_grad_fn_names():
    x = ones(2, 3, requires_grad=True)
    names = {
        "MulBackward0": x * 2, "DivBackward0": x / 2, "RsubBackward1": 2 - x, "NegBackward0": -x,
        "PowBackward0": x**2, "PowBackward1": x**x, "PowBackward2": 2**x, "SinBackward0": sd.sin(x),
        "ExpBackward0": x.exp(), "SumBackward0": x.sum(), "SumBackward1": x.sum(0), "MeanBackward0": x.mean(),
        "MeanBackward1": x.mean(1), "MmBackward0": x @ x.T, "PermuteBackward0": x.T, "TBackward0": x.t(),
        "ViewBackward0": x.reshape(3, 2), "SelectBackward0": x[0], "SliceBackward0": x[:1],
        "IndexBackward0": x[tensor([0, 1])], "DotBackward0": x[0] @ x[0], "MvBackward0": x @ x[0],
        "ToCopyBackward0": x.double(), "ClampBackward1": x.clamp(0, 1), "MaximumBackward0": sd.max(x, x),
    }
    for name, t in names.items():
        assert t.grad_fn.name() == name
        assert f"grad_fn=<{name}>" in repr(t)


def test_gpu_suffix_format():
    assert format_tensor(np.array([1.0, 1.0]), True, ["device='cuda:0'"], False) == "tensor([1., 1.], device='cuda:0')"


# ---------------------------------------------------------------- devices


def test_devices():
    assert str(device("cuda")) == "cuda" and repr(device("cuda:0")) == "device(type='cuda', index=0)"
    x = tensor([1.0, 2.0], device="cpu")
    assert x.device == device("cpu") and x.device == "cpu" and str(x.device) == "cpu"
    assert x.to("cpu").tolist() == [1.0, 2.0]
    assert ones(2, device=device("cpu")).device.type == "cpu"
    with pytest.raises(sd.DeviceError):
        device("banana")
    if HAS_GPU:
        y = x.to("cuda")
        assert y.device == device("cuda:0") and "device='cuda:0'" in repr(y)
        assert ones(2, device="cuda").is_cuda
    else:
        assert not cuda.is_available() and cuda.device_count() == 0
        dev = device("cuda")  # creating the name is fine, as in PyTorch
        with pytest.raises(sd.DeviceError, match="cpu"):
            x.to(dev)
        with pytest.raises(sd.DeviceError, match="available devices"):
            ones(2, device="cuda")
        with pytest.raises(sd.DeviceError):
            x.cuda()


# ---------------------------------------------------------------- every op's gradient against jax.vjp

RNG = np.random.default_rng(0)
A = RNG.uniform(0.2, 0.9, (3, 4)).astype(np.float32)  # inside every function's domain
B = RNG.uniform(0.2, 0.9, (3, 4)).astype(np.float32)
V = RNG.uniform(0.2, 0.9, (4,)).astype(np.float32)
M = RNG.uniform(-1, 1, (4, 2)).astype(np.float32)

# name -> (inputs, symdiff tensor function, the same computation in jax.numpy)
CASES = {
    "add": ((A, B), lambda a, b: a + b, lambda a, b: a + b),
    "sub": ((A, B), lambda a, b: a - b, lambda a, b: a - b),
    "mul": ((A, B), lambda a, b: a * b, lambda a, b: a * b),
    "div": ((A, B), lambda a, b: a / b, lambda a, b: a / b),
    "pow_scalar": ((A,), lambda a: a**3, lambda a: a**3),
    "pow_float": ((A,), lambda a: a**2.5, lambda a: a**2.5),
    "pow_tensor": ((A, B), lambda a, b: a**b, lambda a, b: a**b),
    "rpow": ((A,), lambda a: 2.0**a, lambda a: 2.0**a),
    "rsub_rdiv": ((A,), lambda a: 1 - 2 / a, lambda a: 1 - 2 / a),
    "neg_abs": ((A,), lambda a: abs(-a + 0.5), lambda a: jnp.abs(-a + 0.5)),
    "broadcast": ((A, V), lambda a, v: a * v + v, lambda a, v: a * v + v),
    "clamp": ((A,), lambda a: a.clamp(0.3, 0.7), lambda a: jnp.clip(a, 0.3, 0.7)),
    "square_sqrt": ((A,), lambda a: a.square().sqrt() + a.sqrt(), lambda a: jnp.sqrt(a**2) + jnp.sqrt(a)),
    "sum": ((A,), lambda a: a.sum(), jnp.sum),
    "sum_dim": ((A,), lambda a: (a * a).sum(0), lambda a: (a * a).sum(0)),
    "sum_keepdim": ((A,), lambda a: a.sum(dim=-1, keepdim=True) * a, lambda a: a.sum(-1, keepdims=True) * a),
    "mean": ((A,), lambda a: (a**2).mean(), lambda a: (a**2).mean()),
    "mean_dim": ((A,), lambda a: a.exp().mean(dim=(0, 1)), lambda a: jnp.exp(a).mean(axis=(0, 1))),
    "mean_dim1": ((A, V), lambda a, v: (a.mean(1) * v[:3]), lambda a, v: a.mean(1) * v[:3]),
    "matmul_mm": ((A, M), lambda a, m: a @ m, lambda a, m: a @ m),
    "matmul_mv": ((A, V), lambda a, v: sd.tanh(a @ v), lambda a, v: jnp.tanh(a @ v)),
    "matmul_dot": ((V,), lambda v: v @ v, lambda v: v @ v),
    "matmul_vm": ((V, M), lambda v, m: v.matmul(m), lambda v, m: v @ m),
    "matmul_batched": ((A, M), lambda a, m: a.reshape(3, 1, 4) @ m, lambda a, m: a.reshape(3, 1, 4) @ m),
    "reshape": ((A,), lambda a: a.reshape(2, 6) * 2, lambda a: a.reshape(2, 6) * 2),
    "view_flatten": ((A,), lambda a: a.view(-1).sin() + a.flatten(), lambda a: jnp.sin(a.reshape(-1)) + a.reshape(-1)),
    "transpose_T": ((A, B), lambda a, b: a.T * b.transpose(0, 1), lambda a, b: a.T * b.T),
    "permute": ((A,), lambda a: a.reshape(3, 2, 2).permute(2, 0, 1), lambda a: a.reshape(3, 2, 2).transpose(2, 0, 1)),
    "unsqueeze_squeeze": ((A,), lambda a: a.unsqueeze(0).squeeze(0) * a.unsqueeze(1).squeeze(),
                          lambda a: a * a),
    "expand": ((V,), lambda v: v.unsqueeze(0).expand(3, 4) * A.sum(), lambda v: jnp.broadcast_to(v, (3, 4)) * A.sum()),
    "index_int": ((A,), lambda a: a[1] * 3, lambda a: a[1] * 3),
    "index_slice": ((A,), lambda a: a[:, 1:3] ** 2, lambda a: a[:, 1:3] ** 2),
    "index_mixed": ((A,), lambda a: a[1:, None, -1], lambda a: a[1:, None, -1]),
    "index_array": ((A,), lambda a: a[tensor([0, 2, 0])].exp(), lambda a: jnp.exp(a[jnp.array([0, 2, 0])])),
    "index_mask": ((A,), lambda a: a[a > 0.5] * 2, lambda a: a[np.asarray(A > 0.5)] * 2),
    "cast": ((A,), lambda a: a.double() * 2, lambda a: a.astype(jnp.float32) * 2),
    "min_max": ((A, B), lambda a, b: sd.max(a, b) + sd.min(a, b) * 2, lambda a, b: jnp.maximum(a, b) + 2 * jnp.minimum(a, b)),
    "atan2_log": ((A, B), lambda a, b: sd.atan2(a, b) + sd.log(a, 2), lambda a, b: jnp.arctan2(a, b) + jnp.log2(a)),
    "shared_node": ((A,), lambda a: (lambda h: h.sum() * h + h.mean())(a * a), lambda a: (lambda h: h.sum() * h + h.mean())(a * a)),
    "mlp": ((A, M), lambda a, m: (sd.relu(a @ m - 0.1) ** 2).sum(1).mean(),
            lambda a, m: (jax.nn.relu(a @ m - 0.1) ** 2).sum(1).mean()),
}

# every elementwise function of the expression language, through sd.<name>(tensor)
for _name in sorted(_math.FUNCTIONS):
    if _name in ("atan2", "min", "max", "log", "sign", "acosh"):
        continue
    _np = _math._NUMERIC[_name]
    CASES[f"fn_{_name}"] = ((A,), (lambda n: lambda a: getattr(sd, n)(a) * 1.5)(_name),
                            (lambda f: lambda a: f(a) * 1.5)(_np))
CASES["fn_acosh"] = ((A,), lambda a: sd.acosh(a + 1), lambda a: jnp.arccosh(a + 1))
CASES["fn_log"] = ((A,), lambda a: a.log(), jnp.log)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_jax_vjp(name):
    inputs, ours, reference = CASES[name]
    leaves = [tensor(x, requires_grad=True) for x in inputs]
    y = ours(*leaves)
    expected_value, pullback = jax.vjp(reference, *[jnp.asarray(x) for x in inputs])
    np.testing.assert_allclose(np.asarray(y.detach()), np.asarray(expected_value), rtol=1e-5, atol=1e-6)
    ct = RNG.uniform(-1, 1, expected_value.shape).astype(np.float32)
    y.backward(gradient=tensor(ct))
    for leaf, ref in zip(leaves, pullback(jnp.asarray(ct))):
        assert leaf.grad.shape == leaf.shape and leaf.grad.dtype is leaf.dtype
        np.testing.assert_allclose(np.asarray(leaf.grad), np.asarray(ref), rtol=2e-4, atol=2e-5, err_msg=name)


def test_float64_gradients_are_float64():
    x = tensor([0.3, 0.7], dtype=float64, requires_grad=True)
    (sd.exp(x) * x).sum().backward()
    assert x.grad.dtype is float64
    np.testing.assert_allclose(np.asarray(x.grad), np.exp([0.3, 0.7]) * (1 + np.array([0.3, 0.7])), rtol=1e-14)


def test_constants_and_integer_inputs_take_no_gradient():
    x = tensor([1.0, 2.0], requires_grad=True)
    k = tensor([3, 4])  # int64 data
    y = (x * k).sum()
    assert y.requires_grad and not k.requires_grad
    y.backward()
    assert x.grad.tolist() == [3.0, 4.0] and k.grad is None


# ---------------------------------------------------------------- backward semantics


def test_gradients_accumulate_across_backward_calls():
    a = tensor([2.0, 3.0], requires_grad=True)
    Q = 3 * a**3
    Q.backward(gradient=ones(2))
    Q.backward(gradient=ones(2))
    assert a.grad.tolist() == [72.0, 162.0]
    (a * a).sum().backward()  # a different computation adds too
    assert a.grad.tolist() == [76.0, 168.0]
    a.grad.zero_()
    assert a.grad.tolist() == [0.0, 0.0]
    a.grad = None
    (a.sum()).backward()
    assert a.grad.tolist() == [1.0, 1.0]


def test_scalar_backward_and_leaf_backward():
    w = tensor(2.0, requires_grad=True)
    (w * w).backward()
    assert w.grad.item() == 4.0
    v = tensor([1.0], requires_grad=True)
    v.backward()  # one element: implicit gradient 1
    assert v.grad.tolist() == [1.0]


def test_no_grad_and_in_place_update():
    w = tensor([1.0, 2.0], requires_grad=True)
    (w**2).sum().backward()
    before = w
    with no_grad():
        w -= 0.25 * w.grad
        assert not (w * 2).requires_grad
    assert w is before and w.requires_grad and w.is_leaf
    assert w.tolist() == [0.5, 1.0]
    with no_grad():
        w.add_(1.0)
    assert w.tolist() == [1.5, 2.0]

    @no_grad()
    def frozen(t):
        return t * 3

    assert not frozen(w).requires_grad


def test_detach_and_flags():
    w = tensor([1.0], requires_grad=True)
    y = w * 2
    assert not y.is_leaf and w.is_leaf and y.grad_fn is not None and w.grad_fn is None
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.tolist() == [2.0]
    assert w.detach().numpy().tolist() == [1.0]
    assert tensor(2.5).item() == 2.5 and float(tensor([1.5])) == 1.5


# ---------------------------------------------------------------- errors


def test_non_scalar_backward_error():
    y = tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs") as info:
        y.backward()
    assert isinstance(info.value, sd.SymdiffError)


def test_integer_requires_grad_error():
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype can require gradients"):
        tensor([1, 2], requires_grad=True)
    with pytest.raises(sd.SymdiffError):
        ones(2, dtype=int, requires_grad=True)
    with pytest.raises(AutogradError):
        tensor([1, 2]).requires_grad_()


def test_other_errors():
    w = tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w += 1
    with pytest.raises(RuntimeError, match="Use tensor.detach"):
        w.numpy()
    with pytest.raises(RuntimeError, match="does not require grad"):
        tensor([1.0]).sum().backward()
    with pytest.raises(sd.ShapeError, match="must match the size"):
        ones(3) + ones(2)
    with pytest.raises(sd.ShapeError, match="cannot be multiplied"):
        ones(2, 3) @ ones(2, 3)
    with pytest.raises(sd.ShapeError, match="Mismatch in shape"):
        (w * ones(3)).backward(gradient=ones(2))
    with pytest.raises(sd.ShapeError):
        ones(6).reshape(4, 2)


# ---------------------------------------------------------------- y.derive(): closed forms


def test_derive_prints_readable_closed_forms():
    x = tensor([1.0, 2.0, 3.0])
    y = tensor([3.0, 5.0, 7.0])
    w = tensor(0.5, requires_grad=True)
    b = tensor(0.0, requires_grad=True)
    loss = ((w * x + b - y) ** 2).mean()
    d = loss.derive()
    assert isinstance(d, sd.Derivative)
    assert str(d) == "d/db = mean(2*(b + w*x - y))\nd/dw = mean(2*x*(b + w*x - y))"
    assert set(d.closed_form) == {"w", "b"}
    assert [s.name for s in d.wrt] == ["b", "w"]
    gb, gw = d()  # at the recorded values
    loss.backward()
    assert float(gw) == pytest.approx(w.grad.item()) and float(gb) == pytest.approx(b.grad.item())
    gb2, gw2 = d(w=2.0, b=1.0)  # the exact fit: zero gradient
    assert float(gw2) == pytest.approx(0.0, abs=1e-5) and float(gb2) == pytest.approx(0.0, abs=1e-5)
    value, _ = d.value_and_grad(w=2.0, b=1.0)
    assert float(value) == pytest.approx(0.0, abs=1e-6)
    assert jax.jit(d.function)(*[jnp.asarray(v) for v in (1.0, 2.0, 0.0, 0.0)]) is not None
    assert d.check().ok
    assert "mean" in d.latex()


def test_derive_names_and_structural_printing():
    p = tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="W")
    v = tensor([1.0, -1.0])
    d = (sd.sin(p @ v).sum() + p[0, 1] * 2).derive()
    text = str(d)
    assert text.startswith("d/dW = ") and "matmul(W, v)" in text and "cos" in text
    unnamed = (ones(2, requires_grad=True) * 3).sum().derive()
    assert str(unnamed) == "d/dx0 = sum(3)"
    assert not any(getattr(head, "__name__", "") in ("sum", "mean", "matmul") for head in FUNCTION_TABLE)


def test_sd_derive_captures_elementwise_tensor_computations():
    a = tensor([2.0, 3.0], requires_grad=True, name="a")
    b = tensor([6.0, 4.0], requires_grad=True, name="b")
    assert str(sd.derive(3 * a**3 - b**2)) == "d/da = 9*a**2\nd/db = -2*b"
    with pytest.raises(sd.SymdiffError, match="y.derive"):
        sd.derive((a * b).sum())


# ---------------------------------------------------------------- training loops do no SymPy work after step 1


def test_training_loop_does_not_retrace():
    manual_seed(0)
    x = linspace(-1, 1, 32)
    y = 2 * x + 1 + 0.01 * randn(32)
    w = tensor(0.0, requires_grad=True)
    b = tensor(0.0, requires_grad=True)
    history = []
    for _step in range(6):
        loss = ((w * x + b - y) ** 2).mean()  # new tensor objects, new values, every iteration
        loss.backward()
        with no_grad():
            w -= 0.3 * w.grad
            b -= 0.3 * b.grad
        w.grad.zero_()
        b.grad = None
        history.append(sd.cache_stats())
    first = history[0]
    for stats in history[1:]:
        assert stats["symbolic"] == first["symbolic"] and stats["traces"] == first["traces"]
    # fresh leaf objects with other values also reuse the plan
    w2 = tensor(5.0, requires_grad=True)
    b2 = tensor(-3.0, requires_grad=True)
    ((w2 * x + b2 - y) ** 2).mean().backward()
    assert sd.cache_stats()["symbolic"] == first["symbolic"] and sd.cache_stats()["traces"] == first["traces"]


def test_new_batch_shape_retraces_but_does_not_rederive():
    w = tensor(1.0, requires_grad=True)
    ((w * ones(5) - 2) ** 2).sum().backward()
    before = sd.cache_stats()
    ((w * ones(7) - 2) ** 2).sum().backward()  # same structure, new shape: a new trace, no SymPy work
    after = sd.cache_stats()
    assert after["symbolic"] == before["symbolic"] and after["traces"] == before["traces"] + 1
    assert w.grad.item() == pytest.approx(-2 * 5 - 2 * 7)


def test_data_alias_updates_in_place():
    w = tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    w.data -= 0.5 * w.grad.data
    assert w.tolist() == [0.0, 0.0] and w.requires_grad
    w.grad.data.zero_()
    assert w.grad.tolist() == [0.0, 0.0]
    w.data = tensor([3.0, 4.0])
    assert w.tolist() == [3.0, 4.0]


# ---------------------------------------------------------------- factories


def test_factories():
    assert zeros(2, 3).shape == (2, 3) and zeros((2, 3)).tolist() == [[0.0] * 3] * 2
    assert ones(2).dtype is float32 and ones(2, dtype=float64).dtype is float64
    t = tensor([[1.0, 2.0]], dtype=float64)
    assert ones_like(t).dtype is float64 and zeros_like(t).shape == (1, 2)
    assert full((2,), 7).tolist() == [7, 7] and full((2,), 7).dtype is int64
    assert arange(1, 4).tolist() == [1, 2, 3] and arange(0, 1, 0.5).dtype is float32
    assert linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    manual_seed(3)
    r1, n1 = rand(4), randn(2, 2)
    manual_seed(3)
    r2, n2 = rand(4), randn(2, 2)
    assert r1.tolist() == r2.tolist() and n1.tolist() == n2.tolist()
    assert randn(3, requires_grad=True).requires_grad
    assert rand(2, dtype=float64).dtype is float64
    assert tensor(np.arange(3.0)).dtype is float64  # numpy float64 keeps its dtype, as in PyTorch
    assert len(ones(3, 2)) == 3 and [r.tolist() for r in ones(2, 1)] == [[1.0], [1.0]]
    assert isinstance(ones(1), Tensor) and ones(2, 3).ndim == 2 and ones(2, 3).numel() == 6


def test_comparisons_and_mixed_dtypes():
    x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = x > 1.5
    assert mask.dtype is bool_ and mask.tolist() == [False, True, True] and not mask.requires_grad
    assert (tensor([1, 2]) / tensor([2, 2])).dtype is float32  # true division of ints, as in PyTorch
    assert (tensor([1, 2]) * 2.5).dtype is float32 and (tensor([1, 2]) * 2).dtype is int64
    assert (ones(2, dtype=float16) + ones(2)).dtype is float32
    assert (ones(2) + ones(2, dtype=float64)).dtype is float64
    assert (x == x).tolist() == [True, True, True]


# ---------------------------------------------------------------- examples run


@pytest.mark.parametrize("script", ["seed_tensors.py", "linear_regression.py"])
def test_examples_run(script, monkeypatch, capsys):
    monkeypatch.setenv("SYMDIFF_EXAMPLE_SMALL", "1")
    monkeypatch.setattr(sys, "argv", [script])
    runpy.run_path(str(ROOT / "examples" / script), run_name="__main__")
    out = capsys.readouterr().out
    if script == "seed_tensors.py":
        assert "tensor([36., 81.])" in out and "tensor([-12.,  -8.])" in out
        assert "tensor([-12.,  65.], grad_fn=<SubBackward0>)" in out and "d/da = 9*a**2" in out
    else:
        assert "d/dw = mean(2*x*(b + w*x - y))" in out
        assert out.count("learned model: y = ") == 2
