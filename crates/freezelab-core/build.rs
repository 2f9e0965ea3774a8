//! Assembles the page's matrix-product kernel (src/fused/matmul.wat) into `$OUT_DIR/matmul.wasm`.

fn main() {
    let source = "src/fused/matmul.wat";
    println!("cargo:rerun-if-changed={source}");
    let wasm = wat::parse_file(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("matmul.wasm"), wasm).expect("writing matmul.wasm");
}
