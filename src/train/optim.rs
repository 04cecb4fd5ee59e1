//! Optimizers with the report's update rules (eq. 2.16, 2.17, A.6) that keep masked
//! weights exactly zero: gradients are masked before the update, so momentum and
//! moment estimates stay zero there and every rule's update is exactly zero at a
//! masked position (0 * lr, 0 / (sqrt(0) + eps), and decay of a zero weight); the
//! invariant tests check it for every optimizer. Dense layers (all-ones masks) skip
//! the masking, so the step costs what PyTorch's does.
use crate::error::{Error, Result};
use crate::model::Param;
use crate::registry;
use tch::Tensor;

/// Names accepted by [`OptimizerKind::parse`].
pub const OPTIMIZERS: &[&str] = &["sgd", "momentum", "adam", "adamw", "adagrad", "rmsprop"];

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OptimizerKind {
    /// Plain SGD, or with momentum when `momentum > 0`.
    Sgd,
    /// SGD with momentum (0.9 unless set).
    Momentum,
    /// Adam.
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
    /// Adagrad.
    Adagrad,
    /// RMSProp.
    RmsProp,
}

impl OptimizerKind {
    /// Parses a name from [`OPTIMIZERS`].
    pub fn parse(name: &str) -> Result<Self> {
        use OptimizerKind::*;
        Ok([Sgd, Momentum, Adam, AdamW, Adagrad, RmsProp][registry::lookup("optimizer", name, OPTIMIZERS)?])
    }
    /// The registry name.
    pub fn name(self) -> &'static str {
        OPTIMIZERS[self as usize]
    }
}

/// Optimizer settings. `l2` is coupled (added to the gradient, every optimizer);
/// `weight_decay` is AdamW's decoupled decay.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerConfig {
    /// Update rule.
    pub kind: OptimizerKind,
    /// Base learning rate (the schedule scales it).
    pub lr: f64,
    /// Momentum gamma for SGD (eq. 2.16); `None` = 0 for `sgd`, 0.9 for `momentum`.
    pub momentum: Option<f64>,
    /// Adam betas.
    pub betas: (f64, f64),
    /// RMSProp's averaging constant gamma (eq. 2.17).
    pub alpha: f64,
    /// Epsilon; `None` = 1e-10 for Adagrad, 1e-8 otherwise.
    pub eps: Option<f64>,
    /// Coupled L2: `g += l2 * w`.
    pub l2: f64,
    /// AdamW's decoupled decay: `w -= lr * weight_decay * w`.
    pub weight_decay: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self { kind: OptimizerKind::Sgd, lr: 0.01, momentum: None, betas: (0.9, 0.999), alpha: 0.99, eps: None, l2: 0.0, weight_decay: 0.0 }
    }
}

impl OptimizerConfig {
    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// Names the key, value and the allowed range.
    pub fn validate(&self) -> Result<()> {
        let positive = |k: &str, v: f64| if v > 0.0 && v.is_finite() { Ok(()) } else { Err(Error::config(k, format!("{v} must be > 0"))) };
        positive("lr", self.lr)?;
        if let Some(m) = self.momentum {
            if !(0.0..1.0).contains(&m) {
                return Err(Error::config("momentum", format!("{m} must be in [0, 1)")));
            }
        }
        for (k, v) in [("l2", self.l2), ("weight_decay", self.weight_decay)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::config(k, format!("{v} must be a finite number >= 0")));
            }
        }
        if let Some(e) = self.eps {
            positive("eps", e)?;
        }
        if self.weight_decay > 0.0 && self.kind != OptimizerKind::AdamW {
            return Err(Error::config("weight_decay", format!("decoupled weight decay applies to adamw only; for {} use l2 (coupled)", self.kind.name())));
        }
        for (k, b) in [("beta1", self.betas.0), ("beta2", self.betas.1), ("alpha", self.alpha)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(k, format!("{b} must be in [0, 1)")));
            }
        }
        Ok(())
    }

    /// Epsilon: the setting, or 1e-10 for Adagrad and 1e-8 otherwise.
    pub(crate) fn eps_or_default(&self) -> f64 {
        self.eps.unwrap_or(if self.kind == OptimizerKind::Adagrad { 1e-10 } else { 1e-8 })
    }

    /// Momentum gamma: the setting, or 0.9 for `momentum` and 0 for `sgd`.
    pub(crate) fn momentum_or_default(&self) -> f64 {
        self.momentum.unwrap_or(if self.kind == OptimizerKind::Momentum { 0.9 } else { 0.0 })
    }
}

/// An optimizer over a model's [`Param`]s.
pub struct Optimizer {
    cfg: OptimizerConfig,
    params: Vec<Param>,
    /// Per parameter: first and second state (velocity / moments / accumulators).
    state: Vec<(Option<Tensor>, Option<Tensor>)>,
    t: i32,
}

impl Optimizer {
    /// Creates state for `params`.
    pub fn new(cfg: OptimizerConfig, mut params: Vec<Param>) -> Result<Self> {
        cfg.validate()?;
        for p in &mut params {
            // An all-ones mask masks nothing: skip a pass over the weights per step.
            if p.mask.as_ref().map(|m| crate::model::mask_count(m) == m.numel() as i64).unwrap_or(false) {
                p.mask = None;
            }
        }
        let state = params.iter().map(|_| (None, None)).collect();
        Ok(Self { cfg, params, state, t: 0 })
    }

    /// Clears all gradients.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.tensor.zero_grad();
        }
    }

    /// One update with learning rate `lr` from the gradients accumulated in `.grad`.
    pub fn step(&mut self, lr: f64) {
        let grads: Vec<Tensor> = self.params.iter().map(|p| p.tensor.grad()).collect();
        self.apply(lr, grads);
    }

    /// Back-propagates `loss` and applies one update. Autograd returns the gradients
    /// instead of accumulating them into `.grad`, which saves a zeroing pass and an
    /// addition pass over every parameter per step (what `zero_grad(set_to_none)`
    /// buys PyTorch).
    ///
    /// # Errors
    /// libtorch failures in the backward pass.
    pub fn backward_step(&mut self, loss: &Tensor, lr: f64) -> Result<()> {
        let inputs: Vec<&Tensor> = self.params.iter().map(|p| &p.tensor).collect();
        let grads = Tensor::f_run_backward(&[loss], &inputs, false, false)?;
        self.apply(lr, grads);
        Ok(())
    }

    fn apply(&mut self, lr: f64, grads: Vec<Tensor>) {
        let _guard = tch::no_grad_guard();
        self.t += 1;
        let c = &self.cfg;
        let (eps, mu) = (c.eps_or_default(), c.momentum_or_default());
        for ((p, (s1, s2)), mut g) in self.params.iter().zip(self.state.iter_mut()).zip(grads) {
            if !g.defined() {
                continue;
            }
            // In place: the gradient is not read again.
            if let Some(m) = &p.mask {
                g *= m;
            }
            if c.l2 > 0.0 {
                g += &p.tensor * c.l2;
            }
            let mut w = p.tensor.shallow_clone();
            match c.kind {
                OptimizerKind::Sgd | OptimizerKind::Momentum if mu == 0.0 => {
                    // addcmul_ with a 0-dim factor: one fused pass, no temporary.
                    let _ = w.addcmul_(&g, &Tensor::scalar_tensor(-lr, (g.kind(), g.device())));
                }
                OptimizerKind::Sgd | OptimizerKind::Momentum => {
                    // eq. 2.16: v = gamma v + lr g; w -= v (three passes, as PyTorch's foreach SGD).
                    let v = s1.get_or_insert_with(|| g.zeros_like());
                    *v *= mu;
                    let _ = v.addcmul_(&g, &Tensor::scalar_tensor(lr, (g.kind(), g.device())));
                    w -= &*v;
                }
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    if c.kind == OptimizerKind::AdamW && c.weight_decay > 0.0 {
                        w *= 1.0 - lr * c.weight_decay;
                    }
                    let (b1, b2) = c.betas;
                    let m = s1.get_or_insert_with(|| g.zeros_like());
                    *m *= b1;
                    *m += &g * (1.0 - b1);
                    let v = s2.get_or_insert_with(|| g.zeros_like());
                    *v *= b2;
                    *v += g.square() * (1.0 - b2);
                    // eq. A.6 with the usual bias corrections 1 - beta^t.
                    let mhat = &*m / (1.0 - b1.powi(self.t));
                    let vhat = &*v / (1.0 - b2.powi(self.t));
                    w -= mhat / (vhat.sqrt() + eps) * lr;
                }
                OptimizerKind::Adagrad => {
                    // eq. 2.17: v += g^2; w -= lr g / sqrt(v + eps).
                    let v = s1.get_or_insert_with(|| g.zeros_like());
                    *v += g.square();
                    w -= &g / (&*v + eps).sqrt() * lr;
                }
                OptimizerKind::RmsProp => {
                    // eq. 2.17: v = gamma v + (1 - gamma) g^2; w -= lr g / sqrt(v + eps).
                    let v = s1.get_or_insert_with(|| g.zeros_like());
                    *v *= c.alpha;
                    *v += g.square() * (1.0 - c.alpha);
                    w -= &g / (&*v + eps).sqrt() * lr;
                }
            }
        }
    }

    /// Follows a mask change: each state tensor of a remapped parameter is re-laid (kept
    /// where its weight stays active, zero where it was dropped or grown), and a dense
    /// weight's gradient is masked from now on (even where its old mask was all ones).
    pub(crate) fn remap(&mut self, remaps: &[crate::model::Remap]) {
        for (p, (s1, s2)) in self.params.iter_mut().zip(self.state.iter_mut()) {
            let Some(r) = remaps.iter().find(|r| r.param() == p.name) else { continue };
            if let crate::model::Remap::Dense { mask, .. } = r {
                p.mask = Some(mask.shallow_clone());
            }
            for t in [s1, s2].into_iter().flatten() {
                *t = r.apply(t);
            }
        }
    }

    /// The state to checkpoint: every state tensor there is (`opt.<param>.a|b`) and the step count.
    pub(crate) fn state(&self) -> (Vec<(String, Tensor)>, i32) {
        let mut out = Vec::new();
        for (i, (s1, s2)) in self.state.iter().enumerate() {
            for (tag, t) in [("a", s1), ("b", s2)] {
                if let Some(t) = t {
                    out.push((format!("opt.{i}.{tag}"), t.shallow_clone()));
                }
            }
        }
        (out, self.t)
    }

    /// Restores what [`Optimizer::state`] saved (tensors copied to each parameter's device).
    pub(crate) fn restore(&mut self, saved: &std::collections::HashMap<String, Tensor>, t: i32) {
        for (i, (p, (s1, s2))) in self.params.iter().zip(self.state.iter_mut()).enumerate() {
            for (tag, slot) in [("a", s1), ("b", s2)] {
                *slot = saved.get(&format!("opt.{i}.{tag}")).map(|s| s.to_device(p.tensor.device()).copy());
            }
        }
        self.t = t;
    }

    /// The parameters being optimised.
    pub fn params(&self) -> &[Param] {
        &self.params
    }
}
