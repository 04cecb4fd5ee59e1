//! Paired Wilcoxon signed-rank test with an exact sign-flip null distribution (SPEC §6).
//!
//! The exact p-value runs a dynamic programme over all 2^n sign assignments of the ranks. Ranks
//! are doubled so that average ranks of ties (which can be half-integers) become integers; the
//! DP is then exact conditional on the observed tie pattern, which scipy's `method="exact"` is
//! not (it uses the tie-free table). The normal approximation ("approx" in SPEC §6) mirrors
//! `scipy.stats.wilcoxon(..., method="asymptotic", correction=True)` term for term.

use std::fmt;

use super::{check_no_nan, normal_cdf, normal_sf, Alternative, Method, StatsError, ZeroMethod};

/// Auto switches to the normal approximation above this many non-zero differences (SPEC §6).
const AUTO_EXACT_MAX_N: usize = 50;

/// Options for [`wilcoxon`]. Default: `Greater`, `Wilcox`, `Auto` (SPEC §6: sparse > dense).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WilcoxonOptions {
    /// Alternative hypothesis.
    pub alternative: Alternative,
    /// Treatment of zero differences.
    pub zero_method: ZeroMethod,
    /// Exact, normal approximation, or automatic.
    pub method: Method,
}

impl Default for WilcoxonOptions {
    fn default() -> Self {
        Self { alternative: Alternative::Greater, zero_method: ZeroMethod::Wilcox, method: Method::Auto }
    }
}

/// Outcome of [`wilcoxon`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WilcoxonResult {
    /// W+ = sum of (average) ranks of |d| over the positive differences d = x - y. Always W+,
    /// also for two-sided tests (scipy reports min(W+, W-) there).
    pub statistic: f64,
    /// Number of non-zero differences (the sample size after zeros are dropped).
    pub n: usize,
    /// p-value for `alternative`, in [0, 1].
    pub p_value: f64,
    /// Method actually used: `Exact` or `Approx`, never `Auto`.
    /// Exact, normal approximation, or automatic.
    pub method: Method,
    /// Alternative hypothesis.
    pub alternative: Alternative,
    /// Median of all paired differences x - y, zeros included.
    pub median_diff: f64,
}

impl fmt::Display for WilcoxonResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wilcoxon signed-rank ({}, {}): W+ = {}, n = {}, p = {:.6e}, median diff = {}", self.method, self.alternative, self.statistic, self.n, self.p_value, self.median_diff)
    }
}

/// Paired Wilcoxon signed-rank test of `x` (sparse) against `y` (dense), both of length N.
///
/// Differences are d = x - y. With `ZeroMethod::Wilcox` zeros are dropped before ranking; with
/// `Pratt` they are ranked with the rest and their ranks then dropped. `Method::Auto` is exact
/// for n <= 50 non-zero differences. The exact DP costs O(n^3) time and O(n^2) memory.
///
/// Errors: lengths differ, a NaN in `x`, `y` or `x - y`, or no non-zero difference is left.
pub fn wilcoxon(x: &[f64], y: &[f64], opts: &WilcoxonOptions) -> Result<WilcoxonResult, StatsError> {
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch { x: x.len(), y: y.len() });
    }
    check_no_nan(x, "x")?;
    check_no_nan(y, "y")?;
    let d: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
    check_no_nan(&d, "x - y")?;

    // Pratt ranks the zeros along with everything else, Wilcox never sees them.
    let ranked: Vec<f64> = match opts.zero_method {
        ZeroMethod::Wilcox => d.iter().copied().filter(|v| *v != 0.0).collect(),
        ZeroMethod::Pratt => d.clone(),
    };
    let n_zero = d.iter().filter(|v| **v == 0.0).count();
    let n = d.len() - n_zero;
    if n < 1 {
        return Err(StatsError::TooFewObservations { test: "wilcoxon", needed: 1, got: 0 });
    }
    let abs: Vec<f64> = ranked.iter().map(|v| v.abs()).collect();
    let (ranks2, tie_sizes) = doubled_ranks(&abs);

    // Only non-zero differences can flip sign, so only they enter the null distribution.
    let mut nonzero_ranks2 = Vec::with_capacity(n);
    let mut w2: u64 = 0;
    for (v, r2) in ranked.iter().zip(&ranks2) {
        if *v != 0.0 {
            nonzero_ranks2.push(*r2);
            if *v > 0.0 {
                w2 += *r2;
            }
        }
    }
    let statistic = w2 as f64 / 2.0;

    let method = match opts.method {
        Method::Auto if n <= AUTO_EXACT_MAX_N => Method::Exact,
        Method::Auto => Method::Approx,
        m => m,
    };
    let p_value = match method {
        Method::Exact => exact_p(&nonzero_ranks2, w2, opts.alternative),
        _ => {
            // scipy keeps Pratt's zeros in the count and subtracts their share (Cureton 1967).
            let (count, zeros) = match opts.zero_method {
                ZeroMethod::Wilcox => (n, 0),
                ZeroMethod::Pratt => (d.len(), n_zero),
            };
            approx_p(statistic, count, zeros, &tie_sizes, opts.alternative)
        }
    };

    Ok(WilcoxonResult { statistic, n, p_value, method, alternative: opts.alternative, median_diff: median(&d) })
}

/// Doubled average ranks (1-based) of `a`, so a tie spanning sorted positions i..=j gets i + j + 2,
/// plus the sizes of tie groups among the non-zero values (what the variance correction needs).
fn doubled_ranks(a: &[f64]) -> (Vec<u64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..a.len()).collect();
    order.sort_by(|&i, &j| a[i].total_cmp(&a[j]));
    let mut ranks2 = vec![0u64; a.len()];
    let mut ties = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let value = a[order[start]];
        let mut end = start;
        while end + 1 < order.len() && a[order[end + 1]] == value {
            end += 1;
        }
        for &idx in &order[start..=end] {
            ranks2[idx] = (start + end + 2) as u64;
        }
        if value != 0.0 {
            ties.push(end - start + 1);
        }
        start = end + 1;
    }
    (ranks2, ties)
}

/// Null distribution of 2*W+ when each doubled rank independently carries a + sign with
/// probability 1/2. Entries are probabilities, not counts, so nothing overflows for large n.
fn signed_rank_distribution(ranks2: &[u64]) -> Vec<f64> {
    let total: u64 = ranks2.iter().sum();
    let mut dist = vec![0.0f64; total as usize + 1];
    dist[0] = 1.0;
    let mut reach = 0usize;
    for &r in ranks2 {
        let r = r as usize;
        reach += r;
        // Descending so dist[s - r] still holds the previous step's value.
        for s in (0..=reach).rev() {
            let with_plus = if s >= r { dist[s - r] } else { 0.0 };
            dist[s] = 0.5 * (dist[s] + with_plus);
        }
    }
    dist
}

fn exact_p(ranks2: &[u64], w2: u64, alternative: Alternative) -> f64 {
    let dist = signed_rank_distribution(ranks2);
    let w = w2 as usize;
    // Sum each tail from its extreme end so the small terms accumulate first.
    let upper: f64 = dist[w..].iter().rev().sum();
    let lower: f64 = dist[..=w].iter().sum();
    let p = match alternative {
        Alternative::Greater => upper,
        Alternative::Less => lower,
        Alternative::TwoSided => 2.0 * upper.min(lower),
    };
    p.min(1.0)
}

/// Normal approximation with tie-corrected variance and continuity correction, written in the
/// same order as `scipy.stats._wilcoxon._wilcoxon_statistic` so results agree to rounding.
fn approx_p(r_plus: f64, count: usize, zeros: usize, tie_sizes: &[usize], alt: Alternative) -> f64 {
    let c = count as f64;
    let z0 = zeros as f64;
    let mean = c * (c + 1.0) * 0.25 - z0 * (z0 + 1.0) * 0.25;
    let var24 = c * (c + 1.0) * (2.0 * c + 1.0) - z0 * (z0 + 1.0) * (2.0 * z0 + 1.0);
    let tie_correct: f64 = tie_sizes.iter().map(|&t| (t as f64).powi(3) - t as f64).sum();
    let se = ((var24 - tie_correct / 2.0) / 24.0).sqrt();
    let z = (r_plus - mean) / se;
    // scipy's two-sided correction uses sign(z), which is 0 at z == 0 (f64::signum is not).
    let sign = match alt {
        Alternative::Greater => 1.0,
        Alternative::Less => -1.0,
        Alternative::TwoSided if z == 0.0 => 0.0,
        Alternative::TwoSided => z.signum(),
    };
    let z = z - sign * 0.5 / se;
    match alt {
        Alternative::Greater => normal_sf(z),
        Alternative::Less => normal_cdf(z),
        Alternative::TwoSided => (2.0 * normal_sf(z.abs())).min(1.0),
    }
}

/// Median of a non-empty, NaN-free slice (mean of the two middle values for even length).
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Alternative::{Greater, Less};

    fn run(x: &[f64], y: &[f64], alt: Alternative, zm: ZeroMethod, m: Method) -> WilcoxonResult {
        let opts = WilcoxonOptions { alternative: alt, zero_method: zm, method: m };
        wilcoxon(x, y, &opts).unwrap()
    }

    // The brute-force 2^n enumeration check uses only the public API, so it lives in
    // tests/it/stats.rs next to the scipy comparison.

    /// Published table value: for n = 10, P(W+ <= 8) = 25/1024 = 0.0244 (8 is the one-sided
    /// alpha = 0.025 critical value; e.g. Hollander & Wolfe, Nonparametric Statistical Methods,
    /// Table A.4). 25 = subsets of {1..10} with sum <= 8 = 1+1+1+2+2+3+4+5+6 by sum 0..8.
    #[test]
    fn published_n10_critical_value() {
        // |d| = 1..10, positive at ranks 1 and 7 -> W+ = 8.
        let d: Vec<f64> = (1..=10).map(|k| if k == 1 || k == 7 { k } else { -k } as f64).collect();
        let y = vec![0.0; 10];
        let r = run(&d, &y, Less, ZeroMethod::Wilcox, Method::Auto);
        assert_eq!((r.statistic, r.n, r.method), (8.0, 10, Method::Exact));
        assert_eq!(r.p_value, 25.0 / 1024.0);
        // Complement: P(W+ >= 8) = 1 - P(W+ <= 7) = 1 - 19/1024.
        let g = run(&d, &y, Greater, ZeroMethod::Wilcox, Method::Exact);
        assert!((g.p_value - (1.0 - 19.0 / 1024.0)).abs() < 1e-15);
    }

    #[test]
    fn exact_large_n_is_finite_and_symmetric() {
        // n = 300 > 64 would overflow integer counts of 2^n; probabilities must still sum to 1.
        let ranks2: Vec<u64> = (1..=300).map(|k| 2 * k).collect();
        let dist = signed_rank_distribution(&ranks2);
        assert!((dist.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let mid = 300 * 301 / 2; // 2 * mean
        assert!((dist[mid - 40] - dist[mid + 40]).abs() < 1e-18);
        // All positive: P(W+ >= max) = 2^-300.
        assert_eq!(exact_p(&ranks2, 300 * 301, Greater), 0.5f64.powi(300));
    }

    #[test]
    fn auto_switches_at_fifty() {
        let x: Vec<f64> = (1..=51).map(|k| if k % 3 == 0 { -k } else { k } as f64).collect();
        let y = vec![0.0; 51];
        let r51 = wilcoxon(&x, &y, &WilcoxonOptions::default()).unwrap();
        let r50 = wilcoxon(&x[..50], &y[..50], &WilcoxonOptions::default()).unwrap();
        assert_eq!((r51.method, r51.n), (Method::Approx, 51));
        assert_eq!((r50.method, r50.n), (Method::Exact, 50));
        // At n ~ 50 the continuity-corrected normal is close to the exact tail.
        let e51 = run(&x, &y, Greater, ZeroMethod::Wilcox, Method::Exact);
        assert!((r51.p_value - e51.p_value).abs() < 2e-3, "{} vs {}", r51.p_value, e51.p_value);
    }

    #[test]
    fn zero_methods_and_median() {
        // d = [0, 0, 1, -2, 3]: Wilcox ranks 1,2,3 -> W+ = 1 + 3; Pratt ranks 3,4,5 -> W+ = 3 + 5.
        let x = [1.0, 2.0, 4.0, 2.0, 7.0];
        let y = [1.0, 2.0, 3.0, 4.0, 4.0];
        let w = run(&x, &y, Greater, ZeroMethod::Wilcox, Method::Exact);
        let p = run(&x, &y, Greater, ZeroMethod::Pratt, Method::Exact);
        assert_eq!((w.statistic, w.n, p.statistic, p.n), (4.0, 3, 8.0, 3));
        // Wilcox: W+ in {0,1,2,3,3,4,5,6} -> P(W+ >= 4) = 3/8.
        // Pratt, ranks {3,4,5}: W+ in {0,3,4,5,7,8,9,12} -> P(W+ >= 8) = 3/8.
        assert_eq!((w.p_value, p.p_value), (3.0 / 8.0, 3.0 / 8.0));
        assert_eq!(w.median_diff, 0.0);
        assert_eq!(median(&[3.0, -1.0, 10.0, 2.0]), 2.5);
    }

    #[test]
    fn invalid_input_is_an_error() {
        let o = WilcoxonOptions::default();
        let mismatch = StatsError::LengthMismatch { x: 1, y: 2 };
        assert_eq!(wilcoxon(&[1.0], &[1.0, 2.0], &o), Err(mismatch));
        let nan_x = StatsError::NaN { which: "x", index: 1 };
        assert_eq!(wilcoxon(&[1.0, f64::NAN], &[0.0, 0.0], &o), Err(nan_x));
        let nan_d = StatsError::NaN { which: "x - y", index: 0 };
        assert_eq!(wilcoxon(&[f64::INFINITY], &[f64::INFINITY], &o), Err(nan_d));
        let too_few = Err(StatsError::TooFewObservations { test: "wilcoxon", needed: 1, got: 0 });
        assert_eq!(wilcoxon(&[2.0, 3.0], &[2.0, 3.0], &o), too_few);
        assert_eq!(wilcoxon(&[], &[], &o), too_few);
        let pratt = WilcoxonOptions { zero_method: ZeroMethod::Pratt, ..o };
        assert_eq!(wilcoxon(&[2.0], &[2.0], &pratt), too_few);
    }

    #[test]
    fn display_is_one_line() {
        let r = wilcoxon(&[3.0, 5.0, 1.0], &[1.0, 2.0, 2.0], &WilcoxonOptions::default()).unwrap();
        let s = r.to_string();
        assert!(!s.contains('\n'));
        for part in ["W+ = 5", "exact", "greater", "n = 3", "median diff = 2"] {
            assert!(s.contains(part), "{s}");
        }
    }
}
