"""The :class:`Tensor` class and the operations it records (see :mod:`symdiff._tensor` for the overview).

An operation on a tensor that requires grad (with grad mode on) is recorded
as a pending :class:`~symdiff._tensor_node.Node`: its shape and dtype are
known at once, its value is computed when first needed by one compiled call
(:func:`symdiff._tensor_graph.materialize`). Other operations run at once,
one compiled call each (:mod:`symdiff._tensor_ops`).

>>> from symdiff._tensor_class import Tensor
>>> w = Tensor([1., 2.], requires_grad=True)
>>> (w * 3).sum()
tensor(9., grad_fn=<SumBackward0>)
"""

from __future__ import annotations

import builtins
import sys
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import DeviceError, DtypeError, ShapeError, SymdiffError
from ._functions import FUNCTIONS
from ._grad_mode import AutogradError, is_grad_enabled
from ._tensor_derivative import derive_tensor, symbolic_expression
from ._tensor_devices import device, device_of, jax_device, single_device
from ._tensor_dtypes import (
    BY_NUMPY,
    bfloat16,
    bool_,
    dtype,
    dtype_of,
    float16,
    float32,
    float64,
    int32,
    int64,
    result_dtype,
    to_dtype,
    x64_mode,
)
from ._tensor_format import format_tensor
from ._tensor_graph import backward_call, cotangent, materialize
from ._tensor_node import Node
from ._tensor_ops import EAGER_OPS, ELEMENTWISE_IMPL, cached_zeros, compiled, forward_structural, rebuild_index
from ._tensor_random import next_key
from ._tensor_shapes import Size, broadcast_shapes, check_broadcast, normalize_dims, numel, reshaped, shape_arg

__all__ = ["Tensor", "clamp", "maximum", "minimum", "where", "matmul"]


def _scalar_ok(x) -> bool:
    return isinstance(x, (builtins.int, builtins.float, builtins.bool, np.number)) and not isinstance(x, np.ndarray)


def _plain_scalar(x):
    if isinstance(x, np.number):
        return x.item()
    return x


class Tensor:
    """An array of numbers on a device, optionally recording operations for ``backward``.

    Create tensors with :func:`tensor`, :func:`ones`, :func:`randn`, ...; see
    ``docs/tensors.md``.
    """

    __slots__ = ("_v", "_requires_grad", "grad", "_node", "name", "__weakref__")
    __array_priority__ = 1000  # numpy defers to our reflected operators

    def __init__(self, data, dtype=None, device=None, requires_grad: builtins.bool = False, name: str | None = None):
        value = _to_array(data, to_dtype(dtype), device)
        self._v = value
        self._node = None
        self.grad = None
        self.name = name
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, value: jax.Array, node: Node | None = None) -> Tensor:
        t = object.__new__(cls)
        t._v = value
        t._node = node
        t._requires_grad = node is not None
        t.grad = None
        t.name = None
        return t

    @classmethod
    def _pending(cls, node: Node) -> Tensor:
        """A recorded result whose value is computed when first needed (``node.shape``/``dtype`` known)."""
        t = object.__new__(cls)
        t._v = None
        t._node = node
        t._requires_grad = True
        t.grad = None
        t.name = None
        return t

    @property
    def _value(self) -> jax.Array:
        """The values (a JAX array); a pending recorded result is computed here, once."""
        v = self._v
        if v is None:
            v = materialize(self)
        return v

    @_value.setter
    def _value(self, value: jax.Array) -> None:
        self._v = value

    # ---- attributes

    @property
    def requires_grad(self) -> builtins.bool:
        """Whether gradients flow to (leaf) or through (recorded result) this tensor."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: builtins.bool) -> None:
        value = builtins.bool(value)
        if value and not self.dtype.is_floating_point:
            raise AutogradError(
                f"Only Tensors of floating point and complex dtype can require gradients (got {self.dtype}); "
                "create it with dtype=symdiff.float32 or call .float() first"
            )
        if not value and self._node is not None:
            raise AutogradError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
            )
        self._requires_grad = value

    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> builtins.bool:
        return self._node is None

    @property
    def grad_fn(self) -> Node | None:
        return self._node

    @property
    def dtype(self) -> dtype:
        v = self._v
        return self._node.dtype if v is None else dtype_of(v)

    @property
    def device(self) -> device:
        return _device_of_tensor(self)

    @property
    def is_cuda(self) -> builtins.bool:
        return self.device.type == "cuda"

    @property
    def shape(self) -> Size:
        v = self._v
        return Size(self._node.shape if v is None else v.shape)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    @property
    def ndim(self) -> int:
        return len(_shape_of(self))

    def dim(self) -> int:
        return len(_shape_of(self))

    def numel(self) -> int:
        return numel(_shape_of(self))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    # ---- conversions

    def item(self):
        if self.numel() != 1:
            raise SymdiffError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._value.reshape(()).item()

    def tolist(self):
        return np.asarray(self._value).tolist()

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise AutogradError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return np.asarray(self._value)

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self._value)
        return out.astype(dtype) if dtype is not None else out

    def __jax_array__(self):
        return self._value

    @property
    def data(self) -> Tensor:
        """The values without the recorded history; in-place updates of it update this tensor (``w.data -= ...``)."""
        alias = object.__new__(_DataAlias)
        alias._value, alias._node, alias._requires_grad, alias.grad, alias.name = self._value, None, False, None, None
        alias._owner = self
        return alias

    @data.setter
    def data(self, other) -> None:
        self._value = other._value if isinstance(other, Tensor) else _to_array(other, self.dtype, None)

    def __float__(self) -> float:
        return builtins.float(self.item())

    def __int__(self) -> int:
        return builtins.int(self.item())

    def __bool__(self) -> builtins.bool:
        return builtins.bool(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.item())

    def detach(self) -> Tensor:
        return Tensor._wrap(self._value)

    def clone(self) -> Tensor:
        if self.requires_grad and is_grad_enabled():
            return _lazy_structural("clone", (), (self,), "CloneBackward0")
        return Tensor._wrap(jnp.array(self._value, copy=True))

    def to(self, *args, dtype=None, device=None, copy: builtins.bool = False) -> Tensor:
        """``x.to("cuda")``, ``x.to(sd.float64)``, ``x.to(other_tensor)``, ``x.to("cpu", sd.float16)``."""
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, (_DEVICE, jax.Device)):
                device = a
            elif isinstance(a, str) and a.split(":")[0].lower() in ("cpu", "cuda", "gpu", "tpu"):
                device = a
            else:
                dtype = a
        out = self
        target = to_dtype(dtype)
        if target is not None and target is not self.dtype:
            out = out._cast(target)
        if device is not None:
            jdev = jax_device(device)
            if jdev not in out._value.devices():
                with x64_mode():
                    moved = jax.device_put(out._value, jdev)
                out = _structural("to", (), (out,), "ToCopyBackward0", moved) if out._records() else Tensor._wrap(moved)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, builtins.int) else device))

    def _cast(self, target: dtype) -> Tensor:
        if self._records() and target.is_floating_point:
            return Tensor._pending(Node("cast", (target.name,), (self,), "ToCopyBackward0", _shape_of(self), target))
        with x64_mode():
            value = self._value.astype(target.numpy_dtype)
        return Tensor._wrap(value)

    def float(self) -> Tensor:
        return self._cast(float32)

    def double(self) -> Tensor:
        return self._cast(float64)

    def half(self) -> Tensor:
        return self._cast(float16)

    def bfloat16(self) -> Tensor:
        return self._cast(bfloat16)

    def int(self) -> Tensor:
        return self._cast(int32)

    def long(self) -> Tensor:
        return self._cast(int64)

    def bool(self) -> Tensor:
        return self._cast(bool_)

    def type(self, dtype=None):
        if dtype is None:
            return f"symdiff.{self.dtype.name}"
        return self._cast(to_dtype(dtype))

    def _records(self) -> builtins.bool:
        return self._requires_grad and is_grad_enabled()

    # ---- printing

    def __repr__(self) -> str:
        d = self.dtype
        suffixes = []
        dev = self.device
        if dev.type != "cpu":
            suffixes.append(f"device='{dev}'")
        if d not in (float32, int64, bool_):
            suffixes.append(f"dtype={d}")
        if self._node is not None:
            suffixes.append(f"grad_fn=<{self._node.label}>")
        elif self._requires_grad:
            suffixes.append("requires_grad=True")
        values = np.asarray(self._value.astype(jnp.float32) if d is bfloat16 else self._value)
        return format_tensor(values, d.is_floating_point, suffixes, show_size=self.ndim != 1)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if self.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    # ---- autograd

    def backward(self, gradient=None, retain_graph=None, create_graph: builtins.bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) (times ``gradient``) into every leaf's ``.grad``.

        Like PyTorch's ``y.backward(gradient=ct)``: the gradient of
        ``sum(ct * y)``; ``gradient`` may be left out only for a one-element ``y``.
        The recorded graph is kept, so calling ``backward`` twice accumulates twice.
        """
        if create_graph:
            raise SymdiffError("create_graph=True is not supported: use y.derive() or sd.derive(..., order=2)")
        if not self._requires_grad:
            raise AutogradError("element 0 of tensors does not require grad and does not have a grad_fn")
        shape = _shape_of(self)
        if gradient is None:
            if numel(shape) != 1:
                raise AutogradError("grad can be implicitly created only for scalar outputs")
            ct = None
        else:
            ct = cotangent(shape, self.dtype.numpy_dtype, _value_of(gradient))
        only = None
        if inputs is not None:
            only = {id(t) for t in ([inputs] if isinstance(inputs, Tensor) else inputs)}
        leaves, grads, fused = backward_call(self, ct, only)
        for k, leaf in enumerate(leaves):
            if only is not None and id(leaf) not in only:
                continue
            g = grads[k]
            if fused is not None and fused[k]:
                leaf.grad._v = g  # the call already added the old .grad
            elif leaf.grad is None:
                leaf.grad = Tensor._wrap(g)
            else:
                with x64_mode():
                    leaf.grad._value = leaf.grad._value + g.astype(leaf.grad.dtype.numpy_dtype)

    def derive(self, simplify=True):
        """The :class:`~symdiff.Derivative` of this tensor with respect to its leaves that require grad.

        ``print(y.derive())`` shows the closed forms; leaves are named by
        ``name=`` or by the caller's variable names, else ``x0, x1, ...``.
        Calling it evaluates the gradients (``y.backward(ones)``) at the
        recorded values, or at values given by name.
        """
        return derive_tensor(self, sys._getframe(1), simplify)

    def __symdiff_expr__(self):
        """The recorded elementwise computation as a SymPy expression, so ``sd.derive(y)`` works on it."""
        return symbolic_expression(self)

    def retain_grad(self) -> None:
        raise SymdiffError("retain_grad is not supported; call .derive() to see gradients of intermediates")

    # ---- in-place updates (for parameters under no_grad)

    def _check_inplace(self) -> None:
        if self._requires_grad and is_grad_enabled():
            if self._node is None:
                raise AutogradError("a leaf Variable that requires grad is being used in an in-place operation.")
            raise AutogradError("in-place operations on recorded results are not supported; write y = y + ...")

    def _inplace(self, value) -> Tensor:
        self._check_inplace()
        current = self._value
        if isinstance(value, jax.Array) and value.dtype == current.dtype and value.shape == current.shape:
            self._v = value  # the common case: nothing to convert
            return self
        with x64_mode():
            value = jnp.asarray(value.astype(self._value.dtype) if hasattr(value, "astype") else value,
                                dtype=self._value.dtype)
            if value.shape != self._value.shape:
                try:
                    value = jnp.broadcast_to(value, self._value.shape)
                except ValueError:
                    raise ShapeError(f"output with shape {list(self.shape)} doesn't match the broadcast "
                                     f"shape {list(value.shape)}") from None
        self._value = value
        return self

    def _other_value(self, other):
        return other._value if isinstance(other, Tensor) else other

    def _inplace_op(self, op: str, other) -> Tensor:
        """``self = op(self, other)`` in self's dtype, with one compiled call."""
        self._check_inplace()
        current = self._value
        if isinstance(other, Tensor):
            shape = _check_broadcast([self, other])
            if shape != current.shape:
                raise ShapeError(f"output with shape {list(current.shape)} doesn't match the broadcast "
                                 f"shape {list(shape)}")
            x64 = other.dtype.itemsize == 8
            other = other._value
        elif type(other) in (builtins.float, builtins.int, builtins.bool):
            x64 = type(other) is builtins.int and not -2**31 <= other < 2**31
        else:
            with x64_mode():
                return self._inplace(ELEMENTWISE_IMPL[op][0](current, other))
        dt = current.dtype
        fn = compiled("elementwise", op, (), dt, ())
        if x64 or dt.itemsize == 8:
            with x64_mode():
                return self._inplace(fn(current, other))
        return self._inplace(fn(current, other))

    def add_(self, other, alpha=1) -> Tensor:
        if alpha != 1:
            with x64_mode():
                return self._inplace(self._value + alpha * self._other_value(other))
        return self._inplace_op("add", other)

    def sub_(self, other, alpha=1) -> Tensor:
        if alpha != 1:
            with x64_mode():
                return self._inplace(self._value - alpha * self._other_value(other))
        return self._inplace_op("sub", other)

    def mul_(self, other) -> Tensor:
        return self._inplace_op("mul", other)

    def div_(self, other) -> Tensor:
        return self._inplace_op("div", other)

    def zero_(self) -> Tensor:
        current = self._value
        if single_device():
            return self._inplace(cached_zeros(current.shape, current.dtype))
        return self._inplace(jnp.zeros_like(current))

    def fill_(self, value) -> Tensor:
        return self._inplace(jnp.full_like(self._value, self._other_value(value)))

    def copy_(self, src) -> Tensor:
        return self._inplace(src._value if isinstance(src, Tensor) else jnp.asarray(src))

    def normal_(self, mean=0.0, std=1.0) -> Tensor:
        return self._inplace(mean + std * jax.random.normal(next_key(), self._value.shape, jnp.float32))

    def uniform_(self, a=0.0, b=1.0) -> Tensor:
        return self._inplace(jax.random.uniform(next_key(), self._value.shape, jnp.float32, a, b))

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    # ---- elementwise arithmetic

    def __add__(self, other):
        return _elementwise("add", (self, other), "AddBackward0")

    def __radd__(self, other):
        return _elementwise("add", (other, self), "AddBackward0")

    def __sub__(self, other):
        return _elementwise("sub", (self, other), "SubBackward0")

    def __rsub__(self, other):
        return _elementwise("sub", (other, self), "RsubBackward1")

    def __mul__(self, other):
        return _elementwise("mul", (self, other), "MulBackward0")

    def __rmul__(self, other):
        return _elementwise("mul", (other, self), "MulBackward0")

    def __truediv__(self, other):
        return _elementwise("div", (self, other), "DivBackward0")

    def __rtruediv__(self, other):
        return _elementwise("div", (other, self), "DivBackward0")

    def __pow__(self, other):
        return _elementwise("pow", (self, other), "PowBackward1" if isinstance(other, Tensor) else "PowBackward0")

    def __rpow__(self, other):
        return _elementwise("pow", (other, self), "PowBackward2")

    def __neg__(self):
        return _elementwise("neg", (self,), "NegBackward0")

    def __pos__(self):
        return self

    def __abs__(self):
        return _function("abs", (self,))

    def add(self, other, alpha=1):
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other, alpha=1):
        return self - (other * alpha if alpha != 1 else other)

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def pow(self, exponent):
        return self**exponent

    def neg(self):
        return -self

    def square(self):
        return _elementwise("pow", (self, 2), "PowBackward0")

    def clamp(self, min=None, max=None):
        return clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    # comparisons: boolean tensors, never recorded
    def _compare(self, other, fn):
        other_value = other._value if isinstance(other, Tensor) else other
        with x64_mode():
            return Tensor._wrap(fn(self._value, other_value))

    def __lt__(self, other):
        return self._compare(other, jnp.less)

    def __le__(self, other):
        return self._compare(other, jnp.less_equal)

    def __gt__(self, other):
        return self._compare(other, jnp.greater)

    def __ge__(self, other):
        return self._compare(other, jnp.greater_equal)

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, jnp.equal)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, jnp.not_equal)

    __hash__ = object.__hash__

    def eq(self, other):
        return self == other

    def equal(self, other) -> builtins.bool:
        return isinstance(other, Tensor) and self.shape == other.shape and builtins.bool(jnp.all(self._value == other._value))

    def allclose(self, other, rtol=1e-05, atol=1e-08) -> builtins.bool:
        return builtins.bool(jnp.allclose(self._value, _value_of(other), rtol=rtol, atol=atol))

    def __symdiff_function__(self, name: str, args: tuple):
        """``sd.sin(t)``, ``sd.exp(t)``, ...: the function applied elementwise, recorded for backward."""
        return _function(name, args)

    # ---- reductions and structure

    def sum(self, dim=None, keepdim: builtins.bool = False, dtype=None):
        if dim is None and dtype is None and self._requires_grad and is_grad_enabled():  # the hot path
            d = self.dtype
            if d.is_floating_point:
                shape = _shape_of(self)
                return Tensor._pending(Node("sum", (None, keepdim), (self,), "SumBackward0",
                                            (1,) * len(shape) if keepdim else (), d))
        x = self._cast(to_dtype(dtype)) if dtype is not None else self
        if x.dtype in (bool_, int32):
            x = x._cast(int64)
        dims = normalize_dims(dim, x.ndim)
        if x._records():
            return _lazy_structural("sum", (dims, keepdim), (x,), "SumBackward0" if dim is None else "SumBackward1")
        with x64_mode():
            value = compiled("structural", "sum", (dims, keepdim))(x._value)
        return Tensor._wrap(value)

    def mean(self, dim=None, keepdim: builtins.bool = False, dtype=None):
        if dim is None and dtype is None and self._requires_grad and is_grad_enabled():  # the hot path
            d = self.dtype
            if d.is_floating_point:
                shape = _shape_of(self)
                return Tensor._pending(Node("mean", (None, keepdim), (self,), "MeanBackward0",
                                            (1,) * len(shape) if keepdim else (), d))
        x = self._cast(to_dtype(dtype)) if dtype is not None else self
        if not x.dtype.is_floating_point:
            raise DtypeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point "
                             f"or complex dtype. Got: {x.dtype.name.capitalize()}")
        dims = normalize_dims(dim, x.ndim)
        if x._records():
            return _lazy_structural("mean", (dims, keepdim), (x,), "MeanBackward0" if dim is None else "MeanBackward1")
        with x64_mode():
            value = compiled("structural", "mean", (dims, keepdim))(x._value)
        return Tensor._wrap(value)

    def matmul(self, other):
        return matmul(self, other)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    mm = matmul
    dot = matmul

    def reshape(self, *shape):
        shape = shape_arg(shape)
        try:
            new = reshaped(_shape_of(self), shape)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {self.numel()}") from exc
        if self._records():
            return Tensor._pending(Node("reshape", (new,), (self,), "ViewBackward0", new, self.dtype))
        with x64_mode():
            value = self._value.reshape(new)
        return Tensor._wrap(value)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = start_dim % self.ndim, end_dim % self.ndim
        shape = self.shape
        return self.reshape(tuple(shape[:s]) + (-1,) + tuple(shape[e + 1:]))

    def unsqueeze(self, dim: int):
        dim = dim % (self.ndim + 1)
        shape = tuple(self.shape)
        return self.reshape(shape[:dim] + (1,) + shape[dim:])

    def squeeze(self, dim=None):
        shape = tuple(self.shape)
        if dim is None:
            new = tuple(s for s in shape if s != 1)
        else:
            dim = dim % max(self.ndim, 1)
            new = shape[:dim] + shape[dim + 1:] if shape and shape[dim] == 1 else shape
        return self.reshape(new)

    def permute(self, *dims):
        perm = tuple(d % self.ndim for d in shape_arg(dims))
        if sorted(perm) != list(range(self.ndim)):
            raise ShapeError(f"permute(): dims {list(perm)} are not a permutation of the {self.ndim} dimensions")
        if self._records():
            shape = _shape_of(self)
            return Tensor._pending(Node("permute", (perm,), (self,), "PermuteBackward0",
                                        tuple(shape[p] for p in perm), self.dtype))
        with x64_mode():
            value = jnp.transpose(self._value, perm)
        return Tensor._wrap(value)

    def transpose(self, dim0: int, dim1: int):
        perm = list(range(self.ndim))
        perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
        out = self.permute(*perm)
        if out._node is not None:
            out._node.label = "TransposeBackward0"
        return out

    def t(self):
        if self.ndim > 2:
            raise ShapeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        if self.ndim < 2:
            return self
        out = self.transpose(0, 1)
        if out._node is not None:
            out._node.label = "TBackward0"
        return out

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim))) if self.ndim >= 2 else self

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def expand(self, *shape):
        shape = shape_arg(shape)
        lead = len(shape) - self.ndim
        target = tuple(s if s != -1 else self.shape[i - lead] for i, s in enumerate(shape))
        try:
            if self._records():
                return _lazy_structural("expand", (target,), (self,), "ExpandBackward0")
            with x64_mode():
                value = jnp.broadcast_to(self._value, target)
        except ValueError as exc:
            raise ShapeError(f"cannot expand shape {list(self.shape)} to {list(target)}") from exc
        return Tensor._wrap(value)

    def expand_as(self, other):
        return self.expand(*other.shape)

    def __getitem__(self, index):
        return _getitem(self, index)

    def __setitem__(self, index, value):
        spec, arrays = _index_spec(index)
        idx = rebuild_index(spec, [a._value for a in arrays])
        with x64_mode():
            new = self._value.at[idx].set(jnp.asarray(_value_of(value), dtype=self._value.dtype))
        self._inplace(new)


class _DataAlias(Tensor):
    """``t.data``: a tensor without history whose in-place updates write through to ``t``."""

    __slots__ = ("_owner",)

    def _inplace(self, value) -> Tensor:
        Tensor._inplace(self, value)
        self._owner._value = self._value
        return self


# elementwise math methods: x.exp(), x.sin(), x.sigmoid(), ...
def _method(name):
    def method(self, *args):
        return _function(name, (self,) + args)

    method.__name__ = name
    method.__doc__ = f"Elementwise ``{name}``, recorded for backward."
    return method


for _name in FUNCTIONS:
    if _name not in ("min", "max", "abs"):
        setattr(Tensor, _name, _method(_name))
Tensor.abs = _method("abs")
Tensor.arctan2 = Tensor.atan2  # type: ignore[attr-defined]
Tensor.arcsin, Tensor.arccos, Tensor.arctan = Tensor.asin, Tensor.acos, Tensor.atan  # type: ignore[attr-defined]
Tensor.lgamma = Tensor.loggamma  # type: ignore[attr-defined]
del _name


# ---------------------------------------------------------------- recording operations


def _value_of(x):
    return x._value if isinstance(x, Tensor) else x


def _shape_of(t: Tensor) -> tuple:
    """The shape without computing a pending value."""
    v = t._v
    return t._node.shape if v is None else v.shape


def _concrete_source(t: Tensor) -> Tensor | None:
    """The first tensor with a value that a pending result's inputs lead to (where its device comes from)."""
    while t._v is None:
        nxt = next((x for x in t._node.inputs if isinstance(x, Tensor)), None)
        if nxt is None:
            return None
        t = nxt
    return t


def _jax_device_of(t: Tensor):
    src = _concrete_source(t)
    return next(iter(src._v.devices())) if src is not None else jax.devices()[0]


def _device_of_tensor(t: Tensor) -> device:
    src = _concrete_source(t)
    return device_of(src._v) if src is not None else device_of(jnp.zeros(()))


def _check_operand(x, op: str):
    if isinstance(x, Tensor) or _scalar_ok(x):
        return x
    if isinstance(x, (list, tuple, np.ndarray, jax.Array)):
        return Tensor(x) if not isinstance(x, jax.Array) else Tensor._wrap(x)
    raise TypeError(f"unsupported operand type for {op}: {type(x).__name__}")


def _check_devices(tensors) -> None:
    if single_device():
        return
    devices = {_jax_device_of(t) for t in tensors}
    if len(devices) > 1:
        names = sorted(str(t.device) for t in tensors)
        raise DeviceError(f"Expected all tensors to be on the same device, but found at least two devices, "
                          f"{names[0]} and {names[-1]}!")


def _check_broadcast(tensors) -> tuple:
    """The broadcast shape of the tensors' shapes; PyTorch's error when they do not broadcast."""
    return check_broadcast([_shape_of(t) for t in tensors])


def _elementwise(op: str, operands: tuple, label: str, params=(), to_float: builtins.bool = False):
    # the hot path of a training loop: a recorded op on float tensors of one dtype and Python numbers
    recorded = False
    dt = shape = None
    snap = []
    for x in operands:
        if isinstance(x, Tensor):
            v = x._v
            if v is None:
                node = x._node
                xdt, xshape = node.dtype, node.shape
                snap.append(None)
            else:
                xdt, xshape = BY_NUMPY.get(v.dtype), v.shape
                snap.append(v if x._node is None else None)
            if dt is None and xdt is not None:
                dt, shape = xdt, xshape
            elif xdt is not dt:
                break
            elif xshape != shape:
                try:
                    shape = broadcast_shapes(shape, xshape)
                except ValueError:
                    break
            if x._requires_grad:
                recorded = True
        elif type(x) is builtins.float or type(x) is builtins.int:
            snap.append(False)
        else:
            break
    else:
        if (dt is float32 or dt is float64) and single_device():
            if recorded and is_grad_enabled():
                return Tensor._pending(Node(op, params, operands, label, shape, dt, None, tuple(snap)))
            if op != "pow":  # eager: one compiled call (pow keeps a Python exponent static: the general path)
                fn = EAGER_OPS.get(("elementwise", op, params, dt.numpy_dtype, ())) or compiled(
                    "elementwise", op, params, dt.numpy_dtype)
                args = [x._value if isinstance(x, Tensor) else x for x in operands]
                if dt is float64 or _needs_x64(operands, dt):
                    with x64_mode():
                        return Tensor._wrap(fn(*args))
                return Tensor._wrap(fn(*args))
    return _elementwise_general(op, operands, label, params, to_float)


def _elementwise_general(op: str, operands: tuple, label: str, params=(), to_float: builtins.bool = False):
    if not all(isinstance(x, (Tensor, builtins.int, builtins.float)) for x in operands):
        operands = tuple(_plain_scalar(_check_operand(x, op)) for x in operands)
    tensors = [t for t in operands if isinstance(t, Tensor)]
    if not tensors:
        return NotImplemented
    if len(tensors) > 1:
        shape = _check_broadcast(tensors)
        _check_devices(tensors)
    else:
        shape = _shape_of(tensors[0])
    result = _result_dtype(operands, to_float or (op in ELEMENTWISE_IMPL and ELEMENTWISE_IMPL[op][1]))
    if op == "sub" and result is bool_:
        raise SymdiffError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if result.is_floating_point and is_grad_enabled():
        for t in tensors:
            if t._requires_grad:  # recorded: computed later, with the rest of the graph, in one call
                return Tensor._pending(Node(op, params, operands, label, shape, result))
    if op == "pow":  # a Python exponent stays static: x**3 must be integer_pow (exact for x < 0)
        static = tuple((i, x) for i, x in enumerate(operands) if not isinstance(x, Tensor))
        dynamic = [x._value for x in operands if isinstance(x, Tensor)]
    else:
        static, dynamic = (), [_value_of(x) for x in operands]
    fn = compiled("elementwise", op, params, result.numpy_dtype, static)
    if _needs_x64(operands, result):
        with x64_mode():
            return Tensor._wrap(fn(*dynamic))
    return Tensor._wrap(fn(*dynamic))


def _needs_x64(operands, result: dtype) -> builtins.bool:
    """Whether an eager op needs JAX's 64-bit mode: 64-bit values, or integers beyond 32 bits.

    Without it a call dispatches faster; with 32-bit values both modes compute the same.
    """
    if result.itemsize == 8:
        return True
    for x in operands:
        if isinstance(x, Tensor):
            if x.dtype.itemsize == 8:
                return True
        elif type(x) is builtins.int and not -2**31 <= x < 2**31:
            return True
    return False


_LABELS = {"atan2": "Atan2Backward0", "min": "MinimumBackward0", "max": "MaximumBackward0",
           "loggamma": "LgammaBackward0", "asin": "AsinBackward0", "acos": "AcosBackward0", "atan": "AtanBackward0"}


def _function(name: str, args: tuple):
    arity = FUNCTIONS[name][1]
    if len(args) not in arity:
        raise SymdiffError(f"{name}() takes {' or '.join(map(str, arity))} arguments; got {len(args)}")
    label = _LABELS.get(name, name.capitalize() + "Backward0")
    return _elementwise("fn:" + name, args, label, to_float=name not in ("abs", "sign", "min", "max", "relu"))


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Elementwise ``min(max(x, min), max)``; recorded as SymPy's ``Max``/``Min``."""
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return _elementwise("clamp", (x,), "ClampBackward1", params=(min, max))


def maximum(x, y) -> Tensor:
    """Elementwise maximum (``sd.max`` of two arguments)."""
    return _function("max", (x, y))


def minimum(x, y) -> Tensor:
    """Elementwise minimum (``sd.min`` of two arguments)."""
    return _function("min", (x, y))


def where(condition, x, y) -> Tensor:
    """``x`` where ``condition`` holds, else ``y``: written as ``c*x + (1-c)*y`` so it differentiates."""
    c = condition if isinstance(condition, Tensor) else Tensor(condition)
    c = c._cast(result_dtype([t.dtype for t in (x, y) if isinstance(t, Tensor)] or [float32], to_float=True))
    return c * x + (1 - c) * y


def _structural(op: str, params, inputs: tuple, label: str, value: jax.Array) -> Tensor:
    """A recorded structural op whose value is already computed."""
    return Tensor._wrap(value, Node(op, params, inputs, label, value.shape, dtype_of(value), value))


_META: dict = {}


def _lazy_structural(op: str, params, inputs: tuple, label: str) -> Tensor:
    """A recorded structural op, pending; its shape and dtype come from ``jax.eval_shape`` (cached).

    Invalid shapes raise here, at once, as the eager operation would.
    """
    key = (op, params) + tuple((_shape_of(t), t.dtype) for t in inputs)
    meta = _META.get(key)
    if meta is None:
        specs = [jax.ShapeDtypeStruct(s, d.numpy_dtype) for s, d in key[2:]]
        with x64_mode():
            out = jax.eval_shape(lambda *xs: forward_structural(op, params, list(xs)), *specs)
        if len(_META) > 4096:
            _META.clear()
        meta = _META[key] = (tuple(out.shape), dtype_of(out))
    return Tensor._pending(Node(op, params, inputs, label, meta[0], meta[1]))


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules (``a @ b``)."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("both arguments to matmul need to be at least 1D, but they are "
                         f"{a.ndim}D and {b.ndim}D")
    _check_devices([a, b])
    result = _result_dtype((a, b))
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        def fmt(t):
            return "x".join(map(str, t.shape))
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({fmt(a)} and {fmt(b)})")
    if is_grad_enabled() and result.is_floating_point and (a._requires_grad or b._requires_grad):
        label = {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (2, 2): "MmBackward0"}.get(
            (a.ndim, b.ndim), "UnsafeViewBackward0")
        try:
            return _lazy_structural("matmul", (result.name,), (a, b), label)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"matmul: shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from exc
    with x64_mode():
        value = compiled("structural", "matmul", (result.name,))(a._value, b._value)
    return Tensor._wrap(value)


# ---- indexing: static parts (ints, slices, None, ...) are structure; arrays are inputs


def _index_spec(index):
    """(hashable spec, list of index tensors) for an index expression."""
    items = index if isinstance(index, tuple) else (index,)
    spec, arrays = [], []
    for item in items:
        if isinstance(item, slice):
            spec.append(("slice", _plain_index(item.start), _plain_index(item.stop), _plain_index(item.step)))
        elif item is None:
            spec.append(("none",))
        elif item is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(item, (builtins.int, np.integer)) and not isinstance(item, builtins.bool):
            spec.append(("int", builtins.int(item)))
        else:
            t = item if isinstance(item, Tensor) else Tensor(item)
            if t.dtype is bool_:
                with x64_mode():
                    nonzero = jnp.nonzero(t._value)
                for part in nonzero:
                    spec.append(("array", len(arrays)))
                    arrays.append(Tensor._wrap(part))
                continue
            if t.dtype.is_floating_point:
                raise SymdiffError("tensors used as indices must be long, int or bool tensors")
            spec.append(("array", len(arrays)))
            arrays.append(t.detach())
    return tuple(spec), arrays


def _plain_index(v):
    if v is None:
        return None
    return builtins.int(v)


def _getitem(x: Tensor, index) -> Tensor:
    spec, arrays = _index_spec(index)
    try:
        if x._records():
            kinds = {s[0] for s in spec}
            label = "IndexBackward0" if "array" in kinds else (
                "SelectBackward0" if kinds == {"int"} or (len(spec) > 1 and "int" in kinds) else "SliceBackward0")
            return _lazy_structural("getitem", (spec,), (x, *arrays), label)
        idx = rebuild_index(spec, [a._value for a in arrays])
        with x64_mode():
            value = x._value[idx]
    except IndexError as exc:
        raise ShapeError(f"index {index!r} is out of bounds for a tensor of shape {list(x.shape)}") from exc
    return Tensor._wrap(value)


# ---------------------------------------------------------------- values from data


def _infer_dtype(data) -> dtype:
    if isinstance(data, (np.ndarray, np.generic, jax.Array)):
        return dtype_of(data)
    kinds = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, Tensor):
            return item.dtype
        elif isinstance(item, builtins.bool) or isinstance(item, np.bool_):
            kinds.add(0)
        elif isinstance(item, (builtins.int, np.integer)):
            kinds.add(1)
        elif isinstance(item, (builtins.float, np.floating)):
            kinds.add(2)
        else:
            raise SymdiffError(f"could not infer dtype of {type(item).__name__} {item!r}")
    top = builtins.max(kinds, default=2)
    return {0: bool_, 1: int64, 2: float32}[top]


def _to_array(data, dt: dtype | None, device_spec) -> jax.Array:
    jdev = jax_device(device_spec)
    if isinstance(data, Tensor):
        data = data._value
    if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
        data = [np.asarray(d._value) if isinstance(d, Tensor) else d for d in data]
    dt = dt or _infer_dtype(data)
    with x64_mode():
        if isinstance(data, jax.Array):
            value = data.astype(dt.numpy_dtype) if data.dtype != dt.numpy_dtype else data
            return jax.device_put(value, jdev) if jdev is not None else value
        try:
            array = np.asarray(data, dtype=dt.numpy_dtype)
        except (TypeError, ValueError) as exc:
            raise SymdiffError(f"could not make a tensor from {type(data).__name__} {data!r:.60}: {exc}") from exc
        return jax.device_put(array, jdev) if jdev is not None else jnp.asarray(array)


def _result_dtype(operands: Sequence, to_float: builtins.bool = False) -> dtype:
    """PyTorch's promotion over tensors and Python scalars (see :func:`symdiff._tensor_dtypes.result_dtype`)."""
    return result_dtype([t.dtype for t in operands if isinstance(t, Tensor)],
                        [s for s in operands if not isinstance(s, Tensor)], to_float)


_DEVICE = device  # the class (``Tensor.to`` has a parameter named ``device``)

