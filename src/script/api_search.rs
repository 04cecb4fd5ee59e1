//! Script bindings: `snas` (density search) with random, bayes or a script function.
use super::api_data::DataHandle;
use super::api_model::ModelHandle;
use super::api_train::train_config;
use super::config::{as_f64, Opts};
use super::{rt, Context};
use crate::experiment::{snas, Budget, Objective, SnasConfig, SnasResult, Space, OBJECTIVES, REPRESENTATIONS, SPACES};
use crate::model::{CnnConfig, MlpConfig};
use crate::search::{Acquisition, AshaConfig, BayesOpt, BayesOptConfig, Observation, RandomSearch, SearchError, SearchSpace, Searcher};
use crate::Error;
use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext};
use std::rc::Rc;

/// A searcher backed by a script function `|history| -> array of densities`.
struct ScriptSearcher<'a> {
    ctx: &'a NativeCallContext<'a>,
    f: FnPtr,
    dims: usize,
}

impl Searcher for ScriptSearcher<'_> {
    fn propose(&mut self, history: &[Observation]) -> Result<Vec<f64>, SearchError> {
        let h: Array =
            history.iter().map(|o| Dynamic::from(Map::from_iter([("x".into(), Dynamic::from(o.x.iter().map(|v| Dynamic::from(*v)).collect::<Array>())), ("score".into(), o.score.into())]))).collect();
        let out: Dynamic = self.f.call_within_context(self.ctx, (h,)).map_err(|e| SearchError::InvalidConfig { key: "search", message: format!("script function failed: {e}") })?;
        let arr: Vec<f64> = match as_f64(&out) {
            Some(v) => vec![v],
            None => out
                .clone()
                .try_cast::<Array>()
                .and_then(|a| a.iter().map(as_f64).collect())
                .ok_or_else(|| SearchError::InvalidConfig { key: "search", message: format!("the search function must return a number or an array of numbers, got {out}") })?,
        };
        if arr.len() != self.dims {
            return Err(SearchError::DimensionMismatch { expected: self.dims, got: arr.len() });
        }
        Ok(arr)
    }
}

fn space(data: &crate::data::Dataset, o: &mut Opts) -> crate::Result<Space> {
    let name = o.name("space", SPACES[0], &SPACES)?;
    Ok(match name {
        "mlp" => {
            let d = Space::default_mlp_config(data);
            Space::Mlp(MlpConfig {
                activation: o.string("activation", &d.activation)?,
                batch_norm: o.bool("batch_norm", d.batch_norm)?,
                skip: o.bool("skip", d.skip)?,
                dropout: o.f64_in("dropout", d.dropout, 0.0, 0.99)?,
                bias: o.bool("bias", d.bias)?,
                depth: o.usize("depth", d.depth)?,
                width: o.i64("width", d.width)?,
                ..d
            })
        }
        arch => {
            let d = CnnConfig::new(arch, data.shape[0], data.classes as i64);
            Space::Cnn(CnnConfig { dropout: o.f64_in("dropout", d.dropout, 0.0, 0.99)?, ..d })
        }
    })
}

fn run_snas(nctx: &NativeCallContext, ctx: &Context, data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("snas", opts);
    let d = SnasConfig::defaults(&data.0);
    let space = space(&data.0, &mut o)?;
    let uniform = o.name("representation", REPRESENTATIONS[0], &REPRESENTATIONS)? == "uniform";
    let samples = o.usize("samples", d.samples)?;
    let seed = o.u64("seed", d.seed)?;
    let d_min = o.f64_in("d_min", d.d_min, 1e-6, 1.0)?;
    let asha = match o.map("asha")? {
        None => None,
        Some(m) => {
            let mut a = Opts::new("asha", m);
            let d = AshaConfig::new(1);
            let cfg = AshaConfig { grace_period: a.usize("grace_period", d.grace_period)?, reduction_factor: a.f64("reduction_factor", d.reduction_factor)?, ..d };
            a.finish()?;
            Some(cfg)
        }
    };
    let budget = match o.map("budget")? {
        None => Budget::default(),
        Some(m) => {
            let mut b = Opts::new("budget", m);
            let budget = Budget { max_density: b.opt_f64("max_density")?, max_active: b.opt_usize("max_active")?.map(|v| v as u64) };
            b.finish()?;
            budget
        }
    };
    let objective = match o.name("objective", OBJECTIVES[0], &OBJECTIVES)? {
        "penalized" => Objective::Penalized(o.f64("lambda", 0.1)?),
        "pareto" => Objective::Pareto,
        _ => Objective::Accuracy,
    };
    o.allow(&["lambda"]);
    let validation = o.f64("validation", d.validation)?;
    let train = match o.map("train")? {
        Some(m) => {
            let mut t = Opts::new("snas train", m);
            let c = train_config(&mut t)?;
            t.finish()?;
            c
        }
        None => d.train.clone(),
    };
    let acquisition = match o.name("acquisition", ACQUISITIONS[0], &ACQUISITIONS)? {
        "ei" => Acquisition::Ei { xi: o.f64("xi", 0.0)? },
        _ => Acquisition::Ucb { kappa: o.f64("kappa", 10.0)? },
    };
    o.allow(&["xi", "kappa"]);
    let search = o.raw("search");
    let baseline = o.opt_string("baseline")?;
    o.finish()?;
    let cfg = SnasConfig { space, uniform, samples, d_min, asha, budget, objective, validation, train, seed, baseline };
    cfg.validate(&data.0)?;
    let dims = cfg.dims()?;
    let search_space = SearchSpace::new(dims, d_min, 1.0).map_err(|e| Error::config("d_min", e.to_string()))?;
    let result = match search {
        Some(s) if s.is::<FnPtr>() => {
            let mut searcher = ScriptSearcher { ctx: nctx, f: s.cast::<FnPtr>(), dims };
            snas(&data.0, &cfg, &mut searcher, &ctx.session, |_| {})?
        }
        other => {
            if let Some(v) = other.as_ref().filter(|v| !v.is_string()) {
                return Err(Error::config("search", format!("expected \"random\", \"bayes\" or a function |history| -> densities, got {v}")));
            }
            let name = other.map(|v| v.to_string()).unwrap_or_else(|| "bayes".into());
            let mut searcher: Box<dyn Searcher> = match SEARCHES[crate::registry::lookup_key("search", &name, &SEARCHES)?] {
                "random" => Box::new(RandomSearch::new(search_space, seed).map_err(|e| Error::config("search", e.to_string()))?),
                _ => Box::new(BayesOpt::new(search_space, BayesOptConfig { acquisition, ..Default::default() }, seed).map_err(|e| Error::config("search", e.to_string()))?),
            };
            snas(&data.0, &cfg, &mut *searcher, &ctx.session, |_| {})?
        }
    };
    to_map(result)
}

/// Names of the built-in searchers.
const SEARCHES: [&str; 2] = ["random", "bayes"];
/// Names of the GP acquisitions.
const ACQUISITIONS: [&str; 2] = ["ucb", "ei"];

fn to_map(r: SnasResult) -> crate::Result<Map> {
    let history = r.history_frame()?;
    let b = &r.trials[r.best];
    let best = Map::from_iter([
        ("trial".into(), Dynamic::from(r.best as i64)),
        ("densities".into(), Dynamic::from(b.densities.iter().map(|d| Dynamic::from(*d)).collect::<Array>())),
        ("score".into(), b.score.into()),
        ("active".into(), (b.active as i64).into()),
        ("test_acc".into(), r.best_test_acc.into()),
        ("test_loss".into(), r.best_test_loss.into()),
        ("model".into(), Dynamic::from(ModelHandle::new(r.best_model))),
    ]);
    let baseline = match &r.baseline {
        None => Dynamic::UNIT,
        Some(b) => Map::from_iter([
            ("method".into(), b.method.clone().into()),
            ("density".into(), b.density.into()),
            ("active".into(), b.active.into()),
            ("test_acc".into(), b.test_acc.into()),
            ("test_loss".into(), b.test_loss.into()),
        ])
        .into(),
    };
    Ok(Map::from_iter([("history".into(), Dynamic::from(history)), ("best".into(), best.into()), ("baseline".into(), baseline)]))
}

/// Registers `snas`.
pub(crate) fn register(engine: &mut Engine, ctx: &Rc<Context>) {
    let c = ctx.clone();
    engine.register_fn("snas", move |nctx: NativeCallContext, d: DataHandle, o: Map| run_snas(&nctx, &c, &d, o).map_err(rt));
}
