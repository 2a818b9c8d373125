"""Cold and cached timing of the seed example: derive + first call, then a cached derive + call.

Run: python benchmarks/seed_timing.py   (a fresh process, so "cold" is really cold)
"""

import time

import numpy as np

import symdiff as sd

a, b = [2.0, 3.0], [6.0, 4.0]
t0 = time.perf_counter()
d = sd.derive("3*a**3 - b**2")
ga, gb = d(a=a, b=b)
ga.block_until_ready()
cold = time.perf_counter() - t0

times = []
for _ in range(200):
    t0 = time.perf_counter()
    d = sd.derive("3*a**3 - b**2")
    ga, gb = d(a=a, b=b)
    gb.block_until_ready()
    times.append(time.perf_counter() - t0)
derive_only = []
for _ in range(200):
    t0 = time.perf_counter()
    sd.derive("3*a**3 - b**2")
    derive_only.append(time.perf_counter() - t0)
print(f"cold derive + first call: {cold * 1e3:.1f} ms")
print(f"cached derive + call:     {np.median(times) * 1e6:.0f} us (median of 200)")
print(f"cached derive alone:      {np.median(derive_only) * 1e6:.0f} us (median of 200)")
print(f"values: {np.asarray(ga)} {np.asarray(gb)}; stats {sd.cache_stats()}")
