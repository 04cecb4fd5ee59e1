//! Sparse 2-D convolution: a dense kernel with a fixed 0/1 mask, masked entries held at 0.0.
use super::linear::{resolve_fan, Fan};
use super::mask::{masked_weight, Density};
use crate::error::{Error, Result};
use tch::{nn, Tensor};

/// Builds a [`SparseConv2d`].
#[derive(Clone, Debug, PartialEq)]
pub struct SparseConv2dConfig {
    /// Input channels.
    pub input: i64,
    /// Output channels.
    pub output: i64,
    /// Square kernel size.
    pub kernel: i64,
    /// Stride.
    pub stride: i64,
    /// Zero padding.
    pub padding: i64,
    /// Active weights.
    pub density: Density,
    /// Bias (zero-initialised).
    pub bias: bool,
    /// Kaiming fan (layer fan-in = `in * k * k`).
    pub fan: Fan,
}

impl SparseConv2dConfig {
    /// A dense 3x3, stride 1, padding 1 convolution without bias.
    pub fn new(input: i64, output: i64, kernel: i64) -> Self {
        Self { input, output, kernel, stride: 1, padding: kernel / 2, density: Density::Fraction(1.0), bias: false, fan: Fan::Layer }
    }
    /// Sets the stride.
    pub fn with_stride(mut self, s: i64) -> Self {
        self.stride = s;
        self
    }
    /// Sets the density.
    pub fn with_density(mut self, d: Density) -> Self {
        self.density = d;
        self
    }
    /// Sets the padding.
    pub fn with_padding(mut self, p: i64) -> Self {
        self.padding = p;
        self
    }

    /// Creates weight, mask and bias under `path`.
    ///
    /// # Errors
    /// Non-positive sizes or a bad density.
    pub fn init(&self, path: &nn::Path, seed: u64, layer: u64) -> Result<SparseConv2d> {
        let name = path.components().collect::<Vec<_>>().join(".");
        if self.input < 1 || self.output < 1 || self.kernel < 1 || self.stride < 1 {
            return Err(Error::config("conv", format!("{name}: channels, kernel and stride must be positive")));
        }
        let shape = [self.output, self.input, self.kernel, self.kernel];
        let numel: i64 = shape.iter().product();
        let k = self.density.active(numel, &name)?;
        let fan = resolve_fan(self.fan, self.input * self.kernel * self.kernel, k, self.output);
        let (weight, mask) = masked_weight(path, &shape, k, fan, seed, layer)?;
        let bias = if self.bias { Some(path.f_zeros("bias", &[self.output])?) } else { None };
        Ok(SparseConv2d { name, weight, mask, bias, stride: self.stride, padding: self.padding })
    }
}

/// A convolution whose masked kernel entries are exactly zero at all times.
#[derive(Debug)]
pub struct SparseConv2d {
    /// Dotted VarStore path.
    pub name: String,
    /// `[out, in, k, k]`.
    pub weight: Tensor,
    /// `[out, in, k, k]` float 0/1.
    pub mask: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
    stride: i64,
    padding: i64,
}

impl SparseConv2d {
    /// Output height (or width) for an input of height `h`.
    pub fn output_size(&self, h: i64) -> i64 {
        let k = self.mask.size()[2];
        (h + 2 * self.padding - k) / self.stride + 1
    }

    /// Multiply-adds of one example's forward pass for an input of height and width
    /// `h`: `[all weights, active weights]` (the kernel is stored densely, so it runs
    /// all), and the output height.
    pub fn macs(&self, h: i64) -> ([f64; 2], i64) {
        let o = self.output_size(h);
        let positions = (o * o) as f64;
        ([self.mask.numel() as f64 * positions, super::mask::count(&self.mask) as f64 * positions], o)
    }

    /// xs: `[B, in, H, W]` -> `[B, out, H', W']`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.f_conv2d(&self.weight, self.bias.as_ref(), [self.stride], [self.padding], [1], 1).map_err(|e| Error::Shape(format!("{}: {e}", self.name)))
    }
}
