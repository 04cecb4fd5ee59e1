//! Script bindings: building models and inspecting them.
use super::api_data::DataHandle;
use super::config::Opts;
use super::{rt, Context, RhaiResult};
use crate::model::{layer_table, Densities, Fan, Kernel, MlpConfig, Model};
use crate::results::{layers_frame, Frame};
use crate::Error;
use rhai::{Dynamic, Engine, Map};
use std::cell::RefCell;
use std::rc::Rc;

/// A model in a script (shared, mutable: training updates it in place).
#[derive(Clone)]
pub struct ModelHandle(pub Rc<RefCell<Box<dyn Model>>>, pub Rc<RefCell<ModelSpec>>);

/// What a model is, for run identities: its configuration and the store keys of
/// the trainings it has been through (a second `train` continues from the first).
#[derive(Clone, Debug, Default)]
pub struct ModelSpec {
    /// Serialized configuration.
    pub config: serde_json::Value,
    /// Keys of earlier trainings, in order.
    pub trained_by: Vec<String>,
}

impl ModelHandle {
    /// Wraps a model built from `config`.
    pub fn new(m: impl Model + 'static, config: serde_json::Value) -> Self {
        ModelHandle(Rc::new(RefCell::new(Box::new(m))), Rc::new(RefCell::new(ModelSpec { config, trained_by: vec![] })))
    }
}

/// Reads the MLP options of `mlp(data, #{ ... })`.
pub fn mlp_config(data: &crate::data::Dataset, o: &mut Opts) -> crate::Result<MlpConfig> {
    let depth = o.usize("depth", 4)?;
    let width = o.usize("width", data.input_size() as usize + 4)? as i64;
    let densities = match (o.f64_or_list("density")?, o.usize_list("active")?) {
        (Some(_), Some(_)) => return Err(Error::config("active", "give density or active, not both")),
        (None, Some(k)) => Densities::Active(k.into_iter().map(|k| k as i64).collect()),
        (Some(d), None) if d.len() == 1 => Densities::Uniform(d[0]),
        (Some(d), None) => Densities::PerLayer(d),
        (None, None) => Densities::Uniform(1.0),
    };
    let fans = match o.raw("init_fan") {
        None => None,
        Some(v) if v.is_string() => match v.to_string().as_str() {
            "layer" => None,
            "effective" => Some(vec![Fan::Effective]),
            s => return Err(Error::config("init_fan", format!("{s:?} is not \"layer\", \"effective\", a number or an array of numbers"))),
        },
        Some(v) => {
            let nums: Vec<f64> = match super::as_f64(&v) {
                Some(x) => vec![x],
                None => v.clone().try_cast::<rhai::Array>().and_then(|a| a.iter().map(super::as_f64).collect()).ok_or_else(|| Error::config("init_fan", format!("expected \"layer\", \"effective\", a number or numbers, got {v}")))?,
            };
            Some(nums.into_iter().map(Fan::Value).collect())
        }
    };
    Ok(MlpConfig {
        densities,
        activation: o.string("activation", "relu")?,
        batch_norm: o.bool("batch_norm", false)?,
        skip: o.bool("skip", false)?,
        bias: o.bool("bias", true)?,
        dropout: o.f64_in("dropout", 0.0, 0.0, 0.99)?,
        fans,
        seed: o.usize("seed", 0)? as u64,
        kernel: Kernel::parse(&o.string("kernel", "auto")?)?,
        ..MlpConfig::new(data.input_size(), data.classes as i64, depth, width)
    })
}

fn mlp(data: &DataHandle, opts: Map) -> crate::Result<ModelHandle> {
    let mut o = Opts::new("mlp", opts);
    let cfg = mlp_config(&data.0, &mut o)?;
    o.finish()?;
    Ok(ModelHandle::new(cfg.init(tch::Device::Cpu)?, serde_json::to_value(&cfg).unwrap_or_default()))
}

fn cnn(data: &DataHandle, opts: Map) -> crate::Result<ModelHandle> {
    let mut o = Opts::new("cnn", opts);
    let cfg = crate::model::CnnConfig {
        densities: o.f64_or_list("density")?.unwrap_or_else(|| vec![1.0]),
        dropout: o.f64_in("dropout", 0.0, 0.0, 0.99)?,
        seed: o.usize("seed", 0)? as u64,
        ..crate::model::CnnConfig::new(&o.string("arch", "resnet32")?, data.0.shape[0], data.0.classes as i64)
    };
    o.finish()?;
    let [_, h, w] = data.0.shape;
    if (h, w) != (32, 32) {
        return Err(Error::config("arch", format!("{} expects 32x32 images, {} has {h}x{w}", cfg.arch, data.0.name)));
    }
    Ok(ModelHandle::new(cfg.init(tch::Device::Cpu)?, serde_json::to_value(&cfg).unwrap_or_default()))
}

/// Registers `mlp` and model methods (`layers`, `describe`, `save`, `load`).
pub(crate) fn register(engine: &mut Engine, ctx: &Rc<Context>) {
    engine.register_type_with_name::<ModelHandle>("Model");
    engine.register_fn("mlp", |d: &mut DataHandle, opts: Map| mlp(d, opts).map_err(rt));
    engine.register_fn("mlp", |d: &mut DataHandle| mlp(d, Map::new()).map_err(rt));
    engine.register_fn("cnn", |d: &mut DataHandle, opts: Map| cnn(d, opts).map_err(rt));
    engine.register_fn("layers", |m: &mut ModelHandle| -> RhaiResult<Frame> { layers_frame(&m.0.borrow().layers()).map_err(rt) });
    engine.register_fn("describe", |m: &mut ModelHandle| m.0.borrow().describe());
    engine.register_fn("to_string", |m: &mut ModelHandle| {
        let m = m.0.borrow();
        format!("{}\n{}", m.describe(), layer_table(&m.layers()))
    });
    engine.register_fn("densities", |m: &mut ModelHandle| m.0.borrow().layers().iter().map(|l| Dynamic::from(l.density)).collect::<rhai::Array>());
    let c = ctx.clone();
    engine.register_fn("save", move |m: &mut ModelHandle, p: &str| c.output_path(p).and_then(|p| m.0.borrow().save(&p)).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("load", move |m: &mut ModelHandle, p: &str| {
        let path = super::api_data::read_path(&c, p);
        m.0.borrow_mut().load(&path).map_err(rt)
    });
}
