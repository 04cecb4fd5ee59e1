//! The fused CPU step against autograd: same losses, accuracies and weights to float
//! tolerance for dense, masked-dense and compact layers, biases, BatchNorm (train-mode
//! statistics, running statistics, scale and shift), residual blocks, dropout, every
//! update rule (SGD, momentum, Adam, AdamW, Adagrad, RMSProp) with coupled L2 and
//! decoupled decay, batch sizes that leave tails; masked weights exactly zero; members
//! of a batched ensemble bit-identical to their single runs, and runs bit-identical
//! across thread counts; clear errors where it does not apply.
use super::common::{max_rel, quick, snapshot, synthetic};
use sparselab::data::{Dataset, DatasetConfig, SyntheticConfig};
use sparselab::model::{BatchedMlp, Densities, Kernel, MlpConfig, Model};
use sparselab::train::{train, train_ensemble, NoCallback, OptimizerConfig, OptimizerKind, RunResult, StepKind, TrainConfig};
use tch::{Device, Tensor};

fn run(cfg: &MlpConfig, tc: &TrainConfig, step: StepKind) -> (RunResult, sparselab::model::Mlp) {
    run_on(&synthetic(), cfg, tc, step)
}

fn run_on(data: &Dataset, cfg: &MlpConfig, tc: &TrainConfig, step: StepKind) -> (RunResult, sparselab::model::Mlp) {
    let mut net = cfg.init(Device::Cpu).unwrap();
    let r = train(&mut net, data, &TrainConfig { step, ..tc.clone() }).unwrap();
    (r, net)
}

fn assert_close(cfg: &MlpConfig, tc: &TrainConfig) {
    assert_close_to(cfg, tc, 1e-4);
}

/// As [`assert_close`], weights to `weights` relative to the largest weight.
fn assert_close_to(cfg: &MlpConfig, tc: &TrainConfig, weights: f64) {
    assert_close_on(&synthetic(), cfg, tc, weights);
}

/// As [`assert_close_to`], on `data`.
fn assert_close_on(data: &Dataset, cfg: &MlpConfig, tc: &TrainConfig, weights: f64) {
    let (ra, a) = run_on(data, cfg, tc, StepKind::Autograd);
    let (rf, f) = run_on(data, cfg, tc, StepKind::Fused);
    assert_eq!(ra.history.len(), tc.epochs);
    for (x, y) in ra.history.iter().zip(&rf.history) {
        for (p, q, what) in [(x.train_loss, y.train_loss, "train loss"), (x.test_loss, y.test_loss, "test loss")] {
            assert!((p - q).abs() <= 1e-4 * p.abs().max(1.0), "epoch {} {what}: autograd {p} fused {q}", x.epoch);
        }
        assert!((x.train_acc - y.train_acc).abs() <= 2.0 / 512.0, "epoch {} train acc {} vs {}", x.epoch, x.train_acc, y.train_acc);
    }
    for ((name, wa), (_, wf)) in snapshot(&a).iter().zip(snapshot(&f).iter()) {
        // A bias before BatchNorm has an exactly zero gradient: in both paths it moves by
        // rounding noise alone (|b| ~ 1e-9), so it is compared in absolute terms.
        let abs = (wf - wa).abs().max().double_value(&[]);
        assert!(max_rel(wf, wa) < weights || abs < 1e-6, "{name}: {} (absolute {abs:e})", max_rel(wf, wa));
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

/// Adam, AdamW (decoupled decay), Adagrad and RMSProp with coupled L2 over dense,
/// masked-dense and compact layers with biases, three epochs with a short last batch.
/// The adaptive rules divide by the gradient's running magnitude, so a weight whose
/// gradient is float noise in both paths (a unit nearly off) moves by up to lr either
/// way: weights are compared to 1e-3 of the largest (lr 1e-3 over 16 steps moves a
/// weight by up to 1.6e-2; any error in a rule's formula shows at that scale).
#[test]
fn fused_step_trains_like_autograd_with_every_adaptive_rule() {
    let _torch = super::common::torch_lock();
    let cfg = MlpConfig { densities: Densities::PerLayer(vec![0.6, 0.1, 0.3, 1.0]), seed: 4, ..MlpConfig::new(64, 4, 3, 70) };
    for (kind, l2, wd) in [(OptimizerKind::Adam, 1e-3, 0.0), (OptimizerKind::AdamW, 0.0, 0.05), (OptimizerKind::Adagrad, 1e-3, 0.0), (OptimizerKind::RmsProp, 1e-3, 0.0)] {
        let tc = TrainConfig { batch_size: 100, epochs: 3, optimizer: OptimizerConfig { kind, lr: 1e-3, l2, weight_decay: wd, ..Default::default() }, ..quick() };
        assert_close_to(&cfg, &tc, 1e-3);
    }
    // Adam's bias corrections count steps: at lr 0.05 a wrong count would show in the loss.
    let tc = TrainConfig { batch_size: 64, epochs: 2, optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 0.01, ..Default::default() }, ..quick() };
    assert_close_to(&MlpConfig { bias: false, ..cfg.clone() }, &tc, 1e-3);
}

/// Residual blocks (SPEC 2: hidden layers 2-3, 4-5, ...): depth 4 has one block, depth
/// 5 two; with momentum and with Adam, dense and compact layers.
#[test]
fn fused_step_trains_like_autograd_with_skip_connections() {
    let _torch = super::common::torch_lock();
    for (depth, dens) in [(4, vec![1.0, 0.5, 0.2, 1.0, 1.0]), (5, vec![0.5, 0.3, 1.0, 0.1, 0.6, 1.0])] {
        let cfg = MlpConfig { densities: Densities::PerLayer(dens), skip: true, seed: 8, ..MlpConfig::new(64, 4, depth, 40) };
        let tc = TrainConfig { batch_size: 100, epochs: 2, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-4, ..Default::default() }, ..quick() };
        assert_close(&cfg, &tc);
        let tc = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, ..Default::default() }, ..tc };
        assert_close_to(&cfg, &tc, 1e-3);
    }
    // The residual changes the numbers: without it the same network trains otherwise.
    let cfg = MlpConfig { skip: true, seed: 8, ..MlpConfig::new(64, 4, 4, 40) };
    let tc = TrainConfig { step: StepKind::Fused, ..quick() };
    let (with, _) = run(&cfg, &tc, StepKind::Fused);
    let (without, _) = run(&MlpConfig { skip: false, ..cfg }, &tc, StepKind::Fused);
    assert_ne!(with.history[0].train_loss, without.history[0].train_loss);
}

/// BatchNorm in train mode (batch statistics, running mean and variance, scale and
/// shift trained by the rule) after dense and compact layers, with and without biases,
/// with residual blocks, momentum and Adam; batch 100 over 512 leaves a last batch of
/// 12. The snapshot holds the running statistics too, so they are compared as well.
#[test]
fn fused_step_trains_like_autograd_with_batch_norm() {
    let _torch = super::common::torch_lock();
    let cfg = MlpConfig { densities: Densities::PerLayer(vec![0.6, 0.1, 0.3, 1.0]), batch_norm: true, seed: 6, ..MlpConfig::new(64, 4, 3, 70) };
    let momentum = TrainConfig { batch_size: 100, epochs: 2, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-4, ..Default::default() }, ..quick() };
    let adam = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, l2: 1e-4, ..Default::default() }, ..momentum.clone() };
    assert_close(&cfg, &momentum);
    assert_close_to(&MlpConfig { bias: false, ..cfg.clone() }, &adam, 1e-3);
    let skip = MlpConfig { densities: Densities::PerLayer(vec![1.0, 0.5, 0.2, 1.0, 1.0]), skip: true, bias: false, ..MlpConfig::new(64, 4, 4, 40) };
    assert_close(&MlpConfig { batch_norm: true, ..skip.clone() }, &momentum);
    assert_close_to(&MlpConfig { batch_norm: true, ..skip }, &adam, 1e-3);
    let names: Vec<String> = snapshot(&cfg.init(Device::Cpu).unwrap()).into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n.ends_with("running_var")), "{names:?}");
}

/// Dropout after every hidden activation (p 0.2 and 0.5) over dense, masked-dense and
/// compact layers, alone and with BatchNorm and residual blocks, momentum and Adam: the
/// step draws the keep-masks as the forward pass does after the loop's per-step reseed,
/// so both paths drop the same units and train alike. The draws matter: without them
/// (dropout 0) or with another seed the same network trains otherwise.
#[test]
fn fused_step_trains_like_autograd_with_dropout() {
    let _torch = super::common::torch_lock();
    let cfg = MlpConfig { densities: Densities::PerLayer(vec![0.6, 0.1, 0.3, 1.0]), dropout: 0.2, seed: 9, ..MlpConfig::new(64, 4, 3, 70) };
    let momentum = TrainConfig { batch_size: 100, epochs: 2, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-4, ..Default::default() }, ..quick() };
    let adam = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, ..Default::default() }, ..momentum.clone() };
    assert_close(&cfg, &momentum);
    assert_close_to(&MlpConfig { dropout: 0.5, ..cfg.clone() }, &adam, 1e-3);
    let skip = MlpConfig { densities: Densities::PerLayer(vec![1.0, 0.5, 0.2, 1.0, 1.0]), skip: true, dropout: 0.2, ..MlpConfig::new(64, 4, 4, 40) };
    assert_close(&skip, &momentum);
    assert_close(&MlpConfig { batch_norm: true, ..skip.clone() }, &momentum);
    // Adam with eps 1e-4 beside BatchNorm, as in the row-piece test below: a norm's shift
    // whose gradient is rounding noise takes steps of +-lr under eps 1e-8 that differ
    // between any two summation orders (the portable build on a Zen 4 CPU: 2.6e-3 of
    // the largest shift, 2.9e-5 absolute, after 2 epochs).
    let adam_bn = TrainConfig { optimizer: OptimizerConfig { eps: Some(1e-4), ..adam.optimizer.clone() }, ..adam.clone() };
    assert_close_to(&MlpConfig { batch_norm: true, bias: false, ..skip }, &adam_bn, 1e-3);
    let (with, _) = run(&cfg, &momentum, StepKind::Fused);
    let (without, _) = run(&MlpConfig { dropout: 0.0, ..cfg.clone() }, &momentum, StepKind::Fused);
    let (reseeded, _) = run(&cfg, &TrainConfig { seed: 1, ..momentum.clone() }, StepKind::Fused);
    assert_ne!(with.history[0].train_loss, without.history[0].train_loss);
    assert_ne!(with.history[0].train_loss, reseeded.history[0].train_loss);
}

/// Dense layers of 256 rows or more run phase A layer by layer, as row pieces over the
/// whole batch (an even number of pieces of at most 400 rows). 64 -> 3 x 300 -> 4: the
/// hidden layers' products and the output layer's input gradient run as two pieces of
/// 160 and 140 rows. Against autograd with momentum, beside a compact layer (whose
/// products stay 64-column pieces in the same layer-by-layer pass), and with Adam,
/// BatchNorm, a residual block and dropout.
#[test]
fn fused_step_splits_wide_dense_layers_by_rows_like_autograd() {
    let _torch = super::common::torch_lock();
    let wide = MlpConfig { seed: 11, ..MlpConfig::new(64, 4, 3, 300) };
    let momentum = TrainConfig { batch_size: 100, epochs: 2, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-3, ..Default::default() }, ..quick() };
    assert_close(&wide, &momentum);
    let mixed = MlpConfig { densities: Densities::PerLayer(vec![1.0, 0.1, 0.6, 1.0]), ..wide.clone() };
    assert_eq!(mixed.kernels().unwrap(), vec![Kernel::Dense, Kernel::Compact, Kernel::Dense, Kernel::Dense]);
    assert_close(&mixed, &momentum);
    // Adam with eps 1e-4: here a norm's shift can have a gradient of rounding noise
    // (1e-9), which eps 1e-8 turns into steps of +-lr that differ between any two
    // summation orders (column pieces at width 250 show the same); SGD and this eps
    // agree to 1e-6.
    let adam = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, l2: 1e-4, eps: Some(1e-4), ..Default::default() }, ..momentum };
    assert_close_to(&MlpConfig { depth: 4, batch_norm: true, skip: true, dropout: 0.2, bias: false, ..wide }, &adam, 1e-3);
}

/// A dense layer of fewer than 128 rows but at least 32768 weights (as the 784-input
/// layer of a width-79 network; here 100 x 399 on 19 x 21 inputs) takes two weight-update
/// tasks of 50 rows: against autograd with momentum and with Adam, bit-identical across
/// thread counts, and a member of an ensemble computes what it computes alone. 399
/// features and batches of 100 (64 + 36 columns) also leave edges to the copy-in's
/// 8 x 8 blocks in both directions.
#[test]
fn fused_step_splits_a_narrow_layer_with_many_inputs_like_autograd() {
    let _torch = super::common::torch_lock();
    let mut dc = DatasetConfig::new("synthetic");
    dc.synthetic = SyntheticConfig { train: 512, test: 128, classes: 4, shape: [1, 19, 21], noise: 0.3, seed: 1 };
    let data = Dataset::load(&dc).unwrap();
    let cfg = MlpConfig { seed: 12, ..MlpConfig::new(399, 4, 2, 100) };
    let momentum = TrainConfig { batch_size: 100, epochs: 2, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-3, ..Default::default() }, ..quick() };
    assert_close_on(&data, &cfg, &momentum, 1e-4);
    let masked = MlpConfig { densities: Densities::PerLayer(vec![0.6, 1.0, 1.0]), ..cfg.clone() };
    assert_eq!(masked.kernels().unwrap()[0], Kernel::Dense);
    // Adam with eps 1e-4, as in the row-piece test: with 1e-8 a bias whose gradient is
    // rounding noise (a unit almost never on) steps by +-lr either way (0.3% here).
    let adam = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, l2: 1e-4, eps: Some(1e-4), ..Default::default() }, ..momentum.clone() };
    assert_close_on(&data, &masked, &adam, 1e-3);
    for tc in [&momentum, &adam] {
        let threads = |n| TrainConfig { threads: Some(n), ..tc.clone() };
        let (_, one) = run_on(&data, &masked, &threads(1), StepKind::Fused);
        let (_, two) = run_on(&data, &masked, &threads(2), StepKind::Fused);
        super::common::assert_identical(&snapshot(&one), &snapshot(&two));
    }
    ensemble_like_alone_on(&data, &[MlpConfig { seed: 1, ..masked.clone() }, MlpConfig { seed: 2, ..masked }], &momentum.optimizer, &[Kernel::Dense]);
}

/// The fused step's numbers do not depend on the thread count, for every rule and with
/// residual blocks: 1 and 2 threads give the same weights, bit for bit.
#[test]
fn fused_step_is_bit_identical_across_thread_counts() {
    let _torch = super::common::torch_lock();
    let plain = MlpConfig { densities: Densities::PerLayer(vec![0.6, 0.1, 0.3, 1.0, 1.0]), skip: true, seed: 2, ..MlpConfig::new(64, 4, 4, 140) };
    // Width 300: phase A's dense products as row pieces.
    let wide = MlpConfig { densities: Densities::PerLayer(vec![1.0, 1.0, 0.1, 1.0, 1.0]), width: 300, ..plain.clone() };
    let cases = [
        (OptimizerKind::Momentum, plain.clone()),
        (OptimizerKind::Adam, MlpConfig { dropout: 0.3, ..plain.clone() }),
        (OptimizerKind::Adagrad, MlpConfig { batch_norm: true, dropout: 0.1, ..plain }),
        (OptimizerKind::Momentum, wide.clone()),
        (OptimizerKind::Adam, MlpConfig { batch_norm: true, ..wide }),
    ];
    for (kind, cfg) in cases {
        let tc = |threads| TrainConfig { batch_size: 100, threads: Some(threads), optimizer: OptimizerConfig { kind, lr: 1e-3, l2: 1e-4, ..Default::default() }, ..quick() };
        let (_, one) = run(&cfg, &tc(1), StepKind::Fused);
        let (_, two) = run(&cfg, &tc(2), StepKind::Fused);
        super::common::assert_identical(&snapshot(&one), &snapshot(&two));
    }
}

/// `auto` takes the fused step for a ReLU MLP (bit-identical to `fused`, not to
/// autograd), and autograd for anything else.
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
    let (auto, auto_net) = run(&cfg, &adam, StepKind::Auto);
    let (_, fused_net) = run(&cfg, &adam, StepKind::Fused);
    assert!(auto.history[1].train_loss.is_finite());
    super::common::assert_identical(&super::common::snapshot(&auto_net), &super::common::snapshot(&fused_net));
    // Anything but ReLU trains through autograd.
    let swish = MlpConfig { activation: "swish".into(), ..cfg.clone() };
    let (auto, _) = run(&swish, &adam, StepKind::Auto);
    let (grad, _) = run(&swish, &adam, StepKind::Autograd);
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
    assert_eq!(fused(base.clone(), OptimizerKind::RmsProp), "");
    assert_eq!(fused(MlpConfig { batch_norm: true, skip: true, depth: 4, ..base.clone() }, OptimizerKind::Adagrad), "");
    assert_eq!(fused(MlpConfig { dropout: 0.1, ..base.clone() }, OptimizerKind::Sgd), "");
    assert_eq!(
        fused(MlpConfig { activation: "swish".into(), ..base.clone() }, OptimizerKind::Sgd),
        "step: \"fused\" does not apply: the model has an activation other than ReLU or is not an MLP (the fused step runs ReLU MLPs, BatchNorm, skip and dropout included); use \"auto\""
    );
    assert!(sparselab::train::StepKind::parse("fuse").unwrap_err().to_string().contains("valid: auto, autograd, fused"));
}

/// With the fused step every member of an ensemble computes exactly what it computes
/// alone: same weights, losses and accuracies, bit for bit (evaluation uses the batched
/// forward, so test metrics agree to float rounding).
#[test]
fn ensemble_members_train_bit_for_bit_as_alone_with_the_fused_step() {
    let _torch = super::common::torch_lock();
    let member = |seed, d: f64| MlpConfig { densities: Densities::PerLayer(vec![d, 0.2, 0.6]), seed, ..MlpConfig::new(64, 4, 2, 48) };
    let momentum = OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-4, ..Default::default() };
    let adam = OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, l2: 1e-4, ..Default::default() };
    ensemble_like_alone(&[member(1, 0.3), member(2, 0.35), member(3, 0.3)], &momentum, &[Kernel::Compact, Kernel::Compact]);
    // Adam with residual blocks (depth 4: one block).
    let skip = |seed, d: f64| MlpConfig { densities: Densities::PerLayer(vec![d, 0.2, 0.6, 1.0, 1.0]), skip: true, seed, ..MlpConfig::new(64, 4, 4, 48) };
    ensemble_like_alone(&[skip(1, 0.3), skip(2, 0.35)], &adam, &[Kernel::Compact, Kernel::Compact]);
    // BatchNorm: each member's statistics are its own.
    let bn = |seed, d: f64| MlpConfig { batch_norm: true, ..skip(seed, d) };
    ensemble_like_alone(&[bn(4, 0.3), bn(5, 0.3), bn(6, 0.35)], &momentum, &[Kernel::Compact, Kernel::Compact]);
    // Width 300: dense products as row pieces, per member.
    let wide = |seed, d: f64| MlpConfig { densities: Densities::PerLayer(vec![d, 1.0, 0.2]), seed, ..MlpConfig::new(64, 4, 2, 300) };
    ensemble_like_alone(&[wide(1, 1.0), wide(2, 1.0), wide(3, 1.0)], &momentum, &[Kernel::Dense, Kernel::Dense, Kernel::Compact]);
    ensemble_like_alone(&[MlpConfig { batch_norm: true, ..wide(4, 0.3) }, MlpConfig { batch_norm: true, ..wide(5, 0.3) }], &adam, &[Kernel::Compact, Kernel::Dense, Kernel::Compact]);
}

/// `kernels`: what the ensemble's first layers run (the test is about those paths).
fn ensemble_like_alone(members: &[MlpConfig], opt: &OptimizerConfig, kernels: &[Kernel]) {
    ensemble_like_alone_on(&synthetic(), members, opt, kernels);
}

/// As [`ensemble_like_alone`], on `data`.
fn ensemble_like_alone_on(data: &Dataset, members: &[MlpConfig], opt: &OptimizerConfig, kernels: &[Kernel]) {
    let tc = TrainConfig { batch_size: 100, optimizer: opt.clone(), ..quick() };
    let ens = BatchedMlp::new(members, Device::Cpu).unwrap();
    assert_eq!(ens.kernels()[..kernels.len()], *kernels);
    let cfgs: Vec<TrainConfig> = members.iter().map(|m| TrainConfig { seed: m.seed, step: StepKind::Fused, ..tc.clone() }).collect();
    let runs = train_ensemble(&ens, &data.train, &data.test, &cfgs, &mut NoCallback).unwrap();
    for (e, m) in members.iter().enumerate() {
        let mut alone = m.init(Device::Cpu).unwrap();
        let r = train(&mut alone, data, &cfgs[e]).unwrap();
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
