//! The compact sparse kernel against the dense masked path: same masks and initial
//! values, and the same forward values, gradients, training runs and gradient flow
//! to float tolerance.
use super::common::max_rel;
use sparselab::compute::CsrPlan;
use sparselab::model::{measured_kernel, random_mask, time_kernels, Densities, Kernel, MlpConfig, Mode, Model, COMPACT_CROSSOVER};
use sparselab::train::{measure_grad_flow, train, OptimizerConfig, OptimizerKind, TrainConfig};
use tch::{Device, Kind, Tensor};

/// One layer, every batch-size branch of the kernel (64-, 32- and 8-column chunks and
/// the tail) and of the weight gradient (groups of 8, 4, 2, 1 entries), and on AVX-512
/// of the one-pass backward (16-float blocks, with and without an 8-float block and
/// columns past it; over 128 columns the two passes), with one or several panels of
/// source rows in each direction: y, dx and dW at the active positions agree with
/// `x W^T` to 1e-5.
#[test]
fn compact_linear_matches_the_dense_product_and_its_gradients() {
    let _torch = super::common::torch_lock();
    tch::manual_seed(3);
    // Panels (forward, input gradient): 1/1, 1/1, 7/1, 1/1, 8/5, 3/3.
    for (out, inp, k) in [(37, 53, 400), (788, 788, 6209), (10, 788, 788), (5, 3, 15), (300, 500, 45000), (150, 130, 9750)] {
        let mask = random_mask(&[out, inp], k, 7, 1);
        let w = Tensor::randn([out, inp], (Kind::Float, Device::Cpu)) * &mask;
        let mut plan = CsrPlan::from_mask(&mask).unwrap();
        assert_eq!(plan.nnz(), k);
        let values = plan.gather(&w).set_requires_grad(true);
        assert!(plan.dense(&values).detach().equal(&w), "gather/dense round trip");
        for b in [1, 7, 16, 64, 93, 100, 120, 128, 211, 300] {
            let x = Tensor::randn([b, inp], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let g = Tensor::randn([b, out], (Kind::Float, Device::Cpu));
            let wd = w.detach().set_requires_grad(true);
            let yd = x.linear(&wd, None::<Tensor>);
            let gd = Tensor::run_backward(&[(&yd * &g).sum(Kind::Float)], &[&x, &wd], false, false);
            let yc = plan.linear(&x, &values).unwrap();
            let gc = Tensor::run_backward(&[(&yc * &g).sum(Kind::Float)], &[&x, &values], false, false);
            assert!(max_rel(&yc, &yd) < 1e-5, "y {out}x{inp} b={b}: {}", max_rel(&yc, &yd));
            assert!(max_rel(&gc[0], &gd[0]) < 1e-5, "dx {out}x{inp} b={b}: {}", max_rel(&gc[0], &gd[0]));
            let dw_active = plan.gather(&gd[1]);
            assert!(max_rel(&gc[1], &dw_active) < 1e-5, "dW {out}x{inp} b={b}: {}", max_rel(&gc[1], &dw_active));
        }
        // No gradient asked for the input (a first layer): only dW is computed.
        let x = Tensor::randn([9, inp], (Kind::Float, Device::Cpu));
        let y = plan.linear(&x, &values).unwrap();
        let gv = Tensor::run_backward(&[y.sum(Kind::Float)], &[&values], false, false);
        assert!(max_rel(&gv[0], &plan.gather(&x.sum_dim_intlist(0, false, Kind::Float).unsqueeze(0).expand([out, inp], false))) < 1e-5);
    }
}

#[test]
fn auto_picks_compact_at_or_below_the_crossover_and_names_bad_kernels() {
    assert_eq!(Kernel::Auto.resolve(COMPACT_CROSSOVER), Kernel::Compact);
    assert_eq!(Kernel::Auto.resolve(COMPACT_CROSSOVER + 0.01), Kernel::Dense);
    assert_eq!(Kernel::Dense.resolve(0.01), Kernel::Dense);
    assert_eq!(Kernel::Compact.resolve(1.0), Kernel::Compact);
    assert_eq!(Kernel::parse("compact").unwrap(), Kernel::Compact);
    assert!(Kernel::parse("sparse").unwrap_err().to_string().contains("valid: auto, dense, compact, measured"));
    let net = MlpConfig { densities: Densities::PerLayer(vec![0.5, 0.1, 1.0]), ..MlpConfig::new(20, 3, 2, 16) }.init(Device::Cpu).unwrap();
    let kernels: Vec<Kernel> = net.linears().iter().map(|l| l.kernel()).collect();
    assert_eq!(kernels, vec![Kernel::Dense, Kernel::Compact, Kernel::Dense]);
    assert_eq!(net.linears()[1].param().size(), vec![26]); // round(0.1 * 256): values only
}

/// `measured` times both kernels on the layer's own shape: at density 0.01 the compact
/// kernel does a hundredth of the dense product's multiply-adds, so it must win by far
/// (about 10x here) and be chosen, for a lone layer and for an MLP's hidden layers;
/// a first layer is timed without its input gradient. Timings taken while other tests of
/// this binary train on libtorch's thread pool measured both kernels at about 45 ms (the
/// waits, not the work), so the check runs alone, in a child process of this test binary
/// on one libtorch thread, where parallel regions cannot wait on a descheduled thread.
#[test]
fn measured_times_both_kernels_and_picks_the_far_faster_one() {
    const CHILD: &str = "SPARSELAB_TIMING_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let name = "kernels::measured_times_both_kernels_and_picks_the_far_faster_one";
        let out = std::process::Command::new(std::env::current_exe().unwrap()).args([name, "--exact", "--test-threads=1", "--nocapture"]).env(CHILD, "1").output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "child run failed:\n{text}");
        return;
    }
    tch::set_num_threads(1);
    assert_eq!(Kernel::parse("measured").unwrap(), Kernel::Measured);
    let (dense, compact) = time_kernels(788, 788, 6209, true, 128).unwrap();
    assert!(dense > 0.0 && compact > 0.0 && compact < dense, "dense {dense} s, compact {compact} s");
    assert_eq!(measured_kernel(788, 788, 6209, true), Kernel::Compact);
    assert_eq!(Kernel::Measured.resolve_layer(788, 788, 6209, true), Kernel::Compact);
    let cfg = MlpConfig { densities: Densities::PerLayer(vec![1.0, 0.01, 0.01, 1.0]), kernel: Kernel::Measured, ..MlpConfig::new(64, 10, 3, 788) };
    let kernels = cfg.kernels().unwrap();
    assert_eq!(&kernels[1..3], &[Kernel::Compact, Kernel::Compact]);
    let net = cfg.init(Device::Cpu).unwrap();
    assert_eq!(net.linears().iter().map(|l| l.kernel()).collect::<Vec<_>>(), kernels);
    assert_eq!(net.linears()[1].param().size(), vec![6209]); // round(0.01 * 788^2): values only
}

/// Timing draws nothing from libtorch's global generator, which a run's later draws use:
/// seeding, timing and drawing gives what seeding and drawing gives. Other tests in this
/// binary train in parallel and seed that process-wide generator before every step, so the
/// check runs alone, in a child process of this test binary running only this test.
#[test]
fn measured_timing_leaves_the_global_random_stream_alone() {
    const CHILD: &str = "SPARSELAB_STREAM_CHILD";
    let name = "kernels::measured_timing_leaves_the_global_random_stream_alone";
    if std::env::var_os(CHILD).is_some() {
        tch::manual_seed(5);
        let before = Tensor::randn([4], (Kind::Float, Device::Cpu));
        tch::manual_seed(5);
        time_kernels(788, 788, 6209, true, 128).unwrap();
        assert_eq!(Tensor::randn([4], (Kind::Float, Device::Cpu)), before);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap()).args([name, "--exact", "--test-threads=1", "--nocapture"]).env(CHILD, "1").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "child run failed:\n{text}");
}

fn twins(cfg: &MlpConfig) -> (sparselab::model::Mlp, sparselab::model::Mlp) {
    let d = MlpConfig { kernel: Kernel::Dense, ..cfg.clone() }.init(Device::Cpu).unwrap();
    let c = MlpConfig { kernel: Kernel::Compact, ..cfg.clone() }.init(Device::Cpu).unwrap();
    (d, c)
}

/// Whole MLPs (BatchNorm, skip, biases): identical masks and initial weights, and two
/// epochs of training give the same losses and weights to float tolerance, with masked
/// weights exactly zero in both.
#[test]
fn compact_mlp_trains_like_the_dense_masked_mlp() {
    let _torch = super::common::torch_lock();
    let data = super::common::synthetic();
    let cfg = MlpConfig { densities: Densities::PerLayer(vec![0.3, 0.1, 0.2, 0.05, 0.3]), batch_norm: true, skip: true, seed: 4, ..MlpConfig::new(64, 4, 4, 48) };
    let (mut d, mut c) = twins(&cfg);
    for (a, b) in d.weight_layers().iter().zip(c.weight_layers()) {
        assert!(a.mask.equal(b.mask) && a.weight.equal(&b.weight), "{} differs at init", a.name);
    }
    let tc = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.05, l2: 1e-4, ..OptimizerConfig::default() }, ..super::common::quick() };
    let rd = train(&mut d, &data, &tc).unwrap();
    let rc = train(&mut c, &data, &tc).unwrap();
    for (a, b) in rd.history.iter().zip(&rc.history) {
        assert!((a.train_loss - b.train_loss).abs() < 1e-4 * a.train_loss.abs().max(1.0), "epoch {}: {} vs {}", a.epoch, a.train_loss, b.train_loss);
        assert!((a.test_loss - b.test_loss).abs() < 1e-4 * a.test_loss.abs().max(1.0));
    }
    for (a, b) in d.weight_layers().iter().zip(c.weight_layers()) {
        assert!(max_rel(&b.weight, &a.weight) < 1e-4, "{}: {}", a.name, max_rel(&b.weight, &a.weight));
        assert_eq!((&b.weight * (1.0 - b.mask) as Tensor).abs().max().double_value(&[]), 0.0, "{}", a.name);
    }
    // The whole epoch's forward in eval mode agrees too.
    let x = data.test.x.narrow(0, 0, 50);
    assert!(max_rel(&c.forward(&x, Mode::Eval).unwrap(), &d.forward(&x, Mode::Eval).unwrap()) < 1e-4);
}

/// Gradient flow needs G_l at masked positions too (SPEC 5); the compact model measures
/// through a dense leaf and agrees with the dense model, twice in a row (no stale leaf).
#[test]
fn compact_gradient_flow_matches_dense() {
    let _torch = super::common::torch_lock();
    let data = super::common::synthetic();
    let cfg = MlpConfig { densities: Densities::Uniform(0.2), batch_norm: true, ..MlpConfig::new(64, 4, 3, 40) };
    let (d, c) = twins(&cfg);
    let subset = sparselab::data::Split { x: data.train.x.narrow(0, 0, 200), y: data.train.y.narrow(0, 0, 200) };
    for _ in 0..2 {
        let pd = measure_grad_flow(&d, &subset, 0).unwrap();
        let pc = measure_grad_flow(&c, &subset, 0).unwrap();
        for (got, want) in [(pc.egf1, pd.egf1), (pc.egf2, pd.egf2), (pc.gnorm1, pd.gnorm1), (pc.gnorm2, pd.gnorm2)] {
            assert!((got - want).abs() <= 1e-5 * want.abs(), "{got} vs {want}");
        }
        assert!(pd.gnorm2 > pd.egf2, "masked positions carry gradient");
    }
}

/// Saving and loading a compact model restores values, masks and the index structure;
/// pruning a compact model rebuilds it and keeps exactly the largest weights.
#[test]
fn compact_models_save_load_and_prune() {
    let _torch = super::common::torch_lock();
    let path = std::env::temp_dir().join(format!("sparselab-compact-{}.safetensors", std::process::id()));
    let cfg = MlpConfig { densities: Densities::Uniform(0.25), ..MlpConfig::new(30, 5, 2, 20) };
    let a = MlpConfig { seed: 1, ..cfg.clone() }.init(Device::Cpu).unwrap();
    a.save(&path).unwrap();
    let mut b = MlpConfig { seed: 2, ..cfg }.init(Device::Cpu).unwrap();
    b.load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let x = Tensor::randn([8, 30], (Kind::Float, Device::Cpu));
    assert!(a.forward(&x, Mode::Eval).unwrap().equal(&b.forward(&x, Mode::Eval).unwrap()));
    let before = b.linears()[0].weight();
    sparselab::experiment::magnitude_prune(&b, 0.1, sparselab::experiment::Scope::Layer).unwrap();
    let l = &b.linears()[0];
    assert_eq!(l.active(), 60); // round(0.1 * 600)
    assert_eq!(l.param().size(), vec![60]);
    let kth = before.abs().flatten(0, -1).topk(60, 0, true, true).0.min().double_value(&[]);
    let kept = l.weight().abs();
    assert!(kept.masked_select(&l.mask.to_kind(Kind::Bool)).min().double_value(&[]) >= kth);
    assert_eq!((&kept * (1.0 - &l.mask) as Tensor).abs().max().double_value(&[]), 0.0);
    // The pruned layer still computes x W^T with its new weights.
    let y = l.forward(&x, Mode::Eval).unwrap();
    let want = x.linear(&l.weight(), l.bias.as_ref());
    assert!(max_rel(&y, &want) < 1e-5);
}

/// A CNN whose classifier is compact (density 0.3 <= crossover): saving and loading
/// rebuild its index structure, and pruning goes through the compact layer.
#[test]
fn cnn_with_a_compact_classifier_loads_and_prunes() {
    let _torch = super::common::torch_lock();
    use sparselab::model::CnnConfig;
    let path = std::env::temp_dir().join(format!("sparselab-cnn-compact-{}.safetensors", std::process::id()));
    let cfg = CnnConfig { densities: vec![0.3], ..CnnConfig::new("resnet32", 3, 10) };
    let a = CnnConfig { seed: 1, ..cfg.clone() }.init(Device::Cpu).unwrap();
    a.save(&path).unwrap();
    let mut b = CnnConfig { seed: 2, ..cfg }.init(Device::Cpu).unwrap();
    b.load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    assert!(a.forward(&x, Mode::Eval).unwrap().equal(&b.forward(&x, Mode::Eval).unwrap()));
    sparselab::experiment::magnitude_prune(&b, 0.1, sparselab::experiment::Scope::Layer).unwrap();
    let fc = b.layers().last().cloned().unwrap();
    assert_eq!((fc.name.as_str(), fc.active), ("fc", 64)); // round(0.1 * 640)
    let w = b.weight_layers().last().unwrap().weight.shallow_clone();
    assert_eq!((w.ne(0.0).sum(Kind::Int64)).int64_value(&[]), 64);
}

/// The error of a call that must refuse its input (not panic, not crash).
fn refused<T>(r: sparselab::Result<T>) -> String {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

fn f32s(shape: &[i64]) -> Tensor {
    Tensor::ones(shape, (Kind::Float, Device::Cpu))
}

/// A 2 x 3 plan with all 6 entries active.
fn full_plan() -> CsrPlan {
    CsrPlan::from_mask(&f32s(&[2, 3])).unwrap()
}

#[test]
fn compact_plans_refuse_masks_that_are_not_positive_matrices() {
    assert_eq!(refused(CsrPlan::from_mask(&f32s(&[6]))), "compact plan: mask [6] is not [out, in] with positive sizes");
    assert_eq!(refused(CsrPlan::from_mask(&f32s(&[0, 3]))), "compact plan: mask [0, 3] is not [out, in] with positive sizes");
    assert_eq!(refused(CsrPlan::from_blocks(&f32s(&[2, 3]))), "compact plan: masks [2, 3] are not [blocks, out, in]");
    assert_eq!(refused(CsrPlan::from_blocks(&f32s(&[2, 3, 0]))), "compact plan: masks [2, 3, 0] must have positive sizes");
    // The kernel's source rows are int32 (a view: nothing this large is allocated).
    let huge = f32s(&[1, 1, 1]).expand([3, 1, 1 << 30], false);
    assert_eq!(refused(CsrPlan::from_blocks(&huge)), "compact plan: masks [3, 1, 1073741824] have more than 2147483647 rows or columns in all");
    let plan = CsrPlan::from_blocks(&f32s(&[2, 3, 4])).unwrap();
    assert_eq!((plan.shape(), plan.blocks(), plan.nnz(), plan.offsets()), ([3, 4], 2, 24, vec![0, 12, 24]));
}

#[test]
fn compact_plans_refuse_values_and_inputs_of_other_shapes() {
    let mut plan = full_plan();
    let x = f32s(&[4, 3]);
    assert_eq!(refused(plan.linear(&x, &f32s(&[5]))), "sparse linear: values [5] != plan nnz 6");
    assert_eq!(refused(plan.linear(&x, &f32s(&[6, 1]))), "sparse linear: values [6, 1] != plan nnz 6");
    assert_eq!(refused(plan.linear(&f32s(&[4, 4]), &f32s(&[6]))), "sparse linear: xs [4, 4] != [batch, 3]");
    assert_eq!(refused(plan.linear(&f32s(&[3]), &f32s(&[6]))), "sparse linear: xs [3] != [batch, 3]");
    assert_eq!(refused(plan.linear(&f32s(&[2, 4, 3]), &f32s(&[6]))), "sparse linear: xs [2, 4, 3] != [batch, 3]");
    let doubles = Tensor::ones([6], (Kind::Double, Device::Cpu));
    assert_eq!(refused(plan.linear(&x, &doubles)), "sparse linear: float32 only, got Float input and Double values");
    assert_eq!(refused(plan.f_dense(&f32s(&[7]))), "compact plan: values [7] != plan nnz 6");
    assert_eq!(refused(plan.f_gather(&f32s(&[3, 2]))), "compact plan: dense [3, 2] != [2, 3]");
    let mut blocks = CsrPlan::from_blocks(&f32s(&[2, 2, 3])).unwrap();
    assert_eq!(refused(blocks.linear(&x, &f32s(&[12]))), "sparse linear: xs [4, 3] != [batch, 6]");
    assert_eq!(refused(blocks.f_gather(&f32s(&[2, 3]))), "compact plan: dense [2, 3] != [2, 2, 3]");
    // What fits still runs: y = x W^T with W all ones.
    let values = plan.f_gather(&f32s(&[2, 3])).unwrap();
    let y = plan.linear(&x, &values).unwrap();
    assert!(y.equal(&(f32s(&[4, 2]) * 3)));
}

#[test]
fn fused_layers_refuse_tensors_that_do_not_fit() {
    use sparselab::compute::FusedLayer;
    let (w, b) = (f32s(&[4, 3]), f32s(&[4]));
    assert_eq!(refused(FusedLayer::dense(&w, &f32s(&[3, 4]), Some(&b))), "dense layer: mask [3, 4] != weight [4, 3]");
    assert_eq!(refused(FusedLayer::dense(&w, &w, Some(&f32s(&[3])))), "dense layer: bias [3] != [4]");
    assert_eq!(refused(FusedLayer::dense(&f32s(&[2, 4, 3]), &f32s(&[2, 4, 3]), Some(&b))), "dense layer: bias [4] != [2, 4]");
    assert_eq!(refused(FusedLayer::dense(&f32s(&[12]), &f32s(&[12]), None)), "dense layer: weight [12] is not [out, in] or [E, out, in]");
    assert_eq!(refused(FusedLayer::dense(&f32s(&[0, 3]), &f32s(&[0, 3]), None)), "dense layer: weight [0, 3] must have positive sizes");
    let doubles = Tensor::ones([4, 3], (Kind::Double, Device::Cpu));
    assert_eq!(refused(FusedLayer::dense(&doubles, &w, None)), "dense layer: weight must be float32, got Double");
    assert_eq!(refused(FusedLayer::dense(&w, &Tensor::ones([4, 3], (Kind::Int64, Device::Cpu)), None)), "dense layer: mask must be float32, got Int64");
    assert_eq!(refused(FusedLayer::dense(&w, &w, Some(&Tensor::ones([4], (Kind::Double, Device::Cpu))))), "dense layer: bias must be float32, got Double");
    let plan = full_plan();
    assert_eq!(refused(FusedLayer::compact(&f32s(&[5]), &plan, None)), "compact layer: values [5] != plan nnz 6");
    assert_eq!(refused(FusedLayer::compact(&f32s(&[6]), &plan, Some(&f32s(&[3])))), "compact layer: bias [3] != [1, 2]");
    assert_eq!(refused(FusedLayer::compact(&Tensor::ones([6], (Kind::Double, Device::Cpu)), &plan, None)), "compact layer: values must be float32, got Double");
    let l = FusedLayer::compact(&f32s(&[6]), &plan, Some(&f32s(&[1, 2]))).unwrap();
    assert_eq!((l.shape(), l.members(), l.is_compact()), ([2, 3], 1, true));
    let l = FusedLayer::dense(&f32s(&[2, 4, 3]), &f32s(&[2, 4, 3]), Some(&f32s(&[2, 4]))).unwrap();
    assert_eq!((l.shape(), l.members(), l.is_compact()), ([4, 3], 2, false));
}

/// A fused step for one 3-4-2 network: a dense first layer, a compact last one.
fn fused_3_4_2() -> (sparselab::compute::FusedMlp, Tensor, Tensor) {
    use sparselab::compute::{FusedLayer, FusedMlp};
    let w1 = Tensor::randn([4, 3], (Kind::Float, Device::Cpu));
    let plan = CsrPlan::from_mask(&f32s(&[2, 4])).unwrap();
    let v2 = Tensor::randn([8], (Kind::Float, Device::Cpu));
    let layers = [FusedLayer::dense(&w1, &f32s(&[4, 3]), None).unwrap(), FusedLayer::compact(&v2, &plan, Some(&f32s(&[2]))).unwrap()];
    (FusedMlp::new(1, &layers, &sparselab::train::OptimizerConfig { kind: sparselab::train::OptimizerKind::Momentum, ..Default::default() }).unwrap(), w1, v2)
}

#[test]
fn fused_step_refuses_layers_that_do_not_chain() {
    use sparselab::compute::{FusedLayer, FusedMlp};
    let a = FusedLayer::dense(&f32s(&[4, 3]), &f32s(&[4, 3]), None).unwrap();
    let b = FusedLayer::dense(&f32s(&[2, 5]), &f32s(&[2, 5]), None).unwrap();
    assert_eq!(
        refused(FusedMlp::new(1, &[a, b], &sparselab::train::OptimizerConfig { kind: sparselab::train::OptimizerKind::Momentum, ..Default::default() })),
        "fused step: layer 1 takes 5 features, layer 0 gives 4"
    );
    let a = FusedLayer::dense(&f32s(&[4, 3]), &f32s(&[4, 3]), None).unwrap();
    assert_eq!(
        refused(FusedMlp::new(2, &[a], &sparselab::train::OptimizerConfig { kind: sparselab::train::OptimizerKind::Momentum, ..Default::default() })),
        "fused step: layer 0 has 1 members, expected 2"
    );
    assert_eq!(refused(FusedMlp::new(1, &[], &sparselab::train::OptimizerConfig { kind: sparselab::train::OptimizerKind::Momentum, ..Default::default() })), "fused step: no layers");
    let d = Tensor::ones([4, 3], (Kind::Float, Device::Cpu)).transpose(0, 1).contiguous().transpose(0, 1); // [4, 3], column-major
    let a = FusedLayer::dense(&d, &f32s(&[4, 3]), None).unwrap();
    assert_eq!(
        refused(FusedMlp::new(1, &[a], &sparselab::train::OptimizerConfig { kind: sparselab::train::OptimizerKind::Momentum, ..Default::default() })),
        "fused step: layer 0 weight must be a contiguous float32 CPU tensor"
    );
}

#[test]
fn fused_step_refuses_inputs_that_do_not_fit() {
    let _torch = super::common::torch_lock();
    let (mut f, w1, mut v2) = fused_3_4_2();
    let x = |shape: &[i64]| Tensor::randn(shape, (Kind::Float, Device::Cpu));
    let ys = Tensor::from_slice(&[0i64, 1, 1, 0, 1, 0, 0, 1]).view([1, 8]);
    assert_eq!(refused(f.step(&x(&[1, 5, 8]), &ys, 0.1)), "fused step: input must be [1, 3, batch], got [1, 5, 8]");
    assert_eq!(refused(f.step(&x(&[2, 3, 8]), &ys, 0.1)), "fused step: input must be [1, 3, batch], got [2, 3, 8]");
    assert_eq!(refused(f.step(&x(&[3, 8]), &ys, 0.1)), "fused step: input must be [1, 3, batch], got [3, 8]");
    let doubles = Tensor::randn([1, 3, 8], (Kind::Double, Device::Cpu));
    assert_eq!(refused(f.step(&doubles, &ys, 0.1)), "fused step: input must be float32 on the CPU, got Double on cpu");
    assert_eq!(refused(f.step(&x(&[1, 3, 7]), &ys, 0.1)), "fused step: targets must be [1, 7], got [1, 8]");
    assert_eq!(refused(f.step(&x(&[1, 3, 8]), &ys.view([8]), 0.1)), "fused step: targets must be [1, 8], got [8]");
    assert_eq!(refused(f.step(&x(&[1, 3, 8]), &ys.to_kind(Kind::Float), 0.1)), "fused step: targets must be int64 on the CPU, got Float on cpu");
    assert_eq!(refused(f.step(&x(&[1, 3, 0]), &ys.narrow(1, 0, 0), 0.1)), "fused step: empty batch");
    let label = |k: i64| {
        let y = ys.copy();
        let _ = y.get(0).get(3).fill_(k);
        y
    };
    assert_eq!(refused(f.step(&x(&[1, 3, 8]), &label(2), 0.1)), "fused step: target 2 is not a class in 0..1");
    assert_eq!(refused(f.step(&x(&[1, 3, 8]), &label(-1), 0.1)), "fused step: target -1 is not a class in 0..1");
    // Refused inputs changed nothing; what fits still runs.
    let before = w1.copy();
    let (loss, correct) = f.step(&x(&[1, 3, 8]), &ys, 0.1).unwrap();
    assert_eq!((loss.size(), correct.size()), (vec![1], vec![1]));
    assert!(!w1.equal(&before), "the step updated the weight");
    // A layer tensor resized in place since the step was built.
    v2.set_data(&f32s(&[5]));
    assert_eq!(refused(f.step(&x(&[1, 3, 8]), &ys, 0.1)), "fused step: layer 1 values have 5 entries, its plan 8");
    let mut w1 = w1;
    w1.set_data(&f32s(&[5]));
    assert_eq!(refused(f.step(&x(&[1, 3, 8]), &ys, 0.1)), "fused step: layer 0 weight has 5 entries, expected 1 x 4 x 3");
}
