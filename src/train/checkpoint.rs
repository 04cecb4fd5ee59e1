//! Checkpoints within a run: every `k` epochs, every `secs` seconds (at an epoch's
//! end) and when a stop is requested (Ctrl-C, or SIGTERM, which Slurm sends before a
//! time limit or preemption), the training loop saves everything its remaining
//! epochs depend on: the model's tensors (weights, masks, statistics), the
//! optimizer's or fused step's state, the position in the data order, the epoch's
//! running sums, the mask schedule's state and the results so far. Randomness needs
//! no state: data order and augmentation are drawn per epoch from the run's seed, and
//! libtorch's generator (dropout) is reseeded from the seed before every step. A
//! rerun that finds a checkpoint continues from it and ends bit-identical (on the
//! CPU) to a run that was never stopped.
//!
//! A checkpoint is one safetensors file (the metadata rides along as a byte
//! tensor), written through a temp file and a rename: a kill -9 while writing leaves
//! the previous checkpoint. Checkpoints are kept in `<store>/checkpoints/` under the
//! run's key and removed when the run's record is written. The run session says where
//! (a [`scope`] around each run); the loop asks with [`next`].
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// When runs checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointPolicy {
    /// `<store>/checkpoints`.
    pub dir: PathBuf,
    /// Every this many epochs (0: only by time and on stop).
    pub every_epochs: usize,
    /// At the first epoch end this many seconds after the run (or its last
    /// checkpoint) started; infinite: never by time.
    pub every_secs: f64,
}

impl CheckpointPolicy {
    /// Default policy for a store at `store_dir`: by time (every 5 minutes) and on stop.
    pub fn for_store(store_dir: &Path) -> Self {
        CheckpointPolicy { dir: store_dir.join("checkpoints"), every_epochs: 0, every_secs: 300.0 }
    }

    /// Whether a checkpoint is due after `epochs_done` epochs, `since` seconds after the last one.
    pub(crate) fn due(&self, epochs_done: usize, since: f64) -> bool {
        (self.every_epochs > 0 && epochs_done.is_multiple_of(self.every_epochs)) || since >= self.every_secs
    }

    /// Removes every checkpoint of the run `key` (its record is written).
    pub fn remove(&self, key: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let prefix = format!("{key}.");
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

struct Scope {
    policy: CheckpointPolicy,
    key: String,
    calls: usize,
}

thread_local! {
    static SCOPE: RefCell<Vec<Scope>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with training loops on this thread checkpointing as run `key` under
/// `policy` (none: no checkpoints). The n-th training loop inside `f` (a run may
/// train in phases) uses checkpoint `<key>.<n>.ckpt`.
pub fn scope<T>(policy: Option<&CheckpointPolicy>, key: &str, f: impl FnOnce() -> T) -> T {
    let Some(policy) = policy else { return f() };
    SCOPE.with(|s| s.borrow_mut().push(Scope { policy: policy.clone(), key: key.to_string(), calls: 0 }));
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SCOPE.with(|s| s.borrow_mut().pop());
        }
    }
    let _pop = Pop;
    f()
}

/// Where the training loop about to start checkpoints, if anywhere.
pub(crate) fn next() -> Option<(PathBuf, CheckpointPolicy)> {
    SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let top = s.last_mut()?;
        let path = top.policy.dir.join(format!("{}.{}.ckpt", top.key, top.calls));
        top.calls += 1;
        Some((path, top.policy.clone()))
    })
}

/// What the loop saves besides tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// File layout version.
    pub version: u32,
    /// What this checkpoint belongs to: the trainee's label, member seeds and the
    /// training settings; a checkpoint of anything else is ignored.
    pub identity: serde_json::Value,
    /// The epoch to continue in and the batch to continue with.
    pub epoch: usize,
    pub batch: usize,
    /// Steps done.
    pub step: usize,
    /// Per member: the results so far.
    pub out: Vec<super::RunResult>,
    pub live: Vec<bool>,
    pub flops: Vec<[f64; 3]>,
    /// Seconds trained before this checkpoint, and within the epoch it is in.
    pub seconds: f64,
    pub epoch_seconds: f64,
    /// The mask schedule's state, when there is one.
    pub masker: Option<serde_json::Value>,
    /// The optimizer's step count.
    pub opt_t: i32,
}

/// Version of the checkpoint layout.
pub(crate) const VERSION: u32 = 1;

/// Writes `tensors` and `meta` to `path` atomically (temp file, fsync, rename).
pub(crate) fn save(path: &Path, meta: &Meta, tensors: &[(String, Tensor)]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let json = serde_json::to_vec(meta).map_err(|e| Error::data(path, e.to_string()))?;
    let mut all: Vec<(String, Tensor)> = tensors.iter().map(|(n, t)| (n.clone(), t.detach().to_device(tch::Device::Cpu).contiguous())).collect();
    all.push(("__meta__".into(), Tensor::from_slice(&json)));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    crate::results::write_durably(dir, &name, |tmp| Tensor::write_safetensors(&all, tmp).map_err(|e| Error::data(tmp, crate::error::first_line(&e.to_string()))))
}

/// Reads a checkpoint: its metadata and tensors by name. `None` when there is none
/// or it cannot be read (a checkpoint is an optimisation: the run starts over).
pub(crate) fn load(path: &Path) -> Option<(Meta, std::collections::HashMap<String, Tensor>)> {
    if !path.exists() {
        return None;
    }
    let read = || -> std::result::Result<_, String> {
        let mut named: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path).map_err(|e| e.to_string())?.into_iter().collect();
        let meta = named.remove("__meta__").ok_or("no metadata")?;
        let bytes = Vec::<u8>::try_from(&meta).map_err(|e| e.to_string())?;
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        Ok((meta, named))
    };
    match read() {
        Ok(r) if r.0.version == VERSION => Some(r),
        Ok(_) => None,
        Err(e) => {
            crate::log::line(&format!("warning: checkpoint {} is unreadable ({e}); starting the run over", path.display()));
            None
        }
    }
}

/// Copies `saved[name]` into each of `into` (same shapes), or says which is missing.
pub(crate) fn restore(path: &Path, into: &[(String, Tensor)], saved: &std::collections::HashMap<String, Tensor>) -> Result<()> {
    let _guard = tch::no_grad_guard();
    for (name, t) in into {
        let s = saved.get(name).ok_or_else(|| Error::data(path, format!("checkpoint has no tensor {name:?}")))?;
        if s.size() != t.size() {
            return Err(Error::data(path, format!("checkpoint tensor {name:?} has shape {:?}, the run's {:?}", s.size(), t.size())));
        }
        t.shallow_clone().f_copy_(s)?;
    }
    Ok(())
}
