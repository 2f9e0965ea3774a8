//! The charts module (crates/freezelab-charts): imported once, after the page's first paint,
//! then called to draw each chart. Drawing is a twelfth of what the page's wasm would carry, none
//! of it needed for the first paint (BENCHMARKS.md, "In the browser").

use std::cell::RefCell;

use freezelab_charts::Chart;
use js_sys::{Function, Promise, Reflect, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The module's script, beside the page.
const CHARTS_MODULE: &str = "freezelab-charts.js";

/// `import()` of a script beside the page (a snippet's own URL is elsewhere), once the browser
/// reports the page's first contentful paint, so that paint waits for none of it.
#[wasm_bindgen(inline_js = r#"
export function import_after_paint(name) {
  const painted = () => performance.getEntriesByName('first-contentful-paint').length > 0;
  return new Promise((resolve) => {
    const go = () => resolve(import(new URL(name, document.baseURI).href));
    if (painted()) return go();
    try {
      const observer = new PerformanceObserver(() => { if (painted()) { observer.disconnect(); go(); } });
      observer.observe({ type: 'paint', buffered: true });
    } catch { setTimeout(go, 0); }
  });
}
"#)]
extern "C" {
    fn import_after_paint(name: &str) -> Promise;
}

/// Where the module stands.
#[derive(Clone, PartialEq)]
enum Stage {
    Loading,
    Ready,
    Failed(String),
}

thread_local! {
    /// One per page (the module is imported once; every chart's memo reads it without being
    /// handed it). Set on first use (then the import starts); charts redraw when it changes.
    static STAGE: RefCell<Option<ArcRwSignal<Stage>>> = const { RefCell::new(None) };
    /// The module's `draw`, once imported.
    static DRAW: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// The SVG of `chart`, drawn again whenever what it reads changes; empty until the module is in.
pub fn drawn(chart: impl Fn() -> Chart + Send + Sync + 'static) -> Memo<String> {
    let stage = stage();
    Memo::new(move |_| match stage.get() {
        Stage::Loading => String::new(),
        Stage::Ready => draw(&chart()),
        Stage::Failed(why) => unavailable(&why),
    })
}

fn stage() -> ArcRwSignal<Stage> {
    STAGE.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                let stage = ArcRwSignal::new(Stage::Loading);
                let set = stage.clone();
                leptos::task::spawn_local(async move {
                    set.set(match import().await {
                        Ok(draw) => {
                            DRAW.with(|d| *d.borrow_mut() = Some(draw));
                            Stage::Ready
                        }
                        Err(e) => Stage::Failed(format!("{e:?}")),
                    })
                });
                stage
            })
            .clone()
    })
}

/// Imports the module, starts its wasm, and returns its `draw`.
async fn import() -> Result<Function, JsValue> {
    let module = JsFuture::from(import_after_paint(CHARTS_MODULE)).await?;
    let init: Function = Reflect::get(&module, &"default".into())?.dyn_into()?;
    JsFuture::from(Promise::resolve(&init.call0(&JsValue::NULL)?)).await?;
    Reflect::get(&module, &"draw".into())?.dyn_into()
}

fn draw(chart: &Chart) -> String {
    let bytes = Uint8Array::from(&chart.encode()[..]);
    match DRAW.with(|d| d.borrow().as_ref().map(|draw| draw.call1(&JsValue::NULL, &bytes))) {
        Some(Ok(svg)) => svg.as_string().unwrap_or_default(),
        Some(Err(e)) => unavailable(&format!("{e:?}")),
        None => String::new(),
    }
}

/// In a chart's place, why it cannot be drawn.
fn unavailable(why: &str) -> String {
    format!("<p>chart unavailable: {}</p>", why.replace('<', "&lt;"))
}
