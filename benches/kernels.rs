//! Kernel benchmark: one sparse linear layer, forward + backward (input and weight
//! gradients), dense masked product vs the compact kernel, across densities. Sets
//! [`sparselab::model::COMPACT_CROSSOVER`]: the density where the compact kernel
//! stops being faster.
//!
//! `cargo bench --bench kernels` (env: SPARSELAB_BENCH_THREADS=2, SPARSELAB_BENCH_BATCH=128,
//! SPARSELAB_BENCH_SHAPE=788x788, SPARSELAB_BENCH_DENSITIES=0.005,0.01,...;
//! SPARSELAB_BENCH_TWINS=0.1,0.3,0.5,0.7,0.9 times the SC-SDC twins' layers instead).
use sparselab::compute::CsrPlan;
use sparselab::model::random_mask;
use std::time::Instant;
use tch::{Kind, Tensor};

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// Median seconds of `f` over enough repetitions to fill ~0.3 s.
fn time(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-6);
    let reps = ((0.3 / once) as usize).clamp(5, 2000);
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[reps / 2]
}

/// Median seconds of one layer's forward + backward with the dense masked product and
/// with the compact kernel: `out x inp`, `active` weights, `batch` columns; the input
/// gradient only when `dx` (a first layer has none).
fn layer_times(out: i64, inp: i64, active: i64, batch: i64, dx: bool) -> (f64, f64) {
    let x = Tensor::randn([batch, inp], (Kind::Float, tch::Device::Cpu)).set_requires_grad(dx);
    let g = Tensor::randn([batch, out], (Kind::Float, tch::Device::Cpu));
    let mask = random_mask(&[out, inp], active.max(1), 1, 0);
    let w = (Tensor::randn([out, inp], (Kind::Float, tch::Device::Cpu)) * &mask).set_requires_grad(true);
    let mut plan = CsrPlan::from_mask(&mask).unwrap();
    let values = tch::no_grad(|| plan.gather(&w)).set_requires_grad(true);
    let wrt_dense: Vec<&Tensor> = if dx { vec![&x, &w] } else { vec![&w] };
    let wrt_compact: Vec<&Tensor> = if dx { vec![&x, &values] } else { vec![&values] };
    let td = time(|| {
        let y = x.linear(&w, None::<Tensor>);
        let _ = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &wrt_dense, false, false);
    });
    let tc = time(|| {
        let y = plan.linear(&x, &values).unwrap();
        let _ = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &wrt_compact, false, false);
    });
    (td, tc)
}

/// `SPARSELAB_BENCH_TWINS=0.1,0.3,...`: the SC-SDC twins of benches/epoch.rs (784 -> 4 x w
/// -> 10 against 784 -> 4 x 788 -> 10 with the same active weights per layer), every
/// layer timed alone. The sum of the dense twin's layers against the sum of the sparse
/// twin's, each layer on its faster kernel (and on the one `Kernel::Auto` picks): the
/// sparse/dense epoch-time ratio the products allow if nothing but the products cost.
fn twins(fractions: &str, batch: i64) {
    println!("SC-SDC twins, batch {batch}, reproducible mode {}: per layer forward + backward, ms (layer 1 without input gradient)\n", sparselab::repro::mode());
    println!("{:>5} {:>10} {:>26} {:>26} {:>9} {:>9}", "f", "dense ms", "sparse: best kernels ms", "sparse: auto kernels ms", "best", "auto");
    let (mut best_sum, mut auto_sum, mut n) = (0.0, 0.0, 0.0);
    for f in fractions.split(',').map(|f| f.trim().parse::<f64>().expect("SPARSELAB_BENCH_TWINS: comma-separated fractions")) {
        let w = (f * 788.0).round() as i64;
        let dense_shapes = [(w, 784), (w, w), (w, w), (w, w), (10, w)];
        let (mut td, mut ts_best, mut ts_auto) = (0.0, 0.0, 0.0);
        let (mut best_k, mut auto_k) = (String::new(), String::new());
        for (i, &(o, inp)) in dense_shapes.iter().enumerate() {
            td += layer_times(o, inp, o * inp, batch, i > 0).0;
            let (so, si) = (if i == 4 { 10 } else { 788 }, if i == 0 { 784 } else { 788 });
            let active = o * inp;
            let (d, c) = layer_times(so, si, active, batch, i > 0);
            ts_best += d.min(c);
            best_k.push(if c < d { 'C' } else { 'D' });
            let density = active as f64 / (so * si) as f64;
            let compact = sparselab::model::Kernel::Auto.resolve(density) == sparselab::model::Kernel::Compact;
            ts_auto += if compact { c } else { d };
            auto_k.push(if compact { 'C' } else { 'D' });
        }
        println!("{:>5} {:>10.3} {:>20.3} {} {:>20.3} {} {:>9.2} {:>9.2}", f, td * 1e3, ts_best * 1e3, best_k, ts_auto * 1e3, auto_k, ts_best / td, ts_auto / td);
        best_sum += ts_best / td;
        auto_sum += ts_auto / td;
        n += 1.0;
    }
    println!("\nmean sparse/dense ratio of the products alone: best kernels {:.2}, auto kernels {:.2}", best_sum / n, auto_sum / n);
}

fn main() {
    // The mode `sparselab` runs in (SPARSELAB_REPRODUCIBLE, default avx2), set before
    // libtorch or MKL computes anything, as the binary does.
    if let Some(w) = sparselab::repro::init() {
        eprintln!("warning: {w}");
    }
    let threads: i32 = env("SPARSELAB_BENCH_THREADS", 2);
    let batch: i64 = env("SPARSELAB_BENCH_BATCH", 128);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    if let Ok(fractions) = std::env::var("SPARSELAB_BENCH_TWINS") {
        return twins(&fractions, batch);
    }
    let shape: String = env("SPARSELAB_BENCH_SHAPE", "788x788".to_string());
    let (out, inp) = shape.split_once('x').and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?))).expect("SPARSELAB_BENCH_SHAPE is OUTxIN");
    println!("sparse linear {out}x{inp}, batch {batch}, {threads} threads, reproducible mode {}: forward + backward (dx, dW), median of repeats\n", sparselab::repro::mode());
    println!("{:>8} {:>11} {:>11} {:>8} {:>12} {:>12}", "density", "dense ms", "compact ms", "ratio", "dense GF/s", "compact GF/s");
    let mut crossover = None;
    let densities: Vec<f64> = std::env::var("SPARSELAB_BENCH_DENSITIES")
        .unwrap_or_else(|_| "0.005,0.01,0.02,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.5,0.6,0.8".into())
        .split(',')
        .map(|d| d.trim().parse().expect("SPARSELAB_BENCH_DENSITIES: comma-separated numbers"))
        .collect();
    for d in densities {
        let k = ((d * (out * inp) as f64).round() as i64).max(1);
        let (td, tc) = layer_times(out, inp, k, batch, true);
        let useful = 6.0 * (k * batch) as f64 / 1e9;
        let dense_flop = 6.0 * (out * inp * batch) as f64 / 1e9;
        println!("{:>8.3} {:>11.3} {:>11.3} {:>8.2} {:>12.1} {:>12.1}", d, td * 1e3, tc * 1e3, tc / td, dense_flop / td, useful / tc);
        if tc > td && crossover.is_none() {
            crossover = Some(d);
        }
    }
    match crossover {
        Some(d) => println!("\ncompact slower than dense from density {d} on (COMPACT_CROSSOVER = {})", sparselab::model::COMPACT_CROSSOVER),
        None => println!("\ncompact faster at every density measured"),
    }
}
