"""The exceptions a user can cause. Every one derives from :class:`SymdiffError`."""

from __future__ import annotations

__all__ = [
    "SymdiffError",
    "ParseError",
    "CaptureError",
    "DeviceError",
    "DtypeError",
    "ShapeError",
    "InputError",
    "CrossCheckError",
    "LoweringError",
]


class SymdiffError(ValueError):
    """Base class of every error a user of symdiff can cause.

    It subclasses :class:`ValueError`, so ``except ValueError`` catches it too.

    >>> import symdiff as sd
    >>> issubclass(sd.ParseError, sd.SymdiffError)
    True
    """


class ParseError(SymdiffError):
    """The expression text is not part of symdiff's expression language.

    Attributes:
        text: the text that was parsed (shortened when very long).
        position: 0-based offset of the offending character in ``text``.
    """

    def __init__(self, message: str, text: str, position: int):
        self.text = text
        self.position = position
        shown = text if len(text) <= 80 else text[:77] + "..."
        super().__init__(f"{message} at column {position} in {shown!r}")


class CaptureError(SymdiffError):
    """An expression (SymPy object or Python callable) could not be captured."""


class DeviceError(SymdiffError):
    """The requested device does not exist on this machine."""


class DtypeError(SymdiffError):
    """An unknown or unsupported dtype was requested."""


class ShapeError(SymdiffError):
    """Input shapes do not broadcast together (or do not fit the derivative)."""


class InputError(SymdiffError):
    """Missing, extra or non-numeric inputs to a compiled derivative."""


class LoweringError(SymdiffError):
    """A SymPy expression contains a function symdiff cannot compile to JAX."""


class CrossCheckError(SymdiffError):
    """The symbolic derivative disagrees with JAX autodiff or finite differences.

    Attributes:
        report: the :class:`~symdiff.CheckReport` describing the disagreement.
    """

    def __init__(self, report):
        self.report = report
        super().__init__(str(report))
