//! `sparselab pack RUN_DIR -o FILE` and `sparselab unpack FILE`: a study as one
//! `.tar.gz` whose index (`PACK.json`, the first entry) lists every file with its
//! SHA-256; unpacking checks each against it before the directory is used.
//!
//! Layout, inside the archive and after unpacking (a run directory):
//! ```text
//! PACK.json            index: script, --set values, modules, files with hashes
//! <script>.rhai        the script text that ran (its --set overrides applied)
//! <module>.rhai        every module it imported: stdlib modules as this binary has them,
//!                      the script's own modules as found beside it
//! manifest.json, manifests/*.json
//! store/FORMAT, store/<key>.json|.parquet[|.safetensors], store/data/*.json
//! ```
use super::manifest_of;
use crate::data::sha256_hex;
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The index file of a pack.
pub const PACK_INDEX: &str = "PACK.json";
const PACK_FORMAT: u64 = 1;

/// What to put in a pack.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// Include the runs' weights (`<key>.safetensors`). Without them a rerun reuses
    /// every record whose model nothing later needs; runs whose trained model is used
    /// again (pruning it, printing it) train again.
    pub weights: bool,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions { weights: true }
    }
}

/// A written pack.
#[derive(Clone, Debug, Serialize)]
pub struct Packed {
    /// The archive.
    pub file: PathBuf,
    /// Files in it (the index not counted).
    pub files: usize,
    /// Their bytes, uncompressed.
    pub bytes: u64,
    /// Records.
    pub records: usize,
    /// Weight files.
    pub weights: usize,
    /// The modules the script imported.
    pub modules: Vec<String>,
    /// Modules whose text now differs from what the run used (by the manifest's hashes).
    pub warnings: Vec<String>,
}

/// An unpacked study.
#[derive(Clone, Debug, Serialize)]
pub struct Unpacked {
    /// The run directory it became.
    pub dir: PathBuf,
    /// The script inside it.
    pub script: PathBuf,
    /// The `--set` values it was run with (already applied in the script's text).
    pub sets: Vec<String>,
    /// Files checked against their hashes.
    pub files: usize,
    /// Records.
    pub records: usize,
}

/// Packs the run directory `dir` into `out` (`.tar.gz`).
///
/// # Errors
/// A directory without a manifest; a module the script imports that cannot be found;
/// unreadable files; an unwritable `out`.
pub fn pack(dir: &Path, out: &Path, opts: &PackOptions) -> Result<Packed> {
    let manifest = manifest_of(dir)?;
    let text = manifest["script_text"].as_str().ok_or_else(|| Error::config("manifest", format!("{} records no script text (written by an older sparselab)", dir.display())))?;
    let script_path = PathBuf::from(manifest["script"].as_str().unwrap_or("script.rhai"));
    let script_name = script_path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "script.rhai".into());
    let script_dir = script_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut entries: Vec<(String, Vec<u8>)> = vec![(script_name.clone(), text.as_bytes().to_vec())];
    let modules = modules(text, &script_dir)?;
    let mut warnings = Vec::new();
    for (name, body) in &modules {
        let used = manifest["modules"].as_array().and_then(|a| a.iter().find(|m| m["name"] == name.as_str())).and_then(|m| m["sha256"].as_str());
        if let Some(h) = used.filter(|h| *h != sha256_hex(body.as_bytes())) {
            warnings.push(format!(
                "module {name}: the text packed (sha256 {}) is not the text the run used ({}): records made with the old text may not reproduce",
                &sha256_hex(body.as_bytes())[..12],
                &h[..h.len().min(12)]
            ));
        }
        if format!("{name}.rhai") == script_name {
            return Err(Error::config("pack", format!("module {name:?} has the script's own file name {script_name}")));
        }
        entries.push((format!("{name}.rhai"), body.as_bytes().to_vec()));
    }
    let mut add = |rel: &str| -> Result<()> {
        let p = dir.join(rel);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        entries.push((rel.to_string(), bytes));
        Ok(())
    };
    for f in ["manifest.json", crate::cluster::PLAN_FILE] {
        if dir.join(f).is_file() {
            add(f)?;
        }
    }
    let listed = |sub: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(sub))
            .map(|r| r.flatten().filter(|e| e.path().is_file()).map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| !n.starts_with('.')).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    for n in listed(crate::script::MANIFESTS) {
        add(&format!("{}/{n}", crate::script::MANIFESTS))?;
    }
    let (mut records, mut weights) = (0, 0);
    for n in listed("store") {
        let keep = n == "FORMAT" || n.ends_with(".json") || n.ends_with(".parquet") || (opts.weights && n.ends_with(".safetensors"));
        if !keep {
            continue;
        }
        records += usize::from(n.ends_with(".parquet"));
        weights += usize::from(n.ends_with(".safetensors"));
        add(&format!("store/{n}"))?;
    }
    for n in listed(&format!("store/{}", crate::results::DATA_DIR)) {
        add(&format!("store/{}/{n}", crate::results::DATA_DIR))?;
    }
    let files: Vec<Value> = entries.iter().map(|(p, b)| json!({ "path": p, "sha256": sha256_hex(b), "bytes": b.len() })).collect();
    let index = json!({
        "format": PACK_FORMAT,
        "sparselab": crate::version(),
        "libtorch": crate::libtorch_version(),
        "created": crate::log::utc_now(),
        "script": script_name,
        "sets": manifest["sets"],
        "modules": modules.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "weights": opts.weights,
        "files": files,
    });
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).ok_or_else(|| Error::config("-o", format!("{} is not a file name", out.display())))?;
    let bytes: u64 = entries.iter().map(|(_, b)| b.len() as u64).sum();
    crate::results::write_durably(parent, &name, |tmp| {
        let f = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(f, flate2::Compression::default()));
        let mut put = |path: &str, body: &[u8]| -> std::io::Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, path, body)
        };
        let io = |e: std::io::Error| Error::io(tmp, e);
        put(PACK_INDEX, serde_json::to_string_pretty(&index).unwrap_or_default().as_bytes()).map_err(io)?;
        for (p, b) in &entries {
            put(p, b).map_err(io)?;
        }
        let gz = tar.into_inner().map_err(io)?;
        gz.finish().map_err(io)?.flush().map_err(io)
    })?;
    Ok(Packed { file: out.to_path_buf(), files: entries.len(), bytes, records, weights, modules: modules.into_iter().map(|(n, _)| n).collect(), warnings })
}

/// The modules `text` imports, with their text, recursively: a module found beside the
/// script is the script's own; otherwise the stdlib's as this binary has it.
pub(crate) fn modules(text: &str, script_dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut todo: Vec<String> = imports(text);
    while let Some(name) = todo.pop() {
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let own = script_dir.join(format!("{name}.rhai"));
        let body = if own.is_file() {
            std::fs::read_to_string(&own).map_err(|e| Error::io(&own, e))?
        } else if let Some((_, s)) = crate::script::STDLIB.iter().find(|(n, _)| *n == name) {
            s.to_string()
        } else {
            let stdlib: Vec<&str> = crate::script::STDLIB.iter().map(|(n, _)| *n).collect();
            return Err(Error::config("import", format!("module {name:?} is neither beside the script ({}) nor in the stdlib {stdlib:?}", own.display())));
        };
        todo.extend(imports(&body));
        out.push((name, body));
    }
    out.sort();
    Ok(out)
}

/// The string literals after `import` statements (comments skipped).
fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("import") {
            let before_ok = rest[..i].chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let after = rest[i + "import".len()..].trim_start();
            rest = &rest[i + "import".len()..];
            if !before_ok {
                continue;
            }
            if let Some(lit) = after.strip_prefix('"') {
                if let Some(end) = lit.find('"') {
                    let name = &lit[..end];
                    out.push(name.strip_suffix(".rhai").unwrap_or(name).to_string());
                }
            }
        }
    }
    out
}

/// Unpacks `file` into `dest` (default: the archive's name without `.tar.gz`), which
/// must not exist or be empty. Every file is checked against the index's SHA-256;
/// links, absolute paths and `..` are refused; on any failure nothing is left behind.
///
/// # Errors
/// A non-empty `dest`, an unreadable or corrupt archive, a hash mismatch, a file the
/// index does not list or a listed file that is missing.
pub fn unpack(file: &Path, dest: Option<&Path>) -> Result<Unpacked> {
    let dest = match dest {
        Some(d) => d.to_path_buf(),
        None => {
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let stem = [".tar.gz", ".tgz", ".tar"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name).to_string();
            file.with_file_name(if stem == name { format!("{stem}.study") } else { stem })
        }
    };
    if std::fs::read_dir(&dest).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::config("unpack", format!("{} exists and is not empty; unpack into a new directory (-o DIR)", dest.display())));
    }
    std::fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
    let result = unpack_into(file, &dest);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dest);
    }
    result
}

fn unpack_into(file: &Path, dest: &Path) -> Result<Unpacked> {
    let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let corrupt = |e: std::io::Error| Error::data(file, format!("not a readable sparselab pack: {e}"));
    let mut index: Option<Value> = None;
    let mut seen: Vec<(String, String)> = Vec::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        // `./store/x` (an archive re-made by hand) is `store/x`; folders are implied.
        let path: PathBuf = entry.path().map_err(corrupt)?.components().filter(|c| !matches!(c, Component::CurDir)).collect();
        let rel = path.to_string_lossy().to_string();
        if matches!(entry.header().entry_type(), tar::EntryType::Directory) || rel.is_empty() {
            continue;
        }
        if !matches!(entry.header().entry_type(), tar::EntryType::Regular) {
            return Err(Error::data(file, format!("{rel}: not a regular file (links and devices are refused)")));
        }
        if path.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(Error::data(file, format!("{rel}: absolute or outside the study (refused)")));
        }
        let mut body = Vec::new();
        entry.read_to_end(&mut body).map_err(corrupt)?;
        if rel == PACK_INDEX {
            index = Some(serde_json::from_slice(&body).map_err(|e| Error::data(file, format!("{PACK_INDEX}: {e}")))?);
            continue;
        }
        let target = dest.join(&path);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
        }
        std::fs::write(&target, &body).map_err(|e| Error::io(&target, e))?;
        seen.push((rel, sha256_hex(&body)));
    }
    let index = index.ok_or_else(|| Error::data(file, format!("no {PACK_INDEX}: not a sparselab pack")))?;
    if index["format"].as_u64() != Some(PACK_FORMAT) {
        return Err(Error::data(file, format!("pack format {} (this sparselab reads {PACK_FORMAT})", index["format"])));
    }
    let listed: Vec<(String, String)> =
        index["files"].as_array().map(|a| a.iter().map(|f| (f["path"].as_str().unwrap_or("").to_string(), f["sha256"].as_str().unwrap_or("").to_string())).collect()).unwrap_or_default();
    for (path, hash) in &listed {
        match seen.iter().find(|(p, _)| p == path) {
            None => return Err(Error::data(file, format!("{path} is listed in {PACK_INDEX} but missing from the archive"))),
            Some((_, h)) if h != hash => return Err(Error::data(file, format!("{path}: sha256 {h} does not match {hash} in {PACK_INDEX} (a damaged or altered pack)"))),
            _ => {}
        }
    }
    if let Some((p, _)) = seen.iter().find(|(p, _)| !listed.iter().any(|(l, _)| l == p)) {
        return Err(Error::data(file, format!("{p} is in the archive but not listed in {PACK_INDEX}")));
    }
    let script = dest.join(index["script"].as_str().unwrap_or("script.rhai"));
    let sets = index["sets"].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default();
    let records = listed.iter().filter(|(p, _)| p.starts_with("store/") && p.ends_with(".parquet")).count();
    Ok(Unpacked { dir: dest.to_path_buf(), script, sets, files: listed.len(), records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_found_outside_comments() {
        let text = "import \"report\" as r;\n// import \"nope\" as n;\nlet x = 1; import \"helpers.rhai\" as h;\nlet reimport = 2;";
        assert_eq!(imports(text), vec!["report".to_string(), "helpers".to_string()]);
    }
}
