//! Results as files: CSV (one row per run) and JSON (the runs' full summaries, the layers' probe,
//! the disagreements), offered as downloads made in the page.

use wasm_bindgen::JsCast;

use freezelab_protocol::messages::Column;
use freezelab_protocol::readout::{Disagreement, ExampleMap, ProbeReport};
use freezelab_protocol::run::RunSummary;
use leptos::prelude::*;

use crate::examples::current_disagreements;
use crate::state::{Lab, RunStatus, RunView};
use crate::{download, json, legacy};

pub const CSV_HEADER: [&str; 16] = [
    "run",
    "column",
    "model",
    "dataset",
    "backend",
    "freeze",
    "trainable_params",
    "val_accuracy",
    "macro_f1",
    "baseline_accuracy",
    "baseline_macro_f1",
    "examples_per_second",
    "wall_seconds",
    "computed_bytes",
    "measured_peak_bytes",
    "status",
];

/// CSV text (RFC 4180's quoting, a line feed after each row), one row per run. Written here, not
/// by the csv crate: its writer reaches core's float parser (for a quoting style this export
/// never uses), 20 kB of tables in the page; a writer's whole job is the quoting below.
pub fn csv(runs: &[RunView]) -> String {
    let mut text = String::new();
    let mut row = |fields: &mut dyn Iterator<Item = String>| {
        let quoted: Vec<String> = fields.map(|f| csv_field(&f)).collect();
        text.push_str(&quoted.join(","));
        text.push('\n');
    };
    row(&mut CSV_HEADER.iter().map(|h| h.to_string()));
    for run in runs {
        let s = run.summary.as_ref();
        let opt = |v: Option<String>| v.unwrap_or_default();
        row(&mut [
            run.id.to_string(),
            run.origin.name().to_string(),
            run.model.clone(),
            run.dataset.clone(),
            run.backend.clone(),
            run.config.freeze.label(),
            run.trainable.to_string(),
            opt(s.map(|s| s.val_accuracy.to_string())),
            opt(s.map(|s| s.macro_f1.to_string())),
            opt(s.map(|s| s.baseline.accuracy.to_string())),
            opt(s.map(|s| s.baseline.macro_f1.to_string())),
            opt(s.map(|s| s.examples_per_second.to_string())),
            opt(s.map(|s| s.wall_seconds.to_string())),
            opt(s.map(|s| s.memory.computed_total.to_string())),
            opt(s.and_then(|s| s.memory.measured_peak_bytes).map(|b| b.to_string())),
            run.status.name().to_string(),
        ]
        .into_iter());
    }
    text
}

/// A field in quotes (its quotes doubled) when it holds a separator, a quote or a line break.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Reads a results file back: the page's JSON export or the CLI's `sweep.json` (lists of run
/// summaries), or one `freezelab train --out` summary. Each run joins the history as finished,
/// marked imported.
pub fn import(lab: Lab, text: &str) -> Result<usize, String> {
    let not_ours = |e: String| format!("import: not a FreezeLab results file ({e})");
    let value = json::parse_value(text).map_err(not_ours)?;
    // The page's export holds its runs under `runs`; older exports and `sweep.json` are lists.
    let runs = js_sys::Reflect::get(&value, &"runs".into()).unwrap_or_default();
    let value = if js_sys::Array::is_array(&runs) { runs } else { value };
    let value =
        if value.is_object() && !js_sys::Array::is_array(&value) { js_sys::Array::of1(&value).into() } else { value };
    if let Some(list) = value.dyn_ref::<js_sys::Array>() {
        list.for_each(&mut |summary, _, _| legacy::upgrade_run(&summary));
    }
    let summaries: Vec<RunSummary> = json::from_value(value).map_err(not_ours)?;
    let n = summaries.len();
    for summary in summaries {
        let imported = || crate::state::IMPORTED.to_string();
        let mut run = RunView::queued(lab.results.new_run_id(), Column::A.into(), summary.config.clone()).on(
            imported(),
            imported(),
            imported(),
        );
        run.status = if summary.cancelled { RunStatus::Stopped } else { RunStatus::Done };
        (run.total_steps, run.step, run.elapsed) = (summary.steps, summary.steps, summary.wall_seconds);
        run.trainable = summary.trainable_params;
        run.planned = Some(summary.memory.computed);
        run.baseline = (!summary.baseline.label.is_empty()).then(|| summary.baseline.clone());
        run.summary = Some(summary);
        lab.results.runs.push(run);
    }
    Ok(n)
}

/// What "Export JSON" writes: the runs' summaries (each column run's with its map of the
/// examples), the layers' probe with the pretrained map, and where A and B disagree.
#[derive(serde::Serialize)]
struct Results<'a> {
    runs: Vec<&'a RunSummary>,
    probe: Option<Probed<'a>>,
    disagreements: Option<Vec<Disagreement>>,
}

#[derive(serde::Serialize)]
struct Probed<'a> {
    report: &'a ProbeReport,
    map: &'a ExampleMap,
}

pub fn json(lab: Lab, runs: &[RunView]) -> Result<String, String> {
    let probe = lab.probe.result.get_untracked();
    let results = Results {
        runs: runs.iter().filter_map(|r| r.summary.as_ref()).collect(),
        probe: probe.as_ref().map(|(report, map)| Probed { report, map }),
        disagreements: untrack(|| current_disagreements(lab)),
    };
    json::pretty(&results)
}

fn text_blob(text: &str, mime: &str) -> Result<web_sys::Blob, wasm_bindgen::JsValue> {
    let props = web_sys::BlobPropertyBag::new();
    props.set_type(mime);
    web_sys::Blob::new_with_str_sequence_and_options(&js_sys::Array::of1(&text.into()), &props)
}

/// Saves `text` as a file through a temporary link.
pub fn download(name: &str, mime: &str, text: &str) {
    let Ok(blob) = text_blob(text, mime) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    download::url(name, &url);
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Asks the worker for a run's fine-tuned model as a Hugging Face folder (zip); it arrives as
/// `FromWorker::Exported` and is saved then.
pub fn model_button(run_id: u32, bytes: Option<u64>, testid: String) -> impl IntoView {
    let label = match bytes {
        Some(b) => format!("Download model ({})", crate::format::bytes(b)),
        None => "Download model".to_string(),
    };
    view! {
        <button data-testid=testid title="config.json, model.safetensors and tokenizer.json, as a zip"
            on:click=move |_| crate::actions::export(run_id)>{label}</button>
    }
}

/// Rasterises SVG text in the browser (at twice its size, sharp on a projector) and saves it
/// as a PNG.
pub fn download_png(lab: Lab, name: String, svg: String) {
    leptos::task::spawn_local(async move {
        let drawn = async {
            let blob = text_blob(&svg, "image/svg+xml")?;
            let url = web_sys::Url::create_object_url_with_blob(&blob)?;
            let image = web_sys::HtmlImageElement::new()?;
            image.set_src(&url);
            let decoded = wasm_bindgen_futures::JsFuture::from(image.decode()).await;
            let _ = web_sys::Url::revoke_object_url(&url);
            decoded?;
            let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
            let canvas: web_sys::HtmlCanvasElement = document.create_element("canvas")?.unchecked_into();
            canvas.set_width(2 * image.natural_width());
            canvas.set_height(2 * image.natural_height());
            let context: web_sys::CanvasRenderingContext2d =
                canvas.get_context("2d")?.ok_or("no 2d canvas")?.unchecked_into();
            context.scale(2.0, 2.0)?;
            context.draw_image_with_html_image_element(&image, 0.0, 0.0)?;
            download::url(&name, &canvas.to_data_url_with_type("image/png")?);
            Ok::<(), wasm_bindgen::JsValue>(())
        }
        .await;
        if let Err(e) = drawn {
            lab.ui.error(format!("{name}: the chart could not be drawn as PNG ({e:?})"));
        }
    });
}
