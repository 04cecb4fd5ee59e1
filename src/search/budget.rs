//! Budget projection: candidates over a density or weight budget are
//! projected onto it, never trained.
//!
//! For per-layer densities `d_l` and layer sizes `n_l` (weights in layer `l`):
//! overall density `= Σ d_l·n_l / Σ n_l`, active weights `= Σ round(d_l·n_l)`
//! (`round` is half away from zero, as [`f64::round`]). A candidate over
//! budget is scaled down uniformly, `d_l(s) = max(d_min, s·d_l)` with the
//! largest `s` in `[0, 1]` that meets every budget, so layers already at the
//! floor stay there and the others keep their ratios.

use super::DEFAULT_D_MIN;

/// Overall density `Σ d_l·n_l / Σ n_l`; `None` if the lengths differ or there are no weights.
pub fn overall_density(x: &[f64], layer_sizes: &[u64]) -> Option<f64> {
    let total: u64 = layer_sizes.iter().sum();
    if x.len() != layer_sizes.len() || total == 0 {
        return None;
    }
    Some(x.iter().zip(layer_sizes).map(|(d, &n)| d * n as f64).sum::<f64>() / total as f64)
}

/// Active weights `Σ round(d_l·n_l)`; `None` if the lengths differ or a density is
/// outside `[0, 1]` or not finite.
pub fn active_weights(x: &[f64], layer_sizes: &[u64]) -> Option<u64> {
    if x.len() != layer_sizes.len() || !x.iter().all(|d| (0.0..=1.0).contains(d)) {
        return None;
    }
    Some(x.iter().zip(layer_sizes).map(|(d, &n)| (d * n as f64).round() as u64).sum())
}

/// [`project_to_budget_with_floor`] with the floor [`DEFAULT_D_MIN`].
///
/// Candidates over budget are projected, never trained: call this on every
/// proposal and train the returned densities (or skip the candidate on `None`).
pub fn project_to_budget(x: &[f64], layer_sizes: &[u64], max_density: Option<f64>, max_active: Option<u64>) -> Option<Vec<f64>> {
    project_to_budget_with_floor(x, layer_sizes, max_density, max_active, DEFAULT_D_MIN)
}

/// Densities meeting `overall_density <= max_density` and `active_weights <=
/// max_active` (each if given), as close to `x` as uniform down-scaling allows.
///
/// `x` is first clamped to `[d_min, 1]`; a single value is broadcast to every
/// layer (uniform search). Returned unchanged (after clamping) if already
/// within budget. `None` if even every layer at `d_min` is over budget, or on
/// invalid input: lengths that differ, no weights, a non-finite value or
/// `d_min` outside `[0, 1]`. The result never exceeds a budget; the density
/// budget is met to within about 1e-15, the active budget up to the rounding
/// step of one layer.
pub fn project_to_budget_with_floor(x: &[f64], layer_sizes: &[u64], max_density: Option<f64>, max_active: Option<u64>, d_min: f64) -> Option<Vec<f64>> {
    if !(0.0..=1.0).contains(&d_min) || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let base: Vec<f64> = match x.len() {
        1 => vec![x[0]; layer_sizes.len()],
        _ => x.to_vec(),
    };
    if base.len() != layer_sizes.len() || layer_sizes.iter().sum::<u64>() == 0 {
        return None;
    }
    let base: Vec<f64> = base.iter().map(|d| d.clamp(d_min, 1.0)).collect();
    let scaled = |s: f64| -> Vec<f64> { base.iter().map(|d| (s * d).max(d_min)).collect() };
    let feasible = |v: &[f64]| -> bool {
        let density_ok = match max_density {
            Some(m) => overall_density(v, layer_sizes).is_some_and(|d| d <= m),
            None => true,
        };
        let active_ok = match max_active {
            Some(m) => active_weights(v, layer_sizes).is_some_and(|a| a <= m),
            None => true,
        };
        density_ok && active_ok
    };
    if feasible(&base) {
        return Some(base);
    }
    if !feasible(&scaled(0.0)) {
        return None;
    }
    // Both budgets are monotone in s: bisect keeping lo feasible, hi infeasible.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if feasible(&scaled(mid)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(scaled(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: [u64; 3] = [100, 300, 600]; // 1000 weights

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(p, q)| (p - q).abs() <= tol)
    }

    #[test]
    fn density_and_active_by_hand() {
        // (100·1 + 300·0.5 + 600·0.2)/1000 = 370/1000.
        assert_eq!(overall_density(&[1.0, 0.5, 0.2], &SIZES), Some(0.37));
        assert_eq!(active_weights(&[1.0, 0.5, 0.2], &SIZES), Some(370));
        // round(0.0125·100) = round(1.25) = 1; round(0.0025·600) = round(1.5) = 2.
        assert_eq!(active_weights(&[0.0125, 0.0, 0.0025], &SIZES), Some(3));
        assert_eq!(overall_density(&[0.5], &SIZES), None);
        assert_eq!(overall_density(&[], &[]), None);
    }

    #[test]
    fn density_budget_scales_uniformly() {
        // 0.37 -> 0.185 needs s = 0.5: [0.5, 0.25, 0.1], density (50+75+60)/1000.
        let p = project_to_budget(&[1.0, 0.5, 0.2], &SIZES, Some(0.185), None).unwrap();
        assert!(close(&p, &[0.5, 0.25, 0.1], 1e-12), "{p:?}");
        let d = overall_density(&p, &SIZES).unwrap();
        assert!(d <= 0.185 && 0.185 - d < 1e-14, "{d}");
    }

    #[test]
    fn density_budget_respects_the_floor() {
        // Target 0.008. For s in [0.01, 0.025] layer 3 sits at d_min = 0.005
        // (0.2·s < 0.005), so density = (100 s + 150 s + 600·0.005)/1000
        // = (250 s + 3)/1000 = 0.008 at s = 0.02: [0.02, 0.01, 0.005].
        let p = project_to_budget(&[1.0, 0.5, 0.2], &SIZES, Some(0.008), None).unwrap();
        assert!(close(&p, &[0.02, 0.01, 0.005], 1e-12), "{p:?}");
        assert!(overall_density(&p, &SIZES).unwrap() <= 0.008);
        // Below d_min even at the floor: impossible.
        assert_eq!(project_to_budget(&[1.0, 0.5, 0.2], &SIZES, Some(0.004), None), None);
        // Exactly d_min is reachable.
        let p = project_to_budget(&[1.0, 0.5, 0.2], &SIZES, Some(0.005), None).unwrap();
        assert!(close(&p, &[0.005; 3], 1e-12), "{p:?}");
    }

    #[test]
    fn active_budget_by_hand() {
        // sizes [10, 10], x = [1, 0.6]: A(s) = round(10 s) + round(6 s).
        // round(10 s) becomes 6 at s = 0.55; round(6 s) becomes 4 at s = 0.5833.
        // A <= 8 holds for s < 0.55 (5 + 3), so the projection is s -> 0.55⁻.
        let p = project_to_budget(&[1.0, 0.6], &[10, 10], None, Some(8)).unwrap();
        assert_eq!(active_weights(&p, &[10, 10]), Some(8));
        assert!(p[0] < 0.55 && p[0] > 0.55 - 1e-12, "{p:?}");
        assert!((p[1] / p[0] - 0.6).abs() < 1e-12);
        // Floor: 2 layers at d_min = 0.005 of 1000 weights each -> 5 + 5 = 10 active.
        assert_eq!(project_to_budget(&[0.9, 0.9], &[1000, 1000], None, Some(9)), None);
        let p = project_to_budget(&[0.9, 0.9], &[1000, 1000], None, Some(10)).unwrap();
        assert_eq!(active_weights(&p, &[1000, 1000]), Some(10));
    }

    #[test]
    fn both_budgets_and_passthrough() {
        // Density <= 0.3 alone allows s = 0.3/0.37; active <= 100 is tighter.
        let p = project_to_budget(&[1.0, 0.5, 0.2], &SIZES, Some(0.3), Some(100)).unwrap();
        assert!(active_weights(&p, &SIZES).unwrap() <= 100);
        assert!(overall_density(&p, &SIZES).unwrap() <= 0.3);
        // Within budget: unchanged, except clamping into [d_min, 1].
        let p = project_to_budget(&[1.5, 0.001, 0.2], &SIZES, Some(0.5), Some(500)).unwrap();
        assert_eq!(p, vec![1.0, 0.005, 0.2]);
        assert_eq!(project_to_budget(&[0.3, 0.3, 0.3], &SIZES, None, None), Some(vec![0.3; 3]));
    }

    #[test]
    fn uniform_broadcast_and_invalid_input() {
        let p = project_to_budget(&[0.8], &[100, 300], Some(0.4), None).unwrap();
        assert!(close(&p, &[0.4, 0.4], 1e-12), "{p:?}");
        assert_eq!(project_to_budget(&[0.5, 0.5], &SIZES, Some(0.1), None), None);
        assert_eq!(project_to_budget(&[f64::NAN, 0.5, 0.5], &SIZES, Some(0.1), None), None);
        assert_eq!(project_to_budget(&[0.5], &[0, 0], Some(0.1), None), None);
        assert_eq!(project_to_budget(&[0.5, 0.5, 0.5], &SIZES, Some(f64::NAN), None), None);
        assert_eq!(project_to_budget_with_floor(&[0.5], &[10], None, None, 2.0), None);
    }
}
