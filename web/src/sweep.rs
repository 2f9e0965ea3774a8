//! Sweep mode: one button trains every plan of `FreezePlan::sweep_modes` (the freeze depths,
//! BitFit, LoRA, LLRD) with the same settings, each mode at its suggested learning rate, one after the
//! other, and plots validation accuracy against what each plan costs (trainable parameters,
//! measured peak memory, wall time), the Pareto front of each plot highlighted, a marker per
//! mode. Stop cancels the rest; finished points stay.

use freezelab_charts::sweep::{self, Axis, AXES};
use freezelab_charts::Point;
use freezelab_protocol::freeze::{FreezePlan, Mode};
use freezelab_protocol::messages::Origin;
use leptos::prelude::*;

use crate::charts::{baselines, downloads};
use crate::state::{Lab, RunStatus, RunView};
use crate::{actions, format, painter};

/// Queues the whole sweep; returns nothing when no model or data is loaded (the page says so).
pub fn start(lab: Lab) {
    let Some(model) = lab.setup.model.get_untracked() else {
        return lab.ui.error("load a model and a dataset first".into());
    };
    let first = lab.results.next_run.get_untracked();
    for plan in FreezePlan::sweep_modes(model.num_layers()) {
        // A plan the device cannot hold is reported and skipped; the cheaper ones still run.
        actions::queue(lab, Origin::Sweep, plan, Some(first));
    }
    lab.results.sweep.set(Some(first));
}

fn runs_of(lab: Lab) -> Vec<RunView> {
    let Some(sweep) = lab.results.sweep.get() else { return Vec::new() };
    lab.results.runs.filter(|r| r.sweep == Some(sweep))
}

/// The finished runs' points on `axis` and which are on its Pareto front.
pub fn points(runs: &[RunView], axis: &Axis) -> (Vec<Point>, Vec<bool>) {
    sweep::points(runs.iter().filter(|r| r.status == RunStatus::Done).filter_map(|r| r.summary.as_ref()), axis)
}

#[component]
pub fn Sweep() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let not_ready = move || lab.setup.model.get().is_none() || lab.setup.dataset.get().is_none() || lab.results.busy();
    let plans = move || {
        lab.setup.model.get().map(|m| {
            FreezePlan::sweep_modes(m.num_layers()).iter().map(FreezePlan::label).collect::<Vec<_>>().join(" → ")
        })
    };
    // The runs change on every step of any run; the sweep's runs and points are memos, so the
    // plots redraw only when the sweep itself moves.
    let runs = Memo::new(move |_| runs_of(lab));
    let plotted = AXES.each_ref().map(|axis| Memo::new(move |_| runs.with(|r| points(r, axis))));
    let floor = Memo::new(move |_| runs.with(|r| baselines(r)));
    let progress = move || {
        runs.with(|runs| {
            let done = runs.iter().filter(|r| r.finished()).count();
            (!runs.is_empty()).then(|| format!("{done} of {} configurations finished", runs.len()))
        })
    };
    let chart = move |i: usize| {
        let (axis, plotted) = (&AXES[i], plotted[i]);
        let svg = painter::drawn(move || axis.chart(plotted.get(), floor.get()));
        let points = move || plotted.with(|(pts, _)| pts.len().to_string());
        let on_front = move || plotted.with(|(_, front)| front.iter().filter(|&&f| f).count().to_string());
        view! {
            <figure>
                <div class="chart" data-testid=format!("sweep-chart-{}", axis.id)
                    data-points=points data-front=on_front inner_html=svg></div>
                {downloads(&format!("freezelab-sweep-{}", axis.id), &format!("download-sweep-{}", axis.id), svg)}
            </figure>
        }
    };
    let rows = move || {
        let fronts = plotted.map(|p| p.get());
        runs.get()
            .into_iter()
            .map(|run| {
                let label = run.config.freeze.label();
                let on_front: Vec<&str> = AXES
                    .iter()
                    .zip(&fronts)
                    .filter(|(_, (pts, front))| pts.iter().zip(front).any(|(p, &f)| f && p.label == label))
                    .map(|(a, _)| a.id)
                    .collect();
                let s = run.summary.clone();
                let status = match &run.status {
                    RunStatus::Done => "done".to_string(),
                    RunStatus::Stopped => "stopped".to_string(),
                    RunStatus::Failed { message, .. } => format!("failed: {message}"),
                    RunStatus::Queued => "waiting".to_string(),
                    RunStatus::Running => format!("step {} of {}", run.step, run.total_steps),
                };
                view! {
                    <tr>
                        <td>{label}</td>
                        <td>{format!("{}", run.config.lr)}</td>
                        <td>{s.as_ref().map(|s| format::count(s.trainable_params))}</td>
                        <td>{s.as_ref().and_then(|s| s.memory.measured_peak_bytes).map(format::bytes)}</td>
                        <td>{s.as_ref().map(|s| format::seconds(s.wall_seconds))}</td>
                        <td>{s.as_ref().map(|s| format!("{:.4}", s.val_accuracy))}</td>
                        <td class="warning">{run.below_baseline()}</td>
                        <td>{on_front.join(", ")}</td>
                        <td>{status}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <section class="sweep" aria-label="freeze sweep">
            <h2>"Freeze sweep"</h2>
            <p>
                <button data-testid="sweep-run" disabled=not_ready on:click=move |_| start(lab)>"Run sweep"</button>
                " "<span class="hint">{move || plans().map(|p| format!("{p}, with the settings above (BitFit at lr ≥ {}, LoRA at lr ≥ {}); ● freeze depths, ▲ BitFit, ▬ LoRA, ■ LLRD. Stop cancels the rest.", Mode::BITFIT_LR, Mode::LORA_LR))}</span>
            </p>
            <p class="status" aria-live="polite" data-testid="sweep-status">{progress}</p>
            <Show when=move || lab.results.sweep.get().is_some()>
                <div class="charts sweep-charts">{chart(0)}{chart(1)}{chart(2)}</div>
                <table data-testid="sweep-table">
                    <thead><tr>
                        <th>"plan"</th><th>"encoder lr"</th><th>"trainable"</th><th>"peak"</th><th>"time"</th><th>"accuracy"</th>
                        <th>"against the majority class"</th><th>"on the Pareto front of"</th><th>"status"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </Show>
        </section>
    }
}
