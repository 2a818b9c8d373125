"""PyTorch's tensor printing, reproduced: ``tensor([2., 3.], requires_grad=True)``.

The rules (precision 4, integer mode, scientific mode, line width 80,
summarising above 1000 elements) follow ``torch/_tensor_str.py`` so that a
PyTorch user reads exactly what they are used to.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["format_tensor"]

_PRECISION = 4
_LINEWIDTH = 80
_THRESHOLD = 1000
_EDGEITEMS = 3


class _Formatter:
    """Chooses one width and one notation for every element of an array."""

    def __init__(self, values: np.ndarray, floating: bool):
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        flat = flat.astype(np.float64)
        finite = flat[np.isfinite(flat) & (flat != 0)]
        if finite.size == 0:
            return
        absolute = np.abs(finite)
        lo, hi = float(absolute.min()), float(absolute.max())
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        if self.int_mode:
            if hi / lo > 1000.0 or hi > 1.0e8:
                self.sci_mode = True
                widths = [len(f"{v:.{_PRECISION}e}") for v in finite.tolist()]
            else:
                widths = [len(f"{v:.0f}") + 1 for v in finite.tolist()]
        elif hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4:
            self.sci_mode = True
            widths = [len(f"{v:.{_PRECISION}e}") for v in finite.tolist()]
        else:
            widths = [len(f"{v:.{_PRECISION}f}") for v in finite.tolist()]
        self.max_width = max([self.max_width] + widths)

    def format(self, value) -> str:
        if self.floating:
            value = float(value)
            if self.sci_mode:
                text = f"{value:{self.max_width}.{_PRECISION}e}"
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{value:.{_PRECISION}f}"
        else:
            text = f"{value}"
        return (self.max_width - len(text)) * " " + text


def _summarized(values: np.ndarray) -> np.ndarray:
    """The elements PyTorch shows of a large array (edges of every dimension)."""
    if values.ndim == 0:
        return values
    if values.shape[0] > 2 * _EDGEITEMS:
        parts = [values[:_EDGEITEMS], values[-_EDGEITEMS:]]
    else:
        parts = [values]
    if values.ndim == 1:
        return np.concatenate(parts)
    return np.concatenate([np.stack([_summarized(row) for row in part]).reshape(-1) for part in parts])


def _vector(values: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    per_line = max(1, int(math.floor((_LINEWIDTH - indent) / (fmt.max_width + 2))))
    if summarize and values.shape[0] > 2 * _EDGEITEMS:
        data = ([fmt.format(v) for v in values[:_EDGEITEMS].tolist()] + [" ..."]
                + [fmt.format(v) for v in values[-_EDGEITEMS:].tolist()])
    else:
        data = [fmt.format(v) for v in values.tolist()]
    lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(values: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if values.ndim == 0:
        return fmt.format(values.item())
    if values.ndim == 1:
        return _vector(values, indent, summarize, fmt)
    n = values.shape[0]
    if summarize and n > 2 * _EDGEITEMS:
        rows = ([_nested(values[i], indent + 1, summarize, fmt) for i in range(_EDGEITEMS)] + ["..."]
                + [_nested(values[i], indent + 1, summarize, fmt) for i in range(n - _EDGEITEMS, n)])
    else:
        rows = [_nested(values[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (values.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def format_tensor(values: np.ndarray, floating: bool, suffixes: list[str], show_size: bool) -> str:
    """``tensor(...)`` text for ``values`` with PyTorch's suffixes (dtype, device, grad_fn...)."""
    prefix = "tensor("
    indent = len(prefix)
    if values.size == 0:
        body = "[]"
        if show_size:
            suffixes = [f"size={tuple(values.shape)}"] + suffixes
    else:
        summarize = values.size > _THRESHOLD
        fmt = _Formatter(_summarized(values) if summarize else values, floating)
        body = _nested(values, indent, summarize, fmt)
    text = prefix + body
    parts = [text]
    last = len(text) - text.rfind("\n") + 1  # PyTorch's own arithmetic, off-by-one included
    for suffix in suffixes:
        if last + len(suffix) + 2 > _LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last += len(suffix) + 2
    parts.append(")")
    return "".join(parts)
