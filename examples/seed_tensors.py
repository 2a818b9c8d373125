"""The seed document's PyTorch snippets, written with symdiff tensors.

Run: ``python examples/seed_tensors.py``. Every gradient printed here comes from a
closed form that symdiff derived symbolically and evaluated with compiled JAX code.
"""

import symdiff as sd
from symdiff._tensor import (
    cuda,
    float16,
    float32,
    float64,
    no_grad,
    ones,
    ones_like,
    rand,
    tensor,
    zeros,
)

# ---- creating tensors: from data, with dtypes, like other tensors
data = [[1, 2], [3, 4]]
x_data = tensor(data)
print(x_data)  # tensor([[1, 2],\n        [3, 4]])
print(x_data.dtype)  # symdiff.int64
x_ones = ones_like(x_data)
print(f"Ones Tensor:\n{x_ones}\n")
x_rand = rand(2, 2, dtype=float32)
print(f"Random Tensor: shape {tuple(x_rand.shape)}, dtype {x_rand.dtype}\n")
shape = (2, 3)
print(ones(shape), zeros(shape), sep="\n")
for dt in (float16, float32, float64, int):
    t = tensor([1, 2, 3], dtype=dt)
    print(f"dtype={dt!s:>16}: {t!r}")
print(tensor([[1, 1]]))  # tensor([[1, 1]])

# ---- attributes
tensor_ = rand(3, 4)
print(f"Shape of tensor: {tensor_.shape}")
print(f"Datatype of tensor: {tensor_.dtype}")
print(f"Device tensor is stored on: {tensor_.device}")

# ---- the CUDA device
if cuda.is_available():
    on_gpu = tensor_.to("cuda")
    print(f"Device tensor is stored on: {on_gpu.device}")
    print(ones(2, device="cuda"))  # tensor([1., 1.], device='cuda:0')
else:
    print("No GPU here: skipping the CUDA snippets (sd.cuda.is_available() is False).")

# ---- autograd: requires_grad, backward(gradient=...), .grad
a = tensor([2.0, 3.0], requires_grad=True)
b = tensor([6.0, 4.0], requires_grad=True)
print(a)  # tensor([2., 3.], requires_grad=True)
Q = 3 * a**3 - b**2
print(Q)  # tensor([-12.,  65.], grad_fn=<SubBackward0>)
external_grad = tensor([1.0, 1.0])
Q.backward(gradient=external_grad)
print(a.grad)  # tensor([36., 81.])
print(b.grad)  # tensor([-12.,  -8.])
print(9 * a**2 == a.grad)  # tensor([True, True])
print(-2 * b == b.grad)  # tensor([True, True])
print(Q.derive())  # the closed forms: d/da = 9*a**2, d/db = -2*b

# ---- excluding from the graph
x = rand(5, 5)
y = rand(5, 5)
z = rand(5, 5, requires_grad=True)
print(f"Does `a` require gradients?: {(x + y).requires_grad}")
print(f"Does `b` require gradients?: {(x + z).requires_grad}")
with no_grad():
    print(f"Inside no_grad: {(x + z).requires_grad}")
print(f"sd.derive of the same text agrees: {sd.derive('3*a**3 - b**2')(a=[2.0, 3.0], b=[6.0, 4.0])}")
