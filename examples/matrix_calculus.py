"""Matrix calculus with symdiff: closed-form gradients and Hessians of array expressions.

Three classics, each derived once for symbolic sizes, printed, checked against
JAX autodiff and finite differences, and used:

1. least squares: the gradient ``2*X.T @ (X @ w - y)`` and the Hessian ``2*X.T @ X``,
   one Newton step solves it exactly;
2. logistic regression: Newton's method with the printed Hessian
   ``X.T @ diag(s*(1 - s)) @ X``;
3. a Gaussian log-likelihood: gradients with respect to the mean and the
   covariance (``inv(S)``, ``logdet``).

Run: ``python examples/matrix_calculus.py`` (a few seconds).
"""

from __future__ import annotations

import numpy as np

import symdiff as sd


def least_squares(rng):
    shapes = {"X": ("m", "n"), "w": "n", "y": "m"}
    grad = sd.derive("sum((X @ w - y)**2)", wrt="w", shapes=shapes)
    hess = sd.derive("sum((X @ w - y)**2)", wrt="w", order=2, shapes=shapes)
    print("least squares")
    print(" ", grad)
    print(" ", hess)
    X, y = rng.normal(size=(50, 4)), rng.normal(size=50)
    w = np.zeros(4)
    grad.check(X=X, w=w, y=y)
    hess.check(X=X, w=w, y=y)
    w = w - np.linalg.solve(hess(X=X, w=w, y=y), grad(X=X, w=w, y=y))  # one Newton step is exact
    assert np.allclose(w, np.linalg.lstsq(X, y, rcond=None)[0])
    print("  one Newton step = numpy.linalg.lstsq:", np.round(w, 4))


def logistic_regression(rng):
    shapes = {"X": ("m", "n"), "w": "n", "y": "m"}
    loss = "sum(log(1 + exp(-y * (X @ w))))"
    hess = sd.derive(loss, wrt="w", order=2, shapes=shapes)
    print("logistic regression (labels y = +-1)")
    print(" ", hess)
    X = rng.normal(size=(200, 3))
    y = np.where(X @ np.array([1.5, -2.0, 0.5]) + 2.0 * rng.normal(size=200) > 0, 1.0, -1.0)
    w = np.zeros(3)
    for _ in range(8):  # Newton's method: value, gradient and Hessian from closed forms
        H = hess(X=X, w=w, y=y)
        g = np.asarray(sd.derive(loss, wrt="w", shapes=shapes)(X=X, w=w, y=y))
        w = w - np.linalg.solve(H, g)
    hess.check(X=X, w=w, y=y)
    s = 1 / (1 + np.exp(-y * (X @ w)))
    assert np.allclose(hess(X=X, w=w, y=y), X.T @ np.diag(s * (1 - s)) @ X)  # the textbook form
    print("  Newton's method, 8 steps: w =", np.round(w, 3))


def gaussian(rng):
    shapes = {"x": "n", "mu": "n", "S": ("n", "n")}
    nll = "logdet(S)/2 + (x - mu) @ inv(S) @ (x - mu)/2"
    d = sd.derive(nll, wrt=["mu", "S"], shapes=shapes)
    print("Gaussian negative log-likelihood")
    print(" ", str(d).replace("\n", "\n  "))
    a = rng.normal(size=(3, 3))
    S, x, mu = a @ a.T + 3 * np.eye(3), rng.normal(size=3), rng.normal(size=3)
    report = d.check(x=x, mu=mu, S=S)
    g_mu, g_S = d(x=x, mu=mu, S=S)
    Si = np.linalg.inv(S)
    r = x - mu
    assert np.allclose(g_mu, -Si @ r)  # Matrix Cookbook (8.1)
    assert np.allclose(g_S, (Si - Si @ np.outer(r, r) @ Si) / 2)
    print(" ", str(report).splitlines()[0])


def main():
    rng = np.random.default_rng(0)
    least_squares(rng)
    logistic_regression(rng)
    gaussian(rng)


if __name__ == "__main__":
    main()
