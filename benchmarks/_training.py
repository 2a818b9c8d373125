"""(5) Training: ``sd.fit`` and the tensor front end, by reusing the owners' benchmarks.

* ``benchmarks/fit_bench.py`` (its ``--worker 1`` mode, one device, a fresh
  process): ``sd.fit`` steps/s against a hand-written ``jax.jit`` +
  ``jax.value_and_grad`` + optax loop and the same step in ``lax.scan``.
* ``examples/linear_regression.py --bench``: one PyTorch-style step of the
  tensor API (``zero_grad``, forward, ``backward``, ``SGD.step``) against the
  same loop in PyTorch eager.
* ``python -m benchmarks._training --mlp-worker`` (issue 11): the same step for
  a two-layer MLP, ``tanh(X @ W1 + b1) @ W2 + b2`` with a mean squared error
  (batch 256, 32 -> 64 -> 1, float32, SGD), whose gradients are matrix closed
  forms, against PyTorch eager (its default threads and one thread; the faster
  is the peer). Both start from the same parameters; their parameters after
  the timed steps are compared.
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
        m = mlp_numbers(rounds=3 if quick else 7, steps=100 if quick else 200)
        sec.summary["mlp"] = m
        label = "tensor training step of a 2-layer MLP (batch 256, 32 -> 64 -> 1), median"
        if "torch_median" in m:
            mr = m["sd_median"] / m["torch_median"]
            sec.add(label, fmt_s(m["sd_median"]), f"PyTorch {m['torch_version']} eager ({m['torch_threads']})",
                    fmt_s(m["torch_median"]), f"{mr:.2f} (sd/peer time)", "<= 1.0", "met" if mr <= 1.0 else "not met")
            sec.notes.append(
                f"2-layer MLP step: symdiff best {fmt_s(m['sd_best'])}; PyTorch eager median with its default "
                f"threads {fmt_s(m['torch_default_median'])}, with one thread {fmt_s(m['torch_1_median'])}; "
                f"max |parameter difference| after the timed steps: {m['max_param_difference']:.1e}; "
                f"SymPy derivations during the timed steps: {m['rederived']}, traces: {m['retraced']}.")
        else:
            sec.add(label, fmt_s(m["sd_median"]), "PyTorch eager", "missing (torch not installed)", "n/a", "<= 1.0",
                    "n/a")
    return sec


def mlp_numbers(rounds: int = 7, steps: int = 200, timeout: float = 600) -> dict:
    """The MLP step timings, measured in a fresh process (see :func:`_mlp_worker`)."""
    cmd = [sys.executable, "-m", "benchmarks._training", "--mlp-worker", "--rounds", str(rounds), "--steps",
           str(steps)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env())
    if r.returncode != 0:
        raise RuntimeError("python -m benchmarks._training --mlp-worker failed:\n" + r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def _mlp_worker(rounds: int, steps: int) -> dict:
    """Median and best seconds per training step, symdiff tensors and PyTorch eager, in interleaved rounds."""
    import statistics
    import time

    import numpy as np

    import symdiff as sd

    rng = np.random.default_rng(0)
    Xv, Yv = rng.normal(size=(256, 32)).astype(np.float32), rng.normal(size=(256, 1)).astype(np.float32)
    init = [rng.normal(scale=0.2, size=s).astype(np.float32) for s in ((32, 64), (64,), (64, 1), (1,))]
    X, Y = sd.tensor(Xv), sd.tensor(Yv)
    params = [sd.tensor(p, requires_grad=True) for p in init]
    opt = sd.optim.SGD(params, lr=0.01)

    def sd_step():
        W1, b1, W2, b2 = params
        opt.zero_grad()
        loss = ((sd.tanh(X @ W1 + b1) @ W2 + b2 - Y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    steppers = {"sd": sd_step}
    torch_params: dict = {}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tX, tY = torch.tensor(Xv), torch.tensor(Yv)
        default_threads = torch.get_num_threads()
        for threads in (default_threads, 1):
            tparams = [torch.tensor(p, requires_grad=True) for p in init]
            topt = torch.optim.SGD(tparams, lr=0.01)

            def torch_step(tparams=tparams, topt=topt, threads=threads):
                torch.set_num_threads(threads)
                W1, b1, W2, b2 = tparams
                topt.zero_grad()
                loss = ((torch.tanh(tX @ W1 + b1) @ W2 + b2 - tY) ** 2).mean()
                loss.backward()
                topt.step()
                return loss

            name = "torch_default" if threads == default_threads else "torch_1"
            steppers[name], torch_params[name] = torch_step, tparams
    for _ in range(20):  # warm-up: derivation, compilation, allocator
        for step in steppers.values():
            step()
    before = sd.cache_stats()
    times: dict = {name: [] for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = step()
            loss.item()
            times[name].append((time.perf_counter() - t0) / steps)
    after = sd.cache_stats()
    out = {"sd_median": statistics.median(times["sd"]), "sd_best": min(times["sd"]),
           "rederived": after["symbolic"] - before["symbolic"], "retraced": after["traces"] - before["traces"]}
    if torch is not None:
        torch.set_num_threads(default_threads)
        out["torch_version"] = torch.__version__
        out["torch_default_median"] = statistics.median(times["torch_default"])
        out["torch_1_median"] = statistics.median(times.get("torch_1", times["torch_default"]))
        faster = min(("torch_default", "torch_1"), key=lambda k: statistics.median(times.get(k, [float("inf")])))
        out["torch_threads"] = f"{default_threads} threads" if faster == "torch_default" else "1 thread"
        out["torch_median"] = statistics.median(times[faster])
        out["torch_best"] = min(times[faster])
        ours = [np.asarray(p.detach()) for p in params]
        theirs = [q.detach().numpy() for q in torch_params[faster]]  # as many steps from the same start
        out["max_param_difference"] = max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs))
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mlp-worker", action="store_true", help="time the 2-layer MLP step; print JSON")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    ns = parser.parse_args()
    if ns.mlp_worker:
        print(json.dumps(_mlp_worker(ns.rounds, ns.steps)))
