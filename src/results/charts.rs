//! Charts from DataFrames: group rows by series/facet columns, average y over
//! repeated x (e.g. seeds) with an optional ± std band, and hand the result to
//! [`crate::plot`].
use super::Frame;
use crate::error::{Error, Result};
use crate::plot::{self, Chart, Series};

/// Bar categories and named groups of values, one per category.
pub type BarGroups = (Vec<String>, Vec<(String, Vec<f64>)>);
/// Heatmap rows, columns and cells (`None`: no value).
pub type HeatCells = (Vec<String>, Vec<String>, Vec<Vec<Option<f64>>>);

/// Column choices shared by the xy charts.
#[derive(Clone, Debug, Default)]
pub struct XySpec {
    /// x column.
    pub x: String,
    /// y column.
    pub y: String,
    /// Column whose values name the series (one line per value).
    pub series: Option<String>,
    /// Column whose values name the facets (one panel per value).
    pub facet: Option<String>,
    /// Draw ± one standard deviation of y over rows with the same x.
    pub error_std: bool,
}

/// Unique values of `col` in order of first appearance, and each row's index into them.
fn levels(f: &Frame, col: Option<&str>) -> Result<(Vec<String>, Vec<usize>)> {
    let Some(col) = col else { return Ok((vec![String::new()], vec![0; f.height()])) };
    let vals = f.str_column(col)?;
    let mut uniq: Vec<String> = Vec::new();
    let idx = vals
        .iter()
        .map(|v| match uniq.iter().position(|u| u == v) {
            Some(i) => i,
            None => {
                uniq.push(v.clone());
                uniq.len() - 1
            }
        })
        .collect();
    Ok((uniq, idx))
}

/// Mean (and std) of y per distinct x, sorted by x.
fn aggregate(points: &[(f64, f64)], with_std: bool) -> (Vec<(f64, f64)>, Option<Vec<f64>>) {
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).filter(|x| x.is_finite()).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    let mut out = Vec::new();
    let mut err = Vec::new();
    for x in xs {
        let ys: Vec<f64> = points.iter().filter(|p| p.0 == x && p.1.is_finite()).map(|p| p.1).collect();
        if ys.is_empty() {
            continue;
        }
        let n = ys.len() as f64;
        let mean = ys.iter().sum::<f64>() / n;
        let var = if ys.len() > 1 { ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        out.push((x, mean));
        err.push(var.sqrt());
    }
    (out, with_std.then_some(err))
}

/// Facets of series built from `f` per `spec`.
pub fn xy_facets(f: &Frame, spec: &XySpec) -> Result<Vec<(String, Vec<Series>)>> {
    let (xs, ys) = (f.f64_column(&spec.x)?, f.f64_column(&spec.y)?);
    let (series_names, sidx) = levels(f, spec.series.as_deref())?;
    let (facet_names, fidx) = levels(f, spec.facet.as_deref())?;
    let mut facets = Vec::new();
    for (fi, fname) in facet_names.iter().enumerate() {
        let mut series = Vec::new();
        for (si, sname) in series_names.iter().enumerate() {
            let pts: Vec<(f64, f64)> = (0..f.height()).filter(|&r| fidx[r] == fi && sidx[r] == si).map(|r| (xs[r], ys[r])).collect();
            if pts.is_empty() {
                continue;
            }
            let (points, err) = aggregate(&pts, spec.error_std);
            let name = if sname.is_empty() { spec.y.clone() } else { sname.clone() };
            series.push(Series { name, points, err });
        }
        let title = match &spec.facet {
            Some(c) => format!("{c} = {fname}"),
            None => String::new(),
        };
        facets.push((title, series));
    }
    Ok(facets)
}

/// Grouped bars: mean of `y` per (`x` category, `series` group).
pub fn bar_groups(f: &Frame, x: &str, y: &str, series: Option<&str>) -> Result<BarGroups> {
    let (cats, cidx) = levels(f, Some(x))?;
    let (groups, gidx) = levels(f, series)?;
    let ys = f.f64_column(y)?;
    let out = groups
        .iter()
        .enumerate()
        .map(|(gi, g)| {
            let vals = (0..cats.len())
                .map(|ci| {
                    let v: Vec<f64> = (0..f.height()).filter(|&r| cidx[r] == ci && gidx[r] == gi && ys[r].is_finite()).map(|r| ys[r]).collect();
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        v.iter().sum::<f64>() / v.len() as f64
                    }
                })
                .collect();
            (if g.is_empty() { y.to_string() } else { g.clone() }, vals)
        })
        .collect();
    Ok((cats, out))
}

/// Heatmap cells: mean of `value` per (`row`, `col`); missing combinations are `None`.
pub fn heat_cells(f: &Frame, row: &str, col: &str, value: &str) -> Result<HeatCells> {
    let (rows, ridx) = levels(f, Some(row))?;
    let (cols, cidx) = levels(f, Some(col))?;
    let v = f.f64_column(value)?;
    let cells = (0..rows.len())
        .map(|ri| {
            (0..cols.len())
                .map(|ci| {
                    let x: Vec<f64> = (0..f.height()).filter(|&r| ridx[r] == ri && cidx[r] == ci && v[r].is_finite()).map(|r| v[r]).collect();
                    (!x.is_empty()).then(|| x.iter().sum::<f64>() / x.len() as f64)
                })
                .collect()
        })
        .collect();
    Ok((rows, cols, cells))
}

/// Learning curves from a history frame (epoch, train_loss, test_loss, train_acc, test_acc),
/// optionally one set per value of `series`.
pub fn history_chart(f: &Frame, series: Option<&str>, opts: &plot::LearningCurveOptions) -> Result<Chart> {
    let (names, idx) = levels(f, series)?;
    let epochs = f.f64_column("epoch")?;
    let mut out = Vec::new();
    for (gi, g) in names.iter().enumerate() {
        for metric in ["train_loss", "test_loss", "train_acc", "test_acc"] {
            let ys = f.f64_column(metric)?;
            let points: Vec<(f64, f64)> = (0..f.height()).filter(|&r| idx[r] == gi).map(|r| (epochs[r], ys[r])).collect();
            let name = if g.is_empty() { metric.to_string() } else { format!("{g} {metric}") };
            out.push(Series { name, points, err: None });
        }
    }
    plot::learning_curves(&out, opts).map_err(Error::from)
}
