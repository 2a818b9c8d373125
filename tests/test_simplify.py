"""Simplification: textbook forms when cheap, and a budget that always holds."""

import time

import sympy

import symdiff as sd
from symdiff._budget import run_budgeted, worker_stats
from symdiff._simplify import DEFAULT_CHAIN, chain_candidates, simplify_entries

# Plain sympy.simplify runs for minutes on the second derivative of this (swell).
SWELL = "tanh(sin(exp(x)/(1+x**2))**3 + cos(x)**2)**4"


def test_textbook_forms():
    x = sympy.Symbol("x", real=True)
    assert str(sd.derive("3*a**3 - b**2")) == "d/da = 9*a**2\nd/db = -2*b"
    d = sd.derive("sin(x)**2 + cos(x)**2 + x", "x")
    assert d.closed_form == {"x": 1}
    assert simplify_entries([2 * x * (x + 1) + 2 * x**2], 1.0, lambda e: True) == [2 * x * (2 * x + 1)]


def test_budget_bounds_a_derivative_that_plain_simplify_cannot_finish():
    x = sympy.Symbol("x", real=True)
    second = sd.parse(SWELL).diff(x, 2)
    # plain simplify does not finish in 10x the budget: its worker process is killed at the deadline ...
    kills = worker_stats()["kills"]
    start = time.monotonic()
    plain = [p for p in DEFAULT_CHAIN if p.name == "simplify"]
    assert run_budgeted(chain_candidates, (second, tuple(plain)), 5.0) == [], "pick a harder expression"
    assert time.monotonic() - start < 8.0
    assert worker_stats()["kills"] == kills + 1
    # ... while derive with a 0.5 s budget returns promptly with a correct result
    start = time.monotonic()
    d = sd.derive(SWELL, "x", order=2, simplify=0.5)
    elapsed = time.monotonic() - start
    assert elapsed < 4.0
    report = d.check([0.3, 0.7], rtol=1e-3)
    assert report.ok


def test_simplify_false_keeps_raw_derivative_and_bad_budget_errors():
    d = sd.derive("x*(x+1)", "x", simplify=False)
    x = sympy.Symbol("x", real=True)
    assert d.closed_form["x"] == sympy.diff(x * (x + 1), x)
    try:
        sd.derive("x", simplify="fast")
    except sd.SymdiffError as exc:
        assert "simplify" in str(exc)
    else:
        raise AssertionError("expected SymdiffError")


def test_default_chain_is_named_passes():
    assert [p.name for p in DEFAULT_CHAIN] == ["factor_terms", "cancel_powers", "simplify"]


def test_simplification_does_not_trade_operations_for_a_new_function():
    """1 - tanh(a)**2 reuses tanh(a); 1/cosh(a)**2 has fewer operations but costs another transcendental."""
    import jax
    import numpy as np

    d = sd.derive("tanh(a)*b + a**2*sqrt(b**2 + 1)", dtype="float64")
    heads = {type(f) for e in d.closed_form.values() for f in e.atoms(sympy.Function)}
    assert sympy.cosh not in heads and sympy.tanh in heads
    a, b = np.array([-1.2, 0.3, 2.0]), np.array([0.5, -1.5, 1.0])
    with jax.enable_x64(True):
        f = lambda a, b: jax.numpy.tanh(a) * b + a**2 * jax.numpy.sqrt(b**2 + 1)  # noqa: E731
        want = jax.vmap(jax.grad(f, argnums=(0, 1)))(a, b)
    for got, w in zip(d(a, b), want):
        np.testing.assert_allclose(np.asarray(got), np.asarray(w), rtol=1e-13)
