"""d.check: agreement is reported, disagreement raises, kinks follow the convention."""

import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff._lower import FUNCTION_TABLE


def test_report_fields_and_text():
    d = sd.derive("sin(a)*exp(b)")
    r = d.check(a=np.array([0.1, 0.5]), b=np.array([0.2, -0.3]))
    assert r.ok and r.max_abs_error < 1e-12 and r.max_rel_error < 1e-12
    assert r.n_points == 2 and r.n_entries == 2 and r.dtype == "float64"
    assert "cross-check passed" in str(r)


def test_higher_order_and_vector_valued():
    assert sd.derive("sin(x)*exp(y)", order=3).check(np.array([0.3, 1.0]), 0.5).ok
    assert sd.derive(["x*y", "sin(x)"], order=2).check(1.0, 2.0).ok


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_low_precision_uses_per_dtype_tolerance(dtype):
    r = sd.derive("exp(x)*x", "x", dtype=dtype).check([0.1, 0.5, 1.0])
    assert r.ok and r.dtype == dtype


def test_kinks_follow_convention_and_skip_finite_differences():
    d = sd.derive("abs(x)*y + relu(x) + max(x, y) + min(x, y)")
    r = d.check(np.array([0.0, 1.0, -1.0, 2.0]), np.array([0.0, 2.0, 3.0, 2.0]))
    assert r.ok and r.kinks > 0


class _wrong(sympy.Function):
    """A function whose symbolic derivative rule is deliberately wrong."""

    def fdiff(self, argindex=1):
        return 2 * sympy.cos(self.args[0])


def test_disagreement_raises_cross_check_error(monkeypatch):
    monkeypatch.setitem(FUNCTION_TABLE, _wrong, "jnp.sin({0})")
    x = sympy.Symbol("x", real=True)
    d = sd.derive(_wrong(x) + x)
    with pytest.raises(sd.CrossCheckError) as info:
        d.check([0.1, 0.2])
    assert not info.value.report.ok
    assert info.value.report.max_abs_error > 0.9
    assert "FAILED" in str(info.value)
