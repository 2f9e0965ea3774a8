//! The core's native integration tests, in one binary: in release each test binary compiles
//! and links Burn's generic code for itself (one binary builds in 27 s where seven took 51).
//! tests/memory.rs keeps its own: its counting allocator sees every thread of the process.
// Native only (`wasm-pack test` builds every test target; the browser's are in wasm.rs).
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod fused;
mod fuzz;
mod matmul_module;
#[cfg(feature = "gpu")]
mod on_wgpu;
mod parity;
mod probe;
mod tiny_logits;
mod train;
mod train_step;
mod weights;
