//! The shell channel: every request is wrapped in iopub `busy` … `idle` with the
//! request as parent, and cells run on the execution thread while this task waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jupyter_protocol::{
    CodeMirrorMode, CommInfoReply, CompleteReply, ErrorOutput, ExecuteInput, ExecuteReply, ExecuteRequest, ExecutionCount, ExecutionState, HelpLink, InterruptReply, IsCompleteReply, JupyterMessage,
    JupyterMessageContent, KernelInfoReply, LanguageInfo, ReplyError, ReplyStatus, ShutdownReply,
};
use jupyter_zmq_client::KernelShellConnection;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::exec_thread::ExecThread;
use super::history::History;
use super::iopub::IopubTx;
use super::wire::{self, log, raw_content, Incoming, RecvError};
use super::{CellError, Completion, IsComplete, MimeBundle};

/// State shared by the shell and control tasks.
pub(crate) struct Ctx {
    /// Queue to the iopub publisher.
    pub iopub: IopubTx,
    /// Set by interrupt (and shutdown) requests, polled by running cells.
    pub interrupt: Arc<AtomicBool>,
    /// Tells [`super::run`] to return.
    pub shutdown: UnboundedSender<()>,
}

impl Ctx {
    /// Answers the requests both shell and control accept; `None` for other types.
    pub(crate) fn common_reply(&self, msg: &JupyterMessage) -> Option<JupyterMessageContent> {
        match &msg.content {
            JupyterMessageContent::KernelInfoRequest(_) => Some(kernel_info().into()),
            JupyterMessageContent::InterruptRequest(_) => {
                self.interrupt.store(true, Ordering::SeqCst);
                Some(InterruptReply::new().into())
            }
            JupyterMessageContent::ShutdownRequest(req) => {
                self.interrupt.store(true, Ordering::SeqCst);
                Some(ShutdownReply { restart: req.restart, status: ReplyStatus::Ok, error: None }.into())
            }
            _ => None,
        }
    }

    /// Acts on a request once its reply is sent: a shutdown ends the kernel only
    /// after the client has its reply (and, from shell, the idle).
    pub(crate) fn after_reply(&self, msg: &JupyterMessage) {
        if matches!(msg.content, JupyterMessageContent::ShutdownRequest(_)) {
            let _ = self.shutdown.send(());
        }
    }
}

/// Error reply for a request type this kernel does not serve, so clients do not hang.
pub(crate) fn unsupported(msg: &JupyterMessage) -> Option<JupyterMessageContent> {
    let kind = msg.header.msg_type.as_str();
    let base = kind.strip_suffix("_request")?;
    log!("unsupported or malformed request {kind}");
    let content = json!({"status": "error", "ename": "NotImplemented",
        "evalue": format!("{kind} is not supported by this kernel"), "traceback": []});
    Some(raw_content(&format!("{base}_reply"), content))
}

/// The `kernel_info_reply` content.
pub(crate) fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: "5.3".into(),
        implementation: "sparselab".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language_info: LanguageInfo {
            name: "rhai".into(),
            version: "1".into(),
            mimetype: Some("text/x-rhai".into()),
            file_extension: Some(".rhai".into()),
            // Rhai reads like Rust (`fn`, `let`, `//`); neither tool knows Rhai itself.
            pygments_lexer: Some("rust".into()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".into())),
            nbconvert_exporter: Some("script".into()),
        },
        banner: format!("sparselab {} — Rhai scripting kernel", env!("CARGO_PKG_VERSION")),
        help_links: vec![HelpLink { text: "Rhai language book".into(), url: "https://rhai.rs/book/".into() }],
        debugger: false,
        error: None,
    }
}

struct Shell {
    exec: ExecThread,
    ctx: Arc<Ctx>,
    history: History,
    count: usize,
    /// After a failed cell with `stop_on_error`: abort the execute requests already queued.
    aborting: bool,
}

/// Serves the shell socket until the process ends.
pub(crate) async fn serve(mut conn: KernelShellConnection, exec: ExecThread, ctx: Arc<Ctx>) {
    let mut shell = Shell { exec, ctx, history: History::default(), count: 0, aborting: false };
    loop {
        match wire::recv(&mut conn, "shell").await {
            Ok(incoming) => shell.handle(&mut conn, incoming, false).await,
            Err(RecvError::Rejected) => continue,
            Err(RecvError::Socket(e)) => {
                log!("shell: receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl Shell {
    async fn handle(&mut self, conn: &mut KernelShellConnection, incoming: Incoming, abort: bool) {
        let msg = &incoming.msg;
        let parent = &msg.header;
        self.ctx.iopub.status(ExecutionState::Busy, parent);
        let reply = match (&msg.content, msg.header.msg_type.as_str()) {
            (JupyterMessageContent::ExecuteRequest(_), _) if abort => Some(aborted(self.count)),
            (JupyterMessageContent::ExecuteRequest(req), _) => Some(self.execute(req, msg).await),
            (JupyterMessageContent::CompleteRequest(req), _) => {
                let cursor = req.cursor_pos.min(req.code.chars().count());
                Some(complete_reply(self.exec.complete(&req.code, cursor).await))
            }
            (JupyterMessageContent::InspectRequest(req), _) => {
                let cursor = req.cursor_pos.min(req.code.chars().count());
                let data = self.exec.inspect(&req.code, cursor).await;
                let found = data.is_some();
                let content = json!({"status": "ok", "found": found,
                    "data": data.unwrap_or_default(), "metadata": {}});
                Some(raw_content("inspect_reply", content))
            }
            (JupyterMessageContent::IsCompleteRequest(req), _) => Some(
                match self.exec.is_complete(&req.code).await {
                    IsComplete::Complete => IsCompleteReply::complete(),
                    IsComplete::Incomplete(indent) => IsCompleteReply::incomplete(indent),
                    IsComplete::Invalid => IsCompleteReply::invalid(),
                }
                .into(),
            ),
            (_, "history_request") => {
                let history = self.history.answer(&incoming.content);
                Some(raw_content("history_reply", json!({"status": "ok", "history": history})))
            }
            (JupyterMessageContent::CommInfoRequest(_), _) => Some(CommInfoReply::default().into()),
            (JupyterMessageContent::CommOpen(_) | JupyterMessageContent::CommMsg(_) | JupyterMessageContent::CommClose(_), _) => None,
            _ => self.ctx.common_reply(msg).or_else(|| unsupported(msg)),
        };
        // Requests already queued behind a failed cell, taken before its reply goes
        // out so that a client reacting to the error cannot race them.
        let queued = if std::mem::take(&mut self.aborting) { take_queued(conn).await } else { Vec::new() };
        if let Some(content) = reply {
            if let Err(e) = conn.send(wire::reply(content, msg)).await {
                log!("shell: send failed: {e}");
            }
        }
        self.ctx.iopub.status(ExecutionState::Idle, parent);
        self.ctx.after_reply(msg);
        for next in queued {
            Box::pin(self.handle(conn, next, true)).await;
        }
    }

    async fn execute(&mut self, req: &ExecuteRequest, msg: &JupyterMessage) -> JupyterMessageContent {
        let parent = &msg.header;
        let store = req.store_history && !req.silent;
        if store {
            self.count += 1;
            self.history.push(self.count, &req.code);
        }
        let count = ExecutionCount::new(self.count);
        if !req.silent {
            let input = ExecuteInput { code: req.code.clone(), execution_count: count };
            self.ctx.iopub.publish(input, parent);
        }
        self.ctx.interrupt.store(false, Ordering::SeqCst);
        let result = match self.exec.execute(&req.code, self.ctx.iopub.clone(), parent.clone()).await {
            // Native code that polls the flag returns early and the cell may end
            // normally; the user asked to stop, so report the cell as interrupted.
            Ok(_) if self.ctx.interrupt.load(Ordering::SeqCst) => Err(interrupted()),
            result => result,
        };
        let reply = match result {
            Ok(value) => {
                if let Some(data) = value.filter(|d| !d.is_empty()) {
                    if store {
                        if let Some(text) = data.get("text/plain").and_then(Value::as_str) {
                            self.history.set_output(self.count, text.to_string());
                        }
                    }
                    if !req.silent {
                        self.ctx.iopub.publish(execute_result(data, count), parent);
                    }
                }
                ExecuteReply { status: ReplyStatus::Ok, execution_count: count, payload: Vec::new(), user_expressions: Some(Default::default()), error: None }
            }
            Err(e) => {
                let error = ErrorOutput { ename: e.ename, evalue: e.evalue, traceback: e.traceback };
                if !req.silent {
                    self.ctx.iopub.publish(error.clone(), parent);
                }
                self.aborting = req.stop_on_error && !req.silent;
                ExecuteReply {
                    status: ReplyStatus::Error,
                    execution_count: count,
                    payload: Vec::new(),
                    user_expressions: Some(Default::default()),
                    error: Some(Box::new(ReplyError { ename: error.ename, evalue: error.evalue, traceback: error.traceback })),
                }
            }
        };
        // Outputs reach the clients before the reply that ends the cell.
        self.ctx.iopub.flush().await;
        reply.into()
    }
}

/// The requests already waiting on the socket, without waiting for more.
///
/// Their execute requests get `aborted` replies (as ipykernel does after a failed
/// cell with `stop_on_error`), so "run all" stops at the first error.
async fn take_queued(conn: &mut KernelShellConnection) -> Vec<Incoming> {
    let mut queued = Vec::new();
    while let Ok(next) = tokio::time::timeout(Duration::ZERO, wire::recv(conn, "shell")).await {
        if let Ok(incoming) = next {
            queued.push(incoming);
        }
    }
    queued
}

fn aborted(count: usize) -> JupyterMessageContent {
    ExecuteReply { status: ReplyStatus::Aborted, execution_count: ExecutionCount::new(count), payload: Vec::new(), user_expressions: Some(Default::default()), error: None }.into()
}

/// The reply, with JupyterLab's `_jupyter_types_experimental` kinds and signatures.
fn complete_reply(c: Completion) -> JupyterMessageContent {
    let types: Vec<Value> = c
        .matches
        .iter()
        .zip(&c.types)
        .map(|(text, (kind, signature))| {
            json!({"start": c.cursor_start, "end": c.cursor_end, "text": text,
                   "type": kind, "signature": signature})
        })
        .collect();
    let mut metadata = Map::new();
    if !types.is_empty() {
        metadata.insert("_jupyter_types_experimental".into(), Value::Array(types));
    }
    CompleteReply { matches: c.matches, cursor_start: c.cursor_start, cursor_end: c.cursor_end, metadata, status: ReplyStatus::Ok, error: None }.into()
}

fn interrupted() -> CellError {
    let evalue = "cell interrupted by the user".to_string();
    CellError { ename: "Interrupted".into(), traceback: vec![format!("\x1b[0;31mInterrupted\x1b[0m: {evalue}")], evalue }
}

fn execute_result(data: MimeBundle, count: ExecutionCount) -> JupyterMessageContent {
    // Raw JSON: the typed `ExecuteResult` would serialise `"transient": null`.
    raw_content("execute_result", json!({"execution_count": count, "data": data, "metadata": {}}))
}
