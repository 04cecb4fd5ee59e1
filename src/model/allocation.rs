//! Layer-wise density allocation (Evci et al. 2020, RigL, appendix and
//! `rigl/sparse_utils.py`): uniform, Erdős-Rényi (ER) and Erdős-Rényi-Kernel (ERK).
//! A layer's density is `eps * score`, with `score` 1 (uniform),
//! `(n_in + n_out) / (n_in * n_out)` (ER) or
//! `(n_in + n_out + k_h + k_w) / (n_in * n_out * k_h * k_w)` (ERK; for a linear layer
//! the same as ER), and `eps` solved so the model holds `target` of its weights. A
//! layer whose density would exceed 1 is made dense and `eps` re-solved (the layers
//! with the largest score first, as RigL does). Counts are rounded by largest
//! remainder, so the model's total is exactly `round(target * total)` whenever the
//! dense layers leave room for it, and each layer within one weight of its share.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Names of [`AllocationKind`]s, as scripts spell them.
pub const ALLOCATIONS: [&str; 3] = ["uniform", "er", "erk"];

/// How a target density is shared among layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocationKind {
    /// The same density in every (non-dense) layer.
    Uniform,
    /// Erdős-Rényi: density proportional to `(n_in + n_out) / (n_in * n_out)`.
    Er,
    /// Erdős-Rényi-Kernel: ER with the kernel's height and width added.
    Erk,
}

impl AllocationKind {
    /// `uniform`, `er` or `erk` (case-insensitive).
    ///
    /// # Errors
    /// Another name, listing the valid ones.
    pub fn parse(name: &str) -> Result<Self> {
        Ok([AllocationKind::Uniform, AllocationKind::Er, AllocationKind::Erk][crate::registry::lookup_key("allocation", name, &ALLOCATIONS)?])
    }

    /// The unnormalised density of a layer of weight `shape` (`[out, in]` or `[out, in, kh, kw]`).
    fn score(self, shape: &[i64]) -> f64 {
        let (o, i) = (shape[0] as f64, shape[1] as f64);
        let (kh, kw) = (shape.get(2).copied().unwrap_or(1) as f64, shape.get(3).copied().unwrap_or(1) as f64);
        match self {
            AllocationKind::Uniform => 1.0,
            AllocationKind::Er => (i + o) / (i * o),
            AllocationKind::Erk if shape.len() == 4 => (i + o + kh + kw) / (i * o * kh * kw),
            AllocationKind::Erk => (i + o) / (i * o),
        }
    }
}

/// A target density for the whole model and how it is shared among layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// Uniform, ER or ERK.
    pub kind: AllocationKind,
    /// Fraction of all weights active, in (0, 1].
    pub target: f64,
    /// Keep the first weight layer dense.
    #[serde(default)]
    pub dense_first: bool,
    /// Keep the last weight layer dense.
    #[serde(default)]
    pub dense_last: bool,
}

impl Allocation {
    /// `kind` at `target` with no layer forced dense.
    pub fn new(kind: AllocationKind, target: f64) -> Self {
        Allocation { kind, target, dense_first: false, dense_last: false }
    }

    /// Per-layer densities (`eps * score`, 1 for dense layers) before rounding.
    ///
    /// # Errors
    /// A target outside (0, 1], no layers, a shape that is not 2-D or 4-D with
    /// positive sizes, or dense layers that alone exceed the target.
    pub fn densities(&self, shapes: &[Vec<i64>]) -> Result<Vec<f64>> {
        if !(self.target > 0.0 && self.target <= 1.0) {
            return Err(Error::config("target", format!("{} is outside (0, 1]", self.target)));
        }
        if shapes.is_empty() {
            return Err(Error::config("allocation", "the model has no weight layers"));
        }
        if let Some(s) = shapes.iter().find(|s| !(s.len() == 2 || s.len() == 4) || s.iter().any(|d| *d < 1)) {
            return Err(Error::config("allocation", format!("weight shape {s:?} is not [out, in] or [out, in, kh, kw] with positive sizes")));
        }
        let n: Vec<f64> = shapes.iter().map(|s| s.iter().product::<i64>() as f64).collect();
        let total: f64 = n.iter().sum();
        let last = shapes.len() - 1;
        let mut dense: Vec<bool> = (0..shapes.len()).map(|l| (self.dense_first && l == 0) || (self.dense_last && l == last)).collect();
        let scores: Vec<f64> = shapes.iter().map(|s| self.kind.score(s)).collect();
        loop {
            let budget = self.target * total - (0..n.len()).filter(|l| dense[*l]).map(|l| n[l]).sum::<f64>();
            let raw: f64 = (0..n.len()).filter(|l| !dense[*l]).map(|l| scores[l] * n[l]).sum();
            if budget < -1e-9 * total {
                let kept: Vec<usize> = (0..n.len()).filter(|l| dense[*l]).map(|l| l + 1).collect();
                return Err(Error::config(
                    "target",
                    format!(
                        "{}: the layers kept dense ({kept:?}, 1-based) hold more than the target's {} of {} weights; raise the target or drop dense_first/dense_last",
                        self.target,
                        (self.target * total).round(),
                        total
                    ),
                ));
            }
            if raw == 0.0 {
                // Every layer dense: only a target of 1 gets here.
                return Ok(vec![1.0; n.len()]);
            }
            let eps = budget.max(0.0) / raw;
            let max = (0..n.len()).filter(|l| !dense[*l]).map(|l| scores[l]).fold(f64::MIN, f64::max);
            if eps * max > 1.0 + 1e-12 {
                for l in 0..n.len() {
                    if !dense[l] && scores[l] == max {
                        dense[l] = true;
                    }
                }
                continue;
            }
            return Ok((0..n.len()).map(|l| if dense[l] { 1.0 } else { eps * scores[l] }).collect());
        }
    }

    /// Exact active counts per layer: at least 1 and at most the layer's size each,
    /// summing to `round(target * total)` (largest remainder).
    ///
    /// # Errors
    /// As [`Allocation::densities`].
    pub fn active_counts(&self, shapes: &[Vec<i64>]) -> Result<Vec<i64>> {
        let d = self.densities(shapes)?;
        let n: Vec<i64> = shapes.iter().map(|s| s.iter().product()).collect();
        let want = (self.target * n.iter().sum::<i64>() as f64).round() as i64;
        let share: Vec<f64> = d.iter().zip(&n).map(|(d, n)| d * *n as f64).collect();
        let mut k: Vec<i64> = share.iter().zip(&n).map(|(s, n)| (s.floor() as i64).clamp(1, *n)).collect();
        let mut order: Vec<usize> = (0..n.len()).collect();
        order.sort_by(|a, b| (share[*b] - share[*b].floor()).total_cmp(&(share[*a] - share[*a].floor())).then(a.cmp(b)));
        let mut left = want - k.iter().sum::<i64>();
        // Largest fractional parts first (one pass suffices: the parts sum to less than
        // the layer count); a pass that changes nothing ends the loop.
        while left != 0 {
            let before = left;
            for &l in &order {
                if left > 0 && k[l] < n[l] {
                    k[l] += 1;
                    left -= 1;
                }
            }
            for &l in order.iter().rev() {
                if left < 0 && k[l] > 1 {
                    k[l] -= 1;
                    left += 1;
                }
            }
            if left == before {
                break;
            }
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 784-300-100-10 MLP at 10 %, worked by hand: ER scores s = (i + o) / (i o) are
    /// 1084/235200, 400/30000 and 110/1000; s * n = 1084, 400, 110 (sum 1594), so
    /// eps = 26620 / 1594 = 16.700 and fc3 would get 16.700 * 0.11 = 1.837 > 1: it is made
    /// dense (1000 weights) and eps re-solved on the rest: 25620 / 1484 = 17.264,
    /// giving fc1 17.264 * 1084 = 18714.34 and fc2 17.264 * 400 = 6905.66 active weights;
    /// largest remainder rounds them to 18714 and 6906, 26620 in all with fc3's 1000
    /// (26620 = 0.1 * 266200).
    #[test]
    fn erk_on_a_hand_worked_mlp() {
        let shapes = vec![vec![300, 784], vec![100, 300], vec![10, 100]];
        let a = Allocation::new(AllocationKind::Erk, 0.1);
        let d = a.densities(&shapes).unwrap();
        assert_eq!(d[2], 1.0);
        assert!((d[0] - 25620.0 / 1484.0 * 1084.0 / 235200.0).abs() < 1e-12, "{d:?}");
        assert!((d[1] - 25620.0 / 1484.0 * 400.0 / 30000.0).abs() < 1e-12, "{d:?}");
        let k = a.active_counts(&shapes).unwrap();
        assert_eq!(k, vec![18714, 6906, 1000]);
        assert_eq!(k.iter().sum::<i64>(), 26620);
        // ER equals ERK for linear layers; uniform is the same density everywhere.
        assert_eq!(Allocation::new(AllocationKind::Er, 0.1).active_counts(&shapes).unwrap(), k);
        assert_eq!(Allocation::new(AllocationKind::Uniform, 0.1).active_counts(&shapes).unwrap(), vec![23520, 3000, 100]);
    }

    /// A conv layer's kernel enters ERK, not ER: [16, 3, 3, 3] scores (3 + 16 + 3 + 3) / 432
    /// under ERK and 19 / 48 under ER (target 0.3 of 5360 weights: 1608).
    #[test]
    fn the_kernel_enters_erk_only() {
        let shapes = vec![vec![16, 3, 3, 3], vec![32, 16, 3, 3], vec![10, 32]];
        let erk = Allocation::new(AllocationKind::Erk, 0.3).densities(&shapes).unwrap();
        let er = Allocation::new(AllocationKind::Er, 0.3).densities(&shapes).unwrap();
        // fc would get 13.29 * 42/320 = 1.74: dense; then eps = 1288 / 79 on the convs.
        assert_eq!(erk[2], 1.0);
        assert!((erk[0] - 1288.0 / 79.0 * 25.0 / 432.0).abs() < 1e-12, "{erk:?}");
        assert!((erk[1] - 1288.0 / 79.0 * 54.0 / 4608.0).abs() < 1e-12, "{erk:?}");
        assert!((er[0] - 1608.0 / 645.0 * 19.0 / 48.0).abs() < 1e-12, "{er:?}");
        assert_ne!(erk, er);
        for a in [AllocationKind::Uniform, AllocationKind::Er, AllocationKind::Erk] {
            let k = Allocation::new(a, 0.3).active_counts(&shapes).unwrap();
            assert_eq!(k.iter().sum::<i64>(), (0.3f64 * (432 + 4608 + 320) as f64).round() as i64, "{a:?} {k:?}");
        }
    }

    #[test]
    fn dense_first_and_last_are_kept_and_the_rest_share_the_target() {
        let shapes = vec![vec![300, 784], vec![300, 300], vec![10, 300]];
        let a = Allocation { dense_first: false, dense_last: true, ..Allocation::new(AllocationKind::Uniform, 0.2) };
        let k = a.active_counts(&shapes).unwrap();
        assert_eq!(k[2], 3000);
        assert_eq!(k.iter().sum::<i64>(), (0.2f64 * 328200.0).round() as i64);
        assert!((k[0] as f64 / 235200.0 - k[1] as f64 / 90000.0).abs() < 1e-4, "{k:?}");
        let e = Allocation { dense_first: true, ..Allocation::new(AllocationKind::Erk, 0.1) }.active_counts(&shapes).unwrap_err();
        assert!(e.to_string().starts_with("target: 0.1: the layers kept dense ([1], 1-based) hold more than"), "{e}");
        assert_eq!(Allocation::new(AllocationKind::Erk, 1.5).densities(&shapes).unwrap_err().to_string(), "target: 1.5 is outside (0, 1]");
        assert_eq!(Allocation::new(AllocationKind::Erk, 1.0).active_counts(&shapes).unwrap(), vec![235200, 90000, 3000]);
    }
}
