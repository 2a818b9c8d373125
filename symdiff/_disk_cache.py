"""Caches that survive the process: closed forms and compiled programs on disk.

A new process that derives an expression some earlier process derived reads
the simplified closed forms back (no SymPy differentiation or simplification)
and the compiled XLA executables (no backend compile). The directory is
``$SYMDIFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/symdiff``, else
``~/.cache/symdiff``, created with mode 0700; ``SYMDIFF_CACHE_DIR=off`` turns
the disk off.

- ``forms/<sha256>.json``: the closed forms as JSON trees of whitelisted
  SymPy heads (:mod:`symdiff._serialize`'s format; read back by a safe
  reader, never pickle or eval). The key hashes the expression, wrt, order,
  budget and everything else of the in-memory program key (shapes, when
  there are any), plus the versions of Python, symdiff, SymPy, JAX and jaxlib
  and a fingerprint of symdiff's own source. An expression the tree format
  cannot store is simply not cached on disk.
- ``xla/<key>-cache``: compiled programs in JAX's persistent compilation cache
  format (JAX computes the key from the lowered module, the compile options,
  the backend and its own version). JAX's cache is one process-wide slot, off
  unless the user sets ``jax_compilation_cache_dir``: symdiff puts its own
  directory in that slot only while one of *its* programs is traced and
  compiled (:func:`persistent`), so the user's own JAX code is never cached
  here.

Every write goes to a temporary name and is renamed into place, so racing
processes both succeed and readers never see half a file; a damaged,
truncated or foreign entry fails its checksum or its format check and is
ignored (then rebuilt and overwritten).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

__all__ = ["directory", "load_forms", "store_forms", "persistent", "clear", "forget"]

ENV = "SYMDIFF_CACHE_DIR"
FORMS_FORMAT = "symdiff-forms/2"
_XLA_MAGIC = b"symdiff-xla/1\n"  # + sha256 of the JAX entry + the JAX entry
_SUFFIX = "-cache"  # JAX's own suffix for compilation cache entries

_reads = True  # False after clear_caches(): this process derives and compiles afresh
_dir_lock = threading.Lock()
_resolved: dict[tuple, Path | None] = {}  # the environment's say -> the checked directory (or None)
_fingerprint: list[str] = []


def directory() -> Path | None:
    """The cache directory, created with mode 0700; ``None`` when off or unusable.

    >>> import os
    >>> os.environ["SYMDIFF_CACHE_DIR"], saved = "off", os.environ.get("SYMDIFF_CACHE_DIR")
    >>> directory() is None
    True
    >>> _ = os.environ.pop("SYMDIFF_CACHE_DIR") if saved is None else os.environ.update(SYMDIFF_CACHE_DIR=saved)
    """
    raw = os.environ.get(ENV, "")
    if raw.strip().lower() == "off":
        return None
    where = (raw, os.environ.get("XDG_CACHE_HOME", ""), os.environ.get("HOME", ""))
    found = _resolved.get(where, False)
    if found is not False:
        return found
    with _dir_lock:
        if raw.strip():
            path = Path(raw).expanduser()
        else:
            base = where[1].strip()
            path = (Path(base).expanduser() if base else Path.home() / ".cache") / "symdiff"
        _resolved[where] = path = _private(path)
    return path


def _private(path: Path) -> Path | None:
    """``path`` created (mode 0700) or checked: owned by this user, writable by nobody else."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("forms", "xla"):
            (path / sub).mkdir(mode=0o700, exist_ok=True)
        info = path.stat()
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return None  # someone else's directory: never read executables from it
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)
        return path.resolve()
    except OSError:
        return None  # read-only home, no permission...: run without the disk


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# The modules that decide a closed form (lowering is redone on load; XLA keys hash the program itself).
_PIPELINE = ("_capture*.py", "_parse.py", "_functions.py", "_differentiate.py", "_simplify.py", "_deep.py",
             "_templates.py", "_serialize.py", "_compile.py", "_disk_cache.py")


def _source_fingerprint() -> str:
    """A hash of the pipeline's source: an edited pipeline never reads forms an older one wrote."""
    if not _fingerprint:
        h = hashlib.sha256()
        here = Path(__file__).parent
        for f in sorted({f for pattern in _PIPELINE for f in here.glob(pattern)}):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        _fingerprint.append(h.hexdigest())
    return _fingerprint[0]


def _versions() -> dict[str, str]:
    import jax
    import jaxlib
    import sympy

    try:
        from importlib.metadata import version

        symdiff_version = version("symdiff")
    except Exception:  # noqa: BLE001 - a source tree without metadata
        symdiff_version = "unknown"
    return {"python": sys.version.split()[0], "symdiff": symdiff_version, "source": _source_fingerprint(),
            "sympy": sympy.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__}


def _to_dag(roots) -> tuple[list, list[int]]:
    """``(nodes, root_indices)``: expressions as a node table, each distinct node written once.

    Leaves use :mod:`symdiff._serialize`'s tree format (``["sym", "x"]``...);
    an inner node is its head's name followed by the indices of its arguments,
    which always come earlier in the table. Shared subexpressions (a derivative
    of nested calls shares most of its nodes) are stored once: as a tree they
    could be exponentially larger than the expression in memory.
    """
    from ._serialize import _HEADS, _to_tree

    index: dict = {}
    nodes: list = []
    stack = [(r, False) for r in roots]
    while stack:
        node, ready = stack.pop()
        if node in index:
            continue
        if node.is_Atom:
            index[node] = len(nodes)
            nodes.append(_to_tree(node))
        elif not ready:
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args) if a not in index)
        else:
            name = type(node).__name__
            if _HEADS.get(name) is not type(node):
                raise TypeError(f"no stored form for {name}")
            index[node] = len(nodes)
            nodes.append([name] + [index[a] for a in node.args])
    return nodes, [index[r] for r in roots]


def _from_dag(nodes: list, roots: list) -> list:
    """The expressions of a node table written by :func:`_to_dag` (each node built as stored, unevaluated)."""
    from ._serialize import _HEADS, _from_tree

    built: list = []
    for node in nodes:
        tag = node[0]
        if tag in _HEADS:
            args = [built[i] for i in node[1:] if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(built)]
            if len(args) != len(node) - 1:
                raise ValueError("a node refers to a later or missing node")
            head = _HEADS[tag]
            try:
                built.append(head(*args, evaluate=False))
            except TypeError:  # heads without an evaluate flag (ExprCondPair)
                built.append(head(*args))
        else:
            built.append(_from_tree(node))  # a leaf; anything else raises
    return [built[i] for i in roots]


def _plain(value: Any) -> Any:
    """A program-key component as JSON data (SymPy objects as trees); raises TypeError if it has none."""
    import sympy

    from ._capture import real_symbol
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, sympy.Basic):
        # the tree stores a symbol by name: only symdiff's real symbols read back as themselves
        if any(type(s) is not sympy.Symbol or s != real_symbol(s.name) for s in value.free_symbols):
            raise TypeError(f"symbol with other assumptions in {value}")
        return {"sympy": _to_dag([value])[0]}
    raise TypeError(f"no JSON form for {type(value).__name__}")


def _forms_path(key: tuple) -> tuple[Path, str] | None:
    """Where the closed forms of the program ``key`` live, and the key's digest; None if not storable."""
    from ._errors import SymdiffError

    root = directory()
    if root is None:
        return None
    try:
        text = json.dumps({"format": FORMS_FORMAT, "versions": _versions(), "key": _plain(key)},
                          sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError, SymdiffError):
        return None  # a head the tree format cannot store (arrays, user functions...): memory only
    digest = hashlib.sha256(text.encode()).hexdigest()
    return root / "forms" / f"{digest}.json", digest


def load_forms(key: tuple):
    """``(entry_keys, entries)`` stored for the program ``key``, or ``None`` (absent, damaged, off).

    Runs on the deep-stack thread (trees recurse as deep as the expression).
    """
    import sympy

    if not _reads:
        return None
    where = _forms_path(key)
    if where is None:
        return None
    path, digest = where
    try:
        data = json.loads(path.read_bytes())
        if data["format"] != FORMS_FORMAT or data["digest"] != digest:
            return None
        keys = tuple((int(o), tuple(int(i) for i in combo)) for o, combo in data["keys"])
        entries = tuple(_from_dag(data["nodes"], data["entries"]))
        if len(keys) != len(entries) or not all(isinstance(e, sympy.Basic) for e in entries):
            return None
    except Exception:  # noqa: BLE001 - missing, truncated, foreign or hostile: rebuild it
        return None
    return keys, entries


def store_forms(key: tuple, entry_keys, entries) -> bool:
    """Write the closed forms of the program ``key``; False when they cannot be stored as data."""
    where = _forms_path(key)
    if where is None:
        return False
    path, digest = where
    try:
        nodes, roots = _to_dag(entries)
        if any(back != e for back, e in zip(_from_dag(nodes, roots), entries)):
            return False  # would not read back as the same expression
        data = {"format": FORMS_FORMAT, "digest": digest,
                "keys": [[o, list(combo)] for o, combo in entry_keys], "nodes": nodes, "entries": roots}
        _write_atomic(path, json.dumps(data, separators=(",", ":")).encode())
    except Exception:  # noqa: BLE001 - a full disk or an unstorable head costs the cache, not the call
        return False
    return True


# ---- compiled programs: JAX's persistent compilation cache, scoped to symdiff's programs ----


class _ExecutableCache:
    """JAX's cache interface (``get``/``put`` of its entry bytes) over ``xla/``, atomic and checksummed."""

    def __init__(self, path: Path):
        self._path = path

    def get(self, key: str) -> bytes | None:
        if not _reads:
            return None
        try:
            blob = (self._path / f"{key}{_SUFFIX}").read_bytes()
        except OSError:
            return None
        head, digest, entry = blob[: len(_XLA_MAGIC)], blob[len(_XLA_MAGIC): len(_XLA_MAGIC) + 32], blob[
            len(_XLA_MAGIC) + 32:]
        if head != _XLA_MAGIC or hashlib.sha256(entry).digest() != digest:
            return None  # damaged or foreign: JAX compiles and put() overwrites it
        return entry

    def put(self, key: str, value: bytes) -> None:
        try:
            _write_atomic(self._path / f"{key}{_SUFFIX}", _XLA_MAGIC + hashlib.sha256(value).digest() + value)
        except OSError:
            pass

    def clear(self) -> None:
        for f in self._path.glob(f"*{_SUFFIX}"):
            f.unlink(missing_ok=True)


class _Scope(threading.local):
    depth = 0
    contexts: list = []


_scope = _Scope()
_slot_lock = threading.Lock()
_slot_users = 0
_slot_saved: list = []
_executable_caches: dict[Path, _ExecutableCache] = {}


def _open_scope() -> None:
    """Put symdiff's directory in JAX's cache slot (called while one of our programs is traced)."""
    global _slot_users
    if _scope.depth:
        return
    root = directory()
    if root is None:
        return
    try:
        from jax._src import compilation_cache as cc
        from jax._src import config
    except ImportError:  # a JAX without this module: compile as usual
        return
    cache = _executable_caches.setdefault(root, _ExecutableCache(root / "xla"))
    with _slot_lock:
        if _slot_users == 0:
            _slot_saved[:] = [cc._cache]
            cc._cache = cache
        _slot_users += 1
    context = config.persistent_cache_min_compile_time_secs(0.0)  # thread-local: cache every program
    context.__enter__()
    _scope.contexts = [context]
    _scope.depth = 1


def _close_scope() -> None:
    global _slot_users
    from jax._src import compilation_cache as cc

    for context in _scope.contexts:
        context.__exit__(None, None, None)
    _scope.contexts = []
    _scope.depth = 0
    with _slot_lock:
        _slot_users -= 1
        if _slot_users == 0:
            cc._cache = _slot_saved.pop()


def on_trace() -> None:
    """Called by a symdiff program while JAX traces it: its compile may use the disk."""
    _open_scope()


def persistent(jitted: Callable) -> Callable:
    """``jitted`` whose compiles (opened by :func:`on_trace`) read and write the disk cache.

    The scope opens while JAX traces the program and closes when the call
    returns, so the executable JAX compiles between the two goes through
    symdiff's directory, and nothing else does. A call that finds its
    executable in memory costs one attribute check.
    """

    def call(*args):
        outer = _scope.depth
        try:
            return jitted(*args)
        finally:
            if _scope.depth and not outer:
                _close_scope()

    call.__name__ = getattr(jitted, "__name__", "program")
    call.__wrapped__ = jitted
    return call


def forget() -> None:
    """This process stops reading the disk (``sd.clear_caches()``): everything is derived and compiled afresh."""
    global _reads
    _reads = False


def clear() -> None:
    """Delete every entry under the cache directory (``sd.clear_caches(disk=True)``)."""
    root = directory()
    if root is None:
        return
    for pattern in ("forms/*.json", "forms/.tmp-*", "xla/*" + _SUFFIX, "xla/.tmp-*"):
        for f in root.glob(pattern):
            try:
                f.unlink()
            except OSError:
                pass
