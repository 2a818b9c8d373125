"""Fuzzing the parser and the whole derive path (hypothesis, grammar-based and raw text).

Any text either parses or raises ParseError; nothing else escapes, nothing runs,
nothing takes more than 2 s. Derive on any parsed text gives a Derivative or a
SymdiffError, and evaluation never raises. SYMDIFF_FUZZ_CASES sets the number of
cases (a long run: SYMDIFF_FUZZ_CASES=20000, see docs/hardening.md).
"""

import os
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symdiff as sd
from symdiff._functions import FUNCTIONS

CASES = int(os.environ.get("SYMDIFF_FUZZ_CASES", "300"))
SETTINGS = settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

TOKENS = (
    ["x", "y", "theta_1", "pi", "E", "2", "0", ".5", "1e-3", "1.5E+4", "9", "1e308", "1e-320"]
    + ["+", "-", "*", "/", "**", "^", "(", ")", ",", " "]
    + [f"{name}(" for name in FUNCTIONS]
    + [".", "[", "]", "=", "'", '"', ":", ";", "%", "//", "@", "<", "==", "_", "__import__", "lambda", "\n", "é", "0x1", "1_0", "3j"]
)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_any_token_soup_parses_or_raises_parse_error(tokens):
    text = "".join(tokens)
    start = time.monotonic()
    try:
        sd.parse(text)
    except sd.ParseError as exc:
        assert 0 <= exc.position <= len(text)
        assert exc.text == text or len(text) > 80
    assert time.monotonic() - start < 2.0


@SETTINGS
@given(st.text(max_size=60))
def test_any_unicode_text_parses_or_raises_parse_error(text):
    start = time.monotonic()
    try:
        sd.parse(text)
    except sd.ParseError:
        pass
    assert time.monotonic() - start < 2.0


def _expressions():
    leaves = st.sampled_from(["x", "y", "2", "0.5", "pi", "E", "3", "0", "1e3"])
    unary = [name for name, (_, arity) in FUNCTIONS.items() if 1 in arity]
    binary = [name for name, (_, arity) in FUNCTIONS.items() if 2 in arity]

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "^"]), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
            st.tuples(st.sampled_from(unary), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(binary), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            inner.map(lambda e: f"-{e}"),
        )

    return st.recursive(leaves, extend, max_leaves=8)


@settings(max_examples=max(CASES // 10, 10), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(_expressions())
def test_derive_on_grammar_expressions_never_escapes(text):
    start = time.monotonic()
    try:
        d = sd.derive(text, ["x", "y"], simplify=0.05)
    except sd.SymdiffError:
        return
    gx, gy = d(np.array([0.3, -1.7, 2.0]), np.array([0.9, 0.0, -3.0]))
    assert gx.shape == (3,) and gy.shape == (3,)  # NaN/inf allowed outside domains, exceptions not
    str(d)
    assert time.monotonic() - start < 20.0  # includes one XLA compile
