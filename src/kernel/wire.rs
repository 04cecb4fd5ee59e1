//! Reading signed wire messages leniently: a bad signature or malformed JSON is
//! logged and dropped, and content that the typed parser rejects is kept as raw JSON.
//!
//! `jupyter_zmq_client::Connection::read` fails the whole message when its typed
//! content does not parse (e.g. a `history_request` of type `search` without `n`),
//! so we verify the HMAC with its `RawMessage` and parse the frames ourselves.

use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent, UnknownMessage};
use jupyter_zmq_client::{Connection, RawMessage, RuntimeError};
use serde_json::Value;
use zeromq::SocketRecv;

/// Logs a kernel-side problem on stderr (the kernel's log, shown by the launcher).
macro_rules! log {
    ($($arg:tt)*) => { eprintln!("[sparselab kernel] {}", format!($($arg)*)) };
}
pub(crate) use log;

/// One verified request, typed where possible.
pub(crate) struct Incoming {
    /// The message; `content` is `UnknownMessage` when the typed parse failed.
    pub msg: JupyterMessage,
    /// The content exactly as received.
    pub content: Value,
}

/// Why nothing usable came from a socket.
pub(crate) enum RecvError {
    /// The socket itself failed (closed, I/O error).
    Socket(String),
    /// A message arrived but was rejected (signature, framing, JSON); already logged.
    Rejected,
}

/// Receives the next message on a ROUTER socket, verifying its signature.
pub(crate) async fn recv<S: SocketRecv>(conn: &mut Connection<S>, channel: &str) -> Result<Incoming, RecvError> {
    let frames = conn.socket.recv().await.map_err(|e| RecvError::Socket(e.to_string()))?;
    let raw = RawMessage::from_multipart(frames, &conn.mac).map_err(|e| {
        match e {
            RuntimeError::VerifyError(_) => log!("{channel}: dropped message: bad HMAC signature"),
            RuntimeError::DecodeError(_) => {
                log!("{channel}: dropped message: signature is not hex")
            }
            e => log!("{channel}: dropped message: {e}"),
        }
        RecvError::Rejected
    })?;
    decode(raw).map_err(|e| {
        log!("{channel}: dropped message: {e}");
        RecvError::Rejected
    })
}

fn decode(raw: RawMessage) -> Result<Incoming, String> {
    let part = |i: usize, what: &str| -> Result<Value, String> { serde_json::from_slice(&raw.jparts[i]).map_err(|e| format!("malformed {what} JSON: {e}")) };
    let header: Header = serde_json::from_value(part(0, "header")?).map_err(|e| format!("invalid header: {e}"))?;
    let parent_header = serde_json::from_value::<Header>(part(1, "parent_header")?).ok();
    let metadata = part(2, "metadata")?;
    let content = part(3, "content")?;
    if !content.is_object() {
        return Err(format!("{}: content is not a JSON object", header.msg_type));
    }
    let typed = match JupyterMessageContent::from_type_and_content(&header.msg_type, content.clone()) {
        Ok(typed) => typed,
        Err(e) => {
            log!("{}: content kept untyped ({e})", header.msg_type);
            JupyterMessageContent::UnknownMessage(UnknownMessage { msg_type: header.msg_type.clone(), content: content.clone() })
        }
    };
    let msg =
        JupyterMessage { zmq_identities: raw.zmq_identities, header, parent_header, metadata, content: typed, buffers: raw.jparts.get(4..).map(<[_]>::to_vec).unwrap_or_default(), channel: None };
    Ok(Incoming { msg, content })
}

/// A message for the iopub channel whose parent is `parent`.
///
/// No ZeroMQ topic frame: subscribers use the empty subscription, and the
/// request's routing identities must not leak onto the broadcast channel.
pub(crate) fn iopub_message(content: impl Into<JupyterMessageContent>, parent: &Header) -> JupyterMessage {
    let mut msg = JupyterMessage::new(content, None);
    msg.parent_header = Some(parent.clone());
    msg.header.username = "kernel".into();
    msg
}

/// A reply on the request's own channel (shell or control).
pub(crate) fn reply(content: impl Into<JupyterMessageContent>, request: &JupyterMessage) -> JupyterMessage {
    let mut msg = JupyterMessage::new(content, Some(request));
    msg.header.username = "kernel".into();
    msg
}

/// A raw-JSON message, for contents the typed structs cannot express.
pub(crate) fn raw_content(msg_type: &str, content: Value) -> JupyterMessageContent {
    JupyterMessageContent::UnknownMessage(UnknownMessage { msg_type: msg_type.into(), content })
}

/// A fresh session id for the kernel's own messages.
pub(crate) fn new_session_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:08x}-{:x}", std::process::id(), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_history_without_n_is_kept_raw() {
        let header = serde_json::json!({"msg_id": "a", "username": "u", "session": "s",
            "date": "2024-01-01T00:00:00Z", "msg_type": "history_request", "version": "5.3"});
        let content = serde_json::json!({"hist_access_type": "search", "pattern": "x*",
            "raw": true, "output": false});
        let jparts = [header, serde_json::json!({}), serde_json::json!({}), content.clone()].iter().map(|v| serde_json::to_vec(v).unwrap().into()).collect();
        let raw = RawMessage { zmq_identities: vec![], jparts };
        let incoming = decode(raw).expect("decodes");
        assert!(matches!(incoming.msg.content, JupyterMessageContent::UnknownMessage(_)));
        assert_eq!(incoming.content, content);
    }
}
