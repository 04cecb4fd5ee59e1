//! ASHA early stopping, a line-for-line port of Ray Tune's `ASHAScheduler`
//! (`ray/tune/schedulers/async_hyperband.py`, one bracket, mode "max").
//!
//! Rungs sit at `grace·eta^k` for `k < MAX_RUNGS = int(ln(max_t/grace)/ln(eta) + 1)`.
//! When a trial reports `(epoch, score)`:
//! 1. if `epoch >= max_t` (and `stop_last_trials`), it is stopped; otherwise
//! 2. the largest milestone `<= epoch` at which the trial has no score yet is
//!    its rung; the cutoff there is the `(1 - 1/eta)` quantile
//!    ([`nanpercentile`], linear interpolation) of the scores recorded at that
//!    rung *before* this one (none if the rung is empty); the trial stops if
//!    `score < cutoff`; the score is recorded either way, and lower rungs are
//!    not visited for this result.
//!
//! Whenever a trial stops, Ray's trial runner calls `on_trial_complete` with
//! the same last result, which passes it through step 2 once more (this is how
//! scores at the `max_t` rung get recorded); [`Asha::on_result`] does the same.

use std::collections::{BTreeMap, BTreeSet};

use super::stats::nanpercentile;
use super::SearchError;

/// ASHA settings; [`AshaConfig::new`] gives the project defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AshaConfig {
    /// Epochs before a trial can first be stopped (rung 0), `>= 1`.
    pub grace_period: usize,
    /// `eta`: rung spacing factor and 1 / fraction promoted, `> 1`.
    pub reduction_factor: f64,
    /// Epochs at which a trial ends, `>= grace_period`.
    pub max_t: usize,
    /// Stop trials at `max_t` (Ray's default `True`).
    pub stop_last_trials: bool,
}

impl AshaConfig {
    /// `grace_period = 1`, `reduction_factor = 4`, the given `max_t` (epochs).
    pub fn new(max_t: usize) -> Self {
        Self { grace_period: 1, reduction_factor: 4.0, max_t, stop_last_trials: true }
    }
}

/// What a trial should do after reporting a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep training.
    Continue,
    /// Stop now (early-stopped, or `max_t` reached).
    Stop,
}

#[derive(Debug, Clone)]
struct Rung {
    /// Ray's float milestone `grace · eta^k`, compared as `epoch >= milestone`.
    milestone: f64,
    /// First epoch at which the rung is reached, `ceil(milestone)`.
    epoch: usize,
    recorded: BTreeMap<usize, f64>,
}

/// The ASHA scheduler state: scores recorded at each rung, by trial id.
#[derive(Debug, Clone)]
pub struct Asha {
    cfg: AshaConfig,
    /// Largest milestone first, as Ray's `_rungs`.
    rungs: Vec<Rung>,
    milestones: Vec<usize>,
    finished: BTreeSet<usize>,
    num_stopped: usize,
}

impl Asha {
    /// A scheduler with empty rungs; fails on the configurations Ray asserts against.
    pub fn new(cfg: AshaConfig) -> Result<Self, SearchError> {
        let bad = |key, message: String| Err(SearchError::InvalidConfig { key, message });
        if cfg.grace_period == 0 {
            return bad("grace_period", "must be positive".into());
        }
        if cfg.max_t < cfg.grace_period {
            return bad("max_t", format!("{} must be >= grace_period {}", cfg.max_t, cfg.grace_period));
        }
        if !(cfg.reduction_factor.is_finite() && cfg.reduction_factor > 1.0) {
            return bad("reduction_factor", format!("{} must be finite and > 1", cfg.reduction_factor));
        }
        let (min_t, rf) = (cfg.grace_period as f64, cfg.reduction_factor);
        // Python: int(np.log(max_t / min_t) / np.log(rf) - s + 1) with s = 0.
        let max_rungs = ((cfg.max_t as f64 / min_t).ln() / rf.ln() + 1.0) as usize;
        let rungs: Vec<Rung> = (0..max_rungs)
            .rev()
            .map(|k| {
                let milestone = min_t * rf.powf(k as f64);
                Rung { milestone, epoch: milestone.ceil() as usize, recorded: BTreeMap::new() }
            })
            .collect();
        let milestones = rungs.iter().rev().map(|r| r.epoch).collect();
        Ok(Self { cfg, rungs, milestones, finished: BTreeSet::new(), num_stopped: 0 })
    }

    /// Reports `score` (higher is better) of `trial` after `epoch` epochs
    /// (Ray's `on_trial_result`, plus the completion call Ray makes on a stop).
    ///
    /// Results for a trial that was already stopped or completed are ignored
    /// and answered with [`Decision::Stop`].
    pub fn on_result(&mut self, trial: usize, epoch: usize, score: f64) -> Decision {
        if self.finished.contains(&trial) {
            return Decision::Stop;
        }
        let decision = if epoch >= self.cfg.max_t && self.cfg.stop_last_trials { Decision::Stop } else { self.bracket_on_result(trial, epoch, score) };
        if decision == Decision::Stop {
            self.num_stopped += 1;
            self.on_complete(trial, epoch, score);
        }
        decision
    }

    /// Reports the last result of a trial that ended without being stopped by
    /// ASHA (Ray's `on_trial_complete`): recorded like a result, decision ignored.
    pub fn on_complete(&mut self, trial: usize, epoch: usize, score: f64) {
        if self.finished.insert(trial) {
            self.bracket_on_result(trial, epoch, score);
        }
    }

    /// Ray's `_Bracket.on_result`.
    fn bracket_on_result(&mut self, trial: usize, epoch: usize, score: f64) -> Decision {
        let rf = self.cfg.reduction_factor;
        let t = epoch as f64;
        let mut decision = Decision::Continue;
        for rung in &mut self.rungs {
            let seen = rung.recorded.contains_key(&trial);
            if t >= rung.milestone && seen && !self.cfg.stop_last_trials {
                break;
            }
            if t < rung.milestone || seen {
                continue;
            }
            if let Some(cutoff) = cutoff(&rung.recorded, rf) {
                if score < cutoff {
                    decision = Decision::Stop;
                }
            }
            rung.recorded.insert(trial, score);
            break;
        }
        decision
    }

    /// Milestones in ascending order, as epochs (e.g. `[1, 4, 16]` for `max_t = 16`).
    pub fn milestones(&self) -> &[usize] {
        &self.milestones
    }

    /// Highest milestone at which `trial` has a recorded score.
    pub fn rung_reached(&self, trial: usize) -> Option<usize> {
        self.rungs.iter().find(|r| r.recorded.contains_key(&trial)).map(|r| r.epoch)
    }

    /// Current cutoff at `milestone` (`None` if no such rung or nothing recorded yet).
    pub fn cutoff_at(&self, milestone: usize) -> Option<f64> {
        let rung = self.rungs.iter().find(|r| r.epoch == milestone)?;
        cutoff(&rung.recorded, self.cfg.reduction_factor)
    }

    /// Scores recorded at `milestone`, by trial id.
    pub fn recorded_at(&self, milestone: usize) -> Option<&BTreeMap<usize, f64>> {
        self.rungs.iter().find(|r| r.epoch == milestone).map(|r| &r.recorded)
    }

    /// Number of [`Decision::Stop`] answers given (early stops and `max_t` stops).
    pub fn num_stopped(&self) -> usize {
        self.num_stopped
    }
}

/// Ray's `cutoff`: the `(1 - 1/rf)·100` percentile of a rung, `None` when empty.
/// (If every recorded score is NaN numpy yields NaN, which stops nothing; so does `None`.)
fn cutoff(recorded: &BTreeMap<usize, f64>, rf: f64) -> Option<f64> {
    if recorded.is_empty() {
        return None;
    }
    let values: Vec<f64> = recorded.values().copied().collect();
    nanpercentile(&values, (1.0 - 1.0 / rf) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::{Continue, Stop};

    #[test]
    fn milestones_follow_ray() {
        let m = |max_t, rf| Asha::new(AshaConfig { reduction_factor: rf, ..AshaConfig::new(max_t) }).unwrap();
        assert_eq!(m(16, 4.0).milestones(), &[1, 4, 16]);
        assert_eq!(m(15, 4.0).milestones(), &[1, 4]); // int(1.95 + 1) = 2 rungs
        assert_eq!(m(100, 4.0).milestones(), &[1, 4, 16, 64]);
        assert_eq!(m(10, 2.0).milestones(), &[1, 2, 4, 8]);
        assert_eq!(m(1, 4.0).milestones(), &[1]);
        assert_eq!(m(20, 3.5).milestones(), &[1, 4, 13]); // 1, 3.5, 12.25
        let g = Asha::new(AshaConfig { grace_period: 2, ..AshaConfig::new(32) }).unwrap();
        assert_eq!(g.milestones(), &[2, 8, 32]);
        assert!(Asha::new(AshaConfig { grace_period: 0, ..AshaConfig::new(4) }).is_err());
        assert!(Asha::new(AshaConfig { grace_period: 5, ..AshaConfig::new(4) }).is_err());
        assert!(Asha::new(AshaConfig { reduction_factor: 1.0, ..AshaConfig::new(4) }).is_err());
    }

    #[test]
    fn ray_docstring_example() {
        // Ray's _Bracket docstring: min_t 1, max_t 10, rf 2.
        let mut a = Asha::new(AshaConfig { reduction_factor: 2.0, ..AshaConfig::new(10) }).unwrap();
        assert_eq!(a.on_result(1, 1, 2.0), Continue);
        assert_eq!(a.on_result(2, 1, 4.0), Continue);
        assert_eq!(a.cutoff_at(1), Some(3.0));
        assert_eq!(a.on_result(3, 1, 1.0), Stop);
        assert_eq!(a.cutoff_at(1), Some(2.0));
    }

    /// Runs `curve[e-1]` for epochs 1.. until ASHA says stop; returns the stop epoch.
    fn run_trial(a: &mut Asha, trial: usize, curve: &[f64]) -> usize {
        for (i, &s) in curve.iter().enumerate() {
            if a.on_result(trial, i + 1, s) == Stop {
                return i + 1;
            }
        }
        curve.len()
    }

    #[test]
    fn hand_worked_sequential_scenario() {
        // max_t = 16, eta = 4, grace = 1 -> MAX_RUNGS = int(ln 16/ln 4 + 1) = 3,
        // milestones 1, 4, 16; cutoff = 75th percentile of the rung *before* adding.
        // Trials run one after another; only the scores at epochs 1, 4, 16 matter.
        // T0: e1 0.50, rung 1 empty -> go; e4 0.60, rung 4 empty -> go;
        //     e16 reaches max_t -> Stop, 0.80 recorded at rung 16 (completion).
        // T1: e1 0.40 vs pct75([0.50]) = 0.50 -> Stop at rung 1.
        // T2: e1 0.70 vs pct75([0.40, 0.50]) = 0.475 -> go; e4 0.65 vs pct75([0.60]) = 0.60 -> go;
        //     e16 -> Stop (max_t), 0.85 recorded at rung 16.
        // T3: e1 0.55 vs pct75([0.40, 0.50, 0.70]): index 1.5 -> (0.50 + 0.70)/2 = 0.60
        //     -> 0.55 < 0.60 -> Stop at rung 1 (interpolated cutoff).
        // T4: e1 0.60 vs pct75([.40 .50 .55 .70]): index 2.25 -> .55 + .25·.15 = 0.5875 -> go;
        //     e4 0.62 vs pct75([0.60, 0.65]) = 0.6375 -> Stop at rung 4.
        // T5: e1 0.60 vs pct75([.40 .50 .55 .60 .70]): index 3 -> exactly 0.60; not < -> go (tie);
        //     e4 0.64 vs pct75([.60 .62 .65]): index 1.5 -> 0.635 -> go; e16 -> Stop (max_t).
        let curve = |e1: f64, e4: f64, e16: f64| -> Vec<f64> {
            (1..=16)
                .map(|e| {
                    if e < 4 {
                        e1
                    } else if e < 16 {
                        e4
                    } else {
                        e16
                    }
                })
                .collect()
        };
        let mut a = Asha::new(AshaConfig::new(16)).unwrap();
        assert_eq!(a.milestones(), &[1, 4, 16]);
        let expected = [(16, Some(16)), (1, Some(1)), (16, Some(16)), (1, Some(1)), (4, Some(4)), (16, Some(16))];
        let curves = [curve(0.50, 0.60, 0.80), curve(0.40, 0.45, 0.50), curve(0.70, 0.65, 0.85), curve(0.55, 0.90, 0.95), curve(0.60, 0.62, 0.99), curve(0.60, 0.64, 0.70)];
        for (trial, c) in curves.iter().enumerate() {
            let stop = run_trial(&mut a, trial, c);
            assert_eq!((stop, a.rung_reached(trial)), expected[trial], "trial {trial}");
        }
        let rung = |m| a.recorded_at(m).unwrap().values().copied().collect::<Vec<_>>();
        assert_eq!(rung(1), vec![0.50, 0.40, 0.70, 0.55, 0.60, 0.60]);
        assert_eq!(rung(4), vec![0.60, 0.65, 0.62, 0.64]);
        assert_eq!(rung(16), vec![0.80, 0.85, 0.70]);
        assert_eq!(a.num_stopped(), 6);
        // Results after a stop are ignored.
        assert_eq!(a.on_result(1, 2, 0.99), Stop);
        assert_eq!(a.rung_reached(1), Some(1));
    }

    #[test]
    fn hand_worked_interleaved_scenario() {
        // Four trials report epoch by epoch in turn (asynchronous rungs).
        // e1: A 0.30 (empty) go; B 0.50 vs 0.30 go; C 0.20 vs pct75([.3 .5]) = 0.45 Stop;
        //     D 0.45 vs pct75([.2 .3 .5]) = 0.40 go.
        // e4: A 0.50 (empty) go; B 0.55 vs 0.50 go; D 0.52 vs pct75([.5 .55]) = 0.5375 Stop.
        let mut a = Asha::new(AshaConfig::new(16)).unwrap();
        let e1 = [(0, 0.30, Continue), (1, 0.50, Continue), (2, 0.20, Stop), (3, 0.45, Continue)];
        for (t, s, d) in e1 {
            assert_eq!(a.on_result(t, 1, s), d, "trial {t} at epoch 1");
        }
        for e in 2..=3 {
            for t in [0, 1, 3] {
                assert_eq!(a.on_result(t, e, 0.99), Continue);
            }
        }
        for (t, s, d) in [(0, 0.50, Continue), (1, 0.55, Continue), (3, 0.52, Stop)] {
            assert_eq!(a.on_result(t, 4, s), d, "trial {t} at epoch 4");
        }
        assert_eq!(a.rung_reached(2), Some(1));
        assert_eq!(a.rung_reached(3), Some(4));
        assert!((a.cutoff_at(4).unwrap() - 0.535).abs() < 1e-12); // pct75([.50 .52 .55]): index 1.5
                                                                  // A trial ending on its own is recorded through on_complete.
        a.on_complete(0, 5, 0.6);
        assert_eq!(a.on_result(0, 6, 0.7), Stop);
    }

    #[test]
    fn nan_scores_never_stop_but_are_recorded() {
        let mut a = Asha::new(AshaConfig::new(16)).unwrap();
        assert_eq!(a.on_result(0, 1, f64::NAN), Continue);
        assert_eq!(a.cutoff_at(1), None); // all-NaN rung: numpy gives NaN, stops nothing
        assert_eq!(a.on_result(1, 1, 0.1), Continue);
        assert_eq!(a.on_result(2, 1, f64::NAN), Continue);
        assert_eq!(a.on_result(3, 1, 0.05), Stop); // cutoff 0.1 (NaNs dropped)
    }
}
