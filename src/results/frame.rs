//! A thin wrapper over a polars DataFrame with the operations scripts use.
use crate::error::{Error, Result};
use polars::prelude::*;
use polars::sql::SQLContext;
use std::path::Path;

fn pe(context: &str) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| Error::config(context, e.to_string())
}

/// A table of results (cheap to clone: columns are shared).
#[derive(Clone, Debug, Default)]
pub struct Frame(pub DataFrame);

/// Builds a frame column by column (all columns must have the same length).
#[derive(Default)]
pub struct FrameBuilder {
    columns: Vec<Column>,
}

impl FrameBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a float column.
    pub fn f64(mut self, name: &str, v: Vec<f64>) -> Self {
        self.columns.push(Column::new(name.into(), v));
        self
    }
    /// Adds an optional float column (None = null).
    pub fn opt_f64(mut self, name: &str, v: Vec<Option<f64>>) -> Self {
        self.columns.push(Column::new(name.into(), v));
        self
    }
    /// Adds an integer column.
    pub fn i64(mut self, name: &str, v: Vec<i64>) -> Self {
        self.columns.push(Column::new(name.into(), v));
        self
    }
    /// Adds an optional integer column.
    pub fn opt_i64(mut self, name: &str, v: Vec<Option<i64>>) -> Self {
        self.columns.push(Column::new(name.into(), v));
        self
    }
    /// Adds a string column.
    pub fn str(mut self, name: &str, v: Vec<String>) -> Self {
        self.columns.push(Column::new(name.into(), v));
        self
    }
    /// Adds a boolean column.
    pub fn bool(mut self, name: &str, v: Vec<bool>) -> Self {
        self.columns.push(Column::new(name.into(), v));
        self
    }
    /// The frame.
    ///
    /// # Errors
    /// Columns of different lengths.
    pub fn build(self) -> Result<Frame> {
        DataFrame::new_infer_height(self.columns).map(Frame).map_err(pe("frame"))
    }
}

impl Frame {
    /// Rows.
    pub fn height(&self) -> usize {
        self.0.height()
    }

    /// Column names in order.
    pub fn columns(&self) -> Vec<String> {
        self.0.get_column_names().iter().map(|s| s.to_string()).collect()
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Frame {
        Frame(self.0.head(Some(n)))
    }

    /// Runs a polars SQL query in which the frame is the table `self`.
    ///
    /// # Errors
    /// SQL errors, verbatim from polars.
    pub fn sql(&self, query: &str) -> Result<Frame> {
        let mut ctx = SQLContext::new();
        ctx.register("self", self.0.clone().lazy());
        ctx.execute(query).and_then(|lf| lf.collect()).map(Frame).map_err(pe("sql"))
    }

    /// Sorted by `column`.
    pub fn sort(&self, column: &str, descending: bool) -> Result<Frame> {
        self.0.sort([column], SortMultipleOptions::default().with_order_descending(descending)).map(Frame).map_err(|e| self.column_error(column, e))
    }

    fn column_error(&self, column: &str, e: PolarsError) -> Error {
        if !self.columns().iter().any(|c| c == column) {
            let hint = crate::registry::did_you_mean(column, self.columns().iter().map(|s| s.as_str()));
            return Error::config("column", format!("no column {column:?}{hint}; columns: {}", self.columns().join(", ")));
        }
        Error::config("column", e.to_string())
    }

    /// A column's values as f64 (nulls and non-numbers as NaN).
    pub fn f64_column(&self, column: &str) -> Result<Vec<f64>> {
        let c = self.0.column(column).map_err(|e| self.column_error(column, e))?;
        let c = c.cast(&DataType::Float64).map_err(pe("column"))?;
        Ok((0..c.len()).map(|i| c.get(i).ok().and_then(|v| v.extract::<f64>()).unwrap_or(f64::NAN)).collect())
    }

    /// A column's values as strings (nulls as empty).
    pub fn str_column(&self, column: &str) -> Result<Vec<String>> {
        let c = self.0.column(column).map_err(|e| self.column_error(column, e))?;
        Ok((0..c.len())
            .map(|i| match c.get(i) {
                Ok(AnyValue::String(s)) => s.to_string(),
                Ok(AnyValue::StringOwned(s)) => s.to_string(),
                Ok(AnyValue::Null) | Err(_) => String::new(),
                Ok(v) => v.to_string(),
            })
            .collect())
    }

    /// Cell values of a column as polars AnyValues converted by `f`.
    pub fn map_column<T>(&self, column: &str, f: impl Fn(AnyValue<'_>) -> T) -> Result<Vec<T>> {
        let c = self.0.column(column).map_err(|e| self.column_error(column, e))?;
        (0..c.len()).map(|i| c.get(i).map(&f).map_err(pe("column"))).collect()
    }

    /// This frame's columns followed by `other`'s (same height).
    pub fn hstack(&self, other: &Frame) -> Result<Frame> {
        let mut df = self.0.clone();
        df.hstack_mut(other.0.columns()).map_err(pe("frame"))?;
        Ok(Frame(df))
    }

    /// Stacks frames with the same columns.
    pub fn vstack(frames: &[Frame]) -> Result<Frame> {
        let mut it = frames.iter();
        let Some(first) = it.next() else { return Ok(Frame::default()) };
        let mut df = first.0.clone();
        for f in it {
            df.vstack_mut(&f.0).map_err(pe("frame"))?;
        }
        Ok(Frame(df))
    }

    /// Writes CSV.
    pub fn to_csv(&self, path: &Path) -> Result<()> {
        let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        CsvWriter::new(&mut file).finish(&mut self.0.clone()).map_err(pe("csv"))
    }

    /// Writes Parquet (readable by polars and pandas).
    pub fn to_parquet(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        ParquetWriter::new(file).finish(&mut self.0.clone()).map(|_| ()).map_err(pe("parquet"))
    }

    /// Reads CSV with a header row.
    pub fn read_csv(path: &Path) -> Result<Frame> {
        CsvReadOptions::default().with_has_header(true).try_into_reader_with_file_path(Some(path.to_path_buf())).and_then(|r| r.finish()).map(Frame).map_err(|e| Error::data(path, e.to_string()))
    }

    /// Reads Parquet.
    pub fn read_parquet(path: &Path) -> Result<Frame> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        ParquetReader::new(file).finish().map(Frame).map_err(|e| Error::data(path, e.to_string()))
    }

    /// An HTML table (for notebooks), at most `max_rows` rows.
    pub fn to_html(&self, max_rows: usize) -> String {
        let cols = self.columns();
        let mut s = String::from("<table class=\"dataframe\"><thead><tr>");
        for c in &cols {
            s += &format!("<th>{}</th>", html_escape(c));
        }
        s += "</tr></thead><tbody>";
        for i in 0..self.height().min(max_rows) {
            s += "<tr>";
            for c in self.0.columns() {
                let v = c.get(i).map(|v| fmt_cell(&v)).unwrap_or_default();
                s += &format!("<td>{}</td>", html_escape(&v));
            }
            s += "</tr>";
        }
        s += "</tbody></table>";
        if self.height() > max_rows {
            s += &format!("<p>{} rows x {} columns (first {max_rows} shown)</p>", self.height(), cols.len());
        }
        s
    }
}

fn fmt_cell(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::Float64(f) => format!("{f:.6}").trim_end_matches('0').trim_end_matches('.').to_string(),
        AnyValue::Float32(f) => format!("{f}"),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Null => String::new(),
        v => v.to_string(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Frame {
    /// Stacks frames whose columns may differ (missing columns become null), as
    /// records from different sweeps in one store do.
    pub fn vstack_relaxed(frames: &[Frame]) -> Result<Frame> {
        if frames.is_empty() {
            return Ok(Frame::default());
        }
        let lfs: Vec<LazyFrame> = frames.iter().map(|f| f.0.clone().lazy()).collect();
        let args = UnionArgs { diagonal: true, to_supertypes: true, ..Default::default() };
        concat(lfs, args).and_then(|lf| lf.collect()).map(Frame).map_err(pe("frame"))
    }
}
