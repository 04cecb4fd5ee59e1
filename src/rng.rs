//! Seeded random streams: masks, init and data order come from ChaCha streams
//! derived from the user's seed, so they are identical on CPU and GPU and do not
//! depend on libtorch's global generator.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Independent purposes that draw from a seed, so changing one never shifts another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Which weights are active.
    Mask = 1,
    /// Initial weight values.
    Init = 2,
    /// Minibatch order.
    DataOrder = 3,
    /// Seed handed to libtorch for dropout.
    Torch = 4,
    /// Dataset subsets and splits.
    Split = 5,
    /// Crop offsets and flips of data augmentation (index: epoch).
    Augment = 6,
    /// Random pruning scores (index: layer; rounds offset the seed).
    Prune = 7,
    /// Where dynamic sparse training grows weights at random (SET; index: update).
    Grow = 8,
}

/// A ChaCha8 generator for `(seed, stream, index)`; `index` separates layers or epochs.
pub fn stream(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(splitmix(seed ^ splitmix(stream as u64)));
    rng.set_stream(index);
    rng
}

/// A derived 63-bit seed for libtorch's `manual_seed`.
pub fn torch_seed(seed: u64) -> i64 {
    torch_seed_at(seed, 0)
}

/// libtorch's seed before training step `step` (0-based) of the run seeded `seed`:
/// the loop reseeds before every step, so dropout needs no generator state to resume.
pub fn torch_seed_at(seed: u64, step: u64) -> i64 {
    (stream(seed, Stream::Torch, step).random::<u64>() >> 1) as i64
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniformly random permutation of `0..n` (Fisher-Yates).
pub fn permutation(rng: &mut ChaCha8Rng, n: usize) -> Vec<i64> {
    let mut v: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: u64 = stream(7, Stream::Mask, 0).random();
        assert_eq!(a, stream(7, Stream::Mask, 0).random::<u64>());
        assert_ne!(a, stream(7, Stream::Init, 0).random::<u64>());
        assert_ne!(a, stream(7, Stream::Mask, 1).random::<u64>());
        let mut p = permutation(&mut stream(1, Stream::DataOrder, 0), 100);
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
