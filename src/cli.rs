//! `sparselab info` and `sparselab train`: the command-line front ends that need no script.
use crate::data::{search_path, Dataset, DatasetConfig, Subset, DATASETS};
use crate::error::Result;
use crate::model::{layer_table, Densities, Kernel, MlpConfig, Model};
use crate::train::{train, DeviceSpec, GradFlowConfig, OptimizerConfig, OptimizerKind, Schedule, StepKind, TrainConfig};
use std::fmt::Write;

/// Versions, devices, threads and the data search path.
pub fn info() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "sparselab {}", crate::version());
    let _ = writeln!(s, "libtorch  {} (tch 0.24.0)", libtorch_version());
    let cuda = tch::Cuda::is_available();
    let linked = cuda_linked();
    let _ = writeln!(
        s,
        "CUDA      {}",
        if cuda {
            format!("available, {} device(s), cuDNN {}", tch::Cuda::device_count(), tch::utils::version_cudnn())
        } else if linked {
            "libtorch_cuda linked, no CUDA device visible on this machine".to_string()
        } else {
            "libtorch_cuda NOT linked: this build can only use the CPU".to_string()
        }
    );
    let _ = writeln!(s, "devices   cpu{}", (0..tch::Cuda::device_count()).map(|i| format!(", cuda:{i}")).collect::<String>());
    let _ = writeln!(s, "threads   {} intra-op, {} inter-op (MKL {}, OpenMP {})", tch::get_num_threads(), tch::get_num_interop_threads(), tch::utils::has_mkl(), tch::utils::has_openmp());
    let _ = writeln!(
        s,
        "cpu       {}: the compact kernels' clone that runs here{}",
        cpu_level(),
        if crate::compute::kernels_wide() { ", sparse products in 16-float registers, sparse backward in one pass" } else { "" }
    );
    let _ = writeln!(
        s,
        "fused     dense products on {}",
        if crate::compute::fused_gemm() == "mkl" { "MKL sgemm (single-threaded pieces)" } else { "the portable gemm (no MKL in this libtorch, or built with portable-kernels)" }
    );
    let _ = writeln!(
        s,
        "repro     SPARSELAB_REPRODUCIBLE={} (MKL {}, ATen {}; {})",
        crate::repro::mode(),
        crate::repro::mkl_branch(),
        std::env::var("ATEN_CPU_CAPABILITY").unwrap_or_else(|_| "auto".into()),
        match crate::repro::mode() {
            "off" => "results depend on the CPU and thread count",
            // MKL pins its AVX2/AVX-512 branches on Intel CPUs only (an AMD EPYC reports AUTO).
            "avx2" | "native" if crate::repro::mkl_branch().starts_with("AUTO") => {
                "MKL kept its own branch on this CPU: the same bits across threads and processes here, not with other machines; docs/reproducibility.md"
            }
            _ => "docs/reproducibility.md says what is guaranteed",
        }
    );
    if let Some(d) = crate::data::hash_cache_dir() {
        let _ = writeln!(s, "hashes    data-file SHA-256 cached in {}", d.join("data-hashes.json").display());
    }
    let _ = writeln!(s, "data      searched in order (bundled Fashion-MNIST subset is the fallback):");
    for name in DATASETS.iter().filter(|n| **n != "synthetic") {
        for d in search_path(name, None) {
            let found = if d.is_dir() { "  [found]" } else { "" };
            let _ = writeln!(s, "  {:<14} {}{found}", name, d.display());
        }
    }
    s.pop();
    s
}

pub use crate::libtorch_version;

/// Whether libtorch_cuda is loaded into this process (it is linked with
/// --no-as-needed; without it CUDA never initialises).
pub fn cuda_linked() -> bool {
    std::fs::read_to_string("/proc/self/maps").map(|m| m.contains("libtorch_cuda.so")).unwrap_or(false)
}

/// Arguments of `sparselab train`.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// Dataset: fashion-mnist, mnist, cifar10, cifar100, synthetic.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: String,
    /// auto (full files if found, else bundled), full, or bundled.
    #[arg(long, default_value = "auto")]
    pub subset: String,
    /// Hidden layers.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 394)]
    pub width: i64,
    /// Density of every weight layer, or comma-separated per layer (depth + 1 values).
    #[arg(long, default_value = "1.0")]
    pub density: String,
    /// relu, prelu, elu, swish, srelu, sigmoid, tanh, gelu.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// BatchNorm after each hidden layer.
    #[arg(long)]
    pub batch_norm: bool,
    /// Residual connections around hidden layer pairs.
    #[arg(long)]
    pub skip: bool,
    /// Biases on every layer.
    #[arg(long)]
    pub bias: bool,
    /// sgd, momentum, adam, adamw, adagrad, rmsprop.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// Momentum for sgd (eq. 2.16).
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Coupled L2 regularisation.
    #[arg(long, default_value_t = 0.0)]
    pub l2: f64,
    /// Epochs.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Seed for masks, init, data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// libtorch threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Random crop + flip augmentation.
    #[arg(long)]
    pub augment: bool,
    /// Measure gradient flow at this many points (0 = off).
    #[arg(long, default_value_t = 0)]
    pub grad_flow: usize,
    /// Weight representation: auto (compact at or below the crossover density), dense, compact, measured (per layer, the kernel that timed faster here).
    #[arg(long, default_value = "auto")]
    pub kernel: String,
    /// Training step: auto (fused CPU step for ReLU MLPs), autograd, fused.
    #[arg(long, default_value = "auto")]
    pub step: String,
    /// Save the trained model (weights and masks) here.
    #[arg(long)]
    pub save: Option<std::path::PathBuf>,
}

/// Runs `sparselab train` and returns its report.
pub fn train_cmd(a: &TrainArgs) -> Result<String> {
    let data = Dataset::load(&DatasetConfig::new(&a.dataset).with_subset(Subset::parse(&a.subset)?))?;
    let densities = parse_densities(&a.density)?;
    let cfg = MlpConfig {
        densities,
        activation: a.activation.clone(),
        batch_norm: a.batch_norm,
        skip: a.skip,
        bias: a.bias,
        seed: a.seed,
        kernel: Kernel::parse(&a.kernel)?,
        ..MlpConfig::new(data.input_size(), data.classes as i64, a.depth, a.width)
    };
    let mut net = cfg.init(tch::Device::Cpu)?;
    let tc = TrainConfig {
        optimizer: OptimizerConfig { kind: OptimizerKind::parse(&a.optimizer)?, lr: a.lr, momentum: a.momentum, l2: a.l2, ..Default::default() },
        schedule: Schedule::Constant,
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        augment: a.augment,
        device: DeviceSpec::parse(&a.device)?,
        threads: a.threads,
        grad_flow: (a.grad_flow > 0).then(|| GradFlowConfig { points: a.grad_flow, ..Default::default() }),
        progress: true,
        step: StepKind::parse(&a.step)?,
        masks: None,
    };
    let mut out = format!("{data}\n{}\n{}\n", net.describe(), layer_table(&net.layers()));
    let run = train(&mut net, &data, &tc)?;
    let _ = write!(out, "{}\n{}", run.history_table(), run.summary());
    if let Some(p) = &a.save {
        net.save(p)?;
        let _ = write!(out, "\nsaved weights and masks to {}", p.display());
    }
    Ok(out)
}

fn parse_densities(s: &str) -> Result<Densities> {
    let vals: std::result::Result<Vec<f64>, _> = s.split(',').map(|v| v.trim().parse::<f64>()).collect();
    match vals {
        Ok(v) if v.len() == 1 => Ok(Densities::Uniform(v[0])),
        Ok(v) => Ok(Densities::PerLayer(v)),
        Err(_) => Err(crate::Error::config("density", format!("{s:?} is not a number or a comma-separated list of numbers"))),
    }
}

/// The x86-64 level the compact kernels' `target_clones` pick on this CPU.
fn cpu_level() -> &'static str {
    if !crate::compute::kernels_cloned() {
        return "baseline code (kernels built without per-CPU clones, e.g. with clang)";
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512cd") && has!("avx512dq") && has!("avx512vl") {
            return "x86-64-v4 (AVX-512)";
        }
        if has!("avx2") && has!("fma") {
            return "x86-64-v3 (AVX2, FMA)";
        }
    }
    "baseline (no AVX2)"
}
