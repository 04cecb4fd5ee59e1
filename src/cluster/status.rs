//! `sparselab status`: a run directory's progress read from its plan, its store's
//! records and its processes' manifests (nothing here writes but a cache).
use super::{unix_now, Plan, PlanEntry, PLAN_FILE, SUBMIT_FILE};
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One shard of a run directory, as `status` sees it.
#[derive(Clone, Debug, Serialize)]
pub struct ShardStatus {
    /// 1-based.
    pub shard: u64,
    /// Runs the plan gives it.
    pub expected: usize,
    /// Of those, finished (a record in the store).
    pub finished: usize,
    /// Of those, diverged.
    pub diverged: usize,
    /// Estimated cost of its runs.
    pub cost: f64,
    /// Estimated cost of its runs not finished.
    pub remaining_cost: f64,
    /// `done`, `running`, `pending` (no process yet), `failed` (the script failed),
    /// `interrupted` (stopped: Ctrl-C, SIGTERM, scancel, a time limit), `lost` (its
    /// process stopped beating: killed, node lost), `incomplete` (ended, runs missing).
    pub state: String,
    /// The run in progress (key, label, epoch) while running.
    pub current: Value,
    /// Seconds since its process's last heartbeat.
    pub heartbeat_age: Option<f64>,
    /// Where it ran or runs (node, pid, Slurm ids).
    pub process: Value,
    /// Estimated seconds left.
    pub eta_secs: Option<f64>,
}

/// A run directory's progress: expected runs (from the plan), finished, diverged,
/// failed (not finished in a shard that ended), running now, per shard and overall.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The run directory.
    pub dir: PathBuf,
    /// The plan's script.
    pub script: String,
    /// The plan's shards.
    pub shards: u64,
    /// Planned runs.
    pub expected: usize,
    /// Finished runs (records in the store).
    pub finished: usize,
    /// Diverged runs among them.
    pub diverged: usize,
    /// Runs not finished in shards that ended (failed, interrupted, lost, incomplete).
    pub failed: usize,
    /// Shards running now.
    pub running: usize,
    /// Finished records that the plan does not list (another script's or settings').
    pub unplanned: usize,
    /// Estimated seconds until every shard is done (shards run in parallel), from the
    /// seconds per estimated FLOP of the runs finished so far.
    pub eta_secs: Option<f64>,
    /// Largest shard's estimated cost over the mean.
    pub imbalance: f64,
    /// The same, had shards been assigned by key hash alone.
    pub hash_imbalance: f64,
    /// Per shard.
    pub per_shard: Vec<ShardStatus>,
    /// Slurm jobs of the latest submission and their states (from `squeue`), if any.
    pub slurm: Value,
}

/// Seconds left in a shard: its unfinished estimated cost, less the part of the run in
/// progress already done, at the pace of that run so far (its seconds per estimated
/// FLOP) or else of the finished runs (`rate`).
fn eta(current: &Value, runs: &[&PlanEntry], remaining_cost: f64, rate: Option<f64>, now: f64) -> Option<f64> {
    let in_progress = current["key"].as_str().and_then(|k| runs.iter().find(|e| e.run.key == k));
    if let (Some(e), Some(done), Some(of), Some(t0)) = (in_progress, current["epoch"].as_f64(), current["epochs"].as_f64(), current["started_unix"].as_f64()) {
        let done_cost = e.run.cost * done / of.max(1.0);
        if done_cost > 0.0 {
            let pace = (now - t0).max(0.0) / done_cost;
            return Some((remaining_cost - done_cost).max(0.0) * pace);
        }
    }
    rate.map(|r| r * remaining_cost)
}

/// A heartbeat older than this marks a running process as lost.
pub fn lost_after_secs() -> f64 {
    let beat = std::env::var("SPARSELAB_HEARTBEAT_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(crate::script::HEARTBEAT_SECS as f64);
    3.0 * beat + 5.0
}

impl Status {
    /// Reads the status of run directory `dir`.
    ///
    /// # Errors
    /// No plan in `dir` (say how to make one), unreadable files.
    pub fn of(dir: &Path) -> Result<Status> {
        let plan = Plan::read(dir)?
            .ok_or_else(|| Error::data(dir, format!("has no {PLAN_FILE}: `sparselab submit FILE.rhai --out {} --shards N` writes it (`--dry-run` writes it without submitting)", dir.display())))?;
        let done = finished_records(dir)?;
        // Seconds per estimated FLOP, from the finished runs that have both.
        let (mut secs, mut flops) = (0.0, 0.0);
        for e in &plan.runs {
            if let Some((_, s)) = done.get(&e.run.key) {
                if e.run.cost > 0.0 && s.is_finite() {
                    (secs, flops) = (secs + s, flops + e.run.cost);
                }
            }
        }
        let rate = (flops > 0.0).then_some(secs / flops);
        let manifests = crate::script::read_manifests(dir);
        let now = unix_now();
        let mut per_shard = Vec::new();
        for k in 1..=plan.shards {
            let runs: Vec<&PlanEntry> = plan.runs.iter().filter(|e| e.shard == k).collect();
            let finished = runs.iter().filter(|e| done.contains_key(&e.run.key)).count();
            let diverged = runs.iter().filter(|e| done.get(&e.run.key).is_some_and(|d| d.0)).count();
            let cost: f64 = runs.iter().map(|e| e.run.cost).sum();
            let remaining_cost: f64 = runs.iter().filter(|e| !done.contains_key(&e.run.key)).map(|e| e.run.cost).sum();
            let latest = manifests.iter().rev().find(|m| m["shard"]["k"].as_u64() == Some(k) && m["shard"]["n"].as_u64() == Some(plan.shards));
            let heartbeat_age = latest.and_then(|m| m["heartbeat_unix"].as_f64()).map(|t| (now - t).max(0.0));
            let alive = latest.is_some_and(|m| {
                let same_node = m["node"].as_str() == Some(crate::results::node_id());
                let pid_gone = same_node && m["pid"].as_u64().is_some_and(|p| Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{p}")).exists());
                !pid_gone && heartbeat_age.is_some_and(|a| a < lost_after_secs())
            });
            let state = if finished == runs.len() {
                "done"
            } else {
                match latest.and_then(|m| m["status"].as_str()) {
                    None => "pending",
                    Some("running") if alive => "running",
                    Some("running") => "lost",
                    Some("ok") | Some("partial") => "incomplete",
                    Some("error") => "failed",
                    Some(_) => "interrupted",
                }
            };
            let current = if state == "running" { latest.map(|m| m["current"].clone()).unwrap_or(Value::Null) } else { Value::Null };
            let eta_secs = if finished == runs.len() { Some(0.0) } else { eta(&current, &runs, remaining_cost, rate, now) };
            per_shard.push(ShardStatus {
                shard: k,
                expected: runs.len(),
                finished,
                diverged,
                cost,
                remaining_cost,
                state: state.into(),
                current,
                heartbeat_age,
                process: latest.map(|m| json!({ "node": m["node"], "pid": m["pid"], "slurm": m.get("slurm") })).unwrap_or(Value::Null),
                eta_secs,
            });
        }
        let planned: std::collections::HashSet<&str> = plan.runs.iter().map(|e| e.run.key.as_str()).collect();
        let ended = |s: &ShardStatus| matches!(s.state.as_str(), "failed" | "interrupted" | "lost" | "incomplete");
        let open: Vec<&ShardStatus> = per_shard.iter().filter(|s| s.state == "running" || s.state == "pending").collect();
        Ok(Status {
            dir: dir.to_path_buf(),
            script: plan.script.clone(),
            shards: plan.shards,
            expected: plan.runs.len(),
            finished: per_shard.iter().map(|s| s.finished).sum(),
            diverged: per_shard.iter().map(|s| s.diverged).sum(),
            failed: per_shard.iter().filter(|s| ended(s)).map(|s| s.expected - s.finished).sum(),
            running: per_shard.iter().filter(|s| s.state == "running").count(),
            unplanned: done.keys().filter(|k| !planned.contains(k.as_str())).count(),
            eta_secs: if open.is_empty() { None } else { open.iter().map(|s| s.eta_secs).try_fold(0.0f64, |m, e| e.map(|e| m.max(e))) },
            imbalance: plan.imbalance(),
            hash_imbalance: plan.hash_imbalance(),
            per_shard,
            slurm: slurm_states(dir),
        })
    }

    /// Whether every planned run has a record.
    pub fn complete(&self) -> bool {
        self.finished == self.expected
    }
}

/// The status cache in a run directory: per record file, its mtime, diverged and seconds.
const STATUS_CACHE: &str = ".status-cache.json";

/// Every finished record of `dir`'s store by key: (diverged, seconds). Records are
/// found by file name; each one's row is read once and kept in `.status-cache.json`
/// (by file name and mtime), so `status` on a 10,000-run store reads only new records.
fn finished_records(dir: &Path) -> Result<HashMap<String, (bool, f64)>> {
    let store = dir.join("store");
    let mut done = HashMap::new();
    let Ok(entries) = std::fs::read_dir(&store) else { return Ok(done) };
    let cache_path = dir.join(STATUS_CACHE);
    let cache: HashMap<String, (u64, bool, f64)> = std::fs::read_to_string(&cache_path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let mut fresh: HashMap<String, (u64, bool, f64)> = HashMap::new();
    let mut changed = false;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(key) = name.strip_suffix(".parquet").filter(|_| !name.starts_with('.')) else { continue };
        let mtime = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as u64);
        let row = match cache.get(key) {
            Some(c) if c.0 == mtime => *c,
            _ => {
                changed = true;
                let f = crate::results::Frame::read_parquet(&e.path())?;
                let diverged = f.f64_column("diverged").ok().and_then(|d| d.first().copied()).is_some_and(|x| x == 1.0);
                let seconds = f.f64_column("seconds").ok().and_then(|d| d.first().copied()).unwrap_or(f64::NAN);
                (mtime, diverged, seconds)
            }
        };
        done.insert(key.to_string(), (row.1, row.2));
        fresh.insert(key.to_string(), row);
    }
    if changed || fresh.len() != cache.len() {
        let text = serde_json::to_string(&fresh).unwrap_or_default();
        // A read-only run directory (a colleague's) only loses the cache.
        let _ = crate::results::write_durably(dir, STATUS_CACHE, |p| std::fs::write(p, &text).map_err(|e| Error::io(p, e)));
    }
    Ok(done)
}

/// `1h 02m`, `3m 20s`, `12s`.
pub fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `1.2 TFLOP`.
fn flops(x: f64) -> String {
    let (v, unit) = [(1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP")].iter().find(|(u, _)| x >= *u).map_or((x, "FLOP"), |(u, n)| (x / u, *n));
    format!("{v:.1} {unit}")
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        let _ = writeln!(s, "run directory {}  (script {}, {} planned runs in {} shards)", self.dir.display(), self.script, self.expected, self.shards);
        let eta = match (self.complete(), self.eta_secs) {
            (true, _) => "complete".to_string(),
            (false, Some(e)) => format!("about {} left", duration(e)),
            (false, None) if self.running == 0 => "nothing running".to_string(),
            (false, None) => "time left unknown until a run finishes".to_string(),
        };
        let _ = writeln!(s, "overall  {}/{} finished, {} diverged, {} running shard(s), {} failed; {eta}", self.finished, self.expected, self.diverged, self.running, self.failed);
        let _ = writeln!(s, "{:<6} {:>5} {:>9} {:>9} {:>12} {:>12}  {:<12} now", "shard", "runs", "finished", "diverged", "est. cost", "left", "state");
        for sh in &self.per_shard {
            let now = match sh.state.as_str() {
                "running" => {
                    let c = &sh.current;
                    let run = if c.is_null() {
                        "between runs".to_string()
                    } else {
                        format!("{} epoch {}/{}", c["label"].as_str().unwrap_or("?"), c["epoch"], c.get("epochs").map_or("?".into(), |e| e.to_string()))
                    };
                    format!("{run} (heartbeat {} ago)", duration(sh.heartbeat_age.unwrap_or(0.0)))
                }
                "lost" => format!("no heartbeat for {}", duration(sh.heartbeat_age.unwrap_or(0.0))),
                _ => String::new(),
            };
            let left = match sh.eta_secs {
                Some(e) if sh.state != "done" => duration(e),
                Some(_) => "-".into(),
                None => "?".into(),
            };
            let _ = writeln!(s, "{:<6} {:>5} {:>9} {:>9} {:>12} {:>12}  {:<12} {now}", sh.shard, sh.expected, sh.finished, sh.diverged, flops(sh.cost), left, sh.state);
        }
        let _ = write!(s, "balance  largest shard {:.2}x the mean estimated cost (by key hash alone: {:.2}x)", self.imbalance, self.hash_imbalance);
        if self.unplanned > 0 {
            let _ = write!(s, "\nnote     {} record(s) in the store are not in the plan (other settings or scripts)", self.unplanned);
        }
        if let Some(jobs) = self.slurm["jobs"].as_array() {
            let list: Vec<String> = jobs.iter().map(|j| format!("{} {}", j["id"].as_str().unwrap_or("?"), j["state"].as_str().unwrap_or("?"))).collect();
            let _ = write!(s, "\nslurm    {}", if list.is_empty() { "no jobs of the latest submission in the queue".to_string() } else { list.join(", ") });
        }
        f.write_str(&s)
    }
}

/// The latest submission's jobs as `squeue` lists them (finished jobs leave the queue).
fn slurm_states(dir: &Path) -> Value {
    let Ok(text) = std::fs::read_to_string(dir.join(SUBMIT_FILE)) else { return Value::Null };
    let Some(last) = serde_json::from_str::<Value>(&text).ok().and_then(|v| v.as_array().and_then(|a| a.last().cloned())) else { return Value::Null };
    let ids: Vec<String> = [&last["array_job"], &last["merge_job"]].iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
    if ids.is_empty() {
        return Value::Null;
    }
    let Ok(out) = std::process::Command::new("squeue").args(["-h", "-r", "-o", "%i %T", "-j", &ids.join(",")]).output() else { return json!({ "submission": last }) };
    let jobs: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_once(' ')).map(|(id, st)| json!({ "id": id, "state": st })).collect();
    json!({ "submission": last, "jobs": jobs })
}
