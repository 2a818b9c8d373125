"""Rerolled sums: alike terms lowered once as a template, evaluated vectorised, checked against NumPy and JAX.

The oracles are written independently: NumPy sums over the term index, and
``jax.grad`` of a ``jax.numpy`` function. That the code is rerolled is read from
the generated source and the size of the traced program, never from timings.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff import _reroll

N = 2000
X = np.linspace(-1.0, 1.0, 6)
Y = np.linspace(0.1, 1.2, 6)


@pytest.fixture(scope="module")
def big():
    """d/d(x, y) of sum_i sin(i*x + y)*exp(-i*y**2/1000), i = 1..2000, not simplified."""
    x, y = sympy.symbols("x y", real=True)
    expr = sympy.Add(*[sympy.sin(i * x + y) * sympy.exp(-sympy.Rational(i, 1000) * y**2) for i in range(1, N + 1)])
    return sd.derive(expr, simplify=False, dtype="float64")


def _numpy_sum(x, y):
    i = np.arange(1, N + 1)[:, None]
    s, e = np.sin(i * x + y), np.exp(-i * y**2 / 1000)
    value = (s * e).sum(axis=0)
    gx = (i * np.cos(i * x + y) * e).sum(axis=0)
    gy = (np.cos(i * x + y) * e - 2 * i * y / 1000 * s * e).sum(axis=0)
    return value, gx, gy


def test_2000_term_sum_and_gradient_match_numpy(big):
    value, (gx, gy) = big.value_and_grad(x=X, y=Y)
    v_ref, gx_ref, gy_ref = _numpy_sum(X, Y)
    np.testing.assert_allclose(np.asarray(value), v_ref, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(np.asarray(gx), gx_ref, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(np.asarray(gy), gy_ref, rtol=1e-10, atol=1e-9)


def test_2000_term_program_is_rerolled(big):
    source = big.source
    assert source.count("_sum(") >= 3  # the value, d/dx and d/dy are each a rerolled template
    assert len(source) < 4000, len(source)  # unrolled: about 300,000 characters
    kernel = big._program.kernel
    with jax.enable_x64(True):
        jaxpr = jax.make_jaxpr(kernel.fn)(X, Y)
    n_ops = sum(1 for _ in jaxpr.jaxpr.eqns)
    assert n_ops < 400, n_ops  # unrolled: about 28,000 operations


def _rosenbrock(xs):
    return jnp.sum(100 * (xs[1:] - xs[:-1] ** 2) ** 2 + (1 - xs[:-1]) ** 2)


def test_renamed_symbols_are_gathered_value_and_gradient_match_jax():
    n = 40
    names = [f"r{i}" for i in range(n)]
    text = " + ".join(f"100*({names[i + 1]} - {names[i]}**2)**2 + (1 - {names[i]})**2" for i in range(n - 1))
    d = sd.derive(text, dtype="float64", simplify=False)
    assert "_sum(" in d.source  # the 78 terms of the value: two templates over renamed symbols
    rng = np.random.default_rng(0)
    points = rng.uniform(-1.5, 1.5, size=(n, 3))
    value, grads = d.value_and_grad(**dict(zip(names, points)))
    with jax.enable_x64(True):
        ref_v = jax.vmap(_rosenbrock, in_axes=1)(jnp.asarray(points))
        ref_g = jax.vmap(jax.grad(_rosenbrock), in_axes=1)(jnp.asarray(points))  # (3, n)
    np.testing.assert_allclose(np.asarray(value), np.asarray(ref_v), rtol=1e-12)
    for w, g in zip(d.wrt, grads):
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref_g)[:, names.index(str(w))], rtol=1e-12, atol=1e-9)


def test_sum_inside_a_function_and_chunked_evaluation_match_jax(monkeypatch):
    monkeypatch.setattr(_reroll, "CHUNK_ELEMENTS", 64)  # many points: the members are summed chunk by chunk
    a = [round(k / 7, 6) for k in range(1, 51)]
    b = [round(k / 10, 1) for k in range(1, 51)]
    terms = " + ".join(f"{ak}*(x - {bk})**2" for ak, bk in zip(a, b))
    d = sd.derive(f"log(1 + {terms}) * cos(z)", dtype="float64")
    assert "_sum(" in d.source

    def f(x, z):
        return jnp.log(1 + jnp.sum(jnp.asarray(a) * (x - jnp.asarray(b)) ** 2)) * jnp.cos(z)

    x = np.linspace(-2.0, 6.0, 37)
    z = np.linspace(0.0, 1.0, 37)
    gx, gz = d(x=x, z=z)
    with jax.enable_x64(True):
        rx, rz = jax.vmap(jax.grad(f, argnums=(0, 1)))(jnp.asarray(x), jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(gx), np.asarray(rx), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gz), np.asarray(rz), rtol=1e-11, atol=1e-12)


def test_small_and_unalike_sums_stay_unrolled():
    x, y = sympy.symbols("x y", real=True)
    small = sympy.Add(*[sympy.sin(i * x + y) for i in range(2, _reroll.MIN_TERMS)])

    def build(slots, template):
        raise AssertionError(f"no template expected, got {template}")

    assert _reroll.reroll([small], [x, y], build) == ([small], [])
    powers = sympy.Add(*[sympy.sin(x) ** k for k in range(1, 40)])  # exponents are structure: 39 shapes
    assert _reroll.reroll([powers], [x, y], build) == ([powers], [])


def test_kernel_operations_carry_one_source_location_not_the_generated_lines():
    d = sd.derive("sin(a)*exp(b) + a**3*cos(b)")
    kernel = d._program.kernel
    located = jax.jit(kernel.fn).lower(1.0, 2.0).as_text(debug_info=True)
    per_op = jax.jit(kernel.fn.__wrapped__).lower(1.0, 2.0).as_text(debug_info=True)
    assert "<symdiff derivative>" in per_op  # JAX's default: a location per generated line...
    assert "<symdiff derivative>" not in located  # ...symdiff's kernels: the caller's one location
    ga, gb = d(a=0.5, b=0.25)
    assert float(ga) == pytest.approx(np.cos(0.5) * np.exp(0.25) + 3 * 0.25 * np.cos(0.25), rel=1e-6)
