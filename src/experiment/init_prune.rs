//! Pruning at initialization: SNIP (Lee et al. 2019), GraSP (Wang et al. 2020),
//! SynFlow (Tanaka et al. 2020), magnitude and random, per layer or global, and the
//! detection of layer collapse (a layer left with no active weight, or none on a path
//! from input to output). Scores follow the Synaptic-Flow repository
//! (ganguli-lab/Synaptic-Flow, `Pruners/pruners.py`); tests/data/pruning holds a
//! PyTorch reference of all three on a fixed network.
use super::prune::Scope;
use crate::data::Split;
use crate::error::{Error, Result};
use crate::model::{Allocation, Mode, Model};
use crate::rng::{stream, Stream};
use crate::train::keep_top;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Names of [`Pruner`]s, as scripts spell them.
pub const PRUNERS: [&str; 5] = ["snip", "grasp", "synflow", "magnitude", "random"];

/// How weights are scored at initialization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pruner {
    /// `|g * w|`, `g` the loss gradient on a minibatch (connection sensitivity).
    Snip,
    /// `-w * Hg`, `H` the loss Hessian (temperature-scaled logits): the weights whose
    /// removal reduces gradient flow least are kept, i.e. the highest scores removed.
    Grasp,
    /// `|dR/dw * w|` with every parameter made positive and `R` the sum of the outputs
    /// for an all-ones input: data-free, applied over rounds (exponential schedule).
    Synflow,
    /// `|w|`.
    Magnitude,
    /// Uniformly random scores from the seed's stream.
    Random,
}

impl Pruner {
    /// A name from [`PRUNERS`].
    ///
    /// # Errors
    /// Another name, listing the valid ones.
    pub fn parse(name: &str) -> Result<Self> {
        use Pruner::*;
        Ok([Snip, Grasp, Synflow, Magnitude, Random][crate::registry::lookup_key("method", name, &PRUNERS)?])
    }

    /// Whether the scores read training data.
    pub fn uses_data(self) -> bool {
        matches!(self, Pruner::Snip | Pruner::Grasp)
    }
}

/// How many weights remain: a density (per layer or of the whole model, by scope),
/// or an allocation's per-layer counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A fraction of the weights, in (0, 1].
    Density(f64),
    /// Per-layer counts from an allocation (layer scope only).
    Allocation(Allocation),
}

/// Pruning at initialization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitPruneConfig {
    /// The score.
    pub method: Pruner,
    /// What remains.
    pub target: Target,
    /// Per layer or one ranking over all weights.
    pub scope: Scope,
    /// Rounds over which the density falls exponentially to the target (SynFlow: 100).
    pub rounds: usize,
    /// Training examples the data-driven scores read (SNIP, GraSP).
    pub examples: usize,
    /// GraSP's logit temperature (200, as GraSP's and Synaptic-Flow's code).
    pub temperature: f64,
    /// Seed of the random scores and of which examples are read.
    pub seed: u64,
}

impl InitPruneConfig {
    /// `method` to `density` with the usual defaults: global scope for SynFlow (as its
    /// paper) and layer scope otherwise, 100 rounds for SynFlow and 1 otherwise, 256
    /// examples, temperature 200, seed 0.
    pub fn new(method: Pruner, density: f64) -> Self {
        let synflow = method == Pruner::Synflow;
        InitPruneConfig {
            method,
            target: Target::Density(density),
            scope: if synflow { Scope::Global } else { Scope::Layer },
            rounds: if synflow { 100 } else { 1 },
            examples: 256,
            temperature: 200.0,
            seed: 0,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// Names the key, the value and the valid range.
    pub fn validate(&self) -> Result<()> {
        match &self.target {
            Target::Density(d) if !(*d > 0.0 && *d <= 1.0) => return Err(Error::config("density", format!("{d} is outside (0, 1]"))),
            Target::Allocation(_) if self.scope == Scope::Global => {
                return Err(Error::config("scope", "\"global\" ranks all weights together, so it takes a density, not an allocation; use scope \"layer\" with an allocation"))
            }
            Target::Allocation(a) if !(a.target > 0.0 && a.target <= 1.0) => return Err(Error::config("target", format!("{} is outside (0, 1]", a.target))),
            _ => {}
        }
        if !(1..=10_000).contains(&self.rounds) {
            return Err(Error::config("rounds", format!("{} is outside 1..=10000", self.rounds)));
        }
        if self.examples == 0 {
            return Err(Error::config("examples", "0 must be >= 1"));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::config("temperature", format!("{} must be > 0", self.temperature)));
        }
        Ok(())
    }
}

/// What pruning at initialization did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Layer names.
    pub layers: Vec<String>,
    /// Active weights per layer.
    pub active: Vec<i64>,
    /// Weights per layer.
    pub total: Vec<i64>,
    /// Active weights on an input-to-output path (MLPs; `None` elsewhere).
    pub effective: Option<Vec<i64>>,
    /// Layers with no active weight, or none on a path.
    pub collapsed: Vec<String>,
}

impl PruneReport {
    /// The report of `model`'s masks now.
    pub fn of(model: &dyn Model) -> Self {
        let info = model.layers();
        let effective = model.effective_active();
        let collapsed = info.iter().enumerate().filter(|(i, l)| l.active == 0 || effective.as_ref().is_some_and(|e| e[*i] == 0)).map(|(_, l)| l.name.clone()).collect();
        PruneReport { layers: info.iter().map(|l| l.name.clone()).collect(), active: info.iter().map(|l| l.active).collect(), total: info.iter().map(|l| l.total).collect(), effective, collapsed }
    }

    /// The warning to print when layers collapsed.
    pub fn warning(&self) -> Option<String> {
        (!self.collapsed.is_empty()).then(|| {
            format!(
                "warning: layer collapse: {} {} no active weight on a path from input to output; the network cannot learn through {}",
                self.collapsed.join(", "),
                if self.collapsed.len() == 1 { "has" } else { "have" },
                if self.collapsed.len() == 1 { "it" } else { "them" }
            )
        })
    }
}

/// Per weight layer, the score of every weight under `method`, shaped like its mask
/// (higher = more important, except GraSP, whose paper score `-w * Hg` is returned:
/// there lower is kept). `batch` is read by SNIP and GraSP.
///
/// # Errors
/// A model whose input does not fit the batch, libtorch failures.
pub fn scores(model: &dyn Model, method: Pruner, batch: Option<&Split>, temperature: f64, seed: u64) -> Result<Vec<Tensor>> {
    let data = || batch.ok_or_else(|| Error::config("method", "snip and grasp need training examples"));
    let out = match method {
        Pruner::Magnitude => tch::no_grad(|| model.weight_layers().iter().map(|l| l.weight.abs()).collect()),
        Pruner::Random => model
            .weight_layers()
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut rng = stream(seed, Stream::Prune, i as u64);
                let v: Vec<f32> = (0..l.mask.numel()).map(|_| rng.random::<f32>()).collect();
                Tensor::from_slice(&v).view(l.mask.size().as_slice()).to_device(l.mask.device())
            })
            .collect(),
        Pruner::Snip => {
            let b = data()?;
            let (weights, grads) = weight_grads(model, &b.x, |logits| Ok(crate::train::cross_entropy(logits, &b.y.to_device(logits.device()))?), false)?;
            tch::no_grad(|| weights.iter().zip(&grads).map(|(w, g)| (g * w).abs()).collect())
        }
        Pruner::Grasp => {
            let b = data()?;
            let ys = b.y.to_device(model.device());
            let loss = |logits: &Tensor| -> Result<Tensor> { Ok(crate::train::cross_entropy(&(logits / temperature), &ys)?) };
            let (_, stopped) = weight_grads(model, &b.x, loss, false)?;
            let stopped: Vec<Tensor> = stopped.iter().map(Tensor::detach).collect();
            let logits = model.forward(&b.x.to_device(model.device()), Mode::Measure)?;
            let weights: Vec<Tensor> = model.weight_layers().iter().map(|l| l.weight.shallow_clone()).collect();
            let grads = Tensor::f_run_backward(&[loss(&logits)?], &weights, true, true)?;
            let z = grads.iter().zip(&stopped).map(|(g, s)| (g * s).sum(Kind::Float)).reduce(|a, b| a + b).ok_or_else(|| Error::Shape("no weight layers".into()))?;
            let hg = Tensor::f_run_backward(&[z], &weights, false, false)?;
            model.clear_measure();
            tch::no_grad(|| weights.iter().zip(&hg).map(|(w, h)| -(w * h)).collect())
        }
        Pruner::Synflow => synflow_scores(model)?,
    };
    Ok(out)
}

/// Dense gradients of `loss(logits)` with respect to every weight layer's effective
/// weight (masked positions included), with the weights they belong to.
fn weight_grads(model: &dyn Model, xs: &Tensor, loss: impl Fn(&Tensor) -> Result<Tensor>, eval: bool) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let logits = model.forward(&xs.to_device(model.device()), if eval { Mode::MeasureEval } else { Mode::Measure })?;
    let weights: Vec<Tensor> = model.weight_layers().iter().map(|l| l.weight.shallow_clone()).collect();
    let grads = Tensor::f_run_backward(&[loss(&logits)?], &weights, false, false)?;
    model.clear_measure();
    Ok((weights.iter().map(Tensor::detach).collect(), grads))
}

/// SynFlow's score: every variable made positive (weights, biases, BatchNorm
/// parameters and statistics), one all-ones input, `R = sum(outputs)` in eval mode,
/// `|dR/dw * w|`; the variables' signs are restored afterwards.
fn synflow_scores(model: &dyn Model) -> Result<Vec<Tensor>> {
    let vars: Vec<Tensor> = model.var_store().variables().into_values().collect();
    let signs: Vec<Tensor> = tch::no_grad(|| vars.iter().map(|v| v.sign()).collect());
    tch::no_grad(|| vars.iter().for_each(|v| drop(v.shallow_clone().abs_())));
    let shape = model.input_shape();
    let ones = Tensor::ones([1, shape[0], shape[1], shape[2]], (Kind::Float, model.device()));
    let result = weight_grads(model, &ones, |logits| Ok(logits.sum(Kind::Float)), true);
    tch::no_grad(|| vars.iter().zip(&signs).for_each(|(v, s)| drop(v.shallow_clone().g_mul_(s))));
    let (weights, grads) = result?;
    Ok(tch::no_grad(|| weights.iter().zip(&grads).map(|(w, g)| (g * w).abs()).collect()))
}

/// Masks keeping `counts[l]` weights of each layer (layer scope) or `total` weights
/// of the whole model (global), the highest `keep` scores among the active weights
/// (never more than are active: masks only shrink). Ties keep the lowest flat index
/// (layer order, row-major), so masks are reproducible ([`crate::train::keep_top`]).
///
/// # Errors
/// Scores or masks that cannot be read.
pub fn select(keep: &[Tensor], masks: &[Tensor], counts: Option<&[i64]>, total: i64) -> Result<Vec<Tensor>> {
    let read = |t: &Tensor| -> Result<Vec<f32>> { Ok(Vec::<f32>::try_from(t.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float).flatten(0, -1))?) };
    let scores: Vec<Vec<f32>> = keep.iter().map(read).collect::<Result<_>>()?;
    let active: Vec<Vec<bool>> = masks.iter().map(|m| read(m).map(|v| v.iter().map(|x| *x > 0.0).collect())).collect::<Result<_>>()?;
    let chosen: Vec<Vec<bool>> = match counts {
        Some(c) => scores.iter().zip(&active).zip(c).map(|((s, a), k)| keep_top(s, a, (*k).max(0) as usize)).collect(),
        None => {
            let all = keep_top(&scores.concat(), &active.concat(), total.max(0) as usize);
            let mut at = 0;
            active
                .iter()
                .map(|a| {
                    at += a.len();
                    all[at - a.len()..at].to_vec()
                })
                .collect()
        }
    };
    Ok(chosen.iter().zip(masks).map(|(c, m)| Tensor::from_slice(&c.iter().map(|x| if *x { 1f32 } else { 0.0 }).collect::<Vec<_>>()).view(m.size().as_slice()).to_device(m.device())).collect())
}

/// Prunes `model` at initialization with `cfg` (the masks only shrink: a weight
/// already masked stays masked). `batch` is read by SNIP and GraSP (`cfg.examples`
/// of the training split, chosen by the caller). Returns what remains, with any
/// layer collapse named (and warned about on stderr).
///
/// # Errors
/// Bad settings, a target above the model's current active count, libtorch failures.
pub fn prune_at_init(model: &dyn Model, cfg: &InitPruneConfig, batch: Option<&Split>) -> Result<PruneReport> {
    cfg.validate()?;
    let info = model.layers();
    let sizes: Vec<i64> = info.iter().map(|l| l.total).collect();
    let all: i64 = sizes.iter().sum();
    // Final counts: per layer (layer scope) or in all (global).
    let (final_counts, final_total): (Option<Vec<i64>>, i64) = match (&cfg.target, cfg.scope) {
        (Target::Density(d), Scope::Layer) => (Some(sizes.iter().map(|n| ((d * *n as f64).round() as i64).clamp(1, *n)).collect()), 0),
        (Target::Density(d), Scope::Global) => (None, ((d * all as f64).round() as i64).clamp(1, all)),
        (Target::Allocation(a), _) => (Some(a.active_counts(&info.iter().map(|l| l.shape.clone()).collect::<Vec<_>>())?), 0),
    };
    let rounds = cfg.rounds.max(1);
    for r in 1..=rounds {
        // Exponential schedule: round r keeps final^(r/R) of the weights (Tanaka et al., eq. in 4.2).
        let frac = |k: i64, n: i64| -> i64 {
            let d = (k as f64 / n as f64).powf(r as f64 / rounds as f64);
            ((d * n as f64).round() as i64).clamp(k.min(n), n)
        };
        let masks: Vec<Tensor> = model.weight_layers().iter().map(|l| l.mask.shallow_clone()).collect();
        let raw = scores(model, cfg.method, batch, cfg.temperature, cfg.seed.wrapping_add(r as u64 - 1))?;
        let keep: Vec<Tensor> = if cfg.method == Pruner::Grasp { raw.iter().map(|s| -s).collect() } else { raw };
        let new = match &final_counts {
            Some(c) => select(&keep, &masks, Some(&c.iter().zip(&sizes).map(|(k, n)| frac(*k, *n)).collect::<Vec<_>>()), 0)?,
            None => select(&keep, &masks, None, frac(final_total, all))?,
        };
        model.set_masks(&new)?;
    }
    let report = PruneReport::of(model);
    if let Some(w) = report.warning() {
        crate::log::line(&w);
    }
    Ok(report)
}
