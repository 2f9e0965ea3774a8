//! The user's own data: a CSV, TSV or JSONL file picked in the page, previewed by the lead
//! worker, its text and label columns chosen, then loaded with a validation share split off.

use freezelab_protocol::decimal::parse_f64;
use freezelab_protocol::messages::{DataSource, UserFile, MAX_UPLOAD_BYTES};
use leptos::prelude::*;
use web_sys::HtmlInputElement;

use crate::state::{Lab, SetUp, Ui};
use crate::{actions, format};

/// The picked file as a `blob:` URL the worker can fetch (the file never leaves the browser).
pub fn picked(input: &HtmlInputElement) -> Option<UserFile> {
    let file = input.files()?.get(0)?;
    let url = web_sys::Url::create_object_url_with_blob(&file).ok()?;
    Some(UserFile { name: file.name(), url })
}

/// The file input, the column pickers (on the likeliest columns of the preview), the validation
/// fraction, and the button that loads the file.
#[component]
pub fn Upload() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let text_column = RwSignal::new(String::new());
    let label_column = RwSignal::new(String::new());
    let fraction = RwSignal::new(0.2f64);
    Effect::new(move || {
        if let Some(p) = lab.setup.preview.get() {
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
        let Some(file) = lab.setup.upload.get_untracked() else { return };
        let (text, label) = (text_column.get_untracked(), label_column.get_untracked());
        if text.is_empty() || label.is_empty() || text == label {
            let columns = lab.setup.preview.get_untracked().map(|p| p.columns.join(", ")).unwrap_or_default();
            return lab.ui.error(format!(
                "dataset: {} needs a text column and a different label column (columns: {columns})",
                file.name
            ));
        }
        let source = DataSource::Upload {
            file,
            text_column: text,
            label_column: label,
            validation_fraction: fraction.get_untracked(),
            seed: lab.setup.hyper.get_untracked().seed,
        };
        actions::load_dataset(lab, source);
    };
    view! {
        <div class="upload">
            <FileInput/>
            <ColumnSelect testid="dataset-text-column" label="text column" target=text_column/>
            <ColumnSelect testid="dataset-label-column" label="label column" target=label_column/>
            <label>"validation fraction "
                <input type="number" min="0.05" max="0.5" step="0.05" prop:value=move || fraction.get().to_string()
                    on:change=move |ev| if let Some(v) = parse_f64(&event_target_value(&ev)) { fraction.set(v) }/>
            </label>
            <button data-testid="dataset-use" disabled=move || lab.setup.preview.get().is_none() on:click=use_file>"Use this file"</button>
            <Preview/>
        </div>
    }
}

/// Picks the file and asks the lead worker for its columns; a file over the page's limit is
/// refused with a pointer to the CLI.
#[component]
fn FileInput() -> impl IntoView {
    let (setup, ui) = (expect_context::<SetUp>(), expect_context::<Ui>());
    let on_file = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let Some(chosen) = input.files().and_then(|f| f.get(0)) else { return };
        let size = chosen.size() as u64;
        if size > MAX_UPLOAD_BYTES {
            input.set_value("");
            return ui.error(format!(
                "upload: {} is {}, over the {} the page reads; use a sample of it, or the CLI (`freezelab train --data FILE`) for the whole",
                chosen.name(),
                format::bytes(size),
                format::bytes(MAX_UPLOAD_BYTES)
            ));
        }
        let Some(file) = picked(&input) else { return };
        setup.preview.set(None);
        setup.upload.set(Some(file.clone()));
        actions::inspect(file);
    };
    view! { <input type="file" data-testid="dataset-upload" accept=".csv,.tsv,.tab,.jsonl,.ndjson" on:change=on_file/> }
}

/// One of the preview's columns, kept in `target`.
#[component]
fn ColumnSelect(testid: &'static str, label: &'static str, target: RwSignal<String>) -> impl IntoView {
    let setup = expect_context::<SetUp>();
    view! {
        <label>{label}" "
            <select data-testid=testid on:change=move |ev| target.set(event_target_value(&ev))>
                {move || setup.preview.get().map(|p| p.columns).unwrap_or_default().into_iter().map(|c| {
                    let selected = target.get() == c;
                    view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                }).collect_view()}
            </select>
        </label>
    }
}

/// The first rows of the uploaded file, as text.
#[component]
fn Preview() -> impl IntoView {
    let setup = expect_context::<SetUp>();
    move || {
        setup.preview.get().map(|p| {
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
