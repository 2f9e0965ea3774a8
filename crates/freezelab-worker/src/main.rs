//! The playground's training worker. The page starts it as a dedicated Web Worker; it answers
//! `ToWorker` messages one at a time (a Stop is acted on at once) and posts `FromWorker`
//! messages back. Everything that computes is in freezelab-core.

#[cfg(target_arch = "wasm32")]
mod archive;
#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod probe;
#[cfg(target_arch = "wasm32")]
mod session;
#[cfg(target_arch = "wasm32")]
mod worker;

/// Counts live bytes: on the CPU backend tensors live on the wasm heap, and this is how a run
/// measures its peak.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: freezelab_core::memory::CountingAllocator = freezelab_core::memory::CountingAllocator;

#[cfg(target_arch = "wasm32")]
fn main() {
    worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("freezelab-worker runs inside a browser: `cargo xtask serve` builds it with Trunk");
    std::process::exit(2);
}
