//! Sparse-training methods as the axis of a study: each method at the same active
//! weights (density), over densities and seeds, against a reference method by paired
//! exact Wilcoxon signed-rank tests (two-sided, pairs by seed) with Holm's correction
//! across all comparisons, and a chart of accuracy against density per method.
use super::init_prune::{InitPruneConfig, Pruner};
use super::session::Session;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Allocation, AllocationKind, Densities, MlpConfig, Tracked};
use crate::plot::{line_chart, Chart, LineOptions, Series};
use crate::results::{run_row, Frame, FrameBuilder};
use crate::stats::{wilcoxon, Alternative, Method, WilcoxonOptions};
use crate::train::{MaskSchedule, RunResult, TrainConfig};

/// The methods a study compares, as scripts spell them: static random masks (uniform
/// density), static random masks with ERK densities, SNIP, GraSP and SynFlow at
/// initialization, SET and RigL from uniform random masks, gradual magnitude pruning
/// from dense.
pub const METHODS: [&str; 8] = ["static", "erk", "snip", "grasp", "synflow", "set", "rigl", "gradual"];

/// A study of methods.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodsConfig {
    /// The MLP every method starts from (its densities are set per run).
    pub base: MlpConfig,
    /// Names from [`METHODS`].
    pub methods: Vec<String>,
    /// Target densities, each in (0, 1).
    pub densities: Vec<f64>,
    /// Seeds (of masks, init and data order): the pairs of the tests.
    pub seeds: Vec<u64>,
    /// Training settings (the seed is set per run).
    pub train: TrainConfig,
    /// The method every other one is tested against.
    pub reference: String,
}

impl MethodsConfig {
    /// Checks every field before anything trains.
    ///
    /// # Errors
    /// Names the key, the value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.methods.is_empty() {
            return Err(Error::config("methods", format!("give at least one of {}", METHODS.join(", "))));
        }
        for m in &self.methods {
            crate::registry::lookup_key("methods", m, &METHODS)?;
        }
        if !self.methods.iter().any(|m| m.eq_ignore_ascii_case(&self.reference)) {
            return Err(Error::config("reference", format!("{:?} is not among the methods ({})", self.reference, self.methods.join(", "))));
        }
        if self.densities.is_empty() {
            return Err(Error::config("densities", "give at least one density"));
        }
        if let Some(d) = self.densities.iter().find(|d| !(**d > 0.0 && **d < 1.0)) {
            return Err(Error::config("densities", format!("{d} is outside (0, 1)")));
        }
        if self.seeds.is_empty() {
            return Err(Error::config("seeds", "give at least one seed"));
        }
        self.base.check_size()?;
        self.train.validate()
    }
}

/// One trained network of the study.
#[derive(Clone, Debug)]
pub struct MethodRun {
    /// Method name.
    pub method: String,
    /// Target density.
    pub density: f64,
    /// Seed.
    pub seed: u64,
    /// The run.
    pub run: RunResult,
}

/// A method against the reference at one density.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodTest {
    /// Method name.
    pub method: String,
    /// Density.
    pub density: f64,
    /// Non-zero paired differences.
    pub n: usize,
    /// W+ of method minus reference.
    pub statistic: f64,
    /// Two-sided exact p-value (NaN when every pair is tied).
    pub p_value: f64,
    /// Holm-adjusted p-value across all comparisons of the study.
    pub p_holm: f64,
    /// Median of method minus reference test accuracy.
    pub median_diff: f64,
}

/// What [`compare_methods`] returns.
#[derive(Clone, Debug)]
pub struct MethodsResult {
    /// Every run.
    pub runs: Vec<MethodRun>,
    /// Every method other than the reference, at every density.
    pub tests: Vec<MethodTest>,
    /// The reference method.
    pub reference: String,
}

/// Holm's step-down adjustment of `p` (NaN entries are left out and stay NaN).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|i| p[*i].is_finite()).collect();
    idx.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running: f64 = 0.0;
    for (j, &i) in idx.iter().enumerate() {
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// The network and training of `method` (a name from [`METHODS`]) at `density` for
/// `seed` on `base`: the model (pruned at initialization where the method does) and
/// the mask schedule its training takes.
///
/// # Errors
/// A model that cannot be built, pruning failures.
pub(crate) fn method_model(session: &Session, data: &Dataset, base: &MlpConfig, method: &str, density: f64, seed: u64) -> Result<(Tracked, Option<MaskSchedule>)> {
    let (mlp, pruner, masks) = setup(base, method, density, seed);
    let mut net = Tracked::new(mlp.init(tch::Device::Cpu)?, serde_json::json!({ "mlp": mlp }));
    if let Some(p) = pruner {
        session.prune_at_init(&mut net, data, &InitPruneConfig { seed, ..InitPruneConfig::new(p, density) })?;
    }
    Ok((net, masks))
}

fn setup(base: &MlpConfig, method: &str, density: f64, seed: u64) -> (MlpConfig, Option<Pruner>, Option<MaskSchedule>) {
    let uniform = MlpConfig { densities: Densities::Uniform(density), seed, ..base.clone() };
    let dense = MlpConfig { densities: Densities::Uniform(1.0), seed, ..base.clone() };
    match method {
        "erk" => (MlpConfig { densities: Densities::Allocated(Allocation::new(AllocationKind::Erk, density)), ..uniform }, None, None),
        "snip" => (dense, Some(Pruner::Snip), None),
        "grasp" => (dense, Some(Pruner::Grasp), None),
        "synflow" => (dense, Some(Pruner::Synflow), None),
        "set" => (uniform, None, Some(MaskSchedule::set())),
        "rigl" => (uniform, None, Some(MaskSchedule::rigl())),
        "gradual" => (dense, None, Some(MaskSchedule::gradual(density))),
        _ => (uniform, None, None),
    }
}

/// Trains every method at every density and seed (each run reused from the store when
/// recorded) and tests each method against the reference. `progress` is called after
/// each run with (done, total).
///
/// # Errors
/// Bad settings (checked before anything trains), training failures.
pub fn compare_methods(data: &Dataset, cfg: &MethodsConfig, session: &Session, mut progress: impl FnMut(usize, usize)) -> Result<MethodsResult> {
    cfg.validate()?;
    let methods: Vec<&'static str> = cfg.methods.iter().map(|m| crate::registry::lookup_key("methods", m, &METHODS).map(|i| METHODS[i])).collect::<Result<_>>()?;
    let reference = METHODS[crate::registry::lookup_key("reference", &cfg.reference, &METHODS)?];
    let total = methods.len() * cfg.densities.len() * cfg.seeds.len();
    let mut runs = Vec::with_capacity(total);
    let live = crate::train::TaskLive::new(crate::log::LiveKind::Study, &format!("methods: {} x {} densities x {} seeds", methods.len(), cfg.densities.len(), cfg.seeds.len()), total, "runs");
    live.update(0, false, "", Vec::new());
    for &density in &cfg.densities {
        for &method in &methods {
            for &seed in &cfg.seeds {
                session.interrupted()?;
                let (mut net, masks) = method_model(session, data, &cfg.base, method, density, seed)?;
                let label = format!("methods {}/{total}: {method} density {density} seed {seed}", runs.len() + 1);
                let run = crate::train::labelled(label, || session.train(&mut net, data, &TrainConfig { seed, masks, ..cfg.train.clone() }))?;
                runs.push(MethodRun { method: method.to_string(), density, seed, run });
                progress(runs.len(), total);
                if live.active() {
                    let line = format!("last: {method} at density {density} seed {seed}: test accuracy {:.4}", runs[runs.len() - 1].run.test_acc);
                    let chart = methods_chart(&methods, &runs);
                    if runs.len() == total {
                        live.finish(runs.len(), &line, vec![chart]);
                    } else {
                        live.update(runs.len(), true, &line, vec![chart]);
                    }
                }
            }
        }
    }
    let acc = |m: &str, d: f64| -> Vec<f64> { cfg.seeds.iter().map(|s| runs.iter().find(|r| r.method == m && r.density == d && r.seed == *s).map_or(f64::NAN, |r| r.run.test_acc)).collect() };
    let mut tests = Vec::new();
    for &density in &cfg.densities {
        for &method in methods.iter().filter(|m| **m != reference) {
            let (x, y) = (acc(method, density), acc(reference, density));
            let opts = WilcoxonOptions { alternative: Alternative::TwoSided, method: Method::Exact, ..Default::default() };
            let (n, statistic, p_value, median_diff) = match wilcoxon(&x, &y, &opts) {
                Ok(w) => (w.n, w.statistic, w.p_value, w.median_diff),
                // Every pair tied (or skipped by another shard): nothing to test.
                Err(_) => (0, f64::NAN, f64::NAN, 0.0),
            };
            tests.push(MethodTest { method: method.to_string(), density, n, statistic, p_value, p_holm: f64::NAN, median_diff });
        }
    }
    let adjusted = holm(&tests.iter().map(|t| t.p_value).collect::<Vec<_>>());
    tests.iter_mut().zip(adjusted).for_each(|(t, p)| t.p_holm = p);
    Ok(MethodsResult { runs, tests, reference: reference.to_string() })
}

/// Mean test accuracy over seeds per method and density, for the live display.
fn methods_chart(methods: &[&str], runs: &[MethodRun]) -> crate::log::LiveChart {
    let series = methods
        .iter()
        .map(|&m| {
            let mut densities: Vec<f64> = runs.iter().filter(|r| r.method == m).map(|r| r.density).collect();
            densities.sort_by(f64::total_cmp);
            densities.dedup();
            let points = densities
                .iter()
                .map(|&d| {
                    let acc: Vec<f64> = runs.iter().filter(|r| r.method == m && r.density == d && r.run.test_acc.is_finite()).map(|r| r.run.test_acc).collect();
                    (d, if acc.is_empty() { f64::NAN } else { acc.iter().sum::<f64>() / acc.len() as f64 })
                })
                .collect();
            (m.to_string(), points)
        })
        .collect();
    crate::log::LiveChart { title: "test accuracy (mean over seeds)".into(), x_label: "density".into(), y_label: "test accuracy".into(), series, scatter: false }
}

impl MethodsResult {
    /// One row per run: method, density, seed, then the run's summary columns.
    ///
    /// # Errors
    /// Frame construction failures.
    pub fn runs_frame(&self) -> Result<Frame> {
        let frames = self
            .runs
            .iter()
            .map(|r| {
                FrameBuilder::new().str("method", vec![r.method.clone()]).f64("density", vec![r.density]).i64("seed", vec![r.seed as i64]).build().and_then(|f| f.hstack(&run_row(&r.run).build()?))
            })
            .collect::<Result<Vec<_>>>()?;
        Frame::vstack(&frames)
    }

    /// One row per comparison: method, reference, density, n, statistic, p-values, median difference.
    ///
    /// # Errors
    /// Frame construction failures.
    pub fn tests_frame(&self) -> Result<Frame> {
        let t = &self.tests;
        FrameBuilder::new()
            .str("method", t.iter().map(|t| t.method.clone()).collect())
            .str("reference", vec![self.reference.clone(); t.len()])
            .f64("density", t.iter().map(|t| t.density).collect())
            .i64("n", t.iter().map(|t| t.n as i64).collect())
            .f64("statistic", t.iter().map(|t| t.statistic).collect())
            .f64("p_value", t.iter().map(|t| t.p_value).collect())
            .f64("p_holm", t.iter().map(|t| t.p_holm).collect())
            .f64("median_diff", t.iter().map(|t| t.median_diff).collect())
            .build()
    }

    /// Test accuracy against density (log scale), one line per method: the mean over
    /// seeds with a band of one standard deviation.
    ///
    /// # Errors
    /// A chart that cannot be drawn.
    pub fn chart(&self, title: &str) -> Result<Chart> {
        let mut methods: Vec<&str> = vec![];
        self.runs.iter().for_each(|r| {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method)
            }
        });
        let mut densities: Vec<f64> = self.runs.iter().map(|r| r.density).collect();
        densities.sort_by(f64::total_cmp);
        densities.dedup();
        let series = methods
            .iter()
            .map(|m| {
                let (points, err): (Vec<(f64, f64)>, Vec<f64>) = densities
                    .iter()
                    .map(|d| {
                        let v: Vec<f64> = self.runs.iter().filter(|r| r.method == *m && r.density == *d && r.run.test_acc.is_finite()).map(|r| r.run.test_acc).collect();
                        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
                        let sd = if v.len() > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt() } else { 0.0 };
                        ((*d, if v.is_empty() { f64::NAN } else { mean }), sd)
                    })
                    .unzip();
                Series::new(*m, points).with_err(err)
            })
            .filter(|s: &Series| s.points.iter().any(|(_, y)| y.is_finite()))
            .collect::<Vec<_>>();
        if series.is_empty() {
            // No method has a finished run (every run skipped as another shard's, or diverged).
            return Ok(crate::plot::placeholder(&format!("{title}: no finished runs"), (640, 200))?);
        }
        let opts = LineOptions { title: title.to_string(), x_label: "density".into(), y_label: "test accuracy".into(), log_x: densities.len() > 1, ..LineOptions::default() };
        Ok(line_chart(&[(String::new(), series)], &opts)?)
    }
}

#[cfg(test)]
mod tests {
    use super::holm;

    /// Holm by hand: p = 0.01, 0.04, 0.03, 0.5 (m = 4) sorted 0.01, 0.03, 0.04, 0.5 are
    /// multiplied by 4, 3, 2, 1: 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.5.
    #[test]
    fn holm_by_hand() {
        let got = holm(&[0.01, 0.04, 0.03, 0.5, f64::NAN]);
        let want = [0.04, 0.09, 0.09, 0.5];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert!(got[4].is_nan());
    }
}
