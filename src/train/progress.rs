//! Progress display: a bar with ETA on a terminal, one plain line per epoch otherwise.
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub(crate) enum Progress {
    Off,
    Bar(ProgressBar),
    Lines { epochs: usize },
}

impl Progress {
    pub(crate) fn new(enabled: bool, label: &str, epochs: usize, batches: usize) -> Self {
        if !enabled {
            return Progress::Off;
        }
        if crate::log::has_sink() || !std::io::stderr().is_terminal() {
            return Progress::Lines { epochs };
        }
        let bar = ProgressBar::new((epochs * batches) as u64);
        let style = ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} batches, ETA {eta} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        Progress::Bar(bar)
    }

    pub(crate) fn batch(&self) {
        if let Progress::Bar(b) = self {
            b.inc(1);
        }
    }

    pub(crate) fn epoch(&self, epoch: usize, msg: &str) {
        match self {
            Progress::Off => {}
            Progress::Bar(b) => b.set_message(format!("epoch {}: {msg}", epoch + 1)),
            Progress::Lines { epochs } => crate::log::line(&format!("epoch {}/{epochs}  {msg}", epoch + 1)),
        }
    }

    pub(crate) fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}
