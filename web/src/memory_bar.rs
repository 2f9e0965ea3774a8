//! A stacked bar of computed memory: weights, gradients, optimizer state, activations, cache.

use freezelab_protocol::memory::ComputedMemory;
use leptos::prelude::*;

use crate::format;

/// Parts in drawing order, with their CSS class.
fn parts(m: &ComputedMemory) -> [(&'static str, &'static str, u64); 5] {
    [
        ("weights", "mem-weights", m.weights),
        ("gradients", "mem-grads", m.gradients),
        ("optimizer", "mem-optim", m.optimizer),
        ("activations", "mem-acts", m.activations),
        ("cache", "mem-cache", m.cache),
    ]
}

/// `scale`: the byte count that fills the bar, shared by both columns so their bars compare.
#[component]
pub fn MemoryBar(memory: Signal<ComputedMemory>, scale: Signal<u64>) -> impl IntoView {
    let segments = move || {
        let m = memory.get();
        let full = scale.get().max(1) as f64;
        parts(&m)
            .into_iter()
            .filter(|(_, _, bytes)| *bytes > 0)
            .map(|(name, class, bytes)| {
                let width = format!("width: {:.2}%", 100.0 * bytes as f64 / full);
                let title = format!("{name}: {}", format::bytes(bytes));
                view! { <span class=format!("mem-seg {class}") style=width title=title.clone() aria-label=title></span> }
            })
            .collect_view()
    };
    let legend = move || {
        let m = memory.get();
        parts(&m)
            .into_iter()
            .map(|(name, class, bytes)| {
                view! { <li><span class=format!("swatch {class}")></span>{name}" "{format::bytes(bytes)}</li> }
            })
            .collect_view()
    };
    view! {
        <div class="mem-bar" role="img" aria-label="computed memory by kind">{segments}</div>
        <ul class="mem-legend">{legend}</ul>
    }
}
