//! Sharing a study: `sparselab verify` reruns stored runs and says whether this
//! machine reproduces them (and what differs when not); `sparselab pack` / `unpack`
//! carry a run directory (script, imported modules, `--set` values, manifests and
//! the store) to a colleague as one archive checked by hashes.
//!
//! ```no_run
//! use sparselab::share::{verify, VerifyOptions};
//! let report = verify(std::path::Path::new("runs/quickstart"), &VerifyOptions { sample: Some(2), ..Default::default() })?;
//! println!("{report}");
//! assert!(report.reproduced());
//! # Ok::<(), sparselab::Error>(())
//! ```
mod pack;

pub(crate) use pack::modules;
pub use pack::{pack, unpack, PackOptions, Packed, Unpacked, PACK_INDEX};

use crate::error::{Error, Result};
use crate::experiment::{Outcome, Verdict, Verifier};
use crate::results::{data_differences, Store};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Rerun this many records, chosen by a seeded draw (`None`: all).
    pub sample: Option<usize>,
    /// The draw's seed.
    pub seed: u64,
    /// Numbers within this of the record (relative to max(1, |recorded|)) are "within
    /// tolerance" rather than "different".
    pub tolerance: f64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { sample: None, seed: 0, tolerance: 1e-4 }
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The run directory.
    pub dir: PathBuf,
    /// The script the records came from (as the manifest names it).
    pub script: String,
    /// Records in the store.
    pub records: usize,
    /// One verdict per record rerun (or not reached).
    pub verdicts: Vec<Verdict>,
    /// This machine's environment.
    pub environment: Value,
    /// The script's error, when it stopped before reaching every sampled record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl VerifyReport {
    /// Whether every record checked reproduced (identical or within tolerance) and
    /// the script ran to its end.
    pub fn reproduced(&self) -> bool {
        self.error.is_none() && self.verdicts.iter().all(|v| v.outcome.reproduced())
    }

    /// How many verdicts have `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.verdicts.iter().filter(|v| v.outcome == outcome).count()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verify {} ({}): reran {} of {} records", self.dir.display(), self.script, self.verdicts.len(), self.records)?;
        for v in &self.verdicts {
            let detail = match (v.outcome, &v.field) {
                (Outcome::NotReached, _) => v.note.clone().unwrap_or_default(),
                (_, Some(field)) if v.max_difference.is_finite() => format!("largest difference {:.3e} at {field}", v.max_difference),
                (_, Some(field)) => format!("differs at {field}"),
                _ => String::new(),
            };
            writeln!(f, "  {}  {:<12} {:<17} {detail}", &v.key[..v.key.len().min(12)], v.kind, v.outcome.label())?;
            for d in &v.spec_differences {
                writeln!(f, "      spec {d}")?;
            }
            if v.outcome != Outcome::NotReached && !v.environment.is_empty() {
                writeln!(f, "      environment (record -> here): {}", v.environment.join("; "))?;
            }
        }
        if let Some(e) = &self.error {
            writeln!(f, "the script stopped: {e}")?;
        }
        write!(
            f,
            "{}: {} identical, {} within tolerance, {} different, {} not reached",
            if self.reproduced() { "reproduced" } else { "NOT reproduced" },
            self.count(Outcome::Identical),
            self.count(Outcome::WithinTolerance),
            self.count(Outcome::Different),
            self.count(Outcome::NotReached)
        )
    }
}

/// The manifest a run directory's records came from: `manifest.json`, else the newest
/// per-process manifest (a sharded run before its merge).
///
/// # Errors
/// A directory without one.
pub fn manifest_of(dir: &Path) -> Result<Value> {
    let merged = dir.join("manifest.json");
    if let Ok(text) = std::fs::read_to_string(&merged) {
        return serde_json::from_str(&text).map_err(|e| Error::data(&merged, e.to_string()));
    }
    crate::script::read_manifests(dir)
        .into_iter()
        .rev()
        .find(|m| m["script_text"].is_string())
        .ok_or_else(|| Error::config("run directory", format!("{} has no manifest.json or manifests/: not a run directory written by `sparselab run` or `unpack`", dir.display())))
}

/// Reruns the stored runs of `dir` (all, or a seeded sample) from the script text its
/// manifest recorded, and compares each with its record. Nothing in `dir` changes.
///
/// # Errors
/// A directory without a manifest or records; a sample of 0.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> Result<VerifyReport> {
    if opts.sample == Some(0) {
        return Err(Error::config("--sample", "0 must be at least 1 (leave it out to rerun every record)"));
    }
    if opts.tolerance.is_nan() || opts.tolerance < 0.0 {
        return Err(Error::config("--tolerance", format!("{} must be >= 0", opts.tolerance)));
    }
    let manifest = manifest_of(dir)?;
    let text = manifest["script_text"].as_str().ok_or_else(|| Error::config("manifest", format!("{} records no script text (written by an older sparselab)", dir.display())))?.to_string();
    let script = manifest["script"].as_str().unwrap_or("script.rhai").to_string();
    let store = Store::open(dir.join("store"))?;
    let keys = store.keys()?;
    if keys.is_empty() {
        return Err(Error::config("run directory", format!("{} has no finished runs to verify", dir.display())));
    }
    let chosen = sample(&keys, opts.sample, opts.seed);
    let verifier = Arc::new(Verifier::new(chosen.iter().cloned(), opts.tolerance));
    // Imports resolve in the run directory first (an unpacked study's modules), then
    // beside the original script, then the stdlib.
    let original = PathBuf::from(&script);
    let path = if original.is_file() { original } else { dir.join(original.file_name().unwrap_or(std::ffi::OsStr::new("script.rhai"))) };
    let opts_run = crate::script::RunOptions { out_dir: Some(dir.to_path_buf()), verify: Some(verifier.clone()), source: Some(text), module_dirs: vec![dir.to_path_buf()], ..Default::default() };
    let error = match crate::script::run_file(&path, &opts_run)? {
        Ok(_) => None,
        Err(e) => Some(e.0),
    };
    let mut verdicts = verifier.verdicts();
    let used = verifier.datasets();
    for key in &chosen {
        if verdicts.iter().any(|v| &v.key == key) {
            continue;
        }
        let record = store.record(key)?.unwrap_or_default();
        let data = &record["spec"]["data"];
        let differs: Vec<String> = used.iter().flat_map(|u| data_differences(u, std::slice::from_ref(data))).collect();
        let note = if !differs.is_empty() {
            format!("its data differs from the files read here: {}", differs.join("; "))
        } else if error.is_some() {
            "the script stopped before reaching it".to_string()
        } else {
            "the script no longer reaches it (an edited script or module, or a run of an earlier version)".to_string()
        };
        verdicts.push(Verdict {
            key: key.clone(),
            kind: record["spec"]["kind"].as_str().unwrap_or("").into(),
            outcome: Outcome::NotReached,
            max_difference: f64::NAN,
            field: None,
            spec_differences: vec![],
            environment: vec![],
            note: Some(note),
        });
    }
    verdicts.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(VerifyReport { dir: dir.to_path_buf(), script, records: keys.len(), verdicts, environment: crate::repro::environment(None), error })
}

/// `n` of `keys` drawn without replacement by a seeded shuffle (all when `None` or
/// `n >= len`), sorted.
fn sample(keys: &[String], n: Option<usize>, seed: u64) -> Vec<String> {
    let Some(n) = n.filter(|&n| n < keys.len()) else { return keys.to_vec() };
    let order = crate::rng::permutation(&mut crate::rng::stream(seed, crate::rng::Stream::Split, 0x7e51_f1ed), keys.len());
    let mut out: Vec<String> = order[..n].iter().map(|&i| keys[i as usize].clone()).collect();
    out.sort();
    out
}
