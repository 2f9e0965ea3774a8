//! The optimizer's update on Burn's cubecl backend (WebGPU in the page, Vulkan natively): one
//! kernel launch per parameter tensor. Burn's `AdamW` composes it of about fifteen element-wise
//! ops, and at MiniLM's size a GPU step is bound by launches, not arithmetic (BENCHMARKS.md,
//! "The GPU path, counted").

use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::tensor::FloatTensor;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::Cube;
use cubecl::prelude::*;
use cubecl::{calculate_cube_count_elemwise, CubeDim};

use super::kernels::AdamWStep;
use super::UpdateOps;

/// `kernels::adamw`'s arithmetic, one element per unit (`scale`: one element, the clipping
/// coefficient), the three state tensors updated in place.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn adamw_kernel<F: Float>(
    param: &mut Tensor<F>,
    grad: &Tensor<F>,
    scale: &Tensor<F>,
    moment_1: &mut Tensor<F>,
    moment_2: &mut Tensor<F>,
    lr: f32,
    beta_1: f32,
    beta_2: f32,
    factor_1: f32,
    factor_2: f32,
    epsilon: f32,
    decay: f32,
    correction_1: f32,
    correction_2: f32,
    #[define(F)] _dtype: ElemType,
) {
    if ABSOLUTE_POS >= param.len() {
        terminate!();
    }
    let i = ABSOLUTE_POS;
    let g = grad[i] * scale[0];
    let m = moment_1[i] * F::cast_from(beta_1) + g * F::cast_from(factor_1);
    let v = moment_2[i] * F::cast_from(beta_2) + g * g * F::cast_from(factor_2);
    let delta = (m / F::cast_from(correction_1)) / (F::sqrt(v / F::cast_from(correction_2)) + F::cast_from(epsilon));
    moment_1[i] = m;
    moment_2[i] = v;
    param[i] = param[i] * F::cast_from(decay) - delta * F::cast_from(lr);
}

/// `t` laid out in order in a buffer nothing else holds, so the kernel may write it.
fn writable(t: CubeTensor) -> CubeTensor {
    let t = into_contiguous(t);
    if t.can_mut() {
        t
    } else {
        into_contiguous(t.copy())
    }
}

impl UpdateOps for Cube {
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (param, moment_1, moment_2) = (writable(param), writable(moment_1), writable(moment_2));
        let grad = into_contiguous(grad);
        let scale = into_contiguous(scale);
        let client = param.client.clone();
        let units = param.meta.num_elements();
        let cube_dim = CubeDim::new(&client, units);
        let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
        // Safety: every index is checked against the parameter's length, and the four tensors
        // have that length (one element per unit, contiguous).
        unsafe {
            adamw_kernel::launch_unchecked(
                &client,
                cube_count,
                cube_dim,
                param.clone().into_tensor_arg(),
                grad.into_tensor_arg(),
                scale.into_tensor_arg(),
                moment_1.clone().into_tensor_arg(),
                moment_2.clone().into_tensor_arg(),
                step.lr,
                step.beta_1,
                step.beta_2,
                1.0 - step.beta_1,
                1.0 - step.beta_2,
                step.epsilon,
                step.decay,
                step.correction_1,
                step.correction_2,
                dtype_to_storage_type(param.dtype),
            );
        }
        (param, moment_1, moment_2)
    }
}
