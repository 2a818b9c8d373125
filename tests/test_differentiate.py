"""The differentiator: SymPy's derivatives exactly, without SymPy's repeated walks.

Checked three ways: structurally equal to ``expr.diff(s)`` (the same SymPy
expression, so the printed closed forms and kink conventions are SymPy's),
numerically equal to SymPy's nested diffs up to order 4, and numerically equal
to JAX autodiff of the lowered expression. Plus wide (2000+ term) and deep
(1000 levels) expressions, which SymPy's own diff takes seconds to minutes on.
"""

import itertools
import random
import time

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy

from symdiff._capture import Captured, capture, real_symbol
from symdiff._deep import call_deep
from symdiff._differentiate import diff, differentiate, entry_keys
from symdiff._functions import FUNCTIONS, relu, sigmoid
from symdiff._lower import build_kernel

x, y, z = (real_symbol(n) for n in "xyz")

# Every function of the language, in a point's neighbourhood where it is smooth.
EXPRESSIONS = [
    "sin(x)*exp(-y**2)",
    "log(1 + exp(x*y))",
    "x/(1 + y**2)",
    "tanh(x)*y + x**2*sqrt(y**2 + 1)",
    "exp(-(x - y)**2/2)*cos(3*x)",
    "x**y + 2**x",
    "x**x",
    "sin(cos(tan(x*y)))",
    "cot(x) + sec(x*y) + csc(y)",
    "asin(x/3) + acos(y/3) + atan(x*y)",
    "atan2(y, x)",
    "sinh(x*y) + cosh(x) - tanh(y)",
    "asinh(x*y) + acosh(x + 3) + atanh(y/3)",
    "log(x*y, 2) + log(x)",
    "cbrt(x*y + 2)",
    "abs(x*y - 0.3)",
    "sign(x - y)*x**2",
    "erf(x*y) + erfc(y)",
    "gamma(x + 3)*loggamma(y + 3)",
    "sigmoid(x*y) + softplus(x - y)",
    "relu(x - y)*x",
    "min(x, y) + max(x, y**2)",
    "0.5*x**2.5*y - pi*x**3 + E**y",
    "x*y*sin(x*y)*exp(x + y)",
]
POINT = {x: sympy.Float("0.73"), y: sympy.Float("1.21")}  # away from every kink above


def _symbols(expr):
    return sorted(expr.free_symbols, key=lambda s: s.name)


def test_every_function_of_the_language_is_covered():
    used = set()
    for text in EXPRESSIONS:
        used |= {type(n) for n in sympy.preorder_traversal(capture(text).outputs[0])}
    heads = {b for b, _ in FUNCTIONS.values() if isinstance(b, type)}
    assert heads <= used
    assert sympy.log in used and sympy.Pow in used  # log(x, base) and sqrt are not classes


def test_seed_prints_textbook_forms():
    a, b = real_symbol("a"), real_symbol("b")
    got = differentiate(capture("3*a**3 - b**2"), (a, b), 1)
    assert list(got) == [(0, (0,)), (0, (1,))]
    assert str(got[(0, (0,))]) == "9*a**2" and str(got[(0, (1,))]) == "-2*b"


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_same_expression_as_sympy_diff(text):
    """Structurally equal to SymPy's own diff, orders 1 and 2, every symbol."""
    f = capture(text).outputs[0]
    for s, t in itertools.product(_symbols(f), repeat=2):
        first = f.diff(s)
        assert diff(f, s) == first, (text, s)
        assert diff(first, t) == first.diff(t), (text, s, t)


def test_kink_conventions_are_sympys():
    assert diff(sympy.Abs(x), x) == sympy.sign(x)
    assert diff(relu(x), x) == sympy.Heaviside(x, 0)
    assert diff(sympy.Max(x, y), x) == sympy.Max(x, y).diff(x) == sympy.Heaviside(x - y)
    assert diff(sympy.Min(x, y), y) == sympy.Min(x, y).diff(y)
    assert diff(sympy.sign(x), x) == 2 * sympy.DiracDelta(x)
    assert diff(sympy.Heaviside(x), x) == sympy.DiracDelta(x)
    assert diff(sympy.Abs(x * y), x) == sympy.Abs(x * y).diff(x)


@pytest.mark.parametrize(
    "expr",
    [
        sympy.Abs(sympy.log(x)),  # argument not known real: SymPy's re/im route
        sympy.sign(sympy.log(x)),
        sympy.Function("f")(x * y),  # undefined function: unevaluated Derivative
        sympy.polygamma(1, x**2),
        sympy.Piecewise((x**2, x > y), (sympy.sin(x), True)),
        sympy.Derivative(sympy.Function("g")(x), x) * y,
        sympy.besselj(1, x * y),
        sympy.Integer(3),
        y,
    ],
)
def test_other_heads_fall_back_to_sympy(expr):
    assert diff(expr, x) == expr.diff(x)


def _numeric(expr, point):
    return complex(expr.evalf(30, subs=point))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_higher_orders_match_sympy_numerically(order):
    rng = random.Random(order)
    for text in rng.sample(EXPRESSIONS, 6):
        f = capture(text).outputs[0]
        wrt = tuple(_symbols(f))
        got = differentiate(Captured((f,), False), wrt, order)
        for (_, combo), value in got.items():
            ref = f
            for i in combo:
                ref = ref.diff(wrt[i])
            a, b = _numeric(value, POINT), _numeric(ref, POINT)
            assert abs(a - b) <= 1e-12 * (1 + abs(b)), (text, combo, value, ref)


def _jax_derivative(fn, combo):
    for i in reversed(combo):
        fn = jax.grad(fn, argnums=i)
    return fn


@pytest.mark.parametrize("order, texts", [(1, EXPRESSIONS), (2, EXPRESSIONS[1::6]), (3, EXPRESSIONS[2::12])])
def test_matches_jax_autodiff(order, texts):
    """The closed forms, lowered, against JAX autodiff of the lowered expression (float64)."""
    with jax.enable_x64(True):
        for text in texts:
            f = capture(text).outputs[0]
            wrt = tuple(_symbols(f))
            got = differentiate(Captured((f,), False), wrt, order)
            keys = list(got)
            kernel = build_kernel(wrt, [f], [got[k] for k in keys])
            point = [jnp.asarray(float(POINT[s]), dtype=jnp.float64) for s in wrt]
            _, entries = kernel.fn(*point)

            def value(*args, kernel=kernel):
                return kernel.fn(*args)[0][0]

            for (_, combo), entry in zip(keys, entries):
                ref = _jax_derivative(value, combo)(*point)
                np.testing.assert_allclose(float(entry), float(ref), rtol=1e-9, atol=1e-12, err_msg=f"{text} {combo}")


def test_vector_outputs_and_entry_order():
    c = capture(["x*y", "sin(x) + y**3", "7"])
    got = differentiate(c, (x, y), 2)
    assert list(got) == list(entry_keys(3, 2, 2))
    assert got[(0, (0, 1))] == 1 and got[(1, (1, 1))] == 6 * y and got[(2, (0, 0))] == 0
    assert got[(1, (0, 0))] == -sympy.sin(x)


def _wide(n):
    rng = random.Random(0)
    coefficients = [(round(rng.uniform(-2, 2), 3), round(rng.uniform(0.1, 2), 3), round(rng.uniform(0.1, 2), 3))
                    for _ in range(n)]
    # sin's eval is a no-op on these arguments (no minus sign to extract): skipping it halves the set-up
    f = sympy.Add(*[c * sympy.sin(k * x + y * m, evaluate=False) for c, k, m in coefficients])
    return f, coefficients


def test_wide_sum_is_fast_and_exact():
    f, coefficients = _wide(2000)
    t0 = time.perf_counter()
    got = differentiate(Captured((f,), False), (x, y), 1)
    elapsed = time.perf_counter() - t0
    dx, dy = got[(0, (0,))], got[(0, (1,))]
    for term in random.Random(1).sample(f.args, 40):  # SymPy's diff term by term: the same terms
        assert term.diff(x) in dx.args and term.diff(y) in dy.args
    point = {x: 0.3, y: -0.7}
    for d, index in ((dx, 1), (dy, 2)):
        ref = sum(c * (k, m)[index - 1] * np.cos(k * 0.3 - 0.7 * m) for c, k, m in coefficients)
        value = sum(float(t.evalf(subs=point)) for t in d.args)
        assert abs(value - ref) < 1e-9 * len(coefficients)
    assert elapsed < 30, elapsed  # ~1.5 s on an idle 2-core machine; SymPy's own diff: ~10 s


def _nested(n):
    e, chain = x, []
    for _ in range(n):  # sin's and cos's eval are no-ops on these arguments: skipped, for a fast set-up
        chain.append(sympy.cos(e, evaluate=False))
        e = sympy.sin(e, evaluate=False)
    return e, chain


def test_deep_nesting_is_fast_and_exact():
    f, chain = call_deep(_nested, 1000)
    t0 = time.perf_counter()
    got = differentiate(Captured((f,), False), (x,), 1)  # called here, runs on a deep stack itself
    elapsed = time.perf_counter() - t0
    assert got[(0, (0,))] == call_deep(sympy.Mul, *chain)
    assert elapsed < 30, elapsed  # ~1 s idle; SymPy's own diff is cubic here: 30 s at 300 levels


def test_deep_chain_of_mixed_heads_matches_sympy():
    assert call_deep(diff, _nested(60)[0], x) == call_deep(_nested(60)[0].diff, x)  # evaluate=False is harmless
    e = x
    for i in range(40):
        e = [sympy.sin, sympy.exp, sympy.tanh, sympy.cos, lambda u: sigmoid(2 * u + y)][i % 5](e)
    assert call_deep(diff, e, x) == call_deep(e.diff, x)


@pytest.mark.parametrize(
    "text, max_ops",
    [("tanh(x)", 50), ("sin(x)*exp(-x**2/2)", 100), ("1/(1 + x**2)", 60)],
)
def test_high_order_derivatives_are_expanded_order_by_order(text, max_ops):
    """Without collecting terms at each order, the 10th derivative of tanh has thousands of nodes."""
    import symdiff as sd

    d = sd.derive(text, "x", order=10, dtype="float64")
    assert sympy.count_ops(d.closed_form) <= max_ops
    f = {"tanh(x)": mpmath.tanh, "sin(x)*exp(-x**2/2)": lambda t: mpmath.sin(t) * mpmath.exp(-t**2 / 2),
         "1/(1 + x**2)": lambda t: 1 / (1 + t**2)}[text]
    xs = [-1.3, -0.2, 0.4, 1.7]
    with mpmath.workdps(40):
        expected = [float(mpmath.diff(f, mpmath.mpf(v), 10)) for v in xs]
    np.testing.assert_allclose(np.asarray(d(np.asarray(xs))), expected, rtol=1e-9)


@pytest.mark.parametrize("text, mp, rtol", [
    ("tanh(x)", lambda t: mpmath.tanh(t), 3e-6),
    ("sigmoid(x)", lambda t: 1 / (1 + mpmath.exp(-t)), 1e-10),
])
def test_high_order_derivatives_stay_accurate_where_the_function_saturates(text, mp, rtol):
    """Expanded into powers of tanh(x), d^10/dx^10 tanh(12) loses 4 digits more than autodiff; factors of
    (1 - tanh(x)**2) keep every term small there (autodiff's own error at x=12 is about 3e-7)."""
    import symdiff as sd

    d = sd.derive(text, "x", order=10, dtype="float64")
    xs = [0.5, 2.0, 5.0, 8.0, 12.0]
    with mpmath.workdps(60):
        expected = [float(mpmath.diff(mp, mpmath.mpf(v), 10)) for v in xs]
    np.testing.assert_allclose(np.asarray(d(np.asarray(xs))), expected, rtol=rtol)
    assert "(1 - " in str(d)  # the saturating factor is visible in the closed form
