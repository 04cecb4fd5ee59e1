//! The fused CPU training step (`fused_mlp.cpp`): forward, cross-entropy, backward and
//! the update (any [`OptimizerKind`]: SGD, momentum, Adam, AdamW, Adagrad, RMSProp, with
//! coupled L2 and AdamW's decoupled decay) of a ReLU MLP (BatchNorm in train mode,
//! residual blocks and dropout allowed), or of a batched ensemble of them, in one
//! call with no autograd graph. Dense layers run
//! single-threaded MKL gemms on fixed pieces of the work (64 batch columns forward, or
//! for a layer of 256 rows or more row pieces of at most 400 over the whole batch; 128
//! weight rows for the gradient, fused into the update), compact layers the kernels of
//! `kernels.h`; the pieces are spread over the libtorch threads. Because the pieces
//! are fixed, the numbers do not depend on the thread count, and a member of an
//! ensemble computes exactly what it computes alone. They match the autograd path to
//! float rounding (tests/it/fused.rs); `TrainConfig::step` chooses.
use super::{take_error, CsrPlan};
use crate::error::{Error, Result};
use crate::train::{OptimizerConfig, OptimizerKind};
use std::ffi::{c_char, c_void};
use tch::{Kind, Tensor};

extern "C" {
    fn sparselab_fused_new(out: *mut *mut c_void, members: i64, layers: i64, tensors: *const *const c_void, shapes: *const i64, hyper: *const f64) -> *mut c_char;
    fn sparselab_fused_step(f: *mut c_void, xs: *const c_void, ys: *const c_void, noise: *const *const c_void, lr: f64, loss: *mut *mut c_void, correct: *mut *mut c_void) -> *mut c_char;
    fn sparselab_fused_free(f: *mut c_void);
    fn sparselab_fused_velocity(f: *mut c_void, layer: i64, slot: i64, vel: *mut *mut c_void, bvel: *mut *mut c_void) -> *mut c_char;
    fn sparselab_fused_steps(f: *mut c_void, set: i64) -> i64;
    fn sparselab_fused_gemm() -> *const c_char;
    fn sparselab_kernels_cloned() -> i32;
    fn sparselab_kernels_wide() -> i32;
}

/// Whether the compact kernels' products run in 16-float AVX-512 registers on this CPU,
/// and a compact layer's two gradients in one pass over its nonzeros (batches of at most
/// 128); the same bits as the 8-float, two-pass form (`SPARSELAB_KERNEL_VECTORS=8`
/// forces that form).
pub fn kernels_wide() -> bool {
    // SAFETY: reads a flag computed once.
    unsafe { sparselab_kernels_wide() != 0 }
}

/// Whether the compact kernels were built with one clone per x86-64 level (GCC), else
/// they run baseline code (clang builds, other architectures).
pub fn kernels_cloned() -> bool {
    // SAFETY: a constant.
    unsafe { sparselab_kernels_cloned() != 0 }
}

/// Which gemm the fused step's dense layers run on: `mkl` (the libtorch this binary
/// runs on exports MKL) or `portable` (no MKL there, or built with the
/// `portable-kernels` feature). Recorded in every run's environment.
pub fn fused_gemm() -> &'static str {
    // SAFETY: returns a pointer to one of two static NUL-terminated strings.
    let s = unsafe { std::ffi::CStr::from_ptr(sparselab_fused_gemm()) };
    if s.to_bytes() == b"mkl" {
        "mkl"
    } else {
        "portable"
    }
}

/// One weight layer as the fused step sees it (all members stacked), built by
/// [`FusedLayer::dense`] or [`FusedLayer::compact`], which check that its tensors fit
/// together; the fused step checks them against each other and its inputs.
pub struct FusedLayer {
    /// `[out, in]` per member.
    shape: [i64; 2],
    /// Members stacked in the tensors.
    members: i64,
    /// Dense: the weight `[E, out, in]` (or `[out, in]` for one member), updated in place.
    /// Compact: the values, members one after another.
    weight: Tensor,
    /// Dense layers with masked entries: the 0/1 mask, shaped like the weight.
    mask: Option<Tensor>,
    /// `[E, out]` (or `[out]`).
    bias: Option<Tensor>,
    /// Compact layers: the plan's index tensors ([`CsrPlan`]), verified when it was built.
    plan: Option<[Tensor; 7]>,
    /// A residual block ends here: layer `l - 2`'s output is added to this layer's
    /// pre-activation (SPEC 2, skip connections).
    residual: bool,
    /// BatchNorm after the product: weight, bias, running mean, running variance.
    norm: Option<[Tensor; 4]>,
    /// Dropout after the activation (hidden layers of one member): the probability.
    dropout: f64,
}

/// `t` is float32 on `device`.
fn check_float(what: &str, t: &Tensor, device: tch::Device) -> Result<()> {
    if t.kind() != Kind::Float {
        return Err(Error::Shape(format!("{what} must be float32, got {:?}", t.kind())));
    }
    if t.device() != device {
        return Err(Error::Shape(format!("{what} on {:?} != weight on {device:?}", t.device())));
    }
    Ok(())
}

/// `bias` is `want` (or `[out]` for a single member), float32 on `device`.
fn check_bias(what: &str, bias: Option<&Tensor>, want: &[i64], device: tch::Device) -> Result<()> {
    let Some(b) = bias else { return Ok(()) };
    let size = b.size();
    let single = want.len() == 2 && want[0] == 1 && size == want[1..];
    if size != want && !single {
        return Err(Error::Shape(format!("{what}: bias {size:?} != {want:?}")));
    }
    check_float(&format!("{what}: bias"), b, device)
}

impl FusedLayer {
    /// A dense layer: weight `[out, in]` (one member) or `[E, out, in]`, `mask` shaped
    /// like it (dropped when it masks nothing), bias `[out]` or `[E, out]`; float32, one
    /// device. The tensors are shared, not copied: the fused step updates them in place.
    ///
    /// # Errors
    /// A weight that is not 2-D or 3-D with positive sizes, a mask or bias of another
    /// shape, a kind other than float32, tensors on different devices.
    pub fn dense(weight: &Tensor, mask: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let size = weight.size();
        let (members, shape) = match size[..] {
            [o, i] => (1, [o, i]),
            [e, o, i] => (e, [o, i]),
            _ => return Err(Error::Shape(format!("dense layer: weight {size:?} is not [out, in] or [E, out, in]"))),
        };
        if size.iter().any(|&d| d < 1) {
            return Err(Error::Shape(format!("dense layer: weight {size:?} must have positive sizes")));
        }
        let device = weight.device();
        check_float("dense layer: weight", weight, device)?;
        if mask.size() != size {
            return Err(Error::Shape(format!("dense layer: mask {:?} != weight {size:?}", mask.size())));
        }
        check_float("dense layer: mask", mask, device)?;
        let want_bias = if size.len() == 3 { vec![members, shape[0]] } else { vec![shape[0]] };
        check_bias("dense layer", bias, &want_bias, device)?;
        let mask = (crate::model::mask_count(mask) < mask.numel() as i64).then(|| mask.shallow_clone());
        Ok(Self { shape, members, weight: weight.shallow_clone(), mask, bias: bias.map(Tensor::shallow_clone), plan: None, residual: false, norm: None, dropout: 0.0 })
    }

    /// A compact layer: `values [nnz]` multiplied through `plan` (one member per block),
    /// bias `[E, out]` (or `[out]` for one block); float32, one device. Shared, as for
    /// [`FusedLayer::dense`].
    ///
    /// # Errors
    /// Values that are not `[plan.nnz()]`, a bias of another shape, a kind other than
    /// float32, tensors on different devices.
    pub fn compact(values: &Tensor, plan: &CsrPlan, bias: Option<&Tensor>) -> Result<Self> {
        if values.size() != [plan.nnz()] {
            return Err(Error::Shape(format!("compact layer: values {:?} != plan nnz {}", values.size(), plan.nnz())));
        }
        let device = values.device();
        check_float("compact layer: values", values, device)?;
        check_bias("compact layer", bias, &[plan.blocks(), plan.shape()[0]], device)?;
        Ok(Self {
            shape: plan.shape(),
            members: plan.blocks(),
            weight: values.shallow_clone(),
            mask: None,
            bias: bias.map(Tensor::shallow_clone),
            plan: Some(plan.kernel_tensors()),
            residual: false,
            norm: None,
            dropout: 0.0,
        })
    }

    /// This layer ends a residual block: the output of the layer two below (after its
    /// ReLU) is added to this layer's pre-activation, before its ReLU. The step checks
    /// that it is a hidden layer at index 2 or above, square, as wide as that output.
    pub fn with_residual(mut self) -> Self {
        self.residual = true;
        self
    }

    /// BatchNorm follows this layer's product (before the residual and the ReLU): its
    /// scale and shift, trained by the step, and its running mean and variance, updated
    /// in place (momentum 0.1, eps 1e-5, as libtorch in train mode). Each is `[out]`
    /// (one member) or `[E, out]`, contiguous float32 on the weight's device.
    ///
    /// # Errors
    /// A tensor of another size, kind, device or layout.
    pub fn with_batch_norm(mut self, weight: &Tensor, bias: &Tensor, running_mean: &Tensor, running_var: &Tensor) -> Result<Self> {
        let want = self.members * self.shape[0];
        let device = self.weight.device();
        for (what, t) in [("weight", weight), ("bias", bias), ("running mean", running_mean), ("running variance", running_var)] {
            if t.numel() as i64 != want || !t.is_contiguous() {
                return Err(Error::Shape(format!("batch norm {what}: {:?} is not {} x {} contiguous entries", t.size(), self.members, self.shape[0])));
            }
            check_float(&format!("batch norm {what}"), t, device)?;
        }
        self.norm = Some([weight, bias, running_mean, running_var].map(Tensor::shallow_clone));
        Ok(self)
    }

    /// Dropout with probability `p` follows this hidden layer's activation (after the
    /// residual and the ReLU), as [`crate::model::Mlp`]'s forward pass: each step draws
    /// the keep-mask with [`crate::model::dropout_noise`] from libtorch's generator, so
    /// the step drops the same units as autograd after the same seed. `p = 0` leaves
    /// the layer as it is. One member only (ensembles refuse dropout), not the output layer.
    ///
    /// # Errors
    /// `p` outside `[0, 1)`.
    pub fn with_dropout(mut self, p: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config("dropout", format!("{p} must be in [0, 1)")));
        }
        self.dropout = p;
        Ok(self)
    }

    /// `[out, in]` per member.
    pub fn shape(&self) -> [i64; 2] {
        self.shape
    }

    /// Members stacked in the layer's tensors.
    pub fn members(&self) -> i64 {
        self.members
    }

    /// Whether the layer runs the compact kernels (else dense gemms).
    pub fn is_compact(&self) -> bool {
        self.plan.is_some()
    }
}

/// The fused step of one model or ensemble; it updates the layers' tensors in place
/// and keeps the optimizer's state.
pub struct FusedMlp {
    raw: *mut c_void,
    layers: usize,
    /// Per layer: dropout probability after it and its width (0.0 where none).
    dropout: Vec<(f64, i64)>,
}

impl FusedMlp {
    /// Prepares the step for `members` networks with these layers (input first): layer
    /// `l + 1` takes the `out` features of layer `l`, the last one's `out` are the classes.
    /// `opt` gives the update rule and its settings (as [`crate::train::Optimizer`]
    /// applies them; the learning rate comes with each step).
    ///
    /// # Errors
    /// No layers, a layer with another number of members, layers that do not chain, a
    /// residual block that does not fit, tensors that are not contiguous float32 CPU tensors.
    pub fn new(members: i64, layers: &[FusedLayer], opt: &OptimizerConfig) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::Shape("fused step: no layers".into()));
        }
        if let Some((l, layer)) = layers.iter().enumerate().find(|(_, layer)| layer.members != members) {
            return Err(Error::Shape(format!("fused step: layer {l} has {} members, expected {members}", layer.members)));
        }
        if let Some(l) = layers.iter().position(|l| l.dropout > 0.0) {
            if members != 1 || l + 1 == layers.len() {
                return Err(Error::Shape(format!("fused step: layer {l} has dropout, which the step runs after a hidden layer of one member ({members} members, {} layers)", layers.len())));
            }
        }
        let none = std::ptr::null::<c_void>();
        let mut handles = Vec::with_capacity(14 * layers.len());
        let mut shapes = Vec::with_capacity(2 * layers.len());
        for l in layers {
            let opt = |t: Option<&Tensor>| t.map(|t| t.as_ptr() as *const c_void).unwrap_or(none);
            handles.extend([l.weight.as_ptr() as *const c_void, opt(l.mask.as_ref()), opt(l.bias.as_ref())]);
            match &l.plan {
                Some(p) => handles.extend(p.iter().map(|t| t.as_ptr() as *const c_void)),
                None => handles.extend([none; 7]),
            }
            match &l.norm {
                Some(n) => handles.extend(n.iter().map(|t| t.as_ptr() as *const c_void)),
                None => handles.extend([none; 4]),
            }
            shapes.extend([l.shape[1], l.shape[0], l.residual as i64]);
        }
        let rule = match opt.kind {
            OptimizerKind::Sgd | OptimizerKind::Momentum => 0.0,
            OptimizerKind::Adam => 1.0,
            OptimizerKind::AdamW => 2.0,
            OptimizerKind::Adagrad => 3.0,
            OptimizerKind::RmsProp => 4.0,
        };
        let hyper = [rule, opt.momentum_or_default(), opt.l2, opt.betas.0, opt.betas.1, opt.eps_or_default(), opt.alpha, opt.weight_decay];
        let mut raw = std::ptr::null_mut();
        // SAFETY: the handles are live tensors for the duration of the call (the C++ side
        // keeps its own references); `raw` receives an object we own and free in Drop.
        let err = unsafe { sparselab_fused_new(&mut raw, members, layers.len() as i64, handles.as_ptr(), shapes.as_ptr(), hyper.as_ptr()) };
        // SAFETY: err is null or a malloc'ed message.
        match unsafe { take_error(err) } {
            Some(msg) => Err(Error::Shape(msg)),
            None => Ok(Self { raw, layers: layers.len(), dropout: layers.iter().map(|l| (l.dropout, l.shape[0])).collect() }),
        }
    }

    /// One step with learning rate `lr`. xs: `[E, in, B]` float32 on the CPU, any
    /// strides (a transposed batch-major minibatch is transposed on the copy in),
    /// ys: `[E, B]` int64 on the CPU, targets in `0..classes` -> (mean loss per member
    /// `[E]`, correct predictions `[E]` int64).
    ///
    /// # Errors
    /// Inputs of the wrong shape, kind or device, an empty batch, targets outside the
    /// classes, a layer tensor resized since [`FusedMlp::new`].
    pub fn step(&mut self, xs: &Tensor, ys: &Tensor, lr: f64) -> Result<(Tensor, Tensor)> {
        let (mut loss, mut correct) = (std::ptr::null_mut(), std::ptr::null_mut());
        // Dropout's keep-masks, drawn layer by layer as the forward pass draws them
        // (`[B, width]`), handed over feature-major (`[width, B]`) as the step keeps activations.
        let batch = *xs.size().last().unwrap_or(&0);
        let noise: Vec<Option<Tensor>> = self
            .dropout
            .iter()
            .map(|&(p, width)| (p > 0.0).then(|| crate::model::dropout_noise(batch, width, p, tch::Device::Cpu).and_then(|t| Ok(t.f_transpose(0, 1)?.f_contiguous()?))).transpose())
            .collect::<Result<_>>()?;
        let handles: Vec<*const c_void> = noise.iter().map(|t| t.as_ref().map_or(std::ptr::null(), |t| t.as_ptr() as *const c_void)).collect();
        // SAFETY: self.raw is live, the noise handles live tensors (or null) for the call;
        // the outputs are new tensor handles we take ownership of.
        let err = unsafe { sparselab_fused_step(self.raw, xs.as_ptr().cast(), ys.as_ptr().cast(), handles.as_ptr(), lr, &mut loss, &mut correct) };
        // SAFETY: err is null or a malloc'ed message.
        if let Some(msg) = unsafe { take_error(err) } {
            return Err(Error::Shape(msg));
        }
        // SAFETY: on success both are new handles that nothing else owns.
        Ok(unsafe { (Tensor::from_ptr(loss.cast()), Tensor::from_ptr(correct.cast())) })
    }
}

impl FusedMlp {
    /// The number of layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Layer `layer`'s optimizer state in `slot` (0: the velocity, Adam's first moment,
    /// or Adagrad's and RMSProp's accumulator; 1: Adam's second moment) of its weight
    /// (or compact values) and of its bias, or (slots 2 and 3: the same two) of its
    /// BatchNorm's scale and shift; sharing storage with the step (`None` where the rule
    /// keeps no such state, or there is no bias or norm).
    ///
    /// # Errors
    /// A layer index out of range, a slot other than 0 to 3.
    pub fn state(&self, layer: usize, slot: usize) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (mut v, mut b) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: self.raw is live; the outputs are null or new handles we own.
        let err = unsafe { sparselab_fused_velocity(self.raw, layer as i64, slot as i64, &mut v, &mut b) };
        // SAFETY: err is null or a malloc'ed message.
        if let Some(msg) = unsafe { take_error(err) } {
            return Err(Error::Shape(msg));
        }
        // SAFETY: non-null handles are new and owned by nobody else.
        let take = |p: *mut c_void| (!p.is_null()).then(|| unsafe { Tensor::from_ptr(p.cast()) });
        Ok((take(v), take(b)))
    }

    /// Layer `layer`'s velocity (momentum), first moment or accumulator: [`FusedMlp::state`] slot 0.
    ///
    /// # Errors
    /// A layer index out of range.
    pub fn velocity(&self, layer: usize) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.state(layer, 0)
    }

    /// Steps taken so far (Adam's bias corrections count them).
    pub fn steps(&self) -> i64 {
        // SAFETY: self.raw is live; -1 only reads.
        unsafe { sparselab_fused_steps(self.raw, -1) }
    }

    /// Sets the step count (a resumed run continues its bias corrections).
    pub fn set_steps(&mut self, t: i64) {
        // SAFETY: self.raw is live.
        unsafe { sparselab_fused_steps(self.raw, t.max(0)) };
    }
}

impl Drop for FusedMlp {
    fn drop(&mut self) {
        // SAFETY: raw came from sparselab_fused_new and is freed once.
        unsafe { sparselab_fused_free(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn ones(shape: &[i64]) -> Tensor {
        Tensor::ones(shape, (Kind::Float, Device::Cpu))
    }

    fn momentum() -> OptimizerConfig {
        OptimizerConfig { kind: OptimizerKind::Momentum, ..Default::default() }
    }

    fn refused(layers: &[FusedLayer], members: i64) -> String {
        match FusedMlp::new(members, layers, &momentum()) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    /// The C++ side checks every size itself, behind the constructors' checks: layers
    /// built around them are refused, not run out of bounds.
    /// This crate's x86-64 builds find MKL in the PyPI libtorch they link; the
    /// `portable-kernels` build (CI's fallback step) never uses it.
    #[test]
    fn the_fused_step_names_its_gemm() {
        if cfg!(feature = "portable-kernels") {
            assert_eq!(fused_gemm(), "portable");
        } else if cfg!(target_arch = "x86_64") && tch::utils::has_mkl() {
            assert_eq!(fused_gemm(), "mkl");
        }
    }

    #[test]
    fn the_fused_entry_point_refuses_layers_that_do_not_fit() {
        let dense = || FusedLayer::dense(&ones(&[4, 3]), &ones(&[4, 3]), Some(&ones(&[4]))).unwrap();
        assert!(FusedMlp::new(1, &[dense()], &momentum()).is_ok());
        let mut l = dense();
        l.members = 2;
        assert_eq!(refused(&[l], 2), "fused step: layer 0 weight has 12 entries, expected 2 x 4 x 3");
        let mut l = dense();
        l.mask = Some(ones(&[2, 3]));
        assert_eq!(refused(&[l], 1), "fused step: layer 0 mask has 6 entries, expected 12");
        let mut l = dense();
        l.bias = Some(ones(&[3]));
        assert_eq!(refused(&[l], 1), "fused step: layer 0 bias has 3 entries, expected 1 x 4");
        let mut l = dense();
        l.shape = [4, 0];
        assert_eq!(refused(&[l], 1), "fused step: layer 0 is 4 x 0, expected positive sizes that fit an int");
        // A 2 x 3 plan's tensors for a 3 x 2 layer with as many values.
        let plan = CsrPlan::from_mask(&ones(&[2, 3])).unwrap();
        let mut l = FusedLayer::compact(&ones(&[6]), &plan, None).unwrap();
        l.shape = [3, 2];
        assert_eq!(refused(&[l], 1), "fused step: forward panels: 3 row pointers for 3 rows");
        let mut l = FusedLayer::compact(&ones(&[6]), &plan, None).unwrap();
        l.weight = ones(&[5]);
        assert_eq!(refused(&[l], 1), "fused step: layer 0 plan has 6 entries for 5 values");
        let mut l = FusedLayer::compact(&ones(&[6]), &plan, None).unwrap();
        l.mask = Some(ones(&[6]));
        assert_eq!(refused(&[l], 1), "fused step: layer 0 is compact and masked");
        let mut l = FusedLayer::compact(&ones(&[6]), &plan, None).unwrap();
        if let Some(p) = l.plan.as_mut() {
            p[6] = Tensor::from_slice(&[0i64, 3, 5]);
        }
        assert_eq!(refused(&[l], 1), "fused step: layer 0 row pointers run 0..5, expected 0..6");
        let mut l = FusedLayer::compact(&ones(&[6]), &plan, None).unwrap();
        if let Some(p) = l.plan.as_mut() {
            p[6] = Tensor::from_slice(&[0i64, 6]);
        }
        assert_eq!(refused(&[l], 1), "fused step: layer 0 row pointers must be contiguous int64 [3] on the CPU, got [2]");
    }
}
