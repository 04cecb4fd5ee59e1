//! sparselab: a lab for studying and designing sparse neural networks.
//!
//! ```text
//! data -> model (sparse layers, masks) -> train (optimizer, schedule, metrics,
//! gradient flow) -> experiment (SC-SDC, SNAS, pruning) -> results -> plot / report
//! ```
//!
//! ```no_run
//! use sparselab::{data::{Dataset, DatasetConfig}, model::{MlpConfig, Densities}, train::{train, TrainConfig}};
//! let data = Dataset::load(&DatasetConfig::new("fashion-mnist"))?;
//! let mut net = MlpConfig { densities: Densities::Uniform(0.25), ..MlpConfig::new(784, 10, 4, 788) }
//!     .init(tch::Device::Cpu)?;
//! let run = train(&mut net, &data, &TrainConfig::default())?;
//! println!("{}", run.summary());
//! # Ok::<(), sparselab::Error>(())
//! ```
#![warn(missing_docs)]

pub mod activity;
pub mod cancel;
pub mod cli;
pub mod cluster;
pub mod compute;
pub mod data;
pub mod error;
pub mod experiment;
pub mod kernel;
pub mod log;
pub mod model;
mod nan_safe;
pub mod notebook;
pub mod plot;
pub mod registry;
pub mod repro;
pub mod results;
pub mod rng;
pub mod script;
pub mod search;
pub mod share;
pub mod stats;
pub mod train;

pub use error::{Error, Result};

/// The libtorch version this binary was built against (the PyPI wheel's, e.g. `2.11.0+cu130`).
pub fn libtorch_version() -> String {
    option_env!("SPARSELAB_LIBTORCH_VERSION").unwrap_or("2.11.0").to_string()
}

/// sparselab's version.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
