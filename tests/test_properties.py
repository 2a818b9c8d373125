"""Property tests: random expression trees, symbolic derivatives vs JAX autodiff.

Hypothesis builds each random tree twice at once: as expression TEXT (what
``sd.derive`` reads) and as an independent Python closure over ``jax.numpy``
(what ``jax.jacfwd`` / ``jax.hessian`` differentiate). Gradients and Hessians
are cross-checked in float64 at random points; points where any value is not
finite are assumed away.

To keep JAX compiles few, each hypothesis example carries ``EXPRESSIONS_PER_EXAMPLE``
trees, derived together as one vector-valued expression (one Jacobian compile,
one Hessian compile per example).

Case-count knob: ``SYMDIFF_PROPERTY_CASES`` is the number of random expressions
to check (default 1000: gradients and Hessians of 1000, orders 3-4 and vjp of 250). A deep run sets it to 100000::

    SYMDIFF_PROPERTY_CASES=100000 python -m pytest tests/test_properties.py
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import symdiff as sd

CASES = int(os.environ.get("SYMDIFF_PROPERTY_CASES", "1000"))
EXPRESSIONS_PER_EXAMPLE = int(os.environ.get("SYMDIFF_PROPERTY_BATCH", "25"))
EXAMPLES = max(1, math.ceil(CASES / EXPRESSIONS_PER_EXAMPLE))
VARS = ("x", "y", "z")
N_POINTS = 4

CHECKED = {"expressions": 0, "examples": 0}
SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=os.environ.get("SYMDIFF_PROPERTY_RANDOM", "") == "",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# A node is (text, fn) where fn maps {name: array} -> array. Text is fully parenthesised
# where precedence matters; the function is written with jnp independently of symdiff.

UNARY = [
    ("sin({})", jnp.sin),
    ("cos({})", jnp.cos),
    ("tanh({})", jnp.tanh),
    ("atan({})", jnp.arctan),
    ("asinh({})", jnp.arcsinh),
    ("erf({})", jsp.erf),
    ("sigmoid({})", jax.nn.sigmoid),
    ("softplus({})", jax.nn.softplus),
    ("exp({})", jnp.exp),
    ("-({})", lambda u: -u),
    ("({})**2", lambda u: u**2),
    ("({})^3", lambda u: u**3),
    ("log(1 + ({})**2)", lambda u: jnp.log(1 + u**2)),
    ("sqrt(2 + ({})**2)", lambda u: jnp.sqrt(2 + u**2)),
    ("cosh({})", jnp.cosh),
    ("loggamma(1.5 + ({})**2)", lambda u: jsp.gammaln(1.5 + u**2)),
    ("erfc({})", jsp.erfc),
    ("1/(1 + ({})**2)", lambda u: 1 / (1 + u**2)),
]

BINARY = [
    ("({}) + ({})", lambda a, b: a + b),
    ("({}) - ({})", lambda a, b: a - b),
    ("({}) * ({})", lambda a, b: a * b),
    ("({}) / (1 + ({})**2)", lambda a, b: a / (1 + b**2)),
    ("atan2({}, 1 + ({})**2)", lambda a, b: jnp.arctan2(a, 1 + b**2)),
    ("(1 + ({})**2)**({})", lambda a, b: (1 + a**2) ** b),
    ("log(1 + ({})**2, 2 + ({})**2)", lambda a, b: jnp.log(1 + a**2) / jnp.log(2 + b**2)),
    ("sin({}) * cos({})", lambda a, b: jnp.sin(a) * jnp.cos(b)),
]


def _var(name):
    return (name, lambda env: env[name])


def _const(value):
    text = repr(value)
    return (text, lambda env: jnp.asarray(value, dtype=jnp.float64))


def _unary(op, child):
    template, fn = op
    text, f = child
    return (template.format(text), lambda env: fn(f(env)))


def _binary(op, left, right):
    template, fn = op
    (ta, fa), (tb, fb) = left, right
    return (template.format(ta, tb), lambda env: fn(fa(env), fb(env)))


leaves = st.one_of(
    st.sampled_from(VARS).map(_var),
    st.sampled_from([1, 2, 3, 0.5, 1.5, 2.25]).map(_const),
)


def _extend(children):
    return st.one_of(
        st.tuples(st.sampled_from(UNARY), children).map(lambda t: _unary(*t)),
        st.tuples(st.sampled_from(BINARY), children, children).map(lambda t: _binary(*t)),
    )


trees = st.recursive(leaves, _extend, max_leaves=8)


def _references(fns, points):
    """jax.jacfwd and jax.hessian of the jnp closures, float64, vmapped over the points."""
    with jax.enable_x64(True):
        def f(v):
            env = {name: v[i] for i, name in enumerate(VARS)}
            return jnp.stack([jnp.broadcast_to(jnp.asarray(fn(env), jnp.float64), ()) for fn in fns])

        v = jnp.asarray(np.stack(points, axis=-1), dtype=jnp.float64)
        values = np.asarray(jax.vmap(f)(v))
        jac = np.asarray(jax.vmap(jax.jacfwd(f))(v))
        hess = np.asarray(jax.vmap(jax.hessian(f))(v))
    return values, jac, hess


def _close(got, want):
    scale = np.maximum(1.0, np.abs(want))
    return np.all(np.abs(got - want) <= 1e-7 * scale)


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(
    exprs=st.lists(trees, min_size=EXPRESSIONS_PER_EXAMPLE, max_size=EXPRESSIONS_PER_EXAMPLE),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_expressions_gradient_and_hessian_match_jax(exprs, seed):
    texts = [t for t, _ in exprs]
    fns = [f for _, f in exprs]
    rng = np.random.default_rng(seed)
    points = [rng.uniform(-2.0, 2.0, N_POINTS) for _ in VARS]

    values, jac_ref, hess_ref = _references(fns, points)
    assume(np.all(np.isfinite(values)) and np.all(np.isfinite(jac_ref)) and np.all(np.isfinite(hess_ref)))
    assume(np.max(np.abs(hess_ref)) < 1e8)

    d1 = sd.derive(texts, wrt=VARS)
    jac = np.asarray(d1.array(*points), dtype=np.float64)  # (N, outputs, wrt)
    assert jac.shape == (N_POINTS, len(texts), len(VARS))
    d2 = sd.derive(texts, wrt=VARS, order=2)
    hess = np.asarray(d2.array(*points), dtype=np.float64)  # (N, outputs, wrt, wrt)
    assert hess.shape == (N_POINTS, len(texts), len(VARS), len(VARS))

    for k, text in enumerate(texts):
        assert _close(jac[:, k], jac_ref[:, k]), (
            f"gradient of {text!r} at {[p.tolist() for p in points]}: symdiff {jac[:, k]} vs jax {jac_ref[:, k]}"
        )
        assert _close(hess[:, k], hess_ref[:, k]), (
            f"Hessian of {text!r} at {[p.tolist() for p in points]}: symdiff {hess[:, k]} vs jax {hess_ref[:, k]}"
        )
    CHECKED["examples"] += 1
    CHECKED["expressions"] += len(texts)


def _kth_reference(fns, points, order):
    """Nested jax.grad in x (order times), the other variables fixed, vmapped; float64."""
    with jax.enable_x64(True):
        out = []
        for fn in fns:
            g = lambda x, y, z, fn=fn: jnp.asarray(fn({"x": x, "y": y, "z": z}), jnp.float64)  # noqa: E731
            for _ in range(order):
                g = jax.grad(g, argnums=0)
            out.append(np.asarray(jax.vmap(g)(*(jnp.asarray(p, jnp.float64) for p in points))))
    return np.stack(out, axis=-1)


def _vjp_reference(fns, points, cotangents):
    with jax.enable_x64(True):
        def f(x, y, z):
            env = {"x": x, "y": y, "z": z}
            return tuple(jnp.broadcast_to(jnp.asarray(fn(env), jnp.float64), x.shape) for fn in fns)

        _, pullback = jax.vjp(f, *(jnp.asarray(p, jnp.float64) for p in points))
        return [np.asarray(g) for g in pullback(tuple(jnp.asarray(c, jnp.float64) for c in cotangents))]


@settings(max_examples=max(1, EXAMPLES // 4), **SETTINGS)
@given(
    exprs=st.lists(trees, min_size=EXPRESSIONS_PER_EXAMPLE, max_size=EXPRESSIONS_PER_EXAMPLE),
    seed=st.integers(0, 2**32 - 1),
    order=st.sampled_from([3, 4]),
)
def test_random_expressions_kth_order_and_vjp_match_jax(exprs, seed, order):
    texts = [t for t, _ in exprs]
    fns = [f for _, f in exprs]
    rng = np.random.default_rng(seed)
    points = [rng.uniform(-2.0, 2.0, N_POINTS) for _ in VARS]
    ref = _kth_reference(fns, points, order)
    assume(np.all(np.isfinite(ref)) and np.max(np.abs(ref)) < 1e8)

    dk = sd.derive(texts, wrt="x", order=order)
    inputs = {s.name: points[VARS.index(s.name)] for s in dk.args}  # only the symbols that occur, and x
    got = np.asarray(dk.array(**inputs), dtype=np.float64)  # (N, outputs): a single wrt adds no axes
    assert got.shape == (N_POINTS, len(texts))
    for k, text in enumerate(texts):
        assert _close(got[:, k], ref[:, k]), f"d^{order}/dx^{order} of {text!r}: {got[:, k]} vs jax {ref[:, k]}"

    cotangents = [rng.normal(size=N_POINTS) for _ in texts]
    want = _vjp_reference(fns, points, cotangents)
    assume(all(np.all(np.isfinite(w)) for w in want))
    gx, gy, gz = sd.derive(texts, wrt=VARS).vjp(cotangents, *points)
    for g, w, name in zip((gx, gy, gz), want, VARS):
        assert _close(np.asarray(g, dtype=np.float64), w), f"vjp wrt {name} of {texts}: {g} vs {w}"
    CHECKED["kth_vjp"] = CHECKED.get("kth_vjp", 0) + len(texts)


def test_property_case_count_is_reported():
    """Runs after the property test (file order): how many random expressions were cross-checked."""
    n = CHECKED["expressions"]
    print(f"\nproperty tests cross-checked {n} random expressions "
          f"(+{CHECKED.get('kth_vjp', 0)} at order 3/4 and through vjp) "
          f"({CHECKED['examples']} examples x {EXPRESSIONS_PER_EXAMPLE}); SYMDIFF_PROPERTY_CASES={CASES}")
    if n == 0:
        pytest.skip("the property test did not run first (selected alone?)")
    assert n >= CASES // 2, f"only {n} of {CASES} requested random expressions were checked (too many assumed away)"


def test_texts_render_to_the_same_function():
    """The renderer itself: a fixed tree's text and closure agree at a point (guards the generator)."""
    tree = _binary(BINARY[3], _unary(UNARY[0], _var("x")), _binary(BINARY[2], _var("y"), _const(1.5)))
    text, fn = tree
    assert text == "(sin(x)) / (1 + ((y) * (1.5))**2)"
    d = sd.derive(text, wrt=VARS)
    with jax.enable_x64(True):
        ref = jax.grad(lambda v: fn({"x": v[0], "y": v[1], "z": v[2]}))(jnp.array([0.3, -0.7, 0.1]))
    got = d(np.array([0.3]), np.array([-0.7]), np.array([0.1]))
    np.testing.assert_allclose([float(g[0]) for g in got], np.asarray(ref), rtol=1e-12)
