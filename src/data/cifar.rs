//! CIFAR-10 / CIFAR-100 binary-version reader.
use super::Raw;
use crate::error::{Error, Result};
use std::path::Path;

const PIXELS: usize = 3 * 32 * 32;

/// CIFAR-10: `data_batch_1..5.bin` (train) or `test_batch.bin`; records are
/// 1 label byte + 3072 pixel bytes (R, G, B planes).
pub(crate) fn read_cifar10(dir: &Path, train: bool) -> Result<Raw> {
    let files: Vec<String> = if train { (1..=5).map(|i| format!("data_batch_{i}.bin")).collect() } else { vec!["test_batch.bin".into()] };
    read_records(dir, &files, 1, 0, 10)
}

/// CIFAR-100: `train.bin` / `test.bin`; records are coarse label, fine label,
/// 3072 pixels. We use the fine labels (100 classes).
pub(crate) fn read_cifar100(dir: &Path, train: bool) -> Result<Raw> {
    let file = if train { "train.bin" } else { "test.bin" };
    read_records(dir, &[file.to_string()], 2, 1, 100)
}

fn read_records(dir: &Path, files: &[String], label_bytes: usize, label_at: usize, classes: usize) -> Result<Raw> {
    let record = label_bytes + PIXELS;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut read = Vec::new();
    for f in files {
        let path = dir.join(f);
        let (bytes, file) = super::files::read(&path)?;
        read.push(file);
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(Error::data(&path, format!("size {} is not a positive multiple of the {record}-byte record", bytes.len())));
        }
        for (i, rec) in bytes.chunks_exact(record).enumerate() {
            let label = rec[label_at] as usize;
            if label >= classes {
                return Err(Error::data(&path, format!("label {label} at record {i} out of range 0..{classes}")));
            }
            labels.push(label as i64);
            pixels.extend_from_slice(&rec[label_bytes..]);
        }
    }
    Ok(Raw { pixels, labels, shape: [3, 32, 32], files: read })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_rejects_truncated() {
        let dir = std::env::temp_dir().join(format!("sparselab-cifar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rec = vec![0u8; 2 * (2 + PIXELS)];
        rec[0] = 3; // coarse
        rec[1] = 42; // fine
        rec[2] = 7; // first pixel
        rec[2 + PIXELS + 1] = 99;
        std::fs::write(dir.join("test.bin"), &rec).unwrap();
        let raw = read_cifar100(&dir, false).unwrap();
        assert_eq!(raw.labels, vec![42, 99]);
        assert_eq!(raw.pixels[0], 7);
        std::fs::write(dir.join("test.bin"), &rec[..100]).unwrap();
        let e = read_cifar100(&dir, false).unwrap_err().to_string();
        assert!(e.ends_with("size 100 is not a positive multiple of the 3074-byte record"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
