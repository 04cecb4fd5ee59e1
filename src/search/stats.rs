//! Small numeric helpers shared by the searchers: numpy's percentile and the
//! standard normal density and distribution function.

/// `numpy.nanpercentile(values, q)` with the default `linear` method: NaNs are
/// dropped, the rest sorted, and the value at virtual index `(n-1)·q/100`
/// interpolated with numpy's `_lerp` (identical results for finite values).
/// `None` if no value is left or `q` is outside `[0, 100]`.
pub fn nanpercentile(values: &[f64], q: f64) -> Option<f64> {
    if !(0.0..=100.0).contains(&q) {
        return None;
    }
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let virtual_index = (n - 1) as f64 * (q / 100.0);
    if virtual_index >= (n - 1) as f64 {
        return Some(v[n - 1]);
    }
    let prev = virtual_index.floor();
    let (a, b) = (v[prev as usize], v[prev as usize + 1]);
    let t = virtual_index - prev;
    let diff = b - a;
    Some(if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t })
}

/// Standard normal density.
pub(crate) fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal CDF via the Chebyshev `erfc` fit of Numerical Recipes
/// (fractional error below 1.2e-7 everywhere).
pub(crate) fn norm_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc_abs = t * (-x * x + poly).exp();
    let erfc = if x >= 0.0 { erfc_abs } else { 2.0 - erfc_abs };
    0.5 * erfc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy() {
        // numpy 2.4: np.nanpercentile(v, q)
        // [1,2,3,4], 75: index 0.75·3 = 2.25 -> 3 + 0.25·(4-3) = 3.25
        assert_eq!(nanpercentile(&[4.0, 1.0, 3.0, 2.0], 75.0), Some(3.25));
        // [3,1,2], 40: index 0.8 -> lerp(1, 2, 0.8) = 2 - 1·0.2 = 1.8
        assert_eq!(nanpercentile(&[3.0, 1.0, 2.0], 40.0), Some(1.8));
        // [10, nan, 20], 50: NaN dropped -> 15
        assert_eq!(nanpercentile(&[10.0, f64::NAN, 20.0], 50.0), Some(15.0));
        // [0.4, 0.5], 75: index 0.75 -> 0.5 - 0.1·0.25 = 0.475
        assert_eq!(nanpercentile(&[0.5, 0.4], 75.0), Some(0.475));
        // [0.4, 0.5, 0.7], 75: index 1.5 -> 0.7 - 0.2·0.5 = 0.6 (numpy: 0.6)
        assert_eq!(nanpercentile(&[0.5, 0.4, 0.7], 75.0), Some(0.6));
        // [0.5, 0.55], 75: numpy prints 0.5375000000000001 (b - diff·(1-t) rounding), bit-exact here
        assert_eq!(nanpercentile(&[0.55, 0.5], 75.0), Some(0.5375000000000001));
        // range(20), 50 (Ray's __main__ example with rf = 2): 9.5
        let r: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(nanpercentile(&r, 50.0), Some(9.5));
        assert_eq!(nanpercentile(&[5.0, 1.0], 0.0), Some(1.0));
        assert_eq!(nanpercentile(&[5.0, 1.0], 100.0), Some(5.0));
        assert_eq!(nanpercentile(&[7.0], 75.0), Some(7.0));
        assert_eq!(nanpercentile(&[f64::NAN], 50.0), None);
        assert_eq!(nanpercentile(&[], 50.0), None);
        assert_eq!(nanpercentile(&[1.0], 101.0), None);
    }

    #[test]
    fn normal_by_hand() {
        // φ(0) = 1/√(2π); Φ from the erfc fit is good to ~1.2e-7.
        assert!((norm_pdf(0.0) - 0.3989422804014327).abs() < 1e-15);
        assert!((norm_pdf(1.0) - 0.24197072451914337).abs() < 1e-15);
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.959963984540054) - 0.975).abs() < 2e-7);
        assert!((norm_cdf(-1.0) - 0.15865525393145707).abs() < 2e-7);
        assert!(norm_cdf(-40.0) >= 0.0 && norm_cdf(40.0) <= 1.0);
    }
}
