//! The vocabulary every part of FreezeLab shares, with no Burn in it: the page imports this
//! crate and stays small, the worker and the CLI import it through the core.
//!
//! - [`freeze`]: the freeze plan, the value everything about freezing derives from;
//! - [`memory`]: the computed memory of a plan, from parameter counts and shapes alone, so the
//!   page can redraw it on every tick without asking the worker;
//! - [`run`]: a run's settings, its events and its summary;
//! - [`metrics`]: accuracy, macro-F1, confusion;
//! - [`messages`]: what the page and the worker say to each other;
//! - [`manifest`]: the default assets, as `cargo xtask assets` lists them for the page;
//! - [`readout`]: what each layer knows (probes), the map of the examples, disagreements.
//!
//! Enums travel externally tagged (`{"Train": {…}}`, `"Stop"`, `{"llrd": {"decay": 0.8}}`): serde
//! reads an internally tagged one (`{"type": "Train", …}`) by buffering it whole first, and that
//! code, repeated for every type inside, made up a tenth of the page's gzipped wasm.

pub mod decimal;
pub mod freeze;
pub mod manifest;
pub mod memory;
pub mod messages;
pub mod metrics;
pub mod readout;
pub mod run;
