//! The run store against real processes: kill -9 mid-sweep, concurrent writers, shards.
use sparselab::results::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sparselab");
const SWEEP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sweep.rhai");

fn tmp(name: &str) -> PathBuf {
    super::common::fresh_dir("store", name)
}

fn records(dir: &Path, ext: &str) -> usize {
    super::common::count_files(dir, ext)
}

fn run(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN).args(["run", SWEEP, "--out"]).arg(out).args(extra).output().expect("spawn sparselab")
}

fn assert_complete(out: &Path, n: usize) {
    let store = Store::open(out.join("store")).unwrap();
    let frame = store.frame().unwrap();
    assert_eq!(frame.height(), n, "{frame}");
    let mut keys = frame.str_column("key").unwrap();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate records");
    assert_eq!(records(&out.join("store"), ".json"), n);
    let seeds = frame.f64_column("seed").unwrap();
    let mut seeds: Vec<i64> = seeds.iter().map(|s| *s as i64).collect();
    seeds.sort();
    assert_eq!(seeds, (0..n as i64).collect::<Vec<_>>());
}

#[test]
fn kill_9_mid_sweep_loses_only_runs_in_flight() {
    let out = tmp("kill");
    let mut child = Command::new(BIN).args(["run", SWEEP, "--out"]).arg(&out).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while records(&out.join("store"), ".parquet") < 2 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let finished = records(&out.join("store"), ".parquet");
    assert!((2..6).contains(&finished), "kill came too late to test anything: {finished} finished");
    let rerun = run(&out, &[]);
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert_eq!(stderr.matches("reused").count(), finished, "{stderr}");
    assert_complete(&out, 6);
    // No temp files from the killed writer survive the rerun's open.
    let temps = std::fs::read_dir(out.join("store")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-")).count();
    assert_eq!(temps, 0);
    // --fresh retrains everything and still leaves one record per run.
    let fresh = run(&out, &["--fresh", "--set", "runs=2"]);
    assert!(fresh.status.success());
    assert_eq!(String::from_utf8_lossy(&fresh.stderr).matches("reused").count(), 0);
    assert_complete(&out, 6);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn two_processes_on_one_sweep_do_not_corrupt_the_store() {
    let out = tmp("concurrent");
    let a = Command::new(BIN).args(["run", SWEEP, "--out"]).arg(&out).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let b = Command::new(BIN).args(["run", SWEEP, "--out"]).arg(&out).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    assert_complete(&out, 6);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn shards_fill_one_store() {
    let out = tmp("shards");
    let children: Vec<_> =
        (1..=3).map(|k| Command::new(BIN).args(["run", SWEEP, "--out"]).arg(&out).args(["--shard", &format!("{k}/3")]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()).collect();
    let mut trained = 0;
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        // A run is skipped (another shard's, unfinished) or reused (another shard finished it first).
        trained += 6 - err.matches("skipped").count() - err.matches("reused").count();
    }
    assert_eq!(trained, 6, "each run trained by exactly one shard");
    assert_complete(&out, 6);
    let bad = Command::new(BIN).args(["run", SWEEP, "--shard", "4/3"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn a_rerun_search_reuses_its_trials_and_continues_with_the_same_history() {
    let out = tmp("snas");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/snas_small.rhai");
    let first = Command::new(BIN).args(["run", script, "--out"]).arg(&out).args(["--set", "samples=3"]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(records(&out.join("store"), ".parquet"), 3);
    let h3 = std::fs::read_to_string(out.join("history.csv")).unwrap();
    // Continue to 4 samples: the first 3 trials come from the store, one is new.
    let second = Command::new(BIN).args(["run", script, "--out"]).arg(&out).output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(records(&out.join("store"), ".parquet"), 4);
    let h4 = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let (l3, l4): (Vec<&str>, Vec<&str>) = (h3.lines().collect(), h4.lines().collect());
    assert_eq!(l4.len(), 5);
    assert_eq!(&l4[..4], &l3[..], "the stored trials must replay identically");
    // And the best model, retrained from the store when needed, gives the same test accuracy.
    let best = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or("").to_string();
    let third = Command::new(BIN).args(["run", script, "--out"]).arg(&out).output().unwrap();
    assert_eq!(best(&third), best(&second));
    std::fs::remove_dir_all(&out).ok();
}
