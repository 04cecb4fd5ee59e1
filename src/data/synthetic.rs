//! A seeded synthetic classification set (Gaussian class clusters) for fast tests.
use super::Raw;
use crate::rng::{stream, Stream};
use rand_distr::{Distribution, Normal};

/// Options for [`generate`].
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Training examples.
    pub train: usize,
    /// Test examples.
    pub test: usize,
    /// Number of classes.
    pub classes: usize,
    /// Image shape `[C, H, W]`.
    pub shape: [i64; 3],
    /// Noise standard deviation around the class centre (pixels are then clamped to [0, 1]).
    pub noise: f64,
    /// Seed for centres and samples.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self { train: 2000, test: 500, classes: 10, shape: [1, 8, 8], noise: 0.25, seed: 0 }
    }
}

/// Returns (train, test). Pixels are bytes like a real image set, so the same
/// standardisation path runs.
pub(crate) fn generate(cfg: &SyntheticConfig) -> (Raw, Raw) {
    let dim = (cfg.shape[0] * cfg.shape[1] * cfg.shape[2]) as usize;
    let mut rng = stream(cfg.seed, Stream::Split, 0);
    let unit = rand_distr::Uniform::new(0.0f64, 1.0).expect("valid range");
    let centres: Vec<Vec<f64>> = (0..cfg.classes).map(|_| (0..dim).map(|_| unit.sample(&mut rng)).collect()).collect();
    let noise = Normal::new(0.0, cfg.noise.max(1e-9)).expect("positive std");
    let mut make = |n: usize| {
        let mut pixels = Vec::with_capacity(n * dim);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % cfg.classes;
            labels.push(c as i64);
            pixels.extend(centres[c].iter().map(|m| ((m + noise.sample(&mut rng)).clamp(0.0, 1.0) * 255.0).round() as u8));
        }
        Raw { pixels, labels, shape: cfg.shape }
    };
    let train = make(cfg.train);
    let test = make(cfg.test);
    (train, test)
}
