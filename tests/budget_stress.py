"""Stress program for simplification budgets under threads (run as a script, in a fresh process).

Issue 10's reproduction: threads call ``sd.derive`` at once with random
expressions and random budgets, from a cold process. Every gradient is checked
against ``jax.grad`` of the same expression written independently in
``jax.numpy`` (float64). The program prints one JSON line with its counts and
exits 0 only when every result was right and no call raised; a deadlock is
caught by the caller's timeout.

Usage: python tests/budget_stress.py SCENARIO THREADS PER_THREAD SEED
  SCENARIO: random (the reproduction), same-key (every thread derives the same
  expression with tiny budgets), clear (derives while another thread keeps
  calling ``sd.clear_caches()``).
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading

BUDGETS = [0.0005, 0.002, 0.01, 0.05, 0.1, 0.3, False, True]
POINT = (0.3, -0.7, 1.1)


def random_expression(rng: random.Random, depth: int = 4):
    """A random expression as (text, jnp function of x, y, z)."""
    import jax.numpy as jnp

    if depth == 0 or rng.random() < 0.15:
        leaf = rng.choice(["x", "y", "z", "x", "y", "z", "c"])
        if leaf == "c":
            c = rng.choice([0.5, 1.5, 2.0, 3.0])
            return repr(c), lambda x, y, z, c=c: c
        index = "xyz".index(leaf)
        return leaf, lambda *v, i=index: v[i]
    if rng.random() < 0.5:
        text, f = random_expression(rng, depth - 1)
        kind = rng.choice(["sin", "cos", "exp", "tanh", "log1p2", "sqrt1p2", "atan"])
        if kind == "log1p2":
            return f"log(1 + ({text})**2)", lambda *v: jnp.log(1 + f(*v) ** 2)
        if kind == "sqrt1p2":
            return f"sqrt(1 + ({text})**2)", lambda *v: jnp.sqrt(1 + f(*v) ** 2)
        if kind == "exp":  # bounded argument: the point is concurrency, not overflow
            return f"exp(tanh({text}))", lambda *v: jnp.exp(jnp.tanh(f(*v)))
        fn = {"sin": jnp.sin, "cos": jnp.cos, "tanh": jnp.tanh, "atan": jnp.arctan}[kind]
        return f"{kind}({text})", lambda *v: fn(f(*v))
    (ta, fa), (tb, fb) = random_expression(rng, depth - 1), random_expression(rng, depth - 1)
    op = rng.choice(["+", "-", "*"])
    combine = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}[op]
    return f"({ta}) {op} ({tb})", lambda *v: combine(fa(*v), fb(*v))


def _reference(f):
    import jax
    import numpy as np

    with jax.enable_x64(True):
        x = [jax.numpy.asarray(v, dtype=jax.numpy.float64) for v in POINT]
        return [float(np.asarray(g)) for g in jax.grad(lambda a, b, c: f(a, b, c) + 0 * (a + b + c), (0, 1, 2))(*x)]


def _close(got, want) -> bool:
    return all(math.isclose(g, w, rel_tol=1e-7, abs_tol=1e-9) for g, w in zip(got, want))


def main() -> int:
    import numpy as np

    import symdiff as sd

    scenario, threads, per_thread, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    point = [np.float64(v) for v in POINT]
    lock = threading.Lock()
    counts = {"derives": 0, "wrong": [], "errors": []}
    stop = threading.Event()

    def record(text, budget, got, want):
        with lock:
            counts["derives"] += 1
            if not _close(got, want):
                counts["wrong"].append((text[:200], budget, got, want))

    def derive_and_check(text, f, budget):
        try:
            d = sd.derive(text, wrt=("x", "y", "z"), simplify=budget, dtype="float64")
            got = [float(np.asarray(g)) for g in d(**dict(zip("xyz", point)))]
            record(text, budget, got, _reference(f))
        except BaseException as exc:  # noqa: BLE001 - every unexpected exception is a failure
            with lock:
                counts["errors"].append(f"{type(exc).__name__}: {exc}"[:300])

    def random_worker(k):
        rng = random.Random(seed * 1000 + k)
        for _ in range(per_thread):
            text, f = random_expression(rng)
            derive_and_check(text, f, rng.choice(BUDGETS))

    shared_text, shared_f = random_expression(random.Random(seed))

    def same_key_worker(k):
        rng = random.Random(seed * 1000 + k)
        for _ in range(per_thread):
            derive_and_check(shared_text, shared_f, rng.choice([0.0005, 0.002, 0.01]))
            if rng.random() < 0.3:
                sd.clear_caches()

    def clearer():
        while not stop.is_set():
            sd.clear_caches()
            stop.wait(0.005)

    target = {"random": random_worker, "same-key": same_key_worker, "clear": random_worker}[scenario]
    workers = [threading.Thread(target=target, args=(k,)) for k in range(threads)]
    extra = [threading.Thread(target=clearer)] if scenario == "clear" else []
    for t in workers + extra:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in extra:
        t.join()
    print(json.dumps({"scenario": scenario, "derives": counts["derives"], "wrong": counts["wrong"][:5],
                      "errors": counts["errors"][:5], "n_wrong": len(counts["wrong"]),
                      "n_errors": len(counts["errors"])}))
    return 0 if not counts["wrong"] and not counts["errors"] and counts["derives"] == threads * per_thread else 1


if __name__ == "__main__":
    sys.exit(main())
