//! sparselab's integration tests: one binary, one module per area.
mod common;
mod data;
mod ensemble;
mod fused;
mod gradflow;
mod kernels;
mod model;
mod script;
mod scripts;
mod stats;
mod store;
mod train;
