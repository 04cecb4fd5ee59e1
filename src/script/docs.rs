//! The script API's documentation, one entry per function: `sparselab doc` prints
//! it, docs/script-api.md is generated from it, the notebook kernel's inspect and
//! completion read it, and every example runs as a test (STYLE rule 7).

/// One documented script function.
pub struct ApiDoc {
    /// Function or method name.
    pub name: &'static str,
    /// Signature as a script sees it.
    pub signature: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// Options of its `#{ ... }` map: (key, default, meaning).
    pub options: &'static [(&'static str, &'static str, &'static str)],
    /// A runnable example (runs as a test).
    pub example: &'static str,
}

/// The whole script API.
pub const API: &[ApiDoc] = &[
    ApiDoc {
        name: "dataset",
        signature: "dataset(name: string, options?: map) -> Dataset",
        doc: "Loads fashion-mnist, mnist, cifar10, cifar100 or synthetic. Files are searched in $SPARSELAB_DATA/<name>, ./data/<name>, /usr/share/datasets/<name>; fashion-mnist falls back to the bundled 6,000/1,000 subset. Inputs are scaled to [0, 1] and standardised per channel.",
        options: &[
            ("subset", "\"auto\"", "\"auto\" (full files if found, else bundled), \"full\" or \"bundled\""),
            ("train_limit", "()", "keep only the first n training examples"),
            ("root", "()", "a directory searched first"),
            ("train", "2000", "synthetic: training examples"),
            ("test", "500", "synthetic: test examples"),
            ("classes", "10", "synthetic: classes"),
            ("seed", "0", "synthetic: generator seed"),
        ],
        example: "let data = dataset(\"synthetic\", #{ train: 256, test: 64, classes: 4 });\nprint(data);\nassert(data.train_size == 256);",
    },
    ApiDoc {
        name: "mlp",
        signature: "mlp(data: Dataset, options?: map) -> Model",
        doc: "A sparse MLP: depth hidden layers of width w, then the output layer (depth + 1 weight layers). Each layer has a fixed random mask with exactly round(density * weights) active weights, Kaiming-normal initialised.",
        options: &[
            ("depth", "4", "hidden layers"),
            ("width", "input + 4", "hidden width"),
            ("density", "1.0", "a density for all layers, or an array of depth + 1"),
            ("active", "()", "exact active counts per layer (array of depth + 1), instead of density"),
            ("activation", "\"relu\"", "relu, prelu, elu, swish, srelu, sigmoid, tanh, gelu"),
            ("batch_norm", "false", "BatchNorm after each hidden linear layer"),
            ("skip", "false", "residual connections around hidden layers 2-3, 4-5, ..."),
            ("bias", "true", "biases on every layer"),
            ("dropout", "0.0", "dropout after each hidden activation, in [0, 0.99]"),
            ("init_fan", "\"layer\"", "Kaiming fan: \"layer\" (fan-in), \"effective\" (mean active fan-in), a number or an array"),
            ("seed", "0", "seed of masks and initial weights"),
            ("kernel", "\"auto\"", "\"auto\" (compact at density <= 0.4, else dense), \"dense\" (masked dense product) or \"compact\" (active weights only; same results to float tolerance)"),
        ],
        example: "let data = dataset(\"synthetic\", #{ train: 256, test: 64 });\nlet net = mlp(data, #{ depth: 2, width: 32, density: 0.25, activation: \"swish\", batch_norm: true });\nprint(net.layers());\nassert(net.layers().height() == 3);",
    },
    ApiDoc {
        name: "layers",
        signature: "model.layers() -> DataFrame",
        doc: "Per weight layer: name, shape, active, total, density.",
        options: &[],
        example: "let net = mlp(dataset(\"synthetic\"), #{ depth: 1, width: 8, active: [64, 8] });\nassert(net.layers().column(\"active\") == [64, 8]);",
    },
    ApiDoc {
        name: "train",
        signature: "train(model: Model, data: Dataset, options?: map) -> Run",
        doc: "Trains in place and returns the run: run.test_acc, run.test_loss, run.diverged, run.diverged_epoch, run.history (DataFrame per epoch), run.grad_flow (DataFrame per point and layer), run.summary (one-row DataFrame), run.seconds, run.device. A NaN/inf loss ends the run as diverged; Ctrl-C stops after the current batch.",
        options: &[
            ("optimizer", "\"sgd\"", "sgd, momentum, adam, adamw, adagrad, rmsprop"),
            ("lr", "0.01", "learning rate"),
            ("momentum", "()", "SGD momentum (0.9 for \"momentum\")"),
            ("l2", "0.0", "coupled L2 (added to the gradient)"),
            ("weight_decay", "0.0", "AdamW's decoupled weight decay"),
            ("beta1", "0.9", "Adam beta1"),
            ("beta2", "0.999", "Adam beta2"),
            ("alpha", "0.99", "RMSProp averaging constant"),
            ("eps", "1e-8 (Adagrad 1e-10)", "epsilon"),
            ("epochs", "10", "passes over the training set"),
            ("batch_size", "128", "minibatch size"),
            ("schedule", "\"constant\"", "constant, step (milestones, gamma) or cosine (min_lr)"),
            ("milestones", "[]", "step schedule: epochs at which lr is multiplied by gamma"),
            ("gamma", "0.1", "step schedule factor"),
            ("min_lr", "0.0", "cosine schedule floor"),
            ("augment", "false", "random crop (4-pixel padding) and horizontal flip"),
            ("seed", "0", "seed of data order, dropout and augmentation"),
            ("device", "\"auto\"", "auto, cpu, cuda, cuda:N"),
            ("threads", "()", "libtorch threads"),
            ("grad_flow", "()", "#{ points: 11, samples: 5000 } or true: measure EGF and gradient norms"),
            ("progress", "true", "progress bar / per-epoch lines"),
            ("step", "\"auto\"", "\"auto\" (the fused CPU step for plain ReLU MLPs trained with sgd or momentum, autograd otherwise), \"autograd\" or \"fused\" (an error where it does not apply); same results to float tolerance"),
        ],
        example: "let data = dataset(\"synthetic\", #{ train: 256, test: 64 });\nlet net = mlp(data, #{ depth: 2, width: 16, density: 0.5 });\nlet run = train(net, data, #{ optimizer: \"adam\", lr: 0.01, epochs: 2, grad_flow: #{ points: 3, samples: 64 }, progress: false });\nprint(run.history);\nassert(run.history.height() == 2);\nassert(run.grad_flow.height() == 2 * 3);\nassert(!run.diverged);",
    },
    ApiDoc {
        name: "sql",
        signature: "frame.sql(query: string) -> DataFrame",
        doc: "Runs a polars SQL query; the frame is the table `self`.",
        options: &[],
        example: "let runs = read_csv(\"tests/fixtures/runs.csv\");\nlet by = runs.sql(\"select optimizer, avg(test_acc) as acc from self group by optimizer order by optimizer\");\nprint(by);\nassert(by.column(\"optimizer\") == [\"adam\", \"sgd\"]);",
    },
    ApiDoc {
        name: "DataFrame methods",
        signature: "frame.head(n) / .columns() / .height() / .column(name) / .sort(col, descending?) / .filter(sql_condition) / .to_csv(path) / .to_parquet(path)",
        doc: "Inspect and save tables. Paths written are relative to the run directory (absolute paths and .. are rejected). `vstack([frames])` stacks frames with equal columns.",
        options: &[],
        example: "let runs = read_csv(\"tests/fixtures/runs.csv\");\nassert(runs.columns() == [\"optimizer\", \"seed\", \"test_acc\"]);\nlet best = runs.sort(\"test_acc\", true).head(1);\nassert(best.column(\"seed\") == [2]);\nassert(runs.filter(\"optimizer = 'sgd'\").height() == 2);\nruns.to_parquet(\"runs.parquet\");\nassert(read_parquet(\"runs.parquet\").height() == 4);",
    },
    ApiDoc {
        name: "read_csv / read_parquet",
        signature: "read_csv(path) -> DataFrame, read_parquet(path) -> DataFrame",
        doc: "Reads a table; relative paths are looked up in the run directory, then the working directory.",
        options: &[],
        example: "let runs = read_csv(\"tests/fixtures/runs.csv\");\nassert(runs.height() == 4);",
    },
    ApiDoc {
        name: "wilcoxon",
        signature: "wilcoxon(x: array, y: array, options?: map) -> map",
        doc: "Paired Wilcoxon signed-rank test on d = x - y: #{ statistic (W+), n, p_value, median_diff, method, alternative }. Exact by dynamic programming (ties via doubled ranks) up to n = 50 under \"auto\".",
        options: &[
            ("alternative", "\"greater\"", "greater (H1: x > y), less, two-sided"),
            ("zero_method", "\"wilcox\"", "wilcox (drop zero differences) or pratt"),
            ("method", "\"auto\"", "exact, approx (normal, tie and continuity corrected) or auto"),
        ],
        example: "let t = wilcoxon([0.9, 0.8, 0.85, 0.7, 0.95], [0.8, 0.7, 0.8, 0.6, 0.9]);\nassert(t.n == 5 && t.statistic == 15.0);\nassert(t.p_value == 1.0 / 32.0);",
    },
    ApiDoc {
        name: "kendall_tau",
        signature: "kendall_tau(x: array, y: array) -> map",
        doc: "Kendall rank correlation tau-b with a two-sided p-value: #{ tau, p_value, n, method } (exact without ties for n <= 33, else normal approximation).",
        options: &[],
        example: "let k = kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]);\nassert(k.tau > 0.66 && k.tau < 0.67);",
    },
    ApiDoc {
        name: "sc_sdc_pair",
        signature: "sc_sdc_pair(data: Dataset, options: map) -> #{ dense: Model, sparse: Model }",
        doc: "The SC-SDC twins for one dense width (SPEC 4): dense I -> N_W ... -> O and sparse I -> N_MW ... -> O, no biases, with exactly the dense twin's active weights in every layer, both Kaiming-normal with the dense fan-in.",
        options: &[
            ("dense_width", "required", "the dense twin's width N_W"),
            ("max_width", "input + 4", "the sparse twin's width N_MW"),
            ("depth", "4", "hidden layers"),
            ("activation", "\"relu\"", "activation"),
            ("batch_norm", "false", "BatchNorm"),
            ("skip", "false", "skip connections"),
            ("dropout", "0.0", "dropout"),
            ("init_fan", "\"dense\"", "\"dense\" (the report) or \"effective\" (mean active fan-in of each sparse layer)"),
            ("seed", "0", "seed of masks and init"),
            ("kernel", "\"auto\"", "weight representation, as in mlp"),
        ],
        example: "let data = dataset(\"synthetic\", #{ train: 128, test: 32 });\nlet t = sc_sdc_pair(data, #{ depth: 2, dense_width: 17, max_width: 68 });\nassert(t.dense.layers().column(\"active\") == t.sparse.layers().column(\"active\"));\nprint(t.sparse.layers());",
    },
    ApiDoc {
        name: "sc_sdc",
        signature: "sc_sdc(data: Dataset, options: map) -> #{ runs: DataFrame, test: map }",
        doc: "Sparse-vs-dense comparison (report 3.2.1): for each fraction f and seed, trains the dense twin of width round(f * max_width) and its sparse twin, then a one-sided exact Wilcoxon signed-rank test on final test accuracy, pairs (width, seed), H1: sparse > dense. `runs` has fraction, dense_width, seed, variant, active_fc1.., test_acc, test_loss, diverged, egf/gnorm averages; `test` has statistic, n, p_value, median_diff, alternative, method. Takes every `train` option too.",
        options: &[
            ("fractions", "[0.1, 0.3, 0.5, 0.7, 0.9]", "dense widths as fractions of max_width"),
            ("seeds", "[0, 1, 2]", "seeds; each trains both twins"),
            ("max_width", "input + 4", "N_MW"),
            ("depth", "4", "hidden layers"),
            ("init_fan", "\"dense\"", "\"dense\" or \"effective\""),
            ("ensemble", "16", "most networks of one shape trained together as one batched model (own masks, init, data order, optimizer state each; results match one-by-one runs to float tolerance; dropout > 0 trains one by one); 1 = one by one"),
            ("...", "", "activation, batch_norm, skip, dropout, kernel, and all train options"),
        ],
        example: "let data = dataset(\"synthetic\", #{ train: 256, test: 64 });\nlet cmp = sc_sdc(data, #{ depth: 1, max_width: 68, fractions: [0.3, 0.9], seeds: [0, 1], optimizer: \"adam\", lr: 0.01, epochs: 1, progress: false });\nprint(cmp.runs);\nassert(cmp.runs.height() == 8);\nassert(cmp.test.n <= 4);",
    },
    ApiDoc {
        name: "frame",
        signature: "frame(columns: map, order?: array) -> DataFrame",
        doc: "A DataFrame from a map of equally long arrays (numbers, strings or booleans); `order` fixes the column order (maps are sorted by key).",
        options: &[],
        example: "let f = frame(#{ width: [100, 200], acc: [0.8, 0.85] }, [\"width\", \"acc\"]);\nassert(f.columns() == [\"width\", \"acc\"]);",
    },
    ApiDoc {
        name: "line_chart",
        signature: "line_chart(frame, options) -> Chart",
        doc: "Lines of mean y per x, one per value of `series`, one panel per value of `facet`; `error: \"std\"` adds a band of one standard deviation over rows with the same x (e.g. seeds). `chart.save(\"x.png\")` or `.svg` writes it inside the run directory.",
        options: &[
            ("x", "required", "x column"),
            ("y", "required", "y column"),
            ("series", "()", "column naming the lines"),
            ("facet", "()", "column naming the panels"),
            ("error", "()", "\"std\" for a ± std band"),
            ("title / x_label / y_label", "\"\" / x / y", "text"),
            ("width / height", "800 / 500", "pixels"),
            ("log_x / log_y", "false", "log axes"),
        ],
        example: "let f = frame(#{ width: [100, 100, 200, 200], acc: [0.80, 0.82, 0.85, 0.86], variant: [\"dense\", \"sparse\", \"dense\", \"sparse\"] });\nlet c = line_chart(f, #{ x: \"width\", y: \"acc\", series: \"variant\", title: \"accuracy vs width\" });\nc.save(\"acc.svg\");\nassert(c.to_svg().contains(\"accuracy vs width\"));",
    },
    ApiDoc {
        name: "bar_chart / scatter",
        signature: "bar_chart(frame, #{ x, y, series? }) -> Chart, scatter(frame, #{ x, y, series?, log_x?, log_y? }) -> Chart",
        doc: "Grouped bars of mean y per category x (and series); a scatter plot of every row.",
        options: &[("values", "true", "bar_chart: print values on the bars")],
        example: "let f = frame(#{ measure: [\"EGF_2\", \"EGF_2\", \"|g|_2\", \"|g|_2\"], variant: [\"sparse\", \"dense\", \"sparse\", \"dense\"], tau: [0.6, 0.4, 0.3, 0.35] });\nbar_chart(f, #{ x: \"measure\", y: \"tau\", series: \"variant\" }).save(\"tau.png\");\nscatter(f, #{ x: \"tau\", y: \"tau\", series: \"variant\" }).save(\"s.png\");",
    },
    ApiDoc {
        name: "heatmap",
        signature: "heatmap(frame, #{ row, col, value, scale?: \"pvalue\" }) -> Chart",
        doc: "Cells of mean `value` per (row, col). The p-value scale reproduces report Table 3.3: green at 0, yellow at 0.5, red at 1, values printed, cells below 0.05 bold with a star and a border.",
        options: &[("scale", "\"pvalue\"", "\"pvalue\" or \"sequential\""), ("decimals", "3", "digits printed in cells")],
        example: "let f = frame(#{ optimizer: [\"sgd\", \"sgd\", \"adam\", \"adam\"], reg: [\"NR\", \"BN\", \"NR\", \"BN\"], p: [0.03, 0.5, 0.9, 0.2] });\nheatmap(f, #{ row: \"optimizer\", col: \"reg\", value: \"p\" }).save(\"p.png\");",
    },
    ApiDoc {
        name: "density_bars / learning_curves",
        signature: "density_bars(densities: array, #{ layers?, title? }) -> Chart, learning_curves(history: DataFrame, #{ series?, title? }) -> Chart",
        doc: "Per-layer density bars (e.g. the best SNAS vector), and loss/accuracy panels from a run's history (`series` to overlay several runs stacked in one frame).",
        options: &[],
        example: "density_bars([0.9, 0.2, 0.05, 0.5], #{ title: \"best densities\" }).save(\"d.png\");\nlet h = frame(#{ epoch: [0, 1], train_loss: [1.0, 0.5], test_loss: [1.1, 0.7], train_acc: [0.6, 0.8], test_acc: [0.55, 0.75] });\nlearning_curves(h).save(\"curves.png\");",
    },
    ApiDoc {
        name: "snas",
        signature: "snas(data: Dataset, options: map) -> #{ history: DataFrame, best: map }",
        doc: "Sparse neural architecture search (report chapter 4): proposes a density per weight layer (or one for all), trains each candidate on the training split minus a validation split, scores it on the validation split with ASHA early stopping, and evaluates the best on the test set. `history` has trial, d1.., active, total, density, score, val_acc, rung, stopped, epochs, pareto; `best` has trial, densities, score, active, test_acc, test_loss, model. Candidates over budget are scaled down uniformly (projected), never trained.",
        options: &[
            ("space", "\"mlp\"", "mlp (BatchNorm + skip cells), resnet32 or wrn28_10"),
            ("depth / width", "4 / input + 4", "MLP space"),
            ("activation", "\"prelu\"", "MLP space (the report's choice)"),
            ("dropout", "0.0", "dropout"),
            ("representation", "\"non-uniform\"", "non-uniform (per layer) or uniform (one density)"),
            ("search", "\"bayes\"", "random, bayes (GP-UCB), or a function |history| -> densities"),
            ("samples", "50", "trials"),
            ("kappa", "10.0", "UCB exploration (the report's value)"),
            ("acquisition", "\"ucb\"", "ucb or ei (with xi)"),
            ("asha", "()", "#{ grace_period: 1, reduction_factor: 4 } or true"),
            ("budget", "()", "#{ max_density, max_active }"),
            ("objective", "\"accuracy\"", "accuracy, penalized (accuracy - lambda * density) or pareto"),
            ("validation", "0.1", "fraction of the training set held out for scoring"),
            ("d_min", "0.005", "density floor"),
            ("seed", "0", "search, split and mask seed"),
            ("train", "#{}", "options of each trial's train()"),
        ],
        example: "let data = dataset(\"synthetic\", #{ train: 300, test: 60 });\nlet s = snas(data, #{ depth: 1, width: 16, search: \"random\", samples: 3, asha: true, budget: #{ max_density: 0.5 }, train: #{ epochs: 2, optimizer: \"adam\", lr: 0.01, progress: false } });\nprint(s.history);\nassert(s.history.height() == 3);\nassert(s.history.column(\"density\").all(|d| d <= 0.5 + 1e-9));\nprint(s.best.densities);",
    },
];

/// The API reference as Markdown (docs/script-api.md).
pub fn api_markdown() -> String {
    let mut s = String::from("# sparselab script API\n\nGenerated by `sparselab doc` from the bindings' metadata (src/script/docs.rs); a test fails when this file is stale.\n");
    for d in API {
        s += &format!("\n## {}\n\n`{}`\n\n{}\n", d.name, d.signature, d.doc);
        if !d.options.is_empty() {
            s += "\n| option | default | meaning |\n| --- | --- | --- |\n";
            for (k, def, m) in d.options {
                s += &format!("| `{k}` | `{def}` | {m} |\n");
            }
        }
        s += &format!("\n```rhai\n{}\n```\n", d.example);
    }
    s
}
