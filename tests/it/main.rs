//! sparselab's integration tests: one binary, one module per area.
mod cluster;
mod common;
mod data;
mod ensemble;
mod fused;
mod gradflow;
mod kernels;
mod methods;
mod model;
mod props;
mod script;
mod scripts;
mod session;
mod slurm;
mod stats;
mod store;
mod train;
