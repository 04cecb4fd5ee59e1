//! The run session through real store round trips in child processes: each test is
//! named after a bug it pins (issue 15), runs `sparselab run` or `check` on a script
//! written here, and reads what the store and the process said.
use sparselab::results::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sparselab");

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sparselab-session-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `script` as `<dir>/<file>` and runs `sparselab <verb>` on it with `--out <dir>/out`
/// (for `run`), from `dir`.
fn sparselab(dir: &Path, verb: &str, file: &str, script: &str) -> Output {
    let path = dir.join(file);
    std::fs::write(&path, format!("{PRELUDE}\n{script}")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).arg(verb).arg(&path);
    if verb == "run" {
        cmd.arg("--out").arg(dir.join("out"));
    }
    cmd.output().expect("spawn sparselab")
}

/// Tiny synthetic data and settings every script shares.
const PRELUDE: &str = r#"
let data = dataset("synthetic", #{ train: 256, test: 64, classes: 4, seed: 3 });
let opts = #{ epochs: 2, batch_size: 64, lr: 0.05, device: "cpu", progress: false };
"#;

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
}

fn ok(o: &Output) -> (String, String) {
    let (out, err) = text(o);
    assert!(o.status.success(), "exit {:?}\nstdout:\n{out}\nstderr:\n{err}", o.status.code());
    (out, err)
}

/// Exit 1 with `want` in stderr; returns stderr.
fn fails_with(o: &Output, want: &str) -> String {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains(want), "expected {want:?} in:\n{err}");
    assert!(!err.contains("Exception raised from") && !err.contains("panicked"), "{err}");
    err
}

/// Finished records in the run's store (0 when it has none or does not exist).
fn records(dir: &Path) -> usize {
    let store = dir.join("out/store");
    if !store.exists() {
        return 0;
    }
    Store::open(&store).unwrap().frame().map(|f| f.height()).unwrap_or(0)
}

#[test]
fn pruned_model_is_not_answered_from_a_fresh_models_record() {
    let d = dir("pruned");
    // A store holding a fresh model trained with `opts`.
    ok(&sparselab(&d, "run", "fresh.rhai", "let b = mlp(data, #{ depth: 1, width: 16 }); train(b, data, opts);"));
    // The same model pruned to 0.1, then trained with `opts`: a new run, not the record.
    let script = r#"
        let b = mlp(data, #{ depth: 1, width: 16 });
        prune_train(b, data, #{ density: 0.1, epochs: 2, batch_size: 64, device: "cpu", progress: false });
        train(b, data, opts);
        print(b.densities());
    "#;
    let (out, err) = ok(&sparselab(&d, "run", "pruned.rhai", script));
    assert!(!err.contains("reused"), "{err}");
    // round(0.1 x 1024) = 102 of fc1's 64x16 weights, round(0.1 x 64) = 6 of fc2's 16x4.
    assert_eq!(out.trim(), format!("[{}, {}]", 102.0 / 1024.0, 6.0 / 64.0));
    assert_eq!(records(&d), 3); // fresh train, prune_train, train of the pruned model
                                // Rerun: every run is reused and the pruned model is still pruned.
    let (out, err) = ok(&sparselab(&d, "run", "pruned.rhai", script));
    assert_eq!(err.matches("reused").count(), 2, "{err}");
    assert_eq!(out.trim(), format!("[{}, {}]", 102.0 / 1024.0, 6.0 / 64.0));
}

#[test]
fn loaded_model_is_not_answered_from_a_fresh_models_record() {
    let d = dir("loaded");
    let script = r#"
        let a = mlp(data, #{ depth: 1, width: 16, seed: 7 });
        train(a, data, #{ epochs: 3, batch_size: 64, lr: 0.05, device: "cpu", progress: false });
        a.save("a.safetensors");
        let fresh = mlp(data, #{ depth: 1, width: 16 });
        let r1 = train(fresh, data, opts);
        let b = mlp(data, #{ depth: 1, width: 16 });
        b.load("a.safetensors");
        let r2 = train(b, data, opts);
        print(r1.test_loss == r2.test_loss);
    "#;
    let (out, err) = ok(&sparselab(&d, "run", "loaded.rhai", script));
    assert!(!err.contains("reused"), "{err}");
    assert_eq!(out.trim(), "false");
    assert_eq!(records(&d), 3);
}

#[test]
fn snas_best_model_is_not_answered_from_another_best_models_record() {
    let d = dir("snas-best");
    let script = r#"
        let s0 = snas(data, #{ depth: 1, width: 16, samples: 2, seed: 0, search: "random", validation: 0.25, train: opts });
        let s1 = snas(data, #{ depth: 1, width: 16, samples: 2, seed: 1, search: "random", validation: 0.25, train: opts });
        let r0 = train(s0.best.model, data, opts);
        let r1 = train(s1.best.model, data, opts);
        print(`${r0.test_loss} ${r1.test_loss}`);
    "#;
    let (first, err) = ok(&sparselab(&d, "run", "snas_best.rhai", script));
    assert!(!err.contains("reused"), "{err}");
    let losses: Vec<&str> = first.split_whitespace().collect();
    assert_ne!(losses[0], losses[1], "two different best models gave one result");
    assert_eq!(records(&d), 6); // 4 trials, 2 trainings
                                // Rerun: the trials and both trainings are reused with the same numbers.
    let (again, err) = ok(&sparselab(&d, "run", "snas_best.rhai", script));
    assert_eq!(err.matches("reused").count(), 2, "{err}");
    assert_eq!(again, first);
}

#[test]
fn check_runs_every_call_on_one_batch_and_writes_nothing() {
    let d = dir("check");
    // 250 examples in each split, batches of 64: accuracies on one batch are
    // multiples of 1/64, on the whole split multiples of 1/250.
    let script = r#"
        let d250 = dataset("synthetic", #{ train: 250, test: 250, classes: 4, seed: 3 });
        let long = #{ epochs: 500, batch_size: 64, device: "cpu", progress: false };
        let r = train(mlp(d250, #{ depth: 1, width: 16 }), d250, long);
        let p = prune_train(mlp(d250, #{ depth: 1, width: 16 }), d250, #{ density: 0.5, epochs: 500, batch_size: 64, device: "cpu", progress: false });
        let s = sc_sdc(d250, #{ depth: 1, max_width: 20, fractions: [0.5], seeds: [0], epochs: 500, batch_size: 64, device: "cpu", progress: false });
        let n = snas(d250, #{ depth: 1, width: 16, samples: 5, search: "random", train: long });
        print(`${r.history.height()} ${p.history.height()} ${s.runs.height()} ${n.history.column("epochs")}`);
        print(`${r.test_acc} ${p.test_acc} ${s.runs.column("test_acc")}`);
    "#;
    let (out, _) = ok(&sparselab(&d, "check", "check.rhai", script));
    let mut lines = out.lines();
    // One epoch each; prune_train one dense and one fine-tuning epoch; both twins; two of the five trials.
    assert_eq!(lines.next().unwrap().trim(), "1 2 2 [1, 1]");
    let accs: Vec<f64> = lines.next().unwrap().replace(['[', ']', ','], " ").split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert_eq!(accs.len(), 4);
    for a in accs {
        assert!((a * 64.0 - (a * 64.0).round()).abs() < 1e-9, "accuracy {a} is not over one batch of 64");
    }
    assert!(!d.join("runs").exists() && !d.join("out").exists(), "check wrote a run directory");
}

#[test]
fn grid_with_a_typo_in_the_last_axis_value_trains_nothing() {
    let d = dir("grid-typo");
    let script = r#"
        sc_sdc_grid(data, #{ depth: 1, max_width: 20, fractions: [0.5], seeds: [0], epochs: 1, batch_size: 64, device: "cpu", progress: false },
                    #{ optimizer: ["adam", "momentum", "adamm"] });
    "#;
    let err = fails_with(&sparselab(&d, "run", "grid.rhai", script), r#"unknown optimizer "adamm" (did you mean "adam"?)"#);
    assert!(!err.contains("grid: "), "a cell ran before the error:\n{err}");
    assert_eq!(records(&d), 0);
}

#[test]
fn prune_train_with_density_0_fails_before_the_dense_phase() {
    let d = dir("prune-0");
    let script = r#"prune_train(mlp(data, #{ depth: 1, width: 16 }), data, #{ density: 0, epochs: 2, device: "cpu", progress: true });"#;
    let err = fails_with(&sparselab(&d, "run", "prune.rhai", script), "density: 0 is outside (0, 1]");
    assert!(!err.contains("epoch 1/"), "the dense phase trained:\n{err}");
    assert_eq!(records(&d), 0);
}

#[test]
fn synthetic_with_zero_classes_is_an_error_not_a_panic() {
    let d = dir("classes-0");
    fails_with(&sparselab(&d, "run", "c.rhai", r#"dataset("synthetic", #{ classes: 0 });"#), "classes: 0 is outside 2..=100000");
}

#[test]
fn mlp_too_large_for_memory_is_an_error_not_an_abort() {
    let d = dir("huge");
    let err = fails_with(&sparselab(&d, "run", "h.rhai", "mlp(data, #{ width: 100000000 });"), "width: an MLP 64-4x100000000-4 has 30000006800000000 weights");
    assert!(err.contains("of memory available; use a smaller width or depth"), "{err}");
}

#[test]
fn train_limit_0_is_an_error_not_a_diverged_run() {
    let d = dir("limit-0");
    fails_with(&sparselab(&d, "run", "l.rhai", r#"dataset("synthetic", #{ train_limit: 0 });"#), "train_limit: 0 must be >= 1");
}

#[test]
fn snas_on_five_examples_is_an_error_not_all_zero_scores() {
    let d = dir("snas-5");
    let script = r#"snas(dataset("synthetic", #{ train: 5, test: 8, classes: 4 }), #{ depth: 1, width: 8, samples: 2, validation: 0.1 });"#;
    fails_with(&sparselab(&d, "run", "s.rhai", script), "validation: 0.1 of 5 training examples leaves 1 for validation and 4 for training; scoring needs at least 4 validation examples");
    assert_eq!(records(&d), 0);
}

#[test]
fn loading_a_model_of_another_shape_is_one_line_naming_the_tensor() {
    let d = dir("load-shape");
    let script = r#"
        mlp(data, #{ depth: 1, width: 8 }).save("small.safetensors");
        let big = mlp(data, #{ depth: 1, width: 16 });
        big.load("small.safetensors");
    "#;
    let err = fails_with(&sparselab(&d, "run", "load.rhai", script), r#"tensor "fc1.bias" has shape [8] in the file, [16] in the model: saved from a model of another shape"#);
    // file:line:col: message, the line, the caret.
    assert_eq!(err.trim_end().lines().count(), 3, "{err}");
}

#[test]
fn a_store_of_another_format_is_a_clear_error() {
    let d = dir("format");
    let store = d.join("out/store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("0123.json"), "{}").unwrap(); // a format-1 store: records, no FORMAT file
    let err = fails_with(&sparselab(&d, "run", "f.rhai", "print(1);"), "this run store has format 1; sparselab");
    assert!(err.contains("reads format 3"), "{err}");
}

/// A long sweep's progress lines say which networks they are about. The labels are
/// worked out by hand from the study: at max width 20 the f = 0.7 and 0.9 sparse twins
/// (densities 0.49-0.9, dense kernels) share a shape and train as one ensemble; the
/// dense twins (widths 14 and 18) train apart; groups keep the jobs' order.
#[test]
fn progress_lines_of_studies_name_the_networks_they_belong_to() {
    let d = dir("labels");
    let script = r#"
        let p = #{ epochs: 1, batch_size: 64, device: "cpu", progress: true };
        sc_sdc(data, p + #{ depth: 1, max_width: 20, fractions: [0.7, 0.9], seeds: [0, 1] });
        snas(data, #{ samples: 2, search: "random", depth: 1, width: 16, train: p });
        prune_train(mlp(data, #{ depth: 1, width: 16 }), data, p + #{ density: 0.5, epochs: 2 });
        compare_methods(data, p + #{ methods: ["static", "snip"], densities: [0.5], seeds: [3], depth: 1, width: 16 });
        train(mlp(data, #{ depth: 1, width: 16 }), data, p);
    "#;
    let (_, err) = ok(&sparselab(&d, "run", "labels.rhai", script));
    let prefixes: Vec<&str> = err.lines().filter_map(|l| l.find("epoch 1/").map(|at| &l[..at])).collect();
    let want = [
        "SC-SDC 1/3: sparse f=0.7,0.9 seeds 0-1  ",
        "SC-SDC 2/3: dense f=0.7 seeds 0-1  ",
        "SC-SDC 3/3: dense f=0.9 seeds 0-1  ",
        "SNAS trial 0 (of 2)  ",
        "SNAS trial 1 (of 2)  ",
        "magnitude pruning: dense phase  ",
        "magnitude pruning: fine-tuning at density 0.5  ",
        "methods 1/2: static density 0.5 seed 3  ",
        "methods 2/2: snip density 0.5 seed 3  ",
        // A plain run, outside any study, keeps the plain line.
        "",
    ];
    assert_eq!(prefixes, want, "{err}");
}
