"""d.save / sd.load: another process runs the derivative without SymPy work."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import symdiff as sd


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "d.sdz"
    d = sd.derive("3*a**3 - b**2 + sin(a)*abs(b)")
    d.save(path)
    return d, path


def test_another_process_loads_and_runs_without_sympy_work(saved):
    d, path = saved
    code = f"""
import json, numpy as np, symdiff as sd
l = sd.load({str(path)!r})
ga, gb = l(a=np.array([2., 3.]), b=np.array([6., -4.]))
print(json.dumps({{"str": str(l), "ga": np.asarray(ga).tolist(), "gb": np.asarray(gb).tolist(),
                  "stats": sd.cache_stats()}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["stats"]["symbolic"] == 0
    assert out["str"] == str(d)
    a, b = np.array([2.0, 3.0]), np.array([6.0, -4.0])
    np.testing.assert_allclose(out["ga"], 9 * a**2 + np.cos(a) * np.abs(b), rtol=1e-12)
    np.testing.assert_allclose(out["gb"], -2 * b + np.sin(a) * np.sign(b), rtol=1e-12)


def test_loaded_closed_forms_and_broadcasting(saved):
    d, path = saved
    loaded = sd.load(path)
    assert loaded.closed_form == d.closed_form
    a, b = np.array([2.0, 3.0]), np.array([[6.0], [4.0]])
    for got, want in zip(loaded(a, b), d(a, b)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)


def _rewrite(src_path, dst_path, change):
    """Copy a saved archive, passing each member's bytes through ``change(name, body)``."""
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(dst_path, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, change(name, src.read(name)))
    return dst_path


def _future_format(name, body):
    if name != "meta.json":
        return body
    meta = json.loads(body)
    meta["format"] = "symdiff-derivative/99"
    return json.dumps(meta).encode()


def _zeroed_blobs(name, body):
    return body[:40] + b"\x00" * 64 + body[104:] if name.endswith(".bin") else body


def test_damaged_files_raise_symdiff_error(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    truncated = tmp_path / "truncated.sdz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(sd.SymdiffError, match="damaged"):
        sd.load(truncated)
    with pytest.raises(sd.SymdiffError, match="not a symdiff-derivative/1 file"):
        sd.load(_rewrite(path, tmp_path / "wrong.sdz", _future_format))
    with pytest.raises(sd.SymdiffError):
        sd.load(_rewrite(path, tmp_path / "corrupt.sdz", _zeroed_blobs))(a=1.0, b=2.0)
    with pytest.raises(sd.SymdiffError):
        sd.load(tmp_path / "missing.sdz")
