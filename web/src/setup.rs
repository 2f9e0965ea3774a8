//! Model, data, backend and hyperparameters (the user's own data: upload.rs).

use freezelab_protocol::decimal::parse_f64;
use freezelab_protocol::messages::{uploaded_file, BackendChoice, BackendKind, DataSource, ModelSource, UserFile};
use leptos::prelude::*;

use crate::state::{Hyper, Lab, SetUp, Ui};
use crate::upload::{picked, Upload};
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
    let linked = lab.setup.shared.get_untracked();
    let wanted = |id: Option<&String>, what: &str| match id.map(|id| (id, uploaded_file(id))) {
        Some((_, Some(name))) => {
            lab.ui.error(format!("this link used your own {what} \"{name}\": load it again to repeat the experiment"));
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

/// The option a picker shows: the user's choice, else what is loaded (the default).
fn shown(choice: String, loaded: Option<String>) -> String {
    if choice.is_empty() {
        loaded.unwrap_or_default()
    } else {
        choice
    }
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
    let status = move || match (lab.ui.worker_alive.get(), lab.setup.backend.get()) {
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
                       prop:checked=move || lab.setup.backend_choice.get() == BackendChoice::Cpu disabled=move || lab.results.busy()
                       on:change=move |ev| choose(if event_target_checked(&ev) { BackendChoice::Cpu } else { BackendChoice::Auto })/>
                   " force CPU"
               </label>
               <label class="inline" title="a software adapter (no GPU driver, or a headless browser) computes on the CPU, slower than the CPU backend">
                   <input type="checkbox" data-testid="software-gpu"
                       prop:checked=move || lab.setup.backend_choice.get() == BackendChoice::AnyGpu disabled=move || lab.results.busy()
                       on:change=move |ev| choose(if event_target_checked(&ev) { BackendChoice::AnyGpu } else { BackendChoice::Auto })/>
                   " use a software GPU"
               </label>
           </div>
           <div class="field">
               <label title="each worker trains one run at a time on one core; on WebGPU one worker trains">
                   "Workers "{workers("pool-size", lab.ui.pool_size)}
               </label>
    <label title="one run on several workers: each takes a share of every batch and they add their gradients; only the trainable parameters' gradients travel, so a frozen model exchanges little">
                   " per run "{workers("hp-workers", lab.ui.run_workers)}
               </label>
               <span data-testid="pool-status" data-up=move || lab.ui.pool.get().up.to_string() data-busy=move || lab.ui.pool.get().busy.to_string()>
                   {move || pool_line(lab.ui.pool.get())}
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
        lab.setup
            .manifest
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
        if let Some(entry) = lab.setup.manifest.get_untracked().and_then(|m| m.models.into_iter().find(|e| e.id == id))
        {
            load_model(lab, &entry);
        }
    };
    let load_own = move |_| {
        let [Some(config), Some(weights), Some(tokenizer)] = files.map(|f| f.get_untracked()) else {
            return lab.ui.error("model: pick config.json, model.safetensors and tokenizer.json".into());
        };
        actions::load_model(lab, ModelSource::Files { config, weights, tokenizer });
    };
    let file_input = move |label: &'static str, testid: &'static str, accept: &'static str, slot: usize| {
        view! {
            <label class="file">{label}" "
                <input type="file" data-testid=testid accept=accept on:change=move |ev| files[slot].set(picked(&event_target(&ev)))/>
            </label>
        }
    };
    let summary = move || match (lab.setup.model_busy.get(), lab.setup.model.get()) {
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
            <select id="model-select" data-testid="model-select" disabled=move || lab.results.busy() on:change=on_change
                prop:value=move || shown(choice.get(), lab.setup.model.get().map(|m| m.name))>
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
    let options = move || {
        lab.setup
            .manifest
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
        if let Some(entry) =
            lab.setup.manifest.get_untracked().and_then(|m| m.datasets.into_iter().find(|e| e.id == id))
        {
            load_dataset(lab, &entry);
        }
    };
    view! {
        <div class="field">
            <label for="dataset-select" class="label">"Data"</label>
            <select id="dataset-select" data-testid="dataset-select" disabled=move || lab.results.busy() on:change=on_change
                prop:value=move || shown(choice.get(), lab.setup.dataset.get().map(|d| d.name))>
                {options}
                <option value=UPLOAD>"upload CSV / TSV / JSONL…"</option>
            </select>
            <LabelCounts/>
            <Show when=move || choice.get() == UPLOAD>
                <Upload/>
            </Show>
        </div>
    }
}

/// Examples per label of the loaded data, train / validation.
#[component]
fn LabelCounts() -> impl IntoView {
    let setup = expect_context::<SetUp>();
    let counts = move || match (setup.dataset_busy.get(), setup.dataset.get()) {
        (true, _) => "loading…".to_string(),
        (false, Some(d)) => {
            let per_label = d.labels.iter().enumerate().map(|(i, l)| {
                let count = |counts: &[usize]| counts.get(i).copied().unwrap_or(0);
                format!("{l}: {} / {}", count(&d.train_counts), count(&d.validation_counts))
            });
            per_label.collect::<Vec<_>>().join(" · ") + " (train / validation)"
        }
        (false, None) => String::new(),
    };
    view! { <span class="muted" data-testid="dataset-counts">{counts}</span> }
}

#[component]
fn Hyperparameters() -> impl IntoView {
    let setup = expect_context::<SetUp>();
    let ui = expect_context::<Ui>();
    let number = move |testid: &'static str,
                       label: &'static str,
                       get: fn(&Hyper) -> String,
                       set: fn(&mut Hyper, &str) -> bool| {
        view! {
            <label class="hp">{label}
                <input type="number" data-testid=testid prop:value=move || setup.hyper.with(get)
                    on:change=move |ev| {
                        let raw = event_target_value(&ev);
                        let mut h = setup.hyper.get_untracked();
                        let checked = if set(&mut h, raw.trim()) {
                            h.validate()
                        } else {
                            Err(format!("\"{raw}\" is not a number"))
                        };
                        match checked {
                            Ok(()) => setup.hyper.set(h),
                            Err(e) => {
                                ui.error(format!("{label}: {e}"));
                                // Puts the last valid value back in the box.
                                setup.hyper.update(|_| {});
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
                <input type="checkbox" data-testid="hp-cache" prop:checked=move || setup.hyper.with(|h| h.cache)
                    on:change=move |ev| { let on = event_target_checked(&ev); setup.hyper.update(|h| h.cache = on) }/>
                " cache the frozen prefix"
            </label>
        </fieldset>
    }
}

#[component]
fn DownloadProgress() -> impl IntoView {
    let setup = expect_context::<SetUp>();
    move || {
        setup.download.get().map(|d| {
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
