//! Learning-rate schedules, evaluated per epoch (SPEC 3).
use crate::error::{Error, Result};

/// How the learning rate changes with the epoch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` at each listed epoch (e.g. 0.01 x0.1 at 250, 375).
    Step {
        /// Epochs (0-based) from which the next factor applies.
        milestones: Vec<usize>,
        /// Factor per milestone.
        gamma: f64,
    },
    /// Cosine annealing from the base rate to `min_lr` over the run.
    Cosine {
        /// Final rate.
        min_lr: f64,
    },
}

/// Names of [`Schedule`]s, as scripts spell them.
pub const SCHEDULES: [&str; 3] = ["constant", "step", "cosine"];

impl Schedule {
    /// The schedule named `name` (case-insensitive) with its parameters; `gamma`
    /// defaults to 0.1 and `min_lr` to 0.
    ///
    /// # Errors
    /// An unknown name (listing the valid ones), or a parameter given to a schedule
    /// that does not take it.
    pub fn from_name(name: &str, milestones: Vec<usize>, gamma: Option<f64>, min_lr: Option<f64>) -> Result<Self> {
        let has_milestones = !milestones.is_empty();
        let s = match SCHEDULES[crate::registry::lookup("schedule", name, &SCHEDULES)?] {
            "step" => Schedule::Step { milestones, gamma: gamma.unwrap_or(0.1) },
            "cosine" => Schedule::Cosine { min_lr: min_lr.unwrap_or(0.0) },
            _ => Schedule::Constant,
        };
        let (step, cosine) = (matches!(s, Schedule::Step { .. }), matches!(s, Schedule::Cosine { .. }));
        if !step && (gamma.is_some() || has_milestones) {
            return Err(Error::config(if gamma.is_some() { "gamma" } else { "milestones" }, format!("only schedule \"step\" takes it, not {name:?}")));
        }
        if !cosine && min_lr.is_some() {
            return Err(Error::config("min_lr", format!("only schedule \"cosine\" takes it, not {name:?}")));
        }
        s.validate()?;
        Ok(s)
    }

    /// `constant`, `step` or `cosine`.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Step { .. } => "step",
            Schedule::Cosine { .. } => "cosine",
        }
    }

    /// Learning rate for 0-based `epoch` of `epochs`.
    pub fn lr(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { milestones, gamma } => base * gamma.powi(milestones.iter().filter(|&&m| epoch >= m).count() as i32),
            Schedule::Cosine { min_lr } => {
                let t = epoch as f64 / epochs.max(1) as f64;
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        match self {
            Schedule::Step { gamma, .. } if gamma.is_nan() || *gamma <= 0.0 => Err(Error::config("gamma", format!("{gamma} must be > 0"))),
            Schedule::Cosine { min_lr } if min_lr.is_nan() || *min_lr < 0.0 => Err(Error::config("min_lr", format!("{min_lr} must be >= 0"))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_step_schedules() {
        let s = Schedule::Step { milestones: vec![250, 375], gamma: 0.1 };
        assert_eq!(s.lr(0.01, 249, 500), 0.01);
        assert!((s.lr(0.01, 250, 500) - 0.001).abs() < 1e-15);
        assert!((s.lr(0.01, 499, 500) - 0.0001).abs() < 1e-15);
        let s = Schedule::Step { milestones: vec![60, 120, 160], gamma: 0.2 };
        assert!((s.lr(0.1, 160, 200) - 0.1 * 0.008).abs() < 1e-15);
        let c = Schedule::Cosine { min_lr: 0.0 };
        assert_eq!(c.lr(1.0, 0, 10), 1.0);
        assert!((c.lr(1.0, 5, 10) - 0.5).abs() < 1e-12);
    }
}
