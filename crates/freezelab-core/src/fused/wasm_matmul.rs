//! The page's matrix products on `matmul.wat`'s relaxed-SIMD kernel, where the browser has
//! relaxed SIMD (Chrome and Edge 114+, Firefox 146+); elsewhere (Safari) `None`, and the caller
//! runs Burn's (gemm's `simd128` kernels). The kernel module is instantiated once per thread on
//! this module's own memory, so operands and results are read and written in place.

use burn::backend::TensorMetadata;
use burn_flex::FlexTensor;
use js_sys::{Object, Reflect, Uint8Array, WebAssembly};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// `matmul.wat`, assembled by build.rs.
const KERNEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/matmul.wasm"));

/// Rows of B the kernel packs at a time (its KC), and rows of A (its MC).
const PACK_DEPTH: usize = 256;
const PACK_ROWS: usize = 64;

#[wasm_bindgen]
extern "C" {
    /// The kernel's exported `gemm`, called through `Function.prototype.call` with its 12
    /// integer arguments typed (no argument array per call).
    type Gemm;
    #[wasm_bindgen(method, js_name = call)]
    #[allow(clippy::too_many_arguments)]
    fn run(
        this: &Gemm,
        receiver: &JsValue,
        m: u32,
        n: u32,
        k: u32,
        a: u32,
        a_row: u32,
        a_col: u32,
        b: u32,
        b_row: u32,
        b_col: u32,
        c: u32,
        pack_a: u32,
        pack_b: u32,
    );
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(message: &str);
}

/// Which matrix-product kernel this thread runs.
pub enum Kernel {
    /// The relaxed-SIMD kernel.
    RelaxedSimd,
    /// gemm's `simd128` kernels: the browser has no relaxed SIMD (the module does not validate).
    NoRelaxedSimd,
    /// gemm's `simd128` kernels: the kernel validated but did not start, for this reason.
    Failed(String),
}

thread_local! {
    /// One per worker: the kernel is instantiated once on the worker's memory, and Burn's
    /// backend calls that reach it carry no context to hold it.
    static GEMM: Result<Option<Gemm>, String> = instantiate().map_err(|e| {
        let message = format!("the relaxed-SIMD matrix kernel did not start, gemm runs instead: {e:?}");
        console_warn(&message);
        message
    });
}

/// Whether this browser runs the relaxed-SIMD kernel (false: gemm's kernels are used).
pub fn available() -> bool {
    GEMM.with(|g| matches!(g, Ok(Some(_))))
}

/// The kernel this thread runs, and why not the relaxed-SIMD one.
pub fn kernel() -> Kernel {
    GEMM.with(|g| match g {
        Ok(Some(_)) => Kernel::RelaxedSimd,
        Ok(None) => Kernel::NoRelaxedSimd,
        Err(e) => Kernel::Failed(e.clone()),
    })
}

/// `Ok(None)` where the browser lacks relaxed SIMD (the module does not validate); any other
/// failure is an error, reported (console and the backend line) before gemm takes over.
fn instantiate() -> Result<Option<Gemm>, JsValue> {
    let bytes = Uint8Array::from(KERNEL);
    if !WebAssembly::validate(&bytes)? {
        return Ok(None);
    }
    let module = WebAssembly::Module::new(&bytes)?;
    let (imports, env) = (Object::new(), Object::new());
    Reflect::set(&env, &"memory".into(), &wasm_bindgen::memory())?;
    Reflect::set(&imports, &"env".into(), &env)?;
    let instance = WebAssembly::Instance::new(&module, &imports)?;
    Ok(Some(Reflect::get(&instance.exports(), &"gemm".into())?.unchecked_into()))
}

/// An f32 operand: its buffer, the offset of its first element and its strides (elements).
struct Operand<'a> {
    values: &'a [f32],
    start: usize,
    strides: Vec<usize>,
}

impl<'a> Operand<'a> {
    /// `None` for what the kernel does not take: another dtype, or negative strides (a flip).
    fn of(t: &'a FlexTensor) -> Option<Self> {
        if t.dtype() != burn::tensor::DType::F32 {
            return None;
        }
        let layout = t.layout();
        let strides = layout.strides().iter().map(|&s| usize::try_from(s).ok()).collect::<Option<Vec<_>>>()?;
        Some(Operand { values: t.storage::<f32>(), start: layout.start_offset(), strides })
    }

    /// Address of the matrix at batch index `index` (row-major over the batch dimensions `dims`).
    fn matrix(&self, dims: &[usize], mut index: usize) -> u32 {
        let mut offset = 0;
        for axis in (0..dims.len()).rev() {
            offset += index % dims[axis] * self.strides[axis];
            index /= dims[axis];
        }
        self.values[self.start..].as_ptr().wrapping_add(offset) as u32
    }
}

/// `lhs [.., m, k] · rhs [.., k, n]` (the same batch dimensions) as a new contiguous tensor, or
/// `None` when the kernel is unavailable or the operands are not plain f32 (Burn's matmul then).
pub fn product(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    GEMM.with(|gemm| {
        let gemm = gemm.as_ref().ok()?.as_ref()?;
        let (a, b) = (Operand::of(lhs)?, Operand::of(rhs)?);
        let (ls, rs) = (lhs.shape().to_vec(), rhs.shape().to_vec());
        let rank = ls.len();
        let (batch, (m, k, n)) = (&ls[..rank - 2], (ls[rank - 2], ls[rank - 1], rs[rank - 1]));
        if rank != rs.len() || batch != &rs[..rank - 2] || m == 0 || n == 0 || k == 0 {
            return None;
        }
        let count: usize = batch.iter().product();
        // Not zeroed: the kernel writes every element of C, and fills its packing buffers before
        // it reads them. The kernel pads k to even.
        let depth = k.min(PACK_DEPTH).next_multiple_of(2);
        let mut out = Vec::<f32>::with_capacity(count * m * n);
        let mut pack_a = Vec::<f32>::with_capacity(PACK_ROWS * depth);
        let mut pack_b = Vec::<f32>::with_capacity(depth * n.next_multiple_of(8));
        let [ar, ac, br, bc] = [a.strides[rank - 2], a.strides[rank - 1], b.strides[rank - 2], b.strides[rank - 1]];
        for index in 0..count {
            gemm.run(
                &JsValue::UNDEFINED,
                m as u32,
                n as u32,
                k as u32,
                a.matrix(batch, index),
                4 * ar as u32,
                4 * ac as u32,
                b.matrix(batch, index),
                4 * br as u32,
                4 * bc as u32,
                out.as_mut_ptr().wrapping_add(index * m * n) as u32,
                pack_a.as_mut_ptr() as u32,
                pack_b.as_mut_ptr() as u32,
            );
        }
        // SAFETY: the kernel wrote all `count` matrices of m × n floats (m, n, k ≥ 1), within
        // the capacity.
        unsafe { out.set_len(count * m * n) };
        let mut shape = batch.to_vec();
        shape.extend([m, n]);
        Some(super::flex::tensor(out, burn::tensor::Shape::from(shape)))
    })
}
