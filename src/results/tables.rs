//! Conversions from library results to frames.
use super::{Frame, FrameBuilder};
use crate::error::Result;
use crate::model::LayerInfo;
use crate::train::RunResult;

/// Per-epoch history (epochs counted from 1, as the log counts them): epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds.
pub fn history_frame(run: &RunResult) -> Result<Frame> {
    let h = &run.history;
    FrameBuilder::new()
        .i64("epoch", h.iter().map(|r| r.epoch as i64 + 1).collect())
        .f64("train_loss", h.iter().map(|r| r.train_loss).collect())
        .f64("train_acc", h.iter().map(|r| r.train_acc).collect())
        .f64("test_loss", h.iter().map(|r| r.test_loss).collect())
        .f64("test_acc", h.iter().map(|r| r.test_acc).collect())
        .f64("lr", h.iter().map(|r| r.lr).collect())
        .f64("seconds", h.iter().map(|r| r.seconds).collect())
        .build()
}

/// Gradient flow, one row per (point, layer): epoch (from 1: measured at its end), layer, l1, l2, masked_l1,
/// masked_l2, plus the point's egf1, egf2, gnorm1, gnorm2.
pub fn grad_flow_frame(run: &RunResult) -> Result<Frame> {
    let rows: Vec<_> = run.grad_flow.iter().flat_map(|p| p.layers.iter().map(move |l| (p, l))).collect();
    FrameBuilder::new()
        .i64("epoch", rows.iter().map(|(p, _)| p.epoch as i64 + 1).collect())
        .str("layer", rows.iter().map(|(_, l)| l.name.clone()).collect())
        .f64("l1", rows.iter().map(|(_, l)| l.l1).collect())
        .f64("l2", rows.iter().map(|(_, l)| l.l2).collect())
        .f64("masked_l1", rows.iter().map(|(_, l)| l.masked_l1).collect())
        .f64("masked_l2", rows.iter().map(|(_, l)| l.masked_l2).collect())
        .f64("egf1", rows.iter().map(|(p, _)| p.egf1).collect())
        .f64("egf2", rows.iter().map(|(p, _)| p.egf2).collect())
        .f64("gnorm1", rows.iter().map(|(p, _)| p.gnorm1).collect())
        .f64("gnorm2", rows.iter().map(|(p, _)| p.gnorm2).collect())
        .build()
}

/// The layer report: name, shape, active, total, density.
pub fn layers_frame(layers: &[LayerInfo]) -> Result<Frame> {
    FrameBuilder::new()
        .str("name", layers.iter().map(|l| l.name.clone()).collect())
        .str("shape", layers.iter().map(|l| l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")).collect())
        .i64("active", layers.iter().map(|l| l.active).collect())
        .i64("total", layers.iter().map(|l| l.total).collect())
        .f64("density", layers.iter().map(|l| l.density).collect())
        .build()
}

/// One summary row of a run: final metrics, divergence, gradient-flow averages,
/// epochs, seconds. Callers prepend their configuration columns.
pub fn run_row(run: &RunResult) -> FrameBuilder {
    let g = run.grad_flow_average();
    FrameBuilder::new()
        .f64("test_acc", vec![run.test_acc])
        .f64("test_loss", vec![run.test_loss])
        .f64("train_loss", vec![run.history.last().map(|h| h.train_loss).unwrap_or(f64::NAN)])
        .bool("diverged", vec![run.diverged().is_some()])
        .opt_i64("diverged_epoch", vec![run.diverged().map(|e| e as i64 + 1)])
        .i64("epochs_run", vec![run.history.len() as i64])
        .opt_f64("egf1", vec![g.map(|g| g.egf1)])
        .opt_f64("egf2", vec![g.map(|g| g.egf2)])
        .opt_f64("gnorm1", vec![g.map(|g| g.gnorm1)])
        .opt_f64("gnorm2", vec![g.map(|g| g.gnorm2)])
        .f64("seconds", vec![run.seconds])
        .i64("collapsed_layers", vec![run.collapsed.len() as i64])
        .i64("mask_updates", vec![run.mask_history.len() as i64])
        .opt_f64("mask_kept", vec![run.mask_history.last().map(|p| p.kept)])
        .opt_f64("dense_flops", vec![run.cost.as_ref().map(|c| c.dense_flops)])
        .opt_f64("sparse_flops", vec![run.cost.as_ref().map(|c| c.sparse_flops)])
        .opt_f64("executed_flops", vec![run.cost.as_ref().map(|c| c.executed_flops)])
        .opt_f64("peak_rss_mb", vec![run.cost.as_ref().map(|c| c.peak_rss_bytes as f64 / 1e6)])
}
