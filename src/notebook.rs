//! sparselab in Jupyter: the kernel's executor hooks (full script API, rich display
//! of DataFrames and charts, progress streamed into the cell) and the evcxr display
//! convention for Rust notebooks.
use crate::kernel::{MimeBundle, Output, RhaiHooks};
use crate::plot::Chart;
use crate::results::Frame;
use crate::script::{add_module_resolvers, engine, Context, API};
use base64::Engine as _;
use rhai::Dynamic;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Rows of a DataFrame shown inline.
const HTML_ROWS: usize = 50;

/// A DataFrame as `text/html` + `text/plain`.
pub fn frame_mime(f: &Frame) -> MimeBundle {
    let mut b = MimeBundle::new();
    b.insert("text/html".into(), f.to_html(HTML_ROWS).into());
    b.insert("text/plain".into(), f.to_string().into());
    b
}

/// A chart as `image/png` (base64) + `image/svg+xml` + a `text/plain` fallback.
pub fn chart_mime(c: &Chart) -> MimeBundle {
    let mut b = MimeBundle::new();
    if let Ok(png) = c.to_png() {
        b.insert("image/png".into(), base64::engine::general_purpose::STANDARD.encode(png).into());
    }
    if let Ok(svg) = c.to_svg() {
        b.insert("image/svg+xml".into(), svg.into());
    }
    b.insert("text/plain".into(), format!("Chart {}x{}", c.size().0, c.size().1).into());
    b
}

/// A live display of a long task: its status line (`text/plain`), and a progress bar
/// with the curves so far (`text/html`, the chart as an inline PNG).
pub fn live_mime(l: &crate::log::Live) -> MimeBundle {
    let mut html = format!(
        "<div class=\"sparselab-live\" data-done=\"{}\" data-total=\"{}\" data-finished=\"{}\"><b>{}</b> <progress value=\"{}\" max=\"{}\"></progress> {}{}</div>",
        l.done,
        l.total,
        l.finished,
        esc(&l.title),
        l.done,
        l.total.max(1),
        esc(&l.status),
        if l.finished { " ✓" } else { "" }
    );
    let series: Vec<crate::plot::Series> = l.series.iter().filter(|(_, p)| !p.is_empty()).map(|(n, p)| crate::plot::Series::new(n.clone(), p.clone())).collect();
    if !series.is_empty() {
        let opts = crate::plot::LearningCurveOptions { size: (640, 240), metric_label: "test accuracy".into(), ..Default::default() };
        if let Ok(png) = crate::plot::learning_curves(&series, &opts).and_then(|c| c.to_png()) {
            html.push_str(&format!("<img alt=\"learning curves\" src=\"data:image/png;base64,{}\"/>", base64::engine::general_purpose::STANDARD.encode(png)));
        }
    }
    let mut b = MimeBundle::new();
    b.insert("text/html".into(), html.into());
    b.insert("text/plain".into(), format!("{}: {}", l.title, l.status).into());
    b
}

/// Rich representation of a script value; library objects use their table/summary text.
pub fn to_mime(v: &Dynamic) -> Option<MimeBundle> {
    if v.is_unit() {
        return None;
    }
    if let Some(f) = v.read_lock::<Frame>() {
        return Some(frame_mime(&f));
    }
    if let Some(c) = v.read_lock::<Chart>() {
        return Some(chart_mime(&c));
    }
    let text = crate::script::plain_text(v).unwrap_or_else(|| v.to_string());
    let mut b = MimeBundle::new();
    if let Some(r) = crate::script::as_run(v) {
        b.insert("text/html".into(), run_html(&r).into());
    } else if let Some((title, layers)) = crate::script::as_model(v) {
        b.insert("text/html".into(), model_html(&title, &layers).into());
    }
    b.insert("text/plain".into(), text.into());
    Some(b)
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A model as its description and a layer table with a bar per layer's density.
pub fn model_html(title: &str, layers: &[crate::model::LayerInfo]) -> String {
    let mut h = format!("<div class=\"sparselab-model\"><b>{}</b><table><thead><tr><th>layer</th><th>shape</th><th>active</th><th>total</th><th>density</th></tr></thead><tbody>", esc(title));
    for l in layers {
        let shape = l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        h.push_str(&format!(
            "<tr><td>{}</td><td>{shape}</td><td>{}</td><td>{}</td><td style=\"text-align:left\"><span style=\"display:inline-block;width:{:.0}px;height:0.8em;background:#1f77b4\"></span> {:.4}</td></tr>",
            esc(&l.name),
            l.active,
            l.total,
            (l.density * 120.0).clamp(1.0, 120.0),
            l.density
        ));
    }
    let (active, total): (i64, i64) = layers.iter().fold((0, 0), |(a, t), l| (a + l.active, t + l.total));
    h.push_str(&format!("</tbody></table>{active} of {total} weights active ({:.2} %)</div>", 100.0 * active as f64 / total.max(1) as f64));
    h
}

/// A run as a summary card and its learning curves (epochs counted from 1).
pub fn run_html(r: &crate::train::RunResult) -> String {
    let mut h = format!("<div class=\"sparselab-run\"><pre>{}</pre>", esc(&r.summary()));
    if !r.history.is_empty() {
        let x = |e: usize| (e + 1) as f64;
        let series: Vec<crate::plot::Series> = [
            ("train_loss", r.history.iter().map(|e| (x(e.epoch), e.train_loss)).collect::<Vec<_>>()),
            ("test_loss", r.history.iter().map(|e| (x(e.epoch), e.test_loss)).collect()),
            ("train_acc", r.history.iter().map(|e| (x(e.epoch), e.train_acc)).collect()),
            ("test_acc", r.history.iter().map(|e| (x(e.epoch), e.test_acc)).collect()),
        ]
        .into_iter()
        .map(|(n, p)| crate::plot::Series::new(n, p.into_iter().filter(|q| q.1.is_finite()).collect()))
        .filter(|s| !s.points.is_empty())
        .collect();
        let opts = crate::plot::LearningCurveOptions { size: (640, 260), ..Default::default() };
        if let Ok(png) = crate::plot::learning_curves(&series, &opts).and_then(|c| c.to_png()) {
            h.push_str(&format!("<img alt=\"learning curves\" src=\"data:image/png;base64,{}\"/>", base64::engine::general_purpose::STANDARD.encode(png)));
        }
    }
    h.push_str("</div>");
    h
}

/// Executor hooks for the sparselab kernel: the whole script API, writing into
/// `runs/notebook/` (relative to the notebook's directory).
pub fn hooks(interrupt: Arc<AtomicBool>) -> RhaiHooks {
    let docs = crate::script::function_docs();
    let mut keys: Vec<String> = API.iter().flat_map(|d| d.options.iter().map(|o| o.0.to_string())).filter(|k| !k.contains(' ') && k != "...").collect();
    keys.sort();
    keys.dedup();
    RhaiHooks {
        engine: Box::new(|out: Rc<dyn Output>| {
            let sink = out.clone();
            // Warnings and errors are stderr; progress and notes are stdout, so
            // JupyterLab does not paint them as errors.
            crate::log::set_sink(Rc::new(move |line: &str| sink.stream(if crate::log::is_warning(line) { "stderr" } else { "stdout" }, &format!("{line}\n"))));
            let (live_out, shown) = (out.clone(), std::cell::Cell::new(None::<u64>));
            crate::log::replace_live(Some(Rc::new(move |l: &crate::log::Live| {
                let cell = crate::kernel::current_cell();
                let update = shown.get() == Some(cell);
                shown.set(Some(cell));
                live_out.display(live_mime(l), Some(&format!("sparselab-live-{cell}")), update);
            })));
            let mut e = engine(Context::new("runs/notebook", false));
            add_module_resolvers(&mut e, std::path::Path::new("."));
            e
        }),
        to_mime: Box::new(to_mime),
        docs,
        option_keys: keys,
        interrupt,
    }
}

/// Runs the kernel for `connection_file` (what `jupyter` launches).
pub fn run_kernel(connection_file: &std::path::Path) -> anyhow::Result<()> {
    let flag = crate::cancel::handle();
    let exec_flag = flag.clone();
    crate::kernel::run(connection_file, flag, move || Box::new(crate::kernel::RhaiExecutor::new(hooks(exec_flag))))
}

/// In the evcxr Rust kernel a DataFrame renders as an HTML table.
impl evcxr_runtime::Display for Frame {
    fn evcxr_display(&self) {
        evcxr_runtime::mime_type("text/html").text(self.to_html(HTML_ROWS));
    }
}

/// In the evcxr Rust kernel a chart renders as a PNG image.
impl evcxr_runtime::Display for Chart {
    fn evcxr_display(&self) {
        if let Ok(png) = self.to_png() {
            evcxr_runtime::mime_type("image/png").bytes(&png);
        }
    }
}

/// For Rust notebooks (evcxr): runs Rhai code with the full script API and returns
/// the value of its last expression as text.
pub fn rhai(code: &str) -> Result<String, String> {
    let mut e = engine(Context::new("runs/notebook", false));
    add_module_resolvers(&mut e, std::path::Path::new("."));
    e.eval::<Dynamic>(code).map(|v| crate::script::plain_text(&v).unwrap_or_else(|| v.to_string())).map_err(|err| err.to_string())
}
