"""The object :func:`symdiff.fit` returns: fitted numbers, formula, history and plots."""

from __future__ import annotations

import numpy as np
import sympy

from ._capture import natural_key

__all__ = ["FitResult", "rounded", "split_residual", "substitute"]


def _digits(dtype: np.dtype) -> int:
    """Significant decimal digits worth printing for ``dtype``."""
    return {2: 4, 4: 7, 8: 15}.get(np.dtype(dtype).itemsize, 7)


def _number(value: float, digits: int) -> sympy.Expr:
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return sympy.Integer(int(value))
    return sympy.Float(float(f"{value:.{digits}g}"), digits)


def substitute(expr: sympy.Expr, params: dict[str, np.ndarray], digits: int, max_elements: int = 1000):
    """``expr`` with the fitted numbers put in.

    Scalar parameters give a SymPy expression. Array parameters give a
    ``sympy.Array`` (the broadcast shape of the parameters), one expression per
    element, following the elementwise broadcasting of the loss. ``None`` when
    that would exceed ``max_elements`` entries.
    """
    symbols = {s.name: s for s in expr.free_symbols if isinstance(s, sympy.Symbol)}
    shapes = [np.shape(v) for v in params.values()]
    shape = np.broadcast_shapes(*shapes) if shapes else ()
    if shape == ():
        return expr.xreplace({symbols[n]: _number(v, digits) for n, v in params.items() if n in symbols})
    size = int(np.prod(shape))
    if size > max_elements:
        return None
    full = {n: np.broadcast_to(np.asarray(v), shape) for n, v in params.items() if n in symbols}
    flat = []
    for index in np.ndindex(*shape):
        flat.append(expr.xreplace({symbols[n]: _number(v[index], digits) for n, v in full.items()}))
    return sympy.Array(flat, shape)


def split_residual(loss: sympy.Expr, data_names: set[str]):
    """``(target symbol, prediction)`` when ``loss`` is ``h(prediction - target)``, else ``None``.

    Recognises a numeric multiple of ``g(residual)`` where ``g`` is a power,
    ``Abs`` or any one-argument function, and the residual is a sum holding a
    data symbol ``y`` linearly (``c*y``) and nowhere else:
    ``(w*x + b - y)**2`` -> ``(y, w*x + b)``.
    """
    expr = loss
    if isinstance(expr, sympy.Mul):
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_number:
            expr = rest
    if isinstance(expr, sympy.Pow) and expr.exp.is_number:
        base = expr.base
    elif isinstance(expr, sympy.Function) and len(expr.args) == 1:
        base = expr.args[0]
    else:
        return None
    if not isinstance(base, sympy.Add):
        return None
    for term in base.args:
        coeff, sym = term.as_coeff_Mul()
        if isinstance(sym, sympy.Symbol) and sym.name in data_names and coeff.is_number and coeff != 0:
            rest = base - term
            if sym not in rest.free_symbols:
                return sym, sympy.expand_mul(-rest / coeff) if coeff != -1 else rest
    return None


def rounded(expr, digits: int = 6):
    """``expr`` (or a ``sympy.Array``) with every float shown to ``digits`` significant digits."""
    if isinstance(expr, sympy.NDimArray):
        return expr.applyfunc(lambda e: rounded(e, digits))
    floats = expr.atoms(sympy.Float)
    return expr.xreplace({f: sympy.Float(float(f"{float(f):.{digits}g}"), digits) for f in floats}) if floats else expr


def _format_value(value: np.ndarray, digits: int) -> str:
    value = np.asarray(value)
    if value.ndim == 0:
        return f"{float(value):.{min(digits, 8)}g}"
    body = np.array2string(value, precision=min(digits, 6), threshold=8, edgeitems=3, separator=", ")
    return f"{body}  (shape {value.shape})"


class FitResult:
    """What :func:`symdiff.fit` returns.

    Attributes:
        params: ``dict`` name -> fitted value (numpy arrays; 0-d for scalars).
        loss_history: numpy array, the objective at each step (before that
            step's update; on that step's minibatch when ``batch_size`` is set).
        loss: the objective over all data rows at the fitted parameters.
        model: the loss expression with the fitted numbers substituted (data
            symbols stay free).
        prediction: for a residual loss like ``(f(x) - y)**2``, the fitted
            ``f(x)``; else ``None``.
        target: the data symbol ``y`` of that residual, else ``None``.
        derivative: the :class:`~symdiff.Derivative` of the elementwise loss
            with respect to the parameters (the objective's gradient is its mean
            over the data rows).
        steps: steps actually run; ``stopped_early``: whether a non-finite
            loss stopped training (the parameters are the last finite ones).
    """

    def __init__(self, *, loss_expr, params, loss_history, loss, derivative, data, data_names,
                 optimizer_name, dtype, steps_requested, stopped_early, devices, data_sharding, placed_data,
                 seconds):
        self.loss_expr = loss_expr
        self.params = params
        self.loss_history = loss_history
        self.loss = loss
        self.derivative = derivative
        self.steps = len(loss_history)
        self.steps_requested = steps_requested
        self.stopped_early = stopped_early
        self.optimizer = optimizer_name
        self.dtype = np.dtype(dtype)
        self.devices = devices
        self.data_sharding = data_sharding
        self.seconds = seconds
        self._data = data
        self._placed_data = placed_data
        self._data_names = tuple(data_names)
        digits = _digits(dtype)
        self.model = substitute(loss_expr, params, digits)
        split = split_residual(loss_expr, set(data_names))
        if split is None:
            self.target, self.prediction = None, None
        else:
            self.target = split[0]
            self.prediction = substitute(split[1], params, digits)

    @property
    def steps_per_second(self) -> float:
        """Training throughput of this call (including compilation on a first call)."""
        return self.steps / self.seconds if self.seconds > 0 else float("inf")

    def _input_names(self) -> list[str]:
        target = self.target.name if self.target is not None else None
        return [n for n in self._data_names if n != target]

    def __repr__(self) -> str:
        first = f"{self.loss_history[0]:.4g}" if len(self.loss_history) else "nan"
        lines = [
            f"FitResult({self.optimizer}, {self.steps} steps"
            + (f" of {self.steps_requested}, stopped early" if self.stopped_early else "")
            + f", loss {first} -> {self.loss:.4g}, {self.dtype.name}"
            + (f", {len(self.devices)} devices" if self.devices and len(self.devices) > 1 else "")
            + ")"
        ]
        digits = _digits(self.dtype)
        for name in sorted(self.params, key=natural_key):
            lines.append(f"  {name} = {_format_value(self.params[name], digits)}")
        if self.prediction is not None and not isinstance(self.prediction, sympy.NDimArray):
            lines.append(f"  {self.target} ~ {sympy.sstr(rounded(self.prediction))}")
        elif self.model is not None and not isinstance(self.model, sympy.NDimArray):
            lines.append(f"  model: {sympy.sstr(rounded(self.model))}")
        return "\n".join(lines)

    __str__ = __repr__

    def _repr_pretty_(self, printer, cycle):  # IPython
        printer.text(repr(self))

    def predict(self, **inputs) -> np.ndarray:
        """Evaluate the fitted prediction ``f`` of a residual loss at the given inputs."""
        if self.prediction is None or isinstance(self.prediction, sympy.NDimArray):
            raise ValueError("this loss is not of the form h(f(x) - y); there is no prediction to evaluate")
        import jax

        from ._lower import build_kernel
        from ._placement import x64_scope

        symbols = sorted(self.prediction.free_symbols, key=lambda s: natural_key(s.name))
        missing = [s.name for s in symbols if s.name not in inputs]
        if missing:
            raise ValueError(f"predict needs the inputs {', '.join(missing)}")
        kernel = build_kernel(symbols, [self.prediction], [], function_name="prediction")
        with x64_scope(self.dtype):
            xs = [jax.numpy.asarray(inputs[s.name], dtype=self.dtype) for s in symbols]
            if not xs:
                shape = np.shape(next(iter(inputs.values()))) if inputs else ()
                return np.full(shape, float(self.prediction), dtype=self.dtype)
            values, _ = kernel.fn(*xs)
            return np.asarray(values[0])

    def plot(self):
        """A matplotlib ``Figure``: the loss curve; with one input variable also data vs fitted curve."""
        from matplotlib.figure import Figure

        inputs = self._input_names()
        curve = (
            self.prediction is not None
            and not isinstance(self.prediction, sympy.NDimArray)
            and len(inputs) == 1
            and np.ndim(self._data[inputs[0]]) == 1
            and np.ndim(self._data[self.target.name]) == 1
        )
        fig = Figure(figsize=(11 if curve else 6, 4), layout="constrained")
        axes = fig.subplots(1, 2 if curve else 1)
        ax = axes[0] if curve else axes
        history = np.asarray(self.loss_history, dtype=np.float64)
        steps = np.arange(len(history))
        ax.plot(steps, history, lw=1.2)
        if len(history) and np.all(history > 0):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(f"{self.optimizer}: loss {self.loss:.4g} after {self.steps} steps")
        ax.grid(True, alpha=0.3)
        if curve:
            name = inputs[0]
            x = np.asarray(self._data[name], dtype=np.float64)
            y = np.asarray(self._data[self.target.name], dtype=np.float64)
            grid = np.linspace(x.min(), x.max(), 400)
            fitted = self.predict(**{name: grid})
            ax2 = axes[1]
            ax2.plot(x, y, ".", ms=4, alpha=0.6, label="data")
            ax2.plot(grid, fitted, "-", lw=2, label="fit")
            ax2.set_xlabel(name)
            ax2.set_ylabel(self.target.name)
            text = self.formula(4)
            ax2.set_title(text if len(text) <= 70 else text[:67] + "...", fontsize=9)
            ax2.legend()
            ax2.grid(True, alpha=0.3)
        return fig

    def formula(self, digits: int = 6) -> str:
        """The fitted model as text with ``digits`` significant digits: ``"y = 2.0*x + 1.0"``.

        For a residual loss ``h(f - y)`` this is ``y = f``; otherwise the loss with the fitted numbers.
        """
        if self.prediction is not None:
            return f"{self.target} = {sympy.sstr(rounded(self.prediction, digits))}"
        if self.model is None:
            return "(too many array elements to show)"
        return sympy.sstr(rounded(self.model, digits))

    def summary(self) -> str:
        """The readable summary (same as ``repr``)."""
        return repr(self)

