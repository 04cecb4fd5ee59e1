//! Derivative-free maximisers used by the searchers: a box-clamped
//! Nelder–Mead simplex and a 1-D grid scan with golden-section refinement.

use super::SearchSpace;

/// Maximises `f` from `x0` (value `f0`) with a Nelder–Mead simplex whose points
/// are clamped into the box; returns the best point seen and its value.
pub(crate) fn nelder_mead<F: FnMut(&[f64]) -> f64>(f: &mut F, x0: &[f64], f0: f64, space: &SearchSpace, max_evals: usize) -> (Vec<f64>, f64) {
    let n = x0.len();
    let width = space.hi - space.lo;
    if width <= 0.0 || n == 0 || max_evals == 0 {
        return (x0.to_vec(), f0);
    }
    let step = 0.05 * width;
    // Minimise g = -f over simplex vertices kept as (value, point).
    let mut simplex: Vec<(f64, Vec<f64>)> = vec![(-f0, x0.to_vec())];
    let mut evals = 0;
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] = if x[i] + step <= space.hi { x[i] + step } else { x[i] - step };
        let x = space.clamp(&x);
        simplex.push((-f(&x), x));
        evals += 1;
    }
    let toward = |a: &[f64], b: &[f64], t: f64| -> Vec<f64> { space.clamp(&a.iter().zip(b).map(|(p, q)| p + t * (q - p)).collect::<Vec<_>>()) };
    while evals < max_evals {
        simplex.sort_by(|a, b| a.0.total_cmp(&b.0));
        let size = simplex[1..].iter().flat_map(|(_, x)| x.iter().zip(&simplex[0].1).map(|(p, q)| (p - q).abs())).fold(0.0, f64::max);
        if size < 1e-9 * width {
            break;
        }
        let mut centroid = vec![0.0; n];
        for (_, x) in &simplex[..n] {
            for (c, v) in centroid.iter_mut().zip(x) {
                *c += v / n as f64;
            }
        }
        let (g_best, g_second, (g_worst, x_worst)) = (simplex[0].0, simplex[n - 1].0, simplex[n].clone());
        let xr = toward(&centroid, &x_worst, -1.0);
        let gr = -f(&xr);
        evals += 1;
        if gr < g_best {
            let xe = toward(&centroid, &x_worst, -2.0);
            let ge = -f(&xe);
            evals += 1;
            simplex[n] = if ge < gr { (ge, xe) } else { (gr, xr) };
        } else if gr < g_second {
            simplex[n] = (gr, xr);
        } else {
            let outside = gr < g_worst;
            let xc = if outside { toward(&centroid, &xr, 0.5) } else { toward(&centroid, &x_worst, 0.5) };
            let gc = -f(&xc);
            evals += 1;
            if (outside && gc <= gr) || (!outside && gc < g_worst) {
                simplex[n] = (gc, xc);
            } else {
                let best = simplex[0].1.clone();
                for v in simplex.iter_mut().skip(1) {
                    let x = toward(&best, &v.1, 0.5);
                    *v = (-f(&x), x);
                    evals += 1;
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (g, x) = simplex.swap_remove(0);
    (x, -g)
}

/// Maximises `f` over `[a, b]`: scans a grid of spacing at most `step`, then
/// refines the best cell by golden-section search (to 1e-9). Deterministic;
/// finds the global maximum up to the grid resolution. Returns the argmax.
pub(crate) fn maximise_1d<F: FnMut(f64) -> f64>(mut f: F, a: f64, b: f64, step: f64) -> f64 {
    let valid = b > a && step > 0.0;
    if !valid {
        return a;
    }
    let steps = ((b - a) / step).ceil().max(1.0) as usize;
    let h = (b - a) / steps as f64;
    let mut best = (a, f(a));
    for k in 1..=steps {
        let t = if k == steps { b } else { a + h * k as f64 };
        let v = f(t);
        if v > best.1 {
            best = (t, v);
        }
    }
    // Golden-section refinement on [best - h, best + h] ∩ [a, b].
    let (mut l, mut r) = ((best.0 - h).max(a), (best.0 + h).min(b));
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (r - g * (r - l), l + g * (r - l));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..60 {
        if r - l < 1e-9 {
            break;
        }
        if fc >= fd {
            r = d;
            (d, fd) = (c, fc);
            c = r - g * (r - l);
            fc = f(c);
        } else {
            l = c;
            (c, fc) = (d, fd);
            d = l + g * (r - l);
            fd = f(d);
        }
    }
    let (t, v) = if fc >= fd { (c, fc) } else { (d, fd) };
    if v > best.1 {
        best = (t, v);
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nelder_mead_finds_a_box_maximum() {
        // max of -(x-0.3)² - (y-0.8)² at (0.3, 0.8); the start is far away.
        let space = SearchSpace::new(2, 0.0, 1.0).unwrap();
        let mut evals = 0;
        let mut f = |x: &[f64]| {
            evals += 1;
            -((x[0] - 0.3).powi(2) + (x[1] - 0.8).powi(2))
        };
        let f0 = f(&[0.9, 0.1]);
        let (x, v) = nelder_mead(&mut f, &[0.9, 0.1], f0, &space, 500);
        assert!((x[0] - 0.3).abs() < 1e-6 && (x[1] - 0.8).abs() < 1e-6, "{x:?}");
        assert!(v > -1e-11 && evals <= 501);
        // Maximum outside the box: ends on the boundary x = 1.
        let mut g = |x: &[f64]| -(x[0] - 1.5).powi(2);
        let (x, _) = nelder_mead(&mut g, &[0.2], -1.69, &SearchSpace::new(1, 0.0, 1.0).unwrap(), 300);
        assert!((x[0] - 1.0).abs() < 1e-9, "{x:?}");
        // No budget: the start is returned.
        let (x, v) = nelder_mead(&mut g, &[0.2], -1.69, &space, 0);
        assert_eq!((x, v), (vec![0.2], -1.69));
    }

    #[test]
    fn maximise_1d_is_global_on_the_grid() {
        // Two bumps: a wide low one at 3 and a narrow high one at -2.
        let f = |t: f64| (-(t - 3.0).powi(2)).exp() + 2.0 * (-(t + 2.0).powi(2) / 0.1).exp();
        assert!((maximise_1d(f, -5.0, 5.0, 0.25) + 2.0).abs() < 1e-6);
        assert!((maximise_1d(|t| -t, -1.0, 3.0, 0.25) + 1.0).abs() < 1e-9);
        assert!((maximise_1d(|t| t, -1.0, 3.0, 0.25) - 3.0).abs() < 1e-9);
        assert_eq!(maximise_1d(|t| t, 2.0, 2.0, 0.25), 2.0);
    }
}
