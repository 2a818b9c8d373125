"""Examples are programs that tests run."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_seed_example_prints_the_contract_numbers():
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "seed.py")], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "d/da = 9*a**2"
    assert lines[1] == "d/db = -2*b"
    assert lines[2] == "[36. 81.]"
    assert lines[3].split() == ["[-12.", "-8.]"]
    assert "cross-check passed" in r.stdout
