"""(5) Training: ``sd.fit`` and the tensor front end, by reusing the owners' benchmarks.

* ``benchmarks/fit_bench.py`` (its ``--worker 1`` mode, one device, a fresh
  process): ``sd.fit`` steps/s against a hand-written ``jax.jit`` +
  ``jax.value_and_grad`` + optax loop and the same step in ``lax.scan``.
* ``examples/linear_regression.py --bench``: one PyTorch-style step of the
  tensor API (``zero_grad``, forward, ``backward``, ``SGD.step``) against the
  same loop in PyTorch eager.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from ._common import Section, fmt_s

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _env(small: bool = False) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if small:
        env["SYMDIFF_EXAMPLE_SMALL"] = "1"
    return env


def fit_numbers(rows: int, steps: int, repeat: int, timeout: float = 600) -> dict:
    cmd = [sys.executable, os.path.join(HERE, "fit_bench.py"), "--worker", "1", "--rows", str(rows), "--steps",
           str(steps), "--repeat", str(repeat)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env())
    if r.returncode != 0:
        raise RuntimeError("benchmarks/fit_bench.py failed:\n" + r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


_US = r"([0-9.]+) us/step best, ([0-9.]+) median"


def tensor_numbers(small: bool, timeout: float = 600) -> dict:
    cmd = [sys.executable, os.path.join(ROOT, "examples", "linear_regression.py"), "--bench"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env(small))
    if r.returncode != 0:
        raise RuntimeError("examples/linear_regression.py --bench failed:\n" + r.stderr[-3000:])
    out = {"stdout": r.stdout}
    m = re.search(r"symdiff: " + _US, r.stdout)
    if not m:
        raise RuntimeError("could not read the symdiff timing from linear_regression.py --bench:\n" + r.stdout)
    out["sd_best"], out["sd_median"] = float(m.group(1)) * 1e-6, float(m.group(2)) * 1e-6
    m = re.search(r"PyTorch (\S+) eager: " + _US, r.stdout)
    if m:
        out["torch_version"] = m.group(1)
        out["torch_best"], out["torch_median"] = float(m.group(2)) * 1e-6, float(m.group(3)) * 1e-6
    losses = re.findall(r"loss ([0-9.]+)", r.stdout)
    out["losses"] = [float(x) for x in losses]
    return out


def run(quick: bool = False, rows: int | None = None, steps: int | None = None, repeat: int | None = None,
        tensor: bool = True) -> Section:
    rows = rows or 4096
    steps = steps or (500 if quick else 2000)
    repeat = repeat or 3
    sec = Section(
        "5. Training",
        intro=("From `benchmarks/fit_bench.py --worker 1` (damped-oscillator fit, Adam, full batch, float32, "
               f"{rows} rows, {steps} steps, best of {repeat}, compilation excluded, fresh process) and "
               "`examples/linear_regression.py --bench` (tensor API vs PyTorch eager, SGD on 100 points, "
               "7 interleaved rounds of 300 steps). Both are run as they are, in subprocesses."),
        columns=["benchmark", "symdiff", "peer", "peer value", "ratio (higher/lower is better: see target)",
                 "target", "met"],
    )
    f = fit_numbers(rows, steps, repeat)
    if f["max_param_difference_vs_hand"] > 1e-3:
        raise AssertionError(f"sd.fit disagrees with the hand-written loop: {f['max_param_difference_vs_hand']}")
    ratio = f["sd_fit_steps_per_s"] / f["hand_loop_steps_per_s"]
    sec.summary["fit"] = f
    sec.add("`sd.fit` steps/s", f"{f['sd_fit_steps_per_s']:.0f}/s", "hand `jax.jit` step loop",
            f"{f['hand_loop_steps_per_s']:.0f}/s", f"{ratio:.2f} (sd/peer steps/s)", ">= 0.9",
            "met" if ratio >= 0.9 else "not met")
    r2 = f["sd_fit_steps_per_s"] / f["hand_scan_steps_per_s"]
    sec.add("`sd.fit` steps/s", f"{f['sd_fit_steps_per_s']:.0f}/s", "hand `lax.scan` (reference)",
            f"{f['hand_scan_steps_per_s']:.0f}/s", f"{r2:.2f} (sd/peer steps/s)", "(reference)", "")
    sec.notes.append(f"`sd.fit` first call (derive + compile + {steps} steps): {fmt_s(f['sd_fit_first_call_s'])}; "
                     f"max |parameter difference| against the hand loop: {f['max_param_difference_vs_hand']:.1e}.")
    if tensor:
        t = tensor_numbers(small=quick)
        sec.summary["tensor"] = t
        if "torch_median" in t:
            tr = t["sd_median"] / t["torch_median"]
            sec.add("tensor API step (median)", fmt_s(t["sd_median"]), f"PyTorch {t['torch_version']} eager",
                    fmt_s(t["torch_median"]), f"{tr:.2f} (sd/peer time)", "<= 1.0", "met" if tr <= 1.0 else "not met")
            sec.add("tensor API step (best)", fmt_s(t["sd_best"]), f"PyTorch {t['torch_version']} eager",
                    fmt_s(t["torch_best"]), f"{t['sd_best'] / t['torch_best']:.2f} (sd/peer time)", "", "")
        else:
            sec.add("tensor API step (median)", fmt_s(t["sd_median"]), "PyTorch eager", "missing (torch not installed)",
                    "n/a", "<= 1.0", "n/a")
    return sec
