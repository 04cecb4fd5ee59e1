//! In-memory input history of this kernel process, answering `history_request`
//! of types `tail`, `range` and `search` (glob patterns, as IPython does).

use serde_json::{json, Value};

/// Session number reported for this process (IPython numbers sessions from 1).
const SESSION: i64 = 1;

struct Entry {
    line: usize,
    input: String,
    output: Option<String>,
}

/// Cells run with `store_history`, in order.
#[derive(Default)]
pub(crate) struct History {
    entries: Vec<Entry>,
}

impl History {
    /// Records a cell's input under its execution count.
    pub(crate) fn push(&mut self, line: usize, input: &str) {
        self.entries.push(Entry { line, input: input.to_string(), output: None });
    }

    /// Attaches the `text/plain` result to the cell recorded under `line`.
    pub(crate) fn set_output(&mut self, line: usize, output: String) {
        if let Some(e) = self.entries.iter_mut().rev().find(|e| e.line == line) {
            e.output = Some(output);
        }
    }

    /// Answers a `history_request`, given its raw content; returns the `history` list.
    ///
    /// Reads the content leniently: missing `n`, `unique`, `session`, `stop` take
    /// IPython's defaults instead of failing the request.
    pub(crate) fn answer(&self, request: &Value) -> Vec<Value> {
        let get_i = |k: &str| request.get(k).and_then(Value::as_i64);
        let output = request.get("output").and_then(Value::as_bool).unwrap_or(false);
        let picked: Vec<&Entry> = match request.get("hist_access_type").and_then(Value::as_str) {
            Some("tail") => tail(self.entries.iter().collect(), get_i("n")),
            Some("search") => {
                let pattern = request.get("pattern").and_then(Value::as_str).unwrap_or("*");
                let unique = request.get("unique").and_then(Value::as_bool).unwrap_or(false);
                let mut hits: Vec<&Entry> = self.entries.iter().filter(|e| glob_match(pattern, &e.input)).collect();
                if unique {
                    // Keep the latest occurrence of each input, in history order.
                    let mut seen = std::collections::HashSet::new();
                    hits = hits.into_iter().rev().filter(|e| seen.insert(e.input.as_str())).collect();
                    hits.reverse();
                }
                tail(hits, get_i("n"))
            }
            _ => {
                let session = get_i("session").unwrap_or(0);
                if session != 0 && session != SESSION {
                    return Vec::new();
                }
                let start = get_i("start").unwrap_or(0).max(0) as usize;
                let stop = get_i("stop").filter(|&s| s > 0).map(|s| s as usize);
                self.entries.iter().filter(|e| e.line >= start && stop.is_none_or(|s| e.line < s)).collect()
            }
        };
        picked.into_iter().map(|e| if output { json!([SESSION, e.line, [e.input, e.output]]) } else { json!([SESSION, e.line, e.input]) }).collect()
    }
}

fn tail(entries: Vec<&Entry>, n: Option<i64>) -> Vec<&Entry> {
    match n {
        Some(n) if n >= 0 => {
            let n = n as usize;
            let skip = entries.len().saturating_sub(n);
            entries.into_iter().skip(skip).collect()
        }
        _ => entries,
    }
}

/// Glob matching as SQLite's GLOB (used by IPython): `*`, `?`, `[...]`, case-sensitive.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob_at(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob_at(&p[1..], &t[1..]),
        Some('[') => match (p.iter().position(|&c| c == ']'), t.first()) {
            (Some(close), Some(&c)) if close > 1 => {
                let set = &p[1..close];
                let (negate, set) = match set.first() {
                    Some('^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && glob_at(&p[close + 1..], &t[1..])
            }
            _ => false,
        },
        Some(&c) => t.first() == Some(&c) && glob_at(&p[1..], &t[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let mut h = History::default();
        for (i, code) in ["1 + 2 * 3", "let x = 5;", "1 + 2 * 3", "x"].iter().enumerate() {
            h.push(i + 1, code);
        }
        h.set_output(4, "5".into());
        h
    }

    #[test]
    fn glob() {
        assert!(glob_match("1 + 2*", "1 + 2 * 3"));
        assert!(glob_match("*x*", "let x = 5;"));
        assert!(!glob_match("x", "xy"));
        assert!(glob_match("[a-c]?", "bz"));
    }

    #[test]
    fn tail_range_search() {
        let h = sample();
        assert_eq!(h.answer(&json!({"hist_access_type": "tail", "n": 1})), vec![json!([1, 4, "x"])]);
        let out = h.answer(&json!({"hist_access_type": "tail", "n": 1, "output": true}));
        assert_eq!(out, vec![json!([1, 4, ["x", "5"]])]);
        let r = h.answer(&json!({"hist_access_type": "range", "session": 1, "start": 2, "stop": 3}));
        assert_eq!(r, vec![json!([1, 2, "let x = 5;"])]);
        let s = h.answer(&json!({"hist_access_type": "search", "pattern": "1 + 2*"}));
        assert_eq!(s.len(), 2);
        let u = h.answer(&json!({"hist_access_type": "search", "pattern": "1*", "unique": true}));
        assert_eq!(u, vec![json!([1, 3, "1 + 2 * 3"])]);
    }
}
