//! FreezeLab's core: a Hugging Face–compatible BERT encoder in Burn, its tokenizer, datasets,
//! and fine-tuning with layer freezing.
//!
//! Everything here takes bytes and returns values: no file system, no DOM, no network. The same
//! code runs natively (CLI, tests, benchmarks) and in a browser worker (wasm32).

pub mod bert;
pub mod cache;
pub mod config;
pub mod data;
pub mod device;
pub mod drift;
pub mod error;
pub mod folder;
pub mod fused;
pub mod loaded;
pub mod map;
pub mod measured;
pub mod params;
pub mod probe;
mod seeded;
pub mod synthetic;
pub mod tokenize;
pub mod train;
pub mod weights;

pub use error::{CoreError, Result};
/// Freeze plans and metrics are plain values shared with the page: they live in the protocol crate.
pub use freezelab_protocol::{freeze, metrics};
