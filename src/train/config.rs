//! Training settings and device choice.
use super::{GradFlowConfig, OptimizerConfig, Schedule};
use crate::error::{Error, Result};
use tch::Device;

/// Where to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeviceSpec {
    /// CUDA device 0 when available, else CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device `i`.
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            other => other.strip_prefix("cuda:").and_then(|i| i.parse().ok()).map(DeviceSpec::Cuda).ok_or_else(|| Error::config("device", format!("{s:?} is not one of auto, cpu, cuda, cuda:N"))),
        }
    }

    /// The concrete device.
    ///
    /// # Errors
    /// CUDA requested where libtorch sees fewer devices.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceSpec::Auto => Ok(Device::cuda_if_available()),
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(i) => {
                let n = tch::Cuda::device_count() as usize;
                if i < n {
                    Ok(Device::Cuda(i))
                } else {
                    Err(Error::config("device", format!("cuda:{i} requested but {n} CUDA device(s) are visible")))
                }
            }
        }
    }
}

/// How a training step is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// The fused CPU step where it applies (ReLU MLPs, with BatchNorm, skip or dropout, and their
    /// ensembles, any optimizer, on the CPU; [`crate::compute::FusedMlp`]), autograd elsewhere.
    #[default]
    Auto,
    /// Autograd and [`super::Optimizer`] always.
    Autograd,
    /// The fused step, or an error saying why it does not apply.
    Fused,
}

/// The names `step` accepts.
pub const STEPS: [&str; 3] = ["auto", "autograd", "fused"];

impl StepKind {
    /// Parses a name from [`STEPS`].
    ///
    /// # Errors
    /// Any other name, listing the valid ones.
    pub fn parse(name: &str) -> Result<Self> {
        Ok([StepKind::Auto, StepKind::Autograd, StepKind::Fused][crate::registry::lookup("step", name, &STEPS)?])
    }
    /// Whether this is the default.
    pub fn is_auto(&self) -> bool {
        *self == StepKind::Auto
    }
}

/// Everything a training run needs besides the model and the data.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Passes over the training set.
    pub epochs: usize,
    /// Minibatch size (128 by default; the report does not state one).
    pub batch_size: usize,
    /// Seed of data order, dropout and augmentation.
    pub seed: u64,
    /// Random crop (4-pixel padding) + horizontal flip on training batches.
    pub augment: bool,
    /// Training device.
    pub device: DeviceSpec,
    /// libtorch intra-op threads (`None`: libtorch's default).
    pub threads: Option<usize>,
    /// Gradient-flow measurement, if any.
    pub grad_flow: Option<GradFlowConfig>,
    /// Show progress (a bar on a terminal, a line per epoch otherwise).
    pub progress: bool,
    /// Fused step or autograd. Both compute the same update (to float rounding), so
    /// `Auto` is left out of a run's identity.
    #[serde(default, skip_serializing_if = "StepKind::is_auto")]
    pub step: StepKind,
    /// Masks that change during training (SET, RigL, gradual pruning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masks: Option<super::MaskSchedule>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::Constant,
            epochs: 10,
            batch_size: 128,
            seed: 0,
            augment: false,
            device: DeviceSpec::Auto,
            threads: None,
            grad_flow: None,
            progress: false,
            step: StepKind::Auto,
            masks: None,
        }
    }
}

impl TrainConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// Names the key, value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        self.schedule.validate()?;
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "0 must be >= 1"));
        }
        if let Some(t) = self.threads.filter(|t| *t == 0 || *t > 4096) {
            return Err(Error::config("threads", format!("{t} is outside 1..=4096")));
        }
        if let Some(m) = &self.masks {
            m.validate()?;
        }
        if let Some(g) = &self.grad_flow {
            if g.samples == 0 || g.points == 0 {
                return Err(Error::config("grad_flow", "points and samples must be >= 1"));
            }
        }
        Ok(())
    }
}
