//! The script API's documentation, generated from what [`engine`](super::engine)
//! registers plus our descriptions (STYLE rule 7). Signatures (parameter and return
//! types, every overload) come from the engine's function metadata; the entries of
//! [`API`] add parameter names, the description, the options and an example.
//! `sparselab doc` prints the result, docs/script-api.md is generated from it, the
//! notebook kernel's inspect and completion read it, every example runs as a test,
//! and a test fails when a registered function has no entry or an entry names a
//! function that is not registered ([`coverage`]).
mod table;

pub use table::API;

use rhai::Engine;
use serde_json::Value;
use std::any::type_name;

/// One documented function, property or group of them.
#[derive(Clone, Copy, Debug)]
pub struct ApiDoc {
    /// Heading: the function, or the group of functions, documented.
    pub name: &'static str,
    /// What the entry documents, one registered name each, with parameter names:
    /// `train(model, data, options?)` (a function; `?` marks trailing parameters
    /// that some overloads lack), `DataFrame.sort(column, descending?)` (a method of
    /// a type, named as scripts see it), `Run.test_acc` (a property). A trailing
    /// `-> text` describes a return type registered only as map, array or any.
    /// The types themselves come from the registration.
    pub usage: &'static [&'static str],
    /// What it does.
    pub doc: &'static str,
    /// Options of its `#{ ... }` map: (key, default, meaning).
    pub options: &'static [(&'static str, &'static str, &'static str)],
    /// A runnable example (runs as a test unless `not_run` says why not).
    pub example: &'static str,
    /// Empty, or why the example cannot run as a test (it is still compiled).
    pub not_run: &'static str,
}

/// Registered names that are Rhai protocol rather than API: `to_string` is what
/// `print` and string interpolation call for each of our types.
const PROTOCOL: &[&str] = &["to_string"];

/// One registered function as a script sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Registered {
    /// Its name; `get$x` is the getter of property `x`.
    pub name: String,
    /// Parameter types as scripts name them (`Model`, `map`, `string`, `int`, ...).
    pub params: Vec<String>,
    /// Return type, likewise; empty for `()`.
    pub ret: String,
}

impl Registered {
    /// `name(T1, T2) -> R`, or `Type.x -> R` for a getter.
    pub fn plain(&self) -> String {
        let ret = if self.ret.is_empty() { String::new() } else { format!(" -> {}", self.ret) };
        match self.name.strip_prefix("get$") {
            Some(prop) => format!("{}.{prop}{ret}", self.params.first().map(String::as_str).unwrap_or("?")),
            None => format!("{}({}){ret}", self.name, self.params.join(", ")),
        }
    }
}

/// The functions, methods and getters sparselab registers in `engine` (Rhai's own
/// packages, operators and the [`PROTOCOL`] names left out), sorted by name and
/// arity. Read from the engine's function metadata (rhai's `metadata` feature).
pub fn registered(engine: &Engine) -> Vec<Registered> {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let meta: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    let mut out: Vec<Registered> = meta
        .get("functions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let name = f.get("name")?.as_str()?.to_string();
            let ident = name.strip_prefix("get$").unwrap_or(&name);
            if !is_identifier(ident) || PROTOCOL.contains(&name.as_str()) {
                return None;
            }
            let n = f.get("numParams").and_then(Value::as_u64).unwrap_or(0) as usize;
            let info = f.get("params").and_then(Value::as_array);
            let params = (0..n).map(|i| info.and_then(|p| p.get(i)?.get("type")?.as_str()).map_or_else(|| "?".to_string(), |t| readable(engine, t))).collect();
            let ret = f.get("returnType").and_then(Value::as_str).map(|t| readable(engine, t)).unwrap_or_default();
            Some(Registered { name, params, ret })
        })
        .collect();
    out.sort_by(|a, b| (&a.name, a.params.len(), &a.params).cmp(&(&b.name, b.params.len(), &b.params)));
    out.dedup();
    out
}

fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Rust type name as a script sees it: `&mut` and `Result<T, _>` dropped,
/// registered types by their script names, `i64` as int, `()` as nothing.
fn readable(engine: &Engine, ty: &str) -> String {
    let ty = ty.trim();
    let ty = ty.strip_prefix("&mut ").unwrap_or(ty).trim();
    if let Some(inner) = result_inner(ty) {
        return readable(engine, inner);
    }
    // Rhai's metadata drops the spaces inside type names (`BTreeMap<K,V>`).
    let compact = ty.replace(' ', "");
    let std_names = [(type_name::<rhai::Map>(), "map"), (type_name::<rhai::Array>(), "array"), (type_name::<rhai::Dynamic>(), "any"), (type_name::<rhai::FnPtr>(), "Fn")];
    if let Some((_, name)) = std_names.iter().find(|(rust, _)| rust.replace(' ', "") == compact) {
        return name.to_string();
    }
    let t = engine.map_type_name(ty);
    match t.rsplit("::").next().unwrap_or(t) {
        "" | "()" => String::new(),
        "i64" | "i32" | "usize" | "INT" => "int".into(),
        "f64" | "f32" | "FLOAT" => "float".into(),
        "Dynamic" => "any".into(),
        t => t.to_string(),
    }
}

/// `T` of `...Result<T, E>`.
fn result_inner(ty: &str) -> Option<&str> {
    let start = ty.find("Result<")? + "Result<".len();
    let body = ty.strip_suffix('>')?.get(start..)?;
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return Some(body[..i].trim()),
            _ => {}
        }
    }
    Some(body.trim())
}

#[derive(Debug, PartialEq)]
enum Form {
    Function,
    Method(String),
    Getter(String),
}

/// A parsed [`ApiDoc::usage`] line.
#[derive(Debug)]
struct Usage {
    form: Form,
    name: String,
    params: Vec<String>,
    optional: usize,
    ret: Option<String>,
}

/// Return types a usage line may describe more precisely.
const VAGUE: &[&str] = &["map", "array", "any"];

impl Usage {
    fn parse(line: &str) -> Result<Self, String> {
        let (head, ret) = match line.split_once(" -> ") {
            Some((h, r)) => (h.trim(), Some(r.trim().to_string())),
            None => (line.trim(), None),
        };
        let (callee, args) = match head.split_once('(') {
            Some((c, rest)) => (c, Some(rest.strip_suffix(')').ok_or_else(|| format!("{line:?}: no closing parenthesis"))?)),
            None => (head, None),
        };
        let (receiver, name) = match callee.split_once('.') {
            Some((t, n)) => (Some(t.to_string()), n.to_string()),
            None => (None, callee.to_string()),
        };
        if !is_identifier(&name) {
            return Err(format!("{line:?}: {name:?} is not a function name"));
        }
        let (mut params, mut optional) = (Vec::new(), 0);
        for p in args.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.strip_suffix('?') {
                Some(p) => {
                    optional += 1;
                    params.push(p.to_string());
                }
                None if optional > 0 => return Err(format!("{line:?}: {p} follows an optional parameter")),
                None => params.push(p.to_string()),
            }
        }
        let form = match (receiver, args.is_some()) {
            (None, true) => Form::Function,
            (Some(t), true) => Form::Method(t),
            (Some(t), false) => Form::Getter(t),
            (None, false) => return Err(format!("{line:?}: neither name(params) nor Type.property")),
        };
        Ok(Self { form, name, params, optional, ret })
    }

    /// The registered name this line documents.
    fn registered_name(&self) -> String {
        match self.form {
            Form::Getter(_) => format!("get${}", self.name),
            _ => self.name.clone(),
        }
    }

    /// Parameter counts, receiver included, that registrations must cover.
    fn arities(&self) -> std::ops::RangeInclusive<usize> {
        let extra = usize::from(self.form != Form::Function);
        self.params.len() - self.optional + extra..=self.params.len() + extra
    }

    fn matches(&self, r: &Registered) -> bool {
        let receiver_ok = match &self.form {
            Form::Function => true,
            Form::Method(t) | Form::Getter(t) => r.params.first() == Some(t),
        };
        r.name == self.registered_name() && receiver_ok && self.arities().contains(&r.params.len())
    }

    /// `r` as this line shows it, with parameter names.
    fn render(&self, r: &Registered) -> String {
        let ret = self.ret.as_deref().unwrap_or(&r.ret);
        let ret = if ret.is_empty() { String::new() } else { format!(" -> {ret}") };
        let args = |types: &[String]| types.iter().zip(&self.params).map(|(t, n)| format!("{n}: {t}")).collect::<Vec<_>>().join(", ");
        match &self.form {
            Form::Function => format!("{}({}){ret}", self.name, args(&r.params)),
            Form::Method(t) => format!("{t}.{}({}){ret}", self.name, args(&r.params[1..])),
            Form::Getter(t) => format!("{t}.{}{ret}", self.name),
        }
    }
}

/// Every registered overload an entry documents, as a script calls it, in the
/// order of its usage lines, fewer parameters first.
pub fn signatures(regs: &[Registered], doc: &ApiDoc) -> Vec<String> {
    let mut out = Vec::new();
    for line in doc.usage {
        let Ok(u) = Usage::parse(line) else { continue };
        for r in regs.iter().filter(|r| u.matches(r)) {
            let s = u.render(r);
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// What the documentation and the engine disagree on.
#[derive(Debug, Default)]
pub struct Coverage {
    /// Registered functions no entry documents, as `name(types) -> type`.
    pub undocumented: Vec<String>,
    /// Usage lines naming nothing registered (or an overload that is not), or malformed.
    pub unregistered: Vec<String>,
}

impl Coverage {
    /// Nothing to report.
    pub fn is_complete(&self) -> bool {
        self.undocumented.is_empty() && self.unregistered.is_empty()
    }
}

/// Compares `api` with what `engine` registers.
pub fn coverage(engine: &Engine, api: &[ApiDoc]) -> Coverage {
    let regs = registered(engine);
    let mut cov = Coverage::default();
    let mut usages = Vec::new();
    for d in api {
        for line in d.usage {
            match Usage::parse(line) {
                Ok(u) => usages.push((d.name, *line, u)),
                Err(e) => cov.unregistered.push(format!("{}: {e}", d.name)),
            }
        }
    }
    for r in &regs {
        if !usages.iter().any(|(_, _, u)| u.matches(r)) {
            cov.undocumented.push(r.plain());
        }
    }
    for (entry, line, u) in &usages {
        for n in u.arities() {
            let found: Vec<&Registered> = regs.iter().filter(|r| u.matches(r) && r.params.len() == n).collect();
            if found.is_empty() {
                cov.unregistered.push(format!("{entry}: {line} (no {} with {n} parameter(s) is registered)", u.registered_name()));
            }
            if let Some(ret) = &u.ret {
                for r in found.iter().filter(|r| !VAGUE.contains(&r.ret.as_str())) {
                    cov.unregistered.push(format!("{entry}: {line} says -> {ret}, but {} returns {}", r.plain(), r.ret));
                }
            }
        }
    }
    cov
}

/// An engine with the whole API, for reading its metadata (nothing runs).
fn probe() -> Engine {
    super::engine(super::Context::new(std::env::temp_dir().join("sparselab-doc"), true))
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading.to_lowercase().chars().filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' ')).map(|c| if c == ' ' { '-' } else { c }).collect()
}

/// The API reference as Markdown (docs/script-api.md), from the registered functions.
pub fn api_markdown() -> String {
    let regs = registered(&probe());
    let mut s = String::from(
        "# sparselab script API\n\nGenerated by `sparselab doc` (src/script/docs.rs): signatures from the functions the engine registers, descriptions, options and examples from src/script/docs/table.rs. Tests fail when this file is stale, when a registered function is undocumented, or when an example fails. Every value prints with `print`.\n\n",
    );
    s += &API.iter().map(|d| format!("[{}](#{})", d.name, anchor(d.name))).collect::<Vec<_>>().join(" · ");
    s += "\n";
    for d in API {
        s += &format!("\n## {}\n\n```text\n{}\n```\n\n{}\n", d.name, signatures(&regs, d).join("\n"), d.doc);
        if !d.options.is_empty() {
            s += "\n| option | default | meaning |\n| --- | --- | --- |\n";
            for (k, def, m) in d.options {
                s += &format!("| `{k}` | `{def}` | {m} |\n");
            }
        }
        if !d.not_run.is_empty() {
            s += &format!("\nNot run as a test: {}\n", d.not_run);
        }
        s += &format!("\n```rhai\n{}\n```\n", d.example);
    }
    s
}

/// `(name, signature, markdown doc)` per registered overload, for the notebook
/// kernel's inspect and completion (properties are left out: they are not callable).
/// The kernel puts each signature in front of those it has, so a name's overloads
/// come last first; a name documented by several entries (`save`) gets all their docs.
pub fn function_docs() -> Vec<(String, String, String)> {
    let regs = registered(&probe());
    let mut by_name: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for d in API {
        let mut doc = d.doc.to_string();
        if !d.options.is_empty() {
            doc += "\n\n| option | default | meaning |\n| --- | --- | --- |\n";
            doc += &d.options.iter().map(|(k, def, m)| format!("| `{k}` | `{def}` | {m} |")).collect::<Vec<_>>().join("\n");
        }
        for line in d.usage {
            let Ok(u) = Usage::parse(line) else { continue };
            if matches!(u.form, Form::Getter(_)) {
                continue;
            }
            let i = match by_name.iter().position(|e| e.0 == u.name) {
                Some(i) => i,
                None => {
                    by_name.push((u.name.clone(), Vec::new(), Vec::new()));
                    by_name.len() - 1
                }
            };
            by_name[i].1.extend(regs.iter().filter(|r| u.matches(r)).map(|r| u.render(r)));
            if !by_name[i].2.contains(&doc) {
                by_name[i].2.push(doc.clone());
            }
        }
    }
    by_name
        .into_iter()
        .flat_map(|(name, sigs, docs)| {
            let doc = docs.join("\n\n");
            sigs.into_iter().rev().map(move |s| (name.clone(), s, doc.clone()))
        })
        .collect()
}
