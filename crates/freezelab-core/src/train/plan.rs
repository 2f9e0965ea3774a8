//! A plan made real on a model: gradient flags, eval mode, BitFit's bias-only gradients and
//! LoRA's adapters.

use burn::module::{Lora, Module};
use burn::nn::Linear;

use crate::bert::{Bert, Classifier, EncoderLayer};
use crate::freeze::{FreezePlan, Mode};
use crate::params;

/// Sets gradient flags and eval mode per the plan. Frozen blocks keep their weights fixed
/// (no gradient, so no optimizer state) and run without dropout; under BitFit the other blocks
/// keep gradients for their bias terms only (and their dropout).
///
/// Applies to a model a plan was already applied to, too (gradual unfreezing opens blocks as it
/// goes): trainable blocks are unfrozen first.
pub fn apply_plan(mut model: Classifier, plan: &FreezePlan) -> Classifier {
    fn apply<M: Module>(block: M, frozen: bool, mode: Mode) -> M {
        match (frozen, mode) {
            (true, _) => block.freeze(),
            (false, Mode::Bitfit) => params::biases_only(block.unfreeze()),
            (false, _) => block.unfreeze(),
        }
    }
    let bert = model.bert;
    let layers = bert.layers.into_iter().zip(&plan.layers).map(|(layer, &frozen)| match plan.mode {
        Mode::Lora { rank, alpha, all_linear } if !frozen => lora(layer, rank, alpha, all_linear),
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
fn lora(layer: EncoderLayer, rank: usize, alpha: f64, all_linear: bool) -> EncoderLayer {
    let mut layer = layer.unfreeze().no_grad();
    let adapt = |linear: Linear| linear.apply_lora(Lora::new(rank, alpha));
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
