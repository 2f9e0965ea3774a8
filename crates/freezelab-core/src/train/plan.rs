//! A plan made real on a model: gradient flags, eval mode, BitFit's bias-only gradients and
//! LoRA's adapters.

use burn::module::{LoraAdapter, Module, Param, Reparameterizer};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::bert::{Bert, Classifier, EncoderLayer};
use crate::freeze::{FreezePlan, Mode};
use crate::params;
use crate::seeded::{self, Draw};

/// Sets gradient flags and eval mode per the plan. Frozen blocks keep their weights fixed
/// (no gradient, so no optimizer state) and run without dropout; under BitFit the other blocks
/// keep gradients for their bias terms only (and their dropout).
///
/// Applies to a model a plan was already applied to, too (gradual unfreezing opens blocks as it
/// goes): trainable blocks are unfrozen first. LoRA's factors are drawn from `seed`'s own stream.
pub fn apply_plan(mut model: Classifier, plan: &FreezePlan, seed: u64) -> Classifier {
    fn apply<M: Module>(block: M, frozen: bool, mode: Mode) -> M {
        match (frozen, mode) {
            (true, _) => block.freeze(),
            (false, Mode::Bitfit) => params::biases_only(block.unfreeze()),
            (false, _) => block.unfreeze(),
        }
    }
    let bert = model.bert;
    let mut rng = seeded::rng(seed, Draw::Lora);
    let layers = bert.layers.into_iter().zip(&plan.layers).map(|(layer, &frozen)| match plan.mode {
        Mode::Lora { rank, alpha, all_linear } if !frozen => {
            lora(layer, SeededLora { rank, alpha, rng: &mut rng }, all_linear)
        }
        mode => apply(layer, frozen, mode),
    });
    model.bert =
        Bert { embeddings: apply(bert.embeddings, plan.embeddings_frozen(), plan.mode), layers: layers.collect() };
    model
}

/// `layer` with its weights fixed and a trainable rank-`rank` update on the query and value
/// projections (every linear with `all_linear`): Burn's LoRA reparameterisation, whose
/// `Param::val` is `base + alpha / rank · A·B`, so the forward pass and the export see the merged
/// weight. The layer stays in training mode (dropout on).
fn lora(layer: EncoderLayer, mut adapters: SeededLora, all_linear: bool) -> EncoderLayer {
    let mut layer = layer.unfreeze().no_grad();
    let mut adapt = |linear: Linear| linear.apply_reparameterization(&mut adapters);
    layer.query = adapt(layer.query);
    layer.value = adapt(layer.value);
    if all_linear {
        layer.key = adapt(layer.key);
        layer.attention_output = adapt(layer.attention_output);
        layer.intermediate = adapt(layer.intermediate);
        layer.output = adapt(layer.output);
    }
    layer
}

/// LoRA's usual start (A ~ N(0, 1/rank), B = 0: the model's output is unchanged) with A drawn
/// from the run's seeded stream rather than the backend's generator, so one seed gives the same
/// adapters on every device and in every worker.
struct SeededLora<'a> {
    rank: usize,
    alpha: f64,
    rng: &'a mut ChaCha8Rng,
}

impl Reparameterizer for &mut SeededLora<'_> {
    type Reparam = LoraAdapter;

    fn reparameterize<const D: usize>(
        &mut self,
        _path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<LoraAdapter>) {
        // Biases stay fixed; only 2-D weights get factors.
        if D != 2 {
            return (param.set_require_grad(false), None);
        }
        let base = param.base();
        let (device, [d_in, d_out]) = (base.device(), [base.dims()[0], base.dims()[1]]);
        let normal = Normal::new(0.0f32, 1.0 / self.rank as f32).expect("a positive rank");
        let a: Vec<f32> = normal.sample_iter(&mut *self.rng).take(d_in * self.rank).collect();
        let a = Tensor::<2>::from_data(TensorData::new(a, [d_in, self.rank]), &device);
        let b = Tensor::<2>::zeros([self.rank, d_out], &device);
        let adapter =
            LoraAdapter { a: Param::from_tensor(a), b: Param::from_tensor(b), scale: self.alpha / self.rank as f64 };
        (param.set_require_grad(false), Some(adapter))
    }
}
