"""Text -> SymPy, by symdiff's own parser. The text is never evaluated.

The language (see ``docs/language.md``): numbers, ASCII names, ``+ - * / ** ^``,
unary ``+ -``, parentheses and calls of a fixed function list. The parser is an
operator-precedence (shunting-yard) loop with explicit stacks, so nesting depth
costs heap memory, not Python recursion, and long sums or products are built
with one n-ary ``Add``/``Mul`` instead of a quadratic chain of binary ones.

Nothing the text asks for may hang or exhaust memory: texts over
``MAX_TEXT_LENGTH`` and nesting over ``MAX_DEPTH`` are refused at once; exact
numbers are bounded (``MAX_NUMBER_BITS``, checked with integer arithmetic before
SymPy computes them), floats are bounded near 1e400, exact roots of huge numbers
are refused (SymPy would factor them), subtrees deeper than ``_EVALUATE_DEPTH``
are built without SymPy's automatic evaluation (which is cubic in the depth),
and long sums are collected in Python. Any arithmetic failure inside SymPy
becomes a :class:`ParseError` at the operator's position.
"""

from __future__ import annotations

import keyword
import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction

import sympy

from ._deep import call_deep
from ._errors import ParseError
from ._functions import CONSTANTS, FUNCTIONS

__all__ = ["parse", "MAX_TEXT_LENGTH", "MAX_DEPTH"]

MAX_TEXT_LENGTH = 1_000_000  # characters; a megabyte of text is refused at once
MAX_DEPTH = 3_000  # nesting levels of the expression tree
MAX_INTEGER_DIGITS = 1_000
MAX_NUMBER_BITS = 10_000  # largest exact rational (numerator or denominator) the parser will compute
MAX_POWER_BITS = MAX_NUMBER_BITS  # kept for compatibility
MAX_FLOAT_EXPONENT = 400  # largest decimal exponent of a float literal (float64 ends near 1e308)
_MAX_FLOAT_BITS = 1_400  # binary exponent of about 1e420: no float computed while parsing is larger
_COLLECT_MIN_TERMS = 64  # longer sums are pre-collected in Python (see _collect_terms)
_EVALUATE_DEPTH = 64  # deeper subexpressions are built without SymPy's automatic evaluation
_MAX_ROOT_BITS = 1_000  # larger exact bases of fractional powers stay unevaluated

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_SPACE = re.compile(r"[ \t\r\n]+")
_DIGITS = frozenset("0123456789")  # str.isdigit() accepts Unicode digits such as "¹"

# Characters with a known meaning elsewhere, and why they are refused here.
_REFUSED = {
    ".": "attribute access is not part of the expression language",
    "[": "subscripts are not part of the expression language",
    "]": "subscripts are not part of the expression language",
    "{": "braces are not part of the expression language",
    "}": "braces are not part of the expression language",
    "=": "assignments and keyword arguments are not part of the expression language",
    "'": "strings are not part of the expression language",
    '"': "strings are not part of the expression language",
    ":": "lambdas and slices are not part of the expression language",
    ";": "statements are not part of the expression language",
    "%": "the modulo operator '%' is not supported",
    "@": "the matrix product '@' is not supported",
    "<": "comparisons are not supported",
    ">": "comparisons are not supported",
    "!": "comparisons are not supported",
    "&": "bitwise operators are not supported",
    "|": "bitwise operators are not supported",
    "~": "bitwise operators are not supported",
    "_": "names must start with an ASCII letter",
    "\\": "backslashes are not part of the expression language",
    "#": "comments are not part of the expression language",
    "$": "'$' is not part of the expression language",
    "?": "'?' is not part of the expression language",
    "`": "'`' is not part of the expression language",
}

# Binary operators: precedence, right-associative.
_BINARY = {"+": (1, False), "-": (1, False), "*": (2, False), "/": (2, False), "**": (4, True)}
_UNARY_PRECEDENCE = 3


@dataclass
class _Token:
    kind: str  # "number", "name", "op", "end"
    text: str
    pos: int


@dataclass
class _Sum:
    """A sum being collected, so a+b+c+... becomes one Add."""

    terms: list
    depth: int
    pos: int = 0


@dataclass
class _Product:
    """A product being collected, so a*b/c*... becomes one Mul."""

    factors: list
    depth: int
    pos: int = 0


@dataclass
class _Group:
    """An open parenthesis on the operator stack: a group or a function call."""

    pos: int
    function: str | None = None
    args: list = field(default_factory=list)


def _tokenize(text: str):
    pos, n = 0, len(text)
    while pos < n:
        m = _SPACE.match(text, pos)
        if m:
            pos = m.end()
            continue
        ch = text[pos]
        if ch in _DIGITS or (ch == "." and pos + 1 < n and text[pos + 1] in _DIGITS):
            m = _NUMBER.match(text, pos)
            end = m.end()
            if end < n:
                nxt = text[end]
                if nxt in "eE" and (end + 1 == n or text[end + 1] in "+-"):
                    raise ParseError(
                        f"malformed number: the exponent of {text[pos:end + 2]!r} has no digits", text, end
                    )
                if nxt == "_" or (nxt.isdigit() and text[end - 1] in "eE"):
                    raise ParseError("underscores in numbers are not supported", text, end)
                if nxt in "xXoObB" and m.group() == "0":
                    raise ParseError("hexadecimal, octal and binary numbers are not supported", text, end)
                if nxt in "jJ" and (end + 1 == n or not (text[end + 1].isalnum() or text[end + 1] == "_")):
                    raise ParseError("complex numbers are not supported", text, end)
                if nxt.isalpha():
                    raise ParseError(
                        f"implicit multiplication is not supported: write {m.group()}*{nxt}", text, end
                    )
                if nxt == ".":
                    raise ParseError("malformed number", text, end)
            yield _Token("number", m.group(), pos)
            pos = end
        elif ch.isascii() and ch.isalpha():
            m = _NAME.match(text, pos)
            yield _Token("name", m.group(), pos)
            pos = m.end()
        elif text.startswith("**", pos):
            yield _Token("op", "**", pos)
            pos += 2
        elif text.startswith("//", pos):
            raise ParseError("floor division '//' is not supported", text, pos)
        elif ch in "+-*/^(),":
            yield _Token("op", "**" if ch == "^" else ch, pos)
            pos += 1
        elif ch in _REFUSED:
            raise ParseError(f"unexpected {ch!r}: {_REFUSED[ch]}", text, pos)
        elif not ch.isascii():
            raise ParseError(f"unexpected character {ch!r}: only ASCII text is allowed", text, pos)
        else:
            raise ParseError(f"unexpected character {ch!r}", text, pos)
    yield _Token("end", "", n)


def _depth(item) -> int:
    if isinstance(item, (_Sum, _Product)):
        return item.depth
    return item[1]


def _bits(n: int) -> int:
    return abs(n).bit_length()


def _too_large(message: str, text: str, pos: int):
    raise ParseError(
        f"{message} is too large to compute exactly (more than {MAX_NUMBER_BITS:,} bits); "
        "write one of its numbers as a float, e.g. 10.0 instead of 10",
        text,
        pos,
    )


def _value(item, text: str = "") -> sympy.Expr:
    """Materialise a stack item into a SymPy expression.

    Exact rational arithmetic is bounded before SymPy does it: a product's size
    is the sum of its factors' sizes, a sum's is at most its largest numerator
    plus the sizes of all denominators.
    """
    if isinstance(item, _Sum):
        rationals = [t for t in item.terms if t.is_Rational]
        if len(rationals) > 1:
            bits = max(_bits(r.p) for r in rationals) + sum(_bits(r.q) - 1 for r in rationals)
            if bits > MAX_NUMBER_BITS + len(rationals).bit_length():
                _too_large("the sum of these numbers", text, item.pos)
        return _guarded(sympy.Add, _collect_terms(item.terms), text, item.pos)
    if isinstance(item, _Product):
        rationals = [f.as_coeff_Mul()[0] if f.is_Mul else f for f in item.factors]
        rationals = [r for r in rationals if r.is_Rational and not (r.q == 1 and abs(r.p) == 1)]
        if len(rationals) > 1:
            bits = max(sum(_bits(r.p) for r in rationals), sum(_bits(r.q) for r in rationals))
            if bits > MAX_NUMBER_BITS:
                _too_large("the product of these numbers", text, item.pos)
        if len(item.factors) == 2:
            fast = _coefficient_times_symbol(*item.factors)
            if fast is not None:
                return fast
        return _guarded(sympy.Mul, item.factors, text, item.pos)
    return item[0]


def _coefficient_times_symbol(a: sympy.Expr, b: sympy.Expr):
    """``a*b`` built directly when it is ``Rational * Symbol`` (either order), else None.

    ``Mul(3, x)`` costs SymPy ~100 us of assumption deduction per fresh number; a
    generated sum of 10**5 terms ``i*x_k`` would take half a minute. The result is
    exactly what ``Mul`` builds: the same args, equal and hash-equal.
    """
    if b.is_Rational and a.is_Symbol:
        a, b = b, a
    if a.is_Rational and b.is_Symbol and a not in (0, 1):
        return sympy.Mul._from_args((a, b))
    return None


def _collect_terms(terms: list) -> list:
    """Pre-collect a long sum: numbers summed exactly in Python, ``c*x`` terms grouped per symbol.

    SymPy's ``Add`` does the same collection, but creates a SymPy number per partial
    sum (tens of microseconds each); short sums are left to SymPy unchanged.
    """
    if len(terms) <= _COLLECT_MIN_TERMS:
        return terms
    number = Fraction(0)
    numbers = 0
    per_symbol: dict[sympy.Symbol, Fraction] = {}
    rest = []
    for t in terms:
        if t.is_Rational:
            number += Fraction(t.p, t.q)
            numbers += 1
        elif t.is_Symbol:
            per_symbol[t] = per_symbol.get(t, 0) + 1
        elif t.is_Mul and len(t.args) == 2 and t.args[0].is_Rational and t.args[1].is_Symbol:
            c = t.args[0]
            per_symbol[t.args[1]] = per_symbol.get(t.args[1], 0) + Fraction(c.p, c.q)
        else:
            rest.append(t)
    collected = rest
    for sym, c in per_symbol.items():
        if c == 1:
            collected.append(sym)
        elif c != 0:
            collected.append(sympy.Mul._from_args((sympy.Rational(c.numerator, c.denominator), sym)))
    if numbers:
        collected.append(sympy.Rational(number.numerator, number.denominator))
    return collected


def _guarded(fn, args, text: str, pos: int, **kwargs) -> sympy.Expr:
    """``fn(*args)``, with SymPy's own arithmetic failures reported as a ParseError.

    Floats of absurd magnitude (``10.0**10**300``) are refused here: SymPy's
    functions of them (``exp``) would compute for hours.
    """
    try:
        result = fn(*args, **kwargs)
        if isinstance(result, sympy.Float):
            _, man, exp, bc = result._mpf_
            if man and abs(exp + bc) > _MAX_FLOAT_BITS:
                raise ParseError(
                    "a number here is out of range (about 2**"
                    + (str(exp + bc) if abs(exp + bc) < 10**9 else "(a huge number)")
                    + f"; at most about 1e{MAX_FLOAT_EXPONENT})",
                    text, pos)
        return result
    except ParseError:
        raise
    except (ValueError, ArithmeticError, TypeError, RecursionError) as exc:
        raise ParseError(f"cannot evaluate this part of the expression ({type(exc).__name__}: {exc})"[:300],
                         text, pos) from None


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.symbols: dict[str, sympy.Symbol] = {}
        self.numeric: dict[sympy.Basic, bool] = {}
        self.operands: list = []  # (expr, depth) tuples, _Sum or _Product
        self.operators: list = []  # (op, pos, unary) tuples or _Group

    def fail(self, message: str, pos: int):
        raise ParseError(message, self.text, pos)

    def is_number(self, expr: sympy.Expr) -> bool:
        """``expr.is_number``, memoised: SymPy's recomputes it over the whole tree on every call."""
        memo = self.numeric
        known = memo.get(expr)
        if known is None:
            if expr.is_Atom:
                known = bool(expr.is_number)
            else:
                known = all(self.is_number(a) for a in expr.args)
            memo[expr] = known
        return known

    def value(self, item) -> sympy.Expr:
        return _value(item, self.text)

    def push(self, item, pos: int):
        if _depth(item) > MAX_DEPTH:
            self.fail(f"expression nested more than {MAX_DEPTH} levels deep", pos)
        self.operands.append(item)

    def number(self, tok: _Token):
        t = tok.text
        if any(c in t for c in ".eE"):
            mantissa, _, exponent = t.lower().partition("e")
            if exponent and (len(exponent.lstrip("+-")) > 6 or abs(int(exponent)) > MAX_FLOAT_EXPONENT):
                self.fail(
                    f"exponent of the number {t[:40]!r} is out of range (at most {MAX_FLOAT_EXPONENT} in magnitude)",
                    tok.pos,
                )
            if len(mantissa) > MAX_INTEGER_DIGITS:
                self.fail(f"number literal longer than {MAX_INTEGER_DIGITS} digits", tok.pos)
            value = sympy.Float(t)
        else:
            if len(t) > MAX_INTEGER_DIGITS:
                self.fail(f"number literal longer than {MAX_INTEGER_DIGITS} digits", tok.pos)
            value = sympy.Integer(int(t))
        self.push((value, 1), tok.pos)

    def name(self, tok: _Token, next_tok: _Token):
        name = tok.text
        if next_tok.kind == "op" and next_tok.text == "(":
            if name not in FUNCTIONS:
                hint = "" if not keyword.iskeyword(name) else " (Python keywords are not part of the language)"
                self.fail(f"unknown function {name!r}{hint}; known functions: {', '.join(sorted(FUNCTIONS))}", tok.pos)
            return name
        if name in FUNCTIONS:
            self.fail(f"function {name!r} must be called with arguments, as in {name}(x)", tok.pos)
        if keyword.iskeyword(name):
            self.fail(f"{name!r} is a Python keyword, not part of the expression language", tok.pos)
        if name in CONSTANTS:
            self.push((CONSTANTS[name], 1), tok.pos)
        else:
            sym = self.symbols.get(name)
            if sym is None:
                sym = self.symbols[name] = sympy.Symbol(name, real=True)
            self.push((sym, 1), tok.pos)
        return None

    def apply(self, op: str, pos: int, unary: bool):
        if unary:
            item = self.operands.pop()
            if op == "+":
                self.operands.append(item)
                return
            self.push((_guarded(sympy.Mul, (sympy.Integer(-1), self.value(item)), self.text, pos), _depth(item) + 1), pos)
            return
        right = self.operands.pop()
        left = self.operands.pop()
        depth = max(_depth(left), _depth(right)) + 1
        if op in "+-":
            term = self.value(right) if op == "+" else -self.value(right)
            if isinstance(left, _Sum):
                left.terms.append(term)
                left.depth = max(left.depth, _depth(right) + 1)
                self.push(left, pos)
            else:
                self.push(_Sum([self.value(left), term], depth, pos), pos)
        elif op in "*/":
            factor = (
                self.value(right)
                if op == "*"
                else self.power(self.value(right), sympy.Integer(-1), pos, _depth(right) > _EVALUATE_DEPTH)
            )
            if isinstance(left, _Product):
                left.factors.append(factor)
                left.depth = max(left.depth, _depth(right) + 1)
                self.push(left, pos)
            else:
                self.push(_Product([self.value(left), factor], depth, pos), pos)
        else:
            self.push((self.power(self.value(left), self.value(right), pos, depth > _EVALUATE_DEPTH), depth), pos)

    def power(self, base: sympy.Expr, exponent: sympy.Expr, pos: int, deep: bool = False) -> sympy.Expr:
        """``base**exponent``, refusing exact numbers too large to hold.

        ``deep``: the operands are deeply nested; SymPy's automatic evaluation
        of such a power queries the whole tree (cubic time in the depth), so it
        is built unevaluated unless both operands are numbers.
        """
        if deep and not (self.is_number(base) and self.is_number(exponent)):
            return _guarded(sympy.Pow, (base, exponent), self.text, pos, evaluate=False)
        if exponent.is_Rational:
            coeff = base.as_coeff_Mul()[0] if base.is_Mul else base
            if coeff.is_Rational and not coeff.is_zero:
                size = max(_bits(coeff.p), _bits(coeff.q))
                if size > 1 or abs(coeff) != 1:
                    # |exponent| * log2(size): compared with integer arithmetic, no float of a huge number
                    k = (abs(exponent.p) + exponent.q - 1) // exponent.q
                    if k * (size - 1) > MAX_NUMBER_BITS:
                        _too_large("this power", self.text, pos)
            if (base.is_Float or (not base.is_Rational and self.is_number(base))) and _bits(exponent.p) > 64:
                exponent = sympy.Float(exponent)  # float ** huge integer: SymPy would square 10**k times
            if base.is_Rational and exponent.q != 1 and max(_bits(base.p), _bits(base.q)) > _MAX_ROOT_BITS:
                self._huge_root(pos)
        return _guarded(sympy.Pow, (base, exponent), self.text, pos)

    def _huge_root(self, pos: int):
        # SymPy factors the radicand of an exact root wherever the root is rebuilt (seconds to hours)
        self.fail(
            f"exact roots of numbers larger than {_MAX_ROOT_BITS} bits are not supported; "
            "write the number as a float, e.g. sqrt(1e300) instead of sqrt(10**300)",
            pos,
        )

    def call(self, group: _Group, pos: int):
        builder, arities = FUNCTIONS[group.function]
        if len(group.args) not in arities:
            want = " or ".join(str(a) for a in arities)
            self.fail(
                f"{group.function}() takes {want} argument{'s' if arities != (1,) else ''}, "
                f"got {len(group.args)}",
                group.pos,
            )
        args = [self.value(a) for a in group.args]
        depth = max(_depth(a) for a in group.args) + 1
        if group.function in ("sqrt", "cbrt") and args[0].is_Rational and max(
            _bits(args[0].p), _bits(args[0].q)
        ) > _MAX_ROOT_BITS:
            self._huge_root(group.pos)
        elif group.function in ("gamma", "loggamma") and self.is_number(args[0]) and _guarded(abs, (args[0],), self.text, group.pos) > 1000:
            expr = _guarded(builder, args, self.text, group.pos, evaluate=False)  # exact gamma of a huge integer never ends
        else:
            deep = depth > _EVALUATE_DEPTH and not all(self.is_number(a) for a in args)
            if deep and group.function != "log":  # see power(): deep arguments are not re-evaluated
                expr = _guarded(builder, args, self.text, group.pos, evaluate=False)
            elif deep:
                expr = (
                    _guarded(sympy.log, args[:1], self.text, group.pos, evaluate=False)
                    if len(args) == 1
                    else _guarded(
                        sympy.Mul,
                        (sympy.log(args[0], evaluate=False), sympy.Pow(sympy.log(args[1]), -1, evaluate=False)),
                        self.text,
                        group.pos,
                    )
                )
            else:
                expr = _guarded(builder, args, self.text, group.pos)
        self.push((expr, depth), pos)

    def reduce_until_group(self, pos: int) -> _Group:
        while self.operators:
            top = self.operators[-1]
            if isinstance(top, _Group):
                return top
            self.operators.pop()
            self.apply(*top)
        return None

    def run(self) -> sympy.Expr:
        text = self.text
        tokens = list(_tokenize(text))
        expect_operand = True
        pending_call = None
        groups = 0
        for i, tok in enumerate(tokens):
            if expect_operand:
                if tok.kind == "number":
                    self.number(tok)
                    expect_operand = False
                elif tok.kind == "name":
                    pending_call = self.name(tok, tokens[i + 1])
                    expect_operand = pending_call is not None
                    if pending_call is not None:
                        pending_call = (pending_call, tok.pos)
                elif tok.text == "(":
                    groups += 1
                    if groups > MAX_DEPTH:
                        self.fail(f"expression nested more than {MAX_DEPTH} levels deep", tok.pos)
                    if pending_call is not None:
                        self.operators.append(_Group(pending_call[1], pending_call[0]))
                        pending_call = None
                    else:
                        self.operators.append(_Group(tok.pos))
                elif tok.text in ("+", "-"):
                    self.operators.append((tok.text, tok.pos, True))
                elif tok.text == ")" and self.operators and isinstance(self.operators[-1], _Group):
                    group = self.operators[-1]
                    what = f"{group.function}()" if group.function else "'()'"
                    self.fail(f"missing argument in {what}" if group.function else "empty parentheses", tok.pos)
                elif tok.kind == "end":
                    self.fail("unexpected end of the expression" if text.strip() else "empty expression", tok.pos)
                else:
                    self.fail(f"unexpected {tok.text!r}: expected a number, a name or '('", tok.pos)
                continue
            # expecting an operator
            if tok.kind == "op" and tok.text in _BINARY:
                prec, right = _BINARY[tok.text]
                while self.operators and not isinstance(self.operators[-1], _Group):
                    op, _, unary = self.operators[-1]
                    top_prec = _UNARY_PRECEDENCE if unary else _BINARY[op][0]
                    if top_prec > prec or (top_prec == prec and not right):
                        self.operators.pop()
                        self.apply(op, _, unary)
                    else:
                        break
                self.operators.append((tok.text, tok.pos, False))
                expect_operand = True
            elif tok.text in (")", ","):
                group = self.reduce_until_group(tok.pos)
                if group is None:
                    self.fail("unmatched ')'" if tok.text == ")" else "unexpected ','", tok.pos)
                if tok.text == ",":
                    if group.function is None:
                        self.fail("unexpected ',': tuples are not part of the expression language", tok.pos)
                    group.args.append(self.operands.pop())
                    expect_operand = True
                    continue
                self.operators.pop()
                groups -= 1
                if group.function is not None:
                    group.args.append(self.operands.pop())
                    self.call(group, tok.pos)
            elif tok.kind == "end":
                while self.operators:
                    top = self.operators.pop()
                    if isinstance(top, _Group):
                        self.fail("unclosed '('", top.pos)
                    self.apply(*top)
            elif tok.kind == "number":
                self.fail("expected an operator between two values (implicit multiplication is not supported)", tok.pos)
            elif tok.kind == "name":
                if keyword.iskeyword(tok.text):
                    self.fail(f"{tok.text!r} is a Python keyword, not part of the expression language", tok.pos)
                self.fail(f"expected an operator before {tok.text!r} (implicit multiplication is not supported)", tok.pos)
            elif tok.text == "(":
                self.fail("expected an operator before '(' (implicit multiplication is not supported)", tok.pos)
            else:
                self.fail(f"unexpected {tok.text!r}", tok.pos)
        assert len(self.operands) == 1, self.operands
        return self.value(self.operands[0])


def parse(text: str) -> sympy.Expr:
    """Parse expression text into a SymPy expression, without evaluating it.

    Every name becomes a real ``sympy.Symbol``. Errors raise :class:`ParseError`
    with the offending ``position``.

    >>> parse("3*a**3 - b^2")
    3*a**3 - b**2
    >>> parse("x.__class__")
    Traceback (most recent call last):
    ...
    symdiff._errors.ParseError: unexpected '.': attribute access is not part of the expression language at column 1 in 'x.__class__'
    """
    if not isinstance(text, str):
        raise ParseError(f"expected expression text, got {type(text).__name__}", repr(text)[:80], 0)
    if len(text) > MAX_TEXT_LENGTH:
        raise ParseError(
            f"expression text is {len(text):,} characters long, more than the limit of {MAX_TEXT_LENGTH:,}",
            text,
            MAX_TEXT_LENGTH,
        )
    if threading.current_thread().name == _DEEP_THREAD_NAME:
        return _parse_here(text)
    return call_deep(_parse_here, text)  # SymPy recurses while building deeply nested expressions


_DEEP_THREAD_NAME = "symdiff-symbolic"


def _parse_here(text: str) -> sympy.Expr:
    try:
        return _Parser(text).run()
    except RecursionError:
        raise ParseError("expression too deeply nested to process", text, 0) from None
