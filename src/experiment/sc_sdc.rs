//! SC-SDC: a random-mask sparse MLP against the dense MLP with the same active
//! weights per layer, across widths and seeds, with a one-sided exact Wilcoxon
//! signed-rank test (SPEC 4, report 3.2.1, A.1.1).
use super::session::{RunSpec, Session};
use crate::data::Dataset;
use crate::data::Split;
use crate::error::{Error, Result};
use crate::model::{BatchedMlp, Densities, Fan, Kernel, Lineage, MlpConfig, Model};
use crate::results::{Frame, FrameBuilder, Lookup};
use crate::stats::{wilcoxon, Alternative, WilcoxonOptions, WilcoxonResult};
use crate::train::{train_ensemble, train_with, NoCallback, RunResult, TrainConfig};
use tch::Device;

/// How the sparse twin's Kaiming fan is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitFan {
    /// The dense twin's fan-in (the report; default): same weight variance as D.
    Dense,
    /// Each sparse layer's mean active fan-in, which keeps the signal variance.
    Effective,
}

/// Names of [`InitFan`]s, as scripts spell them (`mlp` takes the same names).
pub const INIT_FANS: [&str; 2] = ["dense", "effective"];

impl InitFan {
    /// `dense` or `effective` (case-insensitive).
    ///
    /// # Errors
    /// Another name, listing the valid ones.
    pub fn parse(name: &str) -> Result<Self> {
        Ok([InitFan::Dense, InitFan::Effective][crate::registry::lookup("init_fan", name, &INIT_FANS)?])
    }
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
    if base.depth > crate::model::MAX_DEPTH {
        return Err(Error::config("depth", format!("{} is outside 0..={}", base.depth, crate::model::MAX_DEPTH)));
    }
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
    // The twins' widths come from max_width (and the fractions): a size error names it.
    for (variant, m) in [("sparse", &sparse), ("dense", &dense)] {
        m.check_size().map_err(|e| match e {
            Error::Config { key, message } if key == "width" => Error::config("max_width", format!("the {variant} twin: {message}")),
            e => e,
        })?;
    }
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
    /// Most networks trained together as one batched ensemble ([`ensemble_groups`]);
    /// 1 trains them one by one.
    pub ensemble: usize,
}

impl ScSdcConfig {
    /// The report's study on `data` (SPEC 4): depth 4, ReLU, N_MW = input + 4,
    /// fractions 0.1..0.9, seeds 0-2, the dense twin's fan, default training.
    pub fn defaults(data: &Dataset) -> Self {
        ScSdcConfig {
            base: MlpConfig::new(data.input_size(), data.classes as i64, 4, 1),
            max_width: None,
            fractions: vec![0.1, 0.3, 0.5, 0.7, 0.9],
            seeds: vec![0, 1, 2],
            init_fan: InitFan::Dense,
            train: TrainConfig::default(),
            ensemble: ENSEMBLE_MEMBERS,
        }
    }

    /// Checks every setting and builds every twin's configuration, training nothing.
    ///
    /// # Errors
    /// Names the bad key and value.
    pub fn validate(&self, data: &Dataset) -> Result<()> {
        plan(data, self).map(|_| ())
    }
}

/// Default cap on ensemble members ([`ScSdcConfig::ensemble`]): the 15 sparse twins
/// of a study fit in one.
pub const ENSEMBLE_MEMBERS: usize = 16;

/// Weights (dense-equivalent, all members together) an ensemble may hold on the CPU:
/// 2^26 floats, 256 MiB per copy (weights, gradients, optimizer state, masks); on a
/// GPU 2^28 (1 GiB per copy: the 15 sparse twins of a CIFAR study, 3076 wide, fit).
fn ensemble_weights(device: Device) -> i64 {
    if device == Device::Cpu {
        1 << 26
    } else {
        1 << 28
    }
}

/// Splits networks into groups that train together as one batched ensemble: the
/// same architecture ([`crate::model::batchable`]: no dropout), the same
/// representation per layer on `device` (on the CPU a compact layer and a dense one
/// do not mix, so each member keeps its fastest kernel; on CUDA every layer is
/// dense, so all twins of one shape form one group), at most `cap` members and
/// 2^26 weights in all (2^28 on a GPU). Groups keep the networks' order.
///
/// # Errors
/// A configuration whose densities do not fit its layers.
pub fn ensemble_groups(cfgs: &[MlpConfig], device: Device, cap: usize) -> Result<Vec<Vec<usize>>> {
    let mut groups: Vec<(Vec<usize>, Vec<Kernel>)> = Vec::new();
    let mut done: Vec<Vec<usize>> = Vec::new();
    for (i, c) in cfgs.iter().enumerate() {
        let kernels = if device == Device::Cpu { c.kernels()? } else { vec![Kernel::Dense; c.depth + 1] };
        let weights: i64 = c.shapes().iter().map(|[o, i]| o * i).sum();
        let limit = cap.min((ensemble_weights(device) / weights.max(1)).max(1) as usize).max(1);
        let fits = |(g, k): &&mut (Vec<usize>, Vec<Kernel>)| *k == kernels && crate::model::batchable(&cfgs[g[0]], c);
        match groups.iter_mut().find(|g| fits(g)) {
            Some(g) if g.0.len() < limit => g.0.push(i),
            Some(g) => {
                done.push(std::mem::replace(&mut g.0, vec![i]));
            }
            None => groups.push((vec![i], kernels)),
        }
    }
    done.extend(groups.into_iter().map(|g| g.0));
    done.sort_by_key(|g| g[0]);
    Ok(done)
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

/// A run of the study before training.
struct Job {
    fraction: f64,
    dense_width: i64,
    seed: u64,
    variant: &'static str,
    model: MlpConfig,
    train: TrainConfig,
    spec: RunSpec,
    active: Vec<i64>,
}

impl Job {
    /// The study's record of this job with `run`.
    fn with(&self, run: RunResult) -> ScSdcRun {
        ScSdcRun { fraction: self.fraction, dense_width: self.dense_width, seed: self.seed, variant: self.variant, active: self.active.clone(), run }
    }
}

/// Every run of the study, checked: settings, fractions, seeds, twins and their
/// active counts. Nothing trains.
fn plan(data: &Dataset, cfg: &ScSdcConfig) -> Result<Vec<Job>> {
    cfg.train.validate()?;
    crate::model::Activation::parse(&cfg.base.activation)?;
    if cfg.fractions.is_empty() || cfg.seeds.is_empty() {
        return Err(Error::config(if cfg.fractions.is_empty() { "fractions" } else { "seeds" }, "must not be empty"));
    }
    if let Some(f) = cfg.fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
        return Err(Error::config("fractions", format!("{f} is outside (0, 1]")));
    }
    let max_width = cfg.max_width.unwrap_or(data.input_size() + 4);
    if max_width < 1 {
        return Err(Error::config("max_width", format!("{max_width} must be >= 1")));
    }
    let widths = dense_widths(max_width, &cfg.fractions);
    let mut jobs = Vec::new();
    for (&fraction, &w) in cfg.fractions.iter().zip(&widths) {
        if w < 1 {
            return Err(Error::config("fractions", format!("{fraction} x max_width {max_width} rounds to a dense width of {w}; use a larger fraction or max_width")));
        }
        for &seed in &cfg.seeds {
            let base = MlpConfig { input: data.input_size(), classes: data.classes as i64, seed, ..cfg.base.clone() };
            let t = twins(&base, w, max_width, cfg.init_fan)?;
            for (variant, model) in [("sparse", t.sparse), ("dense", t.dense)] {
                let train = TrainConfig { seed, ..cfg.train.clone() };
                let spec = RunSpec::new("sc_sdc", data, &Lineage::new(serde_json::json!({ "mlp": model })), &train);
                let active = model.active_counts()?;
                jobs.push(Job { fraction, dense_width: w, seed, variant, model, train, spec, active });
            }
        }
    }
    Ok(jobs)
}

/// Trains every twin and tests H1: sparse > dense (one-sided, exact).
///
/// Networks of one shape train together as batched ensembles ([`ensemble_groups`],
/// at most `cfg.ensemble` at a time): on the CPU the sparse twins of similar
/// density and the seeds of each dense width; on a GPU all 15 sparse twins at once.
/// With the fused CPU step (the report's setting: ReLU, no BatchNorm, SGD or momentum)
/// each member trains bit for bit as it would alone (tests/it/fused.rs; its test
/// metrics come from a batched evaluation and agree to float rounding). Through
/// autograd (other settings, or a GPU) each gives its single run's result to float
/// tolerance (tests/it/ensemble.rs): batching changes summation order, so a run's last
/// digits depend on its companions (also when a resumed study retrains only the
/// unfinished runs); `ensemble: 1` restores bit-for-bit single runs.
///
/// Every setting and twin is checked before anything trains. Through `session`,
/// finished runs are reused and new ones recorded as they finish, so a stopped
/// study resumes where it was; runs of other shards are skipped.
///
/// # Errors
/// Bad settings, training failures (divergence is a result, not an error).
pub fn sc_sdc(data: &Dataset, cfg: &ScSdcConfig, session: &Session, mut on_run: impl FnMut(&ScSdcRun)) -> Result<ScSdcResult> {
    let jobs = plan(data, cfg)?;
    let device = cfg.train.device.resolve()?;
    let live =
        crate::train::TaskLive::new(crate::log::LiveKind::Study, &format!("SC-SDC: {} twin pairs ({} widths x {} seeds)", jobs.len() / 2, cfg.fractions.len(), cfg.seeds.len()), jobs.len(), "runs");
    let mut runs: Vec<Option<RunResult>> = Vec::with_capacity(jobs.len());
    let mut pending = Vec::new();
    for (i, j) in jobs.iter().enumerate() {
        if let (Ok(kernels), Ok(active)) = (j.model.kernels(), j.model.active_counts()) {
            // Compact layers execute their active weights, dense ones every weight.
            let executed: i64 = j.model.shapes().iter().zip(&kernels).zip(&active).map(|((s, k), a)| if *k == crate::model::Kernel::Compact { *a } else { s[0] * s[1] }).sum();
            session.plan_run(&j.spec, &format!("{} MLP {}-{}x{} seed {}", j.variant, j.model.input, j.model.depth, j.model.width, j.seed), Some(executed as f64));
        }
        runs.push(match session.lookup(&j.spec)? {
            Lookup::Done(r) => Some(r.run),
            Lookup::OtherShard => {
                session.note_skipped();
                Some(RunResult::skipped())
            }
            Lookup::Train => {
                pending.push(i);
                None
            }
        });
    }
    for (j, r) in jobs.iter().zip(&runs) {
        if let Some(r) = r {
            on_run(&j.with(r.clone()));
        }
    }
    // The live display after the reused runs, each trained group and at the end.
    let show = |runs: &[Option<RunResult>], trained: bool, last: bool| {
        if live.active() {
            let (done, line, charts) = study_state(&jobs, runs);
            if last {
                live.finish(done, &line, charts);
            } else {
                live.update(done, trained, &line, charts);
            }
        }
    };
    show(&runs, false, false);
    let models: Vec<MlpConfig> = pending.iter().map(|&i| jobs[i].model.clone()).collect();
    let (_, train, eval) = session.shrink(&cfg.train, &data.train, &data.test);
    let groups = ensemble_groups(&models, device, cfg.ensemble.max(1))?;
    for (n, group) in groups.iter().enumerate() {
        let at: Vec<usize> = group.iter().map(|&g| pending[g]).collect();
        let group_jobs: Vec<&Job> = at.iter().map(|&i| &jobs[i]).collect();
        // One checkpoint for the group, under a key of its members' keys.
        let group_key = crate::results::Store::key(&serde_json::json!(group_jobs.iter().map(|j| j.spec.key()).collect::<Vec<_>>()));
        let label = group_label(&group_jobs, n + 1, groups.len());
        crate::activity::run(Some((&group_key, &format!("{label} ({} run(s))", group_jobs.len()))));
        let trained = crate::train::labelled(label, || crate::train::checkpoint::scope(session.checkpoints(), &group_key, || train_group(session, &train, &eval, &group_jobs)));
        crate::activity::run(None);
        let trained = trained?;
        let complete = trained.iter().all(|r| !matches!(r.ended, crate::train::Ended::Interrupted(_)));
        for (&i, run) in at.iter().zip(trained) {
            let j = &jobs[i];
            let cols =
                vec![("fraction".to_string(), serde_json::json!(j.fraction)), ("dense_width".to_string(), serde_json::json!(j.dense_width)), ("variant".to_string(), serde_json::json!(j.variant))];
            session.record(&j.spec, j.seed, &cols, &run, None)?;
            if let Some(e) = run.diverged() {
                crate::log::line(&format!("note: {} w={} seed {} diverged at epoch {}", j.variant, j.dense_width, j.seed, e + 1));
            }
            on_run(&j.with(run.clone()));
            runs[i] = Some(run);
        }
        if complete {
            session.checkpoints().inspect(|p| p.remove(&group_key));
        }
        show(&runs, true, false);
        session.interrupted()?;
    }
    show(&runs, true, true);
    let runs: Vec<ScSdcRun> = jobs.iter().zip(runs).map(|(j, run)| j.with(run.unwrap_or_else(RunResult::skipped))).collect();
    let test = paired_test(&runs).ok();
    Ok(ScSdcResult { runs, test })
}

/// What group `n` of `of` trains, for its progress: `SC-SDC 3/8: sparse f=0.5 seeds 0-2`
/// (each variant, fraction and seed in it once, in the study's order).
fn group_label(group: &[&Job], n: usize, of: usize) -> String {
    fn once<T: PartialEq + Copy>(xs: impl Iterator<Item = T>) -> Vec<T> {
        let mut v = Vec::new();
        for x in xs {
            if !v.contains(&x) {
                v.push(x);
            }
        }
        v
    }
    let variants = once(group.iter().map(|j| j.variant)).join("+");
    let fractions = once(group.iter().map(|j| j.fraction)).iter().map(|f| format!("{f}")).collect::<Vec<_>>().join(",");
    let mut seeds: Vec<u64> = group.iter().map(|j| j.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let seeds = match seeds[..] {
        [s] => format!("seed {s}"),
        [a, .., b] if b - a + 1 == seeds.len() as u64 => format!("seeds {a}-{b}"),
        _ => format!("seeds {}", seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",")),
    };
    format!("SC-SDC {n}/{of}: {variants} f={fractions} {seeds}")
}

/// Trains one group on `train` (evaluating on `eval`): alone (one network) or as a
/// batched ensemble. Checks the defining property of SC-SDC on the built networks:
/// both twins have the dense twin's active count in every layer.
fn train_group(session: &Session, train: &Split, eval: &Split, group: &[&Job]) -> Result<Vec<RunResult>> {
    let check = |j: &Job, built: Vec<i64>| {
        if built != j.active {
            return Err(Error::Shape(format!("SC-SDC {} twin at width {}: active counts {built:?} != dense twin's {:?}", j.variant, j.dense_width, j.active)));
        }
        Ok(())
    };
    let cfgs: Vec<TrainConfig> = group.iter().map(|j| session.shrink(&j.train, train, eval).0).collect();
    let device = cfgs[0].device.resolve()?;
    if let [j] = group {
        let mut net = j.model.init(device)?;
        check(j, net.layers().iter().map(|l| l.active).collect())?;
        return Ok(vec![train_with(&mut net, train, eval, &cfgs[0], &mut NoCallback)?]);
    }
    let models: Vec<MlpConfig> = group.iter().map(|j| j.model.clone()).collect();
    let net = BatchedMlp::new(&models, device)?;
    for (j, built) in group.iter().zip(net.active()) {
        check(j, built)?;
    }
    train_ensemble(&net, train, eval, &cfgs, &mut NoCallback)
}

/// A study so far, for its live display: runs done, a line with the finished pairs
/// and the running one-sided test, and the chart of mean test accuracy per width.
fn study_state(jobs: &[Job], runs: &[Option<RunResult>]) -> (usize, String, Vec<crate::log::LiveChart>) {
    let finished = |i: usize| runs[i].as_ref().filter(|r| r.ended != crate::train::Ended::Skipped);
    let done = runs.iter().filter(|r| r.is_some()).count();
    let rows: Vec<(i64, &str, f64)> = (0..jobs.len()).filter_map(|i| finished(i).map(|r| (jobs[i].dense_width, jobs[i].variant, r.test_acc))).collect();
    let mut pairs = (Vec::new(), Vec::new());
    for (i, j) in jobs.iter().enumerate().filter(|(_, j)| j.variant == "sparse") {
        let twin = jobs.iter().position(|t| t.variant == "dense" && t.dense_width == j.dense_width && t.seed == j.seed);
        if let (Some(s), Some(d)) = (finished(i), twin.and_then(finished)) {
            pairs.0.push(s.test_acc);
            pairs.1.push(d.test_acc);
        }
    }
    let ahead = pairs.0.iter().zip(&pairs.1).filter(|(s, d)| s > d).count();
    let mut line = format!("{} pairs, sparse ahead in {ahead}", pairs.0.len());
    if let Ok(w) = wilcoxon(&pairs.0, &pairs.1, &WilcoxonOptions { alternative: Alternative::Greater, ..Default::default() }) {
        line.push_str(&format!(" · one-sided Wilcoxon p = {:.4} (n = {})", w.p_value, w.n));
    }
    (done, line, vec![study_chart(&rows)])
}

/// Mean test accuracy of each variant per dense width, from (dense width, variant,
/// test accuracy) rows: the chart of a study's live display and of its result.
pub fn study_chart(rows: &[(i64, &str, f64)]) -> crate::log::LiveChart {
    let mut series = Vec::new();
    for variant in ["sparse", "dense"] {
        let mut widths: Vec<i64> = rows.iter().filter(|r| r.1 == variant && r.2.is_finite()).map(|r| r.0).collect();
        widths.sort_unstable();
        widths.dedup();
        let points = widths
            .iter()
            .map(|&w| {
                let acc: Vec<f64> = rows.iter().filter(|r| r.1 == variant && r.0 == w && r.2.is_finite()).map(|r| r.2).collect();
                (w as f64, acc.iter().sum::<f64>() / acc.len() as f64)
            })
            .collect();
        series.push((variant.to_string(), points));
    }
    crate::log::LiveChart { title: "test accuracy per dense width (mean over seeds)".into(), x_label: "dense width".into(), y_label: "test accuracy".into(), series, scatter: false }
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
    fn study_chart_means_each_variant_over_seeds_per_width() {
        let rows = [(10, "sparse", 0.5), (20, "dense", 0.9), (10, "sparse", 0.7), (10, "dense", f64::NAN), (20, "sparse", 0.8)];
        let c = study_chart(&rows);
        assert_eq!(c.series[0], ("sparse".to_string(), vec![(10.0, 0.6), (20.0, 0.8)]));
        assert_eq!(c.series[1], ("dense".to_string(), vec![(20.0, 0.9)]), "a diverged run is left out");
    }

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

    /// The Fashion-MNIST study (N_MW 788, depth 4): sparse twins by per-layer kernel
    /// (f 0.1/0.3 all compact, f 0.5 first and last layer dense, f 0.7/0.9 all dense:
    /// hidden densities f^2 = 0.01, 0.09 | 0.25 | 0.49, 0.81 against the 0.4 crossover),
    /// dense twins by width; on a GPU all sparse twins together.
    #[test]
    fn ensembles_group_twins_by_shape_and_kernel() {
        let mut models = Vec::new();
        for w in dense_widths(788, &[0.1, 0.3, 0.5, 0.7, 0.9]) {
            for seed in 0..3 {
                let t = twins(&MlpConfig { seed, bias: false, ..MlpConfig::new(784, 10, 4, 1) }, w, 788, InitFan::Dense).unwrap();
                models.extend([t.sparse, t.dense]);
            }
        }
        // models: f-major, then seed, then (sparse, dense): sparse at even indices.
        let cpu = ensemble_groups(&models, Device::Cpu, 16).unwrap();
        let by_f = |fs: &[usize], variant: usize| fs.iter().flat_map(|f| (0..3).map(move |s| 6 * f + 2 * s + variant)).collect::<Vec<_>>();
        assert_eq!(cpu, vec![by_f(&[0, 1], 0), by_f(&[0], 1), by_f(&[1], 1), by_f(&[2], 0), by_f(&[2], 1), by_f(&[3, 4], 0), by_f(&[3], 1), by_f(&[4], 1)]);
        let gpu = ensemble_groups(&models, Device::Cuda(0), 16).unwrap();
        assert_eq!(gpu[0], by_f(&[0, 1, 2, 3, 4], 0));
        assert_eq!(gpu.len(), 6);
        // A cap splits a group in order (groups sort by their first network); dropout
        // trains one by one.
        let capped = ensemble_groups(&models, Device::Cpu, 4).unwrap();
        assert_eq!(capped[0], by_f(&[0, 1], 0)[..4].to_vec());
        assert_eq!(capped[1], by_f(&[0], 1));
        assert_eq!(capped[3], by_f(&[0, 1], 0)[4..].to_vec());
        let dropout: Vec<MlpConfig> = models.iter().take(4).map(|m| MlpConfig { dropout: 0.1, ..m.clone() }).collect();
        assert_eq!(ensemble_groups(&dropout, Device::Cpu, 16).unwrap(), vec![vec![0], vec![1], vec![2], vec![3]]);
        // CIFAR's 3076-wide sparse twins (37.8M weights each): one by one on the CPU, 7 per GPU ensemble.
        let cifar: Vec<MlpConfig> = (0..8).map(|seed| twins(&MlpConfig { seed, bias: false, ..MlpConfig::new(3072, 10, 4, 1) }, 308, 3076, InitFan::Dense).unwrap().sparse).collect();
        assert_eq!(ensemble_groups(&cifar, Device::Cpu, 16).unwrap().len(), 8);
        assert_eq!(ensemble_groups(&cifar, Device::Cuda(0), 16).unwrap().iter().map(Vec::len).collect::<Vec<_>>(), vec![7, 1]);
    }
}
