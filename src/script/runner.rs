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
    resolvers.push(FileModuleResolver::new_with_path(script_dir));
    resolvers.push(stdlib);
    engine.set_module_resolver(resolvers);
}

/// Runs `path`; writes `manifest.json` into the run directory first and completes it at the end.
///
/// # Errors
/// Usage errors (unreadable file, bad `--set`) as [`Error`]; script failures as
/// [`ScriptError`] inside `Err(Err(..))`.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<std::result::Result<ScriptOutcome, ScriptError>> {
    let source = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let source = apply_overrides(&source, &opts.sets)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("script");
    let out_dir = opts.out_dir.clone().unwrap_or_else(|| PathBuf::from("runs").join(stem));
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let ctx = if opts.validate_only {
        Context::new(&out_dir, true)
    } else {
        let mut store = crate::results::Store::open(out_dir.join("store"))?;
        store.fresh = opts.fresh;
        store.shard = opts.shard;
        Context::with_store(&out_dir, store)
    };
    let mut manifest = Manifest::new(path, &source, &opts.sets);
    if !opts.validate_only {
        manifest.write(&out_dir)?;
    }
    let mut eng = engine(ctx.clone());
    add_module_resolvers(&mut eng, path.parent().unwrap_or(Path::new(".")));
    let result = eng.compile(&source).map_err(|e| format_error(path, &source, &EvalAltResult::from(e))).and_then(|ast| eng.run_ast(&ast).map_err(|e| format_error(path, &source, &e)));
    let interrupted = crate::cancel::requested();
    manifest.finish(
        &ctx,
        if interrupted {
            "interrupted"
        } else if result.is_ok() {
            "ok"
        } else {
            "error"
        },
    );
    if !opts.validate_only {
        manifest.write(&out_dir)?;
    }
    Ok(match result {
        Ok(()) => Ok(ScriptOutcome { out_dir, interrupted }),
        Err(_) if interrupted => Ok(ScriptOutcome { out_dir, interrupted }),
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

impl Manifest {
    fn new(path: &Path, source: &str, sets: &[String]) -> Self {
        use serde_json::json;
        let mut m = serde_json::Map::new();
        m.insert("script".into(), json!(path.display().to_string()));
        m.insert("script_sha256".into(), json!(format!("{:x}", Sha256::digest(source.as_bytes()))));
        m.insert("sets".into(), json!(sets));
        m.insert("sparselab".into(), json!(crate::version()));
        m.insert("git_commit".into(), json!(option_env!("SPARSELAB_GIT_COMMIT").unwrap_or("unknown")));
        m.insert("libtorch".into(), json!(crate::libtorch_version()));
        m.insert("started".into(), json!(crate::log::utc_now()));
        m.insert("status".into(), json!("running"));
        m.insert("script_text".into(), json!(source));
        Manifest(m)
    }

    fn finish(&mut self, ctx: &Context, status: &str) {
        use serde_json::json;
        self.0.insert("seeds".into(), json!(ctx.session.seeds()));
        self.0.insert("devices".into(), json!(ctx.session.devices()));
        self.0.insert("ended".into(), json!(crate::log::utc_now()));
        self.0.insert("status".into(), json!(status));
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join("manifest.json");
        let tmp = dir.join(".manifest.json.tmp");
        let text = serde_json::to_string_pretty(&self.0).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}
