//! Script bindings: SC-SDC (`sc_sdc`, `sc_sdc_pair`).
use super::api_data::DataHandle;
use super::api_model::ModelHandle;
use super::api_train::train_config;
use super::config::{DensityOption, Opts};
use super::{rt, Context};
use crate::experiment::{compare_methods, MethodsConfig};
use crate::experiment::{
    correlation_chart, gradflow_correlation, grid_frame, grid_runs_frame, sc_sdc, sc_sdc_grid, twins, GridAxes, ImpConfig, InitFan, InitPruneConfig, PruneConfig, Pruner, ScSdcConfig, Scope, Target,
    INIT_FANS,
};
use crate::model::{MlpConfig, Tracked};
use crate::results::Frame;
use crate::Error;
use rhai::{Dynamic, Engine, Map};
use std::rc::Rc;

fn base_config(data: &crate::data::Dataset, o: &mut Opts) -> crate::Result<ScSdcConfig> {
    let d = ScSdcConfig::defaults(data);
    let base = MlpConfig {
        depth: o.usize("depth", d.base.depth)?,
        activation: o.string("activation", &d.base.activation)?,
        batch_norm: o.bool("batch_norm", d.base.batch_norm)?,
        skip: o.bool("skip", d.base.skip)?,
        dropout: o.f64_in("dropout", d.base.dropout, 0.0, 0.99)?,
        kernel: crate::model::Kernel::parse(&o.string("kernel", "auto")?)?,
        ..d.base.clone()
    };
    let max_width = o.opt_usize("max_width")?.map(|w| w as i64);
    let init_fan = InitFan::parse(&o.string("init_fan", INIT_FANS[0])?).map_err(|e| Error::config("init_fan", e.to_string()))?;
    Ok(ScSdcConfig { base, max_width, init_fan, ..d })
}

fn pair(data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("sc_sdc_pair", opts);
    let cfg = base_config(&data.0, &mut o)?;
    let max_width = cfg.max_width.unwrap_or(data.0.input_size() + 4);
    let dense_width = o.opt_usize("dense_width")?.ok_or_else(|| Error::config("dense_width", "required: the dense twin's width"))? as i64;
    let seed = o.u64("seed", 0)?;
    o.finish()?;
    let t = twins(&MlpConfig { seed, ..cfg.base }, dense_width, max_width, cfg.init_fan)?;
    let build = |c: &MlpConfig| -> crate::Result<Dynamic> { Ok(Dynamic::from(ModelHandle::new(Tracked::new(c.init(tch::Device::Cpu)?, serde_json::json!({ "mlp": c }))))) };
    Ok(Map::from_iter([("dense".into(), build(&t.dense)?), ("sparse".into(), build(&t.sparse)?)]))
}

fn study_config(data: &DataHandle, o: &mut Opts) -> crate::Result<ScSdcConfig> {
    let d = base_config(&data.0, o)?;
    let fractions = o.f64_or_list("fractions")?.unwrap_or_else(|| d.fractions.clone());
    let seeds = o.usize_list("seeds")?.map(|s| s.into_iter().map(|s| s as u64).collect()).unwrap_or_else(|| d.seeds.clone());
    let ensemble = o.usize("ensemble", d.ensemble)?.max(1);
    let train = train_config(o)?;
    o.allow(&["seed"]);
    Ok(ScSdcConfig { fractions, seeds, train, ensemble, ..d })
}

fn strings(v: Option<Dynamic>, key: &str) -> crate::Result<Vec<String>> {
    match v {
        None => Ok(vec![]),
        Some(v) if v.is_string() => Ok(vec![v.to_string()]),
        Some(v) => {
            v.clone().try_cast::<rhai::Array>().map(|a| a.iter().map(|x| x.to_string()).collect()).ok_or_else(|| Error::config(key, format!("expected a string or an array of strings, got {v}")))
        }
    }
}

fn grid(ctx: &Context, data: &DataHandle, base: Map, axes: Map) -> crate::Result<Map> {
    let mut o = Opts::new("sc_sdc_grid base", base);
    let cfg = study_config(data, &mut o)?;
    o.finish()?;
    let mut a = Opts::new("sc_sdc_grid axes", axes);
    let axes = GridAxes {
        optimizer: strings(a.raw("optimizer"), "optimizer")?,
        regularization: strings(a.raw("regularization"), "regularization")?,
        activation: strings(a.raw("activation"), "activation")?,
        lr: a.f64_or_list("lr")?.unwrap_or_default(),
    };
    a.finish()?;
    let cells = sc_sdc_grid(&data.0, &cfg, &axes, &ctx.session, |_| {})?;
    Ok(Map::from_iter([("table".into(), Dynamic::from(grid_frame(&cells)?)), ("runs".into(), Dynamic::from(grid_runs_frame(&cells)?))]))
}

fn pvalue_table(grid: Map, opts: Map) -> crate::Result<Map> {
    let table = grid.get("table").and_then(|t| t.clone().try_cast::<Frame>()).ok_or_else(|| Error::config("grid", "expected the map returned by sc_sdc_grid (with a `table` DataFrame)"))?;
    let mut o = Opts::new("pvalue_table", opts);
    let row = o.string("row", "optimizer")?;
    let col = o.string("col", "regularization")?;
    let title = o.string("title", "Wilcoxon signed-rank p-values (H1: sparse > dense)")?;
    o.finish()?;
    let (chart, pivot) = crate::experiment::pvalue_table(&table, &row, &col, &title)?;
    Ok(Map::from_iter([("chart".into(), Dynamic::from(chart)), ("table".into(), Dynamic::from(pivot))]))
}

fn correlation(runs: &Frame, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("gradflow_correlation", opts);
    let by = o.opt_string("by")?;
    o.finish()?;
    let table = gradflow_correlation(runs, by.as_deref())?;
    let chart = correlation_chart(&table)?;
    Ok(Map::from_iter([("table".into(), Dynamic::from(table)), ("chart".into(), Dynamic::from(chart))]))
}

fn prune(ctx: &Context, net: &ModelHandle, data: &DataHandle, opts: Map) -> crate::Result<super::api_train::RunHandle> {
    let mut o = Opts::new("prune_train", opts);
    let d = PruneConfig::default();
    let prune = PruneConfig {
        density: o.f64("density", d.density)?,
        prune_at: o.f64("prune_at", d.prune_at)?,
        scope: Scope::parse(&o.string("scope", "layer")?).map_err(|e| Error::config("scope", e.to_string()))?,
    };
    let cfg = train_config(&mut o)?;
    o.finish()?;
    let run = ctx.session.prune_train(&mut net.0.borrow_mut(), &data.0, &prune, &cfg)?;
    Ok(super::api_train::RunHandle(Rc::new(run)))
}

fn study(ctx: &Context, data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("sc_sdc", opts);
    let cfg = study_config(data, &mut o)?;
    o.finish()?;
    let result = sc_sdc(&data.0, &cfg, &ctx.session, |_| {})?;
    let test = match &result.test {
        None => Dynamic::UNIT,
        Some(t) => Dynamic::from(Map::from_iter([
            ("statistic".into(), t.statistic.into()),
            ("n".into(), (t.n as i64).into()),
            ("p_value".into(), t.p_value.into()),
            ("median_diff".into(), t.median_diff.into()),
            ("alternative".into(), t.alternative.to_string().into()),
            ("method".into(), t.method.to_string().into()),
        ])),
    };
    Ok(Map::from_iter([("runs".into(), Dynamic::from(result.runs_frame()?)), ("test".into(), test)]))
}

fn init_prune(ctx: &Context, net: &ModelHandle, data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("prune_at_init", opts);
    let method = Pruner::parse(&o.string("method", "snip")?)?;
    let d = InitPruneConfig::new(method, 0.1);
    let target = match o.density("density")? {
        None => return Err(Error::config("density", "required: a density in (0, 1], or #{ allocation: \"erk\", target: 0.1 } with scope \"layer\"")),
        Some(DensityOption::Fractions(v)) if v.len() == 1 => Target::Density(v[0]),
        Some(DensityOption::Fractions(v)) => return Err(Error::config("density", format!("expected one density (or an allocation map), got {} values", v.len()))),
        Some(DensityOption::Allocated(a)) => Target::Allocation(a),
    };
    let default_scope = if method == Pruner::Synflow { "global" } else { "layer" };
    let cfg = InitPruneConfig {
        target,
        scope: Scope::parse(&o.string("scope", default_scope)?)?,
        rounds: o.usize("rounds", d.rounds)?,
        examples: o.usize("examples", d.examples)?,
        temperature: o.f64("temperature", d.temperature)?,
        seed: o.u64("seed", d.seed)?,
        ..d
    };
    o.finish()?;
    let report = ctx.session.prune_at_init(&mut net.0.borrow_mut(), &data.0, &cfg)?;
    let effective = report.effective.clone().map(|e| e.into_iter().map(Some).collect()).unwrap_or_else(|| vec![None; report.layers.len()]);
    let collapsed: Vec<bool> = report.layers.iter().map(|l| report.collapsed.contains(l)).collect();
    let table = crate::results::FrameBuilder::new()
        .str("layer", report.layers.clone())
        .i64("active", report.active.clone())
        .i64("total", report.total.clone())
        .opt_i64("effective", effective)
        .bool("collapsed", collapsed)
        .build()?;
    Ok(Map::from_iter([("layers".into(), Dynamic::from(table)), ("collapsed".into(), Dynamic::from(report.collapsed.iter().map(|c| Dynamic::from(c.clone())).collect::<rhai::Array>()))]))
}

fn imp(ctx: &Context, net: &ModelHandle, data: &DataHandle, opts: Map) -> crate::Result<Frame> {
    let mut o = Opts::new("imp", opts);
    let d = ImpConfig::default();
    let imp = ImpConfig {
        rounds: o.usize("rounds", d.rounds)?,
        fraction: o.f64("fraction", d.fraction)?,
        rewind_epoch: o.usize("rewind_epoch", d.rewind_epoch)?,
        scope: Scope::parse(&o.string("scope", "layer")?)?,
    };
    let cfg = train_config(&mut o)?;
    o.finish()?;
    let rounds = ctx.session.imp(&mut net.0.borrow_mut(), &data.0, &imp, &cfg)?;
    let frames = rounds
        .iter()
        .enumerate()
        .map(|(r, (density, run))| {
            crate::results::FrameBuilder::new().i64("round", vec![r as i64]).f64("density", vec![*density]).build().and_then(|f| f.hstack(&crate::results::run_row(run).build()?))
        })
        .collect::<crate::Result<Vec<_>>>()?;
    Frame::vstack(&frames)
}

fn methods_study(ctx: &Context, data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("compare_methods", opts);
    let d = MlpConfig::defaults(&data.0);
    let base = MlpConfig {
        depth: o.usize("depth", d.depth)?,
        width: o.i64("width", d.width)?,
        activation: o.string("activation", &d.activation)?,
        batch_norm: o.bool("batch_norm", d.batch_norm)?,
        kernel: crate::model::Kernel::parse(&o.string("kernel", "auto")?)?,
        ..d
    };
    let methods = match o.raw("methods") {
        None => crate::experiment::METHODS.iter().map(|m| m.to_string()).collect(),
        v => strings(v, "methods")?,
    };
    let densities = o.f64_or_list("densities")?.unwrap_or_else(|| vec![0.1, 0.02]);
    let seeds = o.usize_list("seeds")?.map(|s| s.into_iter().map(|s| s as u64).collect()).unwrap_or_else(|| vec![0, 1, 2]);
    let reference = o.string("reference", "static")?;
    let title = o.string("title", "Test accuracy by method and density (mean and sd over seeds)")?;
    let train = train_config(&mut o)?;
    o.allow(&["seed"]);
    o.finish()?;
    let cfg = MethodsConfig { base, methods, densities, seeds, train, reference };
    let result = compare_methods(&data.0, &cfg, &ctx.session, |done, total| crate::log::line(&format!("compare_methods: {done}/{total} runs")))?;
    Ok(Map::from_iter([("runs".into(), Dynamic::from(result.runs_frame()?)), ("tests".into(), Dynamic::from(result.tests_frame()?)), ("chart".into(), Dynamic::from(result.chart(&title)?))]))
}

/// Registers `sc_sdc` and `sc_sdc_pair`.
pub(crate) fn register(engine: &mut Engine, ctx: &Rc<Context>) {
    engine.register_fn("sc_sdc_pair", |d: &mut DataHandle, o: Map| pair(d, o).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("sc_sdc", move |d: &mut DataHandle, o: Map| study(&c, d, o).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("sc_sdc_grid", move |d: &mut DataHandle, base: Map, axes: Map| grid(&c, d, base, axes).map_err(rt));
    engine.register_fn("pvalue_table", |g: Map, o: Map| pvalue_table(g, o).map_err(rt));
    engine.register_fn("pvalue_table", |g: Map| pvalue_table(g, Map::new()).map_err(rt));
    engine.register_fn("gradflow_correlation", |f: &mut Frame, o: Map| correlation(f, o).map_err(rt));
    engine.register_fn("gradflow_correlation", |f: &mut Frame| correlation(f, Map::new()).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("prune_at_init", move |n: &mut ModelHandle, d: DataHandle, o: Map| init_prune(&c, n, &d, o).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("compare_methods", move |d: &mut DataHandle, o: Map| methods_study(&c, d, o).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("imp", move |n: &mut ModelHandle, d: DataHandle, o: Map| imp(&c, n, &d, o).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("prune_train", move |n: &mut ModelHandle, d: DataHandle, o: Map| prune(&c, n, &d, o).map_err(rt));
}
