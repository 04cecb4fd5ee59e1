//! [`RhaiExecutor`]: runs cells on a Rhai engine with a persistent scope, so that
//! variables and `fn` definitions of earlier cells stay usable in later ones.
//!
//! The kernel knows nothing of the host's script API: the host builds the engine
//! (registering `display(x)` and friends on the [`Output`] sink it is handed),
//! says how its types render ([`RhaiHooks::to_mime`]) and lists its docs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, ParseError, Position, Scope, AST};

use super::rhai_complete::Api;
use super::{CellError, Completion, Executor, IsComplete, MimeBundle, Output};

/// Builds the host's engine; receives the sink that `display`-like functions write to.
pub type EngineBuilder = Box<dyn FnOnce(Rc<dyn Output>) -> Engine>;

/// Rich representation of a value, or `None` to show nothing.
pub type ToMime = Box<dyn Fn(&Dynamic) -> Option<MimeBundle>>;

/// What the host plugs into [`RhaiExecutor`]. Build it inside the `make_executor`
/// closure given to [`super::run`] (it runs on the execution thread; nothing here
/// needs to be `Send`).
pub struct RhaiHooks {
    /// Builds the full API engine. `print`, `debug` and `on_progress` are replaced
    /// afterwards; `clear_output()`, and `display(x)` / `eprint(x)` when the engine
    /// has none, are added.
    pub engine: EngineBuilder,
    /// Rich repr for the host's types (DataFrame → `text/html` + `text/plain`, chart →
    /// `image/png` + `image/svg+xml`); see [`plain_text_mime`] for the default.
    pub to_mime: ToMime,
    /// `(name, signature, markdown doc)` for inspect and completion; functions
    /// registered with doc comments are found in the engine's metadata too.
    pub docs: Vec<(String, String, String)>,
    /// Config keys offered inside `#{ ... }` map literals.
    pub option_keys: Vec<String>,
    /// The kernel's interrupt flag (the same one passed to [`super::run`]).
    pub interrupt: Arc<AtomicBool>,
}

impl RhaiHooks {
    /// Hooks for a plain `Engine::new()` showing values as `text/plain`.
    pub fn new(interrupt: Arc<AtomicBool>) -> Self {
        Self { engine: Box::new(|_| Engine::new()), to_mime: Box::new(plain_text_mime), docs: Vec::new(), option_keys: Vec::new(), interrupt }
    }
}

/// The default rich repr: `text/plain` of `to_string()`; nothing for `()`.
pub fn plain_text_mime(value: &Dynamic) -> Option<MimeBundle> {
    if value.is_unit() {
        return None;
    }
    let mut bundle = MimeBundle::new();
    bundle.insert("text/plain".into(), value.to_string().into());
    Some(bundle)
}

/// Forwards to the output of the cell that is running; outside a cell, to the
/// process's own stdout/stderr.
#[derive(Default)]
struct Sink {
    current: RefCell<Option<Rc<dyn Output>>>,
}

impl Output for Sink {
    fn stream(&self, name: &str, text: &str) {
        match &*self.current.borrow() {
            Some(out) => out.stream(name, text),
            None if name == "stdout" => print!("{text}"),
            None => eprint!("{text}"),
        }
    }
    fn display(&self, data: MimeBundle, display_id: Option<&str>, update: bool) {
        if let Some(out) = &*self.current.borrow() {
            out.display(data, display_id, update);
        }
    }
    fn clear(&self, wait: bool) {
        if let Some(out) = &*self.current.borrow() {
            out.clear(wait);
        }
    }
}

/// Clears the sink when a cell ends, even by panic.
struct Running(Rc<Sink>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.current.borrow_mut().take();
    }
}

/// A Rhai [`Executor`]: engine + persistent scope + the functions of earlier cells.
pub struct RhaiExecutor {
    engine: Engine,
    scope: Scope<'static>,
    /// Script functions defined so far (statements stripped), merged into each cell.
    fns: AST,
    /// Source of the cell that last defined each script function, for tracebacks.
    fn_sources: HashMap<String, Rc<str>>,
    sink: Rc<Sink>,
    to_mime: Rc<ToMime>,
    api: Api,
}

impl RhaiExecutor {
    /// Builds the engine from `hooks` and wires it to the kernel.
    pub fn new(hooks: RhaiHooks) -> Self {
        let sink = Rc::new(Sink::default());
        let mut engine = (hooks.engine)(sink.clone());
        let to_mime = Rc::new(hooks.to_mime);
        wire_engine(&mut engine, &sink, &to_mime, &hooks.interrupt);
        let api = Api::new(&engine, hooks.docs, hooks.option_keys);
        Self { engine, scope: Scope::new(), fns: AST::empty(), fn_sources: HashMap::new(), sink, to_mime, api }
    }

    #[cfg(test)]
    pub(crate) fn scope_len(&self) -> usize {
        self.scope.len()
    }

    /// Keeps only the newest of same-named variables, so that re-running
    /// `let net = ...` does not keep every older model alive.
    fn drop_shadowed(&mut self) {
        let mut names = std::collections::HashSet::new();
        if self.scope.iter_raw().all(|(name, ..)| names.insert(name.to_string())) {
            return;
        }
        let entries: Vec<_> = std::mem::take(&mut self.scope).into_iter().collect();
        let mut last = HashMap::new();
        for (i, (name, ..)) in entries.iter().enumerate() {
            last.insert(name.clone(), i);
        }
        for (i, (name, value, _)) in entries.into_iter().enumerate() {
            if last[&name] == i {
                self.scope.push_dynamic(name, value);
            }
        }
    }
}

fn wire_engine(engine: &mut Engine, sink: &Rc<Sink>, to_mime: &Rc<ToMime>, flag: &Arc<AtomicBool>) {
    let out = sink.clone();
    engine.on_print(move |text| out.stream("stdout", &format!("{text}\n")));
    let out = sink.clone();
    engine.on_debug(move |text, _, _| out.stream("stdout", &format!("{text}\n")));
    let flag = flag.clone();
    engine.on_progress(move |_| flag.load(Ordering::Relaxed).then(|| "interrupted".into()));
    let out = sink.clone();
    engine.register_fn("clear_output", move || out.clear(false));
    let out = sink.clone();
    engine.register_fn("clear_output", move |wait: bool| out.clear(wait));
    let has = |name: &str| {
        let prefix = format!("{name}(");
        engine.gen_fn_signatures(false).iter().any(|s| s.starts_with(&prefix))
    };
    let (has_display, has_eprint) = (has("display"), has("eprint"));
    if !has_display {
        let (out, to_mime) = (sink.clone(), to_mime.clone());
        engine.register_fn("display", move |x: Dynamic| {
            if let Some(data) = (*to_mime)(&x) {
                out.display(data, None, false);
            }
        });
    }
    if !has_eprint {
        let out = sink.clone();
        engine.register_fn("eprint", move |x: Dynamic| out.stream("stderr", &format!("{x}\n")));
    }
}

impl Executor for RhaiExecutor {
    fn execute(&mut self, code: &str, out: Rc<dyn Output>) -> Result<Option<MimeBundle>, CellError> {
        // The kernel resets the interrupt flag before queueing the cell: resetting it
        // here could swallow an interrupt sent while the cell waited in the queue.
        super::CELL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.sink.current.borrow_mut() = Some(out);
        let _running = Running(self.sink.clone());
        let ast = self.engine.compile_with_scope(&self.scope, code).map_err(|e| parse_error(&e, code))?;
        let source: Rc<str> = code.into();
        for f in ast.iter_functions() {
            self.fn_sources.insert(f.name.to_string(), source.clone());
        }
        // Functions are hoisted: they exist even if the cell fails at run time.
        let cell = self.fns.merge(&ast);
        self.fns = self.fns.merge(&ast.clone_functions_only());
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &cell);
        self.drop_shadowed();
        match result {
            Ok(value) if value.is_unit() => Ok(None),
            Ok(value) => Ok((*self.to_mime)(&value)),
            Err(err) => Err(runtime_error(&err, code, &self.fn_sources)),
        }
    }

    fn complete(&mut self, code: &str, cursor: usize) -> Completion {
        self.api.complete(code, cursor, &self.scope, &self.fns)
    }

    fn inspect(&mut self, code: &str, cursor: usize) -> Option<MimeBundle> {
        self.api.inspect(code, cursor, &self.scope, &self.fns)
    }

    fn is_complete(&mut self, code: &str) -> IsComplete {
        super::rhai_syntax::is_complete(&self.engine, code)
    }
}

const RED: &str = "\x1b[0;31m";
const RESET: &str = "\x1b[0m";

/// Traceback lines pointing at `pos` in `code`: `line 3: let x = ...` and a caret.
fn locate(code: &str, pos: Position) -> Vec<String> {
    let Some(line) = pos.line() else {
        return Vec::new();
    };
    let Some(text) = code.lines().nth(line.saturating_sub(1)) else {
        return vec![format!("line {line}")];
    };
    let prefix = format!("line {line}: ");
    let mut lines = vec![format!("{prefix}{text}")];
    if let Some(col) = pos.position() {
        lines.push(format!("{}^", " ".repeat(prefix.len() + col.saturating_sub(1))));
    }
    lines
}

fn parse_error(err: &ParseError, code: &str) -> CellError {
    let evalue = err.err_type().to_string();
    let mut traceback = vec![format!("{RED}ParseError{RESET}: {evalue}")];
    traceback.extend(locate(code, err.position()));
    CellError { ename: "ParseError".into(), evalue, traceback }
}

fn runtime_error(err: &EvalAltResult, code: &str, fn_sources: &HashMap<String, Rc<str>>) -> CellError {
    // Walk the call chain: each frame's position is in the caller's source.
    let mut frames = Vec::new();
    let mut source: Rc<str> = code.into();
    let mut err = err;
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, pos) = err {
        frames.extend(locate(&source, *pos));
        frames.push(format!("  in fn {name}"));
        source = fn_sources.get(name).cloned().unwrap_or_else(|| "".into());
        err = inner;
    }
    frames.extend(locate(&source, err.position()));
    let (ename, evalue) = classify(err);
    let mut traceback = vec![format!("{RED}{ename}{RESET}: {evalue}")];
    traceback.extend(frames);
    CellError { ename: ename.into(), evalue, traceback }
}

/// Error class and message (without position) of an innermost error.
fn classify(err: &EvalAltResult) -> (&'static str, String) {
    use EvalAltResult as E;
    let ename = match err {
        E::ErrorParsing(..) => "ParseError",
        E::ErrorTerminated(..) => "Interrupted",
        E::ErrorRuntime(..) => "RuntimeError",
        E::ErrorVariableNotFound(..) => "VariableNotFound",
        E::ErrorFunctionNotFound(..) => "FunctionNotFound",
        E::ErrorMismatchDataType(..) | E::ErrorMismatchOutputType(..) => "TypeError",
        E::ErrorArrayBounds(..) | E::ErrorStringBounds(..) | E::ErrorBitFieldBounds(..) | E::ErrorIndexNotFound(..) | E::ErrorPropertyNotFound(..) => "IndexError",
        E::ErrorArithmetic(..) => "ArithmeticError",
        E::ErrorTooManyOperations(..) | E::ErrorTooManyVariables(..) | E::ErrorStackOverflow(..) | E::ErrorDataTooLarge(..) => "LimitError",
        _ => "RuntimeError",
    };
    let evalue = match err {
        E::ErrorTerminated(..) => "cell interrupted by the user".to_string(),
        E::ErrorRuntime(value, _) => value.to_string(),
        _ => {
            let text = err.to_string();
            let at = format!(" ({})", err.position());
            text.strip_suffix(&at).unwrap_or(&text).to_string()
        }
    };
    (ename, evalue)
}
