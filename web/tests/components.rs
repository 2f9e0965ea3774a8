//! The page's components in a real browser (wasm-bindgen-test, headless Chromium), mounted
//! without a worker: ticking boxes and presets changes the freeze plan, the trainable count and
//! the computed memory at once. Run by `cargo xtask test`.
#![cfg(target_arch = "wasm32")]

use freezelab_protocol::freeze::{FreezePlan, Mode};
use freezelab_protocol::memory::{self, BlockParams, EncoderShape};
use freezelab_protocol::messages::{Column, ModelInfo, Origin};
use freezelab_web::column::RunColumn;
use freezelab_web::engine::{engine, Engine};
use freezelab_web::share::Shared;
use freezelab_web::state::{Lab, CACHE_LIMIT_BYTES};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{HtmlElement, HtmlInputElement};

wasm_bindgen_test_configure!(run_in_browser);

/// MiniLM-L6's shape and parameter counts.
fn minilm() -> ModelInfo {
    ModelInfo {
        name: "minilm-l6".into(),
        shape: EncoderShape { hidden_size: 384, intermediate_size: 1536, num_attention_heads: 12 },
        params: BlockParams {
            embeddings: 11_918_592,
            layers: vec![1_774_464; 6],
            head: 770,
            embedding_biases: 384,
            layer_biases: vec![4_224; 6],
            linears: [(384, 384), (384, 384), (384, 384), (384, 384), (384, 1536), (1536, 384)],
        },
        max_position_embeddings: 512,
        vocab_size: 30_522,
    }
}

/// Mounts column A in a fresh element and returns the state and the element.
fn mount_column() -> (Lab, HtmlElement) {
    let document = web_sys::window().unwrap().document().unwrap();
    let parent: HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&parent).unwrap();
    let lab = Lab::new();
    lab.setup.model.set(Some(minilm()));
    lab.columns.plan_a.set(FreezePlan::none(6));
    let handle = leptos::mount::mount_to(parent.clone(), move || {
        lab.provide();
        view! { <RunColumn column=Column::A/> }
    });
    std::mem::forget(handle);
    (lab, parent)
}

fn find(root: &HtmlElement, testid: &str) -> HtmlElement {
    root.query_selector(&format!("[data-testid='{testid}']"))
        .unwrap()
        .unwrap_or_else(|| panic!("no element {testid}"))
        .unchecked_into()
}

fn bytes(root: &HtmlElement) -> u64 {
    find(root, "memory-computed-A").get_attribute("data-bytes").unwrap().parse().unwrap()
}

fn trainable(root: &HtmlElement) -> usize {
    find(root, "trainable-A").text_content().unwrap().trim().parse().unwrap()
}

fn checked(root: &HtmlElement, testid: &str) -> bool {
    find(root, testid).unchecked_into::<HtmlInputElement>().checked()
}

#[wasm_bindgen_test]
async fn ticking_a_box_changes_the_plan_and_the_memory() {
    let (lab, root) = mount_column();
    leptos::task::tick().await;
    let model = minilm();
    assert_eq!(trainable(&root), model.params.total());
    let before = bytes(&root);

    find(&root, "freeze-A-layer-0").click();
    leptos::task::tick().await;
    assert_eq!(lab.columns.plan_a.get_untracked().layers, [true, false, false, false, false, false]);
    assert!(!lab.columns.plan_a.get_untracked().embeddings);
    assert_eq!(trainable(&root), model.params.total() - model.params.layers[0]);
    let after = bytes(&root);
    // A frozen layer drops its gradient (4 B) and AdamW moments (8 B) per parameter and, as its
    // weights take no gradient, the inputs of its projections (3 × hidden + intermediate values
    // per token) while the embeddings below still train.
    let hyper = lab.setup.hyper.get_untracked();
    let tokens = (hyper.batch_size * hyper.max_len) as u64;
    assert_eq!(before - after, 12 * model.params.layers[0] as u64 + 4 * tokens * (3 * 384 + 1536));

    find(&root, "freeze-A-emb").click();
    leptos::task::tick().await;
    let plan = lab.columns.plan_a.get_untracked();
    assert_eq!(plan.freeze_line(), Some(1));
    let hyper = lab.setup.hyper.get_untracked();
    // Above a frozen layer the prefix cache holds every example's states: counted before the run.
    assert!(hyper.cache);
    let tokens = ((hyper.train_size + hyper.eval_size) * hyper.max_len) as u64;
    let cache = memory::cache_bytes(384, tokens, CACHE_LIMIT_BYTES);
    let want = memory::computed(&model.shape, &model.params, &plan, (hyper.batch_size, hyper.max_len), cache);
    assert!(want.cache > 0);
    assert_eq!(bytes(&root), want.total());
    assert!(bytes(&root) < after, "freezing the embeddings below layer 0 also drops activations");

    // At the embeddings alone the cache would cost memory to skip a lookup: not used, and said so.
    find(&root, "freeze-A-layer-0").click();
    leptos::task::tick().await;
    let plan = lab.columns.plan_a.get_untracked();
    assert_eq!(plan.freeze_line(), Some(0));
    let want = memory::computed(&model.shape, &model.params, &plan, (hyper.batch_size, hyper.max_len), 0);
    assert_eq!(bytes(&root), want.total());
    assert_eq!(find(&root, "cache-skipped-A").text_content().unwrap().trim(), "not cached");
}

/// Sets a `<select>` or `<input>` by test id and fires `change`, as a user's pick does.
fn set_value(root: &HtmlElement, testid: &str, value: &str) {
    let el = find(root, testid);
    match el.dyn_ref::<HtmlInputElement>() {
        Some(input) => input.set_value(value),
        None => el.unchecked_ref::<web_sys::HtmlSelectElement>().set_value(value),
    }
    el.dispatch_event(&web_sys::Event::new("change").unwrap()).unwrap();
}

/// The mode picker: BitFit trains only the bias terms (the count and the memory say so before
/// any run) at its suggested rate, which the user may override; LLRD shows each block's factor.
#[wasm_bindgen_test]
async fn the_mode_picker_changes_what_trains_and_at_what_rate() {
    let (lab, root) = mount_column();
    leptos::task::tick().await;
    let model = minilm();
    let all_bytes = bytes(&root);
    set_value(&root, "mode-A", "bitfit");
    leptos::task::tick().await;
    let plan = lab.columns.plan_a.get_untracked();
    assert_eq!(plan.mode, Mode::Bitfit);
    assert_eq!(trainable(&root), 384 + 6 * 4_224 + 770);
    let hyper = lab.setup.hyper.get_untracked();
    let want = memory::computed(&model.shape, &model.params, &plan, (hyper.batch_size, hyper.max_len), 0);
    assert_eq!(bytes(&root), want.total());
    assert!(bytes(&root) < all_bytes);
    let lr = || find(&root, "lr-A").unchecked_into::<HtmlInputElement>().value();
    assert_eq!(lr(), "0.001");
    assert_eq!(lab.column_lr(Column::A), 1e-3);
    assert!(root.text_content().unwrap().contains("biases 4224"), "{}", root.text_content().unwrap());
    set_value(&root, "lr-A", "0.0005");
    leptos::task::tick().await;
    assert_eq!(lab.column_lr(Column::A), 5e-4);
    // A preset keeps the mode; a new mode drops the override.
    find(&root, "preset-A-bottom-half").click();
    leptos::task::tick().await;
    assert_eq!(lab.columns.plan_a.get_untracked().label(), "bitfit:emb,0-2");
    set_value(&root, "mode-A", "llrd");
    leptos::task::tick().await;
    assert_eq!(lab.columns.plan_a.get_untracked().mode, Mode::Llrd { decay: 0.9 });
    assert_eq!(lab.column_lr(Column::A), hyper.lr);
    set_value(&root, "llrd-decay-A", "0.8");
    leptos::task::tick().await;
    assert_eq!(lab.columns.plan_a.get_untracked().label(), "llrd-0.8:emb,0-2");
    // Layers 3–5 train: the top at 1×, layer 3 at 0.8².
    assert!(root.text_content().unwrap().contains("lr ×0.64"));
    set_value(&root, "llrd-decay-A", "1.5");
    leptos::task::tick().await;
    assert_eq!(lab.columns.plan_a.get_untracked().mode, Mode::Llrd { decay: 0.8 }, "an out-of-range decay is refused");
    assert!(lab.ui.errors.get_untracked().iter().any(|e| e.contains("llrd_decay")));
    // Gradual unfreezing: each open block says when it opens, top first.
    set_value(&root, "mode-A", "gradual");
    leptos::task::tick().await;
    set_value(&root, "gradual-every-A", "5");
    leptos::task::tick().await;
    assert_eq!(lab.columns.plan_a.get_untracked().label(), "gradual-5:emb,0-2");
    let text = root.text_content().unwrap();
    assert!(text.contains("opens at step 5") && text.contains("opens at step 15"), "{text}");
    // A slower pace than the budget allows: only the top layer opens before the last step, and
    // the count and the memory are that peak's, as the run will report them.
    let steps = lab.setup.hyper.get_untracked().steps(None);
    set_value(&root, "gradual-every-A", &(steps - 1).to_string());
    leptos::task::tick().await;
    assert_eq!(trainable(&root), 1_774_464 + 770);
    let peak = FreezePlan::parse("emb,0-4", 6).unwrap();
    let hyper = lab.setup.hyper.get_untracked();
    let tokens = ((hyper.train_size + hyper.eval_size) * hyper.max_len) as u64;
    let cache = memory::cache_bytes(384, tokens, CACHE_LIMIT_BYTES);
    let want = memory::computed(&model.shape, &model.params, &peak, (hyper.batch_size, hyper.max_len), cache);
    assert_eq!(bytes(&root), want.total());
    let text = root.text_content().unwrap();
    assert!(text.contains(&format!("opens at step {}, after this budget", 2 * (steps - 1))), "{text}");
    // LoRA: rank-8 updates on query and value of the open layers, the suggested rate.
    set_value(&root, "mode-A", "lora");
    leptos::task::tick().await;
    assert_eq!(trainable(&root), 3 * 2 * 8 * 768 + 770);
    assert_eq!(lab.column_lr(Column::A), 5e-4);
    set_value(&root, "lora-rank-A", "4");
    leptos::task::tick().await;
    find(&root, "lora-all-A").click();
    leptos::task::tick().await;
    assert_eq!(lab.columns.plan_a.get_untracked().label(), "lora-4-a16-all:emb,0-2");
}

/// A finished run that does not clear the majority-class baseline is flagged in its column;
/// one that does is not.
#[wasm_bindgen_test]
async fn a_run_below_the_majority_class_is_flagged() {
    use freezelab_protocol::messages::FromWorker;
    use freezelab_protocol::run::{RunSummary, TrainConfig, TrainEvent};
    use freezelab_web::state::RunView;
    let (lab, root) = mount_column();
    let baseline = ham(0.68);
    for (id, accuracy) in [(1, 0.55), (2, 0.80)] {
        let config = TrainConfig { freeze: FreezePlan::head_only(6), ..TrainConfig::default() };
        let run = RunView::queued(id, Column::A.into(), config).on("m".into(), "spam".into(), "cpu".into());
        lab.results.runs.push(run);
        lab.columns.pin(Column::A, id);
        let summary = RunSummary { val_accuracy: accuracy, baseline: baseline.clone(), ..Default::default() };
        let event = TrainEvent::Finished { summary: Box::new(summary) };
        lab.apply(FromWorker::Run { run_id: id, event });
        leptos::task::tick().await;
        let flag = root.query_selector("[data-testid='below-baseline-A']").unwrap().map(|e| e.text_content().unwrap());
        if accuracy < 0.70 {
            let flag = flag.expect("flagged");
            assert!(flag.starts_with("not better than always answering ‘ham’ (68.0%)"), "{flag}");
        } else {
            assert_eq!(flag, None, "run #{id} clears the baseline");
        }
    }
}

#[wasm_bindgen_test]
async fn presets_set_the_right_boxes() {
    let (lab, root) = mount_column();
    leptos::task::tick().await;
    let model = minilm();

    find(&root, "preset-A-head").click();
    leptos::task::tick().await;
    assert!(lab.columns.plan_a.get_untracked().is_head_only());
    assert!(checked(&root, "freeze-A-emb"));
    assert!((0..6).all(|i| checked(&root, &format!("freeze-A-layer-{i}"))));
    assert_eq!(trainable(&root), model.params.head);

    find(&root, "preset-A-bottom-half").click();
    leptos::task::tick().await;
    assert!(checked(&root, "freeze-A-emb"));
    let boxes: Vec<bool> = (0..6).map(|i| checked(&root, &format!("freeze-A-layer-{i}"))).collect();
    assert_eq!(boxes, [true, true, true, false, false, false]);

    find(&root, "preset-A-emb").click();
    leptos::task::tick().await;
    assert!(checked(&root, "freeze-A-emb"));
    assert!((0..6).all(|i| !checked(&root, &format!("freeze-A-layer-{i}"))));

    find(&root, "preset-A-all").click();
    leptos::task::tick().await;
    assert!(!checked(&root, "freeze-A-emb"));
    assert_eq!(trainable(&root), model.params.total());
}

#[wasm_bindgen_test]
fn the_set_up_round_trips_through_the_url_fragment() {
    let shared = Shared {
        model: "minilm-l6".into(),
        data: "upload:my data.csv".into(),
        train: 48,
        eval: 48,
        epochs: 1,
        batch: 16,
        len: 32,
        lr: 5e-5,
        seed: 3,
        cache: true,
        plan_a: "none".into(),
        plan_b: "emb,0-2".into(),
        present: true,
    };
    let back = Shared::decode(&format!("#{}", shared.encode())).unwrap().unwrap();
    assert_eq!(back, shared);
    assert_eq!(back.plans(6).unwrap().1, FreezePlan::bottom(6, 3));
    assert!(back.plans(2).is_err(), "layer 2 does not exist in a 2-layer model");
    assert!(Shared::decode("#").is_none());
    assert!(Shared::decode("#model=x").unwrap().is_err());
    // A seed past what a JavaScript number holds exactly would not reach a worker.
    let far = Shared { seed: 1 << 60, ..shared };
    let refused = Shared::decode(&format!("#{}", far.encode())).unwrap().unwrap_err();
    assert!(refused.contains("setting seed: must be at most"), "{refused}");
}

/// A run that fails on the GPU offers a CPU retry in its column; the other column's run and
/// the state around it are kept.
#[wasm_bindgen_test]
async fn a_failed_gpu_run_offers_a_cpu_retry_and_keeps_the_other_run() {
    use freezelab_protocol::messages::{DatasetInfo, FromWorker};
    let (lab, root) = mount_column();
    lab.setup.dataset.set(Some(DatasetInfo {
        name: "spam".into(),
        labels: vec!["ham".into(), "spam".into()],
        train_counts: vec![3, 2],
        validation_counts: vec![1, 1],
    }));
    // Requests wait for a worker that never comes here; the page's state is what is tested.
    freezelab_web::app::train(lab, Column::B);
    freezelab_web::app::train(lab, Column::A);
    lab.apply(FromWorker::RunFailed { run_id: 2, message: "device lost".into(), retry_on_cpu: true });
    leptos::task::tick().await;
    let text = root.text_content().unwrap();
    assert!(text.contains("run #2 failed: device lost"), "{text}");
    assert_eq!(find(&root, "retry-cpu-A").text_content().unwrap(), "Retry on CPU");
    let runs = lab.results.runs.all_untracked();
    assert!(
        runs.iter().any(|r| r.id == 1 && r.origin == Column::B.into() && !r.finished()),
        "the other run is untouched"
    );

    // Retrying asks for the CPU backend and queues the same plan again in column A.
    use freezelab_protocol::messages::BackendChoice;
    assert_eq!(lab.setup.backend_choice.get_untracked(), BackendChoice::Auto);
    find(&root, "retry-cpu-A").click();
    leptos::task::tick().await;
    assert_eq!(lab.setup.backend_choice.get_untracked(), BackendChoice::Cpu);
    let runs = lab.results.runs.all_untracked();
    let retry = runs.last().expect("a run was queued");
    assert_eq!((retry.id, retry.origin, retry.finished()), (3, Column::A.into(), false));
    assert_eq!(retry.config.freeze, runs[1].config.freeze, "the failed run's plan");
    assert_eq!(lab.pinned_run(Column::A).map(|r| r.id), Some(3));
    assert!(runs.iter().any(|r| r.id == 2 && matches!(r.status, freezelab_web::state::RunStatus::Failed { .. })));
}

fn ham(accuracy: f64) -> freezelab_protocol::metrics::Baseline {
    freezelab_protocol::metrics::Baseline { label: "ham".into(), accuracy, macro_f1: 0.4 }
}

/// The sweep at the page's old CPU defaults: every point within a few points of a 0.68
/// baseline, head only below it. Only runs that clear it by the margin may be on the front.
#[wasm_bindgen_test]
fn runs_that_do_not_clear_the_baseline_stay_off_the_pareto_front() {
    use freezelab_charts::sweep::AXES;
    use freezelab_protocol::run::{RunSummary, TrainConfig};
    use freezelab_web::charts::baselines;
    use freezelab_web::state::{RunStatus, RunView};
    use freezelab_web::sweep::points;
    let done = |id: u32, freeze: FreezePlan, trainable_params: usize, val_accuracy: f64| {
        let config = TrainConfig { freeze, ..TrainConfig::default() };
        let mut run = RunView::queued(id, Origin::Sweep, config).on("m".into(), "d".into(), "cpu".into());
        run.status = RunStatus::Done;
        run.baseline = Some(ham(0.68));
        run.summary = Some(RunSummary { trainable_params, val_accuracy, baseline: ham(0.68), ..Default::default() });
        run
    };
    let runs = [
        done(1, FreezePlan::none(6), 100, 0.80),
        done(2, FreezePlan::bottom(6, 0), 60, 0.69),
        done(3, FreezePlan::bottom(6, 4), 20, 0.75),
        done(4, FreezePlan::head_only(6), 1, 0.55),
    ];
    let (plotted, front) = points(&runs, &AXES[0]);
    assert_eq!(plotted.iter().map(|p| p.beats_baseline).collect::<Vec<_>>(), [true, false, true, false]);
    // Head only is the cheapest and emb is cheaper than train-all, but neither is a result.
    assert_eq!(front, [true, false, true, false]);
    assert!(runs[3].below_baseline().is_some_and(|w| w.contains("always answering ‘ham’")));
    assert!(runs[0].below_baseline().is_none());
    assert_eq!(baselines(&runs).len(), 1);
}

/// Runs saved before the run's origin had its own type (stored as `column`: "A", "B", "Sweep")
/// load with the same origin, and new runs are written in that same form.
#[wasm_bindgen_test]
fn runs_saved_with_a_column_field_still_load() {
    use freezelab_protocol::run::TrainConfig;
    use freezelab_web::state::RunView;
    for (origin, written) in [(Column::A.into(), "A"), (Column::B.into(), "B"), (Origin::Sweep, "Sweep")] {
        let run = RunView::queued(7, origin, TrainConfig::default()).on("m".into(), "d".into(), "cpu".into());
        let mut saved = serde_wasm_bindgen::to_value(&run).unwrap();
        let origin_value = js_sys::Reflect::get(&saved, &"origin".into()).unwrap();
        assert_eq!(origin_value.as_string().as_deref(), Some(written));
        // The older record: the same value under `column`.
        let old = js_sys::Object::new();
        js_sys::Object::assign(&old, saved.unchecked_ref());
        js_sys::Reflect::delete_property(&old, &"origin".into()).unwrap();
        js_sys::Reflect::set(&old, &"column".into(), &written.into()).unwrap();
        saved = old.into();
        let loaded: RunView = serde_wasm_bindgen::from_value(saved).unwrap();
        assert_eq!(loaded, run);
    }
}

/// Runs kept and files exported before the protocol's enums became externally tagged wrote the
/// freeze mode as `{"kind": …}`: they load with the same mode, and new runs are written tagged
/// by key.
#[wasm_bindgen_test]
fn runs_saved_with_an_internally_tagged_mode_still_load() {
    use freezelab_protocol::run::{RunSummary, TrainConfig};
    use freezelab_web::state::RunView;
    let set = |target: &JsValue, path: &[&str], value: JsValue| {
        let mut at = target.clone();
        for key in &path[..path.len() - 1] {
            at = js_sys::Reflect::get(&at, &(*key).into()).unwrap();
        }
        js_sys::Reflect::set(&at, &(*path.last().unwrap()).into(), &value).unwrap();
    };
    let old = |pairs: &[(&str, JsValue)]| {
        let o = js_sys::Object::new();
        pairs.iter().for_each(|(k, v)| drop(js_sys::Reflect::set(&o, &(*k).into(), v)));
        JsValue::from(o)
    };
    for (mode, written) in [
        (Mode::Freeze, old(&[("kind", "freeze".into())])),
        (Mode::Llrd { decay: 0.8 }, old(&[("kind", "llrd".into()), ("decay", 0.8.into())])),
        (
            Mode::Lora { rank: 4, alpha: 8.0, all_linear: true },
            old(&[("kind", "lora".into()), ("rank", 4.into()), ("alpha", 8.0.into()), ("all_linear", true.into())]),
        ),
    ] {
        let mut config = TrainConfig::default();
        config.freeze.mode = mode;
        let mut run = RunView::queued(3, Column::A.into(), config.clone()).on("m".into(), "d".into(), "cpu".into());
        run.summary = Some(RunSummary { val_accuracy: 0.9, config, ..Default::default() });
        let saved = serde_wasm_bindgen::to_value(&run).unwrap();
        let new_form = js_sys::Reflect::get(&js_sys::Reflect::get(&saved, &"config".into()).unwrap(), &"freeze".into())
            .and_then(|f| js_sys::Reflect::get(&f, &"mode".into()))
            .unwrap();
        assert!(
            js_sys::Reflect::get(&new_form, &"kind".into()).map_or(true, |k| k.is_undefined()),
            "{mode:?} is written tagged by key"
        );
        set(&saved, &["config", "freeze", "mode"], written.clone());
        // A copy: the upgrade rewrites the mode's object in place.
        let written_again = js_sys::JSON::parse(&String::from(js_sys::JSON::stringify(&written).unwrap())).unwrap();
        set(&saved, &["summary", "config", "freeze", "mode"], written_again);
        // An exported file of that time: a list of such summaries.
        let exported = js_sys::Array::of1(&js_sys::Reflect::get(&saved, &"summary".into()).unwrap());
        let file = String::from(js_sys::JSON::stringify(&exported).unwrap());
        freezelab_web::legacy::upgrade_run(&saved);
        let loaded: RunView = serde_wasm_bindgen::from_value(saved).unwrap();
        assert_eq!(loaded, run);
        let lab = Lab::new();
        assert_eq!(freezelab_web::export::import(lab, &file), Ok(1), "{file}");
        let imported = lab.results.runs.filter(|_| true);
        assert_eq!(imported[0].summary, run.summary, "{file}");
        // One summary on its own, as `freezelab train --out` writes it, imports too.
        let single = String::from(js_sys::JSON::stringify(&exported.get(0)).unwrap());
        assert_eq!(freezelab_web::export::import(lab, &single), Ok(1), "{single}");
        assert_eq!(lab.results.runs.filter(|_| true)[1].summary, run.summary);
    }
}

/// The drift heatmap: one cell per block with its relative change; frozen blocks read exactly 0.
#[wasm_bindgen_test]
async fn the_drift_heatmap_shows_every_block() {
    use freezelab_protocol::messages::FromWorker;
    use freezelab_protocol::run::{BlockDrift, RunSummary, TrainConfig, TrainEvent};
    use freezelab_web::state::RunView;
    let (lab, root) = mount_column();
    let config = TrainConfig { freeze: FreezePlan::bottom(6, 2), ..TrainConfig::default() };
    lab.results.runs.push(RunView::queued(1, Column::A.into(), config).on("m".into(), "d".into(), "cpu".into()));
    lab.columns.pin(Column::A, 1);
    let finished = TrainEvent::Finished { summary: Box::new(RunSummary { val_accuracy: 0.9, ..Default::default() }) };
    lab.apply(FromWorker::Run { run_id: 1, event: finished });
    let block = |block: &str, relative_change: f64| BlockDrift {
        block: block.into(),
        relative_change,
        parts: Vec::new(),
        cka: (block != "head").then_some(1.0 - relative_change),
    };
    let mut blocks = vec![block("emb", 0.0), block("layer-0", 0.0), block("layer-1", 0.0)];
    blocks.extend((2..6).map(|i| block(&format!("layer-{i}"), 0.001 * i as f64)));
    blocks.push(block("head", 1.2));
    lab.apply(FromWorker::Run { run_id: 1, event: TrainEvent::Drift { blocks } });
    leptos::task::tick().await;
    let map = find(&root, "drift-A");
    let drift = |block: &str| {
        let cell =
            map.query_selector(&format!("[data-block='{block}']")).unwrap().unwrap_or_else(|| panic!("no {block}"));
        cell.get_attribute("data-drift").unwrap().parse::<f64>().unwrap()
    };
    assert_eq!((drift("emb"), drift("layer-0"), drift("layer-1")), (0.0, 0.0, 0.0));
    assert!((drift("layer-5") - 0.005).abs() < 1e-12);
    assert_eq!(drift("head"), 1.2);
    assert_eq!(map.child_element_count(), 8, "one cell per block");
    let text = root.text_content().unwrap();
    assert!(text.contains("layer 0 not at all (frozen)") && text.contains("layer 5 by 0.50%"), "{text}");
}

/// The equal-time race: "Train both" queues A alone; when A is done, B is queued with A's
/// training time as its budget (and the epoch cap); the charts then run against seconds.
#[wasm_bindgen_test]
async fn the_equal_time_race_gives_b_the_time_a_took() {
    use freezelab_protocol::messages::{DatasetInfo, FromWorker};
    use freezelab_protocol::run::{RunSummary, TrainEvent};
    use freezelab_web::app::{race_to_b, train_both, RACE_MAX_EPOCHS};
    let (lab, _root) = mount_column();
    lab.columns.plan_b.set(FreezePlan::head_only(6));
    lab.setup.dataset.set(Some(DatasetInfo {
        name: "spam".into(),
        labels: vec!["ham".into(), "spam".into()],
        train_counts: vec![30, 20],
        validation_counts: vec![10, 10],
    }));
    lab.columns.equal_time.set(true);
    train_both(lab);
    let runs = lab.results.runs.all_untracked();
    assert_eq!(runs.len(), 1, "B waits for A");
    let a = runs[0].id;
    assert_eq!((runs[0].origin, lab.columns.race.get_untracked().awaits()), (Column::A.into(), Some(a)));
    race_to_b(lab);
    assert_eq!(lab.results.runs.all_untracked().len(), 1, "not before A is done");

    for (step, elapsed) in [(1, 2.5), (2, 5.0)] {
        let event = TrainEvent::Step {
            step,
            epoch: 1,
            loss: 0.7,
            lr: 1e-4,
            examples_per_second: 6.4,
            elapsed_seconds: elapsed,
        };
        lab.apply(FromWorker::Run { run_id: a, event });
    }
    let summary = RunSummary { train_seconds: 4.75, ..RunSummary::default() };
    lab.apply(FromWorker::Run { run_id: a, event: TrainEvent::Finished { summary: Box::new(summary) } });
    race_to_b(lab);
    let runs = lab.results.runs.all_untracked();
    let b = runs.last().unwrap();
    assert_eq!((runs.len(), b.origin), (2, Column::B.into()));
    assert_eq!(b.config.time_budget_seconds, Some(4.75));
    assert_eq!(b.config.epochs, RACE_MAX_EPOCHS);
    assert_eq!(b.config.freeze, FreezePlan::head_only(6));
    assert_eq!(lab.columns.race.get_untracked().awaits(), None);
    race_to_b(lab);
    assert_eq!(lab.results.runs.all_untracked().len(), 2, "B is queued once");
    // A's points against the seconds its steps ended at.
    assert_eq!(runs[0].against_seconds(&[(0.0, 0.5), (1.0, 0.6), (2.0, 0.7)]), [(0.0, 0.5), (2.5, 0.6), (5.0, 0.7)]);
}

/// A training step rewrites its own run only. What column A's panel reads (`Lab::pinned_run`),
/// read by an effect that counts its runs, is not woken by ten steps of B, nor is anything in
/// column A's DOM changed (a MutationObserver counts node, text and attribute changes); A's own
/// events wake it, and B's larger drift redraws A's map (the scale both share).
#[wasm_bindgen_test]
async fn a_step_of_the_other_column_leaves_a_column_alone() {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use freezelab_protocol::messages::FromWorker;
    use freezelab_protocol::run::{BlockDrift, RunSummary, TrainConfig, TrainEvent};
    use freezelab_web::state::RunView;
    use wasm_bindgen::closure::Closure;

    let (lab, root) = mount_column();
    for (id, column) in [(1, Column::A), (2, Column::B)] {
        lab.results.runs.push(RunView::queued(id, column.into(), TrainConfig::default()).on(
            "m".into(),
            "d".into(),
            "cpu".into(),
        ));
        lab.columns.pin(column, id);
    }
    let drift =
        |layer_0: f64| vec![BlockDrift { block: "layer-0".into(), relative_change: layer_0, ..Default::default() }];
    let finished = |layer_0: f64| TrainEvent::Finished {
        summary: Box::new(RunSummary { val_accuracy: 0.9, drift: drift(layer_0), ..Default::default() }),
    };
    lab.apply(FromWorker::Run { run_id: 1, event: finished(0.01) });
    let reads_of_a = Arc::new(AtomicUsize::new(0));
    let counter = reads_of_a.clone();
    Effect::new(move |_| {
        lab.pinned_run(Column::A);
        counter.fetch_add(1, Ordering::Relaxed);
    });
    leptos::task::tick().await;
    assert!(root.query_selector("[data-testid='drift-A'] [data-block='layer-0']").unwrap().is_some());
    let reads = || reads_of_a.load(Ordering::Relaxed);
    assert_eq!(reads(), 1);

    let seen = Rc::new(Cell::new(0u32));
    let records = seen.clone();
    let callback =
        Closure::<dyn FnMut(js_sys::Array)>::new(move |list: js_sys::Array| records.set(records.get() + list.length()));
    let observer = web_sys::MutationObserver::new(callback.as_ref().unchecked_ref()).unwrap();
    let options = web_sys::MutationObserverInit::new();
    options.set_child_list(true);
    options.set_subtree(true);
    options.set_character_data(true);
    options.set_attributes(true);
    observer.observe_with_options(&root, &options).unwrap();
    let changes = || seen.get() + observer.take_records().length();

    for step in 1..=10 {
        let event = TrainEvent::Step {
            step,
            epoch: 1,
            loss: 0.5,
            lr: 1e-4,
            examples_per_second: 10.0,
            elapsed_seconds: step as f64,
        };
        lab.apply(FromWorker::Run { run_id: 2, event });
        leptos::task::tick().await;
    }
    assert_eq!(lab.results.runs.get(2).map(|r| r.step), Some(10));
    assert_eq!(reads(), 1, "B's steps woke what reads A's run");
    assert_eq!(changes(), 0, "B's steps changed column A's DOM");

    lab.apply(FromWorker::Run { run_id: 2, event: finished(0.02) });
    leptos::task::tick().await;
    assert_eq!(reads(), 1);
    assert!(changes() > 0, "B's larger drift rescales A's map");
    lab.apply(FromWorker::Run { run_id: 1, event: TrainEvent::Drift { blocks: drift(0.03) } });
    leptos::task::tick().await;
    assert_eq!(reads(), 2, "A's own event wakes what reads A's run");
}

/// Saved runs load oldest first whatever order they were saved in (IndexedDB lists them by id).
#[wasm_bindgen_test]
async fn saved_runs_load_in_the_order_they_ran() {
    use freezelab_protocol::run::TrainConfig;
    use freezelab_web::state::{RunStatus, RunView};
    use freezelab_web::store;
    store::clear().await.unwrap();
    for id in [12, 3, 7] {
        let mut run =
            RunView::queued(id, Column::A.into(), TrainConfig::default()).on("m".into(), "d".into(), "cpu".into());
        run.status = RunStatus::Done;
        store::save(&run).await.unwrap();
    }
    let (runs, unreadable) = store::load().await.unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 7, 12]);
    assert_eq!(unreadable, 0);
    store::clear().await.unwrap();
}

/// The engine `engine-status` names, told from real user agents.
#[wasm_bindgen_test]
fn the_three_engines_are_told_apart_from_their_user_agents() {
    let chromium =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
    let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 Safari/537.36 Edg/150.0.1";
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
    let webkit =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/60.5 Safari/605.1.15";
    let safari = "Mozilla/5.0 (iPad; CPU OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
    assert_eq!(engine(chromium), Engine { family: "chromium", name: "Chrome 156 (Blink)".into() });
    assert_eq!(engine(edge), Engine { family: "chromium", name: "Edge 150 (Blink)".into() });
    assert_eq!(engine(firefox), Engine { family: "firefox", name: "Firefox 153 (Gecko)".into() });
    assert_eq!(engine(webkit), Engine { family: "webkit", name: "WebKit 605.1.15 Safari 60.5".into() });
    assert_eq!(engine(safari).family, "webkit");
    assert_eq!(engine("curl/8").family, "other");
}

/// The CSV export reads back, as a spreadsheet reads it, into the header and one row per run,
/// with separators, quotes and line breaks in names kept whole.
#[wasm_bindgen_test]
fn the_csv_export_reads_back_field_for_field() {
    use freezelab_protocol::run::TrainConfig;
    use freezelab_web::export::{csv, CSV_HEADER};
    use freezelab_web::state::RunView;
    let odd = "my \"best\" model, v2\nfinal";
    let runs = [
        RunView::queued(1, Column::A.into(), TrainConfig::default()).on(odd.into(), "spam".into(), "cpu".into()),
        RunView::queued(2, Column::B.into(), TrainConfig::default()).on("plain".into(), "a,b".into(), "cpu".into()),
    ];
    let text = csv(&runs);
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = reader.records().map(|r| r.unwrap().iter().map(String::from).collect()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert_eq!(rows[0], CSV_HEADER);
    assert_eq!((rows[1][0].as_str(), rows[1][2].as_str(), rows[1][3].as_str()), ("1", odd, "spam"));
    assert_eq!((rows[2][0].as_str(), rows[2][2].as_str(), rows[2][3].as_str()), ("2", "plain", "a,b"));
    assert!(rows.iter().all(|r| r.len() == CSV_HEADER.len()));
}
