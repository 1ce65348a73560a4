//! The kernel builds the suites need: the developer's tree, the pristine base, a topic as
//! `series/` has it, and every commit of every topic.

use crate::ctx::Ctx;
use crate::git::Git;
use crate::kbuild::{self, Build, Built};
use crate::report::TestResult;
use crate::setup::{Toolchain, BASE_TAG};
use crate::suites::{check, slug};
use crate::tipview::sha256;
use crate::topics::{Topic, Topics, BASE};
use crate::{check as series_check, kconfig, tree, util};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Builds whatever is checked out in the kernel tree (after materialising it from series/).
pub(crate) fn build_tree(ctx: &Ctx, tc: &Toolchain, debug: bool) -> Result<(String, Built)> {
    let series_dir = ctx.repo.join("series");
    let topics = Topics::load(&series_dir)?;
    tree::materialise(
        &ctx.tree(),
        &tc.base_repo,
        &topics,
        &series_dir,
        tree::OnUnexported::Keep,
    )?;
    let git = Git::new(ctx.tree());
    let branch = git
        .run(&["rev-parse", "--abbrev-ref", "HEAD"])?
        .trim()
        .to_string();
    let dirs = topic_dirs(&topics, &branch);
    let name = format!("{}{}", slug(&branch), if debug { "-debug" } else { "" });
    let b = Build {
        out: ctx.build.join("kbuild").join(&name),
        src: ctx.tree(),
        fragments: kconfig::fragments(&ctx.repo, &dirs, debug),
        strict_config: true,
        clippy: false,
        lines_file: ctx.cache.join(format!("build-lines/{name}")),
        name,
    };
    let built = kbuild::build(tc, &b, &ctx.logs())?;
    Ok((branch, built))
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

/// A work tree of the scratch tree (series/ applied to the base) detached at `rev`, for builds
/// of the series as it is in `series/` (never the developer's tree).
fn series_worktree(ctx: &Ctx, tc: &Toolchain, name: &str, rev: &str) -> Result<PathBuf> {
    let topics = Topics::load(&ctx.repo.join("series"))?;
    series_check::apply_series(&ctx.repo, &ctx.build, &tc.base_repo, &topics)?;
    let scratch = Git::new(series_check::scratch(&ctx.build));
    let wt = ctx.build.join("worktrees").join(name);
    if !wt.join(".git").exists() {
        let _ = scratch.run(&["worktree", "prune"]);
        let path = wt.to_string_lossy().into_owned();
        util::step(&format!("check out {rev} in {}", wt.display()), || {
            scratch
                .run(&["worktree", "add", "-q", "--detach", &path, rev])
                .map(|_| ())
        })?;
    } else {
        Git::new(&wt).run(&["checkout", "-q", "-f", "--detach", rev])?;
    }
    Ok(wt)
}

/// Builds topic `branch` as `series/` has it, with its fragments and the `extra` ones of
/// `kconfig/`, in its own build folder.
pub(crate) fn build_series_topic(
    ctx: &Ctx,
    tc: &Toolchain,
    branch: &str,
    extra: &[&str],
) -> Result<Built> {
    let topics = Topics::load(&ctx.repo.join("series"))?;
    let name = format!("series-{}", slug(branch));
    let src = series_worktree(ctx, tc, &name, &format!("refs/heads/{branch}"))?;
    let b = Build {
        out: ctx.build.join("kbuild").join(&name),
        src,
        fragments: {
            let mut dirs = topic_dirs(&topics, branch);
            dirs.extend(extra.iter().map(|e| e.to_string()));
            kconfig::fragments(&ctx.repo, &dirs, false)
        },
        strict_config: true,
        clippy: false,
        lines_file: ctx.cache.join(format!("build-lines/{name}")),
        name,
    };
    kbuild::build(tc, &b, &ctx.logs())
}

/// Every commit of every topic builds with its topic's fragments, without Rust warnings.
///
/// Each commit is built incrementally in a per-topic work tree and build folder; a commit whose
/// tree (with the same fragments) built cleanly before is remembered and not built again.
pub(crate) fn commit_builds(ctx: &Ctx, tc: &Toolchain) -> Result<Vec<TestResult>> {
    let topics = Topics::load(&ctx.repo.join("series"))?;
    series_check::apply_series(&ctx.repo, &ctx.build, &tc.base_repo, &topics)?;
    let scratch = Git::new(series_check::scratch(&ctx.build));
    let passed = ctx.build.join("commit-builds-passed");
    std::fs::create_dir_all(&passed)?;
    let mut results = Vec::new();
    for t in &topics.topics {
        let commits = crate::series::own_commits(&scratch, t)?;
        let fragments = kconfig::fragments(&ctx.repo, &topic_dirs(&topics, &t.branch), false);
        let mut frag_key = String::new();
        for f in &fragments {
            frag_key.push_str(&sha256(&std::fs::read(f)?));
        }
        for (i, commit) in commits.iter().enumerate() {
            let tree = scratch.run(&["rev-parse", &format!("{commit}^{{tree}}")])?;
            let stamp = passed.join(sha256(
                format!("clippy {}{frag_key}", tree.trim()).as_bytes(),
            ));
            let subject = scratch.run(&["log", "-1", "--format=%s", commit])?;
            let test = format!("series.builds.{}.{:04} {}", t.dir, i + 1, subject.trim());
            if stamp.exists() {
                results.push(TestResult::pass(test));
                continue;
            }
            let b = commits_build(ctx, tc, t, commit, &fragments)?;
            let log = ctx.logs().join(format!("build-{}.log", b.name));
            let outcome = match kbuild::build(tc, &b, &ctx.logs()) {
                Err(e) => Err(format!("{e:#}")),
                Ok(_) => {
                    let w = kbuild::rust_warnings(&log);
                    if w.is_empty() {
                        Ok(())
                    } else {
                        Err(w.join("\n"))
                    }
                }
            };
            match outcome {
                Ok(()) => {
                    std::fs::write(&stamp, b"")?;
                    results.push(TestResult::pass(test));
                }
                Err(e) => results.push(TestResult::fail(test, e)),
            }
        }
        if let Some(tip) = commits.last() {
            results.push(tip_checks(ctx, tc, t, tip, &fragments, &passed)?);
        }
    }
    Ok(results)
}

/// The build of one commit of topic `t` (through clippy, configured leniently: it may predate
/// options its topic adds), in the topic's own work tree and build folder.
fn commits_build(
    ctx: &Ctx,
    tc: &Toolchain,
    t: &Topic,
    rev: &str,
    fragments: &[PathBuf],
) -> Result<Build> {
    let name = format!("commits-{}", slug(&t.branch));
    Ok(Build {
        src: series_worktree(ctx, tc, &name, rev)?,
        out: ctx.build.join("kbuild").join(&name),
        fragments: fragments.to_vec(),
        strict_config: false,
        clippy: true,
        lines_file: ctx.cache.join(format!("build-lines/{name}")),
        name,
    })
}

/// `make rustfmtcheck` and `make rustdoc` on a topic's last commit, without warnings.
fn tip_checks(
    ctx: &Ctx,
    tc: &Toolchain,
    t: &Topic,
    tip: &str,
    fragments: &[PathBuf],
    passed: &Path,
) -> Result<TestResult> {
    let scratch = Git::new(series_check::scratch(&ctx.build));
    let tree = scratch.run(&["rev-parse", &format!("{tip}^{{tree}}")])?;
    let stamp = passed.join(sha256(format!("tip-checks {}", tree.trim()).as_bytes()));
    let test = format!("series.rustfmt-rustdoc.{}", t.dir);
    if stamp.exists() {
        return Ok(TestResult::pass(test));
    }
    let b = commits_build(ctx, tc, t, tip, fragments)?;
    let mut problems = Vec::new();
    for target in ["rustfmtcheck", "rustdoc"] {
        match kbuild::make_target(tc, &b, target, &ctx.logs()) {
            Ok(w) => problems.extend(w.into_iter().map(|w| format!("make {target}: {w}"))),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if problems.is_empty() {
        std::fs::write(&stamp, b"")?;
    }
    Ok(check(test, problems))
}

/// Builds the pristine base (its own work tree, never edited) with the base fragment.
pub(crate) fn build_base(ctx: &Ctx, tc: &Toolchain) -> Result<Built> {
    let src = ctx.build.join("worktrees/base");
    let tag = format!("refs/tags/{BASE_TAG}");
    if !Git::exists(&src) {
        util::step("check out the base", || {
            let mut c = crate::git::command();
            c.args(["clone", "-q", "--branch", BASE_TAG])
                .arg(&tc.base_repo)
                .arg(&src);
            util::run_logged("git clone", &mut c, &ctx.logs().join("base-checkout.log"))
        })?;
    }
    let git = Git::new(&src);
    let want = Git::new(&tc.base_repo)
        .rev(&tag)
        .context("the base repository has no base tag")?;
    if git.rev("HEAD").as_deref() != Some(want.as_str()) {
        // Setup re-imported the base: move the work tree (only changed files are rewritten).
        let repo = tc.base_repo.to_string_lossy();
        git.run(&["fetch", "-q", "--no-tags", &repo, &format!("+{tag}:{tag}")])?;
        git.run(&["checkout", "-q", "-f", "--detach", &tag])?;
    }
    let b = Build {
        name: BASE.to_string(),
        out: ctx.build.join("kbuild/base"),
        src,
        fragments: kconfig::fragments(&ctx.repo, &[], false),
        strict_config: true,
        clippy: false,
        lines_file: ctx.cache.join("build-lines/base"),
    };
    kbuild::build(tc, &b, &ctx.logs())
}
