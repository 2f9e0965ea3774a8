//! Classification metrics from predictions: accuracy, macro-F1, confusion matrix.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    pub fn from_predictions(truth: &[usize], predicted: &[usize], num_labels: usize) -> Self {
        let mut confusion = vec![vec![0; num_labels]; num_labels];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t][p] += 1;
        }
        Self::from_confusion(confusion)
    }

    /// From `confusion[true][predicted]` counts (a square table).
    pub fn from_confusion(confusion: Vec<Vec<usize>>) -> Self {
        let num_labels = confusion.len();
        let total: usize = confusion.iter().flatten().sum();
        let correct: usize = (0..num_labels).map(|k| confusion[k][k]).sum();
        let accuracy = if total == 0 { 0.0 } else { correct as f64 / total as f64 };
        // F1 per class (0 where a class has no true and no predicted examples), averaged.
        let f1: Vec<f64> = (0..num_labels)
            .map(|k| {
                let tp = confusion[k][k] as f64;
                let actual: usize = confusion[k].iter().sum();
                let predicted: usize = confusion.iter().map(|row| row[k]).sum();
                let denom = actual as f64 + predicted as f64;
                if denom == 0.0 {
                    0.0
                } else {
                    2.0 * tp / denom
                }
            })
            .collect();
        let macro_f1 = f1.iter().sum::<f64>() / num_labels.max(1) as f64;
        Metrics { accuracy, macro_f1, confusion }
    }
}

/// What always answering the most frequent validation label scores: the floor a trained run
/// has to clear before its accuracy means anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The label always answered.
    pub label: String,
    pub accuracy: f64,
    pub macro_f1: f64,
}

impl Baseline {
    /// Accuracy points a run must gain over the baseline to count as having learned something.
    pub const MARGIN: f64 = 0.02;

    /// The majority-class guess on `truth` (ties go to the first label).
    pub fn majority(truth: &[usize], names: &[String]) -> Self {
        let mut counts = vec![0usize; names.len()];
        for &t in truth {
            counts[t] += 1;
        }
        let majority = counts.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))).map_or(0, |(i, _)| i);
        let m = Metrics::from_predictions(truth, &vec![majority; truth.len()], names.len());
        Baseline { label: names.get(majority).cloned().unwrap_or_default(), accuracy: m.accuracy, macro_f1: m.macro_f1 }
    }

    /// Whether `accuracy` clears the baseline by the margin. Without a baseline (runs recorded
    /// before it existed) nothing is judged.
    pub fn beaten_by(&self, accuracy: f64) -> bool {
        self.label.is_empty() || accuracy >= self.accuracy + Self::MARGIN
    }

    /// What the page and the CLI say of a run that does not clear it.
    pub fn warning(&self) -> String {
        format!(
            "not better than always answering ‘{}’ ({:.1}%): give it more examples, epochs or a larger learning rate",
            self.label,
            100.0 * self.accuracy
        )
    }
}

pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0)
}

/// Which points are on the Pareto front of (cost, score): no other point costs no more and
/// scores at least as much, better in one of the two. Points with a NaN are never on it.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<bool> {
    let dominates = |(c1, s1): (f64, f64), (c2, s2): (f64, f64)| c1 <= c2 && s1 >= s2 && (c1 < c2 || s1 > s2);
    points.iter().map(|&p| !p.0.is_nan() && !p.1.is_nan() && !points.iter().any(|&q| dominates(q, p))).collect()
}

/// The Pareto front of results (cost, accuracy, beats its baseline): a run that does not clear
/// its majority-class baseline is no result to trade against, so it is never on the front.
pub fn results_front(points: &[(f64, f64, bool)]) -> Vec<bool> {
    let candidates: Vec<(f64, f64)> =
        points.iter().map(|&(c, s, counts)| if counts { (c, s) } else { (f64::NAN, f64::NAN) }).collect();
    pareto_front(&candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_example() {
        // truth:     0 0 0 1 1 2
        // predicted: 0 0 1 1 2 2
        let m = Metrics::from_predictions(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3);
        assert_eq!(m.confusion, vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // F1: class0 2·2/(3+2)=0.8, class1 2·1/(2+2)=0.5, class2 2·1/(1+2)=2/3.
        assert!((m.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_baseline_always_answers_the_majority_label() {
        let names = ["ham".to_string(), "spam".to_string()];
        let b = Baseline::majority(&[0, 0, 0, 1], &names);
        assert_eq!(b.label, "ham");
        assert!((b.accuracy - 0.75).abs() < 1e-12);
        // F1 of ham: 2·3/(3+4) = 6/7; spam 0; averaged over two classes.
        assert!((b.macro_f1 - 3.0 / 7.0).abs() < 1e-12);
        assert!(!b.beaten_by(0.76) && b.beaten_by(0.77));
        assert!(b.warning().contains("‘ham’ (75.0%)"));
        // A tie goes to the first label; no baseline judges nothing.
        assert_eq!(Baseline::majority(&[1, 0], &names).label, "ham");
        assert!(Baseline::default().beaten_by(0.0));
    }

    #[test]
    fn argmax_takes_the_largest() {
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
    }

    #[test]
    fn pareto_front_keeps_the_undominated() {
        // (cost, score): b is dominated by a (cheaper and better); c costs most but scores best;
        // d ties a exactly, so neither dominates the other.
        let points = [(1.0, 0.8), (2.0, 0.7), (3.0, 0.9), (1.0, 0.8), (0.5, f64::NAN)];
        assert_eq!(pareto_front(&points), [true, false, true, true, false]);
        assert!(pareto_front(&[]).is_empty());
        // The best point does not beat its baseline: off the front, and the next one takes its place.
        let results = [(1.0, 0.9, false), (2.0, 0.8, true), (3.0, 0.7, true)];
        assert_eq!(results_front(&results), [false, true, false]);
    }
}
