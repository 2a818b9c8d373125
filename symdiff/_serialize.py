"""``d.save(path)`` / ``sd.load(path)``: a compiled derivative that travels without SymPy work.

The file is a zip archive holding ``meta.json`` (format version, inputs, wrt,
order, the closed forms as a JSON tree of whitelisted SymPy heads — never code)
and the compiled kernel serialised by ``jax.export`` for float32 and float64,
polymorphic in the number of points. Loading executes no text from the file.
"""

from __future__ import annotations

import json
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy
from jax import export

from ._capture import Captured, real_symbol
from ._compile import Program
from ._deep import call_deep
from ._errors import SymdiffError
from ._lower import FUNCTION_TABLE, Kernel
from ._placement import x64_scope
from ._worker import rebuild

__all__ = ["save", "read", "FORMAT"]

FORMAT = "symdiff-derivative/1"

_HEADS: dict[str, type] = {cls.__name__: cls for cls in FUNCTION_TABLE}
_HEADS.update({cls.__name__: cls for cls in (
    sympy.Add, sympy.Mul, sympy.Pow, sympy.Min, sympy.Max, sympy.Piecewise, sympy.And, sympy.Or, sympy.Not,
    sympy.StrictLessThan, sympy.LessThan, sympy.StrictGreaterThan, sympy.GreaterThan,
    sympy.Equality, sympy.Unequality, sympy.functions.elementary.piecewise.ExprCondPair,
)})
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E, "EulerGamma": sympy.EulerGamma, "Catalan": sympy.Catalan,
              "GoldenRatio": sympy.GoldenRatio, "oo": sympy.oo, "-oo": -sympy.oo, "zoo": sympy.zoo,
              "nan": sympy.nan, "true": sympy.true, "false": sympy.false}


def number_tree(expr: sympy.Basic, constants: dict) -> list | None:
    """The tree of a number or a named constant of ``constants``; ``None`` for anything else."""
    if expr.is_Integer:
        return ["int", str(expr)]
    if expr.is_Rational:
        return ["rat", str(expr.p), str(expr.q)]
    if expr.is_Float:
        text = repr(float(expr)) if expr._prec == 53 else str(expr)  # str() keeps 15 digits: 196.20000000000002 -> 196.2
        return ["float", text, expr._prec]
    for name, value in constants.items():
        if expr == value:
            return ["const", name]
    return None


def number_from_tree(tree: Any, constants: dict) -> sympy.Basic | None:
    """The number or constant a :func:`number_tree` describes; ``None`` for another tag."""
    tag = tree[0]
    if tag == "int":
        return sympy.Integer(int(tree[1]))
    if tag == "rat":
        return sympy.Rational(int(tree[1]), int(tree[2]))
    if tag == "float":
        return sympy.Float(str(tree[1]), precision=int(tree[2]))
    if tag == "const":
        return constants[tree[1]]
    return None


def node_from_tree(head: type, args: list) -> sympy.Basic:
    """``head(*args)`` rebuilt as stored, not re-evaluated: evaluating a stored gamma(10**100) would never finish."""
    return rebuild(head, tuple(args))


def node_tree(expr: sympy.Basic, heads: dict, constants: dict, to_tree) -> list:
    """The tree of a number, a constant, or a node whose head ``heads`` allows (its args by ``to_tree``)."""
    number = number_tree(expr, constants)
    if number is not None:
        return number
    name = type(expr).__name__
    if heads.get(name) is not type(expr):
        raise SymdiffError(f"cannot save an expression containing {name}: {expr}")
    return [name] + [to_tree(a) for a in expr.args]


def _to_tree(expr: sympy.Basic) -> Any:
    if expr.is_Symbol:
        return ["sym", expr.name]
    return node_tree(expr, _HEADS, _CONSTANTS, _to_tree)


def _from_tree(tree: Any) -> sympy.Basic:
    if tree[0] == "sym":
        return real_symbol(str(tree[1]))
    number = number_from_tree(tree, _CONSTANTS)
    if number is not None:
        return number
    return node_from_tree(_HEADS[tree[0]], [_from_tree(t) for t in tree[1:]])


def _exported(kernel: Kernel, n_args: int, dtype) -> bytes:
    (n,) = export.symbolic_shape("n")
    with x64_scope(np.dtype(dtype)):
        spec = jax.ShapeDtypeStruct((n,), dtype)
        return bytes(export.export(jax.jit(kernel.fn))(*([spec] * n_args)).serialize())


def save(d, path) -> None:
    """Write ``d`` (a :class:`~symdiff.Derivative`) to ``path``."""
    p = d._program
    meta = {
        "format": FORMAT,
        "args": [s.name for s in p.args],
        "wrt": [s.name for s in p.wrt],
        "order": p.order,
        "single": d._single,
        "vector": p.captured.vector,
        "keys": [[o, list(c)] for o, c in p.keys],
        "outputs": call_deep(lambda: [_to_tree(e) for e in p.captured.outputs]),
        "entries": call_deep(lambda: [_to_tree(e) for e in p.entries]),
        "source": p.kernel.source,
        "arg_names": list(p.kernel.arg_names),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json", json.dumps(meta))
        z.writestr("float32.bin", _exported(p.kernel, len(p.args), jnp.float32))
        z.writestr("float64.bin", _exported(p.kernel, len(p.args), jnp.float64))


def _loaded_kernel(blobs: dict[str, bytes]):
    exported = {name: export.deserialize(bytearray(blob)) for name, blob in blobs.items()}

    def kernel(*xs):
        shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in xs))
        dtype = jnp.result_type(*xs)
        which = "float64" if dtype == jnp.float64 else "float32"
        flat = [jnp.broadcast_to(x, shape).reshape(-1).astype(which) for x in xs]
        values, entries = exported[which].call(*flat)
        back = lambda a: a.reshape(shape).astype(dtype)  # noqa: E731
        return tuple(back(v) for v in values), tuple(back(e) for e in entries)

    return kernel


def read(path) -> tuple[Program, bool]:
    """The compiled program written by ``d.save(path)`` and whether it had a single wrt (no SymPy work).

    :func:`symdiff.load` wraps it in a ``Derivative`` (this module does not
    import :mod:`symdiff._derive`, which imports it).
    Raises :class:`SymdiffError` for a missing, truncated, corrupted or wrong-version file.
    """
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                found = meta.get("format") if isinstance(meta, dict) else None
                raise SymdiffError(f"{path}: not a {FORMAT} file (format {found!r})")
            blobs = {name: z.read(f"{name}.bin") for name in ("float32", "float64")}
        kernel_fn = _loaded_kernel(blobs)
        args = tuple(real_symbol(n) for n in meta["args"])
        wrt = tuple(real_symbol(n) for n in meta["wrt"])
        outputs = call_deep(lambda: tuple(_from_tree(t) for t in meta["outputs"]))
        entries = call_deep(lambda: tuple(_from_tree(t) for t in meta["entries"]))
        keys = tuple((int(o), tuple(int(i) for i in c)) for o, c in meta["keys"])
        kernel = Kernel(kernel_fn, str(meta["source"]), tuple(meta["arg_names"]))
        program = Program(Captured(outputs, bool(meta["vector"])), wrt, int(meta["order"]), args, keys, entries, kernel)
    except SymdiffError:
        raise
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        raise SymdiffError(f"cannot load a derivative from {path}: the file is damaged or not a symdiff file ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - jax.export raises assorted errors on corrupt bytes
        raise SymdiffError(f"cannot load a derivative from {path}: the file is damaged ({type(exc).__name__})") from exc
    return program, bool(meta["single"])

