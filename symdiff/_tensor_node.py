"""The recorded operation behind a tensor (its ``grad_fn``): what the graph of a computation is made of.

>>> from symdiff._tensor import tensor
>>> w = tensor([1., 2.], requires_grad=True)
>>> node = (w * 2).grad_fn
>>> node.op, node.label, node.shape
('mul', 'MulBackward0', (2,))
"""

from __future__ import annotations

import numpy as np

__all__ = ["Node", "SCALAR_TYPES"]

# what a Python scalar operand can be (anything else among a node's inputs is a tensor)
SCALAR_TYPES = (int, float, bool, np.number)


class Node:
    """One recorded operation (a tensor's ``grad_fn``): op, static parameters and inputs.

    ``inputs`` holds tensors and Python scalars; ``params`` is hashable static
    structure (dims, shapes, indices); ``label`` is PyTorch's name, such as
    ``AddBackward0``. ``snap`` holds, for every input that is a leaf, its
    value when the operation was recorded (``None`` for a recorded result,
    ``False`` for a Python scalar) (later in-place updates of the leaf
    do not change this result, as in PyTorch); ``out`` is the operation's
    value once computed (``None`` while it is pending: recorded operations are
    evaluated lazily, see :func:`symdiff._tensor_graph.materialize`);
    ``shape`` and ``dtype`` are known at once.
    """

    __slots__ = ("op", "params", "inputs", "label", "snap", "out", "shape", "dtype")

    def __init__(self, op: str, params, inputs: tuple, label: str, shape: tuple = (), dtype=None, out=None,
                 snap: tuple | None = None):
        self.op, self.params, self.inputs, self.label = op, params, inputs, label
        if snap is None:
            snap = tuple([False if isinstance(x, SCALAR_TYPES) else (x._v if x._node is None else None)
                          for x in inputs])
        self.snap = snap
        self.shape, self.dtype, self.out = shape, dtype, out

    def name(self) -> str:
        return self.label

    @property
    def next_functions(self) -> tuple:
        return tuple((None, 0) if s is False else (t.grad_fn, 0) for t, s in zip(self.inputs, self.snap))

    def __repr__(self) -> str:
        return f"<{self.label} object at {id(self):#x}>"
