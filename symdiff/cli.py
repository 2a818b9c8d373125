"""The ``symdiff`` command line: closed forms, values, LaTeX, source and checks.

Example::

    $ symdiff "3*a**3 - b**2" --at a=2,3 --at b=6,4
    d/da = 9*a**2
    d/db = -2*b
    d/da = [36. 81.]
    d/db = [-12. -8.]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ._errors import SymdiffError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``symdiff`` command."""
    p = argparse.ArgumentParser(
        prog="symdiff",
        description="Differentiate an expression symbolically, print its closed form, evaluate it compiled.",
    )
    p.add_argument("expression", help="expression text, e.g. '3*a**3 - b**2'")
    p.add_argument("--wrt", nargs="+", metavar="NAME", help="symbols to differentiate by (default: all)")
    p.add_argument("--order", type=int, default=1, help="derivative order (default 1)")
    p.add_argument(
        "--at", action="append", default=[], metavar="NAME=VALUES",
        help="input values, e.g. --at a=2,3 (repeat for each input)",
    )
    p.add_argument("--latex", action="store_true", help="print the closed forms as LaTeX")
    p.add_argument("--source", action="store_true", help="print the generated JAX source")
    p.add_argument("--check", action="store_true", help="cross-check against JAX autodiff and finite differences")
    p.add_argument("--dtype", default=None, help="float16, bfloat16, float32 or float64")
    p.add_argument("--device", default=None, help="cpu, gpu, cuda or cuda:N")
    p.add_argument("--no-simplify", action="store_true", help="print the derivative unsimplified")
    p.add_argument(
        "--shape", action="append", default=[], metavar="NAME=DIMS",
        help="declare an array symbol, e.g. --shape x=n --shape A=n,n (matrix values: --at A='1,2;3,4')",
    )
    return p


def _parse_at(items: list[str]) -> dict[str, np.ndarray]:
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SymdiffError(f"--at expects NAME=VALUES such as a=2,3; got {item!r}")
        try:
            rows = [[float(v) for v in row.split(",")] for row in text.split(";")]
        except ValueError:
            raise SymdiffError(f"--at {item!r}: values must be comma-separated numbers (rows separated by ';')") from None
        if len(rows) > 1:  # a matrix, row by row
            if len({len(r) for r in rows}) != 1:
                raise SymdiffError(f"--at {item!r}: every row of a matrix needs the same number of values")
            values[name] = np.asarray(rows)
            continue
        numbers = rows[0]
        values[name] = np.asarray(numbers[0] if len(numbers) == 1 else numbers)
    return values


def _parse_shapes(items: list[str]) -> dict | None:
    """``--shape x=n --shape A=n,n`` -> the ``shapes=`` dict of derive (None when there is none)."""
    if not items:
        return None
    shapes = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise SymdiffError(f"--shape expects NAME=DIMS such as x=n or A=n,n; got {item!r}")
        dims = [d.strip() for d in text.split(",") if d.strip()]
        shapes[name.strip()] = tuple(int(d) if d.isdigit() else d for d in dims)
    return shapes


def _format(value) -> str:
    """NumPy's style for each number, single spaces between them: ``[-12. -8.]``."""
    value = np.asarray(value)
    if value.ndim == 0:
        return np.array2string(value)
    return "[" + " ".join(_format(v) for v in value) + "]"


def _labelled_values(d, inputs):
    """(label, value) per distinct derivative entry; order 1 sums over broadcasting as d(...) does."""
    p = d._program
    if hasattr(p, "combos"):  # array derivative: one block per wrt combination
        _, entries = d._compute((), inputs)
        for combo, value in zip(p.combos, entries):
            yield d._label(0, combo), value
        return
    if p.order == 1:
        rows = d.__class__.__call__(d, **inputs)
        rows = rows if p.captured.vector else (rows,)
        for o, row in enumerate(rows):
            row = (row,) if d._single else row
            for i, value in enumerate(row):
                yield d._label(o, (i,)), value
        return
    _, entries = d._run("values_entries", (), inputs)
    for (o, combo), value in zip(p.keys, entries):
        yield d._label(o, combo), value


def run(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    from ._derive import derive

    args = build_parser().parse_args(argv)
    try:
        wrt = args.wrt[0] if args.wrt and len(args.wrt) == 1 else args.wrt
        d = derive(args.expression, wrt, order=args.order, simplify=not args.no_simplify,
                   dtype=args.dtype, device=args.device, shapes=_parse_shapes(args.shape))
        print(d.latex() if args.latex else d)
        if args.source:
            print(d.source, end="")
        if args.at or args.check:
            inputs = _parse_at(args.at)
            if args.at:
                for label, value in _labelled_values(d, inputs):
                    print(f"{label} = {_format(value)}")
            if args.check:
                print(d.check(**inputs))
    except SymdiffError as exc:
        print(f"symdiff: error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``symdiff`` console script."""
    sys.exit(run(argv))
