//! Script bindings: SC-SDC (`sc_sdc`, `sc_sdc_pair`).
use super::api_data::DataHandle;
use super::api_model::ModelHandle;
use super::api_train::train_config;
use super::config::Opts;
use super::{rt, Context};
use crate::experiment::{gradflow_correlation, grid_frame, grid_runs_frame, prune_train, sc_sdc, sc_sdc_grid, twins, GridAxes, InitFan, ScSdcConfig, Scope};
use crate::results::{heat_cells, Frame};
use crate::plot::{self, BarOptions, HeatmapOptions};
use crate::model::MlpConfig;
use crate::Error;
use rhai::{Dynamic, Engine, Map};
use std::rc::Rc;

fn base_config(data: &crate::data::Dataset, o: &mut Opts) -> crate::Result<(MlpConfig, Option<i64>, InitFan)> {
    let depth = o.usize("depth", 4)?;
    let max_width = o.opt_usize("max_width")?.map(|w| w as i64);
    let init = match o.string("init_fan", "dense")?.as_str() {
        "dense" => InitFan::Dense,
        "effective" => InitFan::Effective,
        s => return Err(Error::config("init_fan", format!("{s:?} is not \"dense\" (the report) or \"effective\""))),
    };
    let base = MlpConfig {
        activation: o.string("activation", "relu")?,
        batch_norm: o.bool("batch_norm", false)?,
        skip: o.bool("skip", false)?,
        dropout: o.f64_in("dropout", 0.0, 0.0, 0.99)?,
        kernel: crate::model::Kernel::parse(&o.string("kernel", "auto")?)?,
        ..MlpConfig::new(data.input_size(), data.classes as i64, depth, 1)
    };
    Ok((base, max_width, init))
}

fn pair(data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("sc_sdc_pair", opts);
    let (base, max_width, init) = base_config(&data.0, &mut o)?;
    let max_width = max_width.unwrap_or(data.0.input_size() + 4);
    let dense_width = o.opt_usize("dense_width")?.ok_or_else(|| Error::config("dense_width", "required: the dense twin's width"))? as i64;
    let seed = o.usize("seed", 0)? as u64;
    o.finish()?;
    let t = twins(&MlpConfig { seed, ..base }, dense_width, max_width, init)?;
    let dense = ModelHandle::new(t.dense.init(tch::Device::Cpu)?, serde_json::to_value(&t.dense).unwrap_or_default());
    let sparse = ModelHandle::new(t.sparse.init(tch::Device::Cpu)?, serde_json::to_value(&t.sparse).unwrap_or_default());
    Ok(Map::from_iter([("dense".into(), Dynamic::from(dense)), ("sparse".into(), Dynamic::from(sparse))]))
}

fn study_config(ctx: &Context, data: &DataHandle, o: &mut Opts) -> crate::Result<ScSdcConfig> {
    let (base, max_width, init_fan) = base_config(&data.0, o)?;
    let fractions = o.f64_or_list("fractions")?.unwrap_or_else(|| vec![0.1, 0.3, 0.5, 0.7, 0.9]);
    let seeds = o.usize_list("seeds")?.unwrap_or_else(|| vec![0, 1, 2]).into_iter().map(|s| s as u64).collect();
    let ensemble = o.usize("ensemble", crate::experiment::ENSEMBLE_MEMBERS)?.max(1);
    let mut train = train_config(o)?;
    o.allow(&["seed"]);
    if ctx.validate_only {
        train.epochs = 1;
    }
    Ok(ScSdcConfig { base, max_width, fractions, seeds, init_fan, train, ensemble })
}

fn strings(v: Option<Dynamic>, key: &str) -> crate::Result<Vec<String>> {
    match v {
        None => Ok(vec![]),
        Some(v) if v.is_string() => Ok(vec![v.to_string()]),
        Some(v) => v.clone().try_cast::<rhai::Array>().map(|a| a.iter().map(|x| x.to_string()).collect()).ok_or_else(|| Error::config(key, format!("expected a string or an array of strings, got {v}"))),
    }
}

fn grid(ctx: &Context, data: &DataHandle, base: Map, axes: Map) -> crate::Result<Map> {
    let mut o = Opts::new("sc_sdc_grid base", base);
    let cfg = study_config(ctx, data, &mut o)?;
    o.finish()?;
    let mut a = Opts::new("sc_sdc_grid axes", axes);
    let axes = GridAxes {
        optimizer: strings(a.raw("optimizer"), "optimizer")?,
        regularization: strings(a.raw("regularization"), "regularization")?,
        activation: strings(a.raw("activation"), "activation")?,
        lr: a.f64_or_list("lr")?.unwrap_or_default(),
    };
    a.finish()?;
    let store = if ctx.validate_only { None } else { ctx.store.as_ref() };
    let cells = sc_sdc_grid(&data.0, &cfg, &axes, store, |c| {
        let p = c.result.test.as_ref().map(|t| format!("{:.4}", t.p_value)).unwrap_or_else(|| "n/a".into());
        crate::log::line(&format!("grid: {} {} {} lr {}: p = {p}", c.config.0, c.config.1, c.config.2, c.config.3));
    })?;
    Ok(Map::from_iter([("table".into(), Dynamic::from(grid_frame(&cells)?)), ("runs".into(), Dynamic::from(grid_runs_frame(&cells)?))]))
}

fn pvalue_table(grid: Map, opts: Map) -> crate::Result<Map> {
    let table = grid.get("table").and_then(|t| t.clone().try_cast::<Frame>()).ok_or_else(|| Error::config("grid", "expected the map returned by sc_sdc_grid (with a `table` DataFrame)"))?;
    let mut o = Opts::new("pvalue_table", opts);
    let row = o.string("row", "optimizer")?;
    let col = o.string("col", "regularization")?;
    let title = o.string("title", "Wilcoxon signed-rank p-values (H1: sparse > dense)")?;
    o.finish()?;
    let (rows, cols, cells) = heat_cells(&table, &row, &col, "p_value")?;
    let chart = plot::heatmap(&rows, &cols, &cells, &HeatmapOptions { title, x_label: col.clone(), y_label: row.clone(), ..Default::default() })?;
    let pivot = table.sql(&format!("select {row}, {col}, avg(p_value) as p_value from self group by {row}, {col} order by {row}, {col}"))?;
    Ok(Map::from_iter([("chart".into(), Dynamic::from(chart)), ("table".into(), Dynamic::from(pivot))]))
}

fn correlation(runs: &Frame, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("gradflow_correlation", opts);
    let by = o.opt_string("by")?;
    o.finish()?;
    let table = gradflow_correlation(runs, by.as_deref())?;
    let cats: Vec<String> = crate::experiment::MEASURES.iter().map(|m| m.to_string()).collect();
    let variants = table.str_column("variant")?;
    let taus = table.f64_column("tau_acc")?;
    let mut groups: Vec<(String, Vec<f64>)> = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        match groups.iter_mut().find(|g| &g.0 == v) {
            Some(g) => g.1.push(taus[i]),
            None => groups.push((v.clone(), vec![taus[i]])),
        }
    }
    let chart = plot::bar_chart(&cats, &groups, &BarOptions { title: "Mean |Kendall tau| with test accuracy (report Table 3.1)".into(), x_label: "measure".into(), y_label: "mean |tau|".into(), ..Default::default() })?;
    Ok(Map::from_iter([("table".into(), Dynamic::from(table)), ("chart".into(), Dynamic::from(chart))]))
}

fn prune(ctx: &Context, net: &ModelHandle, data: &DataHandle, opts: Map) -> crate::Result<super::api_train::RunHandle> {
    let mut o = Opts::new("prune_train", opts);
    let density = o.f64("density", 0.1)?;
    let prune_at = o.f64_in("prune_at", 0.5, 0.0, 1.0)?;
    let scope = match o.string("scope", "layer")?.as_str() {
        "layer" => Scope::Layer,
        "global" => Scope::Global,
        s => return Err(Error::config("scope", format!("{s:?} is not \"layer\" or \"global\""))),
    };
    let mut cfg = train_config(&mut o)?;
    o.finish()?;
    if ctx.validate_only {
        cfg.epochs = cfg.epochs.min(2);
    }
    let run = prune_train(&mut **net.0.borrow_mut(), &data.0, density, prune_at, scope, &cfg)?;
    Ok(super::api_train::RunHandle(Rc::new(run)))
}

fn study(ctx: &Context, data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("sc_sdc", opts);
    let cfg = study_config(ctx, data, &mut o)?;
    o.finish()?;
    let store = if ctx.validate_only { None } else { ctx.store.as_ref() };
    let result = sc_sdc(&data.0, &cfg, store, |r| {
        ctx.seeds.borrow_mut().insert(r.seed);
        if r.run.diverged().is_some() {
            crate::log::line(&format!("note: {} w={} seed {} diverged at epoch {}", r.variant, r.dense_width, r.seed, r.run.diverged().unwrap_or(0)));
        }
    })?;
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
    engine.register_fn("prune_train", move |n: &mut ModelHandle, d: DataHandle, o: Map| prune(&c, n, &d, o).map_err(rt));
}
