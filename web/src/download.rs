//! Saving a file the page holds a URL to, as a browser download.

use wasm_bindgen::JsCast;

/// Saves what `url` (same-origin or `blob:`) holds as a file named `name`.
pub fn url(name: &str, url: &str) {
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        if let Ok(a) = document.create_element("a") {
            let a: web_sys::HtmlAnchorElement = a.unchecked_into();
            a.set_href(url);
            a.set_download(name);
            a.click();
        }
    }
}
