//! Bit-for-bit reproducibility on CPU. In a test binary of their own: tests running
//! on parallel threads in one process share libtorch's global generator and its
//! BLAS thread pool, which changes summation order, so these need the process alone.
#[path = "it/common.rs"]
mod common;
use common::{assert_identical, quick, snapshot, synthetic};
use sparselab::model::{Densities, MlpConfig};
use sparselab::train::{train, GradFlowConfig, OptimizerConfig, OptimizerKind, TrainConfig};
use tch::{Device, Kind};

fn sparse_net(seed: u64) -> sparselab::model::Mlp {
    let cfg = MlpConfig { densities: Densities::Uniform(0.3), batch_norm: true, activation: "prelu".into(), seed, ..MlpConfig::new(64, 4, 3, 32) };
    cfg.init(Device::Cpu).unwrap()
}

#[test]
fn same_seed_same_numbers_on_cpu() {
    let _torch = common::torch_lock();
    let data = synthetic();
    let cfg = TrainConfig { augment: true, seed: 5, optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, ..Default::default() }, ..quick() };
    let run = |s| {
        let mut net = MlpConfig { dropout: 0.2, ..sparse_net(s).config().clone() }.init(Device::Cpu).unwrap();
        let r = train(&mut net, &data, &cfg).unwrap();
        (r, snapshot(&net))
    };
    let (a, wa) = run(1);
    let (b, wb) = run(1);
    assert_eq!(a.history.iter().map(|h| (h.train_loss, h.test_acc)).collect::<Vec<_>>(), b.history.iter().map(|h| (h.train_loss, h.test_acc)).collect::<Vec<_>>());
    assert_identical(&wa, &wb);
    let (c, _) = run(2);
    assert_ne!(a.history[0].train_loss, c.history[0].train_loss);
}

#[test]
fn measuring_never_changes_training() {
    let _torch = common::torch_lock();
    let data = synthetic();
    let cfg = MlpConfig { densities: Densities::Uniform(0.4), batch_norm: true, dropout: 0.1, ..MlpConfig::new(64, 4, 3, 32) };
    let tc = TrainConfig { epochs: 4, augment: true, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.02, ..Default::default() }, ..quick() };
    let mut a = cfg.init(Device::Cpu).unwrap();
    let ra = train(&mut a, &data, &tc).unwrap();
    let mut b = cfg.init(Device::Cpu).unwrap();
    let rb = train(&mut b, &data, &TrainConfig { grad_flow: Some(GradFlowConfig { points: 11, samples: 200 }), ..tc }).unwrap();
    assert_identical(&snapshot(&a), &snapshot(&b)); // BatchNorm running statistics included
    assert_eq!(ra.history.iter().map(|h| h.train_loss).collect::<Vec<_>>(), rb.history.iter().map(|h| h.train_loss).collect::<Vec<_>>());
    assert_eq!(rb.grad_flow.iter().map(|p| p.epoch).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    let avg = rb.grad_flow_average().unwrap();
    assert!(avg.egf2 > 0.0 && avg.gnorm2 >= avg.egf2);
    let _ = Kind::Float;
}

/// The compact kernel sums in a fixed order: forward values and both gradients are
/// bit-identical on 1 and 2 threads (a 788 x 788 layer, big enough to split rows).
#[test]
fn compact_kernel_does_not_depend_on_the_thread_count() {
    let _torch = common::torch_lock();
    let mask = sparselab::model::random_mask(&[788, 788], 150_000, 3, 1);
    let w = sparselab::model::kaiming_normal(&[788, 788], 788.0, 3, 1).unwrap();
    let values = sparselab::compute::CsrPlan::from_mask(&mask).unwrap().gather(&w).set_requires_grad(true);
    let x = sparselab::model::kaiming_normal(&[128, 788], 1.0, 4, 0).unwrap().set_requires_grad(true);
    let run = |threads: i32| {
        tch::set_num_threads(threads);
        let y = plan_linear(&mask, &values, &x);
        let g = tch::Tensor::run_backward(&[(&y * &y).sum(Kind::Float)], &[&x, &values], false, false);
        (y, g)
    };
    let (y1, g1) = run(1);
    let (y2, g2) = run(2);
    tch::set_num_threads(2);
    assert!(y1.equal(&y2) && g1[0].equal(&g2[0]) && g1[1].equal(&g2[1]));
}

/// A fresh plan each call: `linear` borrows it mutably.
fn plan_linear(mask: &tch::Tensor, values: &tch::Tensor, x: &tch::Tensor) -> tch::Tensor {
    sparselab::compute::CsrPlan::from_mask(mask).unwrap().linear(x, values).unwrap()
}

/// The fused step splits its work into fixed pieces (64 batch columns or, for wide
/// layers, row pieces; 128 weight rows)
/// with single-threaded BLAS in each: a run gives the same bits on 1 and 2 threads.
#[test]
fn fused_step_does_not_depend_on_the_thread_count() {
    let _torch = common::torch_lock();
    let data = synthetic();
    let cfg = MlpConfig { densities: Densities::PerLayer(vec![0.6, 0.2, 1.0]), ..MlpConfig::new(64, 4, 2, 150) };
    let run = |threads: usize| {
        let mut net = cfg.init(Device::Cpu).unwrap();
        let tc = TrainConfig {
            threads: Some(threads),
            step: sparselab::train::StepKind::Fused,
            optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-4, ..Default::default() },
            ..quick()
        };
        let r = train(&mut net, &data, &tc).unwrap();
        (r.history.iter().map(|h| h.train_loss).collect::<Vec<_>>(), snapshot(&net))
    };
    let (l1, w1) = run(1);
    let (l2, w2) = run(2);
    tch::set_num_threads(2);
    assert_eq!(l1, l2);
    assert_identical(&w1, &w2);
}
