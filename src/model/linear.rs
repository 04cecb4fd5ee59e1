//! Sparse linear layer: a dense weight with a fixed 0/1 mask, masked entries held at 0.0.
use super::mask::{count, masked_weight, Density};
use crate::error::{Error, Result};
use tch::{nn, Tensor};

/// How the Kaiming fan of a layer is chosen (SPEC 2, 4).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Fan {
    /// The layer's own fan-in (`in` for linear, `in * kh * kw` for conv).
    Layer,
    /// The mean active fan-in: `active / out`.
    Effective,
    /// An explicit value (SC-SDC uses the dense twin's fan-in).
    Value(f64),
}

/// Builds a [`SparseLinear`]: `SparseLinearConfig::new(784, 300).with_density(0.1).init(&(root / "fc1"), seed, 0)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseLinearConfig {
    /// Input features.
    pub input: i64,
    /// Output features.
    pub output: i64,
    /// Active weights.
    pub density: Density,
    /// Whether the layer has a bias (initialised to zero).
    pub bias: bool,
    /// Kaiming fan.
    pub fan: Fan,
}

impl SparseLinearConfig {
    /// A dense (density 1) layer with bias and the layer's fan-in.
    pub fn new(input: i64, output: i64) -> Self {
        Self { input, output, density: Density::Fraction(1.0), bias: true, fan: Fan::Layer }
    }
    /// Sets the density fraction.
    pub fn with_density(mut self, d: f64) -> Self {
        self.density = Density::Fraction(d);
        self
    }
    /// Sets the exact active count.
    pub fn with_active(mut self, k: i64) -> Self {
        self.density = Density::Active(k);
        self
    }
    /// Enables or disables the bias.
    pub fn with_bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    /// Sets the Kaiming fan.
    pub fn with_fan(mut self, fan: Fan) -> Self {
        self.fan = fan;
        self
    }

    /// Creates the weight, mask (a non-trainable variable, saved with the model) and
    /// bias under `path`; mask and init draw from `(seed, layer)` streams.
    ///
    /// # Errors
    /// Non-positive sizes, a bad density or fan.
    pub fn init(&self, path: &nn::Path, seed: u64, layer: u64) -> Result<SparseLinear> {
        let name = path.components().collect::<Vec<_>>().join(".");
        if self.input < 1 || self.output < 1 {
            return Err(Error::config("width", format!("{name}: sizes {}x{} must be positive", self.output, self.input)));
        }
        let shape = [self.output, self.input];
        let k = self.density.active(self.output * self.input, &name)?;
        let fan = resolve_fan(self.fan, self.input, k, self.output);
        let (weight, mask) = masked_weight(path, &shape, k, fan, seed, layer)?;
        let bias = if self.bias { Some(path.f_zeros("bias", &[self.output])?) } else { None };
        Ok(SparseLinear { name, weight, mask, bias })
    }
}

pub(crate) fn resolve_fan(fan: Fan, layer_fan: i64, active: i64, out: i64) -> f64 {
    match fan {
        Fan::Layer => layer_fan as f64,
        Fan::Effective => active as f64 / out as f64,
        Fan::Value(v) => v,
    }
}

/// A linear layer whose masked weights are exactly zero at all times.
#[derive(Debug)]
pub struct SparseLinear {
    /// Dotted VarStore path, e.g. `fc1`.
    pub name: String,
    /// `[out, in]`, zero where `mask` is zero.
    pub weight: Tensor,
    /// `[out, in]` float 0/1.
    pub mask: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
}

impl SparseLinear {
    /// xs: `[batch, in]` -> `[batch, out]`. Masked weights are stored as zeros, so the
    /// dense product is exact; the optimizer keeps them zero (SPEC 1).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.f_linear(&self.weight, self.bias.as_ref()).map_err(|e| Error::Shape(format!("{}: {e}", self.name)))
    }

    /// Active weights.
    pub fn active(&self) -> i64 {
        count(&self.mask)
    }
}
