//! Random search: candidates drawn uniformly from the search box by a seeded ChaCha8 stream.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Observation, SearchError, SearchSpace, Searcher};

/// Uniform random search over a [`SearchSpace`], reproducible from its seed on
/// every platform (ChaCha8 stream, one `f64` draw per coordinate).
#[derive(Debug, Clone)]
pub struct RandomSearch {
    space: SearchSpace,
    rng: ChaCha8Rng,
}

impl RandomSearch {
    /// A random searcher over `space` seeded with `seed`.
    pub fn new(space: SearchSpace, seed: u64) -> Result<Self, SearchError> {
        space.validate()?;
        Ok(Self { space, rng: ChaCha8Rng::seed_from_u64(seed) })
    }

    /// The box candidates are drawn from.
    pub fn space(&self) -> &SearchSpace {
        &self.space
    }
}

impl Searcher for RandomSearch {
    /// Ignores the history: every candidate is an independent uniform draw.
    fn propose(&mut self, _history: &[Observation]) -> Result<Vec<f64>, SearchError> {
        Ok(sample_uniform(&self.space, &mut self.rng))
    }

    fn adaptive(&self) -> bool {
        false
    }
}

/// One point uniform in `space`: `lo + u * (hi - lo)` with `u` in `[0, 1)`,
/// clamped so rounding can never leave the box.
pub(crate) fn sample_uniform<R: Rng>(space: &SearchSpace, rng: &mut R) -> Vec<f64> {
    let width = space.hi - space.lo;
    (0..space.dims)
        .map(|_| {
            let u: f64 = rng.random();
            (space.lo + u * width).clamp(space.lo, space.hi)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_from_seed_and_in_bounds() {
        let space = SearchSpace::per_layer(4).unwrap();
        let mut a = RandomSearch::new(space, 7).unwrap();
        let mut b = RandomSearch::new(space, 7).unwrap();
        let mut c = RandomSearch::new(space, 8).unwrap();
        let mut differs = false;
        for _ in 0..200 {
            let (xa, xb, xc) = (a.propose(&[]).unwrap(), b.propose(&[]).unwrap(), c.propose(&[]).unwrap());
            assert_eq!(xa, xb);
            assert!(space.contains(&xa), "{xa:?} outside the box");
            assert!(space.contains(&xc));
            differs |= xa != xc;
        }
        assert!(differs, "different seeds should give different candidates");
    }

    #[test]
    fn covers_the_box_roughly_uniformly() {
        // 4000 draws in [0.005, 1]: the mean should be close to 0.5025 and
        // every tenth of the interval should be hit.
        let space = SearchSpace::uniform();
        let mut s = RandomSearch::new(space, 1).unwrap();
        let mut bins = [0usize; 10];
        let mut sum = 0.0;
        for _ in 0..4000 {
            let x = s.propose(&[]).unwrap()[0];
            sum += x;
            let k = (((x - 0.005) / 0.995) * 10.0) as usize;
            bins[k.min(9)] += 1;
        }
        assert!((sum / 4000.0 - 0.5025).abs() < 0.02);
        assert!(bins.iter().all(|&n| n > 300), "{bins:?}");
    }

    #[test]
    fn degenerate_box_and_bad_space() {
        let mut s = RandomSearch::new(SearchSpace::new(2, 0.3, 0.3).unwrap(), 0).unwrap();
        assert_eq!(s.propose(&[]).unwrap(), vec![0.3, 0.3]);
        let bad = SearchSpace { dims: 0, lo: 0.0, hi: 1.0 };
        assert!(RandomSearch::new(bad, 0).is_err());
    }
}
