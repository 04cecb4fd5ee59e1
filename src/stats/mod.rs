//! Exact and asymptotic paired-comparison statistics (Wilcoxon signed-rank, Kendall tau-b) used to
//! compare sparse against dense runs, as specified in SPEC §6.
//!
//! Everything here is plain `f64` slice code with no tensor dependency. The rank-sum dynamic
//! programme and the concordance counting are implemented here; only the standard normal
//! distribution comes from `statrs`. Asymptotic formulas deliberately mirror
//! `scipy.stats.wilcoxon` / `scipy.stats.kendalltau` so that reported p-values can be checked
//! against scipy (see `tests/data/stats/gen_stats_reference.py`).

use std::fmt;
use std::str::FromStr;

use statrs::distribution::{ContinuousCDF, Normal};

mod kendall;
mod wilcoxon;

pub use kendall::{kendall_tau, KendallResult};
pub use wilcoxon::{wilcoxon, WilcoxonOptions, WilcoxonResult};

/// Errors from the statistics module. Invalid input is always reported, never panicked on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// The two paired samples have different lengths.
    #[error("paired samples differ in length: x has {x} values, y has {y}")]
    LengthMismatch {
        /// Length of x.
        x: usize,
        /// Length of y.
        y: usize,
    },
    /// Too few usable observations (for Wilcoxon: after dropping zero differences).
    #[error("{test} needs at least {needed} usable observation(s), got {got}")]
    TooFewObservations {
        /// The test.
        test: &'static str,
        /// Observations needed.
        needed: usize,
        /// Observations given.
        got: usize,
    },
    /// A NaN was found in an input (or a difference `x - y` is NaN, e.g. `inf - inf`).
    #[error("NaN in {which} at index {index}")]
    NaN {
        /// Which input.
        which: &'static str,
        /// Index of the NaN.
        index: usize,
    },
    /// Kendall's tau-b is undefined when one sample is constant (its denominator is zero).
    #[error("{which} is constant, so Kendall's tau-b is undefined")]
    ConstantInput {
        /// Which input.
        which: &'static str,
    },
    /// An option string that names no known variant.
    #[error("unknown {kind} '{value}'; valid values are: {valid}")]
    UnknownOption {
        /// The option.
        kind: &'static str,
        /// The value given.
        value: String,
        /// The valid values.
        valid: &'static str,
    },
}

/// Alternative hypothesis about the paired difference `d = x - y` (x = sparse, y = dense).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// H1: x tends to be larger than y; p = P(W+ >= observed).
    Greater,
    /// H1: x tends to be smaller than y; p = P(W+ <= observed).
    Less,
    /// H1: x and y differ; p = min(1, 2 * min(one-sided tails)).
    TwoSided,
}

/// How zero differences are treated by the Wilcoxon test (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroMethod {
    /// Drop zero differences before ranking (Wilcoxon's original rule; scipy "wilcox").
    Wilcox,
    /// Rank zeros together with the other |d|, then drop their ranks (scipy "pratt").
    Pratt,
}

/// How a p-value is computed. In results only `Exact` or `Approx` appears (the method used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact null distribution (sign-flip DP for Wilcoxon, Mahonian counts for Kendall).
    Exact,
    /// Normal approximation with tie correction (and continuity correction for Wilcoxon).
    Approx,
    /// Wilcoxon: exact for n <= 50 non-zero differences, otherwise approx.
    Auto,
}

const ALTERNATIVES: &str = "greater, less, two-sided";
const ZERO_METHODS: &str = "wilcox, pratt";
const METHODS: &str = "exact, approx, auto";

fn unknown(kind: &'static str, value: &str, valid: &'static str) -> StatsError {
    StatsError::UnknownOption { kind, value: value.to_string(), valid }
}

impl FromStr for Alternative {
    type Err = StatsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "greater" => Ok(Self::Greater),
            "less" => Ok(Self::Less),
            "two-sided" => Ok(Self::TwoSided),
            _ => Err(unknown("alternative", s, ALTERNATIVES)),
        }
    }
}

impl FromStr for ZeroMethod {
    type Err = StatsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wilcox" => Ok(Self::Wilcox),
            "pratt" => Ok(Self::Pratt),
            _ => Err(unknown("zero_method", s, ZERO_METHODS)),
        }
    }
}

impl FromStr for Method {
    type Err = StatsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(Self::Exact),
            "approx" => Ok(Self::Approx),
            "auto" => Ok(Self::Auto),
            _ => Err(unknown("method", s, METHODS)),
        }
    }
}

impl fmt::Display for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Greater => "greater",
            Self::Less => "less",
            Self::TwoSided => "two-sided",
        })
    }
}

impl fmt::Display for ZeroMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Wilcox => "wilcox",
            Self::Pratt => "pratt",
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exact => "exact",
            Self::Approx => "approx",
            Self::Auto => "auto",
        })
    }
}

/// Index of the first NaN in `v`, reported as an error naming the input.
pub(crate) fn check_no_nan(v: &[f64], which: &'static str) -> Result<(), StatsError> {
    match v.iter().position(|a| a.is_nan()) {
        Some(index) => Err(StatsError::NaN { which, index }),
        None => Ok(()),
    }
}

/// Upper tail P(Z >= z) of the standard normal. `sf` goes through `erfc`, so small tails keep
/// their relative accuracy (1 - cdf would not).
pub(crate) fn normal_sf(z: f64) -> f64 {
    Normal::standard().sf(z)
}

/// Lower tail P(Z <= z) of the standard normal.
pub(crate) fn normal_cdf(z: f64) -> f64 {
    Normal::standard().cdf(z)
}
