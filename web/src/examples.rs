//! The examples themselves: the validation set on a 2-D map (the first two principal components
//! of a model's pooled final features) for the pretrained model and for A's and B's runs, with
//! each run's misses ringed; and the examples one run got right and the other wrong.
//! Texts are shown as text (Leptos escapes them), never as HTML.

use freezelab_protocol::messages::Column;
use freezelab_protocol::readout::{disagreements, Disagreement, ExampleMap, DISAGREEMENTS_PER_KIND};
use leptos::prelude::*;

use crate::state::Lab;

/// The pinned run's map of `column`, once it has one.
fn run_map(lab: Lab, column: Column) -> Memo<Option<ExampleMap>> {
    Memo::new(move |_| lab.pinned_run(column).and_then(|r| r.summary?.examples))
}

/// Where A and B disagree, from the pinned runs' maps (`None` until both have one).
pub fn current_disagreements(lab: Lab) -> Option<Vec<Disagreement>> {
    let [a, b] = Column::BOTH.map(|c| lab.pinned_run(c).and_then(|r| r.summary?.examples));
    Some(disagreements(&a?, &b?, DISAGREEMENTS_PER_KIND))
}

fn label_name(lab: Lab, label: usize) -> String {
    lab.setup
        .dataset
        .with_untracked(|d| d.as_ref().and_then(|d| d.labels.get(label).cloned()))
        .unwrap_or(label.to_string())
}

/// One map as SVG: points coloured by label, a run's misses ringed, `extent` the largest |x|, |y|
/// drawn (maps that share it compare).
fn map_svg(lab: Lab, map: &ExampleMap, extent: f32, testid: String, title: String) -> impl IntoView {
    let scale = if extent > 0.0 { 0.92 / extent } else { 1.0 };
    let points = map
        .points
        .iter()
        .map(|p| {
            let class = format!("point label-{}{}", p.label % 6, if p.missed() { " miss" } else { "" });
            let answer = match (p.predicted, p.probability) {
                (Some(k), Some(prob)) => format!(" · answered {} ({:.0}%)", label_name(lab, k), 100.0 * prob),
                _ => String::new(),
            };
            let tip = format!("{}{answer}: {}", label_name(lab, p.label), p.text);
            view! {
                <circle class=class cx=format!("{:.4}", p.x * scale) cy=format!("{:.4}", -p.y * scale) r="0.03"
                    data-label=p.label.to_string() data-missed=p.missed().to_string()><title>{tip}</title></circle>
            }
        })
        .collect_view();
    view! {
        <figure class="map">
            <svg data-testid=testid viewBox="-1 -1 2 2" role="img" aria-label=title.clone()>
                <line class="axis" x1="-1" y1="0" x2="1" y2="0"/><line class="axis" x1="0" y1="-1" x2="0" y2="1"/>
                {points}
            </svg>
            <figcaption>{title}</figcaption>
        </figure>
    }
}

#[component]
pub fn ExampleMaps() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let pretrained = Memo::new(move |_| lab.probe.result.with(|r| r.as_ref().map(|(_, map)| map.clone())));
    let maps = Column::BOTH.map(|c| run_map(lab, c));
    let any = move || pretrained.get().is_some() || maps.iter().any(|m| m.get().is_some());
    let drawn = move || {
        let pretrained = pretrained.get().map(|m| {
            let extent = m.extent();
            map_svg(lab, &m, extent, "map-pretrained".into(), "pretrained (from the probe)".into())
        });
        let runs = maps.map(|m| m.get());
        // A and B on the same axes' scale, so their spreads compare.
        let extent = runs.iter().flatten().map(ExampleMap::extent).fold(0.0f32, f32::max);
        let columns = Column::BOTH
            .iter()
            .zip(runs)
            .filter_map(|(c, m)| {
                let m = m?;
                let misses = m.points.iter().filter(|p| p.missed()).count();
                let title = format!("after run {} ({misses} of {} missed, ringed)", c.name(), m.points.len());
                Some(map_svg(lab, &m, extent, format!("map-{}", c.name()), title))
            })
            .collect_view();
        view! { {pretrained} {columns} }
    };
    move || {
        any().then(|| {
            view! {
                <section class="example-maps" aria-labelledby="maps-title">
                    <h2 id="maps-title">"Map of the examples"</h2>
                    <p class="muted">"Each validation example at its model's pooled final features, projected on their first \
                        two principal components; colour is the true label. Hover a point for its text."</p>
                    <div class="maps">{drawn}</div>
                    <Disagreements/>
                </section>
            }
        })
    }
}

#[component]
fn Disagreements() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let found = Memo::new(move |_| current_disagreements(lab));
    move || {
        found.get().map(|found| {
            let answer = move |(k, p): (usize, f32)| format!("{} ({:.0}%)", label_name(lab, k), 100.0 * p);
            let rows = found
                .iter()
                .map(|d| {
                    let kind = if d.a_right() { "A-right" } else { "B-right" };
                    view! {
                        <tr data-kind=kind data-example=d.example.to_string()>
                            <td class="text" title=d.text.clone()>{d.text.clone()}</td>
                            <td>{label_name(lab, d.label)}</td>
                            <td class:right=d.a_right()>{answer(d.a)}</td>
                            <td class:right=!d.a_right()>{answer(d.b)}</td>
                        </tr>
                    }
                })
                .collect_view();
            let note = if found.is_empty() {
                "A and B give the same verdict on every validation example (or were scored on different ones)."
            } else {
                "Validation examples one run got right and the other wrong, a few of each kind, in validation order."
            };
            view! {
                <h3>"Where A and B disagree"</h3>
                <p class="muted">{note}</p>
                <table class="disagree" data-testid="disagree-table">
                    <thead><tr><th>"text"</th><th>"label"</th><th>"A answered"</th><th>"B answered"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            }
        })
    }
}
