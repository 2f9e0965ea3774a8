//! One optimizer update as Hugging Face's `Trainer` makes it: AdamW with weight decay on every
//! parameter except biases and LayerNorm weights, gradients clipped by their global L2 norm
//! (`max_grad_norm`), the pretrained encoder and the new head at their own learning rates.

use burn::module::{Module, Param, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::bert::Classifier;
use crate::device::read_f32;
use crate::freeze::FreezePlan;
use crate::fused::{squared_norm, FusedAdamW, GradientScale};
use crate::measured::PeakMeter;
use crate::params::{walk, Kind, ParamAction};
use crate::Result;

use super::replica::{all_reduce, Exchange};
use super::TrainConfig;

/// How one step runs, beside its model and loss: each block's learning rate, the meter that
/// samples its memory, and in a data-parallel run the exchange with the other replicas.
pub struct StepWith<'a> {
    pub rates: &'a Rates,
    pub meter: &'a mut PeakMeter,
    pub exchange: Option<Exchange<'a>>,
}

/// Lists parameter ids by group.
#[derive(Default)]
struct Ids(Vec<ParamId>, Vec<ParamId>);

impl ParamAction for Ids {
    fn act<const D: usize>(&mut self, param: &Param<Tensor<D>>, kind: Kind) {
        if kind.decays { &mut self.0 } else { &mut self.1 }.push(param.id);
    }
}

/// Every gradient present, flattened, in module order (for their global norm).
struct Present<'a> {
    grads: &'a GradientsParams,
    found: Vec<Tensor<1>>,
}

impl ParamAction for Present<'_> {
    fn act<const D: usize>(&mut self, param: &Param<Tensor<D>>, _kind: Kind) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let n = g.shape().num_elements();
            self.found.push(g.reshape([n]));
        }
    }
}

/// Gradients to apply at one learning rate, with and without weight decay.
struct Group {
    lr: f64,
    decay: GradientsParams,
    no_decay: GradientsParams,
}

/// Moves each gradient of a block into the decay group of the block's learning rate (blocks at
/// the same rate share a group: one optimizer call).
struct Split<'a> {
    grads: &'a mut GradientsParams,
    groups: &'a mut Vec<Group>,
    lr: f64,
}

impl ParamAction for Split<'_> {
    fn act<const D: usize>(&mut self, param: &Param<Tensor<D>>, kind: Kind) {
        let Some(grad) = self.grads.remove::<D>(param.id) else { return };
        let lr = self.lr;
        let group = match self.groups.iter().position(|g| g.lr == lr) {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(Group { lr, decay: GradientsParams::new(), no_decay: GradientsParams::new() });
                self.groups.last_mut().expect("just pushed")
            }
        };
        if kind.decays { &mut group.decay } else { &mut group.no_decay }.register(param.id, grad);
    }
}

/// The learning rate of each block for one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub embeddings: f64,
    /// Bottom to top.
    pub layers: Vec<f64>,
    pub head: f64,
}

impl Rates {
    /// The rates of `plan` (LLRD scales the encoder's blocks) at the encoder's `lr` and the
    /// head's `head_lr`, both times the schedule's `factor`.
    pub fn new(plan: &FreezePlan, lr: f64, head_lr: f64, factor: f64) -> Self {
        Rates {
            embeddings: lr * factor * plan.lr_scale(None),
            layers: (0..plan.num_layers()).map(|i| lr * factor * plan.lr_scale(Some(i))).collect(),
            head: head_lr * factor,
        }
    }
}

/// Which parameters of `module` take weight decay, and which do not.
pub fn decay_groups<M: Module>(module: &M) -> (Vec<ParamId>, Vec<ParamId>) {
    let ids = walk(module, Ids::default());
    (ids.0, ids.1)
}

/// AdamW in two groups (with and without weight decay); each holds state only for the
/// parameters that received a gradient, so frozen blocks cost nothing.
pub struct AdamW {
    decay: ModuleOptimizer,
    no_decay: ModuleOptimizer,
    max_grad_norm: Option<f64>,
    /// The clipping coefficient, applied inside the update (no pass over the gradients of its own).
    clip: GradientScale,
}

impl AdamW {
    pub fn new(cfg: &TrainConfig) -> Self {
        let clip = GradientScale::default();
        let adamw = |weight_decay: f64| {
            let adamw = FusedAdamW::new(cfg.beta1 as f32, cfg.beta2 as f32, 1e-8, weight_decay as f32);
            ModuleOptimizer::from(adamw.scaled_by(clip.clone()))
        };
        AdamW { decay: adamw(cfg.weight_decay), no_decay: adamw(0.0), max_grad_norm: cfg.grad_clip_norm, clip }
    }

    /// Tensors of optimizer state held now (a blocking read of Burn's record: CPU only).
    pub fn state_tensors(&self) -> usize {
        self.decay.to_record().len() + self.no_decay.to_record().len()
    }

    /// `min(1, max_norm / (‖g‖ + 1e-6))` over every gradient, as `torch.nn.utils.clip_grad_norm_`:
    /// a one-element tensor, so nothing is read back to the host.
    fn clip_coefficient(&self, model: &Classifier, grads: &GradientsParams) -> Option<Tensor<1>> {
        let max_norm = self.max_grad_norm?;
        let norm = squared_norm(walk(model, Present { grads, found: Vec::new() }).found)?.sqrt();
        Some((norm.add_scalar(1e-6).recip() * max_norm).clamp_max(1.0))
    }

    /// Backward from `loss` (none: a data-parallel replica whose share of the batch is empty)
    /// and one update, each block at its rate in `with.rates`; in a data-parallel run the
    /// gradients are first summed with the other replicas' through `with.exchange`. Returns the
    /// model, updated unless something failed (a stopped data-parallel run ends a replica's wait:
    /// the run then finishes with the model it has), and the loss; waits for the update, so a
    /// clock around it measures it.
    pub async fn step(
        &mut self,
        model: Classifier,
        loss: Option<Tensor<1>>,
        with: StepWith<'_>,
    ) -> (Classifier, Result<f64>) {
        let StepWith { rates, meter, exchange } = with;
        match self.gradients(&model, loss, meter, exchange).await {
            Ok((grads, loss)) => {
                let (model, done) = self.apply(model, grads, rates).await;
                (model, done.map(|()| loss))
            }
            Err(e) => (model, Err(e)),
        }
    }

    /// The gradients of `loss` (summed with the other replicas' in a data-parallel run) and the
    /// loss of the whole batch.
    async fn gradients(
        &self,
        model: &Classifier,
        loss: Option<Tensor<1>>,
        meter: &mut PeakMeter,
        exchange: Option<Exchange<'_>>,
    ) -> Result<(GradientsParams, f64)> {
        let (mut all, mut loss_value) = match loss {
            Some(loss) => {
                let mut grads = loss.backward();
                meter.sample();
                let loss_value = read_f32(loss).await?[0] as f64;
                (GradientsParams::from_module(&mut grads, model), loss_value)
            }
            None => (GradientsParams::new(), 0.0),
        };
        if let Some(exchange) = exchange {
            (all, loss_value) = all_reduce(model, all, loss_value, exchange).await?;
        }
        Ok((all, loss_value))
    }

    /// One update with `all`, each block at its rate in `rates`, clipped by the global norm.
    async fn apply(&mut self, model: Classifier, mut all: GradientsParams, rates: &Rates) -> (Classifier, Result<()>) {
        // Without clipping, one 1 for the step (the optimizer would make one per tensor).
        let inner = model.head.weight.val().device().inner();
        let scale = self.clip_coefficient(&model, &all).unwrap_or_else(|| Tensor::ones([1], &inner));
        self.clip.set(Some(scale));
        let mut groups = Vec::new();
        let bert = &model.bert;
        let blocks = std::iter::once((rates.embeddings, None))
            .chain(bert.layers.iter().zip(&rates.layers).map(|(layer, &lr)| (lr, Some(layer))));
        for (lr, layer) in blocks {
            let split = Split { grads: &mut all, groups: &mut groups, lr };
            match layer {
                Some(layer) => walk(layer, split),
                None => walk(&bert.embeddings, split),
            };
        }
        let split = Split { grads: &mut all, groups: &mut groups, lr: rates.head };
        walk(&model.head, split);
        let mut model = model;
        for group in groups {
            model = self.decay.step(group.lr, model, group.decay);
            model = self.no_decay.step(group.lr, model, group.no_decay);
        }
        let done = read_f32(model.head.bias.as_ref().expect("head has a bias").val()).await.map(drop);
        (model, done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loaded::{LoadedModel, ModelFiles};
    use crate::synthetic;
    use burn::tensor::{Device, Tensor};

    fn tiny() -> Classifier {
        let (config, weights, tokenizer) = synthetic::model_files(16, 2, 2, 7);
        let files = ModelFiles { config: &config, weights: &weights, tokenizer: tokenizer.as_bytes() };
        LoadedModel::load(files, Some(3), 1, &Device::flex()).unwrap().classifier
    }

    #[test]
    fn biases_and_layer_norms_take_no_weight_decay() {
        let model = tiny();
        let (decay, no_decay) = decay_groups(&model);
        // Embeddings: 3 tables decay, its LayerNorm's 2 do not. Each layer: 6 Linear weights
        // decay; 6 biases and 2 LayerNorms × 2 do not. Head: weight decays, bias does not.
        assert_eq!(decay.len(), 3 + 2 * 6 + 1);
        assert_eq!(no_decay.len(), 2 + 2 * (6 + 4) + 1);
        assert!(decay.contains(&model.head.weight.id) && no_decay.contains(&model.head.bias.as_ref().unwrap().id));
        let layer = &model.bert.layers[1];
        assert!(no_decay.contains(&layer.attention_norm.gamma.id) && decay.contains(&layer.query.weight.id));
    }

    /// One coefficient for all gradients together, from their global norm, as
    /// `clip_grad_norm_`; never above 1.
    #[test]
    fn clipping_scales_by_the_global_norm() {
        let model = tiny();
        let device = Device::flex();
        let mut grads = GradientsParams::new();
        // 16 × 3 ones and three twos: squared norm 48 + 12 = 60.
        grads.register(model.head.weight.id, Tensor::<2>::ones([16, 3], &device));
        grads.register(model.head.bias.as_ref().unwrap().id, Tensor::<1>::ones([3], &device) * 2.0);
        let cfg = |n| TrainConfig { grad_clip_norm: n, ..TrainConfig::default() };
        let coefficient = |n| {
            AdamW::new(&cfg(n)).clip_coefficient(&model, &grads).map(|c| c.into_data().try_to_vec::<f32>().unwrap()[0])
        };
        let norm = 60f32.sqrt();
        assert!((coefficient(Some(1.0)).unwrap() - 1.0 / (norm + 1e-6)).abs() < 1e-7);
        assert_eq!(coefficient(Some(100.0)), Some(1.0));
        assert_eq!(coefficient(None), None);
    }

    #[test]
    fn a_new_head_starts_as_hugging_face_starts_one() {
        let head = tiny().head;
        let weight = head.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let bias = head.bias.unwrap().val().into_data().try_to_vec::<f32>().unwrap();
        assert!(bias.iter().all(|&b| b == 0.0));
        let n = weight.len() as f32;
        let mean = weight.iter().sum::<f32>() / n;
        let std = (weight.iter().map(|w| (w - mean).powi(2)).sum::<f32>() / n).sqrt();
        // 48 draws of N(0, 0.02): the sample std lies well within 0.012..0.028.
        assert!((0.012..0.028).contains(&std) && mean.abs() < 0.01, "mean {mean}, std {std}");
    }
}
