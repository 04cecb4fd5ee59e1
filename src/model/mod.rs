//! Sparse models: masked linear/conv layers, activations, BatchNorm, and the MLP
//! builder. Masks live in the VarStore as non-trainable variables, so saving a model
//! saves its masks (STYLE rule 3).
mod activation;
mod conv;
mod ensemble;
mod linear;
mod mask;
mod mlp;
mod norm;
mod resnet;

pub use activation::{Activation, ACTIVATIONS};
pub use conv::{SparseConv2d, SparseConv2dConfig};
pub use ensemble::{batchable, BatchedMlp};
pub use linear::{Fan, Kernel, SparseLinear, SparseLinearConfig, COMPACT_CROSSOVER, KERNELS};
pub use mask::{count as mask_count, kaiming_normal, masked_weight, random_mask, Density};
pub use mlp::{Densities, Mlp, MlpConfig};
pub use norm::BatchNorm;
pub use resnet::{Cnn, CnnConfig, CNNS};

use crate::error::{Error, Result};
use std::fmt;
use std::path::Path;
use tch::{nn, Device, Tensor};

/// How a forward pass treats BatchNorm and dropout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics (running statistics updated), dropout on.
    Train,
    /// Running statistics, dropout off.
    Eval,
    /// Gradient-flow measurement: batch statistics without updating the running
    /// statistics, dropout off, so measuring never changes training (SPEC 5).
    Measure,
}

/// A weight layer (linear or conv) as the optimizer and gradient flow see it.
pub struct WeightRef<'a> {
    /// Dotted name, e.g. `fc2`.
    pub name: &'a str,
    /// The effective weight, zero where masked (for a compact layer a materialised
    /// copy, or the gradient-flow leaf while measuring).
    pub weight: Tensor,
    /// Its 0/1 mask.
    pub mask: &'a Tensor,
}

/// A trainable tensor and, for masked weights, its mask.
pub struct Param {
    /// VarStore name, e.g. `fc1.weight`.
    pub name: String,
    /// The variable (shares storage with the model).
    pub tensor: Tensor,
    /// 0/1 mask for sparse weights.
    pub mask: Option<Tensor>,
}

/// One row of a model's layer report.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// Layer name.
    pub name: String,
    /// Weight shape.
    pub shape: Vec<i64>,
    /// Active weights.
    pub active: i64,
    /// All weights.
    pub total: i64,
    /// active / total.
    pub density: f64,
}

/// What every sparselab model provides.
pub trait Model {
    /// xs: `[B, C, H, W]` -> logits `[B, classes]`.
    fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor>;
    /// Weight layers in forward order; a density vector maps onto these one-to-one.
    fn weight_layers(&self) -> Vec<WeightRef<'_>>;
    /// The variables (weights, masks, BatchNorm statistics).
    fn var_store(&self) -> &nn::VarStore;
    /// Mutable variables, for moving between devices and loading.
    fn var_store_mut(&mut self) -> &mut nn::VarStore;
    /// Expected per-example input shape `[C, H, W]`.
    fn input_shape(&self) -> [i64; 3];
    /// One-line description, e.g. `MLP 784-4x788-10 relu`.
    fn describe(&self) -> String;

    /// Trainable tensors in name order, each with its mask when it is a sparse weight.
    fn params(&self) -> Vec<Param> {
        let vars = self.var_store().variables();
        let mut names: Vec<&String> = vars.keys().filter(|k| vars[*k].requires_grad()).collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let mask = n.strip_suffix(".weight").and_then(|p| vars.get(&format!("{p}.mask"))).map(|m| m.shallow_clone());
                Param { name: n.clone(), tensor: vars[n].shallow_clone(), mask }
            })
            .collect()
    }

    /// Per weight layer: name, shape, active, total, density.
    fn layers(&self) -> Vec<LayerInfo> {
        self.weight_layers()
            .iter()
            .map(|l| {
                let shape = l.mask.size();
                let total: i64 = shape.iter().product();
                let active = mask_count(l.mask);
                LayerInfo { name: l.name.to_string(), shape, active, total, density: active as f64 / total as f64 }
            })
            .collect()
    }

    /// Ends a gradient-flow measurement (drops compact layers' measuring leaves).
    fn clear_measure(&self) {}

    /// The weight layers in the form the fused CPU training step takes
    /// ([`crate::compute::FusedMlp`]): `Some` for a plain ReLU MLP (no BatchNorm, skip
    /// or dropout), `None` for any other model.
    ///
    /// # Errors
    /// Layer tensors that do not fit together (see [`crate::compute::FusedLayer`]).
    fn fused_layers(&self) -> Result<Option<Vec<crate::compute::FusedLayer>>> {
        Ok(None)
    }

    /// Replaces every weight layer's mask (in [`Model::weight_layers`] order) and zeroes
    /// the weights the new masks drop.
    ///
    /// # Errors
    /// A count or shape that does not match.
    fn set_masks(&self, masks: &[Tensor]) -> Result<()> {
        let layers = self.weight_layers();
        check_masks(&layers, masks)?;
        set_dense_masks(&layers, masks);
        Ok(())
    }

    /// Device of the variables.
    fn device(&self) -> Device {
        self.var_store().device()
    }

    /// Moves all variables (masks and statistics included) to `device`.
    fn to_device(&mut self, device: Device) {
        self.var_store_mut().set_device(device);
    }

    /// Saves weights, masks and BatchNorm statistics (`.safetensors` or `.ot`).
    fn save(&self, path: &Path) -> Result<()> {
        self.var_store().save(path).map_err(Error::from)
    }

    /// Loads weights, masks and statistics saved by [`Model::save`] from a model of the same shape.
    fn load(&mut self, path: &Path) -> Result<()> {
        self.var_store_mut().load(path).map_err(|e| Error::data(path, e.to_string()))
    }
}

pub(crate) fn check_masks(layers: &[WeightRef<'_>], masks: &[Tensor]) -> Result<()> {
    if layers.len() != masks.len() {
        return Err(Error::config("masks", format!("{} masks given, the model has {} weight layers", masks.len(), layers.len())));
    }
    for (l, m) in layers.iter().zip(masks) {
        if l.mask.size() != m.size() {
            return Err(Error::config("masks", format!("{}: mask shape {:?}, layer shape {:?}", l.name, m.size(), l.mask.size())));
        }
    }
    Ok(())
}

/// Copies each mask into a layer that stores its weight densely and zeroes the
/// weights it drops (the masks are already checked).
pub(crate) fn set_dense_masks(layers: &[WeightRef<'_>], masks: &[Tensor]) {
    let _guard = tch::no_grad_guard();
    for (l, m) in layers.iter().zip(masks) {
        l.mask.shallow_clone().copy_(m);
        let _ = l.weight.shallow_clone().g_mul_(m);
    }
}

/// The layer report as an aligned text table.
pub fn layer_table(layers: &[LayerInfo]) -> String {
    let mut out = format!("{:<8} {:>14} {:>10} {:>10} {:>8}\n", "name", "shape", "active", "total", "density");
    for l in layers {
        let shape = l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        out += &format!("{:<8} {:>14} {:>10} {:>10} {:>8.4}\n", l.name, shape, l.active, l.total, l.density);
    }
    let (a, t): (i64, i64) = layers.iter().fold((0, 0), |(a, t), l| (a + l.active, t + l.total));
    out += &format!("{:<8} {:>14} {:>10} {:>10} {:>8.4}", "total", "", a, t, a as f64 / t.max(1) as f64);
    out
}

impl fmt::Display for LayerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} {}/{} ({:.4})", self.name, self.shape, self.active, self.total, self.density)
    }
}
