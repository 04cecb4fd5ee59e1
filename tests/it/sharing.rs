//! Sharing a study, through the binary as a colleague would use it: data files name
//! runs by their content, `verify` reruns records, `pack`/`unpack` carry a study, and
//! the reproducible mode gives the same bits across thread counts and processes.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sparselab");
const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fashion-mnist-subset");

fn tmp(name: &str) -> PathBuf {
    let d = super::common::fresh_dir("share", name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `sparselab ARGS` in `dir` with its own hash cache; (exit code, stdout, stderr).
fn sl(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.current_dir(dir).args(args).env("SPARSELAB_CACHE", dir.join("cache"));
    for (k, v) in env {
        c.env(k, v);
    }
    let o: Output = c.output().expect("spawn sparselab");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

fn records(store: &Path) -> Vec<Value> {
    let mut keys: Vec<String> = std::fs::read_dir(store).unwrap().flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".parquet")).map(str::to_string)).collect();
    keys.sort();
    keys.iter().map(|k| serde_json::from_str(&std::fs::read_to_string(store.join(format!("{k}.json"))).unwrap()).unwrap()).collect()
}

/// Two small runs on a copy of the bundled files read as "full" data from `d/`.
const SCRIPT: &str = r#"
let data = dataset("fashion-mnist", #{ subset: "full", root: "d", train_limit: 400 });
for w in [8, 12] {
    let net = mlp(data, #{ depth: 1, width: w, seed: 1 });
    let r = train(net, data, #{ epochs: 1, batch_size: 50, progress: false });
    print(`width ${w}: ${r.test_acc}`);
}
"#;

fn study(name: &str) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("d/fashion-mnist")).unwrap();
    for f in std::fs::read_dir(BUNDLED).unwrap().flatten().filter(|f| f.file_name().to_string_lossy().ends_with(".gz")) {
        std::fs::copy(f.path(), dir.join("d/fashion-mnist").join(f.file_name())).unwrap();
    }
    std::fs::write(dir.join("small.rhai"), SCRIPT).unwrap();
    dir
}

/// A changed data file gives new keys, and the run says which file differs; the
/// files' hashes are the ones `sha256sum` gives, cached by path, size and mtime.
#[test]
fn a_changed_data_file_gives_new_keys_and_names_the_file() {
    let dir = study("data");
    let (code, _, err) = sl(&dir, &["run", "small.rhai"], &[]);
    assert_eq!(code, 0, "{err}");
    let first = records(&dir.join("runs/small/store"));
    assert_eq!(first.len(), 2);
    let files = &first[0]["spec"]["data"]["files"];
    // sha256sum data/fashion-mnist-subset/*.gz
    assert_eq!(files[1], serde_json::json!({ "file": "t10k-labels-idx1-ubyte.gz", "sha256": "4f81dd80fbbee90c38545ee999e120b1c191bf127f0aa516f21ef7e023d316a9" }));
    assert_eq!(files[2]["sha256"], "8cdd6eb3db9f71d038db812672f156fd89a164a94f767144b5586d415d3cfa4f");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("runs/small/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["data"][0]["files"], *files, "the manifest names the data files too");

    // The cache is consulted: a planted hash for an unchanged path, size and mtime is
    // believed (so a rerun hashes nothing) ...
    let cache_file = dir.join("cache/data-hashes.json");
    let mut cache: Value = serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
    let labels = std::fs::canonicalize(dir.join("d/fashion-mnist/t10k-labels-idx1-ubyte.gz")).unwrap().display().to_string();
    assert_eq!(cache[&labels]["sha256"], files[1]["sha256"]);
    cache[&labels]["sha256"] = "0".repeat(64).into();
    std::fs::write(&cache_file, cache.to_string()).unwrap();
    let (_, _, err) = sl(&dir, &["run", "small.rhai"], &[]);
    assert!(err.contains("t10k-labels-idx1-ubyte.gz: sha256 000000000000 here, 4f81dd80fbbe in the store"), "{err}");
    // ... and a new mtime makes it hash again: the original keys are reused.
    std::fs::write(&cache_file, "{}").unwrap();
    let (_, _, err) = sl(&dir, &["run", "small.rhai"], &[]);
    assert_eq!(err.matches("from the store (").count(), 2, "{err}");

    // Change one test label: new keys, and the file is named.
    let path = dir.join("d/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()), &mut raw).unwrap();
    raw[8] = (raw[8] + 1) % 10;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let (code, _, err) = sl(&dir, &["run", "small.rhai"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("fashion-mnist here is not the data the store's runs were trained on"), "{err}");
    assert!(err.contains("t10k-labels-idx1-ubyte.gz: sha256") && !err.contains("train-images"), "only the changed file is named: {err}");
    assert_eq!(err.matches("from the store (").count(), 0, "{err}");
    let after = records(&dir.join("runs/small/store"));
    assert_eq!(after.len(), 6, "two new keys beside the two old records and the two of the planted hash");

    // verify, against the changed files, says why the old records are not reached.
    let (code, out, _) = sl(&dir, &["verify", "runs/small", "--json"], &[]);
    assert_eq!(code, 3, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let unreached: Vec<&Value> = report["verdicts"].as_array().unwrap().iter().filter(|v| v["outcome"] == "not_reached").collect();
    assert_eq!(unreached.len(), 4, "{out}");
    assert!(unreached.iter().all(|v| v["note"].as_str().unwrap().contains("its data differs from the files read here: t10k-labels-idx1-ubyte.gz")), "{out}");
}

/// verify: identical on a fresh rerun; "different", naming the field, for a record
/// whose spec or result was edited; --sample draws that many.
#[test]
fn verify_reports_identical_and_names_what_was_tampered_with() {
    let dir = study("verify");
    let (code, _, err) = sl(&dir, &["run", "small.rhai"], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = sl(&dir, &["verify", "runs/small", "--json"], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("only the report on stdout (the script's prints are silenced)");
    let verdicts = report["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    assert!(verdicts.iter().all(|v| v["outcome"] == "identical" && v["environment"].as_array().unwrap().is_empty()), "{out}");

    let store = dir.join("runs/small/store");
    let recs = records(&store);
    let (a, b) = (recs[0]["key"].as_str().unwrap().to_string(), recs[1]["key"].as_str().unwrap().to_string());
    let edit = |key: &str, f: &dyn Fn(&mut Value)| {
        let p = store.join(format!("{key}.json"));
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, v.to_string()).unwrap();
    };
    edit(&a, &|v| v["spec"]["train"]["optimizer"]["lr"] = 0.5.into());
    edit(&b, &|v| v["run"]["test_acc"] = (v["run"]["test_acc"].as_f64().unwrap() + 0.25).into());
    let (code, out, _) = sl(&dir, &["verify", "runs/small", "--json"], &[]);
    assert_eq!(code, 3, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let by_key = |k: &str| report["verdicts"].as_array().unwrap().iter().find(|v| v["key"] == k).unwrap().clone();
    let (va, vb) = (by_key(&a), by_key(&b));
    assert_eq!(va["outcome"], "different");
    assert_eq!(va["spec_differences"][0], "train.optimizer.lr: 0.5 stored -> 0.01 here", "{va}");
    assert_eq!(vb["outcome"], "different");
    assert_eq!(vb["field"], "test_acc", "{vb}");
    assert!((vb["max_difference"].as_f64().unwrap() - 0.25).abs() < 1e-9, "{vb}");
    let (_, table, _) = sl(&dir, &["verify", "runs/small"], &[]);
    assert!(table.contains("NOT reproduced: 0 identical, 0 within tolerance, 2 different, 0 not reached"), "{table}");

    let (_, out, _) = sl(&dir, &["verify", "runs/small", "--sample", "1", "--json"], &[]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verdicts"].as_array().unwrap().len(), 1);
    assert_eq!(report["records"], 2);
    let (code, _, err) = sl(&dir, &["verify", "runs/small", "--sample", "0"], &[]);
    assert!(code != 0 && err.contains("--sample"), "{err}");
}

/// pack in one place, unpack in another with the original script and its module
/// gone: the rerun reuses every record and verify passes; an altered file inside the
/// archive is refused by name.
#[test]
fn a_packed_study_reruns_elsewhere_with_every_record_reused() {
    let dir = study("pack");
    std::fs::write(dir.join("helpers.rhai"), "fn width(i) { 8 + 4 * i }\n").unwrap();
    let script = SCRIPT.replace("for w in [8, 12] {", "import \"helpers\" as h;\nimport \"report\" as report;\nfor i in 0..2 {\n    let w = h::width(i);");
    std::fs::write(dir.join("small.rhai"), script).unwrap();
    let (code, _, err) = sl(&dir, &["run", "small.rhai"], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = sl(&dir, &["pack", "runs/small", "-o", "small.tar.gz"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("packed 2 records (2 with weights)") && out.contains("[\"helpers\", \"report\"]"), "{out}");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("runs/small/manifest.json")).unwrap()).unwrap();
    let from: Vec<(&str, &str)> = manifest["modules"].as_array().unwrap().iter().map(|m| (m["name"].as_str().unwrap(), m["from"].as_str().unwrap())).collect();
    assert_eq!(from, vec![("helpers", "script folder"), ("report", "stdlib")]);
    // A module edited after the run is packed as it is now, with a warning.
    std::fs::write(dir.join("helpers.rhai"), "fn width(i) { 8 + 4 * i } // edited\n").unwrap();
    let (code, _, err) = sl(&dir, &["pack", "runs/small", "-o", "edited.tar.gz"], &[]);
    assert!(code == 0 && err.contains("module helpers: the text packed"), "{err}");

    let there = tmp("pack-there");
    std::fs::rename(dir.join("d"), there.join("d")).unwrap();
    std::fs::rename(dir.join("small.tar.gz"), there.join("small.tar.gz")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let (code, out, err) = sl(&there, &["unpack", "small.tar.gz"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("every hash checked, into small"), "{out}");
    for f in ["small.rhai", "helpers.rhai", "report.rhai", "manifest.json", "store/FORMAT", "PACK.json"] {
        assert_eq!(there.join("small").join(f).is_file(), f != "PACK.json", "{f}");
    }
    let (code, _, err) = sl(&there, &["run", "small/small.rhai", "--out", "small"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("from the store (").count(), 2, "every record reused: {err}");
    assert!(!err.contains("epoch"), "nothing trained: {err}");
    assert_eq!(records(&there.join("small/store")).len(), 2);
    let (code, out, err) = sl(&there, &["verify", "small"], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("reproduced: 2 identical"), "{out}");
    let (code, _, err) = sl(&there, &["unpack", "small.tar.gz"], &[]);
    assert!(code != 0 && err.contains("exists and is not empty"), "{err}");

    // Alter one record inside the archive (keeping its index): unpack names it and
    // leaves nothing behind.
    let work = there.join("altered");
    std::fs::create_dir_all(&work).unwrap();
    assert!(Command::new("tar").arg("-xzf").arg(there.join("small.tar.gz")).arg("-C").arg(&work).status().unwrap().success());
    let rec = std::fs::read_dir(work.join("store")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().ends_with(".json")).unwrap();
    let mut text = std::fs::read_to_string(rec.path()).unwrap();
    text = text.replacen("\"test_acc\":", "\"test_acc\": ", 1);
    std::fs::write(rec.path(), text).unwrap();
    assert!(Command::new("tar").arg("-czf").arg(there.join("altered.tar.gz")).arg("-C").arg(&work).arg(".").status().unwrap().success());
    let (code, _, err) = sl(&there, &["unpack", "altered.tar.gz", "-o", "altered-out"], &[]);
    let name = rec.file_name().to_string_lossy().to_string();
    assert!(code != 0 && err.contains(&format!("store/{name}: sha256")) && err.contains("does not match"), "{err}");
    assert!(!there.join("altered-out").exists());
}

/// The reproducible modes pin MKL's branch: AVX2 (strict) gives the same bits across
/// thread counts and processes, the compatible branch across processes, for a network
/// with BatchNorm (whose libtorch kernel splits by thread), a sparse layer, Adam and
/// gradient-flow measurement. With the mode off the record says so.
#[test]
fn reproducible_modes_give_the_same_bits_across_thread_counts_and_processes() {
    let dir = tmp("repro");
    std::fs::write(
        dir.join("bn.rhai"),
        r#"
const threads = 1;
let data = dataset("fashion-mnist", #{ subset: "bundled", train_limit: 1500 });
let net = mlp(data, #{ depth: 2, width: 96, density: 0.5, batch_norm: true, seed: 1 });
train(net, data, #{ optimizer: "adam", lr: 0.001, epochs: 2, progress: false, threads: threads, grad_flow: #{ points: 2, samples: 500 } });
"#,
    )
    .unwrap();
    let result = |mode: &str, threads: usize| -> Value {
        let out = format!("out-{mode}-{threads}");
        let (code, _, err) = sl(&dir, &["run", "bn.rhai", "--fresh", "--out", &out, "--set", &format!("threads={threads}")], &[("SPARSELAB_REPRODUCIBLE", mode)]);
        assert_eq!(code, 0, "{err}");
        let mut rec = records(&dir.join(&out).join("store")).remove(0);
        strip_times(&mut rec["run"]);
        rec
    };
    let (one, two, again) = (result("avx2", 1), result("avx2", 2), result("avx2", 2));
    // MKL takes the AVX2 branch on Intel CPUs only; on others (an AMD EPYC here) it keeps
    // its own branch and reports AUTO, but STRICT still holds: the same bits across
    // thread counts and processes on the machine (docs/reproducibility.md).
    let mkl = one["env"]["mkl"].as_str().unwrap_or_default().to_string();
    if std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().contains("GenuineIntel") {
        assert_eq!(mkl, "AVX2,STRICT");
    } else {
        assert!(mkl == "AVX2,STRICT" || (mkl.starts_with("AUTO") && mkl.ends_with(",STRICT")), "{mkl}");
    }
    assert_eq!(one["env"]["reproducible"], "avx2");
    assert_eq!(one["run"], two["run"], "avx2: 1 and 2 threads differ");
    assert_eq!(two["run"], again["run"], "avx2: two processes differ");
    // MKL's strict mode (thread-count independence) needs AVX2: the compatible branch
    // reproduces itself at a given thread count.
    let (two, again) = (result("compatible", 2), result("compatible", 2));
    assert_eq!(two["env"]["mkl"], "COMPATIBLE,STRICT");
    assert_eq!(two["run"], again["run"], "compatible: two processes differ");
    assert_eq!(result("off", 2)["env"]["reproducible"], "off");
}

/// The compact kernels' AVX-512 form (16-float registers, chosen where the CPU has
/// AVX-512) gives the same bits as the 8-float form every other x86-64 CPU runs: a
/// network of compact layers trained by the fused step (forward products, and the
/// hidden layers' backward in one pass over the nonzeros) and one through the autograd
/// function (its backward in one pass too), with BatchNorm, Adam and gradient-flow
/// measurement, against the two-pass backward (input-gradient products, then the weight
/// gradient's dot products). Odd widths, so the products' two-row interleave also ends
/// on a row of its own; batches of 120 (its last 60) and 128 (its last 92), so the one
/// pass runs with and without an 8-float block and with and without columns past it.
/// On a CPU without AVX-512 both runs take the 8-float form.
#[test]
fn wide_and_narrow_sparse_kernels_give_the_same_bits() {
    let dir = tmp("wide");
    std::fs::write(
        dir.join("wide.rhai"),
        r#"
let data = dataset("fashion-mnist", #{ subset: "bundled", train_limit: 1500 });
let net = mlp(data, #{ depth: 3, width: 201, density: 0.2, batch_norm: true, seed: 1 });
train(net, data, #{ optimizer: "adam", lr: 0.001, epochs: 2, batch_size: 120, progress: false, grad_flow: #{ points: 2, samples: 500 } });
let net = mlp(data, #{ depth: 2, width: 151, density: 0.1, seed: 2 });
train(net, data, #{ optimizer: "momentum", lr: 0.01, epochs: 2, progress: false, step: "autograd" });
"#,
    )
    .unwrap();
    let result = |vectors: &str| -> Vec<Value> {
        let out = format!("out-{vectors}");
        let (code, _, err) = sl(&dir, &["run", "wide.rhai", "--fresh", "--out", &out], &[("SPARSELAB_KERNEL_VECTORS", vectors)]);
        assert_eq!(code, 0, "{err}");
        let mut recs = records(&dir.join(&out).join("store"));
        recs.iter_mut().for_each(|r| strip_times(&mut r["run"]));
        recs.into_iter().map(|r| r["run"].clone()).collect()
    };
    let (wide, narrow) = (result("16"), result("8"));
    assert_eq!(wide.len(), 2);
    assert!(wide[0]["history"].as_array().is_some_and(|h| h.len() == 2), "{}", wide[0]);
    assert_eq!(wide, narrow, "16-float and 8-float sparse kernels differ");
    let (_, info, _) = sl(&dir, &["info"], &[]);
    let avx512 = sparselab::repro::cpu_flags().iter().any(|f| f == "avx512f") && cfg!(not(feature = "portable-kernels"));
    assert_eq!(info.contains("16-float registers"), avx512 && sparselab::compute::kernels_cloned(), "{info}");
}

fn strip_times(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("seconds");
            m.remove("peak_rss_bytes");
            m.values_mut().for_each(strip_times);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_times),
        _ => {}
    }
}
