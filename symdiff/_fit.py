"""``sd.fit``: a whole optimisation as a few compiled calls.

The loss is captured and differentiated once (the same cached pipeline as
:func:`symdiff.derive`); its lowered kernel returns the elementwise loss and
every gradient entry sharing their subexpressions. A training step averages
them over the data rows (masked where rows were padded for sharding) and hands
the gradient to an optax transformation. ``jax.lax.scan`` runs a chunk of
steps per compiled call; the Python loop between chunks only updates the
progress bar. The chunk length is fixed per fit and the step count, seed and
start step are traced arguments, so one fit compiles once, and a second fit of
the same problem (other data values, initial values, seed or learning rate
held in the optimiser) reuses the compiled chunk.

With ``devices`` the data rows are sharded over a one-axis
``jax.sharding.Mesh`` (axis ``"data"``) and the parameters and optimiser state
are replicated; XLA inserts the all-reduce of the gradient mean.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy

from . import _cache
from ._capture import natural_key
from ._compile import sum_to_shape
from ._derive import _capture_cached, derive
from ._errors import DeviceError, InputError, ShapeError, SymdiffError
from ._fit_result import FitResult
from ._placement import available_devices, infer_float_dtype, resolve_device, resolve_float_dtype, x64_scope

__all__ = ["fit", "FitError", "FitWarning", "FitResult"]


class FitError(SymdiffError):
    """The optimisation cannot start or cannot produce a finite result."""


class FitWarning(UserWarning):
    """Training stopped early (the loss or its gradient stopped being finite)."""


class _DefaultLR(float):
    """The signature's default ``lr=1e-2``: L-BFGS treats it as ``None`` (its line search alone)."""

    def __repr__(self) -> str:
        return "0.01"


DEFAULT_LR = _DefaultLR(1e-2)

# lr=None: the optimiser's own default (PyTorch's for the first-order ones).
_DEFAULT_LRS = {"sgd": 1e-3, "adam": 1e-3, "adamw": 1e-3, "lbfgs": None}
OPTIMIZERS = tuple(_DEFAULT_LRS)

MAX_CHUNK = 1024  # steps per compiled call, at most
_RUNNERS = _cache.LRUCache("fit runners", 64)


# --------------------------------------------------------------------------- helpers


def chunk_size(steps: int) -> int:
    """Steps per compiled call: a power of two, about a tenth of ``steps`` (1..MAX_CHUNK).

    Powers of two keep the number of distinct compiled chunk lengths small.

    >>> chunk_size(1000), chunk_size(5), chunk_size(10**6)
    (64, 1, 1024)
    """
    target = max(1, steps // 10)
    return min(MAX_CHUNK, 1 << (target.bit_length() - 1))


def _make_optimizer(optimizer, lr, dtype: np.dtype) -> tuple[optax.GradientTransformationExtraArgs, str, Any]:
    """(transformation accepting value/grad/value_fn extra args, display name, cache key)."""
    if isinstance(optimizer, str):
        name = optimizer.strip().lower()
        if name not in _DEFAULT_LRS:
            raise InputError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)} "
                             "or an optax.GradientTransformation")
        if lr is None or (name == "lbfgs" and isinstance(lr, _DefaultLR)):
            lr = _DEFAULT_LRS[name]
        if lr is not None:
            if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(lr) or lr <= 0:
                raise InputError(f"lr must be a positive number or None; got {lr!r}")
            lr = float(lr)
        if name == "lbfgs":
            tx = optax.lbfgs(learning_rate=lr)
            key = (name, lr)
        else:
            # the learning rate lives in the optimiser state: another lr reuses the compiled fit. The
            # hyperparameters stay at least float32 (0.999 is 1 in bfloat16: Adam's bias correction would be inf)
            factory = {"sgd": optax.sgd, "adam": optax.adam, "adamw": optax.adamw}[name]
            hyper = np.dtype(np.promote_types(dtype, np.float32))
            tx = optax.inject_hyperparams(factory, hyperparam_dtype=hyper)(learning_rate=lr)
            key = (name, hyper.name)
        shown = name if lr is None else f"{name}(lr={lr:g})"
        return optax.with_extra_args_support(tx), shown, key
    if isinstance(optimizer, optax.GradientTransformation):
        try:
            hash(optimizer)
            key = optimizer
        except TypeError:  # kept alive by the cached runner, so the id stays unique
            key = ("id", id(optimizer))
        return optax.with_extra_args_support(optimizer), "optax transformation", key
    raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)} or an optax.GradientTransformation; "
                     f"got {type(optimizer).__name__}")


def _resolve_devices(devices) -> tuple[jax.Device, ...] | None:
    if devices is None:
        return None
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        n = int(devices)
        if n < 1:
            raise DeviceError(f"devices must be at least 1; got {n}")
        available = jax.devices()
        if n > len(available):
            raise DeviceError(
                f"devices={n} but only {len(available)} device(s) are available "
                f"({', '.join(available_devices())}); on CPU, simulate more with "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={n} set before JAX starts"
            )
        return tuple(available[:n])
    if isinstance(devices, (str, jax.Device)) or not isinstance(devices, Sequence):
        devices = [devices]
    resolved = tuple(resolve_device(d) for d in devices)
    if not resolved:
        raise DeviceError("devices is an empty list; give None, a count, or a list of devices")
    if len(set(resolved)) != len(resolved):
        raise DeviceError(f"devices lists a device twice: {list(resolved)}")
    if len({d.platform for d in resolved}) > 1:
        raise DeviceError(f"devices must all be on one platform; got {list(resolved)}")
    return resolved


def _as_array(name: str, value, what: str) -> np.ndarray:
    if hasattr(value, "__jax_array__") and not isinstance(value, jax.Array):
        value = value.__jax_array__()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} {name!r} is not a numeric array: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise InputError(f"{what} {name!r} must be real numbers; got dtype {array.dtype}")
    return array


def _check_finite(name: str, array: np.ndarray, what: str) -> None:
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        where = f" (row {bad[0]})" if array.ndim and what == "data array" else ""
        raise InputError(f"{what} {name!r} contains NaN or infinity{where}; clean or drop those rows first")


# --------------------------------------------------------------------------- the compiled runner


@dataclass(frozen=True)
class _Plan:
    """Static structure of one fit: what the compiled chunk closes over."""

    arg_names: tuple[str, ...]
    param_names: tuple[str, ...]
    data_names: tuple[str, ...]
    data_ndim: int
    n_real: int  # data rows (0 without data)
    n_padded: int  # rows after padding to a multiple of the device count
    batch_size: int | None  # None: every row each step
    chunk: int
    from_state: bool  # reuse the line search's value/grad (L-BFGS, full batch)
    mesh: Any  # jax.sharding.Mesh or None
    shard_batch: bool
    # named optimisers see the parameters as one flat vector (name order, these shapes): a few vector ops per
    # step instead of a few per parameter; None for user transformations, which may rely on the names
    flat_shapes: tuple[tuple[str, tuple[int, ...]], ...] | None = None


class _Runner:
    """The jitted chunk and full-data evaluation for one plan and one lowered kernel."""

    def __init__(self, plan: _Plan, kernel, entry_index: dict[str, int], tx):
        self.plan = plan
        self.kernel = kernel
        self.entry_index = entry_index
        self.tx = tx
        self.chunk = jax.jit(self._chunk)
        self.evaluate = jax.jit(self._evaluate)

    # objective ---------------------------------------------------------

    def _to_dict(self, params):
        """Optimiser form (flat vector or dict) -> dict name -> array."""
        shapes = self.plan.flat_shapes
        if shapes is None:
            return params
        out, offset = {}, 0
        for name, shape in shapes:
            size = math.prod(shape)
            out[name] = params[offset:offset + size].reshape(shape)
            offset += size
        return out

    def _to_opt(self, tree):
        """dict name -> array -> optimiser form."""
        shapes = self.plan.flat_shapes
        if shapes is None:
            return tree
        return jnp.concatenate([jnp.reshape(tree[name], (-1,)) for name, _ in shapes])

    def _parts(self, params, batch, mask):
        """Mean loss over the rows (masked rows excluded) and its gradient from the closed forms.

        ``params`` and the gradient are in the optimiser's form (see ``_Plan.flat_shapes``).
        """
        plan = self.plan
        params = self._to_dict(params)
        xs = [params[n] if n in params else batch[n] for n in plan.arg_names]
        values, entries = self.kernel.fn(*xs)
        loss = values[0]
        dtype = loss.dtype
        acc = jnp.promote_types(dtype, jnp.float32)
        if mask is not None:
            m = mask.reshape(mask.shape + (1,) * (plan.data_ndim - 1))
            real = loss.size * plan.n_real // plan.n_padded
            loss = jnp.where(m, loss, 0)
        else:
            m, real = None, loss.size
        value = (jnp.sum(loss.astype(acc)) / real).astype(dtype)
        grads = {}
        for name in plan.param_names:
            g = entries[self.entry_index[name]]
            if m is not None:
                g = jnp.where(m.reshape(m.shape + (1,) * (g.ndim - m.ndim)) if g.ndim > m.ndim else m, g, 0)
            g = sum_to_shape(g.astype(acc), jnp.shape(params[name])) / real
            grads[name] = g.astype(params[name].dtype)
        return value, self._to_opt(grads)

    def _value_fn(self):
        """The objective as a JAX function whose JAX gradient is the closed-form one (for line searches)."""

        @jax.custom_vjp
        def objective(params, batch, mask):
            return self._parts(params, batch, mask)[0]

        def fwd(params, batch, mask):
            return self._parts(params, batch, mask)

        def bwd(grads, ct):
            return jax.tree.map(lambda g: (ct * g).astype(g.dtype), grads), None, None

        objective.defvjp(fwd, bwd)
        return objective

    # one step ----------------------------------------------------------

    def _select(self, data, mask, perm, step, key):
        plan = self.plan
        if plan.batch_size is None:
            return data, mask, perm
        per_epoch = plan.n_real // plan.batch_size
        position = step % per_epoch
        epoch = step // per_epoch
        perm = jax.lax.cond(
            position == 0,
            lambda: jax.random.permutation(jax.random.fold_in(key, epoch), plan.n_real).astype(perm.dtype),
            lambda: perm,
        )
        index = jax.lax.dynamic_slice(perm, (position * plan.batch_size,), (plan.batch_size,))
        batch = {n: jnp.take(x, index, axis=0) for n, x in data.items()}
        if plan.shard_batch:
            sharding = jax.sharding.NamedSharding(plan.mesh, jax.sharding.PartitionSpec("data"))
            batch = {n: jax.lax.with_sharding_constraint(x, sharding) for n, x in batch.items()}
        return batch, None, perm

    def _chunk(self, carry, data, mask, start, total, key):
        _cache.count("fit_traces")
        plan = self.plan
        tx = self.tx
        objective = self._value_fn()
        value_and_grad_from_state = optax.value_and_grad_from_state(objective) if plan.from_state else None

        def step(carry, i):
            params, opt_state, good, stopped, perm, done = carry
            index = start + i
            # steps past `total` (the last chunk's tail) and steps after a non-finite loss run but change nothing:
            # selecting with `where` keeps the loop body one straight-line computation XLA fuses (a lax.cond
            # around the step measured slower)
            active = (index < total) & ~stopped
            batch, bmask, new_perm = self._select(data, mask, perm, index, key)
            if value_and_grad_from_state is not None:
                value, grads = value_and_grad_from_state(params, batch, bmask, state=opt_state)
            else:
                value, grads = self._parts(params, batch, bmask)
            finite = jnp.isfinite(value)
            for g in jax.tree.leaves(grads):
                finite &= jnp.all(jnp.isfinite(g))
            ok = active & finite
            updates, new_state = tx.update(
                grads, opt_state, params, value=value, grad=grads,
                value_fn=lambda p: objective(p, batch, bmask),
            )
            new_params = optax.apply_updates(params, updates)

            def pick(a, b):
                return jax.tree.map(lambda x, y: jnp.where(ok, x, y).astype(y.dtype), a, b)

            out = (
                pick(new_params, params),
                pick(new_state, opt_state),
                pick(params, good),
                stopped | (active & ~finite),
                new_perm,
                done + ok.astype(done.dtype),
            )
            return out, jnp.where(ok, value, jnp.nan).astype(value.dtype)

        return jax.lax.scan(step, carry, jnp.arange(plan.chunk, dtype=jnp.int32))

    def _evaluate(self, params, data, mask):
        return self._parts(params, data, mask)[0]


def _runner_for(plan: _Plan, program, opt_key, tx) -> _Runner:
    entry_index = {w.name: program.index(0, (i,)) for i, w in enumerate(program.wrt)}
    key = (id(program), program.captured.outputs, plan, opt_key)
    return _RUNNERS.get_or_create(key, lambda: _Runner(plan, program.kernel, entry_index, tx))


# --------------------------------------------------------------------------- fit


def fit(loss, params, data=None, *, steps: int = 1000, optimizer="adam", lr=DEFAULT_LR, batch_size=None,
        progress: bool = True, seed: int = 0, devices=None, dtype=None, shapes=None) -> FitResult:
    """Minimise the mean of an elementwise loss over data rows, compiled end to end.

    Args:
        loss: the elementwise loss: text (``"(w*x + b - y)**2"``), a SymPy
            expression or a Python callable (its parameter names name the symbols).
        params: ``dict`` name -> initial value (scalar or array) of every
            parameter to fit. Arrays broadcast against the data like NumPy.
        data: ``dict`` name -> array with the rows along the first axis (all
            the same length and the same number of dimensions). ``{}`` or
            ``None``: no data, the loss itself is minimised.
        steps: optimisation steps (one optimiser update each; for L-BFGS one
            iteration with its line search).
        optimizer: ``"sgd" | "adam" | "adamw" | "lbfgs"`` or any
            ``optax.GradientTransformation``.
        lr: learning rate. ``None``: the optimiser's default (1e-3 for sgd,
            adam and adamw; L-BFGS: its line search alone). With
            ``"lbfgs"`` the signature's default also means its line search
            alone; an explicit number scales the line-search step.
        batch_size: rows per step, drawn without replacement in a fresh
            permutation each epoch (reproducible from ``seed``; the rows left
            over at the end of an epoch are skipped). ``None`` or a size of at
            least the row count: every row each step.
        progress: show a progress bar (tqdm) with the current loss.
        seed: seed of the minibatch order.
        devices: ``None`` (one device), a count, or a list of devices: the data
            rows are sharded over them (padded to a multiple of the count with
            masked rows), the parameters replicated.
        dtype: ``None`` (float64 if a data or parameter array is float64, else
            float32) or a float dtype as in :func:`symdiff.derive`.
        shapes: array symbols as in :func:`symdiff.derive` (``docs/arrays.md``): a
            parameter's shape is its whole shape, a data symbol's the shape of one row.

    Returns:
        A :class:`FitResult` (``.params``, ``.loss_history``, ``.model``,
        ``.derivative``, ``.plot()``, ...).

    The objective is the mean over every element of the broadcast elementwise
    loss (the data rows, and any further broadcast axes). If the loss or its
    gradient stops being finite during training, a :class:`FitWarning` is
    issued and the last parameters with a finite loss are returned.

    >>> import numpy as np, symdiff as sd
    >>> from symdiff._fit import fit
    >>> x = np.linspace(0, 1, 50)
    >>> r = fit("(w*x + b - y)**2", {"w": 0.0, "b": 0.0}, {"x": x, "y": 3 * x + 1},
    ...         steps=200, optimizer="lbfgs", progress=False)
    >>> print(r.derivative)
    d/db = 2*(b + w*x - y)
    d/dw = 2*x*(b + w*x - y)
    >>> round(float(r.params["w"]), 4), round(float(r.params["b"]), 4)
    (3.0, 1.0)
    """
    started = time.perf_counter()
    data = {} if data is None else data
    if not isinstance(params, Mapping) or not params:
        raise InputError("params must be a non-empty dict name -> initial value")
    if not isinstance(data, Mapping):
        raise InputError("data must be a dict name -> array (rows along the first axis), or {}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"steps must be a positive integer; got {steps!r}")
    steps = int(steps)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer; got {seed!r}")

    # ---- the loss and its symbols
    if shapes is not None:  # arrays (issue 11): the per-row loss is an array expression
        from ._array_fit import capture_for_fit

        expr, symbols = capture_for_fit(loss, shapes)
    else:
        captured = _capture_cached(loss)  # text is parsed once per process
        if captured.vector:
            raise InputError("the loss must be one scalar expression, not a list")
        expr = captured.outputs[0]
        symbols = {s.name for s in expr.free_symbols}
    for name in list(params) + list(data):
        if not isinstance(name, str):
            raise InputError(f"params and data keys must be symbol names (str); got {name!r}")
    both = sorted(set(params) & set(data))
    if both:
        raise InputError(f"{both[0]!r} is given both as a parameter and as data")
    for name in params:
        if name not in symbols:
            raise InputError(f"parameter {name!r} does not occur in the loss {sympy.sstr(expr)}")
    for name in data:
        if name not in symbols:
            raise InputError(f"data array {name!r} does not occur in the loss {sympy.sstr(expr)}")
    unknown = sorted(symbols - set(params) - set(data), key=natural_key)
    if unknown:
        raise InputError(f"the loss uses {', '.join(map(repr, unknown))}, which is neither a parameter nor a "
                         "data array; add it to params or data")
    param_names = tuple(sorted(params, key=natural_key))
    data_names = tuple(sorted(data, key=natural_key))

    # ---- values
    param_arrays = {n: _as_array(n, params[n], "parameter") for n in param_names}
    data_arrays = {n: _as_array(n, data[n], "data array") for n in data_names}
    for n, a in param_arrays.items():
        _check_finite(n, a, "initial value of parameter")
    for n, a in data_arrays.items():
        if a.ndim == 0:
            raise ShapeError(f"data array {n!r} is a scalar; data arrays hold rows along their first axis "
                             "(put constants into the loss)")
        _check_finite(n, a, "data array")
    if data_arrays:
        lengths = {n: a.shape[0] for n, a in data_arrays.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{n} has {k}" for n, k in lengths.items())
            raise ShapeError(f"data arrays must all have the same number of rows; {shown}")
        ndims = {n: a.ndim if shapes is None else 1 for n, a in data_arrays.items()}  # arrays: one loss per row
        if len(set(ndims.values())) > 1:
            shown = ", ".join(f"{n}: {a.shape}" for n, a in data_arrays.items())
            raise ShapeError(
                f"data arrays must have the same number of dimensions ({shown}); rows of different "
                "ranks would broadcast against each other. Reshape them, e.g. y[:, None]"
            )
        n_real = next(iter(lengths.values()))
        if n_real == 0:
            raise ShapeError("the data arrays have no rows")
        data_ndim = next(iter(ndims.values()))
    else:
        n_real, data_ndim = 0, 0
    try:
        if shapes is None:  # array symbols combine by their declared shapes, checked after derive
            np.broadcast_shapes(*(a.shape for a in param_arrays.values()), *(a.shape for a in data_arrays.values()))
    except ValueError:
        shown = ", ".join(f"{n}: {a.shape}" for n, a in {**param_arrays, **data_arrays}.items())
        raise ShapeError(f"parameter and data shapes do not broadcast together ({shown})") from None

    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer or None; got {batch_size!r}")
        if not data_arrays:
            raise InputError("batch_size needs data rows to sample; data is empty")
        batch_size = int(batch_size)
        if batch_size >= n_real:
            batch_size = None

    resolved = resolve_float_dtype(dtype)
    if resolved is None:
        resolved = infer_float_dtype(
            [v for v in list(params.values()) + list(data.values()) if not isinstance(v, (int, float, list, tuple))]
        )
    dtype = resolved
    device_list = _resolve_devices(devices)
    tx, opt_name, opt_key = _make_optimizer(optimizer, lr, dtype)

    # ---- symbolic: the closed-form gradient (cached like derive)
    if shapes is not None:
        from ._array_fit import check_fit_shapes, fit_program

        derivative = derive(loss, wrt=list(param_names), dtype=dtype, shapes=shapes)
        check_fit_shapes(derivative, param_arrays, data_arrays)
        program = fit_program(derivative, data_names)  # the per-row closed forms mapped over the rows
    else:
        derivative = derive(expr, wrt=list(param_names), dtype=dtype)
        program = derivative._program  # the lowered kernel: values and entries, subexpressions shared
    arg_names = tuple(s.name for s in program.args)

    # ---- placement
    mesh = None
    n_dev = 1
    if device_list is not None:
        mesh = jax.sharding.Mesh(np.array(device_list), ("data",))
        n_dev = len(device_list)
    n_padded = -(-n_real // n_dev) * n_dev if data_arrays else 0
    if data_arrays and n_padded != n_real:
        extra = n_padded - n_real
        data_arrays_padded = {n: np.concatenate([a, np.repeat(a[:1], extra, axis=0)]) for n, a in data_arrays.items()}
        mask_host = np.arange(n_padded) < n_real
    else:
        data_arrays_padded, mask_host = data_arrays, None

    from_state = False
    plan_args = dict(
        arg_names=arg_names, param_names=param_names, data_names=data_names, data_ndim=data_ndim,
        n_real=n_real, n_padded=n_padded, batch_size=batch_size, chunk=chunk_size(steps), mesh=mesh,
        shard_batch=bool(mesh is not None and batch_size is not None and batch_size % n_dev == 0),
        flat_shapes=tuple((n, param_arrays[n].shape) for n in param_names) if isinstance(optimizer, str) else None,
    )

    with x64_scope(dtype):
        if mesh is not None:
            P = jax.sharding.PartitionSpec
            data_sharding = jax.sharding.NamedSharding(mesh, P("data"))
            replicated = jax.sharding.NamedSharding(mesh, P())

            def put_data(a):
                return jax.device_put(np.asarray(a, dtype=dtype if a.dtype != bool else bool), data_sharding)

            def put_rep(a):
                return jax.device_put(a, replicated)
        else:
            data_sharding = None

            def put_data(a):
                return jnp.asarray(a, dtype=dtype if a.dtype != bool else bool)

            def put_rep(a):
                return jnp.asarray(a)

        placed = {n: put_data(a) for n, a in data_arrays_padded.items()}
        mask = put_data(mask_host) if mask_host is not None else None
        if plan_args["flat_shapes"] is not None:
            p0 = put_rep(jnp.asarray(np.concatenate([a.reshape(-1) for a in param_arrays.values()]), dtype=dtype))
        else:
            p0 = {n: put_rep(jnp.asarray(a, dtype=dtype)) for n, a in param_arrays.items()}
        opt_state = tx.init(p0)
        if batch_size is None:
            try:
                from_state = (optax.tree.get(opt_state, "value") is not None
                              and optax.tree.get(opt_state, "grad") is not None)
            except (KeyError, ValueError):
                from_state = False
        plan = _Plan(from_state=from_state, **plan_args)
        runner = _runner_for(plan, program, opt_key, tx)

        # a step casts its outputs to the carry's dtypes; the carry must not be weakly typed
        opt_state = jax.tree.map(lambda x: put_rep(_strong(x)), opt_state)
        perm = put_rep(jnp.arange(n_real, dtype=jnp.int32) if batch_size else jnp.zeros((), jnp.int32))
        carry = (p0, opt_state, p0, put_rep(jnp.asarray(False)), perm, put_rep(jnp.asarray(0, dtype=jnp.int32)))
        key = put_rep(jax.random.PRNGKey(int(seed)))
        total = np.int32(steps)

        # ---- the loop: chunks dispatched ahead, the bar updated from the finished one
        bar = _progress_bar(steps, progress)
        histories: list[np.ndarray] = []
        finished = 0
        pending = None
        try:
            for start in range(0, steps, plan.chunk):
                carry, losses = runner.chunk(carry, placed, mask, np.int32(start), total, key)
                if pending is not None:
                    finished, stop = _consume(pending, histories, finished, steps, bar)
                    if stop:
                        pending = None
                        break
                pending = losses
            if pending is not None:
                finished, _ = _consume(pending, histories, finished, steps, bar)
        finally:
            if bar is not None:
                bar.close()

        params_out, _, good, stopped, _, done = carry
        stopped = bool(stopped)
        done = int(done)
        history = np.concatenate(histories)[:done] if histories else np.zeros(0)
        if stopped:
            if done == 0:
                raise FitError(
                    f"the loss is not finite at the initial parameters "
                    f"({', '.join(f'{n}={_short(a)}' for n, a in param_arrays.items())}); "
                    "choose other initial values"
                )
            final = good
        else:
            final = params_out
        final_loss = float(runner.evaluate(final, placed, mask))
        if not stopped and not math.isfinite(final_loss):
            # the last update left the finite region: fall back to the parameters of the last finite step
            stopped, final = True, good
            final_loss = float(runner.evaluate(final, placed, mask))
        if plan.flat_shapes is not None:
            flat = np.asarray(final)
            offsets = np.cumsum([0] + [a.size for a in param_arrays.values()])
            final = {n: flat[offsets[i]:offsets[i + 1]] for i, n in enumerate(param_arrays)}
        fitted = {n: np.asarray(final[n]).reshape(param_arrays[n].shape) for n in param_names}

    if stopped:
        warnings.warn(
            f"sd.fit: the loss or its gradient became NaN/infinite at step {done}; stopped early and kept the "
            f"parameters of the last finite step (loss {final_loss:.6g}). Try a smaller lr or other initial values.",
            FitWarning,
            stacklevel=2,
        )
    if shapes is not None:  # the result's elementwise model substitution does not apply to arrays
        result = FitResult(
            loss_expr=sympy.S.Zero, params=fitted, loss_history=history.astype(np.dtype(dtype)), loss=final_loss,
            derivative=derivative, data=data_arrays, data_names=data_names, optimizer_name=opt_name, dtype=dtype,
            steps_requested=steps, stopped_early=stopped, devices=device_list, data_sharding=data_sharding,
            placed_data=placed, seconds=time.perf_counter() - started)
        result.loss_expr, result.model = expr, None
        return result
    return FitResult(
        loss_expr=expr, params=fitted, loss_history=history.astype(np.dtype(dtype) if dtype.itemsize >= 4
                                                                   else np.float32),
        loss=final_loss, derivative=derivative, data=data_arrays, data_names=data_names,
        optimizer_name=opt_name, dtype=dtype, steps_requested=steps, stopped_early=stopped,
        devices=device_list, data_sharding=data_sharding, placed_data=placed,
        seconds=time.perf_counter() - started,
    )


def _short(a: np.ndarray) -> str:
    return f"{float(a):g}" if a.ndim == 0 else f"array{a.shape}"


def _strong(x):
    """``x`` without JAX's weak type (scan carries must keep exactly one type)."""
    return jnp.asarray(x, dtype=jnp.result_type(x))


def _consume(losses, histories, finished, steps, bar):
    """Record a finished chunk's losses; update the bar. Returns (steps finished, whether training stopped)."""
    values = np.asarray(losses)
    n = min(len(values), steps - finished)
    values = values[:n]
    histories.append(values)
    nan = np.flatnonzero(~np.isfinite(values))
    stop = nan.size > 0
    good = values[: nan[0]] if stop else values
    if bar is not None:
        bar.update(n if not stop else int(nan[0]))
        if good.size:
            bar.set_postfix(loss=f"{float(good[-1]):.4g}", refresh=False)
    return finished + n, stop


def _progress_bar(steps: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc="sd.fit", unit="step", leave=True, dynamic_ncols=True)
