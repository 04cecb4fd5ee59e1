//! Results as polars DataFrames: runs, histories and gradient flow become tables
//! that scripts query with SQL, save as CSV or Parquet, store for resumption, and chart.
mod charts;
mod frame;
mod identity;
mod store;
mod tables;

pub use charts::{bar_groups, heat_cells, history_chart, xy_facets, XySpec};
pub use frame::{Frame, FrameBuilder};
pub use identity::{data_differences, dataset_identity, flatten, train_identity};
pub(crate) use store::write_durably;
pub use store::{node_id, FOREIGN_TEMP_SECS};
pub use store::{Lookup, Store, StoredRun, DATA_DIR, SCHEMA_VERSION};
pub use tables::{grad_flow_frame, history_frame, layers_frame, run_row};
