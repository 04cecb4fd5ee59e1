//! Where progress lines and notes go: stderr by default, or a sink installed by a
//! front end (the notebook kernel streams them into the running cell).
use std::cell::RefCell;
use std::rc::Rc;

/// A receiver of log lines.
pub type Sink = Rc<dyn Fn(&str)>;

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Sends progress and notes on this thread to `f` (one line per call, no newline).
pub fn set_sink(f: Rc<dyn Fn(&str)>) {
    SINK.with(|s| *s.borrow_mut() = Some(f));
}

/// Installs `f` (or, with `None`, stderr) on this thread and returns the sink it replaces.
pub fn replace_sink(f: Option<Sink>) -> Option<Sink> {
    SINK.with(|s| std::mem::replace(&mut *s.borrow_mut(), f))
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

/// Current UTC time as RFC 3339 (`2026-11-24T23:52:00Z`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
