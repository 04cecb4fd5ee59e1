//! SC-SDC grids (report Table 3.2/3.3): every combination of optimizer,
//! regularization code, activation and learning rate, each an SC-SDC study.
use super::sc_sdc::{sc_sdc, ScSdcConfig, ScSdcResult};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::results::{Frame, FrameBuilder, Store};
use crate::train::OptimizerKind;

/// Flags a Table 3.3 regularization code turns on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Regularization {
    /// L2: coupled weight decay 1e-4 (report 3.3.2).
    pub l2: f64,
    /// DA: random crop + flip.
    pub augment: bool,
    /// SC: skip connections.
    pub skip: bool,
    /// BN: BatchNorm.
    pub batch_norm: bool,
}

/// Parses `NR`, `L2`, `DA`, `SC`, `BN` and combinations joined by `_` (e.g. `DA_BN`).
pub fn regularization(code: &str) -> Result<Regularization> {
    let mut r = Regularization::default();
    for part in code.split('_') {
        match part {
            "NR" => {}
            "L2" => r.l2 = 1e-4,
            "DA" => r.augment = true,
            "SC" => r.skip = true,
            "BN" => r.batch_norm = true,
            p => return Err(Error::config("regularization", format!("{p:?} in {code:?} is not NR, L2, DA, SC or BN (join with _, e.g. DA_BN)"))),
        }
    }
    Ok(r)
}

/// The axes of a grid; an empty axis keeps the base study's value.
#[derive(Clone, Debug, Default)]
pub struct GridAxes {
    /// Optimizer names.
    pub optimizer: Vec<String>,
    /// Regularization codes.
    pub regularization: Vec<String>,
    /// Activation names.
    pub activation: Vec<String>,
    /// Learning rates.
    pub lr: Vec<f64>,
}

/// One configuration's study.
pub struct GridCell {
    /// optimizer, regularization, activation, lr.
    pub config: (String, String, String, f64),
    /// Its SC-SDC result.
    pub result: ScSdcResult,
}

/// Runs every configuration (through the store when given, so a grid resumes).
/// `on_cell` sees each finished configuration.
pub fn sc_sdc_grid(data: &Dataset, base: &ScSdcConfig, axes: &GridAxes, store: Option<&Store>, mut on_cell: impl FnMut(&GridCell)) -> Result<Vec<GridCell>> {
    let or = |v: &Vec<String>, d: String| if v.is_empty() { vec![d] } else { v.clone() };
    let opts = or(&axes.optimizer, base.train.optimizer.kind.name().to_string());
    let regs = or(&axes.regularization, "NR".to_string());
    let acts = or(&axes.activation, base.base.activation.clone());
    let lrs = if axes.lr.is_empty() { vec![base.train.optimizer.lr] } else { axes.lr.clone() };
    let mut cells = Vec::new();
    for o in &opts {
        for r in &regs {
            for a in &acts {
                for &lr in &lrs {
                    let flags = regularization(r)?;
                    let mut cfg = base.clone();
                    cfg.train.optimizer.kind = OptimizerKind::parse(o)?;
                    cfg.train.optimizer.lr = lr;
                    cfg.train.optimizer.l2 = flags.l2.max(base.train.optimizer.l2);
                    cfg.train.augment = flags.augment || base.train.augment;
                    cfg.base.skip = flags.skip || base.base.skip;
                    cfg.base.batch_norm = flags.batch_norm || base.base.batch_norm;
                    cfg.base.activation = a.clone();
                    let result = sc_sdc(data, &cfg, store, |_| {})?;
                    let cell = GridCell { config: (o.clone(), r.clone(), a.clone(), lr), result };
                    on_cell(&cell);
                    cells.push(cell);
                }
            }
        }
    }
    Ok(cells)
}

/// One row per configuration: optimizer, regularization, activation, lr, statistic,
/// n, p_value, median_diff, sparse_acc, dense_acc (means over widths and seeds).
pub fn grid_frame(cells: &[GridCell]) -> Result<Frame> {
    let mean = |c: &GridCell, v: &str| {
        let x: Vec<f64> = c.result.runs.iter().filter(|r| r.variant == v && r.run.test_acc.is_finite()).map(|r| r.run.test_acc).collect();
        if x.is_empty() { f64::NAN } else { x.iter().sum::<f64>() / x.len() as f64 }
    };
    let t = |c: &GridCell, f: fn(&crate::stats::WilcoxonResult) -> f64| c.result.test.as_ref().map(f).unwrap_or(f64::NAN);
    FrameBuilder::new()
        .str("optimizer", cells.iter().map(|c| c.config.0.clone()).collect())
        .str("regularization", cells.iter().map(|c| c.config.1.clone()).collect())
        .str("activation", cells.iter().map(|c| c.config.2.clone()).collect())
        .f64("lr", cells.iter().map(|c| c.config.3).collect())
        .f64("statistic", cells.iter().map(|c| t(c, |w| w.statistic)).collect())
        .i64("n", cells.iter().map(|c| c.result.test.as_ref().map(|w| w.n as i64).unwrap_or(0)).collect())
        .f64("p_value", cells.iter().map(|c| t(c, |w| w.p_value)).collect())
        .f64("median_diff", cells.iter().map(|c| t(c, |w| w.median_diff)).collect())
        .f64("sparse_acc", cells.iter().map(|c| mean(c, "sparse")).collect())
        .f64("dense_acc", cells.iter().map(|c| mean(c, "dense")).collect())
        .build()
}

/// All runs of a grid with the configuration columns prepended.
pub fn grid_runs_frame(cells: &[GridCell]) -> Result<Frame> {
    let frames = cells
        .iter()
        .map(|c| {
            let f = c.result.runs_frame()?;
            let (o, r, a, lr) = &c.config;
            f.sql(&format!("select '{o}' as optimizer, '{r}' as regularization, '{a}' as activation, {lr} as lr, * from self"))
        })
        .collect::<Result<Vec<_>>>()?;
    Frame::vstack_relaxed(&frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_3_3_codes() {
        assert_eq!(regularization("DA_BN").unwrap(), Regularization { augment: true, batch_norm: true, ..Default::default() });
        assert_eq!(regularization("L2").unwrap().l2, 1e-4);
        assert_eq!(regularization("NR").unwrap(), Regularization::default());
        assert_eq!(regularization("DX").unwrap_err().to_string(), "regularization: \"DX\" in \"DX\" is not NR, L2, DA, SC or BN (join with _, e.g. DA_BN)");
    }
}
