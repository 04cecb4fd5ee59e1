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

impl SyntheticConfig {
    /// Checks every field before anything is generated.
    ///
    /// # Errors
    /// Names the key, the value and the valid range.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |key: &str, msg: String| Err(crate::Error::config(key, msg));
        if self.classes < 2 || self.classes > 100_000 {
            return bad("classes", format!("{} is outside 2..=100000", self.classes));
        }
        if self.train < 1 || self.test < 1 {
            return bad(if self.train < 1 { "train" } else { "test" }, "0 must be >= 1".into());
        }
        let dim: i64 = self.shape.iter().product();
        if self.shape.iter().any(|d| *d < 1) || dim > 1 << 20 {
            return bad("shape", format!("{:?} must have positive sides and at most 2^20 pixels", self.shape));
        }
        // Bytes of pixels (one per feature) plus the float32 copies after standardisation.
        let bytes = (self.train as i128 + self.test as i128) * dim as i128 * 9;
        let have = crate::model::available_memory() as i128;
        if bytes > have {
            return bad(
                if self.train >= self.test { "train" } else { "test" },
                format!("{} + {} examples of {dim} features need about {bytes} bytes, more than the {have} bytes of memory available", self.train, self.test),
            );
        }
        if !(self.noise >= 0.0 && self.noise.is_finite()) {
            return bad("noise", format!("{} must be a finite number >= 0", self.noise));
        }
        Ok(())
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
        Raw { pixels, labels, shape: cfg.shape, files: Vec::new() }
    };
    let train = make(cfg.train);
    let test = make(cfg.test);
    (train, test)
}
