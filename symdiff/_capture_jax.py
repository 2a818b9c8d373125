"""Existing JAX code as input: a callable's jaxpr -> the one captured form.

A callable that SymPy symbols cannot go through (it calls ``jnp.sin``,
``jax.nn.relu``, a ``jax.jit``-decorated function, ...) is traced once by
``jax.make_jaxpr`` with abstract float64 scalars (in a local x64 scope, so a
literal like ``0.1`` keeps its float64 value), and its equations are read one
by one into SymPy:

- :data:`PRIMITIVES` maps each elementwise JAX primitive to its SymPy
  counterpart: the inverse of the lowering table (``_lower.FUNCTION_TABLE``);
  comparisons become relations and ``select_n`` (``jnp.where``) a ``Piecewise``;
- calls (``jax.jit``, ``custom_jvp`` and ``custom_vjp`` functions, ``remat``)
  are inlined. A few library functions whose inlined body reads badly
  (``jax.nn.softplus``, ``jax.nn.relu``, ``jax.scipy.special.gamma``'s sign)
  are recognised by name *and* by comparing their body with the library's own,
  then captured whole (:data:`RECOGNISED`);
- an equation whose inputs are all constants is evaluated by JAX itself
  (constant folding), so constants from the enclosing scope become numbers;
- small arrays that mix constants and symbols are held as NumPy object arrays of
  SymPy entries (broadcasts, sums, slices, ``stack``, ``dot_general``), so a
  sum against a constant array collapses to one scalar formula;
- anything else (loops, random numbers, callbacks, foreign calls, primitives
  not in the table) raises :class:`CaptureError` naming the primitive and the
  user's source line.

Custom JVP/VJP rules are not used: the derivative is the one of the function's
own computation (which is what it means mathematically; it differs from
``jax.grad`` only where a rule deliberately departs from the primal, e.g. at a
removable singularity).
"""

from __future__ import annotations

import functools
import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import sympy
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal

from ._errors import CaptureError
from ._functions import cbrt, relu, sigmoid, softplus
from ._placement import x64_scope

__all__ = ["PRIMITIVES", "RECOGNISED", "REFUSED", "JaxCapture", "JaxReference", "call_with_symbols", "capture_jax"]

MAX_ARRAY_SIZE = 10_000  # entries of an array of SymPy expressions held while reading a jaxpr
_F64 = np.dtype(np.float64)


def _div(a, b):
    return a / b


def _select_n(pred, *cases):
    """``lax.select_n``: ``cases[pred]``; a boolean ``pred`` picks ``cases[1]`` where true."""
    if len(cases) != 2 or not isinstance(pred, (sympy.logic.boolalg.Boolean, sympy.Rel)):
        raise _Unsupported("select_n with an integer selector")
    return sympy.Piecewise((cases[1], pred), (cases[0], True))


def _boolean(op):
    def build(*args):
        if not all(isinstance(a, (sympy.logic.boolalg.Boolean, sympy.Rel)) for a in args):
            raise _Unsupported("bitwise operations on numbers")
        return op(*args)

    return build


def _mul(a, b):
    # jax.scipy.special.gamma(x) is gammasgn(x) * exp(lgamma(x)): read it back as gamma(x)
    for s, e in ((a, b), (b, a)):
        if isinstance(s, _GammaSign) and e == sympy.exp(sympy.loggamma(s.args[0])):
            return sympy.gamma(s.args[0])
    return a * b


# JAX primitive -> SymPy builder of its (scalar) arguments. The inverse of the lowering table.
PRIMITIVES: dict[str, Callable[..., sympy.Basic]] = {
    "neg": operator.neg,
    "add": operator.add,
    "sub": operator.sub,
    "mul": _mul,
    "div": _div,
    "max": sympy.Max,
    "min": sympy.Min,
    "pow": sympy.Pow,
    "square": lambda a: a**2,
    "sqrt": sympy.sqrt,
    "rsqrt": lambda a: 1 / sympy.sqrt(a),
    "cbrt": cbrt,
    "exp": sympy.exp,
    "exp2": lambda a: 2**a,
    "log": sympy.log,
    "log1p": lambda a: sympy.log(1 + a),
    "expm1": lambda a: sympy.exp(a) - 1,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
    "atan2": sympy.atan2,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "asinh": sympy.asinh,
    "acosh": sympy.acosh,
    "atanh": sympy.atanh,
    "logistic": sigmoid,
    "abs": sympy.Abs,
    "sign": sympy.sign,
    "erf": sympy.erf,
    "erfc": sympy.erfc,
    "lgamma": sympy.loggamma,
    "digamma": lambda a: sympy.polygamma(0, a),
    "polygamma": sympy.polygamma,
    "gt": sympy.Gt,
    "ge": sympy.Ge,
    "lt": sympy.Lt,
    "le": sympy.Le,
    "eq": sympy.Eq,
    "ne": sympy.Ne,
    "and": _boolean(sympy.And),
    "or": _boolean(sympy.Or),
    "not": _boolean(sympy.Not),
    "clamp": lambda lo, x, hi: sympy.Min(sympy.Max(x, lo), hi),
    "select_n": _select_n,
    "copy": lambda a: a,
    "copy_p": lambda a: a,
    "reduce_precision": lambda a: a,  # float rounding, not mathematics
    "optimization_barrier": lambda a: a,
    "is_finite": lambda a: sympy.true,  # real arithmetic has no infinities (constants are folded by JAX)
}

# Primitives refused outright, even on constants: no closed form, or not deterministic.
REFUSED: dict[str, str] = {
    "while": "a loop (lax.while_loop / lax.fori_loop)",
    "scan": "a loop (lax.scan / lax.fori_loop)",
    "stop_gradient": "lax.stop_gradient of an array expression",
    "pure_callback": "a callback into Python",
    "io_callback": "a callback into Python (a side effect)",
    "debug_callback": "a callback into Python (jax.debug.print / callback)",
    "debug_print": "a callback into Python (jax.debug.print)",
    "ffi_call": "a foreign (custom) call",
    "custom_call": "a foreign (custom) call",
    "threefry2x32": "random numbers",
    "rng_uniform": "random numbers",
    "rng_bit_generator": "random numbers",
}

_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")  # where call-like primitives keep their body
_CALLS = {"jit", "pjit", "closed_call", "core_call", "remat", "checkpoint", "custom_jvp_call", "custom_vjp_call",
          "custom_vjp_call_jaxpr"}


class _Unsupported(Exception):
    """A table entry cannot take these arguments; reported as a CaptureError at the equation."""


class _GammaSign(sympy.Function):
    """``jax.scipy.special.gammasgn`` while reading; ``gammasgn(x) * exp(lgamma(x))`` becomes ``gamma(x)``."""


def _gammasgn_reference(x):
    return jax.scipy.special.gammasgn(x)


# (primitive, function name) -> (library function, SymPy builder). The body is compared with the
# library's own before the call is captured whole, so a user function of the same name is inlined.
RECOGNISED: dict[tuple[str, str], tuple[Callable, Callable]] = {
    ("jit", "softplus"): (jax.nn.softplus, softplus),
    ("pjit", "softplus"): (jax.nn.softplus, softplus),
    ("custom_jvp_call", "relu"): (jax.nn.relu, relu),
    ("jit", "gammasgn"): (_gammasgn_reference, _GammaSign),
    ("pjit", "gammasgn"): (_gammasgn_reference, _GammaSign),
}
_REFERENCE_BODIES: dict[tuple, str | None] = {}
_PLATFORM = object()  # the value of lax.platform_dependent's platform index while reading


@functools.lru_cache(maxsize=1)
def _own_kernels() -> dict[str, list[tuple[Callable, Callable, int]]]:
    """symdiff's own lowering functions (whole templates like ``name({0})``) by name -> (function, head, arity).

    The lowering may emit calls of its own kernels (a ``custom_jvp`` around a fast
    implementation); read back, such a call becomes the SymPy head it lowers,
    once its body is checked to be that kernel's. This keeps the round trip
    text -> JAX -> symdiff exact whatever the kernels do inside.
    """
    from . import _lower

    found: dict[str, list] = {}
    namespace = getattr(_lower, "_NAMESPACE", {})  # the names the lowering's templates call
    for head, template in _lower.FUNCTION_TABLE.items():
        match = re.fullmatch(r"([A-Za-z_][\w.]*)\(\{0\}(, \{1\})?\)", template)
        if not match:
            continue
        fn = namespace.get(match.group(1).split(".")[0])
        for attr in match.group(1).split(".")[1:]:
            fn = getattr(fn, attr, None)
        if fn is None or getattr(fn, "__module__", "").startswith("jax"):
            continue  # JAX's own functions read back through the primitive table
        found.setdefault(getattr(fn, "__name__", None), []).append((fn, head, 2 if match.group(2) else 1))
    return found


def call_with_symbols(fn: Callable, symbols: list) -> tuple[Any, bool]:
    """``fn(*symbols)``, and whether it ran any JAX operation (then it is JAX code).

    The call runs inside a JAX trace, where every JAX operation is recorded, even
    one on constants (``jax.random.normal(key)``): a JAX value computed once at
    capture time must not pass for a constant of a symbolic function.

    >>> import sympy, jax.numpy as jnp
    >>> x = sympy.Symbol("x", real=True)
    >>> call_with_symbols(lambda x: sympy.sin(x) * 2, [x])
    (2*sin(x), False)
    >>> call_with_symbols(lambda x: (jnp.zeros(3), x)[1], [x])
    (x, True)
    """
    box = []

    def probe():
        box.append(fn(*symbols))
        return 0

    used_jax = bool(jax.make_jaxpr(probe)().eqns)
    return box[0], used_jax


# ---- values while reading: SymPy scalars, constant arrays, object arrays of SymPy ----------


def _is_symbolic(v) -> bool:
    return isinstance(v, sympy.Basic) or (isinstance(v, np.ndarray) and v.dtype == object)


def _number(value) -> sympy.Basic:
    """A constant scalar as a SymPy number: integral floats as integers, others at float64 precision."""
    v = np.asarray(value)
    if v.dtype == bool:
        return sympy.true if bool(v) else sympy.false
    if v.dtype.kind in "iu":
        return sympy.Integer(int(v))
    if v.dtype.kind == "f" or v.dtype == jnp.bfloat16:
        f = float(v)
        if math.isnan(f):
            return sympy.nan
        if math.isinf(f):
            return sympy.oo if f > 0 else -sympy.oo
        if f.is_integer() and abs(f) < 2**53:
            return sympy.Integer(int(f))
        return sympy.Float(f)
    raise _Unsupported(f"values of dtype {v.dtype}")


def _scalar(v) -> sympy.Basic:
    if isinstance(v, sympy.Basic):
        return v
    if isinstance(v, np.ndarray) and v.dtype == object:
        return v[()]
    return _number(v)


def _objects(v) -> np.ndarray:
    """Any value as an object array of SymPy entries."""
    if isinstance(v, np.ndarray) and v.dtype == object:
        return v
    if isinstance(v, sympy.Basic):
        out = np.empty((), dtype=object)
        out[()] = v
        return out
    arr = np.asarray(v)
    out = np.empty(arr.shape, dtype=object)
    for index in np.ndindex(arr.shape):
        out[index] = _number(arr[index])
    return out


def _result(arr: np.ndarray):
    """Object arrays of rank 0 are held as the SymPy scalar itself."""
    if arr.ndim == 0:
        return arr[()]
    if arr.size > MAX_ARRAY_SIZE:
        raise _Unsupported(f"an array of {arr.size} symbolic entries (more than {MAX_ARRAY_SIZE})")
    return arr


def _elementwise(build: Callable, args: list):
    if all(isinstance(a, sympy.Basic) or np.ndim(a) == 0 for a in args):
        return build(*(_scalar(a) for a in args))
    arrays = np.broadcast_arrays(*(_objects(a) for a in args))
    if arrays[0].size > MAX_ARRAY_SIZE:
        raise _Unsupported(f"an array of {arrays[0].size} symbolic entries (more than {MAX_ARRAY_SIZE})")
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = build(*(a[index] for a in arrays))
    return _result(out)


def _reduce(combine: Callable, x, axes) -> Any:
    a = _objects(x)
    axes = tuple(axes)
    kept = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, kept + list(axes))
    rows = moved.reshape(moved.shape[: len(kept)] + (-1,))
    out = np.empty(rows.shape[:-1], dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = combine(*rows[index])
    return _result(out)


def _broadcast_in_dim(x, shape, broadcast_dimensions, **_):
    a = _objects(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = a.shape[i]
    return _result(np.array(np.broadcast_to(a.reshape(expanded), tuple(shape))))


def _reshape(x, new_sizes, dimensions=None, **_):
    if dimensions is not None:
        raise _Unsupported("reshape with a dimension order")
    return _result(_objects(x).reshape(tuple(new_sizes)))


def _dot_general(lhs, rhs, dimension_numbers, **_):
    (lc, rc), (lb, rb) = dimension_numbers
    a, b = _objects(lhs), _objects(rhs)
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    la = [next(letters) for _ in range(a.ndim)]
    ra = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(list(lc) + list(lb), list(rc) + list(rb)):
        ra[j] = la[i]
    batch = [la[i] for i in lb]
    free_l = [la[i] for i in range(a.ndim) if i not in lc and i not in lb]
    free_r = [ra[j] for j in range(b.ndim) if j not in rc and j not in rb]
    spec = f"{''.join(la)},{''.join(ra)}->{''.join(batch + free_l + free_r)}"
    return _result(np.asarray(np.einsum(spec, a, b), dtype=object))


def _slice(x, start_indices, limit_indices, strides=None, **_):
    steps = strides or (1,) * len(start_indices)
    return _result(_objects(x)[tuple(slice(s, e, k) for s, e, k in zip(start_indices, limit_indices, steps))])


# Array primitives on object arrays (shape bookkeeping; the entries stay SymPy).
STRUCTURAL: dict[str, Callable] = {
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "squeeze": lambda x, dimensions, **_: _result(np.squeeze(_objects(x), axis=tuple(dimensions))),
    "expand_dims": lambda x, dimensions, **_: _result(np.expand_dims(_objects(x), tuple(dimensions))),
    "transpose": lambda x, permutation, **_: _result(np.transpose(_objects(x), permutation)),
    "reduce_sum": lambda x, axes, **_: _reduce(sympy.Add, x, axes),
    "reduce_prod": lambda x, axes, **_: _reduce(sympy.Mul, x, axes),
    "reduce_max": lambda x, axes, **_: _reduce(sympy.Max, x, axes),
    "reduce_min": lambda x, axes, **_: _reduce(sympy.Min, x, axes),
    "concatenate": lambda *xs, dimension, **_: _result(np.concatenate([_objects(x) for x in xs], axis=dimension)),
    "stack": lambda *xs, axis, **_: _result(np.stack([_objects(x) for x in xs], axis=axis)),
    "slice": _slice,
    "dot_general": _dot_general,
}


def _is_condition(v) -> bool:
    return isinstance(v, (sympy.logic.boolalg.Boolean, sympy.Rel)) and not isinstance(v, sympy.Expr)


def _condition_of(index):
    """``c`` for an index built as ``Piecewise((1, c), (0, True))`` (a boolean converted to an integer)."""
    if isinstance(index, sympy.Piecewise) and len(index.args) == 2:
        (one, c), (zero, rest) = index.args
        if one == 1 and zero == 0 and rest == sympy.true:
            return c
    return None


def _convert(x, new_dtype, **_):
    """``convert_element_type``: float to float is the identity; a boolean becomes 1 or 0."""
    to_float = np.dtype(new_dtype).kind == "f" or np.dtype(new_dtype) == jnp.bfloat16

    def one(v):
        if _is_condition(v):
            return sympy.Piecewise((1, v), (0, True))
        if not to_float and not v.is_integer:  # integers (sizes, n - 1) stay as they are
            raise _Unsupported(f"conversion of a real symbolic value to {np.dtype(new_dtype)}")
        return v

    return _elementwise(one, [x])


# ---- reading a jaxpr ----------------------------------------------------------------------


def _location(eqn) -> str:
    try:
        from jax._src import source_info_util  # the one place JAX keeps user frames of an equation

        return source_info_util.summarize(eqn.source_info)
    except Exception:  # noqa: BLE001 - a location is a courtesy; never fail capture over it
        return ""


def _refuse(name: str, why: str, where: str, fn_name: str) -> CaptureError:
    at = f" at {where}" if where else ""
    return CaptureError(
        f"{fn_name} uses the JAX primitive {name!r} ({why}){at}; it has no closed-form counterpart in symdiff. "
        "Write that part with elementwise jax.numpy / jax.nn / jax.scipy.special functions, or as text."
    )


def _is_random(name: str) -> bool:
    return name.startswith(("random_", "rng_", "threefry"))


def _body(eqn):
    for key in _CALL_PARAMS:
        if key in eqn.params:
            body = eqn.params[key]
            if isinstance(body, ClosedJaxpr):
                return body.jaxpr, list(body.consts)
            if isinstance(body, Jaxpr):
                return body, []
    return None, None


def _call_name(eqn, body) -> str | None:
    """The called function's name (``jit`` keeps it as a parameter, ``custom_jvp`` in the body's debug info)."""
    name = eqn.params.get("name")
    if name is None and body is not None:
        name = getattr(getattr(body, "debug_info", None), "func_name", None)
    return name


def _reference_body(eqn, prim: str, name: str, reference: Callable) -> str | None:
    """The printed body of the library's own function at these input types (cached)."""
    avals = tuple((tuple(v.aval.shape), np.dtype(v.aval.dtype)) for v in eqn.invars)
    key = (prim, name, avals)
    if key not in _REFERENCE_BODIES:
        body = None
        try:
            traced = jax.make_jaxpr(reference)(*(jax.ShapeDtypeStruct(s, d) for s, d in avals))
            calls = [e for e in traced.jaxpr.eqns if e.primitive.name == prim and _call_name(e, _body(e)[0]) == name]
            if len(calls) == 1:
                body = str(_body(calls[0])[0])
        except Exception:  # noqa: BLE001 - no reference means no recognition: the call is inlined
            body = None
        _REFERENCE_BODIES[key] = body
    return _REFERENCE_BODIES[key]


class _Reader:
    """Walks a jaxpr (and the jaxprs of the calls in it) into SymPy values."""

    structural = STRUCTURAL  # array primitives: object arrays of SymPy entries here (_jaxpr_arrays: the array IR)
    reads_stop_gradient = True

    def __init__(self, fn_name: str):
        self.fn_name = fn_name
        self.stopped: list[tuple[sympy.Dummy, str]] = []  # stop_gradient values, held as placeholders

    def constant(self, value):
        """A constant of the jaxpr (a literal or a captured array) as a reading value."""
        return _constant(value)

    def run(self, jaxpr: Jaxpr, consts, args, where: str = "") -> list:
        env: dict = {}

        def read(v):
            if isinstance(v, Literal):
                return self.constant(v.val)
            return env[v]

        for var, value in zip(jaxpr.constvars, consts):
            env[var] = self.constant(value)
        for var, value in zip(jaxpr.invars, args):
            env[var] = value
        for eqn in jaxpr.eqns:
            outs = self.equation(eqn, [read(v) for v in eqn.invars], where)
            for var, value in zip(eqn.outvars, outs):
                env[var] = value
        return [read(v) for v in jaxpr.outvars]

    def equation(self, eqn, ins: list, outer: str) -> list:
        prim = eqn.primitive.name
        where = _location(eqn) or outer
        if prim == "stop_gradient" and self.reads_stop_gradient:
            return [self.stop_gradient(ins[0], where)]
        if prim in REFUSED or _is_random(prim):
            raise _refuse(prim, REFUSED.get(prim, "random numbers"), where, self.fn_name)
        if prim in _CALLS or _body(eqn)[0] is not None:
            return self.call(eqn, prim, ins, where)
        if prim == "platform_index":  # lax.platform_dependent: which branch runs is decided at compilation
            return [_PLATFORM]
        if prim == "cond":
            return self.cond(eqn, ins, where)
        if eqn.effects:
            raise _refuse(prim, "a side effect", where, self.fn_name)
        if not any(_is_symbolic(v) for v in ins):
            return self.fold(eqn, ins, where)
        try:
            if prim in PRIMITIVES:
                return [_elementwise(PRIMITIVES[prim], ins)]
            if prim == "integer_pow":
                y = eqn.params["y"]
                return [_elementwise(lambda a: a**y, ins)]
            if prim == "convert_element_type":
                return [_convert(ins[0], **eqn.params)]
            if prim in self.structural:
                return [self.structural[prim](*ins, **eqn.params)]
        except _Unsupported as exc:
            raise _refuse(prim, str(exc), where, self.fn_name) from None
        raise _refuse(prim, "not in symdiff's table of JAX primitives", where, self.fn_name)

    def call(self, eqn, prim: str, ins: list, where: str) -> list:
        if prim not in _CALLS:
            raise _refuse(prim, "a control-flow or call primitive symdiff cannot read", where, self.fn_name)
        body, consts = _body(eqn)
        name = _call_name(eqn, body)
        if any(_is_symbolic(v) for v in ins):
            candidates = [RECOGNISED[(prim, name)]] if (prim, name) in RECOGNISED else []
            candidates += [(fn, head) for fn, head, arity in _own_kernels().get(name, ()) if arity == len(ins)]
            for reference, build in candidates:
                if _reference_body(eqn, prim, name, reference) == str(body):
                    try:
                        return [_elementwise(build, ins)]
                    except _Unsupported as exc:
                        raise _refuse(prim, str(exc), where, self.fn_name) from None
        return self.run(body, consts, ins, where)

    def stop_gradient(self, value, where: str):
        """A placeholder per entry; :func:`_drop_stopped` accepts it only if the outputs do not depend on it."""
        if not _is_symbolic(value):
            return value

        def stop(v):
            dummy = sympy.Dummy("stopped", real=True)
            self.stopped.append((dummy, v, where))
            return dummy

        return _elementwise(stop, [value])

    def cond(self, eqn, ins: list, where: str) -> list:
        """``lax.cond``/``switch`` on a condition -> ``Piecewise``; ``lax.platform_dependent`` -> its default."""
        branches = eqn.params["branches"]
        index, operands = ins[0], ins[1:]
        platforms = eqn.params.get("branches_platforms")
        if index is _PLATFORM or platforms:
            # every branch computes the same function for its platform: read the portable (default) one
            choice = platforms.index(None) if platforms and None in platforms else len(branches) - 1
        elif not _is_symbolic(index):
            choice = int(np.clip(np.asarray(index), 0, len(branches) - 1))
        else:
            condition = _condition_of(index)
            if condition is None or len(branches) != 2:
                raise _refuse("cond", "a branch on a non-boolean or array index", where, self.fn_name)
            no, yes = (self.run(b.jaxpr, b.consts, operands, where) for b in branches)
            try:
                return [_elementwise(lambda c, a, b: sympy.Piecewise((b, c), (a, True)), [condition, a, b])
                        for a, b in zip(no, yes)]
            except _Unsupported as exc:
                raise _refuse("cond", str(exc), where, self.fn_name) from None
        chosen = branches[choice]
        return self.run(chosen.jaxpr, chosen.consts, operands, where)

    def fold(self, eqn, ins: list, where: str) -> list:
        """Every input is a constant: JAX computes the result (in float64)."""
        try:
            out = eqn.primitive.bind(*ins, **eqn.params)
        except Exception as exc:  # noqa: BLE001 - reported with the primitive and the line
            raise _refuse(eqn.primitive.name, f"could not be evaluated on constants: {exc}", where,
                          self.fn_name) from exc
        outs = out if eqn.primitive.multiple_results else [out]
        return [self.constant(o) for o in outs]


def _constant(value):
    try:
        return np.asarray(value)
    except Exception:  # noqa: BLE001 - e.g. PRNG keys: kept opaque, only refused primitives take them
        return value


# ---- the captured result and the check's reference --------------------------------------


@dataclass(frozen=True)
class JaxReference:
    """Output ``index`` of the user's own JAX function, of its inputs by name: the check's autodiff reference.

    Inputs the closed form does not mention are 0.
    """

    fn: Callable
    names: tuple[str, ...]
    index: int

    def __call__(self, values: dict):
        fill = next(iter(values.values()), 0.0)
        xs = [values[n] if n in values else jnp.zeros_like(fill) for n in self.names]
        leaves = jax.tree_util.tree_leaves(self.fn(*xs))
        flat = jnp.concatenate([jnp.ravel(jnp.asarray(leaf)) for leaf in leaves])
        return flat[self.index]


@dataclass(frozen=True)
class JaxCapture:
    """What :func:`capture_jax` returns: the output(s) and one reference per output."""

    outputs: Any  # one SymPy expression, or a list of them (vector-valued)
    references: tuple[JaxReference, ...]


def _finish(value) -> sympy.Expr:
    value = _scalar(value)
    if isinstance(value, (sympy.logic.boolalg.Boolean, sympy.Rel)) and not isinstance(value, sympy.Expr):
        raise _Unsupported("a boolean output")
    if value.has(_GammaSign):  # a gammasgn that was not part of gamma(x)
        value = value.replace(_GammaSign, lambda x: sympy.sign(sympy.gamma(x)))
    return value


def _drop_stopped(entries: list, stopped: list, fn_name: str) -> list:
    """Remove ``stop_gradient`` placeholders that the outputs do not depend on (they are set to 0).

    ``jax.nn.logsumexp`` and ``softmax`` shift by a ``stop_gradient`` maximum for
    numerical safety; the value does not depend on the shift, so the closed form is
    the plain ``log(sum(exp(x)))``. A ``stop_gradient`` that changes the gradient
    has no closed form: refused.
    """
    for dummy, value, where in stopped:
        for e in entries:
            if e.has(dummy) and sympy.cancel(sympy.together(sympy.diff(e, dummy))) != 0:
                raise _refuse("stop_gradient", f"lax.stop_gradient of {sympy.sstr(value)[:60]}, on which the result "
                              "depends: a closed-form derivative cannot ignore it", where, fn_name)
        entries = [e.xreplace({dummy: 0}) if e.has(dummy) else e for e in entries]
    return entries


def capture_jax(fn: Callable, names: list[str], symbols: list, fn_name: str, symbolic_error=None) -> JaxCapture:
    """Capture a function written with ``jax.numpy`` from its jaxpr (inputs: float64 scalars).

    Args:
        fn: the user's callable.
        names: its parameter names (they name the symbols).
        symbols: the real SymPy symbols for ``names``.
        fn_name: how messages name the function, e.g. ``"function 'f'"``.
        symbolic_error: why calling ``fn`` with SymPy symbols failed, if it did
            (reported when JAX cannot trace it either).

    Returns:
        A :class:`JaxCapture`: one expression (a scalar output) or a list (a
        tuple or vector output), and a reference to ``fn`` per output.

    >>> import jax.numpy as jnp, sympy
    >>> x = sympy.Symbol("x", real=True)
    >>> capture_jax(lambda x: jnp.sin(x) ** 2 + 0.1, ["x"], [x], "f").outputs
    sin(x)**2 + 0.1
    """
    with x64_scope(_F64):
        try:
            closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*(jax.ShapeDtypeStruct((), _F64) for _ in names))
        except CaptureError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code failed under tracing: say both ways
            tried = (f" with SymPy symbols {names} ({type(symbolic_error).__name__}: {symbolic_error}) nor"
                     if symbolic_error is not None else "")
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            raise CaptureError(
                f"{fn_name} could not be traced{tried} with JAX ({type(exc).__name__}: {first_line}). "
                "Use symdiff's math functions (sd.sin, sd.exp, ...) or SymPy's inside it, or jax.numpy, jax.nn "
                "and jax.scipy.special; not math or numpy, and no Python branching on the inputs (use jnp.where)."
            ) from exc
        reader = _Reader(fn_name)
        try:
            outs = reader.run(closed.jaxpr, closed.consts, list(symbols))
        except _Unsupported as exc:
            raise CaptureError(f"{fn_name}: {exc} cannot be captured") from None
    leaves = jax.tree_util.tree_leaves(out_shape)
    entries = []
    for leaf, value in zip(leaves, outs):
        if np.dtype(leaf.dtype).kind not in "f" and np.dtype(leaf.dtype) != jnp.bfloat16:
            raise CaptureError(f"{fn_name} returns a value of dtype {leaf.dtype}; expected real numbers")
        flat = _objects(value).reshape(-1) if np.ndim(value) else [value]
        try:
            entries += [_finish(v) for v in flat]
        except _Unsupported as exc:
            raise CaptureError(f"{fn_name}: {exc} cannot be captured") from None
    entries = _drop_stopped(entries, reader.stopped, fn_name)
    references = tuple(JaxReference(fn, tuple(names), i) for i in range(len(entries)))
    scalar_output = len(leaves) == 1 and tuple(leaves[0].shape) == ()
    return JaxCapture(entries[0] if scalar_output else entries, references)
