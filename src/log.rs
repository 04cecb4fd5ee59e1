//! Where progress lines and notes go: stderr by default, or a sink installed by a
//! front end (the notebook kernel streams them into the running cell).
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    static SINK: RefCell<Option<Rc<dyn Fn(&str)>>> = const { RefCell::new(None) };
}

/// Sends progress and notes on this thread to `f` (one line per call, no newline).
pub fn set_sink(f: Rc<dyn Fn(&str)>) {
    SINK.with(|s| *s.borrow_mut() = Some(f));
}

/// Whether a sink is installed on this thread.
pub fn has_sink() -> bool {
    SINK.with(|s| s.borrow().is_some())
}

/// Writes one line to the sink, or to stderr.
pub fn line(msg: &str) {
    let sink = SINK.with(|s| s.borrow().clone());
    match sink {
        Some(f) => f(msg),
        None => eprintln!("{msg}"),
    }
}
