//! Every experiment script that can run on CPU runs at tiny settings (`--set`) and
//! writes its tables and charts. The full settings are documented in each script.
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sparselab");

fn run_script(name: &str, sets: &[&str], expect: &[&str]) {
    let out: PathBuf = std::env::temp_dir().join(format!("sparselab-scripts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(format!("{name}.rhai"));
    let mut cmd = Command::new(BIN);
    cmd.arg("run").arg(&script).arg("--out").arg(&out);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{name} failed:\n{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    for f in expect {
        let p = out.join(f);
        assert!(p.exists() && std::fs::metadata(&p).unwrap().len() > 0, "{name}: {f} missing");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn quickstart() {
    run_script("quickstart", &["epochs=1"], &["summary.csv", "history.parquet", "learning_curves.png", "manifest.json"]);
}

#[test]
fn sc_sdc_fmnist_tiny() {
    let sets = ["epochs=1", "subset=\"bundled\"", "train_limit=600", "optimizers=[\"adam\"]", "regularization=[\"NR\", \"BN\"]", "seeds=[0, 1]", "fractions=[0.1, 0.5]"];
    run_script("sc_sdc_fmnist", &sets, &["table_a1.csv", "table_a1.png", "table_a1.svg", "runs.parquet", "accuracy_vs_width.png"]);
}

#[test]
fn egf_correlation_tiny() {
    let sets = ["epochs=1", "subset=\"bundled\"", "train_limit=600", "optimizers=[\"sgd\", \"adam\"]", "regularization=[\"NR\"]", "fractions=[0.1, 0.5]"];
    run_script("egf_correlation", &sets, &["table_3_1.csv", "table_3_1.png", "egf2_vs_accuracy.png"]);
}

#[test]
fn snas_mlp_tiny() {
    let sets = ["samples=3", "epochs=2", "subset=\"bundled\"", "train_limit=1000", "depth=2", "width=64", "search=\"random\""];
    run_script("snas_mlp", &sets, &["history.csv", "best_densities.png", "trajectory.png", "pareto.png", "best_model.safetensors"]);
}

#[test]
fn magnitude_pruning_tiny() {
    run_script("magnitude_pruning", &["epochs=2", "subset=\"bundled\"", "densities=[0.2]"], &["pruning.csv", "pruning.png"]);
}

#[test]
fn methods_fmnist_tiny() {
    let sets = ["epochs=1", "subset=\"bundled\"", "train_limit=600", "seeds=[0, 1]", "width=64"];
    run_script("methods_fmnist", &sets, &["tests.csv", "runs.parquet", "summary.csv", "accuracy_vs_density.png"]);
}

#[test]
fn cnn_scripts_parse() {
    // CIFAR scripts are GPU work; CI checks they compile.
    for name in ["snas_cnn", "wrn_density_sweep"] {
        let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(format!("{name}.rhai"))).unwrap();
        rhai::Engine::new().compile(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
