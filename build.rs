//! Link-time set-up for libtorch (see .ci/setup and .cargo/config.toml).
//!
//! tch's own build script links libtorch, but rustc passes `--as-needed`, so
//! `libtorch_cuda.so` (which no symbol references) is dropped and CUDA never
//! initialises. We force it in with `--no-as-needed`, and add an rpath so the
//! binary, tests and benches run without LD_LIBRARY_PATH.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        return; // tch's build script reports the missing libtorch itself
    };
    let libtorch = PathBuf::from(libtorch);
    let lib = std::fs::canonicalize(&libtorch).unwrap_or(libtorch).join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
