//! The native tests on Burn's wgpu backend, where an adapter exists: built only with
//! freezelab-core's `gpu` feature (`cargo test --release -p freezelab-core`). `cargo xtask test`
//! builds natively without it (CI has no GPU); the same kernel checks run there on Chromium's
//! WebGPU (tests/wasm.rs, `webgpu_matches_the_cpu_and_freezing_holds_there`).

use freezelab_core::freeze::FreezePlan;
use freezelab_core::synthetic;
use freezelab_core::train::bench;

use crate::common::fused_cases;
use crate::common::training::{model, turn, wgpu_device, Recorder};
use crate::train::check_frozen_blocks_on;

/// The fused optimizer work on the GPU backend: AdamW (with and without a clipping scale)
/// against Burn's composed update within 1e-6 (cubecl: Vulkan or OpenGL natively); the clipping
/// norm's Σg² against f64.
#[test]
fn the_fused_adamw_and_norm_equal_burns_and_f64_on_wgpu() {
    let test = "the_fused_adamw_and_norm_equal_burns_and_f64_on_wgpu";
    let Some((device, _gpu)) = wgpu_device(test) else { return };
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
    let Some((device, _gpu)) = wgpu_device(test) else { return };
    let (y, dx, burn_dx) = pollster::block_on(fused_cases::gelu_differences(&device));
    eprintln!("GELU on wgpu against the CPU: output {y:.2e}, gradient {dx:.2e} (Burn's gradient there: {burn_dx:.2e})");
    assert!(y <= fused_cases::TOLERANCE && dx <= fused_cases::TOLERANCE, "GPU GELU off by {y} / {dx}");
}

/// Dropout's kernel on the GPU backend (where an adapter exists) drops exactly the elements the
/// CPU's does for the same seed, forward and backward.
#[test]
fn the_gpu_dropout_drops_what_the_cpu_drops() {
    let test = "the_gpu_dropout_drops_what_the_cpu_drops";
    let Some((device, _gpu)) = wgpu_device(test) else { return };
    let check = pollster::block_on(fused_cases::dropout_check(&device));
    eprintln!("dropout on wgpu: {check:?}");
    check.assert("wgpu");
}

/// Layer norm and the masked softmax as the GPU backend's kernels (where an adapter exists)
/// against Burn's composed operations there, outputs and gradients.
#[test]
fn the_gpu_layer_norm_and_softmax_equal_burns() {
    let test = "the_gpu_layer_norm_and_softmax_equal_burns";
    let Some((device, _gpu)) = wgpu_device(test) else { return };
    for (what, worst) in pollster::block_on(fused_cases::row_differences(&device)) {
        eprintln!("{what} on wgpu: {worst:.2e}");
        assert!(worst <= fused_cases::TOLERANCE, "GPU {what} differs from Burn's composed operations by {worst}");
    }
}

/// Freezing on the GPU backend: frozen blocks keep every bit, trainable ones move.
#[test]
fn frozen_blocks_stay_bit_identical_on_wgpu_where_an_adapter_exists() {
    if let Some((device, _gpu)) = wgpu_device("frozen_blocks_stay_bit_identical_on_wgpu_where_an_adapter_exists") {
        check_frozen_blocks_on(&device);
    }
}

/// A long run's device buffers stop growing: as many after 45 training steps as after 30, so
/// nothing a step makes outlives it. They do grow over the first steps without leaking:
/// cubecl keeps the small uniform of each launch's shapes and scalars for reuse, up to 512 (LRU),
/// and every dropout call has a new seed, so each step adds some until the cache is full (a
/// train-all step of this model adds 26). Counted by cubecl's pool; the CPU keeps no count.
#[test]
fn device_buffers_stop_growing_on_wgpu_where_an_adapter_exists() {
    let test = "device_buffers_stop_growing_on_wgpu_where_an_adapter_exists";
    let Some((device, _gpu)) = wgpu_device(test) else { return };
    let _turn = turn();
    let config = synthetic::config(16, 2, 2);
    let device = device.autodiff();
    let plan = FreezePlan::none(2);
    let live = |steps| {
        let m = model(&config, 7, &device);
        let batch = m.tokenizer.encode_batch(&["the movie was great", "bad day"], 16).unwrap();
        let host = Recorder::default();
        let run = bench::run(m.classifier, (&plan, false), &batch, steps, &host);
        pollster::block_on(run).unwrap().pool_allocations.expect("cubecl counts its pool")
    };
    let (after_30, after_45) = (live(30), live(45));
    assert_eq!(after_30, after_45, "live device buffers after 30 and 45 training steps");
}
