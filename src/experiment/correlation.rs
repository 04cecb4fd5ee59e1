//! The gradient-flow correlation study (report Table 3.1): how well each measure's
//! average ranks runs by final test loss and accuracy, as mean |Kendall tau|.
use crate::error::{Error, Result};
use crate::results::{Frame, FrameBuilder};
use crate::stats::kendall_tau;

/// Measures compared, as columns of a runs frame.
pub const MEASURES: &[&str] = &["egf1", "egf2", "gnorm1", "gnorm2"];

/// For each measure and each value of `variant` (sparse, dense): Kendall tau-b between
/// the measure and `test_loss` / `test_acc` across runs, within each group of `by`
/// (e.g. a dataset or optimizer; `None` = all runs in one group), then the mean of
/// |tau| over groups. Diverged runs and runs without the measure are left out.
/// Columns: measure, variant, tau_loss, tau_acc, groups, runs.
pub fn gradflow_correlation(runs: &Frame, by: Option<&str>) -> Result<Frame> {
    let variants = runs.str_column("variant")?;
    let groups = match by {
        Some(c) => runs.str_column(c)?,
        None => vec![String::new(); runs.height()],
    };
    let diverged: Vec<bool> = runs.map_column("diverged", |v| v.extract::<i64>().map(|x| x != 0).unwrap_or(false))?;
    let (loss, acc) = (runs.f64_column("test_loss")?, runs.f64_column("test_acc")?);
    let mut uniq_v: Vec<String> = variants.clone();
    uniq_v.sort();
    uniq_v.dedup();
    uniq_v.reverse(); // sparse before dense
    let mut uniq_g = groups.clone();
    uniq_g.sort();
    uniq_g.dedup();
    let (mut m_col, mut v_col, mut tl, mut ta, mut ng, mut nr) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for m in MEASURES {
        let x = runs.f64_column(m)?;
        for v in &uniq_v {
            let (mut sum_l, mut sum_a, mut k, mut used) = (0.0, 0.0, 0usize, 0usize);
            for g in &uniq_g {
                let rows: Vec<usize> = (0..runs.height()).filter(|&r| &variants[r] == v && &groups[r] == g && !diverged[r] && x[r].is_finite() && loss[r].is_finite()).collect();
                let xs: Vec<f64> = rows.iter().map(|&r| x[r]).collect();
                let (Ok(l), Ok(a)) = (kendall_tau(&xs, &rows.iter().map(|&r| loss[r]).collect::<Vec<_>>()), kendall_tau(&xs, &rows.iter().map(|&r| acc[r]).collect::<Vec<_>>())) else { continue };
                sum_l += l.tau.abs();
                sum_a += a.tau.abs();
                k += 1;
                used += rows.len();
            }
            m_col.push(m.to_string());
            v_col.push(v.clone());
            tl.push(if k > 0 { sum_l / k as f64 } else { f64::NAN });
            ta.push(if k > 0 { sum_a / k as f64 } else { f64::NAN });
            ng.push(k as i64);
            nr.push(used as i64);
        }
    }
    if nr.iter().all(|&n| n == 0) {
        return Err(Error::config("runs", "no group has two or more non-diverged runs with gradient flow measured (train with grad_flow)"));
    }
    FrameBuilder::new().str("measure", m_col).str("variant", v_col).f64("tau_loss", tl).f64("tau_acc", ta).i64("groups", ng).i64("runs", nr).build()
}

/// The bar chart of a [`gradflow_correlation`] table: mean |tau| with test accuracy
/// per measure, one bar group per variant (report Table 3.1).
///
/// # Errors
/// A table without `variant` and `tau_acc` columns; a chart that cannot be drawn.
pub fn correlation_chart(table: &Frame) -> Result<crate::plot::Chart> {
    let cats: Vec<String> = MEASURES.iter().map(|m| m.to_string()).collect();
    let variants = table.str_column("variant")?;
    let taus = table.f64_column("tau_acc")?;
    let mut groups: Vec<(String, Vec<f64>)> = Vec::new();
    for (v, t) in variants.iter().zip(&taus) {
        match groups.iter_mut().find(|g| &g.0 == v) {
            Some(g) => g.1.push(*t),
            None => groups.push((v.clone(), vec![*t])),
        }
    }
    let opts = crate::plot::BarOptions { title: "Mean |Kendall tau| with test accuracy (report Table 3.1)".into(), x_label: "measure".into(), y_label: "mean |tau|".into(), ..Default::default() };
    Ok(crate::plot::bar_chart(&cats, &groups, &opts)?)
}
