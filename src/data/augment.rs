//! Data augmentation on the training device: random crop with zero padding and
//! random horizontal flip, drawn independently per example (SPEC 3, "DA").
use tch::{Kind, Tensor};

/// xs: [B, C, H, W] -> [B, C, H, W], each example shifted by a random crop of the
/// `pad`-padded image and flipped left-right with probability 1/2. Uses libtorch's
/// generator on the tensor's device (seeded per run), so no host round trip.
pub fn crop_flip(xs: &Tensor, pad: i64) -> Tensor {
    let (b, _c, h, w) = xs.size4().expect("augment expects [B, C, H, W]");
    let dev = xs.device();
    let padded = xs.constant_pad_nd([pad, pad, pad, pad]);
    let oy = Tensor::randint(2 * pad + 1, [b, 1, 1], (Kind::Int64, dev));
    let ox = Tensor::randint(2 * pad + 1, [b, 1, 1], (Kind::Int64, dev));
    let flip = Tensor::randint(2, [b, 1, 1], (Kind::Int64, dev));
    let rows = oy + Tensor::arange(h, (Kind::Int64, dev)).view([1, h, 1]);
    // Flipping = reading columns right-to-left inside the crop window.
    let col = Tensor::arange(w, (Kind::Int64, dev)).view([1, 1, w]);
    let col = &flip * (w - 1 - &col) + (1 - &flip) * col;
    let cols = ox + col;
    let bi = Tensor::arange(b, (Kind::Int64, dev)).view([b, 1, 1]);
    // [B, C, H+2p, W+2p] -> [B, H+2p, W+2p, C], gather [B, H, W, C], back to NCHW.
    padded
        .permute([0, 2, 3, 1])
        .index(&[Some(bi), Some(rows), Some(cols)])
        .permute([0, 3, 1, 2])
        .contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_are_shifted_windows_and_flips_mirror() {
        tch::manual_seed(3);
        let x = Tensor::arange(2 * 16, (Kind::Float, tch::Device::Cpu)).view([2, 1, 4, 4]) + 1.0;
        let y = crop_flip(&x, 1);
        assert_eq!(y.size(), vec![2, 1, 4, 4]);
        // Every output example equals some shifted (and maybe mirrored) window of
        // its zero-padded input: check by brute force over the 3x3x2 choices.
        let padded = x.constant_pad_nd([1, 1, 1, 1]);
        for i in 0..2 {
            let out = y.get(i);
            let found = (0..3).any(|dy| {
                (0..3).any(|dx| {
                    let win = padded.get(i).narrow(1, dy, 4).narrow(2, dx, 4);
                    out.equal(&win) || out.equal(&win.flip([2]))
                })
            });
            assert!(found, "example {i} is not a crop/flip of its input");
        }
    }
}
