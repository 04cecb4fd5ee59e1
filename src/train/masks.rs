//! Masks that change while a model trains: SET (Mocanu et al. 2018), RigL (Evci et
//! al. 2020) and gradual magnitude pruning (Zhu and Gupta 2017). The schedule is part
//! of [`super::TrainConfig`], so it enters the run's identity; the loop calls
//! [`Masker`] after each step and follows each change in the optimizer state or the
//! fused step (grown weights start at zero with no optimizer history). Every layer
//! keeps its exact active count under SET and RigL; selections break ties by the
//! lower flat index, so a seed gives the same masks bit for bit.
use crate::error::{Error, Result};
use crate::rng::{stream, Stream};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Names of the mask schedules, as scripts spell them.
pub const MASK_METHODS: [&str; 3] = ["set", "rigl", "gradual"];

/// How masks change during training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum MaskSchedule {
    /// SET: after every epoch but the last, each layer drops `fraction` of its active
    /// weights (smallest magnitude) and grows as many at random inactive positions.
    Set {
        /// Fraction of each layer's active weights replaced per update (SET's zeta, 0.3).
        fraction: f64,
    },
    /// RigL: every `every` steps until `end` of training, each layer drops the
    /// smallest-magnitude `f(t)` of its active weights and grows as many where the
    /// dense gradient (this step's minibatch) is largest; `f(t) = fraction / 2 *
    /// (1 + cos(pi t / (end * T)))`.
    Rigl {
        /// Initial drop fraction (0.3).
        fraction: f64,
        /// Steps between updates (Delta T, 100).
        every: usize,
        /// Fraction of training after which the masks stay fixed (0.75).
        end: f64,
    },
    /// Gradual magnitude pruning: from `start` to `end` of training, every `every`
    /// steps, prune by magnitude to `d_t = d_f + (d_0 - d_f) (1 - p)^3`, `p` the
    /// progress from start to end, `d_0` the density when pruning starts, `d_f` `density`.
    Gradual {
        /// Final density.
        density: f64,
        /// Fraction of training at which pruning starts.
        start: f64,
        /// Fraction of training at which the final density is reached.
        end: f64,
        /// Steps between pruning steps.
        every: usize,
        /// One magnitude threshold over all layers instead of per layer.
        global: bool,
    },
}

impl MaskSchedule {
    /// SET with zeta 0.3.
    pub fn set() -> Self {
        MaskSchedule::Set { fraction: 0.3 }
    }
    /// RigL with its paper's defaults: drop fraction 0.3, Delta T 100, end 0.75.
    pub fn rigl() -> Self {
        MaskSchedule::Rigl { fraction: 0.3, every: 100, end: 0.75 }
    }
    /// Gradual pruning to `density` from 10 % to 60 % of training every 100 steps, per layer.
    pub fn gradual(density: f64) -> Self {
        MaskSchedule::Gradual { density, start: 0.1, end: 0.6, every: 100, global: false }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// Names the key, the value and the valid range.
    pub fn validate(&self) -> Result<()> {
        let open = |k: &str, v: f64| if v > 0.0 && v < 1.0 { Ok(()) } else { Err(Error::config(k, format!("{v} is outside (0, 1)"))) };
        let every = |v: usize| if v >= 1 { Ok(()) } else { Err(Error::config("every", "0 must be >= 1 (steps between updates)")) };
        match *self {
            MaskSchedule::Set { fraction } => open("fraction", fraction),
            MaskSchedule::Rigl { fraction, every: e, end } => {
                open("fraction", fraction)?;
                every(e)?;
                if !(end > 0.0 && end <= 1.0) {
                    return Err(Error::config("end", format!("{end} is outside (0, 1]")));
                }
                Ok(())
            }
            MaskSchedule::Gradual { density, start, end, every: e, .. } => {
                if !(density > 0.0 && density <= 1.0) {
                    return Err(Error::config("density", format!("{density} is outside (0, 1]")));
                }
                every(e)?;
                if !((0.0..1.0).contains(&start) && end > start && end <= 1.0) {
                    return Err(Error::config("end", format!("start {start} and end {end} must satisfy 0 <= start < end <= 1")));
                }
                Ok(())
            }
        }
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        match self {
            MaskSchedule::Set { .. } => "set",
            MaskSchedule::Rigl { .. } => "rigl",
            MaskSchedule::Gradual { .. } => "gradual",
        }
    }
}

/// One mask update of one member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskPoint {
    /// Steps completed when the masks changed.
    pub step: usize,
    /// 0-based epoch of that step.
    pub epoch: usize,
    /// Fraction of the initial mask's active weights still active.
    pub kept: f64,
    /// Active weights after the update (all layers).
    pub active: i64,
}

/// The `k` highest of `score` among the `eligible` entries (ties: lower index first).
pub fn keep_top(score: &[f32], eligible: &[bool], k: usize) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..score.len()).filter(|i| eligible[*i]).collect();
    let k = k.min(idx.len());
    let order = |a: &usize, b: &usize| score[*b].total_cmp(&score[*a]).then(a.cmp(b));
    if k < idx.len() && k > 0 {
        idx.select_nth_unstable_by(k - 1, order);
    }
    let mut out = vec![false; score.len()];
    idx.iter().take(k).for_each(|i| out[*i] = true);
    out
}

/// One layer's drop-and-grow update: drop the `k` smallest-magnitude active weights
/// (`k = round(fraction * active)`), then grow `k` where `grow` is highest among the
/// positions not active after the drop (a just-dropped one may be regrown and then
/// keeps its value). The active count is unchanged.
pub fn drop_grow(weight: &[f32], mask: &[bool], grow: &[f32], fraction: f64) -> Vec<bool> {
    let active = mask.iter().filter(|m| **m).count();
    let k = ((fraction * active as f64).round() as usize).min(active);
    let magnitude: Vec<f32> = weight.iter().map(|w| w.abs()).collect();
    let mut kept = keep_top(&magnitude, mask, active - k);
    let free: Vec<bool> = kept.iter().map(|m| !m).collect();
    let grown = keep_top(grow, &free, k);
    kept.iter_mut().zip(grown).for_each(|(m, g)| *m |= g);
    kept
}

fn floats(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.detach().to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))?)
}

fn bools(t: &Tensor) -> Result<Vec<bool>> {
    Ok(floats(t)?.into_iter().map(|v| v > 0.0).collect())
}

fn tensor(mask: &[bool], like: &Tensor) -> Tensor {
    let v: Vec<f32> = mask.iter().map(|m| if *m { 1.0 } else { 0.0 }).collect();
    Tensor::from_slice(&v).view(like.size().as_slice()).to_device(like.device())
}

/// What the loop gives the masker about one member.
pub(crate) struct MemberLayers {
    /// Effective weights per layer (`[out, in]`).
    pub weights: Vec<Tensor>,
    /// Masks per layer.
    pub masks: Vec<Tensor>,
}

/// Applies a [`MaskSchedule`] during one run (all members of an ensemble).
pub(crate) struct Masker {
    schedule: MaskSchedule,
    steps_per_epoch: usize,
    total: usize,
    seeds: Vec<u64>,
    initial: Vec<Vec<Vec<bool>>>,
    /// Per member and layer (or one entry for global scope): active count when gradual pruning starts.
    start_active: Vec<Option<Vec<i64>>>,
    updates: u64,
    pub history: Vec<Vec<MaskPoint>>,
}

impl Masker {
    pub(crate) fn new(schedule: &MaskSchedule, initial: &[MemberLayers], seeds: &[u64], steps_per_epoch: usize, epochs: usize) -> Result<Self> {
        schedule.validate()?;
        let initial = initial.iter().map(|m| m.masks.iter().map(bools).collect::<Result<Vec<_>>>()).collect::<Result<Vec<_>>>()?;
        Ok(Masker {
            schedule: schedule.clone(),
            steps_per_epoch,
            total: steps_per_epoch * epochs,
            seeds: seeds.to_vec(),
            start_active: vec![None; initial.len()],
            history: vec![vec![]; initial.len()],
            initial,
            updates: 0,
        })
    }

    /// Whether the masks change after `step` steps (1-based), and RigL's drop fraction
    /// or the gradual target's progress then.
    pub(crate) fn due(&self, step: usize) -> Option<f64> {
        let t = self.total as f64;
        match self.schedule {
            MaskSchedule::Set { fraction } => (step.is_multiple_of(self.steps_per_epoch) && step < self.total).then_some(fraction),
            MaskSchedule::Rigl { fraction, every, end } => {
                let stop = end * t;
                (step.is_multiple_of(every) && (step as f64) < stop).then(|| fraction / 2.0 * (1.0 + (std::f64::consts::PI * step as f64 / stop).cos()))
            }
            MaskSchedule::Gradual { start, end, every, .. } => {
                let (t0, t1) = ((start * t).round() as usize, ((end * t).round() as usize).max(1));
                (step >= t0 && step <= t1 && ((step - t0).is_multiple_of(every) || step == t1)).then(|| if t1 > t0 { (step - t0) as f64 / (t1 - t0) as f64 } else { 1.0 })
            }
        }
    }

    /// Whether updates read the dense gradient (RigL).
    pub(crate) fn needs_gradient(&self) -> bool {
        matches!(self.schedule, MaskSchedule::Rigl { .. })
    }

    /// New masks for `member` (`grads`: dense gradients when [`Masker::needs_gradient`]),
    /// recording the update in its history. `value` is what [`Masker::due`] returned.
    pub(crate) fn update(&mut self, member: usize, step: usize, value: f64, layers: &MemberLayers, grads: Option<&[Tensor]>) -> Result<Vec<Tensor>> {
        let masks: Vec<Vec<bool>> = layers.masks.iter().map(bools).collect::<Result<_>>()?;
        let weights: Vec<Vec<f32>> = layers.weights.iter().map(floats).collect::<Result<_>>()?;
        let new: Vec<Vec<bool>> = match &self.schedule {
            MaskSchedule::Set { .. } => masks
                .iter()
                .zip(&weights)
                .enumerate()
                .map(|(l, (m, w))| {
                    if m.iter().all(|x| *x) {
                        return m.clone();
                    }
                    let mut rng = stream(self.seeds[member], Stream::Grow, self.updates * 1024 + l as u64);
                    let random: Vec<f32> = (0..m.len()).map(|_| rng.random::<f32>()).collect();
                    drop_grow(w, m, &random, value)
                })
                .collect(),
            MaskSchedule::Rigl { .. } => {
                let grads = grads.ok_or_else(|| Error::Shape("rigl: no dense gradient".into()))?;
                masks
                    .iter()
                    .zip(&weights)
                    .zip(grads)
                    .map(|((m, w), g)| if m.iter().all(|x| *x) { Ok(m.clone()) } else { Ok(drop_grow(w, m, &floats(g)?.iter().map(|x| x.abs()).collect::<Vec<_>>(), value)) })
                    .collect::<Result<_>>()?
            }
            MaskSchedule::Gradual { density, global, .. } => {
                let active: Vec<i64> = masks.iter().map(|m| m.iter().filter(|x| **x).count() as i64).collect();
                let start = self.start_active[member].get_or_insert_with(|| if *global { vec![active.iter().sum()] } else { active.clone() }).clone();
                let sizes: Vec<i64> = masks.iter().map(|m| m.len() as i64).collect();
                let target = |k0: i64, n: i64| -> i64 {
                    let d0 = k0 as f64 / n as f64;
                    let d = density + (d0 - density).max(0.0) * (1.0 - value).powi(3);
                    ((d * n as f64).round() as i64).clamp(1, n)
                };
                if *global {
                    let n: i64 = sizes.iter().sum();
                    let k = target(start[0], n).min(active.iter().sum());
                    let flat_w: Vec<f32> = weights.iter().flatten().map(|w| w.abs()).collect();
                    let flat_m: Vec<bool> = masks.iter().flatten().copied().collect();
                    let kept = keep_top(&flat_w, &flat_m, k as usize);
                    let mut at = 0;
                    sizes
                        .iter()
                        .map(|n| {
                            let v = kept[at..at + *n as usize].to_vec();
                            at += *n as usize;
                            v
                        })
                        .collect()
                } else {
                    masks
                        .iter()
                        .zip(&weights)
                        .enumerate()
                        .map(|(l, (m, w))| {
                            let k = target(start[l], sizes[l]).min(active[l]);
                            keep_top(&w.iter().map(|x| x.abs()).collect::<Vec<_>>(), m, k as usize)
                        })
                        .collect()
                }
            }
        };
        let init = &self.initial[member];
        let (kept, before): (usize, usize) = new.iter().zip(init).fold((0, 0), |(k, b), (n, i)| (k + n.iter().zip(i).filter(|(n, i)| **n && **i).count(), b + i.iter().filter(|x| **x).count()));
        let active = new.iter().map(|m| m.iter().filter(|x| **x).count() as i64).sum();
        self.history[member].push(MaskPoint { step, epoch: (step - 1) / self.steps_per_epoch.max(1), kept: kept as f64 / before.max(1) as f64, active });
        Ok(new.iter().zip(&layers.masks).map(|(m, like)| tensor(m, like)).collect())
    }

    /// What changes as training goes (for a checkpoint): the update count, the
    /// gradual schedule's start counts and the history.
    pub(crate) fn state(&self) -> serde_json::Value {
        serde_json::json!({ "updates": self.updates, "start_active": self.start_active, "history": self.history })
    }

    /// Restores what [`Masker::state`] saved.
    ///
    /// # Errors
    /// A state of another shape.
    pub(crate) fn restore(&mut self, state: &serde_json::Value) -> Result<()> {
        let bad = |e: serde_json::Error| Error::config("checkpoint", format!("mask schedule state: {e}"));
        self.updates = serde_json::from_value(state["updates"].clone()).map_err(bad)?;
        self.start_active = serde_json::from_value(state["start_active"].clone()).map_err(bad)?;
        self.history = serde_json::from_value(state["history"].clone()).map_err(bad)?;
        Ok(())
    }

    /// Counts one update of all members (SET's grow stream advances).
    pub(crate) fn finish_update(&mut self) {
        self.updates += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-worked drop and grow on a 2 x 4 layer with 4 active weights and fraction 0.5:
    /// active |w| = 0.9 (0), 0.1 (2), 0.5 (5), 0.05 (7); the two smallest (7, then 2) drop;
    /// the growth scores among the now-free positions 1, 2, 3, 4, 6, 7 are 0.3, 0.8, 0.2,
    /// 0.7, 0.7, 0.1: the two highest are 2 (0.8) and 4 and 6 tie at 0.7, the lower index
    /// 4 wins. Position 2 is regrown: it keeps its weight.
    #[test]
    fn drop_and_grow_by_hand() {
        let w = [0.9, 0.0, -0.1, 0.0, 0.0, 0.5, 0.0, 0.05];
        let m = [true, false, true, false, false, true, false, true];
        let g = [9.0, 0.3, 0.8, 0.2, 0.7, 9.0, 0.7, 0.1];
        let new = drop_grow(&w, &m, &g, 0.5);
        assert_eq!(new, vec![true, false, true, false, true, true, false, false]);
        assert_eq!(new.iter().filter(|x| **x).count(), 4);
    }

    #[test]
    fn the_rigl_fraction_decays_by_cosine_and_stops_at_the_end() {
        let layers = [MemberLayers { weights: vec![Tensor::ones([2, 2], (Kind::Float, Device::Cpu))], masks: vec![Tensor::ones([2, 2], (Kind::Float, Device::Cpu))] }];
        let m = Masker::new(&MaskSchedule::rigl(), &layers, &[0], 100, 4).unwrap(); // 400 steps, stop at 300
        assert_eq!(m.due(50), None);
        assert!((m.due(100).unwrap() - 0.15 * (1.0 + (std::f64::consts::PI / 3.0).cos())).abs() < 1e-12);
        assert!((m.due(200).unwrap() - 0.15 * (1.0 + (2.0 * std::f64::consts::PI / 3.0).cos())).abs() < 1e-12);
        assert_eq!(m.due(300), None);
        let s = Masker::new(&MaskSchedule::set(), &layers, &[0], 100, 4).unwrap();
        assert_eq!((s.due(100), s.due(300), s.due(400), s.due(150)), (Some(0.3), Some(0.3), None, None));
        let g = Masker::new(&MaskSchedule::Gradual { density: 0.1, start: 0.25, end: 0.5, every: 30, global: false }, &layers, &[0], 100, 4).unwrap();
        assert_eq!((g.due(99), g.due(100), g.due(130), g.due(131), g.due(200), g.due(201)), (None, Some(0.0), Some(0.3), None, Some(1.0), None));
        assert_eq!(MaskSchedule::Rigl { fraction: 0.3, every: 0, end: 0.75 }.validate().unwrap_err().to_string(), "every: 0 must be >= 1 (steps between updates)");
    }

    /// Zhu and Gupta's cubic schedule from dense to 10 % on a 10 x 10 layer, pruning at
    /// steps 10, 20 and 30 of 100 (start 0, end 0.3, every 10): d_t = 0.1 + 0.9 (1 - p)^3
    /// at p = 1/3, 2/3, 1 gives 37, 13 and 10 active weights (0.1 + 0.9 * 8/27 = 0.3667,
    /// 0.1 + 0.9/27 = 0.1333).
    #[test]
    fn gradual_pruning_follows_the_cubic_schedule() {
        let w = Tensor::arange(100, (Kind::Float, Device::Cpu)).view([10, 10]) - 49.5;
        let mut masks = vec![Tensor::ones([10, 10], (Kind::Float, Device::Cpu))];
        let sched = MaskSchedule::Gradual { density: 0.1, start: 0.0, end: 0.3, every: 10, global: false };
        let mut m = Masker::new(&sched, &[MemberLayers { weights: vec![w.shallow_clone()], masks: vec![masks[0].shallow_clone()] }], &[0], 10, 10).unwrap();
        let mut counts = vec![];
        for step in 1..=100 {
            if let Some(p) = m.due(step) {
                masks = m.update(0, step, p, &MemberLayers { weights: vec![&w * &masks[0]], masks: vec![masks[0].shallow_clone()] }, None).unwrap();
                counts.push(masks[0].sum(Kind::Int64).int64_value(&[]));
            }
        }
        assert_eq!(counts, vec![37, 13, 10]);
        // The largest magnitudes survive: |w| >= 45 are the 10 kept (-49.5..-45.5 and 45.5..49.5).
        let kept = Vec::<f32>::try_from(masks[0].flatten(0, -1)).unwrap();
        assert_eq!(kept.iter().enumerate().filter(|(_, k)| **k > 0.0).map(|(i, _)| i).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 95, 96, 97, 98, 99]);
    }
}
