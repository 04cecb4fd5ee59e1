//! The library's one error type: every failure says what was expected and what was found.
use std::path::PathBuf;

/// Errors from sparselab's library code. Scripts and notebooks show these verbatim,
/// so each message names the bad value and what would have been valid.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value out of range or of the wrong kind.
    #[error("{key}: {message}")]
    Config {
        /// The configuration key, e.g. `density`.
        key: String,
        /// What was wrong and what is allowed.
        message: String,
    },
    /// A name that is not registered (optimizer, activation, dataset, ...).
    #[error("unknown {what} {name:?}{hint}; valid: {valid}")]
    UnknownName {
        /// What kind of name, e.g. `optimizer`.
        what: &'static str,
        /// The name given.
        name: String,
        /// ` (did you mean "x"?)` or empty.
        hint: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A dataset file that is missing, truncated or malformed.
    #[error("{path}: {message}")]
    Data {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A dataset that was found nowhere on the search path.
    #[error("dataset {name:?} not found; looked in:\n{searched}\n{how}")]
    DatasetNotFound {
        /// Dataset name.
        name: String,
        /// The directories tried, one per line.
        searched: String,
        /// How to get the data.
        how: String,
    },
    /// A shape mismatch, e.g. a mask that does not fit its weight.
    #[error("{0}")]
    Shape(String),
    /// An error raised inside libtorch (its first line: the C++ backtrace is dropped).
    #[error("libtorch: {}", first_line(&.0.to_string()))]
    Torch(#[from] tch::TchError),
    /// File-system errors with the path that failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A statistics input or option error.
    #[error("{0}")]
    Stats(#[from] crate::stats::StatsError),
    /// A chart that could not be drawn or saved.
    #[error("{0}")]
    Plot(#[from] crate::plot::PlotError),
    /// The run was interrupted (Ctrl-C or a notebook interrupt).
    #[error("interrupted")]
    Interrupted,
}

/// The first line of a libtorch message: what went wrong, without the C++ backtrace
/// (`Exception raised from ...` and the frames after it).
pub(crate) fn first_line(message: &str) -> String {
    let m = message.split("Exception raised from").next().unwrap_or(message);
    m.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string()
}

/// Result with sparselab's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A configuration error for `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { key: key.into(), message: message.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data { path: path.into(), message: message.into() }
    }
}
