"""``derive(..., shapes=...)``: array expressions in, matrix closed forms and matrix code out.

:func:`derive_arrays` captures the expression (text, SymPy with
``MatrixSymbol``, or a callable traced with symbolic arrays), differentiates it
with :mod:`symdiff._array_diff`, simplifies the elementwise parts within the
budget, lowers with :mod:`symdiff._array_lower` and returns an
:class:`ArrayDerivative`, which has the interface of
:class:`~symdiff.Derivative` with JAX's result shapes.

>>> import symdiff as sd, numpy as np
>>> d = sd.derive("x @ A @ x", wrt="x", shapes={"x": "n", "A": ("n", "n")})
>>> print(d)
d/dx = A @ x + A.T @ x
>>> d(x=np.ones(3), A=np.eye(3))
Array([2., 2., 2.], dtype=float64)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import re
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy
from sympy.core.parameters import distribute
from sympy.matrices.expressions.matexpr import MatrixElement

from . import _array_ir as ir
from . import _cache
from ._array_diff import derivative, region_leaves
from ._array_ir import ArraySymbol, Dim, rank, shape_of
from ._array_lower import lower_arrays
from ._array_math import ArrayValue, unwrap
from ._array_parse import parse_array
from ._capture import natural_key
from ._deep import call_deep
from ._derive import Derivative
from ._errors import CaptureError, InputError, ShapeError, SymdiffError
from ._lower import is_lowerable
from ._placement import infer_float_dtype, resolve_device, resolve_float_dtype, x64_scope
from ._simplify import node_count, resolve_budget, simplify_entries

__all__ = ["derive_arrays", "ArrayDerivative", "parse_shapes", "is_array_input"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PROGRAMS = _cache.LRUCache("array programs", 256)
_JAX_TYPES: set = set()  # concrete jax.Array classes (isinstance on jax.Array is slow)
_MAX_REGION_NODES = 2_000  # larger elementwise regions are left as they are (as scalar derivatives are)


# ---- shapes -----------------------------------------------------------------


def _parse_dim(d, name: str):
    if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
        if d < 0:
            raise ShapeError(f"shape of {name!r}: dimension sizes must be >= 0, got {d}")
        return int(d)
    if isinstance(d, str) and _NAME.match(d):
        return Dim(d)
    if isinstance(d, str) and d.isdigit():
        return int(d)
    if isinstance(d, sympy.Symbol):
        return Dim(d.name)
    if isinstance(d, sympy.Integer):
        return int(d)
    raise ShapeError(f"shape of {name!r}: a dimension must be an int or a name, got {d!r}")


def parse_shapes(shapes: Any) -> dict[str, tuple]:
    """``shapes=`` -> name -> tuple of dims (``"n"`` is ``("n",)``, ``"n,m"`` is ``("n", "m")``).

    >>> parse_shapes({"x": "n", "A": ("n", 3), "s": ()})
    {'x': (n,), 'A': (n, 3), 's': ()}
    """
    if not isinstance(shapes, dict):
        raise ShapeError(f"shapes must be a dict of name -> shape, got {type(shapes).__name__}")
    out = {}
    for name, shape in shapes.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ShapeError(f"shapes: {name!r} is not a symbol name")
        if isinstance(shape, str):
            shape = tuple(p.strip() for p in shape.split(",")) if shape.strip() else ()
        elif isinstance(shape, (int, np.integer, sympy.Symbol)) and not isinstance(shape, bool):
            shape = (shape,)
        elif not isinstance(shape, (tuple, list)):
            raise ShapeError(f"shape of {name!r} must be a tuple of dimensions, got {shape!r}")
        out[name] = tuple(_parse_dim(d, name) for d in shape)
    return out


def is_array_input(expr: Any) -> bool:
    """Whether a SymPy input holds matrix expressions (``MatrixSymbol`` ...)."""
    if isinstance(expr, sympy.MatrixExpr):
        return True
    return isinstance(expr, sympy.Basic) and _has_matrix_symbol(expr)


@functools.lru_cache(maxsize=256)
def _has_matrix_symbol(expr: sympy.Basic) -> bool:
    stack, seen = [expr], set()  # an explicit stack: scalar inputs may be nested thousands of levels deep
    while stack:
        node = stack.pop()
        if isinstance(node, sympy.MatrixExpr):
            return True
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(node.args)
    return False


# ---- capture ----------------------------------------------------------------


def _symbols_for(shapes: dict) -> dict:
    """name -> symbol for the declared inputs, and the dimension names (usable as sizes: ``sum(x)/n``)."""
    symbols = {name: (ArraySymbol(name, shape) if shape else sympy.Symbol(name, real=True))
               for name, shape in shapes.items()}
    for shape in shapes.values():
        for d in shape:
            if isinstance(d, Dim):
                symbols.setdefault(d.name, d)
    return symbols


def _from_matrix_expr(e, cache: dict):
    """A SymPy matrix expression -> the array IR (a 1 x 1 result becomes a scalar)."""
    if e in cache:
        return cache[e]
    M = sympy.matrices.expressions
    if isinstance(e, sympy.MatrixSymbol):
        out = ArraySymbol(e.name, tuple(ir._dim(d) for d in e.shape))
    elif isinstance(e, M.Identity):
        out = ir.identity(ir._dim(e.shape[0]))
    elif isinstance(e, M.ZeroMatrix):
        out = sympy.S.Zero
    elif isinstance(e, M.MatMul):
        out = sympy.S.One
        acc = None
        for a in e.args:
            c = _from_matrix_expr(a, cache)
            if not isinstance(a, sympy.MatrixExpr):
                out *= c
            else:
                acc = c if acc is None else ir.matmul(acc, c)
        out = out * acc
    elif isinstance(e, M.MatAdd):
        out = sympy.Add(*[_from_matrix_expr(a, cache) for a in e.args])
    elif isinstance(e, M.Transpose):
        out = ir.transpose(_from_matrix_expr(e.arg, cache))
    elif isinstance(e, M.Inverse):
        out = ir.inv(_from_matrix_expr(e.arg, cache))
    elif isinstance(e, M.Determinant):
        out = ir.det(_from_matrix_expr(e.arg, cache))
    elif isinstance(e, M.Trace):
        out = ir.trace(_from_matrix_expr(e.arg, cache))
    elif isinstance(e, M.HadamardProduct):
        out = sympy.Mul(*[_from_matrix_expr(a, cache) for a in e.args])
    elif isinstance(e, M.MatPow):
        base, k = _from_matrix_expr(e.base, cache), e.exp
        if k == -1:
            out = ir.inv(base)
        elif k.is_Integer and 0 < k <= 16:
            out = base
            for _ in range(int(k) - 1):
                out = ir.matmul(out, base)
        else:
            raise CaptureError(f"matrix power {e} is not supported (integer powers 1..16 and -1 are)")
    elif isinstance(e, sympy.Sum) and e.has(MatrixElement):
        # SymPy writes (x.T*A*x)[0, 0] as a Sum over index dummies; its array expressions read it back
        from sympy.tensor.array.expressions import convert_array_to_matrix, convert_indexed_to_array

        try:
            back = convert_array_to_matrix(convert_indexed_to_array(e))
        except Exception as exc:  # noqa: BLE001 - SymPy raises assorted errors on sums it cannot read
            raise CaptureError(f"cannot read the sum {e} as a matrix expression ({type(exc).__name__})") from exc
        if back.has(sympy.Sum) or not isinstance(back, sympy.Basic):
            raise CaptureError(f"cannot read the sum {e} as a matrix expression")
        out = _from_matrix_expr(back, cache)
    elif isinstance(e, MatrixElement):  # (x.T*A*x)[0, 0], or an entry X[i, j] with constant indices
        parent = _from_matrix_expr(e.parent, cache)
        if not (e.i.is_Integer and e.j.is_Integer):
            raise CaptureError(f"the matrix entry {e} needs constant integer indices")
        if shape_of(parent) == (1, 1):
            out = ir.reduce_sum(parent)
        else:
            from ._array_index import index

            out = index(parent, (int(e.i), int(e.j)))
    elif isinstance(e, sympy.MatrixExpr):
        raise CaptureError(f"the matrix expression {type(e).__name__} ({e}) is not supported")
    elif e.is_Atom:
        out = sympy.Symbol(e.name, real=True) if isinstance(e, sympy.Symbol) else e
    else:
        out = e.func(*[_from_matrix_expr(a, cache) for a in e.args])
    if isinstance(e, sympy.MatrixExpr) and not isinstance(out, sympy.Basic):
        raise CaptureError(f"cannot capture {e}")
    cache[e] = out
    return out


def _capture_callable(fn, shapes: dict, symbols: dict):
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise CaptureError(f"cannot read the parameters of {fn!r}: {exc}") from exc
    args = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise CaptureError("*args/**kwargs cannot name symbols; give each input its own parameter")
        sym = symbols.get(p.name) or sympy.Symbol(p.name, real=True)
        args.append(ArrayValue(sym))
    try:
        result = fn(*args)
    except SymdiffError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of user code is a capture failure
        raise CaptureError(
            f"function {getattr(fn, '__name__', fn)!r} could not be traced with symbolic arrays: "
            f"{type(exc).__name__}: {exc}. Use operators, .T, .sum(), .mean() and sd. functions inside it."
        ) from exc
    if isinstance(result, (list, tuple)):
        raise CaptureError("array expressions must return one (possibly array-valued) expression, not a list")
    return unwrap(result)


def capture_arrays(expr: Any, shapes: dict) -> sympy.Expr:
    """The array IR expression of a text, SymPy expression or callable."""
    symbols = _symbols_for(shapes)
    if isinstance(expr, str):
        return parse_array(expr, symbols)
    if isinstance(expr, sympy.Basic):
        if is_array_input(expr):
            out = _from_matrix_expr(expr, {})
            if rank(out) == 2 and all(d == 1 for d in shape_of(out)):
                out = ir.reduce_sum(out)  # x.T*A*x is a 1 x 1 matrix: its entry
        else:
            out = expr
        named = {s: symbols[s.name] for s in out.free_symbols
                 if isinstance(s, sympy.Symbol) and not isinstance(s, Dim) and s.name in symbols}
        loose = {s: sympy.Symbol(s.name, real=True) for s in out.free_symbols
                 if type(s) is sympy.Symbol and not s.is_real and s.name not in symbols}
        out = out.xreplace({**named, **loose}) if named or loose else out
        shape_of(out)  # shape errors now
        return out
    if callable(expr):
        return _capture_callable(expr, shapes, symbols)
    if isinstance(expr, (list, tuple)):
        raise CaptureError("with shapes=, give one (possibly array-valued) expression, not a list")
    raise CaptureError(f"cannot capture {type(expr).__name__} {expr!r:.80} as an array expression")


def _inputs(expr) -> list:
    return [s for s in expr.free_symbols if isinstance(s, sympy.Symbol) and not isinstance(s, Dim)]


def _sorted(symbols) -> tuple:
    return tuple(sorted(symbols, key=lambda s: natural_key(s.name)))


def _resolve_wrt(wrt, expr, shapes: dict):
    inputs = {s.name: s for s in _inputs(expr)}

    def one(item):
        if isinstance(item, sympy.MatrixSymbol):
            item = item.name
        if isinstance(item, sympy.Symbol):
            item = item.name
        if not isinstance(item, str) or not _NAME.match(item):
            raise SymdiffError(f"wrt entries must be symbol names or SymPy Symbols; got {item!r}")
        if item in inputs:
            return inputs[item]
        shape = shapes.get(item, ())
        return ArraySymbol(item, shape) if shape else sympy.Symbol(item, real=True)

    if wrt is None:
        symbols = _sorted(inputs.values())
        if not symbols:
            raise SymdiffError(f"the expression {expr} has no symbols to differentiate with respect to; pass wrt=...")
        return symbols, False
    if isinstance(wrt, (str, sympy.Symbol, sympy.MatrixSymbol)):
        return (one(wrt),), True
    if isinstance(wrt, Sequence) and wrt:
        return tuple(one(w) for w in wrt), False
    raise SymdiffError(f"wrt must be None, a name, a Symbol or a non-empty sequence of these; got {wrt!r}")


# ---- simplification ---------------------------------------------------------


def simplify_arrays(exprs: list, budget: float) -> list:
    """Simplify the elementwise regions of array closed forms with SymPy, within ``budget`` seconds.

    Each maximal elementwise subexpression is simplified as a scalar
    expression of its array leaves (replaced by scalar symbols), with the same
    budgeted pass chain as scalar derivatives.
    """
    if budget <= 0:
        return list(exprs)
    regions: dict = {}  # region -> (scalar form, leaves)
    counter = itertools.count()

    def collect(e):
        if e.is_Atom or e in regions:
            return
        if ir.is_elementwise(e):
            leaves = region_leaves(e, keep=lambda node: isinstance(node, (ir.ArrayOp, ArraySymbol)))
            dummies = [sympy.Symbol(f"_leaf{next(counter)}", real=True) for _ in leaves]
            regions[e] = (e.xreplace(dict(zip(leaves, dummies))), leaves, dummies)
            for leaf in leaves:
                collect(leaf)
        else:
            for a in e.args:
                if isinstance(a, sympy.Expr):
                    collect(a)

    for e in exprs:
        collect(e)
    keys = [k for k in regions if node_count(regions[k][0], _MAX_REGION_NODES) <= _MAX_REGION_NODES]
    chosen = set(keys)
    heavy = [i for i, k in enumerate(keys) if _worth_simplifying(regions[k][0])]
    simplified = [sympy.factor_terms(regions[k][0]) for k in keys]  # cheap: 2*a - 2*b is 2*(a - b)
    if heavy:
        better = simplify_entries([regions[keys[i]][0] for i in heavy], budget, is_lowerable)
        for i, e in zip(heavy, better):
            simplified[i] = e
    done: dict = {}

    def rebuild(e):
        if e.is_Atom:
            return e
        if e in done:
            return done[e]
        if e in chosen:
            _, leaves, dummies = regions[e]
            out = simplified[keys.index(e)].xreplace({d: rebuild(leaf) for d, leaf in zip(dummies, leaves)})
        else:
            args = [rebuild(a) if isinstance(a, sympy.Expr) else a for a in e.args]
            out = ir.rebuild(e, args) if isinstance(e, ir.ArrayOp) else e.func(*args)
        done[e] = out
        return out

    with distribute(False):  # keep 2*(a - b) as simplified: SymPy would distribute the 2 again
        return [rebuild(e) for e in exprs]


def _worth_simplifying(scalar: sympy.Expr) -> bool:
    """Regions with functions or quotients; sums and products of leaves are left as they are."""
    return any(not n.is_Atom and not isinstance(n, (sympy.Add, sympy.Mul)) and
               not (isinstance(n, sympy.Pow) and n.exp.is_Integer and n.exp > 0)
               for n in sympy.preorder_traversal(scalar))


# ---- the program ------------------------------------------------------------


class ArrayProgram:
    """Closed forms and compiled code of one array derivative (shared by equal requests)."""

    def __init__(self, expr, wrt: tuple, order: int, budget: float):
        self.expr = expr
        self.wrt = wrt
        self.order = order
        self.args = _sorted(set(_inputs(expr)) | set(wrt))
        self.arg_names = tuple(a.name for a in self.args)
        self.combos = list(itertools.product(range(len(wrt)), repeat=order))
        self.out_shape = shape_of(expr)
        self.entries = call_deep(self._derive, budget)
        outputs = [(expr, self.out_shape)] + [(e, self.entry_shape(c)) for c, e in zip(self.combos, self.entries)]
        self.source, self.kernel = lower_arrays(outputs, self.args, name="derivative")
        self._jitted = jax.jit(self.kernel)
        self._jitted_entries = jax.jit(lambda *xs: self.kernel(*xs)[1:])  # XLA drops the unused value
        _cache.count("symbolic")

    def entry_shape(self, combo) -> tuple:
        return self.out_shape + sum((tuple(self.wrt[i].shape) if rank(self.wrt[i]) else () for i in combo), ())

    def _derive(self, budget: float) -> list:
        levels = {(): self.expr}
        share = budget / self.order
        for k in range(1, self.order + 1):
            keys = sorted({c[:k] for c in self.combos})
            raw = [derivative(levels[c[:-1]], self.wrt[c[-1]]) for c in keys]
            levels.update(zip(keys, simplify_arrays(raw, share)))
        # a closed form has its result's shape: the gradient of sum(x) is ones(n), not 1
        return [_with_shape(levels[c], self.entry_shape(c)) for c in self.combos]

    def run(self, *xs, value: bool = True):
        """``(value, *entries)``; without ``value``, ``(None, *entries)`` and the value is not computed."""
        return self._jitted(*xs) if value else (None,) + tuple(self._jitted_entries(*xs))


def _with_shape(expr, shape: tuple):
    if expr == 0 or shape_of(expr) == tuple(shape):
        return expr
    try:
        if ir.broadcast_shapes([shape_of(expr), tuple(shape)]) != tuple(shape):
            return expr
    except ShapeError:
        return expr
    return ir.broadcast_to(expr, shape)


def _program_key(expr, wrt, order, budget):
    return (expr, tuple((w.name, getattr(w, "shape", ())) for w in wrt), order, budget)


def derive_arrays(expr, wrt=None, *, order: int = 1, simplify=True, dtype=None, device=None, shapes=None):
    """``derive`` for array expressions (see :func:`symdiff.derive` and ``docs/arrays.md``)."""
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise SymdiffError(f"order must be a positive integer, got {order!r}")
    declared = parse_shapes(shapes or {})
    captured = capture_arrays(expr, declared)
    wrt_symbols, single = _resolve_wrt(wrt, captured, declared)
    budget = resolve_budget(simplify)
    program = _PROGRAMS.get_or_create(_program_key(captured, wrt_symbols, order, budget),
                                      lambda: ArrayProgram(captured, wrt_symbols, order, budget))
    return ArrayDerivative(program, single, resolve_float_dtype(dtype), resolve_device(device))


def _superscript(k: int) -> str:
    return "" if k == 1 else f"^{k}"


class ArrayDerivative(Derivative):
    """A derivative of an array expression: matrix closed forms and matrix code.

    Results have JAX's shapes: the gradient of a scalar has the shape of its
    ``wrt``; a Jacobian ``S + T``; a Hessian ``T + T`` (several ``wrt``:
    tuples, nested tuples of blocks for Hessians).
    """

    def __init__(self, program: ArrayProgram, single: bool, dtype, device):
        self._program = program
        self._single = single
        self._dtype = dtype
        self._device = device
        self._seen_sizes: list[dict] = []
        self._fast: dict = {}  # (shape, dtype) of each JAX input -> computation dtype, once validated

    # ---- symbolic side ----

    @property
    def expr(self):
        """The captured array expression."""
        return self._program.expr

    @property
    def source(self) -> str:
        """The generated JAX source: the value, then every derivative block."""
        return self._program.source

    def _entry(self, combo):
        return self._program.entries[self._program.combos.index(tuple(combo))]

    @property
    def closed_form(self):
        """Order 1: name -> closed form. Order >= 2: one expression (single wrt) or nested tuples of blocks."""
        p = self._program
        if p.order == 1:
            return {w.name: self._entry((i,)) for i, w in enumerate(p.wrt)}
        return self._nest_entries([self._entry(c) for c in p.combos])

    def _nest_entries(self, flat):
        p = self._program
        if self._single:
            return flat[0]
        n = len(p.wrt)

        def level(prefix):
            if len(prefix) == p.order:
                return flat[p.combos.index(prefix)]
            return tuple(level(prefix + (i,)) for i in range(n))

        return level(())

    def _labelled(self):
        p = self._program
        seen = set()
        for combo, e in zip(p.combos, p.entries):
            key = tuple(sorted(combo)) if p.order > 1 and all(rank(p.wrt[i]) == 0 for i in combo) else combo
            if key in seen:
                continue
            seen.add(key)
            yield 0, combo, e

    def _label(self, o: int, combo, latex: bool = False) -> str:
        p = self._program
        k = len(combo)
        if latex:
            top = "\\partial" + (f"^{{{k}}}" if k > 1 else "")
            counts = _runs(combo)
            bottom = " ".join(f"\\partial {sympy.latex(p.wrt[i])}" + (f"^{{{c}}}" if c > 1 else "") for i, c in counts)
            return f"\\frac{{{top}}}{{{bottom}}}"
        bottom = " ".join(f"d{p.wrt[i].name}{_superscript(c)}" for i, c in _runs(combo))
        return f"d{_superscript(k)}/{bottom}"

    def __repr__(self) -> str:
        wrt = ", ".join(w.name for w in self.wrt)
        return f"<Derivative of {sympy.sstr(self.expr)} wrt ({wrt}), order {self.order}, arrays>"

    # ---- numeric side ----

    def _validated(self, args: tuple, kwargs: dict):
        """Bound inputs as arrays, checked against the declared shapes; the dtype."""
        p = self._program
        raw = self._bind(args, kwargs)
        if all(type(r) in _JAX_TYPES for r in raw):  # the hot path: JAX arrays of shapes seen before
            key = tuple((r.shape, r.dtype) for r in raw)
            dtype = self._fast.get(key)
            if dtype is not None:
                return raw, dtype
        arrays, sizes = [], {}
        for sym, value in zip(p.args, raw):
            if not isinstance(value, jax.Array):
                try:
                    value = np.asarray(value)
                except (ValueError, TypeError) as exc:
                    raise InputError(f"input {sym.name!r} is not a numeric array: {exc}") from exc
            if value.dtype.kind not in "biuf":
                raise InputError(f"input {sym.name!r} must be real numbers, got dtype {value.dtype}")
            _check_shape(sym, value.shape, sizes)
            arrays.append(value)
        seen = {d.name: size for d, (size, _) in sizes.items()}
        if seen not in self._seen_sizes and len(self._seen_sizes) < 16:
            self._seen_sizes.append(seen)  # d.save exports at these sizes if it cannot for every size
        dtype = self._dtype or infer_float_dtype([r for r in raw if not isinstance(r, (int, float, list, tuple))])
        if all(isinstance(r, jax.Array) for r in raw) and len(self._fast) < 64:
            _JAX_TYPES.update(type(r) for r in raw)
            self._fast[tuple((r.shape, r.dtype) for r in raw)] = dtype
        return arrays, dtype

    def _compute(self, args, kwargs, value: bool = True):
        arrays, dtype = self._validated(args, kwargs)
        with (x64_scope(dtype) if not jax.config.jax_enable_x64 else contextlib.nullcontext()):
            placed = [a if isinstance(a, jax.Array) and a.dtype == dtype else jnp.asarray(a, dtype=dtype)
                      for a in arrays]
            if self._device is not None:
                placed = jax.device_put(placed, self._device)
            out = self._program.run(*placed, value=value)
        return out[0], list(out[1:])

    def _structure(self, entries):
        p = self._program
        if p.order == 1:
            return entries[0] if self._single else tuple(entries)
        return self._nest_entries(entries)

    def __call__(self, *args, **kwargs):
        """Evaluate the derivative: JAX's shapes (gradient: the ``wrt``'s shape; Jacobian ``S + T``)."""
        return self._structure(self._compute(args, kwargs, value=False)[1])

    def value_and_grad(self, *args, **kwargs):
        """``(value, derivative)`` from one compiled call."""
        value, entries = self._compute(args, kwargs)
        return value, self._structure(entries)

    def array(self, *args, **kwargs):
        """For arrays, the same as ``d(...)`` with a single ``wrt`` (blocks do not stack in general)."""
        if not self._single:
            raise SymdiffError("d.array() stacks scalar entries; with array wrt use d(...), which returns blocks")
        return self(*args, **kwargs)

    def vjp(self, cotangent, *args, **kwargs):
        """The gradient of ``sum(cotangent * y)`` per ``wrt`` (order 1)."""
        p = self._program
        if p.order != 1:
            raise SymdiffError(f"vjp needs a first-order derivative; this one has order {p.order}")
        value, entries = self._compute(args, kwargs)
        ct = np.asarray(cotangent)
        if ct.dtype.kind not in "biuf":
            raise InputError(f"cotangent must be real numbers, got dtype {ct.dtype}")
        if ct.shape != value.shape:
            raise ShapeError(f"cotangent of shape {ct.shape} does not match the output shape {value.shape}")
        with x64_scope(np.dtype(value.dtype)):
            ct = jnp.asarray(ct, dtype=value.dtype)
            grads = [jnp.tensordot(ct, j, axes=ct.ndim) for j in entries]
        return grads[0] if self._single else tuple(grads)

    @property
    def function(self):
        """The pure JAX function behind ``d(...)`` (inputs positional in ``d.args`` order)."""
        kernel = self._program.kernel

        def derivative(*xs):
            return self._structure(list(kernel(*xs)[1:]))

        derivative.__doc__ = f"Derivative of {self.expr} with respect to {', '.join(w.name for w in self.wrt)}."
        return derivative

    def check(self, *args, rtol=None, atol=None, **kwargs):
        """Cross-check against JAX autodiff and float64 central differences."""
        from ._array_check import cross_check_arrays

        return cross_check_arrays(self, args, kwargs, rtol=rtol, atol=atol)

    def save(self, path) -> None:
        """Serialise closed forms and compiled code (see :func:`symdiff.load`)."""
        from ._array_serialize import save_arrays

        save_arrays(self, path)


def _runs(combo):
    out = []
    for i in combo:
        if out and out[-1][0] == i:
            out[-1] = (i, out[-1][1] + 1)
        else:
            out.append((i, 1))
    return out


def _check_shape(sym, shape: tuple, sizes: dict) -> None:
    """Raise ShapeError unless ``shape`` fits the declared shape of ``sym`` (dims consistent in ``sizes``)."""
    declared = tuple(sym.shape) if isinstance(sym, ArraySymbol) else ()
    if len(shape) != len(declared):
        raise ShapeError(f"input {sym.name!r} has shape {tuple(shape)} but is declared {ir.format_shape(declared)} "
                         f"({len(declared)} dimensions, got {len(shape)})")
    for axis, (d, size) in enumerate(zip(declared, shape)):
        if isinstance(d, int):
            if d != size:
                raise ShapeError(f"input {sym.name!r}: dimension {axis} has size {size}, declared {d} "
                                 f"(shape {tuple(shape)}, declared {ir.format_shape(declared)})")
            continue
        if d in sizes:
            first, where = sizes[d]
            if first != size:
                raise ShapeError(f"dimension {d}: size {first} in input {where} but {size} in input "
                                 f"{sym.name!r} (axis {axis})")
        else:
            sizes[d] = (size, f"{sym.name!r} (axis {axis})")
