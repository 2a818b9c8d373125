"""``y.derive()`` for tensors: the recorded computation printed as closed forms, evaluated by its Plan.

The whole recorded computation becomes one SymPy expression in which
structural operations are named functions (``sum``, ``mean``, ``matmul``,
``reshape``, ``x[0]``), differentiated by ``sd.derive``; the numbers of the
resulting :class:`TensorDerivative` come from the graph's compiled
:class:`~symdiff._tensor_graph.Plan`, exactly what ``backward`` computes.

>>> from symdiff._tensor import tensor
>>> w = tensor(2., requires_grad=True, name="w")
>>> print((w**3).derive())
d/dw = 3*w**2
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

import jax
import jax.numpy as jnp
import sympy

from . import _array_ir as ir
from ._array_lower import lower_arrays
from ._derive import Derivative, derive
from ._errors import CaptureError, InputError, ShapeError, SymdiffError
from ._grad_mode import AutogradError
from ._lower import FUNCTION_TABLE, register_jax_function
from ._tensor_arrays import array_expressions, tidy
from ._tensor_dtypes import x64_mode
from ._tensor_graph import Plan, get_plan, graph_key
from ._tensor_ops import forward_structural, is_elementwise
from ._tensor_sympy import sympy_elementwise, sympy_number

__all__ = ["derive_tensor", "symbolic_expression", "display_expression", "TensorDerivative"]


# ---------------------------------------------------------------- printing: y.derive()


class _Structural(sympy.Function):
    """A structural op in a printed closed form: linear, so ``d/dw op(f) = op(df/dw)``."""

    is_real = True
    _sd_op = ""
    _sd_params: Any = ()

    @classmethod
    def eval(cls, *args):
        if args[0].is_zero:
            return sympy.Integer(0)
        return None

    def _eval_derivative(self, s):
        return self.func(self.args[0].diff(s))

    def _eval_evalf(self, prec):
        # printed forms only; numbers come from the Plan. Lowering a constant needs *a* number.
        return self.args[0]._eval_evalf(prec)

    def _sympystr(self, printer):
        inner = printer._print(self.args[0])
        op, params = self._sd_op, self._sd_params
        if op in ("sum", "mean"):
            dims, keepdim = params
            extra = "" if dims is None else f", dim={dims[0] if len(dims) == 1 else dims}"
            return f"{op}({inner}{extra}{', keepdim=True' if keepdim else ''})"
        if op == "getitem":
            atom = self.args[0].is_Atom or isinstance(self.args[0], sympy.Function)
            return f"{inner if atom else '(' + inner + ')'}[{_index_text(params[0])}]"
        if op in ("to", "clone"):
            return inner
        if op == "cast":
            return f"{params[0]}({inner})"
        return f"{self.__class__.__name__}({inner}, {params[0]})"

    def _latex(self, printer):
        inner = printer._print(self.args[0])
        if self._sd_op in ("to", "clone"):
            return inner
        if self._sd_op == "getitem":
            return f"\\left({inner}\\right)_{{{_index_text(self._sd_params[0])}}}"
        return f"\\operatorname{{{self.__class__.__name__}}}\\left({inner}\\right)"


class matmul(sympy.Function):
    """``A @ B`` in a printed closed form (product rule for derivatives)."""

    is_real = True
    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_zero or b.is_zero:
            return sympy.Integer(0)
        return None

    def _eval_derivative(self, s):
        a, b = self.args
        return matmul(a.diff(s), b) + matmul(a, b.diff(s))

    def _eval_evalf(self, prec):
        return (self.args[0] * self.args[1])._eval_evalf(prec)

    def _latex(self, printer):
        a, b = (printer._print(x) for x in self.args)
        return f"\\left({a}\\right) @ \\left({b}\\right)"


def _index_text(spec) -> str:
    parts = []
    for item in spec:
        kind = item[0]
        if kind == "int":
            parts.append(str(item[1]))
        elif kind == "none":
            parts.append("None")
        elif kind == "ellipsis":
            parts.append("...")
        elif kind == "array":
            parts.append("idx")
        else:
            start, stop, step = item[1:]
            text = f"{'' if start is None else start}:{'' if stop is None else stop}"
            parts.append(text + ("" if step is None else f":{step}"))
    return ", ".join(parts)


_DISPLAY: dict[tuple, type] = {}
_DISPLAY_NAMES = {"sum": "sum", "mean": "mean", "reshape": "reshape", "permute": "permute", "expand": "expand",
                  "getitem": "getitem", "cast": "cast", "to": "to", "clone": "clone"}
# display class -> (JAX function, unique name) for the time of a derive() call (see _display_lowerings)
_LOWERINGS: dict[type, tuple] = {matmul: (jnp.matmul, "tensor_matmul")}
_LOWERING_LOCK = threading.RLock()


def _display_class(op: str, params) -> type:
    """The SymPy function class printing ``op`` with these static parameters (one per distinct op)."""
    found = _DISPLAY.get((op, params))
    if found is None:
        name = _DISPLAY_NAMES[op]
        if op == "permute" and params[0] == tuple(reversed(range(len(params[0])))):
            name = "transpose"
        found = type(name, (_Structural,), {"_sd_op": op, "_sd_params": params, "nargs": 1})

        def lowered(x, _op=op, _params=params):
            return forward_structural(_op, _params, [x])

        _LOWERINGS[found] = (lowered, f"tensor_{name}_{len(_DISPLAY)}")
        _DISPLAY[(op, params)] = found
    return found


@contextlib.contextmanager
def _display_lowerings(expr: sympy.Expr):
    """Make the display classes in ``expr`` lowerable while derive() builds its kernel, then forget them.

    derive() compiles every closed form, so the printed functions need *some*
    JAX lowering; the numbers of a TensorDerivative come from its Plan instead.
    Removing the entries afterwards keeps the core's lowering table exactly
    the language's (the built kernel keeps its own copy of the names).
    """
    classes = {type(node) for node in sympy.preorder_traversal(expr) if type(node) in _LOWERINGS}
    with _LOWERING_LOCK:
        for cls in classes:
            fn, name = _LOWERINGS[cls]
            register_jax_function(cls, fn, name=name)
        try:
            yield
        finally:
            for cls in classes:
                FUNCTION_TABLE.pop(cls, None)


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def _input_names(order: list, positions: list[int], frame) -> list[str]:
    """``name=`` if given, else the caller's variable name, else ``x0, x1, ...``; all distinct."""
    by_id: dict[int, str] = {}
    if frame is not None:
        inputs = {id(order[i]) for i in positions}
        for scope in (frame.f_locals, frame.f_globals):
            for k, v in scope.items():
                if id(v) in inputs and id(v) not in by_id and _NAME.match(k) and k not in ("g",):
                    by_id[id(v)] = k
    wanted = [order[i].name or by_id.get(id(order[i])) for i in positions]
    used: set[str] = set()
    names = []
    counter = 0
    for w in wanted:
        if w is None or w in used or not _NAME.match(w):
            while f"x{counter}" in used or f"x{counter}" in wanted:
                counter += 1
            w = f"x{counter}"
        used.add(w)
        names.append(w)
    return names


def display_expression(key: tuple, names: dict[int, str]) -> sympy.Expr:
    """The whole recorded computation as one SymPy expression (structural ops as named functions)."""
    exprs: list[Any] = [None] * len(key)
    for i, e in enumerate(key):
        if e[0] == "in":
            exprs[i] = sympy.Symbol(names[i], real=True)
            continue
        args = [exprs[r[1]] if r[0] == "t" else sympy_number(r[2]) for r in e[2]]
        if is_elementwise(e[0]):
            exprs[i] = sympy_elementwise(e[0], e[1], args)
        elif e[0] == "matmul":
            exprs[i] = matmul(args[0], args[1])
        else:
            exprs[i] = _display_class(e[0], e[1])(args[0])
    return exprs[-1]


def symbolic_expression(y) -> sympy.Expr:
    """The SymPy expression of an elementwise tensor computation (what ``sd.derive(tensor)`` captures)."""
    order, key, _ = graph_key(y)
    structural = sorted({e[0] for e in key if e[0] != "in" and not is_elementwise(e[0])})
    if structural:
        raise CaptureError(f"this tensor computation uses {', '.join(structural)}, which have no elementwise "
                           "meaning for sd.derive; call y.derive() instead")
    positions = [i for i, e in enumerate(key) if e[0] == "in"]
    names = _input_names(order, positions, None)
    return display_expression(key, dict(zip(positions, names)))


def derive_tensor(y, frame, simplify=True) -> TensorDerivative:
    """``y.derive()``: closed forms of y by its grad leaves, evaluated through y's Plan."""
    if not y.requires_grad:
        raise AutogradError("element 0 of tensors does not require grad and does not have a grad_fn")
    order, key, inputs = graph_key(y)
    plan = get_plan(key)
    names_list = _input_names(order, plan.input_positions, frame)
    names = dict(zip(plan.input_positions, names_list))
    wrt_positions = sorted(plan.grad_positions, key=lambda i: _natural(names[i]))
    if plan.pattern is not None:
        return ArrayTensorDerivative(plan, names, list(inputs), wrt_positions)
    expr = display_expression(key, names)
    with _display_lowerings(expr):
        base = derive(expr, wrt=[sympy.Symbol(names[i], real=True) for i in wrt_positions], simplify=simplify)
    return TensorDerivative(base, plan, names, list(inputs), wrt_positions)


def _natural(name: str):
    from ._capture import natural_key

    return natural_key(name)


class TensorDerivative(Derivative):
    """The :class:`~symdiff.Derivative` of a recorded tensor computation.

    It prints like any derivative. Calling it evaluates the gradients (as
    ``y.backward(ones)`` would) through the graph's compiled plan: at the
    recorded values, or at new values given by name (same shapes).
    """

    def __init__(self, base: Derivative, plan: Plan, names: dict[int, str], values: list, wrt_positions: list[int]):
        self.__dict__.update(base.__dict__)
        self._plan = plan
        self._names = names
        self._values = values
        self._wrt_positions = wrt_positions

    def _inputs(self, args: tuple, kwargs: dict) -> list:
        plan = self._plan
        arg_names = [s.name for s in self.args]
        if len(args) > len(arg_names):
            raise InputError(f"got {len(args)} positional inputs but the derivative takes {len(arg_names)}: "
                             f"{', '.join(arg_names)}")
        given = dict(zip(arg_names, args))
        for k, v in kwargs.items():
            if k in given:
                raise InputError(f"input {k!r} given both by position and by name")
            given[k] = v
        position = {name: k for k, name in enumerate(self._names[i] for i in plan.input_positions)}
        values = list(self._values)
        for name, v in given.items():
            if name not in position:
                raise InputError(f"unexpected input {name!r}; the derivative takes {', '.join(arg_names)}")
            k = position[name]
            old = values[k]
            with x64_mode():
                new = jnp.asarray(_array_of(v), dtype=old.dtype)
            if new.shape != old.shape:
                raise ShapeError(f"input {name!r} has shape {tuple(new.shape)}; the recorded computation "
                                 f"used {tuple(old.shape)}")
            values[k] = new
        return values

    def _value_and_grads(self, cotangent, args, kwargs):
        plan = self._plan
        values = self._inputs(args, kwargs)
        shape, dtype = plan.shapes[-1], plan.dtypes[-1]
        ct = None
        if cotangent is not None:
            with x64_mode():
                ct = jnp.broadcast_to(
                    jnp.asarray(_array_of(cotangent), dtype), shape)
        value, grads = plan.call(ct, values)
        by_position = dict(zip(plan.grad_positions, grads))
        return value, tuple(by_position[i] for i in self._wrt_positions)

    def _grads(self, cotangent, args, kwargs):
        return self._value_and_grads(cotangent, args, kwargs)[1]

    def __call__(self, *args, **kwargs):
        """The gradients (``y.backward(ones)``), one per wrt leaf, at the recorded or given values."""
        return self._grads(None, args, kwargs)

    def vjp(self, cotangent, *args, **kwargs):
        """``y.backward(gradient=cotangent)``'s gradients, one per wrt leaf."""
        return self._grads(cotangent, args, kwargs)

    def value_and_grad(self, *args, **kwargs):
        return self._value_and_grads(None, args, kwargs)

    @property
    def function(self):
        """A pure JAX function of the inputs in ``self.args`` order, returning the gradients."""
        plan = self._plan
        names = [s.name for s in self.args]

        def gradients(*xs):
            values = list(self._values)
            position = {self._names[i]: k for k, i in enumerate(plan.input_positions)}
            for name, x in zip(names, xs):
                values[position[name]] = x
            grads = plan.backward(jnp.ones(plan.shapes[-1], plan.dtypes[-1]), values)
            by_position = dict(zip(plan.grad_positions, grads))
            return tuple(by_position[i] for i in self._wrt_positions)

        return gradients

    def array(self, *args, **kwargs):
        raise SymdiffError("array() is for elementwise expressions; a tensor computation with reductions has no "
                           "per-element derivative array. Call the derivative instead.")

    def save(self, path) -> None:
        raise SymdiffError("a tensor computation's derivative cannot be saved; save sd.derive(...) of an expression")

    def sparse(self, *args, **kwargs):
        raise SymdiffError("sparse() is for sd.derive(...) of an expression; a tensor computation's gradient is "
                           "dense: call the derivative instead")

    def hvp(self, v, /, *args, **kwargs):
        raise SymdiffError("hvp() needs a second derivative, which tensors do not record (create_graph is not "
                           "supported): use sd.derive(expr, order=2) or sd.derive(expr, shapes=...).hvp")

    def check(self, *args, rtol=None, atol=None, **kwargs):
        """Compare the gradients with ``jax.vjp`` of the replayed computation; raises on disagreement."""
        from ._errors import CrossCheckError

        plan = self._plan
        values = self._inputs(args, kwargs)
        ours = self._grads(None, args, kwargs)
        grad_ks = [plan.input_positions.index(i) for i in self._wrt_positions]
        with x64_mode():
            def f(*ws):
                vs = list(values)
                for k, w in zip(grad_ks, ws):
                    vs[k] = w
                return plan.forward(vs)[-1]

            out, pullback = jax.vjp(f, *[values[k] for k in grad_ks])
            ref = pullback(jnp.ones_like(out))
            errors = [float(jnp.max(jnp.abs(a - b))) if a.size else 0.0 for a, b in zip(ours, ref)]
            scale = max((float(jnp.max(jnp.abs(r))) for r in ref if r.size), default=1.0)
        report = _Report(max(errors, default=0.0), [n.name for n in self.wrt], errors)
        tol = atol if atol is not None else 1e-4 * max(1.0, scale)
        if report.max_abs_error > tol:
            raise CrossCheckError(report)
        return report


class ArrayTensorDerivative(TensorDerivative):
    """The derivative of a recorded computation taken by the array route: matrix closed forms.

    Its closed forms are array expressions (``X.T @ (X @ w - y)/50``) in
    which every input is named (``name=``, the caller's variable, else
    ``x0, x1, ...``) and sizes are the recorded ones; the numbers come from
    the graph's :class:`~symdiff._tensor_graph.Plan`, which lowered the same
    closed forms (derived for symbolic sizes) to ``jax.numpy`` code.
    """

    def __init__(self, plan: Plan, names: dict[int, str], values: list, wrt_positions: list[int]):
        arrays = plan.array_gradients(False)
        dims = {ir.Dim(f"n{k}"): size for k, size in plan.sizes.items()}
        concrete, generic = {}, {}
        for i, positional in arrays.symbols.items():
            if isinstance(positional, ir.ArraySymbol):
                concrete[positional] = ir.ArraySymbol(names[i], plan.shapes[i])
                generic[positional] = ir.ArraySymbol(names[i], positional.shape)
            else:
                concrete[positional] = generic[positional] = sympy.Symbol(names[i], real=True)
        by_position = dict(zip(arrays.wrt, arrays.closed_forms))
        self._closed = {names[i]: tidy(by_position[i].xreplace({**concrete, **dims})) for i in wrt_positions}
        self._display = array_expressions(plan.pattern, names)[-1].xreplace(
            {**{generic[s]: concrete[s] for s in generic}, **dims})
        self._wrt = tuple(concrete[arrays.symbols[i]] for i in wrt_positions)
        self._args = tuple(sorted((concrete[s] for s in arrays.symbols.values()), key=lambda s: _natural(s.name)))
        inputs = [generic[arrays.symbols[i]] for i in plan.input_positions]
        self._source = lower_arrays(
            [(by_position[i].xreplace(generic), ir.shape_of(generic[arrays.symbols[i]])) for i in wrt_positions],
            inputs, name="gradients")[0]
        self._plan, self._names, self._values, self._wrt_positions = plan, names, values, wrt_positions
        self._single, self._dtype, self._device = False, None, None

    @property
    def expr(self) -> sympy.Expr:
        """The recorded computation as an array expression."""
        return self._display

    @property
    def wrt(self) -> tuple:
        return self._wrt

    @property
    def args(self) -> tuple:
        return self._args

    @property
    def order(self) -> int:
        return 1

    @property
    def source(self) -> str:
        """The ``jax.numpy`` source of the gradients (sizes read from the inputs)."""
        return self._source

    @property
    def closed_form(self) -> dict:
        """Name -> the gradient's closed form (an array expression of that input's shape)."""
        return dict(self._closed)

    def __str__(self) -> str:
        return "\n".join(f"d/d{name} = {sympy.sstr(expr)}" for name, expr in self._closed.items())

    def __repr__(self) -> str:
        return f"<Derivative of {sympy.sstr(self._display)} wrt ({', '.join(self._closed)}), order 1>"

    def latex(self) -> str:
        return " \\\\\n".join(f"\\frac{{\\partial}}{{\\partial {sympy.latex(w)}}} = {sympy.latex(self._closed[w.name])}"
                              for w in self._wrt)


class _Report:
    def __init__(self, max_abs_error: float, names: list[str], errors: list[float]):
        self.max_abs_error = max_abs_error
        self.ok = True
        self._lines = [f"d/d{n}: max abs error {e:.3g} vs jax.vjp" for n, e in zip(names, errors)]

    def __str__(self) -> str:
        return "\n".join(self._lines)


def _array_of(x):
    """A tensor's values (through the ``__jax_array__`` protocol), anything else as given."""
    return x.__jax_array__() if hasattr(x, "__jax_array__") else x
