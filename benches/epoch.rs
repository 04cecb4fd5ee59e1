//! Epoch-time benchmark: sparselab vs PyTorch eager on the report's SC-SDC MLP.
//!
//! `cargo bench --bench epoch` (env: SPARSELAB_BENCH_THREADS=2, SPARSELAB_BENCH_EPOCHS=1,
//! SPARSELAB_BENCH_FRACTIONS=0.5, SPARSELAB_BENCH_REPEATS=3, SPARSELAB_BENCH_TORCH=1).
//! Fashion-MNIST 784 -> 4 x w -> 10, ReLU, no bias, batch 128, SGD momentum 0.9,
//! lr 0.001. Dense twin width round(f * 788); the sparse twin is 4 x 788 with the
//! dense twin's active count in every layer. The PyTorch script
//! (benches/pytorch_reference.py) runs the same workloads in the same process tree
//! with the same thread count; the table prints both and the ratio.
//!
//! Shared machines drift by 20-40% over minutes, so each repeat runs PyTorch's
//! workloads and then ours back to back, and the table reports per-workload medians
//! over the repeats (and the spread, max/min, of ours).
use sparselab::data::{search_path, Dataset, DatasetConfig, Subset};
use sparselab::model::{Densities, Kernel, MlpConfig};
use sparselab::train::{train, DeviceSpec, OptimizerConfig, OptimizerKind, TrainConfig};
use std::collections::HashMap;
use std::process::Command;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// Useful FLOPs of one training epoch: 2 per active MAC forward, 4 backward
/// (input and weight gradients), 2 for the first layer's backward (no input gradient).
fn useful_gflop(active: &[i64], n: usize) -> f64 {
    let macs: f64 = active.iter().enumerate().map(|(i, &k)| k as f64 * if i == 0 { 4.0 } else { 6.0 }).sum();
    macs * n as f64 / 1e9
}

fn main() -> anyhow::Result<()> {
    // The mode `sparselab` runs in (SPARSELAB_REPRODUCIBLE, default avx2), set before
    // libtorch or MKL computes anything, as the binary does.
    if let Some(w) = sparselab::repro::init() {
        eprintln!("warning: {w}");
    }
    let threads: usize = env("SPARSELAB_BENCH_THREADS", 2);
    let epochs: usize = env("SPARSELAB_BENCH_EPOCHS", 1);
    let fractions: Vec<f64> = std::env::var("SPARSELAB_BENCH_FRACTIONS").unwrap_or_else(|_| "0.5".into()).split(',').filter_map(|f| f.parse().ok()).collect();
    let dir = search_path("fashion-mnist", None).into_iter().find(|d| d.join("t10k-labels-idx1-ubyte.gz").exists());
    let Some(dir) = dir else {
        anyhow::bail!("the benchmark needs the full Fashion-MNIST IDX files (apt-get install dataset-fashion-mnist)");
    };
    tch::set_num_threads(threads as i32);
    let data = Dataset::load(&DatasetConfig::new("fashion-mnist").with_subset(Subset::Full))?;
    let n = data.train.len();
    println!("sparselab epoch benchmark: Fashion-MNIST {n} train, {threads} threads, {epochs} epoch(s), batch 128, SGD momentum 0.9, reproducible mode {}\n", sparselab::repro::mode());
    let mut workloads = Vec::new();
    for f in &fractions {
        let w = (f * 788.0).round() as i64;
        let dense = vec![784 * w, w * w, w * w, w * w, w * 10];
        workloads.push((format!("dense w={w}"), w, Densities::Uniform(1.0), dense.clone()));
        workloads.push((format!("sparse 788 (f={f})"), 788, Densities::Active(dense.clone()), dense));
    }
    let repeats: usize = env("SPARSELAB_BENCH_REPEATS", 3).max(1);
    let with_torch = env("SPARSELAB_BENCH_TORCH", 1) == 1;
    let python = std::fs::canonicalize(".libtorch").ok().map(|p| p.join("../../../../bin/python")).filter(|p| p.exists());
    if python.is_none() && with_torch {
        eprintln!("no PyTorch found next to .libtorch: run .ci/setup; printing sparselab times only");
    }
    let mut torch_runs: HashMap<String, Vec<f64>> = HashMap::new();
    let mut our_runs: HashMap<String, Vec<f64>> = HashMap::new();
    let mut kernels_of: HashMap<String, String> = HashMap::new();
    for rep in 0..repeats {
        eprintln!("repeat {}/{repeats}", rep + 1);
        if let (Some(py), true) = (&python, with_torch) {
            for (name, t) in pytorch(py, &dir, threads, epochs, &workloads)? {
                torch_runs.entry(name).or_default().push(t);
            }
        }
        for (name, w, dens, _) in &workloads {
            let cfg = MlpConfig { densities: dens.clone(), bias: false, ..MlpConfig::new(784, 10, 4, *w) };
            let mut net = cfg.init(tch::Device::Cpu)?;
            let tc = TrainConfig {
                optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.001, ..Default::default() },
                epochs,
                device: DeviceSpec::Cpu,
                threads: Some(threads),
                ..Default::default()
            };
            let run = train(&mut net, &data, &tc)?;
            our_runs.entry(name.clone()).or_default().push(run.seconds_per_epoch());
            kernels_of.insert(name.clone(), net.linears().iter().map(|l| if l.kernel() == Kernel::Compact { "C" } else { "D" }).collect());
        }
    }
    let ceiling = sgemm_ceiling();
    println!("measured float32 ceiling: {ceiling:.1} GFLOP/s (best 1024^3 sgemm, {threads} threads); medians of {repeats} repeat(s)\n");
    println!("{:<22} {:>12} {:>7} {:>12} {:>7} {:>9} {:>10} {:>8}  kernels", "workload", "sparselab s", "spread", "pytorch s", "ratio", "GFLOP", "GFLOP/s", "%ceil");
    let mut ours = HashMap::new();
    let mut torch_times = HashMap::new();
    for (name, _, _, active) in &workloads {
        let runs = &our_runs[name];
        let s = median(runs);
        let spread = runs.iter().cloned().fold(f64::MIN, f64::max) / runs.iter().cloned().fold(f64::MAX, f64::min);
        let t = torch_runs.get(name).map(|v| median(v)).unwrap_or(f64::NAN);
        let gf = useful_gflop(active, n);
        println!("{:<22} {:>12.2} {:>7.2} {:>12.2} {:>7.2} {:>9.1} {:>10.1} {:>7.1}%  {}", name, s, spread, t, s / t, gf, gf / s, 100.0 * gf / s / ceiling, kernels_of[name]);
        ours.insert(name.clone(), s);
        torch_times.insert(name.clone(), t);
    }
    println!("\nkernels: D = dense masked product, C = compact (active weights only), per weight layer");
    let (mut ours_sum, mut torch_sum) = (0.0, 0.0);
    for f in &fractions {
        let w = (f * 788.0).round() as i64;
        let (d, s) = (ours[&format!("dense w={w}")], ours[&format!("sparse 788 (f={f})")]);
        let tr = torch_times.get(&format!("sparse 788 (f={f})")).unwrap_or(&f64::NAN) / torch_times.get(&format!("dense w={w}")).unwrap_or(&f64::NAN);
        println!("sparse/dense epoch-time ratio at f={f}: sparselab {:.2}, pytorch {:.2}", s / d, tr);
        ours_sum += s / d;
        torch_sum += tr;
    }
    let k = fractions.len() as f64;
    println!("mean sparse/dense ratio over {} fraction(s): sparselab {:.2}, pytorch {:.2}", fractions.len(), ours_sum / k, torch_sum / k);
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// One run of the PyTorch script over every workload: seconds per epoch by name.
fn pytorch(py: &std::path::Path, dir: &std::path::Path, threads: usize, epochs: usize, workloads: &[(String, i64, Densities, Vec<i64>)]) -> anyhow::Result<Vec<(String, f64)>> {
    let mut cmd = Command::new(py);
    cmd.arg("benches/pytorch_reference.py").arg("--data").arg(dir).arg("--threads").arg(threads.to_string()).arg("--epochs").arg(epochs.to_string());
    for (name, w, dens, active) in workloads {
        let act = if matches!(dens, Densities::Uniform(_)) { "dense".to_string() } else { active.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",") };
        cmd.arg("--workload").arg(format!("{name}:{w}:{act}"));
    }
    let out = cmd.output()?;
    if !out.status.success() {
        eprintln!("pytorch reference failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|v| (v["name"].as_str().unwrap_or("").to_string(), v["seconds_per_epoch"].as_f64().unwrap_or(f64::NAN)))
        .collect())
}

/// Best rate of a 1024^3 float32 matmul on the configured threads, GFLOP/s.
fn sgemm_ceiling() -> f64 {
    let a = tch::Tensor::randn([1024, 1024], (tch::Kind::Float, tch::Device::Cpu));
    let mut best = f64::MAX;
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let _ = a.matmul(&a);
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * 1024f64.powi(3) / best / 1e9
}
