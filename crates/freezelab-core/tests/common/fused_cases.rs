//! Each fused operation against Burn's composed operations on the same inputs: the output and
//! every gradient (loss = Σ output · random weights), at odd sizes and with padded keys. Run
//! natively (tests/native/fused.rs) and in the browser (tests/wasm.rs).

use std::cell::Cell;

use burn::module::Param;
use burn::nn::{DropoutConfig, LayerNormConfig, LinearConfig};
use burn::tensor::{activation, Device, Tensor, TensorData};
use freezelab_core::device::read_f32;
use freezelab_core::fused::{self, Dropouts};

pub const TOLERANCE: f32 = 1e-5;

/// Deterministic values in [-scale, scale) (the same on every target).
fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: u32, scale: f32, device: &Device) -> Tensor<D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed, scale), shape), device)
}

async fn worst<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let (a, b) = (read_f32(a).await.unwrap(), read_f32(b).await.unwrap());
    assert_eq!(a.len(), b.len());
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// (what, largest absolute difference) for every output and gradient of every fused operation.
pub async fn differences() -> Vec<(String, f32)> {
    let device = Device::flex().autodiff();
    let mut out = Vec::new();

    // GELU over a wide range (the erf tails) at an odd shape.
    let x = tensor([3, 5, 7], 1, 6.0, &device).require_grad();
    let w = tensor([3, 5, 7], 2, 1.0, &device);
    let (fused, composed) = (fused::gelu(x.clone()), activation::gelu(x.clone()));
    out.push(("gelu".into(), worst(fused.clone(), composed.clone()).await));
    let (gf, gc) = ((fused * w.clone()).sum().backward(), (composed * w).sum().backward());
    out.push(("gelu dx".into(), worst(x.grad(&gf).unwrap(), x.grad(&gc).unwrap()).await));

    out.extend(row_differences(&Device::flex()).await);
    out.extend(product_differences(&device).await);

    // Dropout: kept elements scaled by 1/(1-p), and the backward pass applies the same mask.
    let prob = 0.25;
    let x = (tensor([4, 33], 9, 1.0, &device).abs() + 0.1).require_grad();
    let w = tensor([4, 33], 10, 1.0, &device);
    let layer = DropoutConfig::new(prob).init();
    let y = fused::with_dropouts(&Cell::new(Dropouts::new(3)), || fused::dropout(x.clone(), &layer));
    let keep = y.clone().not_equal_elem(0.0).float() / (1.0 - prob);
    out.push(("dropout".into(), worst(y.clone(), x.clone() * keep.clone()).await));
    let g = (y.clone() * w.clone()).sum().backward();
    out.push(("dropout dx".into(), worst(x.grad(&g).unwrap(), (w * keep).inner()).await));
    // A data-parallel replica's share (rows 1 and 2 of 4) drops what the whole batch drops there.
    let share = Dropouts { first: 1, count: 2, ..Dropouts::new(3) };
    let y_share = fused::with_dropouts(&Cell::new(share), || fused::dropout(x.clone().slice(1..3), &layer));
    out.push(("dropout share".into(), worst(y_share, y.slice(1..3)).await));
    out
}

/// The products (`fused::matmul`, `fused::linear`) against Burn's `matmul` and `Linear`, outputs
/// and every gradient: sizes off the wasm kernel's 4 × 8 tiles, a k past its 256-row blocks and
/// an m past its 64-row blocks, the right operand a transposed view (as the attention's keys).
async fn product_differences(device: &Device) -> Vec<(String, f32)> {
    let mut out = Vec::new();
    for (b, h, m, k, n, seed) in [(2, 3, 5, 7, 9, 31), (1, 2, 67, 301, 13, 37)] {
        let lhs = tensor([b, h, m, k], seed, 0.25, device).require_grad();
        let rhs = tensor([b, h, n, k], seed + 1, 0.25, device).require_grad();
        let w = tensor([b, h, m, n], seed + 2, 1.0, device);
        let fused = fused::matmul(lhs.clone(), rhs.clone().swap_dims(2, 3));
        let composed = lhs.clone().matmul(rhs.clone().swap_dims(2, 3));
        let what = format!("product {m}×{k}·{k}×{n}");
        out.push((what.clone(), worst(fused.clone(), composed.clone()).await));
        let (gf, gc) = ((fused * w.clone()).sum().backward(), (composed * w).sum().backward());
        out.push((format!("{what} dlhs"), worst(lhs.grad(&gf).unwrap(), lhs.grad(&gc).unwrap()).await));
        out.push((format!("{what} drhs"), worst(rhs.grad(&gf).unwrap(), rhs.grad(&gc).unwrap()).await));
    }
    let (width, outputs) = (41, 19);
    let mut layer = LinearConfig::new(width, outputs).init(device);
    layer.weight = Param::from_tensor(tensor([width, outputs], 41, 0.5, device));
    layer.bias = Some(Param::from_tensor(tensor([outputs], 42, 0.5, device)));
    let x = tensor([2, 37, width], 43, 1.0, device).require_grad();
    let w = tensor([2, 37, outputs], 44, 1.0, device);
    let (fused, composed) = (fused::linear(x.clone(), &layer), layer.forward(x.clone()));
    out.push(("linear".into(), worst(fused.clone(), composed.clone()).await));
    let (gf, gc) = ((fused * w.clone()).sum().backward(), (composed * w).sum().backward());
    out.push(("linear dx".into(), worst(x.grad(&gf).unwrap(), x.grad(&gc).unwrap()).await));
    let (weight, bias) = (layer.weight.val(), layer.bias.as_ref().unwrap().val());
    out.push(("linear dW".into(), worst(weight.grad(&gf).unwrap(), weight.grad(&gc).unwrap()).await));
    out.push(("linear db".into(), worst(bias.grad(&gf).unwrap(), bias.grad(&gc).unwrap()).await));
    out
}

/// Layer norm and the masked softmax, fused against Burn's composed operations on `device`
/// (autodiff on), outputs and gradients: rows narrower and wider than a GPU kernel's cube of
/// units, and a softmax of more rows than one GPU dispatch axis holds (65,535 cubes).
pub async fn row_differences(device: &Device) -> Vec<(String, f32)> {
    let device = device.clone().autodiff();
    let mut out = Vec::new();
    // Trained-looking γ and β, odd widths, BERT's ε.
    for (d, seed) in [(13, 3), (397, 13)] {
        let mut norm = LayerNormConfig::new(d).with_epsilon(1e-12).init(&device);
        norm.gamma = Param::from_tensor(tensor([d], seed, 1.0, &device) + 1.0);
        norm.beta = Some(Param::from_tensor(tensor([d], seed + 1, 0.5, &device)));
        let x = tensor([2, 5, d], seed + 2, 3.0, &device).require_grad();
        let w = tensor([2, 5, d], seed + 3, 1.0, &device);
        let (fused, composed) = (fused::layer_norm(x.clone(), &norm, 1e-12), norm.forward(x.clone()));
        out.push((format!("layer norm, width {d}"), worst(fused.clone(), composed.clone()).await));
        let (gf, gc) = ((fused * w.clone()).sum().backward(), (composed * w).sum().backward());
        out.push((format!("layer norm dx, width {d}"), worst(x.grad(&gf).unwrap(), x.grad(&gc).unwrap()).await));
        let gamma = norm.gamma.val();
        out.push((
            format!("layer norm dγ, width {d}"),
            worst(gamma.grad(&gf).unwrap(), gamma.grad(&gc).unwrap()).await,
        ));
        let beta = norm.beta.as_ref().unwrap().val();
        out.push((format!("layer norm dβ, width {d}"), worst(beta.grad(&gf).unwrap(), beta.grad(&gc).unwrap()).await));
    }
    // The last sequence has its last two keys padded.
    for (b, h, q, k, seed) in [(2, 3, 5, 5, 7), (2, 2, 67, 67, 17), (2, 1, 35_003, 3, 27)] {
        let scores = tensor([b, h, q, k], seed, 4.0, &device).require_grad();
        let mask: Vec<f32> = (0..b * k).map(|i| if i >= b * k - 2 { 0.0 } else { 1.0 }).collect();
        let bias = (Tensor::<2>::from_data(TensorData::new(mask, [b, k]), &device) - 1.0) * 1.0e9;
        let w = tensor([b, h, q, k], seed + 1, 1.0, &device);
        let scale = 0.125;
        let fused = fused::masked_softmax(scores.clone(), bias.clone(), scale);
        let composed = activation::softmax(scores.clone() * scale + bias.reshape([b, 1, 1, k]), 3);
        let rows = b * h * q;
        out.push((format!("masked softmax, {rows} rows of {k}"), worst(fused.clone(), composed.clone()).await));
        let (gf, gc) = ((fused * w.clone()).sum().backward(), (composed * w).sum().backward());
        let dscores = worst(scores.grad(&gf).unwrap(), scores.grad(&gc).unwrap()).await;
        out.push((format!("masked softmax dscores, {rows} rows of {k}"), dscores));
    }
    out
}

/// The largest absolute difference between the fused AdamW and Burn's composed `AdamW` on
/// `device` (parameter and both moments) after three steps with weight decay and a falling rate:
/// on a tensor of odd size with the gradients as they are, and on one of over a million elements
/// (more units than one dispatch dimension of a GPU holds at 256 a group) with the gradients
/// scaled inside the update, as clipping does, and beforehand for Burn's.
pub async fn adamw_difference(device: &Device) -> f32 {
    use burn::optim::{AdamWConfig, Optimizer};
    use freezelab_core::fused::{FusedAdamW, GradientScale};

    let composed = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.01).build();
    let mut largest = 0.0f32;
    for (shape, seed, scale) in [([37, 29], 10, None), ([1031, 1027], 20, Some(0.37))] {
        let clip = GradientScale::default();
        clip.set(scale.map(|c| Tensor::<1>::from_data(TensorData::new(vec![c], [1]), device)));
        let fused = FusedAdamW::new(0.9, 0.999, 1e-8, 0.01).scaled_by(clip);
        let start = tensor(shape, seed, 1.0, device);
        let (mut a, mut b) = (start.clone(), start);
        let (mut state_a, mut state_b) = (None, None);
        for step in 0..3u32 {
            let grad = tensor(shape, seed + 1 + step, 0.1 * (step + 1) as f32, device);
            let lr = 1e-2 / (step + 1) as f64;
            let scaled = scale.map_or(grad.clone(), |c| grad.clone() * c);
            (a, state_a) = fused.step(lr, a, grad, state_a);
            (b, state_b) = composed.step(lr, b, scaled, state_b);
        }
        let (ma, mb) = (state_a.unwrap().momentum, state_b.unwrap().momentum);
        assert_eq!((ma.time, mb.time), (3, 3));
        for difference in
            [worst(a, b).await, worst(ma.moment_1, mb.moment_1).await, worst(ma.moment_2, mb.moment_2).await]
        {
            largest = largest.max(difference);
        }
    }
    largest
}

/// The relative error of the fused squared global norm on `device` against the sum of squares in
/// f64, over tensors of over a million, of an odd number and of five elements.
pub async fn squared_norm_error(device: &Device) -> f64 {
    let tensors: Vec<Vec<f32>> =
        [(1031 * 1027, 30), (37 * 29, 31), (5, 32)].iter().map(|&(n, seed)| values(n, seed, 2.0)).collect();
    let exact: f64 = tensors.iter().flatten().map(|&v| (v as f64) * (v as f64)).sum();
    let xs = tensors.into_iter().map(|v| {
        let n = v.len();
        Tensor::<1>::from_data(TensorData::new(v, [n]), device)
    });
    let norm = fused::squared_norm(xs.collect()).expect("three tensors");
    let norm = read_f32(norm).await.unwrap()[0] as f64;
    (norm - exact).abs() / exact
}

/// GELU's output and gradient (loss = Σ output · weights) on `device`, fused or Burn's.
async fn gelu_and_grad(device: &Device, fused_op: bool) -> (Vec<f32>, Vec<f32>) {
    let x = tensor([3, 5, 7], 1, 6.0, device).require_grad();
    let w = tensor([3, 5, 7], 2, 1.0, device);
    let y = if fused_op { fused::gelu(x.clone()) } else { activation::gelu(x.clone()) };
    let grads = (y.clone() * w).sum().backward();
    (read_f32(y).await.unwrap(), read_f32(x.grad(&grads).unwrap()).await.unwrap())
}

/// The fused GELU on `device` (autodiff on) against the CPU's, output and gradient; and how far
/// Burn's own gradient on `device` is from the CPU's (on the GPU it differentiates the tanh
/// approximation): `(output, gradient, Burn's gradient)`, largest absolute differences.
pub async fn gelu_differences(device: &Device) -> (f32, f32, f32) {
    let largest = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let (y_cpu, dx_cpu) = gelu_and_grad(&Device::flex().autodiff(), true).await;
    let (y, dx) = gelu_and_grad(&device.clone().autodiff(), true).await;
    let (_, dx_burn) = gelu_and_grad(&device.clone().autodiff(), false).await;
    (largest(&y, &y_cpu), largest(&dx, &dx_cpu), largest(&dx_burn, &dx_cpu))
}

const DROPOUT: f64 = 0.3;

/// Dropout's input, output and gradient (loss = Σ output · weights) on `device` with autodiff
/// on, the dropout stream seeded alike, as a replica's share (its positions offset); and the
/// weights.
async fn dropout_and_grad(device: &Device) -> [Vec<f32>; 4] {
    let device = device.clone().autodiff();
    let x = tensor([4, 9, 33], 7, 2.0, &device).require_grad();
    let w = tensor([4, 9, 33], 8, 1.0, &device);
    let stream = Cell::new(Dropouts { first: 3, count: 4, ..Dropouts::new(11) });
    let y = fused::with_dropouts(&stream, || fused::dropout(x.clone(), &DropoutConfig::new(DROPOUT).init()));
    let grads = (y.clone() * w.clone()).sum().backward();
    let dx = read_f32(x.grad(&grads).unwrap()).await.unwrap();
    [read_f32(x).await.unwrap(), read_f32(y).await.unwrap(), dx, read_f32(w).await.unwrap()]
}

/// What one dropout call did on a device, checked by [`DropoutCheck::assert`].
#[derive(Debug)]
pub struct DropoutCheck {
    /// Largest differences from the CPU's output and gradient (the same masks: 0 on every device).
    pub output_vs_cpu: f32,
    pub gradient_vs_cpu: f32,
    /// The share of elements kept, and how far it may be from 1 − p: four binomial standard
    /// deviations.
    pub kept: f64,
    pub bound: f64,
    /// Largest relative error of a kept output from x / (1 − p) and of its gradient from
    /// w / (1 − p); a dropped element's output or gradient that is not exactly 0 counts as 1.
    pub scale_error: f32,
}

impl DropoutCheck {
    pub fn assert(&self, on: &str) {
        assert!(
            self.output_vs_cpu == 0.0 && self.gradient_vs_cpu == 0.0,
            "{on}: dropout differs from the CPU's: {self:?}"
        );
        assert!(
            (self.kept - (1.0 - DROPOUT)).abs() <= self.bound,
            "{on}: kept {} at p = {DROPOUT}: {self:?}",
            self.kept
        );
        assert!(self.scale_error <= 1e-5, "{on}: kept values are not scaled by 1/(1 - p): {self:?}");
    }
}

/// The hashed dropout on `device` against the CPU's, and its statistics there.
pub async fn dropout_check(device: &Device) -> DropoutCheck {
    let largest = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let [_, y_cpu, dx_cpu, _] = dropout_and_grad(&Device::flex()).await;
    let [x, y, dx, w] = dropout_and_grad(device).await;
    let scale = 1.0 / (1.0 - DROPOUT as f32);
    let relative = |got: f32, want: f32| ((got - want) / want).abs();
    let (mut kept, mut scale_error) = (0usize, 0.0f32);
    for i in 0..x.len() {
        // The inputs are never 0, so a 0 output is a dropped element.
        let error = if y[i] == 0.0 {
            if dx[i] == 0.0 {
                0.0
            } else {
                1.0
            }
        } else {
            kept += 1;
            relative(y[i], x[i] * scale).max(relative(dx[i], w[i] * scale))
        };
        scale_error = scale_error.max(error);
    }
    let n = x.len() as f64;
    DropoutCheck {
        output_vs_cpu: largest(&y, &y_cpu),
        gradient_vs_cpu: largest(&dx, &dx_cpu),
        kept: kept as f64 / n,
        bound: 4.0 * (DROPOUT * (1.0 - DROPOUT) / n).sqrt(),
        scale_error,
    }
}
