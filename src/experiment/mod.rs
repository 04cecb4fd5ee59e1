//! Experiments built from training runs: SC-SDC (report 3.2.1) and its grids, the
//! gradient-flow correlation study (Table 3.1), SNAS (chapter 4), magnitude pruning (3.4.3).
mod correlation;
mod grid;
mod prune;
mod sc_sdc;
mod snas;

pub use correlation::{gradflow_correlation, MEASURES};
pub use grid::{grid_frame, grid_runs_frame, regularization, sc_sdc_grid, GridAxes, GridCell, Regularization};
pub use prune::{magnitude_prune, prune_train, Scope};
pub use snas::{snas, Budget, Objective, SnasConfig, SnasResult, Space, Trial};
pub use sc_sdc::{dense_widths, ensemble_groups, sc_sdc, twins, InitFan, ScSdcConfig, ScSdcResult, Twins, ENSEMBLE_MEMBERS};
