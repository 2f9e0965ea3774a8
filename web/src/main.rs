//! Trunk builds this binary for the page (web/index.html).

#[cfg(target_arch = "wasm32")]
fn main() {
    freezelab_web::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("freezelab-web is a browser page: `cargo xtask serve` builds and serves it");
    std::process::exit(2);
}
