"""Text -> array expressions, for ``derive(..., shapes=...)``. The text is never evaluated.

The language is the scalar one (``docs/language.md``) plus ``@``, the postfix
``.T`` and the array functions ``sum(X[, axis]) mean(X[, axis]) dot outer
trace det logdet inv diag norm logsumexp softmax``. Names listed in
``shapes`` are :class:`~symdiff._array_ir.ArraySymbol`; other names are real
scalars. Precedence is Python's: ``**`` binds tighter than unary minus, and
``* / @`` share one left-associative level.

The parser is recursive descent, run on symdiff's deep-stack thread, with a
nesting limit. Postfix operators are parsed by :meth:`_ArrayParser.postfix`,
the place to add indexing.

>>> from symdiff._array_ir import ArraySymbol, Dim
>>> n = Dim("n")
>>> print(parse_array("x @ A @ x", {"x": ArraySymbol("x", (n,)), "A": ArraySymbol("A", (n, n))}))
A.T @ x @ x
"""

from __future__ import annotations

import keyword
import re

import sympy

from . import _array_ir as ir
from ._array_index import parse_subscript
from ._deep import call_deep
from ._errors import ParseError, ShapeError
from ._functions import CONSTANTS, FUNCTIONS

__all__ = ["parse_array", "ARRAY_FUNCTIONS"]

MAX_TEXT_LENGTH = 1_000_000
MAX_DEPTH = 3_000  # as the scalar parser: 1,000 levels work
_MAX_EXPONENT = 10_000  # largest exact integer power of numbers computed while parsing

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^@(),\[\]:])|(?P<dot>\.)|(?P<bad>\S))"
)


def _axis_arg(value, text, pos) -> int:
    if not (isinstance(value, sympy.Integer) or (isinstance(value, sympy.Mul) and value.is_Integer)):
        raise ParseError("the axis must be an integer literal", text, pos)
    return int(value)


# name -> (builder(args, text, pos), allowed arities)
ARRAY_FUNCTIONS = {
    "sum": (lambda a, t, p: ir.reduce_sum(a[0], None if len(a) == 1 else _axis_arg(a[1], t, p)), (1, 2)),
    "mean": (lambda a, t, p: ir.mean(a[0], None if len(a) == 1 else _axis_arg(a[1], t, p)), (1, 2)),
    "dot": (lambda a, t, p: ir.dot(a[0], a[1]), (2,)),
    "outer": (lambda a, t, p: ir.outer(a[0], a[1]), (2,)),
    "trace": (lambda a, t, p: ir.trace(a[0]), (1,)),
    "det": (lambda a, t, p: ir.det(a[0]), (1,)),
    "logdet": (lambda a, t, p: ir.logdet(a[0]), (1,)),
    "inv": (lambda a, t, p: ir.inv(a[0]), (1,)),
    "diag": (lambda a, t, p: ir.diag(a[0]), (1,)),
    "norm": (lambda a, t, p: ir.norm(a[0]), (1,)),
    "logsumexp": (lambda a, t, p: ir.logsumexp(a[0]), (1,)),
    "softmax": (lambda a, t, p: ir.softmax(a[0]), (1,)),
}


class _ArrayParser:
    def __init__(self, text: str, symbols: dict):
        self.text = text
        self.symbols = dict(symbols)
        self.tokens = self._tokenize()
        self.i = 0
        self.depth = 0

    def fail(self, message, pos):
        raise ParseError(message, self.text, pos)

    def _tokenize(self):
        out, pos, text = [], 0, self.text
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                break
            kind = m.lastgroup
            start = m.start(kind)
            if kind == "bad":
                ch = m.group(kind)
                reason = {"[": "subscripts are not supported", "%": "the modulo operator '%' is not supported",
                          "=": "assignments and keyword arguments are not part of the expression language"}
                self.fail(f"unexpected {ch!r}" + (f": {reason[ch]}" if ch in reason else ""), start)
            out.append((kind, m.group(kind), start))
            pos = m.end()
        out.append(("end", "", len(text)))
        return out

    def peek(self):
        return self.tokens[self.i]

    def take(self):
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text):
        tok = self.take()
        if tok[1] != text:
            self.fail(f"expected {text!r}, got {tok[1]!r}" if tok[0] != "end" else f"expected {text!r}", tok[2])
        return tok

    def guard(self, pos, build, *args):
        try:
            return build(*args)
        except ShapeError:
            raise
        except (ValueError, ArithmeticError, TypeError) as exc:
            self.fail(f"cannot build this part of the expression ({type(exc).__name__}: {exc})"[:300], pos)

    def run(self):
        if not self.text.strip():
            self.fail("empty expression", 0)
        value = self.sum()
        tok = self.peek()
        if tok[0] != "end":
            self.fail(f"unexpected {tok[1]!r}", tok[2])
        return value

    def sum(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"expression nested more than {MAX_DEPTH} levels deep", self.peek()[2])
        left = self.product()
        terms = [left]
        while self.peek()[1] in ("+", "-"):
            _, op, pos = self.take()
            right = self.product()
            terms.append(right if op == "+" else -right)
            ir.broadcast_shapes([ir.shape_of(t) for t in terms[-2:]], op)
        self.depth -= 1
        return terms[0] if len(terms) == 1 else ir.elementwise(sympy.Add(*terms), "+")

    def product(self):
        left = self.unary()
        while self.peek()[1] in ("*", "/", "@"):
            _, op, pos = self.take()
            right = self.unary()
            if op == "@":
                left = ir.matmul(left, right)
            else:
                ir.broadcast_shapes([ir.shape_of(left), ir.shape_of(right)], op)
                if op == "/" and right == 0:
                    self.fail("division by zero", pos)
                left = self.guard(pos, sympy.Mul if op == "*" else (lambda a, b: a / b), left, right)
        return left

    def unary(self):
        tok = self.peek()
        if tok[1] in ("+", "-"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.fail(f"expression nested more than {MAX_DEPTH} levels deep", tok[2])
            value = self.unary()
            self.depth -= 1
            return -value if tok[1] == "-" else value
        return self.power()

    def power(self):
        base = self.postfix()
        tok = self.peek()
        if tok[1] in ("**", "^"):
            self.take()
            exponent = self.unary()
            ir.broadcast_shapes([ir.shape_of(base), ir.shape_of(exponent)], "**")
            if base.is_number and exponent.is_number and exponent.is_Rational and abs(exponent) > _MAX_EXPONENT:
                self.fail(f"exponent {exponent} is too large to compute exactly", tok[2])
            return self.guard(tok[2], sympy.Pow, base, exponent)
        return base

    def postfix(self):
        """An atom followed by postfix operators (``.T``; indexing would go here)."""
        value = self.atom()
        while self.peek()[0] == "dot" or self.peek()[1] == "[":
            if self.peek()[1] == "[":  # constant indices and slices: symdiff._array_index
                value = parse_subscript(self, value)
                continue
            _, _, pos = self.take()
            name = self.take()
            if name[1] != "T" or name[0] != "name":
                self.fail("unexpected '.': '.T' is the only attribute of the expression language", pos)
            value = ir.transpose(value)
        return value

    def atom(self):
        kind, text, pos = self.take()
        if kind == "number":
            nxt = self.peek()
            if nxt[0] == "name" and nxt[2] == pos + len(text):
                self.fail(f"implicit multiplication is not supported: write {text}*{nxt[1]}", nxt[2])
            if any(c in text for c in ".eE"):
                mantissa, _, exponent = text.lower().partition("e")
                if exponent and abs(int(exponent)) > 400:
                    self.fail(f"exponent of the number {text[:40]!r} is out of range", pos)
                return sympy.Float(text)
            if len(text) > 1000:
                self.fail("number literal longer than 1000 digits", pos)
            return sympy.Integer(int(text))
        if kind == "name":
            if self.peek()[1] == "(":
                return self.call(text, pos)
            if keyword.iskeyword(text):
                self.fail(f"{text!r} is a Python keyword, not part of the expression language", pos)
            if text in FUNCTIONS or text in ARRAY_FUNCTIONS:
                self.fail(f"function {text!r} must be called with arguments, as in {text}(x)", pos)
            if text in CONSTANTS:
                return CONSTANTS[text]
            if text not in self.symbols:
                self.symbols[text] = sympy.Symbol(text, real=True)
            return self.symbols[text]
        if text == "(":
            value = self.sum()
            self.expect(")")
            return value
        if kind == "end":
            self.fail("unexpected end of the expression", pos)
        self.fail(f"unexpected {text!r}: expected a number, a name or '('", pos)

    def call(self, name, pos):
        self.expect("(")
        args = []
        if self.peek()[1] == ")":
            self.fail(f"missing argument in {name}()", self.peek()[2])
        while True:
            args.append(self.sum())
            tok = self.take()
            if tok[1] == ")":
                break
            if tok[1] != ",":
                self.fail(f"expected ',' or ')' in the call of {name}()", tok[2])
        if name in ARRAY_FUNCTIONS:
            build, arities = ARRAY_FUNCTIONS[name]
            if len(args) not in arities:
                self.fail(f"{name}() takes {' or '.join(map(str, arities))} arguments, got {len(args)}", pos)
            return build(args, self.text, pos)
        if name not in FUNCTIONS:
            known = ", ".join(sorted(set(FUNCTIONS) | set(ARRAY_FUNCTIONS)))
            self.fail(f"unknown function {name!r}; known functions: {known}", pos)
        builder, arities = FUNCTIONS[name]
        if len(args) not in arities:
            self.fail(f"{name}() takes {' or '.join(map(str, arities))} arguments, got {len(args)}", pos)
        ir.broadcast_shapes([ir.shape_of(a) for a in args], name)
        return self.guard(pos, builder, *args)


def parse_array(text: str, symbols: dict) -> sympy.Expr:
    """Parse array expression text; ``symbols`` maps names to their (array) symbols.

    Errors raise :class:`~symdiff.ParseError` (with ``position``) or
    :class:`~symdiff.ShapeError` (shapes that cannot combine).
    """
    if not isinstance(text, str):
        raise ParseError(f"expected expression text, got {type(text).__name__}", repr(text)[:80], 0)
    if len(text) > MAX_TEXT_LENGTH:
        raise ParseError(f"array expression text is longer than {MAX_TEXT_LENGTH:,} characters", text,
                         MAX_TEXT_LENGTH)
    try:
        return call_deep(lambda: _ArrayParser(text, symbols).run())
    except RecursionError:
        raise ParseError("expression too deeply nested to process", text, 0) from None
