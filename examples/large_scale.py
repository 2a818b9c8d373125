"""A 100,000-variable optimisation with closed-form sparse Hessians and Hessian-vector products.

The extended Rosenbrock function (More, Garbow & Hillstrom no. 21) or Broyden's
tridiagonal problem (no. 30) is written once, as a vector expression with
slices. symdiff derives the closed-form gradient and Hessian for every n, and
SciPy minimises with them:

- Newton-CG calls ``h.hvp(v, x=x)``: the directional derivative of the
  gradient, O(n) per product, never a matrix;
- trust-constr gets ``h.sparse(x=x, format="scipy")``: only the structural
  nonzeros (2n for the 2 x 2 blocks of extended Rosenbrock, 5n - 6 for
  Broyden's pentadiagonal Hessian) as a ``scipy.sparse.csr_array``.

``jax.hessian`` would materialise the dense n x n Hessian instead: 80 GB at
n = 100,000.

    python examples/large_scale.py                          # n = 100,000, Newton-CG with d.hvp
    python examples/large_scale.py --method trust-constr    # sparse Hessians with d.sparse
    python examples/large_scale.py --problem broyden --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import scipy.optimize

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import symdiff as sd  # noqa: E402

PROBLEMS = {
    # extended Rosenbrock (n even): minimum 0 at x = 1, start (-1.2, 1, -1.2, 1, ...)
    "rosenbrock": "sum(100*(x[1::2] - x[0:-1:2]**2)**2 + (1 - x[0:-1:2])**2)",
    # Broyden tridiagonal (More, Garbow & Hillstrom no. 30): residuals (3 - 2x_i)x_i - x_(i-1) - 2x_(i+1) + 1
    "broyden": ("sum(((3 - 2*x[1:-1])*x[1:-1] - x[:-2] - 2*x[2:] + 1)**2)"
                " + ((3 - 2*x[0])*x[0] - 2*x[1] + 1)**2 + ((3 - 2*x[-1])*x[-1] - x[-2] + 1)**2"),
}


def start(problem: str, n: int) -> np.ndarray:
    if problem == "rosenbrock":
        x0 = np.ones(n)
        x0[::2] = -1.2
        return x0
    return -np.ones(n)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of variables")
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="rosenbrock")
    parser.add_argument("--method", choices=["Newton-CG", "trust-constr"], default="Newton-CG")
    parser.add_argument("--quick", action="store_true", help="n = 2,000 (a few seconds; what the tests run)")
    args = parser.parse_args(argv)
    n = 2_000 if args.quick else args.n
    text = PROBLEMS[args.problem]

    t0 = time.perf_counter()
    f = sd.derive(text, wrt="x", shapes={"x": "n"})  # its gradient (order 1)
    h = sd.derive(text, wrt="x", order=2, shapes={"x": "n"})  # its Hessian (order 2)
    t_derive = time.perf_counter() - t0
    print(f"f(x) = {text}")
    print(f"closed-form gradient, for every n:\n  {f}")
    print(f"closed-form Hessian:\n  {h}")

    def fun(x):
        value, grad = f.value_and_grad(x=x)
        return float(value), np.asarray(grad)

    counts = {"hvp": 0, "sparse": 0}

    def hessp(x, v):
        counts["hvp"] += 1
        return np.asarray(h.hvp(v, x=x))

    def hess(x):
        counts["sparse"] += 1
        return h.sparse(x=x, format="scipy")

    x0 = start(args.problem, n)
    t0 = time.perf_counter()
    if args.method == "Newton-CG":
        result = scipy.optimize.minimize(fun, x0, jac=True, hessp=hessp, method="Newton-CG",
                                         options={"xtol": 1e-10, "maxiter": 1000})
    else:
        result = scipy.optimize.minimize(fun, x0, jac=True, hess=hess, method="trust-constr",
                                         options={"gtol": 1e-9, "xtol": 1e-12, "maxiter": 1000})
    t_solve = time.perf_counter() - t0

    H = h.sparse(x=result.x, format="scipy")
    grad = fun(result.x)[1]
    print(f"\nn = {n:,} variables, {args.method}: {result.nit} iterations, {counts['hvp']} Hessian-vector "
          f"products, {counts['sparse']} sparse Hessians")
    print(f"f(x*) = {result.fun:.3e}, |grad f(x*)|_inf = {np.abs(grad).max():.3e}")
    if args.problem == "rosenbrock":
        print(f"error |x* - 1|_inf = {np.abs(result.x - 1).max():.3e}  (the minimum is x = 1)")
    print(f"sparse Hessian at x*: {H.nnz:,} stored entries, "
          f"{(H.data.nbytes + H.indices.nbytes + H.indptr.nbytes) / 1e6:.1f} MB")
    dense = 8 * n * n
    print(f"jax.hessian would materialise {n:,} x {n:,} float64 = "
          + (f"{dense / 1e9:,.0f} GB" if dense >= 1e10 else f"{dense / 1e6:,.0f} MB"))
    print(f"time: derive {t_derive:.2f} s, solve {t_solve:.2f} s")
    ok = np.abs(grad).max() < 1e-4 * max(1.0, abs(result.fun))
    print("converged" if ok else "NOT converged")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
