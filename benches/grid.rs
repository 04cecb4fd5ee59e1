//! The report's Table A.1 grid, one epoch of every cell: sparselab vs PyTorch eager.
//!
//! `cargo bench --bench grid` (env: SPARSELAB_BENCH_THREADS=2,
//! SPARSELAB_BENCH_TRAIN_LIMIT=0 (all 60,000), SPARSELAB_BENCH_CELLS (all; e.g.
//! `adam/BN,momentum/NR`), SPARSELAB_BENCH_TORCH=1). Each cell is an optimizer (adagrad,
//! adam, momentum) and a regularization code (NR, L2, DA, SC, BN, DA_SC_BN,
//! DA_L2_SC_BN), lr 0.001, Fashion-MNIST, 4 hidden layers, one seed: `sc_sdc` trains its
//! 10 networks (5 dense widths and their sparse twins) for one epoch, and the checked-in
//! PyTorch script (benches/pytorch_grid.py) trains the same 10 networks the same way
//! with the same threads. The two run back to back per cell (PyTorch first), so a
//! machine that drifts over minutes drifts for both. Prints per cell the seconds, the
//! ratio and which step trained it (fused or autograd), then the totals.
use sparselab::data::{search_path, Dataset, DatasetConfig, Subset};
use sparselab::experiment::{grid_configs, sc_sdc, twins, GridAxes, InitFan, ScSdcConfig, Session, ENSEMBLE_MEMBERS};
use sparselab::model::MlpConfig;
use sparselab::train::{fused_step_blocker, DeviceSpec, OptimizerConfig, OptimizerKind, TrainConfig};
use std::process::Command;
use std::time::Instant;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// Table A.1's optimizers and regularization codes.
const OPTIMIZERS: [&str; 3] = ["adagrad", "adam", "momentum"];
const CODES: [&str; 7] = ["NR", "L2", "DA", "SC", "BN", "DA_SC_BN", "DA_L2_SC_BN"];

fn main() -> anyhow::Result<()> {
    // The mode `sparselab` runs in (SPARSELAB_REPRODUCIBLE, default avx2), set before
    // libtorch or MKL computes anything, as the binary does.
    if let Some(w) = sparselab::repro::init() {
        eprintln!("warning: {w}");
    }
    let threads: usize = env("SPARSELAB_BENCH_THREADS", 2);
    let limit: usize = env("SPARSELAB_BENCH_TRAIN_LIMIT", 0);
    let with_torch = env("SPARSELAB_BENCH_TORCH", 1) == 1;
    let wanted: Vec<String> = std::env::var("SPARSELAB_BENCH_CELLS").map(|v| v.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()).collect()).unwrap_or_default();
    let Some(dir) = search_path("fashion-mnist", None).into_iter().find(|d| d.join("t10k-labels-idx1-ubyte.gz").exists()) else {
        anyhow::bail!("the benchmark needs the full Fashion-MNIST IDX files (apt-get install dataset-fashion-mnist)");
    };
    tch::set_num_threads(threads as i32);
    let mut dcfg = DatasetConfig::new("fashion-mnist").with_subset(Subset::Full);
    if limit > 0 {
        dcfg = dcfg.with_train_limit(limit);
    }
    let data = Dataset::load(&dcfg)?;
    let python = std::fs::canonicalize(".libtorch").ok().map(|p| p.join("../../../../bin/python")).filter(|p| p.exists());
    if python.is_none() && with_torch {
        eprintln!("no PyTorch found next to .libtorch: run .ci/setup; printing sparselab times only");
    }
    let train =
        TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.001, ..Default::default() }, epochs: 1, device: DeviceSpec::Cpu, threads: Some(threads), ..Default::default() };
    let base = ScSdcConfig {
        base: MlpConfig { bias: false, ..MlpConfig::new(784, 10, 4, 1) },
        max_width: None,
        fractions: vec![0.1, 0.3, 0.5, 0.7, 0.9],
        seeds: vec![0],
        init_fan: InitFan::Dense,
        train,
        ensemble: ENSEMBLE_MEMBERS,
    };
    let axes = GridAxes { optimizer: OPTIMIZERS.map(String::from).to_vec(), regularization: CODES.map(String::from).to_vec(), ..Default::default() };
    let cells: Vec<_> = grid_configs(&data, &base, &axes)?.into_iter().filter(|((o, r, _, _), _)| wanted.is_empty() || wanted.contains(&format!("{o}/{}", r.to_ascii_lowercase()))).collect();
    if cells.is_empty() {
        anyhow::bail!("SPARSELAB_BENCH_CELLS matches no cell; cells are optimizer/code with optimizer in {OPTIMIZERS:?} and code in {CODES:?}");
    }
    println!(
        "sparselab grid benchmark: Table A.1 (lr 0.001), {} cell(s) x 10 networks x 1 epoch, Fashion-MNIST {} train, {threads} threads, reproducible mode {}\n",
        cells.len(),
        data.train.len(),
        sparselab::repro::mode()
    );
    println!("{:<24} {:>12} {:>11} {:>7}  step", "cell", "sparselab s", "pytorch s", "ratio");
    let (mut ours_total, mut torch_total, mut worst) = (0.0, 0.0, (0.0f64, String::new()));
    for ((opt, code, _, _), cfg) in &cells {
        let torch = match (&python, with_torch) {
            (Some(py), true) => pytorch(py, &dir, threads, limit, opt, code)?,
            _ => f64::NAN,
        };
        // Which step trains the cell: the fused one wherever it applies (`auto`).
        let twins = twins(&cfg.base, 79, 788, InitFan::Dense)?;
        let step = match fused_step_blocker(&twins.sparse.init(tch::Device::Cpu)?, tch::Device::Cpu)? {
            None => "fused".to_string(),
            Some(why) => format!("autograd: {why}"),
        };
        let t = Instant::now();
        sc_sdc(&data, cfg, &Session::new(), |_| {})?;
        let ours = t.elapsed().as_secs_f64();
        let ratio = ours / torch;
        println!("{:<24} {:>12.2} {:>11.2} {:>7.2}  {step}", format!("{opt} {code}"), ours, torch, ratio);
        ours_total += ours;
        torch_total += torch;
        if ratio > worst.0 {
            worst = (ratio, format!("{opt} {code}"));
        }
    }
    println!("{:<24} {:>12.2} {:>11.2} {:>7.2}", "total", ours_total, torch_total, ours_total / torch_total);
    if worst.0 > 0.0 {
        println!("\nhighest cell ratio: {:.2} ({})", worst.0, worst.1);
    }
    Ok(())
}

/// One PyTorch run of a cell: its total seconds (10 networks, build + epoch + evaluation).
fn pytorch(py: &std::path::Path, dir: &std::path::Path, threads: usize, limit: usize, opt: &str, code: &str) -> anyhow::Result<f64> {
    let out = Command::new(py)
        .arg("benches/pytorch_grid.py")
        .arg("--data")
        .arg(dir)
        .arg("--threads")
        .arg(threads.to_string())
        .arg("--optimizer")
        .arg(opt)
        .arg("--reg")
        .arg(code)
        .arg("--train-limit")
        .arg(limit.to_string())
        .output()?;
    if !out.status.success() {
        eprintln!("pytorch reference failed for {opt} {code}: {}", String::from_utf8_lossy(&out.stderr));
        return Ok(f64::NAN);
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("cell").is_some())
        .and_then(|v| v["seconds"].as_f64())
        .unwrap_or(f64::NAN))
}
