//! The arithmetic of the fused operations on plain `f32` slices. Branch-free loops that LLVM
//! vectorises (SSE/AVX natively, SIMD128 in wasm, where libm's scalar `erff`/`expf` would not);
//! natively the work is split over rayon's threads in fixed-size chunks, so no result depends
//! on the number of threads.

/// Elements per task of element-wise kernels; rows per task of row kernels.
const ELEMS_PER_TASK: usize = 1 << 14;
const ROWS_PER_TASK: usize = 32;

/// Runs `f(chunk index, chunk)` over `out` in chunks of `len`, in parallel where threads exist,
/// and returns what each call returned, in chunk order.
fn map_chunks<T: Send>(out: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) -> T + Sync + Send) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(len.max(1)).enumerate().map(|(i, c)| f(i, c)).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        out.chunks_mut(len.max(1)).enumerate().map(|(i, c)| f(i, c)).collect()
    }
}

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two so that `k · ln2` subtracts exactly for the `k` that occur.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// Below this, e^x is under f32's smallest normal: return exactly 0 (HF's masked scores rely on it).
const EXP_MIN: f32 = -87.33;
const EXP_MAX: f32 = 88.0;

/// e^x to about 1 ulp: x = k·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to r⁷,
/// 2^k built in the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let k = (xc * LOG2_E + ROUND) - ROUND;
    let r = xc - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((k as i32 + 127) << 23) as u32);
    if x < EXP_MIN {
        0.0
    } else {
        p * scale
    }
}

/// erf(x) and e^{-x²} (the latter is what GELU's derivative needs too), by Abramowitz & Stegun
/// 7.1.26: absolute error of erf below 1.5e-7, plus f32 rounding (5e-7 in all).
#[inline(always)]
fn erf_and_gauss(x: f32) -> (f32, f32) {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let gauss = exp(-x * x);
    ((1.0 - poly * gauss).copysign(x), gauss)
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π)
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// GELU with the exact (erf) form, as BERT's `hidden_act: "gelu"`.
pub fn gelu(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    map_chunks(&mut out, ELEMS_PER_TASK, |i, o| {
        let x = &x[i * ELEMS_PER_TASK..i * ELEMS_PER_TASK + o.len()];
        for (o, &x) in o.iter_mut().zip(x) {
            let (erf, _) = erf_and_gauss(x * FRAC_1_SQRT_2);
            *o = 0.5 * x * (1.0 + erf);
        }
    });
    out
}

/// d GELU(x) · g = g · (Φ(x) + x·φ(x)).
pub fn gelu_grad(x: &[f32], g: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    map_chunks(&mut out, ELEMS_PER_TASK, |i, o| {
        let start = i * ELEMS_PER_TASK;
        let (x, g) = (&x[start..start + o.len()], &g[start..start + o.len()]);
        for ((o, &x), &g) in o.iter_mut().zip(x).zip(g) {
            let (erf, gauss) = erf_and_gauss(x * FRAC_1_SQRT_2);
            *o = g * (0.5 * (1.0 + erf) + x * INV_SQRT_2PI * gauss);
        }
    });
    out
}

/// A well-mixed 32-bit key per element from a per-call key (a counter-based generator: the same
/// mask can be made again in the backward pass instead of being stored).
#[inline(always)]
fn hash(index: u32, key: u32) -> u32 {
    let mut h = index.wrapping_mul(0x9e37_79b9) ^ key;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^ (h >> 16)
}

/// The 32-bit key of a dropout call's `seed`, spread by SplitMix64's finaliser.
pub(super) fn dropout_key(seed: u64) -> u32 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u32
}

/// The hash an element must reach to be kept, and what a kept element is multiplied by.
pub(super) fn dropout_threshold_and_scale(prob: f64) -> (u32, f32) {
    ((prob * 4_294_967_296.0).min(u32::MAX as f64) as u32, (1.0 / (1.0 - prob)) as f32)
}

/// Inverted dropout: element `i` is kept (and scaled by 1/(1-p)) when the hash of its position
/// `offset + i` is at or above p · 2³². The same `seed` drops the same elements, which is how the
/// backward pass applies it.
pub fn dropout(x: &[f32], prob: f64, seed: u64, offset: u32) -> Vec<f32> {
    let (threshold, scale) = dropout_threshold_and_scale(prob);
    let key = dropout_key(seed);
    let mut out = vec![0.0; x.len()];
    map_chunks(&mut out, ELEMS_PER_TASK, |i, o| {
        let (start, n) = (i * ELEMS_PER_TASK, o.len());
        for (j, (o, &x)) in o.iter_mut().zip(&x[start..start + n]).enumerate() {
            let keep = hash(offset.wrapping_add((start + j) as u32), key) >= threshold;
            *o = if keep { x * scale } else { 0.0 };
        }
    });
    out
}

/// Layer normalisation over rows of `gamma.len()`: `(y, x̂, 1/σ per row)`; x̂ and 1/σ are what
/// the backward pass needs.
pub fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let rows = x.len() / d;
    let mut y = vec![0.0; x.len()];
    let mut xhat = vec![0.0; x.len()];
    let mut rstd = vec![0.0; rows];
    let per_task = ROWS_PER_TASK * d;
    // x̂ first (rows in parallel), then y from x̂ in a second parallel sweep.
    let stats = map_chunks(&mut xhat, per_task, |i, xh| {
        let x = &x[i * per_task..i * per_task + xh.len()];
        x.chunks(d)
            .zip(xh.chunks_mut(d))
            .map(|(x, xh)| {
                let mean = x.iter().sum::<f32>() / d as f32;
                let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
                let r = 1.0 / (var + eps).sqrt();
                for (o, v) in xh.iter_mut().zip(x) {
                    *o = (v - mean) * r;
                }
                r
            })
            .collect::<Vec<f32>>()
    });
    for (dst, src) in rstd.chunks_mut(ROWS_PER_TASK).zip(stats) {
        dst.copy_from_slice(&src);
    }
    map_chunks(&mut y, per_task, |i, y| {
        let xh = &xhat[i * per_task..i * per_task + y.len()];
        for (y, xh) in y.chunks_mut(d).zip(xh.chunks(d)) {
            for ((y, &v), (&g, &b)) in y.iter_mut().zip(xh).zip(gamma.iter().zip(beta)) {
                *y = v * g + b;
            }
        }
    });
    (y, xhat, rstd)
}

/// Gradients of layer normalisation from the forward pass's x̂ and 1/σ:
/// `(dx, dγ, dβ)`, dx = (g·γ − mean(g·γ) − x̂·mean(g·γ·x̂)) / σ. dγ and dβ are summed per chunk
/// of rows, then the chunks in order.
pub fn layer_norm_grad(g: &[f32], xhat: &[f32], rstd: &[f32], gamma: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let per_task = ROWS_PER_TASK * d;
    let mut dx = vec![0.0; g.len()];
    let partials = map_chunks(&mut dx, per_task, |i, dx| {
        let start = i * per_task;
        let (g, xhat) = (&g[start..start + dx.len()], &xhat[start..start + dx.len()]);
        let mut dgamma = vec![0.0f32; d];
        let mut dbeta = vec![0.0f32; d];
        let mut gx = vec![0.0f32; d];
        for (row, ((dx, g), xh)) in dx.chunks_mut(d).zip(g.chunks(d)).zip(xhat.chunks(d)).enumerate() {
            let mut a = 0.0f32;
            let mut b = 0.0f32;
            for j in 0..d {
                gx[j] = g[j] * gamma[j];
                a += gx[j];
                b += gx[j] * xh[j];
                dgamma[j] += g[j] * xh[j];
                dbeta[j] += g[j];
            }
            let (a, b) = (a / d as f32, b / d as f32);
            let r = rstd[i * ROWS_PER_TASK + row];
            for j in 0..d {
                dx[j] = r * (gx[j] - a - xh[j] * b);
            }
        }
        (dgamma, dbeta)
    });
    let mut dgamma = vec![0.0f32; d];
    let mut dbeta = vec![0.0f32; d];
    for (pg, pb) in partials {
        dgamma.iter_mut().zip(pg).for_each(|(s, v)| *s += v);
        dbeta.iter_mut().zip(pb).for_each(|(s, v)| *s += v);
    }
    (dx, dgamma, dbeta)
}

/// Softmax over the last axis of attention scores `[batch, heads, queries, keys]` after scaling
/// by `scale` and adding `bias` `[batch, keys]` (0 for tokens, a large negative number for padding).
pub fn masked_softmax(scores: &[f32], bias: &[f32], keys: usize, rows_per_batch: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0; scores.len()];
    let per_task = ROWS_PER_TASK * keys;
    map_chunks(&mut out, per_task, |i, o| {
        let first_row = i * ROWS_PER_TASK;
        let s = &scores[first_row * keys..first_row * keys + o.len()];
        for (r, (o, s)) in o.chunks_mut(keys).zip(s.chunks(keys)).enumerate() {
            let batch = (first_row + r) / rows_per_batch;
            let bias = &bias[batch * keys..(batch + 1) * keys];
            for ((o, &s), &b) in o.iter_mut().zip(s).zip(bias) {
                *o = s * scale + b;
            }
            let max = o.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut sum = 0.0f32;
            for o in o.iter_mut() {
                *o = exp(*o - max);
                sum += *o;
            }
            let inv = 1.0 / sum;
            o.iter_mut().for_each(|o| *o *= inv);
        }
    });
    out
}

/// Gradient of [`masked_softmax`] with respect to the scores, from its output `y`:
/// scale · y · (g − Σ g·y) per row.
pub fn masked_softmax_grad(y: &[f32], g: &[f32], keys: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0; y.len()];
    let per_task = ROWS_PER_TASK * keys;
    map_chunks(&mut out, per_task, |i, o| {
        let start = i * per_task;
        let (y, g) = (&y[start..start + o.len()], &g[start..start + o.len()]);
        for ((o, y), g) in o.chunks_mut(keys).zip(y.chunks(keys)).zip(g.chunks(keys)) {
            let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
            for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                *o = scale * y * (g - dot);
            }
        }
    });
    out
}

/// The scalars of one AdamW update (Loshchilov & Hutter), in f32 as Burn's `AdamW` applies them.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    pub lr: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// 1 − lr · weight decay: what the parameter is scaled by before the step.
    pub decay: f32,
    /// 1 − β₁ᵗ and 1 − β₂ᵗ: the moments' bias corrections at this step.
    pub correction_1: f32,
    pub correction_2: f32,
}

/// One AdamW update in place with the gradient `grad · scale`: the moments, then the parameter,
/// element by element in one pass (Burn composes it of 14 element-wise ops, each a pass over
/// memory with a new buffer, after a pass of its own to scale the gradient). The same f32
/// operations in the same order as Burn's, so the two agree to the last bit.
pub fn adamw(
    param: &mut [f32],
    grad: &[f32],
    scale: f32,
    (moment_1, moment_2): (&mut [f32], &mut [f32]),
    s: AdamWStep,
) {
    let (factor_1, factor_2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    let update = |i: usize, p: &mut [f32], m: &mut [f32], v: &mut [f32]| {
        let g = &grad[i * ELEMS_PER_TASK..i * ELEMS_PER_TASK + p.len()];
        for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
            let g = g * scale;
            *m = *m * s.beta_1 + g * factor_1;
            *v = *v * s.beta_2 + g * g * factor_2;
            let delta = (*m / s.correction_1) / ((*v / s.correction_2).sqrt() + s.epsilon);
            *p = *p * s.decay - delta * s.lr;
        }
    };
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        let chunks = param.par_chunks_mut(ELEMS_PER_TASK).zip(moment_1.par_chunks_mut(ELEMS_PER_TASK));
        chunks.zip(moment_2.par_chunks_mut(ELEMS_PER_TASK)).enumerate().for_each(|(i, ((p, m), v))| update(i, p, m, v));
    }
    #[cfg(target_arch = "wasm32")]
    {
        let chunks = param.chunks_mut(ELEMS_PER_TASK).zip(moment_1.chunks_mut(ELEMS_PER_TASK));
        chunks.zip(moment_2.chunks_mut(ELEMS_PER_TASK)).enumerate().for_each(|(i, ((p, m), v))| update(i, p, m, v));
    }
}

/// Σ x², summed in f64 per chunk, then the chunks in order (no result depends on the threads).
pub fn squared_sum(x: &[f32]) -> f32 {
    let partial = |c: &[f32]| c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>();
    #[cfg(not(target_arch = "wasm32"))]
    let partials: Vec<f64> = {
        use rayon::prelude::*;
        x.par_chunks(ELEMS_PER_TASK).map(partial).collect()
    };
    #[cfg(target_arch = "wasm32")]
    let partials: Vec<f64> = x.chunks(ELEMS_PER_TASK).map(partial).collect();
    partials.iter().sum::<f64>() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library_and_underflows_to_zero() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (ours, std) = (exp(x), x.exp());
            assert!((ours - std).abs() <= 4.0 * f32::EPSILON * std, "exp({x}) = {ours}, std {std}");
        }
        assert_eq!(exp(-1.0e9), 0.0);
    }

    #[test]
    fn erf_is_within_its_bound() {
        for i in -600..=600 {
            let x = i as f64 / 100.0;
            let (ours, _) = erf_and_gauss(x as f32);
            let exact = reference_erf(x);
            assert!((ours as f64 - exact).abs() < 5e-7, "erf({x}) = {ours}, exact {exact}");
        }
    }

    /// erf in f64 from its Maclaurin series (|x| ≤ 3) or continued fraction (beyond).
    fn reference_erf(x: f64) -> f64 {
        if x.abs() > 3.0 {
            let mut f = 0.0;
            for n in (1..60).rev() {
                f = n as f64 / 2.0 / (x.abs() + f);
            }
            let erfc = (-x * x).exp() / std::f64::consts::PI.sqrt() / (x.abs() + f);
            return (1.0 - erfc).copysign(x);
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn dropout_keeps_about_one_minus_p_and_repeats_with_its_seed() {
        let x = vec![1.0f32; 100_000];
        let a = dropout(&x, 0.1, 7, 0);
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        assert_eq!(a, dropout(&x, 0.1, 7, 0));
        assert_ne!(a, dropout(&x, 0.1, 8, 0));
    }
}
