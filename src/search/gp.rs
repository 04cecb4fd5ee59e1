//! A small exact Gaussian-process regressor matching the model the report's
//! `bayesian-optimization` package builds with scikit-learn.
//!
//! Model (scikit-learn `GaussianProcessRegressor(kernel=Matern(nu=2.5),
//! alpha=1e-6, normalize_y=True)`): an isotropic Matérn-5/2 kernel with unit
//! amplitude and one length scale, `alpha` added to the diagonal, targets
//! standardised (mean 0, population std 1) before fitting and predictions
//! mapped back. The length scale maximises the log marginal likelihood over
//! `[1e-5, 1e5]`. scikit-learn runs L-BFGS-B from 1 + `n_restarts` starts in
//! log space; since the problem is one-dimensional we instead scan a grid of
//! step 0.25 in `ln ℓ` and refine the best cell by golden-section search, which
//! is deterministic and finds the global maximum up to the grid resolution.
//! Dense Cholesky, `O(n^3)`: intended for at most a few hundred observations.

use super::cholesky::{cholesky, solve_lower, solve_upper_t};
use super::optim::maximise_1d;
use super::SearchError;

/// Matérn-5/2 correlation at distance `r`: `(1 + d + d²/3)·exp(-d)`, `d = √5·r/ℓ`.
pub fn matern52(r: f64, length_scale: f64) -> f64 {
    let d = 5f64.sqrt() * r / length_scale;
    (1.0 + d + d * d / 3.0) * (-d).exp()
}

/// How the kernel length scale is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LengthScale {
    /// Use this length scale as given (must be positive).
    Fixed(f64),
    /// Maximise the log marginal likelihood over `[lo, hi]` (scikit-learn's
    /// default bounds are `1e-5..1e5`).
    Fit {
        /// Smallest length scale considered (positive).
        lo: f64,
        /// Largest length scale considered.
        hi: f64,
    },
}

/// Gaussian-process settings; the default is the report's model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpConfig {
    /// Value added to the diagonal of the kernel matrix (in normalised units
    /// when `normalize_y`), i.e. the assumed observation noise variance.
    pub alpha: f64,
    /// Standardise the targets before fitting.
    pub normalize_y: bool,
    /// Fixed or fitted length scale.
    pub length_scale: LengthScale,
}

impl Default for GpConfig {
    fn default() -> Self {
        Self { alpha: 1e-6, normalize_y: true, length_scale: LengthScale::Fit { lo: 1e-5, hi: 1e5 } }
    }
}

/// A fitted Gaussian process: posterior mean and standard deviation anywhere.
#[derive(Debug, Clone)]
pub struct GaussianProcess {
    x: Vec<Vec<f64>>,
    /// Lower Cholesky factor of `K + noise·I`, row-major `n × n`.
    chol: Vec<f64>,
    /// `(K + noise·I)^-1 · y_normalised`.
    weights: Vec<f64>,
    y_mean: f64,
    y_std: f64,
    length_scale: f64,
    noise: f64,
    lml: f64,
}

/// A Cholesky factorisation at one length scale.
struct Factor {
    chol: Vec<f64>,
    weights: Vec<f64>,
    lml: f64,
}

impl GaussianProcess {
    /// Fits the process to inputs `x` (all of one dimension) and targets `y`.
    ///
    /// Fails on empty, ragged or non-finite data or an invalid config. If the
    /// kernel matrix is numerically singular even with `alpha`, the diagonal
    /// is raised by factors of 10 (up to 8 times) before giving up.
    pub fn fit(x: &[Vec<f64>], y: &[f64], cfg: &GpConfig) -> Result<Self, SearchError> {
        validate(x, y, cfg)?;
        let (y_mean, y_std) = if cfg.normalize_y {
            let n = y.len() as f64;
            let mean = y.iter().sum::<f64>() / n;
            let std = (y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
            // scikit-learn's `_handle_zeros_in_scale`: a constant target keeps scale 1.
            (mean, if std < 10.0 * f64::EPSILON { 1.0 } else { std })
        } else {
            (0.0, 1.0)
        };
        let yn: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_std).collect();
        let length_scale = match cfg.length_scale {
            LengthScale::Fixed(l) => l,
            LengthScale::Fit { lo, hi } => {
                let lml = |log_l: f64| factor(x, &yn, log_l.exp(), cfg.alpha).map_or(f64::NEG_INFINITY, |f| f.lml);
                maximise_1d(lml, lo.ln(), hi.ln(), 0.25).exp().clamp(lo, hi)
            }
        };
        // Jitter: alpha, then max(alpha, 1e-10)·10^k for k = 1..=8.
        let mut last_err = String::new();
        for k in 0..=8 {
            let noise = if k == 0 { cfg.alpha } else { cfg.alpha.max(1e-10) * 10f64.powi(k) };
            match factor(x, &yn, length_scale, noise) {
                Ok(Factor { chol, weights, lml }) => {
                    let x = x.to_vec();
                    return Ok(Self { x, chol, weights, y_mean, y_std, length_scale, noise, lml });
                }
                Err(e) => last_err = format!("{e} with diagonal noise {noise:e}"),
            }
        }
        Err(SearchError::NotPositiveDefinite(format!("{last_err}, length scale {length_scale}")))
    }

    /// Posterior mean and standard deviation at `x`, in the units of `y`.
    pub fn predict(&self, x: &[f64]) -> Result<(f64, f64), SearchError> {
        let dims = self.x.first().map_or(0, Vec::len);
        if x.len() != dims {
            return Err(SearchError::DimensionMismatch { expected: dims, got: x.len() });
        }
        Ok(self.predict_with(x, &mut Vec::new()))
    }

    /// [`Self::predict`] without the dimension check, reusing `scratch`.
    pub(crate) fn predict_with(&self, x: &[f64], scratch: &mut Vec<f64>) -> (f64, f64) {
        let n = self.x.len();
        scratch.clear();
        scratch.extend(self.x.iter().map(|xi| matern52(dist(xi, x), self.length_scale)));
        let mean_n: f64 = scratch.iter().zip(&self.weights).map(|(k, w)| k * w).sum();
        // v = L^-1 k*, in place; var = k(x,x) - v·v with k(x,x) = 1.
        solve_lower(&self.chol, n, scratch);
        let vv: f64 = scratch.iter().map(|v| v * v).sum();
        let var_n = (1.0 - vv).max(0.0);
        (self.y_mean + self.y_std * mean_n, self.y_std * var_n.sqrt())
    }

    /// The length scale used (fixed or fitted).
    pub fn length_scale(&self) -> f64 {
        self.length_scale
    }

    /// Log marginal likelihood of the (normalised) targets at that length scale.
    pub fn log_marginal_likelihood(&self) -> f64 {
        self.lml
    }

    /// Diagonal noise actually used: `alpha`, or more if jitter was needed.
    pub fn noise(&self) -> f64 {
        self.noise
    }
}

fn validate(x: &[Vec<f64>], y: &[f64], cfg: &GpConfig) -> Result<(), SearchError> {
    let bad = |key, message: String| Err(SearchError::InvalidConfig { key, message });
    let dims = x.first().map_or(0, Vec::len);
    if dims == 0 || x.len() != y.len() {
        let got = format!("{} inputs of {dims} coordinates, {} targets", x.len(), y.len());
        return bad("gp.data", format!("need n >= 1 inputs and n targets, got {got}"));
    }
    for (index, (xi, yi)) in x.iter().zip(y).enumerate() {
        if xi.len() != dims {
            return Err(SearchError::DimensionMismatch { expected: dims, got: xi.len() });
        }
        if !xi.iter().chain([yi]).all(|v| v.is_finite()) {
            return Err(SearchError::NonFinite { index });
        }
    }
    let (lo, hi) = match cfg.length_scale {
        LengthScale::Fixed(l) => (l, l),
        LengthScale::Fit { lo, hi } => (lo, hi),
    };
    if !(cfg.alpha.is_finite() && cfg.alpha >= 0.0) {
        bad("gp.alpha", format!("{} must be finite and >= 0", cfg.alpha))
    } else if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
        bad("gp.length_scale", format!("[{lo}, {hi}] must satisfy 0 < lo <= hi < inf"))
    } else {
        Ok(())
    }
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>().sqrt()
}

/// Cholesky of `K + noise·I`, the weights `K^-1 y` and the log marginal likelihood.
fn factor(x: &[Vec<f64>], y: &[f64], length_scale: f64, noise: f64) -> Result<Factor, String> {
    let n = x.len();
    let mut k = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let kij = matern52(dist(&x[i], &x[j]), length_scale);
            (k[i * n + j], k[j * n + i]) = (kij, kij);
        }
        k[i * n + i] += noise;
    }
    let chol = cholesky(&k, n)?;
    let mut weights = y.to_vec();
    solve_lower(&chol, n, &mut weights);
    solve_upper_t(&chol, n, &mut weights);
    let data_fit: f64 = y.iter().zip(&weights).map(|(a, b)| a * b).sum();
    let log_det_half: f64 = (0..n).map(|i| chol[i * n + i].ln()).sum();
    let lml = -0.5 * data_fit - log_det_half - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    Ok(Factor { chol, weights, lml })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[track_caller]
    fn check(got: f64, want: f64, tol: f64) {
        assert!(close(got, want, tol), "got {got}, want {want} (tol {tol})");
    }

    #[test]
    fn matern_values() {
        // r=1, l=1: (1 + √5 + 5/3)·e^-√5 = 4.902734644·0.106878... = 0.5239941088318203
        check(matern52(1.0, 1.0), 0.5239941088318203, 1e-14);
        // r=0.5, l=1: (1 + 1.118034 + 0.416667)·e^-1.118034 = 0.8286491424181253
        check(matern52(0.5, 1.0), 0.8286491424181253, 1e-14);
        assert_eq!(matern52(0.0, 0.3), 1.0);
        check(matern52(0.2, 0.4), matern52(0.5, 1.0), 1e-14);
    }

    #[test]
    fn two_point_posterior_closed_form() {
        // x = {0, 1}, y = {0.3, 1.1}, l = 1, alpha = a = 1e-6, no normalisation.
        // K = [[1+a, ρ], [ρ, 1+a]], ρ = k(1) = 0.5239941088318203.
        // At the midpoint k* = (c, c), c = k(0.5) = 0.8286491424181253, so
        //   mean = c·(y0 + y1)/(1 + a + ρ) = 1.1601087994/1.5239951088 = 0.7612286894
        //   var  = 1 - 2c²/(1 + a + ρ)     = 1 - 1.3733188025/1.5239951088 = 0.0988692847
        // At x = 0: k* = (1, ρ); K^-1 = [[1+a, -ρ], [-ρ, 1+a]]/((1+a)² - ρ²).
        let (a, rho, c) = (1e-6, 0.5239941088318203, 0.8286491424181253);
        let cfg = GpConfig { alpha: a, normalize_y: false, length_scale: LengthScale::Fixed(1.0) };
        let gp = GaussianProcess::fit(&[vec![0.0], vec![1.0]], &[0.3, 1.1], &cfg).unwrap();
        let (m, s) = gp.predict(&[0.5]).unwrap();
        let (m_hand, v_hand) = (c * 1.4 / (1.0 + a + rho), 1.0 - 2.0 * c * c / (1.0 + a + rho));
        check(m_hand, 0.7612286894, 1e-9);
        check(v_hand, 0.0988692847, 1e-9);
        check(m, m_hand, 1e-12);
        check(s * s, v_hand, 1e-10);
        let det = (1.0 + a) * (1.0 + a) - rho * rho;
        let w = [((1.0 + a) * 0.3 - rho * 1.1) / det, ((1.0 + a) * 1.1 - rho * 0.3) / det];
        let (m0, s0) = gp.predict(&[0.0]).unwrap();
        check(m0, w[0] + rho * w[1], 1e-12);
        let v0 = 1.0 - ((1.0 + a) * (1.0 + rho * rho) - 2.0 * rho * rho) / det;
        check(s0 * s0, v0, 1e-6);
        assert!(s0 < 2e-3, "near-interpolation at a training point");
    }

    #[test]
    fn three_points_fixed_kernel_matches_sklearn() {
        // Reference: scikit-learn 1.9.1 GaussianProcessRegressor(Matern(0.3, nu=2.5),
        // alpha=1e-6, normalize_y=True, optimizer=None).fit([[.1],[.4],[.9]], [.2,.8,.5]).
        let cfg = GpConfig { length_scale: LengthScale::Fixed(0.3), ..GpConfig::default() };
        let gp = GaussianProcess::fit(&[vec![0.1], vec![0.4], vec![0.9]], &[0.2, 0.8, 0.5], &cfg).unwrap();
        let want = [
            (0.25, 0.5048719143092684, 0.07631546034877744),
            (0.6, 0.7759313145171967, 0.13647035058928353),
            (1.0, 0.4658111385380302, 0.09651748599529299),
            (0.4, 0.7999993371893186, 0.00024494879557115),
        ];
        for (x, m_ref, s_ref) in want {
            let (m, s) = gp.predict(&[x]).unwrap();
            check(m, m_ref, 1e-10);
            check(s, s_ref, 1e-6);
        }
        check(gp.log_marginal_likelihood(), -5.827758604700957, 1e-10);
    }

    #[test]
    fn fitted_length_scale_matches_sklearn() {
        // scikit-learn, Matern(nu=2.5) default bounds, 25 L-BFGS-B restarts:
        // 1-D: length_scale_ 0.2309064935752784, LML -6.879180180211782.
        let x1: Vec<Vec<f64>> = [0.0, 0.2, 0.45, 0.7, 1.0].iter().map(|&v| vec![v]).collect();
        let gp = GaussianProcess::fit(&x1, &[0.1, 0.5, 0.9, 0.6, 0.2], &GpConfig::default()).unwrap();
        check(gp.length_scale(), 0.2309064935752784, 1e-5);
        check(gp.log_marginal_likelihood(), -6.879180180211782, 1e-9);
        let (m, s) = gp.predict(&[0.3]).unwrap();
        check(m, 0.722774300743062, 1e-5);
        check(s, 0.0873777352595366, 1e-4);
        // 2-D: length_scale_ 0.14976661627048155, LML -8.443453289926243.
        let pts = [[0.1, 0.9], [0.5, 0.5], [0.9, 0.2], [0.3, 0.3], [0.7, 0.8], [0.2, 0.6]];
        let x2: Vec<Vec<f64>> = pts.iter().map(|p| p.to_vec()).collect();
        let gp = GaussianProcess::fit(&x2, &[0.3, 0.8, 0.4, 0.6, 0.5, 0.55], &GpConfig::default()).unwrap();
        check(gp.length_scale(), 0.14976661627048155, 1e-4);
        assert!(gp.log_marginal_likelihood() >= -8.443453289926243 - 1e-9);
        let (m, s) = gp.predict(&[0.4, 0.4]).unwrap();
        check(m, 0.6939481214594166, 1e-4);
        check(s, 0.10729502596212387, 1e-3);
    }

    #[test]
    fn degenerate_data_and_errors() {
        // One point, constant targets, duplicated inputs: all fit without panicking.
        let gp = GaussianProcess::fit(&[vec![0.5]], &[2.0], &GpConfig::default()).unwrap();
        let (m, _) = gp.predict(&[0.5]).unwrap();
        check(m, 2.0, 1e-9);
        let dup = vec![vec![0.2, 0.2], vec![0.2, 0.2], vec![0.8, 0.1]];
        let gp = GaussianProcess::fit(&dup, &[1.0, 1.2, 0.0], &GpConfig::default()).unwrap();
        let (m, s) = gp.predict(&[0.2, 0.2]).unwrap();
        assert!(m.is_finite() && s.is_finite() && close(m, 1.1, 1e-3), "{m}");
        assert!(GaussianProcess::fit(&dup, &[1.0, 1.0, 1.0], &GpConfig::default()).is_ok());
        assert!(gp.predict(&[0.2]).is_err());
        assert!(GaussianProcess::fit(&[], &[], &GpConfig::default()).is_err());
        assert!(GaussianProcess::fit(&[vec![0.0]], &[f64::NAN], &GpConfig::default()).is_err());
        assert!(GaussianProcess::fit(&[vec![0.0], vec![1.0, 2.0]], &[0.0, 1.0], &GpConfig::default()).is_err());
        let bad = GpConfig { length_scale: LengthScale::Fixed(0.0), ..GpConfig::default() };
        assert!(GaussianProcess::fit(&[vec![0.0]], &[0.0], &bad).is_err());
    }
}
