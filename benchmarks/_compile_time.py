"""(issue 13) Compile time and cold start: rerolled sums, cheap lowering, caches across processes.

Every timing runs in a fresh Python process (``python -m benchmarks._compile_time WORKER ...``), so
nothing is warm that a user's new process would not have:

- *2,000-term gradient*: d/dy of ``sum(sin(i*x + y)*exp(-i*y**2/1000), i=1..2000)``,
  ``simplify=False``: derive + first call (disk cache off), checked against NumPy.
- *20,000-term sum*: a generated sum with a distinct coefficient pair per term,
  ``a_i*sin(b_i*x + y)``: derive + first call of the gradient (disk cache off).
- *pendulum, second process*: the 20-link pendulum energy gradient
  (:func:`benchmarks._symbolic.pendulum_energy`) in a first process on an empty
  cache directory, then in a second one: wall time of each whole process,
  import included.
- *rerolled vs unrolled run time*: the gradient of an n-term sum evaluated at
  10,000 points, rerolled and with rerolling switched off.

The cold derive + compile of the pendulum against SymPy ``diff`` + ``cse`` +
``lambdify`` is family 4's row (``benchmarks/_symbolic.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ._common import Section, fmt_ratio, fmt_s

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
X = np.linspace(-1.0, 1.0, 64)
Y = np.linspace(0.1, 1.2, 64)


def _big_sum(n: int):
    import sympy

    x, y = sympy.symbols("x y", real=True)
    return sympy.Add(*[sympy.sin(i * x + y) * sympy.exp(-sympy.Rational(i, 1000) * y**2) for i in range(1, n + 1)])


def _big_sum_dy(n: int, x, y):
    i = np.arange(1, n + 1)[:, None]
    e = np.exp(-i * y**2 / 1000)
    return (np.cos(i * x + y) * e - 2 * i * y / 1000 * np.sin(i * x + y) * e).sum(axis=0)


def _coefficients(n: int):
    rng = np.random.default_rng(13)
    return np.round(rng.uniform(0.5, 2.0, n), 4), np.round(rng.uniform(0.5, 3.0, n), 4)


def _wide_text(n: int) -> str:
    a, b = _coefficients(n)
    return " + ".join(f"{ai}*sin({bi}*x + y)" for ai, bi in zip(a, b))


# ---- workers (each in its own process) ----


def worker_gradient(n: int) -> dict:
    t0 = time.perf_counter()
    import jax

    import symdiff as sd

    t_import = time.perf_counter() - t0
    expr = _big_sum(n)
    t0 = time.perf_counter()
    d = sd.derive(expr, wrt="y", simplify=False, dtype="float64")
    t_derive = time.perf_counter() - t0
    g = jax.block_until_ready(d(x=X, y=Y))
    t_total = time.perf_counter() - t0
    err = float(np.max(np.abs(np.asarray(g) - _big_sum_dy(n, X, Y))))
    return {"import": t_import, "derive": t_derive, "first_call": t_total - t_derive, "total": t_total,
            "max_error": err, "rerolled": "_sum(" in d.source}


def worker_wide(n: int) -> dict:
    import jax

    import symdiff as sd

    text = _wide_text(n)
    t0 = time.perf_counter()
    d = sd.derive(text, simplify=False, dtype="float64")
    t_derive = time.perf_counter() - t0
    gx, gy = jax.block_until_ready(d(x=X, y=Y))
    t_total = time.perf_counter() - t0
    a, b = (v[:, None] for v in _coefficients(n))
    ref_x = (a * b * np.cos(b * X + Y)).sum(axis=0)
    ref_y = (a * np.cos(b * X + Y)).sum(axis=0)
    err = max(float(np.max(np.abs(np.asarray(gx) - ref_x))), float(np.max(np.abs(np.asarray(gy) - ref_y))))
    return {"derive": t_derive, "first_call": t_total - t_derive, "total": t_total, "max_error": err,
            "rerolled": "_sum(" in d.source}


def worker_pendulum(n: int) -> dict:
    t0 = time.perf_counter()
    import jax

    import symdiff as sd

    from ._symbolic import pendulum_energy

    t_import = time.perf_counter() - t0
    expr, syms = pendulum_energy(n)
    d = sd.derive(expr, [s.name for s in syms], dtype="float64")
    g = jax.block_until_ready(d(*[np.linspace(-1, 1, 100) + 0.01 * k for k in range(len(syms))]))
    return {"import": t_import, "in_process": time.perf_counter() - t0, "stats": sd.cache_stats(),
            "g0": float(np.asarray(g[0])[3])}


def worker_run_time(n: int, rerolled: bool) -> dict:
    import jax

    import symdiff as sd
    from symdiff import _reroll

    from ._common import median_time

    if not rerolled:
        _reroll.MIN_TERMS = 10**9
    d = sd.derive(_big_sum(n), simplify=False, dtype="float64")
    x, y = np.linspace(-1, 1, 10_000), np.linspace(0.1, 1.2, 10_000)
    t0 = time.perf_counter()
    gx, gy = jax.block_until_ready(d(x=x, y=y))
    first = time.perf_counter() - t0
    run = median_time(lambda: d(x=x, y=y), 7, min_time=0.05)
    return {"first_call": first, "run": run, "gy0": float(np.asarray(gy)[0]), "rerolled": "_sum(" in d.source}


WORKERS = {"gradient": worker_gradient, "wide": worker_wide, "pendulum": worker_pendulum, "run_time": worker_run_time}


def _spawn(args: list[str], cache_dir: str, timeout: float) -> dict:
    """Run one worker in a fresh process; its result, plus ``wall`` (the whole process, import included)."""
    env = dict(os.environ, SYMDIFF_CACHE_DIR=cache_dir)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "benchmarks._compile_time", *args], capture_output=True, text=True,
                           timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"not finished in {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in r.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            out = json.loads(line)
            out["wall"] = wall
            return out
    return {"error": "worker failed: " + r.stderr[-300:]}


def run(quick: bool = False, smoke: bool = False, terms: int | None = None, wide: int | None = None,
        links: int | None = None, unrolled: int | None = None, timeout: float = 600) -> Section:
    """The issue's Speed rows; ``smoke``: a 64-term gradient and a 2-link pendulum only (3 processes)."""
    terms = terms or (64 if smoke else 2000)
    wide = wide or (2000 if quick else 20_000)
    links = links or (2 if smoke else 10 if quick else 20)
    unrolled = unrolled or (100 if quick else 300)
    sec = Section(
        "Compile time and cold start (issue 13)",
        intro=("Each row is measured in fresh Python processes (`python -m benchmarks._compile_time`), disk cache "
               "off unless the row is about it; results are checked against NumPy / the first process before "
               "they are reported."),
        columns=["workload", "measured", "details"],
    )
    summary: dict = {"terms": terms, "wide_terms": wide, "links": links}
    r = _spawn(["gradient", str(terms)], "off", timeout)
    summary["gradient"] = r
    if "error" in r:
        sec.add(f"{terms}-term gradient: derive + first call", r["error"], "")
    else:
        if r["max_error"] > 1e-8:
            raise AssertionError(f"{terms}-term gradient disagrees with NumPy by {r['max_error']:.2e}")
        sec.add(f"{terms}-term gradient: derive + first call", fmt_s(r["total"]),
                f"derive {fmt_s(r['derive'])}, first call {fmt_s(r['first_call'])}, rerolled: {r['rerolled']}")
    r = {"error": "skipped (smoke)"} if smoke else _spawn(["wide", str(wide)], "off", timeout)
    summary["wide"] = r
    if "error" in r:
        sec.add(f"{wide}-term sum, distinct coefficients: derive + first call", r["error"], "")
    else:
        if r["max_error"] > 1e-6 * wide:
            raise AssertionError(f"{wide}-term gradient disagrees with NumPy by {r['max_error']:.2e}")
        sec.add(f"{wide}-term sum, distinct coefficients: derive + first call", fmt_s(r["total"]),
                f"derive {fmt_s(r['derive'])} (parse included), first call {fmt_s(r['first_call'])}, "
                f"rerolled: {r['rerolled']}")
    with tempfile.TemporaryDirectory(prefix="symdiff-bench-cache-") as cache:
        first = _spawn(["pendulum", str(links)], cache, timeout)
        second = _spawn(["pendulum", str(links)], cache, timeout)
    summary["pendulum"] = {"first": first, "second": second}
    if "error" in first or "error" in second:
        sec.add(f"{links}-link pendulum gradient, second process", first.get("error") or second.get("error"), "")
    else:
        if abs(first["g0"] - second["g0"]) > 1e-9 * max(1.0, abs(first["g0"])):
            raise AssertionError("the second process computed a different gradient")
        sec.add(f"{links}-link pendulum gradient, second fresh process (import included)", fmt_s(second["wall"]),
                f"first process {fmt_s(first['wall'])}: {first['wall'] / second['wall']:.1f}x; import "
                f"{fmt_s(second['import'])}; SymPy passes in the second: {second['stats']['symbolic']}")
    skipped = {"error": "skipped (smoke)"}
    rolled = skipped if smoke else _spawn(["run_time", str(unrolled), "1"], "off", timeout)
    flat = skipped if smoke else _spawn(["run_time", str(unrolled), "0"], "off", timeout)
    summary["run_time"] = {"rerolled": rolled, "unrolled": flat}
    if "error" in rolled or "error" in flat:
        sec.add(f"{unrolled}-term gradient: run time, rerolled / unrolled", rolled.get("error") or flat.get("error"),
                "")
    else:
        if abs(rolled["gy0"] - flat["gy0"]) > 1e-9 * max(1.0, abs(flat["gy0"])):
            raise AssertionError("rerolled and unrolled gradients disagree")
        sec.add(f"{unrolled}-term gradient at 10^4 points: run time, rerolled / unrolled",
                fmt_ratio(rolled["run"], flat["run"]),
                f"run {fmt_s(rolled['run'])} vs {fmt_s(flat['run'])}; first call {fmt_s(rolled['first_call'])} vs "
                f"{fmt_s(flat['first_call'])}")
    sec.summary = summary
    return sec


def targets(sec: Section) -> list[tuple[str, str, bool | None]]:
    """The issue's Speed rows, as (target, measured, met)."""
    s, rows = sec.summary, []
    g = s.get("gradient", {})
    rows.append((f"{s['terms']:,}-term gradient: derive + first call < 3 s",
                 g.get("error") or fmt_s(g.get("total")), None if "error" in g else g["total"] < 3))
    w = s.get("wide", {})
    rows.append((f"{s['wide_terms']:,}-term sum: derive + first call < 5 s", w.get("error") or fmt_s(w.get("total")),
                 None if "error" in w else w["total"] < 5))
    p = s.get("pendulum", {})
    first, second = p.get("first", {}), p.get("second", {})
    if "wall" in first and "wall" in second:
        ratio = first["wall"] / second["wall"]
        rows.append((f"{s['links']}-link pendulum gradient, second fresh process < 1.5 s and >= 5x faster than the first",
                     f"{fmt_s(second['wall'])}, {ratio:.1f}x", second["wall"] < 1.5 and ratio >= 5))
    r = s.get("run_time", {})
    if "run" in r.get("rerolled", {}) and "run" in r.get("unrolled", {}):
        ratio = r["rerolled"]["run"] / r["unrolled"]["run"]
        rows.append(("run time of rerolled code vs the unrolled form <= 1.0x", f"{ratio:.2f}x", ratio <= 1.0))
    return rows


if __name__ == "__main__":
    name, *rest = sys.argv[1:]
    worker_args = [int(rest[0])] + ([rest[1] == "1"] if len(rest) > 1 else [])
    print(json.dumps(WORKERS[name](*worker_args)))
