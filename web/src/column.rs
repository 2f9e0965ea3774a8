//! One comparison column: the layer stack with its freeze boxes and presets, the computed memory
//! of the plan (redrawn on every tick, before any training), and the pinned run's results.

use freezelab_protocol::freeze::{FreezePlan, Mode, Preset};
use freezelab_protocol::memory::{self, ComputedMemory};
use freezelab_protocol::messages::{BackendChoice, Column, ModelInfo};
use leptos::prelude::*;

use crate::layers::{block_probe, freeze_line_note};
use crate::memory_bar::MemoryBar;
use crate::mode::ModePicker;
use crate::state::{Lab, RunStatus, RunView};
use crate::{export, format};

/// Computed memory of `plan` at the page's settings, the prefix cache included.
pub fn planned(lab: Lab, model: &ModelInfo, plan: &FreezePlan) -> ComputedMemory {
    lab.setup.hyper.get().planned(model, lab.setup.dataset.get().as_ref(), plan)
}

/// The larger of the two columns' computed totals: both bars use it as their full width.
pub fn shared_scale(lab: Lab) -> u64 {
    let Some(model) = lab.setup.model.get() else { return 1 };
    Column::BOTH.iter().map(|&c| planned(lab, &model, &lab.columns.plan(c).get()).total()).max().unwrap_or(1)
}

#[component]
pub fn RunColumn(column: Column) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let plan = lab.columns.plan(column);
    let name = column.name();
    let computed =
        Signal::derive(move || lab.setup.model.get().map(|m| planned(lab, &m, &plan.get())).unwrap_or_default());
    let scale = Signal::derive(move || shared_scale(lab));
    let trainable = move || {
        let peak = lab.setup.hyper.with(|h| h.peak(&plan.get(), lab.setup.dataset.get().as_ref()));
        lab.setup.model.with(|m| m.as_ref().map_or(0, |m| memory::trainable_params(&m.params, &peak)))
    };
    view! {
        <section class="column" aria-labelledby=format!("col-{name}")>
            <h2 id=format!("col-{name}")>{format!("Run {name}")}" "<small>{move || plan.get().label()}</small></h2>
            <div class="presets" role="group" aria-label=format!("presets for run {name}")>
                {Preset::ALL.into_iter().map(|preset| view! {
                    <button
                        data-testid=format!("preset-{name}-{}", preset.id())
                        on:click=move |_| {
                            let (n, mode) = plan.with_untracked(|p| (p.num_layers(), p.mode));
                            plan.set(preset.plan(n).with_mode(mode));
                        }
                    >{preset.title()}</button>
                }).collect_view()}
            </div>
            <ModePicker column=column/>
            <LayerStack column=column/>
            {freeze_line_note(lab, plan, column)}
            <div class="memory">
                <h3>"Computed memory per step"</h3>
                <p>
                    <strong data-testid=format!("memory-computed-{name}") data-bytes=move || computed.get().total().to_string()>
                        {move || format::bytes(computed.get().total())}
                    </strong>
                    " · trainable parameters "
                    <strong data-testid=format!("trainable-{name}")>{trainable}</strong>
                </p>
                <MemoryBar memory=computed scale=scale/>
                {move || cache_note(lab, computed.get())}
            </div>
            <RunPanel column=column/>
            <DriftMap column=column/>
        </section>
    }
}

/// Says so when the prefix cache is what makes a frozen plan heavier than training everything.
fn cache_note(lab: Lab, plan: ComputedMemory) -> Option<impl IntoView> {
    let model = lab.setup.model.get()?;
    let all = planned(lab, &model, &FreezePlan::none(model.num_layers())).total();
    (plan.cache > 0 && plan.total() > all).then(|| {
        view! {
            <p class="note" data-testid="cache-heavier">
                {format!(
                    "the prefix cache ({}) makes this plan heavier than training everything ({}); it saves time, not memory",
                    format::bytes(plan.cache),
                    format::bytes(all)
                )}
            </p>
        }
    })
}

/// Head on top, then layers N-1 … 0, then the embeddings, each with its freeze box.
#[component]
fn LayerStack(column: Column) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let plan = lab.columns.plan(column);
    let name = column.name();
    let cached = move |in_prefix: bool| {
        let hyper = lab.setup.hyper.get();
        hyper.cache && in_prefix
    };
    let rows = move || {
        let Some(model) = lab.setup.model.get() else {
            return view! { <li class="muted">"load a model to see its layers"</li> }.into_any();
        };
        let n = model.num_layers();
        let line = plan.get().cache_line();
        let steps = lab.setup.hyper.with(|h| h.steps(lab.setup.dataset.get().as_ref()));
        let layer_rows = (0..n).rev().map(|i| {
            let params = model.params.layers[i];
            let in_prefix = line.is_some_and(|k| i < k);
            let id = format!("freeze-{name}-layer-{i}");
            view! {
                <li class="layer">
                    <input type="checkbox" id=id.clone() data-testid=id.clone()
                        prop:checked=move || plan.with(|p| p.layers.get(i).copied().unwrap_or(false))
                        on:change=move |ev| {
                            let frozen = event_target_checked(&ev);
                            plan.update(|p| if let Some(f) = p.layers.get_mut(i) { *f = frozen });
                        }/>
                    <label for=id>{format!("layer {i}")}</label>
                    <span class="params">{format::count(params)}</span>
                    {block_probe(lab, format!("layer-{i}"))}
                    {mode_note(&model, &plan.get(), Some(i), steps)}
                    {cached(in_prefix).then(|| view! { <span class="badge" title="served from the frozen-prefix cache after the first epoch">"cached"</span> })}
                </li>
            }
        }).collect_view();
        let emb_id = format!("freeze-{name}-emb");
        let emb_cached = line.is_some();
        let emb_note = (lab.setup.hyper.get().cache && plan.get().freeze_line() == Some(0)).then(|| view! {
            <span class="badge muted" data-testid=format!("cache-skipped-{name}")
                title="frozen embeddings alone are a table lookup: caching their output would cost 4 bytes × hidden size per token and save almost nothing">
                "not cached"
            </span>
        });
        view! {
            <li class="layer head">
                <input type="checkbox" disabled=true prop:checked=false aria-label="the head always trains"/>
                <span class="label">"classifier head (always trained)"</span>
                <span class="params">{format::count(model.params.head)}</span>
            </li>
            {layer_rows}
            <li class="layer">
                <input type="checkbox" id=emb_id.clone() data-testid=emb_id.clone()
                    prop:checked=move || plan.with(|p| p.embeddings)
                    on:change=move |ev| {
                        let frozen = event_target_checked(&ev);
                        plan.update(|p| p.embeddings = frozen);
                    }/>
                <label for=emb_id>"embeddings"</label>
                <span class="params">{format::count(model.params.embeddings)}</span>
                {block_probe(lab, "emb".into())}
                {mode_note(&model, &plan.get(), None, steps)}
                {cached(emb_cached).then(|| view! { <span class="badge" title="served from the frozen-prefix cache after the first epoch">"cached"</span> })}
                {emb_note}
            </li>
        }
        .into_any()
    };
    view! { <ol class="stack" aria-label=format!("layers of run {name}; tick to freeze")>{rows}</ol> }
}

/// What the mode does to an unfrozen block (the embeddings, `None`, or layer `i`): the bias
/// values BitFit trains, LoRA's update, LLRD's factor on the learning rate, when gradual
/// unfreezing opens it (within the run's `steps` or not).
fn mode_note(model: &ModelInfo, plan: &FreezePlan, layer: Option<usize>, steps: usize) -> Option<impl IntoView> {
    let frozen = layer.map_or(plan.embeddings, |i| plan.layers[i]);
    let note = match plan.mode {
        _ if frozen => return None,
        Mode::Freeze => return None,
        Mode::Lora { .. } if layer.is_none() => "fixed under LoRA".to_string(),
        Mode::Lora { rank, .. } => {
            format!("rank-{rank} updates {}", format::count(model.params.trainable_in(plan, layer)))
        }
        Mode::Bitfit => format!("biases {}", format::count(model.params.trainable_in(plan, layer))),
        Mode::Llrd { .. } => format!("lr ×{:.2}", plan.lr_scale(layer)),
        Mode::Gradual { .. } => match plan.opens_at(layer)? {
            at if at < steps => format!("opens at step {at}"),
            at => format!("opens at step {at}, after this budget"),
        },
    };
    Some(view! { <span class="badge mode-note">{note}</span> })
}

/// The pinned run: progress, then results.
#[component]
fn RunPanel(column: Column) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let name = column.name();
    let run = move || lab.pinned_run(column);
    view! {
        <div class="run">
            <progress data-testid=format!("progress-{name}") max="1"
                value=move || run().map_or(0.0, |r| r.fraction()).to_string()></progress>
            <p class="status" aria-live="polite">{move || run().map(|r| status_line(&r)).unwrap_or_else(|| "not trained yet".into())}</p>
            {move || run().and_then(|r| match r.status {
                RunStatus::Failed { retry_on_cpu: true, .. } => Some(view! {
                    <button data-testid=format!("retry-cpu-{name}") on:click=move |_| {
                        crate::actions::choose_backend(lab, BackendChoice::Cpu);
                        crate::actions::train(lab, column);
                    }>"Retry on CPU"</button>
                }.into_any()),
                RunStatus::Done => Some(export::model_button(r.id, r.model_bytes, format!("download-model-{name}")).into_any()),
                _ => None,
            })}
            {move || run().filter(|r| r.workers > 1 && r.trainable > 0).map(|r| {
                // The first replica's time in the exchange, once the run has finished.
                let waited = r.summary.as_ref().and_then(|s| s.exchange_seconds.map(|x| (x, s.train_seconds)));
                view! {
                    <p class="muted" data-testid=format!("exchange-{name}")
                        data-value=waited.map(|(x, _)| format!("{x:.3}")).unwrap_or_default()>
                        {format!("on {} workers, each a share of every batch: each sends its gradients (at most {}) every step and gets their sum back; only trainable parameters travel, and of the word embeddings only the rows the batch uses",
                            r.workers, format::bytes(4 * r.trainable as u64))}
                        {waited.map(|(x, train)| format!(" (the exchange, waiting for the other workers included: {x:.1} s of {train:.1} s of training)"))}
                    </p>
                }
            })}
            {move || run().and_then(|r| r.below_baseline()).map(|warning| view! {
                <p class="warning" role="status" data-testid=format!("below-baseline-{name}")>{warning}</p>
            })}
            <dl class="results">
                <dt>"majority-class baseline"</dt>
                <dd data-testid=format!("baseline-{name}")>{move || run().and_then(|r| r.baseline).map(|b| format!("{:.4} (always ‘{}’)", b.accuracy, b.label)).unwrap_or_default()}</dd>
                <dt>"validation accuracy"</dt>
                <dd data-testid=format!("accuracy-{name}") data-val-loss=move || run().and_then(|r| r.summary).map(|s| s.val_loss.to_string()).unwrap_or_default()>{move || run().and_then(|r| r.summary).map(|s| format!("{:.4}", s.val_accuracy)).unwrap_or_default()}</dd>
                <dt>{move || match run().map_or(1, |r| r.workers) {
                    1 => "measured peak".to_string(),
                    n => format!("measured peak (each of {n} workers)"),
                }}</dt>
                <dd data-testid=format!("memory-measured-{name}")
                    data-bytes=move || run().and_then(|r| r.summary).and_then(|s| s.memory.measured_peak_bytes).map(|b| b.to_string()).unwrap_or_default()>
                    {move || run().and_then(|r| r.summary).and_then(|s| s.memory.measured_peak_bytes).map(format::bytes).unwrap_or_default()}
                </dd>
                <dt>"examples/s"</dt>
                <dd data-testid=format!("speed-{name}") data-value=move || run().filter(|r| r.step > 0).map(|r| r.examples_per_second.to_string()).unwrap_or_default()>
                    {move || run().filter(|r| r.step > 0).map(|r| format!("{:.1}", r.examples_per_second)).unwrap_or_default()}
                </dd>
                <dt>"wall time"</dt>
                <dd data-testid=format!("wall-{name}") data-value=move || run().filter(|r| r.step > 0).map(|r| r.elapsed.to_string()).unwrap_or_default()>
                    {move || run().filter(|r| r.step > 0).map(|r| format::seconds(r.elapsed)).unwrap_or_default()}
                </dd>
            </dl>
        </div>
    }
}

/// The largest drift of any encoder block (embeddings, layers) of the two pinned runs: both
/// heatmaps colour on this one scale. The head is new, so it moves by its whole size; it is
/// shown but does not set the scale.
fn drift_scale(lab: Lab) -> f64 {
    Column::BOTH
        .iter()
        .filter_map(|&c| lab.pinned_run(c)?.summary)
        .flat_map(|s| s.drift)
        .filter(|d| d.block != "head")
        .map(|d| d.relative_change)
        .fold(0.0, f64::max)
}

/// How far the pinned run moved each block from where it started, as a row of cells (embeddings
/// … head), on the scale both columns share, with a sentence that says what it means.
#[component]
fn DriftMap(column: Column) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let name = column.name();
    // Memos: a step of the other column's run changes neither, so the map is not redrawn for it.
    let drift =
        Memo::new(move |_| lab.pinned_run(column).and_then(|r| r.summary).map(|s| s.drift).filter(|d| !d.is_empty()));
    let scale = Memo::new(move |_| drift_scale(lab));
    move || {
        drift.get().map(|blocks| {
            let scale = scale.get().max(f64::MIN_POSITIVE);
            let cells = blocks
                .iter()
                .map(|d| {
                    // At most half-opaque, so the numbers stay readable on the darkest cell.
                    let shade = 0.5 * (d.relative_change / scale).min(1.0);
                    let parts: Vec<String> =
                        d.parts.iter().map(|(p, v)| format!("{p} {:.3}%", 100.0 * v)).collect();
                    let title = if parts.is_empty() { d.block.clone() } else { format!("{}: {}", d.block, parts.join(", ")) };
                    view! {
                        <span class="drift-cell" data-block=d.block.clone() data-drift=d.relative_change.to_string() title=title
                            style=format!("background: rgba(214, 39, 40, {shade:.3})")>
                            <small>{d.block.clone()}</small>
                            {format!("{:.2}%", 100.0 * d.relative_change)}
                            {d.cka.map(|c| view! { <small data-cka=c.to_string()>{format!("CKA {c:.3}")}</small> })}
                        </span>
                    }
                })
                .collect_view();
            view! {
                <div class="drift">
                    <h3>"How far training moved each block"</h3>
                    <div class="drift-map" data-testid=format!("drift-{name}") role="img"
                        aria-label=format!("relative weight change per block of run {name}")>{cells}</div>
                    <p class="hint">{drift_sentence(&blocks)}</p>
                </div>
            }
        })
    }
}

/// "Training moved the embeddings by 0.05%, layer 0 by 0.3% … (frozen: 0)": the numbers that
/// answer "does fine-tuning wreck the pretrained weights?".
fn drift_sentence(blocks: &[freezelab_protocol::run::BlockDrift]) -> String {
    let moved: Vec<String> = blocks
        .iter()
        .filter(|d| d.block != "head")
        .map(|d| {
            let block = if d.block == "emb" { "the embeddings".to_string() } else { d.block.replace('-', " ") };
            match d.relative_change {
                0.0 => format!("{block} not at all (frozen)"),
                v => format!("{block} by {:.2}%", 100.0 * v),
            }
        })
        .collect();
    format!(
        "‖after − before‖ / ‖before‖: training moved {}. The new head started from random weights, so it moves by about its own size. CKA compares each block's output before and after on {} validation examples: 1 is unchanged.",
        moved.join(", "),
        freezelab_protocol::run::DRIFT_PROBE_EXAMPLES
    )
}

fn status_line(run: &RunView) -> String {
    match &run.status {
        RunStatus::Queued => format!("run #{} waiting for a free worker", run.id),
        RunStatus::Running => {
            let eta = run.eta().map(|s| format!(", about {} left", format::seconds(s))).unwrap_or_default();
            format!("run #{}: step {} of {}{eta}", run.id, run.step, run.total_steps)
        }
        RunStatus::Done => format!("run #{} finished in {}", run.id, format::seconds(run.elapsed)),
        RunStatus::Stopped => format!("run #{} stopped at step {}", run.id, run.step),
        RunStatus::Failed { message, .. } => format!("run #{} failed: {message}", run.id),
    }
}
