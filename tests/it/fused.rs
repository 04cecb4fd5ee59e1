//! The fused CPU step against autograd: same losses, accuracies and weights to float
//! tolerance for dense, masked-dense and compact layers, biases, SGD and momentum with
//! L2, batch sizes that leave tails; masked weights exactly zero; members of a batched
//! ensemble bit-identical to their single runs; clear errors where it does not apply.
use super::common::{max_rel, quick, snapshot, synthetic};
use sparselab::model::{BatchedMlp, Densities, Kernel, MlpConfig, Model};
use sparselab::train::{train, train_ensemble, NoCallback, OptimizerConfig, OptimizerKind, RunResult, StepKind, TrainConfig};
use tch::{Device, Tensor};

fn run(cfg: &MlpConfig, tc: &TrainConfig, step: StepKind) -> (RunResult, sparselab::model::Mlp) {
    let data = synthetic();
    let mut net = cfg.init(Device::Cpu).unwrap();
    let r = train(&mut net, &data, &TrainConfig { step, ..tc.clone() }).unwrap();
    (r, net)
}

fn assert_close(cfg: &MlpConfig, tc: &TrainConfig) {
    let (ra, a) = run(cfg, tc, StepKind::Autograd);
    let (rf, f) = run(cfg, tc, StepKind::Fused);
    assert_eq!(ra.history.len(), tc.epochs);
    for (x, y) in ra.history.iter().zip(&rf.history) {
        for (p, q, what) in [(x.train_loss, y.train_loss, "train loss"), (x.test_loss, y.test_loss, "test loss")] {
            assert!((p - q).abs() <= 1e-4 * p.abs().max(1.0), "epoch {} {what}: autograd {p} fused {q}", x.epoch);
        }
        assert!((x.train_acc - y.train_acc).abs() <= 2.0 / 512.0, "epoch {} train acc {} vs {}", x.epoch, x.train_acc, y.train_acc);
    }
    for ((name, wa), (_, wf)) in snapshot(&a).iter().zip(snapshot(&f).iter()) {
        assert!(max_rel(wf, wa) < 1e-4, "{name}: {}", max_rel(wf, wa));
    }
    for l in f.weight_layers() {
        let off: Tensor = 1.0 - l.mask;
        assert_eq!((&l.weight * off).abs().max().double_value(&[]), 0.0, "{}: a masked weight moved", l.name);
    }
}

/// Dense, masked-dense (density 0.6) and compact layers (0.1, 0.3) in one network, with
/// biases, momentum and L2; batch 100 over 512 examples leaves a last batch of 12, so
/// every column-chunk branch runs.
#[test]
fn fused_step_trains_like_autograd_with_momentum() {
    let _torch = super::common::torch_lock();
    let cfg = MlpConfig { densities: Densities::PerLayer(vec![0.6, 0.1, 0.3, 1.0]), seed: 3, ..MlpConfig::new(64, 4, 3, 70) };
    assert_eq!(cfg.kernels().unwrap(), vec![Kernel::Dense, Kernel::Compact, Kernel::Compact, Kernel::Dense]);
    let tc = TrainConfig { batch_size: 100, epochs: 3, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-3, ..Default::default() }, ..quick() };
    assert_close(&cfg, &tc);
}

/// Plain SGD (the update folded into the gemm), no biases, masked layers, L2.
#[test]
fn fused_step_trains_like_autograd_with_plain_sgd() {
    let _torch = super::common::torch_lock();
    let cfg = MlpConfig { densities: Densities::Uniform(0.5), bias: false, seed: 5, ..MlpConfig::new(64, 4, 2, 90) };
    let tc = TrainConfig { batch_size: 64, optimizer: OptimizerConfig { kind: OptimizerKind::Sgd, lr: 0.1, l2: 1e-3, ..Default::default() }, ..quick() };
    assert_close(&cfg, &tc);
    // Compact everywhere, no hidden layer at all (a linear model), batch of 7.
    let cfg = MlpConfig { densities: Densities::Uniform(0.2), kernel: Kernel::Compact, ..MlpConfig::new(64, 4, 0, 1) };
    assert_close(&cfg, &TrainConfig { batch_size: 7, epochs: 1, ..tc });
}

/// `auto` takes the fused step for a plain ReLU MLP with momentum (bit-identical to
/// `fused`, not to autograd), and autograd for anything else.
#[test]
fn auto_takes_the_fused_step_where_it_applies() {
    let _torch = super::common::torch_lock();
    let cfg = MlpConfig { densities: Densities::Uniform(0.3), ..MlpConfig::new(64, 4, 2, 40) };
    let tc = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, ..Default::default() }, ..quick() };
    let (auto, auto_net) = run(&cfg, &tc, StepKind::Auto);
    let (fused, fused_net) = run(&cfg, &tc, StepKind::Fused);
    let (_, grad_net) = run(&cfg, &tc, StepKind::Autograd);
    assert_eq!(auto.history[1].train_loss, fused.history[1].train_loss);
    // Weights: bit-identical to the fused step's, not to autograd's (the losses can
    // agree to every printed bit; the weights after 16 steps do not).
    super::common::assert_identical(&super::common::snapshot(&auto_net), &super::common::snapshot(&fused_net));
    let differs = super::common::snapshot(&auto_net).iter().zip(super::common::snapshot(&grad_net)).any(|((_, a), (_, b))| !a.equal(&b));
    assert!(differs, "auto took the autograd step");
    let adam = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, ..Default::default() }, ..tc.clone() };
    let (auto, _) = run(&cfg, &adam, StepKind::Auto);
    let (grad, _) = run(&cfg, &adam, StepKind::Autograd);
    assert_eq!(auto.history[1].train_loss, grad.history[1].train_loss);
}

#[test]
fn fused_says_why_it_does_not_apply() {
    let data = synthetic();
    let fused = |cfg: MlpConfig, kind: OptimizerKind| {
        let mut net = cfg.init(Device::Cpu).unwrap();
        let tc = TrainConfig { step: StepKind::Fused, optimizer: OptimizerConfig { kind, lr: 0.01, ..Default::default() }, ..quick() };
        train(&mut net, &data, &tc).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let base = MlpConfig::new(64, 4, 2, 16);
    assert_eq!(fused(base.clone(), OptimizerKind::Adam), "step: \"fused\" does not apply: optimizer adam (the fused step does sgd and momentum); use \"auto\"");
    assert_eq!(
        fused(MlpConfig { batch_norm: true, ..base.clone() }, OptimizerKind::Sgd),
        "step: \"fused\" does not apply: the model is not a plain ReLU MLP (no BatchNorm, skip or dropout); use \"auto\""
    );
    assert!(fused(MlpConfig { activation: "swish".into(), ..base.clone() }, OptimizerKind::Sgd).contains("not a plain ReLU MLP"));
    assert!(sparselab::train::StepKind::parse("fuse").unwrap_err().to_string().contains("valid: auto, autograd, fused"));
}

/// With the fused step every member of an ensemble computes exactly what it computes
/// alone: same weights, losses and accuracies, bit for bit (evaluation uses the batched
/// forward, so test metrics agree to float rounding).
#[test]
fn ensemble_members_train_bit_for_bit_as_alone_with_the_fused_step() {
    let _torch = super::common::torch_lock();
    let data = synthetic();
    let member = |seed, d: f64| MlpConfig { densities: Densities::PerLayer(vec![d, 0.2, 0.6]), seed, ..MlpConfig::new(64, 4, 2, 48) };
    let members = [member(1, 0.3), member(2, 0.35), member(3, 0.3)];
    let tc = TrainConfig { batch_size: 100, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-4, ..Default::default() }, ..quick() };
    let ens = BatchedMlp::new(&members, Device::Cpu).unwrap();
    assert_eq!(ens.kernels(), vec![Kernel::Compact, Kernel::Compact, Kernel::Dense]);
    let cfgs: Vec<TrainConfig> = members.iter().map(|m| TrainConfig { seed: m.seed, step: StepKind::Fused, ..tc.clone() }).collect();
    let runs = train_ensemble(&ens, &data.train, &data.test, &cfgs, &mut NoCallback).unwrap();
    for (e, m) in members.iter().enumerate() {
        let mut alone = m.init(Device::Cpu).unwrap();
        let r = train(&mut alone, &data, &cfgs[e]).unwrap();
        let got = ens.member(e).unwrap();
        for (a, b) in alone.weight_layers().iter().zip(got.weight_layers()) {
            assert!(a.weight.equal(&b.weight), "member {e} {} differs", a.name);
        }
        for (x, y) in r.history.iter().zip(&runs[e].history) {
            assert_eq!((x.train_loss, x.train_acc), (y.train_loss, y.train_acc), "member {e} epoch {}", x.epoch);
            assert!((x.test_loss - y.test_loss).abs() < 1e-5);
        }
    }
}

/// Regression: the fused ReLU once mapped NaN to 0, so a network whose activations
/// overflowed kept training on zeros (loss ln 4) instead of diverging as with autograd.
#[test]
fn fused_relu_passes_nan_so_an_overflowing_run_diverges() {
    let cfg = MlpConfig { fans: Some(vec![sparselab::model::Fan::Value(1e-36)]), seed: 7, ..MlpConfig::new(64, 4, 4, 24) };
    let tc = TrainConfig { optimizer: OptimizerConfig { lr: 0.05, ..Default::default() }, ..quick() };
    for step in [StepKind::Autograd, StepKind::Fused] {
        let (r, _) = run(&cfg, &tc, step);
        assert_eq!(r.diverged(), Some(0), "{step:?}");
        assert!(r.history.is_empty());
    }
}
