//! Random fixed masks with an exact number of active entries (SPEC 1).
use crate::error::{Error, Result};
use crate::rng::{stream, Stream};
use rand_distr::{Distribution, Normal};
use tch::{Kind, Tensor};

/// How many weights of a layer are active.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Density {
    /// A fraction in (0, 1]: `k = round(d * numel)`, at least 1.
    Fraction(f64),
    /// An explicit active count `k` in 1..=numel.
    Active(i64),
}

impl Density {
    /// The exact active count for a layer of `numel` weights.
    ///
    /// # Errors
    /// A density outside (0, 1] or a count outside 1..=numel, naming `layer`.
    pub fn active(&self, numel: i64, layer: &str) -> Result<i64> {
        match *self {
            Density::Fraction(d) if d > 0.0 && d <= 1.0 && d.is_finite() => Ok(((d * numel as f64).round() as i64).max(1)),
            Density::Fraction(d) => Err(Error::config("density", format!("{layer}: {d} is outside (0, 1]"))),
            Density::Active(k) if (1..=numel).contains(&k) => Ok(k),
            Density::Active(k) => Err(Error::config("active", format!("{layer}: {k} is outside 1..={numel}"))),
        }
    }
}

/// A float 0/1 mask of `shape` with exactly `k` ones at positions drawn uniformly
/// without replacement from the `(seed, layer)` mask stream.
pub fn random_mask(shape: &[i64], k: i64, seed: u64, layer: u64) -> Tensor {
    let numel: i64 = shape.iter().product();
    let mut values = vec![0f32; numel as usize];
    if k >= numel {
        values.fill(1.0);
    } else {
        let mut rng = stream(seed, Stream::Mask, layer);
        for i in rand::seq::index::sample(&mut rng, numel as usize, k as usize) {
            values[i] = 1.0;
        }
    }
    Tensor::from_slice(&values).view(shape)
}

/// Kaiming (He) normal values, std = sqrt(2 / fan), from the `(seed, layer)` init stream.
pub fn kaiming_normal(shape: &[i64], fan: f64, seed: u64, layer: u64) -> Result<Tensor> {
    if !(fan > 0.0 && fan.is_finite()) {
        return Err(Error::config("init_fan", format!("fan {fan} must be positive")));
    }
    let numel: i64 = shape.iter().product();
    let normal = Normal::new(0.0f32, (2.0 / fan).sqrt() as f32).map_err(|e| Error::config("init_fan", e.to_string()))?;
    let mut rng = stream(seed, Stream::Init, layer);
    let values: Vec<f32> = (0..numel).map(|_| normal.sample(&mut rng)).collect();
    Ok(Tensor::from_slice(&values).view(shape))
}

/// Creates a layer's masked weight and its mask under `path` (`weight`, a trainable
/// variable zero where masked, and `mask`, a non-trainable variable saved with the
/// model), drawing both from the `(seed, layer)` streams.
pub fn masked_weight(path: &tch::nn::Path, shape: &[i64], k: i64, fan: f64, seed: u64, layer: u64) -> Result<(Tensor, Tensor)> {
    let mask_values = random_mask(shape, k, seed, layer);
    let w = kaiming_normal(shape, fan, seed, layer)? * &mask_values;
    let weight = path.f_var_copy("weight", &w)?;
    let mask = path.f_zeros_no_train("mask", shape)?;
    tch::no_grad(|| mask.shallow_clone().copy_(&mask_values));
    Ok((weight, mask))
}

/// Active count of a 0/1 mask.
pub fn count(mask: &Tensor) -> i64 {
    mask.sum(Kind::Int64).int64_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_counts_and_rounding() {
        assert_eq!(Density::Fraction(0.25).active(10, "l").unwrap(), 3); // 2.5 rounds away from zero
        assert_eq!(Density::Fraction(1e-9).active(10, "l").unwrap(), 1);
        assert_eq!(Density::Active(7).active(10, "l").unwrap(), 7);
        assert_eq!(Density::Fraction(1.5).active(10, "fc1").unwrap_err().to_string(), "density: fc1: 1.5 is outside (0, 1]");
        assert_eq!(Density::Active(11).active(10, "fc2").unwrap_err().to_string(), "active: fc2: 11 is outside 1..=10");
        let m = random_mask(&[30, 40], 123, 5, 0);
        assert_eq!(count(&m), 123);
        assert!(m.equal(&random_mask(&[30, 40], 123, 5, 0)));
        assert!(!m.equal(&random_mask(&[30, 40], 123, 5, 1)));
    }

    #[test]
    fn kaiming_std_matches_fan() {
        let w = kaiming_normal(&[400, 500], 50.0, 1, 0).unwrap();
        let std = w.std(true).double_value(&[]);
        assert!((std - (2.0f64 / 50.0).sqrt()).abs() < 0.002, "{std}");
    }
}
