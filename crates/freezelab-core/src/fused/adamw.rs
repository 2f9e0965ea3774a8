//! AdamW as Burn's optimizers take it (one parameter at a time, the moments as its state), with
//! the update fused into one pass: a loop on the `flex` CPU backend, one kernel launch on the GPU.

use std::sync::{Arc, Mutex};

use burn::backend::Dispatch;
use burn::optim::{AdamW, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::kernels::AdamWStep;
use super::UpdateOps;

/// The factor every gradient of the next updates is multiplied by (the clipping coefficient, a
/// one-element tensor on the device), shared between the caller and its optimizers: Burn's
/// `Optimizer::step` has no place for it.
#[derive(Clone, Default)]
pub struct GradientScale(Arc<Mutex<Option<Tensor<1>>>>);

impl GradientScale {
    /// `None`: no scaling (the gradients as they are).
    pub fn set(&self, scale: Option<Tensor<1>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = scale;
    }

    fn get(&self) -> Option<Tensor<1>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Clone)]
pub struct FusedAdamW {
    scale: GradientScale,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
}

impl FusedAdamW {
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        FusedAdamW { scale: GradientScale::default(), beta_1, beta_2, epsilon, weight_decay }
    }

    /// The same, its gradients multiplied by what `scale` holds at each step (by 1 while it
    /// holds nothing: one more small tensor a step on the device).
    pub fn scaled_by(self, scale: GradientScale) -> Self {
        FusedAdamW { scale, ..self }
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        // Zero moments make the first step's arithmetic Burn's exactly (0·β + x = x).
        let (time, moment_1, moment_2) = match state {
            Some(s) => (s.momentum.time + 1, s.momentum.moment_1, s.momentum.moment_2),
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        // In f32 as Burn's AdamW takes them (its lr · weight decay in f64).
        let step = AdamWStep {
            lr: lr as f32,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            decay: (1.0 - lr * self.weight_decay as f64) as f32,
            correction_1: 1.0 - self.beta_1.powi(time as i32),
            correction_2: 1.0 - self.beta_2.powi(time as i32),
        };
        let scale = self.scale.get().unwrap_or_else(|| Tensor::ones([1], &grad.device()));
        let scale = scale.into_dispatch();
        let [param, grad, moment_1, moment_2] = [tensor, grad, moment_1, moment_2].map(Tensor::into_dispatch);
        let (param, moment_1, moment_2) =
            <Dispatch as UpdateOps>::adamw_step(param, grad, scale, moment_1, moment_2, step);
        let momentum =
            AdaptiveMomentumState::new(time, Tensor::from_dispatch(moment_1), Tensor::from_dispatch(moment_2));
        (Tensor::from_dispatch(param), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::AdamWConfig;
    use burn::tensor::{Distribution, TensorData};

    /// Three steps of the fused update against Burn's composed AdamW, with and without weight
    /// decay: the same f32 arithmetic, so the same bits.
    #[test]
    fn the_fused_update_is_burns_adamw_to_the_bit() {
        let device = Device::flex();
        for weight_decay in [0.0, 0.01] {
            let fused = FusedAdamW::new(0.9, 0.999, 1e-8, weight_decay);
            let composed = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(weight_decay).build();
            let start = Tensor::<2>::random([37, 29], Distribution::Normal(0.0, 1.0), &device);
            let (mut a, mut b) = (start.clone(), start);
            let (mut state_a, mut state_b) = (None, None);
            for step in 0..3 {
                let grad = Tensor::<2>::random([37, 29], Distribution::Normal(0.0, 0.1 * (step + 1) as f64), &device);
                let lr = 1e-3 / (step + 1) as f64;
                (a, state_a) = fused.step(lr, a, grad.clone(), state_a);
                (b, state_b) = composed.step(lr, b, grad, state_b);
            }
            let (ma, mb) = (state_a.unwrap().momentum, state_b.unwrap().momentum);
            assert_eq!(ma.time, 3);
            assert_eq!(a.into_data(), b.into_data(), "weight decay {weight_decay}");
            assert_eq!(ma.moment_1.into_data(), mb.moment_1.into_data());
            assert_eq!(ma.moment_2.into_data(), mb.moment_2.into_data());
        }
    }

    #[test]
    fn the_squared_norm_is_the_sum_of_squares() {
        let device = Device::flex();
        let values: Vec<f32> = (0..40_000).map(|i| ((i % 97) as f32 - 48.0) / 16.0).collect();
        let exact: f64 = 2.0 * values.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        let x = || Tensor::<1>::from_data(TensorData::new(values.clone(), [40_000]), &device);
        let fused = super::super::squared_norm(vec![x(), x()]).unwrap();
        let fused = fused.into_data().try_to_vec::<f32>().unwrap()[0] as f64;
        assert!((fused - exact).abs() / exact < 1e-7, "{fused} vs {exact}");
        assert!(super::super::squared_norm(Vec::new()).is_none());
    }
}
