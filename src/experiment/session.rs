//! The run session: one place that decides what a run is ([`RunSpec`]), whether it
//! is reused from the store, trained here or left to another shard, what `check`
//! means, and what is written. Every entry point that trains (`train`,
//! `prune_train`, `sc_sdc`, `sc_sdc_grid`, `snas`) goes through it; bindings never
//! touch the store (STYLE rule 9).
//!
//! ```no_run
//! use sparselab::{data::{Dataset, DatasetConfig}, experiment::Session, model::{MlpConfig, Tracked}, results::Store, train::TrainConfig};
//! let data = Dataset::load(&DatasetConfig::new("fashion-mnist"))?;
//! let session = Session::with_store(Store::open("runs/demo/store")?);
//! let cfg = MlpConfig::new(784, 10, 2, 100);
//! let mut net = Tracked::new(cfg.init(tch::Device::Cpu)?, serde_json::json!({ "mlp": cfg }));
//! let run = session.train(&mut net, &data, &TrainConfig::default())?; // a rerun reuses it
//! # Ok::<(), sparselab::Error>(())
//! ```
use super::init_prune::{prune_at_init, InitPruneConfig, PruneReport};
use super::prune::{magnitude_prune, prune_train_phases, ImpConfig, PruneConfig};
use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::model::{Lineage, Model, Tracked, Transform};
use crate::results::{dataset_identity, flatten, train_identity, Lookup, Store};
use crate::train::{train_with, Ended, NoCallback, RunResult, TrainConfig};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Everything that decides a run's result: its kind, the data, the model's lineage,
/// the training settings and the method's own settings. Its hash (with the store's
/// schema version) is the run's key.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunSpec {
    /// `train`, `prune_train`, `sc_sdc`, `snas_trial`, ...
    pub kind: &'static str,
    /// [`dataset_identity`]: name, source, sizes after the limit, shape, normalisation.
    pub data: Value,
    /// The model as built and transformed before this run.
    pub model: Lineage,
    /// [`train_identity`]: training settings without device, threads and progress.
    pub train: Value,
    /// The method's settings (pruning target, search and trial), or null.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub method: Value,
}

impl RunSpec {
    /// A run of `kind` on `data` for a model with `lineage`, trained with `train`.
    pub fn new(kind: &'static str, data: &Dataset, lineage: &Lineage, train: &TrainConfig) -> Self {
        RunSpec { kind, data: dataset_identity(data), model: lineage.clone(), train: train_identity(train), method: Value::Null }
    }

    /// The same spec with the method's settings.
    pub fn with_method(self, method: Value) -> Self {
        RunSpec { method, ..self }
    }

    /// The spec as stored in a record.
    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The run's key (see [`Store::key`]).
    pub fn key(&self) -> String {
        Store::key(&self.json())
    }
}

/// A run the script would train, found by a planning pass ([`Session::planning`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlannedRun {
    /// Its key.
    pub key: String,
    /// Its kind (`train`, `sc_sdc`, ...).
    pub kind: String,
    /// The model, as its description reads.
    pub label: String,
    /// Estimated training FLOPs: 6 x executed multiply-adds per example x examples x
    /// epochs (0 where the model does not say).
    pub cost: f64,
    /// Keys of earlier runs it continues (its model's lineage): they must finish first,
    /// so a shard gets the whole chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// Where runs go and how they are run.
pub struct Session {
    store: Option<Store>,
    check: bool,
    plan: Option<Mutex<Vec<PlannedRun>>>,
    trained: Mutex<Vec<String>>,
    skipped: std::sync::atomic::AtomicUsize,
    seeds: Mutex<BTreeSet<u64>>,
    devices: Mutex<BTreeSet<String>>,
    datasets: Mutex<Vec<Value>>,
    verify: Option<std::sync::Arc<super::Verifier>>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// Every run trains and nothing is written.
    pub fn new() -> Self {
        Session {
            store: None,
            check: false,
            plan: None,
            trained: Default::default(),
            skipped: Default::default(),
            seeds: Default::default(),
            devices: Default::default(),
            datasets: Default::default(),
            verify: None,
        }
    }

    /// A planning pass (`sparselab submit`, `status`): every run is listed with its
    /// key and estimated cost ([`Session::planned`]) and skipped, as another shard's
    /// would be; nothing trains, nothing is read or written.
    pub fn planning() -> Self {
        Session { plan: Some(Mutex::new(Vec::new())), ..Session::new() }
    }

    /// The runs a planning pass found, in the order the script reached them.
    pub fn planned(&self) -> Vec<PlannedRun> {
        self.plan.as_ref().and_then(|p| p.lock().ok().map(|p| p.clone())).unwrap_or_default()
    }

    /// In a planning pass, lists the run `spec` of `label` whose model executes
    /// `macs` multiply-adds per example in training (once per key).
    pub fn plan_run(&self, spec: &RunSpec, label: &str, macs: Option<f64>) {
        self.plan_run_with(spec, label, macs, &[], 1.0);
    }

    /// [`Session::plan_run`] for a run that must also follow the runs `after` (a
    /// search's earlier trials) and whose cost counts `times` over (a search planned by
    /// its first trial).
    pub fn plan_run_with(&self, spec: &RunSpec, label: &str, macs: Option<f64>, after: &[String], times: f64) {
        let Some(plan) = &self.plan else { return };
        let key = spec.key();
        let examples = spec.data["train"].as_f64().unwrap_or(0.0);
        let epochs = spec.train["epochs"].as_f64().unwrap_or(0.0);
        let mut after: Vec<String> = after.to_vec();
        after.extend(spec.model.steps.iter().filter_map(|t| if let Transform::Run { key } = t { Some(key.clone()) } else { None }));
        if let Ok(mut p) = plan.lock() {
            if !p.iter().any(|r| r.key == key) {
                p.push(PlannedRun { key, kind: spec.kind.to_string(), label: label.to_string(), cost: 6.0 * macs.unwrap_or(0.0) * examples * epochs * times, after });
            }
        }
    }

    /// Whether this is a planning pass.
    pub fn is_planning(&self) -> bool {
        self.plan.is_some()
    }

    /// Runs skipped so far (other shards' runs, or every run of a planning pass):
    /// results derived from them are incomplete.
    pub fn skipped(&self) -> usize {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a skipped run.
    pub(crate) fn note_skipped(&self) {
        self.skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Keys of the runs this session trained and recorded (for the manifest).
    pub fn trained(&self) -> Vec<String> {
        self.trained.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Finished runs are recorded in `store` and reused from it (honouring its
    /// `fresh` and `shard` settings).
    pub fn with_store(store: Store) -> Self {
        Session { store: Some(store), ..Session::new() }
    }

    /// `sparselab verify`: the keys `verifier` wants are trained again although stored
    /// and compared with their records; every other record is reused as usual; nothing
    /// is written (no records, weights or checkpoints).
    pub fn verifying(mut store: Store, verifier: std::sync::Arc<super::Verifier>) -> Self {
        store.checkpoints = None;
        store.fresh = false;
        store.shard = None;
        Session { store: Some(store), verify: Some(verifier), ..Session::new() }
    }

    /// `sparselab check`: every call validates all its options and runs one epoch on
    /// one batch (training and evaluation), reading and writing no store.
    pub fn checking() -> Self {
        Session { check: true, ..Session::new() }
    }

    /// Whether this is a `check` session.
    pub fn is_check(&self) -> bool {
        self.check
    }

    /// The store, if runs are recorded.
    pub fn store(&self) -> Option<&Store> {
        if self.check {
            None
        } else {
            self.store.as_ref()
        }
    }

    /// Where and when runs checkpoint within themselves (store sessions only).
    pub fn checkpoints(&self) -> Option<&crate::train::checkpoint::CheckpointPolicy> {
        self.store().and_then(|s| s.checkpoints.as_ref())
    }

    /// Seeds of the runs so far (for the manifest).
    pub fn seeds(&self) -> Vec<u64> {
        self.seeds.lock().map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// Devices the runs so far trained on (for the manifest).
    pub fn devices(&self) -> Vec<String> {
        self.devices.lock().map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// The settings and splits a run actually uses: as given, or in a `check`
    /// session one epoch on the first batch, evaluated on the first batch.
    pub fn shrink(&self, cfg: &TrainConfig, train: &Split, eval: &Split) -> (TrainConfig, Split, Split) {
        let same = |s: &Split| Split { x: s.x.shallow_clone(), y: s.y.shallow_clone() };
        if !self.check {
            return (cfg.clone(), same(train), same(eval));
        }
        let first = |s: &Split| {
            let n = cfg.batch_size.max(1).min(s.len()) as i64;
            Split { x: s.x.narrow(0, 0, n), y: s.y.narrow(0, 0, n) }
        };
        (TrainConfig { epochs: cfg.epochs.min(1), progress: false, ..cfg.clone() }, first(train), first(eval))
    }

    /// The data identities the runs so far used (for the manifest): name, source,
    /// sizes and each file's SHA-256.
    pub fn datasets(&self) -> Vec<Value> {
        self.datasets.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Reuse, train or skip the run with `spec` (`check` and store-less sessions train).
    /// A run to train on data files the store's runs did not use says, once per data
    /// identity, which files differ from theirs.
    ///
    /// # Errors
    /// An unreadable record.
    pub fn lookup(&self, spec: &RunSpec) -> Result<Lookup> {
        let first = self
            .datasets
            .lock()
            .map(|mut d| {
                if d.contains(&spec.data) {
                    false
                } else {
                    d.push(spec.data.clone());
                    true
                }
            })
            .unwrap_or(false);
        if let Some(v) = self.verify.as_ref().filter(|_| first) {
            v.note_data(&spec.data);
        }
        if self.plan.is_some() {
            return Ok(Lookup::OtherShard);
        }
        let Some(store) = self.store() else { return Ok(Lookup::Train) };
        if self.verify.as_ref().is_some_and(|v| v.wants(&spec.key())) {
            return Ok(Lookup::Train);
        }
        let found = store.lookup(&spec.json())?;
        if first && matches!(found, Lookup::Train) {
            let differences = crate::results::data_differences(&spec.data, &store.data_identities());
            if !differences.is_empty() {
                crate::log::line(&format!(
                    "warning: {} here is not the data the store's runs were trained on; its runs get new keys (the store's records are not reused):\n  {}",
                    spec.data["name"].as_str().unwrap_or("the dataset"),
                    differences.join("\n  ")
                ));
            }
        }
        Ok(found)
    }

    /// Notes a finished run for the manifest and, unless interrupted or checking,
    /// records it (weights first, when given, so a record always has its weights).
    /// Returns the key when recorded.
    ///
    /// # Errors
    /// A write that failed.
    pub fn record(&self, spec: &RunSpec, seed: u64, columns: &[(String, Value)], run: &RunResult, weights: Option<&dyn Model>) -> Result<Option<String>> {
        if let (Ok(mut s), Ok(mut d)) = (self.seeds.lock(), self.devices.lock()) {
            s.insert(seed);
            d.insert(run.device.clone());
        }
        let Some(store) = self.store() else { return Ok(None) };
        if matches!(run.ended, Ended::Interrupted(_) | Ended::Skipped) {
            return Ok(None);
        }
        let json = spec.json();
        let key = Store::key(&json);
        if let Some(v) = &self.verify {
            if v.wants(&key) {
                let record = store.record(&key)?;
                v.compare(&key, &json, &serde_json::to_value(run).unwrap_or_default(), record.as_ref(), &run.device);
            }
            return Ok(None);
        }
        if let Some(m) = weights {
            store.atomic_write(&format!("{key}.safetensors"), |p| m.save(p))?;
        }
        let mut cols = columns.to_vec();
        for (name, v) in flatten(&json) {
            if !cols.iter().any(|(n, _)| *n == name) {
                cols.push((name, v));
            }
        }
        store.put(&json, &cols, run)?;
        if let Ok(mut t) = self.trained.lock() {
            t.push(key.clone());
        }
        Ok(Some(key))
    }

    /// The one path of a run on one model: reuse its record (loading the stored
    /// weights into `model`), skip it (another shard's), or run `work` and record the
    /// result with the model's weights. The model's lineage gains the run's key, or an
    /// untracked step when the run was interrupted or only checked.
    ///
    /// # Errors
    /// `work`'s errors, unreadable records or weights, failed writes.
    pub fn run_or_reuse(&self, spec: &RunSpec, seed: u64, columns: &[(String, Value)], model: &mut Tracked, work: impl FnOnce(&mut dyn Model) -> Result<RunResult>) -> Result<RunResult> {
        let key = spec.key();
        self.plan_run(spec, &model.model.describe(), model.model.macs().map(|m| m[2]));
        match self.lookup(spec)? {
            Lookup::Done(r) => {
                let weights = self.store().map(|s| s.weights_path(&key)).filter(|p| p.exists());
                if let Some(w) = weights {
                    model.model.load(&w)?;
                    model.lineage.steps.push(Transform::Run { key: key.clone() });
                    model.elsewhere = false;
                    crate::log::line(&format!("reused {} from the store ({key})", model.model.describe()));
                    return Ok(r.run);
                }
                crate::log::line(&format!("note: record {key} has no weights; training {} again", model.model.describe()));
            }
            Lookup::OtherShard => {
                model.lineage.steps.push(Transform::Run { key });
                model.elsewhere = true;
                self.note_skipped();
                crate::log::line(&format!("skipped {}: another shard's run", model.model.describe()));
                return Ok(RunResult::skipped());
            }
            Lookup::Train if model.elsewhere => {
                model.lineage.steps.push(Transform::Run { key });
                self.note_skipped();
                crate::log::line(&format!("skipped {}: it continues another shard's run", model.model.describe()));
                return Ok(RunResult::skipped());
            }
            Lookup::Train => {}
        }
        crate::activity::run(Some((&key, &model.model.describe())));
        let run = crate::train::checkpoint::scope(self.checkpoints(), &key, || work(&mut *model.model));
        crate::activity::run(None);
        let run = run?;
        if self.record(spec, seed, columns, &run, Some(&*model.model))?.is_some() {
            self.checkpoints().inspect(|p| p.remove(&key));
        }
        // A complete run is reproducible from its key, recorded or not (a store-less session).
        let complete = !self.check && !matches!(run.ended, Ended::Interrupted(_));
        model.lineage.steps.push(if complete { Transform::Run { key } } else { Lineage::untracked(if self.check { "checked" } else { "interrupted" }) });
        Ok(run)
    }

    /// Trains `model` on `data` (or reuses the stored run of the same lineage).
    ///
    /// # Errors
    /// Bad settings, training failures.
    pub fn train(&self, model: &mut Tracked, data: &Dataset, cfg: &TrainConfig) -> Result<RunResult> {
        cfg.validate()?;
        let spec = RunSpec::new("train", data, &model.lineage, cfg);
        let (cfg, train, eval) = self.shrink(cfg, &data.train, &data.test);
        self.run_or_reuse(&spec, cfg.seed, &[], model, |m| train_with(m, &train, &eval, &cfg, &mut NoCallback))
    }

    /// Magnitude pruning with fine-tuning ([`super::prune_train`]) as one run: its
    /// settings are validated before the dense phase trains and are part of its key.
    ///
    /// # Errors
    /// Bad settings, training failures.
    pub fn prune_train(&self, model: &mut Tracked, data: &Dataset, prune: &PruneConfig, cfg: &TrainConfig) -> Result<RunResult> {
        prune.validate()?;
        cfg.validate()?;
        let spec = RunSpec::new("prune_train", data, &model.lineage, cfg).with_method(json!(prune));
        let (dense, tune) = prune.phases(cfg.epochs);
        let phases = if self.check { (dense.min(1), tune.min(1)) } else { (dense, tune) };
        let (cfg, train, eval) = self.shrink(cfg, &data.train, &data.test);
        self.run_or_reuse(&spec, cfg.seed, &[], model, |m| prune_train_phases(m, &train, &eval, prune, &cfg, phases))
    }

    /// Iterative magnitude pruning with rewinding ([`ImpConfig`]): `rewind_epoch`
    /// epochs of training give the rewind point; then each round trains `epochs -
    /// rewind_epoch` epochs, and all but the last prune `fraction` of the remaining
    /// weights by magnitude and rewind the survivors (weights, biases and statistics) to
    /// the rewind point. Every training is a run of its own (reused, resumable per
    /// round); a rewound model's lineage is the rewind point's followed by the masks'
    /// settings and the run they were read from. Returns each round's density and run.
    ///
    /// # Errors
    /// Bad settings (checked before anything trains), training failures.
    pub fn imp(&self, model: &mut Tracked, data: &Dataset, imp: &ImpConfig, cfg: &TrainConfig) -> Result<Vec<(f64, RunResult)>> {
        imp.validate(cfg.epochs)?;
        cfg.validate()?;
        if imp.rewind_epoch > 0 {
            let run = crate::train::labelled(format!("IMP: dense to rewind epoch {}", imp.rewind_epoch), || self.train(model, data, &TrainConfig { epochs: imp.rewind_epoch, ..cfg.clone() }))?;
            if matches!(run.ended, Ended::Interrupted(_)) {
                return Ok(vec![(f64::NAN, run)]);
            }
        }
        let rewind_lineage = model.lineage.clone();
        let rewind_elsewhere = model.elsewhere;
        let rewind_weights: Vec<tch::Tensor> = model.model.weight_layers().iter().map(|l| l.weight.detach().copy()).collect();
        let layer_params: Vec<String> = model.model.weight_layers().iter().flat_map(|l| ["mask", "weight", "values"].map(|p| format!("{}.{p}", l.name))).collect();
        let snapshot: Vec<(String, tch::Tensor)> = model.model.var_store().variables().into_iter().filter(|(n, _)| !layer_params.contains(n)).map(|(n, v)| (n, v.detach().copy())).collect();
        let info = model.model.layers();
        let start_density = info.iter().map(|l| l.active).sum::<i64>() as f64 / info.iter().map(|l| l.total).sum::<i64>().max(1) as f64;
        let round_cfg = TrainConfig { epochs: cfg.epochs - imp.rewind_epoch, ..cfg.clone() };
        let mut out = Vec::with_capacity(imp.rounds + 1);
        for round in 0..=imp.rounds {
            self.interrupted()?;
            let density = start_density * (1.0 - imp.fraction).powi(round as i32);
            let spec = RunSpec::new("imp_round", data, &model.lineage, &round_cfg).with_method(json!({ "imp": imp, "round": round }));
            let (c, train, eval) = self.shrink(&round_cfg, &data.train, &data.test);
            let run = self.run_or_reuse(&spec, c.seed, &[("imp_round".into(), json!(round)), ("imp_density".into(), json!(density))], model, |m| {
                crate::train::labelled(format!("IMP round {round}/{}: density {density:.4}", imp.rounds), || train_with(m, &train, &eval, &c, &mut NoCallback))
            })?;
            let stop = matches!(run.ended, Ended::Interrupted(_));
            out.push((density, run));
            if round == imp.rounds || stop {
                break;
            }
            let from = model.lineage.steps.last().cloned();
            let next = start_density * (1.0 - imp.fraction).powi(round as i32 + 1);
            if !model.elsewhere {
                magnitude_prune(&*model.model, next, imp.scope)?;
                model.model.compact_sparse_layers()?;
                // Everything but the weight layers' weights (rewound through set_weights,
                // which lays compact values out on the new plans).
                let _guard = tch::no_grad_guard();
                let vars = model.model.var_store().variables();
                for (name, v) in &snapshot {
                    vars[name].shallow_clone().f_copy_(v)?;
                }
                model.model.set_weights(&rewind_weights)?;
            }
            model.lineage = rewind_lineage.then(Transform::Masks { how: json!({ "method": "imp", "round": round + 1, "density": next, "scope": imp.scope, "from": from }) });
            model.elsewhere = model.elsewhere || rewind_elsewhere;
        }
        Ok(out)
    }

    /// Prunes `model` at initialization ([`prune_at_init`]): a model transform, not a
    /// run (it costs a forward and backward pass or, for SynFlow, one per round), so it
    /// is recomputed on every rerun and recorded in the model's lineage with its settings
    /// (and, for SNIP and GraSP, the data it read). The examples read are the first
    /// `examples` of a seeded permutation of the training split.
    ///
    /// # Errors
    /// Bad settings, libtorch failures.
    pub fn prune_at_init(&self, model: &mut Tracked, data: &Dataset, cfg: &InitPruneConfig) -> Result<PruneReport> {
        cfg.validate()?;
        let mut how = json!({ "method": "prune_at_init", "settings": cfg });
        if cfg.method.uses_data() {
            how["data"] = dataset_identity(data);
        }
        if model.elsewhere {
            // Its weights are another shard's run: the masks follow from them there.
            model.lineage.steps.push(Transform::Masks { how });
            return Ok(PruneReport::of(&*model.model));
        }
        let batch = cfg.method.uses_data().then(|| {
            let n = data.train.len();
            let order = crate::rng::permutation(&mut crate::rng::stream(cfg.seed, crate::rng::Stream::Prune, u64::MAX), n);
            let take = cfg.examples.min(n);
            data.train.select(&tch::Tensor::from_slice(&order[..take]))
        });
        let report = prune_at_init(&*model.model, cfg, batch.as_ref())?;
        model.model.compact_sparse_layers()?;
        model.lineage.steps.push(Transform::Masks { how });
        Ok(report)
    }

    /// [`Error::Interrupted`] when Ctrl-C or a notebook interrupt asked to stop.
    ///
    /// # Errors
    /// As said.
    pub fn interrupted(&self) -> Result<()> {
        if crate::cancel::requested() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MlpConfig;

    /// One fixed spec: the report's MLP trained with the default settings on the
    /// bundled subset, whose identity ([`dataset_identity`]) names its four files by
    /// their fixed SHA-256. Its canonical JSON and key are pinned, so a change in what a
    /// config serialises (a renamed field, a new default) cannot silently re-key every
    /// stored run. The key was computed independently of Rust:
    /// `python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:32])' "$CANONICAL"`.
    #[test]
    fn the_key_of_a_fixed_spec_is_pinned() {
        let bundled = Dataset::load(&crate::data::DatasetConfig::new("fashion-mnist").with_subset(crate::data::Subset::Bundled)).unwrap();
        let data = dataset_identity(&bundled);
        let model = Lineage::new(json!({ "mlp": MlpConfig::new(784, 10, 4, 788) })).then(Transform::Run { key: "0123456789abcdef0123456789abcdef".into() });
        let spec = RunSpec { kind: "train", data, model, train: train_identity(&TrainConfig::default()), method: Value::Null };
        let canonical = serde_json::to_string(&json!({ "schema": crate::results::SCHEMA_VERSION, "spec": spec.json() })).unwrap();
        assert_eq!(canonical, CANONICAL);
        assert_eq!(spec.key(), KEY);
    }

    const CANONICAL: &str = r#"{"schema":2,"spec":{"data":{"classes":10,"files":[{"file":"t10k-images-idx3-ubyte.gz","sha256":"1d883f3966f98d7fc5011e0ff22f6e190d3b994ad0583bfd53c4b120eb39f754"},{"file":"t10k-labels-idx1-ubyte.gz","sha256":"4f81dd80fbbee90c38545ee999e120b1c191bf127f0aa516f21ef7e023d316a9"},{"file":"train-images-idx3-ubyte.gz","sha256":"8cdd6eb3db9f71d038db812672f156fd89a164a94f767144b5586d415d3cfa4f"},{"file":"train-labels-idx1-ubyte.gz","sha256":"ad10c5b63cc571a1b1e3466e319c5712cf94438f98643f47a64c2239b56ea625"}],"name":"fashion-mnist","norm":[[0.286914941,0.353779272]],"shape":[1,28,28],"source":"bundled","test":1000,"train":6000},"kind":"train","model":{"init":{"mlp":{"activation":"relu","batch_norm":false,"bias":true,"classes":10,"densities":{"Uniform":1.0},"depth":4,"dropout":0.0,"fans":null,"input":784,"seed":0,"skip":false,"width":788}},"steps":[{"key":"0123456789abcdef0123456789abcdef","op":"run"}]},"train":{"augment":false,"batch_size":128,"epochs":10,"grad_flow":null,"optimizer":{"alpha":0.99,"betas":[0.9,0.999],"eps":null,"kind":"Sgd","l2":0.0,"lr":0.01,"momentum":null,"weight_decay":0.0},"schedule":"Constant","seed":0}}}"#;
    const KEY: &str = "959c6c3f5e451a2c8436ca5216569c20";
}
