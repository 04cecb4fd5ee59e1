//! Gradient flow and effective gradient flow (EGF), report 3.2.2, SPEC 5.
use crate::data::Split;
use crate::error::Result;
use crate::model::{Mode, Model};

/// Settings for measuring during training.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GradFlowConfig {
    /// Measurement points, evenly spaced (11 in the report).
    pub points: usize,
    /// Size of the fixed measurement subset of the training set.
    pub samples: usize,
}

impl Default for GradFlowConfig {
    fn default() -> Self {
        Self { points: 11, samples: 5000 }
    }
}

/// Norms of one weight layer's gradient.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerNorms {
    /// Layer name.
    pub name: String,
    /// ||G_l||_1 (unmasked).
    #[serde(with = "crate::nan_safe")]
    pub l1: f64,
    /// ||G_l||_2 (unmasked).
    #[serde(with = "crate::nan_safe")]
    pub l2: f64,
    /// ||G_l (.) m_l||_1.
    #[serde(with = "crate::nan_safe")]
    pub masked_l1: f64,
    /// ||G_l (.) m_l||_2.
    #[serde(with = "crate::nan_safe")]
    pub masked_l2: f64,
}

/// The four measures at one point.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GradFlowPoint {
    /// 0-based epoch after which it was measured.
    pub epoch: usize,
    /// EGF_1 = mean_l ||G_l (.) m_l||_1 (eq. 3.6).
    #[serde(with = "crate::nan_safe")]
    pub egf1: f64,
    /// EGF_2 = mean_l ||G_l (.) m_l||_2 (eq. 3.6).
    #[serde(with = "crate::nan_safe")]
    pub egf2: f64,
    /// ||g||_1 of all layers' G_l concatenated (eq. 3.5).
    #[serde(with = "crate::nan_safe")]
    pub gnorm1: f64,
    /// ||g||_2 of all layers' G_l concatenated (eq. 3.5).
    #[serde(with = "crate::nan_safe")]
    pub gnorm2: f64,
    /// Per-layer norms.
    pub layers: Vec<LayerNorms>,
}

/// Epochs (0-based) after which to measure: epoch 0 and round(k * E / (P - 1)) - 1
/// for k = 1..P-1, deduplicated (SPEC 5: E = 1000, P = 11 gives 0, 99, ..., 999).
pub fn measure_epochs(epochs: usize, points: usize) -> Vec<usize> {
    if epochs == 0 || points == 0 {
        return vec![];
    }
    if points > epochs {
        // Steps of at most one epoch reach every epoch (and k * epochs could overflow).
        return (0..epochs).collect();
    }
    let mut v = vec![0];
    for k in 1..points {
        let e = ((k * epochs) as f64 / (points - 1) as f64).round() as usize;
        v.push(e.max(1) - 1);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// The fixed measurement subset: the first `samples` of a permutation with a fixed
/// seed, the same for every run on a dataset so runs are comparable.
pub fn measurement_indices(n: usize, samples: usize) -> Vec<i64> {
    let mut p = crate::rng::permutation(&mut crate::rng::stream(0, crate::rng::Stream::Split, 7), n);
    p.truncate(samples.min(n));
    p
}

/// Gradient of the mean loss over `subset` w.r.t. each weight layer's effective
/// weight. Weights are held at zero where masked and used directly, so the
/// parameter gradient IS G_l, non-zero at masked positions too (report 3.2.2).
/// Compact layers measure through a dense leaf of their effective weight, for the
/// same reason. Runs in [`Mode::Measure`] (batch statistics, no running-stat update, no dropout)
/// and leaves all gradients zero, so training is unchanged.
pub fn measure(model: &dyn Model, subset: &Split, epoch: usize) -> Result<GradFlowPoint> {
    let params = model.params();
    for p in &params {
        p.tensor.shallow_clone().zero_grad();
    }
    model.clear_measure();
    let n = subset.len() as i64;
    // Chunks bound memory for conv nets; an MLP subset of 5,000 goes in one piece.
    let per_example: i64 = subset.x.size()[1..].iter().product();
    let chunk = (1i64 << 24).checked_div(per_example).unwrap_or(n).clamp(1, n.max(1));
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let logits = model.forward(&subset.x.narrow(0, start, len), Mode::Measure)?;
        let loss = super::cross_entropy(&logits, &subset.y.narrow(0, start, len))? * (len as f64 / n as f64);
        loss.f_backward()?;
        start += len;
    }
    let mut layers = Vec::new();
    let (mut g1, mut g2sq) = (0.0, 0.0);
    for l in model.weight_layers() {
        let g = l.weight.grad();
        let g = if g.defined() { g } else { l.weight.zeros_like() };
        let masked = &g * l.mask;
        let l1 = crate::repro::sum_all(&g.abs());
        let l2sq = crate::repro::sum_all(&g.square());
        let ml1 = crate::repro::sum_all(&masked.abs());
        let ml2 = crate::repro::sum_all(&masked.square()).sqrt();
        g1 += l1;
        g2sq += l2sq;
        layers.push(LayerNorms { name: l.name.to_string(), l1, l2: l2sq.sqrt(), masked_l1: ml1, masked_l2: ml2 });
    }
    for p in &params {
        p.tensor.shallow_clone().zero_grad();
    }
    model.clear_measure();
    let nl = layers.len().max(1) as f64;
    Ok(GradFlowPoint { epoch, egf1: layers.iter().map(|l| l.masked_l1).sum::<f64>() / nl, egf2: layers.iter().map(|l| l.masked_l2).sum::<f64>() / nl, gnorm1: g1, gnorm2: g2sq.sqrt(), layers })
}

/// Averages of the four measures over the measurement points ("average EGF").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradFlowAverage {
    /// Mean EGF_1.
    pub egf1: f64,
    /// Mean EGF_2.
    pub egf2: f64,
    /// Mean ||g||_1.
    pub gnorm1: f64,
    /// Mean ||g||_2.
    pub gnorm2: f64,
}

/// Mean over points; `None` when nothing was measured.
pub fn average(points: &[GradFlowPoint]) -> Option<GradFlowAverage> {
    if points.is_empty() {
        return None;
    }
    let n = points.len() as f64;
    let mean = |f: fn(&GradFlowPoint) -> f64| points.iter().map(f).sum::<f64>() / n;
    Some(GradFlowAverage { egf1: mean(|p| p.egf1), egf2: mean(|p| p.egf2), gnorm1: mean(|p| p.gnorm1), gnorm2: mean(|p| p.gnorm2) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_measurement_epochs() {
        assert_eq!(measure_epochs(1000, 11), vec![0, 99, 199, 299, 399, 499, 599, 699, 799, 899, 999]);
        assert_eq!(measure_epochs(5, 11), vec![0, 1, 2, 3, 4]);
        assert_eq!(measure_epochs(20, 11), vec![0, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
        assert_eq!(measure_epochs(1, 11), vec![0]);
    }
}
