"""The disk cache across processes: no SymPy work and no XLA compile the second time, robust to damage and races.

Each scenario runs fresh Python processes (``subprocess``) with
``SYMDIFF_CACHE_DIR`` set to a temporary directory. The oracle is the gradient
written by hand in NumPy; compiles are seen through ``jax.monitoring`` events
(a backend compile not preceded by a persistent-cache hit is a real compile).
"""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import symdiff as sd
from symdiff import _disk_cache
from symdiff._deep import call_deep

EXPR = "sin(x*y) + x**3*exp(-y)"

SCRIPT = r"""
import json, sys
import numpy as np
import jax

events = []
jax.monitoring.register_event_listener(lambda e, **k: events.append(e))
jax.monitoring.register_event_duration_secs_listener(
    lambda e, d, **k: events.append("compile:" + str(k.get("fun_name"))) if e.endswith("backend_compile_duration") else None)

import symdiff as sd

x = np.linspace(-1.0, 1.0, 7)
y = np.linspace(0.5, 2.0, 7)
d = sd.derive(sys.argv[1], dtype="float64")
gx, gy = d(x=x, y=y)
compiles, hit = [], False
for e in events:
    if e == "/jax/compilation_cache/cache_hits":
        hit = True
    elif e.startswith("compile:"):
        compiles.append([e[8:], hit])
        hit = False
user = None
if len(sys.argv) > 2:  # the user's own JAX code afterwards, with JAX's write threshold at 0
    import os
    from jax._src import compilation_cache
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    before = sorted(os.listdir(os.path.join(os.environ["SYMDIFF_CACHE_DIR"], "xla")))
    jax.jit(lambda a: a * 3 + 1)(np.arange(3.0))
    after = sorted(os.listdir(os.path.join(os.environ["SYMDIFF_CACHE_DIR"], "xla")))
    user = {"new_files": sorted(set(after) - set(before)), "slot_empty": compilation_cache._cache is None}
print(json.dumps({"gx": np.asarray(gx).tolist(), "gy": np.asarray(gy).tolist(), "stats": sd.cache_stats(),
                  "compiles": compiles, "user": user}))
"""


def _expected():
    x = np.linspace(-1.0, 1.0, 7)
    y = np.linspace(0.5, 2.0, 7)
    return y * np.cos(x * y) + 3 * x**2 * np.exp(-y), x * np.cos(x * y) - x**3 * np.exp(-y)


def _env(cache_dir, **extra):
    env = dict(os.environ, SYMDIFF_CACHE_DIR=str(cache_dir), JAX_PLATFORMS="cpu", **extra)
    return env


def _run(cache_dir, *extra_args, env=None):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, EXPR, *extra_args], capture_output=True, text=True,
                          timeout=180, env=env or _env(cache_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _checked(proc.stdout)


def _checked(stdout: str) -> dict:
    out = json.loads(stdout.strip().splitlines()[-1])
    gx, gy = _expected()
    np.testing.assert_allclose(out["gx"], gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["gy"], gy, rtol=1e-12, atol=1e-12)
    return out


def _real_compiles(out) -> list:
    return [name for name, hit in out["compiles"] if not hit]


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A cache directory filled by one process (which also ran the user's own JAX code)."""
    cache_dir = tmp_path_factory.mktemp("disk") / "cache"
    first = _run(cache_dir, "user")
    return cache_dir, first


def test_first_process_does_the_work_and_leaves_the_users_jax_alone(warm):
    cache_dir, first = warm
    assert first["stats"]["symbolic"] == 1
    assert _real_compiles(first), first["compiles"]  # it compiled...
    assert list((cache_dir / "forms").glob("*.json")) and list((cache_dir / "xla").glob("*-cache"))  # ...and wrote
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    # the user's own jit, compiled after symdiff's, is not written to symdiff's directory
    assert first["user"] == {"new_files": [], "slot_empty": True}


def test_second_process_does_no_sympy_work_and_no_xla_compile(warm):
    cache_dir, _ = warm
    second = _run(cache_dir)
    assert second["stats"]["symbolic"] == 0
    assert second["compiles"] and _real_compiles(second) == [], second["compiles"]


def test_damaged_entries_are_ignored_and_rebuilt(warm, tmp_path):
    cache_dir, _ = warm
    damaged = tmp_path / "damaged"
    damaged.mkdir(mode=0o700)
    for sub in ("forms", "xla"):
        (damaged / sub).mkdir(mode=0o700)
        for i, f in enumerate(sorted((cache_dir / sub).iterdir())):
            blob = f.read_bytes()
            if i % 2 == 0:  # truncated
                blob = blob[: len(blob) // 2]
            else:  # flipped bytes in the middle, same length
                mid = len(blob) // 2
                blob = blob[:mid] + bytes(b ^ 0x5A for b in blob[mid: mid + 16]) + blob[mid + 16:]
            (damaged / sub / f.name).write_bytes(blob)
    out = _run(damaged)
    assert out["stats"]["symbolic"] == 1  # the forms were rebuilt...
    assert _real_compiles(out)  # ...and the program recompiled
    again = _run(damaged)  # the rebuilt entries are whole again
    assert again["stats"]["symbolic"] == 0 and _real_compiles(again) == []


def test_off_writes_nothing(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = _env("off", HOME=str(home), XDG_CACHE_HOME=str(home / "xdg"))
    out = _run("off", env=env)
    assert out["stats"]["symbolic"] == 1
    assert list(home.iterdir()) == []


def test_two_processes_racing_on_an_empty_cache_both_succeed(tmp_path):
    cache_dir = tmp_path / "race"
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, EXPR], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env(cache_dir)) for _ in range(2)]
    for p in procs:
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, stderr[-3000:]
        _checked(stdout)
    assert not [f for f in cache_dir.rglob(".tmp-*")]  # no temporary file left behind
    third = _run(cache_dir)
    assert third["stats"]["symbolic"] == 0 and _real_compiles(third) == []


def test_default_directory_is_private_under_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMDIFF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = _disk_cache.directory()
    assert root == (tmp_path / "xdg" / "symdiff").resolve()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", "OFF")
    assert _disk_cache.directory() is None


def test_foreign_and_hostile_files_read_as_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr(_disk_cache, "_reads", True)  # an earlier test's clear_caches() stops this process reading
    key = ("unit-test key", 1)
    path, digest = _disk_cache._forms_path(key)
    fmt = _disk_cache.FORMS_FORMAT
    hostile = [{"nodes": [["__import__", ["sym", "os"]]], "entries": [0]},  # not a whitelisted head
               {"nodes": [["Add", 1, 2], ["sym", "x"], ["sym", "y"]], "entries": [0]},  # forward references
               {"nodes": [["sym", "x"]], "entries": [5]}]  # a root that is not there
    for text in ("", "{", "[]", json.dumps({"format": "other/1", "digest": digest, "keys": [], "entries": []}),
                 *(json.dumps({"format": fmt, "digest": digest, "keys": [[0, [0]]], **h}) for h in hostile)):
        path.write_text(text)
        assert _disk_cache.load_forms(key) is None
    cache = _disk_cache._ExecutableCache(tmp_path / "c" / "xla")
    cache.put("k", b"jax entry")
    assert cache.get("k") == b"jax entry"
    f = tmp_path / "c" / "xla" / "k-cache"
    f.write_bytes(f.read_bytes()[:-1])
    assert cache.get("k") is None


def test_clear_caches_disk_true_empties_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr(_disk_cache, "_reads", True)
    key = ("unit-test key", 2)
    import sympy

    x = sympy.Symbol("x", real=True)
    entry = sympy.cos(x) * sympy.Float(196.20000000000002)  # every bit of a float comes back
    assert _disk_cache.store_forms(key, [(0, (0,))], [entry])
    assert _disk_cache.load_forms(key) == (((0, (0,)),), (entry,))
    nested = x
    for _ in range(200):  # a DAG: its derivative's tree would repeat the nested calls hundreds of times
        nested = sympy.sin(nested)
    deep = call_deep(nested.diff, x)  # SymPy recurses: on symdiff's deep stack, as _build does
    assert call_deep(_disk_cache.store_forms, key, [(0, (0,))], [deep])
    assert call_deep(lambda: _disk_cache.load_forms(key)[1] == (deep,))
    assert _disk_cache._forms_path(key)[0].stat().st_size < 100_000
    sd.clear_caches(disk=True)
    assert list((tmp_path / "c").rglob("*.json")) == []
    assert _disk_cache.load_forms(key) is None
