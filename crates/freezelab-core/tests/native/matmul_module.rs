//! The page's matmul kernel (src/fused/matmul.wat, assembled by build.rs) runs on the worker's
//! own memory, so it must own nothing there: no data segments (written over the worker's data
//! when instantiated), no globals (a stack pointer would mean a stack in the worker's memory), no
//! start function, and nothing imported but that memory. Checked on the bytes the worker embeds.

const KERNEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/matmul.wasm"));

/// An unsigned LEB128 number at `at`, and the position after it.
fn leb(bytes: &[u8], mut at: usize) -> (u32, usize) {
    let (mut value, mut shift) = (0u32, 0);
    loop {
        let byte = bytes[at];
        at += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (value, at);
        }
        shift += 7;
    }
}

/// The module's sections: (id, contents).
fn sections(module: &[u8]) -> Vec<(u8, &[u8])> {
    assert_eq!(&module[..8], b"\0asm\x01\0\0\0", "a wasm module, version 1");
    let (mut out, mut at) = (Vec::new(), 8);
    while at < module.len() {
        let id = module[at];
        let (size, start) = leb(module, at + 1);
        at = start + size as usize;
        out.push((id, &module[start..at]));
    }
    out
}

#[test]
fn the_matmul_kernel_owns_nothing_in_the_workers_memory() {
    const TYPE: u8 = 1;
    const IMPORT: u8 = 2;
    const FUNCTION: u8 = 3;
    const EXPORT: u8 = 7;
    const CODE: u8 = 10;
    let sections = sections(KERNEL);
    let ids: Vec<u8> = sections.iter().map(|(id, _)| *id).filter(|&id| id != 0).collect();
    assert_eq!(ids, [TYPE, IMPORT, FUNCTION, EXPORT, CODE], "only types, imports, functions, exports and code");

    let imports = sections.iter().find(|(id, _)| *id == IMPORT).expect("an import section").1;
    let (count, mut at) = leb(imports, 0);
    assert_eq!(count, 1, "one import");
    let mut name = || {
        let (len, start) = leb(imports, at);
        at = start + len as usize;
        std::str::from_utf8(&imports[start..at]).unwrap().to_string()
    };
    assert_eq!((name(), name()), ("env".to_string(), "memory".to_string()));
    assert_eq!(imports[at], 0x02, "the import is a memory");
}
