//! SC-SDC: a random-mask sparse MLP against the dense MLP with the same active
//! weights per layer, across widths and seeds, with a one-sided exact Wilcoxon
//! signed-rank test (SPEC 4, report 3.2.1, A.1.1).
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Densities, Fan, MlpConfig, Model};
use crate::results::{dataset_identity, flatten, train_identity, Frame, FrameBuilder, Lookup, Store};
use crate::stats::{wilcoxon, Alternative, WilcoxonOptions, WilcoxonResult};
use crate::train::{train, RunResult, TrainConfig};

/// How the sparse twin's Kaiming fan is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitFan {
    /// The dense twin's fan-in (the report; default): same weight variance as D.
    Dense,
    /// Each sparse layer's mean active fan-in, which keeps the signal variance.
    Effective,
}

/// The pair for one dense width.
#[derive(Clone, Debug, PartialEq)]
pub struct Twins {
    /// D: I -> N_W, (L-1) x N_W -> N_W, N_W -> O, no biases.
    pub dense: MlpConfig,
    /// S: I -> N_MW, ..., N_MW -> O, no biases, with D's active count in every layer.
    pub sparse: MlpConfig,
}

/// Dense widths `round(f * max_width)` (CIFAR, N_MW 3076: 308, 923, 1538, 2153, 2768).
pub fn dense_widths(max_width: i64, fractions: &[f64]) -> Vec<i64> {
    fractions.iter().map(|f| (f * max_width as f64).round() as i64).collect()
}

/// The dense/sparse twins for `dense_width` (SPEC 4). `base` supplies activation,
/// BatchNorm, skip, dropout and seed; widths, densities, biases and fans are set here.
///
/// # Errors
/// A dense width outside 1..=max_width.
pub fn twins(base: &MlpConfig, dense_width: i64, max_width: i64, init: InitFan) -> Result<Twins> {
    if dense_width < 1 || dense_width > max_width {
        return Err(Error::config("dense_width", format!("{dense_width} must be in 1..={max_width} (max_width)")));
    }
    let dense = MlpConfig { width: dense_width, densities: Densities::Uniform(1.0), bias: false, fans: None, ..base.clone() };
    let active: Vec<i64> = dense.shapes().iter().map(|[o, i]| o * i).collect();
    let sparse_shapes = MlpConfig { width: max_width, ..dense.clone() }.shapes();
    let fans: Vec<Fan> = match init {
        InitFan::Dense => dense.shapes().iter().map(|[_, i]| Fan::Value(*i as f64)).collect(),
        InitFan::Effective => active.iter().zip(&sparse_shapes).map(|(k, [o, _])| Fan::Value(*k as f64 / *o as f64)).collect(),
    };
    let sparse = MlpConfig { width: max_width, densities: Densities::Active(active), fans: Some(fans), ..dense.clone() };
    Ok(Twins { dense, sparse })
}

/// An SC-SDC study.
#[derive(Clone, Debug)]
pub struct ScSdcConfig {
    /// Hidden layers, activation, BatchNorm, skip, dropout (widths are set per twin).
    pub base: MlpConfig,
    /// N_MW; `None` = input + 4.
    pub max_width: Option<i64>,
    /// Dense-width fractions of N_MW.
    pub fractions: Vec<f64>,
    /// Seeds (masks, init, data order); each seed trains both twins.
    pub seeds: Vec<u64>,
    /// Sparse init fan.
    pub init_fan: InitFan,
    /// Training settings shared by every run (its seed is replaced per run).
    pub train: TrainConfig,
}

/// One trained network of the study.
#[derive(Clone, Debug)]
pub struct ScSdcRun {
    /// Dense-width fraction.
    pub fraction: f64,
    /// Dense width N_W.
    pub dense_width: i64,
    /// Seed.
    pub seed: u64,
    /// `sparse` or `dense`.
    pub variant: &'static str,
    /// Active weights per layer.
    pub active: Vec<i64>,
    /// The run.
    pub run: RunResult,
}

/// The study's runs and its test.
#[derive(Clone, Debug)]
pub struct ScSdcResult {
    /// Every run, sparse and dense.
    pub runs: Vec<ScSdcRun>,
    /// Wilcoxon on final test accuracy, pairs (width, seed), H1: sparse > dense;
    /// `None` when no complete pair exists (e.g. a `--shard` process that trained
    /// only dense twins) or every pair is tied.
    pub test: Option<WilcoxonResult>,
}

/// Trains every twin and tests H1: sparse > dense (one-sided, exact).
///
/// # Errors
/// Bad settings, training failures (divergence is a result, not an error).
/// With a `store`, finished runs are reused and new ones recorded as they finish,
/// so a stopped study resumes where it was; runs of other shards are skipped.
pub fn sc_sdc(data: &Dataset, cfg: &ScSdcConfig, store: Option<&Store>, mut on_run: impl FnMut(&ScSdcRun)) -> Result<ScSdcResult> {
    let max_width = cfg.max_width.unwrap_or(data.input_size() + 4);
    let widths = dense_widths(max_width, &cfg.fractions);
    let mut runs = Vec::new();
    for (&fraction, &w) in cfg.fractions.iter().zip(&widths) {
        for &seed in &cfg.seeds {
            let base = MlpConfig { input: data.input_size(), classes: data.classes as i64, seed, ..cfg.base.clone() };
            let t = twins(&base, w, max_width, cfg.init_fan)?;
            for (variant, mcfg) in [("sparse", &t.sparse), ("dense", &t.dense)] {
                let tc = TrainConfig { seed, ..cfg.train.clone() };
                let spec = serde_json::json!({ "kind": "sc_sdc", "data": dataset_identity(data), "model": mcfg, "train": train_identity(&tc) });
                let active: Vec<i64> = match &mcfg.densities {
                    Densities::Active(k) => k.clone(),
                    _ => mcfg.shapes().iter().map(|[o, i]| o * i).collect(),
                };
                let lookup = match store {
                    Some(s) => s.lookup(&spec)?,
                    None => Lookup::Train,
                };
                let run = match lookup {
                    Lookup::Done(r) => r.run,
                    Lookup::OtherShard => RunResult::skipped(),
                    Lookup::Train => {
                        let mut net = mcfg.init(tch::Device::Cpu)?;
                        // The defining property of SC-SDC: both twins have the dense
                        // twin's active count in every layer.
                        let built: Vec<i64> = net.layers().iter().map(|l| l.active).collect();
                        if built != active {
                            return Err(Error::Shape(format!("SC-SDC {variant} twin at width {w}: active counts {built:?} != dense twin's {active:?}")));
                        }
                        let run = train(&mut net, data, &tc)?;
                        let complete = !matches!(run.ended, crate::train::Ended::Interrupted(_));
                        if let (Some(s), true) = (store, complete) {
                            let mut cols = vec![("fraction".to_string(), serde_json::json!(fraction)), ("dense_width".to_string(), serde_json::json!(w)), ("variant".to_string(), serde_json::json!(variant))];
                            cols.extend(flatten(&spec));
                            s.put(&spec, &cols, &run)?;
                        }
                        run
                    }
                };
                let r = ScSdcRun { fraction, dense_width: w, seed, variant, active, run };
                on_run(&r);
                runs.push(r);
                if crate::cancel::requested() {
                    return Err(Error::Interrupted);
                }
            }
        }
    }
    let test = paired_test(&runs).ok();
    Ok(ScSdcResult { runs, test })
}

/// Wilcoxon on (sparse, dense) final test accuracy paired by (width, seed).
/// Runs skipped by `--shard` are left out.
pub fn paired_test(runs: &[ScSdcRun]) -> Result<WilcoxonResult> {
    let (mut s, mut d) = (Vec::new(), Vec::new());
    let done = |r: &&ScSdcRun| r.run.ended != crate::train::Ended::Skipped;
    for r in runs.iter().filter(done).filter(|r| r.variant == "sparse") {
        if let Some(t) = runs.iter().filter(done).find(|t| t.variant == "dense" && t.dense_width == r.dense_width && t.seed == r.seed) {
            s.push(r.run.test_acc);
            d.push(t.run.test_acc);
        }
    }
    Ok(wilcoxon(&s, &d, &WilcoxonOptions { alternative: Alternative::Greater, ..Default::default() })?)
}

impl ScSdcResult {
    /// One row per run: fraction, dense_width, seed, variant, active_<layer>..., test_acc,
    /// test_loss, diverged, egf/gnorm averages, seconds.
    pub fn runs_frame(&self) -> Result<Frame> {
        let r = &self.runs;
        let layers = r.first().map(|x| x.active.len()).unwrap_or(0);
        let mut b = FrameBuilder::new()
            .f64("fraction", r.iter().map(|x| x.fraction).collect())
            .i64("dense_width", r.iter().map(|x| x.dense_width).collect())
            .i64("seed", r.iter().map(|x| x.seed as i64).collect())
            .str("variant", r.iter().map(|x| x.variant.to_string()).collect());
        for l in 0..layers {
            b = b.i64(&format!("active_fc{}", l + 1), r.iter().map(|x| x.active[l]).collect());
        }
        let g = |f: fn(&crate::train::GradFlowAverage) -> f64| r.iter().map(|x| x.run.grad_flow_average().map(|a| f(&a))).collect::<Vec<_>>();
        b.f64("test_acc", r.iter().map(|x| x.run.test_acc).collect())
            .f64("test_loss", r.iter().map(|x| x.run.test_loss).collect())
            .bool("diverged", r.iter().map(|x| x.run.diverged().is_some()).collect())
            .opt_f64("egf1", g(|a| a.egf1))
            .opt_f64("egf2", g(|a| a.egf2))
            .opt_f64("gnorm1", g(|a| a.gnorm1))
            .opt_f64("gnorm2", g(|a| a.gnorm2))
            .f64("seconds", r.iter().map(|x| x.run.seconds).collect())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_widths_and_twin_counts() {
        assert_eq!(dense_widths(3076, &[0.1, 0.3, 0.5, 0.7, 0.9]), vec![308, 923, 1538, 2153, 2768]);
        assert_eq!(dense_widths(788, &[0.5]), vec![394]);
        let base = MlpConfig::new(784, 10, 4, 0);
        let t = twins(&base, 394, 788, InitFan::Dense).unwrap();
        assert_eq!(t.sparse.densities, Densities::Active(vec![784 * 394, 394 * 394, 394 * 394, 394 * 394, 3940]));
        assert_eq!(t.sparse.fans, Some(vec![Fan::Value(784.0), Fan::Value(394.0), Fan::Value(394.0), Fan::Value(394.0), Fan::Value(394.0)]));
        assert!(!t.dense.bias && !t.sparse.bias && t.sparse.width == 788 && t.dense.width == 394);
        let e = twins(&base, 394, 788, InitFan::Effective).unwrap();
        // Effective fan of hidden layer 2: 394*394 active over 788 units = 197 inputs per unit.
        assert_eq!(e.sparse.fans.unwrap()[1], Fan::Value(197.0));
        assert_eq!(twins(&base, 900, 788, InitFan::Dense).unwrap_err().to_string(), "dense_width: 900 must be in 1..=788 (max_width)");
    }
}
