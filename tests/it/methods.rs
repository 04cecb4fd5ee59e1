//! The baselines: density allocation, pruning at initialization against a PyTorch
//! reference (tests/data/pruning/gen_pruning.py), dynamic sparse training and gradual
//! and iterative magnitude pruning on every training path.
use super::common::{quick, snapshot, synthetic};
use serde_json::Value;
use sparselab::data::{Dataset, DatasetConfig, Split, SyntheticConfig};
use sparselab::experiment::{prune_at_init, prune_scores, ImpConfig, InitPruneConfig, Pruner, Scope, Session};
use sparselab::model::{Allocation, AllocationKind, BatchedMlp, CnnConfig, Densities, Kernel, MlpConfig, Model, Tracked};
use sparselab::train::{train, train_ensemble, MaskSchedule, NoCallback, OptimizerConfig, OptimizerKind, RunResult, StepKind, TrainConfig};
use tch::{Device, Kind, Tensor};

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pruning/pruning.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().flat_map(|x| if x.is_array() { floats(x) } else { vec![x.as_f64().unwrap() as f32] }).collect()
}

/// The reference network (6-5-5-3 ReLU MLP with biases, fixed weights) and its 8 examples.
fn reference_net(r: &Value) -> (sparselab::model::Mlp, Split) {
    let net = MlpConfig { kernel: Kernel::Dense, ..MlpConfig::new(6, 3, 2, 5) }.init(Device::Cpu).unwrap();
    let vars = net.var_store().variables();
    tch::no_grad(|| {
        for l in 0..3 {
            let w = &vars[&format!("fc{}.weight", l + 1)];
            w.shallow_clone().copy_(&Tensor::from_slice(&floats(&r["network"]["weights"][l])).view(w.size().as_slice()));
            vars[&format!("fc{}.bias", l + 1)].shallow_clone().copy_(&Tensor::from_slice(&floats(&r["network"]["biases"][l])));
        }
    });
    let x = Tensor::from_slice(&floats(&r["network"]["x"])).view([8, 6]);
    let y = Tensor::from_slice(&r["network"]["y"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect::<Vec<_>>());
    (net, Split { x, y })
}

fn rel(got: &Tensor, want: &[f32]) -> f64 {
    let want = Tensor::from_slice(want);
    let scale = want.abs().max().double_value(&[]);
    (got.flatten(0, -1) - &want).abs().max().double_value(&[]) / scale
}

/// SNIP, GraSP and SynFlow scores of a fixed network, each layer within 1e-4 of its
/// largest score of PyTorch's float64 values; masks chosen from them exactly PyTorch's.
#[test]
fn pruning_scores_match_pytorch() {
    let r = reference();
    let (net, batch) = reference_net(&r);
    let logits = net.forward(&batch.x, sparselab::model::Mode::Eval).unwrap();
    assert!(rel(&logits, &floats(&r["logits"])) < 1e-5, "not the reference network");
    for (method, key) in [(Pruner::Snip, "snip"), (Pruner::Grasp, "grasp"), (Pruner::Synflow, "synflow")] {
        let s = prune_scores(&net, method, Some(&batch), 200.0, 0).unwrap();
        for (l, got) in s.iter().enumerate() {
            let e = rel(got, &floats(&r[key][l]));
            assert!(e < 1e-4, "{key} fc{}: {e}", l + 1);
        }
    }
    // The scores did not change the network (SynFlow restores the signs).
    assert!(rel(&net.forward(&batch.x, sparselab::model::Mode::Eval).unwrap(), &floats(&r["logits"])) < 1e-5);
    let cases = [
        (Pruner::Synflow, 0.2, Scope::Global, 100, "synflow_masks_global"),
        (Pruner::Synflow, 0.2, Scope::Layer, 100, "synflow_masks_layer"),
        (Pruner::Snip, 0.4, Scope::Layer, 1, "snip_masks_layer_0.4"),
        (Pruner::Grasp, 0.4, Scope::Global, 1, "grasp_masks_global_0.4"),
    ];
    for (method, density, scope, rounds, key) in cases {
        let (net, batch) = reference_net(&r);
        let cfg = InitPruneConfig { scope, rounds, examples: 8, ..InitPruneConfig::new(method, density) };
        let report = prune_at_init(&net, &cfg, Some(&batch)).unwrap();
        for (l, layer) in net.weight_layers().iter().enumerate() {
            assert_eq!(Vec::<f32>::try_from(layer.mask.flatten(0, -1)).unwrap(), floats(&r[key][l]), "{key} fc{}", l + 1);
        }
        assert!(report.collapsed.is_empty(), "{key}: {:?}", report.collapsed);
    }
}

/// Global magnitude pruning of a network whose middle layer holds only tiny weights
/// empties that layer: the collapse is reported, and a layer that keeps weights but
/// no path is found by the path analysis.
#[test]
fn layer_collapse_is_detected() {
    let net = MlpConfig { kernel: Kernel::Dense, ..MlpConfig::new(6, 3, 2, 5) }.init(Device::Cpu).unwrap();
    tch::no_grad(|| drop(net.var_store().variables()["fc2.weight"].shallow_clone().g_mul_scalar_(1e-3)));
    let report = prune_at_init(&net, &InitPruneConfig { scope: Scope::Global, ..InitPruneConfig::new(Pruner::Magnitude, 0.3) }, None).unwrap();
    assert_eq!(report.active[1], 0);
    assert_eq!(report.collapsed, vec!["fc1", "fc2", "fc3"]);
    assert_eq!(report.effective, Some(vec![0, 0, 0]));
    // Paths by hand: fc1 feeds only hidden unit 0, fc2 maps unit 0 to unit 1 and unit 2
    // to unit 3, fc3 reads units 1 and 4: the only path is in -> 0 -> 1 -> out, so of
    // fc2's two weights one is effective and of fc3's two one.
    let m = |rows: i64, cols: i64, on: &[(i64, i64)]| {
        let t = Tensor::zeros([rows, cols], (Kind::Float, Device::Cpu));
        on.iter().for_each(|(r, c)| drop(t.get(*r).get(*c).fill_(1.0)));
        t
    };
    let masks = [m(5, 6, &[(0, 0), (0, 3)]), m(5, 5, &[(1, 0), (3, 2)]), m(3, 5, &[(0, 1), (2, 4)])];
    assert_eq!(sparselab::model::effective_active(&masks, 2, false), vec![2, 1, 1]);
}

/// ERK through the model builders: an MLP's and a ResNet-32's active counts sum to
/// the target exactly, with fc kept dense where asked.
#[test]
fn allocations_build_models_at_the_target() {
    let a = Allocation { dense_last: true, ..Allocation::new(AllocationKind::Erk, 0.05) };
    let net = MlpConfig { densities: Densities::Allocated(a.clone()), ..MlpConfig::new(784, 10, 4, 300) }.init(Device::Cpu).unwrap();
    let layers = net.layers();
    let total: i64 = layers.iter().map(|l| l.total).sum();
    assert_eq!(layers.iter().map(|l| l.active).sum::<i64>(), (0.05 * total as f64).round() as i64);
    assert_eq!(layers[4].active, layers[4].total);
    let cnn = CnnConfig { allocation: Some(Allocation::new(AllocationKind::Erk, 0.1)), ..CnnConfig::new("resnet32", 3, 10) };
    let shapes = cnn.shapes().unwrap();
    assert_eq!(shapes.len(), cnn.layer_count().unwrap());
    let counts = Allocation::new(AllocationKind::Erk, 0.1).active_counts(&shapes).unwrap();
    let all: i64 = shapes.iter().map(|s| s.iter().product::<i64>()).sum();
    assert_eq!(counts.iter().sum::<i64>(), (0.1 * all as f64).round() as i64);
    let built = cnn.init(Device::Cpu).unwrap();
    assert_eq!(built.layers().iter().map(|l| l.active).collect::<Vec<_>>(), counts);
}

/// ResNet-32's forward multiply-adds on a 32x32 image, by hand: the stem 16*3*9*1024 =
/// 442,368; stage 1 ten convs of 16*16*9*1024 = 2,359,296; stages 2 and 3 each a
/// strided conv 1,179,648, nine convs of 2,359,296 and a 1x1 shortcut 131,072
/// (22,544,384 each); fc 640: 69,124,736 in all (the 69.1 M usually quoted).
#[test]
fn cnn_cost_counts_every_conv_position() {
    let dense = CnnConfig::new("resnet32", 3, 10).init(Device::Cpu).unwrap();
    assert_eq!(dense.macs(), Some([69_124_736.0; 3]));
    // Sparse: active weights times output positions per layer; convs stay dense-stored.
    let sparse = CnnConfig { densities: vec![0.25], ..CnnConfig::new("resnet32", 3, 10) }.init(Device::Cpu).unwrap();
    let [d, a, x] = sparse.macs().unwrap();
    assert_eq!((d, x), (69_124_736.0, 69_124_736.0 - 640.0 + 160.0)); // fc (0.25 * 640) is compact
    assert!((a / d - 0.25).abs() < 1e-3, "{a} / {d}");
}

/// SNAS with a baseline: SynFlow trained at the best trial's overall density holds
/// exactly the best trial's active weights; a CNN space refuses a dynamic baseline.
#[test]
fn snas_trains_a_baseline_at_the_best_density() {
    use sparselab::experiment::{snas, SnasConfig, Space};
    use sparselab::search::{RandomSearch, SearchSpace};
    let data = synthetic();
    let d = SnasConfig::defaults(&data);
    let cfg = SnasConfig { space: Space::Mlp(MlpConfig::new(64, 4, 1, 16)), samples: 3, train: TrainConfig { epochs: 2, ..quick() }, baseline: Some("synflow".into()), ..d };
    let mut searcher = RandomSearch::new(SearchSpace::new(2, 0.005, 1.0).unwrap(), 0).unwrap();
    let r = snas(&data, &cfg, &mut searcher, &Session::new(), |_| {}).unwrap();
    let b = r.baseline.unwrap();
    assert_eq!(b.method, "synflow");
    assert_eq!(b.active, r.trials[r.best].active as i64);
    assert!(b.test_acc > 0.25 && b.run.history.len() == 2, "{} {}", b.test_acc, b.run.history.len());
    let mut images = DatasetConfig::new("synthetic");
    images.synthetic = SyntheticConfig { train: 8, test: 8, classes: 4, shape: [3, 32, 32], noise: 0.3, seed: 1 };
    let images = Dataset::load(&images).unwrap();
    let cnn = SnasConfig { space: Space::Cnn(CnnConfig::new("resnet32", 3, 4)), baseline: Some("rigl".into()), ..SnasConfig::defaults(&images) };
    assert_eq!(cnn.validate(&images).unwrap_err().to_string(), "baseline: \"rigl\" is for MLP spaces; a CNN space takes \"static\" or \"erk\"");
    // A CNN space on data it cannot take is refused before any trial trains, naming `space`.
    let small = SnasConfig { space: Space::Cnn(CnnConfig::new("resnet32", 1, 4)), ..SnasConfig::defaults(&data) };
    assert_eq!(small.validate(&data).unwrap_err().to_string(), "space: resnet32 expects 1x32x32 images, synthetic has 1x8x8");
}

/// A model built dense and pruned at initialization switches its sparse layers to the
/// compact kernels (Kernel::Auto): same function (logits to float rounding), executed
/// cost at the density, and a rerun reuses the stored run into the compact model.
#[test]
fn a_pruned_model_runs_on_the_compact_kernels() {
    let data = synthetic();
    let dir = std::env::temp_dir().join(format!("sparselab-methods-compact-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let go = |kernel: Kernel| {
        let session = Session::with_store(sparselab::results::Store::open(dir.join(format!("{kernel:?}"))).unwrap());
        let cfg = MlpConfig { kernel, ..MlpConfig::new(64, 4, 2, 64) };
        let mut net = Tracked::new(cfg.init(Device::Cpu).unwrap(), serde_json::json!({ "mlp": cfg }));
        session.prune_at_init(&mut net, &data, &InitPruneConfig::new(Pruner::Synflow, 0.05)).unwrap();
        let logits = net.model.forward(&data.test.x, sparselab::model::Mode::Eval).unwrap();
        let run = session.train(&mut net, &data, &TrainConfig { epochs: 2, ..quick() }).unwrap();
        (net, logits, run)
    };
    let (auto, logits_auto, run_auto) = go(Kernel::Auto);
    let (dense, logits_dense, run_dense) = go(Kernel::Dense);
    let kernels: Vec<Kernel> =
        auto.model.weight_layers().iter().map(|l| if auto.model.var_store().variables().contains_key(&format!("{}.values", l.name)) { Kernel::Compact } else { Kernel::Dense }).collect();
    assert!(kernels.contains(&Kernel::Compact), "{kernels:?}");
    assert!(dense.model.var_store().variables().keys().all(|k| !k.ends_with(".values")));
    assert!((&logits_auto - &logits_dense).abs().max().double_value(&[]) < 1e-5);
    assert!((run_auto.test_acc - run_dense.test_acc).abs() < 0.02, "{} {}", run_auto.test_acc, run_dense.test_acc);
    let (ca, cd) = (run_auto.cost.unwrap(), run_dense.cost.unwrap());
    assert_eq!(ca.sparse_flops, cd.sparse_flops);
    assert!(ca.executed_flops < 0.3 * cd.executed_flops, "{ca:?} {cd:?}");
    let counts: Vec<i64> = auto.model.layers().iter().map(|l| l.active).collect();
    assert_sparse(&*auto.model, &counts, "compact after pruning");
    let (_, _, again) = go(Kernel::Auto);
    assert_eq!((again.test_acc, again.seconds), (run_auto.test_acc, run_auto.seconds), "not reused");
    let _ = std::fs::remove_dir_all(&dir);
}

fn rigl(every: usize) -> MaskSchedule {
    MaskSchedule::Rigl { fraction: 0.3, every, end: 1.0 }
}

/// Every masked weight is exactly zero and every layer keeps its active count.
fn assert_sparse(net: &dyn Model, counts: &[i64], what: &str) {
    for (l, c) in net.weight_layers().iter().zip(counts) {
        let off = (&l.weight * (l.mask.ones_like() - l.mask)).abs().max().double_value(&[]);
        assert_eq!(off, 0.0, "{what} {}: a masked weight is not zero", l.name);
        assert_eq!(sparselab::model::mask_count(l.mask), *c, "{what} {}", l.name);
    }
}

/// 100 RigL (and SET) updates on each path: dense and compact layers, the fused step
/// and autograd with Adam; counts exact, masked weights zero, the masks really move,
/// and a rerun with the same seed is bit-identical (masks, history, weights).
#[test]
fn dynamic_sparse_training_keeps_counts_on_every_path() {
    let data = synthetic();
    // 512 / 64 = 8 steps per epoch, 26 epochs: 208 steps; an update every 2 steps
    // before the last: steps 2, 4, ..., 206, 103 updates.
    let base = TrainConfig { epochs: 26, masks: Some(rigl(2)), optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, ..Default::default() }, ..quick() };
    let adam = OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, ..Default::default() };
    let cases = [
        ("dense fused", Kernel::Dense, StepKind::Fused, base.optimizer.clone()),
        ("compact fused", Kernel::Compact, StepKind::Fused, base.optimizer.clone()),
        ("dense autograd adam", Kernel::Dense, StepKind::Autograd, adam.clone()),
        ("compact autograd adam", Kernel::Compact, StepKind::Autograd, adam),
    ];
    for (what, kernel, step, optimizer) in cases {
        let cfg = MlpConfig { densities: Densities::Uniform(0.2), kernel, seed: 3, ..MlpConfig::new(64, 4, 2, 32) };
        let tc = TrainConfig { step, optimizer, ..base.clone() };
        let run = |tc: &TrainConfig| {
            let mut net = cfg.init(Device::Cpu).unwrap();
            let counts: Vec<i64> = net.layers().iter().map(|l| l.active).collect();
            let r = train(&mut net, &data, tc).unwrap();
            assert_sparse(&net, &counts, what);
            (r, snapshot(&net))
        };
        let (a, wa) = run(&tc);
        assert_eq!(a.mask_history.len(), 103, "{what}");
        let kept = a.mask_history.last().unwrap().kept;
        assert!(kept < 0.9, "{what}: masks barely moved ({kept})");
        assert!(a.test_acc > 0.5, "{what}: {}", a.test_acc);
        let (b, wb) = run(&tc);
        assert_eq!(a.mask_history, b.mask_history, "{what}");
        super::common::assert_identical(&wa, &wb);
        // SET: one update per epoch but the last.
        let (s, _) = run(&TrainConfig { masks: Some(MaskSchedule::set()), ..tc.clone() });
        assert_eq!(s.mask_history.len(), 25, "{what}");
    }
}

/// In a batched ensemble each member's masks, history and weights under RigL and the
/// fused step are bit-identical to its run alone (dense and compact layers).
#[test]
fn dynamic_sparse_training_in_an_ensemble_matches_each_member_alone() {
    let data = synthetic();
    for kernel in [Kernel::Dense, Kernel::Compact] {
        let members: Vec<MlpConfig> = (0..3).map(|s| MlpConfig { densities: Densities::Uniform(0.2), kernel, seed: s, ..MlpConfig::new(64, 4, 2, 32) }).collect();
        let tc = TrainConfig { epochs: 4, masks: Some(rigl(3)), step: StepKind::Fused, optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, ..Default::default() }, ..quick() };
        let cfgs: Vec<TrainConfig> = members.iter().map(|m| TrainConfig { seed: m.seed, ..tc.clone() }).collect();
        let ens = BatchedMlp::new(&members, Device::Cpu).unwrap();
        let together: Vec<RunResult> = train_ensemble(&ens, &data.train, &data.test, &cfgs, &mut NoCallback).unwrap();
        for (e, (m, c)) in members.iter().zip(&cfgs).enumerate() {
            let mut net = m.init(Device::Cpu).unwrap();
            let alone = train(&mut net, &data, c).unwrap();
            assert_eq!(together[e].mask_history, alone.mask_history, "{kernel:?} member {e}");
            assert_eq!(together[e].mask_history.len(), 10);
            let member = ens.member(e).unwrap();
            for (a, b) in member.weight_layers().iter().zip(net.weight_layers()) {
                assert!(a.mask.equal(b.mask), "{kernel:?} member {e} {} mask", a.name);
                assert!(a.weight.equal(&b.weight), "{kernel:?} member {e} {} weight", a.name);
            }
        }
    }
}

/// Gradual pruning from dense reaches the final density exactly per layer (and in
/// all, globally) on the fused and the autograd path, and masks only shrink.
#[test]
fn gradual_pruning_reaches_its_density() {
    let data = synthetic();
    for (step, global) in [(StepKind::Fused, false), (StepKind::Autograd, true)] {
        let mut net = MlpConfig { kernel: Kernel::Dense, ..MlpConfig::new(64, 4, 2, 32) }.init(Device::Cpu).unwrap();
        let sched = MaskSchedule::Gradual { density: 0.1, start: 0.0, end: 0.5, every: 4, global };
        let run = train(&mut net, &data, &TrainConfig { epochs: 6, step, masks: Some(sched), ..quick() }).unwrap();
        let layers = net.layers();
        if global {
            let total: i64 = layers.iter().map(|l| l.total).sum();
            assert_eq!(layers.iter().map(|l| l.active).sum::<i64>(), (0.1 * total as f64).round() as i64);
        } else {
            for l in &layers {
                assert_eq!(l.active, (0.1 * l.total as f64).round() as i64, "{}", l.name);
            }
        }
        let counts: Vec<i64> = layers.iter().map(|l| l.active).collect();
        assert_sparse(&net, &counts, "gradual");
        assert!(run.mask_history.windows(2).all(|w| w[1].active <= w[0].active));
        assert_eq!(run.mask_history.last().unwrap().active, counts.iter().sum::<i64>());
        let cost = run.cost.unwrap();
        assert!(cost.sparse_flops < 0.7 * cost.dense_flops && cost.executed_flops == cost.dense_flops, "{cost:?}");
    }
}

/// Three IMP rounds of 20 % each: densities 1, 0.8, 0.64, 0.512 (per layer), each
/// round a run of its own, and a rerun reuses all of them from the store.
#[test]
fn imp_prunes_rewinds_and_reuses() {
    let data = synthetic();
    let dir = std::env::temp_dir().join(format!("sparselab-methods-imp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let imp = ImpConfig { rounds: 3, fraction: 0.2, rewind_epoch: 1, scope: Scope::Layer };
    let cfg = MlpConfig { kernel: Kernel::Dense, ..MlpConfig::new(64, 4, 1, 16) };
    let tc = TrainConfig { epochs: 3, ..quick() };
    let go = || {
        let session = Session::with_store(sparselab::results::Store::open(&dir).unwrap());
        let mut net = Tracked::new(cfg.init(Device::Cpu).unwrap(), serde_json::json!({ "mlp": cfg }));
        let rounds = session.imp(&mut net, &data, &imp, &tc).unwrap();
        (rounds, net.model.layers())
    };
    let (rounds, layers) = go();
    let densities: Vec<f64> = rounds.iter().map(|(d, _)| *d).collect();
    assert_eq!(densities.len(), 4);
    for (d, want) in densities.iter().zip([1.0, 0.8, 0.64, 0.512]) {
        assert!((d - want).abs() < 1e-12, "{densities:?}");
    }
    assert_eq!(layers[0].active, (0.512f64 * 1024.0).round() as i64);
    assert!(rounds.iter().all(|(_, r)| r.history.len() == 2));
    let (again, _) = go();
    for ((_, a), (_, b)) in rounds.iter().zip(&again) {
        assert_eq!(a.test_acc, b.test_acc);
        assert_eq!(a.seconds, b.seconds, "a rerun trained again instead of reusing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
