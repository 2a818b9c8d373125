"""``derive()`` and the :class:`Derivative` it returns."""

from __future__ import annotations

import itertools
from typing import Any

import jax
import numpy as np
import sympy

from . import _cache
from ._capture import Captured, capture, resolve_wrt
from ._compile import Program, get_program
from ._deep import call_deep
from ._errors import InputError, ShapeError, SymdiffError
from ._placement import infer_float_dtype, resolve_device, resolve_float_dtype, x64_scope
from ._serialize import read as _read_saved
from ._serialize import save as _save
from ._simplify import resolve_budget

__all__ = ["derive", "Derivative"]

PACK_MIN = 4  # this many small host inputs or more are sent as one packed array
PACK_MAX_SIZE = 4096  # elements per input: larger inputs are transferred as they are

_CAPTURED = _cache.LRUCache("captured text", 1024)


_KINDS: dict[type, str] = {}  # input type -> "jax" | "jax-like" | "host"; jax.Array's isinstance is slow
_HOST_TYPES: set[type] = set()  # the types of kind "host"


def _kind(value) -> str:
    """Whether an input is a JAX array, has ``__jax_array__``, or lives on the host (cached per type)."""
    t = type(value)
    kind = _KINDS.get(t)
    if kind is None:
        kind = _KINDS[t] = ("jax" if isinstance(value, jax.Array) else  # the same for every value of a type
                            "jax-like" if hasattr(value, "__jax_array__") else "host")
        if kind == "host":
            _HOST_TYPES.add(t)
    return kind


def _capture_cached(expr: Any) -> Captured:
    """Text and SymPy expressions are captured once per distinct value; callables every time."""
    if isinstance(expr, str):
        def parse_once():
            _cache.count("parses")
            return capture(expr)

        return _CAPTURED.get_or_create(expr, parse_once)
    if isinstance(expr, sympy.Basic):  # hashing a deep SymPy tree recurses: do it on the deep stack
        return call_deep(_CAPTURED.get_or_create, ("sympy", expr), lambda: capture(expr))
    return capture(expr)


def derive(expr, wrt=None, *, order: int = 1, simplify=True, dtype=None, device=None, shapes=None) -> Derivative:
    """Differentiate ``expr`` symbolically and compile the result with JAX.

    Args:
        expr: expression text, a SymPy expression, a Python callable (its
            parameters name the symbols), or a list of these (vector-valued).
        wrt: ``None`` for every free symbol (natural name order, results are
            tuples), one name or Symbol (results are single arrays), or a
            sequence of them (results are tuples in that order).
        order: 1 for the gradient/Jacobian, 2 for the Hessian, k for k-th derivatives.
        simplify: ``True`` (about one second of simplification), ``False``, or
            a budget in seconds.
        dtype: ``"float16" | "bfloat16" | "float32" | "float64"`` or a dtype
            object; ``None`` picks float64 when an array input is float64, else float32.
        device: ``None``, ``"cpu"``, ``"gpu"``, ``"cuda"``, ``"cuda:N"`` or a ``jax.Device``.
        shapes: ``dict`` name -> shape for array symbols (``"n"``, ``("n", "n")``, ``(3,)``);
            see ``docs/arrays.md``. SymPy ``MatrixSymbol`` expressions need none.

    Returns:
        A :class:`Derivative`: printable closed forms, callable compiled code.

    >>> import symdiff as sd
    >>> d = sd.derive("3*a**3 - b**2")
    >>> print(d)
    d/da = 9*a**2
    d/db = -2*b
    >>> ga, gb = d(a=[2., 3.], b=[6., 4.])
    >>> ga, gb
    (Array([36., 81.], dtype=float32), Array([-12.,  -8.], dtype=float32))
    """
    if shapes is not None or (isinstance(expr, sympy.Basic) and _array_input(expr)):
        from ._array_derive import derive_arrays  # arrays: matrix calculus (issue 11)

        if callable(expr) and not isinstance(expr, sympy.Basic):  # JAX code: its jaxpr read onto the array IR
            from ._jaxpr_arrays import jax_array_expression, with_user_check

            read = jax_array_expression(expr, shapes)
            if read is not expr:
                return with_user_check(derive_arrays(read, wrt, order=order, simplify=simplify, dtype=dtype,
                                                     device=device, shapes=shapes), expr)
        return derive_arrays(expr, wrt, order=order, simplify=simplify, dtype=dtype, device=device, shapes=shapes)
    captured = _capture_cached(expr)
    wrt_symbols, single = resolve_wrt(wrt, captured)
    budget = resolve_budget(simplify)
    program = get_program(captured, wrt_symbols, order, budget)
    derivative = Derivative(program, single, resolve_float_dtype(dtype), resolve_device(device))
    derivative._references = captured.references  # JAX code as input: d.check differentiates the user's own function
    return derivative


def _array_input(expr) -> bool:
    from ._array_derive import is_array_input

    return is_array_input(expr)


def _superscript(k: int) -> str:
    return "" if k == 1 else f"^{k}"


class Derivative:
    """A derivative: its closed forms, and compiled JAX code that evaluates them.

    Created by :func:`derive`; see its docstring and ``docs/api.md``.
    """

    def __init__(self, program: Program, single: bool, dtype: np.dtype | None, device: jax.Device | None):
        self._program = program
        self._single = single
        self._dtype = dtype
        self._device = device

    # ---- symbolic side -------------------------------------------------

    @property
    def expr(self) -> sympy.Expr | sympy.Matrix:
        """The captured SymPy expression (a column ``sympy.Matrix`` when vector-valued)."""
        return self._program.captured.expr

    @property
    def wrt(self) -> tuple[sympy.Symbol, ...]:
        """The symbols differentiated by, in output order."""
        return self._program.wrt

    @property
    def args(self) -> tuple[sympy.Symbol, ...]:
        """Every input of the compiled function, in natural name order."""
        return self._program.args

    @property
    def order(self) -> int:
        """The derivative order."""
        return self._program.order

    @property
    def source(self) -> str:
        """The generated JAX source that computes the value and every derivative entry."""
        return self._program.kernel.source

    def _entry(self, o: int, combo) -> sympy.Expr:
        return self._program.entries[self._program.index(o, combo)]

    @property
    def closed_form(self):
        """The simplified derivative(s) as SymPy objects (see the API contract for the shape)."""
        p = self._program
        n, k = len(p.wrt), p.order
        outputs = range(len(p.captured.outputs))
        if p.captured.vector:
            if k == 1:
                return sympy.Matrix([[self._entry(o, (i,)) for i in range(n)] for o in outputs])
            if self._single:
                return sympy.Matrix([self._entry(o, (0,) * k) for o in outputs])
            return sympy.Array(
                [self._entry(o, idx) for o in outputs for idx in itertools.product(range(n), repeat=k)],
                (len(outputs),) + (n,) * k,
            )
        if k == 1:
            return {w.name: self._entry(0, (i,)) for i, w in enumerate(p.wrt)}
        if self._single:
            return self._entry(0, (0,) * k)
        if k == 2:
            return sympy.Matrix(n, n, lambda i, j: self._entry(0, (i, j)))
        return sympy.Array([self._entry(0, idx) for idx in itertools.product(range(n), repeat=k)], (n,) * k)

    def _labelled(self):
        """(output index, wrt multiset, closed form) for every distinct entry."""
        p = self._program
        for (o, combo), expr in zip(p.keys, p.entries):
            yield o, combo, expr

    def _label(self, o: int, combo, latex: bool = False) -> str:
        p = self._program
        k = len(combo)
        counts = [(i, combo.count(i)) for i in sorted(set(combo))]
        vector = p.captured.vector
        if latex:
            top = "\\partial" + (f"^{{{k}}}" if k > 1 else "")
            f = f" f_{{{o}}}" if vector else ""
            bottom = " ".join(
                f"\\partial {sympy.latex(p.wrt[i])}" + (f"^{{{c}}}" if c > 1 else "") for i, c in counts
            )
            return f"\\frac{{{top}{f}}}{{{bottom}}}"
        top = "d" + _superscript(k) + (f"[{o}]" if vector else "")
        bottom = " ".join(f"d{p.wrt[i].name}{_superscript(c)}" for i, c in counts)
        return f"{top}/{bottom}"

    def __str__(self) -> str:
        return call_deep(lambda: "\n".join(f"{self._label(o, c)} = {sympy.sstr(e)}" for o, c, e in self._labelled()))

    def __repr__(self) -> str:
        wrt = ", ".join(w.name for w in self.wrt)
        return f"<Derivative of {sympy.sstr(self.expr)} wrt ({wrt}), order {self.order}>"

    def latex(self) -> str:
        """LaTeX of every closed form, one ``\\\\``-separated line each."""
        lines = call_deep(lambda: [f"{self._label(o, c, latex=True)} = {sympy.latex(e)}" for o, c, e in self._labelled()])
        return " \\\\\n".join(lines)

    def _repr_latex_(self) -> str:
        body = self.latex()
        return f"$\\displaystyle \\begin{{aligned}}{body.replace(' = ', ' &= ')}\\end{{aligned}}$"

    # ---- numeric side --------------------------------------------------

    def _bind(self, args: tuple, kwargs: dict) -> list:
        names = self._program.arg_names
        if len(args) > len(names):
            raise InputError(
                f"got {len(args)} positional inputs but the derivative takes {len(names)}: {', '.join(names)}"
            )
        bound: dict[str, Any] = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names:
                raise InputError(f"unexpected input {name!r}; the derivative takes {', '.join(names)}")
            if name in bound:
                raise InputError(f"input {name!r} given both by position and by name")
            bound[name] = value
        missing = [n for n in names if n not in bound]
        if missing:
            raise InputError(f"missing input{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
                             f"the derivative takes {', '.join(names)}")
        return [bound[n] for n in names]

    def _bound(self, args: tuple, kwargs: dict) -> list:
        return args if not kwargs and len(args) == len(self._program.arg_names) else self._bind(args, kwargs)

    def _prepare(self, args: tuple, kwargs: dict, raw=None):
        """Bound, validated inputs (JAX or numpy arrays), their common shape if they share one, and the dtype."""
        names = self._program.arg_names
        raw = self._bound(args, kwargs) if raw is None else raw
        arrays, shapes = [], set()
        for name, value in zip(names, raw):
            kind = _kind(value)
            if kind == "jax":
                pass
            elif kind == "jax-like":
                value = value.__jax_array__()
            else:
                try:
                    value = np.asarray(value)
                except (ValueError, TypeError) as exc:
                    raise InputError(f"input {name!r} is not a numeric array: {exc}") from exc
            if value.dtype.kind not in "biuf":
                raise InputError(f"input {name!r} must be real numbers, got dtype {value.dtype} ({value!r:.60})")
            arrays.append(value)
            shapes.add(value.shape)
        if len(shapes) > 1:
            try:
                np.broadcast_shapes(*shapes)
            except ValueError:
                listed = ", ".join(f"{n}: {np.shape(a)}" for n, a in zip(names, arrays))
                raise ShapeError(f"input shapes do not broadcast together ({listed})") from None
        return arrays, (shapes.pop() if len(shapes) == 1 else None), self._dtype_for(raw)

    def _dtype_for(self, raw) -> np.dtype:
        """The computation dtype: the one asked for, else the contract's default for these inputs."""
        return self._dtype or infer_float_dtype([r for r in raw if not isinstance(r, (int, float, list, tuple))])

    def _packed(self, raw) -> np.ndarray | None:
        """Many small host inputs of one shape (a Hessian's scalars) as one array, else None.

        One NumPy call validates and stacks them all, and the jitted function
        receives one transfer instead of one per input.
        """
        if len(raw) < PACK_MIN or self._device is not None:
            return None
        if not _HOST_TYPES.issuperset(map(type, raw)) and any(_kind(v) != "host" for v in raw):
            return None
        try:
            packed = np.asarray(raw)
        except (ValueError, TypeError):  # ragged or non-numeric: the per-input path reports it
            return None
        if packed.dtype.kind not in "biuf" or packed.size > len(raw) * PACK_MAX_SIZE:
            return None
        return packed

    def _run(self, entry: str, args: tuple, kwargs: dict):
        raw = self._bound(args, kwargs)
        packed = self._packed(raw)
        if packed is not None:
            dtype = self._dtype_for(raw)
            with x64_scope(dtype):
                return self._program.jitted(entry, packed=True)(packed.astype(dtype, copy=False))
        arrays, _, dtype = self._prepare(args, kwargs, raw)
        with x64_scope(dtype):
            return self._program.jitted(entry)(*self._place(arrays, dtype))

    def _place(self, values: list, dtype) -> list:
        """Inputs in the computation dtype, on the requested device.

        NumPy inputs are cast by NumPy and handed to the jitted function as they
        are (its C++ fast path transfers them); going through ``jnp.asarray``
        one input at a time would cost far more than the computation.
        """
        placed = [
            (v if v.dtype == dtype else v.astype(dtype)) if _kind(v) == "jax" else np.asarray(v, dtype=dtype)
            for v in values
        ]
        if self._device is not None:
            placed = jax.device_put(placed, self._device)
        return placed

    def _shape_result(self, per_output: list):
        return tuple(per_output) if self._program.captured.vector else per_output[0]

    def _nest(self, entries, o: int):
        """Order >= 2 entries as nested tuples [wrt]... (single wrt: one array)."""
        p = self._program
        if self._single:
            return entries[p.index(o, (0,) * p.order)]

        def level(prefix):
            if len(prefix) == p.order:
                return entries[p.index(o, prefix)]
            return tuple(level(prefix + (i,)) for i in range(len(p.wrt)))

        return level(())

    def __call__(self, *args, **kwargs):
        """Evaluate the compiled derivative (PyTorch's ``y.backward(ones)`` for order 1)."""
        raw = self._run("jacobian" if self._program.order == 1 else "entries", args, kwargs)
        return self._structure(raw)

    def _structure(self, raw):
        """Jacobian rows (order 1) or flat entries (order >= 2) in the shape ``d(...)`` returns."""
        p = self._program
        if p.order == 1:
            per_output = [row[0] if self._single else tuple(row) for row in raw]
        else:
            per_output = [self._nest(raw, o) for o in range(len(p.captured.outputs))]
        return self._shape_result(per_output)

    def array(self, *args, **kwargs) -> jax.Array:
        """Every derivative entry elementwise, stacked into one array.

        Shape: ``broadcast_shape + (n_outputs,)? + (len(wrt),) * order``; a
        single ``wrt`` adds no trailing axes.
        """
        out = self._run("array", args, kwargs)
        if self._single:
            out = out.reshape(out.shape[: out.ndim - self._program.order])
        return out

    def sparse(self, *args, format: str = "bcoo", **kwargs):
        """The Jacobian (order 1, vector-valued) or Hessian (order 2) holding only its structural nonzeros.

        ``format="bcoo"``: a ``jax.experimental.sparse.BCOO``; ``"scipy"``: a
        ``scipy.sparse.csr_array``. See :func:`symdiff._sparse.sparse` and ``docs/sparse.md``.
        """
        from ._sparse import sparse

        return sparse(self, args, kwargs, format)

    def hvp(self, v, /, *args, **kwargs) -> jax.Array:
        """The Hessian-vector product ``H @ v`` from the closed form, never forming ``H`` (see :func:`symdiff._sparse.hvp`)."""
        from ._sparse import hvp

        return hvp(self, v, args, kwargs)

    def vjp(self, cotangent, *args, **kwargs):
        """PyTorch's ``y.backward(gradient=cotangent)``: gradient of ``sum(cotangent * y)`` per wrt input.

        For a vector-valued expression give one cotangent per output (a
        sequence, or an array whose first axis indexes the outputs).
        """
        p = self._program
        if p.order != 1:
            raise SymdiffError(f"vjp needs a first-order derivative; this one has order {p.order}")
        n_out = len(p.captured.outputs)
        if p.captured.vector:
            if len(cotangent) != n_out:
                raise ShapeError(f"expected {n_out} cotangents, one per output; got {len(cotangent)}")
            cts = [np.asarray(c) if not isinstance(c, jax.Array) else c for c in cotangent]
        else:
            cts = [cotangent if isinstance(cotangent, jax.Array) else np.asarray(cotangent)]
        for c in cts:
            if c.dtype.kind not in "biuf":
                raise InputError(f"cotangent must be real numbers, got dtype {c.dtype}")
        arrays, shape, dtype = self._prepare(args, kwargs)
        shape = shape if shape is not None else np.broadcast_shapes(*(np.shape(a) for a in arrays))
        for c in cts:
            try:
                if c.shape != shape and np.broadcast_shapes(c.shape, shape) != shape:
                    raise ValueError
            except ValueError:
                raise ShapeError(f"cotangent of shape {c.shape} does not match the output shape {shape}") from None
        with x64_scope(dtype):  # one validation of the inputs, one compiled call
            grads = p.jitted("grad")(self._place(cts, dtype), *self._place(arrays, dtype))
        return grads[0] if self._single else tuple(grads)

    def value_and_grad(self, *args, **kwargs):
        """``(value, derivative)``: the expression's value and what ``d(...)`` returns."""
        entry = "values_jacobian" if self._program.order == 1 else "values_entries"
        values, raw = self._run(entry, args, kwargs)  # one compiled call for both
        return self._shape_result(list(values)), self._structure(raw)

    @property
    def function(self):
        """The pure JAX function behind ``d(...)`` (inputs positional in ``d.args`` order).

        Usable inside ``jax.jit``, ``jax.vmap`` and ``jax.grad``.
        """
        p = self._program

        def derivative(*xs):
            return self._structure(p._jacobian(*xs) if p.order == 1 else p._entries(*xs))

        derivative.__doc__ = f"Derivative of {self.expr} with respect to {', '.join(w.name for w in p.wrt)}."
        return derivative

    def check(self, *args, rtol=None, atol=None, **kwargs):
        """Cross-check against JAX autodiff and float64 central differences (see :mod:`symdiff._check`)."""
        from ._check import cross_check

        return cross_check(self, args, kwargs, rtol=rtol, atol=atol)

    def save(self, path) -> None:
        """Serialise the compiled derivative and its closed forms (see :func:`symdiff.load`)."""
        _save(self, path)


def load(path) -> Derivative:
    """Read a derivative written by ``d.save(path)``; runs it without SymPy differentiation.

    Raises :class:`SymdiffError` for a missing, truncated, corrupted or wrong-version file.
    """
    from ._array_serialize import is_array_file, load_arrays

    if is_array_file(path):  # a derivative of array expressions (issue 11)
        return load_arrays(path)
    program, single = _read_saved(path)
    return Derivative(program, single, None, None)
