//! What a training run returns: per-epoch history, gradient flow, final metrics.
use super::gradflow::{average, GradFlowAverage, GradFlowPoint};
use std::fmt::Write;

/// One epoch's metrics.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    #[serde(with = "crate::nan_safe")]
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches.
    #[serde(with = "crate::nan_safe")]
    pub train_acc: f64,
    /// Loss on the evaluation split (test set, or validation in a search).
    #[serde(with = "crate::nan_safe")]
    pub test_loss: f64,
    /// Accuracy on the evaluation split.
    #[serde(with = "crate::nan_safe")]
    pub test_acc: f64,
    /// Learning rate used.
    #[serde(with = "crate::nan_safe")]
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training + evaluation).
    #[serde(with = "crate::nan_safe")]
    pub seconds: f64,
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Ended {
    /// All epochs ran.
    Finished,
    /// Loss became NaN/inf during this 0-based epoch.
    Diverged(usize),
    /// A callback (e.g. ASHA) stopped it after this epoch.
    Stopped(usize),
    /// Ctrl-C / notebook interrupt during this epoch.
    Interrupted(usize),
    /// Not run by this process: another shard's run (`--shard`), not yet in the store.
    Skipped,
}

/// A finished (or diverged, stopped, interrupted) run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    /// Per-epoch metrics for the completed epochs.
    pub history: Vec<EpochRecord>,
    /// Gradient-flow points, if measured.
    pub grad_flow: Vec<GradFlowPoint>,
    /// How it ended.
    pub ended: Ended,
    /// Final evaluation accuracy (NaN if no epoch completed).
    #[serde(with = "crate::nan_safe")]
    pub test_acc: f64,
    /// Final evaluation loss.
    #[serde(with = "crate::nan_safe")]
    pub test_loss: f64,
    /// Total seconds.
    #[serde(with = "crate::nan_safe")]
    pub seconds: f64,
    /// Device it ran on, e.g. `cpu`, `cuda:0`.
    pub device: String,
    /// Mask updates (dynamic sparse training, gradual pruning), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mask_history: Vec<super::MaskPoint>,
    /// Weight layers with no active weight on an input-to-output path when the run
    /// ended (layer collapse; MLPs analyse paths, other models report empty layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collapsed: Vec<String>,
    /// What the training cost (MLPs and CNNs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

/// What a run's training cost: floating-point operations of its training steps
/// (forward and backward, 2 per multiply-add, backward counted as twice the forward:
/// input and weight gradients), without evaluation and gradient-flow measurement.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cost {
    /// As if every weight were active (the dense model of the same shape).
    pub dense_flops: f64,
    /// Counting only active weights (the masks' theoretical cost, changing with them).
    pub sparse_flops: f64,
    /// What the kernels executed: active weights in compact layers, every weight in
    /// layers stored densely (masked entries are multiplied by zero there).
    pub executed_flops: f64,
    /// The process's peak resident memory when the run ended (`VmHWM`, bytes): a
    /// high-water mark of everything the process did until then, not of this run alone.
    pub peak_rss_bytes: u64,
}

impl RunResult {
    /// A run this process did not train (another shard's).
    pub fn skipped() -> Self {
        RunResult {
            history: vec![],
            grad_flow: vec![],
            ended: Ended::Skipped,
            test_acc: f64::NAN,
            test_loss: f64::NAN,
            seconds: 0.0,
            device: String::new(),
            mask_history: vec![],
            collapsed: vec![],
            cost: None,
        }
    }

    /// The 0-based epoch in which the loss became NaN/inf, if it did (frames, the
    /// summary and `Run.diverged_epoch` count it from 1).
    pub fn diverged(&self) -> Option<usize> {
        match self.ended {
            Ended::Diverged(e) => Some(e),
            _ => None,
        }
    }

    /// Mean of each gradient-flow measure over the measurement points.
    pub fn grad_flow_average(&self) -> Option<GradFlowAverage> {
        average(&self.grad_flow)
    }

    /// Mean seconds per completed epoch.
    pub fn seconds_per_epoch(&self) -> f64 {
        if self.history.is_empty() {
            return f64::NAN;
        }
        self.history.iter().map(|h| h.seconds).sum::<f64>() / self.history.len() as f64
    }

    /// A short human summary.
    pub fn summary(&self) -> String {
        let mut s = format!("test_acc {:.4}  test_loss {:.4}  epochs {}  {:.1}s on {}", self.test_acc, self.test_loss, self.history.len(), self.seconds, self.device);
        match self.ended {
            Ended::Finished => {}
            Ended::Diverged(e) => write!(s, "  DIVERGED at epoch {}", e + 1).unwrap_or(()),
            Ended::Stopped(e) => write!(s, "  stopped after epoch {}", e + 1).unwrap_or(()),
            Ended::Interrupted(e) => write!(s, "  INTERRUPTED in epoch {}", e + 1).unwrap_or(()),
            Ended::Skipped => write!(s, "  SKIPPED (another shard's run)").unwrap_or(()),
        }
        if let Some(g) = self.grad_flow_average() {
            write!(s, "\navg EGF_1 {:.4e}  EGF_2 {:.4e}  |g|_1 {:.4e}  |g|_2 {:.4e}", g.egf1, g.egf2, g.gnorm1, g.gnorm2).unwrap_or(());
        }
        s
    }

    /// The history as an aligned table.
    pub fn history_table(&self) -> String {
        let mut s = format!("{:>5} {:>10} {:>9} {:>10} {:>9} {:>9} {:>7}\n", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "sec");
        for h in &self.history {
            let _ = writeln!(s, "{:>5} {:>10.4} {:>9.4} {:>10.4} {:>9.4} {:>9.2e} {:>7.2}", h.epoch + 1, h.train_loss, h.train_acc, h.test_loss, h.test_acc, h.lr, h.seconds);
        }
        s.pop();
        s
    }
}
