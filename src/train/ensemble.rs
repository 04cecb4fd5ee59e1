//! The training loop of a batched ensemble ([`BatchedMlp`]): the loop of
//! [`super::train_with`] with a member axis. Each member draws its own data order and
//! augmentation from its own seed's streams, so member `e` sees exactly the
//! minibatches its run alone would see; losses, accuracies, divergence, gradient
//! flow and results are kept per member.
use super::engine::{device_name, epoch_order, AUGMENT_PAD};
use super::gradflow::{measure, measure_epochs, measurement_indices};
use super::progress::Progress;
use super::step::{member_losses, Stepper};
use super::{EpochRecord, Ended, RunResult, TrainConfig};
use crate::data::{crop_flip, Split};
use crate::error::{Error, Result};
use crate::model::{BatchedMlp, Mode};
use std::time::Instant;
use tch::{Kind, Tensor};

/// `[E, B, F]` stored feature-major (`[E, F, B]` in memory), the layout the ensemble's
/// layers keep activations in: one copy here saves one in every first layer.
fn feature_major(xs: &Tensor) -> Tensor {
    xs.transpose(1, 2).contiguous().transpose(1, 2)
}

/// Trains every member of `model` on `train`, evaluating on `eval` after every epoch.
/// `cfgs[e]` is member `e`'s training configuration; they must be equal but for the
/// seed. Returns one result per member, as [`super::train_with`] would have returned
/// for that member alone (up to floating-point summation order). A member whose loss
/// becomes NaN/inf ends as diverged at that epoch, exactly as alone; the others go on.
/// Seconds are each member's share of the ensemble's wall time.
///
/// # Errors
/// Configurations that differ in more than the seed, bad settings, libtorch failures.
pub fn train_ensemble(model: &BatchedMlp, train: &Split, eval: &Split, cfgs: &[TrainConfig]) -> Result<Vec<RunResult>> {
    let size = model.len();
    if cfgs.len() != size {
        return Err(Error::config("ensemble", format!("{} training configurations for {size} members", cfgs.len())));
    }
    let cfg = &cfgs[0];
    if let Some(i) = cfgs.iter().position(|c| TrainConfig { seed: cfg.seed, ..c.clone() } != *cfg) {
        return Err(Error::config("ensemble", format!("member {i}'s training configuration differs from member 0's in more than the seed")));
    }
    cfg.validate()?;
    let device = model.device();
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t as i32);
    }
    let (train, eval) = (train.to_device(device), eval.to_device(device));
    let n = train.len();
    let want = model.members()[0].input;
    if train.x.size()[1..].iter().product::<i64>() != want {
        return Err(Error::Shape(format!("ensemble expects {want} input features per example, the data has {:?}", &train.x.size()[1..])));
    }
    let gf_epochs = cfg.grad_flow.as_ref().map(|g| measure_epochs(cfg.epochs, g.points)).unwrap_or_default();
    let gf_subset = cfg.grad_flow.as_ref().map(|g| train.select(&Tensor::from_slice(&measurement_indices(n, g.samples)).to_device(device)));
    let mut stepper = Stepper::new(cfg.step, model.fused_layers()?, size as i64, model.params(), &cfg.optimizer, device)?;
    let batches = n.div_ceil(cfg.batch_size);
    let members = model.members();
    let label = format!("{size} x MLP {}-{}x{}-{}", members[0].input, members[0].depth, members[0].width, members[0].classes);
    let progress = Progress::new(cfg.progress, &label, cfg.epochs, batches);
    let start = Instant::now();
    let fresh = || RunResult { history: vec![], grad_flow: vec![], ended: Ended::Finished, test_acc: f64::NAN, test_loss: f64::NAN, seconds: 0.0, device: device_name(device) };
    let mut out: Vec<RunResult> = (0..size).map(|_| fresh()).collect();
    // Members still training (not diverged).
    let mut live = vec![true; size];
    let e = size as i64;
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let lr = cfg.schedule.lr(cfg.optimizer.lr, epoch, cfg.epochs);
        let plans: Vec<(Tensor, Option<Tensor>)> = cfgs.iter().map(|c| epoch_order(cfg, c.seed, epoch, n, device)).collect();
        let order = Tensor::stack(&plans.iter().map(|p| p.0.shallow_clone()).collect::<Vec<_>>(), 0); // [E, n]
        let draws = cfg.augment.then(|| Tensor::stack(&plans.iter().filter_map(|p| p.1.as_ref().map(Tensor::shallow_clone)).collect::<Vec<_>>(), 0)); // [E, n, 3]
        let loss_sum = Tensor::zeros([e], (Kind::Float, device));
        let correct = Tensor::zeros([e], (Kind::Int64, device));
        let mut interrupted = false;
        for b in 0..batches {
            if crate::cancel::requested() {
                interrupted = true;
                break;
            }
            let (at, len) = ((b * cfg.batch_size) as i64, cfg.batch_size.min(n - b * cfg.batch_size) as i64);
            let idx = order.narrow(1, at, len).reshape([-1]);
            let mut xs = train.x.index_select(0, &idx);
            if let Some(d) = &draws {
                xs = crop_flip(&xs, AUGMENT_PAD, &d.narrow(1, at, len).reshape([-1, 3]));
            }
            let xs = xs.view([e, len, -1]);
            let ys = train.y.index_select(0, &idx).view([e, len]);
            let (losses, right) = stepper.step(|| model.forward(&feature_major(&xs), Mode::Train), || xs.transpose(1, 2), &ys, lr)?;
            tch::no_grad(|| {
                let _ = loss_sum.shallow_clone().f_add_(&(losses * len as f64));
                let _ = correct.shallow_clone().f_add_(&right);
            });
            progress.batch();
        }
        if interrupted {
            for (r, _) in out.iter_mut().zip(&live).filter(|(_, l)| **l) {
                r.ended = Ended::Interrupted(epoch);
            }
            break;
        }
        let train_loss: Vec<f64> = Vec::<f64>::try_from((loss_sum.to_kind(Kind::Double) / n as f64).to_device(tch::Device::Cpu))?;
        let train_correct: Vec<i64> = Vec::<i64>::try_from(correct.to_device(tch::Device::Cpu))?;
        let (test_loss, test_acc) = evaluate_ensemble(model, &eval)?;
        let seconds = t0.elapsed().as_secs_f64() / size as f64;
        for m in 0..size {
            if !live[m] {
                continue;
            }
            let r = &mut out[m];
            (r.test_loss, r.test_acc) = (test_loss[m], test_acc[m]);
            if !train_loss[m].is_finite() {
                // As alone: no record for the diverged epoch, final metrics from now.
                r.ended = Ended::Diverged(epoch);
                live[m] = false;
                continue;
            }
            if gf_epochs.contains(&epoch) {
                if let Some(subset) = &gf_subset {
                    r.grad_flow.push(measure(&model.member(m)?, subset, epoch)?);
                }
            }
            r.history.push(EpochRecord { epoch, train_loss: train_loss[m], train_acc: train_correct[m] as f64 / n as f64, test_loss: test_loss[m], test_acc: test_acc[m], lr, seconds });
        }
        let mean_acc = test_acc.iter().zip(&live).filter(|(_, l)| **l).map(|(a, _)| a).sum::<f64>() / live.iter().filter(|l| **l).count().max(1) as f64;
        let diverged = live.iter().filter(|l| !**l).count();
        progress.epoch(epoch, &format!("mean test_acc {mean_acc:.4}  {diverged} diverged  {:.1}s", t0.elapsed().as_secs_f64()));
        if !live.iter().any(|l| *l) {
            break;
        }
    }
    progress.finish();
    let seconds = start.elapsed().as_secs_f64() / size as f64;
    out.iter_mut().for_each(|r| r.seconds = seconds);
    Ok(out)
}

/// Per-member mean cross-entropy and accuracy on `split` in eval mode: every member
/// sees the same examples, in chunks of 1024.
///
/// # Errors
/// libtorch failures.
pub fn evaluate_ensemble(model: &BatchedMlp, split: &Split) -> Result<(Vec<f64>, Vec<f64>)> {
    let _guard = tch::no_grad_guard();
    let device = model.device();
    let (n, e) = (split.len() as i64, model.len() as i64);
    let (mut loss, mut correct) = (Tensor::zeros([e], (Kind::Double, device)), Tensor::zeros([e], (Kind::Int64, device)));
    // 1024 examples per member: the compact kernel's input rows stay in cache.
    let chunk = 1024;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let xs = split.x.narrow(0, start, len).to_device(device).flatten(1, -1);
        let ys = split.y.narrow(0, start, len).to_device(device).unsqueeze(0).expand([e, len], false);
        let logits = model.forward(&feature_major(&xs.unsqueeze(0).expand([e, len, xs.size()[1]], false)), Mode::Eval)?;
        loss += member_losses(&logits, &ys)?.to_kind(Kind::Double) * len as f64;
        correct += logits.argmax(-1, false).eq_tensor(&ys).sum_dim_intlist(1, false, Kind::Int64);
        start += len;
    }
    let n = n.max(1) as f64;
    let loss = Vec::<f64>::try_from((loss / n).to_device(tch::Device::Cpu))?;
    let acc = Vec::<f64>::try_from((correct.to_kind(Kind::Double) / n).to_device(tch::Device::Cpu))?;
    Ok((loss, acc))
}
