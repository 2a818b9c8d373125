"""``backward`` and ``derive`` for tensors: recorded graphs -> closed forms -> one compiled call.

A recorded computation is a DAG whose nodes are *elementwise* operations
(``+ - * / **``, ``sd.sin``, ...) or *structural* ones (``sum``/``mean``,
``matmul``, reshapes, indexing, casts). The graph is cut into segments: every
maximal elementwise sub-computation becomes one SymPy expression over symbols
that stand for the graph's inputs and for the outputs of structural nodes.
``backward`` walks the segments in reverse: each elementwise segment uses
``sd.derive`` of ``g * expr`` (``g``: the incoming cotangent), i.e. its closed
form, compiled; structural nodes use small hand-written ``jax.numpy`` rules.

Everything symbolic is keyed on the graph's *structure*, never on values or
object identity: nodes are numbered by their position in a depth-first walk,
inputs are described by shape, dtype and ``requires_grad``, Python scalars by
value. The :class:`Plan` built for a key (SymPy work, then ``jax.jit``) is
cached, so a training loop that rebuilds the same computation each iteration
runs one compiled call per ``backward`` from its second iteration on.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from typing import Any

import jax
import jax.extend.core as _jcore
import jax.numpy as jnp
import numpy as np
import sympy
from jax.extend.core.primitives import jit_p as _JIT_P

from . import _cache
from ._compile import sum_to_shape
from ._derive import Derivative, derive
from ._errors import CaptureError, InputError, ShapeError, SymdiffError
from ._functions import FUNCTIONS
from ._lower import FUNCTION_TABLE, register_jax_function
from ._tensor import (
    AutogradError,
    Tensor,
    _dtype_by_name,
    _numel,
    _shape_of,
    _x64,
    apply_elementwise,
    forward_structural,
    rebuild_index,
)

__all__ = ["Plan", "run_backward", "derive_tensor", "TensorDerivative", "graph_key"]

PLAN_CACHE_SIZE = 256
class _PlanCache(_cache.LRUCache):
    """The plans' LRU cache, with a lookup for the hot path (no lock, no factory; ``None`` on a miss)."""

    def lookup(self, key):
        data = self._data
        found = data.get(key)
        if found is not None:
            try:
                data.move_to_end(key)
            except KeyError:  # evicted meanwhile by another thread: still a valid plan
                pass
        return found


_PLANS = _PlanCache("tensor backward plans", PLAN_CACHE_SIZE)
_SEGMENTS = _cache.LRUCache("tensor segment derivatives", PLAN_CACHE_SIZE)

_ELEMENTWISE_OPS = {"add", "sub", "mul", "div", "pow", "neg", "clamp"}


def _is_elementwise(op: str) -> bool:
    return op in _ELEMENTWISE_OPS or op.startswith("fn:")


# ---------------------------------------------------------------- the structure of a graph


def graph_key(root: Tensor, cut: bool = False) -> tuple[list, tuple, list]:
    """The graph's inputs and its structural key (no values, no identities).

    Returns ``(tensors, key, inputs)``. ``key`` lists the graph's inputs and
    operations in depth-first post-order (inputs before their users, the root
    last): ``("in", shape, dtype, requires_grad)`` for an input,
    ``(op, params, refs, shape, dtype)`` for an operation, whose ``refs`` are
    ``("t", position)`` or ``("s", type name, value)`` for a Python scalar.
    A position is an index in that order, so the same computation rebuilt with
    new tensor objects gets the same key. ``tensors[i]`` is the tensor at
    position ``i``; ``inputs`` are the values of the inputs, in key order.

    An input is a leaf *with the value it had when the operation using it was
    recorded* (``Node.snap``). With ``cut=True`` (computing a pending value)
    a recorded result whose value is already known is an input too.
    """
    if root._node is None:
        v = root._value
        return [root], (("in", v.shape, v.dtype, root._requires_grad),), [v]
    tensors: list = []
    key: list = []
    values: list = []
    position: dict = {}
    tensors_append, values_append, key_append = tensors.append, values.append, key.append
    stack = [root]
    while stack:
        t = stack.pop()
        tid = id(t)
        if tid in position:
            continue
        node = t._node
        snaps = node.snap
        waiting = False
        for p, snap in zip(node.inputs, snaps):
            if snap is None and id(p) not in position and not (cut and p._node.out is not None):
                if not waiting:
                    stack.append(t)
                    waiting = True
                stack.append(p)
        if waiting:
            continue
        refs = []
        for p, snap in zip(node.inputs, snaps):
            if snap is False:  # a Python scalar
                refs.append(("s", type(p).__name__, p))
            elif snap is None:  # a recorded result
                j = position.get(id(p))
                if j is None:  # cut: a computed result taken as an input
                    out = p._node.out
                    j = position[id(p)] = len(key)
                    key_append(("in", out.shape, out.dtype, False))
                    tensors_append(p)
                    values_append(out)
                refs.append(("t", j))
            else:  # a leaf, as it was when recorded
                k = (id(p), id(snap))
                j = position.get(k)
                if j is None:
                    j = position[k] = len(key)
                    key_append(("in", snap.shape, snap.dtype, p._requires_grad and not cut))
                    tensors_append(p)
                    values_append(snap)
                refs.append(("t", j))
        position[tid] = len(key)
        key_append((node.op, node.params, tuple(refs), node.shape, node.dtype.numpy_dtype))
        tensors_append(t)
    return tensors, tuple(key), values


def needs_x64(key: tuple) -> bool:
    """Whether a graph holds 64-bit values (or integers beyond 32 bits), so that its call needs JAX's x64 mode."""
    for e in key:
        if e[0] == "in":
            if e[2].itemsize == 8:
                return True
            continue
        if e[4].itemsize == 8:
            return True
        for r in e[2]:
            if r[0] == "s" and isinstance(r[2], int) and not -2**31 <= r[2] < 2**31:
                return True
    return False


def replay(key: tuple, dtypes: list, inputs, scalars=()) -> list:
    """Every node's value from the input values (replays the recorded operations).

    A scalar reference ``("d", k, type name)`` (see :func:`lift_scalars`) reads ``scalars[k]``.
    """
    vals: list[Any] = [None] * len(key)
    it = iter(inputs)
    for i, e in enumerate(key):
        if e[0] == "in":
            vals[i] = next(it)
            continue
        args = [vals[r[1]] if r[0] == "t" else (r[2] if r[0] == "s" else scalars[r[1]]) for r in e[2]]
        if _is_elementwise(e[0]):
            vals[i] = apply_elementwise(e[0], e[1], args, dtypes[i])
        else:
            vals[i] = forward_structural(e[0], e[1], args)
    return vals


def lift_scalars(key: tuple) -> tuple[tuple, list]:
    """The key with its Python scalars turned into arguments, and their values.

    Computing a value needs no closed form, so ``w * t`` for a new number
    ``t`` reuses the compiled forward pass. Exponents stay static (``x**3``
    must remain an integer power, exact for negative ``x``).
    """
    scalars: list = []
    out = []
    for e in key:
        if e[0] != "in" and e[0] != "pow" and any(r[0] == "s" for r in e[2]):
            refs = []
            for r in e[2]:
                if r[0] == "s":
                    refs.append(("d", len(scalars), r[1]))
                    scalars.append(r[2])
                else:
                    refs.append(r)
            e = (e[0], e[1], tuple(refs)) + e[3:]
        out.append(e)
    return tuple(out), scalars


class _Forward:
    """The compiled forward pass of one graph structure: the root's value from the inputs and scalars."""

    def __init__(self, key: tuple):
        self.dtypes = [np.dtype(e[2] if e[0] == "in" else e[4]) for e in key]
        self.key = key

        def traced(inputs, scalars):
            _cache.count("traces")
            return replay(key, self.dtypes, inputs, scalars)[-1]

        self.fn = jax.jit(traced)


_FORWARDS = _cache.LRUCache("tensor forward passes", PLAN_CACHE_SIZE)


def materialize(t: Tensor) -> jax.Array:
    """The value of a pending recorded result: one compiled call for its pending sub-computation.

    Results already computed are inputs of that call (their values are fixed
    when computed), leaves enter with the values they had when recorded.
    """
    _, key, inputs = graph_key(t, cut=True)
    x64 = needs_x64(key)
    lifted, scalars = lift_scalars(key)
    fwd = _FORWARDS.get_or_create((lifted, x64), lambda: _Forward(lifted))
    if x64:
        with _x64():
            value = fwd.fn(inputs, scalars)
    else:
        value = fwd.fn(inputs, scalars)
    t._node.out = value
    t._v = value
    return value


# ---------------------------------------------------------------- SymPy side


def sympy_number(x) -> sympy.Expr:
    """A Python scalar as SymPy writes it best: ``2.0 -> 2``, ``0.1 -> 1/10``, else a Float."""
    if isinstance(x, bool):
        return sympy.Integer(int(x))
    if isinstance(x, int):
        return sympy.Integer(x)
    x = float(x)
    if not math.isfinite(x):
        return sympy.Float(x)
    if x.is_integer() and abs(x) < 2**53:
        return sympy.Integer(int(x))
    r = sympy.Rational(x).limit_denominator(1000)
    return r if float(r) == x else sympy.Float(x)


def sympy_elementwise(op: str, params, args: list) -> sympy.Expr:
    """The SymPy expression of one elementwise op applied to SymPy ``args``."""
    if op == "add":
        return args[0] + args[1]
    if op == "sub":
        return args[0] - args[1]
    if op == "mul":
        return args[0] * args[1]
    if op == "div":
        return args[0] / args[1]
    if op == "pow":
        return args[0] ** args[1]
    if op == "neg":
        return -args[0]
    if op == "clamp":
        lo, hi = params
        out = args[0]
        if lo is not None:
            out = sympy.Max(out, sympy_number(lo))
        if hi is not None:
            out = sympy.Min(out, sympy_number(hi))
        return out
    return FUNCTIONS[op[3:]][0](*args)


# ---------------------------------------------------------------- structural ops: forward and VJP rules


def vjp_structural(op: str, params, ct, vals: list, shapes: list, dtypes: list) -> list:
    """Cotangents of a structural op's tensor inputs (``None`` where none flows)."""
    if op in ("sum", "mean"):
        dims, keepdim = params
        shape = shapes[0]
        axes = tuple(range(len(shape))) if dims is None else dims
        g = ct if keepdim or not axes else jnp.expand_dims(ct, axes)
        g = jnp.broadcast_to(g, shape)
        if op == "mean":
            g = g / max(1, int(np.prod([shape[a] for a in axes], dtype=np.int64)))
        return [g]
    if op == "reshape":
        return [ct.reshape(shapes[0])]
    if op == "permute":
        return [jnp.transpose(ct, tuple(int(i) for i in np.argsort(params[0])))]
    if op == "expand":
        return [sum_to_shape(ct, shapes[0])]
    if op == "getitem":
        idx = rebuild_index(params[0], vals[1:])
        return [jnp.zeros(shapes[0], ct.dtype).at[idx].add(ct)] + [None] * (len(vals) - 1)
    if op == "matmul":
        dt = _dtype_by_name(params[0]).numpy_dtype
        _, pullback = jax.vjp(jnp.matmul, vals[0].astype(dt), vals[1].astype(dt))
        return list(pullback(ct.astype(dt)))
    if op == "cast":
        return [ct.astype(dtypes[0])]
    if op in ("to", "clone"):
        return [ct]
    raise SymdiffError(f"internal: unknown structural op {op!r}")


# ---------------------------------------------------------------- the compiled plan


def _derive_segments(key: tuple, simplify) -> tuple[dict, dict]:
    """SymPy work for a graph structure without shapes: each segment's closed-form VJP, compiled by derive().

    ``key`` entries: ``("in", requires_grad)`` or ``(op, params, refs)``.
    Returns ``{segment root: (function, feeds, wrt)}`` and the Derivatives.
    """
    _cache.count("symbolic")
    n = len(key)
    needs_grad = [e[1] if e[0] == "in" else True for e in key]
    consumers: list[list[int]] = [[] for _ in range(n)]
    exprs: list[Any] = [None] * n
    uses: list[frozenset] = [frozenset()] * n
    for i, e in enumerate(key):
        if e[0] == "in" or not _is_elementwise(e[0]):
            exprs[i] = sympy.Symbol(f"t{i}", real=True)
            uses[i] = frozenset((i,))
        if e[0] == "in":
            continue
        for r in e[2]:
            if r[0] == "t":
                consumers[r[1]].append(i)
        if _is_elementwise(e[0]):
            args = [exprs[r[1]] if r[0] == "t" else sympy_number(r[2]) for r in e[2]]
            exprs[i] = sympy_elementwise(e[0], e[1], args)
            uses[i] = frozenset().union(*(uses[r[1]] for r in e[2] if r[0] == "t"))
    g = sympy.Symbol("g", real=True)
    segments: dict[int, tuple] = {}
    derivatives: dict[int, Derivative] = {}
    for i, e in enumerate(key):
        if e[0] == "in" or not _is_elementwise(e[0]):
            continue
        if i != n - 1 and all(_is_elementwise(key[c][0]) for c in consumers[i]):
            continue  # written inline into the segments that use it
        wrt = sorted(j for j in uses[i] if needs_grad[j])
        d = derive(g * exprs[i], wrt=[exprs[j] for j in wrt], simplify=simplify)
        feeds = ["g" if s.name == "g" else int(s.name[1:]) for s in d.args]
        segments[i] = (d.function, feeds, wrt)
        derivatives[i] = d
    return segments, derivatives


class _Sum:
    """A ``reduce_sum`` whose computation waits, to be merged with others of the same shape (see merged_sums)."""

    __slots__ = ("x", "params", "value")

    def __init__(self, x, params):
        self.x, self.params, self.value = x, params, None


MERGE_MAX_SIZE = 1 << 16  # larger arrays: separate reductions (a stacked copy would cost more than it saves)


def merged_sums(fn):
    """``fn`` traced, then replayed with its independent same-shaped ``reduce_sum``s merged into one.

    A loss and its gradients are typically several sums over the same batch
    axis (the loss itself, and every gradient of a broadcast parameter). XLA
    on CPU runs each reduction as its own kernels, which for small batches
    costs more than the arithmetic; stacking the summands and reducing once
    gives the same sums with one reduction. Use inside ``jax.jit``.
    """

    def merged(*args):
        flat, in_tree = jax.tree_util.tree_flatten(args)
        closed, shapes = jax.make_jaxpr(lambda *xs: fn(*jax.tree_util.tree_unflatten(in_tree, xs)),
                                        return_shape=True)(*flat)
        pending: list = []
        outs = _replay_merging(closed.jaxpr, closed.consts, flat, pending)
        outs = [_resolve(o, pending) for o in outs]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), outs)

    return merged


def _flush(pending: list) -> None:
    groups: dict = {}
    for p in pending:
        groups.setdefault((p.x.shape, p.x.dtype, p.params["axes"]), []).append(p)
    pending.clear()
    for (shape, _, axes), members in groups.items():
        if len(members) == 1 or _numel(shape) > MERGE_MAX_SIZE:
            for p in members:
                p.value = jax.lax.reduce_sum_p.bind(p.x, **p.params)
            continue
        params = dict(members[0].params, axes=tuple(a + 1 for a in axes))
        sums = jax.lax.reduce_sum_p.bind(jnp.stack([p.x for p in members]), **params)
        for k, p in enumerate(members):
            p.value = sums[k]


def _resolve(value, pending: list):
    if isinstance(value, _Sum):
        if value.value is None:
            _flush(pending)
        return value.value
    return value


def _replay_merging(jaxpr, consts, args, pending: list) -> list:
    """Evaluate ``jaxpr`` like ``jax.core.eval_jaxpr``, deferring ``reduce_sum``s and what uses them.

    Equations are taken in order; one that needs a sum not yet computed waits
    (with everything that needs its results). When only waiting equations are
    left, every deferred sum is computed, merged by shape (``_flush``), and the
    waiting equations are taken again, in order.
    """
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, _jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    queue = list(jaxpr.eqns)
    while queue:
        waiting = []
        blocked: set = set()
        for eqn in queue:
            invals = None
            if not any(isinstance(v, _jcore.Var) and v in blocked for v in eqn.invars):
                invals = [read(v) for v in eqn.invars]
            if invals is None or any(isinstance(x, _Sum) and x.value is None for x in invals):
                waiting.append(eqn)
                blocked.update(eqn.outvars)
                continue
            invals = [x.value if isinstance(x, _Sum) else x for x in invals]
            prim = eqn.primitive
            if prim is jax.lax.reduce_sum_p and set(eqn.params) <= {"axes", "out_sharding"} and (
                    eqn.params.get("out_sharding") is None):
                env[eqn.outvars[0]] = sm = _Sum(invals[0], eqn.params)
                pending.append(sm)
                continue
            if prim is _JIT_P:
                inner = eqn.params["jaxpr"]
                outs = _replay_merging(inner.jaxpr, inner.consts, invals, pending)
            else:
                with eqn.ctx.manager:
                    outs = prim.bind(*invals, **prim.get_bind_params(eqn.params))
                if not prim.multiple_results:
                    outs = [outs]
            for v, o in zip(eqn.outvars, outs):
                env[v] = o
        if waiting:
            _flush(pending)
        queue = waiting
    return [read(v) for v in jaxpr.outvars]


class Plan:
    """Everything derived from one graph structure: segment closed forms and the jitted backward.

    ``run(ct, inputs, olds)`` (compiled) returns the output's value and, for
    every input that requires grad (in ``grad_positions`` order), ``old +``
    its gradient: one call does the forward pass, the backward pass and the
    ``.grad`` accumulation. ``ct`` is the output cotangent, or ``None`` for
    ones; ``inputs`` are the values of the graph's inputs in
    ``input_positions`` order.
    """

    def __init__(self, key: tuple, simplify):
        self.key = key
        self.input_positions = [i for i, e in enumerate(key) if e[0] == "in"]
        self.grad_positions = [i for i in self.input_positions if key[i][3]]
        self.shapes = [e[1] if e[0] == "in" else e[3] for e in key]
        self.dtypes = [np.dtype(e[2] if e[0] == "in" else e[4]) for e in key]
        self.needs_grad = [e[3] if e[0] == "in" else True for e in key]
        self.x64 = needs_x64(key)
        shape_free = tuple(("in", e[3]) if e[0] == "in" else e[:3] for e in key)
        self.segments, self.derivatives = _SEGMENTS.get_or_create(
            (shape_free, simplify), lambda: _derive_segments(shape_free, simplify))
        self.run = jax.jit(self._traced)
        self._zeros = None

    def forward(self, inputs) -> list:
        """Every node's value from the input values (replays the recorded operations)."""
        return replay(self.key, self.dtypes, inputs)

    def backward(self, ct, inputs) -> tuple:
        """Pure: the gradients of the inputs that require grad, given the output cotangent."""
        return self.value_and_backward(ct, inputs)[1]

    def value_and_backward(self, ct, inputs) -> tuple:
        """Pure: the output's value and the gradients of the inputs that require grad."""
        key = self.key
        n = len(key)
        vals = self.forward(inputs)
        cts: list[Any] = [None] * n

        def add(j, g):
            g = g.astype(self.dtypes[j])
            cts[j] = g if cts[j] is None else cts[j] + g

        if ct is None:
            ct = jnp.ones(self.shapes[n - 1], self.dtypes[n - 1])
        add(n - 1, jnp.broadcast_to(ct, self.shapes[n - 1]))
        for i in range(n - 1, -1, -1):
            c, e = cts[i], key[i]
            if c is None or e[0] == "in":
                continue
            if i in self.segments:
                fn, feeds, wrt = self.segments[i]
                grads = fn(*[c if f == "g" else vals[f] for f in feeds])
                for j, gj in zip(wrt, grads):
                    add(j, gj)
            elif not _is_elementwise(e[0]):
                refs = [r[1] for r in e[2] if r[0] == "t"]
                contributions = vjp_structural(
                    e[0], e[1], c, [vals[r] for r in refs], [self.shapes[r] for r in refs],
                    [self.dtypes[r] for r in refs])
                for r, gr in zip(refs, contributions):
                    if gr is not None and self.needs_grad[r]:
                        add(r, gr)
        return vals[-1], tuple(
            cts[i] if cts[i] is not None else jnp.zeros(self.shapes[i], self.dtypes[i]) for i in self.grad_positions
        )

    def _traced(self, ct, inputs, olds):
        _cache.count("traces")

        def step(ct, inputs, olds):
            value, grads = self.value_and_backward(ct, inputs)
            return value, tuple(g + o for g, o in zip(grads, olds))

        return merged_sums(step)(ct, inputs, olds)

    def zeros(self) -> tuple:
        """Zero gradients (the ``olds`` of a call that accumulates into nothing); cached, never mutated."""
        if self._zeros is None:
            with _x64():
                self._zeros = tuple(jnp.zeros(self.shapes[i], self.dtypes[i]) for i in self.grad_positions)
        return self._zeros

    def call(self, ct, inputs, olds=None) -> tuple:
        """``run`` with JAX's 64-bit mode exactly when the graph holds 64-bit values."""
        if olds is None:
            olds = self.zeros()
        if self.x64:
            with _x64():
                return self.run(ct, inputs, olds)
        return self.run(ct, inputs, olds)

    def fn(self, ct, *inputs) -> tuple:
        """The gradients of the inputs that require grad (in ``grad_positions`` order)."""
        return self.call(ct, list(inputs))[1]



def get_plan(key: tuple, simplify=True) -> Plan:
    """The cached :class:`Plan` of a graph structure."""
    try:
        return _PLANS.lookup((key, simplify)) or _PLANS.get_or_create((key, simplify), lambda: Plan(key, simplify))
    except TypeError as exc:  # an unhashable parameter slipped into the structure
        raise SymdiffError(f"internal: graph structure is not hashable: {exc}") from exc


def _cotangent(y: Tensor, gradient) -> jax.Array | None:
    """The output cotangent: ``None`` (ones, made inside the compiled call) or ``gradient`` broadcast to y."""
    shape = y.shape
    if gradient is None:
        if _numel(shape) != 1:
            raise AutogradError("grad can be implicitly created only for scalar outputs")
        return None
    with _x64():
        value = gradient._value if isinstance(gradient, Tensor) else jnp.asarray(gradient)
        try:
            ok = np.broadcast_shapes(value.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"Mismatch in shape: grad_output[0] has a shape of {list(value.shape)} and output[0] "
                             f"has a shape of {list(shape)}.")
        return jnp.broadcast_to(value, shape).astype(y.dtype.numpy_dtype)


def run_backward(y: Tensor, gradient=None, inputs=None) -> None:
    """``y.backward(gradient)``: accumulate into ``.grad`` of every leaf that requires grad.

    One compiled call computes y (if still pending), the gradients, and their
    sums with the existing ``.grad`` values.
    """
    if not y._requires_grad:
        raise AutogradError("element 0 of tensors does not require grad and does not have a grad_fn")
    if gradient is None:
        if _numel(_shape_of(y)) != 1:
            raise AutogradError("grad can be implicitly created only for scalar outputs")
        ct = None
    else:
        ct = _cotangent(y, gradient)
    tensors, key, values = graph_key(y)
    plan = get_plan(key)
    leaves = [tensors[i] for i in plan.grad_positions]
    olds = plan.zeros()
    fused = None  # per leaf: whether the call's result already includes the leaf's old .grad
    only = None
    if inputs is not None:
        only = {id(t) for t in ([inputs] if isinstance(inputs, Tensor) else inputs)}
    if only is not None or any(leaf.grad is not None for leaf in leaves):
        olds, fused = list(olds), []
        seen = set()
        for k, leaf in enumerate(leaves):
            g = leaf.grad
            take = (g is not None and id(leaf) not in seen and (only is None or id(leaf) in only)
                    and g._v is not None and g._v.dtype == olds[k].dtype and g._v.shape == olds[k].shape)
            if take:
                olds[k] = g._v
            seen.add(id(leaf))
            fused.append(take)
        olds = tuple(olds)
    value, grads = plan.call(ct, values, olds)
    if y._v is None:
        y._node.out = value
        y._v = value
    for k, leaf in enumerate(leaves):
        if only is not None and id(leaf) not in only:
            continue
        g = grads[k]
        if fused is not None and fused[k]:
            leaf.grad._v = g
        elif leaf.grad is None:
            leaf.grad = Tensor._wrap(g)
        else:
            with _x64():
                leaf.grad._value = leaf.grad._value + g.astype(leaf.grad.dtype.numpy_dtype)


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


def _input_names(order: list[Tensor], positions: list[int], frame) -> list[str]:
    """``name=`` if given, else the caller's variable name, else ``x0, x1, ...``; all distinct."""
    by_id: dict[int, str] = {}
    if frame is not None:
        for scope in (frame.f_locals, frame.f_globals):
            for k, v in scope.items():
                if isinstance(v, Tensor) and id(v) not in by_id and _NAME.match(k) and k not in ("g",):
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
        if _is_elementwise(e[0]):
            exprs[i] = sympy_elementwise(e[0], e[1], args)
        elif e[0] == "matmul":
            exprs[i] = matmul(args[0], args[1])
        else:
            exprs[i] = _display_class(e[0], e[1])(args[0])
    return exprs[-1]


def symbolic_expression(y: Tensor) -> sympy.Expr:
    """The SymPy expression of an elementwise tensor computation (what ``sd.derive(tensor)`` captures)."""
    order, key, _ = graph_key(y)
    structural = sorted({e[0] for e in key if e[0] != "in" and not _is_elementwise(e[0])})
    if structural:
        raise CaptureError(f"this tensor computation uses {', '.join(structural)}, which have no elementwise "
                           "meaning for sd.derive; call y.derive() instead")
    positions = [i for i, e in enumerate(key) if e[0] == "in"]
    names = _input_names(order, positions, None)
    return display_expression(key, dict(zip(positions, names)))


def derive_tensor(y: Tensor, frame, simplify=True) -> TensorDerivative:
    """``y.derive()``: closed forms of y by its grad leaves, evaluated through y's Plan."""
    if not y.requires_grad:
        raise AutogradError("element 0 of tensors does not require grad and does not have a grad_fn")
    order, key, inputs = graph_key(y)
    plan = get_plan(key)
    names_list = _input_names(order, plan.input_positions, frame)
    names = dict(zip(plan.input_positions, names_list))
    expr = display_expression(key, names)
    wrt_positions = sorted(plan.grad_positions, key=lambda i: _natural(names[i]))
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
            with _x64():
                new = jnp.asarray(v._value if isinstance(v, Tensor) else v, dtype=old.dtype)
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
            with _x64():
                ct = jnp.broadcast_to(
                    jnp.asarray(cotangent._value if isinstance(cotangent, Tensor) else cotangent, dtype), shape)
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

    def check(self, *args, rtol=None, atol=None, **kwargs):
        """Compare the gradients with ``jax.vjp`` of the replayed computation; raises on disagreement."""
        from ._errors import CrossCheckError

        plan = self._plan
        values = self._inputs(args, kwargs)
        ours = self._grads(None, args, kwargs)
        grad_ks = [plan.input_positions.index(i) for i in self._wrt_positions]
        with _x64():
            def f(*ws):
                vs = list(values)
                for k, w in zip(grad_ks, ws):
                    vs[k] = w
                return plan.forward(vs)[-1]

            out, pullback = jax.vjp(f, *[values[k] for k in grad_ks])
            ref = pullback(jnp.ones_like(out))
        errors = [float(jnp.max(jnp.abs(a - b))) if a.size else 0.0 for a, b in zip(ours, ref)]
        report = _Report(max(errors, default=0.0), [n.name for n in self.wrt], errors)
        tol = atol if atol is not None else 1e-4 * max(1.0, max((float(jnp.max(jnp.abs(r))) for r in ref
                                                                  if r.size), default=1.0))
        if report.max_abs_error > tol:
            raise CrossCheckError(report)
        return report


class _Report:
    def __init__(self, max_abs_error: float, names: list[str], errors: list[float]):
        self.max_abs_error = max_abs_error
        self.ok = True
        self._lines = [f"d/d{n}: max abs error {e:.3g} vs jax.vjp" for n, e in zip(names, errors)]

    def __str__(self) -> str:
        return "\n".join(self._lines)
