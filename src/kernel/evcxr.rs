//! The stock evcxr Rust kernel, set up for sparselab (`sparselab kernel install --rust`).
//!
//! Compiled cells link libtorch, so the kernel needs libtorch's folder on
//! `LD_LIBRARY_PATH` (evcxr loads each cell with `dlopen`) and `LIBTORCH` for tch's
//! build script; and compiling sparselab and its dependencies inside evcxr takes many
//! minutes, so each session should not start from an empty build folder. The
//! kernelspec therefore starts `sparselab kernel rust`, which sets both variables and
//! points evcxr (`EVCXR_TMPDIR`) at a build folder that outlives the session, then
//! becomes `evcxr_jupyter`. Build folders are slots under
//! `~/.cache/sparselab/evcxr/`, each held by one session at a time (a lock), so two
//! notebooks never write the same crate: the first session in a slot compiles
//! everything, later ones only their cells.
use super::kernelspec::{kernel_dir_named, InstallTarget, LOGO_32, LOGO_64};
use std::io;
use std::path::{Path, PathBuf};

/// Name of the kernelspec (`jupyter kernelspec list` shows it).
pub const RUST_KERNEL_NAME: &str = "sparselab-rust";

/// Build-folder slots: this many Rust sessions can run at once.
pub const SLOTS: usize = 4;

/// The evcxr release this was checked with.
pub const EVCXR_VERSION: &str = "0.22.0";

/// Writes the kernelspec "Rust (sparselab)": `argv0 kernel rust --connection-file F`.
///
/// # Errors
/// Directory resolution or file writes failing.
pub fn install_rust(target: InstallTarget, argv0: &Path) -> io::Result<PathBuf> {
    let dir = kernel_dir_named(&target, RUST_KERNEL_NAME)?;
    std::fs::create_dir_all(&dir)?;
    let argv0 = std::fs::canonicalize(argv0).unwrap_or_else(|_| argv0.to_path_buf());
    let spec = serde_json::json!({
        "argv": [argv0.to_string_lossy(), "kernel", "rust", "--connection-file", "{connection_file}"],
        "display_name": "Rust (sparselab)",
        "language": "rust",
        "interrupt_mode": "message",
    });
    let text = serde_json::to_string_pretty(&spec).map_err(io::Error::other)?;
    std::fs::write(dir.join("kernel.json"), text + "\n")?;
    std::fs::write(dir.join("logo-32x32.png"), LOGO_32)?;
    std::fs::write(dir.join("logo-64x64.png"), LOGO_64)?;
    Ok(dir)
}

/// `evcxr_jupyter`: `$EVCXR_JUPYTER`, else on `PATH`, else in `~/.cargo/bin`.
///
/// # Errors
/// Not found: the message says how to install it.
pub fn find_evcxr() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("EVCXR_JUPYTER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).map(|d| d.join("evcxr_jupyter"));
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    on_path.chain(cargo_home.map(|c| c.join("bin").join("evcxr_jupyter"))).find(|p| p.is_file()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("evcxr_jupyter is not on PATH nor in ~/.cargo/bin (or $EVCXR_JUPYTER): install it with `cargo install evcxr_jupyter --version {EVCXR_VERSION} --locked` (about 10 minutes)"),
        )
    })
}

/// The libtorch folder this process runs on (the one holding `lib/libtorch_cpu.so`):
/// from the loaded library, else `$LIBTORCH`.
pub fn libtorch_dir() -> Option<PathBuf> {
    let loaded = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|maps| maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.ends_with("/libtorch_cpu.so")).and_then(|p| Path::new(p).parent()?.parent().map(Path::to_path_buf)));
    loaded.or_else(|| std::env::var_os("LIBTORCH").map(PathBuf::from)).map(|p| std::fs::canonicalize(&p).unwrap_or(p))
}

/// The build-folder root (`~/.cache/sparselab/evcxr`, or under `$SPARSELAB_CACHE`).
pub fn slots_dir() -> Option<PathBuf> {
    crate::data::hash_cache_dir().map(|c| c.join("evcxr"))
}

/// Takes the first free slot under `root`: its folder and the open lock file (the
/// slot is held while the file stays open, in this process or one it `exec`s).
///
/// # Errors
/// The folder cannot be made, or every slot is held.
pub fn take_slot(root: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    std::fs::create_dir_all(root)?;
    for k in 0..SLOTS {
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(root.join(format!("slot-{k}.lock")))?;
        match lock.try_lock() {
            Ok(()) => return Ok((root.join(format!("slot-{k}")), lock)),
            Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    Err(io::Error::other(format!("all {SLOTS} Rust-kernel build folders under {} are in use by other sessions; close one", root.display())))
}

/// The environment `evcxr_jupyter` gets: `LIBTORCH`, libtorch's `lib` first on
/// `LD_LIBRARY_PATH`, and `EVCXR_TMPDIR` (the slot).
pub fn environment(libtorch: &Path, slot: &Path) -> Vec<(String, String)> {
    let lib = libtorch.join("lib");
    let mut path = lib.to_string_lossy().to_string();
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|p| !p.is_empty()) {
        path = format!("{path}:{}", old.to_string_lossy());
    }
    vec![("LIBTORCH".into(), libtorch.to_string_lossy().to_string()), ("LD_LIBRARY_PATH".into(), path), ("EVCXR_TMPDIR".into(), slot.to_string_lossy().to_string())]
}

/// Becomes `evcxr_jupyter --control_file connection_file` with [`environment`], holding
/// a slot. Returns only on failure.
///
/// # Errors
/// evcxr or libtorch not found, no free slot, or the exec failing.
pub fn launch(connection_file: &Path) -> io::Result<std::convert::Infallible> {
    let evcxr = find_evcxr()?;
    let libtorch =
        libtorch_dir().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "cannot tell which libtorch this sparselab runs on: set LIBTORCH to its folder (the one with lib/libtorch_cpu.so)"))?;
    let root = slots_dir().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cache folder: set HOME or SPARSELAB_CACHE"))?;
    let (slot, lock) = take_slot(&root)?;
    std::fs::create_dir_all(&slot)?;
    eprintln!("sparselab: evcxr_jupyter {} with build folder {} and libtorch {}", evcxr.display(), slot.display(), libtorch.display());
    let mut cmd = std::process::Command::new(&evcxr);
    cmd.arg("--control_file").arg(connection_file).envs(environment(&libtorch, &slot));
    exec_holding(cmd, lock)
}

#[cfg(unix)]
fn exec_holding(mut cmd: std::process::Command, lock: std::fs::File) -> io::Result<std::convert::Infallible> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    extern "C" {
        fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    }
    const F_SETFD: i32 = 2;
    // SAFETY: clears FD_CLOEXEC on our own open descriptor, so the lock survives the
    // exec and is released when evcxr exits.
    if unsafe { fcntl(lock.as_raw_fd(), F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    let err = cmd.exec();
    drop(lock);
    Err(err)
}

#[cfg(not(unix))]
fn exec_holding(mut cmd: std::process::Command, lock: std::fs::File) -> io::Result<std::convert::Infallible> {
    let status = cmd.status()?;
    drop(lock);
    std::process::exit(status.code().unwrap_or(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_held_one_session_each_and_freed_on_close() {
        let root = std::env::temp_dir().join(format!("sparselab-slots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let held: Vec<_> = (0..SLOTS).map(|_| take_slot(&root).unwrap()).collect();
        let names: Vec<String> = held.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string()).collect();
        assert_eq!(names, (0..SLOTS).map(|k| format!("slot-{k}")).collect::<Vec<_>>());
        let err = take_slot(&root).unwrap_err().to_string();
        assert!(err.contains("are in use by other sessions"), "{err}");
        let mut held = held;
        let (freed, lock) = held.remove(1);
        drop(lock);
        assert_eq!(take_slot(&root).unwrap().0, freed, "a closed session's slot is taken again, with its build");
        drop(held);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_rust_kernelspec_starts_sparselab_kernel_rust() {
        let prefix = std::env::temp_dir().join(format!("sparselab-rust-kspec-{}", std::process::id()));
        let dir = install_rust(InstallTarget::Prefix(prefix.clone()), Path::new("/bin/sparselab")).unwrap();
        assert_eq!(dir, prefix.join("share/jupyter/kernels/sparselab-rust"));
        let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).unwrap()).unwrap();
        assert_eq!(spec["argv"], serde_json::json!(["/bin/sparselab", "kernel", "rust", "--connection-file", "{connection_file}"]));
        assert_eq!((spec["language"].as_str(), spec["interrupt_mode"].as_str()), (Some("rust"), Some("message")), "evcxr takes interrupts as messages");
        assert_eq!(crate::kernel::uninstall_named(InstallTarget::Prefix(prefix.clone()), RUST_KERNEL_NAME).unwrap(), Some(dir));
        let _ = std::fs::remove_dir_all(prefix);
    }

    #[test]
    fn evcxr_gets_libtorch_first_on_the_library_path_and_the_slot() {
        let env = environment(Path::new("/opt/torch"), Path::new("/c/slot-0"));
        assert_eq!(env[0], ("LIBTORCH".to_string(), "/opt/torch".to_string()));
        assert!(env[1].1.starts_with("/opt/torch/lib"), "{:?}", env[1]);
        assert_eq!(env[2], ("EVCXR_TMPDIR".to_string(), "/c/slot-0".to_string()));
    }

    #[test]
    fn the_loaded_libtorch_is_found() {
        let _ = tch::Tensor::from(1.0f32);
        let dir = libtorch_dir().expect("libtorch is loaded");
        assert!(dir.join("lib").join("libtorch_cpu.so").exists(), "{}", dir.display());
    }
}
