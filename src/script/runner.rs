//! Running a script file: overrides, module resolution (script dir, then the stdlib
//! embedded in the binary), error positions with code excerpts, and the manifest.
use super::{apply_overrides, engine, Context};
use crate::error::{Error, Result};
use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection, StaticModuleResolver};
use rhai::{Engine, EvalAltResult, Module, Scope};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The stdlib modules shipped inside the binary (`import "paper" as paper;`).
pub const STDLIB: &[(&str, &str)] = &[("paper", include_str!("../../stdlib/paper.rhai")), ("sweep", include_str!("../../stdlib/sweep.rhai")), ("report", include_str!("../../stdlib/report.rhai"))];

/// How to run a script.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `key=value` overrides of top-level constants.
    pub sets: Vec<String>,
    /// Run directory; default `runs/<script-name>`.
    pub out_dir: Option<PathBuf>,
    /// Validate only (`sparselab check`).
    pub validate_only: bool,
    /// Retrain runs already in the store.
    pub fresh: bool,
    /// Only train runs in shard (k, n), 0-based k.
    pub shard: Option<(u64, u64)>,
    /// Checkpoint runs every this many epochs (besides every 5 minutes and on a stop).
    pub checkpoint_every: Option<usize>,
    /// `sparselab verify`: rerun the keys it wants from the store in `out_dir` and
    /// compare; the script's own outputs go to a temp dir and nothing is written.
    pub verify: Option<std::sync::Arc<crate::experiment::Verifier>>,
    /// The script's text (instead of reading the file; overrides are still applied).
    pub source: Option<String>,
    /// Folders searched for imported modules before the script's own folder.
    pub module_dirs: Vec<PathBuf>,
}

/// What a finished script left behind.
#[derive(Debug)]
pub struct ScriptOutcome {
    /// The run directory (manifest.json is inside).
    pub out_dir: PathBuf,
    /// Whether Ctrl-C stopped it.
    pub interrupted: bool,
}

/// A script failure, already formatted with file:line:column and an excerpt.
#[derive(Debug)]
pub struct ScriptError(pub String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Adds module resolution: the script's directory first, then the embedded stdlib.
pub fn add_module_resolvers(engine: &mut Engine, script_dir: &Path) {
    add_module_resolvers_in(engine, &[], script_dir);
}

/// [`add_module_resolvers`] with `dirs` searched before the script's directory.
fn add_module_resolvers_in(engine: &mut Engine, dirs: &[PathBuf], script_dir: &Path) {
    let mut stdlib = StaticModuleResolver::new();
    for (name, src) in STDLIB {
        // A stdlib module that fails is a bug in this binary (tests import each one);
        // say so rather than stop scripts that do not import it.
        let module = match engine.compile(*src) {
            Ok(ast) => Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match module {
            Ok(m) => stdlib.insert(*name, m),
            Err(e) => crate::log::line(&format!("warning: stdlib module {name} failed to load: {e}")),
        }
    }
    let mut resolvers = ModuleResolversCollection::new();
    for d in dirs {
        resolvers.push(FileModuleResolver::new_with_path(d));
    }
    resolvers.push(FileModuleResolver::new_with_path(script_dir));
    resolvers.push(stdlib);
    engine.set_module_resolver(resolvers);
}

/// Runs `path`. The process writes its own manifest, `manifests/<shard>-<node>-<pid>.json`
/// (script, versions, settings, a heartbeat every 10 s with the run in progress, and
/// at the end the keys it trained and its status); an unsharded run also writes the
/// run directory's `manifest.json`, the merged view.
///
/// # Errors
/// Usage errors (unreadable file, bad `--set`) as [`Error`]; script failures as
/// [`ScriptError`] inside `Err(Err(..))`.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<std::result::Result<ScriptOutcome, ScriptError>> {
    Ok(run_script(path, opts, false)?.map(|(o, _)| o))
}

/// The runs `path` would train with `sets`, each with its key and estimated cost, from a
/// pass that trains nothing and writes nothing (every run is skipped as another
/// shard's would be; runs that continue a skipped run are listed after it).
///
/// # Errors
/// As [`run_file`].
pub fn plan_file(path: &Path, sets: &[String]) -> Result<std::result::Result<Vec<crate::experiment::PlannedRun>, ScriptError>> {
    let out = std::env::temp_dir().join(format!("sparselab-plan-{}-{}", std::process::id(), crate::log::utc_now().replace([':', '-'], "")));
    let r = run_script(path, &RunOptions { sets: sets.to_vec(), out_dir: Some(out.clone()), ..Default::default() }, true);
    let _ = std::fs::remove_dir_all(&out);
    Ok(r?.map(|(_, p)| p))
}

type Ran = std::result::Result<(ScriptOutcome, Vec<crate::experiment::PlannedRun>), ScriptError>;

fn run_script(path: &Path, opts: &RunOptions, plan: bool) -> Result<Ran> {
    let source = match &opts.source {
        Some(s) => s.clone(),
        None => std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
    };
    let source = apply_overrides(&source, &opts.sets)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("script");
    let out_dir = opts.out_dir.clone().unwrap_or_else(|| PathBuf::from("runs").join(stem));
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let writes = !opts.validate_only && !plan && opts.verify.is_none();
    let scratch = std::env::temp_dir().join(format!("sparselab-verify-{}-{}", std::process::id(), crate::log::utc_now().replace([':', '-'], "")));
    let ctx = if plan {
        Context::planning(&out_dir)
    } else if let Some(v) = &opts.verify {
        let store = crate::results::Store::open(out_dir.join("store"))?;
        std::rc::Rc::new(Context { out_dir: scratch.clone(), session: crate::experiment::Session::verifying(store, v.clone()) })
    } else if opts.validate_only {
        Context::new(&out_dir, true)
    } else {
        let mut store = crate::results::Store::open(out_dir.join("store"))?;
        store.fresh = opts.fresh;
        store.shard = opts.shard;
        if let Some((k, n)) = opts.shard {
            store.assignment = crate::cluster::Plan::assignment(&out_dir, &source, n)?;
            if store.assignment.is_some() {
                crate::log::line(&format!("shard {}/{n}: runs assigned by {} (balanced by estimated cost)", k + 1, out_dir.join(crate::cluster::PLAN_FILE).display()));
            }
        }
        if let (Some(k), Some(p)) = (opts.checkpoint_every, store.checkpoints.as_mut()) {
            p.every_epochs = k;
        }
        Context::with_store(&out_dir, store)
    };
    let manifest = std::sync::Arc::new(std::sync::Mutex::new(Manifest::new(path, &source, &opts.sets, opts.shard)));
    let beat = writes.then(|| Heartbeat::start(manifest.clone(), out_dir.clone()));
    if let Some(b) = &beat {
        b.write()?;
    }
    let mut eng = engine(ctx.clone());
    add_module_resolvers_in(&mut eng, &opts.module_dirs, path.parent().unwrap_or(Path::new(".")));
    // A planning pass says nothing: its results are all skipped runs.
    // A verifying pass keeps the training log (stderr) but not the script's prints,
    // so its report (or --json) is all that reaches stdout.
    if opts.verify.is_some() {
        eng.on_print(|_| {});
        eng.on_debug(|_, _, _| {});
    }
    let quiet = plan.then(|| {
        eng.on_print(|_| {});
        eng.on_debug(|_, _, _| {});
        crate::log::replace_sink(Some(std::rc::Rc::new(|_: &str| {})))
    });
    let result = eng.compile(&source).map_err(|e| format_error(path, &source, &EvalAltResult::from(e))).and_then(|ast| eng.run_ast(&ast).map_err(|e| format_error(path, &source, &e)));
    if let Some(previous) = quiet {
        crate::log::replace_sink(previous);
    }
    // A process that skipped runs (a shard, or a planning pass) sees only part of the
    // results: an error from analysing them stops the script there but not the task.
    // The runs it trained are recorded; the unsharded merge run trains what is left
    // after that point and writes the full results (or fails with the error for real).
    let skipped = ctx.session.skipped();
    let mut partial = None;
    let result = match result {
        Err(e) if skipped > 0 && !crate::cancel::requested() && (plan || opts.shard.is_some()) => {
            let what = if plan { "planning stopped" } else { "this shard stopped" };
            crate::log::line(&format!(
                "warning: {what} at an error, after skipping {skipped} run(s) of other shards whose results it would need:\n{e}\n{}",
                if plan {
                    "runs the script reaches after this point are not in the plan (shards assign them by key hash; the merge run trains any left)"
                } else {
                    "its runs so far are recorded; the unsharded merge run trains the rest and writes the full results"
                }
            ));
            partial = Some(e);
            Ok(())
        }
        other => other,
    };
    let interrupted = crate::cancel::requested();
    let status = if interrupted {
        "interrupted"
    } else if partial.is_some() {
        "partial"
    } else if result.is_ok() {
        "ok"
    } else {
        "error"
    };
    if let Ok(mut m) = manifest.lock() {
        m.finish(&ctx, status, result.as_ref().err().or(partial.as_ref()).map(String::as_str));
    }
    if let Some(b) = beat {
        b.stop()?;
        if opts.shard.is_none() {
            manifest.lock().map_err(|_| Error::config("manifest", "poisoned"))?.write_merged(&out_dir)?;
        }
    }
    let planned = ctx.session.planned();
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(match result {
        Ok(()) => Ok((ScriptOutcome { out_dir, interrupted }, planned)),
        Err(_) if interrupted => Ok((ScriptOutcome { out_dir, interrupted }, planned)),
        Err(e) => Err(ScriptError(e)),
    })
}

/// Parses and validates `path` without training (`sparselab check`).
pub fn check_file(path: &Path, sets: &[String]) -> Result<std::result::Result<ScriptOutcome, ScriptError>> {
    let out = std::env::temp_dir().join(format!("sparselab-check-{}", std::process::id()));
    let r = run_file(path, &RunOptions { sets: sets.to_vec(), out_dir: Some(out.clone()), validate_only: true, ..Default::default() });
    let _ = std::fs::remove_dir_all(&out);
    r
}

/// `FILE:LINE:COL: message` plus the offending line and a caret.
pub fn format_error(path: &Path, source: &str, err: &EvalAltResult) -> String {
    let pos = err.position();
    let msg = error_message(err);
    match (pos.line(), pos.position()) {
        (Some(line), col) => {
            let col = col.unwrap_or(1);
            let text = source.lines().nth(line - 1).unwrap_or("");
            let gutter = format!("{line:>4} | ");
            format!("{}:{line}:{col}: {msg}\n{gutter}{text}\n{}^", path.display(), " ".repeat(gutter.len() + col.saturating_sub(1)))
        }
        _ => format!("{}: {msg}", path.display()),
    }
}

/// The innermost useful message (function-call wrappers removed).
fn error_message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorInFunctionCall(name, _, inner, _) => {
            let m = error_message(inner);
            if name.starts_with("anon$") {
                m
            } else {
                format!("in {name}(): {m}")
            }
        }
        EvalAltResult::ErrorInModule(name, inner, _) => format!("in module {name}: {}", error_message(inner)),
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        other => {
            let s = other.to_string();
            // Rhai appends " (line L, position P)"; we print the position ourselves.
            s.split(" (line ").next().unwrap_or(&s).to_string()
        }
    }
}

struct Manifest(serde_json::Map<String, serde_json::Value>);

/// Seconds between heartbeats of a running process's manifest.
pub const HEARTBEAT_SECS: u64 = 10;

impl Manifest {
    fn new(path: &Path, source: &str, sets: &[String], shard: Option<(u64, u64)>) -> Self {
        use serde_json::json;
        let mut m = serde_json::Map::new();
        m.insert("script".into(), json!(path.display().to_string()));
        m.insert("script_sha256".into(), json!(format!("{:x}", Sha256::digest(source.as_bytes()))));
        m.insert("sets".into(), json!(sets));
        m.insert("sparselab".into(), json!(crate::version()));
        m.insert("git_commit".into(), json!(option_env!("SPARSELAB_GIT_COMMIT").unwrap_or("unknown")));
        m.insert("libtorch".into(), json!(crate::libtorch_version()));
        m.insert("node".into(), json!(crate::results::node_id()));
        m.insert("environment".into(), crate::repro::environment(None));
        m.insert("pid".into(), json!(std::process::id()));
        m.insert("shard".into(), json!(shard.map(|(k, n)| json!({ "k": k + 1, "n": n }))));
        let slurm: serde_json::Map<String, serde_json::Value> = ["SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST", "SLURM_CPUS_PER_TASK"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), json!(v))))
            .collect();
        if !slurm.is_empty() {
            m.insert("slurm".into(), json!(slurm));
        }
        m.insert("started".into(), json!(crate::log::utc_now()));
        beat(&mut m);
        m.insert("status".into(), json!("running"));
        m.insert("script_text".into(), json!(source));
        // The modules it imports as found now (a module that is missing fails the run
        // itself, with its own message).
        let dir = path.parent().unwrap_or(Path::new("."));
        let modules: Vec<serde_json::Value> = crate::share::modules(source, dir)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, text)| json!({ "name": name, "sha256": format!("{:x}", Sha256::digest(text.as_bytes())), "from": if dir.join(format!("{name}.rhai")).is_file() { "script folder" } else { "stdlib" } }))
            .collect();
        m.insert("modules".into(), json!(modules));
        Manifest(m)
    }

    fn finish(&mut self, ctx: &Context, status: &str, error: Option<&str>) {
        use serde_json::json;
        self.0.insert("seeds".into(), json!(ctx.session.seeds()));
        self.0.insert("devices".into(), json!(ctx.session.devices()));
        self.0.insert("data".into(), json!(ctx.session.datasets()));
        self.0.insert("trained".into(), json!(ctx.session.trained()));
        self.0.insert("ended".into(), json!(crate::log::utc_now()));
        beat(&mut self.0);
        self.0.insert("current".into(), serde_json::Value::Null);
        self.0.insert("status".into(), json!(status));
        if let Some(e) = error {
            self.0.insert("error".into(), json!(e));
        }
    }

    /// This process's manifest file name: `<shard-K-of-N|run>-<node>-<pid>.json`.
    fn file_name(&self) -> String {
        let shard = match self.0.get("shard").and_then(|s| s.as_object()) {
            Some(s) => format!("shard-{}-of-{}", s["k"], s["n"]),
            None => "run".into(),
        };
        format!("{shard}-{}-{}.json", crate::results::node_id(), std::process::id())
    }

    /// Writes this process's manifest into `<dir>/manifests/`.
    fn write(&self, dir: &Path) -> Result<()> {
        let dir = dir.join(MANIFESTS);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let text = serde_json::to_string_pretty(&self.0).unwrap_or_default();
        crate::results::write_durably(&dir, &self.file_name(), |p| std::fs::write(p, &text).map_err(|e| Error::io(p, e)))
    }

    /// Writes `<dir>/manifest.json`: this (unsharded) run's manifest plus a summary of
    /// every process that wrote into the directory (shards included).
    fn write_merged(&self, dir: &Path) -> Result<()> {
        let mut m = self.0.clone();
        let processes: Vec<serde_json::Value> = read_manifests(dir)
            .into_iter()
            .map(|p| serde_json::json!({ "node": p["node"], "pid": p["pid"], "shard": p["shard"], "slurm": p.get("slurm"), "started": p["started"], "ended": p.get("ended"), "status": p["status"], "trained": p.get("trained").and_then(|t| t.as_array()).map_or(0, Vec::len) }))
            .collect();
        m.insert("processes".into(), serde_json::json!(processes));
        let text = serde_json::to_string_pretty(&m).unwrap_or_default();
        crate::results::write_durably(dir, "manifest.json", |p| std::fs::write(p, &text).map_err(|e| Error::io(p, e)))
    }
}

/// Marks a manifest alive now (`heartbeat`, and `heartbeat_unix` in seconds).
fn beat(m: &mut serde_json::Map<String, serde_json::Value>) {
    m.insert("heartbeat".into(), serde_json::json!(crate::log::utc_now()));
    m.insert("heartbeat_unix".into(), serde_json::json!(crate::cluster::unix_now()));
}

/// The folder of per-process manifests inside a run directory.
pub const MANIFESTS: &str = "manifests";

/// Every per-process manifest in the run directory `dir`, oldest first.
pub fn read_manifests(dir: &Path) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = std::fs::read_dir(dir.join(MANIFESTS))
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json") && !e.file_name().to_string_lossy().starts_with('.'))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|t| serde_json::from_str(&t).ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a: &serde_json::Value, b| a["started"].as_str().cmp(&b["started"].as_str()));
    out
}

/// Rewrites a running process's manifest every [`HEARTBEAT_SECS`] with the time and
/// the run in progress.
struct Heartbeat {
    manifest: std::sync::Arc<std::sync::Mutex<Manifest>>,
    dir: PathBuf,
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(manifest: std::sync::Arc<std::sync::Mutex<Manifest>>, dir: PathBuf) -> Self {
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let (m, d) = (manifest.clone(), dir.clone());
        let secs = std::env::var("SPARSELAB_HEARTBEAT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(HEARTBEAT_SECS);
        let thread = std::thread::spawn(move || {
            // Every `secs`, and within a second of a run starting or ending.
            let (mut last, mut shown) = (std::time::Instant::now(), serde_json::Value::Null);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(std::time::Duration::from_secs(1)) {
                let now = crate::activity::snapshot();
                if last.elapsed().as_secs() < secs && now["key"] == shown["key"] {
                    continue;
                }
                (last, shown) = (std::time::Instant::now(), now.clone());
                if let Ok(mut m) = m.lock() {
                    beat(&mut m.0);
                    m.0.insert("current".into(), now);
                    if let Err(e) = m.write(&d) {
                        crate::log::line(&format!("warning: heartbeat: {e}"));
                    }
                }
            }
        });
        Heartbeat { manifest, dir, stop, thread: Some(thread) }
    }

    fn write(&self) -> Result<()> {
        self.manifest.lock().map_err(|_| Error::config("manifest", "poisoned"))?.write(&self.dir)
    }

    /// Stops the heartbeat and writes the final manifest.
    fn stop(mut self) -> Result<()> {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.write()
    }
}
