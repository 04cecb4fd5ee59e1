//! One optimisation step on a minibatch: autograd and the [`Optimizer`], or the fused
//! CPU step ([`FusedMlp`]) where it applies. The loops call [`Stepper::step`] and stay
//! the same either way.
use super::config::StepKind;
use super::{Optimizer, OptimizerConfig};
use crate::compute::{FusedLayer, FusedMlp};
use crate::error::{Error, Result};
use crate::model::Param;
use tch::{Device, Kind, Tensor};

/// How the loop's steps are computed.
pub(crate) enum Stepper {
    Autograd(Optimizer),
    Fused(FusedMlp),
}

/// Why the fused step does not apply, or `None` when it does.
fn unfused(layers: &Option<Vec<FusedLayer>>, device: Device) -> Option<String> {
    if layers.is_none() {
        return Some("the model has an activation other than ReLU or is not an MLP (the fused step runs ReLU MLPs, BatchNorm, skip and dropout included)".into());
    }
    (device != Device::Cpu).then(|| format!("device {} (the fused step runs on the CPU)", super::device_name(device)))
}

/// Why `model` trains through autograd on `device` rather than the fused CPU step
/// (`None`: the fused step applies, and `step: "auto"` takes it; it runs every optimizer).
///
/// # Errors
/// Layer tensors that do not fit together.
pub fn fused_step_blocker(model: &dyn crate::model::Model, device: Device) -> Result<Option<String>> {
    Ok(unfused(&model.fused_layers()?, device))
}

impl Stepper {
    /// The fused step when `kind` allows and it applies to `layers` (a model's
    /// [`crate::model::Model::fused_layers`]), else autograd over `params`.
    ///
    /// # Errors
    /// `kind` is `Fused` and the fused step does not apply (saying why); bad optimizer settings.
    pub(crate) fn new(kind: StepKind, layers: Option<Vec<FusedLayer>>, members: i64, params: Vec<Param>, opt: &OptimizerConfig, device: Device) -> Result<Self> {
        opt.validate()?;
        match (kind, unfused(&layers, device)) {
            (StepKind::Fused, Some(why)) => Err(Error::config("step", format!("\"fused\" does not apply: {why}; use \"auto\""))),
            (StepKind::Autograd, _) | (StepKind::Auto, Some(_)) => Ok(Stepper::Autograd(Optimizer::new(opt.clone(), params)?)),
            (_, None) => Ok(Stepper::Fused(FusedMlp::new(members, &layers.unwrap_or_default(), opt)?)),
        }
    }

    /// Follows a mask change of the model (`remaps` per weight layer, in layer order;
    /// `layers` the model's new [`crate::model::Model::fused_layers`]): the optimizer's
    /// state is re-laid, or the fused step rebuilt on the new plans with its velocity
    /// carried over (zero for dropped and grown weights).
    ///
    /// # Errors
    /// Layers that no longer fit the fused step.
    pub(crate) fn remap(&mut self, remaps: &[crate::model::Remap], layers: Option<Vec<FusedLayer>>, members: i64, opt: &OptimizerConfig) -> Result<()> {
        match self {
            Stepper::Autograd(o) => o.remap(remaps),
            Stepper::Fused(f) => {
                let layers = layers.ok_or_else(|| Error::Shape("fused step: the model no longer gives fused layers".into()))?;
                let mut new = FusedMlp::new(members, &layers, opt)?;
                new.set_steps(f.steps());
                let _guard = tch::no_grad_guard();
                for slot in 0..4 {
                    for (l, r) in remaps.iter().enumerate().take(layers.len()) {
                        let ((v, b), (nv, nb)) = (f.state(l, slot)?, new.state(l, slot)?);
                        if let (Some(v), Some(mut nv)) = (v, nv) {
                            // Slots 0, 1 follow the weights' new layout; 2, 3 (BatchNorm) stay.
                            nv.f_copy_(&if slot < 2 { r.apply(&v) } else { v })?;
                        }
                        if let (Some(b), Some(mut nb)) = (b, nb) {
                            nb.f_copy_(&b)?;
                        }
                    }
                }
                *f = new;
            }
        }
        Ok(())
    }

    /// The state to checkpoint: the optimizer's tensors and step count, or the fused
    /// step's state (`fused.<layer>.v|b` for slot 0, `.v2|b2` for Adam's second
    /// moments, `.g|be` and `.g2|be2` for BatchNorm's scale and shift, sharing storage
    /// with the step) and its step count.
    pub(crate) fn state(&self) -> Result<(Vec<(String, Tensor)>, i32)> {
        match self {
            Stepper::Autograd(o) => Ok(o.state()),
            Stepper::Fused(f) => {
                let mut out = Vec::new();
                for l in 0..f.layers() {
                    for (slot, w, b) in [(0, "v", "b"), (1, "v2", "b2"), (2, "g", "be"), (3, "g2", "be2")] {
                        let (sw, sb) = f.state(l, slot)?;
                        out.extend(sw.map(|t| (format!("fused.{l}.{w}"), t)));
                        out.extend(sb.map(|t| (format!("fused.{l}.{b}"), t)));
                    }
                }
                Ok((out, f.steps() as i32))
            }
        }
    }

    /// Restores what [`Stepper::state`] saved.
    ///
    /// # Errors
    /// A saved tensor missing or of another shape.
    pub(crate) fn restore(&mut self, path: &std::path::Path, saved: &std::collections::HashMap<String, Tensor>, t: i32) -> Result<()> {
        match self {
            Stepper::Autograd(o) => {
                o.restore(saved, t);
                Ok(())
            }
            Stepper::Fused(f) => {
                f.set_steps(t as i64);
                super::checkpoint::restore(path, &self.state()?.0, saved)
            }
        }
    }

    /// One step on a minibatch with learning rate `lr`. `logits` runs the model's
    /// forward pass (`[..., B, classes]`, autograd only); `fused_xs` gives the same
    /// examples as `[E, features, B]`, any strides (fused only); `ys` `[..., B]` are the
    /// targets. Returns the mean loss and the number of correct predictions, per member
    /// (`[E]`) or as scalars when `ys` is `[B]`; both stay on the device.
    pub(crate) fn step(&mut self, logits: impl FnOnce() -> Result<Tensor>, fused_xs: impl FnOnce() -> Tensor, ys: &Tensor, lr: f64) -> Result<(Tensor, Tensor)> {
        match self {
            Stepper::Autograd(opt) => {
                let logits = logits()?;
                let losses = if ys.dim() == 1 { super::cross_entropy(&logits, ys)? } else { member_losses(&logits, ys)? };
                // d(sum)/d(loss_e) = 1: each member gets its own loss's gradient.
                opt.backward_step(&losses.sum(Kind::Float), lr)?;
                let correct = tch::no_grad(|| logits.argmax(-1, false).eq_tensor(ys).sum_dim_intlist(-1, false, Kind::Int64));
                Ok((losses.detach(), correct))
            }
            Stepper::Fused(f) => {
                let single = ys.dim() == 1;
                let ys2 = if single { ys.unsqueeze(0) } else { ys.shallow_clone() };
                let (loss, correct) = f.step(&fused_xs(), &ys2, lr)?;
                Ok(if single { (loss.squeeze_dim(0), correct.squeeze_dim(0)) } else { (loss, correct) })
            }
        }
    }
}

/// Mean cross-entropy of logits `[..., B, C]` against targets `[..., B]`, per leading index.
pub(crate) fn member_losses(logits: &Tensor, ys: &Tensor) -> Result<Tensor> {
    let c = *logits.size().last().unwrap_or(&1);
    let lead = ys.size();
    let nll = logits.f_log_softmax(-1, Kind::Float)?.f_reshape([-1, c])?.f_nll_loss::<Tensor>(&ys.reshape([-1]), None, tch::Reduction::None, -100)?;
    Ok(nll.f_view(lead.as_slice())?.f_mean_dim(-1, false, Kind::Float)?)
}
