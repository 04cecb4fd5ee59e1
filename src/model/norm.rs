//! Batch normalisation with an explicit mode, so gradient-flow measurement can use
//! batch statistics without touching the running statistics.
use super::Mode;
use crate::error::{Error, Result};
use tch::{nn, Tensor};

/// BatchNorm over dim 1 (features of `[B, F]` or channels of `[B, C, H, W]`),
/// momentum 0.1, eps 1e-5, as PyTorch's BatchNorm1d/2d.
#[derive(Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl BatchNorm {
    /// Creates scale (1), shift (0) and running statistics under `path`.
    pub fn new(path: &nn::Path, units: i64) -> Result<Self> {
        Ok(Self {
            weight: path.f_ones("weight", &[units])?,
            bias: path.f_zeros("bias", &[units])?,
            running_mean: path.f_zeros_no_train("running_mean", &[units])?,
            running_var: path.f_ones_no_train("running_var", &[units])?,
        })
    }

    /// Scale, shift, running mean and running variance (the fused step trains and
    /// updates them in place).
    pub(crate) fn tensors(&self) -> [&Tensor; 4] {
        [&self.weight, &self.bias, &self.running_mean, &self.running_var]
    }

    /// Train: batch statistics, running statistics updated. Eval: running statistics.
    /// Measure: batch statistics, running statistics untouched.
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let (rm, rv) = match mode {
            Mode::Measure => (None, None),
            _ => (Some(&self.running_mean), Some(&self.running_var)),
        };
        if mode.batch_statistics() && crate::repro::deterministic() {
            return crate::repro::batch_norm_train(xs, &self.weight, &self.bias, rm.zip(rv)).map_err(|e| Error::Shape(format!("batch norm: {e}")));
        }
        xs.f_batch_norm(Some(&self.weight), Some(&self.bias), rm, rv, mode.batch_statistics(), 0.1, 1e-5, true).map_err(|e| Error::Shape(format!("batch norm: {e}")))
    }
}
