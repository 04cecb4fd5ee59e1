//! The MLP: `depth` sparse hidden layers of width `w`, then a sparse output layer
//! (SPEC 2), with optional BatchNorm, residual pairs, dropout and a bias switch.
use super::{Activation, BatchNorm, Density, Fan, Kernel, Mode, Model, SparseLinear, SparseLinearConfig, WeightRef};
use crate::error::{Error, Result};
use tch::{nn, Device, Tensor};

/// Per-layer densities: one for all `depth + 1` weight layers, or one each.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Densities {
    /// The same density everywhere.
    Uniform(f64),
    /// One density per weight layer (`depth + 1` entries).
    PerLayer(Vec<f64>),
    /// Exact active counts per weight layer (`depth + 1` entries).
    Active(Vec<i64>),
    /// A model-wide target shared among layers (uniform, ER or ERK).
    Allocated(super::Allocation),
}

/// The most hidden layers an MLP may have (the report uses at most 8).
pub const MAX_DEPTH: usize = 1000;

/// Builds an [`Mlp`]; check-and-build in [`MlpConfig::init`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpConfig {
    /// Input features (`C * H * W`).
    pub input: i64,
    /// Output classes.
    pub classes: i64,
    /// Hidden layers (the report's "# HL").
    pub depth: usize,
    /// Hidden width.
    pub width: i64,
    /// Active weights per layer.
    pub densities: Densities,
    /// Activation name (see [`super::ACTIVATIONS`]).
    pub activation: String,
    /// BatchNorm1d after each hidden linear layer.
    pub batch_norm: bool,
    /// Residual connection around hidden layer pairs 2-3, 4-5, ... (SPEC 2).
    pub skip: bool,
    /// Biases on every layer.
    pub bias: bool,
    /// Dropout probability after each hidden activation.
    pub dropout: f64,
    /// Kaiming fan per layer; `None` = each layer's own fan-in.
    pub fans: Option<Vec<Fan>>,
    /// Seed of the masks and initial values.
    pub seed: u64,
    /// Weight representation per layer (`Auto`: compact below the crossover density).
    /// Not part of a run's identity when `Auto`.
    #[serde(default, skip_serializing_if = "Kernel::is_auto")]
    pub kernel: Kernel,
}

impl MlpConfig {
    /// A dense ReLU MLP without BatchNorm, skip, dropout; with biases; seed 0.
    pub fn new(input: i64, classes: i64, depth: usize, width: i64) -> Self {
        Self {
            input,
            classes,
            depth,
            width,
            densities: Densities::Uniform(1.0),
            activation: "relu".into(),
            batch_norm: false,
            skip: false,
            bias: true,
            dropout: 0.0,
            fans: None,
            seed: 0,
            kernel: Kernel::Auto,
        }
    }

    /// The `mlp(data)` defaults (SPEC 2): depth 4, width input + 4 (788 for
    /// Fashion-MNIST), dense, ReLU, biases, no BatchNorm, skip or dropout, seed 0.
    pub fn defaults(data: &crate::data::Dataset) -> Self {
        MlpConfig::new(data.input_size(), data.classes as i64, 4, data.input_size() + 4)
    }

    /// Weight-layer shapes `[out, in]` in order.
    pub fn shapes(&self) -> Vec<[i64; 2]> {
        let mut v = Vec::with_capacity(self.depth + 1);
        let mut prev = self.input;
        for _ in 0..self.depth {
            v.push([self.width, prev]);
            prev = self.width;
        }
        v.push([self.classes, prev]);
        v
    }

    fn layer_densities(&self) -> Result<Vec<Density>> {
        let n = self.depth + 1;
        Ok(match &self.densities {
            Densities::Uniform(d) => vec![Density::Fraction(*d); n],
            Densities::PerLayer(v) if v.len() == n => v.iter().map(|d| Density::Fraction(*d)).collect(),
            Densities::Active(v) if v.len() == n => v.iter().map(|k| Density::Active(*k)).collect(),
            Densities::Allocated(a) => a.active_counts(&self.shapes().iter().map(|s| s.to_vec()).collect::<Vec<_>>())?.into_iter().map(Density::Active).collect(),
            Densities::PerLayer(v) => return Err(len_err("density", v.len(), n)),
            Densities::Active(v) => return Err(len_err("active", v.len(), n)),
        })
    }

    /// Active weights per weight layer, as [`MlpConfig::init`] builds them.
    ///
    /// # Errors
    /// A density list of the wrong length, a density or count out of range.
    pub fn active_counts(&self) -> Result<Vec<i64>> {
        let shapes = self.shapes();
        self.layer_densities()?.iter().zip(&shapes).enumerate().map(|(i, (d, [o, inp]))| d.active(o * inp, &format!("fc{}", i + 1))).collect()
    }

    /// The representation [`MlpConfig::init`] gives each weight layer (`Auto` resolved
    /// by the layer's density).
    ///
    /// # Errors
    /// As [`MlpConfig::active_counts`].
    pub fn kernels(&self) -> Result<Vec<Kernel>> {
        Ok(self.active_counts()?.iter().zip(self.shapes()).enumerate().map(|(l, (k, [o, i]))| self.kernel.resolve_layer(o, i, *k, l > 0)).collect())
    }

    /// Checks that the model fits in this machine's memory before anything is
    /// allocated: weights, masks, gradients and one optimizer state, 16 bytes per
    /// weight, against the memory available now.
    ///
    /// # Errors
    /// A model too large, naming its size and the option to change.
    pub fn check_size(&self) -> Result<()> {
        if self.input < 1 || self.classes < 2 {
            return Err(Error::config("input", format!("input {} and classes {} must be >= 1 and >= 2", self.input, self.classes)));
        }
        if self.depth > 0 && self.width < 1 {
            return Err(Error::config("width", format!("{} must be >= 1", self.width)));
        }
        if self.depth > MAX_DEPTH {
            return Err(Error::config("depth", format!("{} is outside 0..={MAX_DEPTH}", self.depth)));
        }
        let weights: i128 = self.shapes().iter().fold(0i128, |acc, [o, i]| acc.saturating_add((*o as i128).saturating_mul(*i as i128)));
        let need = weights.saturating_mul(16);
        let have = super::available_memory() as i128;
        if need > have {
            let key = if self.depth > 0 && self.width as i128 * self.width as i128 > self.input as i128 * self.classes as i128 { "width" } else { "depth" };
            return Err(Error::config(
                key,
                format!(
                    "an MLP {}-{}x{}-{} has {weights} weights and needs about {} (weights, masks, gradients, optimizer state), more than the {} of memory available; use a smaller width or depth",
                    self.input,
                    self.depth,
                    self.width,
                    self.classes,
                    super::human_bytes(need),
                    super::human_bytes(have)
                ),
            ));
        }
        Ok(())
    }

    /// Checks every field and builds the model on `device`.
    ///
    /// # Errors
    /// Names the key, the value and what is allowed.
    pub fn init(&self, device: Device) -> Result<Mlp> {
        let n = self.depth + 1;
        self.check_size()?;
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", format!("{} must be in [0, 1)", self.dropout)));
        }
        let densities = self.layer_densities()?;
        let fans = match &self.fans {
            None => vec![Fan::Layer; n],
            Some(f) if f.len() == 1 => vec![f[0]; n],
            Some(f) if f.len() == n => f.clone(),
            Some(f) => return Err(len_err("init_fan", f.len(), n)),
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let mut linears = Vec::with_capacity(n);
        let mut norms = Vec::new();
        let mut acts = Vec::new();
        for (i, [out, inp]) in self.shapes().into_iter().enumerate() {
            let cfg = SparseLinearConfig::new(inp, out).with_bias(self.bias).with_fan(fans[i]).with_kernel(self.kernel);
            let cfg = SparseLinearConfig { density: densities[i], ..cfg };
            linears.push(cfg.init(&(&root / format!("fc{}", i + 1)), self.seed, i as u64)?);
            if i < self.depth {
                if self.batch_norm {
                    norms.push(BatchNorm::new(&(&root / format!("bn{}", i + 1)), out)?);
                }
                acts.push(Activation::new(&self.activation, &(&root / format!("act{}", i + 1)), out, false, self.seed, i as u64)?);
            }
        }
        let mut mlp = Mlp { cfg: self.clone(), vs, linears, norms, acts };
        mlp.to_device(device);
        Ok(mlp)
    }
}

fn len_err(key: &str, got: usize, want: usize) -> Error {
    Error::config(key, format!("{got} entries given, the MLP has {want} weight layers (depth + 1)"))
}

/// Active weights on an input-to-output path, per layer, for an MLP's masks
/// The fused step's layers with the residual blocks of `skip` marked: hidden layer
/// `i` ends a block when `i` is even and at least 2 (see [`Mlp`]'s forward pass).
pub(crate) fn with_residuals(layers: Vec<crate::compute::FusedLayer>, depth: usize, skip: bool) -> Vec<crate::compute::FusedLayer> {
    layers.into_iter().enumerate().map(|(i, l)| if skip && i < depth && i >= 2 && i.is_multiple_of(2) { l.with_residual() } else { l }).collect()
}

/// (`[out, in]`, layer order) with `depth` hidden layers and optional skip blocks (as
/// [`Mlp`]'s forward pass adds them: the input of hidden layer 1, 3, 5, ... joins the
/// pre-activation of hidden layer 2, 4, 6, ...). A unit is reached when some active
/// weight or skip brings input to it, and useful when some active weight or skip
/// carries it on to an output; a weight counts when it joins a reached unit to a
/// useful one.
pub fn effective_active(masks: &[Tensor], depth: usize, skip: bool) -> Vec<i64> {
    let _guard = tch::no_grad_guard();
    let starts = |i: usize| skip && i % 2 == 1 && i + 1 < depth;
    let ends = |i: usize| skip && i.is_multiple_of(2) && i >= 2;
    let on = |t: Tensor| t.gt(0.0).to_kind(tch::Kind::Float);
    // reach[k]: units of h_k (h_0 the input, h_{i+1} the output of weight layer i).
    let mut reach = vec![Tensor::ones([masks[0].size()[1]], (tch::Kind::Float, Device::Cpu))];
    for (i, m) in masks.iter().enumerate() {
        let mut r = m.mv(&reach[i]);
        if i < depth && ends(i) {
            r += &reach[i - 1];
        }
        reach.push(on(r));
    }
    let n = masks.len();
    let mut useful: Vec<Tensor> = (0..=n).map(|_| Tensor::zeros([1], (tch::Kind::Float, Device::Cpu))).collect();
    useful[n] = Tensor::ones([masks[n - 1].size()[0]], (tch::Kind::Float, Device::Cpu));
    for i in (0..n).rev() {
        let mut u = masks[i].tr().mv(&useful[i + 1]);
        if i < depth && starts(i) {
            u += &useful[i + 2];
        }
        useful[i] = on(u);
    }
    masks.iter().enumerate().map(|(i, m)| (m * useful[i + 1].unsqueeze(1) * reach[i].unsqueeze(0)).sum(tch::Kind::Double).double_value(&[]).round() as i64).collect()
}

/// A sparse MLP (see [`MlpConfig`]).
pub struct Mlp {
    cfg: MlpConfig,
    vs: nn::VarStore,
    linears: Vec<SparseLinear>,
    norms: Vec<BatchNorm>,
    acts: Vec<Activation>,
}

impl Mlp {
    /// The configuration it was built from.
    pub fn config(&self) -> &MlpConfig {
        &self.cfg
    }
    /// The linear layers in order.
    pub fn linears(&self) -> &[SparseLinear] {
        &self.linears
    }
}

impl Model for Mlp {
    /// xs: `[B, ...]` flattened to `[B, input]` -> `[B, classes]`. With `skip`, hidden
    /// layers (2, 3), (4, 5), ... form residual blocks: the block input is added to
    /// the second layer's (normalised) pre-activation, as in a ResNet basic block.
    fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut h = xs.f_flatten(1, -1)?;
        let mut residual: Option<Tensor> = None;
        for i in 0..self.cfg.depth {
            // 0-based hidden i: blocks start at i = 1, 3, 5, ... and need a partner.
            let starts_block = self.cfg.skip && i % 2 == 1 && i + 1 < self.cfg.depth;
            let ends_block = self.cfg.skip && i.is_multiple_of(2) && i >= 2;
            if starts_block {
                residual = Some(h.shallow_clone());
            }
            let mut z = self.linears[i].forward(&h, mode)?;
            if self.cfg.batch_norm {
                z = self.norms[i].forward(&z, mode)?;
            }
            if ends_block {
                if let Some(r) = residual.take() {
                    // Out of place: autograd may still need `z`.
                    #[allow(clippy::assign_op_pattern)]
                    {
                        z = z + r;
                    }
                }
            }
            h = self.acts[i].forward(&z)?;
            if self.cfg.dropout > 0.0 && mode == Mode::Train {
                let s = h.size();
                h = h.f_mul(&super::dropout_noise(s[0], s[1], self.cfg.dropout, h.device())?)?;
            }
        }
        self.linears[self.cfg.depth].forward(&h, mode)
    }

    fn weight_layers(&self) -> Vec<WeightRef<'_>> {
        self.linears.iter().map(|l| WeightRef { name: &l.name, weight: l.weight(), mask: &l.mask }).collect()
    }

    fn clear_measure(&self) {
        self.linears.iter().for_each(SparseLinear::clear_measure);
    }

    fn macs(&self) -> Option<[f64; 3]> {
        Some(self.linears.iter().fold([0.0; 3], |[d, a, x], l| {
            let (total, active) = (l.mask.numel() as f64, l.active() as f64);
            [d + total, a + active, x + if l.kernel() == Kernel::Compact { active } else { total }]
        }))
    }

    fn compact_sparse_layers(&mut self) -> Result<usize> {
        let off_cpu = self.cfg.kernel == Kernel::Measured && self.device() != tch::Device::Cpu;
        if !matches!(self.cfg.kernel, Kernel::Auto | Kernel::Measured) || off_cpu {
            return Ok(0);
        }
        let kernel = self.cfg.kernel;
        let mut n = 0;
        for (i, l) in self.linears.iter_mut().enumerate() {
            let [o, inp] = [l.mask.size()[0], l.mask.size()[1]];
            if l.kernel() == Kernel::Dense && kernel.resolve_layer(o, inp, l.active(), i > 0) == Kernel::Compact {
                l.make_compact(&self.vs)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn effective_active(&self) -> Option<Vec<i64>> {
        let masks: Vec<Tensor> = self.linears.iter().map(|l| l.mask.to_device(Device::Cpu).to_kind(tch::Kind::Float)).collect();
        Some(effective_active(&masks, self.cfg.depth, self.cfg.skip))
    }

    fn fused_layers(&self) -> Result<Option<Vec<crate::compute::FusedLayer>>> {
        let c = &self.cfg;
        if !self.acts.iter().all(|a| matches!(a, Activation::Relu)) {
            return Ok(None);
        }
        // norms[i] follows hidden layer i (none without BatchNorm).
        let layers = self
            .linears
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let f = match self.norms.get(i) {
                    Some(n) => {
                        let [w, b, m, v] = n.tensors();
                        l.fused()?.with_batch_norm(w, b, m, v)?
                    }
                    None => l.fused()?,
                };
                if i < c.depth {
                    f.with_dropout(c.dropout)
                } else {
                    Ok(f)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(with_residuals(layers, c.depth, c.skip)))
    }

    fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        super::check_masks(&self.weight_layers(), weights)?;
        self.linears.iter().zip(weights).try_for_each(|(l, w)| l.set_weight(w))
    }

    fn set_masks(&self, masks: &[Tensor]) -> Result<Vec<super::Remap>> {
        super::check_masks(&self.weight_layers(), masks)?;
        self.linears.iter().zip(masks).map(|(l, m)| l.set_mask(m)).collect()
    }

    fn load(&mut self, path: &std::path::Path) -> Result<()> {
        super::load_var_store(&mut self.vs, path)?;
        self.linears.iter().try_for_each(SparseLinear::refresh)?;
        Ok(())
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn input_shape(&self) -> [i64; 3] {
        [1, 1, self.cfg.input]
    }

    fn describe(&self) -> String {
        let c = &self.cfg;
        let mut extras = vec![c.activation.clone()];
        if c.batch_norm {
            extras.push("bn".into());
        }
        if c.skip {
            extras.push("skip".into());
        }
        if c.dropout > 0.0 {
            extras.push(format!("dropout {}", c.dropout));
        }
        if !c.bias {
            extras.push("no bias".into());
        }
        format!("MLP {}-{}x{}-{} {}", c.input, c.depth, c.width, c.classes, extras.join(" "))
    }
}
