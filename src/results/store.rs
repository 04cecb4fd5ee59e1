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

/// Version of the run spec's layout; part of every key, so a change of what a spec
/// holds never reuses old records. 2: model lineage and normalisation in every spec.
pub const SCHEMA_VERSION: u32 = 2;

/// Version of the store's file layout, kept in `<store>/FORMAT`; a store of another
/// format is an error on open, never read as if it were this one.
pub const STORE_FORMAT: u32 = 3;

/// Checks (or, for a new store, writes) `<dir>/FORMAT`. A store with records but no
/// FORMAT file was written by format 1.
fn check_format(dir: &Path) -> Result<()> {
    let path = dir.join("FORMAT");
    let found = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u32>().map_err(|_| Error::data(&path, format!("{:?} is not a store format number", text.trim())))?,
        Err(_) => {
            let has_records = std::fs::read_dir(dir).map(|d| d.flatten().any(|e| e.path().extension().is_some_and(|x| x == "json"))).unwrap_or(false);
            if !has_records {
                write_durably(dir, "FORMAT", |p| std::fs::write(p, format!("{STORE_FORMAT}\n")).map_err(|e| Error::io(p, e)))?;
                return Ok(());
            }
            1
        }
    };
    if found != STORE_FORMAT {
        return Err(Error::data(
            dir,
            format!(
                "this run store has format {found}; sparselab {} reads format {STORE_FORMAT}, so none of its records can be reused: run into a new --out directory, or delete this store",
                crate::version()
            ),
        ));
    }
    Ok(())
}

/// Writes `dir/name` through a unique temp file, fsyncs the file, renames it into
/// place and fsyncs the directory: once this returns, the file survives a crash
/// or power loss whole, and readers never see a partial file.
pub(crate) fn write_durably(dir: &Path, name: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = dir.join(format!(".tmp-{}-{name}", temp_tag()));
    write(&tmp)?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    let dst = dir.join(name);
    std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// This writer's node: the host name (letters and digits only) and, after an
/// underscore, the inode of its PID namespace, so writers in two containers or on two
/// hosts never share a node even when their pids are equal.
pub fn node_id() -> &'static str {
    static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_else(|_| "host".into());
        let host: String = host.trim().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let ns = std::fs::read_link("/proc/self/ns/pid").map(|l| l.to_string_lossy().chars().filter(char::is_ascii_digit).collect::<String>()).unwrap_or_default();
        format!("{host}_{ns}")
    })
}

/// `<node>-<pid>-<random>`: unique across hosts, containers and processes, and
/// within a process across calls.
fn temp_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{nanos}-{}-{}-{:?}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), std::thread::current().id());
    format!("{}-{}-{}", node_id(), std::process::id(), &format!("{:x}", Sha256::digest(seed.as_bytes()))[..12])
}

/// How old another node's temp file must be before clean-up removes it: no write of a
/// record, weights file or checkpoint takes this long, even on a slow shared filesystem.
pub const FOREIGN_TEMP_SECS: u64 = 6 * 3600;

/// Whether a temp file `name` (`.tmp-<node>-<pid>-<random>-...`) of age `age_secs`
/// belongs to a writer that is gone: one on this node whose pid no longer exists
/// (judged only where /proc shows this PID namespace), or any older than
/// [`FOREIGN_TEMP_SECS`]. Another node's live writer is never judged gone.
pub(crate) fn temp_is_abandoned(name: &str, age_secs: u64) -> bool {
    let Some(rest) = name.strip_prefix(".tmp-") else { return false };
    if age_secs > FOREIGN_TEMP_SECS {
        return true;
    }
    let mut parts = rest.splitn(3, '-');
    let (node, pid) = (parts.next().unwrap_or(""), parts.next().and_then(|p| p.parse::<u32>().ok()));
    let proc_is_ours = std::fs::read_link("/proc/self").ok().and_then(|l| l.to_string_lossy().parse::<u32>().ok()) == Some(std::process::id());
    match pid {
        Some(p) if node == node_id() && proc_is_ours => !Path::new(&format!("/proc/{p}")).exists(),
        _ => false,
    }
}

/// Removes the abandoned temp files ([`temp_is_abandoned`]) in `dir`.
pub(crate) fn remove_abandoned_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let age = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).map_or(0, |d| d.as_secs());
        if temp_is_abandoned(&name, age) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The store's folder of data identities ([`Store::note_data`]).
pub const DATA_DIR: &str = "data";

/// A store directory plus the policy of this process.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    /// Retrain even when a record exists (`--fresh`).
    pub fresh: bool,
    /// Only train runs whose key falls in shard `k` of `n` (0-based k).
    pub shard: Option<(u64, u64)>,
    /// When runs checkpoint within themselves (`<store>/checkpoints`; by default every
    /// 5 minutes and on a stop); `None`: never.
    pub checkpoints: Option<crate::train::checkpoint::CheckpointPolicy>,
    /// The shard of each planned run (`sparselab submit` balances shards by estimated
    /// cost); runs it does not list fall to a shard by key hash.
    pub assignment: Option<std::sync::Arc<std::collections::HashMap<String, u64>>>,
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
    /// Opens (creating) `dir`, removing temp files left by killed writers (on this
    /// node: by pid; on others: by age, see [`temp_is_abandoned`]).
    ///
    /// # Errors
    /// An unwritable directory, or a store written in another format
    /// ([`STORE_FORMAT`]): its records could never be reused by this binary.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        check_format(&dir)?;
        remove_abandoned_temps(&dir);
        remove_abandoned_temps(&dir.join("checkpoints"));
        let checkpoints = Some(crate::train::checkpoint::CheckpointPolicy::for_store(&dir));
        Ok(Store { dir, fresh: false, shard: None, checkpoints, assignment: None })
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

    /// The shard (0-based, of `n`) a key falls in without a plan: its first 16 hex
    /// digits mod `n` (`None` for a key that is not hex).
    pub fn hash_shard(key: &str, n: u64) -> Option<u64> {
        u64::from_str_radix(key.get(..16)?, 16).ok().map(|h| h % n.max(1))
    }

    /// Whether this process's shard owns `key`.
    pub fn owns(&self, key: &str) -> bool {
        match self.shard {
            None => true,
            Some((k, _)) if self.assignment.as_ref().is_some_and(|a| a.contains_key(key)) => self.assignment.as_ref().and_then(|a| a.get(key)) == Some(&k),
            Some((k, n)) => Self::hash_shard(key, n).is_none_or(|s| s == k),
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
        let Some(v) = self.record(key)? else { return Ok(None) };
        let run: RunResult = serde_json::from_value(v["run"].clone()).map_err(|e| Error::data(self.dir.join(format!("{key}.json")), e.to_string()))?;
        Ok(Some(StoredRun { key: key.to_string(), spec: v["spec"].clone(), run }))
    }

    /// The whole stored record of `key` (key, spec, run, written, env) as JSON, if
    /// complete.
    ///
    /// # Errors
    /// An unreadable record.
    pub fn record(&self, key: &str) -> Result<Option<Value>> {
        let (json, parquet) = (self.dir.join(format!("{key}.json")), self.dir.join(format!("{key}.parquet")));
        if !parquet.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&json).map_err(|e| Error::io(&json, e))?;
        serde_json::from_str(&text).map(Some).map_err(|e| Error::data(&json, e.to_string()))
    }

    /// Keys of every complete record (its Parquet row written), sorted.
    pub fn keys(&self) -> Result<Vec<String>> {
        let mut keys: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".parquet")).filter(|n| !n.starts_with('.')).map(str::to_string))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Writes the record for `spec` (JSON, then the Parquet row that completes it).
    /// `columns` are flat config columns for the summary row (name, value).
    pub fn put(&self, spec: &Value, columns: &[(String, Value)], run: &RunResult) -> Result<String> {
        let key = Self::key(spec);
        self.note_data(&spec["data"]);
        let record = serde_json::json!({ "key": key, "spec": spec, "run": run, "written": crate::log::utc_now(), "env": crate::repro::environment(Some(&run.device)) });
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
        write_durably(&self.dir, name, write)
    }

    /// Records that runs were trained on the data identity `data` (one file per
    /// identity with files, `data/<name>-<hash>.json`; written once, by whichever
    /// process gets there first, with the same content).
    pub fn note_data(&self, data: &Value) {
        if data["files"].as_array().is_none_or(Vec::is_empty) {
            return;
        }
        let dir = self.dir.join(DATA_DIR);
        let name = format!("{}-{}.json", data["name"].as_str().unwrap_or("data"), &Self::key(data)[..16]);
        if dir.join(&name).exists() || std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let text = serde_json::to_string_pretty(data).unwrap_or_default();
        // Only the warning about differing files depends on it.
        let _ = write_durably(&dir, &name, |p| std::fs::write(p, &text).map_err(|e| Error::io(p, e)));
    }

    /// The data identities the store's runs were trained on ([`Store::note_data`]).
    pub fn data_identities(&self) -> Vec<Value> {
        let Ok(entries) = std::fs::read_dir(self.dir.join(DATA_DIR)) else { return Vec::new() };
        let mut out: Vec<(String, Value)> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json") && !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| Some((e.file_name().to_string_lossy().to_string(), serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// Where the weights of the run `key` are kept.
    pub fn weights_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.safetensors"))
    }

    /// Every finished run's summary row (one row per key), sorted by key.
    pub fn frame(&self) -> Result<Frame> {
        let paths: Vec<PathBuf> = self.keys()?.iter().map(|k| self.dir.join(format!("{k}.parquet"))).collect();
        let frames = paths.iter().map(|p| Frame::read_parquet(p)).collect::<Result<Vec<_>>>()?;
        Frame::vstack_relaxed(&frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which temps clean-up may remove: this node's with a dead pid; never another
    /// node's (another host, or another PID namespace on this host) unless older than
    /// [`FOREIGN_TEMP_SECS`]; any file older than that.
    #[test]
    fn clean_up_spares_other_nodes_live_temps() {
        let me = node_id();
        assert!(me.contains('_') && !me.contains('-'), "{me}");
        let dead_pid = 4_000_000; // above Linux's pid_max
        assert!(temp_is_abandoned(&format!(".tmp-{me}-{dead_pid}-0123456789ab-x.json"), 0));
        assert!(!temp_is_abandoned(&format!(".tmp-{me}-{}-0123456789ab-x.json", std::process::id()), 0), "our own live temp");
        assert!(!temp_is_abandoned(&format!(".tmp-otherhost_4026531836-{dead_pid}-0123456789ab-x.json"), 3600), "another node's, an hour old");
        assert!(temp_is_abandoned(&format!(".tmp-otherhost_4026531836-{dead_pid}-0123456789ab-x.json"), FOREIGN_TEMP_SECS + 1));
        // The previous layout (.tmp-<pid>-<n>-name) is judged by age only.
        assert!(!temp_is_abandoned(&format!(".tmp-{dead_pid}-0-x.json"), 60));
        assert!(!temp_is_abandoned("x.json", FOREIGN_TEMP_SECS + 1), "not a temp");
        // Unique per call: two temps of one process never share a name.
        assert_ne!(temp_tag(), temp_tag());
        assert!(temp_tag().starts_with(&format!("{me}-{}-", std::process::id())));
    }
}
