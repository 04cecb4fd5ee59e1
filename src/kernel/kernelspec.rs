//! Installing the `sparselab` kernelspec where `jupyter kernelspec` looks for it.
//!
//! ```no_run
//! use sparselab::kernel::{install, InstallTarget};
//! let dir = install(InstallTarget::User, &std::env::current_exe()?)?;
//! println!("installed {}", dir.display());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};

/// Name of the kernelspec directory (`jupyter kernelspec list` shows it).
pub const KERNEL_NAME: &str = "sparselab";

pub(crate) const LOGO_32: &[u8] = include_bytes!("../../assets/kernel/logo-32x32.png");
pub(crate) const LOGO_64: &[u8] = include_bytes!("../../assets/kernel/logo-64x64.png");

/// Where to install, as `jupyter kernelspec install --user | --sys-prefix | --prefix P`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallTarget {
    /// The user's Jupyter data dir: `$JUPYTER_DATA_DIR`, else `~/.local/share/jupyter`
    /// (`$XDG_DATA_HOME/jupyter`), `~/Library/Jupyter` on macOS, `%APPDATA%\jupyter` on Windows.
    User,
    /// The active Python environment: `$VIRTUAL_ENV`, `$CONDA_PREFIX`, else `sys.prefix`
    /// of `python3` (`python` on Windows).
    SysPrefix,
    /// `P/share/jupyter`.
    Prefix(PathBuf),
}

/// The `kernels/sparselab` directory for `target` (not created).
///
/// # Errors
/// No home directory, or no Python environment found for `SysPrefix`.
pub fn kernel_dir(target: &InstallTarget) -> io::Result<PathBuf> {
    kernel_dir_named(target, KERNEL_NAME)
}

/// The `kernels/<name>` directory for `target` (not created).
///
/// # Errors
/// As [`kernel_dir`].
pub fn kernel_dir_named(target: &InstallTarget, name: &str) -> io::Result<PathBuf> {
    let data = match target {
        InstallTarget::User => user_data_dir()?,
        InstallTarget::SysPrefix => sys_prefix()?.join("share").join("jupyter"),
        InstallTarget::Prefix(p) => p.join("share").join("jupyter"),
    };
    Ok(data.join("kernels").join(name))
}

/// Writes `kernel.json` and the logos; the kernel is launched as
/// `argv0 kernel --connection-file {connection_file}`. Returns the kernelspec dir.
///
/// # Errors
/// Directory resolution or file writes failing.
pub fn install(target: InstallTarget, argv0: &Path) -> io::Result<PathBuf> {
    let dir = kernel_dir(&target)?;
    std::fs::create_dir_all(&dir)?;
    let argv0 = std::fs::canonicalize(argv0).unwrap_or_else(|_| argv0.to_path_buf());
    let spec = serde_json::json!({
        "argv": [argv0.to_string_lossy(), "kernel", "--connection-file", "{connection_file}"],
        "display_name": "sparselab (Rhai)",
        "language": "rhai",
        "interrupt_mode": "message",
        "metadata": {"debugger": false},
    });
    let text = serde_json::to_string_pretty(&spec).map_err(io::Error::other)?;
    std::fs::write(dir.join("kernel.json"), text + "\n")?;
    std::fs::write(dir.join("logo-32x32.png"), LOGO_32)?;
    std::fs::write(dir.join("logo-64x64.png"), LOGO_64)?;
    Ok(dir)
}

/// Removes the kernelspec; returns the removed directory, or `None` if there was none.
///
/// # Errors
/// Directory resolution or removal failing.
pub fn uninstall(target: InstallTarget) -> io::Result<Option<PathBuf>> {
    uninstall_named(target, KERNEL_NAME)
}

/// Removes the kernelspec `name`; as [`uninstall`].
///
/// # Errors
/// Directory resolution or removal failing.
pub fn uninstall_named(target: InstallTarget, name: &str) -> io::Result<Option<PathBuf>> {
    let dir = kernel_dir_named(&target, name)?;
    if !dir.exists() {
        return Ok(None);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(Some(dir))
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn user_data_dir() -> io::Result<PathBuf> {
    if let Some(dir) = env_path("JUPYTER_DATA_DIR") {
        return Ok(dir);
    }
    if cfg!(windows) {
        return env_path("APPDATA").map(|d| d.join("jupyter")).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "APPDATA is not set"));
    }
    let home = env_path("HOME").ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "HOME is not set"))?;
    if cfg!(target_os = "macos") {
        return Ok(home.join("Library").join("Jupyter"));
    }
    Ok(env_path("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local").join("share")).join("jupyter"))
}

fn sys_prefix() -> io::Result<PathBuf> {
    if let Some(p) = env_path("VIRTUAL_ENV").or_else(|| env_path("CONDA_PREFIX")) {
        return Ok(p);
    }
    let python = if cfg!(windows) { "python" } else { "python3" };
    let out = std::process::Command::new(python).args(["-c", "import sys; print(sys.prefix)"]).output().map_err(|e| io::Error::new(e.kind(), format!("running {python} to find sys.prefix: {e}")))?;
    let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || prefix.is_empty() {
        return Err(io::Error::other(format!("{python} did not report sys.prefix")));
    }
    Ok(PathBuf::from(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_into_prefix_writes_spec_and_logos() {
        let prefix = std::env::temp_dir().join(format!("sparselab-kspec-{}", std::process::id()));
        let dir = install(InstallTarget::Prefix(prefix.clone()), Path::new("/bin/sparselab")).unwrap();
        assert_eq!(dir, prefix.join("share/jupyter/kernels/sparselab"));
        let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).unwrap()).unwrap();
        assert_eq!(spec["argv"][1], "kernel");
        assert_eq!(spec["argv"][3], "{connection_file}");
        assert_eq!(spec["interrupt_mode"], "message");
        assert!(std::fs::read(dir.join("logo-64x64.png")).unwrap().starts_with(b"\x89PNG"));
        assert_eq!(uninstall(InstallTarget::Prefix(prefix.clone())).unwrap(), Some(dir));
        let _ = std::fs::remove_dir_all(prefix);
    }
}
