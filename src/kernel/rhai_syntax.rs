//! Lexical helpers for Rhai cells: open brackets, strings and comments at a
//! point, identifier boundaries, and whether a cell is complete.

use rhai::{Engine, LexError, ParseErrorType};

use super::IsComplete;

/// `Complete`, `Incomplete` (unclosed block, bracket or string) or `Invalid`.
pub(crate) fn is_complete(engine: &Engine, code: &str) -> IsComplete {
    let chars: Vec<char> = code.chars().collect();
    let state = scan(&chars);
    let indent = "    ".repeat(state.stack.len());
    if state.in_string || state.in_comment {
        return IsComplete::Incomplete(indent);
    }
    let Err(err) = engine.compile(code) else {
        return IsComplete::Complete;
    };
    let last_line = code.trim_end().lines().count().max(1);
    let at_end = err.position().line().is_none_or(|l| l >= last_line);
    match err.err_type() {
        ParseErrorType::UnexpectedEOF | ParseErrorType::BadInput(LexError::UnterminatedString) => IsComplete::Incomplete(indent),
        _ if at_end && !state.stack.is_empty() => IsComplete::Incomplete(indent),
        _ => IsComplete::Invalid,
    }
}

#[derive(Debug, PartialEq, Clone, Copy)]
pub(crate) enum Open {
    Paren,
    Bracket,
    Brace,
    Map,
}

/// Brackets still open at the end of `chars`, skipping strings and comments.
pub(crate) struct ScanState {
    pub(crate) stack: Vec<Open>,
    pub(crate) in_string: bool,
    pub(crate) in_comment: bool,
}

pub(crate) fn scan(chars: &[char]) -> ScanState {
    let mut st = ScanState { stack: Vec::new(), in_string: false, in_comment: false };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                if i >= chars.len() {
                    st.in_comment = true;
                }
                i += 1;
            }
            '"' | '`' | '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    st.in_string = true;
                }
            }
            '#' if next == Some('{') => {
                st.stack.push(Open::Map);
                i += 1;
            }
            '(' => st.stack.push(Open::Paren),
            '[' => st.stack.push(Open::Bracket),
            '{' => st.stack.push(Open::Brace),
            ')' | ']' | '}' => {
                st.stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    st
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(is_ident_char)
}

pub(crate) fn word_start(chars: &[char], cursor: usize) -> usize {
    let mut i = cursor;
    while i > 0 && is_ident_char(chars[i - 1]) {
        i -= 1;
    }
    i
}

pub(crate) fn word_end(chars: &[char], cursor: usize) -> usize {
    let mut i = cursor;
    while i < chars.len() && is_ident_char(chars[i]) {
        i += 1;
    }
    i
}
