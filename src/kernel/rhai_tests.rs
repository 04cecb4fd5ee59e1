//! Tests of [`RhaiExecutor`] through the [`Executor`] trait, with a recording [`Output`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Executor, IsComplete, MimeBundle, Output, RhaiExecutor, RhaiHooks};

#[derive(Default)]
struct Recorder(RefCell<Vec<String>>);

impl Output for Recorder {
    fn stream(&self, name: &str, text: &str) {
        self.0.borrow_mut().push(format!("{name}:{text}"));
    }
    fn display(&self, data: MimeBundle, _: Option<&str>, _: bool) {
        self.0.borrow_mut().push(format!("display:{}", serde_json::Value::Object(data)));
    }
    fn clear(&self, wait: bool) {
        self.0.borrow_mut().push(format!("clear:{wait}"));
    }
}

fn executor() -> (RhaiExecutor, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(false));
    let mut hooks = RhaiHooks::new(flag.clone());
    hooks.option_keys = vec!["epochs".into(), "lr".into()];
    hooks.docs = vec![("print".into(), "print(x)".into(), "Prints `x`.".into())];
    (RhaiExecutor::new(hooks), flag)
}

fn run(ex: &mut RhaiExecutor, code: &str) -> (Result<Option<MimeBundle>, super::CellError>, Vec<String>) {
    let rec = Rc::new(Recorder::default());
    let result = ex.execute(code, rec.clone());
    let events = rec.0.borrow().clone();
    (result, events)
}

fn plain(result: Result<Option<MimeBundle>, super::CellError>) -> String {
    result.unwrap().unwrap()["text/plain"].as_str().unwrap().to_string()
}

#[test]
fn state_and_functions_persist_across_cells() {
    let (mut ex, _) = executor();
    assert!(run(&mut ex, "fn double(x) { x * 2 } let a = 20;").0.unwrap().is_none());
    assert_eq!(plain(run(&mut ex, "double(a) + 2").0), "42");
    run(&mut ex, "fn triple(x) { x * 3 }").0.unwrap();
    assert_eq!(plain(run(&mut ex, "double(1) + triple(1)").0), "5");
}

#[test]
fn print_streams_and_builtins_exist() {
    let (mut ex, _) = executor();
    let (_, events) = run(&mut ex, "print(\"hi\"); eprint(1); display(2); clear_output();");
    assert_eq!(events[0], "stdout:hi\n");
    assert_eq!(events[1], "stderr:1\n");
    assert!(events[2].starts_with("display:"));
    assert_eq!(events[3], "clear:false");
}

#[test]
fn errors_name_class_and_line() {
    let (mut ex, _) = executor();
    let err = run(&mut ex, "let a = 1;\nthrow \"boom\";").0.unwrap_err();
    assert_eq!((err.ename.as_str(), err.evalue.as_str()), ("RuntimeError", "boom"));
    assert!(err.traceback.iter().any(|l| l == "line 2: throw \"boom\";"), "{:?}", err.traceback);
    let err = run(&mut ex, "let = 5;").0.unwrap_err();
    assert_eq!(err.ename, "ParseError");
    let err = run(&mut ex, "fn f(x) {\n  x + nope\n}").0;
    assert!(err.is_ok());
    let err = run(&mut ex, "f(1)").0.unwrap_err();
    assert_eq!(err.ename, "VariableNotFound");
    assert!(!err.evalue.contains("line"), "{}", err.evalue);
    assert!(err.traceback.iter().any(|l| l == "line 2:   x + nope"), "{:?}", err.traceback);
}

#[test]
fn interrupt_keeps_scope() {
    let (mut ex, flag) = executor();
    run(&mut ex, "let kept = 7;").0.unwrap();
    flag.store(true, Ordering::SeqCst);
    let err = run(&mut ex, "loop { }").0.unwrap_err();
    assert_eq!(err.ename, "Interrupted");
    flag.store(false, Ordering::SeqCst);
    assert_eq!(plain(run(&mut ex, "kept").0), "7");
}

#[test]
fn shadowed_variables_are_dropped() {
    let (mut ex, _) = executor();
    for _ in 0..3 {
        run(&mut ex, "let big = [1, 2, 3];").0.unwrap();
    }
    assert_eq!(ex_scope_len(&ex), 1);
}

fn ex_scope_len(ex: &RhaiExecutor) -> usize {
    ex.scope_len()
}

#[test]
fn is_complete_cases() {
    let (mut ex, _) = executor();
    for code in ["1 + 2", "let x = 5;", "fn f() { 1 }", "", "print(\"a\")"] {
        assert_eq!(ex.is_complete(code), IsComplete::Complete, "{code:?}");
    }
    for code in ["fn f() {", "let x = [1, 2,", "print(1", "let s = \"abc", "if true {\n  1", "let m = #{ a: 1,", "/* open"] {
        assert!(matches!(ex.is_complete(code), IsComplete::Incomplete(_)), "{code:?}: {:?}", ex.is_complete(code));
    }
    for code in ["let = 5;", "1 2", "}", "let x = ;"] {
        assert_eq!(ex.is_complete(code), IsComplete::Invalid, "{code:?}");
    }
}

#[test]
fn completion_contexts() {
    let (mut ex, _) = executor();
    run(&mut ex, "let zebra_count = 1; fn zebra_fn(x) { x }").0.unwrap();
    let c = ex.complete("zeb", 3);
    assert_eq!(c.matches, vec!["zebra_count", "zebra_fn"]);
    assert_eq!((c.cursor_start, c.cursor_end), (0, 3));
    let c = ex.complete("let yak_1 = 2; yak", 18);
    assert_eq!(c.matches, vec!["yak_1"]);
    let c = ex.complete("train(#{ ep", 11);
    assert_eq!(c.matches, vec!["epochs"]);
    let c = ex.complete("train(#{ epochs: 3, l", 21);
    assert_eq!(c.matches, vec!["lr"]);
    let c = ex.complete("[1, 2].pu", 9);
    assert!(c.matches.contains(&"push".to_string()), "{:?}", c.matches);
    let c = ex.complete("pri", 3);
    assert!(c.matches.contains(&"print".to_string()));
    let c = ex.complete("é + zeb", 7);
    assert_eq!((c.cursor_start, c.cursor_end), (4, 7));
}

#[test]
fn inspect_finds_docs_functions_and_variables() {
    let (mut ex, _) = executor();
    let doc = ex.inspect("print", 5).unwrap();
    assert!(doc["text/markdown"].as_str().unwrap().contains("Prints `x`."));
    assert!(ex.inspect("print(1, ", 9).is_some());
    run(&mut ex, "/// Adds one.\nfn inc(x) { x + 1 } let v = 3;").0.unwrap();
    assert!(ex.inspect("inc", 1).unwrap()["text/plain"].as_str().unwrap().contains("Adds one."));
    assert!(ex.inspect("v", 1).unwrap()["text/plain"].as_str().unwrap().starts_with("v: i64"));
    assert!(ex.inspect("nothing_here", 3).is_none());
}
