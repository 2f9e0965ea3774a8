//! Memory falls as layers are frozen, and the computed saving of one layer, of BitFit and of
//! LoRA matches the measured one. Alone in its binary: the counting allocator sees every thread of the process.
// Native only (`wasm-pack test` builds every test target; the browser's are in wasm.rs).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use freezelab_core::cache::PrefixCache;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::measured::CountingAllocator;
use freezelab_core::synthetic;
use freezelab_core::train::TrainConfig;

use common::training::{run, small_cfg};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[test]
fn measured_peak_falls_as_layers_freeze_and_tracks_the_computed_saving() {
    // Big enough that a layer's activations and state dwarf allocator noise.
    let config = synthetic::config(128, 4, 4);
    let base =
        TrainConfig { epochs: 1, max_steps: Some(3), batch_size: 16, max_len: 16, ..small_cfg(FreezePlan::none(4)) };
    let mut peaks = Vec::new();
    let mut computed = Vec::new();
    for k in [0usize, 1, 2, 4] {
        let plan = if k == 0 { FreezePlan::none(4) } else { FreezePlan::bottom(4, k) };
        let (_, s, _) = run(&config, &TrainConfig { freeze: plan, ..base.clone() }, &mut PrefixCache::new());
        peaks.push(s.memory.measured_peak_bytes.expect("the counting allocator is installed"));
        computed.push(s.memory.computed_total);
    }
    assert!(peaks.windows(2).all(|w| w[1] < w[0]), "measured peaks {peaks:?}");
    // bottom-1 → bottom-2 freezes exactly one more layer.
    let measured_saving = (peaks[1] - peaks[2]) as f64;
    let computed_saving = (computed[1] - computed[2]) as f64;
    let ratio = measured_saving / computed_saving;
    eprintln!("one layer: computed saving {computed_saving:.0} B, measured {measured_saving:.0} B, ratio {ratio:.2}");
    assert!((0.75..=1.25).contains(&ratio), "measured/computed saving = {ratio:.2}");

    // BitFit keeps every layer trainable but drops the weights' gradients, their AdamW state
    // and the matmul inputs kept only for weight gradients.
    // LoRA (rank 8, query and value) drops the same, keeps fewer inputs than full fine-tuning
    // but more than BitFit, and adds its adapters and the dense weights it composes. Both
    // savings are mostly gradients and AdamW state, which peak in the optimizer step, after
    // backward has freed the activations: the measured saving comes out at ~3/4 of the computed
    // one (whose total adds activations and gradients as if they coexisted), so the floor is 0.7.
    for spec in ["bitfit", "lora-8"] {
        let cfg = TrainConfig { freeze: FreezePlan::parse(spec, 4).unwrap(), ..base.clone() };
        let (_, s, _) = run(&config, &cfg, &mut PrefixCache::new());
        let measured_saving = (peaks[0] - s.memory.measured_peak_bytes.unwrap()) as f64;
        let computed_saving = (computed[0] - s.memory.computed_total) as f64;
        let ratio = measured_saving / computed_saving;
        eprintln!("{spec}: computed saving {computed_saving:.0} B, measured {measured_saving:.0} B, ratio {ratio:.2}");
        assert!((0.7..=1.25).contains(&ratio), "{spec}: measured/computed saving = {ratio:.2}");
    }
}
