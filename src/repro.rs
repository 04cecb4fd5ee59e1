//! Reproducible mode: the same bits on CPU across x86-64 machines, thread counts and
//! processes, for the same binary and libtorch; and the environment a record was
//! made in, so `sparselab verify` can say what differs.
//!
//! Three things pick different code on different CPUs or thread counts, and the mode
//! pins each (docs/reproducibility.md has the measurements):
//! - MKL's GEMM, by instruction set: conditional numerical reproducibility
//!   (`MKL_CBWR=AVX2,STRICT`, or `COMPATIBLE,STRICT`); STRICT also makes it
//!   independent of the thread count, on AVX2 and wider branches only (the compatible
//!   branch reproduces itself at a given thread count);
//! - libtorch's own vectorised kernels (softmax, reductions), by instruction set:
//!   `ATEN_CPU_CAPABILITY=avx2` (or `default`); oneDNN (convolutions):
//!   `ONEDNN_MAX_CPU_ISA`;
//! - reductions whose split depends on the thread count: libtorch's BatchNorm
//!   kernel and whole-tensor sums. In this mode BatchNorm's batch statistics are
//!   per-channel reductions ([`batch_norm_train`]) and gradient-flow norms sum rows
//!   first ([`sum_all`]), which libtorch splits by output, never by thread.
//!
//! The mode is chosen by `SPARSELAB_REPRODUCIBLE`: `avx2` (the default where the CPU
//! has AVX2 and FMA: the same bits on every such x86-64 machine), `native` (this CPU's
//! own widest branch, AVX-512 where it has it, pinned and thread-independent: the same
//! bits across thread counts and processes on machines of the same instruction set),
//! `compatible` (any x86-64 CPU, at a given thread count; slower GEMM) or `off` (libtorch's and MKL's fastest
//! code for this CPU, results that depend on the thread count). It must be set before libtorch computes
//! anything: the `sparselab` binary calls [`init`] first thing; a program using the
//! library calls it at its start. Variables the user set (`MKL_CBWR`, ...) are kept.
use serde_json::{json, Value};
use std::sync::OnceLock;
use tch::{Kind, Tensor};

/// Names [`init`] accepts in `SPARSELAB_REPRODUCIBLE`.
pub const MODES: &[&str] = &["avx2", "native", "compatible", "off"];

/// The mode in force (after [`init`]; `off` when it was never called).
pub fn mode() -> &'static str {
    MODE.get().copied().unwrap_or("off")
}

static MODE: OnceLock<&'static str> = OnceLock::new();

/// Whether the reductions that depend on the thread count are replaced (any mode but `off`).
pub fn deterministic() -> bool {
    mode() != "off"
}

/// Sets the reproducible mode from `SPARSELAB_REPRODUCIBLE` (default `avx2` where the
/// CPU supports it, else `compatible`) by exporting the variables MKL, libtorch and
/// oneDNN read when they start. Call before any libtorch computation; later calls do
/// nothing. Returns a warning for an unknown value (the default is used).
pub fn init() -> Option<String> {
    if MODE.get().is_some() {
        return None;
    }
    let asked = std::env::var("SPARSELAB_REPRODUCIBLE").unwrap_or_default().trim().to_ascii_lowercase();
    let has_avx2 = cpu_flags().iter().any(|f| f == "avx2") && cpu_flags().iter().any(|f| f == "fma");
    let default = if has_avx2 || !cfg!(target_arch = "x86_64") { "avx2" } else { "compatible" };
    let mut warning = None;
    let mode: &'static str = match asked.as_str() {
        "" | "1" | "on" | "true" => default,
        "0" | "false" => "off",
        m => match MODES.iter().find(|x| **x == m) {
            Some(&m @ ("avx2" | "native")) if !has_avx2 && cfg!(target_arch = "x86_64") => {
                warning = Some(format!("SPARSELAB_REPRODUCIBLE={m}: this CPU lacks AVX2/FMA; using \"compatible\""));
                "compatible"
            }
            Some(x) => x,
            None => {
                warning = Some(format!("SPARSELAB_REPRODUCIBLE={m:?} is not one of {MODES:?}; using {default:?}"));
                default
            }
        },
    };
    let avx512 = ["avx512f", "avx512dq", "avx512bw", "avx512vl"].iter().all(|f| cpu_flags().iter().any(|c| c == f));
    let vars: &[(&str, &str)] = match mode {
        "avx2" => &[("MKL_CBWR", "AVX2,STRICT"), ("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2")],
        "native" if avx512 => &[("MKL_CBWR", "AVX512,STRICT"), ("ATEN_CPU_CAPABILITY", "avx512"), ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")],
        "native" => &[("MKL_CBWR", "AVX2,STRICT"), ("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2")],
        "compatible" => &[("MKL_CBWR", "COMPATIBLE,STRICT"), ("ATEN_CPU_CAPABILITY", "default"), ("ONEDNN_MAX_CPU_ISA", "SSE41")],
        _ => &[],
    };
    for (k, v) in vars {
        if std::env::var_os(k).is_none() {
            // Before any thread of ours or libtorch's starts (see the function's docs).
            std::env::set_var(k, v);
        }
    }
    let _ = MODE.set(mode);
    warning
}

/// The CPU's feature flags that pick code paths (`sse4_2`, `avx`, `avx2`, `fma`,
/// `avx512f`, ...), from `/proc/cpuinfo`.
pub fn cpu_flags() -> &'static [String] {
    static FLAGS: OnceLock<Vec<String>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        const KEEP: &[&str] = &["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "asimd", "sve"];
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let line = info.lines().find(|l| l.starts_with("flags") || l.starts_with("Features")).unwrap_or("");
        let have: Vec<&str> = line.split(':').nth(1).unwrap_or("").split_whitespace().collect();
        KEEP.iter().filter(|f| have.contains(f)).map(|f| f.to_string()).collect()
    })
}

/// The CPU's model name (read once: every record stores it).
fn cpu_model() -> &'static str {
    static MODEL: OnceLock<String> = OnceLock::new();
    MODEL.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()).unwrap_or_else(|| std::env::consts::ARCH.to_string())
    })
}

/// MKL's code branch in force, as MKL reports it (`AVX2,STRICT`, `AUTO (AVX512_E1)`,
/// ...), or `none` in a libtorch without MKL.
pub fn mkl_branch() -> String {
    extern "C" {
        fn dlsym(handle: *mut std::ffi::c_void, symbol: *const std::ffi::c_char) -> *mut std::ffi::c_void;
    }
    type Get = unsafe extern "C" fn(i32) -> i32;
    // SAFETY: dlsym with RTLD_DEFAULT (null) and a NUL-terminated name; the symbols, when
    // present, are MKL's `int mkl_serv_cbwr_get(int)` and `int mkl_serv_cbwr_get_auto_branch(void)`.
    let (get, auto) = unsafe { (dlsym(std::ptr::null_mut(), c"mkl_serv_cbwr_get".as_ptr()), dlsym(std::ptr::null_mut(), c"mkl_serv_cbwr_get_auto_branch".as_ptr())) };
    if get.is_null() {
        return "none".into();
    }
    // SAFETY: as above; MKL_CBWR_ALL is ~0.
    let all = unsafe { std::mem::transmute::<*mut std::ffi::c_void, Get>(get)(-1) };
    let name = |b: i32| -> String {
        match b {
            1 => "OFF".into(),
            2 => "AUTO".into(),
            3 => "COMPATIBLE".into(),
            4 => "SSE2".into(),
            6 => "SSSE3".into(),
            7 => "SSE4_1".into(),
            8 => "SSE4_2".into(),
            9 => "AVX".into(),
            10 => "AVX2".into(),
            12 => "AVX512".into(),
            14 => "AVX512_E1".into(),
            n => format!("branch {n}"),
        }
    };
    let branch = all & 0xffff;
    let mut s = name(branch);
    if branch <= 2 && !auto.is_null() {
        // SAFETY: as above; it takes no argument (an int passed in a register is ignored).
        let a = unsafe { std::mem::transmute::<*mut std::ffi::c_void, Get>(auto)(0) };
        s = format!("AUTO ({})", name(a));
    }
    if all & 0x10000 != 0 {
        s.push_str(",STRICT");
    }
    s
}

/// The environment a run is recorded in: versions, CPU, code paths, threads and (when
/// given) the device it ran on.
pub fn environment(device: Option<&str>) -> Value {
    let mut v = json!({
        "sparselab": crate::version(),
        "git_commit": option_env!("SPARSELAB_GIT_COMMIT").unwrap_or("unknown"),
        "libtorch": crate::libtorch_version(),
        "reproducible": mode(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "mkl": mkl_branch(),
        "fused_gemm": crate::compute::fused_gemm(),
        "aten_cpu_capability": std::env::var("ATEN_CPU_CAPABILITY").unwrap_or_else(|_| "auto".into()),
        "threads": tch::get_num_threads(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    if let Some(d) = device {
        v["device"] = json!(d);
    }
    v
}

/// The sum of every element of `t` in double precision, in an order that does not
/// depend on the thread count in reproducible mode (columns summed over rows, then the
/// row of sums; libtorch splits a whole-tensor sum across threads).
pub fn sum_all(t: &Tensor) -> f64 {
    if !deterministic() || t.dim() < 2 {
        return t.sum(Kind::Double).double_value(&[]);
    }
    let rows = t.size()[0];
    t.reshape([rows, -1]).sum_dim_intlist(0, false, Kind::Double).sum(Kind::Double).double_value(&[])
}

/// BatchNorm in training mode (batch statistics over every dimension but 1, biased
/// variance for normalising, unbiased for the running variance, momentum 0.1, eps
/// 1e-5), from per-channel reductions whose result does not depend on the thread
/// count. Updates `running` (mean, var) when given. Matches libtorch's `batch_norm`
/// to float tolerance (tests).
///
/// # Errors
/// Tensors of the wrong shape.
pub fn batch_norm_train(x: &Tensor, weight: &Tensor, bias: &Tensor, running: Option<(&Tensor, &Tensor)>) -> Result<Tensor, tch::TchError> {
    if x.dim() < 2 {
        return Err(tch::TchError::Shape(format!("batch norm needs [N, C, ...], got {:?}", x.size())));
    }
    let dims: Vec<i64> = (0..x.dim() as i64).filter(|&d| d != 1).collect();
    let c = x.size()[1];
    let mut shape = vec![1i64; x.dim()];
    shape[1] = c;
    let n = (x.numel() as i64 / c.max(1)) as f64;
    let mean = x.f_mean_dim(dims.as_slice(), true, Kind::Float)?;
    let centred = x.f_sub(&mean)?;
    let var = centred.f_square()?.f_mean_dim(dims.as_slice(), true, Kind::Float)?;
    let y = centred.f_mul(&var.f_add_scalar(1e-5)?.f_rsqrt()?)?.f_mul(&weight.f_view(shape.as_slice())?)?.f_add(&bias.f_view(shape.as_slice())?)?;
    if let Some((rm, rv)) = running {
        let _guard = tch::no_grad_guard();
        let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let m = mean.detach().f_view([c])?;
        let v = var.detach().f_view([c])?.f_mul_scalar(unbiased)?;
        rm.shallow_clone().f_copy_(&(rm * 0.9 + m * 0.1))?;
        rv.shallow_clone().f_copy_(&(rv * 0.9 + v * 0.1))?;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-channel BatchNorm equals libtorch's (outputs, gradients of input, scale
    /// and shift, running statistics) to float tolerance, for MLP and CNN shapes.
    #[test]
    fn batch_norm_train_matches_libtorch() {
        tch::manual_seed(3);
        for shape in [vec![64i64, 37], vec![8, 5, 6, 7]] {
            let c = shape[1];
            let x = (Tensor::randn(shape.as_slice(), (Kind::Float, tch::Device::Cpu)) * 3.0 + 1.0).set_requires_grad(true);
            let w = Tensor::randn([c], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let b = Tensor::randn([c], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let (rm1, rv1) = (Tensor::zeros([c], (Kind::Float, tch::Device::Cpu)), Tensor::ones([c], (Kind::Float, tch::Device::Cpu)));
            let (rm2, rv2) = (rm1.copy(), rv1.copy());
            let y1 = x.batch_norm(Some(&w), Some(&b), Some(&rm1), Some(&rv1), true, 0.1, 1e-5, true);
            let g = Tensor::randn(shape.as_slice(), (Kind::Float, tch::Device::Cpu));
            let grads1 = Tensor::run_backward(&[(&y1 * &g).sum(Kind::Float)], &[&x, &w, &b], false, false);
            let y2 = batch_norm_train(&x, &w, &b, Some((&rm2, &rv2))).unwrap();
            let grads2 = Tensor::run_backward(&[(&y2 * &g).sum(Kind::Float)], &[&x, &w, &b], false, false);
            let close = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
            assert!(close(&y1, &y2) < 1e-5, "{shape:?}: outputs differ by {}", close(&y1, &y2));
            for (i, (a, b)) in grads1.iter().zip(&grads2).enumerate() {
                assert!(close(a, b) < 1e-4, "{shape:?}: gradient {i} differs by {}", close(a, b));
            }
            assert!(close(&rm1, &rm2) < 1e-6 && close(&rv1, &rv2) < 1e-5, "{shape:?}: running statistics");
        }
    }

    #[test]
    fn sum_all_is_the_sum() {
        let t = Tensor::arange(1000, (Kind::Float, tch::Device::Cpu)).view([10, 100]);
        assert_eq!(sum_all(&t), 499_500.0); // 999 * 1000 / 2
    }
}
