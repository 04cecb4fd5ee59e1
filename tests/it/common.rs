//! Shared helpers (also used by tests/determinism.rs, hence the allow).
#![allow(dead_code)]
use sparselab::data::{Dataset, DatasetConfig, SyntheticConfig};
use sparselab::model::Model;
use sparselab::train::{DeviceSpec, TrainConfig};
use tch::Tensor;

/// A small seeded synthetic dataset: 512 train / 128 test, 1x8x8, 4 classes.
pub fn synthetic() -> Dataset {
    let mut cfg = DatasetConfig::new("synthetic");
    cfg.synthetic = SyntheticConfig { train: 512, test: 128, classes: 4, shape: [1, 8, 8], noise: 0.3, seed: 1 };
    Dataset::load(&cfg).expect("synthetic data")
}

/// CPU training, 2 epochs, batch 64, no progress output.
pub fn quick() -> TrainConfig {
    TrainConfig { epochs: 2, batch_size: 64, device: DeviceSpec::Cpu, ..TrainConfig::default() }
}

/// All variables by name, copied to CPU.
pub fn snapshot(m: &dyn Model) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = m.var_store().variables().into_iter().map(|(k, t)| (k, t.detach().to_device(tch::Device::Cpu).copy())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Largest difference relative to the largest entry of `b`.
pub fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-12);
    (a - b).abs().max().double_value(&[]) / scale
}

/// Asserts two snapshots are bit-identical.
pub fn assert_identical(a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs");
    }
}

/// libtorch's generator (dropout, augmentation, `randn`) is process-global and the
/// test harness runs tests on parallel threads: tests that draw from it, or that
/// check bit-for-bit reproducibility, hold this lock.
pub fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh directory `sparselab-<area>-<name>-<pid>` under the temp dir.
pub fn fresh_dir(area: &str, name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sparselab-{area}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Files in `dir` whose names end in `ext`, temp files (dot names) left out.
pub fn count_files(dir: &std::path::Path, ext: &str) -> usize {
    std::fs::read_dir(dir).map(|r| r.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(ext) && !e.file_name().to_string_lossy().starts_with('.')).count()).unwrap_or(0)
}
