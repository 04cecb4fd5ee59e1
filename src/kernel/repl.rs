//! `sparselab repl`: the script API on a terminal, on the notebook kernel's executor.
/// `sparselab repl`: the full script API with line history (~/.sparselab_history).
/// Runs on the notebook kernel's executor, so variables and functions persist across
/// lines exactly as across notebook cells; unfinished input (open blocks or strings)
/// continues on the next line.
pub fn repl() -> crate::Result<()> {
    use crate::kernel::{Executor, MimeBundle, Output};
    use rustyline::error::ReadlineError;
    struct Terminal;
    impl Output for Terminal {
        fn stream(&self, name: &str, text: &str) {
            if name == "stdout" {
                print!("{text}")
            } else {
                eprint!("{text}")
            }
        }
        fn display(&self, data: MimeBundle, _: Option<&str>, _: bool) {
            match data.get("text/plain").and_then(|v| v.as_str()) {
                Some(t) => println!("{t}"),
                None => println!("<{}>", data.keys().cloned().collect::<Vec<_>>().join(", ")),
            }
        }
        fn clear(&self, _: bool) {}
    }
    let out: std::rc::Rc<dyn Output> = std::rc::Rc::new(Terminal);
    let flag = crate::cancel::handle();
    let mut exec = crate::kernel::RhaiExecutor::new(crate::notebook::hooks(flag));
    let mut rl = rustyline::DefaultEditor::new().map_err(|e| crate::Error::config("repl", e.to_string()))?;
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".sparselab_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("sparselab {} REPL: the script API (`sparselab doc`), Ctrl-D to quit", crate::version());
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "sparselab> " } else { "       ... " };
        match rl.readline(prompt) {
            Ok(line) => {
                buffer.push_str(&line);
                buffer.push('\n');
                if matches!(exec.is_complete(&buffer), crate::kernel::IsComplete::Incomplete(_)) {
                    continue;
                }
                let _ = rl.add_history_entry(buffer.trim_end());
                crate::cancel::reset();
                match exec.execute(&buffer, out.clone()) {
                    Ok(Some(v)) => out.display(v, None, false),
                    Ok(None) => {}
                    Err(e) => eprintln!("{}: {}", e.ename, e.evalue),
                }
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(_) => break,
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(())
}
