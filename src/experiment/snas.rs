//! SNAS (report chapter 4, Algorithm 1): search a density per weight layer with an
//! ask-and-tell searcher, score candidates on a validation split with ASHA early
//! stopping, under an optional budget; evaluate the best on the test set.
use super::session::{RunSpec, Session};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{CnnConfig, Densities, MlpConfig, Model, Tracked, Transform};
use crate::results::{Frame, FrameBuilder, Lookup};
use crate::search::{pareto_front, project_to_budget_with_floor, Asha, AshaConfig, Decision, Observation, Searcher};
use crate::train::{evaluate, train_with, Control, Ended, EpochRecord, NoCallback, RunResult, TrainConfig};

/// The model family searched over.
#[derive(Clone, Debug)]
pub enum Space {
    /// MLP with BatchNorm and skip connections ("sparse ResNet-like cells"); densities replaced per trial.
    Mlp(MlpConfig),
    /// ResNet-32 / WRN-28-10; densities replaced per trial.
    Cnn(CnnConfig),
}

impl Space {
    /// Weight counts per layer, in density-vector order.
    pub fn layer_sizes(&self) -> Result<Vec<u64>> {
        Ok(match self {
            Space::Mlp(c) => c.shapes().iter().map(|[o, i]| (o * i) as u64).collect(),
            Space::Cnn(c) => CnnConfig { densities: vec![1.0], allocation: None, ..c.clone() }.init(tch::Device::Cpu)?.layers().iter().map(|l| l.total as u64).collect(),
        })
    }

    fn identity(&self) -> serde_json::Value {
        match self {
            Space::Mlp(c) => serde_json::json!({ "mlp": c }),
            Space::Cnn(c) => serde_json::json!({ "cnn": c }),
        }
    }

    /// The report's MLP space on `data` (SPEC 7): depth 4, width input + 4, PReLU,
    /// BatchNorm, skip connections, no biases.
    pub fn default_mlp(data: &Dataset) -> Self {
        Space::Mlp(Self::default_mlp_config(data))
    }

    /// The configuration of [`Space::default_mlp`].
    pub fn default_mlp_config(data: &Dataset) -> MlpConfig {
        MlpConfig { activation: "prelu".into(), batch_norm: true, skip: true, bias: false, ..MlpConfig::new(data.input_size(), data.classes as i64, 4, data.input_size() + 4) }
    }

    /// The trial model with `densities` and `seed`, with its lineage.
    fn build(&self, densities: &[f64], seed: u64) -> Result<Tracked> {
        Ok(match self {
            Space::Mlp(c) => {
                let c = MlpConfig { densities: Densities::PerLayer(densities.to_vec()), seed, ..c.clone() };
                Tracked::new(c.init(tch::Device::Cpu)?, serde_json::json!({ "mlp": c }))
            }
            Space::Cnn(c) => {
                let c = CnnConfig { densities: densities.to_vec(), seed, allocation: None, ..c.clone() };
                Tracked::new(c.init(tch::Device::Cpu)?, serde_json::json!({ "cnn": c }))
            }
        })
    }

    /// Checks the space's configuration and size without building a model.
    fn validate(&self, data: &Dataset) -> Result<()> {
        match self {
            Space::Mlp(c) => c.check_size(),
            Space::Cnn(c) => {
                crate::registry::lookup("space", &c.arch, crate::model::CNNS)?;
                c.check_data("space", data)
            }
        }
    }
}

/// Names of the search spaces, as scripts spell them.
pub const SPACES: [&str; 3] = ["mlp", "resnet32", "wrn28_10"];
/// Names of the density representations: one density per layer, or one for all.
pub const REPRESENTATIONS: [&str; 2] = ["non-uniform", "uniform"];
/// Names of the objectives.
pub const OBJECTIVES: [&str; 3] = ["accuracy", "penalized", "pareto"];

/// What a trial's score is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// Validation accuracy.
    Accuracy,
    /// Validation accuracy minus `lambda` x overall density.
    Penalized(f64),
    /// Validation accuracy for the searcher; the result reports the Pareto front
    /// of (accuracy, active weights).
    Pareto,
}

/// Budget caps; candidates over them are projected (scaled down uniformly), never trained.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Budget {
    /// Cap on overall density (active / total).
    pub max_density: Option<f64>,
    /// Cap on total active weights.
    pub max_active: Option<u64>,
}

/// A search.
#[derive(Clone, Debug)]
pub struct SnasConfig {
    /// Model family.
    pub space: Space,
    /// One density for all layers (`true`) or one per layer.
    pub uniform: bool,
    /// Trials (the report's S).
    pub samples: usize,
    /// Density floor.
    pub d_min: f64,
    /// ASHA settings (`max_t` is set to the epochs), or none.
    pub asha: Option<AshaConfig>,
    /// Budget caps.
    pub budget: Budget,
    /// Scoring.
    pub objective: Objective,
    /// Fraction of the training set held out for scoring.
    pub validation: f64,
    /// Training of each trial.
    pub train: TrainConfig,
    /// Seed of the validation split and each trial's masks.
    pub seed: u64,
    /// A method (from [`super::METHODS`]; CNN spaces: `static` or `erk`) trained at
    /// the best trial's overall density on the same split and settings, and tested
    /// beside it.
    pub baseline: Option<String>,
}

/// One evaluated candidate.
#[derive(Clone, Debug)]
pub struct Trial {
    /// 0-based trial number.
    pub id: usize,
    /// What the searcher proposed (one value per layer, or one for all).
    pub proposed: Vec<f64>,
    /// Densities trained (after budget projection), one per layer.
    pub densities: Vec<f64>,
    /// Active weights.
    pub active: u64,
    /// All weights.
    pub total: u64,
    /// Validation accuracy after each epoch trained.
    pub scores: Vec<f64>,
    /// The trial's objective value (last epoch's).
    pub score: f64,
    /// Highest ASHA rung (milestone epoch) it recorded at, if any.
    pub rung: Option<usize>,
    /// Stopped early by ASHA.
    pub stopped: bool,
    /// The run (history against the validation split).
    pub run: RunResult,
}

/// The search's outcome.
pub struct SnasResult {
    /// Every trial in order.
    pub trials: Vec<Trial>,
    /// Index of the best trial by score.
    pub best: usize,
    /// The best model (trained), with its lineage.
    pub best_model: Tracked,
    /// Test accuracy of the best model (the test set is used only here).
    pub best_test_acc: f64,
    /// Test loss of the best model.
    pub best_test_loss: f64,
    /// Trials on the Pareto front of (validation accuracy, active weights).
    pub pareto: Vec<usize>,
    /// The baseline at the best trial's density, when asked for.
    pub baseline: Option<SnasBaseline>,
}

/// A baseline method trained beside a search's best model.
pub struct SnasBaseline {
    /// Its name.
    pub method: String,
    /// The best trial's overall density it was trained at.
    pub density: f64,
    /// Active weights (all layers).
    pub active: i64,
    /// Test accuracy.
    pub test_acc: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Its run (history against the validation split).
    pub run: RunResult,
}

/// Densities whose masks' integer active counts (round(d x n), at least 1 per layer)
/// respect the budget exactly: the projection works on real densities, and each
/// layer's rounding can add up to half a weight, so the layers with the most active weights give back
/// the excess one weight at a time. Returned as k / n so masks get exactly k.
fn fit_counts(densities: &[f64], sizes: &[u64], budget: &Budget) -> Vec<f64> {
    let total: u64 = sizes.iter().sum();
    let mut k: Vec<u64> = densities.iter().zip(sizes).map(|(d, &n)| ((d * n as f64).round() as u64).clamp(1, n)).collect();
    let by_density = budget.max_density.map(|d| (d * total as f64 + 1e-9).floor() as u64).unwrap_or(u64::MAX);
    let cap = by_density.min(budget.max_active.unwrap_or(u64::MAX)).max(sizes.len() as u64);
    while k.iter().sum::<u64>() > cap {
        let Some(i) = (0..k.len()).filter(|&i| k[i] > 1).max_by_key(|&i| k[i]) else { break };
        k[i] -= 1;
    }
    k.iter().zip(sizes).map(|(&k, &n)| k as f64 / n as f64).collect()
}

impl SnasConfig {
    /// The report's search on `data` (SPEC 7): the default MLP space, one density per
    /// layer, 50 trials, d_min 0.005, no ASHA, no budget, accuracy on a 10 %
    /// validation split, default training, seed 0.
    pub fn defaults(data: &Dataset) -> Self {
        SnasConfig {
            space: Space::default_mlp(data),
            uniform: false,
            samples: 50,
            d_min: 0.005,
            asha: None,
            budget: Budget::default(),
            objective: Objective::Accuracy,
            validation: 0.1,
            train: TrainConfig::default(),
            seed: 0,
            baseline: None,
        }
    }

    /// Checks every setting against `data` before any trial trains: samples, the
    /// validation split's size, ASHA, the budget, the space and the training settings.
    ///
    /// # Errors
    /// Names the bad key and value.
    pub fn validate(&self, data: &Dataset) -> Result<()> {
        self.checked(data).map(|_| ())
    }

    /// Values per proposal: 1 (uniform) or one per weight layer; no model is built.
    ///
    /// # Errors
    /// An unknown CNN architecture.
    pub fn dims(&self) -> Result<usize> {
        Ok(match (&self.space, self.uniform) {
            (_, true) => 1,
            (Space::Mlp(c), false) => c.depth + 1,
            (Space::Cnn(c), false) => c.layer_count()?,
        })
    }

    /// [`SnasConfig::validate`], returning the layer sizes it needed (a CNN space
    /// builds a model to count them, so [`snas`] does not count twice).
    fn checked(&self, data: &Dataset) -> Result<Vec<u64>> {
        if self.samples == 0 {
            return Err(Error::config("samples", "0 must be >= 1"));
        }
        if !(self.d_min > 0.0 && self.d_min <= 1.0) {
            return Err(Error::config("d_min", format!("{} is outside (0, 1]", self.d_min)));
        }
        self.train.validate()?;
        self.space.validate(data)?;
        if let Some(b) = &self.baseline {
            let name = super::METHODS[crate::registry::lookup_key("baseline", b, &super::METHODS)?];
            if matches!(self.space, Space::Cnn(_)) && !matches!(name, "static" | "erk") {
                return Err(Error::config("baseline", format!("{name:?} is for MLP spaces; a CNN space takes \"static\" or \"erk\"")));
            }
        }
        data.validation_size(self.validation)?;
        if let Some(a) = self.asha {
            Asha::new(AshaConfig { max_t: self.train.epochs.max(1), ..a }).map_err(|e| Error::config("asha", e.to_string()))?;
        }
        if let Objective::Penalized(l) = self.objective {
            if !l.is_finite() {
                return Err(Error::config("lambda", format!("{l} must be a finite number")));
            }
        }
        let sizes = self.space.layer_sizes()?;
        let dims = if self.uniform { 1 } else { sizes.len() };
        project_to_budget_with_floor(&vec![1.0; dims], &sizes, self.budget.max_density, self.budget.max_active, self.d_min)
            .ok_or_else(|| Error::config("budget", format!("{:?} cannot be met even with every layer at d_min = {}", self.budget, self.d_min)))?;
        Ok(sizes)
    }

    /// The identity every trial's spec carries: what changes a trial's result
    /// besides its own densities (ASHA decisions depend on earlier trials).
    fn search_identity(&self) -> serde_json::Value {
        serde_json::json!({
            "space": self.space.identity(), "uniform": self.uniform, "d_min": self.d_min, "validation": self.validation, "seed": self.seed,
            "asha": self.asha.map(|a| (a.grace_period, a.reduction_factor)), "budget": (self.budget.max_density, self.budget.max_active),
            "objective": format!("{:?}", self.objective),
        })
    }
}

/// Runs the search. `searcher` proposes vectors of length 1 (uniform) or the layer
/// count; `on_trial` sees each finished trial (progress, persistence). Every setting
/// is checked before the first trial trains.
///
/// Through `session`, each finished trial is recorded; a rerun proposes the same
/// candidates (searchers are deterministic given their seed and history), reuses
/// the stored trials, replays ASHA from their stored scores, and continues where
/// the search stopped. The best model is retrained if it came from the store
/// (training is deterministic on CPU).
///
/// # Errors
/// Bad settings, an impossible budget, training failures; interrupted searches
/// return [`Error::Interrupted`].
pub fn snas(data: &Dataset, cfg: &SnasConfig, searcher: &mut dyn Searcher, session: &Session, mut on_trial: impl FnMut(&Trial)) -> Result<SnasResult> {
    let sizes = cfg.checked(data)?;
    let total: u64 = sizes.iter().sum();
    let (train_split, val_split) = data.validation_split(cfg.validation, cfg.seed)?;
    let (train_cfg, train_split, val_split) = session.shrink(&cfg.train, &train_split, &val_split);
    let mut asha = match cfg.asha {
        Some(a) => Some(Asha::new(AshaConfig { max_t: train_cfg.epochs.max(1), ..a }).map_err(|e| Error::config("asha", e.to_string()))?),
        None => None,
    };
    let mut history: Vec<Observation> = Vec::new();
    let mut trials: Vec<Trial> = Vec::new();
    let mut best: Option<(usize, Option<Tracked>)> = None;
    let search_id = cfg.search_identity();
    // `check`: two trials exercise every path (the second sees the first's result).
    let samples = if session.is_check() { cfg.samples.min(2) } else { cfg.samples };
    let mut skip_search = false;
    let mut trial_keys: Vec<String> = Vec::new();
    let live = crate::train::TaskLive::new(crate::log::LiveKind::Search, &format!("SNAS: {samples} trials over {} layer densities", sizes.len()), samples, "trials");
    live.update(0, false, "", Vec::new());
    for id in 0..samples {
        if skip_search && searcher.adaptive() && id > 0 {
            break;
        }
        let proposed = searcher.propose(&history).map_err(|e| Error::config("search", e.to_string()))?;
        let densities = project_to_budget_with_floor(&proposed, &sizes, cfg.budget.max_density, cfg.budget.max_active, cfg.d_min)
            .ok_or_else(|| Error::config("budget", format!("{:?} cannot be met even with every layer at d_min = {}", cfg.budget, cfg.d_min)))?;
        let densities = fit_counts(&densities, &sizes, &cfg.budget);
        let mut model = cfg.space.build(&densities, cfg.seed.wrapping_add(id as u64))?;
        let spec = RunSpec::new("snas_trial", data, &model.lineage, &cfg.train).with_method(serde_json::json!({ "search": search_id, "trial": id, "proposed": proposed }));
        // A search is sequential: the shard that owns its first trial runs all of it, the
        // others skip all of it (its trials skipped as another shard's runs would be). A
        // planning pass lists every trial of a random search (its proposals do not depend
        // on scores) and an adaptive search by its first trial at the cost of all.
        let label = format!("SNAS trial {id} ({})", model.model.describe());
        let macs = model.model.macs().map(|m| m[2]);
        if session.is_planning() {
            let adaptive = searcher.adaptive();
            if id == 0 || !adaptive {
                let after: Vec<String> = trial_keys.last().cloned().into_iter().collect();
                let label = if adaptive { format!("SNAS search, {samples} trials (adaptive: listed by trial 0)") } else { label.clone() };
                session.plan_run_with(&spec, &label, macs, &after, if adaptive { samples as f64 } else { 1.0 });
            }
        }
        let lookup = session.lookup(&spec)?;
        if id == 0 {
            skip_search = matches!(lookup, Lookup::OtherShard) || model.elsewhere;
            if skip_search && !session.is_planning() {
                session.note_skipped();
                crate::log::line(&format!("skipped the search ({samples} trials): another shard's"));
            }
        }
        trial_keys.push(spec.key());
        let cached = match lookup {
            Lookup::Done(r) => Some(r.run),
            _ if skip_search => Some(RunResult::skipped()),
            _ => None,
        };
        let active: u64 = model.model.layers().iter().map(|l| l.active as u64).sum();
        let density = active as f64 / total as f64;
        let score_of = |acc: f64| match cfg.objective {
            Objective::Penalized(lambda) => acc - lambda * density,
            _ => acc,
        };
        let mut stopped = false;
        let from_store = cached.is_some() && !skip_search;
        let run = if let Some(run) = cached {
            // Replay ASHA so later trials see the same rungs as in the first run.
            if let Some(a) = asha.as_mut() {
                for h in &run.history {
                    a.on_result(id, h.epoch + 1, score_of(h.test_acc));
                }
            }
            stopped = matches!(run.ended, Ended::Stopped(_));
            run
        } else {
            let mut cb = |_: usize, r: &EpochRecord| -> Control {
                match asha.as_mut().map(|a| a.on_result(id, r.epoch + 1, score_of(r.test_acc))) {
                    Some(Decision::Stop) if r.epoch + 1 < train_cfg.epochs => {
                        stopped = true;
                        Control::Stop
                    }
                    _ => Control::Continue,
                }
            };
            let run = crate::train::labelled(format!("SNAS trial {id} (of {samples})"), || train_with(&mut *model.model, &train_split, &val_split, &train_cfg, &mut cb))?;
            let cols = vec![("trial".to_string(), serde_json::json!(id)), ("active".to_string(), serde_json::json!(active))];
            session.record(&spec, train_cfg.seed, &cols, &run, None)?;
            run
        };
        model.lineage.steps.push(Transform::Run { key: spec.key() });
        model.elsewhere = model.elsewhere || skip_search;
        let scores: Vec<f64> = run.history.iter().map(|h| h.test_acc).collect();
        let score = scores.last().map(|&a| score_of(a)).unwrap_or(f64::NEG_INFINITY);
        let score = if run.diverged().is_some() { f64::NEG_INFINITY } else { score };
        let trial = Trial { id, proposed: proposed.clone(), densities, active, total, scores, score, rung: asha.as_ref().and_then(|a| a.rung_reached(id)), stopped, run };
        crate::log::line(&format!(
            "trial {:>3}: score {:.4}  active {:>9}  {}{}",
            trial.id,
            trial.score,
            trial.active,
            if trial.stopped { "stopped" } else { "finished" },
            trial.rung.map(|r| format!(" (rung {r})")).unwrap_or_default()
        ));
        on_trial(&trial);
        history.push(Observation { x: proposed, score: if score.is_finite() { score } else { f64::NAN } });
        let better = best.as_ref().map(|(b, _)| score > trials[*b].score).unwrap_or(true);
        trials.push(trial);
        if better {
            best = Some((id, (!from_store).then_some(model)));
        }
        if live.active() {
            let (line, charts) = search_state(&trials, total);
            live.update(trials.len(), !from_store, &line, charts);
        }
        session.interrupted()?;
    }
    let (best_idx, best_model) = best.ok_or_else(|| Error::config("samples", "no trial finished"))?;
    let best_model = match best_model {
        Some(m) => m,
        None => {
            // The best trial came from the store: retrain it the same way (same seed, same stop).
            let t = &trials[best_idx];
            let mut m = cfg.space.build(&t.densities, cfg.seed.wrapping_add(best_idx as u64))?;
            let stop_after = t.scores.len();
            let mut cb = |_: usize, r: &EpochRecord| if r.epoch + 1 >= stop_after { Control::Stop } else { Control::Continue };
            let spec = RunSpec::new("snas_trial", data, &m.lineage, &cfg.train).with_method(serde_json::json!({ "search": search_id, "trial": best_idx, "proposed": t.proposed }));
            crate::train::labelled(format!("SNAS best trial {best_idx}, retrained"), || train_with(&mut *m.model, &train_split, &val_split, &train_cfg, &mut cb))?;
            m.lineage = m.lineage.then(Transform::Run { key: spec.key() });
            m
        }
    };
    let test_split = if session.is_check() { session.shrink(&cfg.train, &data.test, &data.test).2 } else { crate::data::Split { x: data.test.x.shallow_clone(), y: data.test.y.shallow_clone() } };
    let (best_test_loss, best_test_acc) = if best_model.elsewhere { (f64::NAN, f64::NAN) } else { evaluate(&*best_model.model, &test_split)? };
    let points: Vec<(f64, f64)> = trials.iter().map(|t| (t.scores.last().copied().unwrap_or(f64::NAN), t.active as f64)).collect();
    let pareto = pareto_front(&points);
    let baseline = match &cfg.baseline {
        None => None,
        Some(name) => {
            let method = super::METHODS[crate::registry::lookup_key("baseline", name, &super::METHODS)?];
            let density = trials[best_idx].active as f64 / total as f64;
            let seed = cfg.seed.wrapping_add(best_idx as u64);
            let (mut net, masks) = match &cfg.space {
                Space::Mlp(c) => super::methods::method_model(session, data, c, method, density, seed)?,
                Space::Cnn(c) => {
                    let allocation = (method == "erk").then(|| crate::model::Allocation::new(crate::model::AllocationKind::Erk, density));
                    let c = CnnConfig { densities: vec![density], allocation, seed, ..c.clone() };
                    (Tracked::new(c.init(tch::Device::Cpu)?, serde_json::json!({ "cnn": c })), None)
                }
            };
            let base_cfg = TrainConfig { masks, ..cfg.train.clone() };
            let spec = RunSpec::new("snas_baseline", data, &net.lineage, &base_cfg).with_method(serde_json::json!({ "search": search_id, "method": method, "density": density }));
            let run_cfg = TrainConfig { masks: base_cfg.masks.clone(), ..train_cfg.clone() };
            let run =
                crate::train::labelled(format!("SNAS baseline {method}"), || session.run_or_reuse(&spec, seed, &[], &mut net, |m| train_with(m, &train_split, &val_split, &run_cfg, &mut NoCallback)))?;
            let (test_loss, test_acc) = if net.elsewhere { (f64::NAN, f64::NAN) } else { evaluate(&*net.model, &test_split)? };
            let active = net.model.layers().iter().map(|l| l.active).sum();
            Some(SnasBaseline { method: method.to_string(), density, active, test_acc, test_loss, run })
        }
    };
    if live.active() {
        let (line, charts) = search_state(&trials, total);
        let test = if best_test_acc.is_finite() { format!(" · best trial's test accuracy {best_test_acc:.4}") } else { String::new() };
        live.finish(trials.len(), &format!("{line}{test}"), charts);
    }
    Ok(SnasResult { trials, best: best_idx, best_model, best_test_acc, best_test_loss, pareto, baseline })
}

/// A search so far, for its live display: the best trial, and two charts: score per
/// trial with the best so far, and validation accuracy against density with the
/// Pareto front (most accurate for fewest active weights).
fn search_state(trials: &[Trial], total: u64) -> (String, Vec<crate::log::LiveChart>) {
    let rows: Vec<(usize, f64, f64, f64)> = trials.iter().map(|t| (t.id, t.score, t.active as f64 / total.max(1) as f64, t.scores.last().copied().unwrap_or(f64::NAN))).collect();
    let best = trials.iter().filter(|t| t.score.is_finite()).max_by(|a, b| a.score.total_cmp(&b.score));
    let line = match best {
        Some(b) => format!("best score {:.4} (trial {}, density {:.4})", b.score, b.id, b.active as f64 / total.max(1) as f64),
        None => "no trial scored yet".to_string(),
    };
    (line, search_charts(&rows))
}

/// The charts of a search from (trial, score, density, validation accuracy) rows:
/// the live display's and the result's.
pub fn search_charts(rows: &[(usize, f64, f64, f64)]) -> Vec<crate::log::LiveChart> {
    let scored: Vec<(f64, f64)> = rows.iter().filter(|r| r.1.is_finite()).map(|r| (r.0 as f64, r.1)).collect();
    let mut best_so_far = Vec::new();
    let mut top = f64::NEG_INFINITY;
    for &(x, y) in &scored {
        top = top.max(y);
        best_so_far.push((x, top));
    }
    let points: Vec<(f64, f64)> = rows.iter().map(|r| (r.3, r.2)).collect();
    let front: Vec<(f64, f64)> = pareto_front(&points).into_iter().map(|i| (rows[i].2, rows[i].3)).collect();
    let others: Vec<(f64, f64)> = rows.iter().filter(|r| r.3.is_finite() && !front.contains(&(r.2, r.3))).map(|r| (r.2, r.3)).collect();
    vec![
        crate::log::LiveChart {
            title: "score per trial".into(),
            x_label: "trial".into(),
            y_label: "score".into(),
            series: vec![("score".into(), scored), ("best so far".into(), best_so_far)],
            scatter: false,
        },
        crate::log::LiveChart {
            title: "Pareto front: accuracy against density".into(),
            x_label: "density".into(),
            y_label: "validation accuracy".into(),
            series: vec![("trials".into(), others), ("Pareto front".into(), front)],
            scatter: true,
        },
    ]
}

impl SnasResult {
    /// The trial history: trial, d_<layer>..., active, total, density, score, val_acc,
    /// rung, stopped, epochs, pareto.
    ///
    /// # Errors
    /// A frame that cannot be built.
    pub fn history_frame(&self) -> Result<Frame> {
        let t = &self.trials;
        let layers = t.first().map(|x| x.densities.len()).unwrap_or(0);
        let mut b = FrameBuilder::new().i64("trial", t.iter().map(|x| x.id as i64).collect());
        for l in 0..layers {
            b = b.f64(&format!("d{}", l + 1), t.iter().map(|x| x.densities[l]).collect());
        }
        b.i64("active", t.iter().map(|x| x.active as i64).collect())
            .i64("total", t.iter().map(|x| x.total as i64).collect())
            .f64("density", t.iter().map(|x| x.active as f64 / x.total as f64).collect())
            .f64("score", t.iter().map(|x| x.score).collect())
            .f64("val_acc", t.iter().map(|x| x.scores.last().copied().unwrap_or(f64::NAN)).collect())
            .opt_i64("rung", t.iter().map(|x| x.rung.map(|r| r as i64)).collect())
            .bool("stopped", t.iter().map(|x| x.stopped).collect())
            .i64("epochs", t.iter().map(|x| x.scores.len() as i64).collect())
            .bool("pareto", t.iter().map(|x| self.pareto.contains(&x.id)).collect())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_charts_trace_the_best_so_far_and_the_pareto_front() {
        // (trial, score, density, validation accuracy); trial 3 diverged.
        let rows = [(0, 0.5, 0.3, 0.5), (1, 0.7, 0.2, 0.7), (2, 0.6, 0.1, 0.6), (3, f64::NEG_INFINITY, 0.05, f64::NAN)];
        let c = search_charts(&rows);
        assert_eq!(c[0].series[0].1, vec![(0.0, 0.5), (1.0, 0.7), (2.0, 0.6)]);
        assert_eq!(c[0].series[1].1, vec![(0.0, 0.5), (1.0, 0.7), (2.0, 0.7)], "best so far");
        // Trial 0 (0.5 at 0.3) is beaten by trial 1 (0.7 at 0.2): the front is trials 2 and 1, by density.
        assert_eq!(c[1].series[1].1, vec![(0.1, 0.6), (0.2, 0.7)], "Pareto front");
        assert_eq!(c[1].series[0].1, vec![(0.3, 0.5)], "the other trials");
        assert!(c[1].scatter && !c[0].scatter);
    }

    #[test]
    fn rounded_counts_never_exceed_the_budget() {
        // 0.3 of 268,800 = 80,640 exactly; per-layer rounding of these densities
        // (trial 8 of a real search) gave 80,641.
        let sizes = [200_704u64, 65_536, 2_560];
        let d = [0.18083097497078587, 0.6610095168516434, 0.4010079308883185];
        let raw: u64 = d.iter().zip(&sizes).map(|(d, &n)| (d * n as f64).round() as u64).sum();
        assert_eq!(raw, 80_641);
        let fitted = fit_counts(&d, &sizes, &Budget { max_density: Some(0.3), max_active: None });
        let k: Vec<u64> = fitted.iter().zip(&sizes).map(|(d, &n)| (d * n as f64).round() as u64).collect();
        assert_eq!(k.iter().sum::<u64>(), 80_640);
        // Rounded counts are 36,294 + 43,320 + 1,027; the layer with the most active
        // weights (the second) gives one back.
        assert_eq!(k, vec![36_294, 43_319, 1_027]);
        let fitted = fit_counts(&d, &sizes, &Budget { max_density: None, max_active: Some(50_000) });
        assert!(fitted.iter().zip(&sizes).map(|(d, &n)| (d * n as f64).round() as u64).sum::<u64>() <= 50_000);
    }
}
