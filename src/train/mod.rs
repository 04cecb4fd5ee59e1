//! Training: optimizers, schedules, the loop, metrics, gradient flow (SPEC 3, 5).
pub mod checkpoint;
mod config;
mod engine;
mod gradflow;
mod masks;
mod optim;
mod progress;
pub use progress::labelled;
pub(crate) use progress::TaskLive;
mod result;
mod schedule;
mod step;

pub use config::{DeviceSpec, StepKind, TrainConfig, STEPS};
pub use engine::{device_name, evaluate, evaluate_ensemble, train, train_ensemble, train_with, Callback, Control, NoCallback};
pub use gradflow::{average as grad_flow_average, measure as measure_grad_flow, measure_epochs, measurement_indices, GradFlowAverage, GradFlowConfig, GradFlowPoint, LayerNorms};
pub use masks::{drop_grow, keep_top, MaskPoint, MaskSchedule, MASK_METHODS};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind, OPTIMIZERS};
pub use result::{Cost, Ended, EpochRecord, RunResult};
pub use schedule::{Schedule, SCHEDULES};
pub use step::fused_step_blocker;

/// Mean cross-entropy of logits `[B, classes]` against int64 targets `[B]`.
pub(crate) fn cross_entropy(logits: &tch::Tensor, targets: &tch::Tensor) -> Result<tch::Tensor, tch::TchError> {
    logits.f_log_softmax(-1, tch::Kind::Float)?.f_nll_loss::<tch::Tensor>(targets, None, tch::Reduction::Mean, -100)
}
