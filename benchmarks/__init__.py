"""symdiff's benchmark suite: ``python -m benchmarks`` (full) or ``python -m benchmarks --quick``.

Every benchmark runs symdiff and its peers (JAX, PyTorch, SymPy, SciPy) side by
side in one process, checks symdiff's numbers against the peer's before timing
anything, and reports median run times, compile/trace times apart, and ratios
symdiff / peer. The full run writes ``docs/performance.md``.
"""
