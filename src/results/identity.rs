//! Run identities: what in a configuration decides a run's result. Device, thread
//! count and progress display do not (a run is the same experiment wherever it
//! runs), so they are left out of the key.
use crate::data::Dataset;
use crate::train::TrainConfig;
use serde_json::{json, Value};

/// The dataset as it affects results: name, source kind (files, the bundled subset,
/// or synthetic with its seed), sizes after `train_limit`, shape, and the
/// standardisation's per-channel mean and std (rounded to 1e-9, so libm's last bits
/// do not re-key runs).
pub fn dataset_identity(d: &Dataset) -> Value {
    let source = if d.source == "bundled" || d.source.starts_with("synthetic") { d.source.clone() } else { "files".to_string() };
    let round = |x: f64| (x * 1e9).round() / 1e9;
    let norm: Vec<[f64; 2]> = d.norm.iter().map(|&(m, s)| [round(m), round(s)]).collect();
    let mut v = json!({ "name": d.name, "source": source, "train": d.train.len(), "test": d.test.len(), "classes": d.classes, "shape": d.shape, "norm": norm });
    if !d.files.is_empty() {
        v["files"] = Value::Array(d.files.iter().map(|f| json!({ "file": f.file, "sha256": f.sha256 })).collect());
    }
    v
}

/// How the data identity `here` differs from `stored` ones of the same dataset name
/// (identities recorded in a store): one line per file whose content differs, or that
/// only one side has. Empty when some stored identity has the same files.
pub fn data_differences(here: &Value, stored: &[Value]) -> Vec<String> {
    let files = |v: &Value| -> std::collections::BTreeMap<String, String> {
        v["files"].as_array().map(|a| a.iter().map(|f| (f["file"].as_str().unwrap_or("").to_string(), f["sha256"].as_str().unwrap_or("").to_string())).collect()).unwrap_or_default()
    };
    let mine = files(here);
    let same_name: Vec<&Value> = stored.iter().filter(|s| s["name"] == here["name"] && s["source"] == here["source"]).collect();
    if mine.is_empty() || same_name.iter().any(|s| files(s) == mine) {
        return Vec::new();
    }
    let short = |h: &str| h.get(..12).unwrap_or(h).to_string();
    let mut out = Vec::new();
    for s in same_name {
        let theirs = files(s);
        for (f, h) in &mine {
            match theirs.get(f) {
                Some(t) if t != h => out.push(format!("{f}: sha256 {} here, {} in the store", short(h), short(t))),
                None => out.push(format!("{f}: read here, not by the store's runs")),
                _ => {}
            }
        }
        for f in theirs.keys().filter(|f| !mine.contains_key(*f)) {
            out.push(format!("{f}: read by the store's runs, not here"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Training settings without device, threads and progress.
pub fn train_identity(t: &TrainConfig) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        for k in ["device", "threads", "progress"] {
            m.remove(k);
        }
    }
    v
}

/// Scalar leaves of a spec as flat columns, named by their leaf key (prefixed by
/// the parent key on a clash); arrays and maps become JSON strings.
pub fn flatten(spec: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    fn walk(v: &Value, parent: &str, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match x {
                        Value::Object(_) => walk(x, k, out),
                        Value::Null => {}
                        Value::Array(_) => push(out, k, parent, Value::String(x.to_string())),
                        _ => push(out, k, parent, x.clone()),
                    }
                }
            }
            other => push(out, "value", parent, other.clone()),
        }
    }
    fn push(out: &mut Vec<(String, Value)>, k: &str, parent: &str, v: Value) {
        let name = if out.iter().any(|(n, _)| n == k) { format!("{parent}_{k}") } else { k.to_string() };
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, v));
        }
    }
    walk(spec, "", &mut out);
    out
}
