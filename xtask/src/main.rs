//! `cargo xtask`: the Nova project's tool. See README.md for the commands.

// The layers, from the bottom: paths, processes and git (`ctx`, `util`, `git`); what setup
// installs (`setup`) and the cache every clone shares (`cache`); the series and its trees
// (`series`); results and their formats (`results`); kernel builds (`builds`); boots under
// QEMU with the emulated GPU (`boot`); the test suites (`suites`); the commands (`commands`,
// and this file's command line). A module uses only its own layer and those below it.
mod boot;
mod builds;
mod cache;
mod commands;
mod ctx;
mod git;
mod results;
mod series;
mod setup;
mod suites;
mod util;

use boot::qemu;
use builds::author;
use commands::{bench, run};
use results::report;
use series::{check, mbox, tipview, topics, tree};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ctx::Ctx;

/// `cargo xtask`: set up, materialise the branches, build, boot and test the series.
#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set up, materialise the branches, build the kernel tree's checked-out branch, boot it
    /// under QEMU with an emulated GH100 (or the GPUs given), load Nova and show its probe lines
    /// and nova-info's list of Nova devices
    Run {
        /// Attach emulated GPUs with these profiles (comma-separated; `all`: every profile), one
        /// model process each [default: gh100, unless --exec or --gpu-passthrough is given].
        /// A profile may carry the model's options as knobs, `PROFILE:KNOB=VALUE:...`, knobs
        /// boot0, boot42, device-id, class (hex) and bar1-size (e.g. 256M), as in
        /// `ga102:boot0=0x172000b1:class=030200`
        #[arg(
            long,
            value_name = "PROFILE[:KNOB=VALUE]...",
            value_delimiter = ',',
            conflicts_with = "gpu_passthrough"
        )]
        chip: Vec<String>,
        /// Pass a host GPU through with vfio-pci (a PCI address like 0000:01:00.0)
        #[arg(long, value_name = "BDF")]
        gpu_passthrough: Option<String>,
        /// Add kconfig/debug.config
        #[arg(long)]
        debug: bool,
        /// Run CMD in the guest after boot instead of loading Nova (repeatable); guest programs,
        /// nova-info, modules and the attached GPUs' real GSP firmware are packed
        #[arg(long = "exec", value_name = "CMD")]
        exec: Vec<String>,
        /// Add a QEMU device (a `-device` value, e.g. `pci-testdev` or `edu`; repeatable)
        #[arg(long = "device", value_name = "DEVICE")]
        device: Vec<String>,
    },
    /// Run the test suites; the last line is `N passed, N failed[, N skipped]`
    Test {
        /// Run only this suite (repeatable)
        #[arg(long = "suite", value_name = "NAME")]
        suites: Vec<String>,
        /// Also write the results as JUnit XML to FILE
        #[arg(long, value_name = "FILE")]
        junit: Option<std::path::PathBuf>,
        /// Also write the results as a KernelCI report (KCIDB I/O schema v5.3) to FILE,
        /// validated with the pinned kcidb-io
        #[arg(long, value_name = "FILE")]
        kcidb: Option<std::path::PathBuf>,
    },
    /// Measure the harness's budgets; writes build/results/bench.json
    Bench {
        /// Only this case (repeatable): warm-test, edit-loop, ci-warm, ci-one-patch, drm-gem;
        /// `cold` runs only when named
        #[arg(long = "case", value_name = "NAME")]
        cases: Vec<String>,
        /// For `cold`: the cache folder to start from, which must be empty or absent
        /// (default: build/bench/cold-cache)
        #[arg(long, value_name = "DIR")]
        cold_cache: Option<std::path::PathBuf>,
    },
    /// Fuzz Nova's and the DRM sample's uAPI on the debug kernel (guest program drm_fuzz,
    /// model-checked); prints the seed, the ioctls and their rate
    Fuzz {
        /// How long, in seconds (half for each driver; at most 240)
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The seed (a number, `0x` for hex), to replay a run
        #[arg(long, value_parser = parse_seed)]
        seed: Option<u64>,
    },
    /// Install and cache what the tool needs (idempotent)
    Setup,
    /// Materialise the kernel tree build/linux from series/
    Tree {
        /// Replace branches holding unexported work (old tips kept under refs/nova-backup/)
        #[arg(long)]
        force: bool,
    },
    /// Work with series/: export, check, mbox, absorb
    #[command(subcommand)]
    Series(SeriesCommand),
    /// Build the kernel tree's checked-out branch
    Build {
        /// Add kconfig/debug.config
        #[arg(long)]
        debug: bool,
    },
    /// rustdoc HTML of the kernel crate; prints the path of index.html
    Doc {
        /// A topic branch as series/ has it, instead of the kernel tree's checked-out branch
        #[arg(long, value_name = "B")]
        branch: Option<String>,
    },
    /// Write build/linux/rust-project.json for editors
    RustAnalyzer,
    /// Build an out-of-tree module (kbuild M=) against a branch's build
    Module {
        /// The module's folder (with a Kbuild or Makefile)
        dir: std::path::PathBuf,
        /// A topic branch as series/ has it, instead of the kernel tree's checked-out branch
        #[arg(long, value_name = "B")]
        branch: Option<String>,
        /// Boot that kernel, load and unload the module, show its lines
        #[arg(long)]
        run: bool,
    },
    /// What the cache holds, or remove it
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Subcommand)]
enum SeriesCommand {
    /// Write series/ and the tip view from the kernel tree's branches
    Export {
        /// Overwrite tip-view files that were edited directly
        #[arg(long)]
        force: bool,
    },
    /// Check that series/ applies, is in exported form and the tip view matches it
    Check,
    /// Write each topic as the threaded mail a reviewer receives (build/mbox/<topic>.mbx)
    Mbox {
        /// Only this topic (its folder or branch name)
        topic: Option<String>,
    },
    /// Fold direct edits of tip-view files into the commits that own them
    Absorb,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// What the cache (setup, build slots, remembered verdicts) holds, and sizes
    Status,
    /// Remove the cache (the next run sets up and builds again)
    Clean,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli.command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<()> {
    let ctx = Ctx::new()?;
    match command {
        Command::Setup => {
            setup::setup(&ctx)?;
            println!("setup complete (cache: {})", ctx.cache.display());
            Ok(())
        }
        Command::Tree { force } => {
            let tc = setup::setup(&ctx)?;
            let series = ctx.series()?;
            tree::materialise(
                &ctx.tree(),
                &tc.base_repo,
                &series.topics,
                &series.dir,
                if force {
                    tree::OnUnexported::Force
                } else {
                    tree::OnUnexported::Fail
                },
            )?;
            println!(
                "kernel tree: {} (branch {})",
                ctx.tree().display(),
                head_branch(&ctx)?
            );
            Ok(())
        }
        Command::Series(SeriesCommand::Export { force }) => series_export(&ctx, force),
        Command::Series(SeriesCommand::Check) => {
            let tc = setup::existing(&ctx).or_else(|_| setup::setup(&ctx))?;
            let results = check::run(&ctx, &tc, &cache::Verdicts::new(&ctx))?;
            let mut failed = 0;
            for r in &results {
                if r.problems.is_empty() {
                    println!("ok      {}", r.name);
                } else {
                    failed += 1;
                    println!("FAILED  {}", r.name);
                    for p in &r.problems {
                        println!("        {p}");
                    }
                }
            }
            if failed > 0 {
                bail!("series check: {failed} check(s) failed");
            }
            Ok(())
        }
        Command::Series(SeriesCommand::Mbox { topic }) => {
            let tc = setup::setup(&ctx)?;
            series_mbox(&ctx, &tc, topic.as_deref())
        }
        Command::Series(SeriesCommand::Absorb) => {
            let tc = setup::setup(&ctx)?;
            series_absorb(&ctx, &tc)
        }
        Command::Cache(CacheCommand::Status) => cache::status(&ctx),
        Command::Cache(CacheCommand::Clean) => cache::clean(&ctx),
        Command::Doc { branch } => {
            let tc = setup::setup(&ctx)?;
            let k = author::kept_build(&ctx, &tc, branch.as_deref())?;
            let (index, warnings) = author::doc(&ctx, &tc, &k)?;
            for w in &warnings {
                println!("{w}");
            }
            println!("{}: {}", k.branch, index.display());
            Ok(())
        }
        Command::RustAnalyzer => {
            let tc = setup::setup(&ctx)?;
            let k = author::kept_build(&ctx, &tc, None)?;
            let json = author::rust_analyzer(&ctx, &tc, &k, &ctx.tree())?;
            println!("{}: {}", k.branch, json.display());
            Ok(())
        }
        Command::Module { dir, branch, run } => {
            let tc = setup::setup(&ctx)?;
            let k = author::kept_build(&ctx, &tc, branch.as_deref())?;
            let kos = author::module(&ctx, &tc, &k, &dir)?;
            for ko in &kos {
                println!("{}: {}", k.branch, ko.display());
            }
            if run {
                let name = format!("module-{}", topics::slug(&k.branch));
                let (suite, _) =
                    crate::boot::boot_modules(&ctx, &tc, &k.built.kernel, &name, &kos, &[], true)?;
                let report = report::Report {
                    suites: vec![suite],
                };
                report.print_table();
                println!("{}", report.final_line());
                if !report.success() {
                    bail!("the boot with {} reported failures", dir.display());
                }
            }
            Ok(())
        }
        Command::Build { debug } => {
            let tc = setup::setup(&ctx)?;
            let (branch, built) = builds::build_tree(&ctx, &tc, debug)?;
            println!("{branch}: {}", built.kernel.display());
            Ok(())
        }
        Command::Run {
            chip,
            gpu_passthrough,
            debug,
            exec,
            device,
        } => {
            if let Some(p) = &gpu_passthrough {
                if !qemu::valid_bdf(p) {
                    bail!("--gpu-passthrough wants a PCI address like 0000:01:00.0, not `{p}`");
                }
            }
            let gpu = run::GpuChoice::from_options(&chip, gpu_passthrough, !exec.is_empty());
            run::run(&ctx, gpu, debug, &exec, &device)
        }
        Command::Test {
            suites,
            junit,
            kcidb,
        } => suites::test(&ctx, &suites, &suites::Outputs { junit, kcidb }),
        Command::Bench { cases, cold_cache } => bench::bench(&ctx, &cases, cold_cache.as_deref()),
        Command::Fuzz { seconds, seed } => suites::debug::fuzz(&ctx, seconds, seed),
    }
}

/// A seed: decimal, or hexadecimal after `0x`.
fn parse_seed(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("not a number: `{s}`"))
}

/// The branch checked out in the kernel tree.
fn head_branch(ctx: &Ctx) -> Result<String> {
    let g = git::Git::new(ctx.tree());
    Ok(g.run(&["rev-parse", "--abbrev-ref", "HEAD"])
        .context("kernel tree")?
        .trim()
        .to_string())
}

fn series_export(ctx: &Ctx, force: bool) -> Result<()> {
    let series = ctx.series()?;
    let (series_dir, topics) = (&series.dir, &series.topics);
    let git = git::Git::new(ctx.tree());
    if !git::Git::exists(&ctx.tree()) {
        bail!(
            "no kernel tree at {}: run `cargo xtask tree` first",
            ctx.tree().display()
        );
    }
    if git.dirty()? {
        println!(
            "note: uncommitted changes in {} are not exported",
            ctx.tree().display()
        );
    }
    let tip_behind = series::behind_parent(&git, topics, topics.tip());
    let view = tipview::generate(&git, &topics.tip().branch)?;
    if !force && tip_behind.is_none() {
        let edits = tipview::edited(&ctx.repo)?;
        if !edits.is_empty() {
            bail!(
                "tip-view files were edited directly: {}\nfold them into their commits with \
                 `cargo xtask series absorb`, or pass --force to overwrite them",
                edits.join(", ")
            );
        }
    }
    let counts = series::export(&git, topics, series_dir)?;
    for (t, (branch, exported)) in topics.topics.iter().zip(counts) {
        match exported {
            series::Exported::Patches(n) => {
                let files = series::format_topic(&git, t)?;
                tree::record_synced(&ctx.tree(), t, &files)?;
                println!("{branch}: {n} patch(es)");
            }
            series::Exported::Behind(parent) => println!(
                "{branch}: not exported: it does not stand on {parent}'s tip, so its own \
                 commits cannot be told from {parent}'s old ones; series/{} is kept as it was. \
                 `cargo xtask tree` (with --force if it names the branch; its old tip is kept \
                 under refs/nova-backup/) rebuilds it from series/; then export again",
                t.dir
            ),
        }
    }
    if let Some(parent) = tip_behind {
        println!(
            "tip view: not written, as {} is not exported (behind {parent})",
            topics.tip().branch
        );
    } else {
        tipview::write(&ctx.repo, &view, force)?;
        println!(
            "tip view: {} file(s), manifest {}",
            view.len(),
            tipview::MANIFEST
        );
    }
    Ok(())
}

/// `series absorb`: folds direct edits of tip-view files into the commits that own the lines.
fn series_absorb(ctx: &Ctx, tc: &setup::Toolchain) -> Result<()> {
    let paths = crate::series::absorb::absorb(ctx, &tc.base_repo)?;
    if paths.is_empty() {
        println!("no tip-view file was edited directly: nothing to absorb");
        return Ok(());
    }
    for p in &paths {
        println!("absorbed {p}");
    }
    println!(
        "series/ and the tip view are updated; run `cargo xtask tree` to bring build/linux along"
    );
    Ok(())
}

/// `series mbox`: each topic of `series/` (or only `only`) as a threaded mbox.
fn series_mbox(ctx: &Ctx, tc: &setup::Toolchain, only: Option<&str>) -> Result<()> {
    let series = ctx.series()?;
    let topics = &series.topics.topics;
    if let Some(o) = only {
        if !topics.iter().any(|t| t.dir == o || t.branch == o) {
            bail!("no topic `{o}` in series/topics.toml");
        }
    }
    let check_tree = tree::ToolTree::check(&ctx.build);
    check_tree.apply(series, &tc.base_repo)?;
    let out = ctx.build.join("mbox");
    std::fs::create_dir_all(&out)?;
    for t in topics {
        if only.is_some_and(|o| t.dir != o && t.branch != o) {
            continue;
        }
        match mbox::topic_mbox(&check_tree.dir, &series.dir, t)? {
            None => println!("{}: no patches", t.branch),
            Some(m) => {
                let path = out.join(format!("{}.mbx", t.dir));
                util::write_atomic(&path, m.as_bytes())?;
                println!("{}: {}", t.branch, path.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The layers the comment on the `mod` lines names, from the bottom.
    const LAYERS: &[&[&str]] = &[
        &["ctx", "util", "git"],
        &["setup"],
        &["cache"],
        &["series"],
        &["results"],
        &["builds"],
        &["boot"],
        &["suites"],
        &["commands", "main"],
    ];

    fn rank(module: &str) -> Option<usize> {
        LAYERS.iter().position(|l| l.contains(&module))
    }

    /// The top-level modules that `code` names through `crate::` (doc comments and the test
    /// module left out).
    fn crate_uses(code: &str) -> Vec<String> {
        let code = code.split("#[cfg(test)]").next().unwrap_or_default();
        let mut out = Vec::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                    None => vec![rest],
                };
                for n in names {
                    let n = n.trim();
                    let end = n
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(n.len());
                    out.push(n[..end].to_string());
                }
            }
        }
        out
    }

    /// Every module uses only its own layer and those below it. One exception: `ctx` keeps the
    /// series it reads once per command (`series::topics`, which uses nothing of the crate).
    #[test]
    fn modules_use_only_their_layer_and_those_below() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.clone()];
        let mut wrong = Vec::new();
        let mut seen = 0;
        while let Some(p) = files.pop() {
            if p.is_dir() {
                files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
            let own = rank(top).unwrap_or_else(|| panic!("{rel}: {top} is in no layer"));
            seen += 1;
            for used in crate_uses(&std::fs::read_to_string(&p).unwrap()) {
                let r =
                    rank(&used).unwrap_or_else(|| panic!("{rel}: crate::{used} is in no layer"));
                if r > own && !(top == "ctx" && used == "series") {
                    wrong.push(format!("{rel} uses crate::{used}"));
                }
            }
        }
        assert!(seen > 30, "{seen} files");
        assert!(wrong.is_empty(), "{wrong:#?}");
        assert_eq!(
            crate_uses("use crate::{a::b, c};\n// crate::d\nx(crate::e::f)"),
            ["a", "c", "e"]
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["xtask", "run", "--chip", "tu102,gb202", "--exec", "ls"]).unwrap();
        match cli.command {
            Command::Run { chip, exec, .. } => {
                assert_eq!(chip, ["tu102", "gb202"]);
                assert_eq!(exec, ["ls"]);
            }
            _ => panic!("not run"),
        }
        assert!(Cli::try_parse_from(["xtask", "test", "--bogus"]).is_err());
    }

    /// A plain `run` attaches the default GPU; `--chip all` every profile; `--exec` alone none.
    #[test]
    fn run_s_gpus_follow_its_options() {
        let gpus = |argv: &[&str]| {
            let mut full = vec!["xtask", "run"];
            full.extend_from_slice(argv);
            match Cli::try_parse_from(full).unwrap().command {
                Command::Run {
                    chip,
                    gpu_passthrough,
                    exec,
                    ..
                } => run::GpuChoice::from_options(&chip, gpu_passthrough, !exec.is_empty()),
                _ => panic!("not run"),
            }
        };
        assert_eq!(gpus(&[]), run::GpuChoice::Models(vec!["gh100".to_string()]));
        match gpus(&["--chip", "all"]) {
            run::GpuChoice::Models(m) => {
                assert_eq!(m.len(), 26);
                assert!(m.contains(&"gv100".to_string()) && m.contains(&"dead".to_string()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(gpus(&["--exec", "ls"]), run::GpuChoice::None);
        assert_eq!(
            gpus(&["--exec", "ls", "--chip", "tu102"]),
            run::GpuChoice::Models(vec!["tu102".to_string()])
        );
        assert_eq!(
            gpus(&["--gpu-passthrough", "0000:01:00.0"]),
            run::GpuChoice::Passthrough("0000:01:00.0".into())
        );
        assert!(Cli::try_parse_from([
            "xtask",
            "run",
            "--chip",
            "gh100",
            "--gpu-passthrough",
            "0000:01:00.0"
        ])
        .is_err());
    }
}
