//! Property test: random option maps with random values, fed to every script
//! function in a `check` session (one batch, nothing written), never panic or abort
//! the process, and every error names an option (issue 15, STYLE rule 5).
use proptest::prelude::*;
use sparselab::script::{engine, Context};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// (call template with `OPTS` where the map goes, the function's option keys).
const CALLS: &[(&str, &[&str])] = &[
    ("dataset(\"synthetic\", OPTS)", &["subset", "train_limit", "root", "train", "test", "classes", "seed"]),
    ("mlp(data, OPTS)", &["depth", "width", "density", "active", "activation", "batch_norm", "skip", "bias", "dropout", "init_fan", "seed", "kernel"]),
    ("cnn(data, OPTS)", &["arch", "density", "dropout", "seed"]),
    ("train(net, data, OPTS)", TRAIN),
    ("prune_train(net, data, OPTS)", &["density", "prune_at", "scope", "epochs", "lr", "optimizer", "batch_size", "schedule", "gamma", "milestones"]),
    (
        "sc_sdc(data, OPTS)",
        &["depth", "activation", "batch_norm", "skip", "dropout", "kernel", "max_width", "init_fan", "fractions", "seeds", "ensemble", "epochs", "optimizer", "lr", "batch_size", "grad_flow"],
    ),
    ("sc_sdc_pair(data, OPTS)", &["depth", "activation", "max_width", "init_fan", "dense_width", "seed", "kernel"]),
    ("sc_sdc_grid(data, #{ depth: 1, max_width: 12, fractions: [0.5], seeds: [0], epochs: 1 }, OPTS)", &["optimizer", "regularization", "activation", "lr"]),
    (
        "snas(data, OPTS)",
        &[
            "space",
            "representation",
            "samples",
            "seed",
            "d_min",
            "asha",
            "budget",
            "objective",
            "lambda",
            "validation",
            "train",
            "kappa",
            "acquisition",
            "xi",
            "search",
            "depth",
            "width",
            "activation",
            "batch_norm",
            "skip",
            "bias",
            "dropout",
        ],
    ),
    ("line_chart(table, OPTS)", &["x", "y", "series", "facet", "error", "title", "x_label", "y_label", "width", "height", "log_x", "log_y"]),
    ("scatter(table, OPTS)", &["x", "y", "series", "title", "width", "height", "log_x", "log_y"]),
    ("bar_chart(table, OPTS)", &["x", "y", "series", "values", "title", "width", "height"]),
    ("heatmap(table, OPTS)", &["row", "col", "value", "scale", "decimals", "title", "width", "height"]),
    ("density_bars([0.5, 0.25], OPTS)", &["layers", "title", "width", "height"]),
    ("pvalue_table(#{ table: table }, OPTS)", &["row", "col", "title"]),
    ("wilcoxon([1.0, 2.0, 3.5], [0.5, 2.5, 1.0], OPTS)", &["alternative", "zero_method", "method"]),
];

const TRAIN: &[&str] = &[
    "optimizer",
    "lr",
    "momentum",
    "l2",
    "weight_decay",
    "eps",
    "alpha",
    "beta1",
    "beta2",
    "schedule",
    "milestones",
    "gamma",
    "min_lr",
    "grad_flow",
    "epochs",
    "batch_size",
    "seed",
    "augment",
    "device",
    "threads",
    "progress",
    "step",
];

/// Values that break things: zero, negatives, huge, NaN, infinities, wrong types,
/// names that are almost right, empty and nested containers.
fn value() -> impl Strategy<Value = String> {
    let fixed = prop_oneof![
        Just("0"),
        Just("1"),
        Just("2"),
        Just("-1"),
        Just("1000000000000"),
        Just("9223372036854775807"),
        Just("-9223372036854775807"),
        Just("0.5"),
        Just("-0.5"),
        Just("1.5"),
        Just("1e300"),
        Just("nan"),
        Just("inf"),
        Just("-inf"),
        Just("\"\""),
        Just("\"x\""),
        Just("\"relu\""),
        Just("\"Adam\""),
        Just("\"sgd\""),
        Just("\"layer\""),
        Just("\"global\""),
        Just("\"step\""),
        Just("\"cosine\""),
        Just("\"dense\""),
        Just("\"compact\""),
        Just("\"random\""),
        Just("\"uniform\""),
        Just("\"mlp\""),
        Just("\"resnet32\""),
        Just("\"NR\""),
        Just("\"BN_DA\""),
        Just("\"cpu\""),
        Just("\"cuda\""),
        Just("\"y\""),
        Just("\"x\""),
        Just("\"std\""),
        Just("true"),
        Just("false"),
        Just("()"),
        Just("[]"),
        Just("[0.5]"),
        Just("[0.5, 2]"),
        Just("[1, 2, 3]"),
        Just("[\"adam\", \"adamm\"]"),
        Just("[-1]"),
        Just("#{}"),
        Just("#{ points: 0 }"),
        Just("#{ points: 1000000000000, samples: 3 }"),
        Just("#{ max_density: 0.0001 }"),
        Just("#{ grace_period: 0 }"),
        Just("#{ epochs: 2 }"),
        Just("|h| [0.5]"),
        Just("|h| \"x\""),
    ];
    prop_oneof![fixed.prop_map(str::to_string), any::<i64>().prop_map(|i| i.to_string()), (-1e3f64..1e3).prop_map(|f| format!("{f:?}"))]
}

/// A call of one function with 1-4 options (known keys and sometimes a junk one).
fn call() -> impl Strategy<Value = (String, Vec<String>)> {
    (0..CALLS.len()).prop_flat_map(|i| {
        let keys: Vec<String> = CALLS[i].1.iter().map(|k| k.to_string()).chain(["junk_key".to_string()]).collect();
        proptest::collection::vec((proptest::sample::select(keys), value()), 1..5).prop_map(move |kv| {
            let mut used: Vec<String> = Vec::new();
            let mut parts = Vec::new();
            for (k, v) in kv {
                if !used.contains(&k) {
                    parts.push(format!("{k}: {v}"));
                    used.push(k);
                }
            }
            (CALLS[i].0.replace("OPTS", &format!("#{{ {} }}", parts.join(", "))), used)
        })
    })
}

const PRELUDE: &str = r#"
let nan = 0.0 / 0.0; let inf = 1.0 / 0.0;
let data = dataset("synthetic", #{ train: 96, test: 32, classes: 3 });
let net = mlp(data, #{ depth: 1, width: 8 });
let table = frame(#{ x: [1, 2, 3], y: [0.1, 0.2, 0.3], row: ["a", "a", "b"], col: ["c", "d", "c"], optimizer: ["adam", "sgd", "adam"], regularization: ["NR", "NR", "L2"], p_value: [0.01, 0.5, 0.2] });
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn script_functions_never_panic_and_errors_name_an_option((src, used) in call()) {
        // Valid but huge models (max_width: 14756) would train for minutes: cap the
        // memory the size checks allow, as a user would on a small Slurm allocation.
        std::env::set_var("SPARSELAB_MAX_MEMORY", "256M");
        let dir = std::env::temp_dir().join(format!("sparselab-props-{}", std::process::id()));
        let e = engine(Context::new(&dir, true));
        let code = format!("{PRELUDE}\n{src}");
        if std::env::var_os("SPARSELAB_PROPS_TRACE").is_some() {
            eprintln!("case: {src}");
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| e.eval::<rhai::Dynamic>(&code).map(|_| ()).map_err(|err| err.to_string())));
        let result = outcome.map_err(|_| format!("panicked on: {src}")).unwrap();
        if let Err(msg) = result {
            let known: Vec<&str> = CALLS.iter().find(|c| src.starts_with(&c.0[..=c.0.find('(').unwrap()])).map(|c| c.1.to_vec()).unwrap_or_default();
            let names = used.iter().any(|k| msg.contains(k.as_str())) || known.iter().chain(TRAIN).any(|k| msg.contains(&format!("{k}:")));
            prop_assert!(names, "error names no option: {msg}\n  call: {src}");
            prop_assert!(!msg.contains("Exception raised from"), "C++ backtrace in: {msg}");
        }
    }
}
