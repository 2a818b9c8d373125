"""(8) Sparse Hessians and Hessian-vector products (issue 12).

symdiff's ``d.sparse`` (structural nonzeros only) and ``d.hvp`` (the closed
form of the directional derivative) against ``jax.jit(jax.hessian(f))`` (dense)
and ``jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])``, on the
vector Rosenbrock function, Broyden's tridiagonal problem and the Rosenbrock
function over 1000 scalar names. Every symdiff result is checked against the
JAX peer (dense entries, or ``H @ v``) before it is timed.
"""

# ruff: noqa: B023 - the timed lambdas close over loop variables on purpose: each is called in its iteration

from __future__ import annotations

import time

import numpy as np

from ._common import Section, check_close, fmt_ratio, fmt_s, median_time

ROSEN = "sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)"
BROYDEN = ("sum(((3 - 2*x[1:-1])*x[1:-1] - x[:-2] - 2*x[2:] + 1)**2)"
           " + ((3 - 2*x[0])*x[0] - 2*x[1] + 1)**2 + ((3 - 2*x[-1])*x[-1] - x[-2] + 1)**2")
SIZES = {"dense": 1000, "large": 10**6, "broyden": 10**5, "names": 1000}
QUICK = {"dense": 1000, "large": 10**5, "broyden": 10**5, "names": 300}
SMOKE = {"dense": 100, "large": 10**3, "broyden": 10**3, "names": 12}


def _rosen_jnp(x):
    import jax.numpy as jnp

    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _broyden_jnp(x):
    import jax.numpy as jnp

    xp = jnp.pad(x, 1)
    return jnp.sum(((3 - 2 * x) * x - xp[:-2] - 2 * xp[2:] + 1) ** 2)


def _cold(fn):
    """Seconds of ``fn()`` after every symdiff cache is emptied (the result blocked on)."""
    import jax

    import symdiff as sd

    sd.clear_caches()
    t0 = time.perf_counter()
    out = fn()
    jax.block_until_ready(getattr(out, "data", out))
    return out, time.perf_counter() - t0


def run(quick: bool = False, sizes: dict | None = None, repeat: int | None = None) -> Section:
    import jax
    import jax.numpy as jnp
    import scipy.optimize

    import symdiff as sd

    sizes = sizes or (QUICK if quick else SIZES)
    repeat = repeat or (5 if quick else 10)
    rng = np.random.default_rng(0)
    section = Section(
        "8. Sparse Hessians and Hessian-vector products",
        "`d.sparse` stores the closed form's structural nonzeros (3n - 2 for Rosenbrock); `jax.hessian` "
        "materialises n x n. `d.hvp` evaluates the closed form of the directional derivative of the gradient; "
        "the peer is `jax.jvp(jax.grad(f))`, jitted. float64; times are medians after warm-up.",
        ["workload", "n", "symdiff", "peer", "ratio", "note"],
    )
    s = section.summary

    # vector Rosenbrock, n = 1000: sparse vs dense jax.hessian; cold derive + first sparse call
    n = sizes["dense"]
    x = rng.uniform(-1.5, 1.5, n)
    hj = jax.jit(jax.hessian(_rosen_jnp))
    xj = jnp.asarray(x)
    jax.block_until_ready(hj(xj))  # the JAX runtime's one-time start is not symdiff's cold cost
    h, cold = _cold(lambda: sd.derive(ROSEN, wrt="x", order=2, shapes={"x": "n"}).sparse(x=x))
    hd = sd.derive(ROSEN, wrt="x", order=2, shapes={"x": "n"})
    check_close(f"vector Rosenbrock sparse Hessian n={n}", hd.sparse(x=x).todense(), hj(xj), 1e-12)
    check_close(f"vector Rosenbrock vs scipy n={n}", hd.sparse(x=x, format="scipy").toarray(),
                scipy.optimize.rosen_hess(x), 1e-12)
    t_sd = median_time(lambda: hd.sparse(x=xj).data, repeat, min_time=0.05)
    t_jax = median_time(lambda: hj(xj), repeat, min_time=0.05)
    s["dense_ratio"], s["dense_n"], s["cold_1000"] = t_sd / t_jax, n, cold
    section.add("vector Rosenbrock: `d.sparse` vs `jax.hessian`", n, fmt_s(t_sd), fmt_s(t_jax),
                fmt_ratio(t_sd, t_jax), f"{3 * n - 2} stored entries vs {n * n}")
    section.add("vector Rosenbrock: cold derive + first `d.sparse`", n, fmt_s(cold), "", "", "caches emptied")

    # vector Rosenbrock at the large size: cold / warm sparse, hvp vs jvp(grad)
    n = sizes["large"]
    x = rng.uniform(-1.5, 1.5, n)
    v = rng.normal(size=n)
    xj, vj = jnp.asarray(x), jnp.asarray(v)
    hs, cold = _cold(lambda: sd.derive(ROSEN, wrt="x", order=2, shapes={"x": "n"}).sparse(x=xj))
    hd = sd.derive(ROSEN, wrt="x", order=2, shapes={"x": "n"})
    peer = jax.jit(lambda x, v: jax.jvp(jax.grad(_rosen_jnp), (x,), (v,))[1])
    reference = peer(xj, vj)
    check_close(f"vector Rosenbrock H @ v from d.sparse, n={n}", hd.sparse(x=x, format="scipy") @ v, reference,
                1e-10)
    check_close(f"vector Rosenbrock d.hvp, n={n}", hd.hvp(vj, x=xj), reference, 1e-10)
    warm = median_time(lambda: hd.sparse(x=xj).data, repeat)
    t_hvp = median_time(lambda: hd.hvp(vj, x=xj), repeat, min_time=0.05)
    t_peer = median_time(lambda: peer(xj, vj), repeat, min_time=0.05)
    s["large_n"], s["large_cold"], s["large_warm"], s["hvp_ratio"] = n, cold, warm, t_hvp / t_peer
    section.add("vector Rosenbrock: `d.sparse` cold / warm", n, f"{fmt_s(cold)} / {fmt_s(warm)}", "", "",
                f"dense would be {8 * n * n / 1e9:,.3g} GB")
    section.add("vector Rosenbrock: `d.hvp` vs `jax.jvp(jax.grad(f))`", n, fmt_s(t_hvp), fmt_s(t_peer),
                fmt_ratio(t_hvp, t_peer), "")

    # Broyden tridiagonal: cold sparse Hessian
    n = sizes["broyden"]
    x = rng.uniform(-1.5, 1.5, n)
    xj, vj = jnp.asarray(x), jnp.asarray(rng.normal(size=n))
    hs, cold = _cold(lambda: sd.derive(BROYDEN, wrt="x", order=2, shapes={"x": "n"}).sparse(x=xj, format="scipy"))
    reference = jax.jit(lambda x, v: jax.jvp(jax.grad(_broyden_jnp), (x,), (v,))[1])(xj, vj)
    check_close(f"Broyden tridiagonal H @ v, n={n}", hs @ np.asarray(vj), reference, 1e-10)
    s["broyden_n"], s["broyden_cold"] = n, cold
    section.add("Broyden tridiagonal: cold derive + sparse Hessian", n, fmt_s(cold), "", "",
                f"{hs.nnz} stored entries (5n - 6)")

    # Rosenbrock over scalar names x0 ... x(n-1)
    n = sizes["names"]
    names = [f"x{i}" for i in range(n)]
    text = " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(n - 1))
    x = rng.uniform(-1.5, 1.5, n)
    hn, cold = _cold(lambda: sd.derive(text, names, order=2, dtype="float64").sparse(*x))
    dn = sd.derive(text, names, order=2, dtype="float64")
    xj = jnp.asarray(x)
    check_close(f"scalar-name Rosenbrock sparse Hessian n={n}", dn.sparse(*x).todense(), hj(xj), 1e-12)
    t_sd = median_time(lambda: dn.sparse(*x).data, repeat, min_time=0.05)
    t_jax = median_time(lambda: hj(xj), repeat, min_time=0.05)
    s["names_n"], s["names_cold"], s["names_ratio"] = n, cold, t_sd / t_jax
    section.add("scalar names: cold derive + first `d.sparse`", n, fmt_s(cold), "", "", "caches emptied")
    section.add("scalar names: `d.sparse(*x)` vs `jax.hessian`", n, fmt_s(t_sd), fmt_s(t_jax),
                fmt_ratio(t_sd, t_jax), "n NumPy scalars in, packed into one transfer")
    return section


def targets(section) -> list[tuple[str, str, bool | None]]:
    """Rows for the report's targets table (issue 12)."""
    s = section.summary
    full = s["large_n"] >= 10**6
    return [
        (f"sparse: vector Rosenbrock n={s['dense_n']}, d.sparse <= 0.05x jax.hessian", f"{s['dense_ratio']:.3f}",
         s["dense_ratio"] <= 0.05 if s["dense_n"] >= 1000 else None),
        (f"sparse: vector Rosenbrock n={s['dense_n']}, cold derive + first sparse call < 1 s",
         f"{s['cold_1000']:.2f} s", s["cold_1000"] < 1 if s["dense_n"] >= 1000 else None),
        (f"sparse: vector Rosenbrock n={s['large_n']:,}, cold d.sparse < 5 s / warm < 50 ms",
         f"{s['large_cold']:.2f} s / {1e3 * s['large_warm']:.0f} ms",
         (s["large_cold"] < 5 and s["large_warm"] < 0.05) if full else None),
        (f"sparse: d.hvp at n={s['large_n']:,} <= 1.0x jax.jvp(jax.grad(f))", f"{s['hvp_ratio']:.2f}",
         s["hvp_ratio"] <= 1.0 if full else None),
        (f"sparse: scalar names n={s['names_n']}, cold derive + first sparse < 2 s / warm <= 0.25x jax.hessian",
         f"{s['names_cold']:.2f} s / {s['names_ratio']:.2f}",
         (s["names_cold"] < 2 and s["names_ratio"] <= 0.25) if s["names_n"] >= 1000 else None),
        (f"sparse: Broyden tridiagonal n={s['broyden_n']:,}, cold sparse Hessian < 5 s",
         f"{s['broyden_cold']:.2f} s", s["broyden_cold"] < 5 if s["broyden_n"] >= 10**5 else None),
    ]
