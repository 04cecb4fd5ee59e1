//! Kendall's tau-b rank correlation with a two-sided p-value, as scipy.stats.kendalltau (SPEC §6).
//!
//! Without ties the p-value is exact for n <= 33 (and, as in scipy's `method="auto"`, also for
//! larger n when at most one pair is discordant or at most one concordant), using the Mahonian
//! distribution of inversion counts. Otherwise it is the normal approximation of S = C - D with
//! scipy's tie-corrected variance. Pairs are counted directly in O(n^2), which is fine for the
//! n < 10,000 paired runs this crate compares and easy to check.

use std::fmt;

use super::{check_no_nan, normal_sf, Method, StatsError};

/// scipy's `method="auto"` threshold for the exact permutation distribution.
const EXACT_MAX_N: usize = 33;

/// Outcome of [`kendall_tau`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KendallResult {
    /// Tau-b = (C - D) / sqrt((P - Tx) (P - Ty)) with P = n(n-1)/2 pairs, Tx/Ty pairs tied in x/y.
    pub tau: f64,
    /// Two-sided p-value for H0: x and y are independent.
    pub p_value: f64,
    /// `Exact` or `Approx`.
    pub method: Method,
    /// Number of pairs (x_i, y_i).
    pub n: usize,
}

impl fmt::Display for KendallResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kendall tau-b ({}, two-sided): tau = {:.6}, n = {}, p = {:.6e}", self.method, self.tau, self.n, self.p_value)
    }
}

/// Pair counts; "tied" counts include pairs tied in both coordinates.
struct PairCounts {
    concordant: u64,
    discordant: u64,
    x_tied: u64,
    y_tied: u64,
}

fn count_pairs(x: &[f64], y: &[f64]) -> PairCounts {
    let sign = |a: f64, b: f64| i8::from(a > b) - i8::from(a < b);
    let mut c = PairCounts { concordant: 0, discordant: 0, x_tied: 0, y_tied: 0 };
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let (sx, sy) = (sign(x[i], x[j]), sign(y[i], y[j]));
            c.x_tied += u64::from(sx == 0);
            c.y_tied += u64::from(sy == 0);
            match sx * sy {
                1 => c.concordant += 1,
                -1 => c.discordant += 1,
                _ => {}
            }
        }
    }
    c
}

/// (sum t(t-1)(t-2), sum t(t-1)(2t+5)) over tie groups of size t: scipy's `x0`/`x1` terms.
fn tie_terms(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let (mut t0, mut t1) = (0.0, 0.0);
    let mut start = 0;
    while start < s.len() {
        let end = start + s[start..].iter().take_while(|a| **a == s[start]).count();
        let t = (end - start) as f64;
        t0 += t * (t - 1.0) * (t - 2.0);
        t1 += t * (t - 1.0) * (2.0 * t + 5.0);
        start = end;
    }
    (t0, t1)
}

/// Two-sided exact p = 2 P(I <= c) where I is the number of inversions of a uniformly random
/// permutation of n items and c = min(D, P - D) (Kendall 1970, Rank Correlation Methods, ch. 4).
/// P(I = k) follows the Mahonian recursion: inserting item j adds 0..j-1 inversions uniformly.
fn exact_p(n: usize, c: usize) -> f64 {
    if 4 * c == n * (n - 1) {
        // c sits on the centre of a symmetric distribution.
        return 1.0;
    }
    let mut prob = vec![0.0f64; c + 1];
    prob[0] = 1.0;
    for j in 2..=n {
        let prev = prob.clone();
        for (k, p) in prob.iter_mut().enumerate() {
            let lo = k.saturating_sub(j - 1);
            *p = prev[lo..=k].iter().sum::<f64>() / j as f64;
        }
    }
    (2.0 * prob.iter().sum::<f64>()).min(1.0)
}

/// Kendall's tau-b of paired samples `x`, `y` (same length n >= 2) with a two-sided p-value.
///
/// Method choice is scipy's `method="auto"`: exact when neither sample has ties and
/// (n <= 33 or min(D, P - D) <= 1), otherwise the normal approximation with
/// var(S) = (m(2n+5) - x1 - y1)/18 + 2 Tx Ty / m + x0 y0 / (9 m (n-2)), m = n(n-1).
///
/// Errors: lengths differ, a NaN, n < 2, or a constant sample (tau-b undefined).
pub fn kendall_tau(x: &[f64], y: &[f64]) -> Result<KendallResult, StatsError> {
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch { x: x.len(), y: y.len() });
    }
    check_no_nan(x, "x")?;
    check_no_nan(y, "y")?;
    let n = x.len();
    if n < 2 {
        return Err(StatsError::TooFewObservations { test: "kendall_tau", needed: 2, got: n });
    }
    let pc = count_pairs(x, y);
    let total = (n * (n - 1) / 2) as u64;
    if pc.x_tied == total {
        return Err(StatsError::ConstantInput { which: "x" });
    }
    if pc.y_tied == total {
        return Err(StatsError::ConstantInput { which: "y" });
    }
    let s = pc.concordant as f64 - pc.discordant as f64;
    let tau = (s / ((total - pc.x_tied) as f64).sqrt() / ((total - pc.y_tied) as f64).sqrt()).clamp(-1.0, 1.0);

    let no_ties = pc.x_tied == 0 && pc.y_tied == 0;
    let c = pc.discordant.min(total - pc.discordant) as usize;
    let (method, p_value) = if no_ties && (n <= EXACT_MAX_N || c <= 1) {
        (Method::Exact, exact_p(n, c))
    } else {
        let nf = n as f64;
        let m = nf * (nf - 1.0);
        let (x0, x1) = tie_terms(x);
        let (y0, y1) = tie_terms(y);
        let (tx, ty) = (pc.x_tied as f64, pc.y_tied as f64);
        let var = (m * (2.0 * nf + 5.0) - x1 - y1) / 18.0 + (2.0 * tx * ty) / m + x0 * y0 / (9.0 * m * (nf - 2.0));
        (Method::Approx, (2.0 * normal_sf((s / var.sqrt()).abs())).min(1.0))
    };
    Ok(KendallResult { tau, p_value, method, n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inversions(p: &[usize]) -> usize {
        (0..p.len()).flat_map(|i| (i + 1..p.len()).map(move |j| (i, j))).filter(|&(i, j)| p[i] > p[j]).count()
    }

    /// All permutations of 0..n (Heap's algorithm), for brute-force null distributions.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        fn heap(k: usize, a: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if k <= 1 {
                out.push(a.clone());
                return;
            }
            for i in 0..k {
                heap(k - 1, a, out);
                let swap_with = if k & 1 == 0 { i } else { 0 };
                a.swap(swap_with, k - 1);
            }
        }
        let mut out = Vec::new();
        heap(n, &mut (0..n).collect(), &mut out);
        out
    }

    #[test]
    fn mahonian_textbook_values() {
        // Inversion counts for n = 4 are 1,3,5,6,5,3,1 (OEIS A008302; Kendall 1970, Table 1).
        // One discordant pair: p = 2 * (1 + 3) / 24 = 1/3, tau = (5 - 1) / 6.
        let r = kendall_tau(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 4.0, 3.0]).unwrap();
        assert_eq!(r.method, Method::Exact);
        assert!((r.p_value - 1.0 / 3.0).abs() < 1e-15 && (r.tau - 2.0 / 3.0).abs() < 1e-15);
        // Perfect agreement, n = 5: p = 2 / 5! = 1/60.
        let r = kendall_tau(&[1.0, 2.0, 3.0, 4.0, 5.0], &[10.0, 20.0, 30.0, 40.0, 50.0]).unwrap();
        // tau = 10 / sqrt(10) / sqrt(10) rounds to 1 - 1e-16, exactly as scipy does.
        assert!((r.p_value * 60.0 - 1.0).abs() < 1e-14 && (r.tau - 1.0).abs() < 1e-15, "{r:?}");
        // n = 40 > 33 but perfectly reversed: still exact, p = 2 / 40!.
        let x: Vec<f64> = (0..40).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| -v).collect();
        let r = kendall_tau(&x, &y).unwrap();
        let fact40: f64 = (1..=40).map(f64::from).product();
        assert_eq!((r.method, r.tau), (Method::Exact, -1.0));
        assert!((r.p_value - 2.0 / fact40).abs() < 1e-12 * r.p_value);
    }

    #[test]
    fn exact_matches_permutation_enumeration() {
        for n in 2..=7usize {
            let perms = permutations(n);
            let total = n * (n - 1) / 2;
            for obs in perms.iter().step_by(if n <= 4 { 1 } else { 7 }) {
                let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
                let y: Vec<f64> = obs.iter().map(|&v| v as f64 * 1.5 - 2.0).collect();
                // S = P - 2 I; two-sided p = P(|S| >= |S_obs|) over all n! permutations.
                let s_of = |p: &[usize]| total as i64 - 2 * inversions(p) as i64;
                let s_obs = s_of(obs);
                let hits = perms.iter().filter(|p| s_of(p).abs() >= s_obs.abs()).count();
                let r = kendall_tau(&x, &y).unwrap();
                let want = hits as f64 / perms.len() as f64;
                assert!((r.p_value - want).abs() <= 1e-13 * want, "n={n} {obs:?}: {} vs {want}", r.p_value);
                assert!((r.tau - s_obs as f64 / total as f64).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn ties_use_corrected_variance() {
        // Worked by hand: pairs C = 4, D = 0, Tx = Ty = 1, so tau-b = 4 / sqrt(5 * 5) = 0.8.
        // One tie group of size 2 in each: x0 = y0 = 0, x1 = y1 = 2*1*9 = 18; m = 12;
        // var = (12 * 13 - 36) / 18 + 2 / 12 = 41 / 6.
        let r = kendall_tau(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 3.0]).unwrap();
        assert_eq!(r.method, Method::Approx);
        assert!((r.tau - 0.8).abs() < 1e-15);
        let want = 2.0 * normal_sf(4.0 / (41.0f64 / 6.0).sqrt());
        assert!((r.p_value - want).abs() < 1e-15 && (0.12..0.13).contains(&r.p_value));
        assert_eq!(tie_terms(&[1.0, 1.0, 1.0, 2.0, 2.0]), (6.0, 3.0 * 2.0 * 11.0 + 2.0 * 9.0));
    }

    #[test]
    fn invalid_input_is_an_error() {
        assert_eq!(kendall_tau(&[1.0, 2.0], &[1.0]), Err(StatsError::LengthMismatch { x: 2, y: 1 }));
        assert_eq!(kendall_tau(&[1.0], &[1.0]), Err(StatsError::TooFewObservations { test: "kendall_tau", needed: 2, got: 1 }));
        assert_eq!(kendall_tau(&[1.0, 2.0], &[f64::NAN, 1.0]), Err(StatsError::NaN { which: "y", index: 0 }));
        assert_eq!(kendall_tau(&[3.0, 3.0, 3.0], &[1.0, 2.0, 3.0]), Err(StatsError::ConstantInput { which: "x" }));
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[0.5, 0.5, 0.5]), Err(StatsError::ConstantInput { which: "y" }));
        let s = kendall_tau(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap().to_string();
        assert!(!s.contains('\n') && s.contains("tau = 0.333333") && s.contains("n = 3"), "{s}");
    }
}
