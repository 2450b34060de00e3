"""Powers of one base in one term merge (``a^m a^n`` is ``a^(m+n)``, ``sqrt(a)^-2`` is
``a^-1``), checked on printed derivatives and, above all, against central finite
differences (tests/fd.py)."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import POWER_CASES
from fd import numeric_jacobian, random_arrays

import tensorcalc as tc
from tensorcalc.calculus.simplify import canonical_term, term_key
from tensorcalc.ir import Delta, Power, Sum, Term, as_sum, const_value


def _rhs(d: tc.Program) -> str:
    return str(d).strip().splitlines()[-1].split("=", 1)[1].strip()


def _base(f: object) -> str | None:
    """The canonical key of a factor's base where it is a number power or a bare factor."""
    if isinstance(f, Delta):
        return None
    if isinstance(f, Power):
        if const_value(f.exponent) is None:
            return None
        base = f.base
    else:
        base = as_sum(f)  # type: ignore[arg-type]
    return term_key(canonical_term(Term(1.0, (base,))))


def _repeated_power(expr: Sum) -> bool:
    """Whether a term (at any depth) holds a power beside another power of its base."""
    for t in expr.terms:
        seen: dict[str, bool] = {}
        for f in t.factors:
            key = _base(f)
            if key is not None:
                if key in seen and (seen[key] or isinstance(f, Power)):
                    return True
                seen[key] = seen.get(key, False) or isinstance(f, Power)
            inner = [f] if isinstance(f, Sum) else [
                s for s in (getattr(f, "arg", None), getattr(f, "base", None),
                            getattr(f, "exponent", None)) if s is not None]
            if any(_repeated_power(s) for s in inner):
                return True
    return False


SQRT = "s = sum[i](sqrt(v[i] + 1e-05))"



def test_second_derivative_of_sqrt_has_one_power_of_each_base() -> None:
    g = tc.grad(SQRT, "v")
    h = tc.derive(g, "v")
    # was: -0.25 delta[p,q] sqrt(1e-05 + v[p])^-2 / sqrt(1e-05 + v[p])
    assert _rhs(h) == "-0.25 delta[p,q] / (1e-05 + v[p]) / sqrt(1e-05 + v[p])"
    assert _rhs(tc.hessian(SQRT, "v")) == _rhs(h)
    assert not _repeated_power(h.statements[-1].rhs)
    arrays = random_arrays(SQRT, {"i": 4}, positive=("v",))
    np.testing.assert_allclose(h(**arrays), numeric_jacobian(g, "v", arrays),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("src, wrt, printed", POWER_CASES)
def test_merged_powers_print_once_and_match_finite_differences(src: str, wrt: str,
                                                               printed: str) -> None:
    d = tc.derive(src, wrt)
    assert _rhs(d) == printed
    assert not _repeated_power(d.statements[-1].rhs)
    arrays = random_arrays(src, {"i": 3, "j": 3, "p": 3}, positive=("x",))
    np.testing.assert_allclose(d(**arrays), numeric_jacobian(src, wrt, arrays),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("src", [
    "y = 1/sum[j](x[j])",
    "y[i] = x[i]/sum[j](x[j])",
    "y = sum[i](x[i] / (x[i] + 1)^2)",
    "y = sum[i](sqrt(x[i]) / x[i])",
])
def test_second_derivatives_match_finite_differences(src: str) -> None:
    first = tc.derive(src, "x")
    second = tc.derive(first, "x")
    assert not any(_repeated_power(st.rhs) for st in second.statements)
    arrays = random_arrays(src, {"i": 3, "j": 3}, positive=("x",))
    np.testing.assert_allclose(second(**arrays), numeric_jacobian(first, "x", arrays),
                               rtol=1e-5, atol=1e-5)


def test_sqrt_to_an_even_power_is_a_power_of_its_argument() -> None:
    d = tc.derive("y[i] = sqrt(x[i] + 1)^-2", "x")
    assert "sqrt" not in str(d)
    arrays = random_arrays("y[i] = sqrt(x[i] + 1)^-2", {"i": 3}, positive=("x",))
    np.testing.assert_allclose(d(**arrays),
                               numeric_jacobian("y[i] = sqrt(x[i] + 1)^-2", "x", arrays),
                               rtol=1e-6, atol=1e-6)


def test_expression_exponents_and_sums_are_left_alone() -> None:
    d = tc.derive("y[i] = x[i]^z[i] * x[i]", "x")
    assert "^z[i]" in str(d)
    arrays = random_arrays("y[i] = x[i]^z[i] * x[i]", {"i": 3}, positive=("x", "z"))
    np.testing.assert_allclose(d(**arrays),
                               numeric_jacobian("y[i] = x[i]^z[i] * x[i]", "x", arrays),
                               rtol=1e-6, atol=1e-6)
