"""(6) Elementwise functions on CPU: symdiff's lowering (with its CPU kernels) vs XLA, numpy, PyTorch eager.

Per function of the language, float32 and float64, n elements: the code the
lowering emits for ``f(x)`` (symdiff._lower.FUNCTION_TABLE, which calls
symdiff._kernels where a kernel pays), ``jax.jit`` of the plain ``jnp`` function,
numpy/scipy and PyTorch eager, timed round-robin in one process (fastest call of the rounds). Then the VJP of
two transcendental-heavy expressions: ``d.vjp`` vs ``jax.jit(jax.vjp)`` vs PyTorch.
Every result is checked against numpy before it is timed.
"""

# ruff: noqa: B023 - the timed lambdas close over loop variables on purpose: each is called in its iteration

from __future__ import annotations

import time

import numpy as np

from ._common import Section, block, check_close, fmt_ratio, fmt_s

# name -> (language text with x, jnp expression, numpy/scipy callable name, torch expression, domain)
FUNCTIONS = {
    "sin": ("sin(x)", "jnp.sin(x)", "np.sin", "torch.sin(x)", (-10, 10)),
    "cos": ("cos(x)", "jnp.cos(x)", "np.cos", "torch.cos(x)", (-10, 10)),
    "tan": ("tan(x)", "jnp.tan(x)", "np.tan", "torch.tan(x)", (-1.5, 1.5)),
    "cot": ("cot(x)", "1 / jnp.tan(x)", "lambda x: 1 / np.tan(x)", "1 / torch.tan(x)", (0.1, 3)),
    "sec": ("sec(x)", "1 / jnp.cos(x)", "lambda x: 1 / np.cos(x)", "1 / torch.cos(x)", (-1.5, 1.5)),
    "csc": ("csc(x)", "1 / jnp.sin(x)", "lambda x: 1 / np.sin(x)", "1 / torch.sin(x)", (0.1, 3)),
    "asin": ("asin(x)", "jnp.arcsin(x)", "np.arcsin", "torch.asin(x)", (-1, 1)),
    "acos": ("acos(x)", "jnp.arccos(x)", "np.arccos", "torch.acos(x)", (-1, 1)),
    "atan": ("atan(x)", "jnp.arctan(x)", "np.arctan", "torch.atan(x)", (-10, 10)),
    "atan2": ("atan2(x, y)", "jnp.arctan2(x, y)", "np.arctan2", "torch.atan2(x, y)", (-10, 10)),
    "sinh": ("sinh(x)", "jnp.sinh(x)", "np.sinh", "torch.sinh(x)", (-5, 5)),
    "cosh": ("cosh(x)", "jnp.cosh(x)", "np.cosh", "torch.cosh(x)", (-5, 5)),
    "tanh": ("tanh(x)", "jnp.tanh(x)", "np.tanh", "torch.tanh(x)", (-5, 5)),
    "asinh": ("asinh(x)", "jnp.arcsinh(x)", "np.arcsinh", "torch.asinh(x)", (-5, 5)),
    "acosh": ("acosh(x)", "jnp.arccosh(x)", "np.arccosh", "torch.acosh(x)", (1, 5)),
    "atanh": ("atanh(x)", "jnp.arctanh(x)", "np.arctanh", "torch.atanh(x)", (-0.99, 0.99)),
    "exp": ("exp(x)", "jnp.exp(x)", "np.exp", "torch.exp(x)", (-5, 5)),
    "log": ("log(x)", "jnp.log(x)", "np.log", "torch.log(x)", (0.1, 5)),
    "sqrt": ("sqrt(x)", "jnp.sqrt(x)", "np.sqrt", "torch.sqrt(x)", (0.1, 5)),
    "cbrt": ("cbrt(x)", "jnp.cbrt(x)", "np.cbrt", "torch.sign(x) * torch.abs(x) ** (1 / 3)", (-5, 5)),
    "x**2.5": ("x**2.5", "x ** 2.5", "lambda x: x ** 2.5", "x ** 2.5", (0.1, 5)),
    "abs": ("abs(x)", "jnp.abs(x)", "np.abs", "torch.abs(x)", (-5, 5)),
    "sign": ("sign(x)", "jnp.sign(x)", "np.sign", "torch.sign(x)", (-5, 5)),
    "erf": ("erf(x)", "jsp.erf(x)", "scipy.special.erf", "torch.erf(x)", (-3, 3)),
    "erfc": ("erfc(x)", "jsp.erfc(x)", "scipy.special.erfc", "torch.erfc(x)", (-3, 3)),
    "gamma": ("gamma(x)", "jsp.gamma(x)", "scipy.special.gamma", "torch.exp(torch.lgamma(x))", (0.1, 5)),
    "loggamma": ("loggamma(x)", "jsp.gammaln(x)", "scipy.special.gammaln", "torch.lgamma(x)", (0.1, 5)),
    "sigmoid": ("sigmoid(x)", "jax.nn.sigmoid(x)", "scipy.special.expit", "torch.sigmoid(x)", (-5, 5)),
    "softplus": ("softplus(x)", "jax.nn.softplus(x)", "lambda x: np.logaddexp(0, x)",
                 "torch.nn.functional.softplus(x)", (-5, 5)),
    "relu": ("relu(x)", "jax.nn.relu(x)", "lambda x: np.maximum(x, 0)", "torch.relu(x)", (-5, 5)),
    "min": ("min(x, y)", "jnp.minimum(x, y)", "np.minimum", "torch.minimum(x, y)", (-5, 5)),
}
QUICK = ("sin", "cos", "tan", "atan", "asin", "acos", "atan2", "cbrt", "log", "exp", "erf")
VJP_EXPRESSIONS = ("sin(a)*exp(-b**2)", "exp(-(a-b)**2/2)*cos(3*a)")


def _lowered(text: str):
    """The function symdiff's lowering emits for ``text`` (the FUNCTION_TABLE template, its namespace)."""
    import symdiff as sd
    from symdiff import _lower

    expr = sd.parse(text)
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    kernel = _lower.build_kernel(symbols, [expr], [], function_name="f")
    return (lambda *xs: kernel.fn(*xs)[0][0]), [s.name for s in symbols]


def _peers(name: str):
    import jax
    import jax.numpy as jnp
    import jax.scipy.special as jsp
    import scipy.special

    _, jtext, ntext, ttext, _ = FUNCTIONS[name]
    ns = {"jnp": jnp, "jsp": jsp, "jax": jax, "np": np, "scipy": scipy}
    jfn = eval(f"lambda x, y=None: {jtext}", ns)  # our own fixed texts
    nfn = eval(ntext, ns)
    try:
        import torch

        tfn = eval(f"lambda x, y=None: {ttext}", {"torch": torch})
    except ImportError:
        tfn = None
    return jfn, nfn, tfn


def run(quick: bool = False, n: int | None = None, functions=None, dtypes=None, repeat=None,
        vjp: bool = True) -> Section:
    import jax
    import jax.numpy as jnp

    import symdiff as sd

    try:
        import torch
    except ImportError:
        torch = None
    n = n or 10**6
    functions = functions or (QUICK if quick else tuple(FUNCTIONS))
    dtypes = dtypes or ("float32", "float64")
    rep = repeat or (11 if quick else 25)
    sec = Section(
        "6. Elementwise functions on CPU (symdiff's kernels)",
        intro=(f"One function of the language on n = {n:.0e} elements. `symdiff` is the code the lowering "
               "emits (a CPU kernel from `symdiff/_kernels.py` where one is wired in, else XLA's routine); "
               "`XLA` is `jax.jit` of the plain `jnp` function; numpy/scipy; PyTorch eager (1 thread and its "
               "default threads). Ratio = symdiff / the fastest peer (< 1: symdiff faster). Each time is the "
               "fastest of round-robin calls (the contenders in turn), on a shared, loaded 2-core machine."),
        columns=["function", "dtype", "symdiff", "XLA", "numpy", "torch", "symdiff / XLA", "symdiff / fastest"],
    )
    rng = np.random.default_rng(0)
    for name in functions:
        text, *_, (lo, hi) = FUNCTIONS[name]
        kernel, names = _lowered(text)
        jfn, nfn, tfn = _peers(name)
        for dtype in dtypes:
            dt = np.dtype(dtype)
            xs = [rng.uniform(lo, hi, n).astype(dt) for _ in names]
            with jax.enable_x64(dtype == "float64"):
                jx = [jnp.asarray(x) for x in xs]
                ours = jax.jit(kernel)
                peer = jax.jit(jfn)
                got = ours(*jx)
                got = got[0] if isinstance(got, (tuple, list)) else got
                with np.errstate(all="ignore"):
                    ref = nfn(*xs)
                rtol = 1e-5 if dtype == "float32" else 1e-12
                check_close(f"{name} {dtype} (symdiff)", got, ref, rtol)
                check_close(f"{name} {dtype} (XLA)", peer(*jx), ref, rtol)
                fns = {"sd": lambda: ours(*jx), "xla": lambda: peer(*jx), "np": lambda: nfn(*xs)}
                if torch is not None:
                    tx = [torch.from_numpy(x) for x in xs]
                    fns["torch"] = lambda: tfn(*tx)
                med = best_times(fns, rep)
            t_torch = med.get("torch")
            fastest = min(t for t in (med["xla"], med["np"], t_torch) if t)
            sec.add(name, dtype, fmt_s(med["sd"]), fmt_s(med["xla"]), fmt_s(med["np"]),
                    fmt_s(t_torch) if torch else "missing", fmt_ratio(med["sd"], med["xla"]),
                    fmt_ratio(med["sd"], fastest))
            sec.summary.setdefault("functions", {})[(name, dtype)] = {
                "sd": med["sd"], "xla": med["xla"], "numpy": med["np"], "torch": t_torch}
    if vjp:
        _vjp_rows(sec, sd, n, dtypes, rep, torch)
    return sec


def best_times(fns: dict, rounds: int) -> dict[str, float]:
    """Fastest call per contender over ``rounds`` rounds in which the contenders run in turn.

    On a loaded shared machine the median mostly measures the other jobs (XLA's two threads suffer more
    than numpy's one); the fastest of interleaved calls is the steadier estimate of what each code costs.
    """
    for fn in fns.values():
        block(fn())
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            block(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _vjp_rows(sec: Section, sd, n: int, dtypes, rep: int, torch) -> None:
    import jax
    import jax.numpy as jnp

    from ._vjp import _jax_fn, _torch_fn

    rows = []
    rng = np.random.default_rng(1)
    for text in VJP_EXPRESSIONS:
        for dtype in dtypes:
            dt = np.dtype(dtype)
            a, b, v = (rng.uniform(-2, 2, n).astype(dt) for _ in range(3))
            d = sd.derive(text, ["a", "b"], dtype=dtype)
            with jax.enable_x64(dtype == "float64"):
                ja, jb, jv = jnp.asarray(a), jnp.asarray(b), jnp.asarray(v)
                f = _jax_fn(text)
                jj = jax.jit(lambda v, a, b: jax.vjp(f, a, b)[1](v))
                ref = jj(jv, ja, jb)
                rtol = 2e-4 if dtype == "float32" else 1e-10
                check_close(f"VJP {text} {dtype}", list(d.vjp(jv, ja, jb)), list(ref), rtol)
                fns = {"sd": lambda: d.vjp(jv, ja, jb), "jax": lambda: jj(jv, ja, jb)}
            t_torch = None
            if torch is not None:
                tf = _torch_fn(text)
                ta = torch.from_numpy(a.copy()).requires_grad_(True)
                tb = torch.from_numpy(b.copy()).requires_grad_(True)
                tv = torch.from_numpy(v.copy())

                def step():
                    ta.grad = None
                    tb.grad = None
                    tf(ta, tb).backward(tv)
                    return ta.grad, tb.grad

                check_close(f"VJP {text} {dtype} (torch)", list(step()), list(ref), rtol)
                fns["torch"] = step
            with jax.enable_x64(dtype == "float64"):
                med = best_times(fns, rep)
            t_torch = med.get("torch")
            rows.append([f"`{text}`", dtype, fmt_s(med["sd"]), fmt_s(med["jax"]),
                         fmt_s(t_torch) if torch else "missing", fmt_ratio(med["sd"], med["jax"]),
                         fmt_ratio(med["sd"], t_torch) if torch else "missing"])
            print("  " + " | ".join(rows[-1]), flush=True)
            sec.summary.setdefault("vjp", {})[(text, dtype)] = {"sd": med["sd"], "jax": med["jax"],
                                                                "torch": t_torch}
    sec.extra_tables.append((f"VJP (n = {n:.0e}; targets: <= 0.5x jax.vjp, <= 1.0x PyTorch eager)",
                             ["expression", "dtype", "sd.vjp", "jax.jit(jax.vjp)", "torch eager", "sd / jax",
                              "sd / torch"], rows))
