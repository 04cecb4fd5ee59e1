#!/usr/bin/env python3
"""Generate tests/data/stats/reference.json: scipy reference values for src/stats (SPEC §6).

Run from the repository root with scipy installed:
    python tests/data/stats/gen_stats_reference.py
Deterministic (fixed seed). Every input is a multiple of 1/1024 with a short decimal form, so
JSON parsing is exact in Rust and x - y is bit-identical in both languages (ties must agree).

Which scipy call is a valid reference for which Rust method:
* Wilcoxon "exact" without ties or zeros: scipy method="exact" (the classic table).
* Wilcoxon "exact" with ties/zeros: scipy's method="exact" uses the tie-free table with rounded
  statistics, so it is NOT used. scipy.stats.PermutationMethod() with its default
  n_resamples=9999 >= 2**n (n <= 13) enumerates all sign flips, which is exactly the conditional
  distribution the Rust DP computes.
* Wilcoxon "approx": scipy method="asymptotic", correction=True (ties and zeros included).
* Kendall: scipy method="auto" (what the Rust function implements), with the method it picks.
"""
import json
from fractions import Fraction
import pathlib
import platform

import numpy as np
import scipy
from scipy import stats

OUT = pathlib.Path(__file__).with_name("reference.json")
ALTS = ["greater", "less", "two-sided"]
rng = np.random.default_rng(20240611)


def dyadic(v):
    return [float(a) for a in np.round(np.asarray(v) * 1024.0) / 1024.0]


def distinct_abs_nonzero(d):
    a = np.abs(d)
    return np.all(a != 0) and len(np.unique(a)) == len(a)


def exact_integer_p(d, zm, alt):
    """Exact sign-flip p-value from big-integer counts over doubled ranks (no rounding at all).

    scipy's exact test takes the upper tail as 1 - cdf when W+ is above its mean, which leaves
    ~1e-16 absolute error; this value is the tie-breaker for tiny p-values.
    """
    pool = d[d != 0] if zm == "wilcox" else d
    r2 = [int(round(2 * r)) for r in stats.rankdata(np.abs(pool))]
    signed = [(r, v > 0) for r, v in zip(r2, pool) if v != 0]
    w2 = sum(r for r, pos in signed if pos)
    counts = [0] * (sum(r for r, _ in signed) + 1)
    counts[0] = 1
    for r, _ in signed:
        for s in range(len(counts) - 1, r - 1, -1):
            counts[s] += counts[s - r]
    total = 2 ** len(signed)
    ge, le = Fraction(sum(counts[w2:]), total), Fraction(sum(counts[:w2 + 1]), total)
    return float({"greater": ge, "less": le, "two-sided": min(1, 2 * min(ge, le))}[alt])


def wilcoxon_case(x, y, alt, zm, rust_method, scipy_method, label):
    x, y = np.asarray(x), np.asarray(y)
    res = stats.wilcoxon(x, y, zero_method=zm, alternative=alt, method=scipy_method, correction=True)
    # scipy reports min(W+, W-) for two-sided; W+ is its statistic for "greater".
    r_plus = stats.wilcoxon(x, y, zero_method=zm, alternative="greater", method=scipy_method).statistic
    d = x - y
    return {
        "label": label,
        "x": [float(a) for a in x],
        "y": [float(a) for a in y],
        "alternative": alt,
        "zero_method": zm,
        "method": rust_method,
        "scipy_method": scipy_method if isinstance(scipy_method, str) else "PermutationMethod()",
        "statistic": float(r_plus),
        "n": int(np.count_nonzero(d)),
        "p_value": float(res.pvalue),
        "median_diff": float(np.median(d)),
        "p_value_integer": exact_integer_p(d, zm, alt) if rust_method == "exact" else None,
    }


def wilcoxon_cases():
    cases = []
    # No ties, no zeros: both scipy "exact" and "asymptotic" apply directly.
    for n, shift in [(4, 0.5), (5, 0.0), (8, 0.4), (10, -0.3), (13, 0.8), (20, 0.2), (30, -0.1),
                     (50, 0.3), (60, 0.25), (100, -0.15), (60, 1.5)]:
        while True:
            y = dyadic(rng.normal(0.0, 1.0, n))
            d = dyadic(rng.normal(shift, 1.0, n))
            x = [a + b for a, b in zip(y, d)]
            if distinct_abs_nonzero(np.asarray(x) - np.asarray(y)):
                break
        for alt in ALTS:
            cases.append(wilcoxon_case(x, y, alt, "wilcox", "exact", "exact", f"noties n={n}"))
            cases.append(wilcoxon_case(x, y, alt, "wilcox", "approx", "asymptotic", f"noties n={n}"))
    # Ties and zeros, normal approximation, both zero methods.
    for n, shift in [(10, 0.5), (25, 0.3), (40, -0.4), (80, 0.2)]:
        y = [float(a) for a in rng.integers(0, 6, n)]
        x = [a + float(b) for a, b in zip(y, np.round(rng.normal(shift, 1.5, n)))]
        for alt in ALTS:
            for zm in ["wilcox", "pratt"]:
                cases.append(wilcoxon_case(x, y, alt, zm, "approx", "asymptotic", f"ties n={n}"))
    # Ties and zeros, exact: full sign-flip enumeration by scipy's permutation test (2**n <= 9999).
    for n, shift in [(6, 0.5), (9, -0.5), (12, 0.8), (13, 0.2)]:
        y = [float(a) / 2.0 for a in rng.integers(0, 8, n)]
        x = [a + float(b) / 2.0 for a, b in zip(y, np.round(rng.normal(2.0 * shift, 2.0, n)))]
        assert 0 < np.count_nonzero(np.asarray(x) - np.asarray(y)) and 2**n <= 9999
        for alt in ALTS:
            for zm in ["wilcox", "pratt"]:
                cases.append(wilcoxon_case(x, y, alt, zm, "exact", stats.PermutationMethod(), f"ties n={n}"))
    return cases


def kendall_case(x, y, label):
    res = stats.kendalltau(x, y, method="auto")
    n = len(x)
    has_ties = len(np.unique(x)) < n or len(np.unique(y)) < n
    method = "approx"
    if not has_ties:
        exact = stats.kendalltau(x, y, method="exact").pvalue
        # scipy's asymptotic variance divides by n - 2, so n = 2 can only be exact.
        asym = stats.kendalltau(x, y, method="asymptotic").pvalue if n > 2 else None
        # Record which branch scipy's auto rule took (they never coincide on these inputs).
        method = "exact" if res.pvalue == exact and res.pvalue != asym else "approx"
    return {"label": label, "x": [float(a) for a in x], "y": [float(a) for a in y],
            "tau": float(res.statistic), "p_value": float(res.pvalue), "method": method, "n": n}


def kendall_cases():
    cases = []
    for n, rho in [(2, 0.5), (3, 0.5), (5, 0.8), (10, 0.3), (20, -0.5), (33, 0.2),
                   (34, 0.2), (50, 0.4), (200, -0.1)]:
        while True:
            x = dyadic(rng.normal(0, 1, n))
            y = dyadic(rho * np.asarray(x) + rng.normal(0, 1, n))
            if len(set(x)) == n and len(set(y)) == n:
                break
        cases.append(kendall_case(x, y, f"noties n={n}"))
    # n > 33 but at most one discordant pair: scipy's auto rule still goes exact.
    x = [float(i) for i in range(40)]
    y = list(x)
    y[10], y[11] = y[11], y[10]
    cases.append(kendall_case(x, y, "n=40 one discordant pair"))
    for n, levels in [(6, 3), (10, 4), (30, 5), (100, 7)]:
        x = [float(a) for a in rng.integers(0, levels, n)]
        y = [float(a) + float(b) for a, b in zip(x, rng.integers(0, levels, n))]
        cases.append(kendall_case(x, y, f"ties n={n}"))
    return cases


def main():
    data = {
        "generator": "tests/data/stats/gen_stats_reference.py",
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "wilcoxon": wilcoxon_cases(),
        "kendall": kendall_cases(),
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}: {len(data['wilcoxon'])} wilcoxon, {len(data['kendall'])} kendall cases "
          f"(scipy {scipy.__version__})")


if __name__ == "__main__":
    main()
