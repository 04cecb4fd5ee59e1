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
    println!("cargo:rerun-if-changed=.git/HEAD");
    // Recorded in every run manifest.
    let commit =
        std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    println!("cargo:rustc-env=SPARSELAB_GIT_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        return; // tch's build script reports the missing libtorch itself
    };
    let libtorch = PathBuf::from(libtorch);
    let root = std::fs::canonicalize(&libtorch).unwrap_or(libtorch);
    // The PyPI wheel's version (e.g. 2.11.0+cu130), for `sparselab info` and manifests.
    if let Ok(v) = std::fs::read_to_string(root.join("version.py")) {
        if let Some(ver) = v.lines().find(|l| l.starts_with("__version__")).and_then(|l| l.split('\'').nth(1)) {
            println!("cargo:rustc-env=SPARSELAB_LIBTORCH_VERSION={ver}");
        }
    }
    // The compact sparse-linear kernel (src/compute/sparse_linear.cpp, a libtorch
    // autograd function) and the fused MLP step (src/compute/fused_mlp.cpp), compiled
    // against the same headers tch uses.
    for f in ["sparse_linear.cpp", "fused_mlp.cpp", "kernels.h"] {
        println!("cargo:rerun-if-changed=src/compute/{f}");
    }
    // SPARSELAB_CXX: the C++ compiler for these kernels only (the CI's fallback build
    // uses clang++ here without rebuilding torch-sys, which CXX would).
    println!("cargo:rerun-if-env-changed=SPARSELAB_CXX");
    let mut build = cc::Build::new();
    if let Ok(cxx) = std::env::var("SPARSELAB_CXX") {
        build.compiler(cxx);
    }
    build
        .cpp(true)
        .file("src/compute/sparse_linear.cpp")
        .file("src/compute/fused_mlp.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag("-w")
        // Lets GCC vectorize std::sqrt (the adaptive optimizers' rules in
        // fused_mlp.cpp); nothing here reads errno.
        .flag("-fno-math-errno")
        .opt_level(3);
    // `portable-kernels`: the fused step's dense products never call MKL (what a
    // libtorch without MKL runs; the CI builds it so, with clang).
    if std::env::var_os("CARGO_FEATURE_PORTABLE_KERNELS").is_some() {
        build.define("SPARSELAB_PORTABLE", None);
    }
    let clang = build.get_compiler().is_like_clang();
    if clang {
        // libtorch's OpenMP runtime is GNU's libgomp, which clang's -fopenmp cannot
        // target: the kernels build without it (at::parallel_for then runs inline and
        // the fused step runs its tasks on plain threads).
        println!("cargo:warning=building the C++ kernels with clang: at::parallel_for runs inline in them (libtorch's OpenMP is GNU's)");
    } else {
        // at::parallel_for is inline OpenMP: without -fopenmp it runs on one thread.
        build.flag("-fopenmp").flag("-Wno-psabi");
    }
    build.compile("sparselab_kernels");
    // Resolves to the libgomp.so.1 libtorch ships (same soname, found first through
    // the rpath), so there is one OpenMP runtime and one thread pool.
    if !clang {
        println!("cargo:rustc-link-lib=gomp");
    }
    let lib = root.join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
