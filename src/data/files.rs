//! The identity of data files: the SHA-256 of every file a dataset was read from,
//! cached by path, size and modification time so a rerun does not hash again.
//!
//! The cache is one JSON file, `$XDG_CACHE_HOME/sparselab/data-hashes.json` (or
//! `~/.cache/sparselab/...`; `SPARSELAB_CACHE` names another folder), replaced
//! atomically; concurrent writers can only lose entries, which are then hashed again.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One file a dataset was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Its name (no folder: the same files elsewhere are the same data).
    pub file: String,
    /// SHA-256 of its bytes as stored (compressed files hashed compressed).
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The files of the bundled Fashion-MNIST subset, with their fixed hashes (a test
/// checks them against the embedded bytes).
pub const BUNDLED: [DataFileConst; 4] = [
    DataFileConst { file: "t10k-images-idx3-ubyte.gz", sha256: "1d883f3966f98d7fc5011e0ff22f6e190d3b994ad0583bfd53c4b120eb39f754", bytes: 436_247 },
    DataFileConst { file: "t10k-labels-idx1-ubyte.gz", sha256: "4f81dd80fbbee90c38545ee999e120b1c191bf127f0aa516f21ef7e023d316a9", bytes: 519 },
    DataFileConst { file: "train-images-idx3-ubyte.gz", sha256: "8cdd6eb3db9f71d038db812672f156fd89a164a94f767144b5586d415d3cfa4f", bytes: 2_615_845 },
    DataFileConst { file: "train-labels-idx1-ubyte.gz", sha256: "ad10c5b63cc571a1b1e3466e319c5712cf94438f98643f47a64c2239b56ea625", bytes: 3_078 },
];

/// A [`DataFile`] known at compile time.
#[derive(Clone, Copy, Debug)]
pub struct DataFileConst {
    /// Its name.
    pub file: &'static str,
    /// SHA-256 of its bytes.
    pub sha256: &'static str,
    /// Its size in bytes.
    pub bytes: u64,
}

impl DataFileConst {
    /// As a [`DataFile`].
    pub fn to_file(self) -> DataFile {
        DataFile { file: self.file.to_string(), sha256: self.sha256.to_string(), bytes: self.bytes }
    }
}

/// The SHA-256 of `bytes` in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Reads `path` and names it with its hash (from the cache when the path, size and
/// modification time match an entry).
pub(crate) fn read(path: &Path) -> Result<(Vec<u8>, DataFile)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let file = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let sha256 = hashed(path, &meta, &bytes);
    Ok((bytes, DataFile { file, sha256, bytes: meta.len() }))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Entry {
    bytes: u64,
    mtime_ns: u128,
    sha256: String,
}

static CACHE: Mutex<Option<BTreeMap<String, Entry>>> = Mutex::new(None);

/// The folder of the hash cache: `SPARSELAB_CACHE`, else `$XDG_CACHE_HOME/sparselab`,
/// else `~/.cache/sparselab` (`None` when none is known).
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("SPARSELAB_CACHE") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("sparselab"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("sparselab"))
}

const CACHE_FILE: &str = "data-hashes.json";

/// The cache as written in `dir` (empty when missing or unreadable).
fn read_cache(dir: &Path) -> BTreeMap<String, Entry> {
    std::fs::read_to_string(dir.join(CACHE_FILE)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn hashed(path: &Path, meta: &std::fs::Metadata, bytes: &[u8]) -> String {
    let name = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
    let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let dir = cache_dir();
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(|| dir.as_deref().map(read_cache).unwrap_or_default());
    if let Some(e) = cache.get(&name) {
        if e.bytes == meta.len() && e.mtime_ns == mtime_ns && mtime_ns != 0 {
            return e.sha256.clone();
        }
    }
    let sha256 = sha256_hex(bytes);
    cache.insert(name, Entry { bytes: meta.len(), mtime_ns, sha256: sha256.clone() });
    if let Some(d) = dir {
        // Entries of other processes written meanwhile are kept.
        let mut merged = read_cache(&d);
        merged.extend(cache.iter().map(|(k, v)| (k.clone(), v.clone())));
        let text = serde_json::to_string(&merged).unwrap_or_default();
        if std::fs::create_dir_all(&d).is_ok() {
            // A cache that cannot be written only costs hashing again.
            let _ = crate::results::write_durably(&d, CACHE_FILE, |p| std::fs::write(p, &text).map_err(|e| Error::io(p, e)));
        }
    }
    sha256
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed hashes of the bundled subset are the embedded files' (sha256sum of
    /// `data/fashion-mnist-subset/*.gz`).
    #[test]
    fn bundled_hashes_are_the_embedded_files() {
        for f in BUNDLED {
            let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-subset").join(f.file)).unwrap();
            assert_eq!(bytes.len() as u64, f.bytes, "{}", f.file);
            assert_eq!(sha256_hex(&bytes), f.sha256, "{}", f.file);
        }
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
