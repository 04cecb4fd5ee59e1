//! Cross-checks of `sparselab::stats` against scipy reference values (SPEC §6).
//!
//! `tests/data/stats/reference.json` is written by `tests/data/stats/gen_stats_reference.py`;
//! that script's docstring says which scipy call backs each Rust method.

use std::path::Path;

use serde::Deserialize;
use sparselab::stats::*;

#[derive(Deserialize)]
struct Reference {
    scipy_version: String,
    wilcoxon: Vec<WilcoxonCase>,
    kendall: Vec<KendallCase>,
}

#[derive(Deserialize)]
struct WilcoxonCase {
    label: String,
    x: Vec<f64>,
    y: Vec<f64>,
    alternative: String,
    zero_method: String,
    method: String,
    statistic: f64,
    n: usize,
    p_value: f64,
    median_diff: f64,
    /// Exact p from big-integer sign-flip counts (exact cases only; see the generator).
    p_value_integer: Option<f64>,
}

#[derive(Deserialize)]
struct KendallCase {
    label: String,
    x: Vec<f64>,
    y: Vec<f64>,
    tau: f64,
    p_value: f64,
    method: String,
    n: usize,
}

fn load() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/stats/reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
    (got - want).abs() <= rel * want.abs() + abs
}

/// Tolerance against scipy. Exact p-values and tau: 1e-10 relative, plus a 1e-15 absolute floor
/// because for W+ above its mean scipy's exact test takes the upper tail as 1 - cdf (~1e-16
/// absolute error; at p ~ 1e-14 scipy is off by 0.3%, the big-integer value decides). Normal
/// approximations: 1e-9 relative, because statrs 0.19's erfc is only ~1e-10 relative accurate
/// (truncated interval constants, fixed upstream in statrs-dev/statrs PR #412); a wrong variance
/// or continuity correction moves p by far more than that.
fn close_to_scipy(got: f64, want: f64, method: Method) -> bool {
    match method {
        Method::Approx => close(got, want, 1e-9, 0.0),
        _ => close(got, want, 1e-10, 1e-15),
    }
}

#[test]
fn wilcoxon_matches_scipy() {
    let r = load();
    assert!(r.scipy_version.starts_with('1'), "unexpected scipy version {}", r.scipy_version);
    // Guard against a silently truncated file: every (method, zero_method) pairing must be present.
    for (m, zm) in [("exact", "wilcox"), ("exact", "pratt"), ("approx", "wilcox"), ("approx", "pratt")] {
        let count = r.wilcoxon.iter().filter(|c| c.method == m && c.zero_method == zm).count();
        assert!(count >= 12, "only {count} {m}/{zm} reference cases");
    }
    let with_integer = r.wilcoxon.iter().filter(|c| c.p_value_integer.is_some()).count();
    assert_eq!(with_integer, r.wilcoxon.iter().filter(|c| c.method == "exact").count());
    for c in &r.wilcoxon {
        let opts = WilcoxonOptions { alternative: c.alternative.parse().unwrap(), zero_method: c.zero_method.parse().unwrap(), method: c.method.parse().unwrap() };
        let ctx = format!("{} {} {} {}", c.label, c.alternative, c.zero_method, c.method);
        let got = wilcoxon(&c.x, &c.y, &opts).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(got.method, opts.method, "{ctx}");
        assert_eq!(got.alternative, opts.alternative, "{ctx}");
        assert_eq!(got.n, c.n, "{ctx}");
        assert_eq!(got.statistic, c.statistic, "{ctx}");
        assert_eq!(got.median_diff, c.median_diff, "{ctx}");
        assert!(close_to_scipy(got.p_value, c.p_value, got.method), "{ctx}: p = {} vs scipy {}", got.p_value, c.p_value);
        if let Some(want) = c.p_value_integer {
            assert!(close(got.p_value, want, 1e-12, 0.0), "{ctx}: p = {} vs integer {want}", got.p_value);
        }
    }
}

#[test]
fn kendall_matches_scipy() {
    let r = load();
    assert!(r.kendall.iter().filter(|c| c.method == "exact").count() >= 6);
    assert!(r.kendall.iter().filter(|c| c.method == "approx").count() >= 6);
    for c in &r.kendall {
        let got = kendall_tau(&c.x, &c.y).unwrap_or_else(|e| panic!("{}: {e}", c.label));
        assert_eq!(got.method, c.method.parse::<Method>().unwrap(), "{}", c.label);
        assert_eq!(got.n, c.n, "{}", c.label);
        assert!(close(got.tau, c.tau, 1e-10, 0.0), "{}: tau = {} vs scipy {}", c.label, got.tau, c.tau);
        let p_ok = close_to_scipy(got.p_value, c.p_value, got.method);
        assert!(p_ok, "{}: p = {} vs scipy {}", c.label, got.p_value, c.p_value);
    }
}

#[test]
fn option_strings_round_trip_and_reject_unknown() {
    for s in ["greater", "less", "two-sided"] {
        assert_eq!(s.parse::<Alternative>().unwrap().to_string(), s);
    }
    for s in ["wilcox", "pratt"] {
        assert_eq!(s.parse::<ZeroMethod>().unwrap().to_string(), s);
    }
    for s in ["exact", "approx", "auto"] {
        assert_eq!(s.parse::<Method>().unwrap().to_string(), s);
    }
    let err = "two_sided".parse::<Alternative>().unwrap_err().to_string();
    assert!(err.contains("'two_sided'") && err.contains("greater, less, two-sided"), "{err}");
    let err = "zsplit".parse::<ZeroMethod>().unwrap_err().to_string();
    assert!(err.contains("'zsplit'") && err.contains("wilcox, pratt"), "{err}");
    let err = "asymptotic".parse::<Method>().unwrap_err().to_string();
    assert!(err.contains("'asymptotic'") && err.contains("exact, approx, auto"), "{err}");
    let d = WilcoxonOptions::default();
    assert_eq!((d.alternative, d.zero_method, d.method), (Alternative::Greater, ZeroMethod::Wilcox, Method::Auto));
}

/// xorshift64*: reproducible pseudo-random vectors without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Reference p-values (greater, less, two-sided) and W+ by literally enumerating all 2^n sign
/// flips of the ranks. Ranks use the textbook definition #smaller + (#equal + 1) / 2, so this
/// shares no code with the doubled-rank DP.
fn brute_force(d: &[f64], zero_method: ZeroMethod) -> (f64, [f64; 3]) {
    let pool: Vec<f64> = match zero_method {
        ZeroMethod::Wilcox => d.iter().copied().filter(|v| *v != 0.0).collect(),
        ZeroMethod::Pratt => d.to_vec(),
    };
    let rank = |a: f64| {
        let less = pool.iter().filter(|b| b.abs() < a).count() as f64;
        let eq = pool.iter().filter(|b| b.abs() == a).count() as f64;
        less + (eq + 1.0) / 2.0
    };
    let signed: Vec<(f64, bool)> = pool.iter().filter(|v| **v != 0.0).map(|v| (rank(v.abs()), *v > 0.0)).collect();
    let observed: f64 = signed.iter().filter(|(_, pos)| *pos).map(|(r, _)| r).sum();
    let n = signed.len();
    let (mut ge, mut le) = (0u64, 0u64);
    for mask in 0u64..(1 << n) {
        let w: f64 = (0..n).filter(|i| mask >> i & 1 == 1).map(|i| signed[i].0).sum();
        ge += u64::from(w >= observed);
        le += u64::from(w <= observed);
    }
    let total = (1u64 << n) as f64;
    let (pg, pl) = (ge as f64 / total, le as f64 / total);
    (observed, [pg, pl, (2.0 * pg.min(pl)).min(1.0)])
}

#[test]
fn wilcoxon_exact_matches_brute_force_enumeration() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alts = [Alternative::Greater, Alternative::Less, Alternative::TwoSided];
    let (mut checked, mut with_ties) = (0, 0);
    for n in 1..=12usize {
        // grid 0 keeps continuous values (no ties); coarse integer grids force ties and zeros.
        for grid in [0.0, 2.0, 4.0] {
            let mut draw = |shift: f64| -> Vec<f64> {
                let v = (0..n).map(|_| rng.next_f64() * 4.0 - shift);
                if grid > 0.0 {
                    v.map(|a| (a * grid).round()).collect()
                } else {
                    v.collect()
                }
            };
            let (x, y) = (draw(1.5), draw(2.0));
            let d: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
            if d.iter().all(|v| *v == 0.0) {
                continue;
            }
            for zm in [ZeroMethod::Wilcox, ZeroMethod::Pratt] {
                let (w, ps) = brute_force(&d, zm);
                for (alt, p) in alts.iter().zip(ps) {
                    let opts = WilcoxonOptions { alternative: *alt, zero_method: zm, method: Method::Exact };
                    let r = wilcoxon(&x, &y, &opts).unwrap();
                    assert_eq!(r.statistic, w, "n={n} {alt} {zm}");
                    let ok = (r.p_value - p).abs() <= 1e-12 * p;
                    assert!(ok, "n={n} {alt} {zm}: {} vs brute force {p}", r.p_value);
                    checked += 1;
                }
            }
            let mut a: Vec<f64> = d.iter().map(|v| v.abs()).collect();
            a.sort_by(f64::total_cmp);
            with_ties += usize::from(a.windows(2).any(|w| w[0] == w[1]));
        }
    }
    assert!(checked > 150 && with_ties > 10, "checked {checked}, tie cases {with_ties}");
}
