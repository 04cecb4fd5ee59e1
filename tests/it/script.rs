//! The script layer: documented examples run, docs are current, errors are exact,
//! imports resolve, --set overrides, manifests record the run.
use serde_json::Value;
use sparselab::script::{add_module_resolvers, api_markdown, coverage, engine, registered, signatures, ApiDoc, Context, API};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sparselab");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripts").join(name)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sparselab-script-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Runs a fixture; returns (exit code, stdout, stderr).
fn run(name: &str, args: &[&str]) -> (i32, String, String) {
    let out = tmp(name);
    let o = Command::new(BIN).arg("run").arg(fixture(name)).arg("--out").arg(&out).args(args).output().unwrap();
    let _ = std::fs::remove_dir_all(&out);
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
}

#[test]
fn every_documented_example_runs() {
    for doc in API {
        let out = tmp(&format!("example-{}", doc.name.replace([' ', '/'], "_")));
        let mut e = engine(Context::new(&out, false));
        add_module_resolvers(&mut e, Path::new("."));
        if !doc.not_run.is_empty() {
            // Not runnable here (it says why); it must still parse.
            if let Err(err) = e.compile(doc.example) {
                panic!("example of {} does not compile: {err}\n{}", doc.name, doc.example);
            }
            continue;
        }
        if let Err(err) = e.run(doc.example) {
            panic!("example of {} failed: {err}\n{}", doc.name, doc.example);
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn every_registered_function_is_documented_and_every_entry_is_registered() {
    let cov = coverage(&engine(Context::new(tmp("coverage"), true)), API);
    assert!(
        cov.is_complete(),
        "registered but without an ApiDoc entry (src/script/docs/table.rs):\n  {}\ndocumented but not registered:\n  {}",
        cov.undocumented.join("\n  "),
        cov.unregistered.join("\n  ")
    );
}

#[test]
fn coverage_reports_undocumented_functions_and_unregistered_entries() {
    let mut e = engine(Context::new(tmp("coverage-neg"), true));
    e.register_fn("zz_new", |x: i64| x + 1);
    e.register_get("zz_prop", |r: &mut sparselab::script::api_train::RunHandle| r.0.test_acc);
    let mut api: Vec<ApiDoc> = API.to_vec();
    api.push(ApiDoc { name: "ghost", usage: &["ghost(x)", "train(model, data, options, extra?)", "Run.nothing"], doc: "", options: &[], example: "", not_run: "" });
    let cov = coverage(&e, &api);
    assert_eq!(cov.undocumented, ["Run.zz_prop -> float", "zz_new(int) -> int"]);
    assert_eq!(cov.unregistered.len(), 3, "{:?}", cov.unregistered);
    assert!(cov.unregistered[0].starts_with("ghost: ghost(x) (no ghost with 1 parameter(s)"), "{:?}", cov.unregistered);
    assert!(cov.unregistered[1].contains("no train with 4 parameter(s)"), "{:?}", cov.unregistered);
    assert!(cov.unregistered[2].contains("no get$nothing with 1 parameter(s)"), "{:?}", cov.unregistered);
}

#[test]
fn signatures_come_from_the_registration_with_script_type_names() {
    let regs = registered(&engine(Context::new(tmp("signatures"), true)));
    let sigs = |name: &str| signatures(&regs, API.iter().find(|d| d.name == name).unwrap());
    assert_eq!(sigs("train"), ["train(model: Model, data: Dataset) -> Run", "train(model: Model, data: Dataset, options: map) -> Run"]);
    assert_eq!(sigs("sql"), ["DataFrame.sql(query: string) -> DataFrame"]);
    assert!(sigs("Run properties").contains(&"Run.test_acc -> float".to_string()));
    assert!(sigs("Run properties").contains(&"Run.diverged_epoch -> int or ()".to_string()));
    assert_eq!(sigs("save / load"), ["Model.save(path: string)", "Model.load(path: string)"]);
    // The kernel puts each signature in front, so a name's overloads arrive last first.
    let kernel: Vec<(String, String, String)> = sparselab::script::function_docs().into_iter().filter(|d| d.0 == "train").collect();
    assert_eq!(kernel.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(), ["train(model: Model, data: Dataset, options: map) -> Run", "train(model: Model, data: Dataset) -> Run"]);
    assert!(kernel[0].2.contains("| `optimizer` | `\"sgd\"` |"), "{}", kernel[0].2);
    let md = api_markdown();
    for raw in ["::", "&mut", "Result<", "Dynamic"] {
        assert!(!md.contains(raw), "docs/script-api.md shows a Rust type ({raw})");
    }
}

#[test]
fn committed_api_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/script-api.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == api_markdown(), "docs/script-api.md is stale: run `cargo run --release -- doc > docs/script-api.md`");
}

#[test]
fn config_errors_name_the_key_the_value_and_what_is_valid() {
    let cases = [
        ("unknown_key.rhai", "unknown_key.rhai:3:1: optimiser: unknown option for train (did you mean \"optimizer\"?); valid: "),
        ("wrong_type.rhai", "wrong_type.rhai:3:1: lr: expected a number, got \"fast\" (string)"),
        ("bad_density.rhai", "bad_density.rhai:2:11: density: fc1: 1.5 is outside (0, 1]"),
        ("unknown_optimizer.rhai", "unknown_optimizer.rhai:3:1: unknown optimizer \"adamm\" (did you mean \"adam\"?); valid: sgd, momentum, adam, adamw, adagrad, rmsprop"),
        ("unknown_activation.rhai", "unknown_activation.rhai:2:11: unknown activation \"relux\" (did you mean \"relu\"?); valid: relu, prelu, elu, swish, srelu, sigmoid, tanh, gelu"),
        ("unknown_kernel.rhai", "unknown_kernel.rhai:2:11: unknown kernel \"compct\" (did you mean \"compact\"?); valid: auto, dense, compact, measured"),
        ("escape_path.rhai", "escape_path.rhai:2:3: path: \"../escape.csv\" must be relative and inside the run directory"),
        ("cnn_space_shape.rhai", "cnn_space_shape.rhai:2:12: space: resnet32 expects 1x32x32 images, synthetic has 1x8x8"),
    ];
    for (file, want) in cases {
        let (code, _, err) = run(file, &[]);
        assert_eq!(code, 1, "{file}: {err}");
        assert!(err.contains(want), "{file}: expected {want:?} in\n{err}");
    }
}

#[test]
fn syntax_errors_point_at_line_and_column_with_an_excerpt() {
    let (code, _, err) = run("syntax_error.rhai", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("syntax_error.rhai:2:9: "), "{err}");
    assert!(err.contains("   2 | let x = ;\n"), "{err}");
    assert!(err.contains("       |         ^") || err.contains("           ^"), "{err}");
}

#[test]
fn imports_resolve_from_the_script_dir_then_the_embedded_stdlib() {
    let (code, out, err) = run("imports.rhai", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "local 42\ngrid 4\n");
}

#[test]
fn set_overrides_top_level_constants() {
    let (code, out, _) = run("overrides.rhai", &["--set", "epochs=2", "--set", "name=\"fast\""]);
    assert_eq!(code, 0);
    assert_eq!(out, "epochs=2 name=fast\n");
    let (code, _, err) = run("overrides.rhai", &["--set", "epochz=2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no top-level `const epochz = ...;` in the script; definable: epochs, name"), "{err}");
}

#[test]
fn manifest_records_script_sets_versions_seeds_and_times() {
    let out = tmp("manifest");
    let o = Command::new(BIN).args(["run"]).arg(fixture("manifest.rhai")).arg("--out").arg(&out).args(["--set", "seed=7"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "ok");
    assert_eq!(m["sets"], serde_json::json!(["seed=7"]));
    assert_eq!(m["seeds"], serde_json::json!([7]));
    assert_eq!(m["devices"], serde_json::json!(["cpu"]));
    assert_eq!(m["sparselab"], sparselab::version());
    assert!(m["script_text"].as_str().unwrap().starts_with("const seed = 7;\n"));
    assert_eq!(m["script_sha256"].as_str().unwrap().len(), 64);
    assert!(m["libtorch"].as_str().unwrap().starts_with("2.11.0"));
    assert!(m["started"].as_str().unwrap().ends_with('Z') && m["ended"].as_str().unwrap() >= m["started"].as_str().unwrap());
    assert!(out.join("history.csv").exists());
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn check_validates_without_writing_and_usage_errors_exit_2() {
    let o = Command::new(BIN).args(["check"]).arg(fixture("manifest.rhai")).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(BIN).args(["check"]).arg(fixture("bad_density.rhai")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let o = Command::new(BIN).args(["run", "--no-such-flag"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(BIN).args(["run", "/no/such/script.rhai"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn repl_keeps_variables_and_functions_and_continues_open_blocks() {
    use std::io::Write;
    let mut child = Command::new(BIN).arg("repl").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"let x = 40;\nfn add(a) {\n  a + 2\n}\nadd(x)\nlet y = x +\n 1;\ny\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.ends_with("42\n41\n"), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn ctrl_c_stops_at_the_next_batch_keeps_finished_runs_and_exits_130() {
    let out = tmp("sigint");
    let mut child = Command::new(BIN).arg("run").arg(fixture("long_sweep.rhai")).arg("--out").arg(&out).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Wait until the two short runs are stored (the first has the same identity as
    // the second: seed and epochs 1), i.e. the long run is training.
    let store = out.join("store");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&store).map(|r| r.flatten().filter(|e| e.path().extension().map(|x| x == "parquet").unwrap_or(false)).count()).unwrap_or(0) < 1 {
        assert!(start.elapsed().as_secs() < 120, "short runs never finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t0 = std::time::Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let o = {
        let status = child.wait().unwrap();
        (status, t0.elapsed())
    };
    assert_eq!(o.0.code(), Some(130));
    assert!(o.1.as_secs() < 10, "took {:?} to stop", o.1);
    let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "interrupted");
    // The finished run stays in the store; the interrupted one was not recorded.
    let records = std::fs::read_dir(&store).unwrap().flatten().filter(|e| e.path().extension().map(|x| x == "parquet").unwrap_or(false)).count();
    assert_eq!(records, 1);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn snas_accepts_a_script_function_as_searcher() {
    let out = tmp("snas-fn");
    let mut e = engine(Context::new(&out, false));
    add_module_resolvers(&mut e, Path::new("."));
    let code = r#"
        let data = dataset("synthetic", #{ train: 200, test: 50 });
        // Halve the first layer's density after every trial; keep the others.
        let s = snas(data, #{ depth: 2, width: 16, samples: 3,
                              search: |history| [0.8 / (1 << history.len()), 0.5, 0.5],
                              train: #{ epochs: 1, progress: false } });
        s.history.column("d1")
    "#;
    let d1: rhai::Array = e.eval(code).unwrap();
    let d1: Vec<f64> = d1.into_iter().map(|v| v.as_float().unwrap()).collect();
    // Densities are fitted to whole weights (k / n, n = 64 * 16 = 1024).
    assert_eq!(d1, vec![819.0 / 1024.0, 410.0 / 1024.0, 205.0 / 1024.0]);
    let bad = e.eval::<rhai::Dynamic>(r#"snas(dataset("synthetic"), #{ depth: 1, width: 8, samples: 1, search: |h| [0.5], train: #{ epochs: 1 } })"#).unwrap_err().to_string();
    assert!(bad.contains("point has 1 coordinates, the search space has 2"), "{bad}");
    let _ = std::fs::remove_dir_all(&out);
}
