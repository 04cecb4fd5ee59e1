//! Completion, inspection and completeness checks for Rhai cells, from the engine's
//! function metadata, the host's docs, the scope and the code being typed.

use std::collections::{BTreeMap, BTreeSet};

use rhai::{Engine, Scope, AST};
use serde_json::Value;

use super::rhai_syntax::{is_ident_char, is_identifier, scan, word_end, word_start, Open};
use super::{Completion, MimeBundle};

const KEYWORDS: &[&str] = &[
    "let",
    "const",
    "fn",
    "if",
    "else",
    "while",
    "loop",
    "for",
    "in",
    "do",
    "until",
    "break",
    "continue",
    "return",
    "throw",
    "try",
    "catch",
    "switch",
    "true",
    "false",
    "import",
    "export",
    "as",
    "private",
    "this",
    "global",
    "Fn",
    "call",
    "curry",
    "type_of",
    "is_def_var",
    "is_def_fn",
];

/// Most signatures shown for one overloaded name.
const MAX_SIGNATURES: usize = 12;

#[derive(Default)]
struct FnDoc {
    signatures: Vec<String>,
    doc: String,
}

/// Names and docs of the engine's API, gathered once at start-up.
pub(crate) struct Api {
    functions: BTreeMap<String, FnDoc>,
    /// Callable after a dot: functions taking at least one argument, and properties.
    members: BTreeSet<String>,
    option_keys: Vec<String>,
}

impl Api {
    pub(crate) fn new(engine: &Engine, docs: Vec<(String, String, String)>, option_keys: Vec<String>) -> Self {
        let mut functions: BTreeMap<String, FnDoc> = BTreeMap::new();
        let mut members = BTreeSet::new();
        for sig in engine.gen_fn_signatures(true) {
            let Some(open) = sig.find('(') else { continue };
            let name = &sig[..open];
            if let Some(prop) = name.strip_prefix("get$") {
                members.insert(prop.to_string());
                continue;
            }
            if !is_identifier(name) {
                continue;
            }
            if !sig[open + 1..].starts_with(')') {
                members.insert(name.to_string());
            }
            let entry = functions.entry(name.to_string()).or_default();
            if entry.signatures.len() < MAX_SIGNATURES && !entry.signatures.contains(&sig) {
                entry.signatures.push(sig);
            }
        }
        // Doc comments of functions registered with them (plugin modules, FuncRegistration).
        let metadata = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
        let metadata: Value = serde_json::from_str(&metadata).unwrap_or(Value::Null);
        for f in metadata.get("functions").and_then(Value::as_array).into_iter().flatten() {
            let (Some(name), Some(lines)) = (f.get("name").and_then(Value::as_str), f.get("docComments").and_then(Value::as_array)) else {
                continue;
            };
            let doc: Vec<&str> = lines.iter().filter_map(Value::as_str).map(strip_doc_marker).collect();
            let entry = functions.entry(name.to_string()).or_default();
            if entry.doc.is_empty() {
                entry.doc = doc.join("\n").trim().to_string();
            }
        }
        for (name, signature, doc) in docs {
            let entry = functions.entry(name).or_default();
            entry.signatures.retain(|s| *s != signature);
            entry.signatures.insert(0, signature);
            entry.doc = doc;
        }
        Self { functions, members, option_keys }
    }

    /// Candidates for the identifier that ends at `cursor` (code points).
    pub(crate) fn complete(&self, code: &str, cursor: usize, scope: &Scope, fns: &AST) -> Completion {
        let chars: Vec<char> = code.chars().collect();
        let cursor = cursor.min(chars.len());
        let start = word_start(&chars, cursor);
        let prefix: String = chars[start..cursor].iter().collect();
        let mut cands: Vec<(String, &str, String)> = Vec::new();
        let before = &chars[..start];
        let prev = before.iter().rev().find(|c| !c.is_whitespace());
        if before.last() == Some(&'.') {
            if before.len() >= 2 && before[before.len() - 2].is_ascii_digit() {
                return Completion { cursor_start: start, cursor_end: cursor, ..Default::default() };
            }
            for name in &self.members {
                cands.push((name.clone(), "function", self.signature(name)));
            }
        } else if scan(before).stack.last() == Some(&Open::Map) && matches!(prev, Some('{' | ',')) {
            for key in &self.option_keys {
                cands.push((key.clone(), "key", String::new()));
            }
        } else {
            for (name, _, _) in scope.iter_raw() {
                cands.push((name.to_string(), "variable", String::new()));
            }
            for (name, is_fn) in declared_names(code) {
                cands.push((name, if is_fn { "function" } else { "variable" }, String::new()));
            }
            for f in fns.iter_functions() {
                cands.push((f.name.to_string(), "function", format!("fn {}({})", f.name, f.params.join(", "))));
            }
            for name in self.functions.keys() {
                cands.push((name.clone(), "function", self.signature(name)));
            }
            for kw in KEYWORDS {
                cands.push((kw.to_string(), "keyword", String::new()));
            }
        }
        let mut seen = BTreeSet::new();
        cands.retain(|(text, ..)| text.starts_with(&prefix) && !text.is_empty() && seen.insert(text.clone()));
        Completion { matches: cands.iter().map(|c| c.0.clone()).collect(), types: cands.into_iter().map(|(_, kind, sig)| (kind.to_string(), sig)).collect(), cursor_start: start, cursor_end: cursor }
    }

    /// Docs of the name at `cursor`, or of the function whose call the cursor is in.
    pub(crate) fn inspect(&self, code: &str, cursor: usize, scope: &Scope, fns: &AST) -> Option<MimeBundle> {
        let chars: Vec<char> = code.chars().collect();
        let cursor = cursor.min(chars.len());
        let mut name: String = chars[word_start(&chars, cursor)..word_end(&chars, cursor)].iter().collect();
        if name.is_empty() {
            name = callee(&chars[..cursor])?;
        }
        let (plain, markdown) = if let Some(f) = fns.iter_functions().find(|f| f.name == name) {
            let sig = format!("fn {}({})", f.name, f.params.join(", "));
            let doc: Vec<&str> = f.comments.iter().map(|c| strip_doc_marker(c)).collect();
            let doc = doc.join("\n");
            (format!("{sig}\n\n{doc}"), format!("```rust\n{sig}\n```\n\n{doc}"))
        } else if let Some(f) = self.functions.get(&name) {
            let sigs = f.signatures.join("\n");
            (format!("{sigs}\n\n{}", f.doc), format!("```rust\n{sigs}\n```\n\n{}", f.doc))
        } else if let Some(value) = scope.get(&name) {
            let mut text = value.to_string();
            if text.chars().count() > 2000 {
                text = text.chars().take(2000).collect::<String>() + " …";
            }
            let head = format!("{name}: {}", value.type_name());
            (format!("{head}\n{text}"), format!("`{head}`\n\n```\n{text}\n```"))
        } else {
            return None;
        };
        let mut bundle = MimeBundle::new();
        bundle.insert("text/plain".into(), plain.trim_end().into());
        bundle.insert("text/markdown".into(), markdown.trim_end().into());
        Some(bundle)
    }

    fn signature(&self, name: &str) -> String {
        self.functions.get(name).and_then(|f| f.signatures.first().cloned()).unwrap_or_default()
    }
}

/// The function whose argument list is open at the end of `before`.
fn callee(before: &[char]) -> Option<String> {
    let mut depth = 0usize;
    for i in (0..before.len()).rev() {
        match before[i] {
            ')' => depth += 1,
            '(' if depth > 0 => depth -= 1,
            '(' => {
                let mut end = i;
                while end > 0 && before[end - 1].is_whitespace() {
                    end -= 1;
                }
                let name: String = before[word_start(before, end)..end].iter().collect();
                return is_identifier(&name).then_some(name);
            }
            _ => {}
        }
    }
    None
}

/// Names declared in `code` (`let`, `const`, `for`, `fn`), with whether each is a function.
fn declared_names(code: &str) -> Vec<(String, bool)> {
    let words: Vec<&str> = code.split(|c: char| !is_ident_char(c)).filter(|w| !w.is_empty()).collect();
    words
        .windows(2)
        .filter_map(|w| match w[0] {
            "let" | "const" | "for" => Some((w[1].to_string(), false)),
            "fn" => Some((w[1].to_string(), true)),
            _ => None,
        })
        .filter(|(name, _)| is_identifier(name))
        .collect()
}

fn strip_doc_marker(line: &str) -> &str {
    let line = line.trim_start();
    let line = line.strip_prefix("///").or_else(|| line.strip_prefix("/**")).unwrap_or(line);
    let line = line.strip_suffix("*/").unwrap_or(line);
    line.strip_prefix(' ').unwrap_or(line)
}
