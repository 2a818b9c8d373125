"""Cold-derive cost of the budget mechanism: the seed example and a 20-link pendulum energy gradient.

Each case runs in a fresh process (so "cold" includes SymPy's first lazy imports
and, for the process-based budgets, starting the simplification worker):
derive with the default budget, then the first call. Prints one JSON line per case.

Run: python -m benchmarks.budget_overhead [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CASE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import symdiff as sd
from benchmarks._symbolic import pendulum_energy
t_import = time.perf_counter() - t0
case = {case!r}
if case == "seed":
    expr, args = "3*a**3 - b**2", dict(a=[2., 3.], b=[6., 4.])
else:
    expr, syms = pendulum_energy(20)
    args = {{s.name: 0.1 * (i + 1) for i, s in enumerate(syms)}}
t0 = time.perf_counter()
d = sd.derive(expr)
t_derive = time.perf_counter() - t0
out = d(**args)
np.asarray(out[0])
t_total = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(100):
    sd.derive(expr)
t_cached = (time.perf_counter() - t0) / 100
print(json.dumps(dict(case=case, import_s=t_import, derive_s=t_derive, derive_and_call_s=t_total, cached_derive_us=t_cached * 1e6)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for case in ("seed", "pendulum20"):
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", _CASE.format(case=case)], capture_output=True, text=True,
                                 check=True, timeout=600)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        best = {k: min(r[k] for r in runs) if k != "case" else case for k in runs[0]}
        print(json.dumps(best))


if __name__ == "__main__":
    main()
