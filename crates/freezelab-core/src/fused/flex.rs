//! The fused operations on Burn's `flex` CPU backend: contiguous f32 buffers in, the kernels,
//! new buffers out.

use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{Shape, TensorData};
use burn_flex::FlexTensor;

use super::{kernels, FusedBackward, FusedOps, UpdateOps};

/// The values of `t` in row-major order (copied only when `t` is a strided view).
fn values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("the fused operations take contiguous f32 tensors")
}

/// `t` itself when its values fill its buffer in order (to update in place: copied first only
/// if the buffer is shared), else a contiguous copy.
fn owned(t: FlexTensor) -> FlexTensor {
    let len = t.storage::<f32>().len();
    if t.layout().contiguous_offsets() == Some((0, len)) {
        t
    } else {
        t.to_contiguous()
    }
}

pub(super) fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl FusedOps for Flex {
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let x = values(&x);
        tensor(kernels::gelu(slice(&x)), x.shape())
    }

    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64, offset: u32) -> FloatTensor<Self> {
        let x = values(&x);
        tensor(kernels::dropout(slice(&x), prob, seed, offset), x.shape())
    }

    fn normalize(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        Self::layer_norm_train(x, w, b, eps).0
    }

    fn softmax_masked(scores: FloatTensor<Self>, bias: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        let (scores, bias) = (values(&scores), values(&bias));
        let shape = scores.shape();
        let [_, heads, queries, keys] = shape.dims();
        let y = kernels::masked_softmax(slice(&scores), slice(&bias), keys, heads * queries, scale as f32);
        tensor(y, shape)
    }

    fn product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        #[cfg(target_arch = "wasm32")]
        if let Some(y) = super::wasm_matmul::product(&lhs, &rhs) {
            return y;
        }
        <Self as FloatTensorOps<Self>>::float_matmul(lhs, rhs)
    }
}

impl UpdateOps for Flex {
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: kernels::AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (mut param, mut moment_1, mut moment_2, grad) =
            (owned(param), owned(moment_1), owned(moment_2), values(&grad));
        let scale = slice(&values(&scale))[0];
        let (m, v) = (moment_1.storage_mut::<f32>(), moment_2.storage_mut::<f32>());
        kernels::adamw(param.storage_mut::<f32>(), slice(&grad), scale, (m, v), step);
        (param, moment_1, moment_2)
    }

    /// The tensor's sum in f64 (`kernels::squared_sum`), in the row's first slot.
    fn squared_sum_into(x: FloatTensor<Self>, partials: FloatTensor<Self>, row: usize) -> FloatTensor<Self> {
        let mut partials = owned(partials);
        partials.storage_mut::<f32>()[row * super::NORM_SLOTS] = kernels::squared_sum(slice(&values(&x)));
        partials
    }
}

impl FusedBackward for Flex {
    fn gelu_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, grad) = (values(&x), values(&grad));
        tensor(kernels::gelu_grad(slice(&x), slice(&grad)), x.shape())
    }

    fn layer_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (x, gamma, beta) = (values(&x), values(&gamma), values(&beta));
        let shape = x.shape();
        let (y, xhat, rstd) = kernels::layer_norm(slice(&x), slice(&gamma), slice(&beta), eps as f32);
        let rows = rstd.len();
        (tensor(y, shape.clone()), tensor(xhat, shape), tensor(rstd, Shape::new([rows])))
    }

    fn layer_norm_grad(
        grad: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (grad, xhat, rstd, gamma) = (values(&grad), values(&xhat), values(&rstd), values(&gamma));
        let shape = grad.shape();
        let (dx, dgamma, dbeta) = kernels::layer_norm_grad(slice(&grad), slice(&xhat), slice(&rstd), slice(&gamma));
        let d = dgamma.len();
        (tensor(dx, shape), tensor(dgamma, Shape::new([d])), tensor(dbeta, Shape::new([d])))
    }

    fn masked_softmax_grad(y: FloatTensor<Self>, grad: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        let (y, grad) = (values(&y), values(&grad));
        let shape = grad.shape();
        let keys = shape.dims::<4>()[3];
        tensor(kernels::masked_softmax_grad(slice(&y), slice(&grad), keys, scale as f32), shape)
    }
}
