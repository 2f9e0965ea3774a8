//! The playground's training worker. The page starts it as a dedicated Web Worker; it answers
//! `ToWorker` messages one at a time (a Stop is acted on at once) and posts `FromWorker`
//! messages back. Everything that computes is in freezelab-core. The binary (`main.rs`) only
//! installs the counting allocator and calls [`worker::start`]; the tests drive a
//! [`session::Session`] directly.
#![cfg(target_arch = "wasm32")]

mod archive;
mod assets;
mod backend;
mod fetch;
mod host;
pub mod outbox;
mod probe;
pub mod replica;
pub mod session;
mod shelf;
pub mod worker;
