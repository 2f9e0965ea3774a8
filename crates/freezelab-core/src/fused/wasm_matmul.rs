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

thread_local! {
    static GEMM: Option<Gemm> = instantiate().ok().flatten();
}

/// Whether this browser runs the relaxed-SIMD kernel (false: gemm's kernels are used).
pub fn available() -> bool {
    GEMM.with(Option::is_some)
}

/// `Ok(None)` where the browser lacks relaxed SIMD (the module does not validate).
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

/// An f32 operand's matrices: base address of its first element, and for each batch index the
/// offset (in elements) of its matrix, with its row and column strides (elements).
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

    fn address(&self, offset: usize) -> u32 {
        self.values[self.start..].as_ptr().wrapping_add(offset) as u32
    }

    /// Offset of batch index `index` (row-major over `dims`; a dimension of 1 broadcasts).
    fn batch_offset(&self, dims: &[usize], shape: &[usize], mut index: usize) -> usize {
        let mut offset = 0;
        for axis in (0..dims.len()).rev() {
            let i = index % dims[axis];
            index /= dims[axis];
            if shape[axis] != 1 {
                offset += i * self.strides[axis];
            }
        }
        offset
    }
}

/// `lhs [.., m, k] · rhs [.., k, n]` (the same rank; batch dimensions equal or 1) as a new
/// contiguous tensor, or `None` when the kernel is unavailable or the operands are not plain f32.
pub fn product(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    GEMM.with(|gemm| {
        let gemm = gemm.as_ref()?;
        let (a, b) = (Operand::of(lhs)?, Operand::of(rhs)?);
        let (ls, rs) = (lhs.shape().to_vec(), rhs.shape().to_vec());
        let rank = ls.len();
        let (m, k, n) = (ls[rank - 2], ls[rank - 1], rs[rank - 1]);
        let batch: Vec<usize> = ls[..rank - 2].iter().zip(&rs[..rank - 2]).map(|(&l, &r)| l.max(r)).collect();
        let count: usize = batch.iter().product();
        let mut shape = batch.clone();
        shape.extend([m, n]);
        if m == 0 || n == 0 || k == 0 {
            return None;
        }
        let mut out = vec![0f32; count * m * n];
        // The kernel pads k to even.
        let depth = k.min(PACK_DEPTH).next_multiple_of(2);
        let (mut pack_a, mut pack_b) = (vec![0f32; PACK_ROWS * depth], vec![0f32; depth * n.next_multiple_of(8)]);
        let [ar, ac, br, bc] = [a.strides[rank - 2], a.strides[rank - 1], b.strides[rank - 2], b.strides[rank - 1]];
        for index in 0..count {
            let c = out[index * m * n..].as_mut_ptr() as u32;
            gemm.run(
                &JsValue::UNDEFINED,
                m as u32,
                n as u32,
                k as u32,
                a.address(a.batch_offset(&batch, &ls, index)),
                4 * ar as u32,
                4 * ac as u32,
                b.address(b.batch_offset(&batch, &rs, index)),
                4 * br as u32,
                4 * bc as u32,
                c,
                pack_a.as_mut_ptr() as u32,
                pack_b.as_mut_ptr() as u32,
            );
        }
        Some(super::flex::tensor(out, burn::tensor::Shape::from(shape)))
    })
}
