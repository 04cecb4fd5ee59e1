//! The iopub publisher: one task owns the PUB socket and sends messages in the
//! order they were queued, so a request's outputs always precede its `idle`.
//!
//! Stream messages already waiting in the queue with the same name and parent are
//! merged into one, so a loop that prints thousands of lines does not flood clients.

use jupyter_protocol::{ExecutionState, Header, JupyterMessage, JupyterMessageContent, Status};
use jupyter_zmq_client::KernelIoPubConnection;
use tokio::sync::{mpsc, oneshot};

use super::wire::{self, log};

/// Merged stream text stops growing past this many bytes.
const MAX_MERGED: usize = 64 * 1024;

enum Item {
    Msg(Box<JupyterMessage>),
    Flush(oneshot::Sender<()>),
}

/// A cloneable, `Send` handle that queues messages for the iopub task; usable from
/// any thread (the execution thread streams through it).
#[derive(Clone)]
pub(crate) struct IopubTx(mpsc::UnboundedSender<Item>);

impl IopubTx {
    /// Queues one message (dropped silently once the kernel is shutting down).
    pub(crate) fn send(&self, msg: JupyterMessage) {
        let _ = self.0.send(Item::Msg(Box::new(msg)));
    }

    /// Queues content as a child of `parent`.
    pub(crate) fn publish(&self, content: impl Into<JupyterMessageContent>, parent: &Header) {
        self.send(wire::iopub_message(content, parent));
    }

    /// Queues a `status` message.
    pub(crate) fn status(&self, state: ExecutionState, parent: &Header) {
        self.publish(Status { execution_state: state }, parent);
    }

    /// Resolves once everything queued before this call has been sent.
    pub(crate) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.0.send(Item::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts the publisher task.
pub(crate) fn spawn(conn: KernelIoPubConnection) -> (IopubTx, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (IopubTx(tx), tokio::spawn(publish_loop(conn, rx)))
}

async fn publish_loop(mut conn: KernelIoPubConnection, mut rx: mpsc::UnboundedReceiver<Item>) {
    let mut pending: Option<Item> = None;
    loop {
        let item = match pending.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let mut msg = match item {
            Item::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Item::Msg(msg) => *msg,
        };
        if matches!(msg.content, JupyterMessageContent::StreamContent(_)) {
            while let Ok(next) = rx.try_recv() {
                match next {
                    Item::Msg(next) if can_merge(&msg, &next) => append_stream(&mut msg, *next),
                    other => {
                        pending = Some(other);
                        break;
                    }
                }
            }
        }
        if let Err(e) = conn.send(msg).await {
            log!("iopub: send failed: {e}");
        }
    }
}

fn can_merge(a: &JupyterMessage, b: &JupyterMessage) -> bool {
    let same_parent = match (&a.parent_header, &b.parent_header) {
        (Some(x), Some(y)) => x.msg_id == y.msg_id,
        (None, None) => true,
        _ => false,
    };
    match (&a.content, &b.content) {
        (JupyterMessageContent::StreamContent(x), JupyterMessageContent::StreamContent(y)) => {
            same_parent && x.text.len() < MAX_MERGED && std::mem::discriminant(&x.name) == std::mem::discriminant(&y.name)
        }
        _ => false,
    }
}

fn append_stream(into: &mut JupyterMessage, from: JupyterMessage) {
    if let (JupyterMessageContent::StreamContent(x), JupyterMessageContent::StreamContent(y)) = (&mut into.content, from.content) {
        x.text.push_str(&y.text);
    }
}
