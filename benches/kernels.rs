//! Kernel benchmark: one sparse linear layer, forward + backward (input and weight
//! gradients), dense masked product vs the compact kernel, across densities. Sets
//! [`sparselab::model::COMPACT_CROSSOVER`]: the density where the compact kernel
//! stops being faster.
//!
//! `cargo bench --bench kernels` (env: SPARSELAB_BENCH_THREADS=2, SPARSELAB_BENCH_BATCH=128,
//! SPARSELAB_BENCH_SHAPE=788x788, SPARSELAB_BENCH_DENSITIES=0.005,0.01,...).
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

fn main() {
    let threads: i32 = env("SPARSELAB_BENCH_THREADS", 2);
    let batch: i64 = env("SPARSELAB_BENCH_BATCH", 128);
    let shape: String = env("SPARSELAB_BENCH_SHAPE", "788x788".to_string());
    let (out, inp) = shape.split_once('x').and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?))).expect("SPARSELAB_BENCH_SHAPE is OUTxIN");
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    println!("sparse linear {out}x{inp}, batch {batch}, {threads} threads: forward + backward (dx, dW), median of repeats\n");
    println!("{:>8} {:>11} {:>11} {:>8} {:>12} {:>12}", "density", "dense ms", "compact ms", "ratio", "dense GF/s", "compact GF/s");
    let x = Tensor::randn([batch, inp], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let g = Tensor::randn([batch, out], (Kind::Float, tch::Device::Cpu));
    let mut crossover = None;
    let densities: Vec<f64> = std::env::var("SPARSELAB_BENCH_DENSITIES")
        .unwrap_or_else(|_| "0.005,0.01,0.02,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.5,0.6,0.8".into())
        .split(',')
        .map(|d| d.trim().parse().expect("SPARSELAB_BENCH_DENSITIES: comma-separated numbers"))
        .collect();
    for d in densities {
        let k = ((d * (out * inp) as f64).round() as i64).max(1);
        let mask = random_mask(&[out, inp], k, 1, 0);
        let w = (Tensor::randn([out, inp], (Kind::Float, tch::Device::Cpu)) * &mask).set_requires_grad(true);
        let mut plan = CsrPlan::from_mask(&mask).unwrap();
        let values = tch::no_grad(|| plan.gather(&w)).set_requires_grad(true);
        let td = time(|| {
            let y = x.linear(&w, None::<Tensor>);
            let _ = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &[&x, &w], false, false);
        });
        let tc = time(|| {
            let y = plan.linear(&x, &values).unwrap();
            let _ = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &[&x, &values], false, false);
        });
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
