"""The command line, run as a user runs it: in a subprocess."""

import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "symdiff", *args], capture_output=True, text=True, timeout=120)


def test_seed_values():
    r = run("3*a**3 - b**2", "--at", "a=2,3", "--at", "b=6,4")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["d/da = 9*a**2", "d/db = -2*b"]
    assert "[36. 81.]" in r.stdout and "[-12. -8.]" in r.stdout


def test_latex_source_check_order_dtype():
    r = run("x**3*y", "--wrt", "x", "--order", "2", "--at", "x=1,2", "--at", "y=3",
            "--latex", "--source", "--check", "--dtype", "float64", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "\\frac{\\partial^{2}}{\\partial x^{2}} = 6 x y" in r.stdout
    assert "def derivative(x, y):" in r.stdout
    assert "[18. 36.]" in r.stdout
    assert "cross-check passed" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["x.__class__"], "ParseError"),
        (["x*y", "--at", "x=1"], "missing input 'y'"),
        (["x", "--at", "x=abc"], "comma-separated numbers"),
        (["x", "--dtype", "float8"], "DtypeError"),
        (["x", "--device", "tpu:7"], "DeviceError"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(args, needle):
    r = run(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
