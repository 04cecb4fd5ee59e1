//! Script bindings: charts from DataFrames, saved as PNG or SVG.
use super::config::{as_f64, Opts};
use super::{rt, Context, RhaiResult};
use crate::plot::{self, BarOptions, Chart, DensityOptions, HeatScale, HeatmapOptions, LearningCurveOptions, LineOptions, PlotError, ScatterOptions};
use crate::results::{bar_groups, heat_cells, history_chart, xy_facets, Frame, XySpec};
use crate::Error;
use rhai::{Array, Engine, Map};
use std::rc::Rc;

/// title, x_label, y_label, width, height: common to every chart.
struct Common {
    title: String,
    x_label: Option<String>,
    y_label: Option<String>,
    size: (u32, u32),
}

fn common(o: &mut Opts) -> crate::Result<Common> {
    Ok(Common {
        title: o.string("title", "")?,
        x_label: o.opt_string("x_label")?,
        y_label: o.opt_string("y_label")?,
        size: (o.usize_in("width", 800, 64, 8192)? as u32, o.usize_in("height", 500, 64, 8192)? as u32),
    })
}

fn required(o: &mut Opts, key: &'static str) -> crate::Result<String> {
    o.opt_string(key)?.ok_or_else(|| Error::config(key, "required: a column name"))
}

fn xy_spec(o: &mut Opts) -> crate::Result<XySpec> {
    Ok(XySpec {
        x: required(o, "x")?,
        y: required(o, "y")?,
        series: o.opt_string("series")?,
        facet: o.opt_string("facet")?,
        error_std: o.opt_string("error")?.map(|s| crate::registry::lookup_key("error", &s, &["std"])).transpose()?.is_some(),
    })
}

fn line(f: &Frame, opts: Map) -> crate::Result<Chart> {
    let mut o = Opts::new("line_chart", opts);
    let spec = xy_spec(&mut o)?;
    let c = common(&mut o)?;
    let lo = LineOptions {
        title: c.title,
        x_label: c.x_label.unwrap_or_else(|| spec.x.clone()),
        y_label: c.y_label.unwrap_or_else(|| spec.y.clone()),
        size: c.size,
        log_x: o.bool("log_x", false)?,
        log_y: o.bool("log_y", false)?,
        ..Default::default()
    };
    o.finish()?;
    Ok(plot::line_chart(&xy_facets(f, &spec)?, &lo)?)
}

fn scatter(f: &Frame, opts: Map) -> crate::Result<Chart> {
    let mut o = Opts::new("scatter", opts);
    let spec = XySpec { error_std: false, facet: None, ..xy_spec(&mut o)? };
    let c = common(&mut o)?;
    let so = ScatterOptions {
        title: c.title,
        x_label: c.x_label.unwrap_or_else(|| spec.x.clone()),
        y_label: c.y_label.unwrap_or_else(|| spec.y.clone()),
        size: c.size,
        log_x: o.bool("log_x", false)?,
        log_y: o.bool("log_y", false)?,
        ..Default::default()
    };
    o.finish()?;
    // Scatter keeps every row: no averaging over repeated x.
    let (xs, ys) = (f.f64_column(&spec.x)?, f.f64_column(&spec.y)?);
    let names = match &spec.series {
        Some(s) => f.str_column(s)?,
        None => vec![spec.y.clone(); f.height()],
    };
    let mut series: Vec<plot::Series> = Vec::new();
    for r in 0..f.height() {
        match series.iter_mut().find(|s| s.name == names[r]) {
            Some(s) => s.points.push((xs[r], ys[r])),
            None => series.push(plot::Series { name: names[r].clone(), points: vec![(xs[r], ys[r])], err: None }),
        }
    }
    Ok(plot::scatter(&series, &so)?)
}

fn bars(f: &Frame, opts: Map) -> crate::Result<Chart> {
    let mut o = Opts::new("bar_chart", opts);
    let (x, y, series) = (required(&mut o, "x")?, required(&mut o, "y")?, o.opt_string("series")?);
    let c = common(&mut o)?;
    let bo = BarOptions {
        title: c.title,
        x_label: c.x_label.unwrap_or_else(|| x.clone()),
        y_label: c.y_label.unwrap_or_else(|| y.clone()),
        size: c.size,
        show_values: o.bool("values", true)?,
        ..Default::default()
    };
    o.finish()?;
    let (cats, groups) = bar_groups(f, &x, &y, series.as_deref())?;
    Ok(plot::bar_chart(&cats, &groups, &bo)?)
}

fn heat(f: &Frame, opts: Map) -> crate::Result<Chart> {
    let mut o = Opts::new("heatmap", opts);
    let (row, col, value) = (required(&mut o, "row")?, required(&mut o, "col")?, required(&mut o, "value")?);
    let scale = match o.name("scale", "pvalue", &["pvalue", "sequential"])? {
        "sequential" => HeatScale::Sequential,
        _ => HeatScale::PValue,
    };
    let c = common(&mut o)?;
    let ho = HeatmapOptions {
        title: c.title,
        x_label: c.x_label.unwrap_or_else(|| col.clone()),
        y_label: c.y_label.unwrap_or_else(|| row.clone()),
        size: c.size,
        scale,
        decimals: o.usize_in("decimals", 3, 0, 12)?,
        ..Default::default()
    };
    o.finish()?;
    let (rows, cols, cells) = heat_cells(f, &row, &col, &value)?;
    Ok(plot::heatmap(&rows, &cols, &cells, &ho)?)
}

fn densities(d: Array, opts: Map) -> crate::Result<Chart> {
    let mut o = Opts::new("density_bars", opts);
    let vals: Vec<f64> = d.iter().map(|v| as_f64(v).ok_or_else(|| Error::config("densities", format!("expected numbers, got {v}")))).collect::<crate::Result<_>>()?;
    let names = match o.raw("layers") {
        Some(a) => a.try_cast::<Array>().map(|a| a.iter().map(|v| v.to_string()).collect()).ok_or_else(|| Error::config("layers", "expected an array of names"))?,
        None => (1..=vals.len()).map(|i| format!("L{i}")).collect::<Vec<_>>(),
    };
    if names.len() != vals.len() {
        return Err(Error::config("layers", format!("{} layer names for {} densities", names.len(), vals.len())));
    }
    let c = common(&mut o)?;
    let dopt = DensityOptions { title: c.title, size: c.size, ..Default::default() };
    o.finish()?;
    Ok(plot::density_bars(&names, &vals, &dopt)?)
}

fn curves(f: &Frame, opts: Map) -> crate::Result<Chart> {
    let mut o = Opts::new("learning_curves", opts);
    let series = o.opt_string("series")?;
    let c = common(&mut o)?;
    let lo = LearningCurveOptions { title: c.title, size: c.size, log_loss: o.bool("log_loss", false)?, ..Default::default() };
    o.finish()?;
    history_chart(f, series.as_deref(), &lo)
}

/// A chart with no data to draw, in a process that skipped runs (a shard, whose other
/// shards' results are missing, or a planning pass), is a warning and a stand-in chart,
/// not an error: the shard's task must not fail over a chart of results it does not
/// own. Anywhere else the error stands.
fn or_placeholder(ctx: &Context, what: &str, chart: crate::Result<Chart>) -> crate::Result<Chart> {
    match chart {
        Err(Error::Plot(PlotError::InvalidInput(m))) if ctx.session.skipped() > 0 && ["has no points", "has no finite points", "has no series", "no rows"].iter().any(|p| m.contains(p)) => {
            crate::log::line(&format!("warning: {what}: {m}; this process skipped {} run(s) of other shards, so a stand-in chart is drawn", ctx.session.skipped()));
            Ok(crate::plot::placeholder(&format!("{what}: no data in this shard ({} runs are other shards')", ctx.session.skipped()), (640, 200))?)
        }
        other => other,
    }
}

/// Registers the chart functions and the Chart type.
pub(crate) fn register(engine: &mut Engine, ctx: &Rc<Context>) {
    engine.register_type_with_name::<Chart>("Chart");
    let (c1, c2, c3, c4) = (ctx.clone(), ctx.clone(), ctx.clone(), ctx.clone());
    engine.register_fn("line_chart", move |f: &mut Frame, o: Map| or_placeholder(&c1, "line_chart", line(f, o)).map_err(rt));
    engine.register_fn("scatter", move |f: &mut Frame, o: Map| or_placeholder(&c2, "scatter", scatter(f, o)).map_err(rt));
    engine.register_fn("bar_chart", move |f: &mut Frame, o: Map| or_placeholder(&c3, "bar_chart", bars(f, o)).map_err(rt));
    engine.register_fn("heatmap", move |f: &mut Frame, o: Map| or_placeholder(&c4, "heatmap", heat(f, o)).map_err(rt));
    engine.register_fn("density_bars", |d: Array| densities(d, Map::new()).map_err(rt));
    engine.register_fn("density_bars", |d: Array, o: Map| densities(d, o).map_err(rt));
    engine.register_fn("learning_curves", |f: &mut Frame| curves(f, Map::new()).map_err(rt));
    engine.register_fn("learning_curves", |f: &mut Frame, o: Map| curves(f, o).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("save", move |ch: &mut Chart, p: &str| -> RhaiResult<()> { c.output_path(p).and_then(|p| ch.save(&p).map_err(Error::from)).map_err(rt) });
    engine.register_fn("to_svg", |ch: &mut Chart| ch.to_svg().map_err(|e| rt(e.into())));
    engine.register_fn("to_string", |ch: &mut Chart| format!("Chart {}x{}", ch.size().0, ch.size().1));
}
