//! Magnitude pruning (report 3.4.3, SPEC 8): train dense for a fraction of the
//! epochs, prune the smallest-magnitude weights to the target density (per layer or
//! globally), keep the masks fixed and fine-tune for the remaining epochs.
use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::train::{train_with, Ended, NoCallback, RunResult, TrainConfig};
use tch::{Kind, Tensor};

/// Per layer, or one threshold over all weight layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each layer keeps round(density x its weights).
    Layer,
    /// The largest weights of the whole model, density x all weights.
    Global,
}

/// Names of [`Scope`]s, as scripts spell them.
pub const SCOPES: [&str; 2] = ["layer", "global"];

impl Scope {
    /// `layer` or `global` (case-insensitive).
    ///
    /// # Errors
    /// Another name, listing the valid ones.
    pub fn parse(name: &str) -> Result<Self> {
        Ok([Scope::Layer, Scope::Global][crate::registry::lookup("scope", name, &SCOPES)?])
    }
}

/// Magnitude pruning during training (SPEC 8).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PruneConfig {
    /// Target density after pruning, in (0, 1].
    pub density: f64,
    /// Fraction of the epochs trained dense before pruning, in [0, 1].
    pub prune_at: f64,
    /// Per layer or global.
    pub scope: Scope,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig { density: 0.1, prune_at: 0.5, scope: Scope::Layer }
    }
}

impl PruneConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// Names the key, the value and the valid range.
    pub fn validate(&self) -> Result<()> {
        if !(self.density > 0.0 && self.density <= 1.0) {
            return Err(Error::config("density", format!("{} is outside (0, 1]", self.density)));
        }
        if !(0.0..=1.0).contains(&self.prune_at) {
            return Err(Error::config("prune_at", format!("{} is outside [0, 1]", self.prune_at)));
        }
        Ok(())
    }

    /// (dense epochs, fine-tuning epochs) of a run of `epochs`.
    pub fn phases(&self, epochs: usize) -> (usize, usize) {
        let dense = ((epochs as f64 * self.prune_at).round() as usize).min(epochs);
        (dense, epochs - dense)
    }
}

/// Iterative magnitude pruning with rewinding (Frankle and Carbin 2019; Frankle et al.
/// 2020): train, prune `fraction` of the remaining weights by magnitude, rewind the
/// survivors to their values after `rewind_epoch` epochs, and train again.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImpConfig {
    /// Pruning rounds (the last round's network is trained too: rounds + 1 trainings).
    pub rounds: usize,
    /// Fraction of the remaining weights pruned per round (0.2).
    pub fraction: f64,
    /// Epoch whose weights the survivors are rewound to (0: the initial weights, the
    /// original lottery ticket).
    pub rewind_epoch: usize,
    /// Per layer or global.
    pub scope: Scope,
}

impl Default for ImpConfig {
    fn default() -> Self {
        ImpConfig { rounds: 5, fraction: 0.2, rewind_epoch: 1, scope: Scope::Layer }
    }
}

impl ImpConfig {
    /// Checks every field against the training's `epochs`.
    ///
    /// # Errors
    /// Names the key, the value and the valid range.
    pub fn validate(&self, epochs: usize) -> Result<()> {
        if !(1..=100).contains(&self.rounds) {
            return Err(Error::config("rounds", format!("{} is outside 1..=100", self.rounds)));
        }
        if !(self.fraction > 0.0 && self.fraction < 1.0) {
            return Err(Error::config("fraction", format!("{} is outside (0, 1)", self.fraction)));
        }
        if self.rewind_epoch >= epochs {
            return Err(Error::config("rewind_epoch", format!("{} must be below epochs ({epochs}): each round trains epochs - rewind_epoch epochs", self.rewind_epoch)));
        }
        Ok(())
    }
}

/// Sets every weight layer's mask to its largest-magnitude entries and zeroes the rest.
pub fn magnitude_prune(model: &dyn Model, density: f64, scope: Scope) -> Result<()> {
    if !(density > 0.0 && density <= 1.0) {
        return Err(Error::config("density", format!("{density} is outside (0, 1]")));
    }
    let _guard = tch::no_grad_guard();
    let layers = model.weight_layers();
    let threshold = match scope {
        Scope::Layer => None,
        Scope::Global => {
            let all = Tensor::cat(&layers.iter().map(|l| l.weight.abs().flatten(0, -1)).collect::<Vec<_>>(), 0);
            let n = all.size()[0];
            let k = ((density * n as f64).round() as i64).clamp(1, n);
            Some(all.topk(k, 0, true, true).0.min().double_value(&[]))
        }
    };
    let mut masks = Vec::with_capacity(layers.len());
    for l in &layers {
        let a = l.weight.abs();
        let keep = match threshold {
            Some(t) => a.ge(t),
            None => {
                let n = a.numel() as i64;
                let k = ((density * n as f64).round() as i64).clamp(1, n);
                // Exactly k entries: ties at the threshold are broken by topk's order.
                let idx = a.flatten(0, -1).topk(k, 0, true, false).1;
                a.flatten(0, -1).zeros_like().index_fill(0, &idx, 1.0).view_as(&a).to_kind(Kind::Bool)
            }
        };
        masks.push(keep.to_kind(Kind::Float));
    }
    drop(layers);
    model.set_masks(&masks).map(drop)
}

/// Dense training for `prune_at` of the epochs, pruning, then fine-tuning with the
/// masks fixed (a fresh optimizer state). The returned history spans both phases.
///
/// # Errors
/// Bad settings (checked before anything trains), training failures.
pub fn prune_train(model: &mut dyn Model, data: &Dataset, prune: &PruneConfig, cfg: &TrainConfig) -> Result<RunResult> {
    prune.validate()?;
    cfg.validate()?;
    prune_train_phases(model, &data.train, &data.test, prune, cfg, prune.phases(cfg.epochs))
}

/// [`prune_train`] with explicit (dense, fine-tuning) epochs (a `check` run trains one of each).
pub(crate) fn prune_train_phases(model: &mut dyn Model, train: &Split, eval: &Split, prune: &PruneConfig, cfg: &TrainConfig, (dense_epochs, tune_epochs): (usize, usize)) -> Result<RunResult> {
    let first = crate::train::labelled("magnitude pruning: dense phase".into(), || train_with(model, train, eval, &TrainConfig { epochs: dense_epochs, ..cfg.clone() }, &mut NoCallback))?;
    if first.ended != Ended::Finished {
        return Ok(first);
    }
    magnitude_prune(model, prune.density, prune.scope)?;
    let second = crate::train::labelled(format!("magnitude pruning: fine-tuning at density {}", prune.density), || {
        train_with(model, train, eval, &TrainConfig { epochs: tune_epochs, seed: cfg.seed.wrapping_add(1), ..cfg.clone() }, &mut NoCallback)
    })?;
    let mut run = second.clone();
    run.history = first
        .history
        .iter()
        .cloned()
        .chain(second.history.iter().cloned().map(|mut h| {
            h.epoch += dense_epochs;
            h
        }))
        .collect();
    run.grad_flow = first
        .grad_flow
        .iter()
        .cloned()
        .chain(second.grad_flow.iter().cloned().map(|mut p| {
            p.epoch += dense_epochs;
            p
        }))
        .collect();
    run.ended = match second.ended {
        Ended::Diverged(e) => Ended::Diverged(e + dense_epochs),
        Ended::Stopped(e) => Ended::Stopped(e + dense_epochs),
        Ended::Interrupted(e) => Ended::Interrupted(e + dense_epochs),
        other => other,
    };
    run.seconds = first.seconds + second.seconds;
    Ok(run)
}
