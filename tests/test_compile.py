"""Caching: symbolic work once per key, one trace per shape, bounded caches, threads."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff import _cache, _compile


def _delta(before, after, key):
    return after[key] - before[key]


def test_second_derive_reruns_no_sympy_and_no_trace():
    expr = "3*q**3 - r**2 + sin(q*r)"  # unique to this test
    d1 = sd.derive(expr)
    d1(q=[2.0, 3.0], r=[6.0, 4.0])
    before = sd.cache_stats()
    d2 = sd.derive(expr)
    out = d2(q=[1.0, 5.0], r=[2.0, 7.0])  # same shapes and dtype, new values
    after = sd.cache_stats()
    assert _delta(before, after, "symbolic") == 0
    assert _delta(before, after, "parses") == 0
    assert _delta(before, after, "traces") == 0
    assert np.isfinite(np.asarray(out[0])).all()


def test_new_shape_traces_once_more_but_no_sympy():
    d = sd.derive("u**2*v")
    d(np.ones(2), np.ones(2))
    before = sd.cache_stats()
    d(np.ones(5), np.ones(5))
    d(np.ones(5), np.ones(5))
    after = sd.cache_stats()
    assert _delta(before, after, "symbolic") == 0
    assert _delta(before, after, "traces") == 1


def test_clear_caches_forces_symbolic_work_again():
    sd.derive("p**7 + p")
    sd.clear_caches()
    before = sd.cache_stats()
    sd.derive("p**7 + p")
    assert _delta(before, sd.cache_stats(), "symbolic") == 1


def test_lru_cache_is_bounded():
    cache = _cache.LRUCache("test", maxsize=3)
    for i in range(10):
        cache.get_or_create(i, lambda i=i: i * i)
    assert len(cache) == 3
    assert cache.get_or_create(9, lambda: -1) == 81  # most recent kept
    assert cache.get_or_create(0, lambda: -1) == -1  # oldest evicted
    assert _compile.PROGRAM_CACHE_SIZE == 256


def _run_in_threads(work, n=8):
    """Run ``work(i)`` on n threads released together; re-raise the first failure."""
    errors, barrier = [], threading.Barrier(n)

    def target(i):
        try:
            barrier.wait()
            work(i)
        except Exception as exc:  # noqa: BLE001 - re-raised below on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_threads_share_one_symbolic_run_and_get_correct_results():
    sd.clear_caches()
    expr = "exp(m)*cos(n) + m**4"
    before = sd.cache_stats()
    results = [None] * 8

    def work(i):
        gm, gn = sd.derive(expr)(m=float(i), n=0.0)
        results[i] = float(gm)

    _run_in_threads(work)
    assert _delta(before, sd.cache_stats(), "symbolic") == 1
    for i, r in enumerate(results):
        assert r == pytest.approx(np.exp(i) + 4 * i**3, rel=1e-5)


def test_threads_mixing_float32_and_float64_keep_their_dtypes():
    d = sd.derive("sin(s)*t**2")

    def work(i):
        dtype = np.float64 if i % 2 else np.float32
        for _ in range(20):
            gs, gt = d(np.full(3, 0.5, dtype=dtype), np.full(3, 2.0, dtype=dtype))
            assert gs.dtype == dtype and gt.dtype == dtype
            np.testing.assert_allclose(np.asarray(gs), np.cos(0.5) * 4.0, rtol=1e-6)

    _run_in_threads(work)


def _pendulum_energy(n):
    th = sympy.symbols(f"th0:{n}", real=True)
    w = sympy.symbols(f"w0:{n}", real=True)
    energy = 0
    for i in range(n):
        vx = sum(sympy.cos(th[j]) * w[j] for j in range(i + 1))
        vy = sum(sympy.sin(th[j]) * w[j] for j in range(i + 1))
        energy += (vx**2 + vy**2) / 2 - sympy.Rational(981, 100) * sum(sympy.cos(th[j]) for j in range(i + 1))
    return energy, list(th) + list(w)


def test_outputs_sharing_their_work_compile_without_loop_fusion():
    """XLA would copy the shared sines and cosines into every gradient entry's loop."""
    energy, symbols = _pendulum_energy(14)
    d = sd.derive(energy, symbols, dtype="float64")
    assert d._program._compiler_options == {"xla_disable_hlo_passes": "fusion"}
    assert sd.derive("3*a**3 - b**2")._program._compiler_options is None

    rng = np.random.default_rng(0)
    xs = [rng.uniform(-1, 1, 7) for _ in d.args]
    f = sympy.lambdify(d.args, energy, modules="jax")
    with jax.enable_x64(True):
        want = jax.vmap(jax.grad(f, argnums=tuple(range(len(xs)))))(*map(jnp.asarray, xs))
    for got, w in zip(d(*xs), want):
        np.testing.assert_allclose(np.asarray(got), np.asarray(w), rtol=1e-12, atol=1e-12)
