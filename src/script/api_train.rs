//! Script bindings: `train` and run results.
use super::api_data::DataHandle;
use super::api_model::ModelHandle;
use super::config::Opts;
use super::{rt, Context, RhaiResult};
use crate::results::{grad_flow_frame, history_frame, run_row, Frame};
use crate::train::{train_with, DeviceSpec, GradFlowConfig, NoCallback, OptimizerConfig, OptimizerKind, RunResult, Schedule, StepKind, TrainConfig};
use crate::Error;
use rhai::{Dynamic, Engine, Map};
use std::rc::Rc;

/// A finished run in a script.
#[derive(Clone)]
pub struct RunHandle(pub Rc<RunResult>);

/// Reads `train(net, data, #{ ... })` options.
pub fn train_config(o: &mut Opts) -> crate::Result<TrainConfig> {
    let kind = OptimizerKind::parse(&o.string("optimizer", "sgd")?)?;
    let optimizer = OptimizerConfig {
        kind,
        lr: o.f64("lr", 0.01)?,
        momentum: o.opt_f64("momentum")?,
        l2: o.f64("l2", 0.0)?,
        weight_decay: o.f64("weight_decay", 0.0)?,
        eps: o.opt_f64("eps")?,
        alpha: o.f64("alpha", 0.99)?,
        betas: (o.f64("beta1", 0.9)?, o.f64("beta2", 0.999)?),
    };
    let schedule = match o.string("schedule", "constant")?.as_str() {
        "constant" => Schedule::Constant,
        "step" => Schedule::Step { milestones: o.usize_list("milestones")?.unwrap_or_default(), gamma: o.f64("gamma", 0.1)? },
        "cosine" => Schedule::Cosine { min_lr: o.f64("min_lr", 0.0)? },
        s => return Err(Error::UnknownName { what: "schedule", name: s.into(), hint: crate::registry::did_you_mean(s, ["constant", "step", "cosine"]), valid: "constant, step, cosine".into() }),
    };
    o.allow(&["milestones", "gamma", "min_lr"]);
    let grad_flow = match o.map("grad_flow")? {
        None => None,
        Some(m) => {
            let mut g = Opts::new("grad_flow", m);
            let cfg = GradFlowConfig { points: g.usize("points", 11)?, samples: g.usize("samples", 5000)? };
            g.finish()?;
            Some(cfg)
        }
    };
    let cfg = TrainConfig {
        optimizer,
        schedule,
        epochs: o.usize("epochs", 10)?,
        batch_size: o.usize("batch_size", 128)?,
        seed: o.usize("seed", 0)? as u64,
        augment: o.bool("augment", false)?,
        device: DeviceSpec::parse(&o.string("device", "auto")?)?,
        threads: o.opt_usize("threads")?,
        grad_flow,
        progress: o.bool("progress", true)?,
        step: StepKind::parse(&o.string("step", "auto")?)?,
    };
    cfg.validate()?;
    Ok(cfg)
}

fn train_script(ctx: &Context, net: &ModelHandle, data: &DataHandle, opts: Map) -> crate::Result<RunHandle> {
    let mut o = Opts::new("train", opts);
    let mut cfg = train_config(&mut o)?;
    o.finish()?;
    ctx.seeds.borrow_mut().insert(cfg.seed);
    let mut model = net.0.borrow_mut();
    let (train, test) = (&data.0.train, &data.0.test);
    let spec = serde_json::json!({
        "kind": "train",
        "data": crate::results::dataset_identity(&data.0),
        "model": net.1.borrow().config,
        "trained_by": net.1.borrow().trained_by,
        "train": crate::results::train_identity(&cfg),
    });
    let store = if ctx.validate_only { None } else { ctx.store.as_ref() };
    if let Some(store) = store {
        match store.lookup(&spec)? {
            crate::results::Lookup::Done(r) => {
                let weights = store.dir().join(format!("{}.safetensors", r.key));
                if weights.exists() {
                    model.load(&weights)?;
                }
                net.1.borrow_mut().trained_by.push(r.key.clone());
                crate::log::line(&format!("reused {} from the store ({})", model.describe(), r.key));
                return Ok(RunHandle(Rc::new(r.run)));
            }
            crate::results::Lookup::OtherShard => {
                crate::log::line(&format!("skipped {}: another shard's run", model.describe()));
                return Ok(RunHandle(Rc::new(RunResult::skipped())));
            }
            crate::results::Lookup::Train => {}
        }
    }
    let run = if ctx.validate_only {
        // `sparselab check`: one epoch on one batch exercises every code path quickly.
        cfg.epochs = cfg.epochs.min(1);
        let n = (cfg.batch_size.min(train.len())) as i64;
        let small = crate::data::Split { x: train.x.narrow(0, 0, n), y: train.y.narrow(0, 0, n) };
        train_with(&mut **model, &small, &small, &cfg, &mut NoCallback)?
    } else {
        train_with(&mut **model, train, test, &cfg, &mut NoCallback)?
    };
    ctx.devices.borrow_mut().insert(run.device.clone());
    let finished = matches!(run.ended, crate::train::Ended::Finished | crate::train::Ended::Diverged(_) | crate::train::Ended::Stopped(_));
    if let (Some(store), true) = (store, finished) {
        let key = crate::results::Store::key(&spec);
        // Weights before the record: a record always has its weights.
        store.atomic_write(&format!("{key}.safetensors"), |p| model.save(p))?;
        store.put(&spec, &crate::results::flatten(&spec), &run)?;
        net.1.borrow_mut().trained_by.push(key);
    }
    Ok(RunHandle(Rc::new(run)))
}

/// Registers `train` and the run's properties.
pub(crate) fn register(engine: &mut Engine, ctx: &Rc<Context>) {
    engine.register_type_with_name::<RunHandle>("Run");
    let c = ctx.clone();
    engine.register_fn("train", move |n: &mut ModelHandle, d: DataHandle, o: Map| train_script(&c, n, &d, o).map_err(rt));
    let c = ctx.clone();
    engine.register_fn("train", move |n: &mut ModelHandle, d: DataHandle| train_script(&c, n, &d, Map::new()).map_err(rt));
    engine.register_get("test_acc", |r: &mut RunHandle| r.0.test_acc);
    engine.register_get("test_loss", |r: &mut RunHandle| r.0.test_loss);
    engine.register_get("diverged", |r: &mut RunHandle| r.0.diverged().is_some());
    engine.register_get("diverged_epoch", |r: &mut RunHandle| r.0.diverged().map(|e| Dynamic::from(e as i64)).unwrap_or(Dynamic::UNIT));
    engine.register_get("seconds", |r: &mut RunHandle| r.0.seconds);
    engine.register_get("device", |r: &mut RunHandle| r.0.device.clone());
    engine.register_get("history", |r: &mut RunHandle| -> RhaiResult<Frame> { history_frame(&r.0).map_err(rt) });
    engine.register_get("grad_flow", |r: &mut RunHandle| -> RhaiResult<Frame> { grad_flow_frame(&r.0).map_err(rt) });
    engine.register_get("summary", |r: &mut RunHandle| -> RhaiResult<Frame> { run_row(&r.0).build().map_err(rt) });
    engine.register_fn("to_string", |r: &mut RunHandle| r.0.summary());
}
