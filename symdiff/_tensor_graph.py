"""``backward`` for tensors: recorded graphs -> closed forms -> one compiled call.

A recorded computation is a DAG whose nodes are *elementwise* operations
(``+ - * / **``, ``sd.sin``, ...) or *structural* ones (``sum``/``mean``,
``matmul``, reshapes, indexing, casts). The graph is cut into segments: every
maximal elementwise sub-computation becomes one SymPy expression over symbols
that stand for the graph's inputs and for the outputs of structural nodes.
``backward`` walks the segments in reverse: each elementwise segment uses
``sd.derive`` of ``g * expr`` (``g``: the incoming cotangent), i.e. its closed
form, compiled; structural nodes use small hand-written ``jax.numpy`` rules.
A graph with a matrix product takes the *array route* instead
(:mod:`symdiff._tensor_arrays`): the whole computation is one array
expression, its gradients are matrix closed forms lowered to ``jax.numpy``.

Everything symbolic is keyed on the graph's *structure*, never on values or
object identity: nodes are numbered by their position in a depth-first walk,
inputs are described by shape, dtype and ``requires_grad``, Python scalars by
value. The :class:`Plan` built for a key (SymPy work, then ``jax.jit``) is
cached, so a training loop that rebuilds the same computation each iteration
runs one compiled call per ``backward`` from its second iteration on.

This module works on the recorded :class:`~symdiff._tensor_node.Node` graph
and on JAX values only; the tensor class (:mod:`symdiff._tensor_class`) calls
it, and :mod:`symdiff._tensor_derivative` prints the closed forms.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from . import _cache
from ._compile import sum_to_shape
from ._derive import Derivative, derive
from ._errors import ShapeError, SymdiffError
from ._tensor_arrays import ArrayGradients, NotAnArray, size_pattern, uses_matrices
from ._tensor_dtypes import dtype_by_name, x64_mode
from ._tensor_ops import apply_elementwise, forward_structural, is_elementwise, rebuild_index
from ._tensor_sums import merged_sums
from ._tensor_sympy import sympy_elementwise, sympy_number

__all__ = ["Plan", "get_plan", "graph_key", "materialize", "backward_call", "cotangent", "merged_sums"]

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

# ---------------------------------------------------------------- the structure of a graph


def graph_key(root, cut: bool = False) -> tuple[list, tuple, list]:
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
        if is_elementwise(e[0]):
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


def materialize(t) -> jax.Array:
    """The value of a pending recorded result: one compiled call for its pending sub-computation.

    Results already computed are inputs of that call (their values are fixed
    when computed), leaves enter with the values they had when recorded.
    """
    _, key, inputs = graph_key(t, cut=True)
    x64 = needs_x64(key)
    lifted, scalars = lift_scalars(key)
    fwd = _FORWARDS.get_or_create((lifted, x64), lambda: _Forward(lifted))
    if x64:
        with x64_mode():
            value = fwd.fn(inputs, scalars)
    else:
        value = fwd.fn(inputs, scalars)
    t._node.out = value
    t._v = value
    return value


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
        dt = dtype_by_name(params[0]).numpy_dtype
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
        if e[0] == "in" or not is_elementwise(e[0]):
            exprs[i] = sympy.Symbol(f"t{i}", real=True)
            uses[i] = frozenset((i,))
        if e[0] == "in":
            continue
        for r in e[2]:
            if r[0] == "t":
                consumers[r[1]].append(i)
        if is_elementwise(e[0]):
            args = [exprs[r[1]] if r[0] == "t" else sympy_number(r[2]) for r in e[2]]
            exprs[i] = sympy_elementwise(e[0], e[1], args)
            uses[i] = frozenset().union(*(uses[r[1]] for r in e[2] if r[0] == "t"))
    g = sympy.Symbol("g", real=True)
    segments: dict[int, tuple] = {}
    derivatives: dict[int, Derivative] = {}
    for i, e in enumerate(key):
        if e[0] == "in" or not is_elementwise(e[0]):
            continue
        if i != n - 1 and all(is_elementwise(key[c][0]) for c in consumers[i]):
            continue  # written inline into the segments that use it
        wrt = sorted(j for j in uses[i] if needs_grad[j])
        d = derive(g * exprs[i], wrt=[exprs[j] for j in wrt], simplify=simplify)
        feeds = ["g" if s.name == "g" else int(s.name[1:]) for s in d.args]
        segments[i] = (d.function, feeds, wrt)
        derivatives[i] = d
    return segments, derivatives


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
        self.pattern, self.sizes = _array_pattern(key)
        if self.pattern is None:
            shape_free = tuple(("in", e[3]) if e[0] == "in" else e[:3] for e in key)
            self.segments, self.derivatives = _SEGMENTS.get_or_create(
                (shape_free, simplify), lambda: _derive_segments(shape_free, simplify))
        else:  # matrix calculus on the whole graph (see symdiff._tensor_arrays)
            self.segments, self.derivatives = {}, {}
        self.run = jax.jit(self._traced)
        self._zeros = None

    def array_gradients(self, with_cotangent: bool = False) -> ArrayGradients:
        """The closed-form gradients of the array route (derived once per size pattern)."""
        return _ARRAYS.get_or_create((self.pattern, with_cotangent),
                                     lambda: ArrayGradients(self.pattern, with_cotangent))

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
        if self.pattern is not None:
            arrays = self.array_gradients(ct is not None)
            extra = [] if ct is None else [jnp.broadcast_to(ct, self.shapes[-1]).astype(self.dtypes[-1])]
            grads = arrays.fn(*inputs, *extra)
            return vals[-1], tuple(g.astype(self.dtypes[i]) for g, i in zip(grads, self.grad_positions))
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
            elif not is_elementwise(e[0]):
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
            with x64_mode():
                self._zeros = tuple(jnp.zeros(self.shapes[i], self.dtypes[i]) for i in self.grad_positions)
        return self._zeros

    def call(self, ct, inputs, olds=None) -> tuple:
        """``run`` with JAX's 64-bit mode exactly when the graph holds 64-bit values."""
        if olds is None:
            olds = self.zeros()
        if self.x64:
            with x64_mode():
                return self.run(ct, inputs, olds)
        return self.run(ct, inputs, olds)

    def fn(self, ct, *inputs) -> tuple:
        """The gradients of the inputs that require grad (in ``grad_positions`` order)."""
        return self.call(ct, list(inputs))[1]


_ARRAYS = _cache.LRUCache("tensor array gradients", PLAN_CACHE_SIZE)


def _array_pattern(key: tuple) -> tuple[tuple | None, dict]:
    """The size pattern of a graph that takes the array route, else ``(None, {})``.

    The gradients of ``sum(y)`` are derived here (the common case, a scalar
    loss); a graph whose operations or derivative rules have no array form
    keeps the elementwise route, which computes the same numbers.
    """
    if not uses_matrices(key):
        return None, {}
    pattern, sizes = size_pattern(key)

    def build():
        try:
            return ArrayGradients(pattern, False)
        except (NotAnArray, SymdiffError, NotImplementedError):
            return None

    return (pattern, sizes) if _ARRAYS.get_or_create((pattern, False), build) is not None else (None, {})


def get_plan(key: tuple, simplify=True) -> Plan:
    """The cached :class:`Plan` of a graph structure."""
    try:
        return _PLANS.lookup((key, simplify)) or _PLANS.get_or_create((key, simplify), lambda: Plan(key, simplify))
    except TypeError as exc:  # an unhashable parameter slipped into the structure
        raise SymdiffError(f"internal: graph structure is not hashable: {exc}") from exc


def cotangent(shape: tuple, np_dtype, value) -> jax.Array:
    """A ``gradient=`` value broadcast to the output's shape and dtype; PyTorch's error if it does not fit."""
    with x64_mode():
        value = jnp.asarray(value)
        try:
            ok = np.broadcast_shapes(value.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"Mismatch in shape: grad_output[0] has a shape of {list(value.shape)} and output[0] "
                             f"has a shape of {list(shape)}.")
        return jnp.broadcast_to(value, shape).astype(np_dtype)


def backward_call(y, ct, only: set | None = None) -> tuple[list, tuple, list | None]:
    """One compiled call for ``y.backward``: y's value (if pending), the gradients, their sums with ``.grad``.

    ``ct`` is the output cotangent (``None`` for ones); ``only`` the ids of the
    leaves to accumulate into (``None``: all). Returns ``(leaves, grads, fused)``:
    the leaves that require grad, their new gradients, and per leaf whether
    that gradient already includes the leaf's old ``.grad`` (``fused`` is
    ``None`` when no leaf had one). The caller stores them into ``.grad``.
    """
    tensors, key, values = graph_key(y)
    plan = get_plan(key)
    leaves = [tensors[i] for i in plan.grad_positions]
    olds = plan.zeros()
    fused = None
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
    return leaves, grads, fused
