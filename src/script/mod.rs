//! Rhai scripting: the engine, its API registration (thin bindings over the library,
//! STYLE rule 1), `--set` overrides, error positions and run manifests.
pub mod api_data;
mod api_experiment;
pub mod api_model;
mod api_plot;
mod api_search;
pub mod api_train;
mod config;
mod docs;
mod overrides;
mod runner;

pub use config::{as_f64, Opts};
pub use docs::{api_markdown, coverage, function_docs, registered, signatures, ApiDoc, Coverage, Registered, API};
pub use overrides::apply_overrides;
pub use runner::{add_module_resolvers, check_file, format_error, plan_file, read_manifests, run_file, RunOptions, ScriptOutcome, HEARTBEAT_SECS, MANIFESTS, STDLIB};

use crate::error::Error;
use rhai::{Engine, EvalAltResult, Position};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// Per-run state the bindings share: where files may be written and the run
/// session (store, shard, `check`), which does every lookup and write.
pub struct Context {
    /// The run directory; script writers resolve relative paths here.
    pub out_dir: PathBuf,
    /// The session every training call goes through.
    pub session: crate::experiment::Session,
}

impl Context {
    /// A context writing into `out_dir`; `check`: validate and run each call on one batch, writing nothing.
    pub fn new(out_dir: impl Into<PathBuf>, check: bool) -> Rc<Self> {
        let session = if check { crate::experiment::Session::checking() } else { crate::experiment::Session::new() };
        Rc::new(Self { out_dir: out_dir.into(), session })
    }

    /// A planning context ([`crate::experiment::Session::planning`]): nothing trains.
    pub fn planning(out_dir: impl Into<PathBuf>) -> Rc<Self> {
        Rc::new(Self { out_dir: out_dir.into(), session: crate::experiment::Session::planning() })
    }

    /// A context whose runs are stored in (and reused from) `store`.
    pub fn with_store(out_dir: impl Into<PathBuf>, store: crate::results::Store) -> Rc<Self> {
        Rc::new(Self { out_dir: out_dir.into(), session: crate::experiment::Session::with_store(store) })
    }

    /// Resolves a script-given path inside the run directory.
    ///
    /// # Errors
    /// Absolute paths and `..` components: a shared script may only write inside its run directory.
    pub fn output_path(&self, p: &str) -> crate::Result<PathBuf> {
        let path = Path::new(p);
        if path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_))) {
            return Err(Error::config("path", format!("{p:?} must be relative and inside the run directory {} (no absolute paths, no ..)", self.out_dir.display())));
        }
        let full = self.out_dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        Ok(full)
    }
}

/// Library error -> Rhai runtime error (the message is kept verbatim).
pub(crate) fn rt(e: Error) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(e.to_string().into(), Position::NONE))
}

/// Result type of registered functions.
pub(crate) type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// A Rhai engine with the whole sparselab API, writing into `ctx.out_dir`.
pub fn engine(ctx: Rc<Context>) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_expr_depths(256, 256);
    // Ctrl-C / notebook interrupt stops a running script between statements.
    engine.on_progress(|_| crate::cancel::requested().then(|| "interrupted".into()));
    engine.register_fn("assert", |ok: bool| -> RhaiResult<()> {
        if ok {
            Ok(())
        } else {
            Err("assertion failed".into())
        }
    });
    engine.register_fn("assert", |ok: bool, msg: &str| -> RhaiResult<()> {
        if ok {
            Ok(())
        } else {
            Err(format!("assertion failed: {msg}").into())
        }
    });
    api_data::register(&mut engine, &ctx);
    api_model::register(&mut engine, &ctx);
    api_train::register(&mut engine, &ctx);
    api_experiment::register(&mut engine, &ctx);
    api_search::register(&mut engine, &ctx);
    api_plot::register(&mut engine, &ctx);
    engine
}

/// The run behind a script `Run` value.
pub fn as_run(v: &rhai::Dynamic) -> Option<std::rc::Rc<crate::train::RunResult>> {
    v.read_lock::<api_train::RunHandle>().map(|r| r.0.clone())
}

/// The description and layers of a script `Model` value.
pub fn as_model(v: &rhai::Dynamic) -> Option<(String, Vec<crate::model::LayerInfo>)> {
    v.read_lock::<api_model::ModelHandle>().map(|m| {
        let m = m.0.borrow();
        (m.model.describe(), m.model.layers())
    })
}

/// Text of library objects (tables and summaries), or `None` for plain Rhai values.
pub fn plain_text(v: &rhai::Dynamic) -> Option<String> {
    if let Some(f) = v.read_lock::<crate::results::Frame>() {
        return Some(f.to_string());
    }
    if let Some(r) = v.read_lock::<api_train::RunHandle>() {
        return Some(r.0.summary());
    }
    if let Some(m) = v.read_lock::<api_model::ModelHandle>() {
        let m = m.0.borrow();
        let m = &m.model;
        return Some(format!("{}\n{}", m.describe(), crate::model::layer_table(&m.layers())));
    }
    if let Some(d) = v.read_lock::<api_data::DataHandle>() {
        return Some(d.0.to_string());
    }
    None
}
