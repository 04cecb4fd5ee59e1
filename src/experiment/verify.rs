//! `sparselab verify`: rerun stored runs from the script that made them and say, for
//! each, whether the result is identical, within tolerance (with the largest
//! difference) or different, next to what differs between the record's environment
//! and this machine's.
//!
//! A verifying session ([`super::Session::verifying`]) trains the sampled keys even
//! though they are stored, reuses every other record as usual (so a sampled run that
//! continues another starts from the stored weights), compares instead of writing,
//! and writes nothing at all: no records, weights, checkpoints or manifests.
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// What a rerun showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every recorded number has the same bits.
    Identical,
    /// Numbers differ, by at most the tolerance.
    WithinTolerance,
    /// A number differs by more than the tolerance, or the record's spec is not what
    /// the script asks for under its key.
    Different,
    /// The script never reached the key (other data, or an edited script).
    NotReached,
}

impl Outcome {
    /// As printed: `identical`, `within tolerance`, `different`, `not reached`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Identical => "identical",
            Outcome::WithinTolerance => "within tolerance",
            Outcome::Different => "different",
            Outcome::NotReached => "not reached",
        }
    }
    /// Whether the record counts as reproduced.
    pub fn reproduced(self) -> bool {
        matches!(self, Outcome::Identical | Outcome::WithinTolerance)
    }
}

/// One record's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The run's key.
    pub key: String,
    /// Its kind (`train`, `sc_sdc`, ...).
    pub kind: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The largest difference between a recorded number and the rerun's, relative to
    /// max(1, |recorded|).
    pub max_difference: f64,
    /// Where it is (`test_acc`, `history[3].train_loss`, ...).
    pub field: Option<String>,
    /// Fields of the stored spec that differ from the spec the script gives this key
    /// (a tampered or hand-edited record): `path: stored -> here`.
    pub spec_differences: Vec<String>,
    /// What differs between the record's environment and this machine's.
    pub environment: Vec<String>,
    /// Why a key was not reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The keys a verifying session reruns and what it found.
#[derive(Debug)]
pub struct Verifier {
    keys: BTreeSet<String>,
    tolerance: f64,
    verdicts: Mutex<Vec<Verdict>>,
    datasets: Mutex<Vec<Value>>,
}

impl Verifier {
    /// Reruns `keys`; numbers within `tolerance` (relative to max(1, |recorded|)) of
    /// the record's count as within tolerance.
    pub fn new(keys: impl IntoIterator<Item = String>, tolerance: f64) -> Self {
        Verifier { keys: keys.into_iter().collect(), tolerance, verdicts: Mutex::new(Vec::new()), datasets: Mutex::new(Vec::new()) }
    }

    /// Whether `key` is rerun.
    pub fn wants(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// The keys to rerun.
    pub fn keys(&self) -> &BTreeSet<String> {
        &self.keys
    }

    /// Notes a data identity the script used (to explain keys it did not reach).
    pub(crate) fn note_data(&self, data: &Value) {
        if let Ok(mut d) = self.datasets.lock() {
            if !d.contains(data) {
                d.push(data.clone());
            }
        }
    }

    /// The data identities the rerun used.
    pub fn datasets(&self) -> Vec<Value> {
        self.datasets.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// The verdicts so far, in the order the runs finished.
    pub fn verdicts(&self) -> Vec<Verdict> {
        self.verdicts.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Compares a rerun (`spec`, `run` as JSON) with the stored `record` of `key`.
    pub(crate) fn compare(&self, key: &str, spec: &Value, run: &Value, record: Option<&Value>, device: &str) {
        let Some(record) = record else {
            return self.push(Verdict {
                key: key.into(),
                kind: spec["kind"].as_str().unwrap_or("").into(),
                outcome: Outcome::Different,
                max_difference: f64::INFINITY,
                field: None,
                spec_differences: vec![],
                environment: vec![],
                note: Some("the record vanished during the rerun".into()),
            });
        };
        let mut spec_differences = Vec::new();
        diff_json("", &record["spec"], spec, &mut spec_differences);
        if crate::results::Store::key(&record["spec"]) != key && spec_differences.is_empty() {
            spec_differences.push("the stored spec does not hash to its key".into());
        }
        let (mut max, mut field) = (0.0f64, None);
        numeric_difference("", &record["run"], run, &mut max, &mut field);
        let outcome = if !spec_differences.is_empty() || max > self.tolerance {
            Outcome::Different
        } else if max > 0.0 {
            Outcome::WithinTolerance
        } else {
            Outcome::Identical
        };
        let environment = environment_differences(record.get("env"), &crate::repro::environment(Some(device)));
        self.push(Verdict {
            key: key.into(),
            kind: spec["kind"].as_str().unwrap_or("").into(),
            outcome,
            max_difference: max,
            field: if max > 0.0 { field } else { None },
            spec_differences,
            environment,
            note: None,
        });
    }

    fn push(&self, v: Verdict) {
        if let Ok(mut all) = self.verdicts.lock() {
            if !all.iter().any(|x| x.key == v.key) {
                all.push(v);
            }
        }
    }
}

/// Fields of a result that measure the machine, not the computation.
const UNCOMPARED: &[&str] = &["seconds", "device", "peak_rss_bytes"];

/// The largest relative difference between numbers at the same place in `a`
/// (recorded) and `b` (rerun), and where; a structural difference (a value on one
/// side only, a string or flag that differs) counts as infinite.
fn numeric_difference(path: &str, a: &Value, b: &Value, max: &mut f64, field: &mut Option<String>) {
    let mut note = |d: f64, p: &str| {
        if d > *max || (d.is_nan() && !max.is_nan()) {
            *max = if d.is_nan() { f64::INFINITY } else { d };
            *field = Some(p.to_string());
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                if UNCOMPARED.contains(&k.as_str()) {
                    continue;
                }
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                numeric_difference(&p, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), max, field);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                note(f64::INFINITY, &format!("{path} ({} entries recorded, {} now)", x.len(), y.len()));
            }
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                numeric_difference(&format!("{path}[{i}]"), u, v, max, field);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (u, v) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            if u.to_bits() != v.to_bits() && !(u.is_nan() && v.is_nan()) {
                note((u - v).abs() / u.abs().max(1.0), path);
            }
        }
        (x, y) if x != y => note(f64::INFINITY, path),
        _ => {}
    }
}

/// `path: stored -> here` for every leaf of `a` (stored) and `b` (here) that differs.
fn diff_json(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                diff_json(&p, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff_json(&format!("{path}[{i}]"), u, v, out);
            }
        }
        (x, y) if x != y => out.push(format!("{path}: {x} stored -> {y} here")),
        _ => {}
    }
}

/// What differs between a record's environment and this machine's: `field: recorded
/// -> here`.
pub fn environment_differences(recorded: Option<&Value>, here: &Value) -> Vec<String> {
    let Some(rec) = recorded.filter(|r| r.is_object()) else {
        return vec!["the record has no environment (written before sparselab recorded one)".into()];
    };
    let mut out = Vec::new();
    for k in ["sparselab", "git_commit", "libtorch", "reproducible", "mkl", "fused_gemm", "aten_cpu_capability", "cpu", "cpu_flags", "threads", "device", "os", "arch"] {
        if k == "fused_gemm" && rec.get(k).is_none() {
            continue; // recorded since the portable gemm came; older records ran on MKL
        }
        let (a, b) = (rec.get(k).unwrap_or(&Value::Null), here.get(k).unwrap_or(&Value::Null));
        if a != b {
            let show = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect::<Vec<_>>().join(" "),
                other => other.to_string(),
            };
            out.push(format!("{k}: {} -> {}", show(a), show(b)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_are_found_and_placed() {
        let (mut max, mut field) = (0.0, None);
        let a = json!({ "test_acc": 0.5, "seconds": 3.0, "history": [{ "train_loss": 2.0 }, { "train_loss": 1.0 }] });
        let b = json!({ "test_acc": 0.5, "seconds": 9.0, "history": [{ "train_loss": 2.0 }, { "train_loss": 1.25 }] });
        numeric_difference("", &a, &b, &mut max, &mut field);
        assert_eq!((max, field.as_deref()), (0.25, Some("history[1].train_loss")), "seconds are not compared; 0.25 / max(1, 1.0)");
        let (mut max, mut field) = (0.0, None);
        numeric_difference("", &json!({ "ended": "Finished" }), &json!({ "ended": { "Diverged": 2 } }), &mut max, &mut field);
        assert!(max.is_infinite() && field.as_deref() == Some("ended"));
        let mut out = Vec::new();
        diff_json("", &json!({ "train": { "lr": 0.05, "seed": 0 } }), &json!({ "train": { "lr": 0.1, "seed": 0 } }), &mut out);
        assert_eq!(out, vec!["train.lr: 0.05 stored -> 0.1 here"]);
        let env = environment_differences(Some(&json!({ "threads": 1, "mkl": "AVX2,STRICT" })), &json!({ "threads": 2, "mkl": "AVX2,STRICT" }));
        assert!(env.contains(&"threads: 1 -> 2".to_string()), "{env:?}");
    }
}
