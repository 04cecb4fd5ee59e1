//! Minimal PNG encoding (8-bit RGB, zlib via flate2) and box-filter downsampling.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::{Compression, Crc};

use super::PlotError;

/// Averages `f`×`f` pixel blocks of an RGB buffer of `w`×`h` pixels.
pub(crate) fn downsample(buf: &[u8], w: usize, h: usize, f: usize) -> Vec<u8> {
    if f <= 1 {
        return buf.to_vec();
    }
    let (ow, oh) = (w / f, h / f);
    let n = (f * f) as u32;
    let mut out = vec![0u8; ow * oh * 3];
    for oy in 0..oh {
        for ox in 0..ow {
            let mut acc = [0u32; 3];
            for dy in 0..f {
                let row = (oy * f + dy) * w;
                for dx in 0..f {
                    let i = (row + ox * f + dx) * 3;
                    acc[0] += u32::from(buf[i]);
                    acc[1] += u32::from(buf[i + 1]);
                    acc[2] += u32::from(buf[i + 2]);
                }
            }
            let o = (oy * ow + ox) * 3;
            for k in 0..3 {
                out[o + k] = ((acc[k] + n / 2) / n) as u8;
            }
        }
    }
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// Encodes an 8-bit RGB buffer as PNG (filter: Sub on every row).
pub(crate) fn encode_rgb(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, PlotError> {
    let stride = w as usize * 3;
    if rgb.len() != stride * h as usize {
        return Err(PlotError::Render(format!("PNG buffer has {} bytes, expected {}", rgb.len(), stride * h as usize)));
    }
    let mut raw = Vec::with_capacity((stride + 1) * h as usize);
    for row in rgb.chunks_exact(stride) {
        raw.push(1); // Sub filter: each byte minus the byte one pixel to the left.
        for (i, &b) in row.iter().enumerate() {
            raw.push(if i < 3 { b } else { b.wrapping_sub(row[i - 3]) });
        }
    }
    let io = |e: std::io::Error| PlotError::Render(format!("PNG compression failed: {e}"));
    let mut z = ZlibEncoder::new(Vec::new(), Compression::new(6));
    z.write_all(&raw).map_err(io)?;
    let idat = z.finish().map_err(io)?;

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    // 8-bit depth, truecolour, deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// Reads (width, height) from a PNG's signature and IHDR chunk (used by tests).
#[cfg(test)]
pub(crate) fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}
