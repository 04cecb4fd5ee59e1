//! Pareto front of search results: accuracy (maximised) against active
//! weights (minimised).

/// Indices of the non-dominated points among `(accuracy, active)` pairs, sorted
/// by ascending `active` (ties by descending accuracy, then index).
///
/// Point `i` is dominated when some `j` has `acc_j >= acc_i` and `active_j <=
/// active_i` with at least one strict. Exact duplicates do not dominate each
/// other, so all copies of a front point are returned. Points with a NaN
/// coordinate are ignored. `O(n²)`, meant for the few hundred trials of a search.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let valid = |p: &(f64, f64)| !p.0.is_nan() && !p.1.is_nan();
    let dominates = |a: &(f64, f64), b: &(f64, f64)| a.0 >= b.0 && a.1 <= b.1 && (a.0 > b.0 || a.1 < b.1);
    let mut front: Vec<usize> = (0..points.len()).filter(|&i| valid(&points[i])).filter(|&i| !points.iter().any(|q| valid(q) && dominates(q, &points[i]))).collect();
    front.sort_by(|&i, &j| {
        let (a, b) = (points[i], points[j]);
        a.1.total_cmp(&b.1).then(b.0.total_cmp(&a.0)).then(i.cmp(&j))
    });
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_by_hand() {
        // idx: (acc, active)
        // 0: (0.90, 1000)  front: nothing is at least as accurate with fewer weights
        // 1: (0.85,  400)  front
        // 2: (0.80,  500)  dominated by 1 (more accurate and smaller)
        // 3: (0.92, 5000)  front: most accurate
        // 4: (0.70,  100)  front: smallest
        // 5: (0.85,  600)  dominated by 1 (same accuracy, fewer weights)
        // 6: (0.70,  150)  dominated by 4 (same accuracy, fewer weights)
        // 7: (0.60,  100)  dominated by 4 (same size, more accurate)
        let pts = [(0.90, 1000.0), (0.85, 400.0), (0.80, 500.0), (0.92, 5000.0), (0.70, 100.0), (0.85, 600.0), (0.70, 150.0), (0.60, 100.0)];
        assert_eq!(pareto_front(&pts), vec![4, 1, 0, 3]);
    }

    #[test]
    fn duplicates_nan_and_empty() {
        let pts = [(0.5, 10.0), (0.5, 10.0), (f64::NAN, 1.0), (0.4, 20.0), (0.6, f64::NAN)];
        assert_eq!(pareto_front(&pts), vec![0, 1]);
        assert!(pareto_front(&[]).is_empty());
        assert_eq!(pareto_front(&[(0.1, 5.0)]), vec![0]);
    }
}
