"""(2) k-th derivatives of one-variable functions on many points.

symdiff ``derive(f, "x", order=k)`` against nested ``jax.grad`` under
``jax.vmap`` and against ``jax.experimental.jet`` (Taylor mode; its k-th output
series term is the k-th derivative for the input series ``(1, 0, ..., 0)``).
float64 throughout so that 10th derivatives can be compared tightly.
"""

# ruff: noqa: B023 - the timed lambdas close over loop variables on purpose: each is called in its iteration

from __future__ import annotations

import time

import numpy as np

from ._common import Section, check_close, fmt_ratio, fmt_s, interleaved_medians, jit_costs

FUNCTIONS = {
    "tanh(x)": ("x", lambda jnp: (lambda x: jnp.tanh(x))),
    "sin(x)*exp(-x**2/2)": ("x", lambda jnp: (lambda x: jnp.sin(x) * jnp.exp(-x ** 2 / 2))),
    "0.3*sin(t)*t**10": ("t", lambda jnp: (lambda t: 0.3 * jnp.sin(t) * t ** 10)),
}

# The transcendental functions every k-th derivative (and jet's Taylor series) must evaluate, and nothing
# else: no method can run faster than this, so jet / floor bounds symdiff's possible speed-up over jet.
FLOORS = {
    "tanh(x)": lambda jnp: (lambda x: jnp.tanh(x)),
    "sin(x)*exp(-x**2/2)": lambda jnp: (lambda x: jnp.sin(x) + jnp.cos(x) + jnp.exp(-x ** 2 / 2)),
    "0.3*sin(t)*t**10": lambda jnp: (lambda t: jnp.sin(t) + jnp.cos(t)),
}


def run(quick: bool = False, n: int | None = None, orders=None, functions=None, repeat: int | None = None) -> Section:
    import jax
    import jax.numpy as jnp

    import symdiff as sd

    try:
        from jax.experimental import jet
    except ImportError:
        jet = None
    n = n or (10**5 if quick else 10**6)
    orders = orders or ([1, 2, 5, 10] if quick else list(range(1, 11)))
    functions = functions or list(FUNCTIONS)
    rep = repeat or (5 if quick else 7)
    sec = Section(
        f"2. k-th derivatives on {n:.0e} points (float64)",
        intro=("`sd` run: the public call `d(x)`; `sd jit`: `d.function` inside `jax.jit`. `grad`: "
               "`jax.jit(jax.vmap(grad(grad(...f))))`; `jet`: `jax.jit` of `jax.experimental.jet.jet` with input "
               "series (1, 0, ..., 0). `symbolic`: cold `sd.derive` (caches cleared). `compile`: trace + XLA "
               "compile (jax AOT `lower` + `compile`). Run times: medians of rounds timing all contenders in turn; a "
               "contender slower than 15 s per round of repeats gets fewer repeats (at least one). Ratios are symdiff / peer (< 1: symdiff faster). "
               "`floor`: the transcendental functions the derivative needs and nothing else (`tanh`; `sin`, `cos`, "
               "`exp`; `sin`, `cos`), which every method must evaluate: `jet/floor` is the most any method can "
               "gain over jet."),
        columns=["function", "k", "sd run", "sd jit", "grad run", "jet run", "floor", "sd/grad", "sd/jet",
                 "jet/floor", "sd symbolic", "sd compile", "grad compile", "jet compile", "sd compile/grad compile"],
    )
    x = np.linspace(-2.0, 2.0, n)
    jx = jnp.asarray(x, dtype=jnp.float64)
    assert jx.dtype == np.float64, "x64 is not enabled"
    at10 = {}
    for text in functions:
        var, make = FUNCTIONS[text]
        f = make(jnp)
        floor = jax.jit(FLOORS[text](jnp))
        jax.block_until_ready(floor(jx))
        for k in orders:
            sd.clear_caches()
            t0 = time.perf_counter()
            d = sd.derive(text, var, order=k, dtype="float64")
            t_sym = time.perf_counter() - t0
            tr, co, sdj = jit_costs(jax.jit(d.function), jx)
            t_sd_compile = tr + co
            g = f
            for _ in range(k):
                g = jax.grad(g)
            tr, co, gj = jit_costs(jax.jit(jax.vmap(g)), jx)
            t_grad_compile = tr + co
            ref = gj(jx)
            name = f"d^{k}/d{var}^{k} {text}"
            ours = d(jx)
            if ours.dtype != np.float64:
                raise AssertionError(f"{name}: symdiff returned {ours.dtype}")
            rtol = 1e-9 * (3 ** k)
            check_close(name + " (sd)", ours, ref, rtol)
            check_close(name + " (sd jit)", sdj(jx), ref, rtol)
            contenders = {"sd": lambda: d(jx), "sdjit": lambda: sdj(jx), "grad": lambda: gj(jx),
                          "floor": lambda: floor(jx)}
            t_jet = t_jet_compile = None
            jet_note = "missing"
            if jet is not None:
                def taylor(x, f=f, k=k):
                    series = (jnp.ones_like(x),) + tuple(jnp.zeros_like(x) for _ in range(k - 1))
                    _, out = jet.jet(f, (x,), (series,))
                    return out[k - 1]

                try:
                    tr, co, tj = jit_costs(jax.jit(taylor), jx)
                    t_jet_compile = tr + co
                    check_close(name + " (jet)", tj(jx), ref, rtol)
                    contenders["jet"] = lambda: tj(jx)
                except NotImplementedError as exc:  # a primitive without a jet rule
                    jet_note = f"unsupported ({str(exc)[:40]})"
            med = interleaved_medians(contenders, rep, warmup=0, max_seconds=15.0)  # all ran in the checks
            t_sd, t_sdjit, t_grad, t_jet = med["sd"], med["sdjit"], med["grad"], med.get("jet")
            t_floor = med["floor"]
            sec.add(f"`{text}`", k, fmt_s(t_sd), fmt_s(t_sdjit), fmt_s(t_grad),
                    fmt_s(t_jet) if t_jet else jet_note, fmt_s(t_floor), fmt_ratio(t_sd, t_grad),
                    fmt_ratio(t_sd, t_jet) if t_jet else "n/a", fmt_ratio(t_jet, t_floor) if t_jet else "n/a",
                    fmt_s(t_sym), fmt_s(t_sd_compile),
                    fmt_s(t_grad_compile), fmt_s(t_jet_compile) if t_jet_compile else "n/a",
                    fmt_ratio(t_sd_compile, t_grad_compile))
            if k == max(orders):
                at10[text] = dict(sd=t_sd, sdjit=t_sdjit, grad=t_grad, jet=t_jet, sym=t_sym, sdc=t_sd_compile,
                                  gradc=t_grad_compile, jetc=t_jet_compile, floor=t_floor)
    kmax = max(orders)
    for text, r in at10.items():
        jet_speed = (f"{r['jet'] / r['sd']:.1f}x faster than jet (target >= 3x; the transcendental floor allows at "
                     f"most {r['jet'] / r['floor']:.1f}x)") if r["jet"] else "n/a (jet missing)"
        sec.notes.append(
            f"`{text}`, k = {kmax}: symdiff run {r['grad'] / r['sd']:.1f}x faster than nested grad (target >= 10x; "
            f"the floor allows at most {r['grad'] / r['floor']:.1f}x), "
            f"{jet_speed}; trace+compile {r['gradc'] / r['sdc']:.1f}x faster than "
            f"nested grad (target >= 20x); symbolic stage {fmt_s(r['sym'])} (target < 1 s).")
    sec.summary["at_kmax"] = at10
    sec.summary["kmax"] = kmax
    return sec
