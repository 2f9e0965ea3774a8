//! The run's random draws. Each purpose reads its own ChaCha stream of the seed, so no two
//! draws share random bits: neither within a run (the data split against the head) nor across
//! neighbouring seeds (seed s's second epoch was once seed s+1's first, which made seeds
//! correlated samples of the same recipe).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a seeded generator is drawn for.
#[derive(Clone, Copy, Debug)]
pub enum Draw {
    /// Splitting and subsetting the data (stream 0: the draws runs have always used for it).
    Data,
    /// A new classification head's weights.
    Head,
    /// The order of the training examples in epoch `n` (from 1).
    Epoch(usize),
    /// LoRA's down-projection factors, in layer order.
    Lora,
}

/// The generator for `draw` under `seed`.
pub fn rng(seed: u64, draw: Draw) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(match draw {
        Draw::Data => 0,
        Draw::Head => 1,
        Draw::Epoch(n) => 1 + n as u64,
        // The last stream: epochs count up from 2 and never reach it.
        Draw::Lora => u64::MAX,
    });
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn purposes_and_seeds_draw_apart() {
        let first = |seed, draw| rng(seed, draw).next_u64();
        // The data stream is the one the split used before streams were separated.
        assert_eq!(first(7, Draw::Data), ChaCha8Rng::seed_from_u64(7).next_u64());
        let draws = [
            first(0, Draw::Data),
            first(0, Draw::Head),
            first(0, Draw::Epoch(1)),
            first(0, Draw::Epoch(2)),
            first(1, Draw::Data),
            first(1, Draw::Head),
            first(1, Draw::Epoch(1)),
            first(0, Draw::Lora),
            first(1, Draw::Lora),
        ];
        for (i, a) in draws.iter().enumerate() {
            assert!(draws[i + 1..].iter().all(|b| b != a), "draw {i} repeats");
        }
        assert_eq!(first(3, Draw::Epoch(2)), first(3, Draw::Epoch(2)));
    }
}
