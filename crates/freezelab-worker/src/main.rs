// The training worker's entry point (the code is the library's: `lib.rs`), with every backend;
// src/bin/cpu.rs includes it for the CPU workers' bundle. Plain comments: it is `include!`d.

/// Counts live bytes: on the CPU backend tensors live on the wasm heap, and this is how a run
/// measures its peak.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: freezelab_core::measured::CountingAllocator = freezelab_core::measured::CountingAllocator;

#[cfg(target_arch = "wasm32")]
fn main() {
    freezelab_worker::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("freezelab-worker runs inside a browser: `cargo xtask serve` builds it with Trunk");
    std::process::exit(2);
}
