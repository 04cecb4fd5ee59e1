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

/// The state of one long task (a training run) for a display that updates in place:
/// the notebook kernel draws it as one output that is rewritten at most about once a
/// second and keeps its final state.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// Unique in this process.
    pub id: u64,
    /// What runs (the model's description).
    pub title: String,
    /// Units done and in all (epochs).
    pub done: usize,
    /// Units in all.
    pub total: usize,
    /// One line: position, rate, time left, the latest metrics.
    pub status: String,
    /// Curves so far: (name, [(epoch from 1, value)]).
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// The task has ended (the last update).
    pub finished: bool,
    /// A training run, or a study or search that trains many (the notebook shows the
    /// current run inside its study's or search's display).
    pub kind: LiveKind,
    /// Charts of a study or search so far (a run's curves are `series`).
    pub charts: Vec<LiveChart>,
}

/// What a [`Live`] display follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LiveKind {
    /// One training run (or one batched ensemble).
    #[default]
    Run,
    /// An SC-SDC study or grid: its finished pairs and the running test.
    Study,
    /// A density search: score per trial, the best and the Pareto front so far.
    Search,
}

impl LiveKind {
    /// `run`, `study` or `search`.
    pub fn name(self) -> &'static str {
        match self {
            LiveKind::Run => "run",
            LiveKind::Study => "study",
            LiveKind::Search => "search",
        }
    }
}

/// One chart of a live display, as data (the notebook draws it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveChart {
    /// Title over the chart.
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// Named series of (x, y) points.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Points only (a scatter), not lines.
    pub scatter: bool,
}

/// A receiver of live displays.
pub type LiveSink = Rc<dyn Fn(&Live)>;

thread_local! {
    static LIVE: RefCell<Option<LiveSink>> = const { RefCell::new(None) };
}

/// Installs `f` (or removes, with `None`) as this thread's live display and returns
/// the one it replaces.
pub fn replace_live(f: Option<LiveSink>) -> Option<LiveSink> {
    LIVE.with(|s| std::mem::replace(&mut *s.borrow_mut(), f))
}

/// Whether a live display is installed on this thread.
pub fn has_live() -> bool {
    LIVE.with(|s| s.borrow().is_some())
}

/// Sends `state` to the live display, if any.
pub fn live(state: &Live) {
    let sink = LIVE.with(|s| s.borrow().clone());
    if let Some(f) = sink {
        f(state);
    }
}

/// A fresh id for a [`Live`] task.
pub fn next_live_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Whether a log line is a warning or an error (stderr in a notebook; everything
/// else is progress or a note, stdout).
pub fn is_warning(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("warning") || l.starts_with("error") || l.starts_with("Warning") || l.starts_with("Error")
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
