"""Denoising a signal with a smoothness penalty, by Newton's method.

    L = (y[i] - s[i])^2 + lam * (s[i+1] - s[i])^2

The penalty is a discrete Laplacian: its Hessian is tridiagonal with ends of 2 lam and an
inside of 4 lam. The range of the shifted index belongs to the statement as written
(``i`` runs over N-1 values in the penalty, over N in the data term), so the derivatives
keep the ends right. One Newton step solves the quadratic exactly; the script checks it
against the closed form (I + lam D^T D) s = y, with D the difference matrix.
"""

from __future__ import annotations

import numpy as np

import tensorcalc as tc

SOURCE = "L = (y[i] - s[i])^2 + lam * (s[i+1] - s[i])^2"


def main() -> None:
    rng = np.random.default_rng(0)
    n, lam = 12, 3.0
    t = np.linspace(0, 1, n)
    y = np.sin(2 * np.pi * t) + 0.3 * rng.standard_normal(n)

    gradient = tc.grad(SOURCE, "s")
    hessian = tc.hessian(SOURCE, "s")
    print("gradient:", gradient, sep="\n")

    s = np.zeros(n)
    H = hessian(y=y, s=s, lam=lam)
    s = s - np.linalg.solve(H, gradient(y=y, s=s, lam=lam))

    D = np.diff(np.eye(n), axis=0)  # (n-1) x n: rows e[i+1] - e[i]
    expected = np.linalg.solve(np.eye(n) + lam * D.T @ D, y)
    assert np.allclose(H, 2 * (np.eye(n) + lam * D.T @ D)), "Hessian"
    assert np.allclose(s, expected), "Newton step"
    assert np.allclose(gradient(y=y, s=s, lam=lam), 0, atol=1e-10), "stationary"
    print("Hessian diagonal:", np.diag(H))
    print("smoothed:", np.round(s, 3))


if __name__ == "__main__":
    main()
