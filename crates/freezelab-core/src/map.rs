//! The map of the examples: each validation example's mean-pooled final features, projected on
//! their first two principal components, with its label and (for a trained model) the model's
//! answer. Fine-tuning that separates the classes pulls the colours apart on the map.
//!
//! The two components are the top eigenvectors of the centred examples' Gram matrix (examples ×
//! examples, small beside the hidden size), found by power iteration in f64; each axis's sign
//! puts its largest coordinate on the positive side, so a map is a function of the features.

use burn::module::Module;
use burn::tensor::activation;
use freezelab_protocol::readout::cut;
pub use freezelab_protocol::readout::{disagreements, ExampleMap, MapPoint, DISAGREEMENTS_PER_KIND};

use crate::bert::{mean_pool, BatchTensors};
use crate::device::read_f32;
use crate::error::Result;
use crate::loaded::LoadedModel;

/// Power iteration stops when a step moves the unit vector less than this.
const CONVERGED: f64 = 1e-12;
const MAX_ITERATIONS: usize = 5000;

/// The coordinates of `rows` (`n × dim`, row-major) on their first two principal components.
pub fn project(rows: &[f32], dim: usize) -> Vec<(f32, f32)> {
    let n = rows.len().checked_div(dim).unwrap_or(0);
    let mut mean = vec![0.0f64; dim];
    for row in rows.chunks(dim.max(1)).take(n) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64 / n as f64);
    }
    let centred: Vec<Vec<f64>> =
        rows.chunks(dim.max(1)).take(n).map(|r| r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect()).collect();
    let mut gram: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| dot(&centred[i], &centred[j])).collect()).collect();
    let mut axes = [vec![0.0; n], vec![0.0; n]];
    for axis in &mut axes {
        let (value, vector) = top_eigen(&gram);
        // The scores on a component are the eigenvector scaled by its singular value.
        *axis = vector.iter().map(|v| v * value.max(0.0).sqrt()).collect();
        flip_to_positive(axis);
        // Deflate, so the next iteration finds the next component.
        for i in 0..n {
            for j in 0..n {
                gram[i][j] -= value * vector[i] * vector[j];
            }
        }
    }
    (0..n).map(|i| (axes[0][i] as f32, axes[1][i] as f32)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The largest eigenvalue of the symmetric positive semi-definite `matrix` and its unit
/// eigenvector (zeros when the matrix is zero).
fn top_eigen(matrix: &[Vec<f64>]) -> (f64, Vec<f64>) {
    let n = matrix.len();
    // A fixed start that no eigenvector of a real data set is orthogonal to in practice.
    let mut v: Vec<f64> = (0..n).map(|i| 1.0 + i as f64 / n.max(1) as f64).collect();
    let mut value = 0.0;
    for _ in 0..MAX_ITERATIONS {
        let next: Vec<f64> = matrix.iter().map(|row| dot(row, &v)).collect();
        let norm = dot(&next, &next).sqrt();
        if norm == 0.0 {
            return (0.0, vec![0.0; n]);
        }
        let next: Vec<f64> = next.iter().map(|x| x / norm).collect();
        let moved = next.iter().zip(&v).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        v = next;
        value = norm;
        if moved < CONVERGED {
            break;
        }
    }
    // The Rayleigh quotient of the unit vector: the eigenvalue.
    let mv: Vec<f64> = matrix.iter().map(|row| dot(row, &v)).collect();
    value = if value == 0.0 { 0.0 } else { dot(&v, &mv) };
    (value, v)
}

/// Flips `axis` so that its largest coordinate (by magnitude; the first of equals) is positive.
fn flip_to_positive(axis: &mut [f64]) {
    let largest = axis.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
    if largest < 0.0 {
        axis.iter_mut().for_each(|x| *x = -*x);
    }
}

/// The map of `examples` from their pooled final features (`rows`, `n × dim`), with a trained
/// model's answers (class, probability) when given.
pub fn map(rows: &[f32], dim: usize, examples: &[(String, usize)], answers: Option<&[(usize, f32)]>) -> ExampleMap {
    let points = project(rows, dim)
        .into_iter()
        .zip(examples)
        .enumerate()
        .map(|(i, ((x, y), (text, label)))| MapPoint {
            x,
            y,
            label: *label,
            predicted: answers.map(|a| a[i].0),
            probability: answers.map(|a| a[i].1),
            text: cut(text),
        })
        .collect();
    ExampleMap { points }
}

/// The map of `examples` as the trained `model` sees them, with its answers: one forward pass
/// in batches, the pooled features feeding both the map and the head.
pub async fn trained_map(
    model: &LoadedModel,
    examples: &[(String, usize)],
    max_len: usize,
    batch: usize,
) -> Result<ExampleMap> {
    model.check_max_len(max_len)?;
    let classifier = model.classifier.valid();
    let device = classifier.head.weight.val().device();
    let mut rows = Vec::new();
    let mut answers = Vec::new();
    for chunk in examples.chunks(batch.max(1)) {
        let texts: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
        let input = BatchTensors::new(&model.tokenizer.encode_batch(&texts, max_len)?, &device);
        let pooled = mean_pool(classifier.bert.forward(&input), &input.mask);
        let probs = read_f32(activation::softmax(classifier.head.forward(pooled.clone()), 1)).await?;
        rows.extend(read_f32(pooled).await?);
        for p in probs.chunks(classifier.num_labels().max(1)) {
            let best = (0..p.len()).fold(0, |b, k| if p[k] > p[b] { k } else { b });
            answers.push((best, p[best]));
        }
    }
    Ok(map(&rows, model.config.hidden_size, examples, Some(&answers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_axis_follows_the_largest_spread_and_the_second_the_next() {
        // Points spread 10 along the 3rd feature and 1 along the 1st, none along the 2nd.
        let rows: Vec<f32> =
            [(-10.0, -1.0), (10.0, -1.0), (-10.0, 1.0), (10.0, 1.0)].iter().flat_map(|&(a, b)| [b, 0.0, a]).collect();
        let points = project(&rows, 3);
        for (p, &(a, b)) in points.iter().zip(&[(-10.0f32, -1.0f32), (10.0, -1.0), (-10.0, 1.0), (10.0, 1.0)]) {
            // Each axis's sign puts its largest coordinate on the positive side: here, a tie
            // of magnitudes resolved by the first point.
            assert!((p.0.abs() - a.abs()).abs() < 1e-4 && (p.1.abs() - b.abs()).abs() < 1e-4, "{points:?}");
        }
        assert!(points[0].0 > 0.0 && points[0].1 > 0.0, "the first point's largest coordinates are positive");
        assert!((points[0].0 + points[1].0).abs() < 1e-4, "opposite along the first axis");
    }

    #[test]
    fn the_map_is_the_same_for_the_same_features_and_for_negated_ones() {
        let rows: Vec<f32> = (0..60).map(|i| ((i * 37 % 11) as f32 - 5.0) * (1.0 + (i % 4) as f32)).collect();
        let negated: Vec<f32> = rows.iter().map(|v| -v).collect();
        let (a, b) = (project(&rows, 6), project(&negated, 6));
        assert_eq!(a, project(&rows, 6));
        for (p, q) in a.iter().zip(&b) {
            assert!((p.0 - q.0).abs() < 1e-3 && (p.1 - q.1).abs() < 1e-3, "{p:?} against {q:?}");
        }
    }
}
