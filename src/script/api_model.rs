//! Script bindings: building models and inspecting them.
use super::api_data::DataHandle;
use super::config::{DensityOption, Opts};
use super::{rt, Context, RhaiResult};
use crate::experiment::{InitFan, INIT_FANS};
use crate::model::{layer_table, CnnConfig, Densities, Fan, Kernel, MlpConfig, Tracked};
use crate::results::{layers_frame, Frame};
use crate::Error;
use rhai::{Dynamic, Engine, Map};
use std::cell::RefCell;
use std::rc::Rc;

/// A model in a script with its lineage (shared, mutable: training updates it in place).
#[derive(Clone)]
pub struct ModelHandle(pub Rc<RefCell<Tracked>>);

impl ModelHandle {
    /// Wraps a tracked model.
    pub fn new(m: Tracked) -> Self {
        ModelHandle(Rc::new(RefCell::new(m)))
    }
}

/// Reads the MLP options of `mlp(data, #{ ... })` over [`MlpConfig::defaults`].
pub fn mlp_config(data: &crate::data::Dataset, o: &mut Opts) -> crate::Result<MlpConfig> {
    let d = MlpConfig::defaults(data);
    let depth = o.usize("depth", d.depth)?;
    let width = o.i64("width", d.width)?;
    let densities = match (o.density("density")?, o.usize_list("active")?) {
        (Some(_), Some(_)) => return Err(Error::config("active", "give density or active, not both")),
        (None, Some(k)) => Densities::Active(k.into_iter().map(|k| k as i64).collect()),
        (Some(DensityOption::Allocated(a)), None) => Densities::Allocated(a),
        (Some(DensityOption::Fractions(d)), None) if d.len() == 1 => Densities::Uniform(d[0]),
        (Some(DensityOption::Fractions(d)), None) => Densities::PerLayer(d),
        (None, None) => Densities::Uniform(1.0),
    };
    let fans = match o.raw("init_fan") {
        None => None,
        Some(v) if v.is_string() => match crate::registry::lookup_key("init_fan", &v.to_string(), &INIT_FANS).map(|i| [InitFan::Dense, InitFan::Effective][i])? {
            InitFan::Dense => None,
            InitFan::Effective => Some(vec![Fan::Effective]),
        },
        Some(v) => {
            let nums: Vec<f64> = match super::as_f64(&v) {
                Some(x) => vec![x],
                None => v
                    .clone()
                    .try_cast::<rhai::Array>()
                    .and_then(|a| a.iter().map(super::as_f64).collect())
                    .ok_or_else(|| Error::config("init_fan", format!("expected \"layer\", \"effective\", a number or numbers, got {v}")))?,
            };
            Some(nums.into_iter().map(Fan::Value).collect())
        }
    };
    Ok(MlpConfig {
        densities,
        activation: o.string("activation", &d.activation)?,
        batch_norm: o.bool("batch_norm", d.batch_norm)?,
        skip: o.bool("skip", d.skip)?,
        bias: o.bool("bias", d.bias)?,
        dropout: o.f64_in("dropout", d.dropout, 0.0, 0.99)?,
        fans,
        seed: o.u64("seed", d.seed)?,
        kernel: Kernel::parse(&o.string("kernel", "auto")?)?,
        depth,
        width,
        ..d
    })
}

fn mlp(data: &DataHandle, opts: Map) -> crate::Result<ModelHandle> {
    let mut o = Opts::new("mlp", opts);
    let cfg = mlp_config(&data.0, &mut o)?;
    o.finish()?;
    crate::model::Activation::parse(&cfg.activation)?;
    Ok(ModelHandle::new(Tracked::new(cfg.init(tch::Device::Cpu)?, serde_json::json!({ "mlp": cfg }))))
}

fn cnn(data: &DataHandle, opts: Map) -> crate::Result<ModelHandle> {
    let mut o = Opts::new("cnn", opts);
    let arch = o.name("arch", "resnet32", crate::model::CNNS)?;
    let d = CnnConfig::new(arch, data.0.shape[0], data.0.classes as i64);
    let (densities, allocation) = match o.density("density")? {
        None => (d.densities.clone(), None),
        Some(DensityOption::Fractions(v)) => (v, None),
        Some(DensityOption::Allocated(a)) => (vec![1.0], Some(a)),
    };
    let cfg = CnnConfig { densities, allocation, dropout: o.f64_in("dropout", d.dropout, 0.0, 0.99)?, seed: o.u64("seed", d.seed)?, ..d };
    o.finish()?;
    cfg.check_data("arch", &data.0)?;
    Ok(ModelHandle::new(Tracked::new(cfg.init(tch::Device::Cpu)?, serde_json::json!({ "cnn": cfg }))))
}

/// Registers `mlp` and model methods (`layers`, `describe`, `save`, `load`).
pub(crate) fn register(engine: &mut Engine, ctx: &Rc<Context>) {
    engine.register_type_with_name::<ModelHandle>("Model");
    engine.register_fn("mlp", |d: &mut DataHandle, opts: Map| mlp(d, opts).map_err(rt));
    engine.register_fn("mlp", |d: &mut DataHandle| mlp(d, Map::new()).map_err(rt));
    engine.register_fn("cnn", |d: &mut DataHandle, opts: Map| cnn(d, opts).map_err(rt));
    engine.register_fn("layers", |m: &mut ModelHandle| -> RhaiResult<Frame> { layers_frame(&m.0.borrow().model.layers()).map_err(rt) });
    engine.register_fn("describe", |m: &mut ModelHandle| m.0.borrow().model.describe());
    engine.register_fn("to_string", |m: &mut ModelHandle| {
        let m = &m.0.borrow().model;
        format!("{}\n{}", m.describe(), layer_table(&m.layers()))
    });
    engine.register_fn("densities", |m: &mut ModelHandle| m.0.borrow().model.layers().iter().map(|l| Dynamic::from(l.density)).collect::<rhai::Array>());
    let c = ctx.clone();
    engine.register_fn("save", move |m: &mut ModelHandle, p: &str| c.output_path(p).and_then(|p| m.0.borrow().model.save(&p)).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("load", move |m: &mut ModelHandle, p: &str| {
        let path = super::api_data::read_path(&c, p);
        m.0.borrow_mut().load(&path).map_err(rt)
    });
}
