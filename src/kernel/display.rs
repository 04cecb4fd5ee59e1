//! The kernel's [`Output`] for one cell: turns stream text, displays and clears into
//! iopub messages at once, and recognises evcxr's
//! `EVCXR_BEGIN_CONTENT <mime>` … `EVCXR_END_CONTENT` blocks on stdout.
//!
//! Unlike evcxr, which keeps only the last block per MIME type (its issue #510),
//! every block becomes its own `display_data`, in order with the text around it.

use std::cell::RefCell;

use jupyter_protocol::{ClearOutput, Header, StreamContent};
use serde_json::{json, Value};

use super::iopub::IopubTx;
use super::wire::raw_content;
use super::{MimeBundle, Output};

const BEGIN: &str = "EVCXR_BEGIN_CONTENT";
const END: &str = "EVCXR_END_CONTENT";

/// Output of the cell whose `execute_request` header is `parent`.
pub(crate) struct CellOutput {
    iopub: IopubTx,
    parent: Header,
    evcxr: RefCell<Evcxr>,
}

#[derive(Default)]
struct Evcxr {
    /// Unfinished last line, held while it may still be (part of) a marker.
    partial: String,
    /// Inside a block: its MIME type and the content so far.
    block: Option<(String, String)>,
}

/// What the stdout filter produced, in order.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Display(String, String),
}

impl CellOutput {
    pub(crate) fn new(iopub: IopubTx, parent: Header) -> Self {
        Self { iopub, parent, evcxr: RefCell::new(Evcxr::default()) }
    }

    /// Sends what an unterminated evcxr block held back, as plain text.
    pub(crate) fn finish(&self) {
        let leftover = self.evcxr.borrow_mut().take_leftover();
        if !leftover.is_empty() {
            self.send_text(StreamContent::stdout(&leftover));
        }
    }

    fn send_text(&self, content: StreamContent) {
        if !content.text.is_empty() {
            self.iopub.publish(content, &self.parent);
        }
    }
}

impl Output for CellOutput {
    fn stream(&self, name: &str, text: &str) {
        if name != "stdout" {
            self.send_text(StreamContent::stderr(text));
            return;
        }
        let pieces = self.evcxr.borrow_mut().feed(text);
        for piece in pieces {
            match piece {
                Piece::Text(text) => self.send_text(StreamContent::stdout(&text)),
                Piece::Display(mime, body) => {
                    let mut data = MimeBundle::new();
                    data.insert(mime, Value::String(body));
                    self.display(data, None, false);
                }
            }
        }
    }

    fn display(&self, data: MimeBundle, display_id: Option<&str>, update: bool) {
        let transient = match display_id {
            Some(id) => json!({ "display_id": id }),
            None => json!({}),
        };
        let kind = if update && display_id.is_some() { "update_display_data" } else { "display_data" };
        let content = json!({ "data": data, "metadata": {}, "transient": transient });
        self.iopub.publish(raw_content(kind, content), &self.parent);
    }

    fn clear(&self, wait: bool) {
        self.iopub.publish(ClearOutput { wait }, &self.parent);
    }
}

impl Evcxr {
    fn feed(&mut self, text: &str) -> Vec<Piece> {
        if self.block.is_none() && self.partial.is_empty() && !text.contains(BEGIN) {
            return vec![Piece::Text(text.to_string())];
        }
        let mut input = std::mem::take(&mut self.partial);
        input.push_str(text);
        let mut pieces = Vec::new();
        let mut plain = String::new();
        let mut rest = input.as_str();
        while let Some(nl) = rest.find('\n') {
            let line = &rest[..=nl];
            rest = &rest[nl + 1..];
            self.line(line, &mut plain, &mut pieces);
        }
        if !rest.is_empty() {
            if self.block.is_some() || BEGIN.starts_with(rest) || rest.starts_with(BEGIN) {
                self.partial = rest.to_string();
            } else {
                plain.push_str(rest);
            }
        }
        if !plain.is_empty() {
            pieces.push(Piece::Text(plain));
        }
        pieces
    }

    fn line(&mut self, line: &str, plain: &mut String, pieces: &mut Vec<Piece>) {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if let Some((mime, body)) = &mut self.block {
            if trimmed == END {
                let body = body.strip_suffix('\n').unwrap_or(body).to_string();
                pieces.push(Piece::Display(std::mem::take(mime), body));
                self.block = None;
            } else {
                body.push_str(line);
            }
        } else if let Some(mime) = trimmed.strip_prefix(BEGIN).map(str::trim).filter(|m| !m.is_empty()) {
            if !plain.is_empty() {
                pieces.push(Piece::Text(std::mem::take(plain)));
            }
            self.block = Some((mime.to_string(), String::new()));
        } else {
            plain.push_str(line);
        }
    }

    fn take_leftover(&mut self) -> String {
        let mut out = String::new();
        if let Some((mime, body)) = self.block.take() {
            out = format!("{BEGIN} {mime}\n{body}");
        }
        out.push_str(&std::mem::take(&mut self.partial));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_passes_through() {
        let mut e = Evcxr::default();
        assert_eq!(e.feed("hello\n"), vec![Piece::Text("hello\n".into())]);
    }

    #[test]
    fn block_in_one_write_becomes_display_between_texts() {
        let mut e = Evcxr::default();
        let pieces = e.feed("a\nEVCXR_BEGIN_CONTENT text/html\n<b>x</b>\nEVCXR_END_CONTENT\nb\n");
        assert_eq!(pieces, vec![Piece::Text("a\n".into()), Piece::Display("text/html".into(), "<b>x</b>".into()), Piece::Text("b\n".into()),]);
    }

    #[test]
    fn block_split_over_writes() {
        let mut e = Evcxr::default();
        assert!(e.feed("EVCXR_BEGIN_CONTENT image/png\n").is_empty());
        assert!(e.feed("iVBOR").is_empty());
        assert!(e.feed("w0\n").is_empty());
        let pieces = e.feed("EVCXR_END_CONTENT\n");
        assert_eq!(pieces, vec![Piece::Display("image/png".into(), "iVBORw0".into())]);
    }

    #[test]
    fn unterminated_block_is_returned_as_text() {
        let mut e = Evcxr::default();
        assert!(e.feed("EVCXR_BEGIN_CONTENT text/plain\nabc\n").is_empty());
        assert_eq!(e.take_leftover(), "EVCXR_BEGIN_CONTENT text/plain\nabc\n");
    }
}
