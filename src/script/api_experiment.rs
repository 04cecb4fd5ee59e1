//! Script bindings: SC-SDC (`sc_sdc`, `sc_sdc_pair`).
use super::api_data::DataHandle;
use super::api_model::ModelHandle;
use super::api_train::train_config;
use super::config::Opts;
use super::{rt, Context};
use crate::experiment::{sc_sdc, twins, InitFan, ScSdcConfig};
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

fn study(ctx: &Context, data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("sc_sdc", opts);
    let (base, max_width, init_fan) = base_config(&data.0, &mut o)?;
    let fractions = o.f64_or_list("fractions")?.unwrap_or_else(|| vec![0.1, 0.3, 0.5, 0.7, 0.9]);
    let seeds = o.usize_list("seeds")?.unwrap_or_else(|| vec![0, 1, 2]).into_iter().map(|s| s as u64).collect();
    let mut train = train_config(&mut o)?;
    o.allow(&["seed"]);
    o.finish()?;
    if ctx.validate_only {
        train.epochs = 1;
    }
    let cfg = ScSdcConfig { base, max_width, fractions, seeds, init_fan, train };
    let store = if ctx.validate_only { None } else { ctx.store.as_ref() };
    let result = sc_sdc(&data.0, &cfg, store, |r| {
        ctx.seeds.borrow_mut().insert(r.seed);
        if r.run.diverged().is_some() {
            eprintln!("note: {} w={} seed {} diverged at epoch {}", r.variant, r.dense_width, r.seed, r.run.diverged().unwrap_or(0));
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
}
