//! Sparse models: masked linear/conv layers, activations, BatchNorm, and the MLP
//! builder. Masks live in the VarStore as non-trainable variables, so saving a model
//! saves its masks (STYLE rule 3).
mod activation;
mod allocation;
mod conv;
mod ensemble;
mod lineage;
mod linear;
mod mask;
mod mlp;
mod norm;
mod resnet;

pub use activation::{Activation, ACTIVATIONS};
pub use allocation::{Allocation, AllocationKind, ALLOCATIONS};
pub use conv::{SparseConv2d, SparseConv2dConfig};
pub use ensemble::{batchable, BatchedMlp};
pub use lineage::{Lineage, Tracked, Transform};
pub use linear::{measured_kernel, time_kernels, Fan, Kernel, SparseLinear, SparseLinearConfig, COMPACT_CROSSOVER, KERNELS};
pub use mask::{count as mask_count, kaiming_normal, masked_weight, random_mask, Density};
pub use mlp::{effective_active, Densities, Mlp, MlpConfig, MAX_DEPTH};
pub use norm::BatchNorm;
pub use resnet::{Cnn, CnnConfig, CNNS};

use crate::error::{Error, Result};
use std::fmt;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

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
    /// As [`Mode::Measure`] (dense gradients of every weight layer), with the running
    /// statistics of [`Mode::Eval`]: SynFlow's data-free score.
    MeasureEval,
}

impl Mode {
    /// Whether BatchNorm normalises by batch statistics.
    pub fn batch_statistics(self) -> bool {
        matches!(self, Mode::Train | Mode::Measure)
    }
    /// Whether compact layers expose a dense weight leaf for dense gradients.
    pub fn measuring(self) -> bool {
        matches!(self, Mode::Measure | Mode::MeasureEval)
    }
}

/// Dropout's scaled keep-mask for a `[batch, width]` activation: Bernoulli(1 - p) draws
/// divided by 1 - p, drawn from libtorch's generator in memory order, as `at::dropout`
/// draws on the CPU. The MLP's forward pass and the fused step both draw it here, layer
/// by layer after the loop's per-step reseed, so the two paths drop the same units.
///
/// # Errors
/// libtorch failures.
pub fn dropout_noise(batch: i64, width: i64, p: f64, device: Device) -> Result<Tensor> {
    Ok(Tensor::f_empty([batch, width], (Kind::Float, device))?.f_bernoulli_float_(1.0 - p)?.f_div_scalar_(1.0 - p)?)
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

/// How a tensor laid out like a weight layer's trainable weight (its optimizer
/// state, the fused step's velocity) follows a mask change: kept where the weight
/// stays active, zero where it was dropped or grown (a grown weight starts with no
/// history, as RigL and SET reset it).
pub enum Remap {
    /// A dense `[out, in]` (or `[E, out, in]`) weight: multiply by the new mask.
    Dense {
        /// VarStore name of the weight, e.g. `fc1.weight`.
        param: String,
        /// The new mask (shared with the layer).
        mask: Tensor,
    },
    /// Compact values: entry `j` of the new values is entry `src[j]` of the old ones,
    /// or zero where `src[j] < 0` (a grown weight).
    Compact {
        /// VarStore name of the values, e.g. `fc1.values`.
        param: String,
        /// `[new nnz]` int64 (CPU).
        src: Tensor,
    },
}

impl Remap {
    /// A dense layer's remap.
    pub fn dense(param: &str, mask: &Tensor) -> Self {
        Remap::Dense { param: param.to_string(), mask: mask.shallow_clone() }
    }

    /// A compact layer's remap from the flat positions of its old and new plans.
    pub fn compact(param: &str, old_flat: &Tensor, new_flat: &Tensor, numel: i64) -> Self {
        let _guard = tch::no_grad_guard();
        let index = Tensor::full([numel], -1i64, (Kind::Int64, Device::Cpu)).index_put(&[Some(old_flat.shallow_clone())], &Tensor::arange(old_flat.size()[0], (Kind::Int64, Device::Cpu)), false);
        Remap::Compact { param: param.to_string(), src: index.index_select(0, new_flat) }
    }

    /// The parameter this remap applies to.
    pub fn param(&self) -> &str {
        match self {
            Remap::Dense { param, .. } | Remap::Compact { param, .. } => param,
        }
    }

    /// `t` (laid out like the old weight) laid out like the new one.
    pub fn apply(&self, t: &Tensor) -> Tensor {
        let _guard = tch::no_grad_guard();
        match self {
            Remap::Dense { mask, .. } => t * mask,
            Remap::Compact { src, .. } => {
                let src = src.to_device(t.device());
                if t.numel() == 0 {
                    return t.new_zeros(src.size().as_slice(), (t.kind(), t.device()));
                }
                t.index_select(0, &src.clamp_min(0)) * src.ge(0).to_kind(t.kind())
            }
        }
    }
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

    /// After pruning: every layer whose configuration leaves the representation to
    /// its density (`Kernel::Auto`) and whose density is now at or below
    /// [`COMPACT_CROSSOVER`], or to a timing (`Kernel::Measured`, on the CPU) that now
    /// finds the compact kernel faster, switches to the compact kernels. Returns how many did.
    ///
    /// # Errors
    /// A mask that gives no plan.
    fn compact_sparse_layers(&mut self) -> Result<usize> {
        Ok(0)
    }

    /// Multiply-adds of one example's forward pass: `[dense, active, executed]` (every
    /// weight; active weights; what the kernels run: active weights in compact layers,
    /// all in layers stored densely). `None` where not counted.
    fn macs(&self) -> Option<[f64; 3]> {
        None
    }

    /// Per weight layer, the active weights on at least one path from an input to an
    /// output through active weights (and skip connections): a layer with none has
    /// collapsed. `None` where the model does not analyse its paths (CNNs: only
    /// empty layers are detected there).
    fn effective_active(&self) -> Option<Vec<i64>> {
        None
    }

    /// The weight layers in the form the fused CPU training step takes
    /// ([`crate::compute::FusedMlp`]): `Some` for a ReLU MLP (BatchNorm, skip connections
    /// and dropout allowed), `None` for any other model.
    ///
    /// # Errors
    /// Layer tensors that do not fit together (see [`crate::compute::FusedLayer`]).
    fn fused_layers(&self) -> Result<Option<Vec<crate::compute::FusedLayer>>> {
        Ok(None)
    }

    /// Replaces every weight layer's mask (in [`Model::weight_layers`] order) and zeroes
    /// the weights the new masks drop. Returns, per weight layer, how tensors laid out
    /// like its trainable weight (optimizer state) follow the change.
    ///
    /// # Errors
    /// A count or shape that does not match.
    fn set_masks(&self, masks: &[Tensor]) -> Result<Vec<Remap>> {
        let layers = self.weight_layers();
        check_masks(&layers, masks)?;
        set_dense_masks(&layers, masks);
        Ok(layers.iter().map(|l| Remap::dense(&format!("{}.weight", l.name), l.mask)).collect())
    }

    /// Sets every weight layer's effective weight (`[out, in]` or conv shape, layer
    /// order) to `weights` masked by the layer's current mask (rewinding).
    ///
    /// # Errors
    /// A count or shape that does not match.
    fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        let layers = self.weight_layers();
        check_masks(&layers, weights)?;
        let _guard = tch::no_grad_guard();
        for (l, w) in layers.iter().zip(weights) {
            l.weight.shallow_clone().f_copy_(&(w.to_device(l.mask.device()) * l.mask))?;
        }
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
        load_var_store(self.var_store_mut(), path)
    }
}

/// Loads every variable of `vs` from `path` (`.safetensors`, else libtorch's `.ot`),
/// checking names and shapes first, so a file from a model of another shape is one
/// error naming the tensor and both shapes and the model is left unchanged.
///
/// # Errors
/// An unreadable file, a missing or extra tensor, a shape mismatch.
pub(crate) fn load_var_store(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
    let safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let named = if safetensors { Tensor::read_safetensors(path) } else { Tensor::load_multi(path) };
    let named: std::collections::HashMap<String, Tensor> = named.map_err(|e| Error::data(path, crate::error::first_line(&e.to_string())))?.into_iter().collect();
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in &names {
        let want = vars[*name].size();
        match named.get(*name) {
            None => return Err(Error::data(path, format!("has no tensor {name:?} (the model has {} tensors, the file {}): saved from another model?", vars.len(), named.len()))),
            Some(t) if t.size() != want => return Err(Error::data(path, format!("tensor {name:?} has shape {:?} in the file, {want:?} in the model: saved from a model of another shape", t.size()))),
            Some(_) => {}
        }
    }
    if let Some(extra) = named.keys().find(|k| !vars.contains_key(*k)) {
        return Err(Error::data(path, format!("tensor {extra:?} is not in the model: saved from another model?")));
    }
    let _guard = tch::no_grad_guard();
    for name in names {
        let mut v = vars[name].shallow_clone();
        let src = named[name].f_to_kind(v.kind())?.f_to_device(v.device())?;
        v.f_copy_(&src)?;
    }
    Ok(())
}

/// Bytes of memory available to this process now: `MemAvailable` on Linux (else
/// 16 GiB), capped by `SPARSELAB_MAX_MEMORY` (bytes, or with a K/M/G suffix) when set,
/// e.g. to keep a job within its Slurm `--mem`.
pub fn available_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo.lines().find(|l| l.starts_with("MemAvailable:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok());
    let have = kib.map(|k| k * 1024).unwrap_or(16 << 30);
    let cap = std::env::var("SPARSELAB_MAX_MEMORY").ok().and_then(|v| {
        let v = v.trim().to_ascii_uppercase();
        let (num, mul) = match v.chars().last() {
            Some('K') => (&v[..v.len() - 1], 1u64 << 10),
            Some('M') => (&v[..v.len() - 1], 1 << 20),
            Some('G') => (&v[..v.len() - 1], 1 << 30),
            _ => (&v[..], 1),
        };
        num.trim().parse::<u64>().ok().map(|n| n.saturating_mul(mul))
    });
    cap.map_or(have, |c| c.min(have))
}

/// `1.5 GB`, `240 TB`: decimal units, three significant digits.
pub(crate) fn human_bytes(n: i128) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"];
    let (mut v, mut u) = (n as f64, 0);
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", units[u])
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
