//! Checkpoint loading: round trips and the errors users see for broken files.

use burn::tensor::{Device, Tensor};
use freezelab_core::bert::BatchTensors;
use freezelab_core::config::BertConfig;
use freezelab_core::tokenize::EncodedBatch;
use freezelab_core::weights::{
    encoder_tensor_shapes, load_classifier, random_checkpoint, stored_label_names, write_f32, write_f32_with_labels,
};
use safetensors::SafeTensors;

fn tiny() -> BertConfig {
    BertConfig::tiny(50, 16, 2, 2)
}

fn tensors_of(bytes: &[u8]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let vals = v.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            (n, v.shape().to_vec(), vals)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn error_of(bytes: &[u8]) -> String {
    load_classifier(&tiny(), bytes, 2, 0, &Device::flex()).unwrap_err().to_string()
}

#[test]
fn random_checkpoint_is_deterministic_and_complete() {
    let a = random_checkpoint(&tiny(), 3);
    assert_eq!(a, random_checkpoint(&tiny(), 3));
    assert_ne!(a, random_checkpoint(&tiny(), 4));
    assert_eq!(tensors_of(&a).len(), encoder_tensor_shapes(&tiny()).len());
    load_classifier(&tiny(), &a, 3, 0, &Device::flex()).unwrap();
}

#[test]
fn missing_tensor_is_named() {
    let mut t = tensors_of(&random_checkpoint(&tiny(), 1));
    t.retain(|(n, _, _)| n != "encoder.layer.1.output.dense.weight");
    let err = error_of(&write_f32(&t));
    assert!(err.contains("encoder.layer.1.output.dense.weight") && err.contains("missing"), "{err}");
}

#[test]
fn wrong_shape_names_tensor_and_both_shapes() {
    let mut t = tensors_of(&random_checkpoint(&tiny(), 1));
    let q = t.iter_mut().find(|(n, _, _)| n == "encoder.layer.0.attention.self.query.weight").unwrap();
    q.1 = vec![8, 32];
    let err = error_of(&write_f32(&t));
    assert!(err.contains("query.weight") && err.contains("[8, 32]") && err.contains("[16, 16]"), "{err}");
}

#[test]
fn a_config_that_does_not_match_the_weights_is_refused() {
    let weights = random_checkpoint(&tiny(), 1);
    let mut other = tiny();
    other.num_hidden_layers = 3;
    let err = load_classifier(&other, &weights, 2, 0, &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("encoder.layer.2") && err.contains("missing"), "{err}");
    let mut wider = tiny();
    wider.intermediate_size = 128;
    let err = load_classifier(&wider, &weights, 2, 0, &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("intermediate.dense.weight"), "{err}");
}

#[test]
fn unknown_tensor_is_named() {
    let mut t = tensors_of(&random_checkpoint(&tiny(), 1));
    t.push(("encoder.layer.9.mystery".into(), vec![2], vec![0.0, 1.0]));
    let err = error_of(&write_f32(&t));
    assert!(err.contains("encoder.layer.9.mystery"), "{err}");
}

#[test]
fn truncated_and_garbage_files_are_errors() {
    let bytes = random_checkpoint(&tiny(), 1);
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = error_of(&bytes[..cut]);
        assert!(err.contains("safetensors"), "cut at {cut}: {err}");
    }
    assert!(error_of(b"PK\x03\x04 this is a zip").contains("safetensors"));
}

#[test]
fn hf_prefixes_and_old_norm_names_are_accepted() {
    let t: Vec<_> = tensors_of(&random_checkpoint(&tiny(), 1))
        .into_iter()
        .map(|(n, s, v)| (format!("bert.{}", n.replace("LayerNorm.weight", "LayerNorm.gamma")), s, v))
        .collect();
    load_classifier(&tiny(), &write_f32(&t), 2, 0, &Device::flex()).unwrap();
}

#[test]
fn stored_head_and_labels_round_trip() {
    let mut t = tensors_of(&random_checkpoint(&tiny(), 1));
    let w: Vec<f32> = (0..48).map(|i| i as f32 / 48.0).collect();
    t.push(("classifier.weight".into(), vec![3, 16], w.clone()));
    t.push(("classifier.bias".into(), vec![3], vec![0.1, 0.2, 0.3]));
    let labels = vec!["a".to_string(), "b".into(), "c".into()];
    let bytes = write_f32_with_labels(&t, Some(&labels));
    assert_eq!(stored_label_names(&bytes).unwrap(), Some(labels));
    let model = load_classifier(&tiny(), &bytes, 3, 0, &Device::flex()).unwrap();
    // Burn keeps [in, out]: the stored [out, in] weight comes back transposed.
    let got = model.head.weight.val().into_data().try_into_vec::<f32>().unwrap();
    assert_eq!(got[1], w[16]);
    let err = load_classifier(&tiny(), &bytes, 2, 0, &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("classifier.weight") && err.contains("[3, 16]"), "{err}");
}

#[test]
fn padding_does_not_change_real_tokens() {
    let device = Device::flex();
    let model = load_classifier(&tiny(), &random_checkpoint(&tiny(), 5), 2, 0, &device).unwrap();
    let alone = EncodedBatch::from_rows(&[vec![1, 5, 9, 2]], 0);
    let padded = EncodedBatch::from_rows(&[vec![1, 5, 9, 2], vec![1, 3, 4, 7, 7, 7, 2]], 0);
    let a = model.bert.forward(&BatchTensors::new(&alone, &device));
    let b = model.bert.forward(&BatchTensors::new(&padded, &device)).slice([0..1, 0..4]);
    let diff: Tensor<3> = (a - b).abs();
    let max = diff.max().into_data().try_into_vec::<f32>().unwrap()[0];
    assert!(max < 1e-5, "padding leaked into real tokens: {max}");
}

/// f16 and bf16 checkpoints load as f32: each weight is the stored half value, transposed into
/// Burn's `[in, out]` like an f32 checkpoint's.
#[test]
fn half_precision_checkpoints_load_upcast() {
    use safetensors::{tensor::TensorView, Dtype};
    let tensors = tensors_of(&random_checkpoint(&tiny(), 2));
    let name = "encoder.layer.1.attention.self.value.weight";
    type Half = (Dtype, fn(f32) -> [u8; 2], fn([u8; 2]) -> f32);
    let halves: [Half; 2] = [
        (Dtype::F16, |x| half::f16::from_f32(x).to_le_bytes(), |b| half::f16::from_le_bytes(b).to_f32()),
        (Dtype::BF16, |x| half::bf16::from_f32(x).to_le_bytes(), |b| half::bf16::from_le_bytes(b).to_f32()),
    ];
    for (dtype, to_bytes, from_bytes) in halves {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().flat_map(|&x| to_bytes(x)).collect()))
            .collect();
        let views: Vec<(String, TensorView)> =
            bytes.iter().map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap())).collect();
        let file = safetensors::serialize(views, None).unwrap();
        let model = load_classifier(&tiny(), &file, 2, 0, &Device::flex()).unwrap();
        let loaded = model.bert.layers[1].value.weight.val().into_data().try_into_vec::<f32>().unwrap();
        let (_, _, stored) = bytes.iter().find(|(n, _, _)| n == name).unwrap();
        let stored: Vec<f32> = stored.chunks_exact(2).map(|b| from_bytes([b[0], b[1]])).collect();
        // loaded[i, o] (Burn) is stored[o, i] (PyTorch), hidden 16.
        for (i, o) in [(0, 0), (0, 1), (3, 7), (15, 2)] {
            assert_eq!(loaded[i * 16 + o], stored[o * 16 + i], "{dtype:?} at [{i}, {o}]");
        }
    }
}
