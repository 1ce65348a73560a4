//! The kernel builds the suites need: the developer's tree (in the clone's `build/kbuild`), and
//! in build slots of the cache, shared by every clone: every commit of every topic, in one slot
//! and one configuration, whose builds of the topics' tips are also what the topic suites boot;
//! and, for `cargo xtask bench` and `--branch`, a topic as `series/` has it in a slot of its own.
//!
//! A kernel is built from nothing once per machine (the per-commit slot's first commit); every
//! other build is an incremental `make` in that slot. What a suite needs of a topic's tip (the
//! boot images, an out-of-tree module built against it) is remembered in the cache by content,
//! so a later run needs the slot only where something changed.

pub mod author;
pub mod kbuild;
pub mod kconfig;

use crate::cache::{self, Slot, Verdicts};
use crate::ctx::Ctx;
use crate::git::Git;
use crate::results::report::{check, TestResult};
use crate::series::topics::{slug, Topics};
use crate::series::tree::{self, ToolTree};
use crate::setup::{self, OtherRustc, Toolchain};
use crate::util;
use crate::util::sha256;
use anyhow::{Context, Result};
use kbuild::{Build, Built};
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
        dev_loop: true,
        arch: None,
        rustc: None,
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

/// The fragments `cargo xtask run` builds `branch` with (the kernel tree's checked-out branch):
/// the base's, its topic's ancestors' and its own.
pub(crate) fn run_fragments(ctx: &Ctx, topics: &Topics, branch: &str) -> Vec<PathBuf> {
    kconfig::fragments(&ctx.repo, &topic_dirs(topics, branch), false)
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

/// Copies what a boot needs of a slot's build (image, modules) into `build/images/<name>`.
pub(crate) fn copy_images(ctx: &Ctx, name: &str, built: &Built) -> Result<Built> {
    let images = ctx.build.join("images").join(name);
    util::remove_dir(&images)?;
    std::fs::create_dir_all(images.join("modules"))?;
    let kernel = images.join("bzImage");
    std::fs::copy(&built.kernel, &kernel)?;
    let mut modules = Vec::new();
    for m in &built.modules {
        let to = images
            .join("modules")
            .join(m.file_name().unwrap_or_default());
        std::fs::copy(m, &to)?;
        modules.push(to);
    }
    Ok(Built {
        kernel,
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
    arch: Option<&'static str>,
    rustc: Option<OtherRustc>,
) -> Build {
    Build {
        name: slot.name.clone(),
        src: slot.src.clone(),
        out: slot.out.clone(),
        fragments,
        strict_config,
        clippy,
        dev_loop: false,
        arch,
        rustc,
        shared: true,
        lines_file: ctx.cache.join(format!("build-lines/{}", slot.name)),
        lock_fd: Some(slot.lock_fd()),
    }
}

/// Builds topic `branch` as `series/` has it, with its fragments and the `extra` ones of
/// `kconfig/`, in a cache slot of its own (a kernel from nothing the first time: for what needs
/// another configuration than the suites', such as `bench --case drm-gem`), kept with the slot
/// locked for more targets.
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
    keep_topic_in_slot(ctx, tc, branch, &name, (None, None), |topics| {
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
    (arch, rustc): (Option<&'static str>, Option<OtherRustc>),
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
    let b = slot_build(ctx, &slot, fragments, strict, clippy, arch, rustc);
    let built = kbuild::build(tc, &b, &ctx.logs())?;
    Ok(Kept {
        branch: branch.to_string(),
        build: b,
        built,
        _slot: Some(slot),
    })
}

/// A build the suites check but do not boot.
pub(crate) enum Variant {
    /// The topic's fragments and then this fragment of `kconfig/` (such as `pci-off`), which
    /// turns options off; in a cache slot per topic and fragment.
    Config(&'static str),
    /// The per-commit configuration (every topic's fragments; options a topic lacks are left
    /// out) for another architecture (`ARCH=`, such as `arm64`), with the same LLVM; in one
    /// cache slot per architecture that moves from topic to topic.
    Arch(&'static str),
    /// The per-commit configuration with the oldest Rust compiler Debian gives this machine
    /// ([`setup::oldest_rustc`]); in one cache slot that moves from topic to topic.
    OldestRustc,
}

/// Topic `branch`'s tip as `series/` has it, built as `variant` says (a kernel from nothing the
/// first time in its slot, incremental afterwards): the test `name` passes when it builds without
/// Rust warnings and, for a fragment, its `.config` has every option the fragment asks. A pass is
/// remembered by the tip's tree, the fragments, the architecture and the toolchain.
pub(crate) fn variant_build(
    ctx: &Ctx,
    tc: &Toolchain,
    branch: &str,
    variant: Variant,
    name: &str,
) -> Result<TestResult> {
    let series = ctx.series()?;
    ToolTree::check(&ctx.build).apply(series, &tc.base_repo)?;
    let mut rustc = None;
    let (fragments, checked, slot, arch) = match variant {
        Variant::Config(fragment) => {
            let file = ctx.repo.join("kconfig").join(format!("{fragment}.config"));
            if !file.is_file() {
                anyhow::bail!("no fragment {}", file.display());
            }
            let mut dirs = topic_dirs(&series.topics, branch);
            dirs.push(fragment.to_string());
            let fragments = kconfig::fragments(&ctx.repo, &dirs, false);
            let slot = format!("series-{}+{fragment}", slug(branch));
            (fragments, Some(file), slot, None)
        }
        Variant::Arch(arch) => (
            commits_fragments(ctx, &series.topics),
            None,
            format!("arch-{arch}"),
            Some(arch),
        ),
        Variant::OldestRustc => {
            let r = setup::oldest_rustc(ctx)?;
            let slot = format!("rustc-{}", r.version.split(' ').nth(1).unwrap_or("other"));
            rustc = Some(r);
            (commits_fragments(ctx, &series.topics), None, slot, None)
        }
    };
    let rustc_version = rustc.as_ref().map_or(String::new(), |r| r.version.clone());
    let tree = tip_tree(ctx, branch)?;
    let key = cache::key(
        tc,
        "configuration variant",
        &[
            &tree,
            &fragments_key(&fragments)?,
            arch.unwrap_or(""),
            &rustc_version,
        ],
    );
    let verdicts = Verdicts::new(ctx);
    if verdicts.passed(&key) {
        return Ok(TestResult::pass(name));
    }
    // A fragment contradicts the topic's ones (that is its point), and another architecture
    // lacks some options: only the fragment's own options are checked, below.
    let kept = keep_topic_in_slot(ctx, tc, branch, &slot, (arch, rustc), |_| {
        (fragments, false, false)
    });
    let kept = match kept {
        Ok(k) => k,
        Err(e) => return Ok(TestResult::fail(name, format!("{e:#}"))),
    };
    let config = std::fs::read_to_string(kept.build.out.join(".config"))?;
    let mut problems = Vec::new();
    if let Some(file) = checked {
        problems.extend(kconfig::verify(&[file], &config)?);
    }
    // A build without Rust would prove nothing of the series.
    if !config.lines().any(|l| l == "CONFIG_RUST=y") {
        problems.push("CONFIG_RUST is not set in the .config".to_string());
    }
    problems.extend(kbuild::rust_warnings(
        &ctx.logs().join(format!("build-{slot}.log")),
    )?);
    if !problems.is_empty() {
        return Ok(TestResult::fail(name, problems.join("\n")));
    }
    verdicts.record_pass(&key)?;
    Ok(TestResult::pass(name))
}

/// The cache slot of the per-commit builds.
pub(crate) const COMMITS_SLOT: &str = "commits";

/// The `kconfig/` fragments that only some suites' boots need, folded into the one configuration
/// of the per-commit slot so that every suite boots a build the series suite already made:
/// kmemleak (the leak checks after the bind and module cycles) and users and capabilities
/// (nova-stub's DRM authentication checks).
const SUITE_FRAGMENTS: &[&str] = &["leakcheck", "multiuser"];

/// The one configuration of the per-commit builds: the tip topic's fragments (every topic's)
/// and [`SUITE_FRAGMENTS`].
pub(crate) fn commits_fragments(ctx: &Ctx, topics: &Topics) -> Vec<PathBuf> {
    topic_fragments(ctx, topics, &topics.tip().branch)
}

/// What topic `branch` itself asks of the per-commit configuration: the base fragment, its
/// ancestors' and its own, and [`SUITE_FRAGMENTS`]. Its tip's `.config` must have every option
/// of these (the later topics' options are left out there, as they do not exist yet).
fn topic_fragments(ctx: &Ctx, topics: &Topics, branch: &str) -> Vec<PathBuf> {
    let mut dirs = topic_dirs(topics, branch);
    dirs.extend(SUITE_FRAGMENTS.iter().map(|f| f.to_string()));
    kconfig::fragments(&ctx.repo, &dirs, false)
}

/// A digest of the fragments' contents, in order.
fn fragments_key(fragments: &[PathBuf]) -> Result<String> {
    let mut keys = Vec::new();
    for f in fragments {
        keys.push(sha256(&std::fs::read(f)?));
    }
    Ok(keys.join(" "))
}

/// The options of topic `branch`'s fragments that the configured build `b` lacks: none, or an
/// error naming them.
fn check_topic_config(ctx: &Ctx, topics: &Topics, branch: &str, b: &Build) -> Result<()> {
    let config = std::fs::read_to_string(b.out.join(".config"))?;
    let missing = kconfig::verify(&topic_fragments(ctx, topics, branch), &config)?;
    if !missing.is_empty() {
        anyhow::bail!(
            "{branch}'s configuration in the per-commit slot lacks what its fragments ask:\n{}",
            missing.join("\n")
        );
    }
    Ok(())
}

/// Topic `branch` as `series/` has it, built in the per-commit builds' slot and configuration
/// (kept, the slot locked, for more targets): after the series suite the slot is at the tip, so
/// this is an incremental build, not a kernel of its own. The topic's own fragments must be
/// honoured by the configuration (checked), and its boot images are remembered (see
/// [`topic_images`]).
pub(crate) fn keep_in_commits_slot(ctx: &Ctx, tc: &Toolchain, branch: &str) -> Result<Kept> {
    let kept = keep_topic_in_slot(ctx, tc, branch, COMMITS_SLOT, (None, None), |topics| {
        (commits_fragments(ctx, topics), false, true)
    })?;
    let topics = &ctx.series()?.topics;
    check_topic_config(ctx, topics, branch, &kept.build)?;
    let tree = tip_tree(ctx, branch)?;
    store_images(ctx, &images_key(ctx, tc, topics, &tree)?, &kept.built)?;
    Ok(kept)
}

/// The debug kernel of topic `branch`: its tip as `series/` has it, in the configuration of its
/// per-commit build ([`topic_fragments`]) plus `kconfig/debug.config`, every option of which
/// must survive `olddefconfig` (checked), in a cache slot of its own (a kernel from nothing the
/// first time). Its images are remembered by content, so a run with nothing changed boots
/// without a build.
pub(crate) fn debug_images(ctx: &Ctx, tc: &Toolchain, branch: &str) -> Result<Built> {
    let series = ctx.series()?;
    if series.topics.by_branch(branch).is_none() {
        anyhow::bail!("no topic branch `{branch}` in series/topics.toml");
    }
    ToolTree::check(&ctx.build).apply(series, &tc.base_repo)?;
    let mut fragments = topic_fragments(ctx, &series.topics, branch);
    fragments.push(ctx.repo.join("kconfig/debug.config"));
    let key = cache::key(
        tc,
        "debug images",
        &[&tip_tree(ctx, branch)?, &fragments_key(&fragments)?],
    );
    let name = format!("debug-{}", slug(branch));
    if let Some(built) = cached_images(ctx, &key)? {
        return copy_images(ctx, &name, &built);
    }
    let kept = keep_topic_in_slot(ctx, tc, branch, &name, (None, None), |_| {
        (fragments, true, false)
    })?;
    store_images(ctx, &key, &kept.built)?;
    copy_images(ctx, &name, &kept.built)
}

/// The tree of topic `branch`'s tip as `series/` has it (applied in the check tree).
fn tip_tree(ctx: &Ctx, branch: &str) -> Result<String> {
    let check_git = ToolTree::check(&ctx.build).git();
    Ok(check_git
        .run(&["rev-parse", &format!("refs/heads/{branch}^{{tree}}")])?
        .trim()
        .to_string())
}

/// The key of the boot images of `tree` built in the per-commit configuration.
fn images_key(ctx: &Ctx, tc: &Toolchain, topics: &Topics, tree: &str) -> Result<String> {
    let frags = fragments_key(&commits_fragments(ctx, topics))?;
    Ok(cache::key(tc, "per-commit images", &[tree, &frags]))
}

/// Where the images of `key` are remembered: `bzImage` and `modules/`, complete once the
/// `complete` marker is there (written last).
fn images_dir(ctx: &Ctx, key: &str) -> PathBuf {
    ctx.cache.join("images").join(key)
}

/// Remembers the images of `built` under `key` (nothing to do when they are there). Called with
/// the per-commit slot locked (its build is what is copied), so two runs never write one folder.
fn store_images(ctx: &Ctx, key: &str, built: &Built) -> Result<()> {
    let dir = images_dir(ctx, key);
    if dir.join("complete").is_file() {
        return Ok(());
    }
    let mut files = vec![(built.kernel.clone(), PathBuf::from("bzImage"))];
    for m in &built.modules {
        files.push((
            m.clone(),
            Path::new("modules").join(m.file_name().unwrap_or_default()),
        ));
    }
    store_complete(&dir, &files)
}

/// Makes `dir` hold copies of `files` (source, path in `dir`) and a `complete` marker, built
/// beside it and renamed into place, so that a folder with the marker is always whole.
fn store_complete(dir: &Path, files: &[(PathBuf, PathBuf)]) -> Result<()> {
    let tmp = dir.with_extension("partial");
    util::remove_dir(&tmp)?;
    for (from, to) in files {
        let to = tmp.join(to);
        std::fs::create_dir_all(to.parent().context("a file in no folder")?)?;
        std::fs::copy(from, &to)
            .with_context(|| format!("cannot copy {} into the cache", from.display()))?;
    }
    std::fs::create_dir_all(&tmp)?;
    std::fs::write(tmp.join("complete"), b"")?;
    util::remove_dir(dir)?;
    std::fs::rename(&tmp, dir)?;
    Ok(())
}

/// The images remembered under `key`, if complete.
fn cached_images(ctx: &Ctx, key: &str) -> Result<Option<Built>> {
    let dir = images_dir(ctx, key);
    if !dir.join("complete").is_file() {
        return Ok(None);
    }
    Ok(Some(Built {
        kernel: dir.join("bzImage"),
        rebuilt: false,
        modules: util::sorted_dir(&dir.join("modules"))?,
    }))
}

/// The boot images (bzImage, modules) of topic `branch` as `series/` has it, built in the
/// per-commit slot and configuration, copied into `build/images/`. The series suite leaves
/// them in the cache when it builds a topic's last commit, so a topic suite boots without a
/// build; otherwise (a topic without commits of its own, or a suite run alone) the slot builds
/// the tip, incrementally.
pub(crate) fn topic_images(ctx: &Ctx, tc: &Toolchain, branch: &str) -> Result<Built> {
    let series = ctx.series()?;
    if series.topics.by_branch(branch).is_none() {
        anyhow::bail!("no topic branch `{branch}` in series/topics.toml");
    }
    ToolTree::check(&ctx.build).apply(series, &tc.base_repo)?;
    let key = images_key(ctx, tc, &series.topics, &tip_tree(ctx, branch)?)?;
    let name = format!("commits-{}", slug(branch));
    if let Some(built) = cached_images(ctx, &key)? {
        return copy_images(ctx, &name, &built);
    }
    let kept = keep_in_commits_slot(ctx, tc, branch)?;
    copy_images(ctx, &name, &kept.built)
}

/// A digest of the files under `dir` (paths and contents), build output aside.
fn sources_key(dir: &Path) -> Result<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) -> Result<()> {
        for p in util::sorted_dir(dir)? {
            if p.is_dir() {
                walk(&p, root, out)?;
            } else if p.is_file() {
                let rel = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                out.push(format!("{rel} {}", sha256(&std::fs::read(&p)?)));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    Ok(sha256(files.join("\n").as_bytes()))
}

/// The key of what the out-of-tree module in `dir` gives when built against topic `branch`'s
/// tip in the per-commit configuration: the tip's tree, the configuration, the toolchain and
/// the module's sources. Also the key of a verdict on that build.
pub(crate) fn topic_module_key(
    ctx: &Ctx,
    tc: &Toolchain,
    branch: &str,
    dir: &Path,
) -> Result<String> {
    topic_key(ctx, tc, branch, "out-of-tree module", &[&sources_key(dir)?])
}

/// The key of check `kind` (with its own inputs `parts`) on topic `branch`'s tip as `series/`
/// has it, in the per-commit configuration: the tip's tree, the configuration's fragments and
/// the toolchain decide it too.
pub(crate) fn topic_key(
    ctx: &Ctx,
    tc: &Toolchain,
    branch: &str,
    kind: &str,
    parts: &[&str],
) -> Result<String> {
    let series = ctx.series()?;
    ToolTree::check(&ctx.build).apply(series, &tc.base_repo)?;
    let frags = fragments_key(&commits_fragments(ctx, &series.topics))?;
    let tree = tip_tree(ctx, branch)?;
    let mut all = vec![tree.as_str(), frags.as_str()];
    all.extend_from_slice(parts);
    Ok(cache::key(tc, kind, &all))
}

/// The out-of-tree module in `dir` built against topic `branch`'s tip in the per-commit slot
/// (kbuild `M=`, through [`author::module`]): its `.ko` files, with its objects (`.o`)
/// beside them, remembered in the cache by [`topic_module_key`], so that a later run needs the
/// slot only when an input changed. A failed build is not remembered: it is returned (inner
/// `Err`, the build's message; its log is `module-<dir name>-commits.log`) and tried again
/// next time.
pub(crate) fn topic_module(
    ctx: &Ctx,
    tc: &Toolchain,
    branch: &str,
    dir: &Path,
) -> Result<std::result::Result<Vec<PathBuf>, String>> {
    let key = topic_module_key(ctx, tc, branch, dir)?;
    let stored = ctx.cache.join("modules").join(&key);
    let list = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut kos = util::sorted_dir(d)?;
        kos.retain(|p| p.extension().is_some_and(|x| x == "ko"));
        Ok(kos)
    };
    if stored.join("complete").is_file() {
        return Ok(Ok(list(&stored)?));
    }
    let kept = keep_in_commits_slot(ctx, tc, branch)?;
    let kos = match author::module(ctx, tc, &kept, dir) {
        Ok(kos) => kos,
        Err(e) => return Ok(Err(format!("{e:#}"))),
    };
    let built_in = kos.first().and_then(|k| k.parent()).context("no .ko")?;
    let mut files = Vec::new();
    for f in std::fs::read_dir(built_in)? {
        let f = f?.path();
        if f.extension().is_some_and(|x| x == "ko" || x == "o") {
            let name = PathBuf::from(f.file_name().unwrap_or_default());
            files.push((f, name));
        }
    }
    store_complete(&stored, &files)?;
    Ok(Ok(list(&stored)?))
}

/// Every commit of every topic builds, without Rust warnings.
///
/// All commits are built with one configuration, the tip topic's fragments (which include every
/// topic's), in one cache slot, topic after topic: moving from a commit to the next, or from a
/// topic's last commit to the first of the next topic, is an incremental `make`. (A
/// configuration per topic would make each topic's first commit a build from nothing, as a
/// changed `.config` recompiles nearly everything.) Options a commit predates are left out.
/// The build of each topic's last commit is the one its suite boots: its images are remembered
/// in the cache (see [`topic_images`]) when the configuration has every option of the topic's
/// fragments. A commit whose tree built cleanly before (same fragments, same toolchain) is
/// remembered and not built again, by any clone on the machine.
///
/// Documentation: every commit gets `make rustfmtcheck` and the kernel crate's rustdoc; the
/// whole `make rustdoc` (which documents `core` again, ~1.5 min here) runs on the series' last
/// commit and on every commit that changes a crate other than the kernel crate, the only
/// commits whose other crates' documentation can differ from the commit before.
pub(crate) fn commit_builds(ctx: &Ctx, tc: &Toolchain) -> Result<Vec<TestResult>> {
    let series = ctx.series()?;
    let topics = &series.topics;
    let check_tree = ToolTree::check(&ctx.build);
    check_tree.apply(series, &tc.base_repo)?;
    let check_git = check_tree.git();
    let verdicts = Verdicts::new(ctx);
    let mut results = Vec::new();
    let fragments = commits_fragments(ctx, topics);
    let frag_key = fragments_key(&fragments)?;
    // Opened on the first commit that needs a build, then kept (and locked) to the end.
    let mut slot: Option<Slot> = None;
    let at = |slot: &mut Option<Slot>, rev: &str| -> Result<Build> {
        if slot.is_none() {
            *slot = Some(Slot::open(ctx, tc, COMMITS_SLOT)?);
        }
        let s = slot.as_ref().expect("opened above");
        s.checkout(&check_tree.dir, rev)?;
        Ok(slot_build(
            ctx,
            s,
            fragments.clone(),
            false,
            true,
            None,
            None,
        ))
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
    let mut per_topic = Vec::new();
    for t in &topics.topics {
        per_topic.push((t, crate::series::own_commits(&check_git, t)?));
    }
    let series_tip = per_topic.iter().rev().find_map(|(_, c)| c.last().cloned());
    for (t, commits) in &per_topic {
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
                    Ok(built) => match kbuild::rust_warnings(&log) {
                        Err(e) => Err(format!("{e:#}")),
                        Ok(w) if w.is_empty() => Ok(built),
                        Ok(w) => Err(w.join("\n")),
                    },
                };
                let built = match outcome {
                    Ok(built) => built,
                    Err(e) => {
                        // Without a build there is nothing to check the documentation of.
                        results.push(TestResult::fail(name("builds"), e));
                        continue;
                    }
                };
                verdicts.record_pass(&verdict)?;
                // The topic's suite boots this build: keep its images, if it has the topic's
                // options (if not, the suite's own request fails, naming them).
                if i + 1 == commits.len() && check_topic_config(ctx, topics, &t.branch, &b).is_ok()
                {
                    store_images(ctx, &images_key(ctx, tc, topics, tree.trim())?, &built)?;
                }
            }
            results.push(TestResult::pass(name("builds")));
            results.push(doc_check(
                &mut slot,
                commit,
                tree.trim(),
                name("rustfmt-rustdoc"),
                series_tip.as_ref() == Some(commit),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_folder_is_whole_and_replaces_the_old_one() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("bzImage");
        std::fs::write(&src, b"kernel").unwrap();
        let dir = t.path().join("images/key");
        // A folder left by a run that died, without its marker, is replaced.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stale"), b"").unwrap();
        let files = [
            (src.clone(), PathBuf::from("bzImage")),
            (src, PathBuf::from("modules/a.ko")),
        ];
        store_complete(&dir, &files).unwrap();
        assert_eq!(std::fs::read(dir.join("modules/a.ko")).unwrap(), b"kernel");
        assert!(dir.join("complete").is_file());
        assert!(!dir.join("stale").exists());
        assert!(!dir.with_extension("partial").exists());
        let missing = [(t.path().join("none"), PathBuf::from("x"))];
        let e = store_complete(&t.path().join("images/other"), &missing).unwrap_err();
        assert!(format!("{e:#}").contains("cannot copy"), "{e:#}");
        assert!(!t.path().join("images/other").exists());
    }
}
