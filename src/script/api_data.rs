//! Script bindings: datasets, DataFrames, statistics.
use super::config::{as_f64, Opts};
use super::{rt, Context, RhaiResult};
use crate::data::{Dataset, DatasetConfig, Subset};
use crate::results::Frame;
use crate::stats::{kendall_tau, wilcoxon, WilcoxonOptions};
use polars::prelude::AnyValue;
use rhai::{Array, Dynamic, Engine, Map};
use std::path::PathBuf;
use std::rc::Rc;

/// A dataset in a script.
#[derive(Clone)]
pub struct DataHandle(pub Rc<Dataset>);

fn dataset(name: &str, opts: Map) -> crate::Result<DataHandle> {
    let mut o = Opts::new("dataset", opts);
    let mut cfg = DatasetConfig::new(name).with_subset(Subset::parse(&o.string("subset", "auto")?)?);
    cfg.train_limit = o.opt_usize("train_limit")?;
    cfg.root = o.opt_string("root")?.map(PathBuf::from);
    cfg.synthetic.train = o.usize("train", cfg.synthetic.train)?;
    cfg.synthetic.test = o.usize("test", cfg.synthetic.test)?;
    cfg.synthetic.classes = o.usize("classes", cfg.synthetic.classes)?;
    cfg.synthetic.seed = o.usize("seed", 0)? as u64;
    o.finish()?;
    Ok(DataHandle(Rc::new(Dataset::load(&cfg)?)))
}

fn to_dynamic(v: AnyValue<'_>) -> Dynamic {
    match v {
        AnyValue::Null => Dynamic::UNIT,
        AnyValue::Boolean(b) => b.into(),
        AnyValue::String(s) => s.into(),
        AnyValue::StringOwned(s) => s.to_string().into(),
        AnyValue::Float64(f) => f.into(),
        AnyValue::Float32(f) => (f as f64).into(),
        AnyValue::Int64(i) => i.into(),
        AnyValue::Int32(i) => (i as i64).into(),
        AnyValue::UInt32(i) => (i as i64).into(),
        AnyValue::UInt64(i) => (i as i64).into(),
        v => v.to_string().into(),
    }
}

fn numbers(a: &Array, what: &str) -> RhaiResult<Vec<f64>> {
    a.iter().map(|v| as_f64(v).ok_or_else(|| rt(crate::Error::config(what, format!("expected numbers, got {v}"))))).collect()
}

pub(crate) fn read_path(ctx: &Context, p: &str) -> PathBuf {
    let in_run = ctx.out_dir.join(p);
    if in_run.exists() {
        in_run
    } else {
        PathBuf::from(p)
    }
}

/// Registers `dataset`, the DataFrame type and its methods, `read_csv`, `read_parquet`,
/// `wilcoxon`, `kendall_tau`.
pub(crate) fn register(engine: &mut Engine, ctx: &Rc<Context>) {
    engine.register_type_with_name::<DataHandle>("Dataset");
    engine.register_fn("dataset", |name: &str| dataset(name, Map::new()).map_err(rt));
    engine.register_fn("dataset", |name: &str, opts: Map| dataset(name, opts).map_err(rt));
    engine.register_fn("to_string", |d: &mut DataHandle| d.0.to_string());
    engine.register_get("name", |d: &mut DataHandle| d.0.name.clone());
    engine.register_get("train_size", |d: &mut DataHandle| d.0.train.len() as i64);
    engine.register_get("test_size", |d: &mut DataHandle| d.0.test.len() as i64);
    engine.register_get("classes", |d: &mut DataHandle| d.0.classes as i64);
    engine.register_get("input_size", |d: &mut DataHandle| d.0.input_size());

    engine.register_type_with_name::<Frame>("DataFrame");
    engine.register_fn("to_string", |f: &mut Frame| f.to_string());
    engine.register_fn("sql", |f: &mut Frame, q: &str| f.sql(q).map_err(rt));
    engine.register_fn("head", |f: &mut Frame, n: i64| f.head(n.max(0) as usize));
    engine.register_fn("columns", |f: &mut Frame| f.columns().into_iter().map(Dynamic::from).collect::<Array>());
    engine.register_fn("height", |f: &mut Frame| f.height() as i64);
    engine.register_fn("column", |f: &mut Frame, c: &str| f.map_column(c, to_dynamic).map(|v| v.into_iter().collect::<Array>()).map_err(rt));
    engine.register_fn("sort", |f: &mut Frame, c: &str| f.sort(c, false).map_err(rt));
    engine.register_fn("sort", |f: &mut Frame, c: &str, descending: bool| f.sort(c, descending).map_err(rt));
    engine.register_fn("filter", |f: &mut Frame, cond: &str| f.sql(&format!("select * from self where {cond}")).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("to_csv", move |f: &mut Frame, p: &str| c.output_path(p).and_then(|p| f.to_csv(&p)).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("to_parquet", move |f: &mut Frame, p: &str| c.output_path(p).and_then(|p| f.to_parquet(&p)).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("read_csv", move |p: &str| Frame::read_csv(&read_path(&c, p)).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("read_parquet", move |p: &str| Frame::read_parquet(&read_path(&c, p)).map_err(rt));
    engine.register_fn("frame", |m: Map| frame_from_map(m, None).map_err(rt));
    engine.register_fn("frame", |m: Map, order: Array| frame_from_map(m, Some(order)).map_err(rt));
    engine.register_fn("vstack", |a: Array| {
        let frames: Vec<Frame> = a.into_iter().filter_map(|d| d.try_cast::<Frame>()).collect();
        Frame::vstack(&frames).map_err(rt)
    });

    engine.register_fn("wilcoxon", |x: Array, y: Array| wilcoxon_map(x, y, Map::new()));
    engine.register_fn("wilcoxon", wilcoxon_map);
    engine.register_fn("kendall_tau", |x: Array, y: Array| -> RhaiResult<Map> {
        let r = kendall_tau(&numbers(&x, "x")?, &numbers(&y, "y")?).map_err(|e| rt(e.into()))?;
        Ok(Map::from_iter([("tau".into(), r.tau.into()), ("p_value".into(), r.p_value.into()), ("n".into(), (r.n as i64).into()), ("method".into(), r.method.to_string().into())]))
    });
}

fn wilcoxon_map(x: Array, y: Array, opts: Map) -> RhaiResult<Map> {
    let mut o = Opts::new("wilcoxon", opts);
    let mut w = WilcoxonOptions::default();
    if let Some(a) = o.opt_string("alternative").map_err(rt)? {
        w.alternative = a.parse().map_err(|e: crate::stats::StatsError| rt(e.into()))?;
    }
    if let Some(z) = o.opt_string("zero_method").map_err(rt)? {
        w.zero_method = z.parse().map_err(|e: crate::stats::StatsError| rt(e.into()))?;
    }
    if let Some(m) = o.opt_string("method").map_err(rt)? {
        w.method = m.parse().map_err(|e: crate::stats::StatsError| rt(e.into()))?;
    }
    o.finish().map_err(rt)?;
    let r = wilcoxon(&numbers(&x, "x")?, &numbers(&y, "y")?, &w).map_err(|e| rt(e.into()))?;
    Ok(Map::from_iter([
        ("statistic".into(), r.statistic.into()),
        ("n".into(), (r.n as i64).into()),
        ("p_value".into(), r.p_value.into()),
        ("median_diff".into(), r.median_diff.into()),
        ("method".into(), r.method.to_string().into()),
        ("alternative".into(), r.alternative.to_string().into()),
    ]))
}

/// `frame(#{ col: [values], ... }, order?)`: a DataFrame from arrays of numbers,
/// strings or booleans (all the same length).
fn frame_from_map(m: Map, order: Option<Array>) -> crate::Result<Frame> {
    let names: Vec<String> = match order {
        Some(o) => o.iter().map(|v| v.to_string()).collect(),
        None => m.keys().map(|k| k.to_string()).collect(),
    };
    let mut b = crate::results::FrameBuilder::new();
    for name in &names {
        let col = m.get(name.as_str()).ok_or_else(|| crate::Error::config("frame", format!("order names {name:?}, which is not a column")))?;
        let arr = col.clone().try_cast::<Array>().ok_or_else(|| crate::Error::config(name, format!("expected an array, got {col}")))?;
        b = if arr.iter().all(|v| v.is_bool()) && !arr.is_empty() {
            b.bool(name, arr.iter().map(|v| v.as_bool().unwrap_or(false)).collect())
        } else if arr.iter().all(|v| v.is_int()) {
            b.i64(name, arr.iter().map(|v| v.as_int().unwrap_or(0)).collect())
        } else if arr.iter().all(|v| as_f64(v).is_some()) {
            b.f64(name, arr.iter().filter_map(as_f64).collect())
        } else {
            b.str(name, arr.iter().map(|v| v.to_string()).collect())
        };
    }
    b.build()
}
