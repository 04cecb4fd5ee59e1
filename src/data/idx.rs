//! IDX reader (MNIST, Fashion-MNIST), gzipped or raw.
use super::{DataFile, Raw};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 0x0000_0803; // ubyte, 3 dims
const LABELS_MAGIC: u32 = 0x0000_0801; // ubyte, 1 dim

/// Reads `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` in `dir`.
pub(crate) fn read_split(dir: &Path, prefix: &str, classes: usize) -> Result<Raw> {
    let (img_path, img, img_file) = read_maybe_gz(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (lab_path, lab, lab_file) = read_maybe_gz(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let mut raw = parse(&img_path, &img, &lab_path, &lab, classes)?;
    raw.files = vec![img_file, lab_file];
    Ok(raw)
}

/// Parses IDX image and label bytes; errors name the file and what was wrong.
pub(crate) fn parse(img_path: &Path, img: &[u8], lab_path: &Path, lab: &[u8], classes: usize) -> Result<Raw> {
    let header = |b: &[u8], n: usize, p: &Path| -> Result<Vec<u32>> {
        if b.len() < 4 * n {
            return Err(Error::data(p, format!("truncated header: {} bytes, need {}", b.len(), 4 * n)));
        }
        Ok((0..n).map(|i| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])).collect())
    };
    let h = header(img, 4, img_path)?;
    if h[0] != IMAGES_MAGIC {
        return Err(Error::data(img_path, format!("wrong magic number {:#010x}, expected {IMAGES_MAGIC:#010x} (IDX ubyte images)", h[0])));
    }
    let (n, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    let need = 16 + n * rows * cols;
    if img.len() < need {
        return Err(Error::data(img_path, format!("truncated: {} bytes, header promises {n} images of {rows}x{cols} = {need} bytes", img.len())));
    }
    let l = header(lab, 2, lab_path)?;
    if l[0] != LABELS_MAGIC {
        return Err(Error::data(lab_path, format!("wrong magic number {:#010x}, expected {LABELS_MAGIC:#010x} (IDX ubyte labels)", l[0])));
    }
    if l[1] as usize != n {
        return Err(Error::data(lab_path, format!("{} labels but {} has {n} images", l[1], img_path.display())));
    }
    if lab.len() < 8 + n {
        return Err(Error::data(lab_path, format!("truncated: {} bytes, header promises {n} labels", lab.len())));
    }
    let labels: Vec<i64> = lab[8..8 + n].iter().map(|&v| v as i64).collect();
    if let Some((i, v)) = labels.iter().enumerate().find(|(_, &v)| v as usize >= classes) {
        return Err(Error::data(lab_path, format!("label {v} at index {i} out of range 0..{classes}")));
    }
    Ok(Raw { pixels: img[16..need].to_vec(), labels, shape: [1, rows as i64, cols as i64], files: Vec::new() })
}

/// Reads `dir/name.gz` or `dir/name`, gunzipping the former; with the file's identity.
pub(crate) fn read_maybe_gz(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>, DataFile)> {
    let gz = dir.join(format!("{name}.gz"));
    let raw = dir.join(name);
    if gz.is_file() {
        let (bytes, file) = super::files::read(&gz)?;
        Ok((gz.clone(), gunzip(&gz, &bytes)?, file))
    } else if raw.is_file() {
        let (bytes, file) = super::files::read(&raw)?;
        Ok((raw, bytes, file))
    } else {
        Err(Error::data(raw, "missing (looked for it with and without .gz)"))
    }
}

pub(crate) fn gunzip(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).map_err(|e| Error::data(path, format!("not a valid gzip file: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(n: u32, rows: u32, cols: u32) -> (Vec<u8>, Vec<u8>) {
        let mut img = Vec::new();
        for v in [IMAGES_MAGIC, n, rows, cols] {
            img.extend(v.to_be_bytes());
        }
        img.extend((0..n * rows * cols).map(|i| i as u8));
        let mut lab = Vec::new();
        for v in [LABELS_MAGIC, n] {
            lab.extend(v.to_be_bytes());
        }
        lab.extend((0..n).map(|i| (i % 10) as u8));
        (img, lab)
    }

    fn err(img: &[u8], lab: &[u8]) -> String {
        parse(Path::new("img"), img, Path::new("lab"), lab, 10).unwrap_err().to_string()
    }

    #[test]
    fn parses_and_rejects_bad_files() {
        let (img, lab) = idx(3, 2, 2);
        let raw = parse(Path::new("i"), &img, Path::new("l"), &lab, 10).unwrap();
        assert_eq!(raw.shape, [1, 2, 2]);
        assert_eq!(raw.labels, vec![0, 1, 2]);
        assert_eq!(&raw.pixels[4..8], &[4, 5, 6, 7]);

        let mut bad = img.clone();
        bad[3] = 0x01;
        assert_eq!(err(&bad, &lab), "img: wrong magic number 0x00000801, expected 0x00000803 (IDX ubyte images)");
        assert_eq!(err(&img[..20], &lab), "img: truncated: 20 bytes, header promises 3 images of 2x2 = 28 bytes");
        let (_, lab4) = idx(4, 2, 2);
        assert_eq!(err(&img, &lab4), "lab: 4 labels but img has 3 images");
        let mut lab_bad = lab.clone();
        lab_bad[9] = 12;
        assert_eq!(err(&img, &lab_bad), "lab: label 12 at index 1 out of range 0..10");
        assert_eq!(err(&img[..7], &lab), "img: truncated header: 7 bytes, need 16");
    }
}
