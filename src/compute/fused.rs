//! The fused CPU training step (`fused_mlp.cpp`): forward, cross-entropy, backward and
//! an SGD or momentum update (report eq. 2.16, coupled L2) of a plain ReLU MLP, or of a
//! batched ensemble of them, in one call with no autograd graph. Dense layers run
//! single-threaded MKL gemms on fixed pieces of the work (64 batch columns forward, 128
//! weight rows for the gradient, fused into the update), compact layers the kernels of
//! `kernels.h`; the pieces are spread over the libtorch threads. Because the pieces
//! are fixed, the numbers do not depend on the thread count, and a member of an
//! ensemble computes exactly what it computes alone. They match the autograd path to
//! float rounding (tests/it/fused.rs); `TrainConfig::step` chooses.
use super::{take_error, CsrPlan};
use crate::error::{Error, Result};
use std::ffi::{c_char, c_void};
use tch::Tensor;

extern "C" {
    fn sparselab_fused_new(out: *mut *mut c_void, members: i64, layers: i64, tensors: *const *const c_void, shapes: *const i64, momentum: f64, l2: f64) -> *mut c_char;
    fn sparselab_fused_step(f: *mut c_void, xs: *const c_void, ys: *const c_void, lr: f64, loss: *mut *mut c_void, correct: *mut *mut c_void) -> *mut c_char;
    fn sparselab_fused_free(f: *mut c_void);
}

/// One weight layer as the fused step sees it (all members stacked).
pub struct FusedLayer {
    /// `[out, in]` per member.
    pub shape: [i64; 2],
    /// Dense: the weight `[E, out, in]` (or `[out, in]` for one member), updated in place.
    /// Compact: the values, members one after another.
    pub weight: Tensor,
    /// Dense layers with masked entries: the 0/1 mask, shaped like the weight.
    pub mask: Option<Tensor>,
    /// `[E, out]` (or `[out]`).
    pub bias: Option<Tensor>,
    /// Compact layers: the plan's index tensors ([`CsrPlan`]).
    pub plan: Option<[Tensor; 7]>,
}

impl FusedLayer {
    /// A dense layer; `mask` is dropped when it masks nothing.
    pub fn dense(weight: &Tensor, mask: &Tensor, bias: Option<&Tensor>) -> Self {
        let size = weight.size();
        let shape = [size[size.len() - 2], size[size.len() - 1]];
        let mask = (crate::model::mask_count(mask) < mask.numel() as i64).then(|| mask.shallow_clone());
        Self { shape, weight: weight.shallow_clone(), mask, bias: bias.map(Tensor::shallow_clone), plan: None }
    }

    /// A compact layer: `values` multiplied through `plan`.
    pub fn compact(values: &Tensor, plan: &CsrPlan, bias: Option<&Tensor>) -> Self {
        Self { shape: plan.shape, weight: values.shallow_clone(), mask: None, bias: bias.map(Tensor::shallow_clone), plan: Some(plan.kernel_tensors()) }
    }
}

/// The fused step of one model or ensemble; it updates the layers' tensors in place
/// and keeps the momentum state.
pub struct FusedMlp {
    raw: *mut c_void,
}

impl FusedMlp {
    /// Prepares the step for `members` networks with these layers (input first).
    ///
    /// # Errors
    /// Tensors that are not contiguous float CPU tensors of the stated shapes.
    pub fn new(members: i64, layers: &[FusedLayer], momentum: f64, l2: f64) -> Result<Self> {
        let none = std::ptr::null::<c_void>();
        let mut handles = Vec::with_capacity(10 * layers.len());
        let mut shapes = Vec::with_capacity(2 * layers.len());
        for l in layers {
            let opt = |t: Option<&Tensor>| t.map(|t| t.as_ptr() as *const c_void).unwrap_or(none);
            handles.extend([l.weight.as_ptr() as *const c_void, opt(l.mask.as_ref()), opt(l.bias.as_ref())]);
            match &l.plan {
                Some(p) => handles.extend(p.iter().map(|t| t.as_ptr() as *const c_void)),
                None => handles.extend([none; 7]),
            }
            shapes.extend([l.shape[1], l.shape[0]]);
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: the handles are live tensors for the duration of the call (the C++ side
        // keeps its own references); `raw` receives an object we own and free in Drop.
        let err = unsafe { sparselab_fused_new(&mut raw, members, layers.len() as i64, handles.as_ptr(), shapes.as_ptr(), momentum, l2) };
        // SAFETY: err is null or a malloc'ed message.
        match unsafe { take_error(err) } {
            Some(msg) => Err(Error::Shape(msg)),
            None => Ok(Self { raw }),
        }
    }

    /// One step with learning rate `lr`. xs: `[E, in, B]` float, any strides (a
    /// transposed batch-major minibatch is transposed on the copy in),
    /// ys: `[E, B]` int64 -> (mean loss per member `[E]`, correct predictions `[E]` int64).
    ///
    /// # Errors
    /// Inputs of the wrong shape or kind, targets outside the classes.
    pub fn step(&mut self, xs: &Tensor, ys: &Tensor, lr: f64) -> Result<(Tensor, Tensor)> {
        let (mut loss, mut correct) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: self.raw is live; the outputs are new tensor handles we take ownership of.
        let err = unsafe { sparselab_fused_step(self.raw, xs.as_ptr().cast(), ys.as_ptr().cast(), lr, &mut loss, &mut correct) };
        // SAFETY: err is null or a malloc'ed message.
        if let Some(msg) = unsafe { take_error(err) } {
            return Err(Error::Shape(msg));
        }
        // SAFETY: on success both are new handles that nothing else owns.
        Ok(unsafe { (Tensor::from_ptr(loss.cast()), Tensor::from_ptr(correct.cast())) })
    }
}

impl Drop for FusedMlp {
    fn drop(&mut self) {
        // SAFETY: raw came from sparselab_fused_new and is freed once.
        unsafe { sparselab_fused_free(self.raw) }
    }
}
