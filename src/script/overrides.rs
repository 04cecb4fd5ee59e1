//! `--set key=value`: replaces the value of a top-level `const key = ...;` or
//! `let key = ...;` in the script text, so shared scripts keep their defaults visible.
use crate::error::{Error, Result};

/// Applies `key=value` overrides (values are Rhai expressions: `5`, `0.1`, `"adam"`,
/// `[0.1, 0.5]`) to top-level constant definitions.
///
/// # Errors
/// A malformed pair, or a key with no top-level `const`/`let` definition (the
/// message lists the ones that exist).
pub fn apply_overrides(source: &str, sets: &[String]) -> Result<String> {
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(Error::config("--set", format!("{set:?} is not key=value")));
        };
        let (key, value) = (key.trim(), value.trim());
        let found = lines.iter().position(|l| definition(l).map(|(_, k, _)| k == key).unwrap_or(false));
        let Some(i) = found else {
            let names: Vec<String> = lines.iter().filter_map(|l| definition(l).map(|(_, k, _)| k.to_string())).collect();
            return Err(Error::config("--set", format!("no top-level `const {key} = ...;` in the script; definable: {}", if names.is_empty() { "none".into() } else { names.join(", ") })));
        };
        let (kw, k, comment) = definition(&lines[i]).expect("matched above");
        lines[i] = format!("{kw} {k} = {value};{comment}");
    }
    let mut out = lines.join("\n");
    if source.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// `const x = expr; // c` at column 0 -> ("const", "x", " // c").
fn definition(line: &str) -> Option<(&str, &str, String)> {
    let kw = ["const ", "let "].into_iter().find(|k| line.starts_with(k))?;
    let rest = &line[kw.len()..];
    let eq = rest.find('=')?;
    let name = rest[..eq].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let semi = rest.rfind(';')?;
    let tail = &rest[semi + 1..];
    let comment = if tail.trim_start().starts_with("//") { format!(" {}", tail.trim_start()) } else { String::new() };
    Some((kw.trim(), name, comment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_top_level_constants_only() {
        let src = "const epochs = 20; // full run\nlet lr = 0.1;\nfn f() {\n    let epochs = 3;\n}\n";
        let out = apply_overrides(src, &["epochs=2".into(), "lr=[0.1, 0.2]".into()]).unwrap();
        assert_eq!(out, "const epochs = 2; // full run\nlet lr = [0.1, 0.2];\nfn f() {\n    let epochs = 3;\n}\n");
        let e = apply_overrides(src, &["seed=1".into()]).unwrap_err().to_string();
        assert_eq!(e, "--set: no top-level `const seed = ...;` in the script; definable: epochs, lr");
    }
}
