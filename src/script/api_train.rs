//! Script bindings: `train` and run results.
use super::api_data::DataHandle;
use super::api_model::ModelHandle;
use super::config::Opts;
use super::{rt, Context, RhaiResult};
use crate::results::{grad_flow_frame, history_frame, run_row, Frame};
use crate::train::{DeviceSpec, GradFlowConfig, MaskSchedule, OptimizerConfig, OptimizerKind, RunResult, Schedule, StepKind, TrainConfig};
use rhai::{Dynamic, Engine, Map};
use std::rc::Rc;

/// A finished run in a script.
#[derive(Clone)]
pub struct RunHandle(pub Rc<RunResult>);

/// Reads `train(net, data, #{ ... })` options over [`TrainConfig::default`] (with
/// progress on: scripts and cells show it).
pub fn train_config(o: &mut Opts) -> crate::Result<TrainConfig> {
    let d = TrainConfig { progress: true, ..TrainConfig::default() };
    let kind = OptimizerKind::parse(&o.string("optimizer", d.optimizer.kind.name())?)?;
    let optimizer = OptimizerConfig {
        kind,
        lr: o.f64("lr", d.optimizer.lr)?,
        momentum: o.opt_f64("momentum")?,
        l2: o.f64("l2", d.optimizer.l2)?,
        weight_decay: o.f64("weight_decay", d.optimizer.weight_decay)?,
        eps: o.opt_f64("eps")?,
        alpha: o.f64("alpha", d.optimizer.alpha)?,
        betas: (o.f64("beta1", d.optimizer.betas.0)?, o.f64("beta2", d.optimizer.betas.1)?),
    };
    let schedule = Schedule::from_name(&o.string("schedule", d.schedule.name())?, o.usize_list("milestones")?.unwrap_or_default(), o.opt_f64("gamma")?, o.opt_f64("min_lr")?)?;
    let grad_flow = match o.map("grad_flow")? {
        None => None,
        Some(m) => {
            let mut g = Opts::new("grad_flow", m);
            let gd = GradFlowConfig::default();
            let cfg = GradFlowConfig { points: g.usize("points", gd.points)?, samples: g.usize("samples", gd.samples)? };
            g.finish()?;
            Some(cfg)
        }
    };
    let cfg = TrainConfig {
        optimizer,
        schedule,
        epochs: o.usize("epochs", d.epochs)?,
        batch_size: o.usize("batch_size", d.batch_size)?,
        seed: o.u64("seed", d.seed)?,
        augment: o.bool("augment", d.augment)?,
        device: DeviceSpec::parse(&o.string("device", "auto")?)?,
        threads: o.opt_usize("threads")?,
        grad_flow,
        progress: o.bool("progress", d.progress)?,
        step: StepKind::parse(&o.string("step", "auto")?)?,
        masks: mask_schedule(o)?,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Reads `dynamic: #{ method: "rigl", fraction: 0.3, every: 100, end: 0.75 }` (or
/// `method: "set"`) and `gradual: #{ density: 0.1, start: 0.1, end: 0.6, every: 100,
/// scope: "layer" }`: masks that change during training.
fn mask_schedule(o: &mut Opts) -> crate::Result<Option<MaskSchedule>> {
    let dynamic = o.map("dynamic")?;
    let gradual = o.map("gradual")?;
    match (dynamic, gradual) {
        (Some(_), Some(_)) => Err(crate::Error::config("gradual", "give dynamic or gradual, not both: one schedule changes the masks")),
        (None, None) => Ok(None),
        (Some(m), None) => {
            let mut d = Opts::new("dynamic", m);
            let method = d.name("method", "rigl", &["set", "rigl"])?;
            // The defaults of MaskSchedule::set() and MaskSchedule::rigl().
            let s = match method {
                "set" => MaskSchedule::Set { fraction: d.f64("fraction", 0.3)? },
                _ => MaskSchedule::Rigl { fraction: d.f64("fraction", 0.3)?, every: d.usize("every", 100)?, end: d.f64("end", 0.75)? },
            };
            d.finish()?;
            s.validate()?;
            Ok(Some(s))
        }
        (None, Some(m)) => {
            let mut g = Opts::new("gradual", m);
            let density = g.opt_f64("density")?.ok_or_else(|| crate::Error::config("density", "required: the final density of gradual pruning, e.g. gradual: #{ density: 0.1 }"))?;
            // The defaults of MaskSchedule::gradual().
            let s = MaskSchedule::Gradual {
                density,
                start: g.f64("start", 0.1)?,
                end: g.f64("end", 0.6)?,
                every: g.usize("every", 100)?,
                global: crate::experiment::Scope::parse(&g.string("scope", "layer")?)? == crate::experiment::Scope::Global,
            };
            g.finish()?;
            s.validate()?;
            Ok(Some(s))
        }
    }
}

fn train_script(ctx: &Context, net: &ModelHandle, data: &DataHandle, opts: Map) -> crate::Result<RunHandle> {
    let mut o = Opts::new("train", opts);
    let cfg = train_config(&mut o)?;
    o.finish()?;
    let run = ctx.session.train(&mut net.0.borrow_mut(), &data.0, &cfg)?;
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
    engine.register_get("diverged_epoch", |r: &mut RunHandle| r.0.diverged().map(|e| Dynamic::from(e as i64 + 1)).unwrap_or(Dynamic::UNIT));
    engine.register_get("seconds", |r: &mut RunHandle| r.0.seconds);
    engine.register_get("mask_history", |r: &mut RunHandle| -> RhaiResult<Frame> {
        let h = &r.0.mask_history;
        crate::results::FrameBuilder::new()
            .i64("step", h.iter().map(|p| p.step as i64).collect())
            .i64("epoch", h.iter().map(|p| p.epoch as i64 + 1).collect())
            .f64("kept", h.iter().map(|p| p.kept).collect())
            .i64("active", h.iter().map(|p| p.active).collect())
            .build()
            .map_err(rt)
    });
    engine.register_get("device", |r: &mut RunHandle| r.0.device.clone());
    engine.register_get("history", |r: &mut RunHandle| -> RhaiResult<Frame> { history_frame(&r.0).map_err(rt) });
    engine.register_get("grad_flow", |r: &mut RunHandle| -> RhaiResult<Frame> { grad_flow_frame(&r.0).map_err(rt) });
    engine.register_get("summary", |r: &mut RunHandle| -> RhaiResult<Frame> { run_row(&r.0).build().map_err(rt) });
    engine.register_fn("to_string", |r: &mut RunHandle| r.0.summary());
}
