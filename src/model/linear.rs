//! Sparse linear layer with a fixed 0/1 mask, in one of two representations: a dense
//! weight with masked entries held at 0.0, or the compact values of the active
//! entries executed by the compact kernel ([`crate::compute`]).
use super::mask::{count, masked_weight, Density};
use super::Mode;
use crate::compute::CsrPlan;
use crate::error::{Error, Result};
use std::sync::{Mutex, MutexGuard};
use tch::{nn, Tensor};

/// How a sparse linear layer stores and multiplies its weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    /// Compact when the layer's density is at most [`COMPACT_CROSSOVER`], dense otherwise.
    #[default]
    Auto,
    /// A dense `[out, in]` weight, zero where masked: one dense matmul.
    Dense,
    /// The active values only (`[active]`), multiplied by the compact kernel on the CPU
    /// (on CUDA the dense matrix is materialised from them each step).
    Compact,
}

/// Density at or below which `Kernel::Auto` picks the compact kernel: the measured
/// crossover of `cargo bench --bench kernels` (788 x 788 layer, batch 128, forward +
/// backward, 2 threads; benches/NOTES.md). The choice depends only on the density,
/// never on the device or a timing, so a configuration always computes the same way.
pub const COMPACT_CROSSOVER: f64 = 0.4;

/// The names `kernel` accepts.
pub const KERNELS: [&str; 3] = ["auto", "dense", "compact"];

impl Kernel {
    /// Parses `auto`, `dense` or `compact`.
    ///
    /// # Errors
    /// Any other name, listing the valid ones.
    pub fn parse(name: &str) -> Result<Self> {
        Ok([Kernel::Auto, Kernel::Dense, Kernel::Compact][crate::registry::lookup("kernel", name, &KERNELS)?])
    }
    /// Whether this is the default.
    pub fn is_auto(&self) -> bool {
        *self == Kernel::Auto
    }
    /// Dense or Compact for a layer of this density.
    pub fn resolve(self, density: f64) -> Kernel {
        match self {
            Kernel::Auto if density <= COMPACT_CROSSOVER => Kernel::Compact,
            Kernel::Auto => Kernel::Dense,
            k => k,
        }
    }
}

/// How the Kaiming fan of a layer is chosen (SPEC 2, 4).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Fan {
    /// The layer's own fan-in (`in` for linear, `in * kh * kw` for conv).
    Layer,
    /// The mean active fan-in: `active / out`.
    Effective,
    /// An explicit value (SC-SDC uses the dense twin's fan-in).
    Value(f64),
}

/// Builds a [`SparseLinear`]: `SparseLinearConfig::new(784, 300).with_density(0.1).init(&(root / "fc1"), seed, 0)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseLinearConfig {
    /// Input features.
    pub input: i64,
    /// Output features.
    pub output: i64,
    /// Active weights.
    pub density: Density,
    /// Whether the layer has a bias (initialised to zero).
    pub bias: bool,
    /// Kaiming fan.
    pub fan: Fan,
    /// Representation and kernel.
    pub kernel: Kernel,
}

impl SparseLinearConfig {
    /// A dense (density 1) layer with bias and the layer's fan-in.
    pub fn new(input: i64, output: i64) -> Self {
        Self { input, output, density: Density::Fraction(1.0), bias: true, fan: Fan::Layer, kernel: Kernel::Auto }
    }
    /// Sets the density fraction.
    pub fn with_density(mut self, d: f64) -> Self {
        self.density = Density::Fraction(d);
        self
    }
    /// Sets the exact active count.
    pub fn with_active(mut self, k: i64) -> Self {
        self.density = Density::Active(k);
        self
    }
    /// Enables or disables the bias.
    pub fn with_bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    /// Sets the Kaiming fan.
    pub fn with_fan(mut self, fan: Fan) -> Self {
        self.fan = fan;
        self
    }

    /// Sets the kernel.
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Creates the weight, mask (a non-trainable variable, saved with the model) and
    /// bias under `path`; mask and init draw from `(seed, layer)` streams.
    ///
    /// # Errors
    /// Non-positive sizes, a bad density or fan.
    pub fn init(&self, path: &nn::Path, seed: u64, layer: u64) -> Result<SparseLinear> {
        let name = path.components().collect::<Vec<_>>().join(".");
        if self.input < 1 || self.output < 1 {
            return Err(Error::config("width", format!("{name}: sizes {}x{} must be positive", self.output, self.input)));
        }
        let shape = [self.output, self.input];
        let k = self.density.active(self.output * self.input, &name)?;
        let fan = resolve_fan(self.fan, self.input, k, self.output);
        let bias = if self.bias { Some(path.f_zeros("bias", &[self.output])?) } else { None };
        let total = self.output * self.input;
        if self.kernel.resolve(k as f64 / total as f64) == Kernel::Dense {
            let (weight, mask) = masked_weight(path, &shape, k, fan, seed, layer)?;
            return Ok(SparseLinear { name, param: weight, mask, bias, compact: None });
        }
        // Same mask and initial values as the dense representation, stored compactly.
        let mask = super::mask::random_mask(&shape, k, seed, layer);
        let w = super::mask::kaiming_normal(&shape, fan, seed, layer)?;
        let mut plan = CsrPlan::from_mask(&mask)?;
        let values = path.f_var_copy("values", &plan.f_gather(&w)?)?;
        let mask_var = path.f_zeros_no_train("mask", &shape)?;
        tch::no_grad(|| mask_var.shallow_clone().copy_(&mask));
        Ok(SparseLinear { name, param: values, mask: mask_var, bias, compact: Some(Mutex::new(Compact { plan, measure: None })) })
    }
}

pub(crate) fn resolve_fan(fan: Fan, layer_fan: i64, active: i64, out: i64) -> f64 {
    match fan {
        Fan::Layer => layer_fan as f64,
        Fan::Effective => active as f64 / out as f64,
        Fan::Value(v) => v,
    }
}

struct Compact {
    plan: CsrPlan,
    /// While measuring gradient flow: the dense effective weight as a leaf, so its
    /// gradient is the full `G_l` (SPEC 5), masked positions included.
    measure: Option<Tensor>,
}

/// A linear layer whose masked weights are exactly zero at all times.
pub struct SparseLinear {
    /// Dotted VarStore path, e.g. `fc1`.
    pub name: String,
    /// `[out, in]` float 0/1 (a non-trainable variable, saved with the model).
    pub mask: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
    /// The trainable weight: `weight [out, in]` (dense) or `values [active]` (compact).
    param: Tensor,
    compact: Option<Mutex<Compact>>,
}

impl std::fmt::Debug for SparseLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SparseLinear({} {:?} {:?})", self.name, self.mask.size(), self.kernel())
    }
}

impl SparseLinear {
    fn compact(&self) -> Option<MutexGuard<'_, Compact>> {
        self.compact.as_ref().map(|c| c.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `Dense` or `Compact`.
    pub fn kernel(&self) -> Kernel {
        if self.compact.is_some() {
            Kernel::Compact
        } else {
            Kernel::Dense
        }
    }

    /// The trainable weight tensor: `[out, in]` (dense) or `[active]` (compact).
    pub fn param(&self) -> &Tensor {
        &self.param
    }

    /// The effective `[out, in]` weight, zero where masked. Dense: the variable itself.
    /// Compact: a materialised copy, or, while gradient flow is measured, the leaf that
    /// holds `G_l` in its `.grad`.
    pub fn weight(&self) -> Tensor {
        match self.compact() {
            None => self.param.shallow_clone(),
            Some(mut c) => match &c.measure {
                Some(m) => m.shallow_clone(),
                None => tch::no_grad(|| c.plan.dense(&self.param)),
            },
        }
    }

    /// xs: `[batch, in]` -> `[batch, out]`. Masked weights are zero in either
    /// representation, so the product is exact; the optimizer keeps them zero (SPEC 1).
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let err = |e: Error| Error::Shape(format!("{}: {e}", self.name));
        let Some(mut c) = self.compact() else {
            return xs.f_linear(&self.param, self.bias.as_ref()).map_err(|e| err(e.into()));
        };
        let y = if mode.measuring() {
            let leaf = match &c.measure {
                Some(m) => m.shallow_clone(),
                None => {
                    let m = tch::no_grad(|| c.plan.dense(&self.param)).set_requires_grad(true);
                    c.measure = Some(m.shallow_clone());
                    m
                }
            };
            xs.f_linear(&leaf, None::<Tensor>).map_err(|e| err(e.into()))?
        } else {
            c.measure = None;
            c.plan.linear(xs, &self.param).map_err(err)?
        };
        match &self.bias {
            Some(b) => Ok(y + b),
            None => Ok(y),
        }
    }

    /// This layer as the fused training step takes it (its tensors, shared, not copied).
    ///
    /// # Errors
    /// Tensors that do not fit together (see [`crate::compute::FusedLayer`]).
    pub fn fused(&self) -> Result<crate::compute::FusedLayer> {
        match self.compact() {
            Some(c) => crate::compute::FusedLayer::compact(&self.param, &c.plan, self.bias.as_ref()),
            None => crate::compute::FusedLayer::dense(&self.param, &self.mask, self.bias.as_ref()),
        }
    }

    /// Drops the measuring leaf (see [`SparseLinear::weight`]).
    pub fn clear_measure(&self) {
        if let Some(mut c) = self.compact() {
            c.measure = None;
        }
    }

    /// Replaces the mask (e.g. magnitude pruning, a dynamic-sparsity update) and zeroes
    /// the weights it drops (a grown weight starts at zero). A compact layer's plan is
    /// rebuilt and its values re-laid. Returns how tensors laid out like the
    /// trainable weight follow.
    ///
    /// # Errors
    /// A compact layer's new mask that gives no plan (see [`CsrPlan::from_mask`]).
    pub fn set_mask(&self, mask: &Tensor) -> Result<super::Remap> {
        let _guard = tch::no_grad_guard();
        match self.compact() {
            None => {
                self.mask.shallow_clone().copy_(mask);
                let _ = self.param.shallow_clone().g_mul_(mask);
                Ok(super::Remap::dense(&format!("{}.weight", self.name), &self.mask))
            }
            Some(mut c) => {
                let w = c.plan.f_dense(&self.param)? * mask;
                let new = CsrPlan::from_mask(mask)?;
                self.mask.shallow_clone().copy_(mask);
                let remap = super::Remap::compact(&format!("{}.values", self.name), c.plan.flat(), new.flat(), self.mask.numel() as i64);
                c.plan = new;
                c.measure = None;
                let values = c.plan.f_gather(&w)?;
                self.param.shallow_clone().set_data(&values);
                Ok(remap)
            }
        }
    }

    /// Sets the effective weight to `weight * mask` (`[out, in]`).
    ///
    /// # Errors
    /// A weight of another shape.
    pub fn set_weight(&self, weight: &Tensor) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let w = weight.to_device(self.mask.device()) * &self.mask;
        match self.compact() {
            None => self.param.shallow_clone().f_copy_(&w)?,
            Some(mut c) => self.param.shallow_clone().f_copy_(&c.plan.f_gather(&w)?)?,
        }
        Ok(())
    }

    /// Switches a densely stored layer to the compact representation (same mask, same
    /// active values), replacing its `weight` variable in `vs` by `values`. Used after
    /// pruning a model built dense, so its sparsity buys speed.
    ///
    /// # Errors
    /// A mask that gives no plan, a layer that is not in `vs`.
    pub(crate) fn make_compact(&mut self, vs: &nn::VarStore) -> Result<()> {
        if self.compact.is_some() {
            return Ok(());
        }
        let mut plan = CsrPlan::from_mask(&self.mask)?;
        let values = tch::no_grad(|| plan.f_gather(&self.param))?;
        let weight_name = format!("{}.weight", self.name);
        {
            let mut vars = vs.variables_.lock().unwrap_or_else(|e| e.into_inner());
            if vars.named_variables.remove(&weight_name).is_none() {
                return Err(Error::Shape(format!("{weight_name} is not in the model's variables")));
            }
            let ptr = self.param.data_ptr();
            vars.trainable_variables.retain(|v| v.tensor.data_ptr() != ptr);
        }
        let path = self.name.split('.').fold(vs.root(), |p, part| &p / part);
        self.param = path.f_var_copy("values", &values)?;
        self.compact = Some(Mutex::new(Compact { plan, measure: None }));
        Ok(())
    }

    /// Rebuilds the compact index structure from the mask (after loading a model).
    ///
    /// # Errors
    /// A loaded mask that gives no plan (see [`CsrPlan::from_mask`]).
    pub fn refresh(&self) -> Result<()> {
        if let Some(mut c) = self.compact() {
            c.plan = CsrPlan::from_mask(&self.mask)?;
            c.measure = None;
        }
        Ok(())
    }

    /// Active weights.
    pub fn active(&self) -> i64 {
        count(&self.mask)
    }
}
