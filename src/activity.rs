//! What this process is training right now, for the heartbeat in its manifest
//! (`sparselab status` reads it): the run's key and label, when it started, and the
//! epoch it is in.
use serde_json::{json, Value};
use std::sync::Mutex;

fn current() -> &'static Mutex<Option<Value>> {
    static CURRENT: Mutex<Option<Value>> = Mutex::new(None);
    &CURRENT
}

/// A run of `label` with key `key` starts (or, with `None`, the last one ended).
pub fn run(run: Option<(&str, &str)>) {
    if let Ok(mut c) = current().lock() {
        *c = run.map(|(key, label)| json!({ "key": key, "label": label, "started": crate::log::utc_now(), "started_unix": crate::cluster::unix_now(), "epoch": 0 }));
    }
}

/// The current run finished `epoch` (1-based) of `epochs`.
pub fn epoch(epoch: usize, epochs: usize) {
    if let Ok(mut c) = current().lock() {
        if let Some(v) = c.as_mut() {
            v["epoch"] = json!(epoch);
            v["epochs"] = json!(epochs);
        }
    }
}

/// The current run, or null.
pub fn snapshot() -> Value {
    current().lock().ok().and_then(|c| c.clone()).unwrap_or(Value::Null)
}
