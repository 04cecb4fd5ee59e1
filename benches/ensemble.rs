//! SC-SDC study throughput: batched ensembles vs one network at a time vs PyTorch.
//!
//! `cargo bench --bench ensemble` (env: SPARSELAB_BENCH_THREADS=2, SPARSELAB_BENCH_EPOCHS=1,
//! SPARSELAB_BENCH_FRACTIONS=0.1,0.3,0.5,0.7,0.9, SPARSELAB_BENCH_SEEDS=3,
//! SPARSELAB_BENCH_DEVICE=cpu|cuda, SPARSELAB_BENCH_TRAIN_LIMIT=0 (all 60,000),
//! SPARSELAB_BENCH_TORCH=1). One SC-SDC study of the report's Fashion-MNIST setting
//! (784 -> 4 hidden -> 10, ReLU, no bias, batch 128, SGD momentum 0.9, lr 0.001):
//! 2 x fractions x seeds networks, trained by `sc_sdc` with `ensemble: 1` (one by
//! one) and with the default cap (batched), and by the PyTorch script
//! (benches/pytorch_reference.py, masked sparse twins, one by one) on the same
//! device and threads. Prints networks x epochs per second for each.
use sparselab::data::{search_path, Dataset, DatasetConfig, Subset};
use sparselab::experiment::{dense_widths, ensemble_groups, sc_sdc, twins, InitFan, ScSdcConfig, ENSEMBLE_MEMBERS};
use sparselab::model::{Kernel, MlpConfig};
use sparselab::train::{DeviceSpec, OptimizerConfig, OptimizerKind, TrainConfig};
use std::process::Command;
use std::time::Instant;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn main() -> anyhow::Result<()> {
    // The mode `sparselab` runs in (SPARSELAB_REPRODUCIBLE, default avx2), set before
    // libtorch or MKL computes anything, as the binary does.
    if let Some(w) = sparselab::repro::init() {
        eprintln!("warning: {w}");
    }
    let threads: usize = env("SPARSELAB_BENCH_THREADS", 2);
    let epochs: usize = env("SPARSELAB_BENCH_EPOCHS", 1);
    let seeds: u64 = env("SPARSELAB_BENCH_SEEDS", 3);
    let limit: usize = env("SPARSELAB_BENCH_TRAIN_LIMIT", 0);
    let device = DeviceSpec::parse(&env("SPARSELAB_BENCH_DEVICE", "cpu".to_string()))?;
    let fractions: Vec<f64> = std::env::var("SPARSELAB_BENCH_FRACTIONS").unwrap_or_else(|_| "0.1,0.3,0.5,0.7,0.9".into()).split(',').filter_map(|f| f.parse().ok()).collect();
    let Some(dir) = search_path("fashion-mnist", None).into_iter().find(|d| d.join("t10k-labels-idx1-ubyte.gz").exists()) else {
        anyhow::bail!("the benchmark needs the full Fashion-MNIST IDX files (apt-get install dataset-fashion-mnist)");
    };
    tch::set_num_threads(threads as i32);
    let mut dcfg = DatasetConfig::new("fashion-mnist").with_subset(Subset::Full);
    if limit > 0 {
        dcfg = dcfg.with_train_limit(limit);
    }
    let data = Dataset::load(&dcfg)?;
    let dev = device.resolve()?;
    let base = MlpConfig { bias: false, ..MlpConfig::new(784, 10, 4, 1) };
    let train = TrainConfig { optimizer: OptimizerConfig { kind: OptimizerKind::Momentum, lr: 0.001, ..Default::default() }, epochs, device, threads: Some(threads), ..Default::default() };
    let cfg = ScSdcConfig { base: base.clone(), max_width: None, fractions: fractions.clone(), seeds: (0..seeds).collect(), init_fan: InitFan::Dense, train, ensemble: ENSEMBLE_MEMBERS };
    let nets = 2 * fractions.len() * seeds as usize;
    println!(
        "sparselab ensemble benchmark: one SC-SDC study, {nets} networks, Fashion-MNIST {} train, {epochs} epoch(s), {threads} threads, {}, reproducible mode {}\n",
        data.train.len(),
        sparselab::train::device_name(dev),
        sparselab::repro::mode()
    );

    // The groups the batched study forms.
    let widths = dense_widths(788, &fractions);
    let mut models = Vec::new();
    for (_, &w) in fractions.iter().zip(&widths) {
        for seed in 0..seeds {
            let t = twins(&MlpConfig { seed, ..base.clone() }, w, 788, InitFan::Dense)?;
            models.extend([t.sparse, t.dense]);
        }
    }
    println!("ensembles (cap {ENSEMBLE_MEMBERS}):");
    for g in ensemble_groups(&models, dev, ENSEMBLE_MEMBERS)? {
        let m = &models[g[0]];
        let kernels: String = m.kernels()?.iter().map(|k| if *k == Kernel::Compact && dev == tch::Device::Cpu { 'C' } else { 'D' }).collect();
        println!("  {:>2} x width {:>3} {}  kernels {kernels}", g.len(), m.width, if m.width == 788 { "sparse" } else { "dense " });
    }

    let mut timed = Vec::new();
    for (label, cap) in [("one by one", 1), ("batched", ENSEMBLE_MEMBERS)] {
        let t = Instant::now();
        let r = sc_sdc(&data, &ScSdcConfig { ensemble: cap, ..cfg.clone() }, &sparselab::experiment::Session::new(), |_| {})?;
        timed.push((label, t.elapsed().as_secs_f64(), r));
    }
    let torch = if env("SPARSELAB_BENCH_TORCH", 1) == 1 { pytorch(&dir, threads, epochs, limit, &fractions, &widths, dev)? * seeds as f64 } else { f64::NAN };

    println!("\n{:<26} {:>10} {:>18} {:>9}", "", "seconds", "networks*epochs/s", "speed-up");
    let base_s = timed[0].1;
    for (label, s, _) in &timed {
        println!("{:<26} {:>10.1} {:>18.3} {:>9.2}", format!("sparselab {label}"), s, (nets * epochs) as f64 / s, base_s / s);
    }
    println!("{:<26} {:>10.1} {:>18.3} {:>9.2}", "pytorch one by one", torch, (nets * epochs) as f64 / torch, base_s / torch);
    let diff = timed[0].2.runs.iter().zip(&timed[1].2.runs).map(|(a, b)| (a.run.test_acc - b.run.test_acc).abs()).fold(0.0, f64::max);
    println!("\nlargest |test accuracy difference| between one-by-one and batched runs: {diff:.4}");
    Ok(())
}

/// PyTorch's seconds for one seed of the study (every workload once).
fn pytorch(dir: &std::path::Path, threads: usize, epochs: usize, limit: usize, fractions: &[f64], widths: &[i64], dev: tch::Device) -> anyhow::Result<f64> {
    let Some(py) = std::fs::canonicalize(".libtorch").ok().map(|p| p.join("../../../../bin/python")).filter(|p| p.exists()) else {
        eprintln!("no PyTorch found next to .libtorch: run .ci/setup");
        return Ok(f64::NAN);
    };
    let mut cmd = Command::new(py);
    cmd.arg("benches/pytorch_reference.py").arg("--data").arg(dir).arg("--threads").arg(threads.to_string()).arg("--epochs").arg(epochs.to_string());
    cmd.arg("--train-limit").arg(limit.to_string()).arg("--device").arg(sparselab::train::device_name(dev));
    for (f, w) in fractions.iter().zip(widths) {
        let active = [784 * w, w * w, w * w, w * w, w * 10].map(|k| k.to_string()).join(",");
        cmd.arg("--workload").arg(format!("dense {f}:{w}:dense")).arg("--workload").arg(format!("sparse {f}:788:{active}"));
    }
    let out = cmd.output()?;
    if !out.status.success() {
        eprintln!("pytorch reference failed: {}", String::from_utf8_lossy(&out.stderr));
        return Ok(f64::NAN);
    }
    let mut total = 0.0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            total += v["seconds_per_epoch"].as_f64().unwrap_or(f64::NAN) * epochs as f64;
        }
    }
    Ok(total)
}
