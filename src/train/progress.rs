//! Progress display: a bar with ETA on a terminal, one plain line per epoch otherwise,
//! or a live display (a notebook output updated in place, at most about once a second).
use indicatif::{ProgressBar, ProgressStyle};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Least time between two updates of a live display.
const LIVE_EVERY: Duration = Duration::from_millis(1000);

pub(crate) enum Progress {
    Off,
    Bar(ProgressBar),
    /// `prefix`: the [`labelled`] context and two spaces, or nothing.
    Lines {
        epochs: usize,
        prefix: String,
    },
    Live(RefCell<LiveState>),
}

pub(crate) struct LiveState {
    live: crate::log::Live,
    start: Instant,
    batches: usize,
    batch: usize,
    sent: Option<Instant>,
    metrics: String,
}

impl LiveState {
    fn send(&mut self, force: bool) {
        if !force && self.sent.is_some_and(|t| t.elapsed() < LIVE_EVERY) {
            return;
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        let (done, total) = (self.live.done, self.live.total.max(1));
        let units = done as f64 + if self.batches > 0 && done < total { self.batch as f64 / self.batches as f64 } else { 0.0 };
        let per_epoch = if units > 0.0 { elapsed / units } else { f64::NAN };
        let left = per_epoch * (total as f64 - units).max(0.0);
        let mut status = if self.live.finished { format!("{done}/{total} epochs in {}", clock(elapsed)) } else { format!("epoch {}/{total}", (done + 1).min(total)) };
        if !self.live.finished && self.batches > 0 {
            status.push_str(&format!(", batch {}/{}", self.batch.min(self.batches), self.batches));
        }
        if per_epoch.is_finite() {
            status.push_str(&format!(" · {:.2} s/epoch", per_epoch));
            if !self.live.finished {
                status.push_str(&format!(" · ETA {}", clock(left)));
            }
        }
        if !self.metrics.is_empty() {
            status.push_str(&format!(" · {}", self.metrics));
        }
        self.live.status = status;
        self.sent = Some(Instant::now());
        crate::log::live(&self.live);
    }
}

/// `m:ss` (or `h:mm:ss`).
fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

thread_local! {
    /// What the runs starting on this thread belong to ([`labelled`]), outermost first.
    static CONTEXT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `label` naming what its training runs belong to (a study's variant,
/// fraction and seeds, a search's trial): their progress lines start with it and their
/// live displays and bars show it, so a long sweep says which network a line is about.
/// Nested calls join outermost first (a grid cell, then the study's group).
pub fn labelled<T>(label: String, f: impl FnOnce() -> T) -> T {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            CONTEXT.with(|c| c.borrow_mut().pop());
        }
    }
    CONTEXT.with(|c| c.borrow_mut().push(label));
    let _pop = Pop;
    f()
}

/// The labels of [`labelled`] in force on this thread, joined; empty outside any.
pub(crate) fn context() -> String {
    CONTEXT.with(|c| c.borrow().join(" · "))
}

impl Progress {
    pub(crate) fn new(enabled: bool, label: &str, epochs: usize, batches: usize) -> Self {
        if !enabled {
            return Progress::Off;
        }
        let context = context();
        let label = &if context.is_empty() { label.to_string() } else { format!("{context} · {label}") };
        if crate::log::has_live() {
            let live = crate::log::Live { id: crate::log::next_live_id(), title: label.to_string(), total: epochs, ..Default::default() };
            let mut state = LiveState { live, start: Instant::now(), batches, batch: 0, sent: None, metrics: String::new() };
            state.send(true);
            return Progress::Live(RefCell::new(state));
        }
        if crate::log::has_sink() || !std::io::stderr().is_terminal() {
            return Progress::Lines { epochs, prefix: if context.is_empty() { String::new() } else { format!("{context}  ") } };
        }
        let bar = ProgressBar::new((epochs * batches) as u64);
        let style = ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} batches, ETA {eta} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        Progress::Bar(bar)
    }

    pub(crate) fn batch(&self) {
        match self {
            Progress::Bar(b) => b.inc(1),
            Progress::Live(s) => {
                let mut s = s.borrow_mut();
                s.batch += 1;
                s.send(false);
            }
            _ => {}
        }
    }

    /// The end of 0-based `epoch`: `msg` for text displays; the mean training loss
    /// and test accuracy of the live networks for the live display's curves.
    pub(crate) fn epoch(&self, epoch: usize, msg: &str, train_loss: f64, test_acc: f64) {
        match self {
            Progress::Off => {}
            Progress::Bar(b) => b.set_message(format!("epoch {}: {msg}", epoch + 1)),
            Progress::Lines { epochs, prefix } => crate::log::line(&format!("{prefix}epoch {}/{epochs}  {msg}", epoch + 1)),
            Progress::Live(s) => {
                let mut s = s.borrow_mut();
                let x = (epoch + 1) as f64;
                for (name, y) in [("train_loss", train_loss), ("test_acc", test_acc)] {
                    if !y.is_finite() {
                        continue;
                    }
                    match s.live.series.iter_mut().find(|(n, _)| n == name) {
                        Some((_, pts)) => pts.push((x, y)),
                        None => s.live.series.push((name.to_string(), vec![(x, y)])),
                    }
                }
                s.live.done = epoch + 1;
                s.batch = 0;
                s.metrics = msg.rsplit_once("  ").map_or(msg, |(m, _)| m).replace("  ", " · ");
                s.send(false);
            }
        }
    }

    pub(crate) fn finish(&self) {
        match self {
            Progress::Bar(b) => b.finish_and_clear(),
            Progress::Live(s) => {
                let mut s = s.borrow_mut();
                s.live.finished = true;
                s.send(true);
            }
            _ => {}
        }
    }
}

thread_local! {
    /// Studies and searches running on this thread (a study inside a grid shows in
    /// the grid's display, not its own).
    static TASKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The live display of a study or search (many runs): its count, rate, ETA, a line
/// of results so far and its charts. The training run under way shows inside it.
/// Inert without a live display (a terminal, `sparselab run`) and inside another task.
pub struct TaskLive {
    state: Option<RefCell<TaskState>>,
}

struct TaskState {
    live: crate::log::Live,
    unit: &'static str,
    /// When the latest reused units were done and how many were done then: the rate
    /// counts only what trains after it (records from the store are done at once).
    base: (Instant, usize),
    start: Instant,
}

impl TaskLive {
    /// A display titled `title` for `total` units (`unit`: "runs", "trials", "cells").
    pub fn new(kind: crate::log::LiveKind, title: &str, total: usize, unit: &'static str) -> TaskLive {
        if !crate::log::has_live() || TASKS.with(|t| t.get()) > 0 {
            return TaskLive { state: None };
        }
        TASKS.with(|t| t.set(t.get() + 1));
        let live = crate::log::Live { id: crate::log::next_live_id(), title: title.to_string(), total, kind, ..Default::default() };
        TaskLive { state: Some(RefCell::new(TaskState { live, unit, base: (Instant::now(), 0), start: Instant::now() })) }
    }

    /// Whether anything is shown (callers skip computing charts otherwise).
    pub fn active(&self) -> bool {
        self.state.is_some()
    }

    /// `done` units so far, those since the last update `trained` here (or reused
    /// from the store, which the rate leaves out); `results` is the line of results
    /// so far, `charts` the charts. Every call sends (callers update once per unit or
    /// group of units).
    pub fn update(&self, done: usize, trained: bool, results: &str, charts: Vec<crate::log::LiveChart>) {
        self.send(done, trained, results, charts, false);
    }

    /// The final state, kept in the notebook.
    pub fn finish(&self, done: usize, results: &str, charts: Vec<crate::log::LiveChart>) {
        self.send(done, true, results, charts, true);
    }

    fn send(&self, done: usize, trained: bool, results: &str, charts: Vec<crate::log::LiveChart>, finished: bool) {
        let Some(s) = &self.state else { return };
        let mut s = s.borrow_mut();
        let now = Instant::now();
        if !trained {
            s.base = (now, done);
        }
        let (t0, d0) = s.base;
        let total = s.live.total;
        let mut status = format!("{done}/{total} {}", s.unit);
        if finished {
            status.push_str(&format!(" in {}", clock(s.start.elapsed().as_secs_f64())));
        } else if done > d0 {
            let per = (now - t0).as_secs_f64() / (done - d0) as f64;
            status.push_str(&format!(" · {per:.1} s each · ETA {}", clock(per * total.saturating_sub(done) as f64)));
        }
        if !results.is_empty() {
            status.push_str(" · ");
            status.push_str(results);
        }
        s.live.done = done;
        s.live.status = status;
        s.live.charts = charts;
        s.live.finished = finished;
        crate::log::live(&s.live);
    }
}

impl Drop for TaskLive {
    fn drop(&mut self) {
        if let Some(s) = &self.state {
            TASKS.with(|t| t.set(t.get().saturating_sub(1)));
            // Ended by an error or an interrupt: the display says so and stops updating.
            let mut s = s.borrow_mut();
            if !s.live.finished {
                s.live.finished = true;
                s.live.status = format!("stopped at {}/{} {} · {}", s.live.done, s.live.total, s.unit, s.live.status);
                crate::log::live(&s.live);
            }
        }
    }
}
