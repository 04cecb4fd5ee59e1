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
    /// Per layer, whichever of the two ran this layer's shape and density faster on
    /// this machine: both are timed once per process (forward and backward at batch
    /// 128 on the current threads, [`measured_kernel`]). Opt-in because the two sum in
    /// different orders: a run with it can differ at float rounding between machines,
    /// or between runs where the two kernels time within noise of each other. Dense
    /// off the CPU, where the compact kernel does not run.
    Measured,
}

/// Density at or below which `Kernel::Auto` picks the compact kernel: the measured
/// crossover of `cargo bench --bench kernels` (788 x 788 layer, batch 128, forward +
/// backward, 2 threads; benches/NOTES.md). The choice depends only on the density,
/// never on the device or a timing, so a configuration always computes the same way.
pub const COMPACT_CROSSOVER: f64 = 0.4;

/// The names `kernel` accepts.
pub const KERNELS: [&str; 4] = ["auto", "dense", "compact", "measured"];

impl Kernel {
    /// Parses `auto`, `dense`, `compact` or `measured`.
    ///
    /// # Errors
    /// Any other name, listing the valid ones.
    pub fn parse(name: &str) -> Result<Self> {
        Ok([Kernel::Auto, Kernel::Dense, Kernel::Compact, Kernel::Measured][crate::registry::lookup("kernel", name, &KERNELS)?])
    }
    /// Whether this is the default.
    pub fn is_auto(&self) -> bool {
        *self == Kernel::Auto
    }
    /// Dense or Compact for a layer of this density (`Measured` by the density alone,
    /// as `Auto`: use [`Kernel::resolve_layer`] where the layer is known).
    pub fn resolve(self, density: f64) -> Kernel {
        match self {
            Kernel::Auto | Kernel::Measured if density <= COMPACT_CROSSOVER => Kernel::Compact,
            Kernel::Auto | Kernel::Measured => Kernel::Dense,
            k => k,
        }
    }

    /// Dense or Compact for a CPU layer `[out, inp]` with `active` weights; `dx`: whether
    /// its input gradient is needed (not for a first layer). `Measured` times both.
    pub fn resolve_layer(self, out: i64, inp: i64, active: i64, dx: bool) -> Kernel {
        match self {
            Kernel::Measured => measured_kernel(out, inp, active, dx),
            k => k.resolve(active as f64 / (out * inp).max(1) as f64),
        }
    }
}

/// Which kernel runs forward + backward of a layer `[out, inp]` with `active` random
/// weights faster here, at batch 128 on the current libtorch threads (input gradient
/// only when `dx`). Each kernel is warmed up, then timed 7 times, alternating with the
/// other; the faster minimum wins (a minimum, because noise only adds time). Measured
/// once per shape, count and thread count in a process, then cached; about 10-60 ms
/// per shape. Where timing fails (it should not), the density rule of `Auto` decides.
pub fn measured_kernel(out: i64, inp: i64, active: i64, dx: bool) -> Kernel {
    // (out, inp, active, dx, threads) -> the faster kernel.
    type Choices = std::collections::HashMap<(i64, i64, i64, bool, i32), Kernel>;
    static CHOICES: Mutex<Option<Choices>> = Mutex::new(None);
    let active = active.clamp(1, (out * inp).max(1));
    let key = (out, inp, active, dx, tch::get_num_threads());
    if let Some(k) = CHOICES.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Choices::new).get(&key) {
        return *k;
    }
    let fallback = Kernel::Auto.resolve(active as f64 / (out * inp) as f64);
    let k = match time_kernels(out, inp, active, dx, 128) {
        Ok((dense, compact)) if dense.is_finite() && compact.is_finite() => {
            if compact < dense {
                Kernel::Compact
            } else {
                Kernel::Dense
            }
        }
        _ => fallback,
    };
    CHOICES.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Choices::new).insert(key, k);
    k
}

/// The fastest of 7 timings (seconds) of one forward + backward with the dense masked
/// product and with the compact kernel, alternating (see [`measured_kernel`]).
///
/// # Errors
/// A kernel that fails (sizes are checked by the caller's layer, so none expected).
pub fn time_kernels(out: i64, inp: i64, active: i64, dx: bool, batch: i64) -> Result<(f64, f64)> {
    use std::time::Instant;
    use tch::{Device, Kind};
    tch::with_grad(|| {
        // Values from no random generator (timing must not move libtorch's global stream,
        // which later draws of the run may use); the speed does not depend on them.
        let fill = |rows: i64, cols: i64| Tensor::f_linspace(-1.0, 1.0, rows * cols, (Kind::Float, Device::Cpu)).and_then(|t| t.f_view([rows, cols]));
        let x = fill(batch, inp)?.set_requires_grad(dx);
        let g = fill(batch, out)?.f_flip([1])?;
        let mask = super::mask::random_mask(&[out, inp], active, 1, 0);
        let w = (fill(out, inp)? * &mask).set_requires_grad(true);
        let mut plan = CsrPlan::from_mask(&mask)?;
        let values = tch::no_grad(|| plan.f_gather(&w))?.set_requires_grad(true);
        let dense = |_: ()| -> Result<()> {
            let y = x.f_linear(&w, None::<Tensor>)?;
            let wrt: Vec<&Tensor> = if dx { vec![&x, &w] } else { vec![&w] };
            Tensor::f_run_backward(&[y.f_mul(&g)?.f_sum(Kind::Float)?], &wrt, false, false)?;
            Ok(())
        };
        let mut compact = |_: ()| -> Result<()> {
            let y = plan.linear(&x, &values)?;
            let wrt: Vec<&Tensor> = if dx { vec![&x, &values] } else { vec![&values] };
            Tensor::f_run_backward(&[y.f_mul(&g)?.f_sum(Kind::Float)?], &wrt, false, false)?;
            Ok(())
        };
        for _ in 0..2 {
            dense(())?;
            compact(())?;
        }
        let (mut td, mut tc) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..7 {
            let t = Instant::now();
            dense(())?;
            td = td.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            compact(())?;
            tc = tc.min(t.elapsed().as_secs_f64());
        }
        Ok((td, tc))
    })
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
        let kernel = match self.kernel {
            Kernel::Measured if path.device() != tch::Device::Cpu => Kernel::Dense,
            kernel => kernel.resolve_layer(self.output, self.input, k, layer > 0),
        };
        if kernel == Kernel::Dense {
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
