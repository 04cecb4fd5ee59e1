//! The training loop: one loop for one model and for a batched ensemble (a single
//! run is an ensemble of one member). It fits on one screen; features hook in
//! through [`Callback`].
use super::checkpoint::{self, Meta};
use super::gradflow::{measure, measure_epochs, measurement_indices, GradFlowPoint};
use super::masks::{Masker, MemberLayers};
use super::progress::Progress;
use super::result::Cost;
use super::step::{member_losses, Stepper};
use super::{Ended, EpochRecord, RunResult, TrainConfig};
use crate::compute::FusedLayer;
use crate::data::{augment_draws, crop_flip, Dataset, Split};
use crate::error::{Error, Result};
use crate::model::{BatchedMlp, Mode, Model, Param, Remap};
use crate::rng::{permutation, stream, torch_seed, torch_seed_at, Stream};
use std::collections::HashMap;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// What a callback tells the loop after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop this member now (e.g. ASHA); its run ends as [`Ended::Stopped`].
    Stop,
}

/// Hooks called by the loop (early stopping, live charts, logging).
pub trait Callback {
    /// After each completed epoch of `member` (0 for a single model).
    fn on_epoch(&mut self, _member: usize, _record: &EpochRecord) -> Control {
        Control::Continue
    }
}

/// A callback that does nothing.
pub struct NoCallback;
impl Callback for NoCallback {}

impl<F: FnMut(usize, &EpochRecord) -> Control> Callback for F {
    fn on_epoch(&mut self, member: usize, record: &EpochRecord) -> Control {
        self(member, record)
    }
}

/// Trains `model` on `data.train`, evaluating on `data.test` after every epoch.
///
/// # Errors
/// Bad settings, a model whose input does not fit the data, libtorch failures.
/// Divergence and interruption are results, not errors.
pub fn train(model: &mut dyn Model, data: &Dataset, cfg: &TrainConfig) -> Result<RunResult> {
    train_with(model, &data.train, &data.test, cfg, &mut NoCallback)
}

/// [`train`] with explicit splits (e.g. a validation split) and a callback.
///
/// Reproducibility: masks, init, data order and augmentation come from sparselab's
/// own seeded streams; dropout uses libtorch's generator, which is global to
/// the process and reseeded at the start of each run. Runs are therefore
/// bit-for-bit reproducible on CPU when they do not overlap in time with other
/// libtorch random draws in the same process (sweeps run their runs one by one).
pub fn train_with(model: &mut dyn Model, train: &Split, eval: &Split, cfg: &TrainConfig, cb: &mut dyn Callback) -> Result<RunResult> {
    model.to_device(cfg.device.resolve()?);
    let mut runs = run(&Single(&*model), train, eval, std::slice::from_ref(cfg), cb)?;
    Ok(runs.remove(0))
}

/// Trains every member of `model` on `train`, evaluating on `eval` after every epoch.
/// `cfgs[e]` is member `e`'s training configuration; they must be equal but for the
/// seed. Each member draws its own data order and augmentation from its own seed's
/// streams, so member `e` sees exactly the minibatches its run alone would see.
/// Returns one result per member, as [`train_with`] would have returned for that
/// member alone (up to floating-point summation order). A member whose loss becomes
/// NaN/inf ends as diverged at that epoch, one a callback stops ends as stopped;
/// the others go on. Seconds are each member's share of the ensemble's wall time.
///
/// # Errors
/// Configurations that differ in more than the seed, bad settings, libtorch failures.
pub fn train_ensemble(model: &BatchedMlp, train: &Split, eval: &Split, cfgs: &[TrainConfig], cb: &mut dyn Callback) -> Result<Vec<RunResult>> {
    if cfgs.len() != model.len() {
        return Err(Error::config("ensemble", format!("{} training configurations for {} members", cfgs.len(), model.len())));
    }
    if let Some(i) = cfgs.iter().position(|c| TrainConfig { seed: cfgs[0].seed, ..c.clone() } != cfgs[0]) {
        return Err(Error::config("ensemble", format!("member {i}'s training configuration differs from member 0's in more than the seed")));
    }
    run(model, train, eval, cfgs, cb)
}

/// Mean cross-entropy and accuracy of `model` on `split` in eval mode.
///
/// # Errors
/// libtorch failures.
pub fn evaluate(model: &dyn Model, split: &Split) -> Result<(f64, f64)> {
    let (loss, acc) = evaluate_members(&Single(model), split)?;
    Ok((loss[0], acc[0]))
}

/// Per-member mean cross-entropy and accuracy of an ensemble on `split`.
///
/// # Errors
/// libtorch failures.
pub fn evaluate_ensemble(model: &BatchedMlp, split: &Split) -> Result<(Vec<f64>, Vec<f64>)> {
    evaluate_members(model, split)
}

/// What the loop trains: one model (one member) or a batched ensemble.
pub(crate) trait Trainee {
    fn members(&self) -> usize;
    fn device(&self) -> Device;
    fn label(&self) -> String;
    /// Input features per example the model expects.
    fn input_features(&self) -> i64;
    fn fused_layers(&self) -> Result<Option<Vec<FusedLayer>>>;
    fn params(&self) -> Vec<Param>;
    /// xs: `[E * B, C, H, W]`, member-major -> logits `[E, B, classes]`.
    fn logits(&self, xs: &Tensor, members: i64, mode: Mode) -> Result<Tensor>;
    /// xs: `[B, C, H, W]`, the same examples for every member -> logits `[E, B, classes]`.
    fn eval_logits(&self, xs: &Tensor) -> Result<Tensor>;
    fn measure(&self, member: usize, subset: &Split, epoch: usize) -> Result<GradFlowPoint>;
    /// Member `member`'s effective weights and masks per layer (`[out, in]`).
    fn member_layers(&self, member: usize) -> Result<MemberLayers>;
    /// Member `member`'s dense loss gradients per weight layer (masked positions
    /// included) on its minibatch `xs` `[B, ...]`, `ys` `[B]`, without changing the model.
    fn dense_grads(&self, member: usize, xs: &Tensor, ys: &Tensor) -> Result<Vec<Tensor>>;
    /// Replaces the masks, `masks[member][layer]` (`[out, in]`).
    fn set_member_masks(&self, masks: &[Vec<Tensor>]) -> Result<Vec<Remap>>;
    /// Per member, forward multiply-adds per example `[dense, active, executed]`.
    fn macs(&self) -> Option<Vec<[f64; 3]>>;
    /// Member `member`'s collapsed layers (see [`RunResult::collapsed`]).
    fn collapsed(&self, member: usize) -> Result<Vec<String>>;
    /// Every tensor of the model's state by name, sharing storage (for checkpoints).
    fn state(&self) -> Vec<(String, Tensor)>;
    /// The masks per member and layer as saved in a checkpoint's `saved` state.
    fn saved_masks(&self, saved: &HashMap<String, Tensor>) -> Option<Vec<Vec<Tensor>>>;
}

/// Names of the layers with no active weight, or none on a path (`effective`).
fn collapsed_layers(names: &[String], active: &[i64], effective: Option<&[i64]>) -> Vec<String> {
    names.iter().enumerate().filter(|(i, _)| active[*i] == 0 || effective.is_some_and(|e| e[*i] == 0)).map(|(_, n)| n.clone()).collect()
}

/// Dense gradients of `model`'s loss on `(xs, ys)` with respect to every weight
/// layer's effective weight ([`Mode::Measure`]: batch statistics, running statistics untouched).
fn dense_grads(model: &dyn Model, xs: &Tensor, ys: &Tensor) -> Result<Vec<Tensor>> {
    let logits = model.forward(xs, Mode::Measure)?;
    let weights: Vec<Tensor> = model.weight_layers().iter().map(|l| l.weight.shallow_clone()).collect();
    let grads = Tensor::f_run_backward(&[super::cross_entropy(&logits, ys)?], &weights, false, false);
    model.clear_measure();
    Ok(grads?)
}

/// One model as an ensemble of one.
struct Single<'a>(&'a dyn Model);

impl Trainee for Single<'_> {
    fn members(&self) -> usize {
        1
    }
    fn device(&self) -> Device {
        self.0.device()
    }
    fn label(&self) -> String {
        self.0.describe()
    }
    fn input_features(&self) -> i64 {
        self.0.input_shape().iter().product()
    }
    fn fused_layers(&self) -> Result<Option<Vec<FusedLayer>>> {
        self.0.fused_layers()
    }
    fn params(&self) -> Vec<Param> {
        self.0.params()
    }
    fn logits(&self, xs: &Tensor, _members: i64, mode: Mode) -> Result<Tensor> {
        Ok(self.0.forward(xs, mode)?.unsqueeze(0))
    }
    fn eval_logits(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(self.0.forward(xs, Mode::Eval)?.unsqueeze(0))
    }
    fn measure(&self, _member: usize, subset: &Split, epoch: usize) -> Result<GradFlowPoint> {
        measure(self.0, subset, epoch)
    }
    fn member_layers(&self, _member: usize) -> Result<MemberLayers> {
        let layers = self.0.weight_layers();
        Ok(MemberLayers { weights: layers.iter().map(|l| l.weight.detach()).collect(), masks: layers.iter().map(|l| l.mask.shallow_clone()).collect() })
    }
    fn dense_grads(&self, _member: usize, xs: &Tensor, ys: &Tensor) -> Result<Vec<Tensor>> {
        dense_grads(self.0, xs, ys)
    }
    fn set_member_masks(&self, masks: &[Vec<Tensor>]) -> Result<Vec<Remap>> {
        self.0.set_masks(&masks[0])
    }
    fn macs(&self) -> Option<Vec<[f64; 3]>> {
        self.0.macs().map(|m| vec![m])
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.0.var_store().variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
    fn saved_masks(&self, saved: &HashMap<String, Tensor>) -> Option<Vec<Vec<Tensor>>> {
        Some(vec![self.0.weight_layers().iter().map(|l| saved.get(&format!("{}.mask", l.name)).map(|t| t.to_device(l.mask.device()))).collect::<Option<Vec<_>>>()?])
    }
    fn collapsed(&self, _member: usize) -> Result<Vec<String>> {
        let info = self.0.layers();
        let names: Vec<String> = info.iter().map(|l| l.name.clone()).collect();
        Ok(collapsed_layers(&names, &info.iter().map(|l| l.active).collect::<Vec<_>>(), self.0.effective_active().as_deref()))
    }
}

/// `[E, B, F]` stored feature-major (`[E, F, B]` in memory), the layout the ensemble's
/// layers keep activations in: one copy here saves one in every first layer.
fn feature_major(xs: &Tensor) -> Tensor {
    xs.transpose(1, 2).contiguous().transpose(1, 2)
}

impl Trainee for BatchedMlp {
    fn members(&self) -> usize {
        self.len()
    }
    fn device(&self) -> Device {
        BatchedMlp::device(self)
    }
    fn label(&self) -> String {
        let m = &self.members()[0];
        format!("{} x MLP {}-{}x{}-{}", self.len(), m.input, m.depth, m.width, m.classes)
    }
    fn input_features(&self) -> i64 {
        self.members()[0].input
    }
    fn fused_layers(&self) -> Result<Option<Vec<FusedLayer>>> {
        BatchedMlp::fused_layers(self)
    }
    fn params(&self) -> Vec<Param> {
        BatchedMlp::params(self)
    }
    fn logits(&self, xs: &Tensor, members: i64, mode: Mode) -> Result<Tensor> {
        self.forward(&feature_major(&xs.f_view([members, -1, self.input_features()])?), mode)
    }
    fn eval_logits(&self, xs: &Tensor) -> Result<Tensor> {
        let (e, len, f) = (self.len() as i64, xs.size()[0], self.input_features());
        self.forward(&feature_major(&xs.f_view([1, len, f])?.expand([e, len, f], false)), Mode::Eval)
    }
    fn measure(&self, member: usize, subset: &Split, epoch: usize) -> Result<GradFlowPoint> {
        measure(&self.member(member)?, subset, epoch)
    }
    fn member_layers(&self, member: usize) -> Result<MemberLayers> {
        let n = self.members()[0].depth + 1;
        Ok(MemberLayers { weights: (0..n).map(|l| self.weight(l).get(member as i64).detach()).collect(), masks: (0..n).map(|l| self.mask(l).get(member as i64)).collect() })
    }
    fn dense_grads(&self, member: usize, xs: &Tensor, ys: &Tensor) -> Result<Vec<Tensor>> {
        dense_grads(&self.member(member)?, xs, ys)
    }
    fn set_member_masks(&self, masks: &[Vec<Tensor>]) -> Result<Vec<Remap>> {
        let n = self.members()[0].depth + 1;
        let stacked: Vec<Tensor> = (0..n).map(|l| Tensor::stack(&masks.iter().map(|m| m[l].shallow_clone()).collect::<Vec<_>>(), 0)).collect();
        self.set_masks(&stacked)
    }
    fn macs(&self) -> Option<Vec<[f64; 3]>> {
        Some(BatchedMlp::macs(self))
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        self.state_tensors()
    }
    fn saved_masks(&self, saved: &HashMap<String, Tensor>) -> Option<Vec<Vec<Tensor>>> {
        let layers = self.members()[0].depth + 1;
        let stacked: Vec<Tensor> = (1..=layers).map(|l| saved.get(&format!("fc{l}.mask")).map(|t| t.to_device(self.device()))).collect::<Option<_>>()?;
        Some((0..self.len() as i64).map(|m| stacked.iter().map(|t| t.get(m)).collect()).collect())
    }
    fn collapsed(&self, member: usize) -> Result<Vec<String>> {
        let c = &self.members()[0];
        let masks: Vec<Tensor> = (0..=c.depth).map(|l| self.mask(l).get(member as i64).to_device(Device::Cpu)).collect();
        let names: Vec<String> = (1..=masks.len()).map(|l| format!("fc{l}")).collect();
        let active: Vec<i64> = masks.iter().map(crate::model::mask_count).collect();
        Ok(collapsed_layers(&names, &active, Some(&crate::model::effective_active(&masks, c.depth, c.skip))))
    }
}

/// The loop. `cfgs` (one per member) are equal but for the seed and already checked.
fn run(model: &dyn Trainee, train: &Split, eval: &Split, cfgs: &[TrainConfig], cb: &mut dyn Callback) -> Result<Vec<RunResult>> {
    let cfg = &cfgs[0];
    cfg.validate()?;
    let (size, device) = (model.members(), model.device());
    let got: i64 = train.x.size()[1..].iter().product();
    if got != model.input_features() {
        return Err(Error::Shape(format!("model {} expects {} input features per example, the data has {got} ({:?})", model.label(), model.input_features(), &train.x.size()[1..])));
    }
    if train.is_empty() {
        return Err(Error::config("data", "the training split has no examples"));
    }
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t as i32);
    }
    tch::manual_seed(torch_seed(cfg.seed));
    let (train, eval) = (train.to_device(device), eval.to_device(device));
    let n = train.len();
    let gf_epochs = cfg.grad_flow.as_ref().map(|g| measure_epochs(cfg.epochs, g.points)).unwrap_or_default();
    let gf_subset = cfg.grad_flow.as_ref().map(|g| train.select(&Tensor::from_slice(&measurement_indices(n, g.samples)).to_device(device)));
    let mut stepper = Stepper::new(cfg.step, model.fused_layers()?, size as i64, model.params(), &cfg.optimizer, device)?;
    let batches = n.div_ceil(cfg.batch_size);
    let progress = Progress::new(cfg.progress, &model.label(), cfg.epochs, batches);
    let start = Instant::now();
    let fresh = || RunResult {
        history: vec![],
        grad_flow: vec![],
        ended: Ended::Finished,
        test_acc: f64::NAN,
        test_loss: f64::NAN,
        seconds: 0.0,
        device: device_name(device),
        mask_history: vec![],
        collapsed: vec![],
        cost: None,
    };
    let mut masker = match &cfg.masks {
        Some(s) => Some(Masker::new(s, &(0..size).map(|m| model.member_layers(m)).collect::<Result<Vec<_>>>()?, &cfgs.iter().map(|c| c.seed).collect::<Vec<_>>(), batches, cfg.epochs)?),
        None => None,
    };
    let mut macs = model.macs();
    let mut flops: Vec<[f64; 3]> = vec![[0.0; 3]; size];
    let mut step = 0usize;
    let mut out: Vec<RunResult> = (0..size).map(|_| fresh()).collect();
    let mut live = vec![true; size]; // not diverged, not stopped
    let e = size as i64;
    // A checkpoint of this very training (same model, members, seeds, settings, data sizes) resumes it.
    let ckpt = checkpoint::next();
    let identity = serde_json::json!({ "label": model.label(), "seeds": cfgs.iter().map(|c| c.seed).collect::<Vec<_>>(), "train": crate::results::train_identity(cfg), "examples": [n, eval.len()] });
    let (mut first_epoch, mut first_batch, mut prior_seconds, mut prior_epoch_seconds) = (0, 0, 0.0, 0.0);
    let mut resumed_sums: Option<(Tensor, Tensor)> = None;
    if let Some((meta, saved)) = ckpt.as_ref().and_then(|(p, _)| checkpoint::load(p)).filter(|(m, _)| m.identity == identity) {
        let path = &ckpt.as_ref().expect("a checkpoint was loaded").0;
        if let Some(mk) = masker.as_mut() {
            let masks = model.saved_masks(&saved).ok_or_else(|| Error::data(path, "checkpoint has no masks"))?;
            let remaps = model.set_member_masks(&masks)?;
            stepper.remap(&remaps, model.fused_layers()?, e, &cfg.optimizer)?;
            macs = model.macs();
            mk.restore(meta.masker.as_ref().unwrap_or(&serde_json::Value::Null))?;
        }
        checkpoint::restore(path, &model.state(), &saved)?;
        stepper.restore(path, &saved, meta.opt_t)?;
        resumed_sums = Some((
            saved.get("acc.loss").map(|t| t.to_device(device)).unwrap_or_else(|| Tensor::zeros([e], (Kind::Float, device))),
            saved.get("acc.correct").map(|t| t.to_device(device)).unwrap_or_else(|| Tensor::zeros([e], (Kind::Int64, device))),
        ));
        (first_epoch, first_batch, step, out, live, flops, prior_seconds, prior_epoch_seconds) = (meta.epoch, meta.batch, meta.step, meta.out, meta.live, meta.flops, meta.seconds, meta.epoch_seconds);
        crate::log::line(&format!("resumed {} from its checkpoint: epoch {}, batch {} of {batches}", model.label(), first_epoch + 1, first_batch));
    }
    let mut last_checkpoint = Instant::now();
    let save = |epoch: usize,
                batch: usize,
                step: usize,
                out: &[RunResult],
                live: &[bool],
                flops: &[[f64; 3]],
                epoch_seconds: f64,
                sums: (&Tensor, &Tensor),
                stepper: &Stepper,
                masker: Option<&Masker>|
     -> Result<()> {
        let Some((path, _)) = &ckpt else { return Ok(()) };
        let (opt, opt_t) = stepper.state()?;
        let meta = Meta {
            version: checkpoint::VERSION,
            identity: identity.clone(),
            epoch,
            batch,
            step,
            out: out.to_vec(),
            live: live.to_vec(),
            flops: flops.to_vec(),
            seconds: prior_seconds + start.elapsed().as_secs_f64(),
            epoch_seconds,
            masker: masker.map(Masker::state),
            opt_t,
        };
        let mut tensors = model.state();
        tensors.extend(opt);
        tensors.push(("acc.loss".into(), sums.0.shallow_clone()));
        tensors.push(("acc.correct".into(), sums.1.shallow_clone()));
        // A checkpoint that cannot be written (a full disk) costs resumability, not the run.
        if let Err(e) = checkpoint::save(path, &meta, &tensors) {
            crate::log::line(&format!("warning: checkpoint not written: {e}"));
        }
        Ok(())
    };
    'epochs: for epoch in first_epoch..cfg.epochs {
        let t0 = Instant::now();
        let (batch0, epoch_seconds0) = if epoch == first_epoch { (first_batch, prior_epoch_seconds) } else { (0, 0.0) };
        let lr = cfg.schedule.lr(cfg.optimizer.lr, epoch, cfg.epochs);
        let plans: Vec<(Tensor, Option<Tensor>)> = cfgs.iter().map(|c| epoch_order(cfg, c.seed, epoch, n, device)).collect();
        let order = Tensor::stack(&plans.iter().map(|p| p.0.shallow_clone()).collect::<Vec<_>>(), 0); // [E, n]
        let draws = cfg.augment.then(|| Tensor::stack(&plans.iter().filter_map(|p| p.1.as_ref().map(Tensor::shallow_clone)).collect::<Vec<_>>(), 0)); // [E, n, 3]
                                                                                                                                                      // Sums stay on the device: no host round trip per batch.
        let (loss_sum, correct) = match resumed_sums.take() {
            Some(s) if epoch == first_epoch => s,
            _ => (Tensor::zeros([e], (Kind::Float, device)), Tensor::zeros([e], (Kind::Int64, device))),
        };
        for b in batch0..batches {
            if crate::cancel::requested() {
                save(epoch, b, step, &out, &live, &flops, epoch_seconds0 + t0.elapsed().as_secs_f64(), (&loss_sum, &correct), &stepper, masker.as_ref())?;
                out.iter_mut().zip(&live).filter(|(_, l)| **l).for_each(|(r, _)| r.ended = Ended::Interrupted(epoch));
                break 'epochs;
            }
            // Dropout's draws depend on the step alone, so a resumed run draws the same.
            tch::manual_seed(torch_seed_at(cfg.seed, step as u64));
            let (at, len) = ((b * cfg.batch_size) as i64, cfg.batch_size.min(n - b * cfg.batch_size) as i64);
            let idx = order.narrow(1, at, len).reshape([-1]);
            let mut xs = train.x.index_select(0, &idx);
            if let Some(d) = &draws {
                xs = crop_flip(&xs, AUGMENT_PAD, &d.narrow(1, at, len).reshape([-1, 3]));
            }
            let ys = train.y.index_select(0, &idx).view([e, len]);
            let (losses, right) = stepper.step(|| model.logits(&xs, e, Mode::Train), || xs.view([e, len, -1]).transpose(1, 2), &ys, lr)?;
            step += 1;
            if let Some(m) = &macs {
                // 2 FLOPs per multiply-add, forward plus a backward of twice its cost.
                flops.iter_mut().zip(m).zip(&live).filter(|(_, l)| **l).for_each(|((f, m), _)| (0..3).for_each(|i| f[i] += 6.0 * m[i] * len as f64));
            }
            if let Some(mk) = masker.as_mut() {
                if let Some(value) = mk.due(step) {
                    let mut masks = Vec::with_capacity(size);
                    for (m, alive) in live.iter().enumerate() {
                        let layers = model.member_layers(m)?;
                        if !alive {
                            masks.push(layers.masks);
                            continue;
                        }
                        let grads = if mk.needs_gradient() { Some(model.dense_grads(m, &xs.narrow(0, m as i64 * len, len), &ys.get(m as i64))?) } else { None };
                        masks.push(mk.update(m, step, value, &layers, grads.as_deref())?);
                    }
                    mk.finish_update();
                    let remaps = model.set_member_masks(&masks)?;
                    stepper.remap(&remaps, model.fused_layers()?, e, &cfg.optimizer)?;
                    macs = model.macs();
                }
            }
            tch::no_grad(|| {
                let _ = loss_sum.shallow_clone().f_add_(&(losses * len as f64));
                let _ = correct.shallow_clone().f_add_(&right);
            });
            progress.batch();
        }
        let train_loss: Vec<f64> = Vec::<f64>::try_from((loss_sum.to_kind(Kind::Double) / n as f64).to_device(Device::Cpu))?;
        let train_correct: Vec<i64> = Vec::<i64>::try_from(correct.to_device(Device::Cpu))?;
        let (test_loss, test_acc) = evaluate_members(model, &eval)?;
        let seconds = (epoch_seconds0 + t0.elapsed().as_secs_f64()) / size as f64;
        for m in 0..size {
            if !live[m] {
                continue;
            }
            let r = &mut out[m];
            (r.test_loss, r.test_acc) = (test_loss[m], test_acc[m]);
            if !train_loss[m].is_finite() {
                // No record for the diverged epoch; final metrics from now.
                (r.ended, live[m]) = (Ended::Diverged(epoch), false);
                continue;
            }
            if let (true, Some(subset)) = (gf_epochs.contains(&epoch), &gf_subset) {
                r.grad_flow.push(model.measure(m, subset, epoch)?);
            }
            r.history.push(EpochRecord { epoch, train_loss: train_loss[m], train_acc: train_correct[m] as f64 / n as f64, test_loss: test_loss[m], test_acc: test_acc[m], lr, seconds });
            if cb.on_epoch(m, r.history.last().expect("just pushed")) == Control::Stop && epoch + 1 < cfg.epochs {
                (r.ended, live[m]) = (Ended::Stopped(epoch), false);
            }
        }
        crate::activity::epoch(epoch + 1, cfg.epochs);
        let mean = |v: &[f64]| {
            let f: Vec<f64> = v.iter().zip(&out).filter(|(x, r)| x.is_finite() && !matches!(r.ended, Ended::Diverged(_))).map(|(x, _)| *x).collect();
            if f.is_empty() {
                f64::NAN
            } else {
                f.iter().sum::<f64>() / f.len() as f64
            }
        };
        progress.epoch(epoch, &epoch_message(&train_loss, &test_acc, &out, t0.elapsed().as_secs_f64()), mean(&train_loss), mean(&test_acc));
        if !live.iter().any(|l| *l) {
            break;
        }
        if let Some((_, policy)) = &ckpt {
            if epoch + 1 < cfg.epochs && policy.due(epoch + 1, last_checkpoint.elapsed().as_secs_f64()) {
                let zeros = (Tensor::zeros([e], (Kind::Float, device)), Tensor::zeros([e], (Kind::Int64, device)));
                save(epoch + 1, 0, step, &out, &live, &flops, 0.0, (&zeros.0, &zeros.1), &stepper, masker.as_ref())?;
                last_checkpoint = Instant::now();
            }
        }
    }
    progress.finish();
    let seconds = (prior_seconds + start.elapsed().as_secs_f64()) / size as f64;
    let peak = peak_rss_bytes();
    for (m, r) in out.iter_mut().enumerate() {
        r.seconds = seconds;
        if macs.is_some() {
            r.cost = Some(Cost { dense_flops: flops[m][0], sparse_flops: flops[m][1], executed_flops: flops[m][2], peak_rss_bytes: peak });
        }
        if let Some(mk) = masker.as_mut() {
            r.mask_history = std::mem::take(&mut mk.history[m]);
        }
        r.collapsed = model.collapsed(m)?;
    }
    if let Some((m, r)) = out.iter().enumerate().find(|(_, r)| !r.collapsed.is_empty()) {
        let who = if size > 1 { format!(" (member {m} of {size})") } else { String::new() };
        crate::log::line(&format!("warning: layer collapse{who}: {} {} no active weight on a path from input to output", r.collapsed.join(", "), if r.collapsed.len() == 1 { "has" } else { "have" }));
    }
    Ok(out)
}

/// The progress line after an epoch: one member's losses, or an ensemble's mean.
fn epoch_message(train_loss: &[f64], test_acc: &[f64], out: &[RunResult], seconds: f64) -> String {
    if let [r] = out {
        return match r.ended {
            Ended::Diverged(_) => "loss is NaN/inf: diverged".into(),
            _ => format!("train_loss {:.4}  test_acc {:.4}  {seconds:.1}s", train_loss[0], test_acc[0]),
        };
    }
    let finite: Vec<f64> = test_acc.iter().zip(out).filter(|(_, r)| !matches!(r.ended, Ended::Diverged(_))).map(|(a, _)| *a).collect();
    let diverged = out.len() - finite.len();
    format!("mean test_acc {:.4}  {diverged} diverged  {seconds:.1}s", finite.iter().sum::<f64>() / finite.len().max(1) as f64)
}

/// Zero padding of the random crop (SPEC 3: 4 pixels).
pub(crate) const AUGMENT_PAD: i64 = 4;

/// One epoch's example order (`[n]` int64) and, with augmentation, its draws
/// (`[n, 3]`), for the run seeded `seed`, on `device`: two host-to-device copies per
/// epoch, none per batch.
pub(crate) fn epoch_order(cfg: &TrainConfig, seed: u64, epoch: usize, n: usize, device: Device) -> (Tensor, Option<Tensor>) {
    let order = Tensor::from_slice(&permutation(&mut stream(seed, Stream::DataOrder, epoch as u64), n)).to_device(device);
    (order, cfg.augment.then(|| augment_draws(seed, epoch, n, AUGMENT_PAD).to_device(device)))
}

/// Per-member mean cross-entropy and accuracy on `split` in eval mode: every member
/// sees the same examples, in chunks of 1024 (a compact kernel's input rows stay in cache).
fn evaluate_members(model: &dyn Trainee, split: &Split) -> Result<(Vec<f64>, Vec<f64>)> {
    let _guard = tch::no_grad_guard();
    let (device, e, n) = (model.device(), model.members() as i64, split.len() as i64);
    let (mut loss, mut correct) = (Tensor::zeros([e], (Kind::Double, device)), Tensor::zeros([e], (Kind::Int64, device)));
    let chunk = 1024;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let xs = split.x.narrow(0, start, len).to_device(device);
        let ys = split.y.narrow(0, start, len).to_device(device).unsqueeze(0).expand([e, len], false);
        let logits = model.eval_logits(&xs)?;
        loss += member_losses(&logits, &ys)?.to_kind(Kind::Double) * len as f64;
        correct += logits.argmax(-1, false).eq_tensor(&ys).sum_dim_intlist(1, false, Kind::Int64);
        start += len;
    }
    let n = n.max(1) as f64;
    let loss = Vec::<f64>::try_from((loss / n).to_device(Device::Cpu))?;
    let acc = Vec::<f64>::try_from((correct.to_kind(Kind::Double) / n).to_device(Device::Cpu))?;
    Ok((loss, acc))
}

/// The process's resident-memory high-water mark (`VmHWM` of /proc/self/status), or 0 where unknown.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()).map_or(0, |k| k * 1024)
}

/// `cpu` or `cuda:N`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
        _ => "cpu".into(),
    }
}
