//! Sparse layers and MLPs: exact counts, masks saved and loaded, skip connections.
use sparselab::model::{Densities, Density, Fan, MlpConfig, Mode, Model, SparseConv2dConfig};
use tch::{nn::VarStore, Device, Kind, Tensor};

#[test]
fn sc_sdc_twin_active_counts_are_exact() {
    // Dense twin 784-4x394-10 vs sparse 784-4x788-10 with the same per-layer counts.
    let k = vec![784 * 394, 394 * 394, 394 * 394, 394 * 394, 394 * 10];
    let cfg = MlpConfig { densities: Densities::Active(k.clone()), bias: false, ..MlpConfig::new(784, 10, 4, 788) };
    let net = cfg.init(Device::Cpu).unwrap();
    let layers = net.layers();
    assert_eq!(layers.iter().map(|l| l.active).collect::<Vec<_>>(), k);
    assert_eq!(layers.iter().map(|l| l.total).collect::<Vec<_>>(), vec![784 * 788, 788 * 788, 788 * 788, 788 * 788, 7880]);
    assert_eq!(layers[1].density, 0.25);
    // Stored weights are exactly zero off the mask.
    for l in net.weight_layers() {
        let off = (l.weight * (1.0 - l.mask) as tch::Tensor).abs().max().double_value(&[]);
        assert_eq!(off, 0.0, "{}", l.name);
    }
    assert_eq!(net.params().len(), 5); // no biases
}

#[test]
fn kaiming_fan_override_sets_active_weight_variance() {
    // Sparse 788-wide layer drawing with the dense twin's fan-in 394 (SPEC 4).
    let cfg = MlpConfig { densities: Densities::Uniform(0.25), fans: Some(vec![Fan::Value(394.0)]), bias: false, ..MlpConfig::new(788, 10, 1, 788) };
    let net = cfg.init(Device::Cpu).unwrap();
    let l = &net.linears()[0];
    let active = l.weight().masked_select(&l.mask.to_kind(Kind::Bool));
    let std = active.std(true).double_value(&[]);
    assert!((std - (2.0f64 / 394.0).sqrt()).abs() < 0.002, "{std}");
}

#[test]
fn masks_are_saved_and_loaded_with_the_model() {
    let path = std::env::temp_dir().join(format!("sparselab-model-{}.safetensors", std::process::id()));
    let cfg = MlpConfig { densities: Densities::Uniform(0.3), batch_norm: true, ..MlpConfig::new(20, 3, 2, 16) };
    let a = MlpConfig { seed: 1, ..cfg.clone() }.init(Device::Cpu).unwrap();
    a.save(&path).unwrap();
    let mut b = MlpConfig { seed: 2, ..cfg }.init(Device::Cpu).unwrap();
    assert!(!a.linears()[0].mask.equal(&b.linears()[0].mask));
    b.load(&path).unwrap();
    for (x, y) in a.linears().iter().zip(b.linears()) {
        assert!(x.mask.equal(&y.mask) && x.weight().equal(&y.weight()), "{}", x.name);
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn skip_connections_pair_hidden_layers_two_and_three() {
    let _torch = super::common::torch_lock();
    // depth 4: residual around hidden layers 2-3 (1-based); layer 4 unpaired.
    let cfg = MlpConfig { skip: true, bias: false, ..MlpConfig::new(6, 3, 4, 5) };
    let net = cfg.init(Device::Cpu).unwrap();
    let x = Tensor::randn([7, 6], (Kind::Float, Device::Cpu));
    let w: Vec<Tensor> = net.linears().iter().map(|l| l.weight()).collect();
    let h1 = x.matmul(&w[0].tr()).relu();
    let h2 = h1.matmul(&w[1].tr()).relu();
    let h3 = (h2.matmul(&w[2].tr()) + &h1).relu();
    let h4 = h3.matmul(&w[3].tr()).relu();
    let want = h4.matmul(&w[4].tr());
    let got = net.forward(&x, Mode::Eval).unwrap();
    assert!(got.allclose(&want, 1e-6, 1e-6, false));
}

#[test]
fn config_errors_name_key_value_and_range() {
    let e = |c: MlpConfig| c.init(Device::Cpu).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(e(MlpConfig { densities: Densities::Uniform(0.0), ..MlpConfig::new(4, 2, 1, 3) }), "density: fc1: 0 is outside (0, 1]");
    assert_eq!(e(MlpConfig { densities: Densities::PerLayer(vec![0.5; 3]), ..MlpConfig::new(4, 2, 1, 3) }), "density: 3 entries given, the MLP has 2 weight layers (depth + 1)");
    assert_eq!(e(MlpConfig { dropout: 1.0, ..MlpConfig::new(4, 2, 1, 3) }), "dropout: 1 must be in [0, 1)");
    assert!(e(MlpConfig { activation: "swishh".into(), ..MlpConfig::new(4, 2, 1, 3) }).starts_with("unknown activation \"swishh\" (did you mean \"swish\"?)"));
}

#[test]
fn sparse_conv_forward_backward_keeps_mask() {
    let _torch = super::common::torch_lock();
    let vs = VarStore::new(Device::Cpu);
    let conv = SparseConv2dConfig::new(3, 8, 3).with_density(Density::Fraction(0.2)).init(&(vs.root() / "conv1"), 0, 0).unwrap();
    assert_eq!(sparselab::model::mask_count(&conv.mask), (0.2f64 * 216.0).round() as i64);
    let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
    let y = conv.forward(&x).unwrap();
    assert_eq!(y.size(), vec![2, 8, 8, 8]);
    y.sum(Kind::Float).backward();
    // The gradient reaches masked positions too (it is G_l, report 3.2.2) ...
    let g = conv.weight.grad();
    assert!((&g * (1.0 - &conv.mask) as Tensor).abs().sum(Kind::Float).double_value(&[]) > 0.0);
    let e = conv.forward(&Tensor::randn([2, 4, 8, 8], (Kind::Float, Device::Cpu))).unwrap_err().to_string();
    assert!(e.starts_with("conv1: "), "{e}");
}

/// Regression: rustc's --as-needed dropped libtorch_cuda (nothing references it),
/// so CUDA never initialised; build.rs forces it in.
#[test]
fn libtorch_cuda_is_linked_into_the_binary() {
    let info = std::process::Command::new(env!("CARGO_BIN_EXE_sparselab")).arg("info").output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(!text.contains("NOT linked"), "{text}");
    assert!(text.contains("libtorch  2.11.0"), "{text}");
}

#[test]
fn resnet32_forward_backward_shapes_and_mask_invariants() {
    let _torch = super::common::torch_lock();
    use sparselab::model::CnnConfig;
    use sparselab::train::{Optimizer, OptimizerConfig, OptimizerKind};
    let cfg = CnnConfig { densities: vec![0.3], ..CnnConfig::new("resnet32", 3, 100) };
    // conv1, 15 blocks x 2 convs, 2 projection shortcuts (16->32, 32->64), fc.
    assert_eq!(cfg.layer_count().unwrap(), 34);
    let net = cfg.init(Device::Cpu).unwrap();
    let layers = net.layers();
    assert_eq!(layers.len(), 34);
    assert_eq!(layers[0].shape, vec![16, 3, 3, 3]);
    assert_eq!(layers[33].shape, vec![100, 64]);
    for l in &layers {
        assert_eq!(l.active, ((0.3 * l.total as f64).round() as i64).max(1), "{}", l.name);
    }
    let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = net.forward(&x, Mode::Train).unwrap();
    assert_eq!(y.size(), vec![4, 100]);
    let mut opt = Optimizer::new(OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.1, ..Default::default() }, net.params()).unwrap();
    opt.zero_grad();
    y.cross_entropy_for_logits(&Tensor::from_slice(&[0i64, 1, 2, 3])).backward();
    opt.step(0.1);
    for l in net.weight_layers() {
        assert_eq!((l.weight * (1.0 - l.mask) as Tensor).abs().max().double_value(&[]), 0.0, "{}", l.name);
    }
    // A density vector maps one-to-one onto the weight layers.
    let e = CnnConfig { densities: vec![0.5; 33], ..CnnConfig::new("resnet32", 3, 10) }.init(Device::Cpu).err().unwrap().to_string();
    assert_eq!(e, "density: 33 entries given, resnet32 has 34 weight layers");
}

#[test]
fn wrn28_10_forward_backward_shapes() {
    let _torch = super::common::torch_lock();
    use sparselab::model::CnnConfig;
    let cfg = CnnConfig { densities: vec![0.05], dropout: 0.3, ..CnnConfig::new("wrn28_10", 3, 100) };
    // conv1, 12 blocks x 2 convs, 3 shortcuts (16->160, 160->320, 320->640), fc.
    assert_eq!(cfg.layer_count().unwrap(), 29);
    let net = cfg.init(Device::Cpu).unwrap();
    let total: i64 = net.layers().iter().map(|l| l.total).sum();
    assert!((36_400_000..36_600_000).contains(&total), "{total}"); // WRN-28-10 has ~36.5M weights
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = net.forward(&x, Mode::Train).unwrap();
    assert_eq!(y.size(), vec![2, 100]);
    y.sum(Kind::Float).backward();
    assert_eq!(net.weight_layers()[5].weight.grad().size(), net.weight_layers()[5].weight.size());
}

#[test]
fn magnitude_pruning_keeps_the_largest_weights_per_layer_or_globally() {
    use sparselab::experiment::{magnitude_prune, Scope};
    let net = MlpConfig { bias: false, ..MlpConfig::new(4, 2, 1, 3) }.init(Device::Cpu).unwrap();
    // fc1 [3, 4] = 1..12 with alternating signs; fc2 [2, 3] = 0.5..3.0.
    let w1: Vec<f32> = (1..=12).map(|i| if i % 2 == 0 { -(i as f32) } else { i as f32 }).collect();
    let w2: Vec<f32> = (1..=6).map(|i| i as f32 * 0.5).collect();
    tch::no_grad(|| {
        net.linears()[0].weight().shallow_clone().copy_(&Tensor::from_slice(&w1).view([3, 4]));
        net.linears()[1].weight().shallow_clone().copy_(&Tensor::from_slice(&w2).view([2, 3]));
    });
    magnitude_prune(&net, 0.25, Scope::Layer).unwrap();
    // Layer scope: fc1 keeps round(0.25 * 12) = 3 largest |w| (10, 11, 12); fc2 keeps 2 (2.5, 3.0).
    let kept = |l: usize| Vec::<f32>::try_from(net.linears()[l].weight().flatten(0, -1)).unwrap();
    assert_eq!(kept(0), vec![0., 0., 0., 0., 0., 0., 0., 0., 0., -10., 11., -12.]);
    assert_eq!(kept(1), vec![0., 0., 0., 0., 2.5, 3.0]);
    assert_eq!(net.layers().iter().map(|l| l.active).collect::<Vec<_>>(), vec![3, 2]);
    // Global scope on a fresh copy: 0.25 of all 18 weights = 5 (rounded), all from fc1.
    let net2 = MlpConfig { bias: false, ..MlpConfig::new(4, 2, 1, 3) }.init(Device::Cpu).unwrap();
    tch::no_grad(|| {
        net2.linears()[0].weight().shallow_clone().copy_(&Tensor::from_slice(&w1).view([3, 4]));
        net2.linears()[1].weight().shallow_clone().copy_(&Tensor::from_slice(&w2).view([2, 3]));
    });
    magnitude_prune(&net2, 0.25, Scope::Global).unwrap();
    assert_eq!(net2.layers().iter().map(|l| l.active).collect::<Vec<_>>(), vec![5, 0]);
}
