//! "Try it": one text through the model of the run shown in each column.

use freezelab_protocol::messages::Column;
use leptos::prelude::*;

use crate::state::Lab;

#[component]
pub fn TryIt() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let text = RwSignal::new(String::new());
    let ask = move || {
        let t = text.get_untracked();
        if !t.trim().is_empty() {
            crate::actions::predict(lab, t);
        }
    };
    let output = move |column: Column| {
        move || {
            let asked = lab.results.predictions.get()?;
            if let Some((_, run_id)) = asked.gone.iter().find(|(c, _)| *c == column) {
                return Some(format!(
                    "run #{run_id}: its model is no longer in memory (each column keeps its latest run until the \
                     page reloads or the model or backend changes): train it again to try it"
                ));
            }
            let p = asked.answers.into_iter().find(|p| p.column == column)?;
            let mut ranked: Vec<(String, f32)> = p.labels.into_iter().zip(p.probabilities).collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let line = ranked.iter().map(|(l, p)| format!("{l} {:.1}%", 100.0 * p)).collect::<Vec<_>>().join(" · ");
            Some(format!("run #{}: {line} — “{}”", p.run_id, asked.text.chars().take(60).collect::<String>()))
        }
    };
    // The exact numbers, for whoever compares them with `freezelab predict`.
    let exact = move |column: Column| {
        move || {
            let asked = lab.results.predictions.get()?;
            let p = asked.answers.into_iter().find(|p| p.column == column)?;
            let pairs: std::collections::BTreeMap<String, f32> = p.labels.into_iter().zip(p.probabilities).collect();
            crate::json::compact(&pairs).ok()
        }
    };
    view! {
        <section class="try" aria-label="try it">
            <h2>"Try it"</h2>
            <form on:submit=move |ev| { ev.prevent_default(); ask(); }>
                <label for="try-input">"A text to classify with each trained run"</label>
                <textarea id="try-input" data-testid="try-input" rows="2"
                    on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                <button type="submit" data-testid="try-submit">"Classify"</button>
            </form>
            <p><strong>"A: "</strong><span data-testid="try-output-A" data-probabilities=exact(Column::A)>{output(Column::A)}</span></p>
            <p><strong>"B: "</strong><span data-testid="try-output-B" data-probabilities=exact(Column::B)>{output(Column::B)}</span></p>
        </section>
    }
}
