//! What the page shows of what the model knows, beside the runs: a linear probe's accuracy per
//! block of the pretrained model, a 2-D map of the validation examples, and the examples two
//! runs disagree on. The core computes them (freezelab_core::probe, ::map); the page draws and
//! exports them.

use serde::{Deserialize, Serialize};

/// One block's probe, scored on the validation examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRow {
    pub block: String,
    pub accuracy: f64,
}

/// The probe of every block, and what always answering the training set's most common class
/// scores on the same validation examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The regularisation, as scikit-learn's `C` (larger: weaker).
    pub c: f64,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub majority_class: f64,
    pub rows: Vec<ProbeRow>,
}

impl ProbeReport {
    /// The accuracy of `block`'s probe (`emb`, `layer-0` …), if it was probed.
    pub fn accuracy(&self, block: &str) -> Option<f64> {
        self.rows.iter().find(|r| r.block == block).map(|r| r.accuracy)
    }
}

/// Texts on the map and in the disagreement table are cut to this many characters.
pub const TEXT_CHARS: usize = 160;

/// One validation example on the map: where its pooled final features project, its label, and
/// (for a trained model) what the model answered and with which probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    pub x: f32,
    pub y: f32,
    pub label: usize,
    pub predicted: Option<usize>,
    pub probability: Option<f32>,
    /// The example's text, cut to [`TEXT_CHARS`].
    pub text: String,
}

impl MapPoint {
    /// A trained model's answer was wrong.
    pub fn missed(&self) -> bool {
        self.predicted.is_some_and(|p| p != self.label)
    }
}

/// The validation examples projected on the first two principal components of a model's pooled
/// final features (each axis's sign fixed, so the same features always draw the same map).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExampleMap {
    pub points: Vec<MapPoint>,
}

impl ExampleMap {
    /// The largest |x| and |y| of the map: maps drawn with the same extent compare.
    pub fn extent(&self) -> f32 {
        self.points.iter().fold(0.0f32, |m, p| m.max(p.x.abs()).max(p.y.abs()))
    }
}

/// `text` cut to [`TEXT_CHARS`] characters (an ellipsis marks the cut).
pub fn cut(text: &str) -> String {
    match text.char_indices().nth(TEXT_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Disagreements shown (and exported) of each kind: A right and B wrong, then the reverse.
pub const DISAGREEMENTS_PER_KIND: usize = 4;

/// A validation example one run got right and the other wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    /// Its place in the validation set.
    pub example: usize,
    pub text: String,
    pub label: usize,
    /// What each run answered, and with which probability: (class, probability).
    pub a: (usize, f32),
    pub b: (usize, f32),
}

impl Disagreement {
    pub fn a_right(&self) -> bool {
        self.a.0 == self.label
    }
}

/// Up to `per_kind` examples A got right and B wrong, then up to `per_kind` the other way, each
/// kind in validation order. Empty when the two maps are not of the same examples (other data,
/// a different split): there is nothing to compare then.
pub fn disagreements(a: &ExampleMap, b: &ExampleMap, per_kind: usize) -> Vec<Disagreement> {
    let same = a.points.len() == b.points.len()
        && a.points.iter().zip(&b.points).all(|(p, q)| p.label == q.label && p.text == q.text);
    if !same {
        return Vec::new();
    }
    let answered = |p: &MapPoint| Some((p.predicted?, p.probability?));
    let all: Vec<Disagreement> = a
        .points
        .iter()
        .zip(&b.points)
        .enumerate()
        .filter_map(|(example, (p, q))| {
            let (pa, pb) = (answered(p)?, answered(q)?);
            ((pa.0 == p.label) != (pb.0 == p.label)).then(|| Disagreement {
                example,
                text: p.text.clone(),
                label: p.label,
                a: pa,
                b: pb,
            })
        })
        .collect();
    let (a_right, b_right): (Vec<_>, Vec<_>) = all.into_iter().partition(Disagreement::a_right);
    a_right.into_iter().take(per_kind).chain(b_right.into_iter().take(per_kind)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: usize, predicted: usize, text: &str) -> MapPoint {
        MapPoint { x: 0.0, y: 0.0, label, predicted: Some(predicted), probability: Some(0.9), text: text.into() }
    }

    #[test]
    fn disagreements_are_the_examples_one_run_got_right_and_the_other_wrong() {
        let a = ExampleMap {
            points: vec![point(0, 0, "t0"), point(1, 1, "t1"), point(1, 0, "t2"), point(0, 1, "t3"), point(1, 1, "t4")],
        };
        let b = ExampleMap {
            points: vec![point(0, 0, "t0"), point(1, 0, "t1"), point(1, 1, "t2"), point(0, 1, "t3"), point(1, 0, "t4")],
        };
        let found = disagreements(&a, &b, 5);
        let examples: Vec<(usize, bool)> = found.iter().map(|d| (d.example, d.a_right())).collect();
        // Both right (t0) and both wrong (t3) are no disagreement; A's wins first, in order.
        assert_eq!(examples, vec![(1, true), (4, true), (2, false)]);
        assert_eq!(disagreements(&a, &b, 1).iter().map(|d| d.example).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn maps_of_other_examples_have_no_disagreements() {
        let a = ExampleMap { points: vec![point(0, 0, "one"), point(1, 1, "two")] };
        let mut b = ExampleMap { points: vec![point(0, 1, "one"), point(1, 1, "other")] };
        assert!(disagreements(&a, &b, 5).is_empty());
        b.points[1].text = "two".into();
        assert_eq!(disagreements(&a, &b, 5).len(), 1);
    }

    #[test]
    fn texts_are_cut_on_a_character_boundary() {
        let long = "é".repeat(TEXT_CHARS + 3);
        let cut = cut(&long);
        assert_eq!(cut.chars().count(), TEXT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(super::cut("short"), "short");
    }
}
