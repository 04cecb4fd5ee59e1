//! Unit tests for the chart kinds: output sizes, SVG text, colour scale and input errors.

use super::png::png_size;
use super::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// True when the SVG has a `<text>` element whose content is exactly `t`.
fn has_text(svg: &str, t: &str) -> bool {
    svg.contains(&format!(">\n{t}\n</text>"))
}

fn check_outputs(chart: &Chart, size: (u32, u32), texts: &[&str]) {
    assert_eq!(chart.size(), size);
    let png = chart.to_png().expect("png renders");
    assert_eq!(png_size(&png), Some(size), "PNG signature and IHDR size");
    assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
    let svg = chart.to_svg().expect("svg renders");
    assert!(svg.starts_with("<svg"), "SVG document");
    for t in texts {
        assert!(has_text(&svg, t), "SVG lacks text element {t:?}");
    }
}

fn acc_series(name: &str, off: f64) -> Series {
    let pts = [8.0, 16.0, 32.0, 64.0, 128.0].iter().map(|&w: &f64| (w, 0.8 + off + 0.03 * w.log2())).collect();
    Series::new(name, pts).with_err(vec![0.01; 5])
}

fn invalid(r: Result<Chart, PlotError>) -> String {
    match r {
        Err(PlotError::InvalidInput(m)) => m,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn line_chart_facets_render_at_requested_size() {
    let facets = vec![("sparse".to_string(), vec![acc_series("SNAS", 0.0), acc_series("random", -0.05)]), ("dense".to_string(), vec![acc_series("SNAS", 0.02), acc_series("random", -0.02)])];
    let opts = LineOptions { title: "Accuracy vs width".into(), x_label: "dense width".into(), y_label: "test accuracy".into(), size: (640, 400), log_x: true, ..Default::default() };
    let chart = line_chart(&facets, &opts).unwrap();
    check_outputs(&chart, (640, 400), &["Accuracy vs width", "dense width", "test accuracy", "sparse", "SNAS", "64"]);
}

#[test]
fn bar_chart_renders() {
    let cats = s(&["GraSP", "SNIP", "EGF", "gradient norm"]);
    let groups = vec![("sparse".to_string(), vec![0.4, 0.2, 0.6, 0.1]), ("dense".to_string(), vec![0.3, -0.1, 0.5, 0.2])];
    let opts = BarOptions { title: "Mean |Kendall tau|".into(), x_label: "measure".into(), y_label: "|tau|".into(), show_values: true, ..Default::default() };
    check_outputs(&bar_chart(&cats, &groups, &opts).unwrap(), (800, 500), &["Mean |Kendall tau|", "measure", "|tau|", "EGF", "dense"]);
}

#[test]
fn scatter_renders() {
    let a = Series::new("MLP", vec![(0.1, 0.9), (0.2, 0.93), (f64::NAN, 0.5), (0.4, 0.95)]).with_err(vec![0.01, 0.0, 0.0, 0.02]);
    let b = Series::new("CNN", vec![(0.15, 0.85), (0.3, 0.88)]);
    let opts = ScatterOptions { title: "EGF vs accuracy".into(), x_label: "EGF".into(), y_label: "accuracy".into(), size: (500, 500), ..Default::default() };
    check_outputs(&scatter(&[a, b], &opts).unwrap(), (500, 500), &["EGF vs accuracy", "EGF", "accuracy", "CNN"]);
}

#[test]
fn heatmap_renders_and_marks_significant_cells() {
    let rows = s(&["GraSP", "SNIP"]);
    let cols = s(&["MNIST", "CIFAR-10", "Fashion"]);
    let values = vec![vec![Some(0.01), Some(0.5), None], vec![Some(0.2), Some(f64::NAN), Some(0.97)]];
    let opts = HeatmapOptions { title: "Wilcoxon p-values".into(), x_label: "dataset".into(), y_label: "measure".into(), ..Default::default() };
    let chart = heatmap(&rows, &cols, &values, &opts).unwrap();
    check_outputs(&chart, (800, 500), &["Wilcoxon p-values", "dataset", "measure", "0.010*", "0.500", "n/a", "p-value"]);
    assert!(chart.to_svg().unwrap().contains("font-weight=\"bold\""), "significant cell is bold");
    let seq = HeatmapOptions { scale: HeatScale::Sequential, title: "tau".into(), ..Default::default() };
    let chart = heatmap(&rows, &cols, &[vec![Some(-1.0), Some(0.0), Some(3.0)], vec![None, Some(2.0), Some(1.0)]], &seq).unwrap();
    check_outputs(&chart, (800, 500), &["tau", "\u{2212}1.000", "3.000"]);
}

#[test]
fn density_bars_render() {
    let layers = s(&["fc1", "fc2", "fc3", "out"]);
    let opts = DensityOptions { title: "SNAS densities".into(), size: (600, 300), ..Default::default() };
    check_outputs(&density_bars(&layers, &[0.9, 0.35, 0.12, 1.0], &opts).unwrap(), (600, 300), &["SNAS densities", "layer", "density", "fc2", "0.35"]);
}

#[test]
fn learning_curves_split_loss_and_accuracy() {
    let ep = |f: fn(f64) -> f64| (1..=20).map(|e| (e as f64, f(e as f64))).collect::<Vec<_>>();
    let series = vec![
        Series::new("train_loss", ep(|e| 2.0 / e)),
        Series::new("test_loss", ep(|e| 2.2 / e + 0.1)),
        Series::new("train_acc", ep(|e| 1.0 - 0.5 / e)),
        Series::new("test_acc", ep(|e| 0.95 - 0.5 / e)),
    ];
    let opts = LearningCurveOptions { title: "Training".into(), ..Default::default() };
    let chart = learning_curves(&series, &opts).unwrap();
    check_outputs(&chart, (800, 500), &["Training", "epoch", "loss", "accuracy", "train", "test"]);
}

#[test]
fn pvalue_colors_are_green_yellow_red() {
    assert_eq!(pvalue_color(0.0), (99, 190, 123));
    assert_eq!(pvalue_color(0.5), (255, 235, 132));
    assert_eq!(pvalue_color(1.0), (248, 105, 107));
    assert_eq!(pvalue_color(-3.0), pvalue_color(0.0));
    let mid = pvalue_color(0.25);
    assert!(mid.0 > 99 && mid.0 < 255, "interpolates between green and yellow: {mid:?}");
}

#[test]
fn empty_and_bad_inputs_are_errors() {
    let e = invalid(line_chart(&[], &LineOptions::default()));
    assert!(e.contains("no facets"), "{e}");
    let e = invalid(line_chart(&[(String::new(), vec![])], &LineOptions::default()));
    assert!(e.contains("no series"), "{e}");
    let e = invalid(line_chart(&[(String::new(), vec![Series::new("a", vec![])])], &LineOptions::default()));
    assert!(e.contains("\"a\"") && e.contains("no points"), "{e}");
    let nan = Series::new("nan", vec![(f64::NAN, 1.0), (2.0, f64::NAN)]);
    let e = invalid(scatter(&[nan], &ScatterOptions::default()));
    assert!(e.contains("no finite points"), "{e}");
    let e = invalid(scatter(&[Series::new("b", vec![(1.0, 1.0)]).with_err(vec![0.1, 0.2])], &ScatterOptions::default()));
    assert!(e.contains("err has 2 values"), "{e}");
    let log = LineOptions { log_x: true, ..Default::default() };
    let e = invalid(line_chart(&[(String::new(), vec![Series::new("z", vec![(0.0, 1.0)])])], &log));
    assert!(e.contains("positive x"), "{e}");
    assert!(invalid(scatter(&[], &ScatterOptions::default())).contains("no series"));
    assert!(invalid(learning_curves(&[], &LearningCurveOptions::default())).contains("no series"));

    let e = invalid(bar_chart(&[], &[("g".into(), vec![])], &BarOptions::default()));
    assert!(e.contains("no categories"), "{e}");
    let e = invalid(bar_chart(&s(&["a", "b"]), &[("g".into(), vec![1.0])], &BarOptions::default()));
    assert!(e.contains("\"g\" has 1 values but there are 2 categories"), "{e}");
    let e = invalid(bar_chart(&s(&["a"]), &[("g".into(), vec![f64::NAN])], &BarOptions::default()));
    assert!(e.contains("no finite values"), "{e}");

    let e = invalid(density_bars(&s(&["fc1"]), &[0.5, 0.2], &DensityOptions::default()));
    assert!(e.contains("1 layer names but 2 densities"), "{e}");
    let e = invalid(density_bars(&s(&["fc1"]), &[1.5], &DensityOptions::default()));
    assert!(e.contains("\"fc1\"") && e.contains("[0, 1]"), "{e}");
    assert!(invalid(density_bars(&[], &[], &DensityOptions::default())).contains("no layers"));

    let e = invalid(heatmap(&[], &[], &[], &HeatmapOptions::default()));
    assert!(e.contains("at least one row"), "{e}");
    let e = invalid(heatmap(&s(&["r"]), &s(&["a", "b"]), &[vec![Some(0.1)]], &HeatmapOptions::default()));
    assert!(e.contains("row \"r\" has 1 values"), "{e}");
    // Every cell missing (a shard with no complete pair yet) draws missing cells.
    let all_missing = heatmap(&s(&["r"]), &s(&["a"]), &[vec![None]], &HeatmapOptions::default()).unwrap();
    assert!(has_text(&all_missing.to_svg().unwrap(), "n/a"));
    let e = invalid(heatmap(&s(&["r"]), &s(&["a"]), &[vec![Some(1.2)]], &HeatmapOptions::default()));
    assert!(e.contains("outside [0, 1]"), "{e}");

    let tiny = BarOptions { size: (10, 10), ..Default::default() };
    assert!(invalid(bar_chart(&s(&["a"]), &[("g".into(), vec![1.0])], &tiny)).contains("size"));
}

#[test]
fn save_picks_format_by_extension() {
    let chart = density_bars(&s(&["a", "b"]), &[0.5, 0.25], &DensityOptions::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("sparselab-plot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = chart.save(&dir.join("chart.jpg")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PlotError::UnsupportedExtension { .. }));
    assert!(msg.contains(".png") && msg.contains(".svg") && msg.contains("jpg"), "{msg}");
    assert!(chart.save(&dir.join("noext")).is_err());
    chart.save(&dir.join("chart.PNG")).unwrap();
    assert_eq!(png_size(&std::fs::read(dir.join("chart.PNG")).unwrap()), Some((800, 500)));
    chart.save(&dir.join("chart.svg")).unwrap();
    assert!(std::fs::read_to_string(dir.join("chart.svg")).unwrap().contains("<text"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tick_labels_are_tidy() {
    use super::axes::{fmt_num, linear_ticks};
    let t: Vec<String> = linear_ticks(0.0, 1.0, 5).into_iter().map(|t| t.1).collect();
    assert_eq!(t, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    assert_eq!(fmt_num(-0.0000000001, 0.5), "0.0");
    assert_eq!(fmt_num(1e-6, 1e-6), "1e\u{2212}6");
    assert_eq!(fmt_num(-0.5, 0.5), "\u{2212}0.5");
    let a = super::axes::Axis::new(&[8.0, 16.0, 1024.0], true, None, 600.0, true);
    assert!(a.ticks.iter().any(|t| t.1 == "1024"), "{:?}", a.ticks);
}

#[test]
fn tiny_sizes_and_extreme_values_render_without_panics() {
    let long = "a very long category name that cannot possibly fit".to_string();
    let cats: Vec<String> = (0..40).map(|i| format!("{long} {i}")).collect();
    let vals: Vec<f64> = (0..40).map(|i| if i % 3 == 0 { f64::NAN } else { i as f64 * 1e7 }).collect();
    let extreme = Series::new(long.clone(), vec![(1e-300, -1e300), (1e300, 1e300), (5.0, 0.0)]);
    for size in [(64, 64), (3000, 120)] {
        let charts = [
            line_chart(&[(long.clone(), vec![extreme.clone()])], &LineOptions { size, ..Default::default() }),
            scatter(std::slice::from_ref(&extreme), &ScatterOptions { size, log_x: true, ..Default::default() }),
            bar_chart(&cats, &[(long.clone(), vals.clone())], &BarOptions { size, show_values: true, ..Default::default() }),
            density_bars(&cats, &[0.5; 40], &DensityOptions { size, ..Default::default() }),
            heatmap(&cats, &cats[..3], &vec![vec![Some(0.01), None, Some(1.0)]; 40], &HeatmapOptions { size, ..Default::default() }),
            learning_curves(&[Series::new("loss", vec![(0.0, 1.0)])], &LearningCurveOptions { size, ..Default::default() }),
        ];
        for chart in charts {
            let chart = chart.unwrap();
            assert_eq!(png_size(&chart.to_png().unwrap()), Some(size));
            chart.to_svg().unwrap();
        }
    }
}

/// An x axis of whole numbers (epochs 1..3) is labelled 1, 2, 3, never 1.5 or 2.00.
#[test]
fn whole_number_x_axes_get_whole_number_ticks() {
    let labels = |svg: String| -> Vec<String> { svg.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split("</text>").next()?.trim().to_string())).collect() };
    let s = Series::new("test_acc", vec![(1.0, 0.5), (2.0, 0.6), (3.0, 0.7)]);
    let line = labels(line_chart(&[(String::new(), vec![s.clone()])], &LineOptions::default()).unwrap().to_svg().unwrap());
    let points = labels(scatter(&[s], &ScatterOptions::default()).unwrap().to_svg().unwrap());
    for l in [&line, &points] {
        assert!(["1", "2", "3"].iter().all(|t| l.iter().any(|x| x == t)), "{l:?}");
        assert!(!l.iter().any(|x| x == "1.5" || x == "2.00" || x == "2.5"), "{l:?}");
    }
}
