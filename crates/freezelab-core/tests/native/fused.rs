//! The fused operations equal Burn's composed ones, output and gradients (natively; the browser
//! runs the same cases in tests/wasm.rs).

use crate::common::fused_cases;

#[test]
fn fused_operations_equal_the_composed_ones() {
    let differences = pollster::block_on(fused_cases::differences());
    assert_eq!(differences.len(), 29);
    for (what, worst) in &differences {
        eprintln!("{what}: {worst:.2e}");
        assert!(*worst <= fused_cases::TOLERANCE, "{what} differs from Burn's composed operations by {worst}");
    }
}

/// The fused optimizer work on the CPU: AdamW (with and without a clipping scale) against Burn's
/// composed update, to the bit; the clipping norm's Σg² against f64.
#[test]
fn the_fused_adamw_and_norm_equal_burns_and_f64() {
    let cpu = burn::tensor::Device::flex();
    let on_cpu = pollster::block_on(fused_cases::adamw_difference(&cpu));
    assert_eq!(on_cpu, 0.0, "the CPU's fused AdamW differs from Burn's update by {on_cpu}");
    let error = pollster::block_on(fused_cases::squared_norm_error(&cpu));
    assert!(error <= 1e-7, "the CPU's squared norm is off by {error:.2e} (relative)");
}

/// The CPU's dropout keeps 1 − p of the elements (within a binomial bound) and scales what it
/// keeps by 1/(1 − p), forward and backward.
#[test]
fn the_cpu_dropout_keeps_one_minus_p_scaled() {
    pollster::block_on(fused_cases::dropout_check(&burn::tensor::Device::flex())).assert("the CPU");
}
