//! Script bindings: `snas` (density search) with random, bayes or a script function.
use super::api_data::DataHandle;
use super::api_model::ModelHandle;
use super::api_train::train_config;
use super::config::{as_f64, Opts};
use super::{rt, Context};
use crate::experiment::{snas, Budget, Objective, SnasConfig, SnasResult, Space};
use crate::model::{CnnConfig, Densities, MlpConfig};
use crate::results::{Frame, FrameBuilder};
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
        let h: Array = history
            .iter()
            .map(|o| Dynamic::from(Map::from_iter([("x".into(), Dynamic::from(o.x.iter().map(|v| Dynamic::from(*v)).collect::<Array>())), ("score".into(), o.score.into())])))
            .collect();
        let out: Dynamic = self.f.call_within_context(self.ctx, (h,)).map_err(|e| SearchError::InvalidConfig { key: "search", message: format!("script function failed: {e}") })?;
        let arr: Vec<f64> = match as_f64(&out) {
            Some(v) => vec![v],
            None => out.clone().try_cast::<Array>().and_then(|a| a.iter().map(as_f64).collect()).ok_or_else(|| SearchError::InvalidConfig { key: "search", message: format!("the search function must return a number or an array of numbers, got {out}") })?,
        };
        if arr.len() != self.dims {
            return Err(SearchError::DimensionMismatch { expected: self.dims, got: arr.len() });
        }
        Ok(arr)
    }
}

fn space(data: &crate::data::Dataset, o: &mut Opts) -> crate::Result<Space> {
    let name = o.string("space", "mlp")?;
    Ok(match name.as_str() {
        "mlp" => {
            let base = MlpConfig {
                activation: o.string("activation", "prelu")?,
                batch_norm: o.bool("batch_norm", true)?,
                skip: o.bool("skip", true)?,
                dropout: o.f64_in("dropout", 0.0, 0.0, 0.99)?,
                bias: o.bool("bias", false)?,
                ..MlpConfig::new(data.input_size(), data.classes as i64, o.usize("depth", 4)?, o.usize("width", data.input_size() as usize + 4)? as i64)
            };
            Space::Mlp(MlpConfig { densities: Densities::Uniform(1.0), ..base })
        }
        "resnet32" | "wrn28_10" => Space::Cnn(CnnConfig { dropout: o.f64_in("dropout", 0.0, 0.0, 0.99)?, ..CnnConfig::new(&name, data.shape[0], data.classes as i64) }),
        s => return Err(Error::UnknownName { what: "space", name: s.into(), hint: crate::registry::did_you_mean(s, ["mlp", "resnet32", "wrn28_10"]), valid: "mlp, resnet32, wrn28_10".into() }),
    })
}

fn run_snas(nctx: &NativeCallContext, ctx: &Context, data: &DataHandle, opts: Map) -> crate::Result<Map> {
    let mut o = Opts::new("snas", opts);
    let space = space(&data.0, &mut o)?;
    let uniform = match o.string("representation", "non-uniform")?.as_str() {
        "non-uniform" => false,
        "uniform" => true,
        s => return Err(Error::config("representation", format!("{s:?} is not \"non-uniform\" or \"uniform\""))),
    };
    let samples = o.usize("samples", 50)?;
    let seed = o.usize("seed", 0)? as u64;
    let d_min = o.f64_in("d_min", 0.005, 1e-6, 1.0)?;
    let asha = match o.map("asha")? {
        None => None,
        Some(m) => {
            let mut a = Opts::new("asha", m);
            let cfg = AshaConfig { grace_period: a.usize("grace_period", 1)?, reduction_factor: a.f64("reduction_factor", 4.0)?, ..AshaConfig::new(1) };
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
    let objective = match o.string("objective", "accuracy")?.as_str() {
        "accuracy" => Objective::Accuracy,
        "penalized" => Objective::Penalized(o.f64("lambda", 0.1)?),
        "pareto" => Objective::Pareto,
        s => return Err(Error::UnknownName { what: "objective", name: s.into(), hint: crate::registry::did_you_mean(s, ["accuracy", "penalized", "pareto"]), valid: "accuracy, penalized, pareto".into() }),
    };
    o.allow(&["lambda"]);
    let validation = o.f64("validation", 0.1)?;
    let mut train = match o.map("train")? {
        Some(m) => {
            let mut t = Opts::new("snas train", m);
            let c = train_config(&mut t)?;
            t.finish()?;
            c
        }
        None => crate::train::TrainConfig { progress: false, ..Default::default() },
    };
    if ctx.validate_only {
        train.epochs = 1;
    }
    let dims = if uniform { 1 } else { space.layer_sizes()?.len() };
    let search_space = SearchSpace::new(dims, d_min, 1.0).map_err(|e| Error::config("d_min", e.to_string()))?;
    let kappa = o.f64("kappa", 10.0)?;
    let acquisition = match o.string("acquisition", "ucb")?.as_str() {
        "ucb" => Acquisition::Ucb { kappa },
        "ei" => Acquisition::Ei { xi: o.f64("xi", 0.0)? },
        s => return Err(Error::config("acquisition", format!("{s:?} is not \"ucb\" or \"ei\""))),
    };
    o.allow(&["xi"]);
    let search = o.raw("search");
    o.finish()?;
    let cfg = SnasConfig { space, uniform, samples, d_min, asha, budget, objective, validation, train, seed };
    let report = |t: &crate::experiment::Trial| {
        crate::log::line(&format!("trial {:>3}: score {:.4}  active {:>9}  {}{}", t.id, t.score, t.active, if t.stopped { "stopped" } else { "finished" }, t.rung.map(|r| format!(" (rung {r})")).unwrap_or_default()));
    };
    let store = if ctx.validate_only { None } else { ctx.store.as_ref() };
    let result = match search {
        Some(s) if s.is::<FnPtr>() => {
            let mut searcher = ScriptSearcher { ctx: nctx, f: s.cast::<FnPtr>(), dims };
            snas(&data.0, &cfg, &mut searcher, store, report)?
        }
        other => {
            let name = other.map(|v| v.to_string()).unwrap_or_else(|| "bayes".into());
            let mut searcher: Box<dyn Searcher> = match name.as_str() {
                "random" => Box::new(RandomSearch::new(search_space, seed).map_err(|e| Error::config("search", e.to_string()))?),
                "bayes" => Box::new(BayesOpt::new(search_space, BayesOptConfig { acquisition, ..Default::default() }, seed).map_err(|e| Error::config("search", e.to_string()))?),
                s => return Err(Error::UnknownName { what: "search", name: s.into(), hint: crate::registry::did_you_mean(s, ["random", "bayes"]), valid: "random, bayes, or a function |history| -> densities".into() }),
            };
            snas(&data.0, &cfg, &mut *searcher, store, report)?
        }
    };
    to_map(result)
}

/// The trial history: trial, d_<layer>..., active, total, density, score, val_acc_e<k>..., rung, stopped, epochs.
pub fn history_frame(r: &SnasResult) -> crate::Result<Frame> {
    let t = &r.trials;
    let layers = t.first().map(|x| x.densities.len()).unwrap_or(0);
    let mut b = FrameBuilder::new().i64("trial", t.iter().map(|x| x.id as i64).collect());
    for l in 0..layers {
        b = b.f64(&format!("d{}", l + 1), t.iter().map(|x| x.densities[l]).collect());
    }
    b.i64("active", t.iter().map(|x| x.active as i64).collect())
        .i64("total", t.iter().map(|x| x.total as i64).collect())
        .f64("density", t.iter().map(|x| x.active as f64 / x.total as f64).collect())
        .f64("score", t.iter().map(|x| x.score).collect())
        .f64("val_acc", t.iter().map(|x| x.scores.last().copied().unwrap_or(f64::NAN)).collect())
        .opt_i64("rung", t.iter().map(|x| x.rung.map(|r| r as i64)).collect())
        .bool("stopped", t.iter().map(|x| x.stopped).collect())
        .i64("epochs", t.iter().map(|x| x.scores.len() as i64).collect())
        .bool("pareto", t.iter().map(|x| r.pareto.contains(&x.id)).collect())
        .build()
}

fn to_map(r: SnasResult) -> crate::Result<Map> {
    let history = history_frame(&r)?;
    let b = &r.trials[r.best];
    let best = Map::from_iter([
        ("trial".into(), Dynamic::from(r.best as i64)),
        ("densities".into(), Dynamic::from(b.densities.iter().map(|d| Dynamic::from(*d)).collect::<Array>())),
        ("score".into(), b.score.into()),
        ("active".into(), (b.active as i64).into()),
        ("test_acc".into(), r.best_test_acc.into()),
        ("test_loss".into(), r.best_test_loss.into()),
        ("model".into(), Dynamic::from(ModelHandle(Rc::new(std::cell::RefCell::new(r.best_model)), Rc::new(std::cell::RefCell::new(Default::default()))))),
    ]);
    Ok(Map::from_iter([("history".into(), Dynamic::from(history)), ("best".into(), best.into())]))
}

/// Registers `snas`.
pub(crate) fn register(engine: &mut Engine, ctx: &Rc<Context>) {
    let c = ctx.clone();
    engine.register_fn("snas", move |nctx: NativeCallContext, d: DataHandle, o: Map| run_snas(&nctx, &c, &d, o).map_err(rt));
}
