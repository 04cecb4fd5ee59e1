//! Bayesian optimisation: a Gaussian-process surrogate of score versus
//! densities, and the next candidate maximising an acquisition function.
//!
//! Follows the report's use of the python `bayesian-optimization` package:
//! `init_points` random candidates first, then a GP (see [`GaussianProcess`],
//! Matérn 5/2, `alpha = 1e-6`, `normalize_y`, length scale fitted by maximum
//! likelihood) refitted on every call, and the acquisition (UCB with
//! `kappa = 10` by default, or EI) maximised by scoring `n_warmup` uniform
//! samples and refining the best `n_refine` of them with a box-clamped
//! Nelder–Mead simplex. All randomness comes from one seeded ChaCha8 stream,
//! so a given seed and history always give the same proposal.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::gp::{GaussianProcess, GpConfig};
use super::optim::nelder_mead;
use super::random::sample_uniform;
use super::stats::{norm_cdf, norm_pdf};
use super::{Observation, SearchError, SearchSpace, Searcher};

/// Acquisition function scoring a candidate from the posterior mean and std.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Acquisition {
    /// Upper confidence bound `mean + kappa·std` (the report used `kappa = 10`).
    Ucb {
        /// Exploration weight, `>= 0`.
        kappa: f64,
    },
    /// Expected improvement over the best score so far plus `xi`.
    Ei {
        /// Required margin of improvement (`0.0` by default).
        xi: f64,
    },
}

impl Default for Acquisition {
    fn default() -> Self {
        Acquisition::Ucb { kappa: 10.0 }
    }
}

impl Acquisition {
    /// Value at a point with posterior `mean` and `std`, given the best score `y_max`.
    ///
    /// EI is `a·Φ(a/std) + std·φ(a/std)` with `a = mean - y_max - xi`, and
    /// `max(a, 0)` where `std = 0`.
    pub fn value(&self, mean: f64, std: f64, y_max: f64) -> f64 {
        match *self {
            Acquisition::Ucb { kappa } => mean + kappa * std,
            Acquisition::Ei { xi } => {
                let a = mean - y_max - xi;
                if std <= 0.0 {
                    return a.max(0.0);
                }
                let z = a / std;
                (a * norm_cdf(z) + std * norm_pdf(z)).max(0.0)
            }
        }
    }
}

/// Bayesian-optimisation settings; the default matches the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayesOptConfig {
    /// Proposals drawn uniformly at random before the GP is used (default 5).
    pub init_points: usize,
    /// Acquisition function (default UCB, `kappa = 10`).
    pub acquisition: Acquisition,
    /// Uniform samples scored to seed the acquisition search (default 10,000).
    pub n_warmup: usize,
    /// Best samples refined by Nelder–Mead (default 10).
    pub n_refine: usize,
    /// Acquisition evaluations allowed per refinement (default 1,000).
    pub refine_evals: usize,
    /// Surrogate model settings.
    pub gp: GpConfig,
}

impl Default for BayesOptConfig {
    fn default() -> Self {
        Self { init_points: 5, acquisition: Acquisition::default(), n_warmup: 10_000, n_refine: 10, refine_evals: 1_000, gp: GpConfig::default() }
    }
}

/// GP-based searcher (ask-and-tell). Observations with a non-finite score
/// (failed trials) are left out of the model.
#[derive(Debug, Clone)]
pub struct BayesOpt {
    space: SearchSpace,
    cfg: BayesOptConfig,
    rng: ChaCha8Rng,
    proposed: usize,
}

impl BayesOpt {
    /// A searcher over `space`, with every random draw seeded from `seed`.
    pub fn new(space: SearchSpace, cfg: BayesOptConfig, seed: u64) -> Result<Self, SearchError> {
        space.validate()?;
        let bad = |key, message: String| Err(SearchError::InvalidConfig { key, message });
        match cfg.acquisition {
            Acquisition::Ucb { kappa } if !(kappa.is_finite() && kappa >= 0.0) => return bad("acquisition.kappa", format!("{kappa} must be finite and >= 0")),
            Acquisition::Ei { xi } if !xi.is_finite() => return bad("acquisition.xi", format!("{xi} must be finite")),
            _ => {}
        }
        if cfg.n_warmup == 0 {
            return bad("n_warmup", "must be at least 1".into());
        }
        Ok(Self { space, cfg, rng: ChaCha8Rng::seed_from_u64(seed), proposed: 0 })
    }

    /// Number of candidates proposed so far.
    pub fn proposals_made(&self) -> usize {
        self.proposed
    }

    fn check_history(&self, history: &[Observation]) -> Result<(), SearchError> {
        for (index, obs) in history.iter().enumerate() {
            if obs.x.len() != self.space.dims {
                return Err(SearchError::DimensionMismatch { expected: self.space.dims, got: obs.x.len() });
            }
            if !obs.x.iter().all(|v| v.is_finite()) {
                return Err(SearchError::NonFinite { index });
            }
        }
        Ok(())
    }

    /// Maximises the acquisition of `gp` over the box.
    fn maximise(&mut self, gp: &GaussianProcess, y_max: f64) -> Vec<f64> {
        let acq = self.cfg.acquisition;
        let mut scratch = Vec::new();
        let mut f = |x: &[f64]| {
            let (m, s) = gp.predict_with(x, &mut scratch);
            let v = acq.value(m, s, y_max);
            if v.is_nan() {
                f64::NEG_INFINITY
            } else {
                v
            }
        };
        let mut samples: Vec<(f64, Vec<f64>)> = (0..self.cfg.n_warmup)
            .map(|_| {
                let x = sample_uniform(&self.space, &mut self.rng);
                (f(&x), x)
            })
            .collect();
        // Best first; the sort is stable, so ties keep sampling order.
        samples.sort_by(|a, b| b.0.total_cmp(&a.0));
        let Some(mut best) = samples.first().cloned() else {
            return sample_uniform(&self.space, &mut self.rng); // n_warmup >= 1: unreachable
        };
        for (v0, x0) in samples.iter().take(self.cfg.n_refine) {
            let (x, v) = nelder_mead(&mut f, x0, *v0, &self.space, self.cfg.refine_evals);
            if v > best.0 {
                best = (v, x);
            }
        }
        self.space.clamp(&best.1)
    }
}

impl Searcher for BayesOpt {
    /// Random for the first `init_points` calls (or while no finite score is
    /// known); afterwards the acquisition maximiser of a GP fitted to `history`.
    fn propose(&mut self, history: &[Observation]) -> Result<Vec<f64>, SearchError> {
        self.check_history(history)?;
        let usable: Vec<&Observation> = history.iter().filter(|o| o.score.is_finite()).collect();
        let x = if self.proposed < self.cfg.init_points || usable.is_empty() {
            sample_uniform(&self.space, &mut self.rng)
        } else {
            let xs: Vec<Vec<f64>> = usable.iter().map(|o| o.x.clone()).collect();
            let ys: Vec<f64> = usable.iter().map(|o| o.score).collect();
            let gp = GaussianProcess::fit(&xs, &ys, &self.cfg.gp)?;
            let y_max = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            self.maximise(&gp, y_max)
        };
        self.proposed += 1;
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::RandomSearch;

    fn run(cfg: BayesOptConfig, space: SearchSpace, seed: u64, n: usize, f: impl Fn(&[f64]) -> f64) -> Vec<Observation> {
        let mut bo = BayesOpt::new(space, cfg, seed).unwrap();
        let mut history = Vec::new();
        for _ in 0..n {
            let x = bo.propose(&history).unwrap();
            assert!(space.contains(&x), "{x:?}");
            history.push(Observation { score: f(&x), x });
        }
        history
    }

    fn best(h: &[Observation]) -> &Observation {
        h.iter().max_by(|a, b| a.score.total_cmp(&b.score)).unwrap()
    }

    #[test]
    fn acquisition_values_by_hand() {
        // UCB: 0.5 + 10·0.02 = 0.7.
        assert!((Acquisition::default().value(0.5, 0.02, 9.0) - 0.7).abs() < 1e-15);
        // EI with a = 0: std·φ(0) = 2·0.3989422804014327.
        let ei = Acquisition::Ei { xi: 0.0 };
        assert!((ei.value(1.0, 2.0, 1.0) - 0.7978845608028654).abs() < 1e-12);
        // EI with a = 1, std = 1: Φ(1) + φ(1) = 0.8413447460685429 + 0.24197072451914337.
        assert!((ei.value(2.0, 1.0, 1.0) - 1.0833154705876864).abs() < 1e-6);
        assert_eq!(ei.value(0.5, 0.0, 1.0), 0.0);
        assert_eq!(ei.value(1.5, 0.0, 1.0), 0.5);
    }

    #[test]
    fn init_points_are_the_random_stream_and_runs_are_deterministic() {
        let space = SearchSpace::per_layer(3).unwrap();
        let cfg = BayesOptConfig { n_warmup: 500, ..BayesOptConfig::default() };
        let f = |x: &[f64]| -x.iter().map(|v| (v - 0.4).powi(2)).sum::<f64>();
        let a = run(cfg, space, 11, 8, f);
        let b = run(cfg, space, 11, 8, f);
        assert_eq!(a, b);
        let mut rs = RandomSearch::new(space, 11).unwrap();
        for obs in &a[..5] {
            assert_eq!(obs.x, rs.propose(&[]).unwrap());
        }
    }

    #[test]
    fn ucb_finds_the_max_of_a_1d_toy() {
        // f has a local max near 0.19 (0.42) and the global max at x = 0.7 (1.0).
        let f = |x: &[f64]| (-(x[0] - 0.7).powi(2) / 0.02).exp() + 0.45 * (-(x[0] - 0.15).powi(2) / 0.005).exp();
        let h = run(BayesOptConfig::default(), SearchSpace::uniform(), 3, 20, f);
        let b = best(&h);
        assert!((b.x[0] - 0.7).abs() < 0.01 && b.score > 0.995, "{b:?}");
    }

    #[test]
    fn ei_finds_the_max_of_a_1d_toy() {
        let f = |x: &[f64]| -(x[0] - 0.33).powi(2);
        let cfg = BayesOptConfig { acquisition: Acquisition::Ei { xi: 0.0 }, ..BayesOptConfig::default() };
        let h = run(cfg, SearchSpace::uniform(), 5, 15, f);
        assert!((best(&h).x[0] - 0.33).abs() < 0.01, "{:?}", best(&h));
    }

    #[test]
    fn ucb_improves_on_random_in_2d() {
        let space = SearchSpace::per_layer(2).unwrap();
        let f = |x: &[f64]| -((x[0] - 0.3).powi(2) + (x[1] - 0.8).powi(2));
        let cfg = BayesOptConfig { n_warmup: 2000, ..BayesOptConfig::default() };
        let h = run(cfg, space, 9, 30, f);
        assert!(best(&h).score > -1e-3, "{:?}", best(&h));
    }

    #[test]
    fn bad_history_and_failed_trials() {
        let space = SearchSpace::per_layer(2).unwrap();
        let mut bo = BayesOpt::new(space, BayesOptConfig { init_points: 0, n_warmup: 50, ..Default::default() }, 0).unwrap();
        let wrong = [Observation { x: vec![0.5], score: 1.0 }];
        assert!(matches!(bo.propose(&wrong), Err(SearchError::DimensionMismatch { expected: 2, got: 1 })));
        let nan_x = [Observation { x: vec![0.5, f64::NAN], score: 1.0 }];
        assert!(matches!(bo.propose(&nan_x), Err(SearchError::NonFinite { index: 0 })));
        // Only failed trials: falls back to a random candidate.
        let failed = [Observation { x: vec![0.5, 0.5], score: f64::NAN }];
        assert!(space.contains(&bo.propose(&failed).unwrap()));
        let mixed = [failed[0].clone(), Observation { x: vec![0.2, 0.9], score: 0.7 }];
        assert!(space.contains(&bo.propose(&mixed).unwrap()));
        let bad = BayesOptConfig { acquisition: Acquisition::Ucb { kappa: -1.0 }, ..Default::default() };
        assert!(BayesOpt::new(space, bad, 0).is_err());
    }
}
