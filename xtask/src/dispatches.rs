//! `cargo xtask bench --dispatches`: what one training step asks of a GPU on Burn's wgpu
//! backend, counted rather than timed (at MiniLM's size the number of kernel launches decides
//! GPU speed, and a software adapter's timings mean nothing). cubecl logs every kernel it
//! launches when its profiling logger is at `minimal` (a `cubecl.toml` in the working folder);
//! each bench row runs with one and with two timed steps, so the difference is one step's
//! launches, the warm-up's autotuning and the model's upload cancelled out.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::assets;
use crate::command::{freezelab_binary, target_dir, Backends};

/// Chromium's own Vulkan (SwiftShader, the adapter headless Chromium's WebGPU runs on).
const SWIFTSHADER: &str = "/usr/lib/chromium/vk_swiftshader_icd.json";

/// The bench rows counted: every block trained, the bottom three frozen (run through, or
/// cached) and the head alone (likewise).
const ROWS: [&str; 5] = ["none", "bottom3", "bottom3-cache", "head-only", "head-only-cache"];

/// How every row runs: the CLI, the model, the step's shape and the adapter.
struct Runner<'a> {
    binary: &'a Path,
    model: &'a Path,
    batch: usize,
    seq: usize,
    swiftshader: bool,
}

struct Counted {
    launches: BTreeMap<String, i64>,
    reserved_bytes: i64,
    live_allocations: i64,
}

pub fn dispatches(batch: usize, seq: usize) -> Result<()> {
    assets::prepare()?;
    let binary = freezelab_binary(Backends::WithGpu)?;
    let model = assets::root().join("static/models/minilm-l6");
    let scratch = target_dir()?.join("dispatches");
    // Without a Vulkan driver of the machine's, wgpu would fall to Mesa's OpenGL: count on the
    // adapter headless Chromium's WebGPU runs on instead.
    let swiftshader = !machine_has_vulkan() && Path::new(SWIFTSHADER).exists();
    let runner = Runner { binary: &binary, model: &model, batch, seq, swiftshader };
    println!(
        "{:>16} {:>11} {:>10} {:>12}  kernels of one step (most launched first)",
        "row", "dispatches", "new bytes", "live allocs"
    );
    for row in ROWS {
        let mut counted = Vec::new();
        for steps in [1, 2] {
            let dir = scratch.join(format!("{row}-{steps}"));
            counted.push(runner.run(&dir, row, steps)?);
        }
        let (one, two) = (&counted[0], &counted[1]);
        let mut step: Vec<(i64, &str)> = two
            .launches
            .iter()
            .map(|(kernel, n)| (n - one.launches.get(kernel).copied().unwrap_or(0), kernel.as_str()))
            .filter(|(n, _)| *n != 0)
            .collect();
        step.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let total: i64 = step.iter().map(|(n, _)| n).sum();
        let top: Vec<String> = step.iter().take(6).map(|(n, kernel)| format!("{kernel} {n}")).collect();
        // Growth of the device pool's reserved bytes from one step to two: the buffers a
        // step creates beyond those it reuses.
        let grown = two.reserved_bytes - one.reserved_bytes;
        println!("{row:>16} {total:>11} {grown:>10} {:>12}  {}", two.live_allocations, top.join(", "));
    }
    println!(
        "\nbatch {batch}, {seq} tokens, MiniLM; adapter: {}. dispatches: kernel launches in one training step \
         (forward, backward, AdamW); new bytes: device memory the pool reserved for the second step beyond the \
         first's; live allocs: buffers held on the device after it (weights, optimizer state, and cubecl's cache of up \
         to 512 launch-info uniforms, which a step's new dropout seeds fill: it grows over the first steps, then stays).",
        if swiftshader { "SwiftShader (Chromium's software Vulkan)" } else { "wgpu's choice of the machine's" }
    );
    Ok(())
}

/// Whether a Vulkan driver is installed (an ICD manifest where the loader looks for one).
fn machine_has_vulkan() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .any(|dir| std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()))
}

impl Runner<'_> {
    /// `freezelab bench` of `row` for `steps` timed steps in `dir`, its kernel log read back.
    fn run(&self, dir: &Path, row: &str, steps: usize) -> Result<Counted> {
        std::fs::create_dir_all(dir)?;
        let log = dir.join("kernels.log");
        let _ = std::fs::remove_file(&log);
        let config = format!("[profiling.logger]\nlevel = \"minimal\"\nfile = {:?}\n", log.to_str().context("path")?);
        std::fs::write(dir.join("cubecl.toml"), config)?;
        let json = dir.join("bench.json");
        let mut cmd = Command::new(self.binary);
        cmd.current_dir(dir).args(["--device", "wgpu", "bench", "--model"]).arg(self.model);
        cmd.args([
            "--rows",
            row,
            "--batch",
            &self.batch.to_string(),
            "--seq",
            &self.seq.to_string(),
            "--steps",
            &steps.to_string(),
        ]);
        cmd.arg("--json").arg(&json).stdout(std::process::Stdio::null());
        if self.swiftshader {
            cmd.env("VK_ICD_FILENAMES", SWIFTSHADER).env("LD_LIBRARY_PATH", "/usr/lib/chromium");
        }
        let output = cmd.output().context("running freezelab bench")?;
        if !output.status.success() {
            anyhow::bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
        }
        let mut launches = BTreeMap::new();
        for line in std::fs::read_to_string(&log).context("cubecl's kernel log")?.lines() {
            if let Some(name) = line.strip_prefix("Executing ") {
                *launches.entry(kernel_kind(name)).or_insert(0) += 1;
            }
        }
        let result: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
        let field = |key: &str| result[0][key].as_i64().with_context(|| format!("bench JSON without {key}"));
        Ok(Counted {
            launches,
            reserved_bytes: field("pool_reserved_bytes")?,
            live_allocations: field("pool_allocations")?,
        })
    }
}

/// A kernel's kind without its type arguments and hash: `KernelBinop | AddOp_4c9fa18b` →
/// `Binop Add`, matmul's long family list → `Matmul`.
fn kernel_kind(name: &str) -> String {
    let name = name.rsplit_once('_').filter(|(_, hash)| hash.len() == 8).map_or(name, |(n, _)| n);
    let mut parts = name.split(" | ").map(str::trim);
    let head = parts.next().unwrap_or(name).trim_start_matches("Kernel");
    match head {
        "MatmulEntry" => "Matmul".into(),
        "Binop" | "ScalarBinop" | "ScalarCmp" | "UnaryFloat" => {
            let rest: Vec<&str> = parts.filter(|p| !p.is_empty()).map(|p| p.trim_end_matches("Op")).collect();
            format!("{head} {}", rest.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::kernel_kind;

    #[test]
    fn kernels_are_grouped_by_kind() {
        assert_eq!(kernel_kind("KernelBinop | AddOp_4c9fa18b"), "Binop Add");
        assert_eq!(kernel_kind("KernelScalarBinop | MulOp_00952761"), "ScalarBinop Mul");
        assert_eq!(kernel_kind("ReduceKernel | TensorArgs_9b0e99c4"), "ReduceKernel");
        assert_eq!(kernel_kind("MatmulEntry | TensorArgs | DynamicScalar_ee539468"), "Matmul");
        assert_eq!(kernel_kind("UnaryFloat |  | FloatTensorOps | Powf_0123abcd"), "UnaryFloat FloatTensorOps Powf");
        assert_eq!(kernel_kind("CopyKernel"), "CopyKernel");
    }
}
