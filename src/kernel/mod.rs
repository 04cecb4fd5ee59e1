//! A Jupyter kernel (messaging protocol 5.3) over pure-Rust ZeroMQ, generic over the
//! engine that runs the cells.
//!
//! ```text
//! shell task ──jobs──▶ execution thread (Executor: Rhai engine + scope)
//!     │                     │ stream / display (as they happen)
//!     ▼                     ▼
//! shell replies        iopub task (one queue: busy, outputs, idle in order)
//! control task: interrupt (sets the flag at once), shutdown, kernel_info
//! heartbeat task: echo          stdin task: bound, unused
//! ```
//!
//! The executor lives on one dedicated thread, so engines whose values are `Send`
//! but not `Sync` (tch tensors, Rhai without `sync`) need no locks. Interrupts
//! travel through a shared [`AtomicBool`] that long-running code polls.
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc};
//! use sparselab::kernel::{self, RhaiExecutor, RhaiHooks};
//! let flag = Arc::new(AtomicBool::new(false));
//! let exec_flag = flag.clone();
//! // The hooks are built on the execution thread: nothing in them needs to be `Send`.
//! kernel::run("kernel-1.json".as_ref(), flag, move || {
//!     Box::new(RhaiExecutor::new(RhaiHooks::new(exec_flag)))
//! })?;
//! # Ok::<(), anyhow::Error>(())
//! ```

mod repl;
pub use repl::repl;
mod control;
mod display;
mod exec_thread;
mod history;
mod iopub;
mod kernelspec;
mod rhai_complete;
mod rhai_exec;
mod rhai_syntax;
#[cfg(test)]
mod rhai_tests;
mod shell;
mod wire;

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;

pub use kernelspec::{install, kernel_dir, kernel_dir_named, uninstall, uninstall_named, InstallTarget, KERNEL_NAME};
pub mod evcxr;
pub use rhai_exec::{RhaiExecutor, RhaiHooks};

static CELL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A number that changes with every cell the executor starts (live displays use one
/// output per cell).
pub fn current_cell() -> u64 {
    CELL.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether `code` is a complete Rhai cell (shared by the kernel and `sparselab repl`).
pub fn is_complete(engine: &rhai::Engine, code: &str) -> IsComplete {
    rhai_syntax::is_complete(engine, code)
}

/// A MIME bundle: MIME type to content, e.g. `{"text/plain": "...", "image/png": "<base64>"}`.
pub type MimeBundle = serde_json::Map<String, serde_json::Value>;

/// Where a running cell sends its output; every call is forwarded to the
/// frontends at once (not batched until the cell ends).
pub trait Output {
    /// Appends `text` to the `stdout` or `stderr` stream (any other name is
    /// treated as `stderr`).
    fn stream(&self, name: &str, text: &str);
    /// Shows a rich value; with a `display_id`, `update: true` replaces the
    /// output shown earlier under that id instead of adding a new one.
    fn display(&self, data: MimeBundle, display_id: Option<&str>, update: bool);
    /// Clears the cell's output; `wait` defers the clearing until new output arrives.
    fn clear(&self, wait: bool);
}

/// A failed cell, as shown in the notebook and returned in the execute reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    /// Error class, e.g. `ParseError`, `RuntimeError`, `Interrupted`.
    pub ename: String,
    /// The error message.
    pub evalue: String,
    /// Lines shown to the user (may contain ANSI colours), e.g. `line 3: let x = ...`.
    pub traceback: Vec<String>,
}

/// Completion candidates for the word that ends at the cursor.
///
/// Offsets are in Unicode code points, like the protocol's `cursor_pos`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// Candidate replacements for `code[cursor_start..cursor_end]`.
    pub matches: Vec<String>,
    /// Start of the text to replace (code points).
    pub cursor_start: usize,
    /// End of the text to replace (code points).
    pub cursor_end: usize,
    /// Per match, a kind shown by JupyterLab (`function`, `variable`, `keyword`, ...)
    /// and an optional signature; may be empty.
    pub types: Vec<(String, String)>,
}

/// Whether a piece of code can run as it is (console front-ends ask before running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsComplete {
    /// Ready to run.
    Complete,
    /// Needs more lines; the string is the indent to offer for the next line.
    Incomplete(String),
    /// Can never become valid by adding lines.
    Invalid,
}

/// A cell engine. It lives on ONE dedicated execution thread, created there by the
/// factory passed to [`run`], so it need not be `Send`.
pub trait Executor {
    /// Runs a cell, streaming stdout/stderr and displays through `out` as they happen.
    /// Returns the cell's last-expression value as a MIME bundle (`execute_result`),
    /// or `None` when there is nothing to show.
    ///
    /// # Errors
    /// The cell's parse or runtime error; an interrupted cell is an error too.
    fn execute(&mut self, code: &str, out: Rc<dyn Output>) -> Result<Option<MimeBundle>, CellError>;
    /// Completions at `cursor` (code points).
    fn complete(&mut self, code: &str, cursor: usize) -> Completion;
    /// Documentation of the word at `cursor` (code points), if known.
    fn inspect(&mut self, code: &str, cursor: usize) -> Option<MimeBundle>;
    /// Whether `code` is complete, incomplete (unclosed block or string) or invalid.
    fn is_complete(&mut self, code: &str) -> IsComplete;
}

/// Runs the kernel described by a Jupyter connection file until a shutdown request.
///
/// `interrupt` is set by `interrupt_request` (and by shutdown) and reset before
/// each cell; long-running code should poll it. `make_executor` is called on the
/// execution thread. A panic inside the executor becomes an error reply.
///
/// # Errors
/// Unreadable connection file, or sockets that cannot be bound.
pub fn run(connection_file: &Path, interrupt: Arc<AtomicBool>, make_executor: impl FnOnce() -> Box<dyn Executor> + Send + 'static) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(connection_file).with_context(|| format!("reading connection file {}", connection_file.display()))?;
    let info: jupyter_protocol::ConnectionInfo = serde_json::from_str(&text).with_context(|| format!("parsing connection file {}", connection_file.display()))?;
    if !info.key.is_empty() && info.signature_scheme != "hmac-sha256" {
        anyhow::bail!("unsupported signature scheme {:?} (expected hmac-sha256)", info.signature_scheme);
    }
    let exec = exec_thread::ExecThread::spawn(make_executor)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("kernel-io").enable_all().build()?;
    runtime.block_on(serve(info, exec, interrupt))?;
    // The execution thread may still be inside a cell; the process exit ends it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(())
}

async fn serve(info: jupyter_protocol::ConnectionInfo, exec: exec_thread::ExecThread, interrupt: Arc<AtomicBool>) -> anyhow::Result<()> {
    use jupyter_zmq_client as zc;
    let session = wire::new_session_id();
    let iopub = zc::create_kernel_iopub_connection(&info, &session).await.context("binding iopub")?;
    let shell = zc::create_kernel_shell_connection(&info, &session).await.context("binding shell")?;
    let control = zc::create_kernel_control_connection(&info, &session).await.context("binding control")?;
    let stdin = zc::create_kernel_stdin_connection(&info, &session).await.context("binding stdin")?;
    let heartbeat = zc::create_kernel_heartbeat_connection(&info).await.context("binding heartbeat")?;

    let (iopub_tx, iopub_task) = iopub::spawn(iopub);
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let ctx = Arc::new(shell::Ctx { iopub: iopub_tx, interrupt, shutdown: shutdown_tx });
    tokio::spawn(control::heartbeat(heartbeat));
    tokio::spawn(control::stdin(stdin));
    tokio::spawn(control::control(control, ctx.clone()));
    tokio::spawn(shell::serve(shell, exec, ctx.clone()));
    shutdown_rx.recv().await;
    // Let queued iopub messages (late outputs, the last idle) go out first.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), ctx.iopub.flush()).await;
    iopub_task.abort();
    Ok(())
}
