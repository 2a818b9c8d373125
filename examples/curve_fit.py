"""Fit a damped oscillator to noisy measurements with ``sd.fit``.

The model ``A*exp(-k*t)*cos(w*t + p)`` has four parameters; the loss is the
squared residual, averaged over the measurements. symdiff derives the
closed-form gradient, compiles the whole optimisation, and returns the fitted
formula and a plot (loss curve, data and fitted curve).

    python examples/curve_fit.py                  # full run, writes curve_fit.png
    python examples/curve_fit.py --quick --out /tmp/fit.png
"""

from __future__ import annotations

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")  # write files; no window needed

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

try:  # the public name once it is exported
    from symdiff import fit  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - until symdiff/__init__.py re-exports it
    from symdiff._fit import fit

TRUE = {"A": 2.0, "k": 0.3, "w": 1.5, "p": 0.5}
LOSS = "(A*exp(-k*t)*cos(w*t + p) - y)**2"


def make_data(n: int, noise: float = 0.05, seed: int = 0):
    """Noisy samples of the true oscillator on 0 <= t <= 10."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 10.0, n)
    y = TRUE["A"] * np.exp(-TRUE["k"] * t) * np.cos(TRUE["w"] * t + TRUE["p"])
    return t, y + noise * rng.normal(size=n)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and few steps (a few seconds)")
    parser.add_argument("--out", default="curve_fit.png", help="where to save the plot (PNG)")
    parser.add_argument("--optimizer", default="lbfgs", help="sgd, adam, adamw or lbfgs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    n, steps = (200, 60) if args.quick else (2000, 300)
    if args.optimizer != "lbfgs" and not args.quick:
        steps = 3000
    t, y = make_data(n)
    start = {"A": 1.0, "k": 0.1, "w": 1.4, "p": 0.0}  # a rough guess; the frequency must be roughly right

    r = fit(LOSS, start, {"t": t, "y": y}, steps=steps, optimizer=args.optimizer,
            lr=None if args.optimizer == "lbfgs" else 0.05, progress=not args.no_progress)

    print(r)
    print()
    print("closed-form gradient of the loss:")
    print(r.derivative)
    print()
    print("fitted formula:", r.formula(4))
    print("true values:   ", ", ".join(f"{k} = {v}" for k, v in TRUE.items()))
    print("fitted values: ", ", ".join(f"{k} = {float(r.params[k]):.4f}" for k in TRUE))
    fig = r.plot()
    fig.savefig(args.out, dpi=100)
    print("plot saved to", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
