//! Experiments built from training runs: SC-SDC (report 3.2.1) and SNAS (chapter 4).
mod sc_sdc;
mod snas;

pub use snas::{snas, Budget, Objective, SnasConfig, SnasResult, Space, Trial};
pub use sc_sdc::{dense_widths, sc_sdc, twins, InitFan, ScSdcConfig, ScSdcResult, Twins};
