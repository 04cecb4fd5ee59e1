//! `sparselab submit`: plan, balance, job scripts, `sbatch`.
use super::{Plan, Status, SUBMIT_FILE};
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::{Path, PathBuf};

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

    #[test]
    fn task_ranges_and_shell_quotes() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }
}
