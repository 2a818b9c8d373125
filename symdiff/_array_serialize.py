"""``d.save`` / ``sd.load`` for array derivatives.

The zip archive holds ``meta.json`` (inputs with their declared shapes, wrt,
order, the closed forms as JSON trees of whitelisted heads, the source) and
the compiled kernel serialised by ``jax.export`` for float32 and float64.
The export is shape-polymorphic (each dimension name is a symbolic size), so
the loaded derivative runs at any size; where JAX cannot export a program
polymorphically, it is exported at each combination of sizes the derivative
was called with before saving. Loading executes no text from the file.
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
from sympy.core.symbol import Str

from . import _array_ir as ir
from ._array_diff import Jac
from ._array_index import Embed, Index, spec_items, spec_text
from ._deep import call_deep
from ._errors import SymdiffError
from ._lower import FUNCTION_TABLE
from ._placement import x64_scope
from ._serialize import node_from_tree, node_tree, number_from_tree

__all__ = ["save_arrays", "load_arrays", "is_array_file", "FORMAT"]

FORMAT = "symdiff-array-derivative/1"

_HEADS: dict[str, type] = {cls.__name__: cls for cls in FUNCTION_TABLE}
_HEADS.update({cls.__name__: cls for cls in (sympy.Add, sympy.Mul, sympy.Pow, sympy.Min, sympy.Max)})
_HEADS.update({cls.__name__: cls for cls in (
    ir.MatMul, ir.Transpose, ir.ReduceSum, ir.Expand, ir.BroadcastTo, ir.Identity, ir.Outer, ir.Trace, ir.Det,
    ir.LogDet, ir.Reshape, ir.Inv, ir.Diag, ir.DiagPart, ir.Norm, ir.LogSumExp, ir.Softmax, Jac, Index, Embed)})
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}


def _dim_tree(d):
    return ["dim", d.name] if isinstance(d, ir.Dim) else ["int", str(int(d))]


def _to_tree(expr) -> Any:
    if isinstance(expr, ir.ArraySymbol):
        return ["asym", expr.name, [_dim_tree(d) for d in expr.shape]]
    if isinstance(expr, ir.Dim):
        return ["dim", expr.name]
    if isinstance(expr, sympy.Symbol):
        return ["sym", expr.name]
    if isinstance(expr, sympy.Tuple):
        return ["tuple"] + [_to_tree(a) for a in expr.args]
    if isinstance(expr, Str):  # an index's spec text, "1:" (symdiff._array_index)
        return ["str", expr.name]
    return node_tree(expr, _HEADS, _CONSTANTS, _to_tree)


def _from_tree(tree: Any):
    tag = tree[0]
    if tag == "asym":
        return ir.ArraySymbol(str(tree[1]), tuple(_from_tree(d) for d in tree[2]))
    if tag == "dim":
        return ir.Dim(str(tree[1]))
    if tag == "sym":
        return sympy.Symbol(str(tree[1]), real=True)
    if tag == "tuple":
        return sympy.Tuple(*[_from_tree(t) for t in tree[1:]])
    if tag == "str":
        return Str(spec_text(spec_items(str(tree[1]))))  # re-read as integers and slices only
    number = number_from_tree(tree, _CONSTANTS)
    if number is not None:
        return number
    return node_from_tree(_HEADS[tag], [_from_tree(t) for t in tree[1:]])


def _specs(args, dtype, sizes: dict | None):
    """ShapeDtypeStructs of the inputs: symbolic dims (``sizes`` None) or concrete ones."""
    dims = sorted({d.name for a in args if isinstance(a, ir.ArraySymbol) for d in a.shape if isinstance(d, ir.Dim)})
    symbolic = dict(zip(dims, export.symbolic_shape(", ".join(dims)))) if dims and sizes is None else {}
    out = []
    for a in args:
        shape = tuple(a.shape) if isinstance(a, ir.ArraySymbol) else ()
        out.append(jax.ShapeDtypeStruct(tuple(
            int(d) if not isinstance(d, ir.Dim) else (symbolic[d.name] if sizes is None else sizes[d.name])
            for d in shape), dtype))
    return out


def _export_all(program, seen: list) -> dict[str, bytes]:
    blobs = {}
    for dtype in (jnp.float32, jnp.float64):
        name = np.dtype(dtype).name
        with x64_scope(np.dtype(dtype)):
            try:
                blobs[f"{name}.any"] = bytes(export.export(jax.jit(program.kernel))(
                    *_specs(program.args, dtype, None)).serialize())
                continue
            except Exception:  # noqa: BLE001 - not exportable polymorphically: fall back to the sizes seen
                pass
            if not seen:
                raise SymdiffError("this derivative cannot be exported for every size; call it once at the "
                                   "sizes you need before saving")
            for i, sizes in enumerate(seen):
                blobs[f"{name}.{i}"] = bytes(export.export(jax.jit(program.kernel))(
                    *_specs(program.args, dtype, sizes)).serialize())
    return blobs


def save_arrays(d, path) -> None:
    """Write the array derivative ``d`` to ``path``."""
    p = d._program
    meta = {
        "format": FORMAT,
        "args": call_deep(lambda: [_to_tree(a) for a in p.args]),
        "wrt": [w.name for w in p.wrt],
        "order": p.order,
        "single": d._single,
        "expr": call_deep(lambda: _to_tree(p.expr)),
        "entries": call_deep(lambda: [_to_tree(e) for e in p.entries]),
        "source": p.source,
    }
    seen = [dict(s) for s in getattr(d, "_seen_sizes", ())]
    blobs = _export_all(p, seen)
    meta["blobs"] = sorted(blobs)
    meta["sizes"] = seen
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json", json.dumps(meta))
        for name, blob in blobs.items():
            z.writestr(f"{name}.bin", blob)


def is_array_file(path) -> bool:
    """Whether ``path`` is a saved array derivative (False for anything else, damaged files included)."""
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json"))
        return isinstance(meta, dict) and meta.get("format") == FORMAT
    except Exception:  # noqa: BLE001 - not ours: the scalar loader reports the problem
        return False


class LoadedArrayProgram:
    """The program of a loaded array derivative (same attributes as ``ArrayProgram``)."""

    def __init__(self, meta: dict, blobs: dict):
        self.args = tuple(_from_tree(t) for t in meta["args"])
        self.arg_names = tuple(a.name for a in self.args)
        by_name = {a.name: a for a in self.args}
        self.wrt = tuple(by_name[n] for n in meta["wrt"])
        self.order = int(meta["order"])
        self.expr = _from_tree(meta["expr"])
        self.entries = [_from_tree(t) for t in meta["entries"]]
        self.combos = [tuple(c) for c in _combos(len(self.wrt), self.order)]
        self.source = str(meta["source"])
        self.out_shape = ir.shape_of(self.expr)
        self.sizes = [dict(s) for s in meta.get("sizes", [])]
        self._exported = {k: export.deserialize(bytearray(v)) for k, v in blobs.items()}

    def _pick(self, dtype, xs):
        which = np.dtype(dtype).name if np.dtype(dtype) == np.float64 else "float32"
        if f"{which}.any" in self._exported:
            return self._exported[f"{which}.any"], which
        for i, sizes in enumerate(self.sizes):
            if all(tuple(np.shape(x)) == tuple(s.shape) for x, s in zip(xs, _specs(self.args, np.float32, sizes))):
                return self._exported[f"{which}.{i}"], which
        raise SymdiffError(f"this loaded derivative was saved for the sizes {self.sizes} only")

    def kernel(self, *xs):
        dtype = jnp.result_type(*xs)
        exported, which = self._pick(dtype, xs)
        out = exported.call(*[jnp.asarray(x).astype(which) for x in xs])
        return tuple(o.astype(dtype) for o in out)

    def run(self, *xs, value: bool = True):
        return self.kernel(*xs)


def _combos(n, k):
    import itertools

    return itertools.product(range(n), repeat=k)


def load_arrays(path):
    """Read an array derivative written by ``d.save(path)`` (no SymPy differentiation)."""
    from ._array_derive import ArrayDerivative

    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json"))
            blobs = {name: z.read(f"{name}.bin") for name in meta["blobs"]}
        program = call_deep(lambda: LoadedArrayProgram(meta, blobs))
    except SymdiffError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip, json and jax.export raise assorted errors on damage
        raise SymdiffError(f"cannot load a derivative from {path}: the file is damaged ({type(exc).__name__})") from exc
    return ArrayDerivative(program, bool(meta["single"]), None, None)
