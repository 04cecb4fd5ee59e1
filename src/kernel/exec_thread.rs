//! The execution thread: owns the [`Executor`] and runs one job at a time, turning
//! panics into error results so that a bug in a cell's native code never kills the kernel.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::mpsc;

use jupyter_protocol::Header;
use tokio::sync::oneshot;

use super::display::CellOutput;
use super::iopub::IopubTx;
use super::wire::log;
use super::{CellError, Completion, Executor, IsComplete, MimeBundle, Output};

/// Result of running one cell.
pub(crate) type CellResult = Result<Option<MimeBundle>, CellError>;

enum Job {
    Execute { code: String, iopub: IopubTx, parent: Header, done: oneshot::Sender<CellResult> },
    Complete { code: String, cursor: usize, done: oneshot::Sender<Completion> },
    Inspect { code: String, cursor: usize, done: oneshot::Sender<Option<MimeBundle>> },
    IsComplete { code: String, done: oneshot::Sender<IsComplete> },
}

/// Handle to the execution thread; requests are served in the order sent.
pub(crate) struct ExecThread {
    jobs: mpsc::Sender<Job>,
}

/// Rhai recursion and model code can go deep; the default 2 MiB is not enough.
const STACK_SIZE: usize = 64 * 1024 * 1024;

impl ExecThread {
    /// Starts the thread; `make_executor` runs on it.
    pub(crate) fn spawn(make_executor: impl FnOnce() -> Box<dyn Executor> + Send + 'static) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel();
        std::thread::Builder::new().name("kernel-exec".into()).stack_size(STACK_SIZE).spawn(move || match catch_unwind(AssertUnwindSafe(make_executor)) {
            Ok(mut executor) => serve(executor.as_mut(), rx),
            Err(panic) => {
                log!("creating the executor panicked: {}", panic_message(&*panic))
            }
        })?;
        Ok(Self { jobs })
    }

    /// Runs a cell; its outputs go to `iopub` as children of `parent`.
    pub(crate) async fn execute(&self, code: &str, iopub: IopubTx, parent: Header) -> CellResult {
        let (done, rx) = oneshot::channel();
        let job = Job::Execute { code: code.into(), iopub, parent, done };
        if self.jobs.send(job).is_err() {
            return Err(thread_gone());
        }
        rx.await.unwrap_or_else(|_| Err(thread_gone()))
    }

    /// Completions at `cursor` (code points); empty if the executor failed.
    pub(crate) async fn complete(&self, code: &str, cursor: usize) -> Completion {
        let (done, rx) = oneshot::channel();
        let _ = self.jobs.send(Job::Complete { code: code.into(), cursor, done });
        rx.await.unwrap_or_else(|_| Completion { cursor_start: cursor, cursor_end: cursor, ..Default::default() })
    }

    /// Documentation at `cursor`, if any.
    pub(crate) async fn inspect(&self, code: &str, cursor: usize) -> Option<MimeBundle> {
        let (done, rx) = oneshot::channel();
        let _ = self.jobs.send(Job::Inspect { code: code.into(), cursor, done });
        rx.await.ok().flatten()
    }

    /// Completeness of `code`; `Complete` if the executor failed to answer, so that
    /// a console never waits for lines that would not help.
    pub(crate) async fn is_complete(&self, code: &str) -> IsComplete {
        let (done, rx) = oneshot::channel();
        let _ = self.jobs.send(Job::IsComplete { code: code.into(), done });
        rx.await.unwrap_or(IsComplete::Complete)
    }
}

fn serve(executor: &mut dyn Executor, rx: mpsc::Receiver<Job>) {
    for job in rx {
        match job {
            Job::Execute { code, iopub, parent, done } => {
                let out = Rc::new(CellOutput::new(iopub, parent));
                let sink: Rc<dyn Output> = out.clone();
                let result = catch_unwind(AssertUnwindSafe(|| executor.execute(&code, sink))).unwrap_or_else(|panic| Err(panic_error(&*panic)));
                out.finish();
                let _ = done.send(result);
            }
            Job::Complete { code, cursor, done } => {
                if let Ok(c) = guarded("complete", || executor.complete(&code, cursor)) {
                    let _ = done.send(c);
                }
            }
            Job::Inspect { code, cursor, done } => {
                if let Ok(doc) = guarded("inspect", || executor.inspect(&code, cursor)) {
                    let _ = done.send(doc);
                }
            }
            Job::IsComplete { code, done } => {
                if let Ok(status) = guarded("is_complete", || executor.is_complete(&code)) {
                    let _ = done.send(status);
                }
            }
        }
    }
}

fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, ()> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        log!("{what} panicked: {}", panic_message(&*panic));
    })
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

fn panic_error(panic: &(dyn Any + Send)) -> CellError {
    let evalue = panic_message(panic);
    CellError { ename: "Panic".into(), traceback: vec![format!("\x1b[0;31mPanic\x1b[0m: {evalue}"), "(a bug in native code; the kernel and its variables are still alive)".into()], evalue }
}

fn thread_gone() -> CellError {
    let evalue = "the execution thread has stopped (see the kernel log)".to_string();
    CellError { ename: "KernelError".into(), traceback: vec![evalue.clone()], evalue }
}
