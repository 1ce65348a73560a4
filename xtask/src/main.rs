//! `cargo xtask`: the Nova project's tool. See README.md for the commands.

mod absorb;
mod author;
mod boot;
mod builds;
mod cache;
mod check;
mod ctx;
mod git;
mod gpu;
mod initramfs;
mod kbuild;
mod kconfig;
mod ktap;
mod libtest;
mod mbox;
mod qemu;
mod qmp;
mod report;
mod run;
mod series;
#[cfg(test)]
mod series_tests;
mod setup;
mod suites;
mod tipview;
mod topics;
mod tree;
mod util;

use anyhow::{bail, Context, Result};
use ctx::Ctx;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

  run [--chip NAME[,NAME...] | --gpu-passthrough BDF] [--debug] [--exec CMD]...
                         set up, materialise the branches, build the kernel tree's checked-out
                         branch, boot it under QEMU and show what the kernel reported; --exec runs
                         CMD in the guest (guest programs from guest/ and modules are packed)
  test [--suite NAME]... run the test suites (host, series, boot-base); last line `N passed, N failed`
  setup                  install and cache what the tool needs (idempotent)
  tree [--force]         materialise the kernel tree build/linux from series/
  series export [--force]  write series/ and the tip view from the kernel tree's branches
  series check           check that series/ applies and the tip view matches it
  series mbox [TOPIC]    write each topic (or TOPIC: a folder or branch name) as the threaded
                         mail a reviewer receives, to build/mbox/<topic>.mbx
  series absorb          fold direct edits of tip-view files into the commits that own them
  build [--debug]        build the kernel tree's checked-out branch
  doc [--branch B]       rustdoc HTML of the kernel crate for the checked-out branch (or B as
                         series/ has it); prints the path of index.html
  rust-analyzer          write build/linux/rust-project.json for editors
  module DIR [--branch B] [--run]
                         build the out-of-tree module in DIR (kbuild M=) against the checked-out
                         branch (or B); --run boots that kernel, loads and unloads it
  cache status           what the cache (setup, build slots, remembered verdicts) holds, and sizes
  cache clean            remove the cache (the next run sets up and builds again)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Command-line options after the command name.
struct Opts {
    args: Vec<String>,
}

impl Opts {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.args.len();
        self.args.retain(|a| a != name);
        before != self.args.len()
    }

    fn values(&mut self, name: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        while let Some(i) = self.args.iter().position(|a| a == name) {
            if i + 1 >= self.args.len() {
                bail!("{name} needs a value");
            }
            out.push(self.args.remove(i + 1));
            self.args.remove(i);
        }
        Ok(out)
    }

    fn value(&mut self, name: &str) -> Result<Option<String>> {
        let mut v = self.values(name)?;
        if v.len() > 1 {
            bail!("{name} given twice");
        }
        Ok(v.pop())
    }

    fn done(self) -> Result<()> {
        if let Some(a) = self.args.first() {
            bail!("unexpected argument `{a}`\n\n{USAGE}");
        }
        Ok(())
    }
}

fn run() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
        print!("{USAGE}");
        return Ok(());
    }
    let cmd = args.remove(0);
    let sub = if (cmd == "series" || cmd == "cache") && !args.is_empty() {
        Some(args.remove(0))
    } else {
        None
    };
    let mut o = Opts { args };
    let ctx = Ctx::new()?;
    match (cmd.as_str(), sub.as_deref()) {
        ("setup", None) => {
            o.done()?;
            setup::setup(&ctx)?;
            println!("setup complete (cache: {})", ctx.cache.display());
            Ok(())
        }
        ("tree", None) => {
            let force = o.flag("--force");
            o.done()?;
            let tc = setup::setup(&ctx)?;
            let topics = topics::Topics::load(&ctx.repo.join("series"))?;
            tree::materialise(
                &ctx.tree(),
                &tc.base_repo,
                &topics,
                &ctx.repo.join("series"),
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
        ("series", Some("export")) => {
            let force = o.flag("--force");
            o.done()?;
            series_export(&ctx, force)
        }
        ("series", Some("check")) => {
            o.done()?;
            let tc = setup::existing(&ctx).or_else(|_| setup::setup(&ctx))?;
            let results = check::run(&ctx.repo, &ctx.build, &tc, &cache::Verdicts::new(&ctx))?;
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
        ("series", Some("mbox")) => {
            let only = o.args.first().cloned();
            if only.is_some() {
                o.args.remove(0);
            }
            o.done()?;
            let tc = setup::setup(&ctx)?;
            series_mbox(&ctx, &tc, only.as_deref())
        }
        ("series", Some("absorb")) => {
            o.done()?;
            let tc = setup::setup(&ctx)?;
            series_absorb(&ctx, &tc)
        }
        ("cache", Some("status")) => {
            o.done()?;
            cache::status(&ctx)
        }
        ("cache", Some("clean")) => {
            o.done()?;
            cache::clean(&ctx)
        }
        ("doc", None) => {
            let branch = o.value("--branch")?;
            o.done()?;
            let tc = setup::setup(&ctx)?;
            let k = author::kept_build(&ctx, &tc, branch.as_deref())?;
            let (index, warnings) = author::doc(&ctx, &tc, &k)?;
            for w in &warnings {
                println!("{w}");
            }
            println!("{}: {}", k.branch, index.display());
            Ok(())
        }
        ("rust-analyzer", None) => {
            o.done()?;
            let tc = setup::setup(&ctx)?;
            let k = author::kept_build(&ctx, &tc, None)?;
            let json = author::rust_analyzer(&ctx, &tc, &k, &ctx.tree())?;
            println!("{}: {}", k.branch, json.display());
            Ok(())
        }
        ("module", None) => {
            let branch = o.value("--branch")?;
            let run = o.flag("--run");
            let dir = match o.args.first() {
                Some(d) if !d.starts_with("--") => std::path::PathBuf::from(o.args.remove(0)),
                _ => bail!("module needs the module's folder: cargo xtask module DIR"),
            };
            o.done()?;
            let tc = setup::setup(&ctx)?;
            let k = author::kept_build(&ctx, &tc, branch.as_deref())?;
            let kos = author::module(&ctx, &tc, &k, &dir)?;
            for ko in &kos {
                println!("{}: {}", k.branch, ko.display());
            }
            if run {
                let name = format!("module-{}", topics::slug(&k.branch));
                let (suite, _) = author::boot_modules(&ctx, &tc, &k, &name, &kos, &[], true)?;
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
        ("build", None) => {
            let debug = o.flag("--debug");
            o.done()?;
            let tc = setup::setup(&ctx)?;
            let (branch, built) = builds::build_tree(&ctx, &tc, debug)?;
            println!("{branch}: {}", built.bzimage.display());
            Ok(())
        }
        ("run", None) => {
            let debug = o.flag("--debug");
            let chip = o.value("--chip")?;
            let pass = o.value("--gpu-passthrough")?;
            let exec = o.values("--exec")?;
            o.done()?;
            let gpu = match (chip, pass) {
                (Some(_), Some(_)) => bail!("--chip and --gpu-passthrough exclude each other"),
                (Some(c), None) => {
                    run::GpuChoice::Models(c.split(',').map(str::to_string).collect())
                }
                (None, Some(p)) => {
                    if !qemu::valid_bdf(&p) {
                        bail!("--gpu-passthrough wants a PCI address like 0000:01:00.0, not `{p}`");
                    }
                    run::GpuChoice::Passthrough(p)
                }
                (None, None) => run::GpuChoice::None,
            };
            run::run(&ctx, gpu, debug, &exec)
        }
        ("test", None) => {
            let names = o.values("--suite")?;
            o.done()?;
            suites::test(&ctx, &names)
        }
        _ => bail!(
            "unknown command `{cmd}{}`\n\n{USAGE}",
            sub.map(|s| format!(" {s}")).unwrap_or_default()
        ),
    }
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
    let series_dir = ctx.repo.join("series");
    let topics = topics::Topics::load(&series_dir)?;
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
    let view = tipview::generate(&git, &topics.tip().branch)?;
    if !force {
        let edits = tipview::edited(&ctx.repo)?;
        if !edits.is_empty() {
            bail!(
                "tip-view files were edited directly: {}\nfold them into their commits with \
                 `cargo xtask series absorb`, or pass --force to overwrite them",
                edits.join(", ")
            );
        }
    }
    let counts = series::export(&git, &topics, &series_dir)?;
    tipview::write(&ctx.repo, &view, force)?;
    for t in &topics.topics {
        let files = series::format_topic(&git, t)?;
        tree::record_synced(&ctx.tree(), t, &files)?;
    }
    for (branch, n) in counts {
        println!("{branch}: {n} patch(es)");
    }
    println!(
        "tip view: {} file(s), manifest {}",
        view.len(),
        tipview::MANIFEST
    );
    Ok(())
}

/// `series absorb`: folds direct edits of tip-view files into the commits that own the lines.
fn series_absorb(ctx: &Ctx, tc: &setup::Toolchain) -> Result<()> {
    let paths = crate::absorb::absorb(&ctx.repo, &ctx.build, &tc.base_repo)?;
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
    let series_dir = ctx.repo.join("series");
    let topics = topics::Topics::load(&series_dir)?;
    if let Some(o) = only {
        if !topics.topics.iter().any(|t| t.dir == o || t.branch == o) {
            bail!("no topic `{o}` in series/topics.toml");
        }
    }
    check::apply_series(&ctx.repo, &ctx.build, &tc.base_repo, &topics)?;
    let scratch = check::scratch(&ctx.build);
    let out = ctx.build.join("mbox");
    std::fs::create_dir_all(&out)?;
    for t in &topics.topics {
        if only.is_some_and(|o| t.dir != o && t.branch != o) {
            continue;
        }
        match mbox::topic_mbox(&scratch, &series_dir, t)? {
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
