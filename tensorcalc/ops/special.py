"""Special functions as kernels of plain array arithmetic: erf, erfc and gelu, log|Γ|,
digamma and polygamma, on any array namespace and in exported NumPy code.

NumPy has none of them, and scipy is not a dependency: each is one ``def`` here, with
its tables of coefficients bound by ``kernels.WithConstants``, so that exported code
copies it whole. The back end runs the array library's own routine instead where it is as
accurate (``backend/libraries.py``: torch's erf, erfc and lgamma, JAX's erf).

Where the tables come from: Bernoulli numbers and Taylor coefficients are exact
fractions; ζ(k) - 1 and the Chebyshev series of erfcx were computed with mpmath at 40
digits (``tests/ops/test_special_functions.py`` computes them again and compares).
Accuracy in float64, measured there against mpmath at 40 digits: erf within 2 ulp, erfc
within 5 (over all x with a normal result: erfc(26) is 5.7e-296, not 0 from 1 - erf),
gelu within 5; lgamma within 6 ulp for x > 0 (its zeros 1 and 2 included), digamma within
16 (2e-15, where ψ(y + 1) - 1/y subtracts; its root 1.4616... included), trigamma and
polygamma2 within 8; for x < 0 all within 5e-15 of max(1, |value|, log|x|), as the
reflection formula subtracts values of that size.
float32 arrays are computed in float32, to its precision.

>>> import numpy as np
>>> float(ERFC(np.float64(10.0), np)), float(LGAMMA(np.float64(-0.5), np))
(2.0884875837625452e-45, 1.2655121234846454)
"""

from __future__ import annotations

from fractions import Fraction
from math import factorial, pi
from typing import Any

from .kernels import WithConstants

Array = Any

#: B_2, B_4, ..., B_20, the Bernoulli numbers of the asymptotic series.
BERNOULLI = (Fraction(1, 6), Fraction(-1, 30), Fraction(1, 42), Fraction(-1, 30),
             Fraction(5, 66), Fraction(-691, 2730), Fraction(7, 6), Fraction(-3617, 510),
             Fraction(43867, 798), Fraction(-174611, 330))

#: ζ(k) - 1 for k = 2, 3, ..., 41 (mpmath, 40 digits, rounded).
ZETA_MINUS_ONE = (
    0.6449340668482264, 0.2020569031595943, 0.08232323371113819, 0.03692775514336993,
    0.01734306198444914, 0.008349277381922827, 0.00407735619794434, 0.0020083928260822143,
    0.0009945751278180853, 0.0004941886041194645, 0.0002460865533080483,
    0.00012271334757848915, 6.124813505870483e-05, 3.058823630702049e-05,
    1.528225940865187e-05, 7.637197637899763e-06, 3.81729326499984e-06,
    1.908212716553939e-06, 9.539620338727962e-07, 4.769329867878064e-07,
    2.38450502727733e-07, 1.1921992596531106e-07, 5.960818905125948e-08,
    2.980350351465228e-08, 1.4901554828365043e-08, 7.45071178983543e-09,
    3.725334024788457e-09, 1.862659723513049e-09, 9.313274324196682e-10,
    4.656629065033784e-10, 2.3283118336765053e-10, 1.164155017270052e-10,
    5.820772087902701e-11, 2.9103850444971e-11, 1.4551921891041985e-11,
    7.275959835057482e-12, 3.637979547378651e-12, 1.818989650307066e-12,
    9.094947840263888e-13, 4.547473783042154e-13)

#: (1 + 2a) e^(a²) erfc(a) for a ≥ 1/2 as a Chebyshev series in u = (a - 4) / (a + 3)
#: (u runs over [-1, 1) as a runs over [1/2, ∞)), the first coefficient halved; the next,
#: left out, is 1.03e-18 (mpmath, 40 digits, at 80 Chebyshev nodes).
ERFCX_CHEBYSHEV = (
    1.2131177209271748, -0.07225473646563542, -0.02632189276459184, 0.019186588533428105,
    -0.006682350310928109, 0.0015522847050575515, -0.00023571658348154882,
    1.5690562205135226e-05, 2.153875719667181e-06, -6.012574627859283e-07,
    1.3854950323746626e-08, 1.3575814484993745e-08, -1.3070972098097831e-09,
    -3.06373327557849e-10, 5.062873791614194e-11, 8.050230187118965e-12,
    -1.74987484220058e-12, -2.6365750400882025e-13, 5.909950702659242e-14,
    1.0548914766564293e-14, -1.9235530211488676e-15, -4.764157943707682e-16,
    5.502036001020429e-17, 2.2407847347890268e-17, -9.345765826021282e-19)

#: erf(a) √π / (2a) = Σ (-1)^k a^2k / (k! (2k + 1)), k = 0..12 (enough for a < 1/2).
ERF_TAYLOR = tuple(float(Fraction((-1) ** k, factorial(k) * (2 * k + 1))) for k in range(13))

#: log Γ(2 + t) / t = Σ c_k t^k: c_0 = 1 - γ, c_k = (-1)^(k+1) (ζ(k+1) - 1) / (k+1).
LGAMMA_TAYLOR = (0.42278433509846713,) + tuple(
    (-1) ** (k + 1) * ZETA_MINUS_ONE[k - 1] / (k + 1) for k in range(1, 27))

#: Stirling's series of log Γ(y): B_2k / (2k (2k - 1)), k = 1..8.
STIRLING = tuple(float(b / (2 * k * (2 * k - 1))) for k, b in enumerate(BERNOULLI[:8], 1))

#: The asymptotic series of ψ(y): B_2k / 2k, k = 1..8.
DIGAMMA_ASYMPTOTIC = tuple(float(b / (2 * k)) for k, b in enumerate(BERNOULLI[:8], 1))


def error_function(x: Array, xp: Any, kind: int, taylor: tuple[float, ...],
                   chebyshev: tuple[float, ...]) -> Array:
    """erf (``kind`` 0), erfc (1) or gelu, x Φ(x) = x erfc(-x/√2) / 2 (2), of an array.

    With a = |x| (|x|/√2 for gelu): for a < 1/2, erf(a) = 2a/√π Σ taylor[k] a^2k; for
    a ≥ 1/2, erfc(a) = e^(-a²) S(a) / (1 + 2a), S the Chebyshev series ``chebyshev``
    (Clenshaw's recurrence), and e^(-a²) is e^(-h²) e^(-(|x| - h)(|x| + h)) (halved for
    gelu) with h = |x| rounded down to 1/16, whose square is exact: a rounded a² would
    cost erfc(26) three digits. The other half-line follows from erf(-a) = -erf(a).
    """
    m = xp.minimum(xp.abs(x), 60.0)  # erfc(a) is 0 in float64 from a = 27.3 on
    half = 0.5 if kind == 2 else 1.0
    a = m * 0.7071067811865476 if kind == 2 else m
    h = xp.floor(m * 16.0) / 16.0
    gauss = xp.exp(-half * (h * h)) * xp.exp(-half * ((m - h) * (m + h)))
    u = (a - 4.0) / (a + 3.0)
    b1, b2 = xp.zeros_like(u), xp.zeros_like(u)
    for c in chebyshev[:0:-1]:
        b1, b2 = 2.0 * u * b1 - b2 + c, b1
    tail = gauss * (u * b1 - b2 + chebyshev[0]) / (1.0 + 2.0 * a)  # erfc(a), a >= 1/2
    s = a * a
    series = xp.zeros_like(s)
    for c in taylor[::-1]:
        series = series * s + c
    head = 1.1283791670955126 * a * series  # erf(a), a < 1/2
    near = a < 0.5
    erf = xp.where(near, head, 1.0 - tail)
    erfc = xp.where(near, 1.0 - head, tail)
    if kind == 0:
        return xp.where(x < 0, -erf, erf)
    if kind == 1:
        return xp.where(x < 0, 2.0 - erfc, erfc)
    phi = xp.where(x < 0, 0.5 * erfc, 1.0 - 0.5 * erfc)  # Φ(x)
    return xp.where(phi > 0, x, xp.zeros_like(x)) * phi  # where Φ is 0, x is not read: -inf


def log_gamma(x: Array, xp: Any, taylor: tuple[float, ...],
              stirling: tuple[float, ...]) -> Array:
    """log |Γ(x)| of an array.

    y = x for x ≥ 0, y = 1 - x for x < 0, where log|Γ(x)| = log π - log|sin πx| - log Γ(y)
    (sin πx as sin πr, r = x less its nearest whole number, exact). For y < 10,
    y = 2 + t + n with |t| ≤ 1/2 and n whole from -2 to 8, both exact; log Γ(2 + t) is
    its Taylor series t Σ taylor[k] t^k, and Γ(y) = Γ(2 + t) (y - 1)...(y - n) for n > 0,
    Γ(2 + t) / y for n = -1 (log y of an exact y = 1 + t: the zero at 1 keeps its digits,
    as the one at 2 does), Γ(2 + t) / (y (y + 1)) for n = -2. For y ≥ 10, Stirling's series:
    (y - 1/2)(log y - 1) - 1/2 + log √(2π) + Σ stirling[k] / y^(2k+1).
    """
    negative = x < 0
    y = xp.where(negative, 1.0 - x, x)
    small = y < 10.0
    zeros = xp.zeros_like(y)
    n = xp.clip(xp.floor(y - 1.5), -2.0, 8.0)
    t = xp.where(small, y - (n + 2.0), zeros)
    series = xp.zeros_like(t)
    for c in taylor[::-1]:
        series = series * t + c
    product = xp.ones_like(t)
    for j in range(8):
        product = xp.where(n > j, product * (t + (2.0 + j)), product)
    window = t * series + xp.log(product) - xp.where(n < 0, xp.log(y), zeros) \
        - xp.where(n < -1, xp.log1p(y), zeros)
    big = xp.where(small, xp.full_like(y, 10.0), y)
    w = 1.0 / (big * big)
    tail = xp.zeros_like(w)
    for c in stirling[::-1]:
        tail = tail * w + c
    value = xp.where(small, window, (big - 0.5) * (xp.log(big) - 1.0) - 0.5
                     + 0.9189385332046728 + tail / big)
    r = xp.where(negative, x - xp.round(x), xp.full_like(x, 0.5))
    reflected = 1.1447298858494002 - xp.log(xp.abs(xp.sin(3.141592653589793 * r))) - value
    return xp.where(x == -xp.inf, -x, xp.where(negative, reflected, value))


def digamma(x: Array, xp: Any, zeta: tuple[float, ...],
            asymptotic: tuple[float, ...]) -> Array:
    """ψ(x) = Γ'(x)/Γ(x) of an array.

    y = x for x ≥ 0, y = 1 - x for x < 0, where ψ(x) = ψ(y) - π / tan(πr) (r = x less its
    nearest whole number, exact; nan at the poles, whose sides go to -inf and inf). For
    y < 10, y = 2 + t + n with t in [-0.7, 0.3) and n whole from -2 to 8; the Taylor series
    ψ(2 + t) = (1 - γ) + Σ b_k t^k, b_k = (-1)^(k+1) zeta[k-1] (ζ(k+1) - 1), less its value
    at the root x0 = 1.4616... (0) is (t - t0) Σ b_k (t^k - t0^k)/(t - t0), t0 = x0 - 2 in
    two parts: relatively accurate at the root too. Then ψ(y) = ψ(2 + t) + 1/(y - 1) + ...
    + 1/(y - n), or less 1/y (and 1/(y + 1)). For y ≥ 10:
    log y - 1/(2y) - Σ asymptotic[k] / y^(2k+2).
    """
    negative = x < 0
    y = xp.where(negative, 1.0 - x, x)
    small = y < 10.0
    zeros = xp.zeros_like(y)
    n = xp.clip(xp.floor(y - 1.3), -2.0, 8.0)
    t = xp.where(small, y - (n + 2.0), zeros)
    q = xp.ones_like(t)  # (t^k - t0^k) / (t - t0), k = 1, 2, ...
    total = zeta[0] * q
    power = 1.0
    for k in range(2, len(zeta) + 1):
        power *= -0.5383678550316378
        q = t * q + power
        total = total + (zeta[k - 1] if k % 2 else -zeta[k - 1]) * q
    window = ((t + 0.5383678550316378) - 9.549995429965697e-17) * total
    for j in range(8):
        window = window + xp.where(n > j, 1.0 / (t + (2.0 + j)), zeros)
    window = window - xp.where(n < 0, 1.0 / y, zeros) - xp.where(n < -1, 1.0 / (y + 1.0), zeros)
    big = xp.where(small, xp.full_like(y, 10.0), y)
    w = 1.0 / (big * big)
    tail = xp.zeros_like(w)
    for c in asymptotic[::-1]:
        tail = tail * w + c
    value = xp.where(small, window, xp.log(big) - 0.5 / big - w * tail)
    r = xp.where(negative, x - xp.round(x), xp.full_like(x, 0.25))
    # cot(πr) as tan(π(1/2 - |r|)) near |r| = 1/2, where tan(πr) would lose digits
    cot = xp.where(xp.abs(r) < 0.25, 1.0 / xp.tan(3.141592653589793 * r),
                   xp.sign(r) * xp.tan(3.141592653589793 * (0.5 - xp.abs(r))))
    out = xp.where(negative, value - 3.141592653589793 * cot, value)
    return xp.where(negative & (r == 0), xp.full_like(x, xp.nan), out)


def polygamma(x: Array, xp: Any, n: int, c: float, scale: float, tail: tuple[float, ...],
              cot: tuple[float, ...]) -> Array:
    """ψ⁽ⁿ⁾(x), the nth derivative of digamma, n ≥ 1, of an array.

    y = x for x ≥ 0: (-1)^(n+1) n! Σ_j (y + j)^-(n+1), its first n + 10 terms added,
    smallest first, to the Euler-Maclaurin remainder of the rest,
    n! / z^(n+1) (z/n + 1/2 + Σ tail[k] / z^(2k+1)), z = y + n + 10 (its first term
    apart: (n-1)!/z^n is a float where n!/z^(n+1) underflows),
    tail[k] = B_2k+2 (n+1)(n+2)...(n+2k+1) / (2k+2)!. n! / v^(n+1) is computed as
    scale (c / v)^(n+1), c about n!^(1/(n+1)) and scale about 1, so that nothing
    overflows or underflows where the value does not.
    x < 0: (-1)^n ψ⁽ⁿ⁾(1 - x) - π^(n+1) cot⁽ⁿ⁾(πx); cot⁽ⁿ⁾ is a polynomial in cot whose
    coefficients times -π^(n+1) are ``cot`` (highest first, in powers of cot², times cot
    for even n). Poles: inf for odd n, nan for even n (whose sides go to -inf and inf).
    """
    negative = x < 0
    y = xp.where(negative, 1.0 - x, x)
    z = y + float(n + 10)
    w = 1.0 / (z * z)
    series = xp.zeros_like(w)
    for a in tail[::-1]:
        series = series * w + a
    total = (c / z) ** n * (c / n + (c / z) * (0.5 + series / z))  # no underflow before
    for j in range(n + 9, -1, -1):
        total = total + (c / (y + float(j))) ** (n + 1)
    value = scale * total if n % 2 else -scale * total
    r = xp.where(negative, x - xp.round(x), xp.full_like(x, 0.25))
    k = xp.where(xp.abs(r) < 0.25, 1.0 / xp.tan(3.141592653589793 * r),  # cot(πx), as in
                 xp.sign(r) * xp.tan(3.141592653589793 * (0.5 - xp.abs(r))))  # digamma
    k2 = k * k
    derivative = xp.full_like(k2, cot[0])
    for a in cot[1:]:
        derivative = derivative * k2 + a  # inf at a pole (0 * inf would be nan)
    reflected = (-value if n % 2 else value) + (derivative if n % 2 else derivative * k)
    out = xp.where(x == xp.inf, xp.zeros_like(x), xp.where(negative, reflected, value))
    return out if n % 2 else xp.where(negative & (r == 0), xp.full_like(x, xp.nan), out)


def _cot_derivative(n: int) -> list[int]:
    """The coefficients of the nth derivative of cot as a polynomial in cot, lowest power
    first: D_0 = c, D_(k+1) = -(1 + c²) D_k'(c)."""
    poly = [0, 1]
    for _ in range(n):
        slope = [i * poly[i] for i in range(1, len(poly))]
        poly = [0] * (len(slope) + 2)
        for i, v in enumerate(slope):
            poly[i] -= v
            poly[i + 2] -= v
    return poly


def polygamma_constants(n: int) -> tuple[tuple[str, Any], ...]:
    """The constants ``polygamma`` takes for the order ``n`` (see there), from exact
    fractions: each rounded once."""
    whole = factorial(n)
    c = float(whole) ** (1.0 / (n + 1))
    scale = float(Fraction(whole) / Fraction(c) ** (n + 1))
    tail = []
    for k, b in enumerate(BERNOULLI):
        rising = 1
        for m in range(1, 2 * k + 2):
            rising *= n + m
        tail.append(float(b * rising / factorial(2 * k + 2)))
    kept = _cot_derivative(n)[(n + 1) % 2::2]
    factor = pi ** (n + 1)
    return (("n", n), ("c", c), ("scale", scale), ("tail", tuple(tail)),
            ("cot", tuple(-v * factor for v in reversed(kept))))


def _error_function(kind: int) -> WithConstants:
    return WithConstants(error_function, (("kind", kind), ("taylor", ERF_TAYLOR),
                                          ("chebyshev", ERFCX_CHEBYSHEV)))


# The kernels of the registry's entries (``functions.py``), by which the back end also
# finds an array library's own routine for them (``backend/libraries.py``).
ERF, ERFC, GELU = _error_function(0), _error_function(1), _error_function(2)
LGAMMA = WithConstants(log_gamma, (("taylor", LGAMMA_TAYLOR), ("stirling", STIRLING)))
DIGAMMA = WithConstants(digamma, (("zeta", ZETA_MINUS_ONE), ("asymptotic", DIGAMMA_ASYMPTOTIC)))


def polygamma_kernel(n: int) -> WithConstants:
    """The kernel of ψ⁽ⁿ⁾, n ≥ 1."""
    return WithConstants(polygamma, polygamma_constants(n))
