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

/// One live task as HTML: title, progress bar, status line and its charts. `class`
/// is `sparselab-live` for the display's main task and `sparselab-live-run` for the
/// run under way inside a study or search.
fn live_block(l: &crate::log::Live, class: &str) -> String {
    let mut html = format!(
        "<div class=\"{class}\" data-kind=\"{}\" data-done=\"{}\" data-total=\"{}\" data-finished=\"{}\"><b>{}</b> <progress value=\"{}\" max=\"{}\"></progress> {}{}",
        l.kind.name(),
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
            html.push_str(&img("learning curves", &png));
        }
    }
    if !l.charts.is_empty() {
        html.push_str("<div>");
        for c in &l.charts {
            if let Some(png) = live_chart(c, (480, 260)).and_then(|c| c.to_png().ok()) {
                html.push_str(&img(&c.title, &png));
            }
        }
        html.push_str("</div>");
    }
    html.push_str("</div>");
    html
}

fn img(alt: &str, png: &[u8]) -> String {
    format!("<img alt=\"{}\" src=\"data:image/png;base64,{}\"/>", esc(alt), base64::engine::general_purpose::STANDARD.encode(png))
}

/// A [`crate::log::LiveChart`] drawn (`None` when it has no finite point yet).
pub fn live_chart(c: &crate::log::LiveChart, size: (u32, u32)) -> Option<Chart> {
    let series: Vec<crate::plot::Series> =
        c.series.iter().map(|(n, p)| crate::plot::Series::new(n.clone(), p.iter().copied().filter(|q| q.0.is_finite() && q.1.is_finite()).collect())).filter(|s| !s.points.is_empty()).collect();
    if series.is_empty() {
        return None;
    }
    if c.scatter {
        crate::plot::scatter(&series, &crate::plot::ScatterOptions { title: c.title.clone(), x_label: c.x_label.clone(), y_label: c.y_label.clone(), size, ..Default::default() }).ok()
    } else {
        crate::plot::line_chart(&[(String::new(), series)], &crate::plot::LineOptions { title: c.title.clone(), x_label: c.x_label.clone(), y_label: c.y_label.clone(), size, ..Default::default() })
            .ok()
    }
}

/// A live task's block as the main part of a display (drawn once per task update,
/// not again for each update of the run inside it).
pub fn task_block(task: &crate::log::Live) -> String {
    live_block(task, "sparselab-live")
}

/// A live display: a study's or search's state (`task`, with its [`task_block`]) and
/// the run under way inside it, or a lone run. A `run` beside a finished task is one
/// that started after it and is shown on its own.
pub fn live_mime(task: Option<(&crate::log::Live, &str)>, run: Option<&crate::log::Live>) -> MimeBundle {
    let task_open = task.is_some_and(|(t, _)| !t.finished);
    let mut html = task.map(|(_, block)| block.to_string()).unwrap_or_default();
    let mut text: Vec<String> = task.map(|(t, _)| format!("{}: {}", t.title, t.status)).into_iter().collect();
    if let Some(r) = run {
        html.push_str(&live_block(r, if task_open { "sparselab-live-run" } else { "sparselab-live" }));
        text.push(format!("{}: {}", r.title, r.status));
    }
    let mut b = MimeBundle::new();
    b.insert("text/html".into(), html.into());
    b.insert("text/plain".into(), text.join("\n").into());
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
    } else if let Some(m) = v.read_lock::<rhai::Map>() {
        if let Some(h) = map_html(&m) {
            b.insert("text/html".into(), h.into());
        }
    }
    b.insert("text/plain".into(), text.into());
    Some(b)
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A table cell with a density as a bar (120 px for 1) and its value.
fn density_cell(d: f64) -> String {
    format!("<td style=\"text-align:left\"><span style=\"display:inline-block;width:{:.0}px;height:0.8em;background:#1f77b4\"></span> {d:.4}</td>", (d * 120.0).clamp(1.0, 120.0))
}

/// A model as its description and a layer table with a bar per layer's density.
pub fn model_html(title: &str, layers: &[crate::model::LayerInfo]) -> String {
    let mut h = format!("<div class=\"sparselab-model\"><b>{}</b><table><thead><tr><th>layer</th><th>shape</th><th>active</th><th>total</th><th>density</th></tr></thead><tbody>", esc(title));
    for l in layers {
        let shape = l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        h.push_str(&format!("<tr><td>{}</td><td>{shape}</td><td>{}</td><td>{}</td>{}</tr>", esc(&l.name), l.active, l.total, density_cell(l.density)));
    }
    let (active, total): (i64, i64) = layers.iter().fold((0, 0), |(a, t), l| (a + l.active, t + l.total));
    h.push_str(&format!("</tbody></table>{active} of {total} weights active ({:.2} %)</div>", 100.0 * active as f64 / total.max(1) as f64));
    h
}

/// A run as a summary card and its learning curves (epochs counted from 1).
pub fn run_html(r: &crate::train::RunResult) -> String {
    let mut h = format!("<div class=\"sparselab-run\"><pre>{}</pre>", esc(&r.summary()));
    if !r.history.is_empty() {
        let opts = crate::plot::LearningCurveOptions { size: (640, 260), ..Default::default() };
        if let Ok(c) = crate::results::history_frame(r).and_then(|f| crate::results::history_chart(&f, None, &opts)) {
            h.push_str(&chart_img(&c));
        }
    }
    h.push_str("</div>");
    h
}

fn frame_of(m: &rhai::Map, key: &str) -> Option<Frame> {
    m.get(key).and_then(|v| v.read_lock::<Frame>().map(|f| f.clone()))
}

fn number(m: &rhai::Map, key: &str) -> Option<f64> {
    m.get(key).and_then(|v| v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64)))
}

fn chart_img(c: &Chart) -> String {
    c.to_png().map(|png| img("chart", &png)).unwrap_or_default()
}

/// Rich HTML for the maps the library returns: an SC-SDC result (`runs`, `test`),
/// a grid (`table`, `runs`), a search (`history`, `best`), and any other map whose
/// values include DataFrames or charts (each shown under its key).
pub fn map_html(m: &rhai::Map) -> Option<String> {
    if let (Some(runs), true) = (frame_of(m, "runs"), m.contains_key("test")) {
        return Some(study_html(&runs, m.get("test").and_then(|t| t.read_lock::<rhai::Map>().map(|t| t.clone()))));
    }
    if let (Some(table), Some(_)) = (frame_of(m, "table"), frame_of(m, "runs")) {
        return Some(grid_html(&table));
    }
    if let (Some(history), Some(best)) = (frame_of(m, "history"), m.get("best").and_then(|b| b.read_lock::<rhai::Map>().map(|b| b.clone()))) {
        return Some(search_html(&history, &best));
    }
    let mut h = String::new();
    for (k, v) in m.iter() {
        if let Some(f) = v.read_lock::<Frame>() {
            h.push_str(&format!("<div><b>{}</b>{}</div>", esc(k), f.to_html(HTML_ROWS)));
        } else if let Some(c) = v.read_lock::<Chart>() {
            h.push_str(&format!("<div><b>{}</b><br/>{}</div>", esc(k), chart_img(&c)));
        }
    }
    (!h.is_empty()).then(|| format!("<div class=\"sparselab-map\">{h}</div>"))
}

/// An SC-SDC result: its one-sided test, mean test accuracy per width and variant
/// (table and chart), and the runs.
pub fn study_html(runs: &Frame, test: Option<rhai::Map>) -> String {
    let mut h = String::from("<div class=\"sparselab-study\">");
    h.push_str(&match &test {
        Some(t) => format!(
            "<b>One-sided exact Wilcoxon signed-rank test (H1: sparse &gt; dense)</b>: W = {}, n = {}, <b>p = {:.4}</b>, median difference {:+.4}",
            number(t, "statistic").map_or("?".into(), |w| format!("{w}")),
            number(t, "n").map_or("?".into(), |n| format!("{n}")),
            number(t, "p_value").unwrap_or(f64::NAN),
            number(t, "median_diff").unwrap_or(f64::NAN)
        ),
        None => "<b>No test</b>: no finished pair (every run was another shard's or diverged)".to_string(),
    });
    if let (Ok(w), Ok(v), Ok(a)) = (runs.f64_column("dense_width"), runs.str_column("variant"), runs.f64_column("test_acc")) {
        let rows: Vec<(i64, &str, f64)> = w.iter().zip(&v).zip(&a).map(|((w, v), a)| (*w as i64, v.as_str(), *a)).collect();
        if let Some(c) = live_chart(&crate::experiment::study_chart(&rows), (640, 320)) {
            h.push_str(&format!("<br/>{}", chart_img(&c)));
        }
    }
    if let Ok(t) = runs.sql("select dense_width, variant, avg(test_acc) as test_acc, count(*) as runs from self group by dense_width, variant order by dense_width, variant desc") {
        h.push_str(&t.to_html(HTML_ROWS));
    }
    h.push_str(&format!("<details><summary>all {} runs</summary>{}</details></div>", runs.height(), runs.to_html(HTML_ROWS)));
    h
}

/// A grid: the p-value heatmap (optimizer x regularization, mean over the other
/// axes) and the table.
pub fn grid_html(table: &Frame) -> String {
    let mut h = String::from("<div class=\"sparselab-grid\">");
    if let Ok((chart, _)) = crate::experiment::pvalue_table(table, "optimizer", "regularization", "Wilcoxon signed-rank p-values (H1: sparse > dense)") {
        h.push_str(&chart_img(&chart));
    }
    h.push_str(&table.to_html(HTML_ROWS));
    h.push_str("</div>");
    h
}

/// A search: the best trial (its densities as bars), and the history charts.
pub fn search_html(history: &Frame, best: &rhai::Map) -> String {
    let mut h = String::from("<div class=\"sparselab-search\">");
    h.push_str(&format!(
        "<b>Best: trial {}</b>, score {:.4}, {} active weights, test accuracy {:.4}",
        number(best, "trial").map_or("?".into(), |t| format!("{t}")),
        number(best, "score").unwrap_or(f64::NAN),
        number(best, "active").map_or("?".into(), |a| format!("{a}")),
        number(best, "test_acc").unwrap_or(f64::NAN)
    ));
    if let Some(d) = best.get("densities").and_then(|d| d.read_lock::<rhai::Array>().map(|a| a.iter().filter_map(|x| x.as_float().ok()).collect::<Vec<f64>>())) {
        h.push_str("<table><thead><tr><th>layer</th><th>density</th></tr></thead><tbody>");
        for (i, x) in d.iter().enumerate() {
            h.push_str(&format!("<tr><td>d{}</td>{}</tr>", i + 1, density_cell(*x)));
        }
        h.push_str("</tbody></table>");
    }
    if let (Ok(t), Ok(s), Ok(d), Ok(v)) = (history.f64_column("trial"), history.f64_column("score"), history.f64_column("density"), history.f64_column("val_acc")) {
        let rows: Vec<(usize, f64, f64, f64)> = (0..t.len()).map(|i| (t[i] as usize, s[i], d[i], v[i])).collect();
        h.push_str("<div>");
        for c in crate::experiment::search_charts(&rows) {
            if let Some(c) = live_chart(&c, (480, 300)) {
                h.push_str(&chart_img(&c));
            }
        }
        h.push_str("</div>");
    }
    h.push_str(&format!("<details><summary>all {} trials</summary>{}</details></div>", history.height(), history.to_html(HTML_ROWS)));
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
            // One live display per cell: the study or search under way (if any) and
            // the training run under way.
            type Shown = (Option<u64>, Option<(crate::log::Live, String)>, Option<crate::log::Live>);
            let (live_out, shown) = (out.clone(), std::cell::RefCell::new((None, None, None) as Shown));
            crate::log::replace_live(Some(Rc::new(move |l: &crate::log::Live| {
                let cell = crate::kernel::current_cell();
                let mut s = shown.borrow_mut();
                let update = s.0 == Some(cell);
                if !update {
                    *s = (Some(cell), None, None);
                }
                if l.kind == crate::log::LiveKind::Run {
                    s.2 = Some(l.clone());
                } else if s.1.as_ref().is_none_or(|(t, _)| t.id == l.id || t.finished) {
                    // A finished task shows only its final state: its last run goes.
                    if l.finished {
                        s.2 = None;
                    }
                    s.1 = Some((l.clone(), task_block(l)));
                }
                live_out.display(live_mime(s.1.as_ref().map(|(t, b)| (t, b.as_str())), s.2.as_ref()), Some(&format!("sparselab-live-{cell}")), update);
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

// evcxr shows a cell's final value through an inherent `evcxr_display` method (no
// trait to bring into scope: a trait method needs a `use` in the cell, and without it
// evcxr fails the cell with "trait `Display` ... is not in scope").
impl Frame {
    /// In the evcxr Rust kernel a DataFrame renders as an HTML table (and plain text).
    pub fn evcxr_display(&self) {
        evcxr_runtime::mime_type("text/html").text(self.to_html(HTML_ROWS));
        evcxr_runtime::mime_type("text/plain").text(self.to_string());
    }
}

impl Chart {
    /// In the evcxr Rust kernel a chart renders as a PNG image.
    pub fn evcxr_display(&self) {
        match self.to_png() {
            Ok(png) => evcxr_runtime::mime_type("image/png").bytes(&png),
            Err(e) => evcxr_runtime::mime_type("text/plain").text(format!("chart not drawn: {e}")),
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
