//! Activation functions, some with learnable per-unit parameters (SPEC 2).
use crate::error::{Error, Result};
use crate::registry;
use crate::rng::{stream, Stream};
use rand::Rng;
use tch::{nn, Tensor};

/// Names accepted by [`Activation::new`].
pub const ACTIVATIONS: &[&str] = &["relu", "prelu", "elu", "swish", "srelu", "sigmoid", "tanh", "gelu"];

/// An activation for one layer of `units` units (features or channels).
#[derive(Debug)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// max(0, x) + a * min(0, x), one learnable slope per unit, init 0.25.
    Prelu(Tensor),
    /// ELU with alpha 1.
    Elu,
    /// x * sigmoid(x).
    Swish,
    /// S-shaped ReLU with per-unit learnable t_l, a_l, t_r, a_r.
    Srelu {
        /// Left threshold, init 0.
        tl: Tensor,
        /// Left slope, init U(0, 1).
        al: Tensor,
        /// Right threshold, init U(0, 5).
        tr: Tensor,
        /// Right slope, init 1.
        ar: Tensor,
    },
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// GELU (exact erf form).
    Gelu,
}

impl Activation {
    /// Checks that `name` is an activation (case-insensitive) and returns it as
    /// [`ACTIVATIONS`] spells it.
    ///
    /// # Errors
    /// Unknown names list the valid ones.
    pub fn parse(name: &str) -> Result<&'static str> {
        Ok(ACTIVATIONS[registry::lookup("activation", name, ACTIVATIONS)?])
    }

    /// Creates `name` for `units` units under `path`; `spatial` adds the `[C, 1, 1]`
    /// broadcast shape for conv feature maps. SReLU's random init draws from the
    /// `(seed, layer)` init stream.
    ///
    /// # Errors
    /// Unknown names list the valid ones.
    pub fn new(name: &str, path: &nn::Path, units: i64, spatial: bool, seed: u64, layer: u64) -> Result<Self> {
        let shape: Vec<i64> = if spatial { vec![units, 1, 1] } else { vec![units] };
        Ok(match ACTIVATIONS[registry::lookup("activation", name, ACTIVATIONS)?] {
            "relu" => Activation::Relu,
            "prelu" => Activation::Prelu(path.f_var_copy("prelu", &Tensor::full([units], 0.25, (tch::Kind::Float, tch::Device::Cpu)))?),
            "elu" => Activation::Elu,
            "swish" => Activation::Swish,
            "srelu" => {
                let mut rng = stream(seed, Stream::Init, 1_000_000 + layer);
                let mut uniform = |hi: f32| -> Tensor {
                    let v: Vec<f32> = (0..units).map(|_| rng.random::<f32>() * hi).collect();
                    Tensor::from_slice(&v).view(shape.as_slice())
                };
                let al = uniform(1.0);
                let tr = uniform(5.0);
                Activation::Srelu {
                    tl: path.f_var_copy("srelu_tl", &Tensor::zeros(shape.as_slice(), (tch::Kind::Float, tch::Device::Cpu)))?,
                    al: path.f_var_copy("srelu_al", &al)?,
                    tr: path.f_var_copy("srelu_tr", &tr)?,
                    ar: path.f_var_copy("srelu_ar", &Tensor::ones(shape.as_slice(), (tch::Kind::Float, tch::Device::Cpu)))?,
                }
            }
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            _ => Activation::Gelu,
        })
    }

    /// xs: `[B, units]` or `[B, units, H, W]`, same shape out.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let r = match self {
            Activation::Relu => xs.f_relu(),
            // A batched ensemble's slopes are [E, 1, units] against [E, B, units].
            Activation::Prelu(a) if a.dim() > 1 => xs.f_gt(0.0).and_then(|pos| xs.f_where_self(&pos, &(xs * a))),
            Activation::Prelu(a) => xs.f_prelu(a),
            Activation::Elu => xs.f_elu(),
            Activation::Swish => xs.f_silu(),
            Activation::Srelu { tl, al, tr, ar } => srelu(xs, tl, al, tr, ar),
            Activation::Sigmoid => xs.f_sigmoid(),
            Activation::Tanh => xs.f_tanh(),
            Activation::Gelu => xs.f_gelu("none"),
        };
        r.map_err(|e| Error::Shape(format!("activation: {e}")))
    }
}

/// f(x) = t_r + a_r (x - t_r) for x >= t_r; x between; t_l + a_l (x - t_l) for x <= t_l.
fn srelu(xs: &Tensor, tl: &Tensor, al: &Tensor, tr: &Tensor, ar: &Tensor) -> Result<Tensor, tch::TchError> {
    let right = tr + ar * (xs - tr);
    let left = tl + al * (xs - tl);
    let mid = xs.f_where_self(&xs.f_gt_tensor(tl)?, &left)?;
    right.f_where_self(&xs.f_ge_tensor(tr)?, &mid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn srelu_piecewise_and_prelu_slope() {
        let vs = VarStore::new(Device::Cpu);
        let t = |v: &[f32]| Tensor::from_slice(v);
        let x = t(&[-2.0, 0.5, 4.0]).view([1, 3]);
        // tl = 0, al = 0.5, tr = 1, ar = 2 for all units.
        let y = srelu(&x, &t(&[0.0; 3]), &t(&[0.5; 3]), &t(&[1.0; 3]), &t(&[2.0; 3])).unwrap();
        assert_eq!(Vec::<f32>::try_from(y.view([-1])).unwrap(), vec![-1.0, 0.5, 7.0]);
        let p = Activation::new("PReLU", &vs.root(), 3, false, 0, 0).unwrap();
        let y = p.forward(&x).unwrap();
        assert_eq!(Vec::<f32>::try_from(y.view([-1])).unwrap(), vec![-0.5, 0.5, 4.0]);
        let e = Activation::new("relux", &vs.root(), 3, false, 0, 0).unwrap_err().to_string();
        assert!(e.starts_with("unknown activation \"relux\" (did you mean \"relu\"?); valid: relu, prelu"), "{e}");
        let _ = Kind::Float;
    }
}
