//! The charts module the page imports once it first draws: `draw(bytes)` takes a [`Chart`] as
//! [`Chart::encode`] wrote it and returns its SVG. It runs on the page's thread, where plotters
//! measures text in the document.

#[cfg(target_arch = "wasm32")]
mod module {
    use freezelab_charts::Chart;
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    pub fn draw(chart: &[u8]) -> String {
        match Chart::decode(chart) {
            Ok(chart) => chart.draw(),
            Err(e) => format!("<p>chart unreadable: {e}</p>"),
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("freezelab-charts runs inside a browser: `cargo xtask serve` builds it with Trunk");
    std::process::exit(2);
}
