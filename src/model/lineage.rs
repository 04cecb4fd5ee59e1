//! What a model is, for run identities: the configuration it was built from and
//! every transform applied since (a training run with its store key, a load with the
//! file's content hash, new masks with their settings). Two models with equal
//! lineages hold the same weights; a run is reused only for a model whose lineage
//! equals the stored run's (STYLE rule 9).
use super::Model;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;

/// One change to a model after it was built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Transform {
    /// Trained (or pruned and trained) by the finished run with this store key.
    Run {
        /// The run's key.
        key: String,
    },
    /// Weights, masks and statistics replaced from a file with this content hash.
    Load {
        /// SHA-256 of the file, hex.
        sha256: String,
    },
    /// Masks replaced, with the settings that chose them.
    Masks {
        /// How (e.g. `{"method": "magnitude", "density": 0.1, "scope": "layer"}`).
        how: Value,
    },
    /// Changed in a way no record can reproduce (an interrupted or `check` run):
    /// the unique `id` makes every later run of this model new.
    Untracked {
        /// What happened.
        what: String,
        /// Unique per process and event.
        id: String,
    },
}

/// How a model came to be what it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The configuration it was built from, e.g. `{"mlp": {...}}`.
    pub init: Value,
    /// Transforms since, in order.
    pub steps: Vec<Transform>,
}

impl Lineage {
    /// A model built from `init` and not changed since.
    pub fn new(init: Value) -> Self {
        Lineage { init, steps: vec![] }
    }

    /// This lineage followed by `t`.
    pub fn then(&self, t: Transform) -> Self {
        let mut l = self.clone();
        l.steps.push(t);
        l
    }

    /// An [`Transform::Untracked`] step: unique within this process and across processes.
    pub fn untracked(what: &str) -> Transform {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        Transform::Untracked { what: what.into(), id: format!("{}-{}-{t}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)) }
    }
}

/// A model with its lineage: what scripts and sessions pass around.
pub struct Tracked {
    /// The model.
    pub model: Box<dyn Model>,
    /// How it came to be.
    pub lineage: Lineage,
    /// Its weights belong to a run of another shard (`--shard`) that this process
    /// skipped: runs that continue from it are skipped too, never trained from
    /// the untrained weights.
    pub elsewhere: bool,
}

impl Tracked {
    /// A freshly built model.
    pub fn new(model: impl Model + 'static, init: Value) -> Self {
        Tracked { model: Box::new(model), lineage: Lineage::new(init), elsewhere: false }
    }

    /// A boxed model with a known lineage.
    pub fn with_lineage(model: Box<dyn Model>, lineage: Lineage) -> Self {
        Tracked { model, lineage, elsewhere: false }
    }

    /// Loads weights, masks and statistics from `path` and records the file's hash.
    ///
    /// # Errors
    /// An unreadable file, or one saved from a model of another shape (naming the tensor and both shapes).
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.model.load(path)?;
        self.lineage.steps.push(Transform::Load { sha256: format!("{:x}", Sha256::digest(&bytes)) });
        self.elsewhere = false;
        Ok(())
    }
}
