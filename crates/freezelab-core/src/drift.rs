//! What training did to each block: ‖W_after − W_before‖ / ‖W_before‖, the answer to "won't
//! fine-tuning wreck the pretrained weights?". The starting point is read from the checkpoint's
//! bytes the caller already holds (and the head from its seed), never from a second model in
//! memory; the trained values are read asynchronously, so it works on WebGPU.

use std::collections::BTreeMap;

use freezelab_protocol::run::BlockDrift;

use crate::bert::Classifier;
use crate::config::BertConfig;
use crate::device::read_f32;
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
        })
        .collect())
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
    fn relative_change_is_the_ratio_of_norms() {
        let mut s = Squares::default();
        s.add(&[3.0, 4.0], &[3.0, 4.0]);
        assert_eq!(s.relative(), 0.0);
        s.add(&[0.0], &[0.5]);
        // ‖(0, 0, 0.5)‖ / ‖(3, 4, 0)‖ = 0.5 / 5.
        assert!((s.relative() - 0.1).abs() < 1e-12);
    }
}
