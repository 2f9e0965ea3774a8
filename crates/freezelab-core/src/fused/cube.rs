//! Kernels of this crate on Burn's cubecl backend (WebGPU in the page, Vulkan natively): GELU
//! forward and backward, one launch each, and the optimizer's work: one kernel launch per
//! parameter tensor for the update, and one per gradient for the clipping norm's Σg². Burn's `AdamW` composes the update of about fifteen element-wise ops and the norm takes
//! three launches per gradient; at MiniLM's size a GPU step is bound by launches, not
//! arithmetic (BENCHMARKS.md, "The GPU path, counted").

use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::tensor::FloatTensor;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::Cube;
use cubecl::prelude::*;
use cubecl::{calculate_cube_count_elemwise, CubeCount, CubeDim};

use super::kernels::{dropout_key, dropout_threshold_and_scale, AdamWStep};
use super::{DropoutOps, GeluGrad, GeluOps, UpdateOps, NORM_SLOTS};

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

/// Units of a group summing squares (a gradient gets up to `NORM_SLOTS` groups, each writing
/// one partial sum; the partials of all gradients are then summed in one more launch).
const GROUP: usize = 256;

/// Σ x² of `x` by each group: its units stride over `x`, then add their sums as a tree in shared
/// memory; the group's total goes to `partials[first + group]`. No atomics: WebGPU has no
/// atomic float add.
#[cube(launch_unchecked)]
fn squared_sum_kernel<F: Float>(
    x: &Tensor<F>,
    partials: &mut Tensor<F>,
    first: usize,
    #[comptime] group: usize,
    #[define(F)] _dtype: ElemType,
) {
    let mut shared = Shared::<[F]>::new_slice(group);
    let unit = UNIT_POS as usize;
    let stride = CUBE_COUNT * group;
    let mut sum = F::new(0.0);
    let mut i = ABSOLUTE_POS;
    while i < x.len() {
        let v = x[i];
        sum += v * v;
        i += stride;
    }
    shared[unit] = sum;
    sync_cube();
    let mut active = CUBE_DIM / 2;
    while active > 0 {
        if UNIT_POS < active {
            let other = shared[unit + active as usize];
            shared[unit] += other;
        }
        sync_cube();
        active /= 2;
    }
    if UNIT_POS == 0 {
        partials[first + CUBE_POS] = shared[0];
    }
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
        let (cube_count, cube_dim) = elementwise_grid(&param);
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

    fn squared_sum_into(x: FloatTensor<Self>, partials: FloatTensor<Self>, row: usize) -> FloatTensor<Self> {
        let (x, partials) = (into_contiguous(x), writable(partials));
        let groups = x.meta.num_elements().div_ceil(GROUP).clamp(1, NORM_SLOTS);
        // Safety: `x` is read below its length only, and the groups write slots
        // `row · NORM_SLOTS + group` of `partials`, which has `NORM_SLOTS` for every row.
        unsafe {
            squared_sum_kernel::launch_unchecked(
                &x.client,
                CubeCount::new_1d(groups as u32),
                CubeDim::new_1d(GROUP as u32),
                x.clone().into_tensor_arg(),
                partials.clone().into_tensor_arg(),
                row * NORM_SLOTS,
                GROUP,
                dtype_to_storage_type(x.dtype),
            );
        }
        partials
    }
}

/// erf(z), Abramowitz & Stegun 7.1.26 as the CPU kernel computes it (`kernels::erf_and_gauss`).
#[cube]
fn erf<F: Float>(z: F) -> F {
    let t = F::new(1.0) / (F::new(1.0) + F::new(0.327_591_1) * F::abs(z));
    let poly = t
        * (F::new(0.254_829_6)
            + t * (F::new(-0.284_496_74)
                + t * (F::new(1.421_413_8) + t * (F::new(-1.453_152) + t * F::new(1.061_405_4)))));
    let magnitude = F::new(1.0) - poly * F::exp(F::new(0.0) - z * z);
    select(z < F::new(0.0), F::new(0.0) - magnitude, magnitude)
}

#[cube(launch_unchecked)]
fn gelu_kernel<F: Float>(x: &Tensor<F>, out: &mut Tensor<F>, #[define(F)] _dtype: ElemType) {
    if ABSOLUTE_POS >= out.len() {
        terminate!();
    }
    let v = x[ABSOLUTE_POS];
    out[ABSOLUTE_POS] = F::new(0.5) * v * (F::new(1.0) + erf::<F>(v * F::new(core::f32::consts::FRAC_1_SQRT_2)));
}

/// g · (Φ(x) + x·φ(x)), the exact derivative of the erf form.
#[cube(launch_unchecked)]
fn gelu_grad_kernel<F: Float>(x: &Tensor<F>, grad: &Tensor<F>, out: &mut Tensor<F>, #[define(F)] _dtype: ElemType) {
    if ABSOLUTE_POS >= out.len() {
        terminate!();
    }
    let v = x[ABSOLUTE_POS];
    let z = v * F::new(core::f32::consts::FRAC_1_SQRT_2);
    let gauss = F::exp(F::new(0.0) - z * z) * F::new(0.398_942_3);
    out[ABSOLUTE_POS] = grad[ABSOLUTE_POS] * (F::new(0.5) * (F::new(1.0) + erf::<F>(z)) + v * gauss);
}

/// The launch grid of one unit per element of `t`.
fn elementwise_grid(t: &CubeTensor) -> (CubeCount, CubeDim) {
    let units = t.meta.num_elements();
    let cube_dim = CubeDim::new(&t.client, units);
    (calculate_cube_count_elemwise(&t.client, units, cube_dim), cube_dim)
}

/// A new contiguous tensor shaped as `like`, and the launch grid over its elements.
fn output_like(like: &CubeTensor) -> (CubeTensor, CubeCount, CubeDim) {
    let shape = like.meta.shape().clone();
    let out = empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), shape, like.dtype);
    let (cube_count, cube_dim) = elementwise_grid(&out);
    (out, cube_count, cube_dim)
}

impl GeluOps for Cube {
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let x = into_contiguous(x);
        let (out, cube_count, cube_dim) = output_like(&x);
        // Safety: one unit per element of `out`, checked against its length; `x` has as many.
        unsafe {
            gelu_kernel::launch_unchecked(
                &out.client,
                cube_count,
                cube_dim,
                x.clone().into_tensor_arg(),
                out.clone().into_tensor_arg(),
                dtype_to_storage_type(x.dtype),
            );
        }
        out
    }
}

impl GeluGrad for Cube {
    fn gelu_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, grad) = (into_contiguous(x), into_contiguous(grad));
        let (out, cube_count, cube_dim) = output_like(&x);
        // Safety: as above; `grad` has the shape of `x`.
        unsafe {
            gelu_grad_kernel::launch_unchecked(
                &out.client,
                cube_count,
                cube_dim,
                x.clone().into_tensor_arg(),
                grad.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                dtype_to_storage_type(x.dtype),
            );
        }
        out
    }
}

/// `kernels::dropout`: element `i` kept (and scaled) when the hash of (`i`, `key`) reaches
/// `threshold`; u32 arithmetic wraps as the CPU's `wrapping_mul` does, so the masks are the CPU's.
#[cube(launch_unchecked)]
fn dropout_kernel<F: Float>(
    x: &Tensor<F>,
    out: &mut Tensor<F>,
    threshold: u32,
    key: u32,
    scale: f32,
    #[define(F)] _dtype: ElemType,
) {
    if ABSOLUTE_POS >= out.len() {
        terminate!();
    }
    let mut h = u32::cast_from(ABSOLUTE_POS) * 0x9e37_79b9u32 ^ key;
    h ^= h >> 16u32;
    h *= 0x7feb_352du32;
    h ^= h >> 15u32;
    h *= 0x846c_a68bu32;
    h ^= h >> 16u32;
    out[ABSOLUTE_POS] = select(h >= threshold, x[ABSOLUTE_POS] * F::cast_from(scale), F::new(0.0));
}

impl DropoutOps for Cube {
    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64) -> FloatTensor<Self> {
        let x = into_contiguous(x);
        let (out, cube_count, cube_dim) = output_like(&x);
        let (threshold, scale) = dropout_threshold_and_scale(prob);
        // Safety: one unit per element of `out`, checked against its length; `x` has as many.
        unsafe {
            dropout_kernel::launch_unchecked(
                &out.client,
                cube_count,
                cube_dim,
                x.clone().into_tensor_arg(),
                out.clone().into_tensor_arg(),
                threshold,
                dropout_key(seed),
                scale,
                dtype_to_storage_type(x.dtype),
            );
        }
        out
    }
}
