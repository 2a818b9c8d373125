"""A 10^5-operation expression through capture, derive and the first compiled call.

Run: python benchmarks/large_expression.py 20000   (20,000 terms, about 1.2e5 operations)
Prints the cumulative seconds after each stage and the peak memory.
"""

import resource
import sys
import time

import symdiff as sd
from symdiff._capture import capture

n = int(sys.argv[1])
text = " + ".join(f"{(i % 97) / 10 + 0.1}*sin({(i % 89) / 7 + 0.3}*x + y*{(i % 13) / 5})" for i in range(n))
print("chars", len(text), flush=True)
t = time.time()

c = capture(text)
print("capture", time.time() - t, flush=True)
d = sd.derive(text, simplify=True)
print("derive", time.time() - t, flush=True)
g = d(0.3, 0.7)
print("first call", time.time() - t, [float(v) for v in g], flush=True)
print("maxrss MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
