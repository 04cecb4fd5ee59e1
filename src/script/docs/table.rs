//! Our half of the script API's documentation: per entry, what it documents (with
//! parameter names), the description, the options and an example. Types and
//! overloads come from the registration (see the parent module). Entries follow the
//! pipeline: data, models, training, experiments, tables, statistics, charts.
use super::ApiDoc;

/// The whole script API, one entry per function or group of functions.
pub const API: &[ApiDoc] = &[
    ApiDoc {
        name: "dataset",
        usage: &["dataset(name, options?)"],
        doc: "Loads fashion-mnist, mnist, cifar10, cifar100 or synthetic. Files are searched in $SPARSELAB_DATA/<name>, ./data/<name>, /usr/share/datasets/<name>; fashion-mnist falls back to the bundled 6,000/1,000 subset. Inputs are scaled to [0, 1] and standardised per channel. The synthetic set is Gaussian class clusters of 1x8x8 images (64 inputs).",
        options: &[
            ("subset", "\"auto\"", "\"auto\" (full files if found, else bundled), \"full\" or \"bundled\""),
            ("train_limit", "()", "keep only the first n training examples"),
            ("root", "()", "a directory searched first"),
            ("train", "2000", "synthetic: training examples"),
            ("test", "500", "synthetic: test examples"),
            ("classes", "10", "synthetic: classes"),
            ("seed", "0", "synthetic: generator seed"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 256, test: 64, classes: 4 });
print(data);
assert(data.train_size == 256);"#,
        not_run: "",
    },
    ApiDoc {
        name: "Dataset properties",
        usage: &["Dataset.name", "Dataset.train_size", "Dataset.test_size", "Dataset.classes", "Dataset.input_size"],
        doc: "The dataset's name, its numbers of training and test examples, of classes, and of inputs per example (channels x height x width).",
        options: &[],
        example: r#"let data = dataset("synthetic", #{ train: 100, test: 20, classes: 5 });
assert(data.name == "synthetic");
assert(data.train_size == 100 && data.test_size == 20);
assert(data.classes == 5 && data.input_size == 64);"#,
        not_run: "",
    },
    ApiDoc {
        name: "mlp",
        usage: &["mlp(data, options?)"],
        doc: "A sparse MLP: depth hidden layers of width w, then the output layer (depth + 1 weight layers). Each layer has a fixed random mask with exactly round(density * weights) active weights, Kaiming-normal initialised.",
        options: &[
            ("depth", "4", "hidden layers"),
            ("width", "input + 4", "hidden width"),
            ("density", "1.0", "a density for all layers, an array of depth + 1, or an allocation #{ allocation: \"erk\", target: 0.1, dense_first: false, dense_last: false }: uniform, er or erk (Evci et al. 2020) shares the target among layers, exactly round(target * weights) in all"),
            ("active", "()", "exact active counts per layer (array of depth + 1), instead of density"),
            ("activation", "\"relu\"", "relu, prelu, elu, swish, srelu, sigmoid, tanh, gelu"),
            ("batch_norm", "false", "BatchNorm after each hidden linear layer"),
            ("skip", "false", "residual connections around hidden layers 2-3, 4-5, ..."),
            ("bias", "true", "biases on every layer"),
            ("dropout", "0.0", "dropout after each hidden activation, in [0, 0.99]"),
            ("init_fan", "\"dense\"", "Kaiming fan: \"dense\" (the layer's fan-in; default), \"effective\", a number or an array"),
            ("seed", "0", "seed of masks and initial weights"),
            ("kernel", "\"auto\"", "\"auto\" (compact at density <= 0.4, else dense), \"dense\" (masked dense product), \"compact\" (active weights only; same results to float tolerance) or \"measured\" (per layer, whichever of the two timed faster on this machine for the layer's shape: opt-in, since runs can then differ at float rounding between machines)"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 256, test: 64 });
let net = mlp(data, #{ depth: 2, width: 32, density: 0.25, activation: "swish", batch_norm: true });
print(net.layers());
assert(net.layers().height() == 3);"#,
        not_run: "",
    },
    ApiDoc {
        name: "cnn",
        usage: &["cnn(data, options)"],
        doc: "A sparse ResNet-32 (34 weight layers) or WRN-28-10 (29 weight layers) for 32x32 images (CIFAR-10/100); input channels and classes come from the dataset. Every convolution and the final linear layer has a fixed random mask with round(density * weights) active weights. Other image sizes are an error.",
        options: &[
            ("arch", "\"resnet32\"", "\"resnet32\" or \"wrn28_10\""),
            ("density", "1.0", "a density for all weight layers, an array of one per layer (34 for resnet32, 29 for wrn28_10), or an allocation #{ allocation: \"erk\", target: 0.1 } (see mlp)"),
            ("dropout", "0.0", "wrn28_10: dropout between the two convolutions of a block, in [0, 0.99]"),
            ("seed", "0", "seed of masks and initial weights"),
        ],
        example: r#"let data = dataset("cifar10");
let net = cnn(data, #{ arch: "resnet32", density: 0.1, seed: 1 });
assert(net.layers().height() == 34);
let run = train(net, data, #{ optimizer: "momentum", lr: 0.1, epochs: 1, augment: true });
print(run.summary);"#,
        not_run: "it needs the CIFAR-10 files (32x32 images), which the tests do not have; the synthetic set is 1x8x8, which `cnn` rejects.",
    },
    ApiDoc {
        name: "layers",
        usage: &["Model.layers()"],
        doc: "Per weight layer: name, shape, active, total, density.",
        options: &[],
        example: r#"let net = mlp(dataset("synthetic"), #{ depth: 1, width: 8, active: [64, 8] });
assert(net.layers().column("active") == [64, 8]);"#,
        not_run: "",
    },
    ApiDoc {
        name: "describe",
        usage: &["Model.describe()"],
        doc: "One line naming the architecture: `MLP <inputs>-<depth>x<width>-<classes>` with its activation and extras (bn, skip, dropout, no bias), or `resnet32 (34 weight layers)`.",
        options: &[],
        example: r#"let net = mlp(dataset("synthetic"), #{ depth: 2, width: 16, batch_norm: true });
print(net.describe());
assert(net.describe().starts_with("MLP 64-2x16-10 relu"));"#,
        not_run: "",
    },
    ApiDoc {
        name: "densities",
        usage: &["Model.densities()"],
        doc: "The density (active / total weights) of each weight layer, as an array of floats in layer order.",
        options: &[],
        example: r#"let net = mlp(dataset("synthetic"), #{ depth: 1, width: 8, active: [64, 8] });
print(net.densities());
assert(net.densities().len() == 2 && net.densities()[0] == 0.125);"#,
        not_run: "",
    },
    ApiDoc {
        name: "save / load",
        usage: &["Model.save(path)", "Model.load(path)"],
        doc: "Writes the model's weights and masks (safetensors) inside the run directory (absolute paths and .. are rejected), and reads them back into a model of the same shape; `load` looks in the run directory, then the working directory.",
        options: &[],
        example: r#"let data = dataset("synthetic", #{ train: 128, test: 32 });
let net = mlp(data, #{ depth: 1, width: 16, density: 0.5, seed: 1 });
net.save("net.safetensors");
let copy = mlp(data, #{ depth: 1, width: 16, density: 0.5, seed: 2 });
copy.load("net.safetensors");
let opts = #{ epochs: 1, progress: false };
assert(train(copy, data, opts).test_loss == train(net, data, opts).test_loss);"#,
        not_run: "",
    },
    ApiDoc {
        name: "train",
        usage: &["train(model, data, options?)"],
        doc: "Trains the model in place and returns the run (see Run properties). A NaN/inf loss ends the run as diverged; Ctrl-C stops after the current batch. Under `sparselab run` a finished run is stored and reused when the same training is asked for again.",
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
            ("progress", "true", "progress bar on a terminal, per-epoch lines otherwise, one live display (bar, time left, curves) in a notebook; inside a study or search each line and display first names its networks (`SC-SDC 2/8: dense f=0.3 seeds 0-2`, `SNAS trial 4 (of 20)`, `methods 3/12: snip density 0.1 seed 0`, `grid 5/21: ...`, `IMP round 1/3: ...`)"),
            ("step", "\"auto\"", "\"auto\" (the fused CPU step for ReLU MLPs, BatchNorm, skip and dropout included, any optimizer; autograd otherwise), \"autograd\" or \"fused\" (an error where it does not apply); same results to float tolerance"),
            ("dynamic", "()", "dynamic sparse training: #{ method: \"rigl\", fraction: 0.3, every: 100, end: 0.75 } (RigL: every `every` steps until `end` of training, each layer drops its smallest-magnitude weights, fraction cosine-decayed, and grows as many where the dense gradient is largest) or #{ method: \"set\", fraction: 0.3 } (SET: after each epoch but the last, drop by magnitude, grow at random). Counts per layer stay exact; grown weights start at zero with no optimizer state; Run.mask_history records each update"),
            ("gradual", "()", "gradual magnitude pruning (Zhu and Gupta): #{ density: 0.1, start: 0.1, end: 0.6, every: 100, scope: \"layer\" }: from start to end of training, every `every` steps, prune to d = d_f + (d_0 - d_f)(1 - p)^3"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 256, test: 64 });
let net = mlp(data, #{ depth: 2, width: 16, density: 0.5 });
let run = train(net, data, #{ optimizer: "adam", lr: 0.01, epochs: 2, grad_flow: #{ points: 3, samples: 64 }, progress: false });
print(run.history);
assert(run.history.height() == 2);
assert(run.grad_flow.height() == 2 * 3);
assert(!run.diverged);
// RigL from a 20 % random mask: 8 steps per epoch, updates at steps 2, 4, ..., 10.
let sparse = mlp(data, #{ depth: 2, width: 16, density: 0.2 });
let dst = train(sparse, data, #{ epochs: 2, batch_size: 32, dynamic: #{ method: "rigl", every: 2 }, progress: false });
print(dst.mask_history);
assert(dst.mask_history.height() == 5);
// Gradual magnitude pruning from dense to 10 %.
let dense = mlp(data, #{ depth: 2, width: 16 });
train(dense, data, #{ epochs: 2, gradual: #{ density: 0.1, start: 0.0, end: 0.5, every: 1 }, progress: false });
assert(dense.densities().all(|d| d > 0.09 && d < 0.11));"#,
        not_run: "",
    },
    ApiDoc {
        name: "Run properties",
        usage: &[
            "Run.test_acc",
            "Run.test_loss",
            "Run.diverged",
            "Run.diverged_epoch -> int or ()",
            "Run.history",
            "Run.grad_flow",
            "Run.summary",
            "Run.mask_history",
            "Run.seconds",
            "Run.device",
        ],
        doc: "A finished run: final test accuracy and loss; whether a NaN/inf loss ended it and in which epoch (`()` when it did not diverge); epochs count from 1 everywhere, as the log counts them; `history`, one row per epoch (epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds); `grad_flow`, one row per measuring point and layer (epoch, layer, l1, l2, masked_l1, masked_l2, egf1, egf2, gnorm1, gnorm2; empty without the grad_flow option); `summary`, one row (test_acc, test_loss, train_loss, diverged, diverged_epoch, epochs_run, gradient-flow averages, seconds, collapsed_layers, mask_updates, mask_kept, and the training cost: dense_flops as if every weight were active, sparse_flops counting active weights, executed_flops as the kernels ran them (all weights of layers stored densely), peak_rss_mb the process's memory high-water mark); `mask_history`, one row per mask update of dynamic sparse training or gradual pruning (step, epoch, kept: the fraction of the initial mask still active, active); wall-clock seconds; the device it ran on.",
        options: &[],
        example: r#"let data = dataset("synthetic", #{ train: 128, test: 32 });
let run = train(mlp(data, #{ depth: 1, width: 16 }), data, #{ epochs: 2, progress: false });
print(`accuracy ${run.test_acc}, loss ${run.test_loss}, ${run.seconds} s on ${run.device}`);
assert(run.history.height() == 2 && run.summary.height() == 1);
assert(!run.diverged && type_of(run.diverged_epoch) == "()");"#,
        not_run: "",
    },
    ApiDoc {
        name: "prune_train",
        usage: &["prune_train(model, data, options)"],
        doc: "Magnitude pruning (report 3.4.3): trains the model dense for prune_at of the epochs, keeps its largest-magnitude weights at the target density (per layer or over all layers), zeroes the rest and fine-tunes the remaining epochs with the masks fixed and a fresh optimizer state. The model is pruned in place; the returned run's history spans both phases. Takes every `train` option too; `sparselab check` runs at most 2 epochs.",
        options: &[
            ("density", "0.1", "target density, in (0, 1]"),
            ("prune_at", "0.5", "fraction of the epochs trained dense before pruning, in [0, 1]"),
            ("scope", "\"layer\"", "\"layer\" (each layer keeps round(density * its weights)) or \"global\" (one magnitude threshold over all weight layers)"),
            ("...", "", "all train options (epochs, optimizer, lr, ...)"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 128, test: 32 });
let net = mlp(data, #{ depth: 1, width: 16 });
let run = prune_train(net, data, #{ density: 0.2, prune_at: 0.5, epochs: 2, optimizer: "adam", progress: false });
print(net.layers());
assert(run.history.height() == 2);
assert(net.densities().all(|d| d > 0.19 && d < 0.21));"#,
        not_run: "",
    },
    ApiDoc {
        name: "prune_at_init",
        usage: &["prune_at_init(model, data, options) -> #{ layers: DataFrame, collapsed: array }"],
        doc: "Pruning at initialization: keeps the highest-scoring weights and masks the rest, in place. snip scores |g * w| (g the loss gradient on `examples` training examples), grasp -w * Hg (temperature-scaled, by a Hessian-gradient product; the highest scores are removed), synflow |dR/dw * w| without data over `rounds` rounds whose density falls exponentially to the target, magnitude |w|, random a seeded draw. Returns the layers (active, total, effective: active weights on an input-to-output path, collapsed) and the names of collapsed layers (also warned about, and counted in every later run's collapsed_layers column). The settings (and the data, for snip and grasp) enter the model's lineage, so later runs of the model are keyed by them. Layers left at density <= 0.4 move to the compact kernels (with kernel \"measured\": layers whose compact kernel now times faster; none with an explicit dense or compact kernel).",
        options: &[
            ("method", "\"snip\"", "snip, grasp, synflow, magnitude or random"),
            ("density", "required", "what remains: a density, or an allocation #{ allocation: \"erk\", target: 0.1 } (layer scope)"),
            ("scope", "\"layer\" (synflow: \"global\")", "\"layer\" (each layer keeps its share) or \"global\" (one ranking over all weights)"),
            ("rounds", "1 (synflow: 100)", "pruning rounds, density d^(r/R) after round r"),
            ("examples", "256", "training examples read by snip and grasp (a seeded sample)"),
            ("temperature", "200", "grasp's logit temperature"),
            ("seed", "0", "seed of the sample and of random scores"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 256, test: 64 });
let net = mlp(data, #{ depth: 2, width: 32 });
let report = prune_at_init(net, data, #{ method: "synflow", density: 0.05, rounds: 20 });
print(report.layers);
assert(report.collapsed.len() == 0);
let run = train(net, data, #{ epochs: 2, progress: false });
assert(run.history.height() == 2);"#,
        not_run: "",
    },
    ApiDoc {
        name: "imp",
        usage: &["imp(model, data, options)"],
        doc: "Iterative magnitude pruning with rewinding (Frankle et al.): trains rewind_epoch epochs for the rewind point, then per round trains epochs - rewind_epoch epochs and (but for the last) prunes `fraction` of the remaining weights by magnitude and rewinds the survivors to the rewind point. Every training is a run of its own, reused from the store on a rerun. Returns one row per round: round, density, then the run's summary columns; the model ends as the last round trained it.",
        options: &[
            ("rounds", "5", "pruning rounds (rounds + 1 trainings)"),
            ("fraction", "0.2", "fraction of the remaining weights pruned per round"),
            ("rewind_epoch", "1", "epoch whose weights the survivors are rewound to (0: the initial weights)"),
            ("scope", "\"layer\"", "\"layer\" or \"global\""),
            ("...", "", "all train options (epochs, optimizer, lr, ...)"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 128, test: 32 });
let net = mlp(data, #{ depth: 1, width: 16 });
let rounds = imp(net, data, #{ rounds: 2, fraction: 0.5, rewind_epoch: 1, epochs: 3, progress: false });
print(rounds);
assert(rounds.height() == 3);
assert(net.densities().all(|d| d > 0.24 && d < 0.26));"#,
        not_run: "",
    },
    ApiDoc {
        name: "compare_methods",
        usage: &["compare_methods(data, options) -> #{ runs: DataFrame, tests: DataFrame, chart: Chart }"],
        doc: "Sparse-training methods at matched active weights: static (uniform random masks), erk (random masks, ERK densities), snip, grasp, synflow (pruned at initialization from dense), set and rigl (dynamic, from uniform random masks) and gradual (magnitude pruning from dense), each at every density and seed, on the same MLP and training. Tests each method against the reference at every density by a paired (by seed) two-sided exact Wilcoxon signed-rank test, Holm-corrected across all comparisons; the chart shows test accuracy against density per method (mean and one standard deviation over seeds). Every run is reused from the store on a rerun.",
        options: &[
            ("methods", "all eight", "names from static, erk, snip, grasp, synflow, set, rigl, gradual"),
            ("densities", "[0.1, 0.02]", "target densities, each in (0, 1)"),
            ("seeds", "[0, 1, 2]", "seeds (the test pairs)"),
            ("reference", "\"static\"", "the method the others are tested against"),
            ("depth, width, activation, batch_norm, kernel", "4, input + 4, relu, false, auto", "the MLP"),
            ("title", "...", "chart title"),
            ("...", "", "all train options (epochs, optimizer, lr, ...)"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 256, test: 64 });
let study = compare_methods(data, #{ methods: ["static", "erk", "snip", "rigl"], densities: [0.2], seeds: [0, 1], depth: 1, width: 16, epochs: 2, progress: false });
print(study.tests);
assert(study.runs.height() == 4 * 2);
assert(study.tests.height() == 3);"#,
        not_run: "",
    },
    ApiDoc {
        name: "sc_sdc_pair",
        usage: &["sc_sdc_pair(data, options) -> #{ dense: Model, sparse: Model }"],
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
        example: r#"let data = dataset("synthetic", #{ train: 128, test: 32 });
let t = sc_sdc_pair(data, #{ depth: 2, dense_width: 17, max_width: 68 });
assert(t.dense.layers().column("active") == t.sparse.layers().column("active"));
print(t.sparse.layers());"#,
        not_run: "",
    },
    ApiDoc {
        name: "sc_sdc",
        usage: &["sc_sdc(data, options) -> #{ runs: DataFrame, test: map }"],
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
        example: r#"let data = dataset("synthetic", #{ train: 256, test: 64 });
let cmp = sc_sdc(data, #{ depth: 1, max_width: 68, fractions: [0.3, 0.9], seeds: [0, 1], optimizer: "adam", lr: 0.01, epochs: 1, progress: false });
print(cmp.runs);
assert(cmp.runs.height() == 8);
assert(cmp.test.n <= 4);"#,
        not_run: "",
    },
    ApiDoc {
        name: "sc_sdc_grid",
        usage: &["sc_sdc_grid(data, base, axes) -> #{ table: DataFrame, runs: DataFrame }"],
        doc: "SC-SDC over a grid (report Tables 3.2/3.3): one `sc_sdc` study per combination of optimizer, regularization code, activation and learning rate. `base` takes every `sc_sdc` option; an axis left out keeps the base's value. `table` has one row per combination: optimizer, regularization, activation, lr, statistic, n, p_value, median_diff, sparse_acc, dense_acc (mean over widths and seeds); `runs` has every run with those four columns in front. Under `sparselab run` finished studies are stored, so a grid resumes; each finished combination logs its p-value.",
        options: &[
            ("optimizer", "base's", "axes: an optimizer name or an array of them"),
            ("regularization", "\"NR\"", "axes: codes NR (none), L2 (coupled weight decay 1e-4), DA (augmentation), SC (skip connections), BN (BatchNorm), joined with _ (e.g. \"DA_BN\"); a code or an array"),
            ("activation", "base's", "axes: an activation or an array"),
            ("lr", "base's", "axes: a learning rate or an array"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 128, test: 32 });
let base = #{ depth: 1, max_width: 32, fractions: [0.5], seeds: [0, 1], lr: 0.05, epochs: 1, progress: false };
let grid = sc_sdc_grid(data, base, #{ optimizer: ["sgd", "adam"], regularization: ["NR", "BN"] });
print(grid.table);
assert(grid.table.height() == 4);
assert(grid.runs.height() == 4 * 2 * 2);"#,
        not_run: "",
    },
    ApiDoc {
        name: "pvalue_table",
        usage: &["pvalue_table(grid, options?) -> #{ chart: Chart, table: DataFrame }"],
        doc: "The p-values of an `sc_sdc_grid` result as report Table 3.3: `table` has the mean p_value per (row, col) and `chart` is its heatmap on the p-value scale (see heatmap). `grid` is the map `sc_sdc_grid` returns (only its `table` is read).",
        options: &[
            ("row", "\"optimizer\"", "column naming the rows"),
            ("col", "\"regularization\"", "column naming the columns"),
            ("title", "\"Wilcoxon signed-rank p-values (H1: sparse > dense)\"", "chart title"),
        ],
        example: r#"// A grid's table, written out to keep the example fast.
let grid = #{ table: frame(#{ optimizer: ["sgd", "sgd", "adam", "adam"], regularization: ["NR", "BN", "NR", "BN"], p_value: [0.03, 0.5, 0.9, 0.2] }) };
let p = pvalue_table(grid, #{ title: "p-values" });
print(p.table);
assert(p.table.height() == 4);
p.chart.save("pvalues.png");"#,
        not_run: "",
    },
    ApiDoc {
        name: "gradflow_correlation",
        usage: &["gradflow_correlation(runs, options?) -> #{ table: DataFrame, chart: Chart }"],
        doc: "The gradient-flow correlation study (report Table 3.1): for each measure (egf1, egf2, gnorm1, gnorm2) and variant, Kendall tau-b between the measure and test_loss / test_acc across runs, within each group of `by`, then the mean |tau| over groups. Diverged runs and runs without the measure are left out. `runs` needs the columns variant, diverged, test_loss, test_acc and the four measures (runs of sc_sdc or sc_sdc_grid trained with grad_flow). `table` has measure, variant, tau_loss, tau_acc, groups, runs; `chart` is a bar chart of the mean |tau| with test accuracy.",
        options: &[("by", "()", "a column whose values group the runs (e.g. optimizer); () = all runs in one group")],
        example: r#"let runs = frame(#{
    variant: ["sparse", "sparse", "sparse", "dense", "dense", "dense"],
    diverged: [false, false, false, false, false, false],
    test_loss: [0.9, 0.7, 0.5, 1.0, 0.8, 0.6],
    test_acc: [0.6, 0.7, 0.8, 0.55, 0.65, 0.75],
    egf1: [0.1, 0.2, 0.3, 0.3, 0.1, 0.2],
    egf2: [0.2, 0.4, 0.5, 0.1, 0.3, 0.2],
    gnorm1: [1.0, 0.8, 0.9, 0.7, 0.5, 0.6],
    gnorm2: [0.3, 0.2, 0.1, 0.4, 0.6, 0.5]
});
let c = gradflow_correlation(runs);
print(c.table);
assert(c.table.height() == 8);
c.chart.save("tau.png");"#,
        not_run: "",
    },
    ApiDoc {
        name: "snas",
        usage: &["snas(data, options) -> #{ history: DataFrame, best: map }"],
        doc: "Sparse neural architecture search (report chapter 4): proposes a density per weight layer (or one for all), trains each candidate on the training split minus a validation split, scores it on the validation split with ASHA early stopping, and evaluates the best on the test set. `history` has trial, d1.., active, total, density, score, val_acc, rung, stopped, epochs, pareto; `best` has trial, densities, score, active, test_acc, test_loss, model; `baseline` (with the baseline option) the method trained at the best density. Candidates over budget are scaled down uniformly (projected), never trained.",
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
            ("baseline", "()", "a method from compare_methods (static, erk, snip, grasp, synflow, set, rigl, gradual; CNN spaces: static or erk) trained at the best trial's overall density on the same split and settings; `baseline` then has method, density, active, test_acc, test_loss (else it is ())"),
        ],
        example: r#"let data = dataset("synthetic", #{ train: 300, test: 60 });
let s = snas(data, #{ depth: 1, width: 16, search: "random", samples: 3, asha: true, budget: #{ max_density: 0.5 }, baseline: "erk", train: #{ epochs: 2, optimizer: "adam", lr: 0.01, progress: false } });
print(s.history);
assert(s.history.height() == 3);
assert(s.history.column("density").all(|d| d <= 0.5 + 1e-9));
print(s.best.densities);
print(`searched ${s.best.test_acc} against ERK ${s.baseline.test_acc} at ${s.baseline.active} active weights`);
assert(s.baseline.active == s.best.active);"#,
        not_run: "",
    },
    ApiDoc {
        name: "frame",
        usage: &["frame(columns, order?)"],
        doc: "A DataFrame from a map of equally long arrays (numbers, strings or booleans); `order` fixes the column order (maps are sorted by key).",
        options: &[],
        example: r#"let f = frame(#{ width: [100, 200], acc: [0.8, 0.85] }, ["width", "acc"]);
assert(f.columns() == ["width", "acc"]);"#,
        not_run: "",
    },
    ApiDoc {
        name: "read_csv / read_parquet",
        usage: &["read_csv(path)", "read_parquet(path)"],
        doc: "Reads a table; relative paths are looked up in the run directory, then the working directory.",
        options: &[],
        example: r#"let runs = read_csv("tests/fixtures/runs.csv");
assert(runs.height() == 4);"#,
        not_run: "",
    },
    ApiDoc {
        name: "sql",
        usage: &["DataFrame.sql(query)"],
        doc: "Runs a polars SQL query; the frame is the table `self`.",
        options: &[],
        example: r#"let runs = read_csv("tests/fixtures/runs.csv");
let by = runs.sql("select optimizer, avg(test_acc) as acc from self group by optimizer order by optimizer");
print(by);
assert(by.column("optimizer") == ["adam", "sgd"]);"#,
        not_run: "",
    },
    ApiDoc {
        name: "DataFrame methods",
        usage: &[
            "DataFrame.head(n)",
            "DataFrame.columns()",
            "DataFrame.height()",
            "DataFrame.column(name)",
            "DataFrame.sort(column, descending?)",
            "DataFrame.filter(condition)",
            "DataFrame.to_csv(path)",
            "DataFrame.to_parquet(path)",
            "vstack(frames)",
        ],
        doc: "Inspect and save tables: the first n rows, the column names, the number of rows, one column as an array, rows sorted by a column (ascending unless `descending`), rows where an SQL condition holds. Paths written are relative to the run directory (absolute paths and .. are rejected). `vstack` stacks an array of frames with equal columns.",
        options: &[],
        example: r#"let runs = read_csv("tests/fixtures/runs.csv");
assert(runs.columns() == ["optimizer", "seed", "test_acc"]);
let best = runs.sort("test_acc", true).head(1);
assert(best.column("seed") == [2]);
assert(runs.filter("optimizer = 'sgd'").height() == 2);
runs.to_parquet("runs.parquet");
assert(read_parquet("runs.parquet").height() == 4);
assert(vstack([runs, runs]).height() == 8);"#,
        not_run: "",
    },
    ApiDoc {
        name: "wilcoxon",
        usage: &["wilcoxon(x, y, options?) -> #{ statistic, n, p_value, median_diff, method, alternative }"],
        doc: "Paired Wilcoxon signed-rank test on d = x - y: the statistic is W+. Exact by dynamic programming (ties via doubled ranks) up to n = 50 under \"auto\".",
        options: &[
            ("alternative", "\"greater\"", "greater (H1: x > y), less, two-sided"),
            ("zero_method", "\"wilcox\"", "wilcox (drop zero differences) or pratt"),
            ("method", "\"auto\"", "exact, approx (normal, tie and continuity corrected) or auto"),
        ],
        example: r#"let t = wilcoxon([0.9, 0.8, 0.85, 0.7, 0.95], [0.8, 0.7, 0.8, 0.6, 0.9]);
assert(t.n == 5 && t.statistic == 15.0);
assert(t.p_value == 1.0 / 32.0);"#,
        not_run: "",
    },
    ApiDoc {
        name: "kendall_tau",
        usage: &["kendall_tau(x, y) -> #{ tau, p_value, n, method }"],
        doc: "Kendall rank correlation tau-b with a two-sided p-value (exact without ties for n <= 33, else normal approximation).",
        options: &[],
        example: r#"let k = kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]);
assert(k.tau > 0.66 && k.tau < 0.67);"#,
        not_run: "",
    },
    ApiDoc {
        name: "line_chart",
        usage: &["line_chart(frame, options)"],
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
        example: r#"let f = frame(#{ width: [100, 100, 200, 200], acc: [0.80, 0.82, 0.85, 0.86], variant: ["dense", "sparse", "dense", "sparse"] });
let c = line_chart(f, #{ x: "width", y: "acc", series: "variant", title: "accuracy vs width" });
c.save("acc.svg");
assert(c.to_svg().contains("accuracy vs width"));"#,
        not_run: "",
    },
    ApiDoc {
        name: "bar_chart / scatter",
        usage: &["bar_chart(frame, options)", "scatter(frame, options)"],
        doc: "Grouped bars of mean y per category x (and series); a scatter plot of every row.",
        options: &[
            ("x / y", "required", "columns"),
            ("series", "()", "column naming the bar groups or point sets"),
            ("title / x_label / y_label", "\"\" / x / y", "text"),
            ("width / height", "800 / 500", "pixels"),
            ("values", "true", "bar_chart: print values on the bars"),
            ("log_x / log_y", "false", "scatter: log axes"),
        ],
        example: r#"let f = frame(#{ measure: ["EGF_2", "EGF_2", "|g|_2", "|g|_2"], variant: ["sparse", "dense", "sparse", "dense"], tau: [0.6, 0.4, 0.3, 0.35] });
bar_chart(f, #{ x: "measure", y: "tau", series: "variant" }).save("tau.png");
scatter(f, #{ x: "tau", y: "tau", series: "variant" }).save("s.png");"#,
        not_run: "",
    },
    ApiDoc {
        name: "heatmap",
        usage: &["heatmap(frame, options)"],
        doc: "Cells of mean `value` per (row, col). The p-value scale reproduces report Table 3.3: green at 0, yellow at 0.5, red at 1, values printed, cells below 0.05 bold with a star and a border.",
        options: &[
            ("row / col / value", "required", "columns"),
            ("scale", "\"pvalue\"", "\"pvalue\" or \"sequential\""),
            ("decimals", "3", "digits printed in cells"),
            ("title / x_label / y_label", "\"\" / col / row", "text"),
            ("width / height", "800 / 500", "pixels"),
        ],
        example: r#"let f = frame(#{ optimizer: ["sgd", "sgd", "adam", "adam"], reg: ["NR", "BN", "NR", "BN"], p: [0.03, 0.5, 0.9, 0.2] });
heatmap(f, #{ row: "optimizer", col: "reg", value: "p" }).save("p.png");"#,
        not_run: "",
    },
    ApiDoc {
        name: "density_bars / learning_curves",
        usage: &["density_bars(densities, options?)", "learning_curves(history, options?)"],
        doc: "Per-layer density bars (e.g. the best SNAS vector), and loss/accuracy panels from a run's history (`series` to overlay several runs stacked in one frame).",
        options: &[
            ("layers", "L1, L2, ...", "density_bars: layer names"),
            ("series", "()", "learning_curves: column naming the runs"),
            ("log_loss", "false", "learning_curves: log loss axis"),
            ("title", "\"\"", "text"),
            ("width / height", "800 / 500", "pixels"),
        ],
        example: r#"density_bars([0.9, 0.2, 0.05, 0.5], #{ title: "best densities" }).save("d.png");
let h = frame(#{ epoch: [0, 1], train_loss: [1.0, 0.5], test_loss: [1.1, 0.7], train_acc: [0.6, 0.8], test_acc: [0.55, 0.75] });
learning_curves(h).save("curves.png");"#,
        not_run: "",
    },
    ApiDoc {
        name: "Chart methods",
        usage: &["Chart.save(path)", "Chart.to_svg()"],
        doc: "Writes the chart as PNG or SVG (by the file's extension) inside the run directory (absolute paths and .. are rejected), or returns its SVG text.",
        options: &[],
        example: r#"let c = scatter(frame(#{ x: [1.0, 2.0, 3.0], y: [2.0, 4.0, 8.0] }), #{ x: "x", y: "y", log_y: true, title: "growth" });
c.save("growth.png");
c.save("growth.svg");
assert(c.to_svg().contains("growth"));"#,
        not_run: "",
    },
    ApiDoc {
        name: "assert",
        usage: &["assert(condition, message?)"],
        doc: "Stops the script with \"assertion failed\" (and the message) unless the condition is true.",
        options: &[],
        example: r#"let widths = [16, 32, 64];
assert(widths.len() == 3);
assert(widths.contains(32), "32 is one of the widths");"#,
        not_run: "",
    },
];
