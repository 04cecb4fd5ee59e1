//! Dataset loading: real files, bundled subset, errors.
use sparselab::data::{Dataset, DatasetConfig, Subset};
use tch::Kind;

fn class_counts(y: &tch::Tensor, classes: i64) -> Vec<i64> {
    Vec::<i64>::try_from(y.bincount::<tch::Tensor>(None, classes)).unwrap()
}

#[test]
fn bundled_subset_is_balanced_real_fashion_mnist() {
    let d = Dataset::load(&DatasetConfig::new("fashion-mnist").with_subset(Subset::Bundled)).unwrap();
    assert_eq!((d.train.len(), d.test.len(), d.classes, d.shape), (6000, 1000, 10, [1, 28, 28]));
    assert_eq!(class_counts(&d.train.y, 10), vec![600; 10]);
    assert_eq!(class_counts(&d.test.y, 10), vec![100; 10]);
    // Standardised with training statistics: mean 0, std 1 on the training set.
    assert!(d.train.x.mean(Kind::Double).double_value(&[]).abs() < 1e-4);
    assert!((d.train.x.std(false).double_value(&[]) - 1.0).abs() < 1e-3);
    // Fashion-MNIST's pixel mean is ~0.286 on the full set; the subset is close.
    assert!((d.norm[0].0 - 0.286).abs() < 0.01, "{:?}", d.norm);
}

/// The real 60,000/10,000 files from Debian's `dataset-fashion-mnist`. CI installs
/// the package; elsewhere the test is skipped unless the files are present.
#[test]
fn real_fashion_mnist_from_debian_package() {
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.join("t10k-labels-idx1-ubyte.gz").exists() {
        assert!(std::env::var("CI").is_err(), "CI must install dataset-fashion-mnist (see .ci/run)");
        eprintln!("skipped: {} not installed", dir.display());
        return;
    }
    let d = Dataset::load(&DatasetConfig::new("fashion-mnist").with_subset(Subset::Full)).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (60000, 10000));
    assert_eq!(d.train.x.size(), vec![60000, 1, 28, 28]);
    assert_eq!(class_counts(&d.train.y, 10), vec![6000; 10]);
    assert_eq!(class_counts(&d.test.y, 10), vec![1000; 10]);
    // Published Fashion-MNIST training statistics: mean 0.2860, std 0.3530.
    assert!((d.norm[0].0 - 0.2860).abs() < 5e-4 && (d.norm[0].1 - 0.3530).abs() < 5e-4, "{:?}", d.norm);
}

#[test]
fn missing_dataset_says_where_it_looked_and_how_to_get_it() {
    let root = std::env::temp_dir().join("sparselab-empty-root");
    std::fs::create_dir_all(&root).unwrap();
    let e = Dataset::load(&DatasetConfig::new("cifar100").with_root(&root)).unwrap_err().to_string();
    assert!(e.starts_with("dataset \"cifar100\" not found; looked in:\n"), "{e}");
    assert!(e.contains(&root.join("cifar100").display().to_string()), "{e}");
    assert!(e.contains("/usr/share/datasets/cifar100"), "{e}");
    assert!(e.contains("train.bin, test.bin"), "{e}");
    let e = Dataset::load(&DatasetConfig::new("fashion_mnistt")).unwrap_err().to_string();
    assert!(e.starts_with("unknown dataset \"fashion_mnistt\" (did you mean \"fashion-mnist\"?)"), "{e}");
}

#[test]
fn truncated_idx_file_is_a_clear_error() {
    let root = std::env::temp_dir().join(format!("sparselab-trunc-{}", std::process::id()));
    let dir = root.join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    for split in ["train", "t10k"] {
        let mut img = vec![0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 2];
        img.extend([1u8; 12]); // 5 images of 2x2 need 20 bytes
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), &img).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), [0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 5]).unwrap();
    }
    let e = Dataset::load(&DatasetConfig::new("mnist").with_root(&root)).unwrap_err().to_string();
    assert!(e.ends_with("train-images-idx3-ubyte: truncated: 28 bytes, header promises 5 images of 2x2 = 36 bytes"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn validation_split_is_disjoint_and_seeded() {
    let d = super::common::synthetic();
    let (tr, va) = d.validation_split(0.25, 3).unwrap();
    assert_eq!((tr.len(), va.len()), (384, 128));
    let (_, va2) = d.validation_split(0.25, 3).unwrap();
    assert!(va.x.equal(&va2.x));
    assert_eq!(d.validation_split(1.5, 0).unwrap_err().to_string(), "validation: 1.5 must be in (0, 1)");
}
