//! Dense Cholesky factorisation and triangular solves for the Gaussian process
//! (row-major `n × n`, meant for at most a few hundred points).

/// Lower-triangular `L` with `L·Lᵀ = a` (row-major, upper part zero); `Err` names
/// the first pivot that is not positive and finite.
pub(crate) fn cholesky(a: &[f64], n: usize) -> Result<Vec<f64>, String> {
    if a.len() != n * n {
        return Err(format!("matrix has {} entries, expected {n}²", a.len()));
    }
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - s;
                if !(d > 0.0 && d.is_finite()) {
                    return Err(format!("pivot {i} is {d:e}"));
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Ok(l)
}

/// Solves `L·z = b` in place (forward substitution).
pub(crate) fn solve_lower(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let s: f64 = l[i * n..i * n + i].iter().zip(&b[..i]).map(|(p, q)| p * q).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
}

/// Solves `Lᵀ·x = b` in place (back substitution).
pub(crate) fn solve_upper_t(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * b[k]).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_factorisation_and_solve() {
        // [[4, 12, -16], [12, 37, -43], [-16, -43, 98]] = L·Lᵀ, L = [[2,0,0],[6,1,0],[-8,5,3]].
        let a = [4.0, 12.0, -16.0, 12.0, 37.0, -43.0, -16.0, -43.0, 98.0];
        let l = cholesky(&a, 3).unwrap();
        assert_eq!(l, vec![2.0, 0.0, 0.0, 6.0, 1.0, 0.0, -8.0, 5.0, 3.0]);
        // A·[1, 2, 3] = [-20, -43, 192]; solving recovers [1, 2, 3].
        let mut b = [-20.0, -43.0, 192.0];
        solve_lower(&l, 3, &mut b);
        solve_upper_t(&l, 3, &mut b);
        assert!(b.iter().zip([1.0, 2.0, 3.0]).all(|(x, y)| (x - y).abs() < 1e-12), "{b:?}");
        // Not positive definite: [[1, 2], [2, 1]] has eigenvalue -1.
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_err());
        assert!(cholesky(&[1.0, 2.0], 2).is_err());
    }
}
