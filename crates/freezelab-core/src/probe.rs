//! What each layer already knows: a linear probe per block. The mean-pooled output of the
//! embeddings and of every layer of the pretrained model, one forward pass over the examples,
//! and a multinomial logistic regression fitted on each block's training features and scored
//! on its validation features (Tenney et al. 2019; Liu et al. 2019). A head trained on a frozen
//! encoder up to block b can do about as well as that block's probe.
//!
//! The regression is scikit-learn's `LogisticRegression(C)`: minimise ½‖W‖² + C·Σ cross-entropy
//! (the intercepts unpenalised), full batch, in f64 by L-BFGS to convergence; as there, two
//! classes take one weight vector (the first class's score is 0) and more take one each. The
//! optimum is unique, so the fit is deterministic and independent of the backend.

use burn::module::Module;
pub use freezelab_protocol::readout::{ProbeReport, ProbeRow};
use serde::{Deserialize, Serialize};

use crate::bert::{mean_pool, BatchTensors};
use crate::device::read_f32;
use crate::error::Result;
use crate::loaded::LoadedModel;

/// The regularisation every probe uses, as scikit-learn's `C` (its default).
pub const PROBE_C: f64 = 1.0;

/// One block's pooled features: `rows` is `examples × dim`, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub block: String,
    pub dim: usize,
    pub rows: Vec<f32>,
}

/// Empty features of the embeddings and of each layer of `model`, to be filled by [`pool_batch`].
pub fn blocks(model: &LoadedModel) -> Vec<Features> {
    let dim = model.config.hidden_size;
    std::iter::once("emb".to_string())
        .chain((0..model.config.num_hidden_layers).map(|i| format!("layer-{i}")))
        .map(|block| Features { block, dim, rows: Vec::new() })
        .collect()
}

/// Appends the mean-pooled output of the embeddings and of each layer for `texts` (one
/// forward pass) to `out` ([`blocks`]). A browser worker calls it batch by batch, yielding
/// between batches so a cancel gets through.
pub async fn pool_batch(model: &LoadedModel, texts: &[&str], max_len: usize, out: &mut [Features]) -> Result<()> {
    model.check_max_len(max_len)?;
    let encoder = model.classifier.valid();
    let input = BatchTensors::new(&model.tokenizer.encode_batch(texts, max_len)?, &encoder.head.weight.val().device());
    for (features, state) in out.iter_mut().zip(encoder.bert.hidden_states(&input)) {
        features.rows.extend(read_f32(mean_pool(state, &input.mask)).await?);
    }
    Ok(())
}

/// The mean-pooled output of the embeddings and of each layer for `texts`, in batches.
pub async fn pooled_features(
    model: &LoadedModel,
    texts: &[&str],
    max_len: usize,
    batch: usize,
) -> Result<Vec<Features>> {
    let mut out = blocks(model);
    for chunk in texts.chunks(batch.max(1)) {
        pool_batch(model, chunk, max_len, &mut out).await?;
    }
    Ok(out)
}

/// The weight vectors a probe of `classes` fits: one for two classes, else one per class.
fn vectors(classes: usize) -> usize {
    if classes == 2 {
        1
    } else {
        classes
    }
}

/// A fitted probe: [`vectors`] rows of `dim` weights, then one intercept per row.
#[derive(Debug, Clone)]
pub struct Probe {
    dim: usize,
    classes: usize,
    params: Vec<f64>,
}

impl Probe {
    /// Every class's score (with one vector, the first class scores 0).
    fn scores(&self, x: &[f32]) -> Vec<f64> {
        let rows = vectors(self.classes);
        let (w, b) = self.params.split_at(rows * self.dim);
        let fitted = (0..rows)
            .map(|k| b[k] + w[k * self.dim..(k + 1) * self.dim].iter().zip(x).map(|(w, &x)| w * x as f64).sum::<f64>());
        if rows == 1 {
            std::iter::once(0.0).chain(fitted).collect()
        } else {
            fitted.collect()
        }
    }

    /// The most likely class of each row (ties: the lower index).
    pub fn predict(&self, rows: &[f32]) -> Vec<usize> {
        rows.chunks(self.dim)
            .map(|x| {
                let s = self.scores(x);
                (0..s.len()).fold(0, |best, k| if s[k] > s[best] { k } else { best })
            })
            .collect()
    }

    pub fn accuracy(&self, rows: &[f32], labels: &[usize]) -> f64 {
        let right = self.predict(rows).iter().zip(labels).filter(|(p, l)| p == l).count();
        right as f64 / labels.len().max(1) as f64
    }
}

/// What a probe is fitted to: `labels.len()` rows of `dim` features.
struct Problem<'a> {
    rows: &'a [f32],
    labels: &'a [usize],
    dim: usize,
    classes: usize,
    c: f64,
}

/// ½‖W‖² + c·Σ cross-entropy and its gradient at `params`.
fn objective(params: &[f64], problem: &Problem) -> (f64, Vec<f64>) {
    let Problem { rows, labels, dim, classes, c } = *problem;
    let probe = Probe { dim, classes, params: params.to_vec() };
    let fitted = vectors(classes);
    // With one vector it scores the second class; the first class's score is the fixed 0.
    let first = classes - fitted;
    let (w, _) = params.split_at(fitted * dim);
    let mut value = 0.5 * w.iter().map(|v| v * v).sum::<f64>();
    let mut grad: Vec<f64> = w.to_vec();
    grad.extend(std::iter::repeat_n(0.0, fitted));
    for (x, &y) in rows.chunks(dim).zip(labels) {
        let s = probe.scores(x);
        let top = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = s.iter().map(|v| (v - top).exp()).sum();
        value += c * (top + total.ln() - s[y]);
        for k in 0..fitted {
            let class = first + k;
            let delta = c * ((s[class] - top).exp() / total - if class == y { 1.0 } else { 0.0 });
            for (g, &xi) in grad[k * dim..(k + 1) * dim].iter_mut().zip(x) {
                *g += delta * xi as f64;
            }
            grad[fitted * dim + k] += delta;
        }
    }
    (value, grad)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Fits the probe on `rows` (`labels.len() × dim`) by L-BFGS (10 pairs, backtracking Armijo
/// steps) until the gradient's largest entry is under 1e-6 of the objective's scale, or 2,000
/// iterations.
pub fn fit(rows: &[f32], labels: &[usize], dim: usize, classes: usize, c: f64) -> Probe {
    let problem = Problem { rows, labels, dim, classes, c };
    let mut params = vec![0.0; vectors(classes) * (dim + 1)];
    let (mut value, mut grad) = objective(&params, &problem);
    let tolerance = 1e-6 * (1.0 + c * labels.len() as f64);
    let mut pairs: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    for _ in 0..2000 {
        if grad.iter().fold(0.0f64, |m, g| m.max(g.abs())) < tolerance {
            break;
        }
        // The two-loop recursion: the direction −H·g from the last pairs.
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
            alphas.push(a);
        }
        if let Some((s, y, _)) = pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|q| *q *= gamma);
        }
        for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(q, s)| *q += (a - b) * s);
        }
        let mut direction: Vec<f64> = q.iter().map(|q| -q).collect();
        let mut slope = dot(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature lost to rounding): steepest descent.
            pairs.clear();
            direction = grad.iter().map(|g| -g).collect();
            slope = dot(&grad, &direction);
        }
        let mut step = if pairs.is_empty() { 1.0 / grad.iter().map(|g| g.abs()).fold(1.0, f64::max) } else { 1.0 };
        let (next, next_value, next_grad) = loop {
            let candidate: Vec<f64> = params.iter().zip(&direction).map(|(p, d)| p + step * d).collect();
            let (v, g) = objective(&candidate, &problem);
            if v <= value + 1e-4 * step * slope || step < 1e-20 {
                break (candidate, v, g);
            }
            step *= 0.5;
        };
        let s: Vec<f64> = next.iter().zip(&params).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        let converged = (value - next_value).abs() <= 1e-15 * value.abs().max(1.0);
        (params, value, grad) = (next, next_value, next_grad);
        if sy > 1e-12 {
            if pairs.len() == 10 {
                pairs.pop_front();
            }
            pairs.push_back((s, y, 1.0 / sy));
        }
        if converged {
            break;
        }
    }
    Probe { dim, classes, params }
}

/// What always answering the training set's most common class scores on the validation labels.
pub fn majority_class(train_labels: &[usize], validation_labels: &[usize], classes: usize) -> f64 {
    let mut counts = vec![0usize; classes];
    train_labels.iter().for_each(|&l| counts[l] += 1);
    let common = (0..classes).fold(0, |best, k| if counts[k] > counts[best] { k } else { best });
    validation_labels.iter().filter(|&&l| l == common).count() as f64 / validation_labels.len().max(1) as f64
}

/// Fits one block's probe on `train`'s features and scores it on `validation`'s.
pub fn probe_block(
    train: &Features,
    train_labels: &[usize],
    validation: &Features,
    validation_labels: &[usize],
    classes: usize,
) -> ProbeRow {
    let probe = fit(&train.rows, train_labels, train.dim, classes, PROBE_C);
    ProbeRow { block: train.block.clone(), accuracy: probe.accuracy(&validation.rows, validation_labels) }
}

/// Fits a probe per block on `train`'s features and scores it on `validation`'s.
pub fn report(
    train: &[Features],
    train_labels: &[usize],
    validation: &[Features],
    validation_labels: &[usize],
    classes: usize,
) -> ProbeReport {
    let rows = train
        .iter()
        .zip(validation)
        .map(|(t, v)| probe_block(t, train_labels, v, validation_labels, classes))
        .collect();
    with_rows(rows, train_labels, validation_labels, classes)
}

/// The report of probes fitted on `train_labels`' examples and scored on `validation_labels`'.
pub fn with_rows(
    rows: Vec<ProbeRow>,
    train_labels: &[usize],
    validation_labels: &[usize],
    classes: usize,
) -> ProbeReport {
    ProbeReport {
        c: PROBE_C,
        train_examples: train_labels.len(),
        validation_examples: validation_labels.len(),
        majority_class: majority_class(train_labels, validation_labels, classes),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Two blocks over the same labels: one whose features carry the label (its mean shifted by
    /// class), one of noise alone.
    fn planted(n: usize, seed: u64) -> (Vec<Features>, Vec<usize>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let dim = 8;
        let mut signal = Vec::new();
        let mut noise = Vec::new();
        for &l in &labels {
            for j in 0..dim {
                let shift = if j == l { 1.5 } else { 0.0 };
                signal.push(shift + rng.random_range(-1.0f32..1.0));
                noise.push(rng.random_range(-1.0f32..1.0));
            }
        }
        let features = vec![
            Features { block: "signal".into(), dim, rows: signal },
            Features { block: "noise".into(), dim, rows: noise },
        ];
        (features, labels)
    }

    #[test]
    fn the_probe_finds_the_block_that_carries_the_label() {
        let (train, train_labels) = planted(300, 1);
        let (validation, validation_labels) = planted(300, 2);
        let report = report(&train, &train_labels, &validation, &validation_labels, 3);
        let [signal, noise] = [report.rows[0].accuracy, report.rows[1].accuracy];
        assert!(signal > 0.85, "the signal block's probe: {signal}");
        assert!(noise < 0.45, "the noise block's probe: {noise} (chance is 1/3)");
        assert!((report.majority_class - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_fit_reaches_the_optimum() {
        // At the optimum the gradient vanishes; a second fit from there changes nothing.
        let (train, labels) = planted(120, 3);
        for classes in [2, 3] {
            let labels: Vec<usize> = labels.iter().map(|l| l % classes).collect();
            let probe = fit(&train[0].rows, &labels, 8, classes, PROBE_C);
            let problem = Problem { rows: &train[0].rows, labels: &labels, dim: 8, classes, c: PROBE_C };
            let (_, grad) = objective(&probe.params, &problem);
            let largest = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            assert!(largest < 1e-6 * 121.0, "{classes} classes: gradient {largest}");
        }
    }
}
