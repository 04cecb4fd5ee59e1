//! The `sparselab` command: a thin front end over the library.
//! Exit codes: 0 success, 1 script or library error, 2 usage error, 130 interrupted.
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sparselab", version, about = "A lab for sparse neural networks: sparse MLPs/CNNs, gradient flow, SC-SDC, SNAS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Rhai experiment script.
    Run {
        /// The script.
        file: PathBuf,
        /// Override a top-level constant: --set epochs=5 (value is a Rhai expression).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Run directory (default runs/<script-name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Retrain runs that are already in the store.
        #[arg(long)]
        fresh: bool,
        /// Train only the runs in shard K of N (1-based), e.g. --shard $SLURM_ARRAY_TASK_ID/8.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Checkpoint each run every K epochs (runs also checkpoint every 5 minutes and
        /// when stopped by Ctrl-C or SIGTERM; a rerun resumes from the checkpoint).
        #[arg(long, value_name = "K")]
        checkpoint_every: Option<usize>,
    },
    /// Submit a sweep as a Slurm job array: plans every run (nothing trains), balances
    /// shards by estimated cost, writes plan.json and the job scripts into the run
    /// directory, submits the array for the shards with runs left and a merge job
    /// (afterok) that reruns the script unsharded for the full tables and charts.
    Submit(Box<SubmitArgs>),
    /// Progress of a run directory: planned, finished, diverged, failed and running
    /// runs per shard and overall, with the time left (exit code 0 when complete, 3 when not).
    Status {
        /// The run directory (--out of run or submit).
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rerun stored runs (all, or --sample N of them) from the script their manifest
    /// recorded and report each as identical, within tolerance or different, with what
    /// differs between the record's environment and this machine (exit code 0 when all
    /// reproduced, 3 when not). Nothing in the directory changes.
    Verify {
        /// The run directory (--out of run, or an unpacked study).
        dir: PathBuf,
        /// Rerun only this many records, drawn with --seed.
        #[arg(long, value_name = "N")]
        sample: Option<usize>,
        /// Seed of the sample's draw.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Largest difference (relative to max(1, |recorded|)) still "within tolerance".
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pack a run directory into one archive for a colleague: the script, the modules
    /// it imports, its --set values, the manifests and the store, with SHA-256 of each.
    Pack {
        /// The run directory.
        dir: PathBuf,
        /// The archive (default <dir name>.sparselab.tar.gz beside the directory).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Leave the runs' weights out (runs whose trained model is used again then
        /// train again on rerun).
        #[arg(long)]
        no_weights: bool,
    },
    /// Unpack a study made by `pack` into a run directory, checking every file's hash;
    /// then `sparselab run DIR/<script> --out DIR` reuses every record and `verify DIR`
    /// checks them.
    Unpack {
        /// The archive.
        file: PathBuf,
        /// The directory to create (default: the archive's name without .tar.gz).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Parse and validate a script: every call runs on one batch, nothing is written.
    Check {
        /// The script.
        file: PathBuf,
        /// Overrides, as for run.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Interactive Rhai with the full API and line history.
    Repl,
    /// Print the script API reference (Markdown).
    Doc,
    /// Jupyter kernel: `kernel install [--rust] [--user|--sys-prefix|--prefix P]`,
    /// `kernel uninstall [--rust]`, or `kernel --connection-file F` (what Jupyter launches).
    Kernel {
        #[command(subcommand)]
        action: Option<KernelAction>,
        /// Connection file given by Jupyter.
        #[arg(long)]
        connection_file: Option<PathBuf>,
    },
    /// Versions, devices, threads and where data is looked for.
    Info,
    /// Train one MLP and print its history (no script needed).
    Train(Box<sparselab::cli::TrainArgs>),
}

#[derive(clap::Args)]
struct SubmitArgs {
    /// The script.
    file: PathBuf,
    /// Array tasks (shards).
    #[arg(long)]
    shards: u64,
    /// Override a top-level constant, as for run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Run directory (default runs/<script-name>), on a filesystem every node sees.
    #[arg(long)]
    out: Option<PathBuf>,
    /// sbatch --partition.
    #[arg(long)]
    partition: Option<String>,
    /// sbatch --time, e.g. 12:00:00 (runs checkpoint on the SIGTERM before the limit).
    #[arg(long)]
    time: Option<String>,
    /// sbatch --cpus-per-task (libtorch's threads).
    #[arg(long)]
    cpus_per_task: Option<u32>,
    /// sbatch --mem, e.g. 8G.
    #[arg(long)]
    mem: Option<String>,
    /// sbatch --gres, e.g. gpu:1.
    #[arg(long)]
    gres: Option<String>,
    /// sbatch --account.
    #[arg(long)]
    account: Option<String>,
    /// Any other sbatch argument, repeatable: --sbatch-arg=--qos=low.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Checkpoint each run every K epochs (besides every 5 minutes and on SIGTERM).
    #[arg(long, value_name = "K")]
    checkpoint_every: Option<usize>,
    /// Plan and write the job scripts, submit nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand)]
enum KernelAction {
    /// Start evcxr_jupyter for sparselab (what the "Rust (sparselab)" kernelspec runs).
    Rust {
        /// Connection file given by Jupyter.
        #[arg(long)]
        connection_file: PathBuf,
    },
    /// Write the kernelspec "sparselab (Rhai)" (default: --user), or with --rust
    /// "Rust (sparselab)": the stock evcxr kernel set up for sparselab.
    Install {
        /// The Rust kernel (evcxr_jupyter with libtorch on its library path and a
        /// build folder kept between sessions); needs `cargo install evcxr_jupyter`.
        #[arg(long)]
        rust: bool,
        /// ~/.local/share/jupyter/kernels.
        #[arg(long)]
        user: bool,
        /// The active Python environment's share/jupyter/kernels.
        #[arg(long)]
        sys_prefix: bool,
        /// PREFIX/share/jupyter/kernels.
        #[arg(long)]
        prefix: Option<PathBuf>,
    },
    /// Remove the kernelspec.
    Uninstall {
        /// The Rust kernel's.
        #[arg(long)]
        rust: bool,
        /// As for install.
        #[arg(long)]
        sys_prefix: bool,
        /// As for install.
        #[arg(long)]
        prefix: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // `sparselab ... | head` ends quietly, as other command-line tools do, instead of
    // panicking on the closed pipe.
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: SIGPIPE (13) back to its default action, before any thread starts.
    unsafe {
        signal(13, 0);
    }
    // Before libtorch or MKL computes anything (and before any thread starts).
    if let Some(w) = sparselab::repro::init() {
        eprintln!("warning: {w}");
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    if !matches!(cli.command, Command::Kernel { .. }) {
        install_interrupt_handler();
    }
    match run(cli) {
        Ok(_) if sparselab::cancel::requested() => {
            eprintln!("interrupted: finished work is kept");
            ExitCode::from(130)
        }
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            // Bad command lines and unreadable inputs are usage errors (2); failures
            // of the work itself are 1.
            let usage = e.is::<Usage>()
                || matches!(e.downcast_ref::<sparselab::Error>(), Some(sparselab::Error::Io { .. }))
                || matches!(e.downcast_ref::<sparselab::Error>(), Some(sparselab::Error::Config { key, .. }) if key == "--set");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    use sparselab::script::{check_file, run_file, RunOptions};
    match cli.command {
        Command::Info => println!("{}", sparselab::cli::info()),
        Command::Train(a) => println!("{}", sparselab::cli::train_cmd(&a)?),
        Command::Doc => print!("{}", sparselab::script::api_markdown()),
        Command::Kernel { action, connection_file } => {
            use sparselab::kernel::{install, InstallTarget};
            let target = |sys: bool, prefix: Option<PathBuf>| match (sys, prefix) {
                (_, Some(p)) => InstallTarget::Prefix(p),
                (true, None) => InstallTarget::SysPrefix,
                _ => InstallTarget::User,
            };
            match (action, connection_file) {
                (Some(KernelAction::Install { rust: false, user: _, sys_prefix, prefix }), _) => {
                    let exe = std::env::current_exe()?;
                    let dir = install(target(sys_prefix, prefix), &exe)?;
                    println!("installed kernelspec sparselab (Rhai) in {}", dir.display());
                }
                (Some(KernelAction::Install { rust: true, user: _, sys_prefix, prefix }), _) => {
                    use sparselab::kernel::evcxr;
                    let exe = std::env::current_exe()?;
                    let dir = evcxr::install_rust(target(sys_prefix, prefix), &exe)?;
                    println!("installed kernelspec Rust (sparselab) in {}", dir.display());
                    match evcxr::find_evcxr() {
                        Ok(p) => println!("it starts {}", p.display()),
                        Err(e) => eprintln!("warning: {e}"),
                    }
                    if let Some(d) = evcxr::slots_dir() {
                        println!("build folders (kept between sessions): {}", d.display());
                    }
                }
                (Some(KernelAction::Rust { connection_file }), _) => match sparselab::kernel::evcxr::launch(&connection_file)? {},
                (Some(KernelAction::Uninstall { rust, sys_prefix, prefix }), _) => {
                    match sparselab::kernel::uninstall_named(target(sys_prefix, prefix), if rust { sparselab::kernel::evcxr::RUST_KERNEL_NAME } else { sparselab::kernel::KERNEL_NAME })? {
                        Some(d) => println!("removed {}", d.display()),
                        None => println!("no sparselab kernelspec installed there"),
                    }
                }
                (None, Some(f)) => sparselab::notebook::run_kernel(&f)?,
                (None, None) => return Err(Usage("kernel needs `install`, `uninstall` or `--connection-file F`".into()).into()),
            }
        }
        Command::Repl => sparselab::kernel::repl()?,
        Command::Run { file, sets, out, fresh, shard, checkpoint_every } => {
            match run_file(&file, &RunOptions { sets, out_dir: out, fresh, shard: shard.as_deref().map(parse_shard).transpose()?, checkpoint_every, ..Default::default() })? {
                Ok(o) => eprintln!("run directory: {} (manifest.json inside)", o.out_dir.display()),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(1);
                }
            }
        }
        Command::Submit(a) => {
            let a = *a;
            let opts = sparselab::cluster::SubmitOptions {
                script: a.file,
                shards: a.shards,
                sets: a.sets,
                out: a.out,
                partition: a.partition,
                time: a.time,
                cpus_per_task: a.cpus_per_task,
                mem: a.mem,
                gres: a.gres,
                account: a.account,
                sbatch_args: a.sbatch_args,
                checkpoint_every: a.checkpoint_every,
                dry_run: a.dry_run,
            };
            let sub = sparselab::cluster::submit(&opts)?;
            if let Some(plan) = &sub.plan {
                println!(
                    "planned {} runs in {} shards; largest shard {:.2}x the mean estimated cost (by key hash alone: {:.2}x)",
                    plan.runs.len(),
                    plan.shards,
                    plan.imbalance(),
                    plan.hash_imbalance()
                );
            }
            println!("run directory {}", sub.out.display());
            println!("job scripts  {} and {}", sub.array_script.display(), sub.merge_script.display());
            match (&sub.array_job, &sub.merge_job) {
                (_, None) => println!("dry run: nothing submitted ({} shard(s) have runs left: {:?})", sub.tasks.len(), sub.tasks),
                (Some(a), Some(m)) => println!("submitted array job {a} (tasks {:?}) and merge job {m} (after the array)", sub.tasks),
                (None, Some(m)) => println!("every run is finished: submitted only merge job {m}"),
            }
            println!("watch it with: sparselab status {}", sub.out.display());
        }
        Command::Status { dir, json } => {
            let st = sparselab::cluster::Status::of(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                println!("{st}");
            }
            return Ok(if st.complete() { 0 } else { 3 });
        }
        Command::Verify { dir, sample, seed, tolerance, json } => {
            let report = sparselab::share::verify(&dir, &sparselab::share::VerifyOptions { sample, seed, tolerance })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            return Ok(if report.reproduced() { 0 } else { 3 });
        }
        Command::Pack { dir, out, no_weights } => {
            let name = dir.canonicalize().ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string())).unwrap_or_else(|| "study".into());
            let out = out.unwrap_or_else(|| dir.parent().unwrap_or(std::path::Path::new(".")).join(format!("{name}.sparselab.tar.gz")));
            let p = sparselab::share::pack(&dir, &out, &sparselab::share::PackOptions { weights: !no_weights })?;
            println!(
                "packed {} records ({} with weights), {} files, {:.1} MB uncompressed, modules {:?} into {} ({:.1} MB)",
                p.records,
                p.weights,
                p.files,
                p.bytes as f64 / 1e6,
                p.modules,
                p.file.display(),
                std::fs::metadata(&p.file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
            );
            for w in &p.warnings {
                eprintln!("warning: {w}");
            }
        }
        Command::Unpack { file, out } => {
            let u = sparselab::share::unpack(&file, out.as_deref())?;
            println!("unpacked {} files ({} records), every hash checked, into {}", u.files, u.records, u.dir.display());
            if !u.sets.is_empty() {
                println!("it was run with --set {} (already applied in {})", u.sets.join(" --set "), u.script.display());
            }
            println!("rerun it (every record is reused): sparselab run {} --out {}", u.script.display(), u.dir.display());
            println!("check it on this machine:          sparselab verify {}", u.dir.display());
        }
        Command::Check { file, sets } => match check_file(&file, &sets)? {
            Ok(_) => eprintln!("{}: ok", file.display()),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(1);
            }
        },
    }
    Ok(0)
}

/// A command-line mistake (exit code 2).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `K/N` (1-based K) -> (K-1, N).
fn parse_shard(s: &str) -> Result<(u64, u64), Usage> {
    let bad = || Usage(format!("--shard {s:?}: expected K/N with 1 <= K <= N, e.g. 3/8"));
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok((k - 1, n))
}

/// First Ctrl-C: stop at the next batch and keep finished work; second: exit now.
fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if sparselab::cancel::requested() {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: stopping after the current batch (Ctrl-C again to quit now)");
        sparselab::cancel::request();
    });
}
