"""Per-job cost of budgeted simplification: a worker process vs running the same passes in this process.

For small derivative entries (the seed's, a pendulum gradient entry), times
(a) the default pass chain run directly in this process (what the old
in-process mechanism ran, minus its helper thread), and (b) the same chain
through ``run_budgeted`` (pickle, a round trip to a warm worker, unpickle).
The difference is the mechanism's per-job overhead. Medians of many runs.

Run: python -m benchmarks.budget_roundtrip
"""

from __future__ import annotations

import statistics
import time

import sympy

from symdiff import _budget
from symdiff._simplify import DEFAULT_CHAIN, chain_candidates

from ._symbolic import pendulum_energy


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    a, b = sympy.symbols("a b", real=True)
    energy, syms = pendulum_energy(20)
    cases = {"seed d/da": 9 * a**2, "pendulum d/dth0": energy.diff(syms[0])}
    _budget.wait_ready()
    for name, expr in cases.items():
        direct = _median_seconds(lambda e=expr: list(chain_candidates(e, DEFAULT_CHAIN)), 20)
        worker = _median_seconds(lambda e=expr: _budget.run_budgeted(chain_candidates, (e, DEFAULT_CHAIN), 60.0), 20)
        print(f"{name:18s} ops={sympy.count_ops(expr):5d}  in-process {direct * 1e3:8.2f} ms   worker {worker * 1e3:8.2f} ms"
              f"   overhead {(worker - direct) * 1e3:+.2f} ms")


if __name__ == "__main__":
    main()
