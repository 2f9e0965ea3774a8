//! Kernels of this crate on Burn's cubecl backend (WebGPU in the page, Vulkan natively): GELU
//! and dropout forward and backward, one launch each; layer norm (one launch forward, two
//! backward) and the attention's masked softmax (one each way), a cube of units per row; and
//! the optimizer's work: one kernel launch per parameter tensor for the update, and one per
//! gradient for the clipping norm's Σg². Burn composes each of these of several launches (its
//! `AdamW` of about fifteen element-wise ops); at MiniLM's size a GPU step is bound by launches,
//! not arithmetic (BENCHMARKS.md, "The GPU path, counted").

use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::Cube;
use cubecl::prelude::*;
use cubecl::{calculate_cube_count_elemwise, CubeCount, CubeDim};

use super::kernels::{dropout_key, dropout_threshold_and_scale, AdamWStep};
use super::{FusedBackward, FusedOps, UpdateOps, NORM_SLOTS};

// Each kernel's parameters are its launch bindings (tensors and scalars the GPU reads): no
// struct can stand for them, hence `too_many_arguments` allowed on the kernels alone.

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

/// Σ x² of `x` by each group: its units stride over `x`, then add their sums (`cube_reduce`);
/// the group's total goes to `partials[first + group]`. No atomics: WebGPU has no
/// atomic float add.
#[cube(launch_unchecked)]
fn squared_sum_kernel<F: Float>(
    x: &Tensor<F>,
    partials: &mut Tensor<F>,
    first: usize,
    #[comptime] group: usize,
    #[define(F)] _dtype: ElemType,
) {
    let stride = CUBE_COUNT * group;
    let mut sum = F::new(0.0);
    let mut i = ABSOLUTE_POS;
    while i < x.len() {
        let v = x[i];
        sum += v * v;
        i += stride;
    }
    let total = cube_reduce::<F>(sum, group, false);
    if UNIT_POS == 0 {
        partials[first + CUBE_POS] = total;
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

/// `kernels::dropout`: element `i` kept (and scaled) when the hash of (`offset + i`, `key`)
/// reaches `threshold`; u32 arithmetic wraps as the CPU's `wrapping_*` does, so the masks are the
/// CPU's.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn dropout_kernel<F: Float>(
    x: &Tensor<F>,
    out: &mut Tensor<F>,
    threshold: u32,
    key: u32,
    offset: u32,
    scale: f32,
    #[define(F)] _dtype: ElemType,
) {
    if ABSOLUTE_POS >= out.len() {
        terminate!();
    }
    let mut h = ((u32::cast_from(ABSOLUTE_POS) + offset) * 0x9e37_79b9u32) ^ key;
    h ^= h >> 16u32;
    h *= 0x7feb_352du32;
    h ^= h >> 15u32;
    h *= 0x846c_a68bu32;
    h ^= h >> 16u32;
    out[ABSOLUTE_POS] = select(h >= threshold, x[ABSOLUTE_POS] * F::cast_from(scale), F::new(0.0));
}

/// Units of the cube that handles one row (of a layer norm, of a softmax): a power of two, so
/// the sums halve evenly; a row of MiniLM's 384 values is 6 per unit.
const ROW_UNITS: usize = 64;

/// The most cubes along one axis of a launch (WebGPU's limit per dimension).
const MAX_CUBES_PER_AXIS: usize = 65_535;

/// A launch of one cube per row; cubes past `rows` (a second axis rounds up) stop at once.
fn row_grid(rows: usize) -> (CubeCount, CubeDim) {
    let x = rows.clamp(1, MAX_CUBES_PER_AXIS);
    (CubeCount::new_2d(x as u32, rows.div_ceil(x) as u32), CubeDim::new_1d(ROW_UNITS as u32))
}

/// `value` combined over the cube's units (CUBE_DIM of them, a power of two) by a tree in shared
/// memory: their sum, or with `largest` their maximum; every unit gets the result.
#[cube]
fn cube_reduce<F: Float>(value: F, #[comptime] units: usize, #[comptime] largest: bool) -> F {
    let mut shared = Shared::<[F]>::new_slice(units);
    let unit = UNIT_POS as usize;
    shared[unit] = value;
    sync_cube();
    let mut active = CUBE_DIM / 2;
    while active > 0 {
        if UNIT_POS < active {
            let other = shared[unit + active as usize];
            if largest {
                shared[unit] = F::max(shared[unit], other);
            } else {
                shared[unit] += other;
            }
        }
        sync_cube();
        active /= 2;
    }
    shared[0]
}

/// `kernels::layer_norm` for row CUBE_POS (width `gamma.len()`): y, x̂ and 1/σ.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn layer_norm_kernel<F: Float>(
    x: &Tensor<F>,
    gamma: &Tensor<F>,
    beta: &Tensor<F>,
    y: &mut Tensor<F>,
    xhat: &mut Tensor<F>,
    rstd: &mut Tensor<F>,
    eps: f32,
    #[comptime] units: usize,
    #[define(F)] _dtype: ElemType,
) {
    let row = CUBE_POS;
    if row >= rstd.len() {
        terminate!();
    }
    let width = gamma.len();
    let start = row * width;
    let inv_width = F::new(1.0) / F::cast_from(width as u32);
    let mut sum = F::new(0.0);
    for j in range_stepped(UNIT_POS as usize, width, units) {
        sum += x[start + j];
    }
    let mean = cube_reduce::<F>(sum, units, false) * inv_width;
    let mut squares = F::new(0.0);
    for j in range_stepped(UNIT_POS as usize, width, units) {
        let centred = x[start + j] - mean;
        squares += centred * centred;
    }
    let r = F::new(1.0) / F::sqrt(cube_reduce::<F>(squares, units, false) * inv_width + F::cast_from(eps));
    for j in range_stepped(UNIT_POS as usize, width, units) {
        let normalised = (x[start + j] - mean) * r;
        xhat[start + j] = normalised;
        y[start + j] = normalised * gamma[j] + beta[j];
    }
    if UNIT_POS == 0 {
        rstd[row] = r;
    }
}

/// dx of `kernels::layer_norm_grad` for row CUBE_POS: (g·γ − mean(g·γ) − x̂·mean(g·γ·x̂)) / σ.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn layer_norm_dx_kernel<F: Float>(
    grad: &Tensor<F>,
    xhat: &Tensor<F>,
    rstd: &Tensor<F>,
    gamma: &Tensor<F>,
    dx: &mut Tensor<F>,
    #[comptime] units: usize,
    #[define(F)] _dtype: ElemType,
) {
    let row = CUBE_POS;
    if row >= rstd.len() {
        terminate!();
    }
    let width = gamma.len();
    let start = row * width;
    let inv_width = F::new(1.0) / F::cast_from(width as u32);
    let mut a = F::new(0.0);
    let mut b = F::new(0.0);
    for j in range_stepped(UNIT_POS as usize, width, units) {
        let gx = grad[start + j] * gamma[j];
        a += gx;
        b += gx * xhat[start + j];
    }
    let a = cube_reduce::<F>(a, units, false) * inv_width;
    let b = cube_reduce::<F>(b, units, false) * inv_width;
    let r = rstd[row];
    for j in range_stepped(UNIT_POS as usize, width, units) {
        dx[start + j] = r * (grad[start + j] * gamma[j] - a - xhat[start + j] * b);
    }
}

/// dγ = Σ g·x̂ and dβ = Σ g over the rows, one unit per column (rows in order).
#[cube(launch_unchecked)]
fn layer_norm_dgamma_kernel<F: Float>(
    grad: &Tensor<F>,
    xhat: &Tensor<F>,
    dgamma: &mut Tensor<F>,
    dbeta: &mut Tensor<F>,
    #[define(F)] _dtype: ElemType,
) {
    let column = ABSOLUTE_POS;
    let width = dgamma.len();
    if column >= width {
        terminate!();
    }
    let mut gamma_sum = F::new(0.0);
    let mut beta_sum = F::new(0.0);
    let mut i = column;
    while i < grad.len() {
        gamma_sum += grad[i] * xhat[i];
        beta_sum += grad[i];
        i += width;
    }
    dgamma[column] = gamma_sum;
    dbeta[column] = beta_sum;
}

/// `kernels::masked_softmax` for row CUBE_POS of the scores (`keys` wide; the row's batch is
/// `row / rows_per_batch`, whose `bias` row it adds).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn masked_softmax_kernel<F: Float>(
    scores: &Tensor<F>,
    bias: &Tensor<F>,
    out: &mut Tensor<F>,
    scale: f32,
    keys: usize,
    rows_per_batch: usize,
    #[comptime] units: usize,
    #[define(F)] _dtype: ElemType,
) {
    let row = CUBE_POS;
    if row >= scores.len() / keys {
        terminate!();
    }
    let start = row * keys;
    let bias_start = (row / rows_per_batch) * keys;
    let scale = F::cast_from(scale);
    let mut largest = F::min_value();
    for j in range_stepped(UNIT_POS as usize, keys, units) {
        largest = F::max(largest, scores[start + j] * scale + bias[bias_start + j]);
    }
    let largest = cube_reduce::<F>(largest, units, true);
    let mut sum = F::new(0.0);
    for j in range_stepped(UNIT_POS as usize, keys, units) {
        let e = F::exp(scores[start + j] * scale + bias[bias_start + j] - largest);
        out[start + j] = e;
        sum += e;
    }
    let inv = F::new(1.0) / cube_reduce::<F>(sum, units, false);
    for j in range_stepped(UNIT_POS as usize, keys, units) {
        out[start + j] *= inv;
    }
}

/// `kernels::masked_softmax_grad` for row CUBE_POS: scale · y · (g − Σ g·y).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn masked_softmax_grad_kernel<F: Float>(
    y: &Tensor<F>,
    grad: &Tensor<F>,
    out: &mut Tensor<F>,
    scale: f32,
    keys: usize,
    #[comptime] units: usize,
    #[define(F)] _dtype: ElemType,
) {
    let row = CUBE_POS;
    if row >= y.len() / keys {
        terminate!();
    }
    let start = row * keys;
    let mut dot = F::new(0.0);
    for j in range_stepped(UNIT_POS as usize, keys, units) {
        dot += y[start + j] * grad[start + j];
    }
    let dot = cube_reduce::<F>(dot, units, false);
    for j in range_stepped(UNIT_POS as usize, keys, units) {
        out[start + j] = F::cast_from(scale) * y[start + j] * (grad[start + j] - dot);
    }
}

/// A new contiguous tensor of `shape`, on `like`'s device and of its dtype.
fn empty_like(like: &CubeTensor, shape: Shape) -> CubeTensor {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

/// The last axis's length of `t`.
fn last_dim(t: &CubeTensor) -> usize {
    let shape = t.meta.shape();
    shape[shape.num_dims() - 1]
}

impl FusedOps for Cube {
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

    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64, offset: u32) -> FloatTensor<Self> {
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
                offset,
                scale,
                dtype_to_storage_type(x.dtype),
            );
        }
        out
    }

    fn normalize(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        Self::layer_norm_train(x, w, b, eps).0
    }

    fn softmax_masked(scores: FloatTensor<Self>, bias: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        let (scores, bias) = (into_contiguous(scores), into_contiguous(bias));
        let [_, heads, queries, keys] = scores.meta.shape().dims::<4>();
        let (out, ..) = output_like(&scores);
        let (cube_count, cube_dim) = row_grid(scores.meta.num_elements() / keys);
        // Safety: each cube reads and writes one row of `keys` values of `scores`/`out` (cubes
        // past the last row stop), and the bias row of its batch (`[batch, keys]`).
        unsafe {
            masked_softmax_kernel::launch_unchecked(
                &out.client,
                cube_count,
                cube_dim,
                scores.clone().into_tensor_arg(),
                bias.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                scale as f32,
                keys,
                heads * queries,
                ROW_UNITS,
                dtype_to_storage_type(scores.dtype),
            );
        }
        out
    }

    fn product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as FloatTensorOps<Self>>::float_matmul(lhs, rhs)
    }
}

impl FusedBackward for Cube {
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

    fn layer_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (x, gamma, beta) = (into_contiguous(x), into_contiguous(gamma), into_contiguous(beta));
        let rows = x.meta.num_elements() / last_dim(&x);
        let (y, ..) = output_like(&x);
        let (xhat, ..) = output_like(&x);
        let rstd = empty_like(&x, Shape::new([rows]));
        let (cube_count, cube_dim) = row_grid(rows);
        // Safety: cube `row` reads and writes only row `row` of `x`, `y` and `x̂` (the width of
        // γ and β) and element `row` of `rstd`; cubes past the last row stop.
        unsafe {
            layer_norm_kernel::launch_unchecked(
                &x.client,
                cube_count,
                cube_dim,
                x.clone().into_tensor_arg(),
                gamma.into_tensor_arg(),
                beta.into_tensor_arg(),
                y.clone().into_tensor_arg(),
                xhat.clone().into_tensor_arg(),
                rstd.clone().into_tensor_arg(),
                eps as f32,
                ROW_UNITS,
                dtype_to_storage_type(x.dtype),
            );
        }
        (y, xhat, rstd)
    }

    fn layer_norm_grad(
        grad: FloatTensor<Self>,
        xhat: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (grad, xhat, rstd, gamma) =
            (into_contiguous(grad), into_contiguous(xhat), into_contiguous(rstd), into_contiguous(gamma));
        let (dx, ..) = output_like(&grad);
        let width = gamma.meta.num_elements();
        let dgamma = empty_like(&gamma, Shape::new([width]));
        let dbeta = empty_like(&gamma, Shape::new([width]));
        let (cube_count, cube_dim) = row_grid(rstd.meta.num_elements());
        // Safety: as in the forward kernel, a row per cube; `grad` and `x̂` have `x`'s shape.
        unsafe {
            layer_norm_dx_kernel::launch_unchecked(
                &grad.client,
                cube_count,
                cube_dim,
                grad.clone().into_tensor_arg(),
                xhat.clone().into_tensor_arg(),
                rstd.into_tensor_arg(),
                gamma.clone().into_tensor_arg(),
                dx.clone().into_tensor_arg(),
                ROW_UNITS,
                dtype_to_storage_type(grad.dtype),
            );
        }
        let (cube_count, cube_dim) = elementwise_grid(&dgamma);
        // Safety: one unit per column, checked against the width; it reads that column of
        // every row of `grad` and `x̂`.
        unsafe {
            layer_norm_dgamma_kernel::launch_unchecked(
                &grad.client,
                cube_count,
                cube_dim,
                grad.clone().into_tensor_arg(),
                xhat.into_tensor_arg(),
                dgamma.clone().into_tensor_arg(),
                dbeta.clone().into_tensor_arg(),
                dtype_to_storage_type(grad.dtype),
            );
        }
        (dx, dgamma, dbeta)
    }

    fn masked_softmax_grad(y: FloatTensor<Self>, grad: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        let (y, grad) = (into_contiguous(y), into_contiguous(grad));
        let keys = last_dim(&y);
        let (out, ..) = output_like(&y);
        let (cube_count, cube_dim) = row_grid(y.meta.num_elements() / keys);
        // Safety: a row of `keys` values per cube in `y`, `grad` and `out` (the same shape).
        unsafe {
            masked_softmax_grad_kernel::launch_unchecked(
                &out.client,
                cube_count,
                cube_dim,
                y.clone().into_tensor_arg(),
                grad.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                scale as f32,
                keys,
                ROW_UNITS,
                dtype_to_storage_type(y.dtype),
            );
        }
        out
    }
}
