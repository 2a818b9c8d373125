"""(7) Arrays: matrix-calculus closed forms against jax.grad / jax.hessian (Laue et al.'s workloads).

For each workload, one process, the same float64 inputs on the CPU:

* ``sd``: ``d(...)`` of ``sd.derive(text, shapes=...)`` (the public call, input validation included);
* ``jax``: ``jax.jit(jax.grad(f))`` / ``jax.jit(jax.hessian(f))`` of the same function written in ``jax.numpy``;
* the symbolic stage: a cold ``derive`` (caches cleared), which must not depend on n.

Every symdiff result is checked against JAX before it is timed.
"""

# ruff: noqa: B023 - the timed lambdas close over loop variables on purpose: each is called in its iteration

from __future__ import annotations

import time

import numpy as np

from ._common import Section, check_close, fmt_s, interleaved_medians

FULL = {
    "quad": [1000, 2000], "logistic": [(2000, 500), (5000, 1000)], "lsq": [(2000, 500)], "logdet": [500],
    "factor": [(1000, 800, 20)],
}
QUICK = {"quad": [300, 1000], "logistic": [(1000, 200)], "lsq": [(1000, 200)], "logdet": [200],
         "factor": [(300, 200, 10)]}
SMOKE = {"quad": [50], "logistic": [(60, 20)], "lsq": [], "logdet": [], "factor": []}


def _workloads(sizes: dict):
    """(name, size label, text, shapes, wrt, order, input builder, jnp function of the wrt, target ratio)."""
    import jax
    import jax.numpy as jnp

    out = []
    for n in sizes["quad"]:
        def inputs(rng, n=n):
            return {"x": rng.normal(size=n), "A": rng.normal(size=(n, n))}

        def f(v):
            return lambda x: x @ v["A"] @ x

        for order, target in ((2, 1 / 5), (1, 1.0)):
            out.append(("x @ A @ x", f"n={n}", "x @ A @ x", {"x": "n", "A": ("n", "n")}, "x", order, inputs, f, target))
    for m, n in sizes["logistic"]:
        def inputs(rng, m=m, n=n):
            return {"X": rng.normal(size=(m, n)) / np.sqrt(n), "w": rng.normal(size=n),
                    "y": np.sign(rng.normal(size=m))}

        def f(v):
            return lambda w: jnp.sum(jnp.logaddexp(0.0, -v["y"] * (v["X"] @ w)))

        for order, target in ((2, 1 / 2), (1, 1.0)):
            out.append(("logistic regression", f"(m, n)=({m}, {n})", "sum(softplus(-y * (X @ w)))",
                        {"X": ("m", "n"), "w": "n", "y": "m"}, "w", order, inputs, f, target))
    for m, n in sizes["lsq"]:
        def inputs(rng, m=m, n=n):
            return {"X": rng.normal(size=(m, n)), "w": rng.normal(size=n), "y": rng.normal(size=m)}

        def f(v):
            return lambda w: jnp.sum((v["X"] @ w - v["y"]) ** 2)

        for order, target in ((2, 1 / 2), (1, 1.0)):
            out.append(("least squares", f"(m, n)=({m}, {n})", "sum((X @ w - y)**2)",
                        {"X": ("m", "n"), "w": "n", "y": "m"}, "w", order, inputs, f, target))
    for n in sizes["logdet"]:
        def inputs(rng, n=n):
            a = rng.normal(size=(n, n))
            return {"S": a @ a.T / n + np.eye(n)}

        def f(v):
            return lambda S: jnp.linalg.slogdet(S)[1]

        out.append(("logdet(S)", f"n={n}", "logdet(S)", {"S": ("n", "n")}, "S", 1, inputs, f, 1.0))
    for m, n, k in sizes["factor"]:
        def inputs(rng, m=m, n=n, k=k):
            return {"U": rng.normal(size=(m, k)), "V": rng.normal(size=(n, k)), "Y": rng.normal(size=(m, n))}

        def f(v):
            return lambda U: jnp.sum((U @ v["V"].T - v["Y"]) ** 2)

        out.append(("norm(U @ V.T - Y)**2", f"(m, n, k)=({m}, {n}, {k})", "norm(U @ V.T - Y)**2",
                    {"U": ("m", "k"), "V": ("n", "k"), "Y": ("m", "n")}, "U", 1, inputs, f, 1.0))
    del jax
    return out


def run(quick: bool = False, sizes=None, repeat=None) -> Section:
    import jax
    import jax.numpy as jnp

    import symdiff as sd

    sizes = sizes or (QUICK if quick else FULL)
    repeat = repeat or (5 if quick else 15)
    section = Section(
        "7. Arrays: matrix calculus",
        intro=("Closed forms derived once with symbolic sizes (`shapes=`), compiled to matrix code, against "
               "`jax.jit(jax.grad(f))` / `jax.jit(jax.hessian(f))` of the same function in `jax.numpy`, float64, "
               "CPU. Ratio = sd / jax (below 1: symdiff faster). `derive` is a cold derive (caches cleared)."),
        columns=["workload", "size", "derivative", "closed form", "cold derive", "sd run", "jax run", "ratio",
                 "target", "verdict"],
    )
    rows = []
    rng = np.random.default_rng(0)
    # one-time process costs (imports, the simplification worker's start) are not a derive's
    sd.derive("sum(log(1 + exp(x @ A @ x)) * x)", wrt="x", order=2, shapes={"x": "n", "A": ("n", "n")})
    for name, size, text, shapes, wrt, order, make_inputs, f, target in _workloads(sizes):
        v = make_inputs(rng)
        sd.clear_caches()
        t0 = time.perf_counter()
        d = sd.derive(text, wrt=wrt, order=order, shapes=shapes)
        t_derive = time.perf_counter() - t0
        with jax.enable_x64(True):
            jv = {k: jnp.asarray(x, dtype=jnp.float64) for k, x in v.items()}
            # every input is an argument of JAX's function too (no arrays baked in as constants)
            transform = jax.hessian if order == 2 else jax.grad
            ref_fn = jax.jit(lambda w, v: transform(f(v))(w))
            ours = d(**jv)
            theirs = ref_fn(jv[wrt], jv)
            check_close(f"{name} {size} order {order}", ours, theirs, rtol=1e-7)
            t = interleaved_medians({"sd": lambda: d(**jv), "jax": lambda: ref_fn(jv[wrt], jv)}, repeat)
        ratio = t["sd"] / t["jax"]
        ok = ratio <= target
        label = "Hessian" if order == 2 else "gradient"
        closed = str(d).split(" = ", 1)[1]
        section.add(name, size, label, f"`{closed}`", fmt_s(t_derive), fmt_s(t["sd"]), fmt_s(t["jax"]),
                    f"{ratio:.2f}", f"<= {target:.2f}", "met" if ok else "**not met**")
        rows.append({"name": name, "size": size, "order": order, "ratio": ratio, "target": target,
                     "derive": t_derive})
    section.summary = {"rows": rows}
    section.notes.append("Targets (issue 11): Hessians of x @ A @ x >= 5x faster than jax.hessian (ratio <= 0.2), "
                         "of logistic regression and least squares >= 2x (<= 0.5); gradients <= 1.0x jax.grad; "
                         "cold derive < 0.5 s and the same for every n.")
    return section


def targets(section) -> list[tuple[str, str, bool | None]]:
    """Rows for the report's targets table."""
    rows = []
    for r in section.summary["rows"]:
        label = "Hessian" if r["order"] == 2 else "gradient"
        rows.append((f"arrays: {label} of {r['name']} {r['size']}: ratio <= {r['target']:.2f}",
                     f"{r['ratio']:.2f}", r["ratio"] <= r["target"]))
    worst = max((r["derive"] for r in section.summary["rows"]), default=0.0)
    rows.append(("arrays: cold derive < 0.5 s", f"max {worst:.2f} s", worst < 0.5))
    return rows
