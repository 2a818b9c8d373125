"""Fast elementwise kernels for the CPU backend, written in ``jax.numpy`` operations.

XLA's CPU backend evaluates ``sin``, ``cos``, ``tan``, ``arctan``, ``arcsin``,
``arccos``, ``arctan2`` and ``cbrt`` by calling a scalar library routine per
element: 10-30x slower than numpy on this machine. Written as range reduction
plus a polynomial in plain ``jnp`` operations, the same functions are fused with
their neighbours and vectorised by XLA.

Each public function here (:func:`sin`, :func:`cos`, ...) is a drop-in for its
``jnp`` namesake:

* on the CPU backend it runs the kernel, elsewhere XLA's own routine
  (:func:`jax.lax.platform_dependent`, decided when the function is lowered);
* float16/bfloat16 are computed in float32; integer and complex inputs go to
  ``jnp`` unchanged;
* sin/cos/tan of arrays holding any finite ``|x|`` above a threshold (where the
  Cody-Waite reduction runs out of bits) take XLA's routine for that array;
* its derivative is the mathematical one (:func:`jax.custom_jvp`), so ``grad``,
  ``vmap`` and ``jit`` work.

The polynomials come from :mod:`symdiff._kernel_fit`; ``docs/kernels.md`` has
the measured accuracy (against mpmath) and speed.

>>> import jax.numpy as jnp
>>> float(sin(jnp.float32(0.5)))
0.4794255495071411
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["arccos", "arcsin", "arctan", "arctan2", "cbrt", "cos", "log", "sin", "sincos", "tan"]

# --- coefficients (python -m symdiff._kernel_fit), highest degree first ---------------------------------
_SIN_F32 = (2.724992580305979e-06, -0.00019840086735384846, 0.008333331874710208, -0.1666666666385529)
_COS_F32 = (2.4547942085071572e-05, -0.0013888303035894866, 0.04166666465950221)
_TAN_F32 = (0.0017892511715456732, 3.364407055012814e-11, 0.004425315773425936, 0.00860924966270511,
            0.021910677211362767, 0.05396501580688419, 0.13333342940622636, 0.3333333328694383)
_ATAN_F32 = (0.050481385120797445, -0.08624676145249494, 0.11071365021884794, -0.14284151193628614,
             0.19999977258688387, -0.333333332792548)
_ASIN_F32 = (0.030974540371355073, 0.010574415516912909, 0.023611817008891752, 0.030269138728589183,
             0.04464766388813485, 0.07499992404401838, 0.16666666686085643)
_SIN_F64 = (-7.586697117706918e-13, 1.6058531618986147e-10, -2.5052106232447578e-08, 2.7557319219339167e-06,
            -0.00019841269841265065, 0.008333333333333331, -0.16666666666666666)
_COS_F64 = (-1.1382632425521717e-11, 2.08761462684032e-09, -2.7557317271729793e-07, 2.480158729876569e-05,
            -0.0013888888888887398, 0.041666666666666664)
_TAN_F64 = (3.949593305285971e-06, -9.74523086709087e-06, 1.953688210814275e-05, -1.0197280163552528e-05,
            2.7108596383546008e-05, 3.392890384212224e-05, 9.876874636871174e-05, 0.00023866159900899438,
            0.0005901127322555614, 0.0014558233340176158, 0.003592129022471812, 0.008863235472360148,
            0.021869488538180618, 0.05396825396821662, 0.1333333333333336, 0.3333333333333333)
_ATAN_F64 = (0.016285756855221028, -0.034570561981427744, 0.04551593220626549, -0.05230454270650244,
             0.05878928997834775, -0.06666424885738255, 0.07692296375032143, -0.09090908753500877,
             0.11111111105155447, -0.14285714285659828, 0.19999999999999804, -0.3333333333333333)
_ASIN_F64 = (0.02961201126495512, -0.01924167174674304, 0.019554513336123378, 0.0030448799094556773,
             0.009319560794767446, 0.009621842970100282, 0.011566459612121669, 0.01396378001220357,
             0.017352816540325496, 0.02237215744350722, 0.03038194447553234, 0.044642857142551895,
             0.07500000000000118, 0.16666666666666666)

_LOG_F64 = (0.13086626147840102, 0.13268773138656886, 0.15386239702814658, 0.18181795640132906,
            0.22222222391713917, 0.28571428570803614, 0.4000000000000088, 0.6666666666666666)
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # fdlibm's split of ln 2

# pi/2 as a sum of pieces: the first three have 12 (float32) / 26 (float64) significant bits, so k * piece
# is exact for |k| < 2**12 / 2**27 (Cody-Waite); the last is the rounded rest.
_PIO2_F32 = (1.57080078125, -4.453584551811218e-06, -8.706138032721356e-10, 6.223371969669989e-14)
_PIO2_F64 = (1.5707963407039642, -1.3909067675399456e-08, 6.123233932053594e-17, 6.36831716351095e-25)
_TWO_OVER_PI = 0.6366197723675814
# Above these |x| the reduction above loses accuracy: such arrays take XLA's routine.
_TRIG_LIMIT = {"float32": 4096.0, "float64": 2.0**26}
# pi/2 and pi as hi + lo (hi rounded to the dtype, lo the rest)
_PIO2 = {"float32": (1.5707963705062866, -4.371139000186243e-08), "float64": (1.5707963267948966,
                                                                            6.123233995736766e-17)}
_PI = {"float32": (3.1415927410125732, -8.742278000372475e-08), "float64": (3.141592653589793,
                                                                         1.2246467991473532e-16)}
_PIO4 = {"float32": (0.7853981852531433, -2.1855695000931183e-08), "float64": (0.7853981633974483,
                                                                            3.061616997868383e-17)}
_TAN_PI8 = 0.41421356237309503  # tan(pi/8)
_TAN_3PI8 = 2.414213562373095  # tan(3pi/8)


def _horner(z, coeffs):
    acc = coeffs[0]
    for c in coeffs[1:]:
        acc = acc * z + c
    return acc


def _name(x) -> str:
    return "float64" if x.dtype == jnp.float64 else "float32"


def _coeffs(x, f32, f64):
    return f64 if x.dtype == jnp.float64 else f32


# --- the CPU kernels (float32 / float64 in, same dtype out) ---------------------------------------------

def _tiny(x):
    """Where ``f(x)`` rounds to ``x`` for sin, tan, atan, asin (``x**2/3`` under half an ulp).

    Returning ``x`` there also keeps -0 and subnormals, which XLA's CPU arithmetic flushes to zero.
    """
    return jnp.abs(x) < (2.0**-28 if x.dtype == jnp.float64 else 2.0**-13)


def _two_sum(a, b):
    """``(a + b, error)``: the rounded sum and its exact rounding error (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _reduce(x):
    """``(r, lo, q)``: ``x = k*pi/2 + r + lo`` with ``|r| <= pi/4``, ``lo`` below half an ulp of ``r``
    and ``q = k mod 4``: Cody-Waite with 4 pieces of pi/2, the subtractions kept exact by two-sums."""
    p1, p2, p3, p4 = _PIO2_F64 if x.dtype == jnp.float64 else _PIO2_F32
    k = jnp.round(x * _TWO_OVER_PI)
    r, lo = _two_sum(x - k * p1, -(k * p2))  # x - k*p1 and the products are exact
    r, e = _two_sum(r, -(k * p3))
    lo = (lo + e) - k * p4
    hi = r + lo
    q = k.astype(jnp.int32) & 3  # only used where |x| is under the limit, so k fits
    return hi, lo - (hi - r), q


def _sin_cos_poly(r, lo):
    """``(sin(r + lo), cos(r + lo))`` for ``|r| <= pi/4`` (``lo`` enters to first order)."""
    z = r * r
    hz = 0.5 * z
    s = r + (r * z * _horner(z, _coeffs(r, _SIN_F32, _SIN_F64)) + (lo - lo * hz))
    w = 1.0 - hz
    c = w + (((1.0 - w) - hz) + (z * z * _horner(z, _coeffs(r, _COS_F32, _COS_F64)) - r * lo))  # 1 - z/2 exact
    return s, c


def _quadrant(s, c, q):
    """``sin(k*pi/2 + r)`` from ``s = sin(r)``, ``c = cos(r)`` and ``q = k mod 4``."""
    v = jnp.where((q & 1) == 1, c, s)
    return jnp.where((q & 2) == 2, -v, v)


def _sincos_cpu(x):
    r, lo, q = _reduce(x)
    s, c = _sin_cos_poly(r, lo)
    return jnp.where(_tiny(x), x, _quadrant(s, c, q)), _quadrant(s, c, q + 1)


def _sin_cpu(x):
    return _sincos_cpu(x)[0]


def _cos_cpu(x):
    return _sincos_cpu(x)[1]


def _tan_cpu(x):
    r, lo, q = _reduce(x)
    z = r * r
    p = r * z * _horner(z, _coeffs(r, _TAN_F32, _TAN_F64)) + (lo + lo * z)
    t = r + p
    t_lo = p - (t - r)  # t + t_lo = tan(r + lo) to about twice the precision
    # odd quadrants: -1/(t + t_lo) = -(1 - t_lo/t)/t. (Each quotient is used once: XLA's CPU fusion
    # will not duplicate a division, and a reused one splits the kernel into many memory passes.)
    y = (t_lo / t - 1.0) / t
    return jnp.where(_tiny(x), x, jnp.where((q & 1) == 1, y, t))


def _atan_unit(num, den, name):
    """``atan(num/den)`` for ``num, den >= 0`` by reduction to ``|u| <= tan(pi/8)``.

    The reduced argument is formed from ``num`` and ``den`` in one division (not from a rounded ratio).
    """
    big = num > _TAN_3PI8 * den
    mid = num > _TAN_PI8 * den
    u = jnp.where(big, -den, jnp.where(mid, num - den, num)) / jnp.where(big, num, jnp.where(mid, num + den, den))
    hi = jnp.where(big, _PIO2[name][0], jnp.where(mid, _PIO4[name][0], 0.0))
    lo = jnp.where(big, _PIO2[name][1], jnp.where(mid, _PIO4[name][1], 0.0))
    z = u * u
    return hi + (u + (lo + u * z * _horner(z, _coeffs(num, _ATAN_F32, _ATAN_F64))))


def _atan_cpu(x):
    a = _atan_unit(jnp.abs(x), 1.0, _name(x))
    return jnp.where(_tiny(x), x, jnp.where(x < 0, -a, a))


def _scaled_up(v):
    """``v * 2**100`` (float32) / ``v * 2**1000`` (float64) exactly, for ``|v| < 2**-100``, subnormals included.

    XLA's CPU arithmetic treats subnormal operands as zero, so they are read through their bits.
    """
    f64 = v.dtype == jnp.float64
    utype, mant, n, up = (jnp.uint64, 52, 1074, 1000) if f64 else (jnp.uint32, 23, 149, 100)
    bits = lax.bitcast_convert_type(jnp.abs(v), utype)
    mantissa = (bits & utype((1 << mant) - 1)).astype(v.dtype) * 2.0 ** (up - n)  # a subnormal, scaled
    scaled = jnp.where((bits >> utype(mant)) == 0, mantissa, jnp.abs(v) * 2.0**up)
    return jnp.where(jnp.signbit(v), -scaled, scaled)


def _atan2_cpu(y, x):
    name = _name(x)
    # atan2 is scale-invariant: two tiny arguments (maybe subnormal, which XLA's CPU code flushes) are
    # scaled up together; the test is on the bits, which flushing does not touch
    utype = jnp.uint64 if name == "float64" else jnp.uint32
    bound = lax.bitcast_convert_type(jnp.asarray(2.0**-100, x.dtype), utype)
    tiny = ((lax.bitcast_convert_type(jnp.abs(x), utype) < bound)
            & (lax.bitcast_convert_type(jnp.abs(y), utype) < bound))
    x, y = jnp.where(tiny, _scaled_up(x), x), jnp.where(tiny, _scaled_up(y), y)
    ax, ay = jnp.abs(x), jnp.abs(y)
    swap = ay > ax
    num, den = jnp.where(swap, ax, ay), jnp.where(swap, ay, ax)  # num <= den
    zero, both_inf = (ax == 0) & (ay == 0), jnp.isinf(ax) & jnp.isinf(ay)
    num = jnp.where(zero, 0.0, jnp.where(both_inf, 1.0, num))  # (+-0, +-0): 0 or pi; (+-inf, +-inf): pi/4 ...
    den = jnp.where(zero | both_inf, 1.0, den)
    huge = den > (2.0**1020 if name == "float64" else 2.0**124)  # keeps num + den finite
    num, den = jnp.where(huge, num * 0.25, num), jnp.where(huge, den * 0.25, den)
    a = _atan_unit(num, den, name)
    a = jnp.where(swap, _PIO2[name][0] - (a - _PIO2[name][1]), a)
    a = jnp.where(jnp.signbit(x), _PI[name][0] - (a - _PI[name][1]), a)
    return jnp.where(jnp.signbit(y), -a, a)


def _asin_parts(ax, name):
    """``(small, p, s, df, c, r)`` shared by asin and acos (fdlibm's scheme)."""
    small = ax <= 0.5
    z = jnp.where(small, ax * ax, 0.5 * (1.0 - ax))  # 1 - ax is exact for ax >= 0.5
    s = jnp.where(small, ax, jnp.sqrt(z))
    r = z * _horner(z, _coeffs(ax, _ASIN_F32, _ASIN_F64))  # arcsin(s) = s + s*r
    # df: s with its low half of bits cleared, c: the rest of sqrt(z) (df*df is exact)
    if name == "float64":
        df = lax.bitcast_convert_type(lax.bitcast_convert_type(s, jnp.uint64) & np.uint64(0xFFFFFFFF00000000), jnp.float64)
    else:
        df = lax.bitcast_convert_type(lax.bitcast_convert_type(s, jnp.uint32) & np.uint32(0xFFFFF000), jnp.float32)
    c = (z - df * df) / jnp.where(s > 0, s + df, 1.0)  # s = 0 at |x| = 1
    return small, s, df, c, r


def _asin_cpu(x):
    name = _name(x)
    ax = jnp.abs(x)
    small, s, df, c, r = _asin_parts(ax, name)
    pio2_lo, pio4_hi = _PIO2[name][1], _PIO4[name][0]
    near_one = pio4_hi - ((2.0 * s * r - (pio2_lo - 2.0 * c)) - (pio4_hi - 2.0 * df))  # pi/2 - 2 arcsin(s)
    a = jnp.where(small, s + s * r, near_one)
    return jnp.where(_tiny(x), x, jnp.where(x < 0, -a, a))


def _acos_cpu(x):
    name = _name(x)
    ax = jnp.abs(x)
    small, s, df, c, r = _asin_parts(ax, name)
    pio2_hi, pio2_lo = _PIO2[name]
    pi_hi = _PI[name][0]
    mid = pio2_hi - (x - (pio2_lo - x * r))  # pi/2 - arcsin(x)
    pos = 2.0 * (df + (r * s + c))  # 2 arcsin(sqrt((1 - x)/2))
    neg = pi_hi - 2.0 * (s + (r * s - pio2_lo))  # pi - 2 arcsin(sqrt((1 + x)/2))
    return jnp.where(small, mid, jnp.where(x > 0, pos, neg))


def _rcbrt_guess(a):
    """``a ** (-1/3)`` within about 10 % for a normal ``a > 0``: the exponent bits times -1/3 (in floats)."""
    if a.dtype == jnp.float64:
        hi = (lax.bitcast_convert_type(a, jnp.uint64) >> np.uint64(32)).astype(jnp.float64)
        hi = (4 * 1023 / 3 * 2**20 - hi / 3).astype(jnp.uint32).astype(jnp.uint64)
        return lax.bitcast_convert_type(hi << np.uint64(32), jnp.float64)
    bits = lax.bitcast_convert_type(a, jnp.uint32).astype(jnp.float32)
    return lax.bitcast_convert_type((4 * 127 / 3 * 2**23 - bits / 3).astype(jnp.uint32), jnp.float32)


def _cbrt_cpu(x):
    """The real cube root, without a division (they are slow on CPU).

    ``y ~ a**(-1/3)`` by Newton steps that only multiply; ``t = a*y*y`` cut to a third of the
    significand, so ``t**3`` is exact; with ``u = (a - t**3) / a``, ``cbrt(a) = t * (1 - u)**(-1/3)``
    by its series. Subnormals are read as integers (XLA flushes
    subnormal arithmetic), tiny and huge values are scaled by cubes.
    """
    ax = jnp.abs(x)
    if x.dtype == jnp.float64:
        utype, keep, steps = jnp.uint64, np.uint64(0xFFFFFFF000000000), 5  # t keeps 17 bits
        tiny, sub_scale, sub_root = 2.0**-1022, 1.0, 2.0**-358  # x = bits * 2**-1074
        small, small_scale, small_root = 2.0**-900, 2.0**900, 2.0**-300
        big, big_scale, big_root = 2.0**900, 2.0**-900, 2.0**300
    else:
        utype, keep, steps = jnp.uint32, np.uint32(0xFFFF0000), 4  # t keeps 8 bits
        tiny, sub_scale, sub_root = 2.0**-126, 2.0, 2.0**-50  # x = (2 * bits) * 2**-150
        small, small_scale, small_root = 2.0**-90, 2.0**90, 2.0**-30
        big, big_scale, big_root = 2.0**90, 2.0**-90, 2.0**30
    bits = lax.bitcast_convert_type(ax, utype)
    sub, low, high = ax < tiny, ax < small, ax > big
    a = jnp.where(sub, bits.astype(x.dtype) * sub_scale,
                  jnp.where(low, ax * small_scale, jnp.where(high, ax * big_scale, ax)))
    y = _rcbrt_guess(a)
    third = 1.0 / 3.0
    for _ in range(steps):  # 12 % -> 3e-2 -> 2e-3 -> 6e-6 -> 6e-11 -> 1e-20 (error -> 2 error**2)
        y = y * (4.0 * third - (a * y) * (y * y) * third)
    t = a * y * y
    t = lax.bitcast_convert_type(lax.bitcast_convert_type(t, utype) & keep, x.dtype)
    u = (a - t * t * t) * (y * y * y)  # (a - t**3) / a: a - t**3 is exact (Sterbenz)
    t = t + t * (u * (third + u * (2.0 / 9.0 + u * (14.0 / 81.0 + u * (35.0 / 243.0)))))  # t * (1 - u)**(-1/3)
    t = jnp.where(sub, t * sub_root, jnp.where(low, t * small_root, jnp.where(high, t * big_root, t)))
    ok = (bits != 0) & (ax < jnp.inf)
    return jnp.where(ok, jnp.where(jnp.signbit(x), -t, t), x)


def _log_cpu(x):
    """Natural log, float64 only (XLA's float32 log is already vectorised): fdlibm's scheme.

    ``x = 2**k * m`` with ``sqrt(1/2) <= m < sqrt(2)`` from the bits, ``f = m - 1``, ``s = f/(2+f)``,
    ``log(1+f) = f - f**2/2 + s*(f**2/2 + R(s**2))``, summed so that the large terms stay exact.
    """
    if x.dtype != jnp.float64:
        return jnp.log(x)
    u64 = jnp.uint64
    bits = lax.bitcast_convert_type(x, u64) & u64(0x7FFFFFFFFFFFFFFF)
    sub = (bits >> u64(52)) == 0  # subnormal (or zero): read as an integer, x = bits * 2**-1074
    bits = jnp.where(sub, lax.bitcast_convert_type((bits & u64((1 << 52) - 1)).astype(jnp.float64), u64), bits)
    hi = (bits >> u64(32)).astype(jnp.uint32)
    k = (hi >> np.uint32(20)).astype(jnp.int32) - 1023 - jnp.where(sub, 1074, 0)
    hm = hi & np.uint32(0xFFFFF)
    i = (hm + np.uint32(0x95F64)) & np.uint32(0x100000)  # mantissa above sqrt(2): halve it
    new_hi = hm | (i ^ np.uint32(0x3FF00000))
    m = lax.bitcast_convert_type((new_hi.astype(u64) << u64(32)) | (bits & u64(0xFFFFFFFF)), jnp.float64)
    dk = (k + (i >> np.uint32(20)).astype(jnp.int32)).astype(jnp.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    r = z * _horner(z, _LOG_F64)
    hfsq = 0.5 * f * f
    y = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
    y = jnp.where(bits == 0, -jnp.inf, y)
    y = jnp.where(jnp.signbit(x) & (bits != 0), jnp.nan, y)  # x < 0 (by the bits: subnormals too)
    return jnp.where(bits >= u64(0x7FF0000000000000), x + jnp.abs(x), y)  # inf -> inf, NaN -> NaN


# --- dtype handling and backend dispatch ---------------------------------------------------------------

# Below this many elements XLA's routine is as fast (the kernels' fixed costs dominate) and compiles faster.
MIN_SIZE = 4096


def _small(*args) -> bool:
    sizes = [math.prod(jnp.shape(a)) for a in args]
    if not all(isinstance(n, int) for n in sizes):
        return False  # a symbolic size (jax.export's shape polymorphism): any size may come, take the kernel
    return max(sizes) < MIN_SIZE


def _on_cpu(kernel: Callable, xla: Callable, limit: bool = False) -> Callable:
    """``kernel`` on the CPU backend, ``xla`` elsewhere; low floats in float32; others to ``xla``."""

    def run(*args):
        args = [jnp.asarray(a) for a in args]
        dtype = jnp.result_type(*args)
        if not jnp.issubdtype(dtype, jnp.floating) or _small(*args):
            return xla(*args)
        work = dtype if dtype in (jnp.float32, jnp.float64) else jnp.float32
        args = [a if a.dtype == work else a.astype(work) for a in args]  # (keeps weak types)
        cpu = _guarded(kernel, xla) if limit else kernel
        out = lax.platform_dependent(*args, cpu=cpu, default=xla)
        return out if out.dtype == dtype else out.astype(dtype)

    return run


def _guarded(kernel: Callable, xla: Callable) -> Callable:
    """``kernel``, with XLA's routine where ``|x|`` is finite and above the reduction's limit.

    XLA's routine runs (in a ``lax.cond``) only for arrays that hold such an argument; the kernel stays in
    the caller's fusion. (Under ``vmap`` the condition is batched and both sides run: still correct.)
    """

    def run(x):
        ax = jnp.abs(x)
        big = (ax > _TRIG_LIMIT[_name(x)]) & (ax < jnp.inf)
        fast = kernel(x)
        slow = lax.cond(jnp.any(big), xla, lambda v: jax.tree.map(jnp.zeros_like, fast), x)
        return jax.tree.map(lambda f, s: jnp.where(big, s, f), fast, slow)

    return run


_sin = _on_cpu(_sin_cpu, jnp.sin, limit=True)
_cos = _on_cpu(_cos_cpu, jnp.cos, limit=True)
_tan = _on_cpu(_tan_cpu, jnp.tan, limit=True)


@jax.custom_jvp
def sin(x):
    """``sin(x)``: the CPU kernel on CPU, ``jnp.sin`` elsewhere (see the module docstring).

    >>> import jax
    >>> float(jax.grad(sin)(0.0))
    1.0
    """
    return _sin(x)


@jax.custom_jvp
def cos(x):
    """``cos(x)`` (see :func:`sin`).

    >>> float(cos(0.0))
    1.0
    """
    return _cos(x)


@jax.custom_jvp
def tan(x):
    """``tan(x)`` (see :func:`sin`).

    >>> round(float(tan(1.0)), 6)
    1.557408
    """
    return _tan(x)


def sincos(x):
    """``(sin(x), cos(x))`` from one range reduction on CPU.

    >>> [round(float(v), 6) for v in sincos(1.0)]
    [0.841471, 0.540302]
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating) or _small(x):
        return jnp.sin(x), jnp.cos(x)
    return _sincos_jvp(x)


@jax.custom_jvp
def _sincos_jvp(x):
    x = jnp.asarray(x)
    dtype = x.dtype
    work = dtype if dtype in (jnp.float32, jnp.float64) else jnp.float32

    def slow(v):
        return jnp.sin(v), jnp.cos(v)

    xw = x if dtype == work else x.astype(work)
    s, c = lax.platform_dependent(xw, cpu=_guarded(_sincos_cpu, slow), default=slow)
    return (s, c) if dtype == work else (s.astype(dtype), c.astype(dtype))


@_sincos_jvp.defjvp
def _sincos_jvp_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    s, c = _sincos_jvp(x)
    return (s, c), (c * t, -s * t)


@sin.defjvp
def _sin_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    s, c = sincos(x)
    return s, c * t


@cos.defjvp
def _cos_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    s, c = sincos(x)
    return c, -s * t


@tan.defjvp
def _tan_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = tan(x)
    return y, (1 + y * y) * t


_atan = _on_cpu(_atan_cpu, jnp.arctan)
_asin = _on_cpu(_asin_cpu, jnp.arcsin)
_acos = _on_cpu(_acos_cpu, jnp.arccos)
_atan2 = _on_cpu(_atan2_cpu, jnp.arctan2)
_cbrt = _on_cpu(_cbrt_cpu, jnp.cbrt)


@jax.custom_jvp
def arctan(x):
    """``arctan(x)`` (see :func:`sin`).

    >>> round(float(arctan(1.0)) * 4, 6)
    3.141593
    """
    return _atan(x)


@arctan.defjvp
def _atan_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return arctan(x), t / (1 + x * x)


@jax.custom_jvp
def arcsin(x):
    """``arcsin(x)`` (see :func:`sin`).

    >>> round(float(arcsin(1.0)) * 2, 6)
    3.141593
    """
    return _asin(x)


@arcsin.defjvp
def _asin_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return arcsin(x), t * lax.rsqrt(1 - x * x)


@jax.custom_jvp
def arccos(x):
    """``arccos(x)`` (see :func:`sin`).

    >>> round(float(arccos(-1.0)), 6)
    3.141593
    """
    return _acos(x)


@arccos.defjvp
def _acos_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return arccos(x), -t * lax.rsqrt(1 - x * x)


@jax.custom_jvp
def arctan2(y, x):
    """``arctan2(y, x)`` (see :func:`sin`).

    >>> round(float(arctan2(1.0, -1.0)), 6)
    2.356194
    """
    return _atan2(y, x)


@arctan2.defjvp
def _atan2_jvp(primals, tangents):
    (y, x), (ty, tx) = primals, tangents
    d = x * x + y * y
    return arctan2(y, x), (x * ty - y * tx) / d


_log = _on_cpu(_log_cpu, jnp.log)


@jax.custom_jvp
def log(x):
    """The natural logarithm: the kernel for float64 on CPU, ``jnp.log`` otherwise (see :func:`sin`).

    >>> round(float(log(10.0)), 6)
    2.302585
    """
    return _log(x)


@log.defjvp
def _log_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log(x), t / x


@jax.custom_jvp
def cbrt(x):
    """The real cube root (see :func:`sin`).

    >>> float(cbrt(-8.0))
    -2.0
    """
    return _cbrt(x)


@cbrt.defjvp
def _cbrt_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = cbrt(x)
    return y, t / (3 * y * y)
