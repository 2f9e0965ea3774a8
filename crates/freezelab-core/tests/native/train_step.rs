//! Three training steps against PyTorch + transformers (tests/fixtures/train_step.json): the
//! losses and the final weights agree within 1e-4, so the optimizer, its weight-decay groups,
//! global-norm clipping, the warm-up schedule and the head follow Hugging Face's Trainer.

use crate::common::train_step;

use burn::tensor::Device;

#[test]
fn three_adamw_steps_match_pytorch() {
    let fx = train_step::fixture();
    let (losses, finals) = pollster::block_on(train_step::replay(&fx, &Device::flex()));
    let worst = train_step::compare(&fx, &losses, &finals);
    eprintln!("train step parity: largest difference {worst:.2e}");
}
