//! "What each layer knows": a linear probe on each block's output of the pretrained model,
//! computed in the lead worker on request (progress shown, cancellable), drawn as one bar per
//! block beside the majority class and the pinned runs' fine-tuned accuracy. Each column's
//! freeze stack shows the same figures ([`block_probe`], [`freeze_line_note`]).

use freezelab_protocol::freeze::FreezePlan;
use freezelab_protocol::messages::Column;
use freezelab_protocol::readout::ProbeReport;
use leptos::prelude::*;

use crate::actions::{cancel_probe, probe};
use crate::state::Lab;

/// The probed report alone: progress does not reach its readers.
fn report(lab: Lab) -> Memo<Option<ProbeReport>> {
    Memo::new(move |_| lab.probe.result.with(|r| r.as_ref().map(|(report, _)| report.clone())))
}

fn block_name(block: &str) -> String {
    match block.strip_prefix("layer-") {
        Some(i) => format!("layer {i}"),
        None => "embeddings".into(),
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

#[component]
pub fn LayerProbe() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let report = report(lab);
    let not_ready = move || lab.setup.model.get().is_none() || lab.setup.dataset.get().is_none();
    let running = move || lab.probe.running.get();
    let progress = move || {
        running().map(|(_, done, total)| {
            if total == 0 {
                "starting…".to_string()
            } else {
                format!("{done} of {total} examples through the model")
            }
        })
    };
    // The fine-tuned accuracy of each pinned run, for comparison.
    let runs = move || {
        Column::BOTH
            .iter()
            .filter_map(|&c| {
                let run = lab.pinned_run(c)?;
                Some((c, run.config.freeze.label(), run.summary?.val_accuracy))
            })
            .collect::<Vec<_>>()
    };
    let chart = move || {
        report.get().map(|r| {
            let majority = r.majority_class;
            let bar = move |testid: String, name: String, accuracy: f64, kind: &'static str| {
                view! {
                    <div class=format!("probe-row {kind}") data-testid=testid>
                        <span class="name">{name}</span>
                        <span class="bar">
                            <span class="fill" style=format!("width:{:.1}%", 100.0 * accuracy)></span>
                            <span class="majority" style=format!("left:{:.1}%", 100.0 * majority) title="majority class"></span>
                        </span>
                        <span class="value">{percent(accuracy)}</span>
                    </div>
                }
            };
            let fine_tuned = runs()
                .into_iter()
                .map(|(c, label, accuracy)| {
                    let row = bar(format!("probe-fine-tuned-{}", c.name()), format!("run {} ({label})", c.name()), accuracy, "run");
                    view! { <div data-column=c.name() data-accuracy=accuracy.to_string()>{row}</div> }
                })
                .collect_view();
            let blocks = r
                .rows
                .iter()
                .rev()
                .map(|row| {
                    let inner = bar(format!("probe-{}", row.block), block_name(&row.block), row.accuracy, "block");
                    view! { <div data-block=row.block.clone() data-accuracy=row.accuracy.to_string()>{inner}</div> }
                })
                .collect_view();
            view! {
                <figure class="probe-chart" data-testid="probe-chart" data-majority=majority.to_string()>
                    {fine_tuned}
                    {blocks}
                    <figcaption>
                        {format!(
                            "A logistic regression per block (L2, C = {}) on the pretrained model's mean-pooled output, \
                             fitted on {} training examples and scored on {} validation examples. The mark in each bar: \
                             always answering the most common class ({}).",
                            r.c, r.train_examples, r.validation_examples, percent(majority)
                        )}
                    </figcaption>
                </figure>
            }
        })
    };
    view! {
        <section class="layer-probe" aria-labelledby="probe-title">
            <h2 id="probe-title">"What each layer knows"</h2>
            <p class="muted">"Before training: how well a linear classifier does on each block's output alone. \
                A head on a frozen encoder can do about as well as the block below the freeze line."</p>
            <p>
                <button data-testid="probe-run" disabled=move || not_ready() || running().is_some()
                    on:click=move |_| probe(lab)>"Probe each layer"</button>
                " "
                <button data-testid="probe-cancel" disabled=move || running().is_none()
                    on:click=move |_| cancel_probe(lab)>"Cancel"</button>
                " "
                <span class="muted" data-testid="probe-progress" aria-live="polite">{progress}</span>
            </p>
            {chart}
        </section>
    }
}

/// The probe's accuracy on block `block` (`emb`, `layer-i`), shown on its row of a freeze stack.
pub fn block_probe(lab: Lab, block: String) -> impl IntoView {
    let report = report(lab);
    move || {
        report.get().and_then(|r| r.accuracy(&block)).map(|accuracy| {
            view! {
                <span class="badge probe" data-probe=accuracy.to_string()
                    title="a linear probe on this block's output, before training">{format!("probe {}", percent(accuracy))}</span>
            }
        })
    }
}

/// Under a column's stack: what a head on the frozen part could reach, by the probe of the
/// block just below the freeze line.
pub fn freeze_line_note(lab: Lab, plan: RwSignal<FreezePlan>, column: Column) -> impl IntoView {
    let report = report(lab);
    move || {
        let line = plan.with(|p| p.freeze_line())?;
        let block = if line == 0 { "emb".to_string() } else { format!("layer-{}", line - 1) };
        let r = report.get()?;
        let accuracy = r.accuracy(&block)?;
        Some(view! {
            <p class="muted" data-testid=format!("probe-line-{}", column.name()) data-accuracy=accuracy.to_string()>
                {format!(
                    "Frozen up to the {}: a linear probe on its output scores {} (most common class {}).",
                    block_name(&block),
                    percent(accuracy),
                    percent(r.majority_class)
                )}
            </p>
        })
    }
}
