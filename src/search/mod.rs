//! Density search for SNAS: ask-and-tell searchers, the ASHA early-stopping
//! scheduler, budget projection and the accuracy/size Pareto front.
//!
//! A candidate is a density per weight layer (`dims` = number of layers,
//! "non-uniform") or one density shared by every layer (`dims` = 1, "uniform"),
//! each in `[lo, hi]` (defaults [`DEFAULT_D_MIN`]..[`DEFAULT_D_MAX`]).
//! Training and evaluating a candidate happens elsewhere; this module only
//! decides what to try next ([`Searcher`]), when to stop a trial early
//! ([`Asha`]), how to bring a candidate under a budget ([`project_to_budget`]:
//! candidates over budget are projected, never trained) and which results are
//! worth reporting ([`pareto_front`]).
//!
//! Everything here is pure Rust and deterministic given its seed: random draws
//! come from [`rand_chacha::ChaCha8Rng`] streams, identical on every platform
//! ([`RandomSearch`] is bit-for-bit portable; [`BayesOpt`] also depends on the
//! platform's `exp`/`ln`, so it is bit-for-bit reproducible on one platform).

mod asha;
mod bayes;
mod budget;
mod cholesky;
mod gp;
mod optim;
mod pareto;
mod random;
mod stats;

pub use asha::{Asha, AshaConfig, Decision};
pub use bayes::{Acquisition, BayesOpt, BayesOptConfig};
pub use budget::{active_weights, overall_density, project_to_budget, project_to_budget_with_floor};
pub use gp::{matern52, GaussianProcess, GpConfig, LengthScale};
pub use pareto::pareto_front;
pub use random::RandomSearch;
pub use stats::nanpercentile;

use serde::{Deserialize, Serialize};

/// Smallest density a layer may be given (the report's `d_min`).
pub const DEFAULT_D_MIN: f64 = 0.005;
/// Largest density a layer may be given (dense).
pub const DEFAULT_D_MAX: f64 = 1.0;

/// Errors from the search algorithms; each names the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    /// A search box that is empty, unbounded or has no dimensions.
    #[error("invalid search space: {0}")]
    InvalidSpace(String),
    /// A configuration value out of range.
    #[error("invalid search configuration: {key}: {message}")]
    InvalidConfig {
        /// The configuration field, e.g. `reduction_factor`.
        key: &'static str,
        /// What was wrong and what is allowed.
        message: String,
    },
    /// An observation or query point with the wrong number of coordinates.
    #[error("point has {got} coordinates, the search space has {expected}")]
    DimensionMismatch {
        /// Dimensions of the search space.
        expected: usize,
        /// Coordinates in the point given.
        got: usize,
    },
    /// A coordinate that is NaN or infinite.
    #[error("point {index} of the history has a non-finite coordinate")]
    NonFinite {
        /// Index of the offending observation.
        index: usize,
    },
    /// The Gaussian-process covariance could not be factorised even with jitter.
    #[error("Gaussian process: covariance matrix not positive definite ({0})")]
    NotPositiveDefinite(String),
}

/// One finished evaluation: a candidate and its score (higher is better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The candidate densities, one per search dimension.
    pub x: Vec<f64>,
    /// Its score, e.g. validation accuracy; higher is better. Non-finite
    /// scores (failed trials) are ignored by the model-based searchers.
    pub score: f64,
}

/// The box `[lo, hi]^dims` that candidates are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// Number of coordinates: layers for a non-uniform search, 1 for uniform.
    pub dims: usize,
    /// Lower bound of every coordinate.
    pub lo: f64,
    /// Upper bound of every coordinate.
    pub hi: f64,
}

impl SearchSpace {
    /// A box `[lo, hi]^dims`; fails unless `dims >= 1` and `lo <= hi` are finite.
    pub fn new(dims: usize, lo: f64, hi: f64) -> Result<Self, SearchError> {
        if dims == 0 {
            return Err(SearchError::InvalidSpace("dims must be at least 1".into()));
        }
        if !lo.is_finite() || !hi.is_finite() || lo > hi {
            return Err(SearchError::InvalidSpace(format!("bounds [{lo}, {hi}] must be finite with lo <= hi")));
        }
        Ok(Self { dims, lo, hi })
    }

    /// One density per layer in `[DEFAULT_D_MIN, DEFAULT_D_MAX]` (non-uniform search).
    pub fn per_layer(layers: usize) -> Result<Self, SearchError> {
        Self::new(layers, DEFAULT_D_MIN, DEFAULT_D_MAX)
    }

    /// One density for all layers in `[DEFAULT_D_MIN, DEFAULT_D_MAX]` (uniform search).
    pub fn uniform() -> Self {
        Self { dims: 1, lo: DEFAULT_D_MIN, hi: DEFAULT_D_MAX }
    }

    /// `x` with every coordinate clamped into the box.
    pub fn clamp(&self, x: &[f64]) -> Vec<f64> {
        x.iter().map(|&v| v.clamp(self.lo, self.hi)).collect()
    }

    /// Whether `x` has `dims` finite coordinates, all inside the box.
    pub fn contains(&self, x: &[f64]) -> bool {
        x.len() == self.dims && x.iter().all(|&v| v.is_finite() && v >= self.lo && v <= self.hi)
    }

    /// Re-checks the invariants (fields are public, so a struct literal may break them).
    pub(crate) fn validate(&self) -> Result<(), SearchError> {
        Self::new(self.dims, self.lo, self.hi).map(|_| ())
    }
}

/// A search algorithm in ask-and-tell form: the caller evaluates candidates and
/// passes every finished observation back on each call.
pub trait Searcher {
    /// Next candidate given the history of finished observations.
    ///
    /// The result always lies inside the searcher's [`SearchSpace`]. It may be
    /// over a parameter budget: pass it through [`project_to_budget`] before
    /// training (candidates over budget are projected, never trained).
    fn propose(&mut self, history: &[Observation]) -> Result<Vec<f64>, SearchError>;

    /// Whether proposals depend on the history's scores (so a run's later trials
    /// cannot be known before earlier ones finish). Random search's do not.
    fn adaptive(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_validation() {
        assert!(SearchSpace::new(0, 0.0, 1.0).is_err());
        assert!(SearchSpace::new(2, 1.0, 0.0).is_err());
        assert!(SearchSpace::new(2, f64::NAN, 1.0).is_err());
        let s = SearchSpace::per_layer(3).unwrap();
        assert_eq!((s.dims, s.lo, s.hi), (3, 0.005, 1.0));
        assert_eq!(SearchSpace::uniform().dims, 1);
        assert_eq!(s.clamp(&[-1.0, 0.5, 2.0]), vec![0.005, 0.5, 1.0]);
        assert!(s.contains(&[0.005, 0.5, 1.0]));
        assert!(!s.contains(&[0.5, 0.5]));
        assert!(!s.contains(&[0.5, f64::NAN, 0.5]));
    }
}
