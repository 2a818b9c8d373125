"""Run the benchmark suite and write the markdown report.

    python -m benchmarks                 # full run, writes docs/performance.md
    python -m benchmarks --quick         # a few minutes; prints the report (use --output to keep it)
    python -m benchmarks --smoke         # the smallest case of each family (what the test runs)
    python -m benchmarks --only vjp kth  # some families only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FAMILIES = ("vjp", "kth", "hessian", "symbolic", "training", "kernels", "arrays")
FAMILIES += ("sparse",)  # issue 12: sparse Hessians and Hessian-vector products
FAMILIES += ("compile",)  # issue 13: compile time, cold start, caches across processes


def _run_family(name: str, mode: str):
    if name == "compile":
        from . import _compile_time

        return _compile_time.run(quick=mode != "full", smoke=mode == "smoke")
    if name == "sparse":
        from . import _sparse

        sizes = {"smoke": _sparse.SMOKE, "quick": _sparse.QUICK}.get(mode, _sparse.SIZES)
        return _sparse.run(quick=mode != "full", sizes=sizes, repeat=3 if mode == "smoke" else None)
    from . import _arrays, _hessian, _kernels, _kth, _symbolic, _training, _vjp

    if name == "arrays":  # issue 11: matrix calculus
        return _arrays.run(quick=mode != "full", sizes=_arrays.SMOKE if mode == "smoke" else None,
                           repeat=3 if mode == "smoke" else None)

    if mode == "smoke":
        if name == "vjp":
            return _vjp.run(quick=True, sizes=[10**4], dtypes=["float32"], expressions=_vjp.EXPRESSIONS[:1], repeat=3)
        if name == "kth":
            return _kth.run(quick=True, n=10**4, orders=[3], functions=["tanh(x)"], repeat=3)
        if name == "hessian":
            return _hessian.run(quick=True, sizes=[3], logistic=None, timeout=120, repeat=3)
        if name == "symbolic":
            return _symbolic.run(quick=True, links=[2], large=[], repeat=3)
        if name == "kernels":
            return _kernels.run(quick=True, n=10**4, functions=["sin"], dtypes=["float32"], repeat=3, vjp=False)
        return _training.run(quick=True, rows=256, steps=50, repeat=1, tensor=False)
    quick = mode == "quick"
    return {"vjp": _vjp.run, "kth": _kth.run, "hessian": _hessian.run, "symbolic": _symbolic.run,
            "training": _training.run, "kernels": _kernels.run}[name](quick=quick)


def _verdict(ok) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def targets_table(sections: dict) -> list[str]:
    """One row per target of issue 5: measured value and met / not met."""
    rows = []
    s = sections.get("vjp")
    if s is not None:
        m = s.summary
        rows.append(("VJP: median ratio sd.vjp / jax.jit(jax.vjp) <= 0.9", f"{m['median sd.vjp/jax']:.2f}",
                     m["median sd.vjp/jax"] <= 0.9))
        rows.append(("VJP: no case above 1.1", f"max {m['max sd.vjp/jax']:.2f}", m["max sd.vjp/jax"] <= 1.1))
        rows.append(("VJP (d.function inside jax.jit): median <= 0.9 / max <= 1.1",
                     f"{m['median sd jit/jax']:.2f} / {m['max sd jit/jax']:.2f}",
                     m["median sd jit/jax"] <= 0.9 and m["max sd jit/jax"] <= 1.1))
        rows.append(("VJP: effective bandwidth >= 70 % of copy/add/triad", f"{100 * m['median bandwidth fraction']:.0f} %",
                     m["median bandwidth fraction"] >= 0.7))
    s = sections.get("kth")
    if s is not None:
        k = s.summary["kmax"]
        for text, r in s.summary["at_kmax"].items():
            rows.append((f"k={k} `{text}`: run >= 10x faster than nested grad",
                         f"{r['grad'] / r['sd']:.1f}x (floor: at most {r['grad'] / r['floor']:.1f}x possible)",
                         r["grad"] / r["sd"] >= 10))
            if r["jet"]:
                rows.append((f"k={k} `{text}`: run >= 3x faster than jet",
                             f"{r['jet'] / r['sd']:.1f}x (floor: at most {r['jet'] / r['floor']:.1f}x possible)",
                             r["jet"] / r["sd"] >= 3))
            else:
                rows.append((f"k={k} `{text}`: run >= 3x faster than jet", "jet missing", None))
            rows.append((f"k={k} `{text}`: trace+compile >= 20x faster than nested grad",
                         f"{r['gradc'] / r['sdc']:.1f}x", r["gradc"] / r["sdc"] >= 20))
            rows.append((f"k={k} `{text}`: symbolic stage < 1 s", f"{r['sym']:.2f} s", r["sym"] < 1))
    s = sections.get("hessian")
    if s is not None:
        for (label, n), r in s.summary.items():
            if label != "Rosenbrock":
                continue
            if r is None or "sd_run" not in r:
                rows.append((f"Hessian Rosenbrock n={n}: derive + first call", "did not finish in the limit",
                             False if n <= 100 else None))
                continue
            if n <= 100:
                rows.append((f"Hessian Rosenbrock n={n}: d.array run <= 1.0x jax.hessian",
                             f"{r['sd_run'] / r['jax_run']:.2f} (inputs: n JAX scalars "
                             f"{r['sd_jax_scalars_run'] / r['jax_run']:.2f})", r["sd_run"] / r["jax_run"] <= 1.0))
            if n == 100:
                t = r["sd_derive"] + r["sd_first_call"]
                rows.append(("Hessian Rosenbrock n=100: derive + compile < 3 s", f"{t:.2f} s", t < 3))
            if n > 100:
                rows.append((f"Hessian Rosenbrock n={n}: report the cost",
                             f"derive {r['sd_derive']:.1f} s + 1st call {r['sd_first_call']:.1f} s; run "
                             f"{r['sd_run'] / r['jax_run']:.2f}x jax", None))
    s = sections.get("symbolic")
    if s is not None:
        cases = s.summary["cases"]
        last = list(cases)[-1]
        r = cases[last]
        rows.append((f"symbolic: cold derive >= 5x faster than SymPy diff+cse+lambdify ({last})",
                     f"{r['sympy'] / r['cold']:.2f}x (simplify=False: {r['sympy'] / r['cold_ns']:.2f}x)",
                     r["sympy"] / r["cold"] >= 5))
        worst = max(v["cached"] for v in cases.values())
        rows.append(("symbolic: cached derive < 1 ms", f"max {worst * 1e3:.2f} ms over the cases",
                     worst < 1e-3))
        for big in s.summary.get("large", []):
            size = f"{big.get('ops')} ops" if big["kind"] == "wide" else f"depth {big['size']}"
            rows.append((f"symbolic: no RecursionError, {big['kind']} expression, {size}",
                         big.get("error") or f"ok (derive {big.get('derive', 0):.1f} s)", not big.get("error")))
    if sections.get("arrays") is not None:
        from . import _arrays

        rows += _arrays.targets(sections["arrays"])
    if sections.get("sparse") is not None:
        from . import _sparse

        rows += _sparse.targets(sections["sparse"])
    if sections.get("compile") is not None:
        from . import _compile_time

        rows += _compile_time.targets(sections["compile"])
    s = sections.get("training")
    if s is not None:
        f = s.summary["fit"]
        r = f["sd_fit_steps_per_s"] / f["hand_loop_steps_per_s"]
        rows.append(("training: sd.fit steps/s >= 0.9x hand jax.jit loop", f"{r:.2f}x", r >= 0.9))
        t = s.summary.get("tensor")
        if t and "torch_median" in t:
            r = t["sd_median"] / t["torch_median"]
            rows.append(("training: tensor API step no slower than PyTorch eager (median)", f"{r:.2f}x time",
                         r <= 1.0))
        elif t:
            rows.append(("training: tensor API step vs PyTorch eager", "torch missing", None))
    out = ["| target | measured | verdict |", "|---|---|---|"]
    out += [f"| {a} | {b} | {_verdict(c)} |" for a, b, c in rows]
    return out


def render(sections: dict, mode: str, machine: dict, versions: dict, elapsed: float, errors: dict) -> str:
    lines = [
        "# Performance: symdiff against JAX, PyTorch and SymPy",
        "",
        f"Generated by `python -m benchmarks{'' if mode == 'full' else ' --' + mode}` "
        f"(total {elapsed / 60:.1f} min). Every number below was checked against the peer's result before "
        "it was timed; a disagreement aborts the run. Times are medians of repeated runs after warm-up, "
        "with `block_until_ready`; compile and trace times are reported apart from run times. "
        "Ratio = symdiff time / peer time (below 1: symdiff faster) unless a column says otherwise.",
        "",
        "**Timings are from a 2-core shared CPU machine** (other jobs ran alongside; the load average is given "
        "below), so expect noise of 10-30 % between runs; ratios within one run are more stable than times.",
        "JAX runs with `jax_enable_x64` on (the float32 rows use float32 arrays and are checked to stay float32).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in machine.items()]
    lines += [f"| {k} | {v} |" for k, v in versions.items()]
    lines += ["", "## Targets (issue 5)", ""] + targets_table(sections) + [""]
    if errors:
        lines += ["## Families that failed", ""]
        lines += [f"- {k}: `{v}`" for k, v in errors.items()] + [""]
    for name in FAMILIES:
        if name in sections:
            lines.append(sections[name].markdown())
    lines += [
        "## Reproduce",
        "",
        "```",
        "pip install -e .[bench] torch   # torch only for the PyTorch columns",
        "python -m benchmarks            # full run, writes docs/performance.md (well under 30 min)",
        "python -m benchmarks --quick    # a few minutes, prints the report",
        "python benchmarks/fit_bench.py  # sd.fit on 1 and 4 simulated devices",
        "python examples/linear_regression.py --bench",
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    mode.add_argument("--smoke", action="store_true", help="the smallest case of each family (the test)")
    parser.add_argument("--only", nargs="+", choices=FAMILIES, help="run only these families")
    parser.add_argument("--output", help="markdown file to write (full run default: docs/performance.md; "
                                         "'-' for none)")
    parser.add_argument("--keep-going", action="store_true", help="report a failing family and go on")
    args = parser.parse_args(argv)
    run_mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    output = args.output or (os.path.join(ROOT, "docs", "performance.md") if run_mode == "full" else "-")

    import jax

    jax.config.update("jax_enable_x64", True)  # float64 peers; float32 rows use float32 arrays explicitly
    from ._common import machine_info, peer_versions

    machine = machine_info()
    versions = peer_versions()
    print(f"symdiff benchmarks ({run_mode}) on {machine['cpu']}, {machine['cores']} cores, load "
          f"{machine['load average at start (1, 5, 15 min)']}", flush=True)
    print("peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    t_start = time.perf_counter()
    sections, errors = {}, {}
    for name in args.only or FAMILIES:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            sections[name] = _run_family(name, run_mode)
        except Exception as exc:
            if not args.keep_going:
                raise
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}"[:500]
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    elapsed = time.perf_counter() - t_start
    try:
        machine["load average at end (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    text = render(sections, run_mode, machine, versions, elapsed, errors)
    if output == "-":
        print(text)
    else:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {output} ({elapsed / 60:.1f} min)")
        print("\n".join(targets_table(sections)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
