"""The expression language of API.md section 5, and ParseError's position and message."""

from __future__ import annotations

import pytest
import sympy

import symdiff as sd
from symdiff._functions import FUNCTIONS, cbrt, relu, sigmoid, softplus
from symdiff._parse import parse

R = lambda name: sympy.Symbol(name, real=True)  # noqa: E731
x, y, z, a, b, c = (R(n) for n in "xyzabc")


# ---- numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("2", sympy.Integer(2)),
        ("2.5", sympy.Float(2.5)),
        (".5", sympy.Float(0.5)),
        ("1e-3", sympy.Float(0.001)),
        ("1.5E+4", sympy.Float(15000)),
        ("1E3", sympy.Float(1000)),
        ("2.", sympy.Float(2)),
        ("0.25e2", sympy.Float(25)),
        ("007", sympy.Integer(7)),
        ("12345678901234567890123", sympy.Integer(12345678901234567890123)),
    ],
)
def test_numbers(text, value):
    got = parse(text)
    assert got == value
    assert got.is_Integer == value.is_Integer


def test_integer_arithmetic_is_exact():
    assert parse("1/3") == sympy.Rational(1, 3)
    assert parse("2**-2") == sympy.Rational(1, 4)
    assert parse("10**30") == sympy.Integer(10) ** 30


# ---- names -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["x", "theta_1", "x2", "x10", "alpha_beta_", "X", "e", "ln", "Pi", "a_1_b"])
def test_names_are_real_symbols(name):
    got = parse(name)
    assert got == sympy.Symbol(name, real=True)
    assert got.is_real


def test_same_name_same_symbol():
    e = parse("x*x + theta_1 - theta_1")
    assert e == x**2


def test_constants():
    assert parse("pi") is sympy.pi
    assert parse("E") is sympy.E
    assert parse("e") == R("e")  # only capital E is Euler's number
    assert parse("E**x") == sympy.exp(x)


# ---- operators and precedence ----------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x + y", x + y),
        ("x - y", x - y),
        ("x * y", x * y),
        ("x / y", x / y),
        ("x ** y", x**y),
        ("x ^ y", x**y),
        ("-x**2", -(x**2)),
        ("-x^2", -(x**2)),
        ("(-x)**2", x**2),
        ("2**3**2", sympy.Integer(512)),
        ("2^3^2", sympy.Integer(512)),
        ("x**y**z", x ** (y**z)),
        ("(x**y)**z", (x**y) ** z),
        ("a - b - c", a - b - c),
        ("a / b / c", a / (b * c)),
        ("a - (b - c)", a - b + c),
        ("a + b * c", a + b * c),
        ("(a + b) * c", (a + b) * c),
        ("a * b ** c", a * b**c),
        ("a / b * c", a * c / b),
        ("+x", x),
        ("--x", x),
        ("-+-x", x),
        ("- - - x", -x),
        ("2*-x", -2 * x),
        ("x**-2", x**-2),
        ("x**-y**z", x ** (-(y**z))),
        ("2**-x", 2 ** (-x)),
        ("-2**2", sympy.Integer(-4)),
        ("-x*y", -x * y),
        ("x*-y*z", -x * y * z),
        ("(((x)))", x),
        ("  x\t+\ny  ", x + y),
        ("x**(1/2)", sympy.sqrt(x)),
        ("1 - -1", sympy.Integer(2)),
    ],
)
def test_operators_and_precedence(text, expected):
    assert sympy.simplify(parse(text) - expected) == 0
    assert parse(text) == expected


# ---- functions -------------------------------------------------------------

UNARY = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "cot": sympy.cot, "sec": sympy.sec, "csc": sympy.csc,
    "asin": sympy.asin, "acos": sympy.acos, "atan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh,
    "tanh": sympy.tanh, "asinh": sympy.asinh, "acosh": sympy.acosh, "atanh": sympy.atanh, "exp": sympy.exp,
    "log": sympy.log, "sqrt": sympy.sqrt, "cbrt": cbrt, "abs": sympy.Abs, "sign": sympy.sign, "erf": sympy.erf,
    "erfc": sympy.erfc, "gamma": sympy.gamma, "loggamma": sympy.loggamma, "sigmoid": sigmoid,
    "softplus": softplus, "relu": relu,
}
BINARY = {"atan2": sympy.atan2, "min": sympy.Min, "max": sympy.Max}
ALL_FUNCTIONS = "sin cos tan cot sec csc asin acos atan atan2 sinh cosh tanh asinh acosh atanh exp log sqrt cbrt abs sign erf erfc gamma loggamma sigmoid softplus relu min max".split()


def test_function_list_is_the_contract():
    assert set(FUNCTIONS) == set(ALL_FUNCTIONS)
    assert set(UNARY) | set(BINARY) == set(ALL_FUNCTIONS)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_functions(name):
    assert parse(f"{name}(x)") == UNARY[name](x)
    assert parse(f"{name}(x + 1)") == UNARY[name](x + 1)
    assert parse(f"2*{name}( x )**2") == 2 * UNARY[name](x) ** 2


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_functions(name):
    assert parse(f"{name}(x, y)") == BINARY[name](x, y)
    assert parse(f"{name}(x*y, y - 1)") == BINARY[name](x * y, y - 1)


def test_log_with_base():
    assert parse("log(x)") == sympy.log(x)
    assert sympy.simplify(parse("log(x, 2)") - sympy.log(x) / sympy.log(2)) == 0
    assert sympy.simplify(parse("log(8, 2)") - 3) == 0
    assert sympy.simplify(parse("log(x, y)") - sympy.log(x) / sympy.log(y)) == 0


def test_nested_calls():
    assert parse("sin(cos(exp(x)))") == sympy.sin(sympy.cos(sympy.exp(x)))
    assert parse("max(min(x, y), atan2(y, x))") == sympy.Max(sympy.Min(x, y), sympy.atan2(y, x))


def test_cbrt_is_the_real_cube_root():
    assert parse("cbrt(-8)") == -2
    assert parse("cbrt(27)") == 3
    assert abs(float(parse("cbrt(-2)").evalf()) + 2 ** (1 / 3)) < 1e-12


def test_new_functions_evaluate_numerically_and_print_by_name():
    assert str(parse("sigmoid(x) + softplus(x) + relu(x)")) == "relu(x) + sigmoid(x) + softplus(x)"
    assert abs(float(sigmoid(sympy.Float(0.3)).evalf()) - 1 / (1 + 2.718281828459045 ** -0.3)) < 1e-12
    assert parse("sigmoid(0)") == sympy.Rational(1, 2)
    assert parse("relu(-3)") == 0 and parse("relu(2.5)") == 2.5


@pytest.mark.parametrize(
    "text, arity_word",
    [
        ("sin(x, y)", "1 argument"),
        ("exp(x, y, z)", "1 argument"),
        ("atan2(x)", "2 arguments"),
        ("atan2(x, y, z)", "2 arguments"),
        ("min(x)", "2 arguments"),
        ("max(x, y, z)", "2 arguments"),
        ("log(x, y, z)", "1 or 2 arguments"),
    ],
)
def test_arity_is_checked(text, arity_word):
    with pytest.raises(sd.ParseError) as info:
        parse(text)
    assert arity_word in str(info.value)
    assert info.value.position == 0  # the function name
    assert info.value.text == text


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
def test_function_name_without_call_is_an_error(name):
    with pytest.raises(sd.ParseError) as info:
        parse(f"1 + {name}")
    assert info.value.position == 4
    assert name in str(info.value)


# ---- ParseError: type, attributes, positions, messages ----------------------


def test_parse_error_hierarchy():
    assert issubclass(sd.ParseError, sd.SymdiffError)
    assert issubclass(sd.ParseError, ValueError)


# (text, 0-based position of the problem, a word the message must contain)
BAD = [
    ("", 0, "empty"),
    ("   ", 3, "empty"),
    ("x +", 3, "end"),
    ("(x + 1", 0, "unclosed"),
    ("x + 1)", 5, "unmatched"),
    ("()", 1, "empty"),
    (")", 0, "unexpected"),
    ("x y", 2, "operator"),
    ("2x", 1, "implicit multiplication"),
    ("2 x", 2, "implicit multiplication"),
    ("x(2)", 0, "unknown function"),
    ("(x)(y)", 3, "implicit multiplication"),
    ("3 4", 2, "operator"),
    ("foo(x)", 0, "unknown function"),
    ("Sin(x)", 0, "unknown function"),
    ("x % 2", 2, "%"),
    ("x // 2", 2, "//"),
    ("x @ y", 2, "@"),
    ("x < y", 2, "comparison"),
    ("x > y", 2, "comparison"),
    ("x == y", 2, "="),
    ("x != y", 2, "comparison"),
    ("x & y", 2, "bitwise"),
    ("x | y", 2, "bitwise"),
    ("~x", 0, "bitwise"),
    ("x.y", 1, "attribute"),
    ("x[0]", 1, "subscript"),
    ("{x}", 0, "brace"),
    ("x = 1", 2, "="),
    ("'x'", 0, "string"),
    ('"x"', 0, "string"),
    ("x; y", 1, "statement"),
    ("_x", 0, "letter"),
    ("x # comment", 2, "comment"),
    ("x, y", 1, ","),
    ("(x, y)", 2, "tuple"),
    ("sin()", 4, "missing argument"),
    ("sin(x,)", 6, "missing argument"),
    ("sin(,x)", 4, "unexpected"),
    ("0x1F", 1, "hexadecimal"),
    ("0o17", 1, "octal"),
    ("0b101", 1, "binary"),
    ("1_000", 1, "underscore"),
    ("3j", 1, "complex"),
    ("2.5J", 3, "complex"),
    ("1.2.3", 3, "malformed"),
    ("1e", 1, "exponent"),
    ("1e+", 1, "exponent"),
    ("x ** * y", 5, "unexpected"),
    ("* x", 0, "unexpected"),
    ("x +* y", 3, "unexpected"),
    ("x√", 1, "ASCII"),
    ("θ + 1", 0, "ASCII"),
    ("x $ y", 2, "$"),
    ("x ? y", 2, "?"),
    ("x \\ y", 2, "backslash"),
    ("`x`", 0, "`"),
    ("x!", 1, "!"),
    ("if", 0, "keyword"),
    ("x if y else z", 2, "keyword"),
    ("not x", 0, "keyword"),
    ("x and y", 2, "keyword"),
    ("True", 0, "keyword"),
    ("None + 1", 0, "keyword"),
    ("lambda: 1", 6, "lambda"),
    ("sin", 0, "must be called"),
    ("9" * 1001, 0, "digits"),
    ("1e401", 0, "out of range"),
    ("1e-99999", 0, "out of range"),
]


@pytest.mark.parametrize("text, position, word", BAD, ids=[repr(t[0])[:30] for t in BAD])
def test_parse_errors_point_at_the_problem(text, position, word):
    with pytest.raises(sd.ParseError) as info:
        parse(text)
    err = info.value
    assert err.text == text
    assert err.position == position, (err.position, str(err))
    assert word.lower() in str(err).lower(), str(err)
    assert f"column {position}" in str(err)


def test_parse_error_through_derive():
    with pytest.raises(sd.ParseError) as info:
        sd.derive("x + y)")
    assert info.value.position == 5 and info.value.text == "x + y)"


@pytest.mark.parametrize("value", [None, 3, 2.5, b"x", ["x"]])
def test_non_text_to_parse_is_an_error(value):
    with pytest.raises(sd.ParseError):
        parse(value)


def test_unknown_function_message_lists_the_known_ones():
    with pytest.raises(sd.ParseError) as info:
        parse("ln(x)")
    assert "'ln'" in str(info.value) and "log" in str(info.value)


def test_implicit_multiplication_message_suggests_the_fix():
    with pytest.raises(sd.ParseError) as info:
        parse("3x + 1")
    assert "3*x" in str(info.value)


def test_derive_of_parsed_text_matches_sympy():
    d = sd.derive("3*a**3 - b^2")
    assert str(d) == "d/da = 9*a**2\nd/db = -2*b"
