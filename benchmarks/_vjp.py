"""(1) Elementwise VJP, PyTorch's ``y.backward(gradient=v)``, and memory bandwidth.

Contenders, per expression, size and dtype, in one process on the same inputs:

* ``symdiff d.vjp(v, a, b)``: the public call (input validation and dispatch included);
* ``symdiff jit(d.function)``: the same closed form inside the caller's ``jax.jit``;
* ``jax.jit(jax.vjp)``: the pullback of the expression written in ``jax.numpy``;
* PyTorch eager autograd: forward + ``y.backward(v)`` on leaf tensors;
* SymPy ``lambdify`` (numpy module, ``cse=True``) of ``v * dy/da``, ``v * dy/db``.

Every result is checked against ``jax.vjp`` before it is timed.
"""

# ruff: noqa: B023 - the timed lambdas close over loop variables on purpose: each is called in its iteration

from __future__ import annotations

import time

import numpy as np

from ._common import Section, check_close, fmt_ratio, fmt_s, interleaved_medians, jit_costs, median_time

EXPRESSIONS = [
    "3*a**3 - b**2",
    "sin(a)*exp(-b**2)",
    "log(1+exp(a*b))",
    "a/(1+b**2)",
    "tanh(a)*b + a**2*sqrt(b**2+1)",
    "exp(-(a-b)**2/2)*cos(3*a)",
]


def _jax_fn(text: str):
    import jax.numpy as jnp

    ns = {"sin": jnp.sin, "cos": jnp.cos, "exp": jnp.exp, "log": jnp.log, "tanh": jnp.tanh, "sqrt": jnp.sqrt}
    return eval(f"lambda a, b: {text}", ns)  # our own fixed benchmark texts


def _torch_fn(text: str):
    import torch

    ns = {"sin": torch.sin, "cos": torch.cos, "exp": torch.exp, "log": torch.log, "tanh": torch.tanh,
          "sqrt": torch.sqrt}
    return eval(f"lambda a, b: {text}", ns)


def bandwidth(n: int, dtype, repeat: int) -> dict[str, float]:
    """STREAM-style copy and triad bandwidth (bytes/s) with numpy and with jax.jit on this machine."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    a = rng.random(n).astype(dtype)
    b = rng.random(n).astype(dtype)
    out = np.empty_like(a)
    item = np.dtype(dtype).itemsize
    t_copy = median_time(lambda: np.copyto(out, a), repeat)
    t_add = median_time(lambda: np.add(a, b, out=out), repeat)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    jcopy = jax.jit(lambda x: x + 0)  # a pure copy XLA cannot elide (a new buffer)
    jtriad = jax.jit(lambda x, y: x + 3 * y)
    t_jcopy = median_time(lambda: jcopy(ja), repeat)
    t_jtriad = median_time(lambda: jtriad(ja, jb), repeat)
    return {
        "numpy copy": 2 * n * item / t_copy,
        "numpy add": 3 * n * item / t_add,
        "jax copy": 2 * n * item / t_jcopy,
        "jax triad": 3 * n * item / t_jtriad,
    }


def run(quick: bool = False, sizes=None, dtypes=None, expressions=None, repeat=None) -> Section:
    import jax
    import jax.numpy as jnp
    import sympy

    import symdiff as sd

    try:
        import torch

        torch_threads = torch.get_num_threads()
    except ImportError:
        torch = None
    torch_best_threads: dict[int, int] = {}
    sizes = sizes or ([10**5, 10**6] if quick else [10**6, 10**7])
    dtypes = dtypes or ["float32", "float64"]
    expressions = expressions or EXPRESSIONS
    sec = Section(
        "1. Elementwise VJP: `y.backward(gradient=v)`",
        intro=("Gradient of `sum(v * f(a, b))` with respect to `a` and `b`, all three arrays of n elements, "
               "uniform in [-2, 2] (b in [0.5, 2] is not needed: every expression is defined on [-2, 2]). "
               "Times are medians of rounds in which the JAX, symdiff and SymPy contenders run in turn (torch is "
               "timed after them); compile/trace time is reported apart (first table's last columns). "
               "Ratio = symdiff time / peer time (< 1: symdiff faster). `sd.vjp` is the public "
               "`d.vjp(v, a, b)` call; `sd jit` is `d.function` inside the caller's `jax.jit`."),
        columns=["expression", "n", "dtype", "sd.vjp", "sd jit", "jax.jit(jax.vjp)", "torch eager", "sympy lambdify",
                 "sd.vjp/jax", "sd jit/jax", "sd.vjp/torch", "sd.vjp/sympy", "sd GB/s", "sd derive", "sd compile",
                 "jax trace+compile"],
    )
    ratios_public, ratios_jit = [], []
    bw_fraction = []
    rng = np.random.default_rng(0)
    a_sym, b_sym = sympy.symbols("a b", real=True)
    for n in sizes:
        for dtype in dtypes:
            np_dtype = np.dtype(dtype)
            rep = repeat or (5 if n >= 10**7 else 9)
            a = rng.uniform(-2, 2, n).astype(np_dtype)
            b = rng.uniform(-2, 2, n).astype(np_dtype)
            v = rng.uniform(-1, 1, n).astype(np_dtype)
            ja, jb, jv = jnp.asarray(a), jnp.asarray(b), jnp.asarray(v)
            assert ja.dtype == np_dtype, f"jax is not computing in {dtype} (x64 disabled?)"
            rtol = 2e-4 if dtype == "float32" else 1e-10
            bw = bandwidth(n, np_dtype, rep)
            best_bw = max(bw.values())
            sec.summary.setdefault("bandwidth", {})[(n, dtype)] = bw
            for text in expressions:
                # ---- symdiff: symbolic stage, compile, run
                sd.clear_caches()
                t0 = time.perf_counter()
                d = sd.derive(text, ["a", "b"], dtype=dtype)
                t_derive = time.perf_counter() - t0
                got = d.vjp(jv, ja, jb)

                fn = d.function

                def sd_vjp_fn(v, a, b, fn=fn):
                    ga, gb = fn(a, b)
                    return v * ga, v * gb

                tr_sd, co_sd, sd_jit = jit_costs(jax.jit(sd_vjp_fn), jv, ja, jb)
                sd_compile = tr_sd + co_sd  # trace + XLA compile of the closed form
                # ---- jax.jit(jax.vjp)
                f = _jax_fn(text)

                def jax_vjp(v, a, b, f=f):
                    _, pull = jax.vjp(f, a, b)
                    return pull(v)

                tr, co, jj = jit_costs(jax.jit(jax_vjp), jv, ja, jb)
                ref = jj(jv, ja, jb)
                # ---- check before timing
                name = f"VJP {text} n={n} {dtype}"
                for r in list(got) + list(sd_jit(jv, ja, jb)):
                    if r.dtype != np_dtype:
                        raise AssertionError(f"{name}: symdiff returned {r.dtype}, expected {dtype}")
                check_close(name + " (sd.vjp)", list(got), list(ref), rtol)
                check_close(name + " (sd jit)", list(sd_jit(jv, ja, jb)), list(ref), rtol)
                contenders = {"sd": lambda: d.vjp(jv, ja, jb), "sdjit": lambda: sd_jit(jv, ja, jb),
                              "jax": lambda: jj(jv, ja, jb)}
                # ---- torch eager
                t_torch = None
                if torch is not None:
                    tf = _torch_fn(text)
                    ta = torch.from_numpy(a.copy()).requires_grad_(True)
                    tb = torch.from_numpy(b.copy()).requires_grad_(True)
                    tv = torch.from_numpy(v.copy())

                    def torch_step(tf=tf, ta=ta, tb=tb, tv=tv):
                        ta.grad = None
                        tb.grad = None
                        tf(ta, tb).backward(tv)
                        return ta.grad, tb.grad

                    check_close(name + " (torch)", list(torch_step()), list(ref), rtol)
                    # PyTorch's intra-op threads spin against XLA's and other jobs on a small shared
                    # machine: time it with its default thread count and with one thread, keep the faster
                    t_torch, winner = None, None
                    for threads in sorted({torch_threads, 1}, reverse=True):
                        torch.set_num_threads(threads)
                        t = median_time(torch_step, rep)
                        if t_torch is None or t < t_torch:
                            t_torch, winner = t, threads
                    torch_best_threads[winner] = torch_best_threads.get(winner, 0) + 1
                    torch.set_num_threads(torch_threads)
                # ---- sympy lambdify (numpy)
                e = sd.parse(text) if hasattr(sd, "parse") else sympy.sympify(text)
                e = e.subs({s: (a_sym if s.name == "a" else b_sym) for s in e.free_symbols})
                v_sym = sympy.Symbol("v", real=True)
                lam = sympy.lambdify((v_sym, a_sym, b_sym), [v_sym * e.diff(a_sym), v_sym * e.diff(b_sym)],
                                     modules="numpy", cse=True)
                check_close(name + " (sympy)", lam(v, a, b), list(ref), rtol)
                contenders["sympy"] = lambda: lam(v, a, b)
                med = interleaved_medians(contenders, rep)
                t_sd, t_sdjit, t_jax, t_sympy = med["sd"], med["sdjit"], med["jax"], med["sympy"]
                # ---- bandwidth: read a, b, v; write two gradients
                moved = 5 * n * np_dtype.itemsize
                sd_bw = moved / t_sd
                bw_fraction.append(sd_bw / best_bw)
                ratios_public.append(t_sd / t_jax)
                ratios_jit.append(t_sdjit / t_jax)
                sec.add(f"`{text}`", f"{n:.0e}", dtype, fmt_s(t_sd), fmt_s(t_sdjit), fmt_s(t_jax),
                        fmt_s(t_torch) if torch else "missing", fmt_s(t_sympy),
                        fmt_ratio(t_sd, t_jax), fmt_ratio(t_sdjit, t_jax),
                        fmt_ratio(t_sd, t_torch) if torch else "missing", fmt_ratio(t_sd, t_sympy),
                        f"{sd_bw / 1e9:.1f} ({100 * sd_bw / best_bw:.0f} %)", fmt_s(t_derive), fmt_s(sd_compile),
                        fmt_s(tr + co))
    bw_rows = []
    for (n, dtype), bw in sec.summary.get("bandwidth", {}).items():
        bw_rows.append([f"{n:.0e}", dtype] + [f"{bw[k] / 1e9:.1f}" for k in ("numpy copy", "numpy add", "jax copy", "jax triad")])
    sec.extra_tables.append((
        "Memory bandwidth of this machine, GB/s (STREAM convention: copy moves 2 arrays, add and triad 3; "
        "symdiff's VJP moves 5: reads a, b, v and writes two gradients):",
        ["n", "dtype", "numpy copy", "numpy add", "jax copy", "jax triad"], bw_rows))
    med_pub = float(np.median(ratios_public)) if ratios_public else float("nan")
    med_jit = float(np.median(ratios_jit)) if ratios_jit else float("nan")
    sec.summary.update({
        "median sd.vjp/jax": med_pub, "max sd.vjp/jax": max(ratios_public, default=float("nan")),
        "median sd jit/jax": med_jit, "max sd jit/jax": max(ratios_jit, default=float("nan")),
        "median bandwidth fraction": float(np.median(bw_fraction)) if bw_fraction else float("nan"),
    })
    sec.notes.append(
        f"Median ratio sd.vjp / jax.jit(jax.vjp): {med_pub:.2f} (max {sec.summary['max sd.vjp/jax']:.2f}); "
        f"with `d.function` inside `jax.jit`: {med_jit:.2f} (max {sec.summary['max sd jit/jax']:.2f}). "
        f"Target: median <= 0.9, no case above 1.1.")
    sec.notes.append(
        f"Median effective bandwidth of `d.vjp`: {100 * sec.summary['median bandwidth fraction']:.0f} % of the "
        "best measured copy/add/triad bandwidth (target >= 70 %).")
    if torch is not None:
        sec.notes.append("torch eager: the faster of its default thread count and one thread per case (the "
                         "number of cases each thread count won: "
                         + ", ".join(f"{k} thread(s): {v}" for k, v in sorted(torch_best_threads.items()))
                         + "); "
                         "with 2 threads on this shared 2-core machine its worker threads contend with other jobs.")
    sec.notes.append("`sd derive` is a cold `sd.derive` (caches cleared: parse, differentiate, simplify, lower); "
                     "`sd compile` is trace + XLA compile of the closed form inside `jax.jit`.")
    return sec
