//! Batched ensembles: `E` MLPs of one architecture trained as one model, so many
//! small networks fill the machine together (a GPU above all) instead of one after
//! another. Each member keeps everything a run of its own has: its masks and initial
//! values (built by [`MlpConfig::init`] from its own seed, then stacked), its own
//! minibatches (the input is `[E, B, features]`), its own BatchNorm statistics and
//! activation parameters, and its own optimizer state (every update rule is
//! elementwise, and the loss is the sum of the members' mean losses, whose gradient
//! for a member is that member's gradient alone). So a member trains as it would
//! alone, up to floating-point summation order (tests/it/ensemble.rs).
//!
//! Layers: a dense `[E, out, in]` weight multiplied by `bmm` (activations kept
//! feature-major, `[E, F, B]` in memory, viewed as `[E, B, F]`), or, on the CPU when
//! every member's layer is below the compact crossover, one block-diagonal compact
//! plan run by the same kernel as a single compact layer ([`CsrPlan::from_blocks`]).
use super::{Activation, Kernel, Mlp, MlpConfig, Mode, Model};
use crate::compute::CsrPlan;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// One weight layer of all members.
struct Layer {
    /// `[E, out, in]` 0/1 masks.
    mask: Tensor,
    /// `[E, out, in]` masked weights, or the members' compact values one after another.
    param: Tensor,
    /// The block-diagonal plan of a compact layer.
    plan: Option<Mutex<CsrPlan>>,
}

/// `E` MLPs with the same input, classes, depth, width, activation, BatchNorm, skip
/// and bias, and any seeds, densities, fans and kernels.
pub struct BatchedMlp {
    members: Vec<MlpConfig>,
    device: Device,
    layers: Vec<Layer>,
    /// Every other variable of a member (biases, BatchNorm, activation parameters,
    /// running statistics) under its member name, stacked `[E, ...]`.
    vars: BTreeMap<String, Tensor>,
    /// Activation of each hidden layer (parameterised ones get their stacked
    /// parameters at each forward pass).
    acts: Vec<Activation>,
}

/// The fields members must share to be batched, by name.
fn architecture(c: &MlpConfig) -> [(&'static str, String); 8] {
    [
        ("input", c.input.to_string()),
        ("classes", c.classes.to_string()),
        ("depth", c.depth.to_string()),
        ("width", c.width.to_string()),
        ("activation", c.activation.to_ascii_lowercase()),
        ("batch_norm", c.batch_norm.to_string()),
        ("skip", c.skip.to_string()),
        ("bias", c.bias.to_string()),
    ]
}

/// Whether configurations can train together: same architecture, no dropout
/// (dropout draws from libtorch's process-wide generator, so a member could not
/// reproduce its run alone). The per-layer kernels are not compared here: a layer
/// is compact only when every member's is, so grouping by kernel is the caller's
/// choice (see [`crate::experiment::ensemble_groups`]).
pub fn batchable(a: &MlpConfig, b: &MlpConfig) -> bool {
    a.dropout == 0.0 && b.dropout == 0.0 && architecture(a) == architecture(b)
}

impl BatchedMlp {
    /// Builds every member exactly as [`MlpConfig::init`] would (same masks and
    /// initial values) and stacks them on `device`.
    ///
    /// # Errors
    /// No members, members that cannot be batched (naming the first that differs),
    /// and any error of a member's own configuration.
    pub fn new(members: &[MlpConfig], device: Device) -> Result<Self> {
        let first = members.first().ok_or_else(|| Error::config("ensemble", "no members given"))?;
        if let Some((i, m)) = members.iter().enumerate().find(|(_, m)| m.dropout > 0.0) {
            return Err(Error::config(
                "dropout",
                format!(
                    "{} (member {i}): ensembles need dropout 0 (dropout draws from libtorch's global generator, so members could not reproduce their runs); train these networks one by one",
                    m.dropout
                ),
            ));
        }
        for (i, m) in members.iter().enumerate() {
            if let Some(((k, a), (_, b))) = architecture(m).into_iter().zip(architecture(first)).find(|(a, b)| a.1 != b.1) {
                return Err(Error::config(
                    "ensemble",
                    format!("member {i} differs from member 0 in {k} ({a} vs {b}); members must share input, classes, depth, width, activation, batch_norm, skip and bias"),
                ));
            }
        }
        let _guard = tch::no_grad_guard();
        let mut stacks: BTreeMap<String, Vec<Tensor>> = BTreeMap::new();
        let mut trainable: BTreeMap<String, bool> = BTreeMap::new();
        let mut compact = vec![device == Device::Cpu; first.depth + 1];
        for m in members {
            for (l, k) in m.kernels()?.into_iter().enumerate() {
                compact[l] &= k == Kernel::Compact;
            }
            let net = MlpConfig { kernel: Kernel::Dense, ..m.clone() }.init(Device::Cpu)?;
            for (name, v) in net.var_store().variables() {
                trainable.insert(name.clone(), v.requires_grad());
                stacks.entry(name).or_default().push(v.detach());
            }
        }
        let mut vars: BTreeMap<String, Tensor> = stacks.into_iter().map(|(n, v)| (n, Tensor::stack(&v, 0))).collect();
        let mut layers = Vec::with_capacity(first.depth + 1);
        for (l, &is_compact) in compact.iter().enumerate() {
            let weight = vars.remove(&format!("fc{}.weight", l + 1)).ok_or_else(|| Error::Shape(format!("fc{} has no weight", l + 1)))?;
            let mask = vars.remove(&format!("fc{}.mask", l + 1)).ok_or_else(|| Error::Shape(format!("fc{} has no mask", l + 1)))?;
            let (param, plan) = if is_compact {
                let mut plan = CsrPlan::from_blocks(&mask)?;
                (plan.f_gather(&weight)?, Some(Mutex::new(plan)))
            } else {
                (weight.to_device(device), None)
            };
            layers.push(Layer { mask: mask.to_device(device), param: param.set_requires_grad(true), plan });
        }
        for (name, v) in vars.iter_mut() {
            *v = v.to_device(device).set_requires_grad(trainable[name]);
        }
        // Parameterless activations as they are; prelu/srelu only mark the kind.
        let scratch = tch::nn::VarStore::new(Device::Cpu);
        let acts = (0..first.depth).map(|i| Activation::new(&first.activation, &scratch.root(), 1, false, 0, i as u64)).collect::<Result<_>>()?;
        Ok(Self { members: members.to_vec(), device, layers, vars, acts })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members (never: [`BatchedMlp::new`] refuses).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members' configurations.
    pub fn members(&self) -> &[MlpConfig] {
        &self.members
    }

    /// Device of the variables.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Per weight layer: `Dense` or `Compact` (block-diagonal).
    pub fn kernels(&self) -> Vec<Kernel> {
        self.layers.iter().map(|l| if l.plan.is_some() { Kernel::Compact } else { Kernel::Dense }).collect()
    }

    /// Active weights per member (rows) and weight layer (columns).
    pub fn active(&self) -> Vec<Vec<i64>> {
        let per_layer: Vec<Vec<i64>> =
            self.layers.iter().map(|l| Vec::<i64>::try_from(l.mask.sum_dim_intlist([1, 2].as_slice(), false, Kind::Int64).to_device(Device::Cpu)).unwrap_or_default()).collect();
        (0..self.len()).map(|e| per_layer.iter().map(|l| l.get(e).copied().unwrap_or(0)).collect()).collect()
    }

    /// Every tensor the ensemble's state is (masks, weights or compact values, the
    /// rest), by name, sharing storage: what a checkpoint saves and restores.
    pub(crate) fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> =
            self.layers.iter().enumerate().flat_map(|(l, layer)| [(format!("fc{}.mask", l + 1), layer.mask.shallow_clone()), (format!("fc{}.param", l + 1), layer.param.shallow_clone())]).collect();
        out.extend(self.vars.iter().map(|(n, v)| (n.clone(), v.shallow_clone())));
        out
    }

    /// Trainable tensors with their masks, for [`crate::train::Optimizer`]: dense
    /// weights `[E, out, in]` (masked), compact values, and the stacked rest.
    pub fn params(&self) -> Vec<super::Param> {
        let mut p: Vec<super::Param> = self
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| match layer.plan {
                Some(_) => super::Param { name: format!("fc{}.values", l + 1), tensor: layer.param.shallow_clone(), mask: None },
                None => super::Param { name: format!("fc{}.weight", l + 1), tensor: layer.param.shallow_clone(), mask: Some(layer.mask.shallow_clone()) },
            })
            .collect();
        p.extend(self.vars.iter().filter(|(_, v)| v.requires_grad()).map(|(n, v)| super::Param { name: n.clone(), tensor: v.shallow_clone(), mask: None }));
        p
    }

    /// The layers as the fused CPU training step takes them (stacked tensors, shared),
    /// when the members are ReLU MLPs without dropout.
    ///
    /// # Errors
    /// Layer tensors that do not fit together (see [`crate::compute::FusedLayer`]).
    pub fn fused_layers(&self) -> Result<Option<Vec<crate::compute::FusedLayer>>> {
        let c = &self.members[0];
        if c.dropout > 0.0 || !self.acts.iter().all(|a| matches!(a, Activation::Relu)) {
            return Ok(None);
        }
        let layers = self.layers.iter().enumerate().map(|(l, layer)| {
            let bias = self.vars.get(&format!("fc{}.bias", l + 1));
            let fused = match &layer.plan {
                Some(plan) => crate::compute::FusedLayer::compact(&layer.param, &plan.lock().unwrap_or_else(|e| e.into_inner()), bias),
                None => crate::compute::FusedLayer::dense(&layer.param, &layer.mask, bias),
            }?;
            if !c.batch_norm || l >= c.depth {
                return Ok(fused);
            }
            let v = |n: &str| self.var(&format!("bn{}.{n}", l + 1));
            fused.with_batch_norm(v("weight")?, v("bias")?, v("running_mean")?, v("running_var")?)
        });
        Ok(Some(super::mlp::with_residuals(layers.collect::<Result<Vec<_>>>()?, c.depth, c.skip)))
    }

    /// Per member, multiply-adds of one example's forward pass: `[dense, active,
    /// executed]` (see [`super::Model::macs`]).
    pub fn macs(&self) -> Vec<[f64; 3]> {
        let mut out = vec![[0.0; 3]; self.len()];
        for layer in &self.layers {
            let active = Vec::<i64>::try_from(layer.mask.sum_dim_intlist([1, 2].as_slice(), false, Kind::Int64).to_device(Device::Cpu)).unwrap_or_default();
            let total = (layer.mask.numel() / self.len().max(1)) as f64;
            for (e, o) in out.iter_mut().enumerate() {
                let a = active.get(e).copied().unwrap_or(0) as f64;
                *o = [o[0] + total, o[1] + a, o[2] + if layer.plan.is_some() { a } else { total }];
            }
        }
        out
    }

    /// Layer `l`'s `[E, out, in]` masks.
    pub fn mask(&self, l: usize) -> &Tensor {
        &self.layers[l].mask
    }

    /// Replaces every layer's masks (`[E, out, in]` each, layer order), zeroing the
    /// weights they drop; compact layers get a new block plan and re-laid values.
    /// Returns how tensors laid out like each layer's trainable weight follow.
    ///
    /// # Errors
    /// A count or shape that does not match, a mask that gives no plan.
    pub fn set_masks(&self, masks: &[Tensor]) -> Result<Vec<super::Remap>> {
        if masks.len() != self.layers.len() {
            return Err(Error::config("masks", format!("{} masks given, the ensemble has {} weight layers", masks.len(), self.layers.len())));
        }
        let _guard = tch::no_grad_guard();
        let mut remaps = Vec::with_capacity(masks.len());
        for (l, (layer, m)) in self.layers.iter().zip(masks).enumerate() {
            if m.size() != layer.mask.size() {
                return Err(Error::config("masks", format!("fc{}: mask shape {:?}, layer shape {:?}", l + 1, m.size(), layer.mask.size())));
            }
            let m = m.to_device(self.device).to_kind(Kind::Float);
            match &layer.plan {
                None => {
                    layer.mask.shallow_clone().copy_(&m);
                    let _ = layer.param.shallow_clone().g_mul_(&m);
                    remaps.push(super::Remap::dense(&format!("fc{}.weight", l + 1), &layer.mask));
                }
                Some(plan) => {
                    let mut plan = plan.lock().unwrap_or_else(|e| e.into_inner());
                    let w = plan.f_dense(&layer.param)? * &m;
                    let mut new = CsrPlan::from_blocks(&m)?;
                    remaps.push(super::Remap::compact(&format!("fc{}.values", l + 1), plan.flat(), new.flat(), m.numel() as i64));
                    layer.mask.shallow_clone().copy_(&m);
                    let values = new.f_gather(&w)?;
                    layer.param.shallow_clone().set_data(&values);
                    *plan = new;
                }
            }
        }
        Ok(remaps)
    }

    /// Layer `l`'s effective weights `[E, out, in]`, zero where masked.
    pub fn weight(&self, l: usize) -> Tensor {
        let layer = &self.layers[l];
        match &layer.plan {
            None => layer.param.shallow_clone(),
            Some(p) => tch::no_grad(|| p.lock().unwrap_or_else(|e| e.into_inner()).dense(&layer.param)),
        }
    }

    fn var(&self, name: &str) -> Result<&Tensor> {
        self.vars.get(name).ok_or_else(|| Error::Shape(format!("ensemble has no variable {name}")))
    }

    /// `[E, B, in] -> [E, B, out]`.
    fn linear(&self, l: usize, h: &Tensor) -> Result<Tensor> {
        let layer = &self.layers[l];
        let [e, b] = [h.size()[0], h.size()[1]];
        let y = match &layer.plan {
            // y^T = W h^T: activations live feature-major ([E, F, B] in memory, as
            // the compact kernel keeps them), so the weight gradient g^T h comes out
            // contiguous like the weight and the optimizer's passes stay sequential.
            None => layer.param.f_bmm(&h.f_transpose(1, 2)?)?.f_transpose(1, 2)?,
            Some(plan) => {
                let mut plan = plan.lock().unwrap_or_else(|e| e.into_inner());
                let out = plan.shape()[0];
                // [E, B, in] -> [B, E * in]: member e's features are columns e * in ..
                let x = h.f_permute([1, 0, 2])?.f_reshape([b, -1])?;
                plan.linear(&x, &layer.param)?.f_view([b, e, out])?.f_permute([1, 0, 2])?
            }
        };
        match self.vars.get(&format!("fc{}.bias", l + 1)) {
            Some(bias) => Ok(y + bias.unsqueeze(1)),
            None => Ok(y),
        }
    }

    /// BatchNorm of hidden layer `i` over the `E * F` channels of `[E, B, F]`: each
    /// member's features are normalised by their own batch statistics.
    fn batch_norm(&self, i: usize, z: &Tensor, mode: Mode) -> Result<Tensor> {
        let [e, b, f] = [z.size()[0], z.size()[1], z.size()[2]];
        let v = |n: &str| self.var(&format!("bn{}.{n}", i + 1)).map(|t| t.view([-1]));
        let (rm, rv) = match mode {
            Mode::Measure => (None, None),
            _ => (Some(v("running_mean")?), Some(v("running_var")?)),
        };
        let flat = z.f_permute([1, 0, 2])?.f_reshape([b, e * f])?;
        let y = if mode.batch_statistics() && crate::repro::deterministic() {
            crate::repro::batch_norm_train(&flat, &v("weight")?, &v("bias")?, rm.as_ref().zip(rv.as_ref())).map_err(|err| Error::Shape(format!("batch norm: {err}")))?
        } else {
            flat.f_batch_norm(Some(&v("weight")?), Some(&v("bias")?), rm.as_ref(), rv.as_ref(), mode.batch_statistics(), 0.1, 1e-5, true).map_err(|err| Error::Shape(format!("batch norm: {err}")))?
        };
        Ok(y.f_view([b, e, f])?.f_permute([1, 0, 2])?)
    }

    fn activation(&self, i: usize, z: &Tensor) -> Result<Tensor> {
        let p = |n: &str| self.var(&format!("act{}.{n}", i + 1)).map(|t| t.unsqueeze(1));
        match &self.acts[i] {
            Activation::Prelu(_) => Activation::Prelu(p("prelu")?).forward(z),
            Activation::Srelu { .. } => Activation::Srelu { tl: p("srelu_tl")?, al: p("srelu_al")?, tr: p("srelu_tr")?, ar: p("srelu_ar")? }.forward(z),
            a => a.forward(z),
        }
    }

    /// xs: `[E, B, ...]` (member `e`'s minibatch in row `e`) -> logits `[E, B, classes]`,
    /// the same layer sequence as [`Mlp`]'s forward pass (dropout is never on).
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let size = xs.size();
        if size.len() < 3 || size[0] != self.len() as i64 {
            return Err(Error::Shape(format!("ensemble of {} expects [members, batch, features...], got {size:?}", self.len())));
        }
        let c = &self.members[0];
        let mut h = xs.f_flatten(2, -1)?;
        if h.size()[2] != c.input {
            return Err(Error::Shape(format!("ensemble expects {} input features, got {}", c.input, h.size()[2])));
        }
        let mut residual: Option<Tensor> = None;
        for i in 0..c.depth {
            let starts_block = c.skip && i % 2 == 1 && i + 1 < c.depth;
            let ends_block = c.skip && i % 2 == 0 && i >= 2;
            if starts_block {
                residual = Some(h.shallow_clone());
            }
            let mut z = self.linear(i, &h)?;
            if c.batch_norm {
                z = self.batch_norm(i, &z, mode)?;
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
            h = self.activation(i, &z)?;
        }
        self.linear(c.depth, &h)
    }

    /// Member `e` as a stand-alone [`Mlp`] (dense representation) holding its current
    /// weights, masks, statistics and activation parameters: for gradient-flow
    /// measurement, saving, or any single-network analysis.
    ///
    /// # Errors
    /// `e` out of range.
    pub fn member(&self, e: usize) -> Result<Mlp> {
        if e >= self.len() {
            return Err(Error::config("member", format!("{e} is outside 0..{}", self.len())));
        }
        let net = MlpConfig { kernel: Kernel::Dense, ..self.members[e].clone() }.init(self.device)?;
        let _guard = tch::no_grad_guard();
        for (name, mut v) in net.var_store().variables() {
            let layer = name.strip_prefix("fc").and_then(|r| r.split_once('.')).and_then(|(i, rest)| Some((i.parse::<usize>().ok()?.checked_sub(1)?, rest)));
            let src = match layer {
                Some((l, "weight")) => self.weight(l).get(e as i64),
                Some((l, "mask")) => self.layers[l].mask.get(e as i64),
                _ => self.var(&name)?.get(e as i64),
            };
            v.copy_(&src);
        }
        Ok(net)
    }
}
