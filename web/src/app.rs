//! The page: set-up, the two columns, charts, comparison, history, try-it, and the explainer.

use freezelab_protocol::messages::{BackendKind, Column};
use leptos::prelude::*;

pub use crate::actions::{queue, race_to_b, stop, train, train_both};
use crate::charts::Charts;
use crate::column::RunColumn;
use crate::examples::ExampleMaps;
use crate::history::{Comparison, History};
use crate::layers::LayerProbe;
use crate::offline::Offline;
use crate::setup::Setup;
use crate::share;
use crate::state::{Lab, Ui};
use crate::sweep::Sweep;
use crate::try_it::TryIt;
use crate::{pool, store};
pub use freezelab_pool::race::RACE_MAX_EPOCHS;

async fn load_manifest(lab: Lab) {
    let result = async {
        let window = web_sys::window().ok_or("no window")?;
        let response: web_sys::Response =
            wasm_bindgen_futures::JsFuture::from(window.fetch_with_str("static/manifest.json"))
                .await
                .map_err(|_| "could not fetch static/manifest.json")?
                .into();
        if !response.ok() {
            return Err("static/manifest.json is missing: run `cargo xtask assets`".to_string());
        }
        let text = wasm_bindgen_futures::JsFuture::from(response.text().map_err(|_| "unreadable manifest")?)
            .await
            .map_err(|_| "unreadable manifest")?;
        crate::json::parse::<freezelab_protocol::manifest::Manifest>(&text.as_string().unwrap_or_default())
            .map_err(|e| format!("static/manifest.json: {e}"))
    }
    .await;
    match result {
        Ok(m) => {
            crate::setup::load_defaults(lab, &m);
            lab.setup.manifest.set(Some(m));
        }
        Err(e) => lab.ui.error(e.to_string()),
    }
}

#[component]
pub fn App() -> impl IntoView {
    let lab = Lab::new();
    lab.provide();
    match share::from_url() {
        Some(Ok(linked)) => {
            lab.setup.hyper.set(linked.hyper());
            lab.ui.presenting.set(linked.present);
            lab.setup.shared.set(Some(linked));
        }
        Some(Err(e)) => lab.ui.error(e),
        None => {}
    }
    // The URL follows the set-up from the moment one exists.
    Effect::new(move || {
        if let Some(now) = lab.link() {
            share::write_url(&now);
        }
    });
    // The equal-time race's B follows its A.
    Effect::new(move || race_to_b(lab));
    pool::spawn(lab);
    crate::actions::choose_backend(lab, lab.setup.backend_choice.get_untracked());
    store::keep(lab);
    leptos::task::spawn_local(load_manifest(lab));
    view! {
        <header>
            <h1>"FreezeLab"</h1>
            <p class="tagline">"Fine-tune a real BERT in this tab. Freeze layers, train two runs, compare accuracy, speed and memory."</p>
        </header>
        <Errors/>
        <main class:presenting=move || lab.ui.presenting.get()>
            <Setup/>
            <Toolbar/>
            <div class="columns">
                <RunColumn column=Column::A/>
                <RunColumn column=Column::B/>
            </div>
            <LayerProbe/>
            <ExampleMaps/>
            <Charts/>
            <Comparison/>
            <Sweep/>
            <TryIt/>
            <History/>
            <Explainer/>
        </main>
        <footer><Offline/></footer>
    }
}

#[component]
fn Toolbar() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let not_ready = move || lab.setup.model.get().is_none() || lab.setup.dataset.get().is_none();
    let copied = RwSignal::new(String::new());
    view! {
        <div class="toolbar" role="toolbar" aria-label="training">
            <button data-testid="train-A" disabled=not_ready on:click=move |_| { train(lab, Column::A); }>"Train A"</button>
            <button data-testid="train-B" disabled=not_ready on:click=move |_| { train(lab, Column::B); }>"Train B"</button>
            <button data-testid="train-both" disabled=not_ready on:click=move |_| train_both(lab)>"Train both"</button>
            <label class="inline" title="B trains as long as A did, in seconds: with the prefix cache a frozen plan gets many more epochs. The charts then run against seconds.">
                <input type="checkbox" data-testid="race-equal-time" prop:checked=move || lab.columns.equal_time.get()
                    on:change=move |ev| lab.columns.equal_time.set(event_target_checked(&ev))/>
                " equal time"
            </label>
            <button data-testid="stop" disabled=move || !lab.results.busy() on:click=move |_| stop(lab)>"Stop"</button>
            <span class="hint">{move || if lab.columns.equal_time.get() {
                format!("B trains for A's training time (at most {RACE_MAX_EPOCHS} epochs).")
            } else if lab.ui.pool_size.get() > 1 && lab.setup.backend.with(|b| b.as_ref().is_none_or(|b| b.kind == BackendKind::Cpu)) {
                "A and B train at once, on two workers.".to_string()
            } else {
                "Runs go one after the other on one worker.".to_string()
            }}</span>
            <span class="share">
                <button data-testid="copy-link" on:click=move |_| copy_link(copied)>"Copy link"</button>
                <span aria-live="polite" class="muted">{move || copied.get()}</span>
                <label class="inline">
                    <input type="checkbox" data-testid="present" prop:checked=move || lab.ui.presenting.get()
                        on:change=move |ev| lab.ui.presenting.set(event_target_checked(&ev))/>
                    " presentation mode"
                </label>
            </span>
        </div>
    }
}

/// Puts the page's URL (which holds the set-up) on the clipboard.
fn copy_link(note: RwSignal<String>) {
    let Some(window) = web_sys::window() else { return };
    let Ok(href) = window.location().href() else { return };
    let promise = window.navigator().clipboard().write_text(&href);
    leptos::task::spawn_local(async move {
        let done = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
        note.set(if done { "link copied".into() } else { format!("copy this link: {href}") });
    });
}

/// Error messages, newest last, each dismissible; nothing else on the page is reset by them.
#[component]
fn Errors() -> impl IntoView {
    let ui = expect_context::<Ui>();
    view! {
        <div class="errors" role="alert" data-testid="errors">
            {move || ui.errors.get().into_iter().enumerate().map(|(i, message)| view! {
                <p class="error">{message}" "
                    <button aria-label="dismiss" on:click=move |_| ui.errors.update(|e| { if i < e.len() { e.remove(i); } })>"×"</button>
                </p>
            }).collect_view()}
        </div>
    }
}

#[component]
fn Explainer() -> impl IntoView {
    view! {
        <details class="explainer">
            <summary>"Why freeze layers, and why people rarely do it with BERT"</summary>
            <p>"A frozen block keeps its pretrained weights. It needs no gradient and no optimizer state, \
                so every frozen parameter saves the three copies AdamW would otherwise hold for it."</p>
            <p>"Freezing from the bottom up saves more: below the freeze line nothing is differentiated, \
                so backward stops there and the activations of those layers need not be kept. Their outputs \
                never change either, so they can be computed once and reused every epoch (the cached badge)."</p>
            <p>"The price is accuracy. The upper layers of BERT adapt most during fine-tuning, and a small \
                model has little to spare: compare the columns to see how much each frozen layer costs on your data. \
                With a budget this small the difference in time is modest; the memory difference is the lasting one."</p>
        </details>
    }
}
