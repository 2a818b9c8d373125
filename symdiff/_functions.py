"""SymPy function classes for the functions SymPy lacks, and the language's name table.

``sigmoid``, ``softplus``, ``relu`` and a real ``cbrt`` are ordinary SymPy
``Function`` classes: they differentiate, print by name, and evaluate
numerically with ``.evalf()``.
"""

from __future__ import annotations

import sympy

__all__ = ["sigmoid", "softplus", "relu", "cbrt", "FUNCTIONS", "CONSTANTS"]


class sigmoid(sympy.Function):
    """The logistic function ``1 / (1 + exp(-x))``.

    >>> import sympy
    >>> x = sympy.Symbol("x", real=True)
    >>> sigmoid(x).diff(x)
    (1 - sigmoid(x))*sigmoid(x)
    """

    is_real = True

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.Rational(1, 2)
        return None

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


class softplus(sympy.Function):
    """``log(1 + exp(x))``, whose derivative is ``sigmoid(x)``.

    >>> import sympy
    >>> x = sympy.Symbol("x", real=True)
    >>> softplus(x).diff(x)
    sigmoid(x)
    """

    is_real = True

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.log(2)
        return None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


class relu(sympy.Function):
    """``max(x, 0)``; its derivative is ``Heaviside(x, 0)`` (0 at the kink).

    >>> import sympy
    >>> x = sympy.Symbol("x", real=True)
    >>> relu(x).diff(x)
    Heaviside(x, 0)
    """

    is_real = True

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_extended_real:
            return sympy.Max(x, 0)
        return None

    def fdiff(self, argindex=1):
        return sympy.Heaviside(self.args[0], 0)

    def _eval_evalf(self, prec):
        return sympy.Max(self.args[0], 0)._eval_evalf(prec)


class cbrt(sympy.Function):
    """The real cube root: ``cbrt(-8) = -2`` (SymPy's own ``cbrt`` is the principal root).

    >>> import sympy
    >>> cbrt(sympy.Integer(-8))
    -2
    """

    is_real = True

    @classmethod
    def eval(cls, x):
        if x.is_Rational:
            root = sympy.real_root(x, 3)
            if root.is_Rational:
                return root
        return None

    def fdiff(self, argindex=1):
        return 1 / (3 * cbrt(self.args[0]) ** 2)

    def _eval_evalf(self, prec):
        x = self.args[0]._eval_evalf(prec)
        if x is None or not x.is_number:
            return None
        return (sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3))._eval_evalf(prec)


def _log(x, base=None):
    return sympy.log(x) if base is None else sympy.log(x) / sympy.log(base)


# name -> (builder, allowed argument counts). The parser's whole vocabulary of calls.
FUNCTIONS: dict[str, tuple[object, tuple[int, ...]]] = {
    "sin": (sympy.sin, (1,)),
    "cos": (sympy.cos, (1,)),
    "tan": (sympy.tan, (1,)),
    "cot": (sympy.cot, (1,)),
    "sec": (sympy.sec, (1,)),
    "csc": (sympy.csc, (1,)),
    "asin": (sympy.asin, (1,)),
    "acos": (sympy.acos, (1,)),
    "atan": (sympy.atan, (1,)),
    "atan2": (sympy.atan2, (2,)),
    "sinh": (sympy.sinh, (1,)),
    "cosh": (sympy.cosh, (1,)),
    "tanh": (sympy.tanh, (1,)),
    "asinh": (sympy.asinh, (1,)),
    "acosh": (sympy.acosh, (1,)),
    "atanh": (sympy.atanh, (1,)),
    "exp": (sympy.exp, (1,)),
    "log": (_log, (1, 2)),
    "sqrt": (sympy.sqrt, (1,)),
    "cbrt": (cbrt, (1,)),
    "abs": (sympy.Abs, (1,)),
    "sign": (sympy.sign, (1,)),
    "erf": (sympy.erf, (1,)),
    "erfc": (sympy.erfc, (1,)),
    "gamma": (sympy.gamma, (1,)),
    "loggamma": (sympy.loggamma, (1,)),
    "sigmoid": (sigmoid, (1,)),
    "softplus": (softplus, (1,)),
    "relu": (relu, (1,)),
    "min": (sympy.Min, (2,)),
    "max": (sympy.Max, (2,)),
}

CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
