//! Datasets as tensors: Fashion-MNIST/MNIST (IDX), CIFAR-10/100 (binary), a bundled
//! real Fashion-MNIST subset, and a seeded synthetic set (SPEC 9).
//!
//! ```no_run
//! use sparselab::data::{DatasetConfig, Dataset};
//! let data = Dataset::load(&DatasetConfig::new("fashion-mnist"))?;
//! println!("{data}");
//! # Ok::<(), sparselab::Error>(())
//! ```
mod augment;
mod cifar;
mod files;
mod idx;
mod synthetic;

pub use augment::{augment_draws, crop_flip};
pub use files::{cache_dir as hash_cache_dir, sha256_hex, DataFile, DataFileConst, BUNDLED};
pub use synthetic::SyntheticConfig;

use crate::error::{Error, Result};
use crate::registry;
use std::fmt;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Names [`Dataset::load`] understands.
pub const DATASETS: &[&str] = &["fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic"];

/// Decoded images before standardisation: bytes `[N, C, H, W]` and labels.
#[derive(Debug)]
pub(crate) struct Raw {
    pixels: Vec<u8>,
    labels: Vec<i64>,
    shape: [i64; 3],
    /// The files read, with their hashes.
    files: Vec<DataFile>,
}

/// Which files to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subset {
    /// The full files if found on the search path, else the bundled subset (Fashion-MNIST only).
    Auto,
    /// The full files; an error if they are missing.
    Full,
    /// The subset embedded in the binary (Fashion-MNIST only).
    Bundled,
}

impl Subset {
    /// Parses `auto`, `full` or `bundled`.
    pub fn parse(s: &str) -> Result<Self> {
        const NAMES: &[&str] = &["auto", "full", "bundled"];
        Ok([Subset::Auto, Subset::Full, Subset::Bundled][registry::lookup("subset", s, NAMES)?])
    }
}

/// What to load. Built with [`DatasetConfig::new`] and `with_*` setters.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetConfig {
    /// One of [`DATASETS`].
    pub name: String,
    /// Full files, bundled subset, or whichever is available.
    pub subset: Subset,
    /// A directory to search before the standard path.
    pub root: Option<PathBuf>,
    /// Keep only the first `n` training examples (after loading), for quick experiments.
    pub train_limit: Option<usize>,
    /// Settings for `synthetic`.
    pub synthetic: SyntheticConfig,
}

impl DatasetConfig {
    /// Defaults for `name`.
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), subset: Subset::Auto, root: None, train_limit: None, synthetic: SyntheticConfig::default() }
    }
    /// Chooses full files or the bundled subset.
    pub fn with_subset(mut self, subset: Subset) -> Self {
        self.subset = subset;
        self
    }
    /// Searches `dir` first.
    pub fn with_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.root = Some(dir.into());
        self
    }
    /// Keeps the first `n` training examples.
    pub fn with_train_limit(mut self, n: usize) -> Self {
        self.train_limit = Some(n);
        self
    }
}

/// One split: standardised inputs and labels.
#[derive(Debug)]
pub struct Split {
    /// `[N, C, H, W]` float32, standardised per channel with training statistics.
    pub x: Tensor,
    /// `[N]` int64 class indices.
    pub y: Tensor,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.size()[0] as usize
    }
    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The same split on `device` (no copy when already there).
    pub fn to_device(&self, device: Device) -> Split {
        Split { x: self.x.to_device(device), y: self.y.to_device(device) }
    }
    /// Examples `idx` (a 1-D int64 tensor on the split's device).
    pub fn select(&self, idx: &Tensor) -> Split {
        Split { x: self.x.index_select(0, idx), y: self.y.index_select(0, idx) }
    }
}

/// A loaded dataset.
#[derive(Debug)]
pub struct Dataset {
    /// Canonical name, e.g. `fashion-mnist`.
    pub name: String,
    /// Where it came from: a directory, `bundled`, or `synthetic(seed)`.
    pub source: String,
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Number of classes.
    pub classes: usize,
    /// Input shape `[C, H, W]`.
    pub shape: [i64; 3],
    /// Per-channel mean and std used for standardisation (of pixels in [0, 1]).
    pub norm: Vec<(f64, f64)>,
    /// The files it was read from with their SHA-256, by name (none for `synthetic`;
    /// the bundled subset's are fixed, [`BUNDLED`]). Part of every run's identity.
    pub files: Vec<DataFile>,
}

impl Dataset {
    /// Loads a dataset from the search path (or the bundled subset / generator).
    ///
    /// # Errors
    /// Unknown names (listing the valid ones), missing files (listing where it looked
    /// and how to get them), and malformed files (naming the file and the defect).
    pub fn load(cfg: &DatasetConfig) -> Result<Dataset> {
        let name = DATASETS[registry::lookup("dataset", &cfg.name, DATASETS)?];
        let (train, test, source) = match name {
            "synthetic" => {
                cfg.synthetic.validate()?;
                let (tr, te) = synthetic::generate(&cfg.synthetic);
                (tr, te, format!("synthetic(seed {})", cfg.synthetic.seed))
            }
            _ => load_files(name, cfg)?,
        };
        let classes = if name == "cifar100" {
            100
        } else if name == "synthetic" {
            cfg.synthetic.classes
        } else {
            10
        };
        if cfg.train_limit == Some(0) {
            return Err(Error::config("train_limit", "0 must be >= 1"));
        }
        let mut ds = standardise(name, source, train, test, classes)?;
        if let Some(n) = cfg.train_limit {
            let n = n.min(ds.train.len()) as i64;
            ds.train = Split { x: ds.train.x.narrow(0, 0, n), y: ds.train.y.narrow(0, 0, n) };
        }
        Ok(ds)
    }

    /// Number of input features when flattened (`C * H * W`).
    pub fn input_size(&self) -> i64 {
        self.shape.iter().product()
    }

    /// Examples [`Dataset::validation_split`] holds out for `fraction`, checked
    /// without splitting anything.
    ///
    /// # Errors
    /// A fraction outside (0, 1), or one that leaves fewer validation examples than
    /// classes or nothing to train on.
    pub fn validation_size(&self, fraction: f64) -> Result<usize> {
        if !(0.0..1.0).contains(&fraction) || fraction == 0.0 {
            return Err(Error::config("validation", format!("{fraction} must be in (0, 1)")));
        }
        let n = self.train.len();
        let n_val = ((n as f64) * fraction).round() as usize;
        if n_val < self.classes || n_val >= n {
            return Err(Error::config("validation", format!("{fraction} of {n} training examples leaves {n_val} for validation and {} for training; scoring needs at least {} validation examples (one per class) and one to train on: use a larger fraction or more data", n.saturating_sub(n_val), self.classes)));
        }
        Ok(n_val)
    }

    /// Splits off the last `fraction` of a seeded shuffle of the training set as a
    /// validation set: returns (train, validation). The test set is untouched.
    pub fn validation_split(&self, fraction: f64, seed: u64) -> Result<(Split, Split)> {
        let (n, n_val) = (self.train.len(), self.validation_size(fraction)?);
        let perm = crate::rng::permutation(&mut crate::rng::stream(seed, crate::rng::Stream::Split, 1), n);
        let perm = Tensor::from_slice(&perm).to_device(self.train.x.device());
        let tr = self.train.select(&perm.narrow(0, 0, (n - n_val) as i64));
        let va = self.train.select(&perm.narrow(0, (n - n_val) as i64, n_val as i64));
        Ok((tr, va))
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [c, h, w] = self.shape;
        write!(f, "{}: {} train / {} test, {c}x{h}x{w}, {} classes (from {})", self.name, self.train.len(), self.test.len(), self.classes, self.source)
    }
}

/// Directories searched for `name`, in order: `$SPARSELAB_DATA/<name>`,
/// `./data/<name>`, `/usr/share/datasets/<name>` (plus `root/<name>` and `root` first when given).
pub fn search_path(name: &str, root: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(r) = root {
        dirs.push(r.join(name));
        dirs.push(r.to_path_buf());
    }
    if let Some(d) = std::env::var_os("SPARSELAB_DATA") {
        dirs.push(PathBuf::from(d).join(name));
    }
    dirs.push(PathBuf::from("data").join(name));
    dirs.push(PathBuf::from("/usr/share/datasets").join(name));
    // The archives' own folder names, so an extracted tarball works as is.
    let extra = match name {
        "cifar10" => Some("cifar-10-batches-bin"),
        "cifar100" => Some("cifar-100-binary"),
        _ => None,
    };
    if let Some(e) = extra {
        let more: Vec<PathBuf> = dirs.iter().map(|d| d.join(e)).collect();
        dirs.extend(more);
    }
    dirs
}

fn marker(name: &str) -> &'static [&'static str] {
    match name {
        "cifar10" => &["test_batch.bin"],
        "cifar100" => &["test.bin"],
        _ => &["t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"],
    }
}

fn load_files(name: &str, cfg: &DatasetConfig) -> Result<(Raw, Raw, String)> {
    if cfg.subset == Subset::Bundled {
        return bundled(name);
    }
    let dirs = search_path(name, cfg.root.as_deref());
    let found = dirs.iter().find(|d| marker(name).iter().any(|m| d.join(m).is_file()));
    let Some(dir) = found else {
        if cfg.subset == Subset::Auto && name == "fashion-mnist" {
            return bundled(name);
        }
        return Err(Error::DatasetNotFound { name: name.to_string(), searched: dirs.iter().map(|d| format!("  {}", d.display())).collect::<Vec<_>>().join("\n"), how: how_to_get(name).to_string() });
    };
    let (train, test) = match name {
        "cifar10" => (cifar::read_cifar10(dir, true)?, cifar::read_cifar10(dir, false)?),
        "cifar100" => (cifar::read_cifar100(dir, true)?, cifar::read_cifar100(dir, false)?),
        _ => (idx::read_split(dir, "train", 10)?, idx::read_split(dir, "t10k", 10)?),
    };
    Ok((train, test, dir.display().to_string()))
}

fn how_to_get(name: &str) -> &'static str {
    match name {
        "fashion-mnist" => {
            "Get it with `apt-get install dataset-fashion-mnist` (Debian), or put the four IDX files \
             (train-images-idx3-ubyte.gz, ...) in $SPARSELAB_DATA/fashion-mnist; \
             `subset: \"bundled\"` uses the 6,000-image subset shipped with sparselab."
        }
        "mnist" => {
            "Put the four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], \
             t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) in $SPARSELAB_DATA/mnist."
        }
        "cifar10" => {
            "Extract the binary version (cifar-10-binary.tar.gz: data_batch_1..5.bin, test_batch.bin) \
             into $SPARSELAB_DATA/cifar10."
        }
        _ => "Extract the binary version (cifar-100-binary.tar.gz: train.bin, test.bin) into $SPARSELAB_DATA/cifar100.",
    }
}

fn bundled(name: &str) -> Result<(Raw, Raw, String)> {
    if name != "fashion-mnist" {
        return Err(Error::config("subset", format!("\"bundled\" exists only for fashion-mnist, not {name:?}")));
    }
    macro_rules! file {
        ($f:literal) => {
            (Path::new(concat!("bundled/", $f)), &include_bytes!(concat!("../../data/fashion-mnist-subset/", $f))[..])
        };
    }
    let file = |name: &str| BUNDLED.iter().find(|f| f.file == name).map(|f| f.to_file());
    let split = |(ip, ib): (&Path, &[u8]), (lp, lb): (&Path, &[u8])| -> Result<Raw> {
        let mut raw = idx::parse(ip, &idx::gunzip(ip, ib)?, lp, &idx::gunzip(lp, lb)?, 10)?;
        raw.files = [ip, lp].iter().filter_map(|p| file(&p.file_name()?.to_string_lossy())).collect();
        Ok(raw)
    };
    let train = split(file!("train-images-idx3-ubyte.gz"), file!("train-labels-idx1-ubyte.gz"))?;
    let test = split(file!("t10k-images-idx3-ubyte.gz"), file!("t10k-labels-idx1-ubyte.gz"))?;
    Ok((train, test, "bundled".to_string()))
}

/// Pixels / 255, then per-channel standardisation with the training set's statistics.
fn standardise(name: &str, source: String, train: Raw, test: Raw, classes: usize) -> Result<Dataset> {
    if train.shape != test.shape {
        return Err(Error::Shape(format!("{name}: train images {:?} != test images {:?}", train.shape, test.shape)));
    }
    let shape = train.shape;
    let to_x = |r: &Raw| -> Tensor {
        let n = r.labels.len() as i64;
        Tensor::from_slice(&r.pixels).view([n, shape[0], shape[1], shape[2]]).to_kind(Kind::Float) / 255.0
    };
    let (mut xtr, mut xte) = (to_x(&train), to_x(&test));
    let mut files: Vec<DataFile> = train.files.iter().chain(&test.files).cloned().collect();
    files.sort_by(|a, b| a.file.cmp(&b.file));
    files.dedup();
    let c = shape[0];
    let per_channel = xtr.transpose(0, 1).reshape([c, -1]).to_kind(Kind::Double);
    let mean = per_channel.mean_dim(1, false, Kind::Double);
    let std = per_channel.std_dim(1, false, false);
    let norm: Vec<(f64, f64)> = (0..c).map(|i| (mean.double_value(&[i]), std.double_value(&[i]).max(1e-12))).collect();
    let m = Tensor::from_slice(&norm.iter().map(|p| p.0 as f32).collect::<Vec<_>>()).view([1, c, 1, 1]);
    let s = Tensor::from_slice(&norm.iter().map(|p| p.1 as f32).collect::<Vec<_>>()).view([1, c, 1, 1]);
    xtr = (xtr - &m) / &s;
    xte = (xte - &m) / &s;
    Ok(Dataset {
        name: name.to_string(),
        source,
        train: Split { x: xtr, y: Tensor::from_slice(&train.labels) },
        test: Split { x: xte, y: Tensor::from_slice(&test.labels) },
        classes,
        shape,
        norm,
        files,
    })
}
