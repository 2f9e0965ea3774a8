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

/// The fused optimizer work: AdamW (with and without a clipping scale) against Burn's composed
/// update, to the bit on the CPU and within 1e-6 on the GPU backend where an adapter exists
/// (cubecl: Vulkan or OpenGL natively); the clipping norm's Σg² against f64.
#[test]
fn the_fused_adamw_and_norm_equal_burns_and_f64() {
    let cpu = burn::tensor::Device::flex();
    let on_cpu = pollster::block_on(fused_cases::adamw_difference(&cpu));
    assert_eq!(on_cpu, 0.0, "the CPU's fused AdamW differs from Burn's update by {on_cpu}");
    let error = pollster::block_on(fused_cases::squared_norm_error(&cpu));
    assert!(error <= 1e-7, "the CPU's squared norm is off by {error:.2e} (relative)");
    let test = "the_fused_adamw_and_norm_equal_burns_and_f64 (on the GPU)";
    let Some((device, _gpu)) = crate::common::training::wgpu_device(test) else { return };
    let worst = pollster::block_on(fused_cases::adamw_difference(&device));
    eprintln!("AdamW on wgpu against Burn's: {worst:.2e}");
    assert!(worst <= 1e-6, "the GPU AdamW kernel differs from Burn's update by {worst}");
    let error = pollster::block_on(fused_cases::squared_norm_error(&device));
    eprintln!("squared norm on wgpu against f64: {error:.2e} (relative)");
    assert!(error <= 1e-6, "the GPU squared norm is off by {error:.2e} (relative)");
}

/// GELU's kernels on the GPU backend (where an adapter exists) against the CPU's: output and
/// the exact gradient.
#[test]
fn the_gpu_gelu_equals_the_cpus() {
    let test = "the_gpu_gelu_equals_the_cpus";
    let Some((device, _gpu)) = crate::common::training::wgpu_device(test) else { return };
    let (y, dx, burn_dx) = pollster::block_on(fused_cases::gelu_differences(&device));
    eprintln!("GELU on wgpu against the CPU: output {y:.2e}, gradient {dx:.2e} (Burn's gradient there: {burn_dx:.2e})");
    assert!(y <= fused_cases::TOLERANCE && dx <= fused_cases::TOLERANCE, "GPU GELU off by {y} / {dx}");
}

/// Dropout's kernel on the GPU backend (where an adapter exists) drops exactly the elements the
/// CPU's does for the same seed, forward and backward.
#[test]
fn the_gpu_dropout_drops_what_the_cpu_drops() {
    let test = "the_gpu_dropout_drops_what_the_cpu_drops";
    let Some((device, _gpu)) = crate::common::training::wgpu_device(test) else { return };
    let check = pollster::block_on(fused_cases::dropout_check(&device));
    eprintln!("dropout on wgpu: {check:?}");
    check.assert("wgpu");
}

/// The CPU's dropout keeps 1 − p of the elements (within a binomial bound) and scales what it
/// keeps by 1/(1 − p), forward and backward.
#[test]
fn the_cpu_dropout_keeps_one_minus_p_scaled() {
    pollster::block_on(fused_cases::dropout_check(&burn::tensor::Device::flex())).assert("the CPU");
}

/// Layer norm and the masked softmax as the GPU backend's kernels (where an adapter exists)
/// against Burn's composed operations there, outputs and gradients.
#[test]
fn the_gpu_layer_norm_and_softmax_equal_burns() {
    let test = "the_gpu_layer_norm_and_softmax_equal_burns";
    let Some((device, _gpu)) = crate::common::training::wgpu_device(test) else { return };
    for (what, worst) in pollster::block_on(fused_cases::row_differences(&device)) {
        eprintln!("{what} on wgpu: {worst:.2e}");
        assert!(worst <= fused_cases::TOLERANCE, "GPU {what} differs from Burn's composed operations by {worst}");
    }
}
