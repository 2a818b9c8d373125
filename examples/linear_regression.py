"""Finish the seed's training loop: fit y = 2x + 1 from noisy data, PyTorch-style.

Run: ``python examples/linear_regression.py`` (``--bench`` also times a step,
and PyTorch eager on the same loop when torch is installed).

Twice: once with a manual loop (``no_grad`` and in-place updates), once with
``sd.optim.SGD``. The gradient of the loss is a closed form that symdiff derives
once; every later iteration reuses the compiled derivative.
"""

import os
import sys
import time

import sympy

from symdiff._tensor import linspace, manual_seed, no_grad, randn, tensor
from symdiff.optim import SGD

SMALL = os.environ.get("SYMDIFF_EXAMPLE_SMALL") == "1"
STEPS = 60 if SMALL else 500
LR = 0.5

manual_seed(0)
x = linspace(-1, 1, 100)
y = 2 * x + 1 + 0.1 * randn(100)


def model_text(w, b) -> str:
    X = sympy.Symbol("x", real=True)
    return "y = " + str(sympy.Float(w.item(), 5) * X + sympy.Float(b.item(), 5))


# ---- 1. the manual loop
w = tensor(0.0, requires_grad=True)
b = tensor(0.0, requires_grad=True)
for _step in range(STEPS):
    loss = ((w * x + b - y) ** 2).mean()
    loss.backward()
    with no_grad():
        w -= LR * w.grad
        b -= LR * b.grad
    w.grad.zero_()
    b.grad.zero_()
print(f"manual loop, {STEPS} steps: loss {loss.item():.5f}")
print("gradient used:")
print(loss.derive())
print("learned model:", model_text(w, b))

# ---- 2. the same with sd.optim.SGD
w = tensor(0.0, requires_grad=True)
b = tensor(0.0, requires_grad=True)
optimizer = SGD([w, b], lr=LR)
for _step in range(STEPS):
    optimizer.zero_grad()
    loss = ((w * x + b - y) ** 2).mean()
    loss.backward()
    optimizer.step()
print(f"sd.optim.SGD, {STEPS} steps: loss {loss.item():.5f}")
print("learned model:", model_text(w, b))


# ---- 3. optional: time one step after warm-up, next to PyTorch eager (interleaved rounds, best of)
def bench(rounds: int = 7, n: int = 300) -> None:
    w = tensor(0.0, requires_grad=True)
    b = tensor(0.0, requires_grad=True)
    opt = SGD([w, b], lr=LR)

    def step():
        opt.zero_grad()
        loss = ((w * x + b - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    mw = tensor(0.0, requires_grad=True)
    mb = tensor(0.0, requires_grad=True)

    def manual_step():  # section 1's loop
        loss = ((mw * x + mb - y) ** 2).mean()
        loss.backward()
        with no_grad():
            mw.sub_(LR * mw.grad)
            mb.sub_(LR * mb.grad)
        mw.grad.zero_()
        mb.grad.zero_()
        return loss

    def timed(fn) -> float:
        for _ in range(20):
            fn()
        t0 = time.perf_counter()
        for _ in range(n):
            loss = fn()
        loss.item()  # wait for the last step
        return (time.perf_counter() - t0) / n

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tx = torch.tensor(x.tolist())
        ty = torch.tensor(y.tolist())
        tw = torch.tensor(0.0, requires_grad=True)
        tb = torch.tensor(0.0, requires_grad=True)
        topt = torch.optim.SGD([tw, tb], lr=LR)

        def tstep():
            topt.zero_grad()
            loss = ((tw * tx + tb - ty) ** 2).mean()
            loss.backward()
            topt.step()
            return loss

        mtw = torch.tensor(0.0, requires_grad=True)
        mtb = torch.tensor(0.0, requires_grad=True)
        mtw.grad = torch.zeros(())
        mtb.grad = torch.zeros(())

        def manual_tstep():
            loss = ((mtw * tx + mtb - ty) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                mtw.sub_(LR * mtw.grad)
                mtb.sub_(LR * mtb.grad)
            mtw.grad.zero_()
            mtb.grad.zero_()
            return loss

    ours, theirs, ours_manual, theirs_manual = [], [], [], []
    for _ in range(rounds):
        ours.append(timed(step))
        if torch is not None:
            theirs.append(timed(tstep))
    for _ in range(rounds):
        ours_manual.append(timed(manual_step))
        if torch is not None:
            theirs_manual.append(timed(manual_tstep))

    def us(times) -> str:
        return f"{min(times) * 1e6:.1f} us/step best, {sorted(times)[rounds // 2] * 1e6:.1f} median"

    print(f"symdiff: {us(ours)} (SGD, 100 points, {rounds} rounds of {n} steps after warm-up)")
    if torch is None:
        print("torch not installed: no PyTorch comparison")
    else:
        print(f"PyTorch {torch.__version__} eager: {us(theirs)} (same loop, same run)")
    print(f"manual loop (no_grad, in-place updates), symdiff {us(ours_manual)}"
          + ("" if torch is None else f"; PyTorch {us(theirs_manual)}"))


if "--bench" in sys.argv:
    bench()
