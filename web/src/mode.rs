//! How a column's unfrozen blocks train: the mode (the freeze boxes alone, BitFit, LoRA, LLRD,
//! gradual unfreezing), the mode's own settings, the column's encoder learning rate (the mode's
//! suggestion until the user sets one), and a sentence saying what all that means.

use freezelab_protocol::decimal::parse_f64;
use freezelab_protocol::freeze::Mode;
use freezelab_protocol::messages::Column;
use leptos::prelude::*;

use crate::state::{Columns, SetUp, Ui};

#[component]
pub fn ModePicker(column: Column) -> impl IntoView {
    let columns = expect_context::<Columns>();
    let plan = columns.plan(column);
    let name = column.name();
    let set_mode = move |mode: Mode| {
        plan.update(|p| p.mode = mode);
        columns.lr_override.update(|o| o[column as usize] = None);
    };
    view! {
        <div class="mode" role="group" aria-label=format!("training mode of run {name}")>
            <label>"mode "
                <select data-testid=format!("mode-{name}")
                    on:change=move |ev| set_mode(Mode::from_id(&event_target_value(&ev)).unwrap_or_default())>
                    {Mode::ALL.into_iter().map(|m| view! {
                        <option value=m.id() prop:selected=move || plan.with(|p| p.mode.id() == m.id())>{m.title()}</option>
                    }).collect_view()}
                </select>
            </label>
            <ModeSettings column=column/>
            <EncoderLr column=column/>
            <ModeHint column=column/>
        </div>
    }
}

/// The mode's own settings: LoRA's rank, alpha and targets, LLRD's decay, gradual unfreezing's
/// steps between two openings; a value the mode refuses is reported and not kept.
#[component]
fn ModeSettings(column: Column) -> impl IntoView {
    let (columns, ui) = (expect_context::<Columns>(), expect_context::<Ui>());
    let plan = columns.plan(column);
    let name = column.name();
    let number = move |label: &'static str,
                       testid: &'static str,
                       value: String,
                       with: fn(Mode, &str) -> Option<Mode>| {
        let on_change = move |ev| {
            let mode = with(plan.get_untracked().mode, &event_target_value(&ev));
            match mode.ok_or_else(|| format!("{testid} must be a number")).and_then(|m| m.validate().map(|()| m)) {
                Ok(mode) => plan.update(|p| p.mode = mode),
                Err(e) => ui.error(format!("run {name}: {e}")),
            }
        };
        view! {
            <label>{label}
                <input type="number" step="any" data-testid=format!("{testid}-{name}") prop:value=value on:change=on_change/>
            </label>
        }
    };
    move || {
        match plan.get().mode {
        Mode::Llrd { decay } => Some(
            number("decay ", "llrd-decay", decay.to_string(), |_, v| Some(Mode::Llrd { decay: parse_f64(v)? }))
                .into_any(),
        ),
        Mode::Gradual { every } => Some(
            number("open a block every ", "gradual-every", every.to_string(), |_, v| {
                Some(Mode::Gradual { every: v.parse().ok()? })
            })
            .into_any(),
        ),
        Mode::Lora { rank, alpha, all_linear } => Some(
            view! {
                {number("rank ", "lora-rank", rank.to_string(), |m, v| match m {
                    Mode::Lora { alpha, all_linear, .. } => Some(Mode::Lora { rank: v.parse().ok()?, alpha, all_linear }),
                    _ => None,
                })}
                {number("alpha ", "lora-alpha", alpha.to_string(), |m, v| match m {
                    Mode::Lora { rank, all_linear, .. } => Some(Mode::Lora { rank, alpha: parse_f64(v)?, all_linear }),
                    _ => None,
                })}
                <label>
                    <input type="checkbox" data-testid=format!("lora-all-{name}") prop:checked=all_linear
                        on:change=move |ev| {
                            let all = event_target_checked(&ev);
                            plan.update(|p| if let Mode::Lora { all_linear, .. } = &mut p.mode { *all_linear = all });
                        }/>
                    " every linear (not only query and value)"
                </label>
            }
            .into_any(),
        ),
        Mode::Freeze | Mode::Bitfit => None,
    }
    }
}

/// The column's encoder learning rate, in (0, 1].
#[component]
fn EncoderLr(column: Column) -> impl IntoView {
    let (columns, setup, ui) = (expect_context::<Columns>(), expect_context::<SetUp>(), expect_context::<Ui>());
    let name = column.name();
    let lr = move || columns.lr(column, setup.hyper.with(|h| h.lr));
    let set_lr = move |ev| match parse_f64(&event_target_value(&ev)) {
        Some(v) if v.is_finite() && v > 0.0 && v <= 1.0 => columns.lr_override.update(|o| o[column as usize] = Some(v)),
        _ => ui.error(format!("run {name}: setting lr: must be a number in (0, 1]")),
    };
    view! {
        <label>"encoder lr "
            <input type="number" min="0" step="any" data-testid=format!("lr-{name}") prop:value=move || lr().to_string()
                on:change=set_lr/>
        </label>
    }
}

/// What the mode does to the unfrozen blocks, and where the encoder learning rate comes from.
#[component]
fn ModeHint(column: Column) -> impl IntoView {
    let (columns, setup) = (expect_context::<Columns>(), expect_context::<SetUp>());
    let plan = columns.plan(column);
    let name = column.name();
    let hint = move || {
        let p = plan.get();
        let page_lr = setup.hyper.with(|h| h.lr);
        let lr_note = match columns.lr_override.with(|o| o[column as usize]) {
            Some(_) => format!("encoder lr set here (the mode suggests {})", p.mode.suggested_lr(page_lr)),
            None if p.mode.suggested_lr(page_lr) != page_lr => {
                format!("encoder lr: this mode's usual {}", columns.lr(column, page_lr))
            }
            None => "encoder lr: the settings' rate".to_string(),
        };
        let what = match p.mode {
            Mode::Freeze => "unfrozen blocks train every weight".to_string(),
            Mode::Bitfit => "unfrozen blocks train only their bias terms (linear biases, LayerNorm shifts)".to_string(),
            Mode::Llrd { decay } => format!(
                "the top layer trains at the encoder lr, each block below at {decay} × the one above: layer 0 at {:.2}×, the embeddings at {:.2}×",
                p.lr_scale(Some(0)),
                p.lr_scale(None)
            ),
            Mode::Lora { rank, alpha, all_linear } => format!(
                "the pretrained weights stay fixed; in each unfrozen layer the {} learn a rank-{rank} update scaled by {alpha}/{rank}, merged into the weights on download; the embeddings do not train",
                if all_linear { "six linear projections" } else { "query and value projections" }
            ),
            Mode::Gradual { every } => format!(
                "the head trains alone at first; every {every} steps one more unfrozen block opens, from the top (this budget: {} steps); the memory and trainable parameters shown are the schedule's peak, the blocks open by its last step",
                setup.hyper.with(|h| h.steps(setup.dataset.get().as_ref()))
            ),
        };
        format!("{what}; {lr_note}.")
    };
    view! { <p class="hint" data-testid=format!("mode-hint-{name}")>{hint}</p> }
}
