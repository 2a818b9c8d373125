"""The PyTorch-style front end: tensors whose gradients are printable closed forms.

>>> import symdiff as sd
>>> from symdiff._tensor import tensor
>>> a = tensor([2., 3.], requires_grad=True)
>>> b = tensor([6., 4.], requires_grad=True)
>>> Q = 3 * a**3 - b**2
>>> Q
tensor([-12.,  65.], grad_fn=<SubBackward0>)
>>> Q.backward(gradient=tensor([1., 1.]))
>>> a.grad, b.grad
(tensor([36., 81.]), tensor([-12.,  -8.]))

Values are JAX arrays. An operation on a tensor that requires grad is
*recorded* (elementwise operations become SymPy expressions, reductions,
``matmul``, reshapes and indexing structural nodes, see
:mod:`symdiff._tensor_graph`) and computed lazily: its shape and dtype are
known at once, its value when first needed (printing, ``.item()``, an eager
operation...), by one compiled call for the whole pending computation, from
the leaves' values as they were when recorded. ``backward`` derives the closed
forms once per *structure* of the recorded computation and evaluates the
output, the gradients and their accumulation into ``.grad`` with one compiled
call, so a training loop does no SymPy work and no recompilation after its
first iteration.

Operations that are not recorded run at once, one compiled call each. An
operation involving ``int64`` or ``float64`` values runs with JAX's 64-bit
types enabled for that call only, never by changing JAX's global
configuration.

The front end is split by job: :mod:`~symdiff._tensor_dtypes`,
:mod:`~symdiff._tensor_devices`, :mod:`~symdiff._grad_mode`,
:mod:`~symdiff._tensor_shapes`, :mod:`~symdiff._tensor_node` (the recorded
operation), :mod:`~symdiff._tensor_ops` (their JAX code),
:mod:`~symdiff._tensor_class` (the class and what it records),
:mod:`~symdiff._tensor_factories`, :mod:`~symdiff._tensor_graph` (backward),
:mod:`~symdiff._tensor_derivative` (``y.derive()``). This module gathers the
public names.
"""

from __future__ import annotations

from ._grad_mode import AutogradError, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from ._tensor_class import Tensor, clamp, matmul, maximum, minimum, where
from ._tensor_devices import cuda, device
from ._tensor_dtypes import (
    bfloat16,
    bool_,
    double,
    dtype,
    float16,
    float32,
    float64,
    half,
    int32,
    int64,
    long,
    to_dtype,
)
from ._tensor_factories import (
    arange,
    as_tensor,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from ._tensor_shapes import Size

__all__ = [
    "Tensor", "Size", "dtype", "device", "cuda", "AutogradError", "to_dtype",
    "float16", "bfloat16", "float32", "float64", "int32", "int64", "bool_", "half", "double", "long",
    "tensor", "as_tensor", "from_numpy", "ones", "zeros", "full", "eye", "ones_like", "zeros_like", "full_like",
    "arange", "linspace", "rand", "randn", "manual_seed",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "matmul", "where", "maximum", "minimum", "clamp",
]
