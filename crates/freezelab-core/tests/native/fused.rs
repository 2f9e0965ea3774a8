//! The fused operations equal Burn's composed ones, output and gradients (natively; the browser
//! runs the same cases in tests/wasm.rs).

use crate::common::fused_cases;

#[test]
fn fused_operations_equal_the_composed_ones() {
    let differences = pollster::block_on(fused_cases::differences());
    assert_eq!(differences.len(), 10);
    for (what, worst) in &differences {
        eprintln!("{what}: {worst:.2e}");
        assert!(*worst <= fused_cases::TOLERANCE, "{what} differs from Burn's composed operations by {worst}");
    }
}
