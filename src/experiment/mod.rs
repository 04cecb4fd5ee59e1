//! Experiments built from training runs: SC-SDC (report 3.2.1) and its grids, the
//! gradient-flow correlation study (Table 3.1), SNAS (chapter 4), magnitude pruning (3.4.3),
//! and the run session every one of them trains through.
mod correlation;
mod grid;
mod init_prune;
mod methods;
mod prune;
mod sc_sdc;
mod session;
mod snas;
mod verify;

pub use correlation::{correlation_chart, gradflow_correlation, MEASURES};
pub use grid::{grid_configs, grid_frame, grid_runs_frame, pvalue_table, regularization, sc_sdc_grid, GridAxes, GridCell, Regularization};
pub use init_prune::{prune_at_init, scores as prune_scores, select as select_masks, InitPruneConfig, PruneReport, Pruner, Target, PRUNERS};
pub use methods::{compare_methods, holm, MethodRun, MethodTest, MethodsConfig, MethodsResult, METHODS};
pub use prune::{magnitude_prune, prune_train, ImpConfig, PruneConfig, Scope, SCOPES};
pub use sc_sdc::{dense_widths, ensemble_groups, sc_sdc, study_chart, twins, InitFan, ScSdcConfig, ScSdcResult, ScSdcRun, Twins, ENSEMBLE_MEMBERS, INIT_FANS};
pub use session::{PlannedRun, RunSpec, Session};
pub use snas::{search_charts, snas, Budget, Objective, SnasBaseline, SnasConfig, SnasResult, Space, Trial, OBJECTIVES, REPRESENTATIONS, SPACES};
pub use verify::{environment_differences, Outcome, Verdict, Verifier};
