"""Symbolic once, numeric ever after: the cached, jitted program behind a ``Derivative``.

:func:`get_program` runs the symbolic pipeline (differentiate -> simplify ->
lower) once per key and caches the resulting :class:`Program`, whose jitted
entry points are created once. ``jax.jit`` appears only in this module.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from . import _cache, _disk_cache
from ._budget import prestart as prestart_workers
from ._capture import Captured, sort_symbols
from ._deep import call_deep
from ._differentiate import EntryKey, differentiate
from ._errors import SymdiffError
from ._lower import Kernel, build_kernel, is_lowerable, is_partial, repeats_shared_work
from ._simplify import simplify_entries
from ._vectorize import plan_vectorized

__all__ = ["Program", "get_program", "sum_to_shape"]

PROGRAM_CACHE_SIZE = 256
FUSION_REPEAT_LIMIT = 3  # per-output loops may repeat the shared DAG's work this many times...
FUSION_MIN_OPS = 1000  # ...in programs of at least this many distinct (binary) operations
LAZY_ENTRIES = 2000  # programs with more entries are lowered on first dense use (see _LazyKernel)
_PROGRAMS = _cache.LRUCache("programs", PROGRAM_CACHE_SIZE)


def sum_to_shape(g: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Sum ``g`` over the dimensions that broadcasting added to an input of ``shape``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _entry_name(key: EntryKey, wrt: tuple[sympy.Symbol, ...], vector: bool) -> str:
    o, combo = key
    parts = ["d" + (str(o) if vector else "")] + [wrt[i].name for i in combo]
    return "_".join(parts)


@dataclass
class Program:
    """Everything symbolic about one derivative, and its compiled entry points."""

    captured: Captured
    wrt: tuple[sympy.Symbol, ...]
    order: int
    args: tuple[sympy.Symbol, ...]
    keys: tuple[EntryKey, ...]
    entries: tuple[sympy.Expr, ...]  # simplified closed forms, one per key
    kernel: Kernel
    _jitted: dict[str, Callable] = field(default_factory=dict)

    @property
    def wrt_positions(self) -> tuple[int, ...]:
        return tuple(self.args.index(w) for w in self.wrt)

    def index(self, output: int, combo) -> int:
        """Position in ``entries`` of the derivative of ``output`` by the wrt multiset ``combo``."""
        return self._positions[(output, tuple(sorted(combo)))]

    def __post_init__(self):
        self._positions = {k: i for i, k in enumerate(self.keys)}
        self.arg_names = tuple(s.name for s in self.args)  # input names, in call order

    @property
    def value_kernel(self) -> Kernel:
        """The original expression alone, lowered by the same table (the check's autodiff reference)."""
        kernel = self._jitted.get("value_kernel")
        if kernel is None:
            kernel = self._jitted["value_kernel"] = call_deep(
                build_kernel, self.args, self.captured.outputs, (), (), "expression"
            )
        return kernel

    def jitted(self, name: str, packed: bool = False) -> Callable:
        """The jitted entry point ``name`` (created once; JAX caches per shape and dtype).

        ``packed``: the inputs arrive stacked in one array (first axis: ``args``).
        """
        key = name + ":packed" if packed else name
        fn = self._jitted.get(key)
        if fn is None:
            pure = getattr(self, "_" + name)
            if packed:
                def unpack(stacked, pure=pure):
                    return pure(*(stacked[i] for i in range(len(self.args))))

                unpack.__name__ = name
                pure = unpack
            fn = self._jitted[key] = _disk_cache.persistent(  # compiles read and write the disk cache
                jax.jit(_counting(pure), compiler_options=self._compiler_options))
        return fn

    @property
    def _compiler_options(self) -> dict | None:
        """XLA options for this program's entry points: no loop fusion where it would repeat shared work.

        (CPU only.) XLA's CPU fusion gives every output its own loop and copies every shared
        subexpression into each of them. For the 40 gradient entries of a
        20-link pendulum, which share the same sines and cosines, that is 40
        copies of every sine and 5 times the operations; computing each
        operation once runs twice as fast and compiles 3 to 5 times faster.
        """
        if "_options" not in self._jitted:
            roots = [e for e in self.entries if not e.is_number] + list(self.captured.outputs)
            repeated = jax.default_backend() == "cpu" and call_deep(  # GPUs fuse outputs together instead
                repeats_shared_work, roots, FUSION_REPEAT_LIMIT, FUSION_MIN_OPS)
            self._jitted["_options"] = {"xla_disable_hlo_passes": "fusion"} if repeated else None
        return self._jitted["_options"]

    # The pure functions below are what jit traces. `single` is static structure.

    def _values_entries(self, *xs):
        return self.kernel.fn(*xs)

    def _entries(self, *xs):
        """Derivative entries only: the value is not written out (XLA drops its computation)."""
        return self.kernel.fn(*xs)[1]

    def _grad(self, cotangents, *xs):
        """Order-1 VJP: per output and wrt, sum_to(cotangent * dy/dw). cotangents=None means ones."""
        _, entries = self.kernel.fn(*xs)
        n_out = len(self.captured.outputs)
        result = []
        for i, pos in enumerate(self.wrt_positions):
            shape = jnp.shape(xs[pos])
            total = None
            for o in range(n_out):
                g = entries[self.index(o, (i,))]
                if cotangents is not None:
                    g = g * cotangents[o]
                total = g if total is None else total + g
            result.append(sum_to_shape(total, shape))
        return tuple(result)

    def _jacobian(self, *xs):
        """Per output, per wrt: the order-1 derivative summed to each input's shape."""
        return self._summed(xs, self.kernel.fn(*xs)[1])

    def _values_jacobian(self, *xs):
        """The values and :meth:`_jacobian` from one evaluation of the kernel."""
        values, entries = self.kernel.fn(*xs)
        return values, self._summed(xs, entries)

    def _summed(self, xs, entries):
        return tuple(
            tuple(
                sum_to_shape(entries[self.index(o, (i,))], jnp.shape(xs[pos]))
                for i, pos in enumerate(self.wrt_positions)
            )
            for o in range(len(self.captured.outputs))
        )

    def _array(self, *xs):
        """Every entry elementwise, stacked: broadcast_shape + (n_out,)? + (n_wrt,)*order."""
        gather = self._array_gather
        plan = self._vector_plan
        if plan is None:
            _, entries = self.kernel.fn(*xs)
            return jnp.stack([entries[i] for i in gather.unique], axis=-1)[..., gather.index]
        out = plan.pieces(xs)[..., plan.order[gather.index]]
        guarded = self._guarded_outputs
        if guarded.any():  # the kernel's domain rule: NaN wherever the expression's value is NaN
            values, _ = self.value_kernel.fn(*xs)
            nan = jnp.isnan(jnp.stack(values, axis=-1)) & guarded  # S + (n_out,)
            mask = nan if self.captured.vector else nan[..., 0]
            out = jnp.where(mask.reshape(mask.shape + (1,) * self.order), jnp.nan, out)
        return out

    @property
    def _vector_plan(self):
        """The distinct entries lowered by template (:mod:`symdiff._vectorize`), or None."""
        if "_vector_plan" not in self._jitted:
            exprs = [self.entries[i] for i in self._array_gather.unique]
            self._jitted["_vector_plan"] = call_deep(plan_vectorized, self.args, exprs)
        return self._jitted["_vector_plan"]

    @property
    def _guarded_outputs(self) -> np.ndarray:
        """Per output: whether its value can be NaN at finite inputs (see ``build_kernel``)."""
        return np.asarray([o in self.kernel.guarded for o in range(len(self.captured.outputs))])

    @property
    def _array_gather(self):
        """Distinct entries to stack once, and the index array placing them in the full tensor.

        A Hessian of n variables has n*(n+1)/2 distinct entries and often few
        distinct constants; stacking those once and gathering keeps the
        compiled graph small (one gather instead of n**2 stacked arrays).
        """
        gather = self._jitted.get("_gather")
        if gather is None:
            n, k = len(self.wrt), self.order
            slot: dict = {}  # distinct entry expression -> position in the stack
            unique: list[int] = []
            index = np.empty((len(self.captured.outputs),) + (n,) * k, dtype=np.int32)
            for o in range(len(self.captured.outputs)):
                for idx in itertools.product(range(n), repeat=k):
                    i = self.index(o, idx)
                    expr = self.entries[i]
                    if expr not in slot:
                        slot[expr] = len(unique)
                        unique.append(i)
                    index[(o,) + idx] = slot[expr]
            if not self.captured.vector:
                index = index[0]
            gather = self._jitted["_gather"] = _Gather(tuple(unique), index)
        return gather


@dataclass(frozen=True)
class _Gather:
    unique: tuple[int, ...]
    index: np.ndarray


def _counting(fn: Callable) -> Callable:
    """Wrap ``fn`` so every JAX trace of it is counted (a retrace counter, not a timer)."""

    def traced(*args):
        _cache.count("traces")
        _disk_cache.on_trace()
        return fn(*args)

    traced.__name__ = getattr(fn, "__name__", "program")
    return traced


def _build(captured: Captured, wrt: tuple[sympy.Symbol, ...], order: int, budget: float,
           disk_key: tuple | None = None) -> Program:
    """The whole symbolic pipeline; runs on a deep-stack thread (SymPy recurses over trees).

    ``disk_key``: the program's cache key; its closed forms are read from and written to disk.
    """
    stored = _disk_cache.load_forms(disk_key) if disk_key is not None else None
    if stored is None:
        _cache.count("symbolic")
        if budget > 0 or order >= 3:
            prestart_workers()  # the budget's worker process starts while SymPy differentiates
        raw = differentiate(captured, wrt, order)
        keys = tuple(raw)
        entries = simplify_entries([raw[k] for k in keys], budget, is_lowerable, hold_sums=order >= 3)
        if disk_key is not None:
            _disk_cache.store_forms(disk_key, keys, entries)
    else:  # an earlier process did the SymPy work
        keys, entries = stored
    args = sort_symbols(captured.free_symbols | set(wrt))
    outs = [k[0] for k in keys]

    def lower() -> Kernel:
        names = [_entry_name(k, wrt, captured.vector) for k in keys]
        return build_kernel(args, captured.outputs, entries, names, entry_outputs=outs)

    lazy = len(entries) > LAZY_ENTRIES and all(map(is_lowerable, set(entries) | set(captured.outputs)))
    guarded = frozenset(o for o in set(outs) if is_partial(captured.outputs[o])) if lazy else None  # as build_kernel
    kernel = _LazyKernel(lower, guarded) if lazy else lower()  # eager: raises LoweringError
    return Program(captured, wrt, order, args, keys, tuple(entries), kernel)


class _LazyKernel:
    """A kernel lowered on first use (same attributes as :class:`Kernel`).

    A Hessian of 1000 scalar names has 500,500 entries that only a dense result
    needs; ``d.sparse`` and ``d.array`` lower their distinct entries by template
    instead. ``_build`` checked that every entry is lowerable, so the error a
    lowering would raise is still raised at ``derive`` time.
    """

    def __init__(self, lower: Callable[[], Kernel], guarded: frozenset):
        self._lower, self._kernel, self.guarded = lower, None, guarded

    def __getattr__(self, name: str):  # fn, source, arg_names: lower everything now
        if name.startswith("__") or name in ("_lower", "_kernel"):
            raise AttributeError(name)
        if self._kernel is None:
            self._kernel = call_deep(self._lower)
        return getattr(self._kernel, name)


def get_program(captured: Captured, wrt: tuple[sympy.Symbol, ...], order: int, budget: float) -> Program:
    """The cached :class:`Program` for this expression, wrt, order and simplification budget."""
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise SymdiffError(f"order must be an integer >= 1; got {order!r}")
    key = (captured.outputs, captured.vector, wrt, order, budget)
    try:
        return _PROGRAMS.get_or_create(key, lambda: call_deep(_build, captured, wrt, order, budget, key))
    except RecursionError as exc:
        raise SymdiffError(f"expression too deeply nested to differentiate: {str(captured.expr)[:80]}") from exc
