//! The kernel builds the suites need: the developer's tree (in the clone's `build/kbuild`), and
//! in build slots of the cache, shared by every clone: the pristine base, a topic as `series/`
//! has it, and every commit of every topic.

use crate::cache::{self, Slot, Verdicts};
use crate::ctx::Ctx;
use crate::git::Git;
use crate::kbuild::{self, Build, Built};
use crate::report::{check, TestResult};
use crate::setup::{Toolchain, BASE_TAG};
use crate::topics::{slug, Topics, BASE};
use crate::tree::{self, ToolTree};
use crate::util::sha256;
use crate::{kconfig, util};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A finished kernel build whose folder stays usable for more `make` targets (rustdoc, external
/// modules, ...): for a cache slot, the slot stays locked while this lives.
pub(crate) struct Kept {
    /// The branch built.
    pub branch: String,
    /// How it was built (source, build folder, fragments).
    pub build: Build,
    /// What it produced.
    pub built: Built,
    _slot: Option<Slot>,
}

/// Builds whatever is checked out in the kernel tree (after materialising it from series/).
pub(crate) fn build_tree(ctx: &Ctx, tc: &Toolchain, debug: bool) -> Result<(String, Built)> {
    let k = keep_tree(ctx, tc, debug)?;
    Ok((k.branch, k.built))
}

/// [`build_tree`], keeping the build for more targets.
pub(crate) fn keep_tree(ctx: &Ctx, tc: &Toolchain, debug: bool) -> Result<Kept> {
    let series = ctx.series()?;
    tree::materialise(
        &ctx.tree(),
        &tc.base_repo,
        &series.topics,
        &series.dir,
        tree::OnUnexported::Keep,
    )?;
    let git = Git::new(ctx.tree());
    let branch = git
        .run(&["rev-parse", "--abbrev-ref", "HEAD"])?
        .trim()
        .to_string();
    let dirs = topic_dirs(&series.topics, &branch);
    let name = format!("{}{}", slug(&branch), if debug { "-debug" } else { "" });
    let b = Build {
        out: ctx.build.join("kbuild").join(&name),
        src: ctx.tree(),
        fragments: kconfig::fragments(&ctx.repo, &dirs, debug),
        strict_config: true,
        clippy: false,
        shared: false,
        lines_file: ctx.cache.join(format!("build-lines/{name}")),
        name,
        lock_fd: None,
    };
    let built = kbuild::build(tc, &b, &ctx.logs())?;
    Ok(Kept {
        branch,
        build: b,
        built,
        _slot: None,
    })
}

/// The `kconfig/` fragment names for `branch`: its topic's ancestors, then the topic itself.
fn topic_dirs(topics: &Topics, branch: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    if let Some(t) = topics.by_branch(branch) {
        for name in topics.ancestors(t) {
            if let Some(a) = topics.by_branch(&name) {
                dirs.push(a.dir.clone());
            }
        }
        dirs.push(t.dir.clone());
    }
    dirs
}

/// Builds `rev` of repository `from` in cache slot `name` and copies what the boot needs (the
/// image, the modules) into the clone's `build/images/<name>`, so that another run may reuse the
/// slot while this one boots.
fn build_in_slot(
    ctx: &Ctx,
    tc: &Toolchain,
    name: &str,
    from: &Path,
    rev: &str,
    fragments: Vec<PathBuf>,
) -> Result<Built> {
    let slot = Slot::open(ctx, tc, name)?;
    slot.checkout(from, rev)?;
    let b = slot_build(ctx, &slot, fragments, true, false);
    let built = kbuild::build(tc, &b, &ctx.logs())?;
    copy_images(ctx, name, &built)
}

/// Copies what a boot needs of a slot's build (image, modules) into `build/images/<name>`.
pub(crate) fn copy_images(ctx: &Ctx, name: &str, built: &Built) -> Result<Built> {
    let images = ctx.build.join("images").join(name);
    util::remove_dir(&images)?;
    std::fs::create_dir_all(images.join("modules"))?;
    let bzimage = images.join("bzImage");
    std::fs::copy(&built.bzimage, &bzimage)?;
    let mut modules = Vec::new();
    for m in &built.modules {
        let to = images
            .join("modules")
            .join(m.file_name().unwrap_or_default());
        std::fs::copy(m, &to)?;
        modules.push(to);
    }
    Ok(Built {
        bzimage,
        rebuilt: built.rebuilt,
        modules,
    })
}

/// The build of whatever `slot` has checked out.
fn slot_build(
    ctx: &Ctx,
    slot: &Slot,
    fragments: Vec<PathBuf>,
    strict_config: bool,
    clippy: bool,
) -> Build {
    Build {
        name: slot.name.clone(),
        src: slot.src.clone(),
        out: slot.out.clone(),
        fragments,
        strict_config,
        clippy,
        shared: true,
        lines_file: ctx.cache.join(format!("build-lines/{}", slot.name)),
        lock_fd: Some(slot.lock_fd()),
    }
}

/// Builds topic `branch` as `series/` has it, with its fragments and the `extra` ones of
/// `kconfig/`, in its own cache slot.
pub(crate) fn build_series_topic(
    ctx: &Ctx,
    tc: &Toolchain,
    branch: &str,
    extra: &[&str],
) -> Result<Built> {
    let k = keep_series_topic(ctx, tc, branch, extra)?;
    copy_images(ctx, &k.build.name, &k.built)
}

/// [`build_series_topic`], keeping the slot (locked) for more targets.
pub(crate) fn keep_series_topic(
    ctx: &Ctx,
    tc: &Toolchain,
    branch: &str,
    extra: &[&str],
) -> Result<Kept> {
    let mut name = format!("series-{}", slug(branch));
    for e in extra {
        name.push('+');
        name.push_str(e);
    }
    keep_topic_in_slot(ctx, tc, branch, &name, |topics| {
        let mut dirs = topic_dirs(topics, branch);
        dirs.extend(extra.iter().map(|e| e.to_string()));
        (kconfig::fragments(&ctx.repo, &dirs, false), true, false)
    })
}

/// Topic `branch` as `series/` has it, built in cache slot `name` with what `config` says for
/// the topics (fragments, strict configuration, clippy), kept with the slot locked.
fn keep_topic_in_slot(
    ctx: &Ctx,
    tc: &Toolchain,
    branch: &str,
    name: &str,
    config: impl FnOnce(&Topics) -> (Vec<PathBuf>, bool, bool),
) -> Result<Kept> {
    let series = ctx.series()?;
    if series.topics.by_branch(branch).is_none() {
        anyhow::bail!("no topic branch `{branch}` in series/topics.toml");
    }
    let check_tree = ToolTree::check(&ctx.build);
    check_tree.apply(series, &tc.base_repo)?;
    let slot = Slot::open(ctx, tc, name)?;
    slot.checkout(&check_tree.dir, &format!("refs/heads/{branch}"))?;
    let (fragments, strict, clippy) = config(&series.topics);
    let b = slot_build(ctx, &slot, fragments, strict, clippy);
    let built = kbuild::build(tc, &b, &ctx.logs())?;
    Ok(Kept {
        branch: branch.to_string(),
        build: b,
        built,
        _slot: Some(slot),
    })
}

/// The cache slot of the per-commit builds.
const COMMITS_SLOT: &str = "commits";

/// The one configuration of the per-commit builds: the tip topic's fragments (every topic's).
fn commits_fragments(ctx: &Ctx, topics: &Topics) -> Vec<PathBuf> {
    kconfig::fragments(&ctx.repo, &topic_dirs(topics, &topics.tip().branch), false)
}

/// Topic `branch` as `series/` has it, built in the per-commit builds' slot and configuration
/// (kept, the slot locked, for more targets): after the series suite the slot is at the tip, so
/// this is an incremental build, not a kernel of its own.
pub(crate) fn keep_in_commits_slot(ctx: &Ctx, tc: &Toolchain, branch: &str) -> Result<Kept> {
    keep_topic_in_slot(ctx, tc, branch, COMMITS_SLOT, |topics| {
        (commits_fragments(ctx, topics), false, true)
    })
}

/// Every commit of every topic builds, without Rust warnings.
///
/// All commits are built with one configuration, the tip topic's fragments (which include every
/// topic's), in one cache slot, topic after topic: moving from a commit to the next, or from a
/// topic's last commit to the first of the next topic, is an incremental `make`. (A
/// configuration per topic would make each topic's first commit a build from nothing, as a
/// changed `.config` recompiles nearly everything.) Options a commit predates are left out.
/// Each topic's own configuration is built and booted by its suite. A commit whose tree built
/// cleanly before (same fragments, same toolchain) is remembered and not built again, by any
/// clone on the machine.
pub(crate) fn commit_builds(ctx: &Ctx, tc: &Toolchain) -> Result<Vec<TestResult>> {
    let series = ctx.series()?;
    let topics = &series.topics;
    let check_tree = ToolTree::check(&ctx.build);
    check_tree.apply(series, &tc.base_repo)?;
    let check_git = check_tree.git();
    let verdicts = Verdicts::new(ctx);
    let mut results = Vec::new();
    let fragments = commits_fragments(ctx, topics);
    let mut frag_keys = Vec::new();
    for f in &fragments {
        frag_keys.push(sha256(&std::fs::read(f)?));
    }
    let frag_key = frag_keys.join(" ");
    // Opened on the first commit that needs a build, then kept (and locked) to the end.
    let mut slot: Option<Slot> = None;
    let at = |slot: &mut Option<Slot>, rev: &str| -> Result<Build> {
        if slot.is_none() {
            *slot = Some(Slot::open(ctx, tc, COMMITS_SLOT)?);
        }
        let s = slot.as_ref().expect("opened above");
        s.checkout(&check_tree.dir, rev)?;
        Ok(slot_build(ctx, s, fragments.clone(), false, true))
    };
    // `make rustfmtcheck` and `make rustdoc` of a commit that built, remembered like its build.
    // A topic's last commit gets the whole `make rustdoc`, and so does a commit that changes
    // a crate other than the kernel crate (`rust/macros`, ...); the others get the kernel
    // crate's documentation alone, the only one they can change.
    let other_crates = |rev: &str| -> Result<bool> {
        let changed = check_git.run(&[
            "diff",
            "--name-only",
            &format!("{rev}^"),
            rev,
            "--",
            "rust/",
        ])?;
        Ok(changed.lines().any(|f| {
            ![
                "rust/kernel/",
                "rust/helpers/",
                "rust/bindings/",
                "rust/uapi/",
            ]
            .iter()
            .any(|d| f.starts_with(d))
        }))
    };
    let doc_check = |slot: &mut Option<Slot>, rev: &str, tree: &str, test: String, tip: bool| {
        let verdict = cache::key(tc, "rustfmtcheck rustdoc", &[tree, &frag_key]);
        if verdicts.passed(&verdict) {
            return Ok::<_, anyhow::Error>(TestResult::pass(test));
        }
        let b = at(slot, rev)?;
        // Configured and built at `rev` (a no-op when its build just ran).
        let problems = match kbuild::build(tc, &b, &ctx.logs()) {
            Ok(_) => doc_checks(tc, &b, &ctx.logs(), !tip && !other_crates(rev)?),
            Err(e) => vec![format!("{e:#}")],
        };
        if problems.is_empty() {
            verdicts.record_pass(&verdict)?;
        }
        Ok(check(test, problems))
    };
    for t in &topics.topics {
        let commits = crate::series::own_commits(&check_git, t)?;
        for (i, commit) in commits.iter().enumerate() {
            let tree = check_git.run(&["rev-parse", &format!("{commit}^{{tree}}")])?;
            let verdict = cache::key(tc, "CLIPPY=1 build", &[tree.trim(), &frag_key]);
            let subject = check_git.run(&["log", "-1", "--format=%s", commit])?;
            let name =
                |kind: &str| format!("series.{kind}.{}.{:04} {}", t.dir, i + 1, subject.trim());
            if !verdicts.passed(&verdict) {
                let b = at(&mut slot, commit)?;
                let log = ctx.logs().join(format!("build-{}.log", b.name));
                let outcome = match kbuild::build(tc, &b, &ctx.logs()) {
                    Err(e) => Err(format!("{e:#}")),
                    Ok(_) => match kbuild::rust_warnings(&log) {
                        Err(e) => Err(format!("{e:#}")),
                        Ok(w) if w.is_empty() => Ok(()),
                        Ok(w) => Err(w.join("\n")),
                    },
                };
                if let Err(e) = outcome {
                    // Without a build there is nothing to check the documentation of.
                    results.push(TestResult::fail(name("builds"), e));
                    continue;
                }
                verdicts.record_pass(&verdict)?;
            }
            results.push(TestResult::pass(name("builds")));
            results.push(doc_check(
                &mut slot,
                commit,
                tree.trim(),
                name("rustfmt-rustdoc"),
                i + 1 == commits.len(),
            )?);
        }
    }
    Ok(results)
}

/// `make rustfmtcheck` and `make rustdoc` on a configured build: the problems found. With
/// `kernel_crate_only`, the documentation is that of the kernel crate alone when kbuild's
/// record of its command is there (see [`kbuild::rustdoc_kernel_crate`]).
fn doc_checks(tc: &Toolchain, b: &Build, logs: &Path, kernel_crate_only: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut report = |target: &str, res: Result<Vec<String>>| match res {
        Ok(w) => problems.extend(w.into_iter().map(|w| format!("make {target}: {w}"))),
        Err(e) => problems.push(format!("{e:#}")),
    };
    report(
        "rustfmtcheck",
        kbuild::make_target(tc, b, "rustfmtcheck", logs),
    );
    let kernel_crate = if kernel_crate_only {
        kbuild::rustdoc_kernel_crate(b, logs).transpose()
    } else {
        None
    };
    match kernel_crate {
        Some(res) => report("rustdoc (kernel crate)", res),
        None => report("rustdoc", kbuild::make_target(tc, b, "rustdoc", logs)),
    }
    problems
}

/// Builds the pristine base with the base fragment, in its own cache slot.
pub(crate) fn build_base(ctx: &Ctx, tc: &Toolchain) -> Result<Built> {
    build_in_slot(
        ctx,
        tc,
        BASE,
        &tc.base_repo,
        &format!("refs/tags/{BASE_TAG}"),
        kconfig::fragments(&ctx.repo, &[], false),
    )
}
