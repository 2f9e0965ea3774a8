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

/// The fused AdamW kernel on the GPU backend (cubecl: Vulkan or OpenGL natively) against Burn's
/// composed update; on the CPU the two agree to the bit (the unit test in `fused::adamw`).
#[test]
fn the_gpu_adamw_kernel_equals_burns_update_where_an_adapter_exists() {
    let test = "the_gpu_adamw_kernel_equals_burns_update_where_an_adapter_exists";
    let Some(device) = crate::common::training::wgpu_device(test) else { return };
    let worst = pollster::block_on(fused_cases::adamw_difference(&device));
    eprintln!("AdamW on wgpu against Burn's: {worst:.2e}");
    assert!(worst <= 1e-6, "the GPU AdamW kernel differs from Burn's update by {worst}");
}
