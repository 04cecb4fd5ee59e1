//! The control, heartbeat and stdin sockets, each served on its own task so that
//! interrupts and heartbeats are answered while a cell runs.

use std::sync::Arc;
use std::time::Duration;

use jupyter_zmq_client::{KernelControlConnection, KernelHeartbeatConnection, KernelStdinConnection};
use zeromq::{SocketRecv, SocketSend};

use super::shell::{unsupported, Ctx};
use super::wire::{self, log, RecvError};

/// Serves control requests: interrupt (sets the flag and replies at once),
/// shutdown, kernel_info. No busy/idle here: a cell may be running.
pub(crate) async fn control(mut conn: KernelControlConnection, ctx: Arc<Ctx>) {
    loop {
        let incoming = match wire::recv(&mut conn, "control").await {
            Ok(incoming) => incoming,
            Err(RecvError::Rejected) => continue,
            Err(RecvError::Socket(e)) => {
                log!("control: receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let msg = &incoming.msg;
        if let Some(content) = ctx.common_reply(msg).or_else(|| unsupported(msg)) {
            if let Err(e) = conn.send(wire::reply(content, msg)).await {
                log!("control: send failed: {e}");
            }
        }
        ctx.after_reply(msg);
    }
}

/// Echoes every heartbeat frame back, as clients compare what they sent.
pub(crate) async fn heartbeat(mut conn: KernelHeartbeatConnection) {
    loop {
        match conn.socket.recv().await {
            Ok(ping) => {
                if let Err(e) = conn.socket.send(ping).await {
                    log!("heartbeat: send failed: {e}");
                }
            }
            Err(e) => {
                log!("heartbeat: receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Keeps the stdin socket bound and drained; this kernel never asks for input.
pub(crate) async fn stdin(mut conn: KernelStdinConnection) {
    loop {
        if conn.socket.recv().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
