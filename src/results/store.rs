//! The run store: one record per finished run, keyed by a hash of its full
//! resolved configuration, written atomically, so sweeps resume after a crash or
//! kill -9 and several processes (or Slurm array tasks) can fill one store.
//!
//! Layout of `<run dir>/store/`: `<key>.json` (spec + full result: history,
//! gradient flow) and `<key>.parquet` (one summary row: config columns + metrics),
//! each written to a temp file and renamed into place; the Parquet file is
//! written last and marks the record complete. `pandas.read_parquet(store_dir)`
//! or [`Store::frame`] reads every finished run.
use super::{run_row, Frame};
use crate::error::{Error, Result};
use crate::train::RunResult;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Version of the stored record layout; part of every key, so a change of layout
/// never reuses old records.
pub const SCHEMA_VERSION: u32 = 1;

/// A store directory plus the policy of this process.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    /// Retrain even when a record exists (`--fresh`).
    pub fresh: bool,
    /// Only train runs whose key falls in shard `k` of `n` (0-based k).
    pub shard: Option<(u64, u64)>,
}

/// A record read back from the store.
#[derive(Clone, Debug)]
pub struct StoredRun {
    /// The key.
    pub key: String,
    /// The configuration it was run with.
    pub spec: Value,
    /// The result.
    pub run: RunResult,
}

/// What to do with a run.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// Finished earlier: reuse.
    Done(Box<StoredRun>),
    /// Train it here.
    Train,
    /// Another shard's run, not finished yet: skip.
    OtherShard,
}

impl Store {
    /// Opens (creating) `dir`, removing temp files left by killed writers.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                // Temps of writers that no longer run (killed mid-write); a live
                // writer's temp (its pid still exists) is left alone.
                let pid = name.strip_prefix(".tmp-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
                let dead = match pid {
                    Some(p) if Path::new("/proc/self").exists() => !Path::new(&format!("/proc/{p}")).exists(),
                    _ => e.metadata().and_then(|m| m.modified()).map(|t| t.elapsed().map(|d| d.as_secs() > 3600).unwrap_or(false)).unwrap_or(false),
                };
                if name.starts_with(".tmp-") && dead {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Store { dir, fresh: false, shard: None })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The identity of a run: SHA-256 of the canonical JSON of its spec and the schema version.
    pub fn key(spec: &Value) -> String {
        let canonical = serde_json::to_string(&serde_json::json!({ "schema": SCHEMA_VERSION, "spec": spec })).unwrap_or_default();
        format!("{:x}", Sha256::digest(canonical.as_bytes()))[..32].to_string()
    }

    /// Whether this process's shard owns `key`.
    pub fn owns(&self, key: &str) -> bool {
        match self.shard {
            None => true,
            Some((k, n)) => u64::from_str_radix(&key[..16], 16).map(|h| h % n == k).unwrap_or(true),
        }
    }

    /// Reuse, train, or skip the run with `spec`.
    pub fn lookup(&self, spec: &Value) -> Result<Lookup> {
        let key = Self::key(spec);
        if !self.fresh {
            if let Some(r) = self.get(&key)? {
                return Ok(Lookup::Done(Box::new(r)));
            }
        }
        Ok(if self.owns(&key) { Lookup::Train } else { Lookup::OtherShard })
    }

    /// The finished record for `key`, if complete.
    pub fn get(&self, key: &str) -> Result<Option<StoredRun>> {
        let (json, parquet) = (self.dir.join(format!("{key}.json")), self.dir.join(format!("{key}.parquet")));
        if !parquet.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&json).map_err(|e| Error::io(&json, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::data(&json, e.to_string()))?;
        let run: RunResult = serde_json::from_value(v["run"].clone()).map_err(|e| Error::data(&json, e.to_string()))?;
        Ok(Some(StoredRun { key: key.to_string(), spec: v["spec"].clone(), run }))
    }

    /// Writes the record for `spec` (JSON, then the Parquet row that completes it).
    /// `columns` are flat config columns for the summary row (name, value).
    pub fn put(&self, spec: &Value, columns: &[(String, Value)], run: &RunResult) -> Result<String> {
        let key = Self::key(spec);
        let record = serde_json::json!({ "key": key, "spec": spec, "run": run, "written": crate::script::utc_now() });
        self.atomic_write(&format!("{key}.json"), |p| std::fs::write(p, serde_json::to_vec(&record).unwrap_or_default()).map_err(|e| Error::io(p, e)))?;
        let mut row = super::FrameBuilder::new().str("key", vec![key.clone()]);
        for (name, v) in columns {
            row = match v {
                Value::Bool(b) => row.bool(name, vec![*b]),
                Value::Number(n) if n.is_i64() => row.i64(name, vec![n.as_i64().unwrap_or(0)]),
                Value::Number(n) => row.f64(name, vec![n.as_f64().unwrap_or(f64::NAN)]),
                Value::String(s) => row.str(name, vec![s.clone()]),
                other => row.str(name, vec![other.to_string()]),
            };
        }
        let summary = run_row(run).build()?;
        let row = row.build()?;
        let mut df = row.0.clone();
        df.hstack_mut(summary.0.columns()).map_err(|e| Error::config("store", e.to_string()))?;
        let frame = Frame(df);
        self.atomic_write(&format!("{key}.parquet"), |p| frame.to_parquet(p))?;
        Ok(key)
    }

    /// Writes `name` in the store through a temp file and a rename, so readers never
    /// see a partial file (used for records and for model weights).
    pub fn atomic_write(&self, name: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let tmp = self.dir.join(format!(".tmp-{}-{name}", std::process::id()));
        write(&tmp)?;
        let dst = self.dir.join(name);
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))
    }

    /// Every finished run's summary row (one row per key), sorted by key.
    pub fn frame(&self) -> Result<Frame> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().map(|x| x == "parquet").unwrap_or(false) && !p.file_name().map(|n| n.to_string_lossy().starts_with('.')).unwrap_or(true))
            .collect();
        paths.sort();
        let frames = paths.iter().map(|p| Frame::read_parquet(p)).collect::<Result<Vec<_>>>()?;
        Frame::vstack_relaxed(&frames)
    }
}
