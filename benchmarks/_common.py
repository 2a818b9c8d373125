"""Shared helpers of the benchmark suite: timing, checking, machine info, result rows."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


class BenchmarkMismatch(AssertionError):
    """symdiff's numbers disagree with a peer's: the benchmark refuses to time a wrong answer."""


def block(x):
    """Wait for every JAX array in ``x`` (nested tuples/lists/dicts) to be computed."""
    try:
        import jax

        return jax.block_until_ready(x)
    except ImportError:  # pragma: no cover - jax is a dependency
        return x


def median_time(fn: Callable[[], Any], repeat: int, warmup: int = 1, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs, after ``warmup`` runs (results blocked on).

    With ``min_time`` > 0, a run that is faster than ``min_time`` is repeated in
    a loop and the per-call time is taken (for microsecond-scale calls).
    """
    for _ in range(warmup):
        block(fn())
    inner = 1
    if min_time > 0:
        t0 = time.perf_counter()
        block(fn())
        one = time.perf_counter() - t0
        inner = max(1, int(min_time / max(one, 1e-7)))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            out = fn()
        block(out)
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(result, seconds)`` of one blocked call."""
    t0 = time.perf_counter()
    out = block(fn())
    return out, time.perf_counter() - t0


def jit_costs(jitted, *args) -> tuple[float, float, Any]:
    """``(trace_s, compile_s, compiled)`` of a ``jax.jit`` function at these arguments (AOT API)."""
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, compiled


def to_numpy(x):
    if isinstance(x, (tuple, list)):
        return [to_numpy(v) for v in x]
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def check_close(name: str, ours, theirs, rtol: float, atol_scale: float = None) -> float:
    """Raise :class:`BenchmarkMismatch` unless ``ours`` matches ``theirs``; return the max relative error.

    The absolute tolerance is ``rtol`` times the largest magnitude in the
    reference (so entries that cancel to ~0 do not fail on round-off).
    """
    ours, theirs = to_numpy(ours), to_numpy(theirs)
    if not isinstance(ours, list):
        ours, theirs = [ours], [theirs]
    if len(ours) != len(theirs):
        raise BenchmarkMismatch(f"{name}: {len(ours)} outputs vs {len(theirs)} from the peer")
    worst = 0.0
    for i, (o, t) in enumerate(zip(ours, theirs)):
        o, t = np.asarray(o, dtype=np.float64), np.asarray(t, dtype=np.float64)
        if o.shape != t.shape:
            raise BenchmarkMismatch(f"{name}: output {i} has shape {o.shape}, the peer's {t.shape}")
        scale = float(np.max(np.abs(t))) if t.size else 0.0
        atol = (atol_scale if atol_scale is not None else rtol) * max(scale, 1e-300)
        err = np.abs(o - t)
        bad = err > atol + rtol * np.abs(t)
        if not np.all(np.isfinite(o) == np.isfinite(t)) or bad.any():
            j = int(np.argmax(np.where(np.isfinite(err), err, np.inf)))
            raise BenchmarkMismatch(
                f"{name}: output {i} disagrees with the peer at flat index {j}: "
                f"{o.ravel()[j]!r} vs {t.ravel()[j]!r} (rtol {rtol}, {int(bad.sum())} bad entries)"
            )
        rel = err / np.maximum(np.abs(t), atol)
        worst = max(worst, float(np.max(rel)) if rel.size else 0.0)
    return worst


@dataclass
class Section:
    """One benchmark family's results: a markdown table plus notes."""

    title: str
    intro: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    extra_tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])
        print("  " + " | ".join(str(c) for c in cells), flush=True)

    def markdown(self) -> str:
        out = [f"## {self.title}", ""]
        if self.intro:
            out += [self.intro, ""]
        for caption, columns, rows in [("", self.columns, self.rows)] + self.extra_tables:
            if caption:
                out += [caption, ""]
            if columns:
                out.append("| " + " | ".join(columns) + " |")
                out.append("|" + "|".join("---" for _ in columns) + "|")
                for r in rows:
                    out.append("| " + " | ".join(r) + " |")
                out.append("")
        if self.notes:
            out += [f"- {n}" for n in self.notes] + [""]
        return "\n".join(out)


def fmt_s(seconds: float | None) -> str:
    """Seconds in a readable unit."""
    if seconds is None:
        return "n/a"
    if seconds != seconds:
        return "n/a"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "n/a"
    return f"{ours / theirs:.2f}"


def peer_versions() -> dict[str, str]:
    """Versions of symdiff's peers; a missing one is reported as missing."""
    out = {}
    for name in ("jax", "jaxlib", "sympy", "numpy", "scipy", "torch", "optax", "symengine"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except ImportError:
            out[name] = "missing"
    try:
        from jax.experimental import jet  # noqa: F401

        out["jax.experimental.jet"] = "available"
    except ImportError:
        out["jax.experimental.jet"] = "missing"
    return out


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        mem_s = f"{mem:.0f} GiB"
    except (ValueError, OSError):
        mem_s = "?"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "symdiff"], capture_output=True, text=True,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.rstrip()
        if commit and dirty:
            commit += " + uncommitted changes in symdiff/ (" + ", ".join(
                line[3:] for line in dirty.splitlines()[:5]) + ")"
    except OSError:
        commit = "?"
    import jax

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem_s,
        "load average at start (1, 5, 15 min)": load,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jax backend": jax.default_backend(),
        "symdiff commit": commit or "?",
    }


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeat: int, warmup: int = 1,
                        min_time: float = 0.0, max_seconds: float = 20.0) -> dict[str, float]:
    """Median time per contender, the contenders timed in turn within each round.

    On a shared machine the load changes from second to second; timing the
    contenders round-robin exposes them to the same load, so their ratios are
    far steadier than back-to-back blocks of repeats. A contender whose call
    takes longer than ``max_seconds / repeat`` gets fewer repeats (at least
    one), so one very slow peer cannot stall the suite.
    """
    inner = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            block(fn())
        n = 1
        if min_time > 0:
            t0 = time.perf_counter()
            block(fn())
            one = time.perf_counter() - t0
            n = max(1, int(min_time / max(one, 1e-7)))
        inner[name] = n
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            if times[name] and sum(times[name]) * inner[name] > max_seconds:
                continue
            n = inner[name]
            t0 = time.perf_counter()
            for _ in range(n):
                out = fn()
            block(out)
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(ts) for name, ts in times.items()}
