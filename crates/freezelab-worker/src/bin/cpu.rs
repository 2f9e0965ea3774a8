//! The CPU workers' bundle: the same entry point, which Trunk builds without the `gpu` feature
//! (web/index.html), so Burn's wgpu backend and the GPU kernel compiler are left out.

include!("../main.rs");
