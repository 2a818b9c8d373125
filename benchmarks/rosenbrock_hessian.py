"""Rosenbrock Hessian of n variables: derive, first d.array call and run time vs jax.hessian.

Run: python benchmarks/rosenbrock_hessian.py 100
"""

import sys
import time
import timeit

import jax
import jax.numpy as jnp
import numpy as np

import symdiff as sd

n = int(sys.argv[1])
text = " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(n - 1))
t = time.time()
d = sd.derive(text, order=2, simplify=False)
t1 = time.time() - t
xs = [np.float32(0.5 + 0.01 * i) for i in range(n)]
t = time.time()
H = d.array(*xs)
H.block_until_ready()
t2 = time.time() - t


def f(v):
    return jnp.sum(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)


hj = jax.jit(jax.hessian(f))
v = jnp.asarray(xs)
t = time.time()
Hj = hj(v).block_until_ready()
t3 = time.time() - t
print(
    f"n={n} derive {t1:.2f}s first array call {t2:.2f}s jax.hessian first {t3:.2f}s maxerr {float(jnp.max(jnp.abs(H - Hj))):.3g}"
)

print(
    "array run",
    min(timeit.repeat(lambda: d.array(*xs).block_until_ready(), number=20, repeat=3)) / 20 * 1e6,
    "us;",
    "jax",
    min(timeit.repeat(lambda: hj(v).block_until_ready(), number=20, repeat=3)) / 20 * 1e6,
    "us",
)
