"""Accuracy of the CPU kernels (symdiff._kernels) and of XLA's routines, in ulps, against high precision.

    python benchmarks/kernel_accuracy.py            # 10**6 points per function and dtype, prints the table
    python benchmarks/kernel_accuracy.py --n 100000 # faster

References: numpy's float64 routines for float32 results (their error is
2**-29 of a float32 ulp), numpy's long double (x87, 64-bit significand)
routines for float64 results, and mpmath at 40 digits on a subsample plus every
hard case (tests/test_kernels.py checks the two references agree). The inputs:
a dense sweep of each function's domain (uniform and log-uniform magnitudes),
arguments next to multiples of pi/2 for sin/cos/tan, arguments just inside the
domain edges for asin/acos, subnormals, huge arguments, +-0, +-inf and NaN.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

FUNCTIONS = ("sin", "cos", "tan", "atan", "asin", "acos", "atan2", "cbrt", "log")
DTYPES = ("float32", "float64")
_XLA = {"sin": "sin", "cos": "cos", "tan": "tan", "atan": "arctan", "asin": "arcsin", "acos": "arccos",
        "atan2": "arctan2", "cbrt": "cbrt", "log": "log"}
_NP = {"sin": np.sin, "cos": np.cos, "tan": np.tan, "atan": np.arctan, "asin": np.arcsin, "acos": np.arccos,
       "atan2": np.arctan2, "cbrt": np.cbrt, "log": np.log}
_MP = {"sin": "sin", "cos": "cos", "tan": "tan", "atan": "atan", "asin": "asin", "acos": "acos",
       "atan2": "atan2", "cbrt": "cbrt", "log": "log"}


def _logu(rng, n, lo, hi, dtype):
    mag = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return (mag * rng.choice([-1.0, 1.0], n)).astype(dtype)


def specials(dtype) -> np.ndarray:
    """+-0, +-inf, NaN, the smallest subnormal and normal, the largest finite value."""
    fi = np.finfo(dtype)
    base = [0.0, np.inf, np.nan, fi.smallest_subnormal, fi.tiny, fi.max, 1.0, 0.5]
    return np.array(base + [-v for v in base], dtype=dtype)


def hard_cases(name: str, dtype) -> np.ndarray:
    """Arguments where a kernel is most likely to lose accuracy."""
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    out = [specials(dt), _logu(np.random.default_rng(7), 200, float(fi.smallest_subnormal), float(fi.tiny), dt)]
    if name in ("sin", "cos", "tan"):
        # floats next to k*pi/2 (the reduced argument is tiny there), up to the kernel's limit and beyond
        import mpmath

        mpmath.mp.dps = 40
        ks = np.unique(np.concatenate([np.arange(1, 150), np.geomspace(150, 2**30, 200).astype(np.int64)]))
        centres = np.array([float(k * mpmath.pi / 2) for k in ks]).astype(dt)
        near = [centres]
        lo, hi = centres, centres
        for _ in range(3):
            lo, hi = np.nextafter(lo, dt.type(-np.inf)), np.nextafter(hi, dt.type(np.inf))
            near += [lo, hi]
        near = np.concatenate(near)
        huge = np.exp(np.linspace(np.log(1e5), np.log(float(fi.max)) - 1e-6, 40))
        out += [near, -near, huge.astype(dt)]
    elif name in ("asin", "acos"):
        one = dt.type(1)
        edge = [one]
        for _ in range(50):
            edge.append(np.nextafter(edge[-1], dt.type(0)))
        edge = np.array(edge, dtype=dt)
        half = np.array([0.5], dt)
        halves = [np.nextafter(half, dt.type(0)), half, np.nextafter(half, dt.type(1))]
        out += [edge, -edge, *halves, -np.concatenate(halves), np.array([1.0000001, 2.0, -3.0], dt)]
    elif name == "log":  # next to 1, and the switch points sqrt(2), sqrt(1/2) of the reduction
        around = [np.array([1.0, 2.0**0.5, 0.5**0.5, 2.0, 0.5], dt)]
        for _ in range(40):
            around.append(np.nextafter(around[-1], dt.type(np.inf)))
            around.append(np.nextafter(around[-2], dt.type(0)))
        out += around + [np.array([-1.0, -fi.tiny], dt)]
    elif name in ("atan", "cbrt"):
        out += [_logu(np.random.default_rng(8), 400, float(fi.tiny), float(fi.max), dt)]
        if name == "atan":  # the reduction's switch points
            out += [np.array([0.41421356237309503, 2.414213562373095, 1.0], dt)]
    return np.concatenate(out).astype(dt)


def sweep(name: str, dtype, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Dense inputs over the whole domain plus the hard cases; a tuple of argument arrays."""
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    rng = np.random.default_rng(seed)
    h = n // 2
    if name == "atan2":
        y = np.concatenate([_logu(rng, h, 1e-30, 1e30, dt), rng.uniform(-10, 10, n - h).astype(dt)])
        x = np.concatenate([_logu(rng, h, 1e-30, 1e30, dt), rng.uniform(-10, 10, n - h).astype(dt)])
        s = specials(dt)
        yy, xx = np.meshgrid(s, s)
        return np.concatenate([y, yy.ravel()]), np.concatenate([x, xx.ravel()])
    if name in ("sin", "cos", "tan"):
        lim = 4096.0 if dt == np.float32 else 2.0**26
        dense = np.concatenate([rng.uniform(-10, 10, h), _logu(rng, n - h, 1e-8, lim, dt)])
    elif name in ("asin", "acos"):
        dense = np.concatenate([rng.uniform(-1, 1, h), _logu(rng, n - h, float(fi.tiny), 1.0, dt)])
    elif name == "log":
        dense = np.concatenate([rng.uniform(0, 4, h), np.abs(_logu(rng, n - h, float(fi.tiny), float(fi.max), dt))])
    else:
        dense = np.concatenate([rng.uniform(-10, 10, h), _logu(rng, n - h, float(fi.tiny), float(fi.max), dt)])
    return (np.concatenate([dense.astype(dt), hard_cases(name, dt)]),)


def reference(name: str, args: tuple[np.ndarray, ...]) -> np.ndarray:
    """The exact value (to far more than the dtype's precision), as long double."""
    if args[0].dtype == np.float32:
        with np.errstate(all="ignore"):
            return _NP[name](*[a.astype(np.float64) for a in args]).astype(np.longdouble)
    with np.errstate(all="ignore"):
        return _NP[name](*[a.astype(np.longdouble) for a in args])


def mp_reference(name: str, args: tuple[np.ndarray, ...]) -> np.ndarray:
    """The same through mpmath at 40 digits (slow: a few thousand points)."""
    import math

    import mpmath

    mpmath.mp.dps = 40
    fn = getattr(mpmath, _MP[name])
    out = np.empty(len(args[0]), dtype=np.longdouble)
    for i, vals in enumerate(zip(*args)):
        vals = [float(v) for v in vals]
        if any(np.isnan(vals)):
            out[i] = np.nan
            continue
        try:
            if name == "cbrt":
                v = vals[0]
                r = -mpmath.cbrt(-mpmath.mpf(v)) if v < 0 else mpmath.cbrt(mpmath.mpf(v))
            elif (name in ("asin", "acos") and abs(vals[0]) > 1) or (name == "log" and vals[0] < 0):
                r = mpmath.nan
            elif name in ("sin", "cos", "tan") and np.isinf(vals[0]):
                r = mpmath.nan
            elif name == "atan2" and (np.isinf(vals).any() or vals[0] == 0):
                out[i] = math.atan2(*vals)  # the IEEE special values (mpmath has no signed zero)
                continue
            elif name == "atan2":
                r = mpmath.atan2(mpmath.mpf(vals[0]), mpmath.mpf(vals[1]))
            else:
                r = fn(mpmath.mpf(vals[0]))
            if r == 0 and vals[0] == 0 and name not in ("cos", "acos"):  # mpmath has no -0: keep the sign
                out[i] = vals[0] if name != "atan2" else math.atan2(*vals)
                continue
            out[i] = np.longdouble(mpmath.nstr(r, 30)) if mpmath.isfinite(r) else float(r)
        except (ValueError, ZeroDivisionError):
            out[i] = np.nan
    return out


def ulp_errors(got: np.ndarray, ref: np.ndarray, dtype) -> np.ndarray:
    """``|got - ref|`` in units of the last place of ``ref`` in ``dtype``; NaN/inf/zero-sign mismatches = inf.

    Subnormal results are measured in the smallest subnormal's spacing.
    """
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    got = got.astype(np.longdouble)
    ref = np.asarray(ref, dtype=np.longdouble)
    out = np.zeros(len(ref), dtype=np.float64)
    nan_ref, nan_got = np.isnan(ref), np.isnan(got)
    out[nan_ref != nan_got] = np.inf
    finite = np.isfinite(ref) & np.isfinite(got)
    inf_mismatch = ~nan_ref & ~nan_got & ~finite & (got != ref)
    out[inf_mismatch] = np.inf
    # a finite reference beyond the dtype's range rounds to inf: accept the inf
    over = ~nan_ref & np.isfinite(ref) & np.isinf(got) & (np.abs(ref) > fi.max)
    out[over] = 0.0
    r = ref[finite]
    mag = np.maximum(np.abs(r), np.longdouble(fi.tiny))
    exp = np.floor(np.log2(mag))
    ulp = np.ldexp(np.longdouble(1), (exp - (fi.nmant)).astype(np.int64))
    err = np.abs(got[finite] - r) / ulp
    err[(r == 0) & (got[finite] == 0) & (np.signbit(r) != np.signbit(got[finite]))] = np.inf
    out[finite] = err.astype(np.float64)
    return out


def evaluate(name: str, dtype, args: tuple[np.ndarray, ...]):
    """``(kernel_values, xla_values)`` on the CPU backend, under float64 when the dtype asks for it."""
    import jax
    import jax.numpy as jnp

    from symdiff import _kernels
    from symdiff._placement import x64_scope

    with x64_scope(np.dtype(dtype)):
        jargs = [jnp.asarray(a) for a in args]
        kernel = getattr(_kernels, _XLA[name])  # the kernels carry jnp's names
        xla = np.asarray(jax.jit(getattr(jnp, _XLA[name]))(*jargs))
        if name in ("sin", "cos", "tan"):  # huge arguments take XLA's routine: check both parts
            ours = np.empty_like(args[0])
            inside = np.abs(args[0]) <= _kernels._TRIG_LIMIT[np.dtype(dtype).name]
            ours[inside] = np.asarray(jax.jit(kernel)(jnp.asarray(args[0][inside])))
            ours[~inside] = np.asarray(jax.jit(kernel)(jnp.asarray(args[0][~inside])))
        else:
            ours = np.asarray(jax.jit(kernel)(*jargs))
    return ours, xla


def table(n: int, mp_points: int = 2000) -> list[dict]:
    rows = []
    for name in FUNCTIONS:
        for dtype in DTYPES:
            args = sweep(name, dtype, n)
            ours, xla = evaluate(name, dtype, args)
            ref = reference(name, args)
            e_ours, e_xla = ulp_errors(ours, ref, dtype), ulp_errors(xla, ref, dtype)
            # mpmath on a subsample of the sweep plus every hard case
            hard = len(hard_cases(name, dtype)) if name != "atan2" else len(specials(dtype)) ** 2
            idx = np.concatenate([np.random.default_rng(1).choice(n, mp_points, replace=False),
                                  np.arange(len(args[0]) - hard, len(args[0]))])
            sub = tuple(a[idx] for a in args)
            mref = mp_reference(name, sub)
            e_ours = np.concatenate([e_ours, ulp_errors(ours[idx], mref, dtype)])
            e_xla = np.concatenate([e_xla, ulp_errors(xla[idx], mref, dtype)])
            refs = np.abs(np.concatenate([ref, mref]))
            # wrong in kind (NaN, inf or the sign of a zero): counted apart, left out of the maxima
            keep = np.isfinite(e_xla) & np.isfinite(e_ours)
            normal = keep & ~((refs > 0) & (refs < np.finfo(np.dtype(dtype)).tiny))  # not a subnormal result
            rows.append({"function": name, "dtype": dtype, "points": len(args[0]),
                         "kernel": float(e_ours[keep].max()), "xla": float(e_xla[keep].max()),
                         "kernel normal": float(e_ours[normal].max()), "xla normal": float(e_xla[normal].max()),
                         "kernel wrong": int(np.sum(~np.isfinite(e_ours))),
                         "xla wrong": int(np.sum(~np.isfinite(e_xla)))})
            r = rows[-1]
            print(f"{name:6s} {dtype}: kernel {r['kernel']:.3g} ulp, XLA {r['xla']:.3g} ulp; wrong in kind: "
                  f"kernel {r['kernel wrong']}, XLA {r['xla wrong']}", flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| function | dtype | points | kernel max ulp | XLA max ulp | normal results: kernel / XLA "
           "| wrong in kind: kernel / XLA |", "|---|---|---|---|---|---|---|"]
    out += [f"| {r['function']} | {r['dtype']} | {r['points']} | {r['kernel']:.3g} | {r['xla']:.3g} | "
            f"{r['kernel normal']:.3g} / {r['xla normal']:.3g} | {r['kernel wrong']} / {r['xla wrong']} |"
            for r in rows]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**6, help="dense points per function and dtype")
    args = parser.parse_args(argv)
    print(markdown(table(args.n)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
