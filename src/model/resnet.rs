//! Sparse CNNs for CIFAR: ResNet-32 (3 stages x 5 basic blocks, 16/32/64 channels)
//! and Wide ResNet-28-10 (pre-activation, widths 160/320/640); every conv and linear
//! layer sparse with its own density (SPEC 2).
use super::{BatchNorm, Density, Mode, Model, SparseConv2d, SparseConv2dConfig, SparseLinear, SparseLinearConfig, WeightRef};
use crate::error::{Error, Result};
use crate::registry;
use tch::{nn, Device, Tensor};

/// Architectures accepted by [`CnnConfig`].
pub const CNNS: &[&str] = &["resnet32", "wrn28_10"];

/// Builds a sparse ResNet.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CnnConfig {
    /// `resnet32` or `wrn28_10`.
    pub arch: String,
    /// Input channels (3 for CIFAR).
    pub in_channels: i64,
    /// Output classes.
    pub classes: i64,
    /// One density for all weight layers, or one per layer (see [`CnnConfig::layer_count`]).
    pub densities: Vec<f64>,
    /// Dropout between the two convolutions of a WRN block.
    pub dropout: f64,
    /// Seed of masks and init.
    pub seed: u64,
    /// A model-wide target shared among layers, in place of `densities`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<super::Allocation>,
}

struct Block {
    conv1: SparseConv2d,
    bn1: BatchNorm,
    conv2: SparseConv2d,
    bn2: BatchNorm,
    shortcut: Option<SparseConv2d>,
}

/// A sparse ResNet-32 or WRN-28-10.
pub struct Cnn {
    cfg: CnnConfig,
    vs: nn::VarStore,
    stem: SparseConv2d,
    stem_bn: BatchNorm,
    blocks: Vec<Block>,
    final_bn: Option<BatchNorm>,
    fc: SparseLinear,
    pre_activation: bool,
}

impl CnnConfig {
    /// ResNet-32 or WRN-28-10 with all layers dense.
    pub fn new(arch: &str, in_channels: i64, classes: i64) -> Self {
        Self { arch: arch.to_string(), in_channels, classes, densities: vec![1.0], dropout: 0.0, seed: 0, allocation: None }
    }

    fn plan(&self) -> Result<(Vec<i64>, usize, bool)> {
        Ok(match CNNS[registry::lookup("cnn", &self.arch, CNNS)?] {
            "resnet32" => (vec![16, 32, 64], 5, false),
            _ => (vec![160, 320, 640], 4, true),
        })
    }

    /// Refuses data the network cannot take (it expects `[in_channels, 32, 32]` images),
    /// naming `option` (the key that chose the network) and both shapes.
    ///
    /// # Errors
    /// Images of another size or channel count.
    pub fn check_data(&self, option: &str, data: &crate::data::Dataset) -> Result<()> {
        let [c, h, w] = data.shape;
        if (c, h, w) != (self.in_channels, 32, 32) {
            return Err(Error::config(option, format!("{} expects {}x32x32 images, {} has {c}x{h}x{w}", self.arch, self.in_channels, data.name)));
        }
        Ok(())
    }

    /// Number of weight layers (stem, per block two convs and a shortcut where the
    /// shape changes, the final linear layer), i.e. the length of a density vector.
    pub fn layer_count(&self) -> Result<usize> {
        let (widths, n, _) = self.plan()?;
        let mut count = 1;
        let mut prev = 16;
        for &w in &widths {
            for b in 0..n {
                count += 2;
                let stride = if b == 0 && w != widths[0] { 2 } else { 1 };
                if stride != 1 || prev != w {
                    count += 1;
                }
                prev = w;
            }
        }
        Ok(count + 1)
    }

    /// Weight shapes in layer order (`[out, in, kh, kw]` for convs, `[out, in]` for the classifier).
    ///
    /// # Errors
    /// An unknown architecture.
    pub fn shapes(&self) -> Result<Vec<Vec<i64>>> {
        let (widths, n, _) = self.plan()?;
        let mut v = vec![vec![16, self.in_channels, 3, 3]];
        let mut prev = 16;
        for (s, &w) in widths.iter().enumerate() {
            for b in 0..n {
                let stride = if b == 0 && s > 0 { 2 } else { 1 };
                v.push(vec![w, prev, 3, 3]);
                v.push(vec![w, w, 3, 3]);
                if stride != 1 || prev != w {
                    v.push(vec![w, prev, 1, 1]);
                }
                prev = w;
            }
        }
        v.push(vec![self.classes, prev]);
        Ok(v)
    }

    /// Each weight layer's density, as [`CnnConfig::init`] builds them.
    ///
    /// # Errors
    /// A density list of the wrong length, a bad allocation.
    pub fn layer_densities(&self) -> Result<Vec<Density>> {
        let total = self.layer_count()?;
        if let Some(a) = &self.allocation {
            return Ok(a.active_counts(&self.shapes()?)?.into_iter().map(Density::Active).collect());
        }
        Ok(match self.densities.len() {
            1 => vec![Density::Fraction(self.densities[0]); total],
            k if k == total => self.densities.iter().map(|d| Density::Fraction(*d)).collect(),
            k => return Err(Error::config("density", format!("{k} entries given, {} has {total} weight layers", self.arch))),
        })
    }

    /// Checks and builds on `device`.
    pub fn init(&self, device: Device) -> Result<Cnn> {
        let (widths, n, pre) = self.plan()?;
        let dens = self.layer_densities()?;
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let mut li = 0usize;
        let mut conv = |name: String, cin: i64, cout: i64, k: i64, stride: i64| -> Result<SparseConv2d> {
            let c = SparseConv2dConfig::new(cin, cout, k).with_stride(stride).with_padding(k / 2).with_density(dens[li]);
            let layer = c.init(&sub(&root, &name), self.seed, li as u64);
            li += 1;
            layer
        };
        let stem = conv("conv1".into(), self.in_channels, 16, 3, 1)?;
        let stem_bn = BatchNorm::new(&(&root / "bn1"), 16)?;
        let mut blocks = Vec::new();
        let mut prev = 16;
        for (s, &w) in widths.iter().enumerate() {
            for b in 0..n {
                let stride = if b == 0 && s > 0 { 2 } else { 1 };
                let p = format!("layer{}.{b}", s + 1);
                let conv1 = conv(format!("{p}.conv1"), prev, w, 3, stride)?;
                let conv2 = conv(format!("{p}.conv2"), w, w, 3, 1)?;
                let shortcut = if stride != 1 || prev != w { Some(conv(format!("{p}.shortcut"), prev, w, 1, stride)?) } else { None };
                // Pre-activation blocks normalise the block input (prev channels).
                let bn1 = BatchNorm::new(&sub(&root, &format!("{p}.bn1")), if pre { prev } else { w })?;
                let bn2 = BatchNorm::new(&sub(&root, &format!("{p}.bn2")), w)?;
                blocks.push(Block { conv1, bn1, conv2, bn2, shortcut });
                prev = w;
            }
        }
        let final_bn = if pre { Some(BatchNorm::new(&(&root / "bn_final"), prev)?) } else { None };
        let fc = SparseLinearConfig { density: dens[li], ..SparseLinearConfig::new(prev, self.classes) }.init(&(&root / "fc"), self.seed, li as u64)?;
        let mut cnn = Cnn { cfg: self.clone(), vs, stem, stem_bn, blocks, final_bn, fc, pre_activation: pre };
        cnn.to_device(device);
        Ok(cnn)
    }
}

impl Cnn {
    /// Input height and width (CIFAR: 32).
    fn cfg_input_size(&self) -> i64 {
        self.input_shape()[1]
    }
}

/// `root / "a" / "b" / ...` for a dotted name (VarStore path parts cannot contain dots).
fn sub<'a>(root: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    dotted.split('.').fold(root.clone(), |p, part| &p / part)
}

impl Block {
    fn forward(&self, x: &Tensor, mode: Mode, pre: bool, dropout: f64) -> Result<Tensor> {
        if pre {
            // WRN: BN-ReLU-conv, BN-ReLU-dropout-conv, + shortcut of the activated input.
            let a = self.bn1.forward(x, mode)?.relu();
            let h = self.conv1.forward(&a)?;
            let mut h = self.bn2.forward(&h, mode)?.relu();
            if dropout > 0.0 {
                h = h.f_dropout(dropout, mode == Mode::Train)?;
            }
            let h = self.conv2.forward(&h)?;
            let sc = match &self.shortcut {
                Some(c) => c.forward(&a)?,
                None => x.shallow_clone(),
            };
            Ok(h + sc)
        } else {
            let h = self.bn1.forward(&self.conv1.forward(x)?, mode)?.relu();
            let h = self.bn2.forward(&self.conv2.forward(&h)?, mode)?;
            let sc = match &self.shortcut {
                Some(c) => c.forward(x)?,
                None => x.shallow_clone(),
            };
            Ok((h + sc).relu())
        }
    }
}

impl Model for Cnn {
    /// xs: `[B, C, 32, 32]` -> `[B, classes]`.
    fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut h = self.stem.forward(xs)?;
        if !self.pre_activation {
            h = self.stem_bn.forward(&h, mode)?.relu();
        }
        for b in &self.blocks {
            h = b.forward(&h, mode, self.pre_activation, self.cfg.dropout)?;
        }
        if let Some(bn) = &self.final_bn {
            h = bn.forward(&h, mode)?.relu();
        }
        let pooled = h.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)?;
        self.fc.forward(&pooled, mode)
    }

    fn weight_layers(&self) -> Vec<WeightRef<'_>> {
        let mut v = vec![WeightRef { name: &self.stem.name, weight: self.stem.weight.shallow_clone(), mask: &self.stem.mask }];
        for b in &self.blocks {
            for c in [Some(&b.conv1), Some(&b.conv2), b.shortcut.as_ref()].into_iter().flatten() {
                v.push(WeightRef { name: &c.name, weight: c.weight.shallow_clone(), mask: &c.mask });
            }
        }
        v.push(WeightRef { name: &self.fc.name, weight: self.fc.weight(), mask: &self.fc.mask });
        v
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn clear_measure(&self) {
        self.fc.clear_measure();
    }

    fn macs(&self) -> Option<[f64; 3]> {
        let mut acc = [0.0; 3];
        let mut add = |m: [f64; 2]| acc = [acc[0] + m[0], acc[1] + m[1], acc[2] + m[0]];
        let (m, mut res) = self.stem.macs(self.cfg_input_size());
        add(m);
        for b in &self.blocks {
            let (m1, r1) = b.conv1.macs(res);
            let (m2, r2) = b.conv2.macs(r1);
            add(m1);
            add(m2);
            if let Some(s) = &b.shortcut {
                add(s.macs(res).0);
            }
            res = r2;
        }
        let (total, active) = (self.fc.mask.numel() as f64, self.fc.active() as f64);
        Some([acc[0] + total, acc[1] + active, acc[2] + if self.fc.kernel() == super::Kernel::Compact { active } else { total }])
    }

    fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        let layers = self.weight_layers();
        super::check_masks(&layers, weights)?;
        let last = layers.len() - 1;
        let _guard = tch::no_grad_guard();
        for (l, w) in layers[..last].iter().zip(weights) {
            l.weight.shallow_clone().f_copy_(&(w.to_device(l.mask.device()) * l.mask))?;
        }
        self.fc.set_weight(&weights[last])
    }

    fn set_masks(&self, masks: &[Tensor]) -> Result<Vec<super::Remap>> {
        let layers = self.weight_layers();
        super::check_masks(&layers, masks)?;
        let last = layers.len() - 1;
        super::set_dense_masks(&layers[..last], &masks[..last]);
        let mut remaps: Vec<super::Remap> = layers[..last].iter().map(|l| super::Remap::dense(&format!("{}.weight", l.name), l.mask)).collect();
        remaps.push(self.fc.set_mask(&masks[last])?); // compact or dense
        Ok(remaps)
    }

    fn load(&mut self, path: &std::path::Path) -> Result<()> {
        super::load_var_store(&mut self.vs, path)?;
        self.fc.refresh()
    }

    fn input_shape(&self) -> [i64; 3] {
        [self.cfg.in_channels, 32, 32]
    }

    fn describe(&self) -> String {
        format!("{} ({} weight layers)", self.cfg.arch, self.weight_layers().len())
    }
}
