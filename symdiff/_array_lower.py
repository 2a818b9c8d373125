"""Array closed forms -> the source of one pure ``jax.numpy`` function (matrix code).

Entry point: :func:`lower_arrays`. The walk shares every node used more than
once in a local variable (as :mod:`symdiff._lower` does for scalars) and
reuses its table of elementwise functions. The rewrites are cost-aware:

- ``diag(p) @ B`` is the broadcast ``p[:, None] * B`` (no ``n x n`` matrix);
- ``(A + A.T) @ x`` is ``A @ x + A.T @ x`` (no ``A + A.T``), and ``(P @ Q) @ v``
  is ``P @ (Q @ v)`` (matrix-vector products instead of a matrix product);
- ``inv(A) @ b`` is ``jnp.linalg.solve(A, b)``; ``logdet`` uses ``slogdet``;
  ``trace(P @ Q)`` is ``sum(P * Q.T)``.

Sizes are read from the inputs' shapes (static under ``jax.jit``), so one
closed form serves every size.

>>> from symdiff._array_ir import ArraySymbol, Dim, matmul, transpose
>>> n = Dim("n")
>>> x, A = ArraySymbol("x", (n,)), ArraySymbol("A", (n, n))
>>> source, fn = lower_arrays([(matmul(A + transpose(A), x), (n,))], [A, x])
>>> print(source, end="")
def array_kernel(A, x):
    return (A @ x + x @ A,)
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import sympy

from . import _array_ir as ir
from ._array_diff import Jac
from ._array_ir import ArrayOp, rank, shape_of
from ._errors import LoweringError
from ._lower import _NAMESPACE, FUNCTION_TABLE, abs_

__all__ = ["lower_arrays"]

_ATOM, _OP = 2, 1  # precedence of generated code: safe as an operand, or needs parentheses


class _Writer:
    def __init__(self, names: dict, indent: str = "    ", taken: set | None = None):
        self.names = dict(names)  # symbol / dim -> python name
        self.taken = taken if taken is not None else set(names.values())  # never shadow an input's name
        self.lines: list[str] = []
        self.indent = indent
        self.uses: dict = {}
        self.done: dict = {}
        self.counter = [0]

    def count(self, roots):
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node.is_Atom:
                continue
            self.uses[node] = self.uses.get(node, 0) + 1
            if self.uses[node] == 1:
                stack.extend(a for a in node.args if isinstance(a, sympy.Expr))

    def fresh(self, prefix="t") -> str:
        while True:
            self.counter[0] += 1
            name = f"{prefix}{self.counter[0]}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def code(self, node) -> tuple[str, int]:
        if node in self.done:
            return self.done[node], _ATOM
        if node in self.names:
            return self.names[node], _ATOM
        text, prec = self.render(node)
        if self.uses.get(node, 0) > 1 and not node.is_Atom:
            name = self.fresh()
            self.lines.append(f"{self.indent}{name} = {text}")
            self.done[node] = name
            return name, _ATOM
        return text, prec

    def arg(self, node) -> str:
        text, prec = self.code(node)
        return text if prec == _ATOM else f"({text})"

    # ---- rendering ----

    def render(self, node) -> tuple[str, int]:
        if node.is_Number or node in (sympy.pi, sympy.E) or node.is_NumberSymbol:
            value = float(node)
            if node.is_Integer:
                text = str(int(node))
            else:
                text = repr(value)
            return text, (_ATOM if value >= 0 else _OP)
        if isinstance(node, sympy.Symbol):
            raise LoweringError(f"symbol {node} is not an input of the compiled function")
        if isinstance(node, sympy.Add):
            parts = []
            for i, term in enumerate(node.args):
                c, rest = term.as_coeff_Mul()
                if i and c.is_Number and c < 0:
                    neg = rest if c == -1 else -term
                    parts.append(f" - {self.arg(neg) if isinstance(neg, sympy.Add) else self.code(neg)[0]}")
                else:
                    parts.append((" + " if i else "") + self.code(term)[0])
            return "".join(parts), _OP
        if isinstance(node, sympy.Mul):
            num, den = [], []
            for f in node.args:
                if isinstance(f, sympy.Pow) and f.exp.is_Number and f.exp < 0:
                    den.append(f.base if f.exp == -1 else sympy.Pow(f.base, -f.exp))
                else:
                    num.append(f)
            if num and num[0] == -1:
                head = "-" + (self.arg(sympy.Mul(*num[1:])) if len(num) > 2 else self.arg(num[1])) if len(num) > 1 \
                    else "-1"
            else:
                head = " * ".join(self.arg(f) for f in num) if num else "1"
            if den:
                return head + " / " + " / ".join(self.arg(f) for f in den), _OP
            return head, _OP
        if isinstance(node, sympy.Pow):
            base, e = node.args
            if e == sympy.Rational(1, 2):
                return f"jnp.sqrt({self.code(base)[0]})", _ATOM
            if e == -1:
                return f"1 / {self.arg(base)}", _OP
            if e == sympy.Rational(-1, 2):
                return f"1 / jnp.sqrt({self.code(base)[0]})", _OP
            return f"{self.arg(base)} ** {self.arg(e)}", _OP
        if isinstance(node, (sympy.Min, sympy.Max)):
            fn = "jnp.minimum" if isinstance(node, sympy.Min) else "jnp.maximum"
            text = self.code(node.args[0])[0]
            for a in node.args[1:]:
                text = f"{fn}({text}, {self.code(a)[0]})"
            return text, _ATOM
        if isinstance(node, ArrayOp):
            return self.render_array(node)
        template = FUNCTION_TABLE.get(type(node))
        if template is None:
            raise LoweringError(f"no JAX lowering for {type(node).__name__} in {node}")
        args = [self.code(a)[0] for a in node.args]
        if "{args}" in template:
            return template.replace("{args}", ", ".join(args)), _ATOM
        text = template.format(*args)
        return text, (_ATOM if text.endswith(")") and not text.startswith("1 /") else _OP)

    def dims(self, shape) -> str:
        items = [self.size(d) for d in shape]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"

    def size(self, d) -> str:
        """Python integer code of a size: an int, a dim, or integer arithmetic of dims (x[::2]: ceiling(n/2))."""
        if isinstance(d, int) or (isinstance(d, sympy.Expr) and d.is_Integer):
            return str(int(d))
        if isinstance(d, ir.Dim):
            return self.names[d]
        if isinstance(d, sympy.Add):
            return "(" + " + ".join(self.size(a) for a in d.args) + ")"
        if isinstance(d, (sympy.floor, sympy.ceiling)):
            c, rest = d.args[0].as_coeff_Mul()
            num = self.size(c.p * rest)
            if isinstance(d, sympy.floor):
                return f"({num} // {c.q})"
            return f"(-(-{num} // {c.q}))"
        if isinstance(d, sympy.Mul):
            return "(" + " * ".join(self.size(a) for a in d.args) + ")"
        if isinstance(d, (sympy.Max, sympy.Min)):
            return f"{type(d).__name__.lower()}({', '.join(self.size(a) for a in d.args)})"
        raise LoweringError(f"cannot compute the size {d}")

    def render_matmul(self, a, b) -> tuple[str, int]:
        ra, rb = rank(a), rank(b)
        c, core = a.as_coeff_Mul() if isinstance(a, sympy.Mul) else (sympy.S.One, a)
        if c != 1 and rank(core) == ra:  # (2*A) @ b is 2*(A @ b): scale the smaller result, not A
            if c == -1:
                return f"-{self.arg(ir.MatMul(core, b))}", _OP
            return f"{self.arg(c)} * {self.arg(ir.MatMul(core, b))}", _OP
        if isinstance(a, ir.Diag):  # diag(p) @ B: scale the rows
            p = self.arg(a.args[0])
            return (f"{p}[:, None] * {self.arg(b)}" if rb == 2 else f"{p} * {self.arg(b)}"), _OP
        if isinstance(b, ir.Diag):  # A @ diag(p): scale the columns
            return f"{self.arg(a)} * {self.arg(b.args[0])}", _OP
        if isinstance(a, ir.Inv):
            return f"jnp.linalg.solve({self.code(a.args[0])[0]}, {self.code(b)[0]})", _ATOM
        if isinstance(a, ir.Transpose) and isinstance(a.args[0], ir.Inv):
            return f"jnp.linalg.solve({self.arg(a.args[0].args[0])}.T, {self.code(b)[0]})", _ATOM
        if isinstance(b, ir.Inv) and ra == 1:
            return f"jnp.linalg.solve({self.arg(b.args[0])}.T, {self.code(b)[0]})", _ATOM
        if rb == 1 and ra == 2:
            ca, core = ir._split_scalar(a)
            if isinstance(core, sympy.Add) and self.uses.get(a, 0) <= 1:  # (A + B) @ v = A @ v + B @ v
                return self.code(ca * sympy.Add(*[ir.matmul(t, b) for t in core.args]))
            if isinstance(core, ir.MatMul) and self.uses.get(a, 0) <= 1:  # (P @ Q) @ v = P @ (Q @ v)
                return self.code(ca * ir.matmul(core.args[0], ir.matmul(core.args[1], b)))
        # a transposed operand is contracted along its other axis, never copied transposed
        ta = isinstance(a, ir.Transpose) and ra == 2 and self.uses.get(a, 0) <= 1
        tb = isinstance(b, ir.Transpose) and rb == 2 and self.uses.get(b, 0) <= 1
        if ta and rb == 1:  # A.T @ v is v @ A
            return f"{self.arg(b)} @ {self.arg(a.args[0])}", _OP
        if tb and ra == 1:  # v @ B.T is B @ v
            return f"{self.arg(b.args[0])} @ {self.arg(a)}", _OP
        if ta or tb:
            spec = ("ji" if ta else "ij") + "," + ("kj" if tb else "jk") + "->ik"
            left = self.code(a.args[0] if ta else a)[0]
            right = self.code(b.args[0] if tb else b)[0]
            return f'jnp.einsum("{spec}", {left}, {right})', _ATOM
        left = self.code(a)
        left_text = left[0] if left[1] == _ATOM or isinstance(a, ir.MatMul) else f"({left[0]})"
        return f"{left_text} @ {self.arg(b)}", _OP

    def render_array(self, node) -> tuple[str, int]:
        args = node.args
        if isinstance(node, ir.MatMul):
            return self.render_matmul(*args)
        if isinstance(node, ir.Transpose):
            return (f"{self.arg(args[0])}.T" if rank(args[0]) == 2 else f"jnp.transpose({self.code(args[0])[0]})"), _ATOM
        if isinstance(node, ir.ReduceSum):
            axes = tuple(int(a) for a in args[1])
            if len(axes) == rank(args[0]):
                return f"jnp.sum({self.code(args[0])[0]})", _ATOM
            axis = axes[0] if len(axes) == 1 else axes
            return f"jnp.sum({self.code(args[0])[0]}, axis={axis})", _ATOM
        if isinstance(node, ir.Expand):
            return f"jnp.expand_dims({self.code(args[0])[0]}, {int(args[1])})", _ATOM
        if isinstance(node, ir.BroadcastTo):
            shape = self.dims(shape_of(node))
            if args[0] == 1:
                return f"jnp.ones({shape}, dtype)", _ATOM
            return f"jnp.broadcast_to({self.code(args[0])[0]}, {shape})", _ATOM
        if isinstance(node, ir.Reshape):
            return f"jnp.reshape({self.code(args[0])[0]}, {self.dims(shape_of(node))})", _ATOM
        if isinstance(node, ir.Identity):
            return f"jnp.eye({self.dims(shape_of(node))[1:].split(',')[0]}, dtype=dtype)", _ATOM
        if isinstance(node, ir.Outer):
            return f"jnp.outer({self.code(args[0])[0]}, {self.code(args[1])[0]})", _ATOM
        if isinstance(node, ir.Trace):
            a = args[0]
            if isinstance(a, ir.MatMul) and self.uses.get(a, 0) <= 1:
                return f"jnp.sum({self.arg(a.args[0])} * {self.arg(a.args[1])}.T)", _ATOM
            return f"jnp.trace({self.code(a)[0]})", _ATOM
        simple = {
            ir.Det: "jnp.linalg.det({})",
            ir.LogDet: "jnp.linalg.slogdet({})[1]",
            ir.Inv: "jnp.linalg.inv({})",
            ir.Diag: "jnp.diag({})",
            ir.DiagPart: "jnp.diagonal({})",
            ir.LogSumExp: "jsp.logsumexp({})",
            ir.Softmax: "jax.nn.softmax({})",
        }
        if type(node) in simple:
            return simple[type(node)].format(self.code(args[0])[0]), _ATOM
        if isinstance(node, ir.Norm):
            a = self.code(args[0])[0]
            return (f"jnp.linalg.norm({a})" if rank(args[0]) <= 2 else f"jnp.sqrt(jnp.sum({a} ** 2))"), _ATOM
        if isinstance(node, Jac):
            return self.render_jacobian(node)
        if hasattr(node, "render_jax"):  # nodes defined elsewhere (symdiff._array_index) lower themselves
            return node.render_jax(self)
        raise LoweringError(f"no JAX lowering for {type(node).__name__} in {node}")

    def render_jacobian(self, node) -> tuple[str, int]:
        g, x = node.args
        inner = _Writer(self.names, self.indent + "    ", self.taken)
        inner.counter = self.counter
        inner.count([g])
        body = inner.code(g)[0]
        name = self.fresh("jac")
        param = self.names[x]
        self.lines.append(f"{self.indent}def {name}({param}):")
        self.lines.extend(inner.lines)
        self.lines.append(f"{self.indent}    return {body}")
        return f"jax.jacfwd({name})({param})", _ATOM


def _python_name(name: str, taken: set) -> str:
    base = name if name.isidentifier() and not __import__("keyword").iskeyword(name) else f"v_{abs(hash(name))}"
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def lower_arrays(outputs, args, name: str = "array_kernel"):
    """``(source, function)`` computing every output from ``args`` (in that order).

    Args:
        outputs: ``(expr, shape)`` pairs; each result is broadcast to ``shape``
            when its closed form is a lower-rank (or constant) array.
        args: the input symbols (:class:`~symdiff._array_ir.ArraySymbol` or scalar symbols).
        name: the function's name in the source.

    Returns:
        The source text, and the function it defines (executed from that text).
    """
    taken = {"jax", "jnp", "jsp", "abs_", "dtype"}
    names = {a: _python_name(a.name, taken) for a in args}
    exprs = [e for e, _ in outputs]
    dims = sorted({d for e, s in outputs for d in list(e.free_symbols) + list(s) if isinstance(d, ir.Dim)},
                  key=lambda d: d.name)
    writer = _Writer(names, taken=taken)
    header = []
    for d in dims:
        where = next(((a, i) for a in args if isinstance(a, ir.ArraySymbol) for i, s in enumerate(a.shape) if s == d),
                     None)
        if where is None:
            raise LoweringError(f"the size {d} is not the size of any input")
        local = _python_name(d.name, taken)
        writer.names[d] = local
        header.append(f"    {local} = {names[where[0]]}.shape[{where[1]}]")
    header.append(f"    dtype = jnp.result_type({', '.join(names[a] for a in args)}, float)")
    writer.count(exprs)
    results = []
    for e, shape in outputs:
        shape = tuple(shape)
        if e.is_number:
            results.append(f"jnp.full({writer.dims(shape)}, {float(e)!r}, dtype)" if shape else
                           f"jnp.asarray({float(e)!r}, dtype)")
            continue
        text = writer.code(e)[0]
        if shape_of(e) != shape:
            text = f"jnp.broadcast_to({text}, {writer.dims(shape)})"
        results.append(text)
    lines = [f"def {name}({', '.join(names[a] for a in args)}):"]
    used = "\n".join(writer.lines + results)
    lines += [h for h in header if re.search(rf"\b{h.split(' = ')[0].strip()}\b", used)]  # only what is used
    lines += writer.lines
    lines.append(f"    return ({', '.join(results)},)")
    source = "\n".join(lines) + "\n"
    namespace = {"jax": jax, "jnp": jnp, "jsp": jsp, "abs_": abs_, **{k: v for k, v in _NAMESPACE.items()
                                                                     if k not in ("jax", "jnp", "jsp")}}
    exec(compile(source, f"<symdiff {name}>", "exec"), namespace)  # noqa: S102 - our own generated source
    return source, namespace[name]
