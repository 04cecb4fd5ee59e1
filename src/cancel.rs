//! Cooperative cancellation: Ctrl-C or a notebook interrupt sets one flag that the
//! training loop checks between batches, so finished work is kept.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;

fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// The shared flag, for handlers (signal, kernel control socket) that set it.
pub fn handle() -> Arc<AtomicBool> {
    flag().clone()
}

/// Asks running work to stop at the next batch.
pub fn request() {
    flag().store(true, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    flag().load(Ordering::Relaxed)
}

/// Clears the flag (at the start of a new cell or command).
pub fn reset() {
    flag().store(false, Ordering::SeqCst);
}
