//! Fused operations with handwritten backward passes, added to Burn through its backend
//! extension (`#[backend_extension]`): GELU (erf form), layer normalisation, the attention's
//! scaled and masked softmax, dropout with a counter-based mask, and the optimizer's AdamW
//! update and gradient norm. Under autodiff Burn runs
//! layer norm and softmax as several element-wise ops each (and keeps their intermediates for
//! the backward pass), computes GELU's erf with scalar libm and draws dropout masks from a scalar
//! ChaCha, and AdamW takes 14 element-wise passes over every trained parameter: on the CPU this
//! element-wise work, not the matmuls, bounded a training step.
//!
//! Each function below runs a kernel of this crate on either backend: Burn's `flex` on the CPU
//! (natively and in wasm), and on the GPU (WebGPU, Vulkan) cubecl's (`cube`), so a step keeps
//! the same tensors for its backward pass on both. `kernels` holds the CPU's arithmetic, `flex`,
//! `cube` and `autodiff` the backend implementations.

mod adamw;
mod autodiff;
#[cfg(feature = "gpu")]
mod cube;
mod flex;
pub mod kernels;
#[cfg(target_arch = "wasm32")]
pub mod wasm_matmul;

use std::cell::Cell;

use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend};
use burn::nn::{Dropout, LayerNorm, Linear};
use burn::tensor::Tensor;

pub use adamw::{FusedAdamW, GradientScale};

/// The model's element-wise operations, each one pass (one kernel launch on the GPU):
/// implemented for `Flex` (`kernels`), for `Cube` (`cube`) and for `Autodiff` over a backend
/// that also has [`FusedBackward`]. (Burn composes each of several launches on the GPU, and its
/// GPU backward of GELU is the derivative of the tanh approximation, not of the erf form.)
#[cfg_attr(feature = "gpu", backend_extension(Flex, Cube, Autodiff))]
#[cfg_attr(not(feature = "gpu"), backend_extension(Flex, Autodiff))]
pub trait FusedOps: Backend {
    /// 0.5 · x · (1 + erf(x / √2)).
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Inverted dropout whose mask is a hash of the seed and the element's position (its index
    /// plus `offset`), the same on the CPU and the GPU (a seeded run drops the same elements on
    /// both). Its backward pass is the same operation on the gradient; no mask is stored.
    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64, offset: u32) -> FloatTensor<Self>;
    /// Layer normalisation: normalises the last axis, then scales by `w` (γ) and shifts by `b`
    /// (β), both 1-D.
    fn normalize(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, eps: f64) -> FloatTensor<Self>;
    /// softmax(scores · scale + bias) over the last axis; scores `[b, h, q, k]`, bias `[b, k]`,
    /// taken as a constant (it comes from the padding mask).
    fn softmax_masked(scores: FloatTensor<Self>, bias: FloatTensor<Self>, scale: f64) -> FloatTensor<Self>;
    /// `lhs [.., m, k] · rhs [.., k, n]`, batch dimensions equal: Burn's matmul, except in a
    /// browser with relaxed SIMD, where the CPU backend runs this crate's kernel (`wasm_matmul`).
    /// Its backward pass is two more products on transposed views (no copies on the CPU).
    fn product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The optimizer's work, fused on every backend the page and the CLI run: a kernel of this
/// crate on the CPU (`flex`) and on the GPU (cubecl, which WebGPU and Vulkan run). Never
/// differentiated: under autodiff it runs on the inner backend.
#[cfg_attr(feature = "gpu", backend_extension(Flex, Cube, Autodiff))]
#[cfg_attr(not(feature = "gpu"), backend_extension(Flex, Autodiff))]
pub trait UpdateOps: Backend {
    /// One AdamW update with the gradient `grad · scale` (`scale` has one element: the clipping
    /// coefficient, so clipping costs no pass of its own): `(param, moment_1, moment_2)` after it.
    /// (An op of the backend extension: it dispatches on each tensor, so each is a parameter.)
    #[allow(clippy::too_many_arguments)]
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: kernels::AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// Σ x² of `x` written into row `row` of `partials` (`[rows, NORM_SLOTS]`, zeros before):
    /// the backend fills as many of the row's slots as it sums in parallel, so the sum of
    /// `partials` is Σ x² (one launch per tensor on the GPU). Returns `partials`.
    fn squared_sum_into(x: FloatTensor<Self>, partials: FloatTensor<Self>, row: usize) -> FloatTensor<Self>;
}

/// The backward kernels, run on the backend under autodiff (never through dispatch).
pub trait FusedBackward: FusedOps {
    /// GELU's: g · (Φ(x) + x·φ(x)).
    fn gelu_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The forward pass keeping what the backward pass needs: `(y, x̂, 1/σ per row)`.
    fn layer_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// `(dx, dγ, dβ)`.
    fn layer_norm_grad(
        grad: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// d scores from the softmax's output `y`.
    fn masked_softmax_grad(y: FloatTensor<Self>, grad: FloatTensor<Self>, scale: f64) -> FloatTensor<Self>;
}

pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::gelu_erf(x.into_dispatch()))
}

/// Partial sums a backend may write per tensor in [`UpdateOps::squared_sum_into`].
pub const NORM_SLOTS: usize = 64;

/// Σ x² over every element of every tensor of `xs`, as a one-element tensor (the gradients'
/// squared global norm); `None` when there are none.
pub fn squared_norm(xs: Vec<Tensor<1>>) -> Option<Tensor<1>> {
    let device = xs.first()?.device();
    let mut partials = Tensor::<2>::zeros([xs.len(), NORM_SLOTS], &device).into_dispatch();
    for (row, x) in xs.into_iter().enumerate() {
        partials = <burn::backend::Dispatch as UpdateOps>::squared_sum_into(x.into_dispatch(), partials, row);
    }
    Some(Tensor::<2>::from_dispatch(partials).sum())
}

/// `norm` applied to `x` (its ε passed in: Burn keeps it private).
pub fn layer_norm(x: Tensor<3>, norm: &LayerNorm, eps: f64) -> Tensor<3> {
    let beta = norm.beta.as_ref().map(|b| b.val());
    // A norm without β (none in BERT) is Burn's.
    let Some(beta) = beta else {
        return norm.forward(x);
    };
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::normalize(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        beta.into_dispatch(),
        eps,
    ))
}

/// `x · W + b` for `layer`, x `[batch, seq, in]`: one product over all rows, so the weight's
/// gradient is one product too (Burn's `Linear` multiplies each batch row by the broadcast weight
/// and sums the gradients).
pub fn linear(x: Tensor<3>, layer: &Linear) -> Tensor<3> {
    let [batch, seq, width] = x.dims();
    let weight = layer.weight.val();
    let out = weight.dims()[1];
    let y = Tensor::<2>::from_dispatch(<burn::backend::Dispatch as FusedOps>::product(
        x.reshape([batch * seq, width]).into_dispatch(),
        weight.into_dispatch(),
    ));
    let y = match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze_dim(0),
        None => y,
    };
    y.reshape([batch, seq, out])
}

/// `lhs [b, h, m, k] · rhs [b, h, k, n]` (the attention's products).
pub fn matmul(lhs: Tensor<4>, rhs: Tensor<4>) -> Tensor<4> {
    assert_eq!(lhs.dims()[..2], rhs.dims()[..2], "batch dimensions of a product");
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::product(lhs.into_dispatch(), rhs.into_dispatch()))
}

/// softmax(scores · scale + bias) over the keys; `bias` is `[batch, keys]`.
pub fn masked_softmax(scores: Tensor<4>, bias: Tensor<2>, scale: f64) -> Tensor<4> {
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::softmax_masked(
        scores.into_dispatch(),
        bias.into_dispatch(),
        scale,
    ))
}

/// A run's dropout stream: its seed, the masks drawn so far, and which examples of each batch
/// this replica computes (`first`, `count`; a run alone computes them all). Each mask hashes the
/// seed, the calls so far and the element's position; a share's elements take the positions they
/// have in the whole batch, so data-parallel replicas drop what the run alone drops.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dropouts {
    pub seed: u64,
    pub calls: u64,
    pub first: usize,
    pub count: usize,
}

impl Dropouts {
    pub fn new(seed: u64) -> Self {
        Dropouts { seed, ..Dropouts::default() }
    }

    /// The next call's seed and where `numel` elements of this share start in the whole batch.
    fn draw(&mut self, numel: usize) -> (u64, u32) {
        let seed = self.seed.rotate_left(32) ^ self.calls;
        self.calls += 1;
        // Positions are u32 (wrapping) on both backends, as a run alone indexes its elements.
        let offset = numel.checked_div(self.count).map_or(0, |per_example| (per_example * self.first) as u32);
        (seed, offset)
    }
}

thread_local! {
    /// The stream of the forward pass running on this thread, lent by `with_dropouts` (Burn's
    /// module `forward` calls take no context, so the dropout kernels read it from here).
    static STREAM: Cell<Dropouts> = const { Cell::new(Dropouts { seed: 0, calls: 0, first: 0, count: 0 }) };
}

/// Runs `forward` (synchronous: nothing else runs on the thread meanwhile) drawing its masks from
/// `stream`, which then counts them. The stream is the run's, not the thread's: runs on one
/// thread (replicas in a test) interleave between passes, never within one. A seeded run draws
/// the same masks natively and in wasm.
pub fn with_dropouts<R>(stream: &Cell<Dropouts>, forward: impl FnOnce() -> R) -> R {
    let outer = STREAM.replace(stream.get());
    let out = forward();
    stream.set(STREAM.replace(outer));
    out
}

/// `dropout` applied to `x`: only while training (an autodiff device and the layer not frozen),
/// as Burn's `Dropout::forward` decides.
pub fn dropout<const D: usize>(x: Tensor<D>, dropout: &Dropout) -> Tensor<D> {
    let device = x.device();
    if !dropout.training.is_enabled() || !device.is_autodiff() || dropout.prob == 0.0 {
        return x;
    }
    let (seed, offset) = STREAM.with(|s| {
        let mut stream = s.get();
        let drawn = stream.draw(x.shape().num_elements());
        s.set(stream);
        drawn
    });
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::dropout_hashed(
        x.into_dispatch(),
        dropout.prob,
        seed,
        offset,
    ))
}
