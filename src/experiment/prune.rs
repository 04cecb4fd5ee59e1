//! Magnitude pruning (report 3.4.3, SPEC 8): train dense for a fraction of the
//! epochs, prune the smallest-magnitude weights to the target density (per layer or
//! globally), keep the masks fixed and fine-tune for the remaining epochs.
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::train::{train, Ended, RunResult, TrainConfig};
use tch::{Kind, Tensor};

/// Per layer, or one threshold over all weight layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Each layer keeps round(density x its weights).
    Layer,
    /// The largest weights of the whole model, density x all weights.
    Global,
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
    model.set_masks(&masks)
}

/// Dense training for `prune_at` of the epochs, pruning, then fine-tuning with the
/// masks fixed (a fresh optimizer state). The returned history spans both phases.
pub fn prune_train(model: &mut dyn Model, data: &Dataset, density: f64, prune_at: f64, scope: Scope, cfg: &TrainConfig) -> Result<RunResult> {
    if !(0.0..=1.0).contains(&prune_at) {
        return Err(Error::config("prune_at", format!("{prune_at} is outside [0, 1]")));
    }
    let dense_epochs = (cfg.epochs as f64 * prune_at).round() as usize;
    let first = train(model, data, &TrainConfig { epochs: dense_epochs, ..cfg.clone() })?;
    if first.ended != Ended::Finished {
        return Ok(first);
    }
    magnitude_prune(model, density, scope)?;
    let second = train(model, data, &TrainConfig { epochs: cfg.epochs - dense_epochs, seed: cfg.seed.wrapping_add(1), ..cfg.clone() })?;
    let mut run = second.clone();
    run.history = first.history.iter().cloned().chain(second.history.iter().cloned().map(|mut h| {
        h.epoch += dense_epochs;
        h
    })).collect();
    run.grad_flow = first.grad_flow.iter().cloned().chain(second.grad_flow.iter().cloned().map(|mut p| {
        p.epoch += dense_epochs;
        p
    })).collect();
    run.ended = match second.ended {
        Ended::Diverged(e) => Ended::Diverged(e + dense_epochs),
        Ended::Stopped(e) => Ended::Stopped(e + dense_epochs),
        Ended::Interrupted(e) => Ended::Interrupted(e + dense_epochs),
        other => other,
    };
    run.seconds = first.seconds + second.seconds;
    Ok(run)
}
