//! What training did to each block, the answer to "won't fine-tuning wreck the pretrained
//! weights?": how far its weights moved, ‖W_after − W_before‖ / ‖W_before‖, read against the
//! checkpoint's bytes the caller already holds (the head against its seed), and how much its
//! output changed, linear CKA between the pretrained and the trained model's hidden states on a
//! fixed validation batch (the one place a pretrained copy is loaded, and dropped at once).
//! Every read is asynchronous, so it works on WebGPU.

use std::collections::BTreeMap;

use burn::module::Module;
use freezelab_protocol::run::{BlockDrift, DRIFT_PROBE_EXAMPLES};

use crate::bert::{BatchTensors, Bert, Classifier};
use crate::config::BertConfig;
use crate::device::read_f32;
use crate::loaded::{LoadedModel, ModelFiles};
use crate::weights::{hf_tensors, Initial};
use crate::Result;

/// The block and the part of an encoder layer a parameter belongs to, from its HF name.
fn place(name: &str) -> (usize, String, Option<&'static str>) {
    if name.starts_with("embeddings.") {
        return (0, "emb".into(), None);
    }
    if let Some(rest) = name.strip_prefix("encoder.layer.") {
        let (index, tail) = rest.split_once('.').unwrap_or((rest, ""));
        let i: usize = index.parse().unwrap_or(0);
        let part = if tail.contains("LayerNorm") {
            "layer-norm"
        } else if tail.starts_with("attention.") {
            "attention"
        } else {
            "feed-forward"
        };
        return (1 + i, format!("layer-{i}"), Some(part));
    }
    (usize::MAX, "head".into(), None)
}

/// Sums of squares: of the change, and of the starting values.
#[derive(Default, Clone, Copy)]
struct Squares {
    change: f64,
    start: f64,
}

impl Squares {
    fn add(&mut self, before: &[f32], after: &[f32]) {
        for (b, a) in before.iter().zip(after) {
            let (b, a) = (*b as f64, *a as f64);
            self.change += (a - b) * (a - b);
            self.start += b * b;
        }
    }

    /// 0 when nothing changed, whatever the start (a zero bias that stayed zero).
    fn relative(self) -> f64 {
        if self.change == 0.0 {
            0.0
        } else {
            (self.change / self.start.max(f64::MIN_POSITIVE)).sqrt()
        }
    }
}

/// The drift of every block of `model` from the checkpoint `pretrained` it was loaded from
/// with `seed` (which drew its head, if the checkpoint had none), bottom to head.
pub async fn weight_drift(
    model: &Classifier,
    config: &BertConfig,
    pretrained: &[u8],
    seed: u64,
) -> Result<Vec<BlockDrift>> {
    let labels = model.num_labels();
    let mut initial = Initial::new(config, pretrained, seed)?;
    let mut blocks: BTreeMap<usize, (String, Squares, BTreeMap<&'static str, Squares>)> = BTreeMap::new();
    for (name, shape, tensor) in hf_tensors(model) {
        let after = read_f32(tensor).await?;
        let before = initial.values(&name, &shape, labels)?;
        let (order, block, part) = place(&name);
        let entry = blocks.entry(order).or_insert_with(|| (block, Squares::default(), BTreeMap::new()));
        entry.1.add(&before, &after);
        if let Some(part) = part {
            entry.2.entry(part).or_default().add(&before, &after);
        }
    }
    Ok(blocks
        .into_values()
        .map(|(block, all, parts)| BlockDrift {
            block,
            relative_change: all.relative(),
            parts: parts.into_iter().map(|(p, s)| (p.to_string(), s.relative())).collect(),
            cka: None,
        })
        .collect())
}

/// Linear CKA of two representations of the same `n` items (rows of `x` and `y`, any widths):
/// ‖Kx · Ky‖ / (‖Kx‖ ‖Ky‖) over the centred Gram matrices. 1 when one is the other up to
/// rotation and scale; 0 when unrelated.
pub fn linear_cka(x: &[f32], y: &[f32], n: usize) -> f64 {
    let gram = |m: &[f32]| {
        let d = m.len() / n.max(1);
        let mean: Vec<f64> = (0..d).map(|j| (0..n).map(|i| m[i * d + j] as f64).sum::<f64>() / n as f64).collect();
        let centred: Vec<f64> = (0..n * d).map(|k| m[k] as f64 - mean[k % d]).collect();
        let mut g = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let dot: f64 = (0..d).map(|k| centred[i * d + k] * centred[j * d + k]).sum();
                g[i * n + j] = dot;
                g[j * n + i] = dot;
            }
        }
        g
    };
    let (kx, ky) = (gram(x), gram(y));
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let denominator = (dot(&kx, &kx) * dot(&ky, &ky)).sqrt();
    if denominator == 0.0 {
        return 0.0;
    }
    dot(&kx, &ky) / denominator
}

/// Every block's output (embeddings, layers) on `input`, real tokens only, as rows.
async fn token_states(bert: &Bert, input: &BatchTensors, mask: &[u8]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::new();
    for state in bert.hidden_states(input) {
        let h = state.dims()[2];
        let values = read_f32(state).await?;
        out.push(
            mask.iter()
                .enumerate()
                .filter(|(_, &m)| m == 1)
                .flat_map(|(t, _)| values[t * h..(t + 1) * h].to_vec())
                .collect(),
        );
    }
    Ok(out)
}

/// Weight drift and representation change of `trained`, loaded from `files` with `seed`, on
/// the first [`DRIFT_PROBE_EXAMPLES`] of `texts` at `max_len`: one entry per block, bottom to head.
pub async fn measure(
    trained: &Classifier,
    files: ModelFiles<'_>,
    seed: u64,
    texts: &[&str],
    max_len: usize,
) -> Result<Vec<BlockDrift>> {
    let config = BertConfig::from_json(files.config)?;
    let mut blocks = weight_drift(trained, &config, files.weights, seed).await?;
    let trained = trained.valid();
    let device = trained.head.weight.val().device();
    let pretrained = LoadedModel::load(files, Some(trained.num_labels()), seed, &device)?;
    let probe = &texts[..texts.len().min(DRIFT_PROBE_EXAMPLES)];
    let batch = pretrained.tokenizer.encode_batch(probe, max_len)?;
    let input = BatchTensors::new(&batch, &device);
    let before = token_states(&pretrained.classifier.bert, &input, &batch.mask).await?;
    drop(pretrained);
    let after = token_states(&trained.bert, &input, &batch.mask).await?;
    let tokens = batch.mask.iter().filter(|&&m| m == 1).count();
    for (block, (b, a)) in blocks.iter_mut().zip(before.iter().zip(&after)) {
        block.cka = Some(linear_cka(b, a, tokens));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_placed_by_their_hf_names() {
        assert_eq!(place("embeddings.LayerNorm.weight"), (0, "emb".into(), None));
        assert_eq!(place("encoder.layer.3.attention.self.query.weight"), (4, "layer-3".into(), Some("attention")));
        assert_eq!(place("encoder.layer.0.attention.output.LayerNorm.bias"), (1, "layer-0".into(), Some("layer-norm")));
        assert_eq!(place("encoder.layer.11.output.dense.weight"), (12, "layer-11".into(), Some("feed-forward")));
        assert_eq!(place("classifier.weight").1, "head");
    }

    #[test]
    fn cka_is_one_for_the_same_representation_up_to_rotation_and_scale() {
        // Five items in two dimensions; the second is the first rotated by 90° and scaled by 3.
        let x = [1.0, 0.0, 0.5, 2.0, -1.0, 1.0, 3.0, -2.0, 0.0, 0.7];
        let y: Vec<f32> = x.chunks(2).flat_map(|r| [-3.0 * r[1], 3.0 * r[0]]).collect();
        assert!((linear_cka(&x, &x, 5) - 1.0).abs() < 1e-12);
        assert!((linear_cka(&x, &y, 5) - 1.0).abs() < 1e-12);
        // A representation that ignores the input entirely shares nothing with it.
        let constant = [1.0f32; 10];
        assert_eq!(linear_cka(&x, &constant, 5), 0.0);
        // Something in between for a partial match, and symmetric.
        let z = [1.0, 0.3, -0.2, 2.0, 0.1, 1.0, 0.4, -2.0, 0.9, 0.7];
        let c = linear_cka(&x, &z, 5);
        assert!(c > 0.0 && c < 1.0 && (c - linear_cka(&z, &x, 5)).abs() < 1e-12, "{c}");
    }

    #[test]
    fn relative_change_is_the_ratio_of_norms() {
        let mut s = Squares::default();
        s.add(&[3.0, 4.0], &[3.0, 4.0]);
        assert_eq!(s.relative(), 0.0);
        s.add(&[0.0], &[0.5]);
        // ‖(0, 0, 0.5)‖ / ‖(3, 4, 0)‖ = 0.5 / 5.
        assert!((s.relative() - 0.1).abs() < 1e-12);
    }
}
