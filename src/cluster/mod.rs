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
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

mod status;
mod submit;
pub use status::{duration, lost_after_secs, ShardStatus, Status};
pub use submit::{submit, Submission, SubmitOptions};

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
        max_over_mean(&self.loads().iter().map(|l| l.0).collect::<Vec<_>>())
    }

    /// What key hashing alone (`--shard` without a plan) would give: the largest shard's
    /// cost over the mean.
    pub fn hash_imbalance(&self) -> f64 {
        let mut load = vec![0.0f64; self.shards.max(1) as usize];
        for e in &self.runs {
            load[crate::results::Store::hash_shard(&e.run.key, self.shards).unwrap_or(0) as usize] += e.run.cost;
        }
        max_over_mean(&load)
    }
}

/// The largest load over the mean (1 when there is no load).
fn max_over_mean(loads: &[f64]) -> f64 {
    let mean = loads.iter().sum::<f64>() / loads.len().max(1) as f64;
    if mean > 0.0 {
        loads.iter().copied().fold(0.0, f64::max) / mean
    } else {
        1.0
    }
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
    }
}
