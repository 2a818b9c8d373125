"""(4) The symbolic stage: ``derive`` cold and cached, against SymPy diff + cse + lambdify.

Expressions: the seed ``3*a**3 - b**2`` and the total energy of an n-link
planar pendulum (unit masses and lengths) in the angles ``th_i`` and angular
velocities ``w_i``, whose gradient has 2n entries and grows from 10^2 to 10^4+
operations. A generated wide sum of ~10^5 operations and a 1000-level nested
expression check that nothing recurses too deeply.

"cold" = caches cleared (symdiff's and SymPy's), then the expression to a
computed gradient: symdiff ``derive`` + first call (SymPy work, lowering,
trace, XLA compile, run); the peer ``diff`` of every variable + ``lambdify``
(numpy, ``cse=True``) + first call. "cached" = ``derive`` of an expression
already derived (what a training loop pays per step).
"""

# ruff: noqa: B023 - the timed lambdas close over loop variables on purpose: each is called in its iteration

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from ._common import Section, check_close, fmt_ratio, fmt_s, median_time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def pendulum_energy(n: int):
    import sympy

    th = sympy.symbols(f"th0:{n}", real=True)
    w = sympy.symbols(f"w0:{n}", real=True)
    energy = sympy.Integer(0)
    for i in range(n):
        vx = sum(sympy.cos(th[j]) * w[j] for j in range(i + 1))
        vy = sum(sympy.sin(th[j]) * w[j] for j in range(i + 1))
        y = -sum(sympy.cos(th[j]) for j in range(i + 1))
        energy += (vx ** 2 + vy ** 2) / 2 + sympy.Float(9.81) * y
    return energy, list(th) + list(w)


def wide_text(terms: int) -> str:
    """A generated sum of ``terms`` terms, about 10 operations each."""
    return " + ".join(f"{(i % 7) + 1}*sin({i + 1}*x{i % 5} + x{(i + 1) % 5})*exp(-x{(i + 2) % 5}**2/{(i % 3) + 2})"
                      for i in range(terms))


def deep_text(depth: int) -> str:
    return "(" * depth + "x" + "".join(f" + {(i % 5) + 1})*y" for i in range(depth))


def _clear_all():
    import sympy.core.cache

    import symdiff as sd

    sd.clear_caches()
    sympy.core.cache.clear_cache()


def _sympy_peer(expr, symbols, inputs):
    import sympy

    t0 = time.perf_counter()
    grads = [sympy.diff(expr, s) for s in symbols]
    t_diff = time.perf_counter() - t0
    lam = sympy.lambdify(symbols, grads, modules="numpy", cse=True)
    out = lam(*inputs)
    return out, time.perf_counter() - t0, t_diff, lam


def _symdiff_cold(expr, symbols, inputs, simplify):
    import jax

    import symdiff as sd

    _clear_all()
    t0 = time.perf_counter()
    d = sd.derive(expr, list(symbols), simplify=simplify, dtype="float64")
    t_derive = time.perf_counter() - t0
    out = d(*inputs)
    jax.block_until_ready(out)
    return d, out, t_derive, time.perf_counter() - t0


def large_worker(kind: str, size: int, call: bool = True) -> dict:
    """One big expression, in a subprocess: derive it, (optionally) call and check it, report times or the error."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import symdiff as sd

    text = wide_text(size) if kind == "wide" else deep_text(size)
    out = {"kind": kind, "size": size, "chars": len(text)}
    t0 = time.perf_counter()
    try:
        expr = sd.parse(text)
        out["parse"] = time.perf_counter() - t0
        import sympy

        out["ops"] = int(sympy.count_ops(expr)) if kind == "wide" else None
        t0 = time.perf_counter()
        d = sd.derive(expr, dtype="float64")
        out["derive"] = time.perf_counter() - t0
        out["gradient_ops"] = int(sum(sympy.count_ops(e) for e in d.closed_form.values())) if kind == "wide" else None
        out["error"] = None
        if not call:
            return out
        names = [s.name for s in d.args]
        xs = [np.linspace(0.1, 0.5, 64) + 0.01 * i for i in range(len(names))]
        t0 = time.perf_counter()
        g = d(*xs)
        jax.block_until_ready(g)
        out["first_call"] = time.perf_counter() - t0
        if kind == "deep":  # cross-check a few points against JAX autodiff of the lowered expression
            rep = d.check(*[x[:4] for x in xs])
            out["check"] = bool(rep.ok)
    except RecursionError as exc:
        out["error"] = f"RecursionError: {exc}"[:200]
    except Exception as exc:  # reported, not hidden
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out


def _large(kind: str, size: int, call: bool, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "benchmarks._symbolic", kind, str(size), "call" if call else "nocall"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"kind": kind, "size": size, "error": f"timed out after {timeout:.0f} s"}
    for line in r.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    return {"kind": kind, "size": size, "error": "worker crashed: " + r.stderr[-300:]}


def run(quick: bool = False, links=None, large=None, repeat: int | None = None, large_timeout: float = 240) -> Section:
    import jax
    import sympy

    import symdiff as sd

    links = links or ([2, 5] if quick else [2, 5, 10, 15, 20])
    if large is None:
        large = [] if quick else [("wide", 1000, True), ("wide", 10_000, False), ("deep", 1000, True)]
    rep = repeat or 5
    sec = Section(
        "4. The symbolic stage: `derive` cold and cached",
        intro=("cold: caches cleared (symdiff's and SymPy's), then expression to first computed gradient at 1000 "
               "points. symdiff: `derive` (default `simplify=True`, and `simplify=False`) + first call; peer: "
               "SymPy `diff` of every variable + `lambdify(modules='numpy', cse=True)` + first call. cached: "
               "`derive` of an expression already derived. Ratio = symdiff / peer (< 1: symdiff faster)."),
        columns=["expression", "ops (expr)", "ops (gradient)", "sd cold", "of which derive", "sd cold, simplify=False",
                 "sympy cold", "of which diff", "sd cold/sympy", "sd (no simplify)/sympy", "sd cached derive",
                 "sd run", "sympy run"],
    )
    rng = np.random.default_rng(0)
    cases = []
    a, b = sympy.symbols("a b", real=True)
    cases.append(("seed `3*a**3 - b**2`", 3 * a ** 3 - b ** 2, [a, b], "3*a**3 - b**2"))
    for n in links:
        e, syms = pendulum_energy(n)
        cases.append((f"{n}-link pendulum energy", e, syms, None))
    worst = {}
    for label, expr, syms, text in cases:
        inputs = [rng.uniform(-1, 1, 1000) for _ in syms]
        _clear_all()
        ref, t_sympy, t_diff, lam = _sympy_peer(expr, syms, inputs)
        src = text if text is not None else expr
        d, out, t_derive, t_cold = _symdiff_cold(src, syms, inputs, True)
        check_close(f"gradient of {label}", list(out), list(ref), 1e-9)
        _, out2, _, t_cold_ns = _symdiff_cold(src, syms, inputs, False)
        check_close(f"gradient of {label} (simplify=False)", list(out2), list(ref), 1e-9)
        # cached: the same derive again (simplify=True key)
        sd.derive(src, list(syms), dtype="float64")
        t_cached = median_time(lambda: sd.derive(src, list(syms), dtype="float64"), 21, warmup=2, min_time=0.02)
        t_run = median_time(lambda: d(*inputs), rep, min_time=0.02)
        t_srun = median_time(lambda: lam(*inputs), rep, min_time=0.02)
        ops_e = int(sympy.count_ops(expr))
        ops_g = int(sum(sympy.count_ops(e) for e in d.closed_form.values()))
        sec.add(label, ops_e, ops_g, fmt_s(t_cold), fmt_s(t_derive), fmt_s(t_cold_ns), fmt_s(t_sympy),
                fmt_s(t_diff), fmt_ratio(t_cold, t_sympy), fmt_ratio(t_cold_ns, t_sympy), fmt_s(t_cached),
                fmt_s(t_run), fmt_s(t_srun))
        worst[label] = dict(cold=t_cold, cold_ns=t_cold_ns, sympy=t_sympy, cached=t_cached, ops=ops_e)
    sec.summary["cases"] = worst
    big = []
    for kind, size, call in large:
        r = _large(kind, size, call, large_timeout)
        big.append(r)
        desc = (f"{size} terms, {r.get('ops')} ops, gradient {r.get('gradient_ops')} ops" if kind == "wide"
                else f"nesting depth {size}")
        status = r.get("error") or ("ok, cross-check passed" if r.get("check") else
                                    "ok, cross-check FAILED" if r.get("check") is False else
                                    "ok" if call else "ok (symbolic stage only, not called)")
        if r.get("check") is False:
            raise AssertionError(f"large expression {kind} {size}: cross-check failed")
        sec.extra_tables.append(("", [], []))  # placeholder keeps ordering simple
        big_row = [f"{kind} ({desc})", f"{r.get('chars', 'n/a')}", fmt_s(r.get("parse")), fmt_s(r.get("derive")),
                   fmt_s(r.get("first_call")), status]
        print("  " + " | ".join(big_row), flush=True)
        sec.summary.setdefault("large_rows", []).append(big_row)
    sec.extra_tables = [t for t in sec.extra_tables if t[1]]
    if big:
        sec.extra_tables.append((
            "Large expressions (each in a subprocess; `derive` with the default simplify budget, gradient by "
            "every variable; first call = trace + XLA compile + run at 64 points; the deep one is then "
            "cross-checked with `d.check` against JAX autodiff):",
            ["expression", "characters", "parse", "derive", "first call", "result"], sec.summary["large_rows"]))
    sec.summary["large"] = big
    last = cases[-1][0]
    r = worst[last]
    def speed(ours: float, peer: float) -> str:
        return f"{peer / ours:.1f}x faster than" if ours <= peer else f"{ours / peer:.1f}x slower than"

    sec.notes.append(
        f"At the large end ({last}, {r['ops']} ops): symdiff cold is {speed(r['cold'], r['sympy'])} the "
        f"SymPy peer with the default simplify budget, {speed(r['cold_ns'], r['sympy'])} it with `simplify=False` "
        "(target: >= 5x faster). Cached `derive`: "
        + ", ".join(f"{fmt_s(v['cached'])}" for v in worst.values()) + " (target < 1 ms).")
    sec.notes.append(f"jax {jax.__version__}, sympy {sympy.__version__}; symengine: "
                     + ("installed" if _has("symengine") else "not installed (not used)"))
    return sec


def _has(name: str) -> bool:
    try:
        __import__(name)
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    print(json.dumps(large_worker(sys.argv[1], int(sys.argv[2]), sys.argv[3:] != ["nocall"])), flush=True)
