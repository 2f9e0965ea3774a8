//! The comparison of the pinned runs and the history of every run.

use freezelab_protocol::messages::Column;
use leptos::prelude::*;

use crate::state::{Lab, RunStatus, RunView};
use crate::{export, format, store};

/// Side-by-side figures of the runs pinned in A and B.
#[component]
pub fn Comparison() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let cell = move |column: Column, f: fn(&RunView) -> Option<String>| {
        move || lab.pinned_run(column).and_then(|r| f(&r)).unwrap_or_else(|| "–".into())
    };
    let row = move |name: &'static str, f: fn(&RunView) -> Option<String>| {
        view! {
            <tr><th scope="row">{name}</th><td>{cell(Column::A, f)}</td><td>{cell(Column::B, f)}</td></tr>
        }
    };
    let confusion = move |column: Column| {
        move || {
            lab.pinned_run(column).and_then(|r| r.summary).map(|s| view! {
            <table class="confusion" aria-label=format!("confusion matrix of {}", column.name())>
                <tr><th>"true \\ predicted"</th>{s.labels.iter().map(|l| view! { <th>{l.clone()}</th> }).collect_view()}</tr>
                {s.confusion.iter().zip(&s.labels).map(|(row, l)| view! {
                    <tr><th>{l.clone()}</th>{row.iter().map(|n| view! { <td>{*n}</td> }).collect_view()}</tr>
                }).collect_view()}
            </table>
        })
        }
    };
    view! {
        <section class="compare" aria-label="comparison">
            <h2>"A vs B"</h2>
            <table data-testid="comparison">
                <thead><tr><th></th><th>"A"</th><th>"B"</th></tr></thead>
                <tbody>
                    {row("freeze plan", |r| Some(r.config.freeze.label()))}
                    {row("trainable parameters", |r| r.summary.as_ref().map(|s| format::count(s.trainable_params)))}
                    {row("computed memory", |r| r.summary.as_ref().map(|s| format::bytes(s.memory.computed_total)))}
                    {row("measured peak", |r| r.summary.as_ref().and_then(|s| s.memory.measured_peak_bytes).map(format::bytes))}
                    {row("examples / s", |r| r.summary.as_ref().map(|s| format!("{:.1}", s.examples_per_second)))}
                    {row("wall time", |r| r.summary.as_ref().map(|s| format::seconds(s.wall_seconds)))}
                    {row("training steps", |r| r.summary.as_ref().map(|s| s.steps.to_string()))}
                    {row("training time", |r| r.summary.as_ref().map(|s| format::seconds(s.train_seconds)))}
                    {row("validation accuracy", |r| r.summary.as_ref().map(|s| format!("{:.4}", s.val_accuracy)))}
                    {row("majority-class baseline", |r| r.baseline.as_ref().map(|b| format!("{:.4} (always ‘{}’)", b.accuracy, b.label)))}
                    {row("beats the baseline", |r| r.summary.as_ref().map(|_| r.below_baseline().unwrap_or_else(|| format!("yes, by {:.1} points or more", 100.0 * freezelab_protocol::metrics::Baseline::MARGIN))))}
                    {row("macro-F1", |r| r.summary.as_ref().map(|s| format!("{:.4}", s.macro_f1)))}
                    {row("prefix cache", |r| r.summary.as_ref().map(|s| if s.cache_used { "used".into() } else { "not used".into() }))}
                </tbody>
            </table>
            <div class="confusions">{confusion(Column::A)}{confusion(Column::B)}</div>
        </section>
    }
}

/// Reads the picked results file and adds its runs to the history.
fn import_file(lab: Lab, ev: &leptos::ev::Event) {
    use wasm_bindgen::JsCast;
    let input: web_sys::HtmlInputElement = ev.target().expect("an input").unchecked_into();
    let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
    let promise = file.text();
    leptos::task::spawn_local(async move {
        let text = wasm_bindgen_futures::JsFuture::from(promise).await.ok().and_then(|t| t.as_string());
        match text.map(|t| export::import(lab, &t)) {
            Some(Ok(_)) => {}
            Some(Err(e)) => lab.ui.error(e),
            None => lab.ui.error("import: the file could not be read".into()),
        }
    });
}

/// A run's model: kept in this browser (download, size), or offered by the worker (download,
/// then keep).
fn model_cell(lab: Lab, run: &RunView) -> impl IntoView {
    let id = run.id;
    let kept = move || lab.results.kept.with(|k| k.get(&id).copied());
    let offered =
        move || lab.results.exported.with(|e| e.as_ref().filter(|(r, _)| *r == id).map(|(_, url)| url.clone()));
    let done = run.status == RunStatus::Done && !run.imported();
    let bytes = run.model_bytes;
    move || match (kept(), offered()) {
        (Some(size), _) => view! {
            <button data-testid=format!("kept-model-{id}") on:click=move |_| store::download_kept(lab, id)>
                {format!("Download kept model ({})", format::bytes(size))}</button>
        }
        .into_any(),
        (None, Some(url)) => view! {
            {export::model_button(id, bytes, format!("download-model-{id}"))}
            <button data-testid=format!("keep-model-{id}") title="store the zip in this browser, next to the run"
                on:click=move |_| store::keep_model(lab, id, url.clone())>
                {format!("Keep in this browser ({})", bytes.map(format::bytes).unwrap_or_default())}</button>
        }
        .into_any(),
        (None, None) if done => export::model_button(id, bytes, format!("download-model-{id}")).into_any(),
        _ => ().into_any(),
    }
}

#[component]
pub fn History() -> impl IntoView {
    let lab = expect_context::<Lab>();
    // A memo: a training step changes no finished run, so the table is not redrawn for it.
    let finished = Memo::new(move |_| lab.results.runs.filter(RunView::finished));
    let finished = move || finished.get();
    view! {
        <section class="history" aria-label="run history">
            <h2>"Run history"</h2>
            <div class="exports">
                <button on:click=move |_| export::download("freezelab-runs.csv", "text/csv", &export::csv(&finished()))>"Export CSV"</button>
                <button on:click=move |_| match export::json(lab, &finished()) {
                    Ok(text) => export::download("freezelab-runs.json", "application/json", &text),
                    Err(e) => lab.ui.error(format!("export: {e}")),
                }>"Export JSON"</button>
                <label>"Import JSON "
                    <input type="file" accept=".json" data-testid="history-import" on:change=move |ev| import_file(lab, &ev)/>
                </label>
                <button data-testid="history-clear" on:click=move |_| store::forget_all(lab)>"Delete all runs"</button>
                <span class="muted">"Finished runs are kept in this browser until deleted."</span>
            </div>
            <table data-testid="history-table">
                <thead><tr>
                    <th>"#"</th><th>"freeze"</th><th>"data"</th><th>"backend"</th><th>"trainable"</th>
                    <th>"accuracy"</th><th>"macro-F1"</th><th>"peak"</th><th>"ex/s"</th><th>"time"</th><th>"status"</th><th>"pin"</th><th></th>
                </tr></thead>
                <tbody>
                    {move || finished().into_iter().rev().map(|run| {
                        let s = run.summary.clone();
                        let id = run.id;
                        let status = match &run.status {
                            RunStatus::Done => "done".to_string(),
                            RunStatus::Stopped => "stopped".to_string(),
                            RunStatus::Failed { message, .. } => format!("failed: {message}"),
                            _ => String::new(),
                        };
                        view! {
                            <tr>
                                <td>{id}</td>
                                <td>{run.config.freeze.label()}</td>
                                <td>{run.dataset.clone()}</td>
                                <td>{run.backend.clone()}</td>
                                <td>{s.as_ref().map(|s| format::count(s.trainable_params))}</td>
                                <td>{s.as_ref().map(|s| format!("{:.4}", s.val_accuracy))}</td>
                                <td>{s.as_ref().map(|s| format!("{:.4}", s.macro_f1))}</td>
                                <td>{s.as_ref().and_then(|s| s.memory.measured_peak_bytes).map(format::bytes)}</td>
                                <td>{s.as_ref().map(|s| format!("{:.1}", s.examples_per_second))}</td>
                                <td>{s.as_ref().map(|s| format::seconds(s.wall_seconds))}</td>
                                <td>{status}</td>
                                <td>
                                    <button on:click=move |_| lab.columns.pin(Column::A, id) aria-label=format!("pin run {id} to A")>"A"</button>
                                    <button on:click=move |_| lab.columns.pin(Column::B, id) aria-label=format!("pin run {id} to B")>"B"</button>
                                </td>
                                <td>
                                    {model_cell(lab, &run)}
                                    <button data-testid=format!("history-delete-{id}") aria-label=format!("delete run {id}")
                                        on:click=move |_| store::forget(lab, id)>"Delete"</button>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}
