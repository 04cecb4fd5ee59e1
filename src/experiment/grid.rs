//! SC-SDC grids (report Table 3.2/3.3): every combination of optimizer,
//! regularization code, activation and learning rate, each an SC-SDC study.
use super::sc_sdc::{sc_sdc, ScSdcConfig, ScSdcResult};
use super::session::Session;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::plot::{Chart, HeatmapOptions};
use crate::results::{heat_cells, Frame, FrameBuilder};
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
        match part.to_ascii_uppercase().as_str() {
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

/// A grid cell's configuration: optimizer, regularization, activation, lr.
pub type CellLabel = (String, String, String, f64);

/// One configuration's study.
pub struct GridCell {
    /// optimizer, regularization, activation, lr.
    pub config: (String, String, String, f64),
    /// Its SC-SDC result.
    pub result: ScSdcResult,
}

/// Every configuration of the grid with its study, checked: each axis value is
/// parsed and each study validated (its twins built as configurations) before
/// anything trains, so a typo in the last value fails at once.
///
/// # Errors
/// The first bad axis value or setting, naming it.
pub fn grid_configs(data: &Dataset, base: &ScSdcConfig, axes: &GridAxes) -> Result<Vec<(CellLabel, ScSdcConfig)>> {
    let or = |v: &Vec<String>, d: String| if v.is_empty() { vec![d] } else { v.clone() };
    let opts = or(&axes.optimizer, base.train.optimizer.kind.name().to_string());
    let regs = or(&axes.regularization, "NR".to_string());
    let acts = or(&axes.activation, base.base.activation.clone());
    let lrs = if axes.lr.is_empty() { vec![base.train.optimizer.lr] } else { axes.lr.clone() };
    let mut cells = Vec::new();
    for o in &opts {
        let kind = OptimizerKind::parse(o)?;
        for r in &regs {
            let flags = regularization(r)?;
            for a in &acts {
                crate::model::Activation::parse(a)?;
                for &lr in &lrs {
                    let mut cfg = base.clone();
                    cfg.train.optimizer.kind = kind;
                    cfg.train.optimizer.lr = lr;
                    cfg.train.optimizer.l2 = flags.l2.max(base.train.optimizer.l2);
                    cfg.train.augment = flags.augment || base.train.augment;
                    cfg.base.skip = flags.skip || base.base.skip;
                    cfg.base.batch_norm = flags.batch_norm || base.base.batch_norm;
                    cfg.base.activation = a.clone();
                    cfg.validate(data)?;
                    cells.push(((o.clone(), r.clone(), a.clone(), lr), cfg));
                }
            }
        }
    }
    Ok(cells)
}

/// Runs every configuration through `session` (so a grid resumes), after
/// validating all of them ([`grid_configs`]). `on_cell` sees each finished one.
///
/// # Errors
/// Bad axis values or settings (before any training), training failures.
pub fn sc_sdc_grid(data: &Dataset, base: &ScSdcConfig, axes: &GridAxes, session: &Session, mut on_cell: impl FnMut(&GridCell)) -> Result<Vec<GridCell>> {
    let mut cells = Vec::new();
    let configs = grid_configs(data, base, axes)?;
    let n = configs.len();
    let live = crate::train::TaskLive::new(crate::log::LiveKind::Study, &format!("SC-SDC grid: {n} configurations"), n, "cells");
    live.update(0, false, "", Vec::new());
    let mut points = Vec::new();
    for (i, (config, cfg)) in configs.into_iter().enumerate() {
        let label = format!("grid {}/{n}: {} {} {} lr {}", i + 1, config.0, config.1, config.2, config.3);
        let result = crate::train::labelled(label, || sc_sdc(data, &cfg, session, |_| {}))?;
        let cell = GridCell { config, result };
        let p = cell.result.test.as_ref().map(|t| format!("{:.4}", t.p_value)).unwrap_or_else(|| "n/a".into());
        let line = format!("{} {} {} lr {}: p = {p}", cell.config.0, cell.config.1, cell.config.2, cell.config.3);
        crate::log::line(&format!("grid: {line}"));
        points.push(((cells.len() + 1) as f64, cell.result.test.as_ref().map_or(f64::NAN, |t| t.p_value)));
        on_cell(&cell);
        cells.push(cell);
        let chart = crate::log::LiveChart {
            title: "one-sided Wilcoxon p-value per configuration (H1: sparse > dense)".into(),
            x_label: "configuration".into(),
            y_label: "p-value".into(),
            series: vec![("p-value".into(), points.clone())],
            scatter: true,
        };
        let significant = points.iter().filter(|p| p.1 < 0.05).count();
        let summary = format!("last: {line} · p < 0.05 in {significant} of {}", points.len());
        if cells.len() == n {
            live.finish(cells.len(), &summary, vec![chart]);
        } else {
            live.update(cells.len(), true, &summary, vec![chart]);
        }
    }
    Ok(cells)
}

/// The p-value heatmap of a grid's `table` ([`grid_frame`]) over `row` x `col`
/// (mean p over the other axes) and its pivot table (report Table 3.2).
///
/// # Errors
/// `row` or `col` not a column of `table`.
pub fn pvalue_table(table: &Frame, row: &str, col: &str, title: &str) -> Result<(Chart, Frame)> {
    for c in [row, col] {
        if !table.columns().iter().any(|x| x == c) {
            return Err(Error::config(if c == row { "row" } else { "col" }, format!("{c:?} is not a column of the grid table; valid: {}", table.columns().join(", "))));
        }
    }
    let (rows, cols, cells) = heat_cells(table, row, col, "p_value")?;
    let chart = crate::plot::heatmap(&rows, &cols, &cells, &HeatmapOptions { title: title.to_string(), x_label: col.to_string(), y_label: row.to_string(), ..Default::default() })?;
    let pivot = table.sql(&format!("select {row}, {col}, avg(p_value) as p_value from self group by {row}, {col} order by {row}, {col}"))?;
    Ok((chart, pivot))
}

/// One row per configuration: optimizer, regularization, activation, lr, statistic,
/// n, p_value, median_diff, sparse_acc, dense_acc (means over widths and seeds).
pub fn grid_frame(cells: &[GridCell]) -> Result<Frame> {
    let mean = |c: &GridCell, v: &str| {
        let x: Vec<f64> = c.result.runs.iter().filter(|r| r.variant == v && r.run.test_acc.is_finite()).map(|r| r.run.test_acc).collect();
        if x.is_empty() {
            f64::NAN
        } else {
            x.iter().sum::<f64>() / x.len() as f64
        }
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
            // Built as columns, not SQL literals: any lr (1e300, 2^63) stays a float.
            let n = f.height();
            FrameBuilder::new().str("optimizer", vec![o.clone(); n]).str("regularization", vec![r.clone(); n]).str("activation", vec![a.clone(); n]).f64("lr", vec![*lr; n]).build()?.hstack(&f)
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
