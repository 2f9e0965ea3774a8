//! The playground page: a Leptos client-side app. It holds the page's state in signals, draws
//! it, and sends requests to a pool of training workers; every number it shows comes from a worker
//! message or from `freezelab_protocol` (the computed memory of a plan). It never links Burn.
#![cfg(target_arch = "wasm32")]

pub mod actions;
pub mod adapter;
pub mod app;
pub mod charts;
pub mod column;
pub mod download;
pub mod engine;
pub mod examples;
pub mod export;
pub mod format;
pub mod history;
pub mod hyper;
pub mod json;
pub mod layers;
pub mod legacy;
pub mod memory_bar;
pub mod mode;
pub mod offline;
pub mod painter;
pub mod pool;
pub mod run;
pub mod runs;
pub mod setup;
pub mod share;
pub mod state;
pub mod store;
pub mod sweep;
pub mod try_it;
pub mod upload;

/// Mounts the page on `<body>`.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
