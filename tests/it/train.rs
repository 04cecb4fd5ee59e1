//! Training: masks stay exact under every optimizer, determinism, divergence.
use super::common::{quick, synthetic};
use sparselab::model::{Densities, MlpConfig, Model};
use sparselab::train::{train, Ended, OptimizerConfig, OptimizerKind, Schedule, TrainConfig};
use tch::Device;

fn sparse_net(seed: u64) -> sparselab::model::Mlp {
    let cfg = MlpConfig { densities: Densities::Uniform(0.3), batch_norm: true, activation: "prelu".into(), seed, ..MlpConfig::new(64, 4, 3, 32) };
    cfg.init(Device::Cpu).unwrap()
}

#[test]
fn masked_weights_stay_exactly_zero_with_every_optimizer() {
    let data = synthetic();
    for kind in ["sgd", "momentum", "adam", "adamw", "adagrad", "rmsprop"] {
        let kind = OptimizerKind::parse(kind).unwrap();
        let mut net = sparse_net(0);
        let before: Vec<_> = net.layers().iter().map(|l| l.active).collect();
        let optimizer = OptimizerConfig {
            kind,
            lr: 0.05,
            momentum: (kind == OptimizerKind::Sgd).then_some(0.9),
            l2: 1e-3,
            weight_decay: if kind == OptimizerKind::AdamW { 0.05 } else { 0.0 },
            ..Default::default()
        };
        let run = train(&mut net, &data, &TrainConfig { optimizer, epochs: 3, ..quick() }).unwrap();
        assert_eq!(run.ended, Ended::Finished);
        for l in net.weight_layers() {
            let off = (l.weight * (1.0 - l.mask) as tch::Tensor).abs().max().double_value(&[]);
            assert_eq!(off, 0.0, "{kind:?} {}", l.name);
        }
        // And the active ones moved, so the test is not vacuous.
        assert!(run.history[2].train_loss < run.history[0].train_loss || run.test_acc > 0.3, "{kind:?} did not learn: {}", run.history_table());
        assert_eq!(net.layers().iter().map(|l| l.active).collect::<Vec<_>>(), before);
    }
}

#[test]
fn nan_loss_ends_as_diverged_without_panic() {
    let data = synthetic();
    let mut net = MlpConfig::new(64, 4, 2, 32).init(Device::Cpu).unwrap();
    let cfg = TrainConfig { epochs: 5, optimizer: OptimizerConfig { lr: 1e12, ..Default::default() }, ..quick() };
    let run = train(&mut net, &data, &cfg).unwrap();
    assert!(matches!(run.ended, Ended::Diverged(e) if e < 5), "{:?}", run.ended);
    assert_eq!(run.history.len(), run.diverged().unwrap());
}

#[test]
fn step_schedule_sets_lr_per_epoch_and_input_mismatch_is_an_error() {
    let data = synthetic();
    let mut net = sparse_net(0);
    let cfg = TrainConfig { epochs: 3, schedule: Schedule::Step { milestones: vec![1, 2], gamma: 0.1 }, ..quick() };
    let run = train(&mut net, &data, &cfg).unwrap();
    let lrs: Vec<f64> = run.history.iter().map(|h| h.lr).collect();
    assert!((lrs[0] - 0.01).abs() < 1e-15 && (lrs[1] - 0.001).abs() < 1e-15 && (lrs[2] - 0.0001).abs() < 1e-15, "{lrs:?}");
    let mut wrong = MlpConfig::new(100, 4, 1, 8).init(Device::Cpu).unwrap();
    let e = train(&mut wrong, &data, &quick()).unwrap_err().to_string();
    assert_eq!(e, "model MLP 100-1x8-4 relu expects 100 input features per example, the data has 64 ([1, 8, 8])");
}

#[test]
fn weight_decay_only_for_adamw() {
    let data = synthetic();
    let mut net = sparse_net(0);
    let cfg = TrainConfig { optimizer: OptimizerConfig { weight_decay: 0.1, ..Default::default() }, ..quick() };
    let e = train(&mut net, &data, &cfg).unwrap_err().to_string();
    assert_eq!(e, "weight_decay: decoupled weight decay applies to adamw only; for sgd use l2 (coupled)");
}
