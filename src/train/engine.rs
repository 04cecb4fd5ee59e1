//! The training loop. It fits on one screen; features hook in through [`Callback`].
use super::gradflow::{measure, measure_epochs, measurement_indices};
use super::progress::Progress;
use super::step::Stepper;
use super::{EpochRecord, Ended, RunResult, TrainConfig};
use crate::data::{augment_draws, crop_flip, Dataset, Split};
use crate::error::{Error, Result};
use crate::model::{Mode, Model};
use crate::rng::{permutation, stream, torch_seed, Stream};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// What a callback tells the loop after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop now (e.g. ASHA); the run ends as [`Ended::Stopped`].
    Stop,
}

/// Hooks called by the loop (early stopping, live charts, logging).
pub trait Callback {
    /// After each completed epoch.
    fn on_epoch(&mut self, _record: &EpochRecord) -> Control {
        Control::Continue
    }
}

/// A callback that does nothing.
pub struct NoCallback;
impl Callback for NoCallback {}

impl<F: FnMut(&EpochRecord) -> Control> Callback for F {
    fn on_epoch(&mut self, record: &EpochRecord) -> Control {
        self(record)
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
    cfg.validate()?;
    check_input(model, train)?;
    let device = cfg.device.resolve()?;
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t as i32);
    }
    model.to_device(device);
    tch::manual_seed(torch_seed(cfg.seed));
    let (train, eval) = (train.to_device(device), eval.to_device(device));
    let n = train.len();
    let gf_epochs = cfg.grad_flow.as_ref().map(|g| measure_epochs(cfg.epochs, g.points)).unwrap_or_default();
    let gf_subset = cfg.grad_flow.as_ref().map(|g| train.select(&Tensor::from_slice(&measurement_indices(n, g.samples)).to_device(device)));
    let mut stepper = Stepper::new(cfg.step, model.fused_layers()?, 1, model.params(), &cfg.optimizer, device)?;
    let batches = n.div_ceil(cfg.batch_size);
    let progress = Progress::new(cfg.progress, &model.describe(), cfg.epochs, batches);
    let start = Instant::now();
    let mut out = RunResult { history: vec![], grad_flow: vec![], ended: Ended::Finished, test_acc: f64::NAN, test_loss: f64::NAN, seconds: 0.0, device: device_name(device) };
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let lr = cfg.schedule.lr(cfg.optimizer.lr, epoch, cfg.epochs);
        let (order, draws) = epoch_order(cfg, cfg.seed, epoch, n, device);
        // Sums stay on the device: no host round trip per batch.
        let loss_sum = Tensor::zeros([], (Kind::Float, device));
        let correct = Tensor::zeros([], (Kind::Int64, device));
        for b in 0..batches {
            if crate::cancel::requested() {
                out.ended = Ended::Interrupted(epoch);
                break;
            }
            let len = cfg.batch_size.min(n - b * cfg.batch_size) as i64;
            let idx = order.narrow(0, (b * cfg.batch_size) as i64, len);
            let mut xs = train.x.index_select(0, &idx);
            if let Some(d) = &draws {
                xs = crop_flip(&xs, AUGMENT_PAD, &d.narrow(0, (b * cfg.batch_size) as i64, len));
            }
            let ys = train.y.index_select(0, &idx);
            let (loss, right) = stepper.step(|| model.forward(&xs, Mode::Train), || xs.flatten(1, -1).tr().unsqueeze(0), &ys, lr)?;
            tch::no_grad(|| {
                let _ = loss_sum.shallow_clone().f_add_(&(loss * len as f64));
                let _ = correct.shallow_clone().f_add_(&right);
            });
            progress.batch();
        }
        if let Ended::Interrupted(_) = out.ended {
            break;
        }
        let train_loss = loss_sum.double_value(&[]) / n as f64;
        if !train_loss.is_finite() {
            out.ended = Ended::Diverged(epoch);
            progress.epoch(epoch, "loss is NaN/inf: diverged");
            break;
        }
        let (test_loss, test_acc) = evaluate(model, &eval)?;
        if gf_epochs.contains(&epoch) {
            if let Some(subset) = &gf_subset {
                out.grad_flow.push(measure(model, subset, epoch)?);
            }
        }
        let rec = EpochRecord { epoch, train_loss, train_acc: correct.int64_value(&[]) as f64 / n as f64, test_loss, test_acc, lr, seconds: t0.elapsed().as_secs_f64() };
        progress.epoch(epoch, &format!("train_loss {train_loss:.4}  test_acc {test_acc:.4}  {:.1}s", rec.seconds));
        (out.test_loss, out.test_acc) = (test_loss, test_acc);
        out.history.push(rec);
        if cb.on_epoch(out.history.last().expect("just pushed")) == Control::Stop {
            out.ended = Ended::Stopped(epoch);
            break;
        }
    }
    if let Ended::Diverged(_) = out.ended {
        (out.test_loss, out.test_acc) = evaluate(model, &eval)?;
    }
    progress.finish();
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
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

/// Mean cross-entropy and accuracy on `split` in eval mode, in chunks.
pub fn evaluate(model: &dyn Model, split: &Split) -> Result<(f64, f64)> {
    let _guard = tch::no_grad_guard();
    let n = split.len() as i64;
    let device = model.device();
    let (mut loss, mut correct) = (Tensor::zeros([], (Kind::Double, device)), Tensor::zeros([], (Kind::Int64, device)));
    let chunk = 2048;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let xs = split.x.narrow(0, start, len).to_device(device);
        let ys = split.y.narrow(0, start, len).to_device(device);
        let logits = model.forward(&xs, Mode::Eval)?;
        loss += super::cross_entropy(&logits, &ys)?.to_kind(Kind::Double) * len as f64;
        correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64);
        start += len;
    }
    let n = n.max(1) as f64;
    Ok((loss.double_value(&[]) / n, correct.int64_value(&[]) as f64 / n))
}

fn check_input(model: &dyn Model, split: &Split) -> Result<()> {
    let want: i64 = model.input_shape().iter().product();
    let got: i64 = split.x.size()[1..].iter().product();
    if want != got {
        return Err(Error::Shape(format!("model {} expects {want} input features per example, the data has {got} ({:?})", model.describe(), &split.x.size()[1..])));
    }
    Ok(())
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
