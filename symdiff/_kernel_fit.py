"""How the polynomial coefficients of :mod:`symdiff._kernels` were made (not imported at run time).

Each kernel evaluates ``x + x**3 * g(x**2)`` (or ``1 - z/2 + z**2 * g(z)`` for
the cosine) after range reduction; ``g`` is a Chebyshev approximation
(:func:`mpmath.chebyfit`, within a few percent of the minimax polynomial) of
the exact remainder over the reduced interval, at 60 digits. The degree is the
smallest whose approximation error stays below 1/64 ulp of the result's
precision. ``python -m symdiff._kernel_fit`` prints the tables.
"""

from __future__ import annotations

# name -> (remainder g(z) as a function of mpmath numbers, interval of z = x**2)
RECIPES = {
    "sin": (lambda z, mp: (mp.sin(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)), "pi4"),
    "cos": (lambda z, mp: (mp.cos(mp.sqrt(z)) - 1 + z / 2) / (z * z), "pi4"),
    "tan": (lambda z, mp: (mp.tan(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)), "pi4"),
    "atan": (lambda z, mp: (mp.atan(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)), "tan_pi8"),
    "asin": (lambda z, mp: (mp.asin(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)), "quarter"),
    # log(1+f) = 2 atanh(s), s = f/(2+f): the remainder (2 atanh(s) - 2s) / s**3 for |f| <= sqrt(2) - 1
    "log": (lambda z, mp: (2 * mp.atanh(mp.sqrt(z)) - 2 * mp.sqrt(z)) / (z * mp.sqrt(z)), "log_s"),
}


def fit(name: str, bits: int) -> list[float]:
    """Coefficients of ``g`` (highest degree first) for a result of ``bits`` significant bits.

    >>> len(fit("sin", 24)) <= 4
    True
    """
    import mpmath

    mp = mpmath.mp
    mp.dps = 60
    g, where = RECIPES[name]
    top = {"pi4": (mp.pi / 4) ** 2, "tan_pi8": mp.tan(mp.pi / 8) ** 2, "quarter": mp.mpf(1) / 4,
           "log_s": ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2}[where]
    tiny = mp.mpf(10) ** -40  # g has a removable singularity at 0
    target = mp.mpf(2) ** -(bits + 6)
    for n in range(2, 30):
        coeffs, err = mp.chebyfit(lambda z: g(max(z, tiny), mp), [0, top], n, error=True)
        # relative weight: the remainder enters as x**3 * g (or z**2 * g) next to a leading term ~ 1 or x
        if err * (top if name != "cos" else top * top) < target:
            return [float(c) for c in coeffs]
    raise RuntimeError(f"no degree below 30 fits {name} to {bits} bits")


if __name__ == "__main__":  # pragma: no cover - a maintenance script
    for bits, label in ((24, "F32"), (53, "F64")):
        for name in RECIPES:
            print(f"_{name.upper()}_{label} = {tuple(fit(name, bits))!r}")
