//! Data augmentation on the training device: random crop with zero padding and
//! random horizontal flip, drawn independently per example (SPEC 3, "DA").
use crate::rng::{stream, Stream};
use rand::Rng;
use tch::{Device, Kind, Tensor};

/// One epoch's augmentation draws: `[n, 3]` int64 rows `(dy, dx, flip)` with offsets
/// in `0..=2 * pad` and flip in {0, 1}, row `i` for the `i`-th example of the epoch's
/// order. They come from the `(seed, Augment, epoch)` stream, not libtorch's global
/// generator, so a run augments identically on CPU and GPU and whether it trains
/// alone or inside a batched ensemble. Made once per epoch and moved to the device
/// in one copy, so batches make no host round trip.
pub fn augment_draws(seed: u64, epoch: usize, n: usize, pad: i64) -> Tensor {
    let mut rng = stream(seed, Stream::Augment, epoch as u64);
    let span = (2 * pad + 1) as u32;
    let v: Vec<i64> = (0..n).flat_map(|_| [rng.random_range(0..span) as i64, rng.random_range(0..span) as i64, rng.random_range(0..2u32) as i64]).collect();
    Tensor::from_slice(&v).view([n as i64, 3])
}

/// xs: [B, C, H, W] -> [B, C, H, W], each example shifted by a crop of the
/// `pad`-padded image and flipped left-right as its row of `draws` ([B, 3] from
/// [`augment_draws`], on the device of `xs`) says.
pub fn crop_flip(xs: &Tensor, pad: i64, draws: &Tensor) -> Tensor {
    if xs.device() == Device::Cpu && xs.kind() == Kind::Float {
        crop_flip_cpu(xs, pad, draws)
    } else {
        crop_flip_gather(xs, pad, draws)
    }
}

/// [`crop_flip`] on the device as tensor ops: pad, one gather, back to NCHW.
fn crop_flip_gather(xs: &Tensor, pad: i64, draws: &Tensor) -> Tensor {
    let (b, _c, h, w) = xs.size4().expect("augment expects [B, C, H, W]");
    let dev = xs.device();
    let padded = xs.constant_pad_nd([pad, pad, pad, pad]);
    let d = draws.view([b, 3, 1, 1]);
    let (oy, ox, flip) = (d.select(1, 0), d.select(1, 1), d.select(1, 2));
    let rows = oy + Tensor::arange(h, (Kind::Int64, dev)).view([1, h, 1]);
    // Flipping = reading columns right-to-left inside the crop window.
    let col = Tensor::arange(w, (Kind::Int64, dev)).view([1, 1, w]);
    let col = &flip * (w - 1 - &col) + (1 - &flip) * col;
    let cols = ox + col;
    let bi = Tensor::arange(b, (Kind::Int64, dev)).view([b, 1, 1]);
    // [B, C, H+2p, W+2p] -> [B, H+2p, W+2p, C], gather [B, H, W, C], back to NCHW.
    padded.permute([0, 2, 3, 1]).index(&[Some(bi), Some(rows), Some(cols)]).permute([0, 3, 1, 2]).contiguous()
}

/// [`crop_flip`] on the CPU as one pass of row copies, the same values bit for bit: the
/// tensor-op version (pad, ATen's index kernel, two permutes) took 3-4% of an augmented
/// grid cell (benches/NOTES.md item 21).
fn crop_flip_cpu(xs: &Tensor, pad: i64, draws: &Tensor) -> Tensor {
    let (b, c, h, w) = xs.size4().expect("augment expects [B, C, H, W]");
    let (bu, plane, wu) = (b as usize, (h * w) as usize, w as usize);
    let n = bu * c as usize * plane;
    let mut src = vec![0f32; n];
    xs.contiguous().copy_data(&mut src, n);
    let mut d = vec![0i64; 3 * bu];
    draws.contiguous().copy_data(&mut d, 3 * bu);
    let mut out = vec![0f32; n];
    for (e, draw) in d.chunks_exact(3).enumerate() {
        let (dy, dx, flip) = (draw[0] - pad, draw[1] - pad, draw[2] == 1);
        for ch in 0..c as usize {
            let base = (e * c as usize + ch) * plane;
            for y in 0..h {
                let sy = y + dy;
                if !(0..h).contains(&sy) {
                    continue; // a row of padding: zeros
                }
                let (from, to) = (&src[base + sy as usize * wu..][..wu], &mut out[base + y as usize * wu..][..wu]);
                // Output columns x read source column x + dx, or w - 1 - x + dx flipped;
                // the rest is padding (zeros).
                if flip {
                    let (x0, x1) = (dx.max(0), (w + dx).min(w));
                    if x0 < x1 {
                        let to = &mut to[x0 as usize..x1 as usize];
                        to.iter_mut().zip(from[(w + dx - x1) as usize..=(w - 1 + dx - x0) as usize].iter().rev()).for_each(|(o, v)| *o = *v);
                    }
                } else {
                    let (x0, x1) = ((-dx).max(0), (w - dx).min(w));
                    if x0 < x1 {
                        to[x0 as usize..x1 as usize].copy_from_slice(&from[(x0 + dx) as usize..(x1 + dx) as usize]);
                    }
                }
            }
        }
    }
    Tensor::from_slice(&out).view([b, c, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_and_flip_follow_the_draws() {
        // 4x4 image 1..16, pad 1, crop at (dy 0, dx 2), flipped; worked by hand:
        // the window is rows -1..3, columns 1..5 of the image (zero outside), mirrored.
        let x = Tensor::arange(16, (Kind::Float, tch::Device::Cpu)).view([1, 1, 4, 4]) + 1.0;
        let y = crop_flip(&x, 1, &Tensor::from_slice(&[0i64, 2, 1]).view([1, 3]));
        let want = [0., 0., 0., 0., 0., 4., 3., 2., 0., 8., 7., 6., 0., 12., 11., 10.];
        assert_eq!(Vec::<f32>::try_from(y.view([-1])).unwrap(), want.map(|v| v as f32));
        // No flip, centred crop: the image itself.
        let y = crop_flip(&x, 1, &Tensor::from_slice(&[1i64, 1, 0]).view([1, 3]));
        assert!(y.equal(&x));
    }

    #[test]
    fn the_cpu_copy_matches_the_tensor_op_gather_bit_for_bit() {
        // Three channels of 5 x 7 (not square, so a swapped height and width shows), pad
        // 2, every offset and both flips among 400 draws, values of every sign.
        let (b, pad) = (400, 2);
        let x = Tensor::randn([b, 3, 5, 7], (Kind::Float, tch::Device::Cpu)) * 1e3;
        let d = augment_draws(11, 0, b as usize, pad);
        let (cpu, gather) = (crop_flip_cpu(&x, pad, &d), crop_flip_gather(&x, pad, &d));
        assert_eq!(cpu.size(), [b, 3, 5, 7]);
        assert!(cpu.equal(&gather), "largest difference {}", (&cpu - &gather).abs().max().double_value(&[]));
        // Each draw's window moves the image: not the identity for most of them.
        assert!(!cpu.equal(&x));
    }

    #[test]
    fn draws_cover_every_offset_and_are_reproducible() {
        let d = augment_draws(3, 0, 3000, 4);
        assert!(d.equal(&augment_draws(3, 0, 3000, 4)));
        assert!(!d.equal(&augment_draws(3, 1, 3000, 4)), "epochs draw differently");
        for (col, span) in [(0, 9), (1, 9), (2, 2)] {
            let counts = Vec::<i64>::try_from(d.select(1, col).bincount(None::<Tensor>, 0)).unwrap();
            assert_eq!(counts.len(), span, "column {col} takes exactly 0..{span}");
            // 3000 / span expected per value; 5 sigma of a binomial is well inside 25%.
            let expect = 3000 / span as i64;
            assert!(counts.iter().all(|&c| (c - expect).abs() < expect / 4), "column {col}: {counts:?}");
        }
    }
}
