//! Sweeps on a cluster: a plan of every run a script trains (key, estimated cost),
//! shards balanced by that cost, Slurm job arrays (`sparselab submit`) and a status
//! view of a run directory while the array runs and after (`sparselab status`).
//!
//! Nothing here coordinates processes: each array task trains the runs the plan
//! assigns to its shard into the shared store (records are written atomically with
//! unique temp names), writes its own manifest with a heartbeat, and checkpoints its
//! runs; `status` only reads files.
use crate::error::{Error, Result};
use crate::experiment::PlannedRun;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The plan's file in a run directory.
pub const PLAN_FILE: &str = "plan.json";

/// Submissions (job ids, shards) are appended here.
pub const SUBMIT_FILE: &str = "submit.json";

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Every run of a sweep and the shard that trains it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The script, as given.
    pub script: String,
    /// SHA-256 of the script's text after `--set` overrides (as in the manifests).
    pub script_sha256: String,
    /// The overrides.
    pub sets: Vec<String>,
    /// Number of shards.
    pub shards: u64,
    /// When it was made (UTC).
    pub created: String,
    /// The runs in the order the script reaches them, each with its shard.
    pub runs: Vec<PlanEntry>,
}

/// One planned run and its shard (1-based, as `--shard K/N` and `SLURM_ARRAY_TASK_ID`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanEntry {
    /// The run.
    #[serde(flatten)]
    pub run: PlannedRun,
    /// Its shard, 1..=N.
    pub shard: u64,
}

/// Shards (0-based) for `runs` over `n` shards, balanced by estimated cost: runs that
/// continue one another (a run's `after`) form one chain that one shard trains in
/// order; chains go, most expensive first, to the shard with the least cost so far
/// (ties: the lower shard). Runs without a cost estimate count as the mean of those
/// with one (or 1).
pub fn balance(runs: &[PlannedRun], n: u64) -> Vec<u64> {
    let n = n.max(1);
    let index: HashMap<&str, usize> = runs.iter().enumerate().map(|(i, r)| (r.key.as_str(), i)).collect();
    let mut parent: Vec<usize> = (0..runs.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for (i, r) in runs.iter().enumerate() {
        for a in &r.after {
            if let Some(&j) = index.get(a.as_str()) {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri.max(rj)] = ri.min(rj);
            }
        }
    }
    let known: Vec<f64> = runs.iter().map(|r| r.cost).filter(|c| *c > 0.0).collect();
    let fallback = if known.is_empty() { 1.0 } else { known.iter().sum::<f64>() / known.len() as f64 };
    let mut chains: HashMap<usize, (f64, usize)> = HashMap::new();
    for (i, r) in runs.iter().enumerate() {
        let c = chains.entry(root(&mut parent, i)).or_insert((0.0, i));
        c.0 += if r.cost > 0.0 { r.cost } else { fallback };
    }
    let mut order: Vec<(usize, f64, usize)> = chains.into_iter().map(|(root, (cost, first))| (root, cost, first)).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    let mut load = vec![0.0f64; n as usize];
    let mut shard_of_root: HashMap<usize, u64> = HashMap::new();
    for (root, cost, _) in order {
        let s = (0..n as usize).min_by(|a, b| load[*a].total_cmp(&load[*b]).then(a.cmp(b))).unwrap_or(0);
        load[s] += cost;
        shard_of_root.insert(root, s as u64);
    }
    (0..runs.len()).map(|i| shard_of_root[&root(&mut parent, i)]).collect()
}

impl Plan {
    /// The plan of `runs` over `shards` for `script` (text `source` after overrides `sets`).
    pub fn new(script: &Path, source: &str, sets: &[String], shards: u64, runs: Vec<PlannedRun>) -> Plan {
        let assigned = balance(&runs, shards);
        Plan {
            script: script.display().to_string(),
            script_sha256: format!("{:x}", Sha256::digest(source.as_bytes())),
            sets: sets.to_vec(),
            shards,
            created: crate::log::utc_now(),
            runs: runs.into_iter().zip(assigned).map(|(run, s)| PlanEntry { run, shard: s + 1 }).collect(),
        }
    }

    /// Writes `<dir>/plan.json` atomically.
    ///
    /// # Errors
    /// An unwritable directory.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        crate::results::write_durably(dir, PLAN_FILE, |p| std::fs::write(p, &text).map_err(|e| Error::io(p, e)))
    }

    /// Reads `<dir>/plan.json`, if there is one.
    ///
    /// # Errors
    /// A plan file that cannot be read or parsed.
    pub fn read(dir: &Path) -> Result<Option<Plan>> {
        let path = dir.join(PLAN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t).map(Some).map_err(|e| Error::data(&path, e.to_string())),
            Err(_) => Ok(None),
        }
    }

    /// The shard (0-based) of each planned run, for `--shard K/N` in `dir`: from the
    /// plan when it was made for this script text (`source`, after overrides) and `n`
    /// shards; otherwise none (runs fall to shards by key hash), with a warning when
    /// a plan for something else is there.
    ///
    /// # Errors
    /// An unreadable plan file.
    pub fn assignment(dir: &Path, source: &str, n: u64) -> Result<Option<std::sync::Arc<HashMap<String, u64>>>> {
        let Some(plan) = Plan::read(dir)? else { return Ok(None) };
        let sha = format!("{:x}", Sha256::digest(source.as_bytes()));
        if plan.shards != n || plan.script_sha256 != sha {
            crate::log::line(&format!(
                "warning: {} was made for {} shards of a script with sha256 {}, not {n} shards of this one ({}); runs are assigned to shards by key hash",
                dir.join(PLAN_FILE).display(),
                plan.shards,
                &plan.script_sha256[..12.min(plan.script_sha256.len())],
                &sha[..12]
            ));
            return Ok(None);
        }
        Ok(Some(std::sync::Arc::new(plan.runs.iter().map(|e| (e.run.key.clone(), e.shard - 1)).collect())))
    }

    /// Estimated cost and number of runs per shard (index 0 is shard 1).
    pub fn loads(&self) -> Vec<(f64, usize)> {
        let mut out = vec![(0.0, 0); self.shards as usize];
        for e in &self.runs {
            if let Some(s) = out.get_mut(e.shard as usize - 1) {
                s.0 += e.run.cost;
                s.1 += 1;
            }
        }
        out
    }

    /// The largest shard's estimated cost over the mean shard's (1 is perfect balance).
    pub fn imbalance(&self) -> f64 {
        let loads = self.loads();
        let mean = loads.iter().map(|l| l.0).sum::<f64>() / loads.len().max(1) as f64;
        if mean > 0.0 {
            loads.iter().map(|l| l.0).fold(0.0, f64::max) / mean
        } else {
            1.0
        }
    }

    /// What key hashing alone (`--shard` without a plan) would give: the largest shard's
    /// cost over the mean.
    pub fn hash_imbalance(&self) -> f64 {
        let n = self.shards.max(1);
        let mut load = vec![0.0f64; n as usize];
        for e in &self.runs {
            let h = u64::from_str_radix(&e.run.key[..16.min(e.run.key.len())], 16).unwrap_or(0);
            load[(h % n) as usize] += e.run.cost;
        }
        let mean = load.iter().sum::<f64>() / n as f64;
        if mean > 0.0 {
            load.iter().copied().fold(0.0, f64::max) / mean
        } else {
            1.0
        }
    }
}

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

/// `sparselab submit` settings.
#[derive(Clone, Debug, Default)]
pub struct SubmitOptions {
    /// The script.
    pub script: PathBuf,
    /// Shards (array tasks).
    pub shards: u64,
    /// `--set` overrides.
    pub sets: Vec<String>,
    /// Run directory (default `runs/<script name>`).
    pub out: Option<PathBuf>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (the task's limit; the run in progress checkpoints on the SIGTERM before it).
    pub time: Option<String>,
    /// `--cpus-per-task` (libtorch's threads).
    pub cpus_per_task: Option<u32>,
    /// `--mem`.
    pub mem: Option<String>,
    /// `--gres`, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// Further sbatch arguments, one each (`--sbatch-arg=--qos=low`).
    pub sbatch_args: Vec<String>,
    /// Checkpoint every K epochs in the tasks.
    pub checkpoint_every: Option<usize>,
    /// Write the plan and job scripts, submit nothing.
    pub dry_run: bool,
}

/// What `submit` did.
#[derive(Clone, Debug, Serialize)]
pub struct Submission {
    /// The run directory.
    pub out: PathBuf,
    /// The plan (also in `<out>/plan.json`).
    #[serde(skip)]
    pub plan: Option<Plan>,
    /// Shards (1-based) with runs left to train: the array's tasks.
    pub tasks: Vec<u64>,
    /// The array's job script.
    pub array_script: PathBuf,
    /// The merge job's script.
    pub merge_script: PathBuf,
    /// The array's job id (none on a dry run or when nothing is left to train).
    pub array_job: Option<String>,
    /// The merge job's id (none on a dry run).
    pub merge_job: Option<String>,
}

/// Single-quotes `s` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `1-3,5,7-8`.
fn ranges(tasks: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tasks.len() {
        let mut j = i;
        while j + 1 < tasks.len() && tasks[j + 1] == tasks[j] + 1 {
            j += 1;
        }
        out.push(if i == j { tasks[i].to_string() } else { format!("{}-{}", tasks[i], tasks[j]) });
        i = j + 1;
    }
    out.join(",")
}

/// Plans `opts.script` (a pass that trains nothing), balances its runs over
/// `opts.shards`, writes `plan.json` and the job scripts into the run directory
/// (`slurm/array.sh`, `slurm/merge.sh`), and, unless a dry run, submits the array
/// for the shards with runs left to train and a merge job (`afterok`, cancelled by
/// Slurm if a task fails) that reruns the script unsharded to write the full tables
/// and charts. Resubmitting trains only what is missing.
///
/// # Errors
/// Bad options, a script that fails in planning (as a [`crate::script::ScriptOutcome`]
/// error message), no `sbatch`, a refused submission (sbatch's message).
pub fn submit(opts: &SubmitOptions) -> Result<Submission> {
    if opts.shards == 0 {
        return Err(Error::config("--shards", "0 must be >= 1 (the number of array tasks)"));
    }
    let source = std::fs::read_to_string(&opts.script).map_err(|e| Error::io(&opts.script, e))?;
    let source = crate::script::apply_overrides(&source, &opts.sets)?;
    let stem = opts.script.file_stem().and_then(|s| s.to_str()).unwrap_or("script").to_string();
    let out = opts.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&stem));
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let abs = |p: &Path| std::fs::canonicalize(p).map_err(|e| Error::io(p, e));
    let (out, script) = (abs(&out)?, abs(&opts.script)?);
    let runs = crate::script::plan_file(&script, &opts.sets)?.map_err(|e| Error::config("script", format!("planning {} failed:\n{e}", opts.script.display())))?;
    let plan = Plan::new(&opts.script, &source, &opts.sets, opts.shards, runs);
    plan.write(&out)?;
    let store = out.join("store");
    let finished = |key: &str| store.join(format!("{key}.parquet")).exists();
    let mut tasks: Vec<u64> = plan.runs.iter().filter(|e| !finished(&e.run.key)).map(|e| e.shard).collect();
    tasks.sort_unstable();
    tasks.dedup();
    // A shard whose process is still running (a live heartbeat) is not submitted twice.
    let running: Vec<u64> = Status::of(&out)?.per_shard.iter().filter(|s| s.state == "running").map(|s| s.shard).collect();
    if !running.is_empty() {
        crate::log::line(&format!("shard(s) {running:?} are running now (live heartbeat): not resubmitted"));
        tasks.retain(|t| !running.contains(t));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let slurm_dir = out.join("slurm");
    std::fs::create_dir_all(&slurm_dir).map_err(|e| Error::io(&slurm_dir, e))?;
    let mut header = String::new();
    let mut directive = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            let _ = writeln!(header, "#SBATCH --{k}={v}");
        }
    };
    directive("partition", opts.partition.clone());
    directive("time", opts.time.clone());
    directive("cpus-per-task", opts.cpus_per_task.map(|c| c.to_string()));
    directive("mem", opts.mem.clone());
    directive("gres", opts.gres.clone());
    directive("account", opts.account.clone());
    let sets: String = opts.sets.iter().map(|s| format!(" --set {}", quote(s))).collect();
    let env: String = ["SPARSELAB_DATA", "SPARSELAB_CACHE", "LD_LIBRARY_PATH"].iter().filter_map(|k| std::env::var(k).ok().map(|v| format!("export {k}={}\n", quote(&v)))).collect();
    let common = format!(
        "# Written by sparselab {} ({}) for {} (sha256 {}).\n# Binary: {}\n# Threads: libtorch uses the task's CPUs.\nexport OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}}\n{env}cd {}\n",
        crate::version(),
        crate::libtorch_version(),
        opts.script.display(),
        plan.script_sha256,
        exe.display(),
        quote(&std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| ".".into()))
    );
    let every = opts.checkpoint_every.map(|k| format!(" --checkpoint-every {k}")).unwrap_or_default();
    let array_script = slurm_dir.join("array.sh");
    let array = format!(
        "#!/bin/bash\n#SBATCH --job-name=sl-{stem}\n#SBATCH --output={}/%A_%a.out\n#SBATCH --open-mode=append\n{header}{common}# Slurm sends SIGTERM before a time limit or preemption: the run in progress\n# checkpoints and the next submission resumes it.\nexec {} run {} --out {} --shard ${{SLURM_ARRAY_TASK_ID}}/{}{sets}{every}\n",
        slurm_dir.display(),
        quote(&exe.display().to_string()),
        quote(&script.display().to_string()),
        quote(&out.display().to_string()),
        opts.shards
    );
    let merge_script = slurm_dir.join("merge.sh");
    let merge = format!(
        "#!/bin/bash\n#SBATCH --job-name=sl-{stem}-merge\n#SBATCH --output={}/merge_%j.out\n{header}{common}# Every run is in the store: this reads them and writes the full tables and charts.\nexec {} run {} --out {}{sets}\n",
        slurm_dir.display(),
        quote(&exe.display().to_string()),
        quote(&script.display().to_string()),
        quote(&out.display().to_string())
    );
    for (p, text) in [(&array_script, &array), (&merge_script, &merge)] {
        std::fs::write(p, text).map_err(|e| Error::io(p, e))?;
    }
    let mut sub = Submission { out: out.clone(), plan: Some(plan), tasks: tasks.clone(), array_script, merge_script, array_job: None, merge_job: None };
    if opts.dry_run {
        return Ok(sub);
    }
    let sbatch = |args: &[String]| -> Result<String> {
        let o = std::process::Command::new("sbatch").args(args).output().map_err(|e| Error::config("sbatch", format!("cannot run sbatch ({e}): is Slurm installed here (`which sbatch`)?")))?;
        if !o.status.success() {
            return Err(Error::config("sbatch", format!("sbatch {} refused: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())));
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().split(';').next().unwrap_or("").to_string())
    };
    if !tasks.is_empty() {
        let mut args = vec!["--parsable".to_string(), format!("--array={}", ranges(&tasks))];
        args.extend(opts.sbatch_args.iter().cloned());
        args.push(sub.array_script.display().to_string());
        sub.array_job = Some(sbatch(&args)?);
    }
    // The merge waits for the new array (afterok) and for tasks of the last submission
    // still running (afterany: they may end by a time limit; the merge then trains the rest).
    let previous: Option<String> = std::fs::read_to_string(out.join(SUBMIT_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<Value>>(&t).ok())
        .and_then(|h| h.last().and_then(|l| l["array_job"].as_str().map(str::to_string)))
        .filter(|_| !running.is_empty());
    let mut deps: Vec<String> = sub.array_job.iter().map(|j| format!("afterok:{j}")).collect();
    deps.extend(previous.iter().map(|j| format!("afterany:{j}")));
    let mut args = vec!["--parsable".to_string()];
    if !deps.is_empty() {
        args.extend([format!("--dependency={}", deps.join(",")), "--kill-on-invalid-dep=yes".to_string()]);
    }
    args.extend(opts.sbatch_args.iter().cloned());
    args.push(sub.merge_script.display().to_string());
    sub.merge_job = Some(sbatch(&args)?);
    let path = out.join(SUBMIT_FILE);
    let mut history: Vec<Value> = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    history.push(json!({ "time": crate::log::utc_now(), "shards": opts.shards, "tasks": tasks, "array_job": sub.array_job, "merge_job": sub.merge_job, "sets": opts.sets }));
    let text = serde_json::to_string_pretty(&history).unwrap_or_default();
    crate::results::write_durably(&out, SUBMIT_FILE, |p| std::fs::write(p, &text).map_err(|e| Error::io(p, e)))?;
    Ok(sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(key: &str, cost: f64, after: &[&str]) -> PlannedRun {
        PlannedRun { key: key.into(), kind: "train".into(), label: String::new(), cost, after: after.iter().map(|a| a.to_string()).collect() }
    }

    /// Longest first to the least loaded shard, by hand: costs 10, 7, 6, 5, 4, 1 over
    /// two shards: 10 -> s0 (10), 7 -> s1 (7), 6 -> s1 (13), 5 -> s0 (15), 4 -> s1
    /// (17), 1 -> s0 (16). A chain (b after a) stays on one shard.
    #[test]
    fn balance_by_hand() {
        let runs: Vec<PlannedRun> = [("a", 10.0), ("b", 7.0), ("c", 6.0), ("d", 5.0), ("e", 4.0), ("f", 1.0)].iter().map(|(k, c)| run(k, *c, &[])).collect();
        assert_eq!(balance(&runs, 2), vec![0, 1, 1, 0, 1, 0]);
        let chained = vec![run("a", 3.0, &[]), run("b", 3.0, &["a"]), run("c", 5.0, &[]), run("d", 1.0, &[])];
        // chain a+b costs 6 -> s0; c (5) -> s1; d (1) -> s1.
        assert_eq!(balance(&chained, 2), vec![0, 0, 1, 1]);
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }
}
