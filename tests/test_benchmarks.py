"""The benchmark suite cannot rot: its smallest case of every family runs and checks its numbers."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import BenchmarkMismatch, Section, check_close, fmt_ratio, fmt_s  # noqa: E402


def test_smoke_run_writes_every_family(tmp_path):
    out = tmp_path / "perf.md"
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--output", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    text = out.read_text()
    for heading in ("## Machine", "## Targets (issue 5)", "## 1. Elementwise VJP", "## 2. k-th derivatives",
                    "## 3. Hessians", "## 4. The symbolic stage", "## 5. Training"):
        assert heading in text, heading
    assert "2-core shared CPU" in text
    assert "| cpu |" in text and "| torch |" in text and "| jax |" in text
    assert "Families that failed" not in text


def test_check_close_refuses_a_wrong_answer():
    ref = np.array([1.0, 2.0, 3.0])
    assert check_close("ok", ref * (1 + 1e-9), ref, 1e-6) < 1e-6
    with pytest.raises(BenchmarkMismatch, match="disagrees"):
        check_close("wrong", ref + np.array([0, 0, 0.1]), ref, 1e-6)
    with pytest.raises(BenchmarkMismatch, match="shape"):
        check_close("shape", ref[:2], ref, 1e-6)
    with pytest.raises(BenchmarkMismatch):
        check_close("nan", np.array([1.0, np.nan, 3.0]), ref, 1e-6)


def test_formatting_and_missing_peers():
    assert fmt_s(2.5) == "2.50 s" and fmt_s(0.0123) == "12.3 ms" and fmt_s(12e-6) == "12 µs"
    assert fmt_ratio(1.0, None) == "n/a" and fmt_ratio(1.0, 4.0) == "0.25"
    s = Section("t", columns=["a", "b"])
    s.add("x", "missing")
    assert "| x | missing |" in s.markdown()
