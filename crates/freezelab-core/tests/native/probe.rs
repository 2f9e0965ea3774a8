//! The core's probe against scikit-learn's `LogisticRegression` on the same features
//! (tests/fixtures/probe.json, made by tests/fixtures/make_probe.py from `freezelab probe
//! --features-out` on the tiny synthetic model).

use freezelab_core::probe::{self, Features};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    labels: Vec<String>,
    train_labels: Vec<usize>,
    train: Vec<Features>,
    validation_labels: Vec<usize>,
    validation: Vec<Features>,
    sklearn: Vec<probe::ProbeRow>,
}

#[test]
fn the_probe_matches_scikit_learn_within_a_point_per_block() {
    let path = crate::common::repo_root().join("tests/fixtures/probe.json");
    let fx: Fixture = serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture JSON");
    let report = probe::report(&fx.train, &fx.train_labels, &fx.validation, &fx.validation_labels, fx.labels.len());
    assert_eq!(report.rows.len(), fx.sklearn.len());
    for (ours, theirs) in report.rows.iter().zip(&fx.sklearn) {
        assert_eq!(ours.block, theirs.block);
        assert!(
            (ours.accuracy - theirs.accuracy).abs() <= 0.01 + 1e-9,
            "{}: the probe's {} against scikit-learn's {}",
            ours.block,
            ours.accuracy,
            theirs.accuracy
        );
    }
}
