//! Model, data, backend and hyperparameters.

use freezelab_protocol::decimal::parse_f64;
use freezelab_protocol::messages::{
    uploaded_file, BackendChoice, BackendKind, DataSource, ModelSource, UserFile, MAX_UPLOAD_BYTES,
};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;

use crate::state::{Hyper, Lab};
use crate::{actions, format, offline};
use freezelab_protocol::manifest::{DatasetEntry, Manifest, ModelEntry};

const UPLOAD: &str = "upload";

fn load_model(lab: Lab, entry: &ModelEntry) {
    let weights = entry.weights().path.rsplit('/').next().unwrap_or_default().to_string();
    let stage = offline::stage();
    actions::load_model(lab, ModelSource::Prepared { id: entry.id.clone(), base: entry.base(), weights, stage });
}

fn load_dataset(lab: Lab, entry: &DatasetEntry) {
    actions::load_dataset(
        lab,
        DataSource::Prepared {
            id: entry.id.clone(),
            train: entry.file("train.jsonl"),
            validation: entry.file("validation.jsonl"),
            stage: offline::stage(),
        },
    );
}

/// Loaded as soon as the page opens: the model and dataset a link names, else the manifest's
/// first. A link naming the user's own files says so: those never leave their browser.
pub fn load_defaults(lab: Lab, manifest: &Manifest) {
    let linked = lab.shared.get_untracked();
    let wanted = |id: Option<&String>, what: &str| match id.map(|id| (id, uploaded_file(id))) {
        Some((_, Some(name))) => {
            lab.error(format!("this link used your own {what} \"{name}\": load it again to repeat the experiment"));
            None
        }
        other => other.map(|(id, _)| id.clone()),
    };
    let model_id = wanted(linked.as_ref().map(|s| &s.model), "model");
    let data_id = wanted(linked.as_ref().map(|s| &s.data), "data");
    let model = model_id.and_then(|id| manifest.models.iter().find(|m| m.id == id)).or(manifest.models.first());
    if let Some(model) = model {
        load_model(lab, model);
    }
    let dataset = data_id.and_then(|id| manifest.datasets.iter().find(|d| d.id == id)).or(manifest.datasets.first());
    if let Some(dataset) = dataset {
        load_dataset(lab, dataset);
    }
}

/// The picked file as a `blob:` URL the worker can fetch (the file never leaves the browser).
fn picked(input: &HtmlInputElement) -> Option<UserFile> {
    let file = input.files()?.get(0)?;
    let url = web_sys::Url::create_object_url_with_blob(&file).ok()?;
    Some(UserFile { name: file.name(), url })
}

/// The option a picker shows: the user's choice, else what is loaded (the default).
fn shown(choice: String, loaded: Option<String>) -> String {
    if choice.is_empty() {
        loaded.unwrap_or_default()
    } else {
        choice
    }
}

fn input_of(ev: &leptos::ev::Event) -> HtmlInputElement {
    ev.target().expect("an input").unchecked_into()
}

#[component]
pub fn Setup() -> impl IntoView {
    view! {
        <section class="setup" aria-label="model, data and settings">
            <Backend/>
            <ModelPicker/>
            <DataPicker/>
            <Hyperparameters/>
            <DownloadProgress/>
        </section>
    }
}

#[component]
fn Backend() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let choose = move |choice: BackendChoice| actions::choose_backend(lab, choice);
    let status = move || match (lab.worker_alive.get(), lab.backend.get()) {
        (false, _) => "loading the training engine…".to_string(),
        (true, None) => "choosing a backend…".to_string(),
        (true, Some(b)) if b.kind == BackendKind::Webgpu => format!(
            "WebGPU · {}{}",
            b.adapter.unwrap_or_default(),
            if b.fallback { " (software fallback adapter: slow)" } else { "" }
        ),
        (true, Some(b)) => format!(
            "CPU (wasm, {}){}",
            b.adapter.unwrap_or_else(|| "SIMD".into()),
            b.note.map(|n| format!(" · {n}")).unwrap_or_default()
        ),
    };
    view! {
           <div class="field">
               <span class="label">"Backend"</span>
               <span data-testid="backend-status" aria-live="polite">{status}</span>
               <crate::engine::EngineStatus/>
               <label class="inline">
                   <input type="checkbox" data-testid="force-cpu"
                       prop:checked=move || lab.backend_choice.get() == BackendChoice::Cpu disabled=move || lab.busy()
                       on:change=move |ev| choose(if event_target_checked(&ev) { BackendChoice::Cpu } else { BackendChoice::Auto })/>
                   " force CPU"
               </label>
               <label class="inline" title="a software adapter (no GPU driver, or a headless browser) computes on the CPU, slower than the CPU backend">
                   <input type="checkbox" data-testid="software-gpu"
                       prop:checked=move || lab.backend_choice.get() == BackendChoice::AnyGpu disabled=move || lab.busy()
                       on:change=move |ev| choose(if event_target_checked(&ev) { BackendChoice::AnyGpu } else { BackendChoice::Auto })/>
                   " use a software GPU"
               </label>
           </div>
           <div class="field">
               <label title="each worker trains one run at a time on one core; on WebGPU one worker trains">
                   "Workers "{workers("pool-size", lab.pool_size)}
               </label>
    <label title="one run on several workers: each takes a share of every batch and they add their gradients; only the trainable parameters' gradients travel, so a frozen model exchanges little">
                   " per run "{workers("hp-workers", lab.run_workers)}
               </label>
               <span data-testid="pool-status" data-up=move || lab.pool.get().up.to_string() data-busy=move || lab.pool.get().busy.to_string()>
                   {move || pool_line(lab.pool.get())}
               </span>
           </div>
       }
}

/// A count of workers, 1 to 16, kept in `target`.
fn workers(testid: &'static str, target: RwSignal<usize>) -> impl IntoView {
    view! {
        <input type="number" min="1" max="16" data-testid=testid prop:value=move || target.get().to_string()
            on:change=move |ev| {
                if let Ok(n @ 1..=16) = event_target_value(&ev).parse::<usize>() {
                    target.set(n);
                }
            }/>
    }
}

/// "2 workers up, 1 training, 1 waiting · 310 MB of wasm heap".
fn pool_line(pool: freezelab_pool::Status) -> String {
    let waiting = if pool.queued > 0 { format!(", {} waiting", pool.queued) } else { String::new() };
    let heap = if pool.heap_bytes > 0 {
        format!(" · {} of wasm heap", format::bytes(pool.heap_bytes))
    } else {
        String::new()
    };
    let workers = if pool.up == 1 { "worker" } else { "workers" };
    format!("{} {workers} up, {} training{waiting}{heap}", pool.up, pool.busy)
}

#[component]
fn ModelPicker() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let choice = RwSignal::new(String::new());
    let files: [RwSignal<Option<UserFile>>; 3] = [RwSignal::new(None), RwSignal::new(None), RwSignal::new(None)];
    let options = move || {
        lab.manifest
            .get()
            .map(|m| m.models)
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let text = format!("{} ({} layers, {} parameters)", m.name, m.layers, format::count(m.parameters));
                view! { <option value=m.id.clone()>{text}</option> }
            })
            .collect_view()
    };
    let on_change = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        choice.set(id.clone());
        if let Some(entry) = lab.manifest.get_untracked().and_then(|m| m.models.into_iter().find(|e| e.id == id)) {
            load_model(lab, &entry);
        }
    };
    let load_own = move |_| {
        let [Some(config), Some(weights), Some(tokenizer)] = files.map(|f| f.get_untracked()) else {
            return lab.error("model: pick config.json, model.safetensors and tokenizer.json".into());
        };
        actions::load_model(lab, ModelSource::Files { config, weights, tokenizer });
    };
    let file_input = move |label: &'static str, testid: &'static str, accept: &'static str, slot: usize| {
        view! {
            <label class="file">{label}" "
                <input type="file" data-testid=testid accept=accept on:change=move |ev| files[slot].set(picked(&input_of(&ev)))/>
            </label>
        }
    };
    let summary = move || match (lab.model_busy.get(), lab.model.get()) {
        (true, _) => "loading…".to_string(),
        (false, Some(m)) => format!(
            "{}: {} layers, hidden {}, {} parameters",
            m.name,
            m.num_layers(),
            m.shape.hidden_size,
            format::count(m.params.total())
        ),
        (false, None) => String::new(),
    };
    view! {
        <div class="field">
            <label for="model-select" class="label">"Model"</label>
            <select id="model-select" data-testid="model-select" disabled=move || lab.busy() on:change=on_change
                prop:value=move || shown(choice.get(), lab.model.get().map(|m| m.name))>
                {options}
                <option value=UPLOAD>"load your own (Hugging Face BERT files)…"</option>
            </select>
            <span class="muted" data-testid="model-summary">{summary}</span>
            <Show when=move || choice.get() == UPLOAD>
                <div class="own-model">
                    {file_input("config.json", "model-config", ".json", 0)}
                    {file_input("model.safetensors", "model-weights", ".safetensors", 1)}
                    {file_input("tokenizer.json", "model-tokenizer", ".json", 2)}
                    <button data-testid="model-load" on:click=load_own>"Load model"</button>
                </div>
            </Show>
        </div>
    }
}

#[component]
fn DataPicker() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let choice = RwSignal::new(String::new());
    let text_column = RwSignal::new(String::new());
    let label_column = RwSignal::new(String::new());
    let fraction = RwSignal::new(0.2f64);
    let options = move || {
        lab.manifest
            .get()
            .map(|m| m.datasets)
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                let text = format!("{} ({} train / {} validation)", d.name, d.train_examples, d.validation_examples);
                view! { <option value=d.id.clone() title=d.description.clone()>{text}</option> }
            })
            .collect_view()
    };
    let on_change = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        choice.set(id.clone());
        if let Some(entry) = lab.manifest.get_untracked().and_then(|m| m.datasets.into_iter().find(|e| e.id == id)) {
            load_dataset(lab, &entry);
        }
    };
    let on_file = move |ev: leptos::ev::Event| {
        let input = input_of(&ev);
        let Some(chosen) = input.files().and_then(|f| f.get(0)) else { return };
        let size = chosen.size() as u64;
        if size > MAX_UPLOAD_BYTES {
            input.set_value("");
            return lab.error(format!(
                "upload: {} is {}, over the {} the page reads; use a sample of it, or the CLI (`freezelab train --data FILE`) for the whole",
                chosen.name(),
                format::bytes(size),
                format::bytes(MAX_UPLOAD_BYTES)
            ));
        }
        let Some(file) = picked(&input) else { return };
        lab.preview.set(None);
        lab.upload.set(Some(file.clone()));
        actions::inspect(file);
    };
    // Column pickers start on the likeliest columns of the preview.
    Effect::new(move || {
        if let Some(p) = lab.preview.get() {
            let find = |names: &[&str], fallback: usize| {
                p.columns
                    .iter()
                    .find(|c| names.iter().any(|n| c.eq_ignore_ascii_case(n)))
                    .cloned()
                    .or_else(|| p.columns.get(fallback).cloned())
                    .unwrap_or_default()
            };
            text_column.set(find(&["text", "sentence", "message", "body"], 0));
            label_column.set(find(&["label", "labels", "class", "category"], 1));
        }
    });
    let use_file = move |_| {
        let Some(file) = lab.upload.get_untracked() else { return };
        let (text, label) = (text_column.get_untracked(), label_column.get_untracked());
        if text.is_empty() || label.is_empty() || text == label {
            let columns = lab.preview.get_untracked().map(|p| p.columns.join(", ")).unwrap_or_default();
            return lab.error(format!(
                "dataset: {} needs a text column and a different label column (columns: {columns})",
                file.name
            ));
        }
        actions::load_dataset(
            lab,
            DataSource::Upload {
                file,
                text_column: text_column.get_untracked(),
                label_column: label_column.get_untracked(),
                validation_fraction: fraction.get_untracked(),
                seed: lab.hyper.get_untracked().seed,
            },
        );
    };
    let column_select = move |testid: &'static str, label: &'static str, target: RwSignal<String>| {
        view! {
            <label>{label}" "
                <select data-testid=testid on:change=move |ev| target.set(event_target_value(&ev))>
                    {move || lab.preview.get().map(|p| p.columns).unwrap_or_default().into_iter().map(|c| {
                        let selected = target.get() == c;
                        view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
    };
    let counts = move || match (lab.dataset_busy.get(), lab.dataset.get()) {
        (true, _) => "loading…".to_string(),
        (false, Some(d)) => {
            d.labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    format!(
                        "{l}: {} / {}",
                        d.train_counts.get(i).unwrap_or(&0),
                        d.validation_counts.get(i).unwrap_or(&0)
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
                + " (train / validation)"
        }
        (false, None) => String::new(),
    };
    view! {
        <div class="field">
            <label for="dataset-select" class="label">"Data"</label>
            <select id="dataset-select" data-testid="dataset-select" disabled=move || lab.busy() on:change=on_change
                prop:value=move || shown(choice.get(), lab.dataset.get().map(|d| d.name))>
                {options}
                <option value=UPLOAD>"upload CSV / TSV / JSONL…"</option>
            </select>
            <span class="muted" data-testid="dataset-counts">{counts}</span>
            <Show when=move || choice.get() == UPLOAD>
                <div class="upload">
                    <input type="file" data-testid="dataset-upload" accept=".csv,.tsv,.tab,.jsonl,.ndjson" on:change=on_file/>
                    {column_select("dataset-text-column", "text column", text_column)}
                    {column_select("dataset-label-column", "label column", label_column)}
                    <label>"validation fraction "
                        <input type="number" min="0.05" max="0.5" step="0.05" prop:value=move || fraction.get().to_string()
                            on:change=move |ev| if let Some(v) = parse_f64(&event_target_value(&ev)) { fraction.set(v) }/>
                    </label>
                    <button data-testid="dataset-use" disabled=move || lab.preview.get().is_none() on:click=use_file>"Use this file"</button>
                    <Preview/>
                </div>
            </Show>
        </div>
    }
}

/// The first rows of the uploaded file, as text.
#[component]
fn Preview() -> impl IntoView {
    let lab = expect_context::<Lab>();
    move || {
        lab.preview.get().map(|p| {
            view! {
                <table class="preview">
                    <thead><tr>{p.columns.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view()}</tr></thead>
                    <tbody>{p.rows.iter().map(|row| view! {
                        <tr>{row.iter().map(|cell| {
                            let short: String = cell.chars().take(80).collect();
                            view! { <td>{short}</td> }
                        }).collect_view()}</tr>
                    }).collect_view()}</tbody>
                </table>
            }
        })
    }
}

#[component]
fn Hyperparameters() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let number = move |testid: &'static str,
                       label: &'static str,
                       get: fn(&Hyper) -> String,
                       set: fn(&mut Hyper, &str) -> bool| {
        view! {
            <label class="hp">{label}
                <input type="number" data-testid=testid prop:value=move || lab.hyper.with(get)
                    on:change=move |ev| {
                        let raw = event_target_value(&ev);
                        let mut h = lab.hyper.get_untracked();
                        let checked = if set(&mut h, raw.trim()) {
                            h.validate()
                        } else {
                            Err(format!("\"{raw}\" is not a number"))
                        };
                        match checked {
                            Ok(()) => lab.hyper.set(h),
                            Err(e) => {
                                lab.error(format!("{label}: {e}"));
                                // Puts the last valid value back in the box.
                                lab.hyper.update(|_| {});
                            }
                        }
                    }/>
            </label>
        }
    };
    view! {
        <fieldset class="hyper">
            <legend>"Hyperparameters (defaults fit the backend)"</legend>
            {number("hp-train-size", "train examples", |h| h.train_size.to_string(), |h, r| r.parse().map(|v| h.train_size = v).is_ok())}
            {number("hp-eval-size", "validation examples", |h| h.eval_size.to_string(), |h, r| r.parse().map(|v| h.eval_size = v).is_ok())}
            {number("hp-epochs", "epochs", |h| h.epochs.to_string(), |h, r| r.parse().map(|v| h.epochs = v).is_ok())}
            {number("hp-batch", "batch size", |h| h.batch_size.to_string(), |h, r| r.parse().map(|v| h.batch_size = v).is_ok())}
            {number("hp-max-len", "max tokens", |h| h.max_len.to_string(), |h, r| r.parse().map(|v| h.max_len = v).is_ok())}
            {number("hp-lr", "learning rate", |h| h.lr.to_string(), |h, r| parse_f64(r).map(|v| h.lr = v).is_some())}
            {number("hp-seed", "seed", |h| h.seed.to_string(), |h, r| r.parse().map(|v| h.seed = v).is_ok())}
            <label class="hp inline">
                <input type="checkbox" data-testid="hp-cache" prop:checked=move || lab.hyper.with(|h| h.cache)
                    on:change=move |ev| { let on = event_target_checked(&ev); lab.hyper.update(|h| h.cache = on) }/>
                " cache the frozen prefix"
            </label>
        </fieldset>
    }
}

#[component]
fn DownloadProgress() -> impl IntoView {
    let lab = expect_context::<Lab>();
    move || {
        lab.download.get().map(|d| {
            let text = match d.total {
                Some(t) => format!("{}: {} of {}", d.what, format::bytes(d.loaded), format::bytes(t)),
                None => format!("{}: {}", d.what, format::bytes(d.loaded)),
            };
            view! {
                <div class="download" data-testid="download-progress">
                    <progress max=d.total.unwrap_or(0).to_string() value=d.loaded.to_string()></progress>
                    <span>{text}</span>
                </div>
            }
        })
    }
}
