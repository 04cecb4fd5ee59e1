//! Name lookup shared by scripts and Rust: unknown names list the valid ones and
//! suggest the nearest (STYLE rule 10).
use crate::error::Error;

/// Finds `name` (case-insensitive, `-`/`_` ignored) among `valid` and returns its index.
///
/// # Errors
/// [`Error::UnknownName`] listing every valid name and the nearest one.
pub fn lookup(what: &'static str, name: &str, valid: &[&str]) -> Result<usize, Error> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '_', ' '], "");
    let wanted = norm(name);
    if let Some(i) = valid.iter().position(|v| norm(v) == wanted) {
        return Ok(i);
    }
    Err(Error::UnknownName { what, name: name.to_string(), hint: did_you_mean(name, valid.iter().copied()), valid: valid.join(", ") })
}

/// [`lookup`] for an option key: the error names the key (`scope: unknown scope "x" ...`).
///
/// # Errors
/// As [`lookup`], prefixed by `key`.
pub fn lookup_key(key: &'static str, name: &str, valid: &[&str]) -> Result<usize, Error> {
    lookup(key, name, valid).map_err(|e| Error::config(key, e.to_string()))
}

/// ` (did you mean "x"?)` when some candidate is within a third of the name's length
/// in edit distance, else an empty string.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let best = candidates.into_iter().map(|c| (edit_distance(&name.to_ascii_lowercase(), &c.to_ascii_lowercase()), c)).min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= (name.len().max(3) / 3).max(2) => format!(" (did you mean {c:?}?)"),
        _ => String::new(),
    }
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_nearest_and_lists_valid() {
        let err = lookup("optimizer", "adamm", &["sgd", "adam", "adamw"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown optimizer \"adamm\" (did you mean \"adam\"?); valid: sgd, adam, adamw");
        assert_eq!(lookup("x", "Adam-W", &["sgd", "adam", "adamw"]).unwrap(), 2);
        assert_eq!(edit_distance("optimiser", "optimizer"), 1);
        assert_eq!(did_you_mean("zzzzzz", ["sgd"]), "");
    }
}
