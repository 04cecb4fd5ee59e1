//! Batched ensembles against the same networks trained one by one (CPU): same masks
//! and initial values, and per member the same losses, accuracies, gradient flow,
//! divergence and final weights, to float tolerance (bmm and the block-diagonal
//! compact kernel sum in a different order than one network's matmul).
use super::common::{quick, snapshot, synthetic};
use sparselab::compute::CsrPlan;
use sparselab::data::Dataset;
use sparselab::experiment::{sc_sdc, InitFan, ScSdcConfig, Session};
use sparselab::model::{random_mask, BatchedMlp, Densities, Fan, Kernel, MlpConfig, Model};
use sparselab::train::{train, train_ensemble, GradFlowConfig, NoCallback, OptimizerConfig, OptimizerKind, RunResult, TrainConfig};
use tch::{Device, Kind, Tensor};

/// Largest difference relative to the largest entry of `b` (at least 0.1, so a
/// near-zero tensor such as a bias before BatchNorm is compared absolutely).
fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(0.1);
    (a - b).abs().max().double_value(&[]) / scale
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol * b.abs().max(1.0), "{what}: {a} vs {b}");
}

/// Trains `members` one by one and as one ensemble; asserts every member matches.
fn check_against_alone(data: &Dataset, members: &[MlpConfig], tc: &TrainConfig, kernels: &[Kernel]) -> Vec<RunResult> {
    let cfgs: Vec<TrainConfig> = members.iter().map(|m| TrainConfig { seed: m.seed, ..tc.clone() }).collect();
    let ens = BatchedMlp::new(members, Device::Cpu).unwrap();
    assert_eq!(ens.kernels(), kernels);
    // Same masks and initial weights as each network built alone.
    for (e, m) in members.iter().enumerate() {
        let alone = m.init(Device::Cpu).unwrap();
        let member = ens.member(e).unwrap();
        for (a, b) in alone.weight_layers().iter().zip(member.weight_layers()) {
            assert!(a.weight.equal(&b.weight) && a.mask.equal(b.mask), "member {e} {} init", a.name);
        }
        assert_eq!(ens.active()[e], alone.layers().iter().map(|l| l.active).collect::<Vec<_>>());
    }
    let together = train_ensemble(&ens, &data.train, &data.test, &cfgs, &mut NoCallback).unwrap();
    for (e, (m, c)) in members.iter().zip(&cfgs).enumerate() {
        let mut net = m.init(Device::Cpu).unwrap();
        let alone = train(&mut net, data, c).unwrap();
        let got = &together[e];
        assert_eq!(got.ended, alone.ended, "member {e}");
        assert_eq!(got.history.len(), alone.history.len(), "member {e}");
        for (g, a) in got.history.iter().zip(&alone.history) {
            close(g.train_loss, a.train_loss, 1e-4, &format!("member {e} epoch {} train loss", a.epoch));
            close(g.test_loss, a.test_loss, 1e-4, &format!("member {e} epoch {} test loss", a.epoch));
            close(g.train_acc, a.train_acc, 0.01, &format!("member {e} epoch {} train acc", a.epoch));
            close(g.test_acc, a.test_acc, 0.01, &format!("member {e} epoch {} test acc", a.epoch));
        }
        assert_eq!(got.grad_flow.len(), alone.grad_flow.len());
        for (g, a) in got.grad_flow.iter().zip(&alone.grad_flow) {
            assert_eq!(g.epoch, a.epoch);
            for (x, y, k) in [(g.egf1, a.egf1, "egf1"), (g.egf2, a.egf2, "egf2"), (g.gnorm1, a.gnorm1, "gnorm1"), (g.gnorm2, a.gnorm2, "gnorm2")] {
                close(x, y, 1e-3, &format!("member {e} epoch {} {k}", a.epoch));
            }
        }
        if alone.diverged().is_none() {
            // Weights, masks, BatchNorm statistics, activation parameters.
            let (mine, theirs) = (snapshot(&ens.member(e).unwrap()), snapshot(&net));
            let theirs: Vec<_> = theirs.into_iter().map(|(n, t)| (n.replace(".values", ".weight"), t)).collect();
            assert_eq!(mine.len(), theirs.len());
            for ((n, a), (m, b)) in mine.iter().zip(&theirs) {
                assert_eq!(n, m);
                // A compact network stores values; compare its dense effective weight.
                let b = if a.size() != b.size() { net.weight_layers().into_iter().find(|l| format!("{}.weight", l.name) == *n).unwrap().weight.detach() } else { b.shallow_clone() };
                assert!(max_rel(a, &b) < 1e-4, "member {e} {n}: {}", max_rel(a, &b));
            }
        }
    }
    together
}

fn member(seed: u64, densities: Densities) -> MlpConfig {
    MlpConfig { densities, seed, bias: true, ..MlpConfig::new(64, 4, 4, 24) }
}

/// Dense bmm layers; BatchNorm, skip, biases, PReLU, augmentation, momentum with L2,
/// per-member densities and fans; gradient flow measured at every epoch.
#[test]
fn dense_ensemble_members_train_as_they_would_alone() {
    let data = synthetic();
    let arch = |seed, d| MlpConfig { activation: "prelu".into(), batch_norm: true, skip: true, kernel: Kernel::Dense, ..member(seed, d) };
    let members = [arch(0, Densities::Uniform(0.5)), MlpConfig { fans: Some(vec![Fan::Value(64.0)]), ..arch(1, Densities::PerLayer(vec![1.0, 0.2, 0.7, 0.3, 0.9])) }, arch(2, Densities::Uniform(1.0))];
    let tc = TrainConfig {
        epochs: 3,
        augment: true,
        grad_flow: Some(GradFlowConfig { points: 3, samples: 200 }),
        optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-3, ..Default::default() },
        ..quick()
    };
    check_against_alone(&data, &members, &tc, &[Kernel::Dense; 5]);
}

/// Compact layers as one block-diagonal plan (Adam, SReLU, no bias), with the dense
/// output layer of the same members multiplied by bmm.
#[test]
fn compact_ensemble_members_train_as_they_would_alone() {
    let data = synthetic();
    let arch = |seed, d| MlpConfig { activation: "srelu".into(), bias: false, ..member(seed, d) };
    let members =
        [arch(3, Densities::PerLayer(vec![0.1, 0.05, 0.3, 0.2, 1.0])), arch(4, Densities::PerLayer(vec![0.3, 0.4, 0.01, 0.2, 0.5])), arch(5, Densities::PerLayer(vec![0.2, 0.2, 0.2, 0.2, 0.8]))];
    let tc = TrainConfig { epochs: 2, optimizer: OptimizerConfig { kind: OptimizerKind::Adam, lr: 3e-3, ..Default::default() }, ..quick() };
    check_against_alone(&data, &members, &tc, &[Kernel::Compact, Kernel::Compact, Kernel::Compact, Kernel::Compact, Kernel::Dense]);
}

/// A member whose initial weights overflow diverges in epoch 0, as it does alone;
/// the others are untouched by its NaNs.
#[test]
fn a_diverging_member_ends_alone_and_the_others_go_on() {
    let data = synthetic();
    let wild = MlpConfig { fans: Some(vec![Fan::Value(1e-36)]), ..member(7, Densities::Uniform(1.0)) };
    let members = [member(6, Densities::Uniform(0.3)), wild, member(8, Densities::Uniform(0.3))];
    let tc = TrainConfig { optimizer: OptimizerConfig { lr: 0.05, ..Default::default() }, ..quick() };
    let runs = check_against_alone(&data, &members, &tc, &[Kernel::Dense; 5]);
    assert_eq!(runs[1].diverged(), Some(0));
    assert!(runs[0].diverged().is_none() && runs[2].diverged().is_none());
    assert!(runs[0].test_loss.is_finite() && runs[2].test_loss.is_finite());
}

#[test]
fn block_plans_multiply_each_member_by_its_own_mask() {
    let masks = Tensor::stack(&[random_mask(&[5, 7], 12, 1, 0), random_mask(&[5, 7], 30, 2, 0), random_mask(&[5, 7], 1, 3, 0)], 0);
    let w = Tensor::randn([3, 5, 7], (Kind::Float, Device::Cpu)) * &masks;
    let mut plan = CsrPlan::from_blocks(&masks).unwrap();
    assert_eq!(plan.offsets(), vec![0, 12, 42, 43]);
    let values = plan.gather(&w);
    assert!(plan.dense(&values).equal(&w));
    let x = Tensor::randn([3, 9, 7], (Kind::Float, Device::Cpu));
    let y = plan.linear(&x.permute([1, 0, 2]).reshape([9, 21]), &values).unwrap().view([9, 3, 5]).permute([1, 0, 2]);
    assert!(max_rel(&y, &x.bmm(&w.transpose(1, 2))) < 1e-5);
}

/// Blocks wide enough for several panels of source rows per member in both
/// directions: forward, input and weight gradients agree with `bmm` and autograd.
#[test]
fn block_plans_with_several_panels_match_bmm_and_its_gradients() {
    let masks = Tensor::stack(&[random_mask(&[150, 200], 9000, 1, 0), random_mask(&[150, 200], 15000, 2, 0), random_mask(&[150, 200], 6000, 3, 0)], 0);
    let w = Tensor::randn([3, 150, 200], (Kind::Float, Device::Cpu)) * &masks;
    let mut plan = CsrPlan::from_blocks(&masks).unwrap();
    let values = plan.gather(&w).set_requires_grad(true);
    let x = Tensor::randn([3, 100, 200], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let g = Tensor::randn([3, 100, 150], (Kind::Float, Device::Cpu));
    let y = plan.linear(&x.permute([1, 0, 2]).reshape([100, 600]), &values).unwrap().view([100, 3, 150]).permute([1, 0, 2]);
    let wd = w.detach().set_requires_grad(true);
    let yd = x.bmm(&wd.transpose(1, 2));
    assert!(max_rel(&y, &yd) < 1e-5);
    let gc = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &[&x, &values], false, false);
    let gd = Tensor::run_backward(&[(&yd * &g).sum(Kind::Float)], &[&x, &wd], false, false);
    assert!(max_rel(&gc[0], &gd[0]) < 1e-5, "dx");
    assert!(max_rel(&gc[1], &plan.gather(&gd[1])) < 1e-5, "dW");
}

#[test]
fn members_must_share_architecture_and_training_settings() {
    let a = member(0, Densities::Uniform(1.0));
    let wider = MlpConfig { width: 25, ..a.clone() };
    let e = BatchedMlp::new(&[a.clone(), wider], Device::Cpu).err().unwrap().to_string();
    assert_eq!(e, "ensemble: member 1 differs from member 0 in width (25 vs 24); members must share input, classes, depth, width, activation, batch_norm, skip and bias");
    let e = BatchedMlp::new(&[MlpConfig { dropout: 0.2, ..a.clone() }], Device::Cpu).err().unwrap().to_string();
    assert!(e.starts_with("dropout: 0.2 (member 0): ensembles need dropout 0"), "{e}");
    let ens = BatchedMlp::new(&[a.clone(), a], Device::Cpu).unwrap();
    let data = synthetic();
    let e = train_ensemble(&ens, &data.train, &data.test, &[quick(), TrainConfig { epochs: 3, ..quick() }], &mut NoCallback).unwrap_err().to_string();
    assert_eq!(e, "ensemble: member 1's training configuration differs from member 0's in more than the seed");
}

/// `sc_sdc` batches automatically; `ensemble: 1` trains one by one. Same runs, same
/// order, same results to float tolerance.
#[test]
fn sc_sdc_batches_its_networks_with_the_same_results() {
    let data = synthetic();
    let base = MlpConfig { activation: "relu".into(), batch_norm: true, ..MlpConfig::new(64, 4, 2, 1) };
    let cfg = ScSdcConfig {
        base,
        max_width: Some(68),
        fractions: vec![0.1, 0.5, 0.9],
        seeds: vec![0, 1],
        init_fan: InitFan::Dense,
        train: TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, ..Default::default() }, augment: true, ..quick() },
        ensemble: 16,
    };
    let mut seen = Vec::new();
    let batched = sc_sdc(&data, &cfg, &Session::new(), |r| seen.push((r.fraction, r.seed, r.variant))).unwrap();
    let alone = sc_sdc(&data, &ScSdcConfig { ensemble: 1, ..cfg }, &Session::new(), |_| {}).unwrap();
    assert_eq!(seen.len(), 12);
    assert_eq!(batched.runs.len(), alone.runs.len());
    for (b, a) in batched.runs.iter().zip(&alone.runs) {
        assert_eq!((b.fraction, b.seed, b.variant, &b.active), (a.fraction, a.seed, a.variant, &a.active));
        close(b.run.test_loss, a.run.test_loss, 1e-4, &format!("{} f={} seed {}", b.variant, b.fraction, b.seed));
    }
    let (tb, ta) = (batched.test.unwrap(), alone.test.unwrap());
    assert_eq!(tb.n, ta.n);
}
